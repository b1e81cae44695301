"""Text report of a sweep: per selection method, one table per dataset."""

from __future__ import annotations

import pandas as pd

from analysis.selection import METHODS, select
from analysis.tables import dataset_table


def selection_report(records: pd.DataFrame) -> str:
    """Model-selection tables (test accuracy, mean +/- SE over trial seeds) of every dataset."""
    if records is None or len(records) == 0:
        return "no records to select from"
    lines = [f"Total records: {len(records)}"]
    for method in METHODS.values():
        selected = select(records, method)
        lines.append(f"\n== model selection: {method.name} ==")
        if selected.empty:
            lines.append("(no finished single-test-env trials)")
            continue
        for dataset in sorted(selected["dataset"].unique()):
            table = dataset_table(selected, dataset)
            lines.append(f"\n{dataset} (test-env accuracy %, {selected['trial_seed'].nunique()} "
                         "trial seed(s)):")
            lines.append(table.to_string())
    return "\n".join(lines)
