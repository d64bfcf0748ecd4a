"""How wide a terminal `dvc exp show` needs before experiment S's numbers stop folding into "…".

DVC draws `dvc exp show` with rich, and folds columns into "…" from the right until the table
fits. Every column still costs one character of the width budget when it is folded (rich counts
a separator per column before DVC merges the folded ones), so the terminal must be at least as
wide as what is printed plus one character per column folded away. This script measures both:

- the repository's columns, from `dvc exp show --csv` (declared metrics, params.yaml's leaves,
  file dependencies);
- the narrowest terminal in which this repository's plain `dvc exp show` prints them;
- DVC's own table class (``dvc.utils.table.Table``) with a fixed visible part (an experiment's
  name, its date, S's four metrics, seq_len) and N further columns: the narrowest terminal that
  prints ``S.gru.rollout_mse`` in full, for several N.

Writes ``benchmarks/results/exp_show_width.json``. Run from a DVC repository (this one):

    python benchmarks/exp_show_width.py     # a few seconds
"""

import rnnlab  # noqa: F401  (first: pins the numerical libraries' CPU code paths, rnnlab/cpu.py)

# isort: split

import csv
import io
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import yaml
from dvc.utils.table import Table
from rich import box
from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
DVC = str(Path(sys.executable).with_name("dvc"))  # this venv's
OUT = ROOT / "benchmarks" / "results" / "exp_show_width.json"
VISIBLE = ["S.mlp.rollout_mse", "S.rnn.rollout_mse", "S.lstm.rollout_mse", "S.gru.rollout_mse"]
FOLDED = (0, 20, 50, 100, 150, 200)


def repository_columns() -> dict[str, int]:
    """`dvc exp show`'s columns here, by kind (a dependency is named by a path, holding a "/")."""
    header = next(csv.reader(io.StringIO(subprocess.run([DVC, "exp", "show", "--csv"], cwd=ROOT, check=True,
                                                        capture_output=True, text=True).stdout)))
    params = len(_param_leaves())
    deps = sum("/" in c for c in header)
    return {"all": len(header), "dependencies": deps, "params.yaml leaves": params,
            "declared metrics": len(header) - deps - params - len(_BOOKKEEPING & set(header)),
            "bookkeeping": len(_BOOKKEEPING & set(header))}


_BOOKKEEPING = {"Experiment", "rev", "typ", "Created", "parent", "State", "Executor"}


def _param_leaves() -> list[str]:
    """params.yaml's keys as `dvc exp show` names its columns (``series.forecaster.lr``)."""
    def leaves(node, prefix: str) -> list[str]:
        if not isinstance(node, dict):
            return [prefix[:-1]]
        return [leaf for key, value in node.items() for leaf in leaves(value, f"{prefix}{key}.")]
    return leaves(yaml.safe_load((ROOT / "params.yaml").read_text()), "")


def narrowest_terminal(folded: int) -> int:
    """The narrowest terminal in which DVC's table prints S.gru.rollout_mse with ``folded`` more columns."""
    for width in range(80, 2000):
        table = Table(box=box.HORIZONTALS)  # what `dvc exp show` draws (dvc/ui/table.py)
        table.add_column("Experiment", no_wrap=True)
        table.add_column("Created")
        for i, name in enumerate(VISIBLE):
            table.add_column(name, collapse=i != 0, no_wrap=True, justify="right")
        table.add_column("seq_len")
        for i in range(folded):
            table.add_column(f"key{i}", collapse=True)
        table.add_row("└── 818d462 [len-30]", "01:23 AM", "1.1953", "0.78985", "1.087", "0.37553", "30",
                      *["0.5"] * folded)
        out = io.StringIO()
        Console(file=out, width=width).print(table)
        if VISIBLE[-1] in out.getvalue():
            return width
    raise RuntimeError("no terminal up to 2000 columns prints the table")


def repository_narrowest_terminal() -> int:
    """The narrowest terminal in which this repository's plain `dvc exp show` prints S's four metrics."""
    def prints_them(width: int) -> bool:
        out = subprocess.run([DVC, "exp", "show", "--no-pager"], cwd=ROOT, check=True, capture_output=True,
                             text=True, env={**os.environ, "COLUMNS": str(width)}).stdout
        return all(name in out for name in VISIBLE)
    low, high = 100, 1000  # prints_them(high); bisect for the first width that does
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if prints_them(middle) else (middle + 1, high)
    return low


def main() -> None:
    widths = {str(n): narrowest_terminal(n) for n in FOLDED}
    result = {"date": date.today().isoformat(), "repository": repository_columns(),
              "repository_narrowest_terminal": repository_narrowest_terminal(),
              "narrowest_terminal_by_folded_columns": widths}
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
