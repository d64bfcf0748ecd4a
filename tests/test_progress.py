"""Progress you can watch: the history csv is rewritten while training runs, and ends as before."""

import pytest
import torch
import yaml

from rnnlab import data, params, sine
from rnnlab.progress import LiveHistory, chain
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

