"""Does each ball engine stop where text 004's own loop stops, on csvs the lab has never seen?

Text 004's rule keeps the best validation accuracy and stops when it is 100 epochs old; it
compares accuracies exactly, so one last-bit difference in float32 can move the stop epoch. This
script makes ``--csvs`` ball csvs that differ in generator seed, row count, start range, speed
and length, prepares each as ``prepare_ball`` does, and trains text 004's recipe on each three
ways to the end (or to ``--max-epochs``): the text's own loop (``bench_ball.text_004_train``),
``rnnlab.ball.train`` on the ``torch`` engine and on the ``compiled`` one. It prints each run's
stop epoch, best epoch and test accuracy, counts the csvs on which each engine matched the text,
and exits 1 if the default engine (``ball.train.engine`` in params.yaml) missed on any.

    python benchmarks/ball_engines.py                         # 20 csvs of 400-1600 rows
    python benchmarks/ball_engines.py --csvs 3 --max-epochs 40 --rows 300
"""

from __future__ import annotations

import rnnlab  # noqa: F401  (first: pins the numerical libraries' CPU code paths, rnnlab/cpu.py)

# isort: split

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_ball import ours, text_004_train, with_recipe, write_shards

from rnnlab import ball_csv
from rnnlab.params import load

ENGINES = ("torch", "compiled")


def variant(i: int, rows: int | None) -> dict:
    """The i-th csv's generator settings: seed i and a spread of sizes, starts, speeds, lengths."""
    rng = np.random.default_rng(1000 + i)
    low = int(rng.integers(2, 6))
    # every other csv keeps its balls far from position 0, where the text's accuracy is readable
    # from the first epochs and the stopping rule has records to keep; the others cross 0
    start = (15, 40) if i % 2 else (-int(rng.integers(0, 21)), int(rng.integers(0, 21)))
    return {
        "rows": rows or int(rng.integers(400, 1601)),
        "start": start,
        "speed_max": int(rng.integers(1, 3)) if i % 2 else int(rng.integers(1, 7)),
        "length": (low, low + int(rng.integers(1, 7))),
        "seed": 100 + i,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--model", default="rnn", choices=["rnn", "lstm", "gru"])
    parser.add_argument("--csvs", type=int, default=20)
    parser.add_argument("--rows", type=int, help="rows of every csv (default: 400-1600, varied)")
    parser.add_argument("--max-epochs", type=int, help="cap every run (default: the params', text 004's 9999)")
    parser.add_argument("--patience", type=int, help="override the stopping rule's 100 epochs (tests use fewer)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    p = load(args.params)
    torch.set_num_threads(p.threads)
    p = with_recipe(p, seeds=(p.ball.train.seeds[0],), epochs=args.max_epochs or p.ball.train.epochs,
                    patience=args.patience or p.ball.train.patience)
    t = p.ball.train
    default = t.engine
    matched, identical = dict.fromkeys(ENGINES, 0), dict.fromkeys(ENGINES, 0)
    print(f"text 004's recipe, {args.model.upper()}, at most {t.epochs} epochs, patience {t.patience}: "
          "stop (best) epoch and test accuracy per csv")
    print(f"{'csv':>4} {'rows':>5} {'start':>9} {'speed':>5} {'length':>7} | {'text 004 loop':>24} | "
          + " | ".join(f"{e + ' engine':>39}" for e in ENGINES))
    for i in range(args.csvs):
        g = variant(i, args.rows)
        rows = ball_csv.generate_rows(g["rows"], g["start"], g["speed_max"], g["length"], g["seed"])
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "balls.csv"
            csv.write_text(ball_csv.format_rows(rows))
            shards = write_shards(ball_csv.read_rows(csv), p, Path(tmp))  # through the csv, as a user's file goes
            text = text_004_train(shards, args.model, p.ball.model.hidden_size, t.lr, t.batch_size, t.epochs,
                                  t.patience, t.seeds[0])
            cells = []
            for engine in ENGINES:
                start = time.perf_counter()
                run = ours(p, shards, args.model, engine)
                epochs = (run.stop_epoch, run.best_epoch) == (text.stop_epoch, text.best_epoch)
                exact = epochs and run.val_accuracy == text.val_accuracy and run.test_accuracy == text.test_accuracy
                matched[engine] += epochs
                identical[engine] += exact
                mark = "identical" if exact else "same epochs" if epochs else "MOVED"
                cells.append(f"{run.stop_epoch:5d} ({run.best_epoch:5d}) {run.test_accuracy:9.6f} {mark:>11s}"
                             f" {time.perf_counter() - start:4.0f}s")
        print(f"{i:4d} {g['rows']:5d} {g['start']!s:>9} {g['speed_max']:5d} {g['length']!s:>7} | "
              f"{text.stop_epoch:5d} ({text.best_epoch:5d}) {text.test_accuracy:9.6f}     | " + " | ".join(cells),
              flush=True)
    for engine in ENGINES:
        print(f"{engine} engine: the text's stop and best epoch on {matched[engine]} of {args.csvs} csvs, every "
              f"validation and the test accuracy bit for bit on {identical[engine]}"
              f"{' (the default engine)' if engine == default else ''}")
    return 0 if matched[default] == args.csvs else 1


if __name__ == "__main__":
    sys.exit(main())
