"""Image-folder datasets: ``<root>/<env>/<class>/<image>`` (DomainBed's on-disk layout).

``scan_image_folders`` does the seed-independent part once (lists every image of every
environment, picklable; a sweep's worker process scans once and keeps it); ``ImageEnv`` loads and
transforms images lazily. Sample order follows torchvision's ImageFolder (sorted classes, sorted
``os.walk``, sorted file names), so DomainBed's in/out split picks the same files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from PIL import Image, ImageFile
from torch.utils.data import Dataset

from fishr_tune.datasets.locations import dataset_root
from fishr_tune.datasets.registry import (IMAGE_EXTENSIONS, DatasetSpec, _subdirs,
                                          download_command)
from fishr_tune.errors import UserError

# DomainBed loads truncated files (a few exist in the public releases) instead of failing.
ImageFile.LOAD_TRUNCATED_IMAGES = True


@dataclass(frozen=True)
class ImagePool:
    """Every image of an image-folder dataset, per environment (no pixels loaded).

    Attributes:
        root: the dataset folder.
        env_folders: environment folder names, in the spec's environment order.
        classes: class folder names; the class index is the position here.
        samples: per environment, a tuple of (path relative to ``root``, class index).
    """

    root: str
    env_folders: tuple[str, ...]
    classes: tuple[str, ...]
    samples: tuple[tuple[tuple[str, int], ...], ...]


class ImageEnv(Dataset):
    """One environment of images: ``(transform(RGB image), class index)`` per item.

    Args:
        root: folder the sample paths are relative to.
        samples: (relative path, class index) pairs.
        transform: applied to the RGB PIL image.
    """

    def __init__(self, root: str, samples, transform):
        self.root = root
        self.samples = list(samples)
        self.transform = transform

    @property
    def targets(self) -> list[int]:
        """Class index of every item (class balancing without loading images)."""
        return [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index):
        relative, label = self.samples[index]
        path = os.path.join(self.root, relative)
        try:
            with open(path, "rb") as handle:
                image = Image.open(handle).convert("RGB")
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            # One line naming the file: a damaged image otherwise kills a long trial obscurely.
            reason = " ".join(str(exc).split())
            raise UserError(f"cannot read image {path} ({reason}): replace or delete this "
                            "file") from exc
        return self.transform(image), label

    def subset(self, keys) -> "ImageEnv":
        """A new ImageEnv of the items ``keys``, in that order, with the same transform."""
        return ImageEnv(self.root, [self.samples[k] for k in keys], self.transform)


def _list_images(class_dir: str, root: str) -> list[str]:
    # torchvision's ImageFolder order: sorted walk, sorted names, extension case-insensitive.
    # Hidden files (macOS "._x.jpg" resource forks) are skipped: they are never real images.
    found = []
    for dirpath, _, filenames in sorted(os.walk(class_dir, followlinks=True)):
        for name in sorted(filenames):
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                found.append(os.path.relpath(os.path.join(dirpath, name), root))
    return found


def _check_env_folders(spec: DatasetSpec, root: str, data_dir: str | None) -> None:
    present = _subdirs(root)
    missing = [env for env in spec.env_folders if env not in present]
    if missing:
        # DomainBed pairs sorted folders with its labels and fails with a KeyError (DB#145).
        raise UserError(f"{root} lacks environment folder(s) {', '.join(map(repr, missing))} "
                        f"(found: {', '.join(map(repr, present)) or 'none'}): {spec.name} needs "
                        f"{', '.join(map(repr, spec.env_folders))}; rename the folders or get "
                        f"the data with {download_command(spec.name, data_dir)}")


def scan_image_folders(spec: DatasetSpec, data_dir: str | None) -> ImagePool:
    """List the images of every environment of ``spec`` (DomainBed's class rule).

    Classes are the sorted class folders of the last environment (DomainBed takes the class
    count from there); other environments map class folders by name, so an environment that
    lacks a class keeps the same indices for the others (where DomainBed's per-env ImageFolder
    would shift them).

    Raises:
        UserError: missing folders, more class folders than the spec's classes, a class folder
            unknown to the last environment, or an environment without images.
    """
    root = dataset_root(spec, data_dir)
    _check_env_folders(spec, root, data_dir)
    last_env = os.path.join(root, spec.env_folders[-1])
    classes = tuple(_subdirs(last_env))
    # Fewer classes than the release is allowed (a subset for quick runs: indices stay below
    # the model's output size); more would make labels overflow the classifier.
    if len(classes) > spec.num_classes:
        raise UserError(f"{last_env} has {len(classes)} class folders but {spec.name} has "
                        f"{spec.num_classes} classes: use the official release "
                        f"({download_command(spec.name, data_dir)}) or folder:{root}")
    index = {name: k for k, name in enumerate(classes)}
    samples = []
    for env in spec.env_folders:
        env_dir = os.path.join(root, env)
        env_classes = _subdirs(env_dir)
        unknown = [name for name in env_classes if name not in index]
        if unknown:
            raise UserError(f"{env_dir} has class folder(s) {', '.join(map(repr, unknown))} "
                            f"that {last_env} lacks: all environments must share class names")
        env_samples = tuple((path, index[name]) for name in env_classes
                            for path in _list_images(os.path.join(env_dir, name), root))
        if not env_samples:
            raise UserError(f"{env_dir} holds no images ({', '.join(IMAGE_EXTENSIONS)}) in "
                            "<class>/ subfolders: lay it out as <env>/<class>/<image>")
        samples.append(env_samples)
    return ImagePool(root=root, env_folders=tuple(spec.env_folders), classes=classes,
                     samples=tuple(samples))
