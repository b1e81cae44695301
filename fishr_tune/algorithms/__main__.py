"""``python -m fishr_tune.algorithms``: the README's table of algorithms, from the registry.

One row per registered algorithm (DomainBed's order): its module's one-line summary, its own
hparams as ``name default | distribution`` (search_spaces' algorithm block; every algorithm also
has lr, weight_decay, batch_size and the common hparams, and DANN/CDANN lr_g, lr_d and
weight_decay_g), and the keys its ``update`` returns.
"""

from __future__ import annotations

import ast
import inspect
import sys

from fishr_tune.algorithms import ALGORITHMS
from search_spaces.registry import ALGORITHMS as BLOCKS


def _summary(cls) -> str:
    doc = inspect.getmodule(cls).__doc__ or ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def _returned_keys(cls) -> list[str]:
    """String keys of the dict literals in the ``return`` statements of ``cls.update``."""
    owner = next(c for c in cls.__mro__ if "update" in vars(c))
    tree = ast.parse(inspect.getsource(owner))
    keys: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "update":
            for ret in (n for n in ast.walk(node) if isinstance(n, ast.Return)):
                if isinstance(ret.value, ast.Dict):
                    keys += [k.value for k in ret.value.keys if isinstance(k, ast.Constant)]
    return keys


def markdown_table() -> str:
    """The table, as Markdown."""
    lines = ["| algorithm | what it does | own hparams: default \\| distribution | records |",
             "|---|---|---|---|"]
    for name, cls in ALGORITHMS.items():
        hparams = "; ".join(f"`{h.name}` {h.default:g} \\| {h.dist.text()}"
                            if isinstance(h.default, float) else
                            f"`{h.name}` {h.default} \\| {h.dist.text()}" for h in BLOCKS[name])
        keys = ", ".join(f"`{k}`" for k in _returned_keys(cls))
        lines.append(f"| {name} | {_summary(cls)} | {hparams or '-'} | {keys} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(markdown_table() + "\n")
