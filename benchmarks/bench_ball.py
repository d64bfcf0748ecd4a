"""Time text 004's training recipe: our code against the text's own loop, fairly, in one run.

The text's loop is text 004's ``train()`` as it is written: every epoch it reads the gzip shards
from disk again, cuts and packs every minibatch again, and validates with autograd on; it keeps
the best validation accuracy and stops when that is 100 epochs old. Ours is ``rnnlab.ball.train``
at the same params on both engines: ``torch`` (the default: nn.RNN on packed batches, shards
loaded once, inputs packed once: the same numbers as the text's loop, bit for bit) and
``compiled`` (kernels.py: the same model to float32 rounding; with plain SGD it runs each epoch's
minibatches in one kernel call).

Fair timing: every side first runs once untimed (imports, ``torch.optim``'s first construction,
numba's cache, allocator warm-up), then the sides are timed in turn, round after round, and
each side's best round is reported. The ratio of best times is the speed-up.

    python benchmarks/bench_ball.py                  # 50 epochs of the RNN on the pipeline's shards
    python benchmarks/bench_ball.py --rows 1000 --epochs 3 --model gru --rounds 2
"""

from __future__ import annotations

import rnnlab  # noqa: F401  (first: pins the numerical libraries' CPU code paths, rnnlab/cpu.py)

# isort: split

import argparse
import copy
import dataclasses
import gzip
import itertools
import logging
import tempfile
from pathlib import Path

import torch
from timing import best_of
from torch import nn

from rnnlab import ball, ball_csv, ball_data
from rnnlab.params import load


class TextModel(nn.Module):
    """Text 004's MyModel, with the recurrent layer chosen by name."""

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


@dataclasses.dataclass
class TextRun:
    val_accuracy: list[float]  # per epoch
    stop_epoch: int
    best_epoch: int            # 0: never beat the starting record
    test_accuracy: float


def text_004_train(folder: Path, kind: str, hidden_size: int, lr: float, batch_size: int, epochs: int,
                   patience: int, seed: int) -> TextRun:
    """Text 004's train(): SGD on the training shards, read from disk every epoch, minibatches in
    order; the best validation accuracy's weights kept (in memory here, not in model.pt); stop when
    the record is more than ``patience`` epochs old; test accuracy of the best weights."""
    torch.random.manual_seed(seed)
    model = TextModel(kind, hidden_size)
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

    def mean_accuracy(base_path):
        accuracies = []
        for batch in read_batches(base_path):
            batch_x, batch_x_lengths, batch_y = split_batch_xy(batch)
            accuracies.append(calc_accuracy(batch_y, model(batch_x, batch_x_lengths)))
        return sum(accuracies) / len(accuracies)

    history, highest, highest_epoch, best_state = [], 0, 0, None
    for epoch in range(1, epochs + 1):
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
        history.append(mean_accuracy("validating_set"))
        if history[-1] > highest:
            highest, highest_epoch, best_state = history[-1], epoch, copy.deepcopy(model.state_dict())
        elif epoch - highest_epoch > patience:
            break
    if best_state is not None:  # the text would fail to reload a model.pt it never saved; keep the last
        model.load_state_dict(best_state)
    return TextRun(history, epoch, highest_epoch, mean_accuracy("testing_set"))


def write_shards(rows: list[list[int]], p, folder: Path) -> Path:
    """``prepare_ball`` of ``rows`` into ``folder`` at the params' chunking, scale and split."""
    cfg = p.ball.prepare
    for chunk, parts in ball_data.make_shards(rows, cfg.chunk_lines, cfg.scale, cfg.split, cfg.seed):
        for split, shard in parts.items():
            (folder / ball_data.shard_name(split, chunk)).write_bytes(ball_data.shard_bytes(shard))
    return folder


def prepared_shards(p, rows: int | None, folder: Path) -> Path:
    """The pipeline's shards if they exist and no row count is asked for; else fresh ones."""
    if rows is None and Path("data/ball/shards").is_dir():
        return Path("data/ball/shards")
    g = p.ball.generate
    return write_shards(ball_csv.generate_rows(rows or g.rows, g.start, g.speed_max, g.length, g.seed), p, folder)


def with_recipe(p, **changes):
    """``p`` with ``ball.train`` fields replaced."""
    return dataclasses.replace(p, ball=dataclasses.replace(p.ball, train=dataclasses.replace(p.ball.train, **changes)))


def ours(p, shards: Path, model: str, engine: str) -> TextRun:
    """``ball.train`` on one engine, read back as a TextRun (test accuracy of the kept weights)."""
    replicas, result, _ = ball.train(with_recipe(p, engine=engine), shards, model)
    test = ball.score(replicas[0], ball_data.load_split(shards, "testing"))["accuracy"].item()
    return TextRun(result.history["val_accuracy"][:, 0].tolist(), result.stop_epochs[0], result.best_epochs[0], test)


def theirs(p, shards: Path, model: str) -> TextRun:
    t = p.ball.train
    return text_004_train(shards, model, p.ball.model.hidden_size, t.lr, t.batch_size, t.epochs, t.patience, t.seeds[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--model", default="rnn", choices=["rnn", "lstm", "gru"])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per side after the untimed one")
    parser.add_argument("--rows", type=int, help="generate this many balls instead of using data/ball/shards")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    p = load(args.params)
    torch.set_num_threads(p.threads)
    p = with_recipe(p, epochs=args.epochs, patience=args.epochs, seeds=(p.ball.train.seeds[0],))  # no early stop

    with tempfile.TemporaryDirectory() as tmp:
        shards = prepared_shards(p, args.rows, Path(tmp))
        print(f"text 004's recipe, {args.model.upper()}, {args.epochs} epochs, shards in {shards}; "
              f"each side warmed up once, then best of {args.rounds} alternating rounds")
        best = best_of(args.rounds, {
            "text 004's loop": lambda: theirs(p, shards, args.model),
            "rnnlab, torch engine": lambda: ours(p, shards, args.model, "torch"),
            "rnnlab, compiled engine": lambda: ours(p, shards, args.model, "compiled"),
        })
    (first, (t_text, text)), *rest = best.items()
    print(f"  {first:24s}: {t_text:6.2f} s   final validation accuracy {text.val_accuracy[-1]:.6f}")
    for name, (seconds, run) in rest:
        same = "identical every epoch" if run.val_accuracy == text.val_accuracy else \
            f"max |difference| {max(abs(a - b) for a, b in zip(run.val_accuracy, text.val_accuracy)):.1e}"
        print(f"  {name:24s}: {seconds:6.2f} s   final validation accuracy {run.val_accuracy[-1]:.6f}"
              f"   ({same})   speed-up {t_text / seconds:5.2f}x")


if __name__ == "__main__":
    main()
