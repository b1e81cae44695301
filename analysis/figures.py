"""Matplotlib the way every analysis command uses it: headless, and each figure written as a
PNG with a PDF beside it."""

from __future__ import annotations

import os


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend (no display on a cluster node);
    imported on first use, so commands that draw nothing never load matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str) -> list[str]:
    """Save ``fig`` as ``<stem>.png`` and ``<stem>.pdf`` (folders made), close it, and return
    the two paths; ``path`` names the PNG (any extension is replaced)."""
    import matplotlib.pyplot as plt

    stem = os.path.splitext(path)[0]
    if os.path.dirname(stem):
        os.makedirs(os.path.dirname(stem), exist_ok=True)
    written = [stem + ".png", stem + ".pdf"]
    for out in written:
        fig.savefig(out, dpi=120)
    plt.close(fig)
    return written
