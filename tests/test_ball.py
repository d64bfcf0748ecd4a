"""Experiment B's model side: packed many-to-one, text 004's accuracy, early stopping, predict."""

import itertools

import numpy as np
import pytest
import torch

from rnnlab import ball
from rnnlab.engine import Epoch
from rnnlab.models import ModelConfig, build_reference, build_stack
from rnnlab.training import EarlyStopping, fit, runs_whole_epochs

from test_training import training


def shard(rows, scale=50.0):
    width = max(map(len, rows))
    padded = torch.tensor([r + [0] * (width - len(r)) for r in rows], dtype=torch.float) / scale
    return padded, torch.tensor([len(r) for r in rows])


def test_inputs_are_all_positions_but_the_last_and_the_target_is_the_last():
    x, lengths, y = ball.split_inputs(shard([[1, 3, 5, 7, 9], [9, 7, 5]], scale=1.0))
    assert lengths.tolist() == [4, 2]
    assert y.flatten().tolist() == [9.0, 5.0]
    assert x.shape == (2, 5, 1)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_packed_prediction_equals_running_each_history_alone(kind):
    model = build_reference(ModelConfig(kind, hidden_size=8), seed=0)
    rows = [[1, 3, 5, 7, 9, 11], [9, 7, 5], [0, -3, -6, -9]]
    x, lengths, _ = ball.split_inputs(shard(rows))
    batched = ball.predict_next(model, x, lengths)
    for row, prediction in zip(rows, batched):
        inputs = torch.tensor(row[:-1], dtype=torch.float).view(1, -1, 1) / 50
        alone, _ = model(inputs)
        torch.testing.assert_close(prediction, alone[0, -1], atol=1e-6, rtol=0)


def test_accuracy_is_text_004s_formula():
    actual = torch.tensor([[0.5], [0.0], [-0.2]])
    predicted = torch.tensor([[0.4], [0.01], [-0.2]])
    expected = 1 - np.mean([0.1 / 0.5001, 0.01 / 0.0001, 0.0])
    assert ball.accuracy(actual, predicted) == pytest.approx(expected, rel=1e-5)


def test_position_metrics_are_in_ball_positions():
    metrics = ball.position_metrics(np.array([4.0, 9.0, -4.0]), np.array([4.2, 8.4, -4.0]))
    assert metrics == pytest.approx({"mae": 0.8 / 3, "max_abs_error": 0.6, "rounds_correct": 2 / 3})


def test_prefixes_add_every_shorter_history():
    padded, lengths = ball.with_prefixes(shard([[1, 3, 5, 7, 9]], scale=1.0), min_history=2)
    assert lengths.tolist() == [3, 4, 5]
    assert padded[0].tolist() == [1, 3, 5, 0, 0]


def test_minibatches_walk_the_shards_in_order_and_shuffle_only_when_asked():
    shards = [shard([[i, i + 1, i + 2]] * 1) for i in range(0, 500, 100)]
    rows = [shard([[i, i + 1, i + 2] for i in range(k, k + 250)]) for k in (0, 1000)]
    in_order = ball.Minibatches(rows, shards, batch_size=100)
    assert in_order.steps_per_epoch() == 6  # 3 per shard of 250 rows
    targets = [y[0].item() * 50 for _, _, y in in_order.batches()]
    assert targets == pytest.approx([2, 102, 202, 1002, 1102, 1202], abs=1e-3)
    shuffled = ball.Minibatches(rows, shards, batch_size=100, shuffle=torch.Generator().manual_seed(0))
    assert shuffled.steps_per_epoch() == 5
    again = ball.Minibatches(rows, shards, batch_size=100, shuffle=torch.Generator().manual_seed(0))
    first = [y.flatten().tolist() for _, _, y in shuffled.batches()]
    assert first == [y.flatten().tolist() for _, _, y in again.batches()]
    assert first != [y.flatten().tolist() for _, _, y in shuffled.batches()]  # a new order each epoch


def test_early_stopping_follows_text_004s_rule():
    stopping = EarlyStopping("val_accuracy", patience=2)
    model = torch.nn.Linear(1, 1)
    values = [0.5, 0.7, 0.6, 0.69, 0.65]
    stops = [stopping.should_stop(e, {"val_accuracy": torch.tensor([v])}, model) for e, v in enumerate(values, 1)]
    # best at epoch 2; epochs 3, 4 are within patience; epoch 5 is 3 > 2 epochs past the best
    assert stops == [False, False, False, False, True]
    assert stopping.best_epoch == 2 and stopping.best == pytest.approx(0.7)


def test_training_keeps_the_best_epoch_and_learns():
    rows = [[s + v * k for k in range(n)] for s in range(-5, 6) for v in (-2, -1, 1, 2) for n in (5, 7)]
    data = shard(rows)
    model = build_reference(ModelConfig("gru", hidden_size=8), seed=0)
    regime = ball.Minibatches([data], [data], batch_size=16)
    stopping = EarlyStopping("val_mae", patience=5, mode="min")
    result = fit(model, regime, training("adam", 0.02, 40), stopping=stopping)
    maes = result.history["val_mae"][:, 0]
    assert result.best_epoch == int(maes.argmin()) + 1
    assert ball.score(model, [data])["mae"].item() == pytest.approx(maes.min().item(), rel=1e-6)
    assert maes.min() < 0.25 * maes[0], f"validation MAE {maes[0]:.4f} -> {maes.min():.4f}"


@pytest.mark.parametrize("kind", ["rnn", "gru"])
def test_the_compiled_engine_trains_the_torch_engines_model_to_float32_rounding(tmp_path, root, kind):
    import dataclasses

    from rnnlab import ball_csv, ball_data, params

    p = params.load(root / "params.yaml")
    rows = ball_csv.generate_rows(400, (-10, 10), 5, (5, 10), seed=0)
    for chunk, parts in ball_data.make_shards(rows, 2000, 50.0, (0.6, 0.8), seed=0):
        for split, part in parts.items():
            (tmp_path / ball_data.shard_name(split, chunk)).write_bytes(ball_data.shard_bytes(part))
    runs = {}
    for engine in ("torch", "compiled"):
        recipe = dataclasses.replace(p.ball.train, epochs=5, engine=engine)
        (model,), result, _ = ball.train(dataclasses.replace(p, ball=dataclasses.replace(p.ball, train=recipe)), tmp_path, kind)
        assert isinstance(model, torch.nn.Module) and not hasattr(model, "flat")  # checkpoints read a plain module
        runs[engine] = result.history["val_mae"][:, 0]
    torch.testing.assert_close(runs["compiled"], runs["torch"], atol=1e-5, rtol=1e-4)


def test_predict_history_scales_in_and_out():
    model = build_reference(ModelConfig("rnn", hidden_size=8), seed=0)
    with torch.no_grad():
        direct, _ = model(torch.tensor([1.0, 3.0, 5.0]).view(1, 3, 1) / 50)
    assert ball.predict_history(model, [1, 3, 5], scale=50) == pytest.approx(direct[0, -1].item() * 50, rel=1e-6)


@pytest.mark.parametrize("engine", ["torch", "compiled"])
def test_training_twice_gives_bitwise_identical_checkpoints(tmp_path, root, engine):
    import dataclasses

    from rnnlab import ball_csv, ball_data, params
    from rnnlab.checkpoints import save_checkpoint

    p = params.load(root / "params.yaml")
    recipe = dataclasses.replace(p.ball.train, epochs=2, engine=engine)
    p = dataclasses.replace(p, ball=dataclasses.replace(p.ball, train=recipe))
    rows = ball_csv.generate_rows(400, (-10, 10), 5, (5, 10), seed=0)
    for chunk, parts in ball_data.make_shards(rows, 2000, 50.0, (0.6, 0.8), seed=0):
        for split, part in parts.items():
            (tmp_path / ball_data.shard_name(split, chunk)).write_bytes(ball_data.shard_bytes(part))
    for run in ("a", "b"):
        replicas, result, _ = ball.train(p, tmp_path, "lstm")
        checkpoint = ball.checkpoint(ball.model_config(p, "lstm"), replicas, [0], result, scale=50.0)
        save_checkpoint(tmp_path / f"{run}.ckpt", checkpoint)
    assert (tmp_path / "a.ckpt").read_bytes() == (tmp_path / "b.ckpt").read_bytes()


@pytest.mark.parametrize("sizes", [[100, 100, 100], [100, 100, 37]])
def test_minibatch_accuracies_are_one_accuracy_per_minibatch_to_the_bit(sizes):
    g = torch.Generator().manual_seed(0)
    actual = torch.randn(sum(sizes), 1, generator=g)
    predicted = actual + 0.1 * torch.randn(sum(sizes), 1, generator=g)
    starts = np.cumsum([0, *sizes])
    each = [ball.accuracy(actual[a:b], predicted[a:b]) for a, b in itertools.pairwise(starts)]
    assert ball.minibatch_accuracies(actual, predicted, starts).tolist() == each


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
@pytest.mark.parametrize("shuffled", [False, True])
def test_whole_epoch_training_gives_the_step_by_step_numbers(kind, shuffled):
    rows = [[s + v * k for k in range(n)] for s in range(-5, 6) for v in (-2, -1, 1, 2) for n in (5, 7, 9)]
    training_rows, validating = shard(rows[::2]), shard(rows[1::2])
    runs = {}
    for whole in (True, False):
        shuffle = torch.Generator().manual_seed(0) if shuffled else None
        regime = ball.Minibatches([training_rows], [validating, validating], 20, shuffle, packed=False)
        regime.compiled_epochs = whole
        model, recipe = build_stack(ModelConfig(kind, hidden_size=8), [0]), training("sgd", 0.1, 4)
        assert runs_whole_epochs(model, regime, recipe) == whole
        runs[whole] = model, fit(model, regime, recipe).history
    (model, whole), (stepped_model, stepped) = runs[True], runs[False]
    assert torch.equal(model.flat, stepped_model.flat)
    assert {k: v.tolist() for k, v in whole.items()} == {k: v.tolist() for k, v in stepped.items()}
    assert ball.score(model, [validating]) == ball.score_rows(model, Epoch.of([ball.split_inputs(validating)]))


@pytest.mark.parametrize("recipe", [training("adam", 0.1, 1), training("sgd", 0.1, 1, lr_schedule="onecycle"),
                                    training("sgd", 0.1, 1, grad_clip=1.0)])
def test_only_plain_sgd_runs_whole_epochs(recipe):
    data = shard([[1, 2, 3, 4]] * 10)
    model = build_stack(ModelConfig("rnn", hidden_size=4), [0])
    assert runs_whole_epochs(model, ball.Minibatches([data], [data], 5, packed=False), training("sgd", 0.1, 1))
    assert not runs_whole_epochs(model, ball.Minibatches([data], [data], 5, packed=False), recipe)
    assert not runs_whole_epochs(build_reference(ModelConfig("rnn", hidden_size=4)), ball.Minibatches([data], [data], 5),
                                 training("sgd", 0.1, 1))
