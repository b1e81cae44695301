"""Download command: extraction and layouts on small archives built here (no network)."""

import gzip
import io
import json
import os
import shutil
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

from fishr_tune import download
from fishr_tune.datasets import archives, get_spec, load_raw
from fishr_tune.errors import UserError


def png_bytes(seed=0):
    buffer = io.BytesIO()
    pixels = np.random.RandomState(seed).randint(0, 256, (6, 5, 3)).astype(np.uint8)
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def make_zip(path, members):
    with zipfile.ZipFile(path, "w") as handle:
        for name, data in members.items():
            handle.writestr(name, data)
    return str(path)


def make_tar(path, members, mode="w:gz"):
    with tarfile.open(path, mode) as handle:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            handle.addfile(info, io.BytesIO(data))
    return str(path)


def tree(prefix, envs, classes=("dog", "person"), per_class=2):
    return {f"{prefix}{env}/{name}/{k}.png": png_bytes(k) for env in envs for name in classes
            for k in range(per_class)}


def run_cli(capsys, *argv):
    code = download.main(list(argv))
    return code, capsys.readouterr().err


# ---- extraction -------------------------------------------------------------------------------

def test_extract_zip_tar_and_gz(tmp_path):
    archives.extract_archive(make_zip(tmp_path / "a.zip", {"x/y.txt": b"zip"}), str(tmp_path / "z"))
    assert (tmp_path / "z" / "x" / "y.txt").read_bytes() == b"zip"
    archives.extract_archive(make_tar(tmp_path / "renamed.bin", {"t/u.txt": b"tar"}),
                             str(tmp_path / "t"))
    assert (tmp_path / "t" / "t" / "u.txt").read_bytes() == b"tar"
    with gzip.open(tmp_path / "f.idx.gz", "wb") as handle:
        handle.write(b"gz")
    archives.extract_archive(str(tmp_path / "f.idx.gz"), str(tmp_path / "g"))
    assert (tmp_path / "g" / "f.idx").read_bytes() == b"gz"


def test_extract_rejects_bad_and_unsafe_archives(tmp_path):
    (tmp_path / "junk.zip").write_bytes(b"not an archive")
    with pytest.raises(UserError, match="not a zip, tar or gzip"):
        archives.extract_archive(str(tmp_path / "junk.zip"), str(tmp_path / "out"))
    good = make_zip(tmp_path / "cut.zip", {"a.txt": b"x" * 5000})
    with open(good, "r+b") as handle:
        handle.truncate(100)
    with pytest.raises(UserError, match="download it again"):
        archives.extract_archive(good, str(tmp_path / "out"))
    slip = make_zip(tmp_path / "slip.zip", {"../evil.txt": b"x"})
    with pytest.raises(UserError, match="unsafe path"):
        archives.extract_archive(slip, str(tmp_path / "out"))
    assert not (tmp_path / "evil.txt").exists()
    tar_slip = make_tar(tmp_path / "slip.tar.gz", {"../evil.txt": b"x"})
    with pytest.raises(UserError, match="unsafe path"):
        archives.extract_archive(tar_slip, str(tmp_path / "out"))
    with pytest.raises(UserError, match="does not exist"):
        archives.extract_archive(str(tmp_path / "absent.zip"), str(tmp_path / "out"))


# ---- image datasets from archives --------------------------------------------------------------

def test_pacs_from_archive_then_loadable_and_idempotent(tmp_path, capsys):
    envs = get_spec("PACS").env_folders
    members = tree("kfold/", envs)
    members["__MACOSX/kfold/._x"] = b"junk"
    archive = make_zip(tmp_path / "PACS.zip", members)
    data = str(tmp_path / "data")
    code, err = run_cli(capsys, "pacs", "--data-dir", data, "--from-archive", archive)
    assert code == 0, err
    assert sorted(os.listdir(os.path.join(data, "PACS"))) == sorted(envs)
    assert sorted(os.listdir(data)) == ["PACS"]  # staging removed, the user's archive kept
    assert os.path.isfile(archive)
    pool = load_raw(get_spec("PACS"), data)
    assert pool.classes == ("dog", "person") and [len(s) for s in pool.samples] == [4] * 4
    code, err = run_cli(capsys, "PACS", "--data-dir", data)  # no network needed: present
    assert code == 0 and "already" in err


def test_vlcs_tar_and_officehome_with_space(tmp_path, capsys):
    data = str(tmp_path / "data")
    vlcs = make_tar(tmp_path / "VLCS.tar.gz", tree("VLCS/", get_spec("VLCS").env_folders))
    assert run_cli(capsys, "VLCS", "--data-dir", data, "--from-archive", vlcs)[0] == 0
    office = get_spec("OfficeHome")
    members = tree("OfficeHomeDataset_10072016/", office.env_folders, classes=("Alarm_Clock",))
    members["OfficeHomeDataset_10072016/ImageInfo.csv"] = b"a,b"
    archive = make_zip(tmp_path / "office_home.zip", members)
    assert run_cli(capsys, "office_home", "--data-dir", data, "--from-archive", archive)[0] == 0
    assert os.path.isdir(os.path.join(data, "office_home", "Real World", "Alarm_Clock"))
    assert load_raw(get_spec("VLCS"), data).classes == ("dog", "person")
    assert len(load_raw(office, data).samples[3]) == 2


def test_wrong_archive_names_missing_folder(tmp_path, capsys):
    archive = make_zip(tmp_path / "PACS.zip", tree("kfold/", ("art", "cartoon")))
    code, err = run_cli(capsys, "PACS", "--data-dir", str(tmp_path / "d"), "--from-archive",
                        archive)
    assert code == 2 and "'art_painting'" in err and err.count("\n") == 1
    assert not os.path.exists(tmp_path / "d" / ".staging-PACS")


def test_domainnet_zips_and_duplicates(tmp_path, capsys):
    envs = get_spec("DomainNet").env_folders
    folder = tmp_path / "zips"
    folder.mkdir()
    for env in envs:
        make_zip(folder / f"{env}.zip", tree("", (env,), classes=("apple", "zebra")))
    dupes = tmp_path / "dupes.txt"
    dupes.write_text("clipart/apple/0.png\nreal/zebra/1.png\nreal/zebra/missing.png\n"
                     "../outside.png\n\n")
    data = str(tmp_path / "data")
    code, err = run_cli(capsys, "DomainNet", "--data-dir", data, "--from-archive", str(folder),
                        "--duplicates-list", str(dupes))
    assert code == 0, err
    assert "removed 2 duplicate" in err
    assert sorted(os.listdir(os.path.join(data, "domain_net"))) == sorted(envs)
    assert os.listdir(os.path.join(data, "domain_net", "clipart", "apple")) == ["1.png"]
    # A partial install fetches only what is missing: one zip suffices now.
    shutil.rmtree(os.path.join(data, "domain_net", "sketch"))
    code, err = run_cli(capsys, "domainnet", "--data-dir", data, "--from-archive",
                        str(folder / "sketch.zip"), "--duplicates-list", str(dupes))
    assert code == 0, err
    assert os.path.isdir(os.path.join(data, "domain_net", "sketch", "zebra"))


def test_missing_archive_for_multi_file_dataset(tmp_path, capsys):
    folder = tmp_path / "zips"
    folder.mkdir()
    make_zip(folder / "clipart.zip", tree("", ("clipart",)))
    code, err = run_cli(capsys, "DomainNet", "--data-dir", str(tmp_path / "d"), "--from-archive",
                        str(folder))
    assert code == 2 and "infograph.zip" in err


def test_terra_incognita_layout(tmp_path, capsys):
    names = {f"img{k}.jpg": png_bytes(k) for k in range(6)}
    images = make_tar(tmp_path / "eccv_18_all_images_sm.tar.gz",
                      {f"eccv_18_all_images_sm/{n}": d for n, d in names.items()})
    coco = {
        "categories": [{"id": 1, "name": "bobcat"}, {"id": 2, "name": "empty"},
                       {"id": 3, "name": "deer"}, {"id": 4, "name": "coyote"}],
        "images": [
            {"id": "a", "file_name": "img0.jpg", "location": "38"},
            {"id": "b", "file_name": "img1.jpg", "location": 46},  # ints accepted too
            {"id": "c", "file_name": "img2.jpg", "location": "100"},  # deer: not kept
            {"id": "d", "file_name": "img3.jpg", "location": "7"},  # location not kept
            {"id": "e", "file_name": "img4.jpg", "location": "43"},  # two labels: two copies
            {"id": "f", "file_name": "gone.jpg", "location": "43"},  # not in the archive
        ],
        "annotations": [{"image_id": "a", "category_id": 1}, {"image_id": "b", "category_id": 2},
                        {"image_id": "c", "category_id": 3}, {"image_id": "d", "category_id": 1},
                        {"image_id": "e", "category_id": 1}, {"image_id": "e", "category_id": 4},
                        {"image_id": "f", "category_id": 4}],
    }
    labels = make_zip(tmp_path / "caltech_camera_traps.json.zip",
                      {"caltech_images_20210113.json": json.dumps(coco).encode()})
    data = str(tmp_path / "data")
    code, err = run_cli(capsys, "terra_incognita", "--data-dir", data, "--from-archive", images,
                        labels)
    assert code == 0, err
    root = os.path.join(data, "terra_incognita")
    found = sorted(os.path.relpath(os.path.join(d, f), root)
                   for d, _, files in os.walk(root) for f in files)
    assert found == ["location_38/bobcat/img0.jpg", "location_43/bobcat/img4.jpg",
                     "location_43/coyote/img4.jpg", "location_46/empty/img1.jpg"]
    assert "4 images copied, 1 listed but absent" in err


def test_mnist_install_from_gz_folder(tmp_path, capsys):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for prefix, n in (("train", 4), ("t10k", 2)):
        for kind, shape in (("images-idx3", (n, 28, 28)), ("labels-idx1", (n,))):
            header = bytes([0, 0, 8, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)
            with gzip.open(folder / f"{prefix}-{kind}-ubyte.gz", "wb") as handle:
                handle.write(header + bytes(int(np.prod(shape))))
    data = str(tmp_path / "data")
    code, err = run_cli(capsys, "RotatedMNIST", "--data-dir", data, "--from-archive", str(folder))
    assert code == 0, err
    assert sorted(os.listdir(os.path.join(data, "MNIST", "raw"))) == sorted(
        archives.MNIST_FILES)
    assert len(load_raw(get_spec("ColoredMNIST"), data).labels) == 6


# ---- network paths (local URLs only) -----------------------------------------------------------

def test_network_failure_is_one_line_with_manual_route(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(download.SOURCES, "PACS",
                        (download.Source("PACS.zip", ("http://127.0.0.1:9/PACS.zip",)),))
    code, err = run_cli(capsys, "PACS", "--data-dir", str(tmp_path / "d"))
    last = err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("error: could not download PACS.zip")
    assert "--from-archive PATH" in last and "http://127.0.0.1:9/PACS.zip" in last


def test_download_via_url_then_archive_removed(tmp_path, capsys, monkeypatch):
    archive = make_tar(tmp_path / "VLCS.tar.gz", tree("VLCS/", get_spec("VLCS").env_folders))
    monkeypatch.setitem(download.SOURCES, "VLCS",
                        (download.Source("VLCS.tar.gz", ("file://" + archive,)),))
    data = str(tmp_path / "data")
    code, err = run_cli(capsys, "vlcs", "--data-dir", data)
    assert code == 0, err
    assert "downloading file://" in err
    assert os.listdir(os.path.join(data, ".downloads")) == []
    assert len(load_raw(get_spec("VLCS"), data).samples) == 4


def test_html_page_instead_of_file_fails(tmp_path, capsys, monkeypatch):
    page = tmp_path / "quota.html"
    page.write_text("<html>Quota exceeded</html>")
    monkeypatch.setitem(download.SOURCES, "OfficeHome",
                        (download.Source("office_home.zip", ("file://" + str(page),)),))
    code, err = run_cli(capsys, "OfficeHome", "--data-dir", str(tmp_path / "d"))
    assert code == 2 and "web page" in err


def test_embedded_and_folder_names(tmp_path, capsys):
    code, err = run_cli(capsys, "colored_digits", "--data-dir", str(tmp_path))
    assert code == 0 and "nothing to download" in err
    (tmp_path / "x" / "a" / "c").mkdir(parents=True)
    (tmp_path / "x" / "b" / "c").mkdir(parents=True)
    code, err = run_cli(capsys, f"folder:{tmp_path / 'x'}", "--data-dir", str(tmp_path))
    assert code == 2 and "has no download" in err
    code, err = run_cli(capsys, "ImageNet", "--data-dir", str(tmp_path))
    assert code == 2 and "unknown dataset" in err
