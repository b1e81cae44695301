"""Where a dataset's files live on disk: paths only, no loading (and no torch), so the sweep
driver can check a local data folder before Ray starts without importing the loaders."""

from __future__ import annotations

import os

from fishr_tune.datasets.registry import FOLDER_PREFIX, DatasetSpec, download_command
from fishr_tune.errors import UserError


def mnist_raw_dir(data_dir: str) -> str:
    """The folder torchvision (and so DomainBed) keeps the MNIST IDX files in."""
    return os.path.join(data_dir, "MNIST", "raw")


def mnist_fix(dataset_name: str, data_dir: str | None) -> str:
    """The end of every missing-MNIST error: the command that downloads the IDX files."""
    return f"get them with {download_command(dataset_name, data_dir)}"


def mnist_folder(dataset_name: str, data_dir: str | None) -> str:
    """The existing folder holding MNIST's IDX files for an MNIST-based dataset.

    Raises:
        UserError: no ``data_dir``, or no ``MNIST/raw`` folder in it (the download command).
    """
    needs = f"{dataset_name} needs --data-dir D with MNIST IDX files in D/MNIST/raw"
    if data_dir is None:
        raise UserError(f"{needs}: {mnist_fix(dataset_name, data_dir)}")
    folder = mnist_raw_dir(os.path.expanduser(data_dir))
    if not os.path.isdir(folder):
        raise UserError(f"{needs} (missing: {folder}): {mnist_fix(dataset_name, data_dir)}")
    return folder


def dataset_root(spec: DatasetSpec, data_dir: str | None) -> str:
    """The folder holding the environment folders of ``spec``.

    Raises:
        UserError: no ``data_dir`` for a named dataset, or the folder does not exist.
    """
    if spec.name.startswith(FOLDER_PREFIX):
        root = spec.folder
    elif data_dir is None:
        raise UserError(f"{spec.name} needs --data-dir D holding {spec.folder}/<env>/<class>/"
                        f"<image>: get it with {download_command(spec.name)}")
    else:
        root = os.path.join(os.path.expanduser(data_dir), spec.folder)
    if not os.path.isdir(root):
        raise UserError(f"missing dataset folder {root}: get it with "
                        f"{download_command(spec.name, data_dir)} or lay it out as "
                        f"{root}/<env>/<class>/<image>")
    return root
