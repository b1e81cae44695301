"""Fetch a public dataset and arrange it in DomainBed's layout.

    python -m fishr_tune.download NAME --data-dir D [--from-archive PATH ...]

NAME is any registry name (case-insensitive): VLCS, PACS, OfficeHome, TerraIncognita, DomainNet,
ColoredMNIST / RotatedMNIST (both install MNIST's IDX files in torchvision's layout). The
embedded datasets need nothing. When a download fails (no network, a dead Google Drive link,
a quota page), the error says where to get the file by hand; ``--from-archive`` then runs the
same extraction and layout offline. Progress goes to stderr, so a long download is never silent
(DomainBed's script printed nothing, DB#157).
"""

from __future__ import annotations

import os
import shutil
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass

from fishr_tune.datasets import archives
from fishr_tune.datasets.locations import mnist_raw_dir
from fishr_tune.datasets.mnist import MNIST_FILES, find_idx_file
from fishr_tune.datasets.registry import DatasetSpec, download_command, get_spec
from fishr_tune.errors import CLIParser, UserError, exit_status, one_line

CHUNK = 1 << 20


def _drive(file_id: str) -> str:
    # Google Drive's direct endpoint; confirm=t skips the "cannot scan for viruses" page of
    # large files. The IDs below are DomainBed's; Drive links die or hit quotas (DB#79, #165),
    # which shows up as an HTML page instead of the archive and is reported as a failure.
    return f"https://drive.usercontent.google.com/download?id={file_id}&export=download&confirm=t"


@dataclass(frozen=True)
class Source:
    """One file to fetch: its name, mirrors tried in order, and the env folders it provides."""

    filename: str
    urls: tuple[str, ...]
    provides: tuple[str, ...] = ()


_DOMAINNET = "http://csr.bu.edu/ftp/visda/2019/multi-source/"
_LILA_GCP = "https://storage.googleapis.com/public-datasets-lila/caltechcameratraps/"
# LILA moved off this Azure account in 2023; kept as DomainBed's original, last resort.
_LILA_AZURE = "https://lilablobssc.blob.core.windows.net/caltechcameratraps/"
_MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                  "http://yann.lecun.com/exdb/mnist/")

SOURCES: dict[str, tuple[Source, ...]] = {
    # VLCS, PACS and OfficeHome: DomainBed's Drive copies (Fishr's older IDs are dead; these
    # may die too). PACS unpacks to kfold/, OfficeHome to OfficeHomeDataset_10072016/.
    "VLCS": (Source("VLCS.tar.gz", (_drive("1skwblH1_okBwxWxmRsp9_qi15hyPpxg8"),)),),
    "PACS": (Source("PACS.zip", (_drive("1JFr8f805nMUelQWWmfnJR3y4_SYoN5Pd"),)),),
    "OfficeHome": (Source("office_home.zip", (_drive("1uY0pj7oFsjMxRwaD3Sxy0jgel0fsYXLC"),)),),
    "TerraIncognita": (
        Source("eccv_18_all_images_sm.tar.gz", (_LILA_GCP + "eccv_18_all_images_sm.tar.gz",
                                                _LILA_AZURE + "eccv_18_all_images_sm.tar.gz")),
        Source("caltech_camera_traps.json.zip",
               (_LILA_GCP + "labels/caltech_camera_traps.json.zip",
                _LILA_AZURE + "labels/caltech_camera_traps.json.zip")),
    ),
    "DomainNet": tuple(
        Source(f"{env}.zip", (_DOMAINNET + ("groundtruth/" if env in ("clipart", "painting")
                                            else "") + f"{env}.zip",), provides=(env,))
        for env in ("clipart", "infograph", "painting", "quickdraw", "real", "sketch")),
    "MNIST": tuple(Source(f"{name}.gz", tuple(m + f"{name}.gz" for m in _MNIST_MIRRORS))
                   for name in MNIST_FILES),
}
HOMEPAGES = {
    "VLCS": "http://www.eecs.qmul.ac.uk/~dl307/project_iccv2017",
    "PACS": "http://www.eecs.qmul.ac.uk/~dl307/project_iccv2017",
    "OfficeHome": "https://www.hemanthdv.org/officeHomeDataset.html",
    "TerraIncognita": "https://lila.science/datasets/caltech-camera-traps",
    "DomainNet": "https://ai.bu.edu/M3SDA/",
    "MNIST": "https://ossci-datasets.s3.amazonaws.com/mnist/",
}
# DomainBed's list of 9,431 DomainNet images that appear twice; fetched, not copied here.
DOMAINNET_DUPLICATES_URL = ("https://raw.githubusercontent.com/facebookresearch/DomainBed/main/"
                            "domainbed/misc/domain_net_duplicates.txt")


def fetch(url: str, dest: str) -> None:
    """Download ``url`` to ``dest`` (via ``dest.part``, so an interrupted file is never used).

    Raises:
        OSError / urllib.error.URLError: network failure; ValueError: an HTML page came back
        where a file was expected (dead or quota-limited Google Drive link).
    """
    request = urllib.request.Request(url, headers={"User-Agent": "fishr_tune"})
    partial = dest + ".part"
    with urllib.request.urlopen(request, timeout=60) as response:
        if "text/html" in response.headers.get("Content-Type", ""):
            raise ValueError("the server sent a web page, not the file (dead link or quota)")
        total = int(response.headers.get("Content-Length") or 0)
        done, reported = 0, 0
        with open(partial, "wb") as handle:
            while chunk := response.read(CHUNK):
                handle.write(chunk)
                done += len(chunk)
                if done - reported >= 64 * CHUNK:
                    reported = done
                    of = f" of {total / CHUNK:.0f}" if total else ""
                    print(f"  {done / CHUNK:.0f}{of} MiB", file=sys.stderr, flush=True)
    os.replace(partial, dest)


def download_source(source: Source, folder: str, name: str, data_dir: str) -> str:
    """Fetch ``source`` into ``folder`` (kept if already there); returns its path.

    Raises:
        UserError: every mirror failed; the message says where to get it by hand.
    """
    dest = os.path.join(folder, source.filename)
    if os.path.isfile(dest):
        return dest
    reasons = []
    for url in source.urls:
        print(f"downloading {url}", file=sys.stderr, flush=True)
        try:
            fetch(url, dest)
            return dest
        except (OSError, ValueError, urllib.error.URLError) as exc:
            reasons.append(one_line(str(exc)) or type(exc).__name__)
    raise UserError(f"could not download {source.filename} ({reasons[-1]}): get it by hand "
                    f"from {source.urls[0]} or {HOMEPAGES[name]}, then run "
                    f"{download_command(name, data_dir)} --from-archive PATH")


def match_archives(sources, paths, name: str) -> list[str]:
    """Pair each source with a user-given file (by name; a lone file fits a lone source).

    ``paths`` may name files or folders holding them.
    """
    files = []
    for path in paths:
        if os.path.isdir(path):
            files.extend(os.path.join(path, entry) for entry in sorted(os.listdir(path)))
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise UserError(f"--from-archive {path} does not exist: pass the downloaded file")
    if len(sources) == 1 and len(paths) == 1 and os.path.isfile(paths[0]):
        return [paths[0]]
    by_name = {os.path.basename(path): path for path in files}
    matched, missing = [], []
    for source in sources:
        plain = source.filename[:-3] if source.filename.endswith(".gz") else None
        found = by_name.get(source.filename) or (plain and by_name.get(plain))
        (matched if found else missing).append(found or source.filename)
    if missing:
        raise UserError(f"--from-archive lacks {', '.join(missing)} for {name}: pass those "
                        "files (or a folder holding them) under these names")
    return matched


def _present(spec: DatasetSpec, data_dir: str) -> list[str]:
    target = os.path.join(data_dir, spec.folder)
    return [env for env in spec.env_folders if os.path.isdir(os.path.join(target, env))]


def _sources_key(spec: DatasetSpec) -> str:
    if spec.kind == "mnist":
        return "MNIST"
    if spec.name not in SOURCES:
        raise UserError(f"{spec.name} has no download: lay it out as D/<env>/<class>/<image> "
                        "and use folder:D")
    return spec.name


def _install(spec: DatasetSpec, key: str, files, data_dir: str, staging: str) -> None:
    if key == "MNIST":
        archives.install_mnist(files, data_dir)
    elif key == "TerraIncognita":
        images_dir, labels_dir = (os.path.join(staging, part) for part in ("images", "labels"))
        archives.extract_archive(files[0], images_dir)
        archives.extract_archive(files[1], labels_dir)
        stats = archives.layout_terra_incognita(images_dir, labels_dir,
                                                os.path.join(data_dir, spec.folder))
        print(f"TerraIncognita: {stats['copied']} images copied, {stats['missing']} listed "
              f"but absent; per location {stats['per_location']}", file=sys.stderr)
    else:
        for path in files:
            archives.extract_archive(path, staging)
        archives.install_env_folders(staging, os.path.join(data_dir, spec.folder),
                                     spec.env_folders, ", ".join(files))


def _remove_domainnet_duplicates(data_dir: str, list_file: str | None, staging: str) -> None:
    if list_file is None:
        list_file = os.path.join(staging, "domain_net_duplicates.txt")
        try:
            fetch(DOMAINNET_DUPLICATES_URL, list_file)
        except (OSError, ValueError, urllib.error.URLError) as exc:
            print(f"warning: DomainNet duplicates not removed ({one_line(str(exc))}): get "
                  f"{DOMAINNET_DUPLICATES_URL} and run {download_command('DomainNet', data_dir)}"
                  " --duplicates-list PATH", file=sys.stderr)
            return
    removed = archives.remove_listed_files(os.path.join(data_dir, "domain_net"), list_file)
    print(f"DomainNet: removed {removed} duplicate images", file=sys.stderr)


def install_dataset(name: str, data_dir: str, from_archive=None, duplicates_list=None,
                    keep_archives: bool = False) -> None:
    """Download (or take ``from_archive``) and lay out dataset ``name`` under ``data_dir``.

    Raises:
        UserError: unknown or non-downloadable dataset, failed download, bad archive.
    """
    spec = get_spec(name)
    if spec.kind == "embedded":
        print(f"{spec.name} is embedded (scikit-learn's digits): nothing to download",
              file=sys.stderr)
        return
    key = _sources_key(spec)
    data_dir = os.path.abspath(os.path.expanduser(data_dir))
    os.makedirs(data_dir, exist_ok=True)
    sources = SOURCES[key]
    if key == "MNIST":
        done = all(find_idx_file(mnist_raw_dir(data_dir), stem) for stem in MNIST_FILES)
    else:
        present = _present(spec, data_dir)
        done = len(present) == len(spec.env_folders)
        # DomainNet comes as one zip per domain: fetch only the missing domains.
        sources = tuple(s for s in sources if not s.provides or set(s.provides) - set(present))
    staging = archives.staging_dir(data_dir, key)
    downloads = os.path.join(data_dir, ".downloads")
    try:
        if done and not from_archive:
            print(f"{spec.name} is already in {data_dir}", file=sys.stderr)
        else:
            if from_archive:
                files = match_archives(sources, from_archive, key)
            else:
                os.makedirs(downloads, exist_ok=True)
                files = [download_source(s, downloads, key, data_dir) for s in sources]
            _install(spec, key, files, data_dir, staging)
            if not from_archive and not keep_archives:
                for path in files:
                    os.remove(path)
            print(f"{spec.name} is ready in {data_dir}", file=sys.stderr)
        if key == "DomainNet" and (duplicates_list or not done):
            _remove_domainnet_duplicates(data_dir, duplicates_list, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main(argv=None) -> int:
    """Entry point: bad input or a failed download is one line on stderr and exit status 2."""
    parser = CLIParser(prog="python -m fishr_tune.download",
                       description="Fetch a dataset into DomainBed's layout.")
    parser.add_argument("dataset", help="VLCS, PACS, OfficeHome, TerraIncognita, DomainNet, "
                        "ColoredMNIST or RotatedMNIST (case-insensitive)")
    parser.add_argument("--data-dir", required=True, help="data root (the trainer's --data-dir)")
    parser.add_argument("--from-archive", nargs="+", metavar="PATH",
                        help="archives downloaded by hand (files or a folder): no network used")
    parser.add_argument("--duplicates-list", metavar="PATH",
                        help="DomainNet: DomainBed's domain_net_duplicates.txt, if fetched by hand")
    parser.add_argument("--keep-archives", action="store_true",
                        help="keep downloaded archives in DATA_DIR/.downloads")

    def install() -> int:
        args = parser.parse_args(argv)
        install_dataset(args.dataset, args.data_dir, args.from_archive, args.duplicates_list,
                        args.keep_archives)
        return 0

    return exit_status(install)


if __name__ == "__main__":
    sys.exit(main())
