"""Image-folder datasets on tiny PNG/JPEG trees in DomainBed's layout."""

import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from fishr_tune.datasets import ImageEnv, ImagePool, build_environments, get_spec, load_raw
from fishr_tune.datasets import split_environments
from fishr_tune.errors import UserError

PACS_ENVS = ("art_painting", "cartoon", "photo", "sketch")


def save_image(path, size=(40, 30), mode="RGB", seed=0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = np.random.RandomState(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": None}[mode]
    shape = (size[1], size[0]) if channels is None else (size[1], size[0], channels)
    Image.fromarray(rng.randint(0, 256, size=shape).astype(np.uint8), mode=None).save(path)


def make_tree(root, envs, classes=("dog", "giraffe"), per_class=3):
    """root/<env>/<class>/img<k>.{png,jpg}: mixed formats, sizes and colour modes."""
    for e, env in enumerate(envs):
        for c, name in enumerate(classes):
            for k in range(per_class):
                ext = ".png" if k % 2 == 0 else ".JPG"
                mode = ("RGB", "L", "RGBA")[k % 3] if ext == ".png" else "RGB"
                save_image(os.path.join(root, env, name, f"img{k}{ext}"), size=(30 + 7 * k, 40),
                           mode=mode, seed=100 * e + 10 * c + k)
    return root


@pytest.fixture
def pacs_dir(tmp_path):
    make_tree(str(tmp_path / "PACS"), PACS_ENVS)
    return str(tmp_path)


def test_pacs_scan_classes_and_order(pacs_dir):
    pool = load_raw(get_spec("pacs"), pacs_dir)
    assert isinstance(pool, ImagePool)
    assert pool.env_folders == PACS_ENVS and pool.classes == ("dog", "giraffe")
    assert len(pool.samples) == 4
    for env, samples in zip(PACS_ENVS, pool.samples):
        # ImageFolder order: classes sorted, then file names sorted; index = class position.
        assert [path for path, _ in samples] == [
            os.path.join(env, c, f"img{k}{'.png' if k % 2 == 0 else '.JPG'}")
            for c in ("dog", "giraffe") for k in range(3)]
        assert [label for _, label in samples] == [0, 0, 0, 1, 1, 1]
    assert pickle.loads(pickle.dumps(pool)) == pool


def test_transforms_shapes_and_augmentation_only_on_train_envs(pacs_dir):
    spec = get_spec("PACS")
    pool = load_raw(spec, pacs_dir)
    envs = build_environments(spec, pool, 0, [1], {"data_augmentation": True})
    assert all(isinstance(env, ImageEnv) for env in envs) and len(envs) == 4
    for env in envs:
        x, y = env[2]  # an RGBA PNG
        assert x.shape == (3, 224, 224) and x.dtype == torch.float32 and y == 0
        assert env.targets == [0, 0, 0, 1, 1, 1]
    # The test env uses the deterministic eval transform; a training env is augmented.
    assert torch.equal(envs[1][0][0], envs[1][0][0])
    torch.manual_seed(0)
    assert not torch.equal(envs[0][0][0], envs[0][0][0])
    plain = build_environments(spec, pool, 0, [1], {"data_augmentation": False})
    assert torch.equal(plain[0][0][0], plain[0][0][0])
    # Eval transform = resize to 224x224 and ImageNet normalisation.
    image = Image.open(os.path.join(pacs_dir, "PACS", "cartoon", "dog", "img0.png"))
    resized = np.asarray(image.convert("RGB").resize((224, 224), Image.BILINEAR), np.float32)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    expected = torch.from_numpy(((resized / 255 - mean) / std).transpose(2, 0, 1)).float()
    assert torch.allclose(envs[1][0][0], expected, atol=0.05)


def test_image_env_split_pickle_and_loader(pacs_dir):
    spec = get_spec("PACS")
    envs = build_environments(spec, load_raw(spec, pacs_dir), 0, [0], {})
    (split_in, split_out), *_ = split_environments(envs, 0.34, trial_seed=0)
    assert isinstance(split_in, ImageEnv) and isinstance(split_out, ImageEnv)
    assert len(split_out) == 2 and len(split_in) == 4
    assert not {p for p, _ in split_in.samples} & {p for p, _ in split_out.samples}
    clone = pickle.loads(pickle.dumps(split_in))
    assert clone.samples == split_in.samples
    x, y = next(iter(torch.utils.data.DataLoader(split_in, batch_size=4)))
    assert x.shape == (4, 3, 224, 224) and y.dtype == torch.int64


def test_folder_dataset_and_missing_classes(tmp_path):
    root = str(tmp_path / "mine")
    make_tree(root, ("hospital_a", "hospital_b", "hospital_c"), classes=("neg", "pos", "unk"),
              per_class=1)
    # An env without one class keeps the same indices for the others (by name, not position).
    for name in os.listdir(os.path.join(root, "hospital_a", "neg")):
        os.remove(os.path.join(root, "hospital_a", "neg", name))
    os.rmdir(os.path.join(root, "hospital_a", "neg"))
    spec = get_spec(f"folder:{root}")
    assert spec.num_classes == 3 and spec.environments == ("hospital_a", "hospital_b",
                                                           "hospital_c")
    pool = load_raw(spec, None)
    assert [label for _, label in pool.samples[0]] == [1, 2]
    assert [label for _, label in pool.samples[2]] == [0, 1, 2]
    envs = build_environments(spec, pool, 0, [0], {"data_augmentation": False})
    assert envs[0][0][0].shape == (3, 224, 224)


def test_corrupt_image_error_names_file(pacs_dir):
    bad = os.path.join(pacs_dir, "PACS", "photo", "giraffe", "img1.JPG")
    with open(bad, "wb") as handle:
        handle.write(b"this is not a jpeg")
    spec = get_spec("PACS")
    envs = build_environments(spec, load_raw(spec, pacs_dir), 0, [0], {})
    with pytest.raises(UserError) as info:
        envs[2][4]
    assert bad in str(info.value) and "\n" not in str(info.value)


def test_truncated_jpeg_still_loads(pacs_dir):
    path = os.path.join(pacs_dir, "PACS", "sketch", "dog", "img1.JPG")
    size = os.path.getsize(path)
    with open(path, "r+b") as handle:
        handle.truncate(size - 200)
    spec = get_spec("PACS")
    envs = build_environments(spec, load_raw(spec, pacs_dir), 0, [3], {})
    assert envs[3][1][0].shape == (3, 224, 224)


def test_wrong_env_folders(pacs_dir):
    os.rename(os.path.join(pacs_dir, "PACS", "art_painting"), os.path.join(pacs_dir, "PACS", "art"))
    with pytest.raises(UserError) as info:
        load_raw(get_spec("PACS"), pacs_dir)
    message = str(info.value)
    assert "'art_painting'" in message and "'art'" in message
    assert "python -m fishr_tune.download PACS" in message


def test_missing_dataset_dir_and_data_dir(tmp_path):
    with pytest.raises(UserError) as info:
        load_raw(get_spec("office_home"), str(tmp_path))
    assert os.path.join(str(tmp_path), "office_home") in str(info.value)
    assert "python -m fishr_tune.download OfficeHome" in str(info.value)
    with pytest.raises(UserError, match="--data-dir"):
        load_raw(get_spec("VLCS"), None)


def test_unknown_class_or_too_many_classes_or_empty_env(pacs_dir):
    root = os.path.join(pacs_dir, "PACS")
    save_image(os.path.join(root, "cartoon", "horse", "a.png"))
    with pytest.raises(UserError, match="'horse'"):
        load_raw(get_spec("PACS"), pacs_dir)
    for name in ("horse", "a", "b", "c", "d", "e", "f"):
        save_image(os.path.join(root, "sketch", name, "a.png"))
    with pytest.raises(UserError, match="9 class folders but PACS has 7"):
        load_raw(get_spec("PACS"), pacs_dir)


def test_env_without_images(tmp_path):
    root = str(tmp_path / "VLCS")
    make_tree(root, ("Caltech101", "LabelMe", "SUN09", "VOC2007"), per_class=1)
    for name in os.listdir(os.path.join(root, "SUN09")):
        for image in os.listdir(os.path.join(root, "SUN09", name)):
            os.rename(os.path.join(root, "SUN09", name, image),
                      os.path.join(root, "SUN09", name, image + ".txt"))
    with pytest.raises(UserError, match="SUN09 holds no images"):
        load_raw(get_spec("VLCS"), str(tmp_path))
