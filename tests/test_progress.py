"""Progress you can watch: bars that say which experiment and how far early stopping may go;
the history csv is rewritten while training runs, and ends as before."""

import dataclasses
import io

import pytest
import torch
import yaml

from rnnlab import ball, ball_csv, ball_data, data, params, random_windows, sine, windows
from rnnlab.progress import LiveHistory, Progress, chain
from rnnlab.training import FitResult

from conftest import tiny


class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def row(loss: float) -> dict:
    return {"train_loss": torch.tensor([loss, 2 * loss]), "test_loss": torch.tensor([3 * loss, 4 * loss])}


def per_seed(result: FitResult):
    return result.seed_frame([0, 1], per_seed=("test_loss",))


def rows_written(path) -> int | None:
    return len(path.read_text().splitlines()) - 1 if path.exists() else None


def test_live_history_rewrites_the_csv_at_most_once_per_interval(tmp_path):
    clock, path = Clock(), tmp_path / "history" / "gru.csv"
    live = LiveHistory(path, per_seed, every_seconds=2.0, clock=clock)
    seen = []
    for epoch, now in enumerate([0.5, 2.0, 3.0, 3.9, 4.0, 4.1], start=1):
        clock.now = now
        live.on_epoch(epoch, row(1.0 / epoch))
        seen.append(rows_written(path))
    # nothing in the first 2 s; then a write at 2.0 and the next one 2 s after it
    assert seen == [None, 2, 2, 2, 5, 5]
    assert path.read_text().splitlines()[0] == "epoch,train_loss,test_loss,test_loss_seed0,test_loss_seed1"


def test_live_history_of_a_short_run_is_written_once_at_the_end(tmp_path):
    clock, path = Clock(), tmp_path / "gru.csv"
    live = LiveHistory(path, per_seed, clock=clock)
    for epoch in range(1, 4):
        live.on_epoch(epoch, row(float(epoch)))
    assert not path.exists(), "a run shorter than the interval must not pay for live writes"
    history = {"train_loss": torch.tensor([[1.0, 2.0]], dtype=torch.float64),
               "test_loss": torch.tensor([[3.0, 4.0]], dtype=torch.float64)}
    live.finish(FitResult(history, None))
    assert path.read_text() == "epoch,train_loss,test_loss,test_loss_seed0,test_loss_seed1\n1,1.5,3.5,3.0,4.0\n"


@pytest.fixture
def tiny_params(tmp_path, default_params):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tiny(default_params, epochs=5)))
    return params.load(path)


def test_live_history_ends_byte_for_byte_as_the_history_fit_returns(tmp_path, tiny_params):
    values = data.noisy_sine(tiny_params.sine.data)
    seeds = list(tiny_params.seeds)
    path = tmp_path / "gru.csv"
    live = LiveHistory(path, lambda result: sine.history_frame(result, seeds), every_seconds=0.0)
    writes = []
    _, result, _ = sine.train(tiny_params, values, "gru", chain(live.on_epoch, lambda epoch, _: writes.append(path.read_text())))
    assert [len(text.splitlines()) - 1 for text in writes] == [1, 2, 3, 4, 5], "one more epoch in every write"
    expected = sine.history_frame(result, seeds).to_csv(index=False)  # what the stage wrote before live writes
    assert writes[-1] == expected, "the epochs collected live must be fit's history exactly"
    live.finish(result)
    assert path.read_text() == expected


def test_chain_calls_each_callback_in_order_and_skips_none():
    calls = []
    on_epoch = chain(lambda epoch, r: calls.append(("a", epoch)), None, lambda epoch, r: calls.append(("b", epoch)))
    on_epoch(1, {})
    on_epoch(2, {})
    assert calls == [("a", 1), ("b", 1), ("a", 2), ("b", 2)]
    chain(None)(3, {})  # nothing to call: no error



class Terminal(io.StringIO):
    """A stream that says it is a terminal, so Progress draws a tqdm bar into it."""

    def isatty(self) -> bool:
        return True


def early_stopped_run(progress: Progress, best_until: int = 2664, patience: int = 100) -> None:
    """Epochs as fit() shows them: the best improves every epoch up to ``best_until``, then
    training stops patience + 1 epochs later; the best shown is the best before the epoch."""
    for epoch in range(1, best_until + patience + 2):
        progress.update(epoch, best=min(epoch - 1, best_until), val_acc=0.5)
    progress.close()


def test_an_early_stopped_bar_ends_full_at_the_stop_epoch_and_says_what_stopping_means():
    stream = Terminal()
    progress = Progress(9999, "ball rnn", stream=stream, patience=100)
    assert progress.bar.total == 101, "with no best yet, training stops after patience + 1 epochs"
    early_stopped_run(progress)
    last = stream.getvalue().split("\r")[-1]
    assert last.startswith("ball rnn: 100%")
    assert "2765/2765" in last and "best=2664 stop<=2765 val_acc=0.5" in last


def test_an_early_stopped_run_in_a_log_prints_tenths_of_the_ceiling_and_where_it_stopped():
    stream = io.StringIO()
    early_stopped_run(Progress(9999, "ball rnn", stream=stream, patience=100))
    assert stream.getvalue().splitlines() == [
        "ball rnn: 999/1099 best=998 stop<=1099 val_acc=0.5",
        "ball rnn: 1998/2098 best=1997 stop<=2098 val_acc=0.5",
        "ball rnn: 2765/2765 best=2664 stop<=2765 val_acc=0.5",
    ]


def test_a_run_to_the_ceiling_shows_the_ceiling_as_its_limit():
    stream = io.StringIO()
    progress = Progress(50, "ball gru", stream=stream, patience=100)
    for epoch in range(1, 51):
        progress.update(epoch, best=epoch - 1)
    progress.close()
    assert stream.getvalue().splitlines()[-1] == "ball gru: 50/50 best=49 stop<=50"


def test_a_log_line_is_printed_when_a_step_of_several_units_crosses_a_tenth():
    stream = io.StringIO()
    progress = Progress(7 * 15, "random gru", stream=stream)  # 7 epochs of 15 iterations: a tenth is 10
    for epoch in range(1, 8):
        progress.update(epoch * 15, test=0.25)
    progress.close()
    assert stream.getvalue().splitlines() == [f"random gru: {15 * e}/105 test=0.25" for e in range(1, 8)]


@pytest.fixture
def descriptions(monkeypatch):
    """The label of every Progress the experiments build."""
    seen = []

    class Recorded(Progress):
        def __init__(self, total, desc, **kwargs):
            seen.append(desc)
            super().__init__(total, desc, stream=io.StringIO(), **kwargs)

    for module in (sine, ball, windows, random_windows):
        monkeypatch.setattr(module, "Progress", Recorded)
    return seen


def test_bars_are_labelled_with_the_experiment_and_the_model(tmp_path, tiny_params, descriptions):
    sine.train(tiny_params, data.noisy_sine(tiny_params.sine.data), "gru")
    windows.train(tiny_params, data.windows_series(tiny_params.windows.data), "lstm")
    random_windows.train(tiny_params, "gru")
    g = tiny_params.ball.generate
    rows = ball_csv.generate_rows(g.rows, g.start, g.speed_max, g.length, g.seed)
    for chunk, splits in ball_data.make_shards(rows, 100, 50.0, (0.6, 0.8), 0):
        for split, shard in splits.items():
            (tmp_path / ball_data.shard_name(split, chunk)).write_bytes(ball_data.shard_bytes(shard))
    ball.train(tiny_params, tmp_path, "rnn")
    assert descriptions == ["sine gru", "windows lstm", "random gru", "ball rnn"]


def test_a_series_of_yours_is_named_by_its_file_in_the_bars(tiny_params, descriptions):
    """Experiment S on a user's csv: the bar says `sales gru`, not `sine gru`."""
    p = dataclasses.replace(tiny_params, series=dataclasses.replace(tiny_params.series, csv_path="data/mine/sales.csv"))
    sine.train(p, data.noisy_sine(p.sine.data), "gru")
    assert descriptions == ["sales gru"]
