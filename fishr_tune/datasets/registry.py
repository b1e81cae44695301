"""The dataset registry: ONE place that states each dataset's facts.

Everything else (hparam groups in ``search_spaces``, the trial loop, the sweep planner, analysis
tables) derives environments, shapes, classes, steps and checkpoint frequency from here.
Names are looked up case-insensitively, ignoring ``_`` and ``-`` (``officehome``, ``OfficeHome``
and ``office_home`` are the same dataset); records carry DomainBed's class name (``spec.name``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from fishr_tune.errors import UserError

FOLDER_PREFIX = "folder:"
IMAGE_SHAPE = (3, 224, 224)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                    ".pgm")


@dataclass(frozen=True)
class DatasetSpec:
    """Static facts about one dataset.

    Attributes:
        name: DomainBed's class name (``ColoredMNIST``, ``OfficeHome``), written into records.
        environments: environment labels, in DomainBed's order (env index i = position i).
        input_shape: (channels, height, width) of one input.
        num_classes: number of classes (for ``folder:`` datasets: read from disk).
        n_steps: DomainBed's default number of training steps.
        checkpoint_freq: DomainBed's default evaluation period in steps.
        hparams_group: which shared-hparam block applies: ``small`` (MNIST-like and the embedded
            digits), ``big`` (224x224 images) or ``domainnet`` (big, with DomainNet's batch size).
        kind: loader family: ``embedded`` (scikit-learn digits), ``mnist`` (IDX files) or
            ``images`` (``<root>/<env>/<class>/<image>`` folders).
        folder: for ``images``: the dataset's directory under ``--data-dir`` (or an absolute path
            for ``folder:`` datasets).
        env_folders: for ``images``: the environment folder names, aligned with ``environments``.
        aliases: extra accepted names (normalised).
    """

    name: str
    environments: tuple[str, ...]
    input_shape: tuple[int, int, int]
    num_classes: int
    n_steps: int
    checkpoint_freq: int
    hparams_group: str
    kind: str
    folder: str | None = None
    env_folders: tuple[str, ...] | None = None
    aliases: tuple[str, ...] = ()

    @property
    def num_environments(self) -> int:
        """Number of environments (domains)."""
        return len(self.environments)


def _images(name, envs, folder, env_folders, num_classes, ckpt=300, group="big", aliases=()):
    return DatasetSpec(
        name=name, environments=tuple(envs), input_shape=IMAGE_SHAPE, num_classes=num_classes,
        n_steps=5001, checkpoint_freq=ckpt, hparams_group=group, kind="images", folder=folder,
        env_folders=tuple(env_folders), aliases=tuple(aliases))


# DomainBed's table order; the embedded datasets first since they are our default.
_SPECS = (
    DatasetSpec("ColoredDigits", ("+90%", "+80%", "-90%"), (2, 8, 8), 2, 1001, 100, "small",
                "embedded", aliases=("colored_digits",)),
    DatasetSpec("RotatedDigits", ("0", "15", "30", "45", "60", "75"), (1, 8, 8), 10, 1001, 100,
                "small", "embedded", aliases=("rotated_digits",)),
    DatasetSpec("ColoredMNIST", ("+90%", "+80%", "-90%"), (2, 28, 28), 2, 5001, 100, "small",
                "mnist", aliases=("cmnist",)),
    DatasetSpec("RotatedMNIST", ("0", "15", "30", "45", "60", "75"), (1, 28, 28), 10, 5001, 100,
                "small", "mnist", aliases=("rmnist",)),
    _images("VLCS", ("C", "L", "S", "V"), "VLCS", ("Caltech101", "LabelMe", "SUN09", "VOC2007"), 5),
    _images("PACS", ("A", "C", "P", "S"), "PACS",
            ("art_painting", "cartoon", "photo", "sketch"), 7),
    _images("OfficeHome", ("A", "C", "P", "R"), "office_home",
            ("Art", "Clipart", "Product", "Real World"), 65),
    _images("TerraIncognita", ("L100", "L38", "L43", "L46"), "terra_incognita",
            ("location_100", "location_38", "location_43", "location_46"), 10,
            aliases=("terra",)),
    _images("DomainNet", ("clip", "info", "paint", "quick", "real", "sketch"), "domain_net",
            ("clipart", "infograph", "painting", "quickdraw", "real", "sketch"), 345, ckpt=1000,
            group="domainnet"),
)

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in _SPECS}
DEFAULT_DATASET = "ColoredDigits"


def normalise_name(name: str) -> str:
    """Lower-case a dataset or algorithm name and drop ``_``, ``-`` and spaces."""
    return "".join(ch for ch in name.lower() if ch not in "_- ")


_LOOKUP = {}
for _spec in _SPECS:
    for _alias in (_spec.name, *_spec.aliases):
        _LOOKUP[normalise_name(_alias)] = _spec


def dataset_names() -> list[str]:
    """DomainBed class names of every registered dataset, in table order."""
    return list(DATASETS)


def get_spec(name: str) -> DatasetSpec:
    """Return the spec of ``name`` (case-insensitive) or of a ``folder:PATH`` custom dataset.

    Raises:
        UserError: unknown name (the message lists the valid ones), or a ``folder:`` path that is
            missing or not laid out as ``PATH/<env>/<class>/<image>``.
    """
    if name.startswith(FOLDER_PREFIX):
        return folder_spec(name[len(FOLDER_PREFIX):])
    spec = _LOOKUP.get(normalise_name(name))
    if spec is None:
        valid = ", ".join(dataset_names())
        raise UserError(f"unknown dataset '{name}': choose one of {valid}, or folder:PATH")
    return spec


def _subdirs(path: str) -> list[str]:
    return sorted(e for e in os.listdir(path) if os.path.isdir(os.path.join(path, e))
                  and not e.startswith("."))


def folder_spec(path: str) -> DatasetSpec:
    """Describe a custom dataset laid out as ``path/<env>/<class>/<image>`` (no code needed).

    Environments are the sorted env folders; classes are the sorted class folders of the last
    environment (DomainBed's rule); hparams are those of big-image datasets.
    """
    root = os.path.abspath(os.path.expanduser(path))
    if not os.path.isdir(root):
        raise UserError(f"dataset folder '{path}' does not exist: lay it out as "
                        "PATH/<env>/<class>/<image> and pass folder:PATH")
    envs = _subdirs(root)
    if len(envs) < 2:
        raise UserError(f"dataset folder '{path}' has {len(envs)} environment folder(s): a DG "
                        "dataset needs at least 2, laid out as PATH/<env>/<class>/<image>")
    classes = _subdirs(os.path.join(root, envs[-1]))
    if not classes:
        raise UserError(f"dataset folder '{path}/{envs[-1]}' has no class folders: lay it out as "
                        "PATH/<env>/<class>/<image>")
    base = _images(f"folder:{root}", envs, root, envs, len(classes))
    return replace(base, aliases=())


def download_command(name: str, data_dir: str | None = None) -> str:
    """The command that fetches dataset ``name`` into ``data_dir`` (``D`` when unknown)."""
    return f"python -m fishr_tune.download {name} --data-dir {data_dir or 'D'}"
