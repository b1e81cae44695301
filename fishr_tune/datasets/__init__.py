"""Datasets: the registry, loaders (embedded digits, MNIST, image folders) and DomainBed splits.

The trial loop calls ``load_raw`` once per node, ``build_environments`` per job and
``split_environments`` per trial; see ``loading`` for the contract. The registry names load at
once; the loaders (which import torch and torchvision) load on first use, so the sweep planner
and the analysis tools can look datasets up without paying for torch.
"""

import importlib

from fishr_tune.datasets.registry import (DATASETS, DEFAULT_DATASET, DatasetSpec, dataset_names,
                                          get_spec)

_LAZY = {
    "ImageEnv": "images",
    "ImagePool": "images",
    "build_environments": "loading",
    "load_raw": "loading",
    "split_dataset": "splits",
    "split_environments": "splits",
    "TensorEnv": "tensors",
    "TensorPool": "tensors",
}

__all__ = ["DATASETS", "DEFAULT_DATASET", "DatasetSpec", "dataset_names", "get_spec", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value  # later lookups skip this hook
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
