"""Result tables in DomainBed's format: mean +/- standard error over trial seeds."""

from __future__ import annotations

import math

import pandas as pd

from fishr_tune.datasets.registry import get_spec


def mean_and_error(values) -> tuple[float, float]:
    """DomainBed's statistics: 100*mean and 100*population std / sqrt(n)."""
    values = [float(v) for v in values]
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / n)
    return 100 * mean, 100 * std / math.sqrt(n)


def format_cell(values) -> str:
    """``m +/- e`` to one decimal, ``X`` for no values (DomainBed's table cell)."""
    values = list(values)
    if not values:
        return "X"
    mean, err = mean_and_error(values)
    return f"{mean:.1f} +/- {err:.1f}"


def dataset_table(selected: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Rows = algorithms, columns = env labels then Avg (mean of per-env means, X if missing)."""
    spec = get_spec(dataset)
    from search_spaces import algorithm_names

    order = {name: i for i, name in enumerate(algorithm_names())}
    rows = {}
    of_dataset = selected[selected["dataset"] == spec.name]
    # DomainBed's ALGORITHMS order, unknown names last.
    for algorithm in sorted(of_dataset["algorithm"].unique(),
                            key=lambda a: (order.get(a, len(order)), a)):
        by_alg = of_dataset[of_dataset["algorithm"] == algorithm]
        row, means = {}, []
        for env, label in enumerate(spec.environments):
            values = by_alg[by_alg["test_env"] == env]["test_acc"].tolist()
            row[label] = format_cell(values)
            means.append(mean_and_error(values)[0] if values else None)
        row["Avg"] = "X" if None in means else f"{sum(means) / len(means):.1f}"
        rows[algorithm] = row
    return pd.DataFrame.from_dict(rows, orient="index")
