"""Result tables as DomainBed's collect_results builds them (format-free; see analysis.formats).

* Cell: the sweep_acc of one (dataset, algorithm, test env) over trial seeds, as
  ``100 * mean`` +/- ``100 * std(x / sqrt(n))`` (population std), ``X`` when empty.
* Per-dataset table: algorithms (DomainBed's ALGORITHMS order, others after, sorted) x the
  dataset's env labels + Avg (mean of the env means, ``X`` when one is missing).
* Averages table: algorithms x datasets + Avg; a cell averages sweep_acc over the test envs
  within each trial seed, then takes the statistics over trial seeds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

MISSING = "X"


@dataclass
class Cell:
    """One table cell: statistics over trial seeds (mean and se in percent), or empty."""

    values: list[float] = field(default_factory=list)
    mean: float | None = None
    se: float | None = None
    note: tuple[str, str] | None = None  # (reason, detail): why the cell is empty

    @property
    def n(self) -> int:
        """Number of trial seeds behind the cell."""
        return len(self.values)


@dataclass
class Table:
    """A titled grid of cells; the last column is the Avg (mean only)."""

    title: str
    kind: str  # "dataset" or "averages"
    dataset: str | None
    row_labels: list[str]
    col_labels: list[str]
    col_keys: list  # test env indices (dataset table) or dataset names (averages), then "Avg"
    cells: list[list[Cell]]


def mean_and_error(values) -> tuple[float, float]:
    """DomainBed's format_mean statistics: 100 * mean and 100 * std(values / sqrt(n))."""
    data = list(values)
    mean = 100 * np.mean(data)
    err = 100 * np.std(np.asarray(data) / np.sqrt(len(data)))
    return float(mean), float(err)


def make_cell(values, note: tuple[str, str] | None = None) -> Cell:
    """A cell from its per-trial-seed values (fractions)."""
    values = [float(v) for v in values]
    if not values:
        return Cell(note=note)
    mean, se = mean_and_error(values)
    return Cell(values, mean, se)


def avg_cell(cells: list[Cell]) -> Cell:
    """DomainBed's Avg column: the mean of the row's means, empty when one is missing."""
    means = [c.mean for c in cells]
    if not means or any(m is None for m in means):
        return Cell()
    return Cell(mean=sum(means) / len(means))


def algorithm_order(names) -> list[str]:
    """DomainBed's ALGORITHMS order, then unknown names (sorted)."""
    from search_spaces import algorithm_names

    known = algorithm_names()
    names = set(names)
    return [a for a in known if a in names] + sorted(names - set(known))


def dataset_order(names) -> list[str]:
    """The registry's (DomainBed's) dataset order, then unknown names (sorted)."""
    from fishr_tune.datasets.registry import dataset_names

    known = dataset_names()
    names = set(names)
    return [d for d in known if d in names] + sorted(names - set(known))


def env_labels(dataset: str, n_envs: int) -> list[str]:
    """The dataset's environment labels (``env{i}`` for a dataset the registry doesn't know)."""
    from fishr_tune.datasets.registry import DATASETS

    if dataset in DATASETS:
        return list(DATASETS[dataset].environments)
    return [f"env{i}" for i in range(n_envs)]


def _notes(of_cell: pd.DataFrame) -> tuple[str, str] | None:
    notes = [n for n in of_cell["note"] if n is not None]
    return notes[0] if notes else None


def dataset_table(selected: pd.DataFrame, dataset: str, algorithms: list[str], n_envs: int,
                  method_name: str) -> Table:
    """Per-dataset table of one method's selection (rows: ``algorithms``)."""
    of_dataset = selected[selected["dataset"] == dataset]
    cells = []
    for algorithm in algorithms:
        row = []
        for env in range(n_envs):
            of_cell = of_dataset[(of_dataset["algorithm"] == algorithm)
                                 & (of_dataset["test_env"] == env)].sort_values("trial_seed")
            row.append(make_cell(of_cell["test_acc"].dropna(), _notes(of_cell)))
        row.append(avg_cell(row))
        cells.append(row)
    return Table(f"Dataset: {dataset}, model selection method: {method_name}", "dataset",
                 dataset, list(algorithms), [*env_labels(dataset, n_envs), "Avg"],
                 [*range(n_envs), "Avg"], cells)


def averages_table(selected: pd.DataFrame, datasets: list[str], algorithms: list[str],
                   method_name: str) -> Table:
    """The averages table of one method: per trial seed the mean over test envs, then stats."""
    ok = selected.dropna(subset=["test_acc"])
    cells = []
    for algorithm in algorithms:
        row = []
        for dataset in datasets:
            of_cell = ok[(ok["algorithm"] == algorithm) & (ok["dataset"] == dataset)]
            per_seed = [float(np.mean(g.sort_values("test_env")["test_acc"].tolist()))
                        for _, g in of_cell.groupby("trial_seed", sort=True)]
            row.append(make_cell(per_seed))
        row.append(avg_cell(row))
        cells.append(row)
    return Table(f"Averages, model selection method: {method_name}", "averages", None,
                 list(algorithms), [*datasets, "Avg"], [*datasets, "Avg"], cells)


def method_tables(selected: pd.DataFrame, records: pd.DataFrame, method) -> list[Table]:
    """Every per-dataset table of one method, then its averages table (DomainBed's order).

    Rows are every algorithm of ``records`` and columns every dataset of ``records``, so an
    algorithm never run on a dataset shows ``X`` there, as in DomainBed.
    """
    from analysis.selection import num_envs

    algorithms = algorithm_order(records["algorithm"].dropna().unique())
    datasets = dataset_order(records["dataset"].dropna().unique())
    tables = [dataset_table(selected, d, algorithms, num_envs(records, d), method.name)
              for d in datasets]
    tables.append(averages_table(selected, datasets, algorithms, method.name))
    return tables
