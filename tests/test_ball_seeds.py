"""Random seeds as a dimension of experiment B: one replica per seed of ``ball.train.seeds``,
trained in one batched pass, each stopped by its own patience and kept at its own best epoch,
so that every seed's replica is the run that seed alone would make."""

import dataclasses
import statistics

import matplotlib.collections
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from rnnlab import ball, ball_csv, ball_data, cli, io, params, plotting
from rnnlab.checkpoints import load_checkpoint, save_checkpoint
from rnnlab.errors import ParamsError
from rnnlab.models import ModelConfig, build_reference, build_stack
from rnnlab.training import EarlyStopping, FitResult

from conftest import ROOT

# text 004's recipe and the README's improved one, cut to seconds on 400 balls
SEED_RECIPE = dict(epochs=60, patience=10)
IMPROVED = dict(optimizer="adam", lr=0.02, lr_schedule="onecycle", epochs=30, batch_size=32, shuffle=True,
                min_history=2, monitor="val_mae", patience=3)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shards")
    rows = ball_csv.generate_rows(400, (-10, 10), 5, (5, 10), seed=0)
    for chunk, parts in ball_data.make_shards(rows, 2000, 50.0, (0.6, 0.8), seed=0):
        for split, part in parts.items():
            (folder / ball_data.shard_name(split, chunk)).write_bytes(ball_data.shard_bytes(part))
    return folder


def with_recipe(p, seeds, **recipe):
    # several seeds train as replicas of one stack: the compiled engine (the torch engine trains one)
    train = dataclasses.replace(p.ball.train, seeds=tuple(seeds), **{"engine": "compiled", **recipe})
    return dataclasses.replace(p, ball=dataclasses.replace(p.ball, train=train))


@pytest.fixture(scope="module")
def defaults():
    return params.load(ROOT / "params.yaml")


# --- params -------------------------------------------------------------------------------------


def test_the_default_is_one_seed_text_004s(defaults):
    assert defaults.ball.train.seeds == (0,)


@pytest.mark.parametrize(("seeds", "engine", "message"), [
    ([], "compiled", "ball.train.seeds must be a non-empty list without repeats, got []"),
    ([2, 2], "compiled", "ball.train.seeds must be a non-empty list without repeats, got [2, 2]"),
    ([0, "one"], "compiled", "ball.train.seeds[1] must be an integer, got 'one'"),
    ("abc", "compiled", "ball.train.seeds must be a list of seeds or a count, got 'abc'"),
    ([0, 1], "torch", "ball.train.seeds: the torch engine trains one seed (text 004's loop), got [0, 1]; "
                      "add -S ball.train.engine=compiled to train several at once"),
], ids=["empty", "repeated", "not-an-integer", "neither-list-nor-count", "torch-engine"])
def test_bad_seeds_are_refused_naming_the_key(root, seeds, engine, message):
    data = yaml.safe_load((root / "params.yaml").read_text())
    data["ball"]["train"].update(seeds=seeds, engine=engine)
    with pytest.raises(ParamsError) as info:
        params.parse(data)
    assert str(info.value) == message


def test_the_old_single_seed_key_is_unknown(root):
    data = yaml.safe_load((root / "params.yaml").read_text())
    data["ball"]["train"]["seed"] = 0
    with pytest.raises(ParamsError, match=r"^unknown key ball.train.seed \(known under ball.train: .*seeds"):
        params.parse(data)


# --- early stopping per replica -----------------------------------------------------------------


def test_each_replica_stops_by_its_own_patience_and_gets_its_own_best_weights_back():
    # three replicas; the weights of epoch e are all e, so a restored replica shows which epoch it kept
    stack = build_stack(ModelConfig("rnn", hidden_size=2), [0, 1, 2])
    stopping = EarlyStopping("val_accuracy", patience=2)
    curves = [
        [0.5, 0.9, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6],   # best 2, stops at 5 (5 - 2 > 2)
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.95, 0.9, 0.9, 0.9],  # best 6, stops at 9
        [-1.0] * 9,                                      # never beats 0: stops at 3, keeps epoch 3's weights
    ]
    stops = []
    for epoch in range(1, 10):
        with torch.no_grad():
            stack.flat.fill_(epoch)
        row = {"val_accuracy": torch.tensor([c[epoch - 1] for c in curves], dtype=torch.float64)}
        stops.append(stopping.should_stop(epoch, row, stack))
    assert stops == [False] * 8 + [True]  # training lasts until the last replica stops
    assert stopping.best_epochs == [2, 6, 0] and stopping.stop_epochs == [5, 9, 3]
    assert stopping.bests == [0.9, 0.95, 0.0]
    stopping.restore(stack)
    kept = [set(stack.flat[stack._replica_index() == r].tolist()) for r in range(3)]
    assert kept == [{2.0}, {6.0}, {3.0}]


def test_one_replica_reads_as_before_and_several_refuse_a_single_best_epoch():
    one = EarlyStopping("val_mae", patience=1, mode="min")
    assert one.best_epoch == 0 and one.best == np.inf  # before the first epoch, as the progress bar reads it
    several = EarlyStopping("val_mae", patience=1, mode="min")
    several.should_stop(1, {"val_mae": torch.tensor([0.3, 0.2])}, build_stack(ModelConfig("gru", hidden_size=2), [0, 1]))
    with pytest.raises(ValueError, match="best_epochs"):
        several.best_epoch  # noqa: B018
    with pytest.raises(ValueError, match="best_epochs"):
        FitResult({}, None, [3, 4], [5, 6]).best_epoch  # noqa: B018
    assert FitResult({}, None, [3], [5]).best_epoch == 3


# --- a seed's replica is that seed's own run ----------------------------------------------------


@pytest.mark.parametrize("recipe", [SEED_RECIPE, IMPROVED], ids=["text-004", "improved"])
def test_replica_0_of_several_seeds_is_the_single_seed_run_bit_for_bit(defaults, shards, recipe):
    (alone,), single, _ = ball.train(with_recipe(defaults, [0], **recipe), shards, "rnn")
    replicas, several, _ = ball.train(with_recipe(defaults, [0, 1, 2, 3, 4], **recipe), shards, "rnn")
    assert several.stop_epochs[0] == single.stop_epochs[0] and several.best_epochs[0] == single.best_epochs[0]
    stop = single.stop_epochs[0]
    for column, values in single.history.items():
        assert torch.equal(several.history[column][:stop, 0], values[:, 0]), column
    for name, weight in alone.state_dict().items():
        assert torch.equal(replicas[0].state_dict()[name], weight), name
    testing = ball_data.load_split(shards, "testing")
    assert ball.testing_metrics(replicas[0], testing, 50.0)[0] == ball.testing_metrics(alone, testing, 50.0)[0]


def test_replicas_stop_apart_and_each_keeps_its_own_best(defaults, shards):
    replicas, result, _ = ball.train(with_recipe(defaults, [0, 3], **IMPROVED), shards, "gru")
    assert result.stop_epochs[0] != result.stop_epochs[1], f"this data should stop the seeds apart: {result.stop_epochs}"
    assert len(result.history["val_mae"]) == max(result.stop_epochs)  # training ran until the last one stopped
    validating = ball_data.load_split(shards, "validating")
    for r, model in enumerate(replicas):
        curve = result.history["val_mae"][: result.stop_epochs[r], r]
        assert result.best_epochs[r] == int(curve.argmin()) + 1
        # the restored weights are the best epoch's: they score that epoch's validation MAE
        assert ball.score(model, validating)["mae"].item() == pytest.approx(curve.min().item(), rel=1e-5)


def test_without_shuffling_every_replica_is_its_own_seeds_run(defaults, shards):
    (alone,), single, _ = ball.train(with_recipe(defaults, [3], **SEED_RECIPE), shards, "lstm")
    replicas, several, _ = ball.train(with_recipe(defaults, [1, 3], **SEED_RECIPE), shards, "lstm")
    assert (several.stop_epochs[1], several.best_epochs[1]) == (single.stop_epochs[0], single.best_epochs[0])
    assert all(torch.equal(replicas[1].state_dict()[n], w) for n, w in alone.state_dict().items())


# --- outputs ------------------------------------------------------------------------------------


def fit_result(stops, best, epochs=6):
    values = torch.arange(epochs * len(stops), dtype=torch.float64).view(epochs, len(stops))
    history = {k: values.clone() for k in ("train_loss", "train_accuracy", "train_grad_norm", "val_accuracy", "val_mae")}
    return FitResult(history, None, best, stops)


def test_one_seed_history_has_todays_columns():
    frame = ball.history_frame(fit_result([6], [4]), scale=50.0, seeds=[0])
    assert list(frame.columns) == ["epoch", "train_accuracy", "val_accuracy", "train_loss", "val_mae", "grad_norm"]


def test_a_seeds_curve_ends_at_its_own_stop_and_the_median_is_over_the_seeds_still_training():
    # values[e, r] = 2e + r: seed 5 stopped after epoch 3, seed 7 ran all 6
    frame = ball.history_frame(fit_result([3, 6], [1, 2]), scale=1.0, seeds=[5, 7])
    assert frame["val_mae_seed5"].tolist()[:3] == [0.0, 2.0, 4.0] and frame["val_mae_seed5"][3:].isna().all()
    assert frame["val_mae_seed7"].tolist() == [1.0, 3.0, 5.0, 7.0, 9.0, 11.0]
    assert frame["val_accuracy"].tolist() == [0.5, 2.5, 4.5, 7.0, 9.0, 11.0]
    assert {c for c in frame.columns if "_seed" in c} == {
        f"{c}_seed{s}" for c in ("train_accuracy", "val_accuracy", "val_mae") for s in (5, 7)}


def seed_row(accuracy, mae, epochs=101, best=0):
    return {"test_accuracy": accuracy, "mae": mae, "max_abs_error": 3 * mae, "rounds_correct": 0.5,
            "epochs": epochs, "best_epoch": best}


def test_one_seeds_metrics_are_todays_file():
    headline, detail = ball.metrics_files({"rnn": {0: seed_row(0.9, 0.04, 2765, 2664)}})
    assert headline == {"rnn": seed_row(0.9, 0.04, 2765, 2664)}
    assert detail["rnn"]["seeds"] == {"0": seed_row(0.9, 0.04, 2765, 2664)}


def test_several_seeds_give_the_median_and_the_range_of_the_headline_numbers():
    rows = {0: seed_row(0.9, 0.04, 2765, 2664), 1: seed_row(0.5, 0.10, 101, 0), 2: seed_row(0.7, 0.02, 900, 799)}
    headline, detail = ball.metrics_files({"gru": rows})
    assert headline["gru"] == {
        "test_accuracy": 0.7, "test_accuracy_min": 0.5, "test_accuracy_max": 0.9,
        "mae": 0.04, "mae_min": 0.02, "mae_max": 0.10,
        "max_abs_error": 3 * 0.04, "rounds_correct": 0.5, "epochs": 900, "best_epoch": 799,
    }
    assert set(detail["gru"]) == {"median", "min", "max", "seeds"}
    assert detail["gru"]["seeds"]["1"] == rows[1] and detail["gru"]["max"]["epochs"] == 2765


def test_the_checkpoint_holds_every_replica_and_its_epochs(tmp_path):
    cfg = ModelConfig("rnn", hidden_size=8)
    replicas = [build_reference(cfg, seed=s) for s in (4, 5)]
    path = tmp_path / "rnn.pt"
    save_checkpoint(path, ball.checkpoint(cfg, replicas, [4, 5], FitResult({}, None, [7, 0], [17, 11]), 50.0))
    saved = load_checkpoint(path, cfg, [4, 5])
    assert ball.per_replica(saved.extra["epochs"], 2) == [17, 11] and saved.extra["best_epoch"] == [7, 0]
    for r, model in enumerate(replicas):
        assert all(torch.equal(saved.reference(r).state_dict()[n], w) for n, w in model.state_dict().items())
    one = tmp_path / "one.pt"
    save_checkpoint(one, ball.checkpoint(cfg, replicas[:1], [4], FitResult({}, None, [7], [17]), 50.0))
    assert load_checkpoint(one).extra == {"scale": 50.0, "epochs": 17, "best_epoch": 7}  # as before seeds were a list


def test_predict_ball_answers_the_median_of_the_seeds_and_their_range(tmp_path, capsys):
    cfg = ModelConfig("gru", hidden_size=8)
    replicas = [build_reference(cfg, seed=s) for s in (0, 1, 2)]
    save_checkpoint(tmp_path / "gru.pt", ball.checkpoint(cfg, replicas, [0, 1, 2], FitResult({}, None, [1] * 3, [2] * 3), 50.0))
    io.write_json(tmp_path / "ball.json", {"B": {"gru": {"mae": 0.5}}})
    code = cli.main(["predict-ball", "3,5,7", "--models", str(tmp_path), "--metrics", str(tmp_path / "ball.json"),
                     "--shards", str(tmp_path / "no-shards")])
    answers = [ball.predict_history(m, [3, 5, 7], 50.0) for m in replicas]
    assert code == 0
    assert capsys.readouterr().out == (f"Next ball location: {statistics.median(answers):.4f} "
                                       f"(median of 3 seeds; range {min(answers):.4f} to {max(answers):.4f})\n")


def test_the_training_figure_draws_a_seed_band_and_says_where_the_seeds_stopped():
    histories = {kind: ball.history_frame(fit_result(stops, [1, 1]), scale=1.0, seeds=[0, 1])
                 for kind, stops in (("rnn", [3, 6]), ("gru", [6, 6]))}
    fig = plotting.ball_training(histories)
    acc_ax, mae_ax = fig.axes
    for ax in (acc_ax, mae_ax):
        assert sum(isinstance(c, matplotlib.collections.PolyCollection) for c in ax.collections) == 2
    labels = [t.get_text() for t in acc_ax.get_legend().get_texts()]
    assert labels == ["RNN (stopped at epochs 3-6)", "GRU (stopped at epoch 6)"]
    assert "median of 2 seeds" in acc_ax.get_title()


def test_the_predictions_figure_draws_the_first_seed_per_model():
    frame = pd.DataFrame({"actual": [1.0, 2.0], "rnn": [1.1, 2.1], "rnn_seed0": [1.1, 2.1], "rnn_seed1": [0.9, 1.8]})
    fig = plotting.ball_predictions(frame)
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["RNN: mean |error| 0.100"]
