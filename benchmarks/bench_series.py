"""The contest of docs/series.md: every forecaster's backtest MASE on sunspots, co2 and nile (and on
elec_equip and US real GDP, not in the box).

Each series with the params of its one command in docs/series.md (the forecaster's recipe), run
by calling the library directly (what the S stages call), one torch thread: the networks' median
seed and seed ensemble beside every classical reference, and the seconds each network trained::

    python benchmarks/bench_series.py                     # all three, a few minutes
    python benchmarks/bench_series.py --series nile --models gru,rnn
    python benchmarks/bench_series.py --seeds 30          # the ensembles of 30 replicas
    python benchmarks/bench_series.py --series elec_equip,gdp   # two series not in the box
"""

from __future__ import annotations

import rnnlab  # noqa: F401  (first: pins the numerical libraries' CPU code paths, rnnlab/cpu.py)

# isort: split

import argparse
import logging
import time
from pathlib import Path

import torch
import yaml

from rnnlab import data, datasets, recipe, sine
from rnnlab.params import parse

COMMANDS = {  # docs/series.md's -S flags, less the csv path
    "sunspots": {"column": "SUNACTIVITY", "scaling": "standard", "season": 11},
    "co2": {"column": "co2", "gaps": "interpolate", "scaling": "standard", "season": 12, "transform": "diff"},
    "nile": {"column": "volume", "scaling": "standard", "season": None, "horizon": 10},
    # two series not in the box (docs/series.md), read straight from statsmodels' own csvs
    "elec_equip": {"column": "STS.M.I7.W.TOVT.NS0016.4.000", "scaling": "standard", "season": 12, "transform": "diff"},
    "gdp": {"column": "realgdp", "scaling": "standard", "season": 4, "transform": "diff"},
}
TEXT = {"sunspots": lambda: datasets.packaged_csv("sunspots"), "co2": datasets.co2_csv,
        "nile": lambda: datasets.packaged_csv("nile"), "elec_equip": lambda: datasets.packaged_csv("elec_equip"),
        "gdp": lambda: datasets.packaged_csv("macrodata")}


def contest(name: str, models: list[str], params_path: str, seeds: int | None = None) -> dict[str, str]:
    raw = yaml.safe_load(Path(params_path).read_text())
    if seeds is not None:
        raw["seeds"] = seeds  # the one-key form: seeds 0..seeds-1, as `-S seeds=N`
    raw["series"].update(COMMANDS[name], csv_path=f"{name}.csv", recipe="forecaster", arima_order=None)
    p = parse(raw)
    x = data.parse_column(TEXT[name](), p.series.column, source=name, gaps=p.series.gaps)
    units = recipe.Units.fit(x, p)
    z = units.to_model(x)
    cells = {}
    for kind in models:
        start = time.perf_counter()
        model, result, _ = recipe.train(p, x, z, units, kind)
        seconds = time.perf_counter() - start
        preds = recipe.answers(p, x, z, units, model)
        history = sine.history_frame(result, list(p.seeds))
        median = sine.summary(sine.seed_metrics(p, x, history, preds, list(p.seeds)))["backtest_mase"]
        ensemble = sine.ensemble_metrics(p, x, preds)["backtest_mase"]
        cells[kind] = f"{median:.3f} / {ensemble:.3f} ({seconds:.0f} s)"
    for ref, values in sine.reference_metrics(p, x).items():
        order = f" {tuple(values['order'])}" if "order" in values else ""
        cells[ref] = f"{values['backtest_mase']:.3f}{order}"
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", default="sunspots,co2,nile")
    parser.add_argument("--models", default="mlp,rnn,lstm,gru")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--seeds", type=int, help="seeds 0..N-1 (default: the params' seeds)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    names = args.series.split(",")
    table = {name: contest(name, args.models.split(","), args.params, args.seeds) for name in names}
    rows = list(dict.fromkeys(row for cells in table.values() for row in cells))
    print("| backtest MASE: networks median seed / ensemble | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for row in rows:
        print(f"| {row} | " + " | ".join(table[name].get(row, "-") for name in names) + " |")


if __name__ == "__main__":
    main()
