"""Report formats of analysis.tables' tables: text (DomainBed's layout), markdown, LaTeX, CSV.

Text follows DomainBed's collect_results: ``-------- <title>``, then rows of cells left-justified
and cut to 20 characters (25 in the averages table) joined by two spaces. LaTeX is booktabs with
``$\\pm$`` inside DomainBed's document frame. CSV has one row per (selection, dataset,
algorithm, test env or Avg) with the columns of :data:`CSV_COLUMNS` (percent).
"""

from __future__ import annotations

import csv
import io

from analysis.tables import MISSING, Cell, Table

FORMATS = ("text", "markdown", "latex", "csv")
CSV_COLUMNS = ["selection", "dataset", "algorithm", "test_env", "mean", "se", "n_trial_seeds"]
AVG = "Avg"
COLWIDTH = {"dataset": 20, "averages": 25}


def cell_text(cell: Cell, pm: str, avg: bool = False) -> str:
    """``m <pm> e`` to one decimal; the Avg column has the mean only; ``X`` when empty."""
    if cell.mean is None:
        return MISSING
    if avg:
        return f"{cell.mean:.1f}"
    return f"{cell.mean:.1f} {pm} {cell.se:.1f}"


def _grid(table: Table, pm: str) -> list[list[str]]:
    last = len(table.col_labels) - 1
    return [[label] + [cell_text(c, pm, avg=(j == last)) for j, c in enumerate(row)]
            for label, row in zip(table.row_labels, table.cells)]


def notes(table: Table) -> list[str]:
    """``X = <why>: <cells>`` lines for the empty cells whose method said why (just
    ``X = <why>`` when one detail-free reason explains every X of the table)."""
    by_reason: dict[str, list[tuple[str, str]]] = {}
    for label, row in zip(table.row_labels, table.cells):
        for col, cell in zip(table.col_labels, row):
            if cell.mean is None and cell.note:
                reason, detail = cell.note
                by_reason.setdefault(reason, []).append((f"{label} {col}", detail))
    empty = sum(c.mean is None for row in table.cells for c in row[:-1])
    lines = []
    for reason, cells in by_reason.items():
        if len(cells) == empty and not any(detail for _, detail in cells):
            lines.append(f"{MISSING} = {reason}")
        else:
            listed = "; ".join(" ".join(p for p in cell if p) for cell in cells)
            lines.append(f"{MISSING} = {reason}: {listed}")
    return lines


def text_table(table: Table) -> str:
    """DomainBed's non-LaTeX print_table layout (trailing spaces dropped), then notes."""
    width = COLWIDTH[table.kind]

    def line(cells):
        return "  ".join(str(c).ljust(width)[:width] for c in cells).rstrip()

    lines = ["", f"-------- {table.title}", line(["Algorithm", *table.col_labels])]
    lines += [line(row) for row in _grid(table, "+/-")]
    lines += notes(table)
    return "\n".join(lines)


def markdown_table(table: Table) -> str:
    """A GitHub markdown table under a ``####`` title, then notes."""
    lines = ["", f"#### {table.title}", "",
             "| Algorithm | " + " | ".join(table.col_labels) + " |",
             "|---" * (len(table.col_labels) + 1) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in _grid(table, "±")]
    extra = notes(table)
    if extra:
        lines += [""] + [f"{n}" for n in extra]
    return "\n".join(lines)


def latex_escape(text: str) -> str:
    """Escape what LaTeX reads specially in labels (``%``, ``_``, ``&``, ``#``)."""
    for char in "%_&#":
        text = text.replace(char, "\\" + char)
    return text


def latex_table(table: Table) -> str:
    """A booktabs tabular in DomainBed's adjustbox/center frame, titled by a subsubsection."""
    title = table.dataset if table.kind == "dataset" else "Averages"
    head = ["\\textbf{" + latex_escape(str(c)) + "}" for c in ["Algorithm", *table.col_labels]]
    lines = ["", f"\\subsubsection{{{latex_escape(title)}}}", "", "\\begin{center}",
             "\\adjustbox{max width=\\textwidth}{%",
             "\\begin{tabular}{l" + "c" * len(table.col_labels) + "}", "\\toprule",
             " & ".join(head) + " \\\\", "\\midrule"]
    lines += [" & ".join(latex_escape(row[0]) if i == 0 else c for i, c in enumerate(row))
              + " \\\\" for row in _grid(table, "$\\pm$")]
    lines += ["\\bottomrule", "\\end{tabular}}", "\\end{center}"]
    lines += [f"% {n}" for n in notes(table)]
    return "\n".join(lines)


def csv_rows(table: Table, selection: str) -> list[dict]:
    """CSV rows of one table. Per-dataset table: one per (algorithm, test env). Averages table:
    one per (algorithm, dataset) with test_env ``Avg``, and its Avg column as dataset ``Avg``.
    The per-dataset table's own Avg column is not repeated: the averages table's cell is the
    same mean with its standard error over trial seeds."""
    rows = []
    for label, row in zip(table.row_labels, table.cells):
        for key, cell in zip(table.col_keys, row):
            if table.kind == "dataset" and key == AVG:
                continue
            dataset, test_env = (table.dataset, key) if table.kind == "dataset" else (key, AVG)
            rows.append({"selection": selection, "dataset": dataset, "algorithm": label,
                         "test_env": test_env,
                         "mean": "" if cell.mean is None else f"{cell.mean:.10g}",
                         "se": "" if cell.se is None else f"{cell.se:.10g}",
                         "n_trial_seeds": cell.n})
    return rows


def write_csv(rows: list[dict]) -> str:
    """CSV text with a header line."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


RENDERERS = {"text": text_table, "markdown": markdown_table, "latex": latex_table}
