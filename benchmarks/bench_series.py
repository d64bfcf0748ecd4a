"""The contest of docs/series.md: every forecaster's backtest MASE on sunspots, co2 and nile (and on
elec_equip and US real GDP, not in the box).

Each series with the params of its one command in docs/series.md (the forecaster's recipe), run
by calling the library directly (what the S stages call), one torch thread: the networks' median
seed and seed ensemble beside every classical reference, and the seconds each network trained::

    python benchmarks/bench_series.py                     # all three, a few minutes
    python benchmarks/bench_series.py --series nile --models gru,rnn
    python benchmarks/bench_series.py --seeds 30          # the ensembles of 30 replicas
    python benchmarks/bench_series.py --series elec_equip,gdp   # two series not in the box
    python benchmarks/bench_series.py --csv my.csv --column sales --season 12 --transform diff --seeds 30
    python benchmarks/bench_series.py --series sunspots,nile --transform ar_residual   # Zhang's hybrid

With ``--csv`` it runs on your csv, with the -S flags docs/series.md gives a user (standard
scaling, ARIMA by AIC, the forecaster's recipe). Below the table, each network's seeds against the
best classical forecaster of each series: the median seed's MASE with its 95% bootstrap interval
and how many seeds are below the reference (sign test), the standard a claim "beats" is held to.
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

from rnnlab import data, datasets, recipe, scores, sine
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


MEASURE = "backtest_mase"


def contest(name: str, text: str, command: dict, models: list[str], params_path: str,
            seeds: int | None = None) -> tuple[dict[str, str], list[str]]:
    """(the table's cells of one series, its networks' seeds against the best classical forecaster)."""
    raw = yaml.safe_load(Path(params_path).read_text())
    if seeds is not None:
        raw["seeds"] = seeds  # the one-key form: seeds 0..seeds-1, as `-S seeds=N`
    raw["series"].update({"arima_order": None, **command}, csv_path=f"{name}.csv", recipe="forecaster")
    p = parse(raw)
    x = data.parse_column(text, p.series.column, source=name, gaps=p.series.gaps)
    units = recipe.Units.fit(x, p)
    z = units.to_model(x)
    cells, per_seed = {}, {}
    for kind in models:
        start = time.perf_counter()
        model, result, _ = recipe.train(p, x, z, units, kind)
        seconds = time.perf_counter() - start
        preds = recipe.answers(p, x, z, units, model)
        history = sine.history_frame(result, list(p.seeds))
        per_seed[kind] = sine.seed_metrics(p, x, history, preds, list(p.seeds))
        recipe.restore_validation(per_seed[kind], history)  # as evaluate_sine does
        median = sine.summary(per_seed[kind])[MEASURE]
        ensemble = sine.ensemble_metrics(p, x, preds)[MEASURE]
        cells[kind] = f"{median:.3f} / {ensemble:.3f} ({seconds:.0f} s)"
    refs = sine.reference_metrics(p, x)
    for ref, values in refs.items():
        order = f" {tuple(values['order'])}" if "order" in values else ""
        cells[ref] = f"{values[MEASURE]:.3f}{order}"
    detail = {"models": {kind: {"seeds": seeds_} for kind, seeds_ in per_seed.items()}, "references": refs}
    return cells, [f"{name}: {line.strip()}" for line in scores.against_best_reference(detail, MEASURE)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", default="sunspots,co2,nile")
    parser.add_argument("--models", default="mlp,rnn,lstm,gru")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--seeds", type=int, help="seeds 0..N-1 (default: the params' seeds)")
    parser.add_argument("--csv", help="a csv of yours instead of --series (name its --column)")
    parser.add_argument("--column", help="--csv's column of values")
    parser.add_argument("--season", type=int, help="--csv: points per season (default: none)")
    parser.add_argument("--transform", choices=["none", "diff", "seasonal_diff", "log", "ar_residual"],
                        help="what the networks learn (default: --series' own, docs/series.md; none for --csv)")
    parser.add_argument("--gaps", default="refuse", choices=["refuse", "interpolate"], help="--csv: empty fields")
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    if args.csv:
        command = {"column": args.column, "scaling": "standard", "season": args.season,
                   "transform": args.transform or "none", "gaps": args.gaps}
        runs = {Path(args.csv).stem: (data.csv_text(args.csv), command)}
    else:
        override = {"transform": args.transform} if args.transform else {}
        runs = {name: (TEXT[name](), {**COMMANDS[name], **override}) for name in args.series.split(",")}
    table, against = {}, []
    for name, (text, command) in runs.items():
        table[name], lines = contest(name, text, command, args.models.split(","), args.params, args.seeds)
        against += lines
    names = list(table)
    rows = list(dict.fromkeys(row for cells in table.values() for row in cells))
    print("| backtest MASE: networks median seed / ensemble | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for row in rows:
        print(f"| {row} | " + " | ".join(table[name].get(row, "-") for name in names) + " |")
    print()
    print("\n".join(against))


if __name__ == "__main__":
    main()
