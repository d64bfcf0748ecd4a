"""The PNG figures tell the truth: axes span the data, panels that compare share a scale, the
truth is drawn where it can be seen, seed bands are there when a figure says "over seeds", and
every figure carries a small caption of the params that made it, clear of the axes."""

import copy

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.ticker import NullFormatter

from rnnlab import params, plotting

from conftest import ROOT, caption_text

SEEDS = [0, 1, 2]


@pytest.fixture(scope="module")
def p():
    return params.load(ROOT / "params.yaml")


def drawn(fig):
    FigureCanvasAgg(fig).draw()
    return fig


def loss_history(x="epoch", n=30, column="test_loss", seeds=SEEDS, scale=1.0, train_seeds=True):
    """A history as the training stages write it (the sine one also has every seed's train loss)."""
    steps = np.arange(1, n + 1)
    frame = pd.DataFrame({x: steps, "train_loss": scale * 0.5 / steps})
    for k, seed in enumerate(seeds):
        frame[f"{column}_seed{seed}"] = scale * (0.4 + 0.1 * k) / np.sqrt(steps)
    columns = [f"{column}_seed{s}" for s in seeds]
    frame[column] = frame[columns].median(axis=1)
    frame[f"{column}_min"], frame[f"{column}_max"] = frame[columns].min(axis=1), frame[columns].max(axis=1)
    for seed in seeds if train_seeds else ():
        frame[f"train_loss_seed{seed}"] = frame.train_loss * (1 + 0.1 * seed)
    return frame


def ball_history(epochs, low, high):
    acc = np.linspace(low, high, epochs)
    return pd.DataFrame({"epoch": np.arange(1, epochs + 1), "train_accuracy": acc - 0.01, "val_accuracy": acc,
                         "val_mae": np.linspace(2, 0.05, epochs)})


REFERENCES = {"clean_sine": {"rollout_mse": 0.0093}, "zero": {"rollout_mse": 0.52}, "linear_ar": {"rollout_mse": 0.05}}


def every_figure(caption):
    """One of each figure the stages draw, from small made-up data, with ``caption``."""
    values = np.sin(np.linspace(0, 20, 300))
    sine_preds = pd.DataFrame({"step": np.arange(240, 300), "truth": values[240:]})
    for kind in ("rnn", "gru"):
        for seed in SEEDS:
            sine_preds[f"{kind}_seed{seed}"] = values[240:] * 0.9
        sine_preds[kind] = sine_preds[f"{kind}_seed0"]
    windows = pd.DataFrame({"step": np.arange(240, 300), "truth": values[240:], "rnn_one_step": values[240:],
                            "rnn_free": values[240:] * 0.8})
    starts = np.repeat([0.5, 1.5], 9)
    xs = np.concatenate([np.linspace(s, s + 10, 10)[1:] for s in (0.5, 1.5)])
    random_frame = pd.DataFrame({"start": starts, "x": xs, "truth": np.sin(xs), "rnn_pred": np.sin(xs) * 0.9})
    gates_frame = pd.DataFrame({"step": np.arange(10), "truth": np.zeros(10), "gru_pred": np.zeros(10),
                                "gru_update": np.full(10, 0.5), "gru_reset": np.full(10, 0.4)})
    gradient = pd.DataFrame({"steps_back": np.arange(5), "rnn_trained": [1, 0.1, 0.01, 1e-3, 1e-4],
                             "rnn_initial": [1, 1e-10, 1e-30, 0.0, 0.0]})
    histories = {"rnn": loss_history(), "gru": loss_history(scale=2)}
    return {
        "dataset": plotting.dataset(values, 240, caption=caption),
        "losses": plotting.losses(histories, REFERENCES, caption=caption),
        "predictions": plotting.predictions(values, 240, sine_preds, caption=caption),
        "ball_training": plotting.ball_training({"rnn": ball_history(50, -3, 0.9)}, caption=caption),
        "ball_predictions": plotting.ball_predictions(
            pd.DataFrame({"actual": [1.0, 2.0, 3.0], "rnn": [1.1, 2.0, 2.9], "gru": [0.0, 4.0, 3.0]}), caption=caption),
        "gradient_flow": plotting.gradient_flow(gradient, caption=caption),
        "gates": plotting.gates(gates_frame, caption=caption),
        "curves": plotting.curves(histories, "epoch", {"train_loss": "Train", "test_loss": "Test"}, "W", caption=caption),
        "curves_per_model": plotting.curves(histories, "epoch", {"train_loss": "Train", "test_loss": "Test"}, "R",
                                            per_model=("test_loss",), caption=caption),
        "window_predictions": plotting.window_predictions(values, 240, windows, caption=caption),
        "random_window_predictions": plotting.random_window_predictions(random_frame, caption=caption),
    }


# --- the params caption ---------------------------------------------------------------------------


def test_every_experiments_caption_names_its_sequence_length_seeds_and_recipe(p):
    s, sine = p.sine, plotting.sine_caption(p)
    assert sine.startswith(f"seq_len={p.seq_len} · {plotting.seeds_text(p.seeds)} · hidden {s.model.hidden_size}")
    assert f"{s.train.optimizer} lr {plotting.short_number(s.train.lr)} · {s.train.epochs} epochs" in sine
    assert plotting.gradient_caption(p).endswith(f"analysis.window={p.analysis.window} training steps")
    assert plotting.windows_caption(p).startswith(f"seq_len={p.windows.time_step} (windows.time_step)")
    assert plotting.random_caption(p).startswith(f"seq_len={p.random_windows.steps - 1} ")
    ball = plotting.ball_caption(p)
    assert ball.startswith("seq_len: each row's whole history") and f"sgd lr {p.ball.train.lr:g}" in ball
    assert plotting.sine_data_caption(p).startswith(f"sine.data: {p.sine.data.points} points")


def test_a_figure_without_an_mlp_names_no_mlp_widths(p):
    assert "MLP 32-16" in plotting.sine_caption(p)
    assert "MLP" not in plotting.sine_caption(p, models=["lstm", "gru"])  # the gates' figure
    assert "MLP" not in plotting.gradient_caption(p, models=["rnn", "lstm", "gru"])


def test_caption_follows_the_params():
    raw = copy.deepcopy(yaml.safe_load((ROOT / "params.yaml").read_text()))
    raw.update(seq_len=7, seeds=[0, 3])
    raw["sine"]["train"].update(lr=0.02, lr_schedule="onecycle", grad_clip=1.0)
    raw["sine"]["model"]["num_layers"] = 2
    text = plotting.sine_caption(params.parse(raw))
    assert text.startswith("seq_len=7 · seeds 0,3 · hidden 16 x 2 layers")
    assert f"adam lr 0.02 onecycle · {raw['sine']['train']['epochs']} epochs · grad clip 1" in text


def test_short_numbers():
    assert [plotting.short_number(x) for x in (0.0005, 0.001, 0.01, 0.1, 150, 1e-3)] == \
        ["5e-4", "1e-3", "0.01", "0.1", "150", "1e-3"]
    assert plotting.seeds_text([4]) == "seed 4" and plotting.seeds_text([2, 3, 4]) == "seeds 2-4"


@pytest.mark.parametrize("name", list(every_figure("x")))
def test_each_figure_carries_its_caption_at_the_foot_clear_of_every_axes(name):
    fig = drawn(every_figure("seq_len=20 · seeds 0-2")[name])
    assert caption_text(fig) == "seq_len=20 · seeds 0-2"
    (text,) = [t for t in fig.texts if t.get_gid() == plotting.CAPTION_GID]
    assert text.get_fontsize() <= 8
    renderer = fig.canvas.get_renderer()
    top = text.get_window_extent(renderer).y1
    for ax in fig.get_axes():
        assert ax.get_tightbbox(renderer).y0 > top, f"{name}: the caption runs into {ax.get_title()!r}"


def test_without_a_caption_a_figure_has_none():
    assert caption_text(plotting.gates(pd.DataFrame({"step": [0, 1], "truth": [0, 1]}))) is None


# --- ball ------------------------------------------------------------------------------------------


def test_accuracy_axis_spans_the_data_not_zero_to_one():
    fig = plotting.ball_training({"rnn": ball_history(300, 0.6, 0.95), "gru": ball_history(40, 0.55, 0.7)})
    acc_ax = fig.axes[0]
    low, high = acc_ax.get_ylim()
    assert 0 < low < 0.54 and 0.95 < high < 1.05


def test_accuracy_below_zero_stays_on_the_axis_and_the_stop_epoch_is_named():
    fig = plotting.ball_training({"rnn": ball_history(2765, -6.8, 0.95), "lstm": ball_history(101, -17.5, -0.8)})
    acc_ax = fig.axes[0]
    assert acc_ax.get_ylim()[0] < -17.5 and acc_ax.get_ylim()[1] >= 0.95
    assert acc_ax.get_yscale() == "symlog"
    # 101 epochs are not a sliver of a 2,765-epoch axis
    assert acc_ax.get_xscale() == "log" and fig.axes[1].get_xscale() == "log"
    labels = [t.get_text() for t in acc_ax.get_legend().get_texts()]
    assert labels == ["RNN (stopped at epoch 2765)", "LSTM (stopped at epoch 101; never above 0)"]


def test_ball_residual_panels_share_one_y_scale():
    frame = pd.DataFrame({"actual": [1.0, 2.0, 3.0], "rnn": [1.01, 2.0, 2.99], "lstm": [0.0, 5.0, 3.0]})
    fig = drawn(plotting.ball_predictions(frame))
    residual_axes = [ax for ax in fig.axes if ax.get_xlabel() == "actual next position"]
    assert len(residual_axes) == 2
    assert residual_axes[0].get_shared_y_axes().joined(*residual_axes)
    assert residual_axes[0].get_ylim() == residual_axes[1].get_ylim()
    assert residual_axes[0].get_ylim()[1] >= 3  # the LSTM's worst error, also in the RNN's panel


# --- windows and random windows ---------------------------------------------------------------------


def test_window_predictions_draw_the_data_over_the_predictions():
    values = np.sin(np.linspace(0, 20, 300))
    preds = pd.DataFrame({"step": np.arange(240, 300), "rnn_one_step": values[240:], "rnn_free": values[240:]})
    ax = plotting.window_predictions(values, 240, preds).axes[0]
    data = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert {c.get_label() for c in data} == {"training data", "test data"}
    assert min(c.get_zorder() for c in data) > max(line.get_zorder() for line in ax.get_lines())
    assert ax.get_xlim()[0] >= 240 - 100 - 10  # the last 100 training steps, not the whole series


def test_curves_shade_the_seed_band_when_they_say_over_seeds():
    histories = {kind: loss_history(x="iteration", column="test_rollout", train_seeds=False) for kind in ("rnn", "gru")}
    fig = plotting.curves(histories, "iteration", {"train_loss": "Train", "test_rollout": "Test"}, "R")
    train_ax, test_ax = fig.axes
    assert len([c for c in test_ax.collections if isinstance(c, PolyCollection)]) == 2
    assert "median of 3 seeds, band: best to worst seed" in test_ax.get_title()
    assert not [c for c in train_ax.collections if isinstance(c, PolyCollection)]
    assert "median over seeds" in train_ax.get_title()


def test_per_model_curves_put_each_band_in_its_own_panel_on_one_scale():
    histories = {k: loss_history(column="test_rollout", scale=s) for k, s in (("rnn", 1), ("lstm", 3), ("gru", 9))}
    fig = plotting.curves(histories, "epoch", {"train_loss": "Train", "test_rollout": "Test"}, "R", per_model=("test_rollout",))
    panels = fig.axes[1:]  # after the train loss panel
    assert [ax.get_title() for ax in panels] == ["RNN", "LSTM", "GRU"]
    assert all(panels[0].get_shared_y_axes().joined(panels[0], ax) for ax in panels)


def test_log_axes_have_plain_ticks_and_no_labelled_minor_ticks():
    fig = drawn(plotting.curves({"rnn": loss_history(n=5)}, "epoch", {"test_loss": "Test"}, "W"))
    ax = fig.axes[0]
    assert isinstance(ax.yaxis.get_minor_formatter(), NullFormatter)
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert labels and all("10^" not in label and "times" not in label for label in labels), labels


def test_random_window_predictions_have_a_legend_in_every_panel():
    xs = np.linspace(0.5, 10.5, 10)[1:]
    frame = pd.DataFrame({"start": 0.5, "x": xs, "truth": np.sin(xs), "rnn_pred": xs * 0, "gru_pred": xs * 0})
    fig = plotting.random_window_predictions(frame)
    for ax in fig.axes:
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels[0] == "sin(x), the truth" and "free run" in labels[1]
    assert "9-step free runs" in fig.axes[0].get_title()


# --- sine and analysis ---------------------------------------------------------------------------


def test_sine_test_losses_get_one_panel_per_model_on_a_shared_scale_with_the_references():
    histories = {"rnn": loss_history(), "lstm": loss_history(scale=3), "gru": loss_history(scale=0.1), "mlp": loss_history()}
    fig = plotting.losses(histories, REFERENCES)
    panels = fig.axes[1:]  # after the train loss panel
    assert len(panels) == 4 and all(panels[0].get_shared_y_axes().joined(panels[0], ax) for ax in panels)
    for ax in panels:
        assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 1
        assert {line.get_linestyle() for line in ax.get_lines()} >= {":", "--", "-."}


def test_a_reference_far_outside_the_curves_is_left_out_and_the_best_classical_forecaster_is_drawn():
    """On a series around 3e4, predicting zero scores ~1e9 against curves near 1e6: its line would
    stretch the log axis over three decades and squash every curve."""
    histories = {"gru": loss_history(scale=1e6), "rnn": loss_history(scale=2e6)}
    references = {"zero": {"rollout_mse": 9e8}, "naive": {"rollout_mse": 3e6}, "exp_smoothing": {"rollout_mse": 8e5}}
    fig = plotting.losses(histories, references, best=("exp_smoothing", "best classical: Holt-Winters"))
    for ax in fig.axes[1:]:
        levels = {line.get_label(): line.get_ydata()[0] for line in ax.get_lines() if len(set(line.get_ydata())) == 1}
        assert "predict zero" not in levels and levels["best classical: Holt-Winters"] == 8e5
        assert ax.get_ylim()[1] < 1e8


def test_the_validation_curve_that_judged_the_epochs_is_drawn_where_a_slice_was_held_out():
    with_slice = loss_history()
    with_slice["val_loss"] = with_slice["test_loss"] * 0.5
    fig = plotting.losses({"gru": with_slice, "rnn": loss_history()}, REFERENCES)
    gru, rnn = fig.axes[1:]
    (validation,) = [line for line in gru.get_lines() if line.get_label() == "validation, median"]
    np.testing.assert_array_equal(validation.get_ydata(), with_slice["val_loss"])
    assert not [line for line in rnn.get_lines() if line.get_label() == "validation, median"]


def test_the_best_classical_forecaster_is_drawn_beside_every_network_s_rollout():
    values = np.sin(np.linspace(0, 20, 300))
    preds = pd.DataFrame({"step": np.arange(240, 300), "truth": values[240:], "gru": values[240:], "rnn": values[240:],
                          "reference_exp_smoothing": values[240:] * 0.9})
    axes = plotting.predictions(values, 240, preds, reference_names={"exp_smoothing": "Holt-Winters"}).axes
    assert len(axes) == 2  # a panel per network, none for the reference
    for ax in axes:
        (line,) = [line for line in ax.get_lines() if line.get_label() == "best classical forecaster: Holt-Winters"]
        np.testing.assert_array_equal(line.get_ydata(), preds["reference_exp_smoothing"])


def test_a_gradient_that_underflowed_to_zero_is_a_gap_not_a_plunge():
    frame = pd.DataFrame({"steps_back": np.arange(4), "rnn_initial": [1.0, 1e-20, 0.0, 0.0]})
    fig = plotting.gradient_flow(frame)
    (line,) = fig.axes[0].get_lines()
    assert np.isnan(line.get_ydata()[2:]).all()
    assert "underflowed to 0" in fig.axes[0].get_title()


def test_prediction_panels_span_the_series_whatever_its_units():
    values = 150 + 100 * np.sin(np.linspace(0, 20, 300))  # e.g. sunspot counts, not a unit sine
    preds = pd.DataFrame({"step": np.arange(240, 300), "truth": values[240:], "gru": values[240:],
                          "rnn": np.linspace(150, 1e6, 60)})  # one run that blows up
    gru_ax, rnn_ax = plotting.predictions(values, 240, preds).axes
    low, high = gru_ax.get_ylim()
    assert low < values[140:].min() and values[140:].max() < high < 400
    assert rnn_ax.get_ylim()[1] < 700  # the blown-up run leaves the axis instead of flattening the data


def test_caption_of_a_series_of_ones_own_names_the_csv_not_the_sine():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    if "series" not in raw:
        pytest.skip("params.yaml has no series section")
    raw["series"].update(csv_path="data/sunspots/sunspots.csv", column="SUNACTIVITY", scaling="standard")
    p = params.parse(raw)
    assert "data: data/sunspots/sunspots.csv, SUNACTIVITY, scaling standard" in plotting.sine_caption(p)
    assert plotting.sine_data_caption(p).startswith("series: data/sunspots/sunspots.csv, column SUNACTIVITY")
