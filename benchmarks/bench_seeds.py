"""What many seeds cost: one model's training with N replicas in one batched pass, against one seed.

Experiment S: ``sine.train`` of one architecture at the params' seq_len and epochs, seeds 0..N-1
(``-S seeds=N``). Experiment B: ``ball.train`` on the compiled engine for a fixed number of
epochs (no early stop, so the number is the engine's cost per epoch; with early stopping a run
lasts until its slowest replica stops). One process, one torch thread; the kernels are loaded
from numba's cache before the clock starts. Read the ratios: the machine's load moves the seconds.

    python benchmarks/bench_seeds.py                          # S: GRU, N = 1 5 20 30 50 100
    python benchmarks/bench_seeds.py --model lstm --counts 1 30 --horizon 10
    python benchmarks/bench_seeds.py --ball --epochs 30       # B: the RNN, compiled engine
    python benchmarks/bench_seeds.py --stage --counts 1 30    # S: the train_sine stage, as dvc repro runs it

``--stage`` times what ``dvc repro`` pays for one model: the ``train_sine`` stage's whole process
(interpreter, imports, kernels from the cache, training, checkpoint and history), on the params'
sine prepared by the ``prepare_series`` stage (untimed), everything in a temporary folder.
"""

from __future__ import annotations

import rnnlab  # noqa: F401  (first: pins the numerical libraries' CPU code paths, rnnlab/cpu.py)

# isort: split

import argparse
import dataclasses
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from rnnlab import ball, data, sine
from rnnlab.models import warm_up
from rnnlab.params import load

ROOT = Path(__file__).resolve().parents[1]


def sine_seconds(p, values, model: str, count: int) -> float:
    start = time.perf_counter()
    sine.train(dataclasses.replace(p, seeds=tuple(range(count))), values, model)
    return time.perf_counter() - start


def ball_seconds(p, shards: Path, model: str, count: int, epochs: int) -> float:
    train = dataclasses.replace(p.ball.train, engine="compiled", seeds=tuple(range(count)), epochs=epochs,
                                patience=epochs)  # no early stop: every replica runs every epoch
    start = time.perf_counter()
    ball.train(dataclasses.replace(p, ball=dataclasses.replace(p.ball, train=train)), shards, model)
    return time.perf_counter() - start


def stage(name: str, *args: str | Path) -> None:
    subprocess.run([sys.executable, str(ROOT / f"stages/{name}.py"), *map(str, args)], cwd=ROOT, check=True,
                   capture_output=True)


def prepared_sine(p, params: Path, tmp: Path) -> Path:
    """The params' noisy sine through the prepare_series stage, in ``tmp/series``."""
    (tmp / "series").mkdir()
    csv = tmp / "sine.csv"
    csv.write_text(data.series_csv(data.noisy_sine(p.sine.data)))
    stage("prepare_series", csv, "--series", tmp / "series/series.csv", "--scaled", tmp / "series/scaled.csv",
          "--scaling", tmp / "series/scaling.json", "--params", params)
    return tmp / "series"


def stage_seconds(params: Path, series: Path, model: str, count: int, tmp: Path) -> float:
    """The train_sine stage's process with ``seeds: count``, as dvc.yaml runs it."""
    text = yaml.safe_load(params.read_text())
    text["seeds"] = count  # the one-key form: seeds 0..count-1
    edited = tmp / f"params_{count}.yaml"
    edited.write_text(yaml.safe_dump(text, sort_keys=False))
    start = time.perf_counter()
    stage("train_sine", "--model", model, "--data", series / "scaled.csv", "--scaling", series / "scaling.json",
          "--series", series / "series.csv", "--checkpoint", tmp / "model.pt", "--history", tmp / "history.csv",
          "--timing", tmp / "timing.json", "--params", edited)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--model", help="architecture (default: gru for S, rnn for the ball)")
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 5, 20, 30, 50, 100])
    parser.add_argument("--horizon", type=int, help="S: sine.train.horizon (the closed-loop objective)")
    parser.add_argument("--ball", action="store_true", help="time the ball's compiled engine instead of S")
    parser.add_argument("--epochs", type=int, default=30, help="the ball's epochs (fixed)")
    parser.add_argument("--rows", type=int, help="the ball: generate this many balls instead of data/ball/shards")
    parser.add_argument("--stage", action="store_true", help="S: time the train_sine stage's process instead")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    p = load(args.params)
    torch.set_num_threads(p.threads)
    print(f"kernels loaded in {warm_up():.2f} s (not counted)")
    if args.ball:
        sys.path.insert(0, str(Path(__file__).parent))
        from bench_ball import prepared_shards

        model = args.model or "rnn"
        with tempfile.TemporaryDirectory() as tmp:
            shards = prepared_shards(p, args.rows, Path(tmp))
            print(f"ball {model.upper()}, compiled engine, {args.epochs} epochs, shards in {shards}")
            run = lambda n: ball_seconds(p, shards, model, n, args.epochs)  # noqa: E731
            report(run, args.counts)
        return
    model = args.model or "gru"
    if args.stage:
        with tempfile.TemporaryDirectory() as tmp:
            print(f"S {model.upper()}: the train_sine stage's process, seq_len {p.seq_len}, {p.sine.train.epochs} epochs")
            series = prepared_sine(p, Path(args.params), Path(tmp))
            report(lambda n: stage_seconds(Path(args.params), series, model, n, Path(tmp)), args.counts)
        return
    if args.horizon:
        train = dataclasses.replace(p.sine.train, horizon=args.horizon)
        p = dataclasses.replace(p, sine=dataclasses.replace(p.sine, train=train))
    values = data.parse_series(data.series_csv(data.noisy_sine(p.sine.data)))
    print(f"S {model.upper()}, seq_len {p.seq_len}, {p.sine.train.epochs} epochs"
          + (f", horizon {args.horizon}" if args.horizon else ""))
    report(lambda n: sine_seconds(p, values, model, n), args.counts)


def report(run, counts: list[int]) -> None:
    base = None
    for count in counts:
        seconds = run(count)
        base = base or seconds
        print(f"  {count:4d} seeds: {seconds:7.2f} s = {seconds / base:5.2f}x the first", flush=True)


if __name__ == "__main__":
    main()
