"""Offline half of the download command: extract archives and arrange DomainBed's layouts.

Every function takes local paths, so the layouts are tested on small archives and a user who
fetched an archive by hand runs the same code (``--from-archive``). Extraction happens in a
staging folder inside ``data_dir`` (same file system, so moving folders is a cheap rename).
"""

from __future__ import annotations

import collections
import gzip
import json
import os
import shutil
import tarfile
import zipfile

from fishr_tune.datasets.locations import mnist_raw_dir
from fishr_tune.datasets.mnist import MNIST_FILES, read_idx
from fishr_tune.errors import UserError

# DomainBed's TerraIncognita: 4 camera locations and 10 categories of Caltech Camera Traps.
TERRA_LOCATIONS = ("38", "46", "100", "43")
TERRA_CATEGORIES = ("bird", "bobcat", "cat", "coyote", "dog", "empty", "opossum", "rabbit",
                    "raccoon", "squirrel")


def _redownload(archive: str, exc: Exception) -> UserError:
    reason = " ".join(str(exc).split()) or type(exc).__name__
    return UserError(f"cannot extract {archive} ({reason}): the file is incomplete or not an "
                     "archive; download it again")


def _extract_zip(archive: str, dest: str) -> None:
    with zipfile.ZipFile(archive) as handle:
        top = os.path.realpath(dest)
        for member in handle.namelist():
            # Refuse members that would land outside dest ("zip slip").
            target = os.path.realpath(os.path.join(dest, member))
            if target != top and not target.startswith(top + os.sep):
                raise UserError(f"{archive} holds an unsafe path {member!r}: not extracting it")
        handle.extractall(dest)


def extract_archive(archive: str, dest: str) -> None:
    """Extract a zip, a (compressed) tar or a single gzipped file into ``dest``.

    The format is read from the file's content, not its name, since hand-downloaded files are
    often renamed. A lone ``X.gz`` becomes ``dest/X``.

    Raises:
        UserError: a missing, damaged or unsupported file, or an unsafe member path.
    """
    if not os.path.isfile(archive):
        raise UserError(f"archive {archive} does not exist: pass the path of the downloaded file")
    os.makedirs(dest, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, dest)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as handle:
                # The "data" filter refuses absolute paths, links out of dest and device files.
                try:
                    handle.extractall(dest, filter="data")
                except tarfile.FilterError as exc:
                    raise UserError(f"{archive} holds an unsafe path ({exc}): not extracting "
                                    "it") from exc
        else:
            with open(archive, "rb") as probe:
                magic = probe.read(2)
            if magic != b"\x1f\x8b":
                raise UserError(f"{archive} is not a zip, tar or gzip file: download it again")
            name = os.path.basename(archive)
            with gzip.open(archive, "rb") as src, \
                    open(os.path.join(dest, name[:-3] if name.endswith(".gz") else name),
                         "wb") as dst:
                shutil.copyfileobj(src, dst)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise _redownload(archive, exc) from exc


def find_dir(root: str, name: str) -> str | None:
    """The shallowest folder called ``name`` under ``root`` (breadth-first), or None."""
    queue = collections.deque([root])
    while queue:
        folder = queue.popleft()
        try:
            entries = sorted((e for e in os.scandir(folder) if e.is_dir()), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.name == name:
                return entry.path
        queue.extend(e.path for e in entries if not e.name.startswith("__MACOSX"))
    return None


def staging_dir(data_dir: str, name: str) -> str:
    """A fresh scratch folder inside ``data_dir`` (removed by the caller when done)."""
    path = os.path.join(data_dir, f".staging-{name}")
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def install_env_folders(staging: str, target: str, env_folders, label: str) -> list[str]:
    """Move each environment folder found in ``staging`` to ``target/<env>``.

    Environment folders already in ``target`` are kept (a rerun completes a partial install).

    Args:
        staging: where the archives were extracted.
        target: the dataset folder (e.g. ``<data_dir>/PACS``).
        env_folders: the registry's environment folder names.
        label: what was extracted (for error messages).

    Returns:
        The environment folders moved.

    Raises:
        UserError: an environment folder is neither in ``target`` nor in the archive.
    """
    os.makedirs(target, exist_ok=True)
    moved = []
    for env in env_folders:
        if os.path.isdir(os.path.join(target, env)):
            continue
        found = find_dir(staging, env)
        if found is None:
            raise UserError(f"{label} contains no folder {env!r}: expected the release with "
                            f"folders {', '.join(map(repr, env_folders))}")
        shutil.move(found, os.path.join(target, env))
        moved.append(env)
    return moved


def remove_listed_files(root: str, list_file: str) -> int:
    """Delete the files listed (one path relative to ``root`` a line); returns how many.

    Used for DomainNet's list of duplicate images. Missing files are skipped (a rerun is
    harmless); entries that would leave ``root`` are ignored.
    """
    top = os.path.realpath(root)
    removed = 0
    with open(list_file, encoding="utf-8") as handle:
        for line in handle:
            relative = line.strip()
            if not relative:
                continue
            path = os.path.realpath(os.path.join(root, relative))
            if path.startswith(top + os.sep) and os.path.isfile(path):
                os.remove(path)
                removed += 1
    return removed


def _find_coco_json(folder: str) -> dict:
    for dirpath, _, filenames in sorted(os.walk(folder)):
        for name in sorted(filenames):
            if name.endswith(".json"):
                with open(os.path.join(dirpath, name), encoding="utf-8") as handle:
                    data = json.load(handle)
                if isinstance(data, dict) and {"images", "annotations", "categories"} <= set(data):
                    return data
    raise UserError(f"no Caltech Camera Traps annotation .json found in {folder}: pass the "
                    "caltech_camera_traps.json.zip archive")


def _find_image_root(folder: str, relative: str) -> str | None:
    # The images archive nests its files under a folder whose name changed across releases.
    for dirpath, _, _ in os.walk(folder):
        if os.path.isfile(os.path.join(dirpath, relative)):
            return dirpath
    return None


def layout_terra_incognita(images_dir: str, labels_dir: str, target: str) -> dict:
    """Arrange extracted Caltech Camera Traps files as DomainBed's TerraIncognita.

    Copies each image of locations 38, 46, 100 and 43 to ``target/location_<L>/<category>/``
    once per annotation in one of the 10 categories (DomainBed's rule; its quadratic
    annotation scan is replaced by an index on image ids). Images listed in the json but absent
    from the images archive are counted and skipped.

    Args:
        images_dir: where the images archive was extracted.
        labels_dir: where the annotation archive was extracted.
        target: the ``terra_incognita`` folder.

    Returns:
        Counts: ``{"copied": n, "missing": m, "per_location": {L: n_L}}``.
    """
    data = _find_coco_json(labels_dir)
    categories = {item["id"]: item["name"] for item in data["categories"]}
    by_image = collections.defaultdict(list)
    for annotation in data["annotations"]:
        by_image[annotation["image_id"]].append(categories.get(annotation["category_id"]))
    wanted = [image for image in data["images"]
              if str(image.get("location")) in TERRA_LOCATIONS]
    image_root = next((root for root in (_find_image_root(images_dir, image["file_name"])
                                         for image in wanted[:50]) if root), None)
    if wanted and image_root is None:
        raise UserError(f"none of the TerraIncognita images listed in the annotations is in "
                        f"{images_dir}: pass the eccv_18_all_images_sm.tar.gz archive")
    stats = {"copied": 0, "missing": 0, "per_location": collections.Counter()}
    for image in wanted:
        source = os.path.join(image_root, image["file_name"])
        names = [name for name in by_image.get(image["id"], []) if name in TERRA_CATEGORIES]
        if names and not os.path.isfile(source):
            stats["missing"] += 1
            continue
        location = f"location_{image['location']}"
        for name in names:
            folder = os.path.join(target, location, name)
            os.makedirs(folder, exist_ok=True)
            shutil.copyfile(source, os.path.join(folder, os.path.basename(image["file_name"])))
            stats["copied"] += 1
            stats["per_location"][location] += 1
    stats["per_location"] = dict(stats["per_location"])
    return stats


def install_mnist(files, data_dir: str) -> list[str]:
    """Put MNIST's 4 IDX files in torchvision's layout ``data_dir/MNIST/raw`` (decompressed).

    Args:
        files: paths of the IDX files, plain or ``.gz``, named as on MNIST's site.
        data_dir: the data root.

    Returns:
        The installed paths.

    Raises:
        UserError: a file is missing from ``files`` or is not a valid IDX file.
    """
    raw_dir = mnist_raw_dir(data_dir)
    os.makedirs(raw_dir, exist_ok=True)
    by_name = {os.path.basename(path): path for path in files}
    installed = []
    for stem in MNIST_FILES:
        source = by_name.get(stem) or by_name.get(stem + ".gz")
        if source is None:
            raise UserError(f"MNIST file {stem}.gz is missing: pass all of "
                            f"{', '.join(name + '.gz' for name in MNIST_FILES)}")
        read_idx(source, 3 if "images" in stem else 1)  # validate before installing
        destination = os.path.join(raw_dir, stem)
        if source.endswith(".gz"):
            with gzip.open(source, "rb") as src, open(destination, "wb") as dst:
                shutil.copyfileobj(src, dst)
        elif os.path.realpath(source) != os.path.realpath(destination):
            shutil.copyfile(source, destination)
        installed.append(destination)
    return installed
