"""Time seed 004's training recipe: our code against a seed-style loop, in one run.

The seed-style loop is seed 004's ``train()`` as its text writes it: every epoch it reads
the gzip shards from disk again, cuts and packs every minibatch again, and validates with
autograd on. Ours is ``rnnlab.ball.train`` at the same params on both engines: ``torch``
(nn.RNN on packed batches, shards loaded once, inputs packed once: the same accuracies as the
seed's loop, bit for bit) and ``compiled`` (kernels.py; the same model to the last few bits
of float32, so its accuracies differ in the last digits; with the seed's plain SGD it runs each
epoch's minibatches in one kernel call). The ratio of times is the speed-up.

    python benchmarks/bench_ball.py                  # 50 epochs of the RNN on the pipeline's shards
    python benchmarks/bench_ball.py --rows 1000 --epochs 3 --model gru
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import itertools
import logging
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from rnnlab import ball, ball_data
from rnnlab.params import load


class SeedModel(nn.Module):
    """Seed 004's MyModel, with the recurrent layer chosen by name."""

    def __init__(self, kind: str, hidden_size: int):
        super().__init__()
        layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
        self.rnn = layer(input_size=1, hidden_size=hidden_size, num_layers=1, batch_first=True)
        self.linear = nn.Linear(in_features=hidden_size, out_features=1)

    def forward(self, x, lengths):
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        output, _ = self.rnn(packed)
        unpacked, _ = nn.utils.rnn.pad_packed_sequence(output, batch_first=True)
        last_hidden = unpacked.gather(1, (lengths - 1).reshape(-1, 1, 1).repeat(1, 1, unpacked.shape[2]))
        return self.linear(last_hidden.reshape(last_hidden.shape[0], last_hidden.shape[2]))


def seed_style(folder: Path, kind: str, hidden_size: int, lr: float, batch_size: int, epochs: int, seed: int):
    """Seed 004's train(), without its file writes; returns the validation accuracy per epoch."""
    torch.random.manual_seed(seed)
    model = SeedModel(kind, hidden_size)
    loss_function = torch.nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)

    def read_batches(base_path):
        for batch in itertools.count():
            path = folder / f"{base_path}.{batch}.pt"
            if not path.is_file():
                break
            yield torch.load(gzip.GzipFile(path, "rb"), weights_only=True)

    def calc_accuracy(actual, predicted):
        return 1 - ((actual - predicted).abs() / (actual.abs() + 0.0001)).mean().item()

    def split_batch_xy(batch, begin=None, end=None):
        batch_x = batch[0][begin:end]
        batch_x_lengths = batch[1][begin:end] - 1
        batch_y = batch_x.gather(1, batch_x_lengths.reshape(-1, 1))
        batch_x = batch_x.reshape(batch_x.shape[0], batch_x.shape[1], 1)
        return batch_x, batch_x_lengths, batch_y

    history = []
    for _ in range(epochs):
        model.train()
        for batch in read_batches("training_set"):
            for index in range(0, batch[0].shape[0], batch_size):
                batch_x, batch_x_lengths, batch_y = split_batch_xy(batch, index, index + batch_size)
                predicted = model(batch_x, batch_x_lengths)
                loss = loss_function(predicted, batch_y)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
        model.eval()
        accuracies = []
        for batch in read_batches("validating_set"):
            batch_x, batch_x_lengths, batch_y = split_batch_xy(batch)
            accuracies.append(calc_accuracy(batch_y, model(batch_x, batch_x_lengths)))
        history.append(sum(accuracies) / len(accuracies))
    return history


def prepared_shards(p, rows: int | None, folder: Path) -> Path:
    """The pipeline's shards if they exist and no row count is asked for; else fresh ones."""
    if rows is None and Path("data/ball/shards").is_dir():
        return Path("data/ball/shards")
    g, cfg = p.ball.generate, p.ball.prepare
    balls = ball_data.generate_rows(rows or g.rows, g.start, g.speed_max, g.length, g.seed)
    for chunk, parts in ball_data.make_shards(balls, cfg.chunk_lines, cfg.scale, cfg.split, cfg.seed):
        for split, shard in parts.items():
            (folder / ball_data.shard_name(split, chunk)).write_bytes(ball_data.shard_bytes(shard))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--model", default="rnn", choices=["rnn", "lstm", "gru"])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--rows", type=int, help="generate this many balls instead of using data/ball/shards")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    p = load(args.params)
    torch.set_num_threads(p.threads)
    recipe = dataclasses.replace(p.ball.train, epochs=args.epochs, patience=args.epochs)  # no early stop
    p = dataclasses.replace(p, ball=dataclasses.replace(p.ball, train=recipe))

    with tempfile.TemporaryDirectory() as tmp:
        shards = prepared_shards(p, args.rows, Path(tmp))
        print(f"seed 004's recipe, {args.model.upper()}, {args.epochs} epochs, shards in {shards}")
        start = time.perf_counter()
        theirs = seed_style(shards, args.model, p.ball.model.hidden_size, recipe.lr, recipe.batch_size, args.epochs,
                            recipe.seeds[0])
        t_seed = time.perf_counter() - start
        print(f"  (kernels loaded or compiled in {ball.warm_up():.2f} s first, once per process: not counted below)")
        runs = {engine: timed_train(p, shards, args.model, engine) for engine in ("torch", "compiled")}
    print(f"  seed-style loop      : {t_seed:6.1f} s   final validation accuracy {theirs[-1]:.6f}")
    for engine, (seconds, ours) in runs.items():
        same = "identical every epoch" if ours == theirs else \
            f"max |difference| {max(abs(a - b) for a, b in zip(ours, theirs)):.1e}"
        print(f"  rnnlab, {engine:8s} engine: {seconds:6.1f} s   final validation accuracy {ours[-1]:.6f}"
              f"   ({same})   speed-up {t_seed / seconds:5.2f}x")


def timed_train(p, shards: Path, model: str, engine: str) -> tuple[float, list[float]]:
    """Seconds and per-epoch validation accuracies of ``ball.train`` on one engine."""
    p = dataclasses.replace(p, ball=dataclasses.replace(p.ball, train=dataclasses.replace(p.ball.train, engine=engine)))
    start = time.perf_counter()
    _, result, _ = ball.train(p, shards, model)
    return time.perf_counter() - start, result.history["val_accuracy"][:, 0].tolist()

if __name__ == "__main__":
    main()
