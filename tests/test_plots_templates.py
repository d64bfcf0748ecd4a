"""The interactive plots (issue 14): dvc.yaml's top-level plots, .dvc/plots templates, plot_data's csvs.

Each top-level plot reads one narrow csv written by stage plot_data (x, model, y) and names a template
that titles its axes from the plot's x_label / y_label, colours by model with plotting.COLORS and
leaves out empty values. No stage declares a csv under `plots:`: DVC would draw it a second time.
"""

import json
import re
from pathlib import Path

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest
import yaml
from dvc_render import VegaRenderer

from rnnlab import plot_data
from rnnlab.plotting import COLORS, GATE_STYLES

from conftest import ROOT

TEMPLATES = ROOT / ".dvc" / "plots"
DVC_YAML = yaml.safe_load((ROOT / "dvc.yaml").read_text())
TOP_LEVEL = {name: spec for entry in DVC_YAML["plots"] for name, spec in entry.items()}
COLOUR_PAIR = re.compile(r"'([^']+)': '(#[0-9a-f]{6})'")


def template(name: str) -> dict:
    return json.loads((TEMPLATES / f"{name}.json").read_text())


def views(spec: dict) -> list[dict]:
    """The spec itself, or its layers."""
    return spec.get("layer", [spec])


def colour_map(spec: dict) -> dict[str, str]:
    calcs = [t["calculate"] for t in spec["transform"] if t.get("as") == "colour"]
    assert len(calcs) == 1, "one calculate gives every point its model's colour"
    return dict(COLOUR_PAIR.findall(calcs[0]))


def test_every_top_level_plot_names_an_existing_template_and_labels_its_axes():
    assert len(TOP_LEVEL) == 12
    for name, spec in TOP_LEVEL.items():
        assert (TEMPLATES / f"{spec['template']}.json").is_file(), name
        assert spec["title"] and spec["x_label"] and spec["y_label"], name
        for label in (spec["x_label"], spec["y_label"]):  # titles, not `y` or a raw field name
            assert label not in ("x", "y") and not re.fullmatch(r"[a-z]+(_[a-z]+)+", label), name
        assert spec["y_label"] != next(iter(spec["y"].values())), name
        if spec["template"].endswith("_log"):
            assert "log scale" in spec["y_label"], name


def test_every_top_level_plot_reads_its_own_narrow_csv_from_plot_data():
    out = DVC_YAML["stages"]["plot_data"]["outs"]
    assert out == ["plots/interactive"]
    for name, spec in TOP_LEVEL.items():
        assert spec["y"] == {f"plots/interactive/{name}.csv": spec["y"][f"plots/interactive/{name}.csv"]}, name
    stage = (ROOT / "stages" / "plot_data.py").read_text()
    for name in TOP_LEVEL:
        assert f'"{name}":' in stage, f"stages/plot_data.py writes no {name}.csv"


def test_no_stage_declares_a_csv_plot():
    """DVC draws every stage-level plot on its own, beside the top-level plots that read the same file."""
    for name, stage in DVC_YAML["stages"].items():
        for entry in stage.get("plots", []):
            path = entry if isinstance(entry, str) else next(iter(entry))
            assert path.endswith(".png"), f"{name}: {path} under plots: would be drawn a second time"


def test_unused_templates_are_gone():
    used = {spec["template"] for spec in TOP_LEVEL.values()}
    assert {p.stem for p in TEMPLATES.glob("*.json")} == used


@pytest.mark.parametrize("name", sorted(p.stem for p in TEMPLATES.glob("*.json")))
def test_template_titles_axes_and_uses_the_model_colours(name):
    spec = template(name)
    expected = {plot_data.NAMES[kind]: mcolors.to_hex(colour) for kind, colour in COLORS.items()}
    colours = colour_map(spec)
    assert {k: v for k, v in colours.items() if k in expected} == expected
    assert set(colours) == set(plot_data.NAMES.values())
    plotted = [v for v in views(spec) if v["encoding"]["y"]["field"] == "<DVC_METRIC_Y>"]
    assert plotted, "a view draws the plot's y"
    for view in plotted:
        encoding = view["encoding"]
        assert encoding["x"]["title"] == "<DVC_METRIC_X_LABEL>"
        assert encoding["y"]["title"] == "<DVC_METRIC_Y_LABEL>"
        assert encoding["color"]["field"] == "model"
        assert encoding["color"]["scale"] == {"range": {"field": "colour"}}  # only the models in the data
        assert "domain" not in encoding["color"]["scale"]
    keep = [t["filter"] for t in spec["transform"] if "filter" in t]
    assert keep and "isFinite(toNumber(datum['<DVC_METRIC_Y>']))" in keep[0], "empty cells must not be drawn as 0"
    if name.endswith("_log"):
        assert encoding["y"]["scale"] == {"type": "log"} and "> 0" in keep[0]
    # an optional anchor: with it DVC drops the filename and field it would add to every point
    assert "<DVC_METRIC_ZOOM_AND_PAN>" in json.dumps(spec)


def test_scatter_draws_points_and_the_line_y_equals_x():
    marks = [view["mark"]["type"] for view in views(template("models_scatter"))]
    assert "point" in marks and "line" not in marks
    rule = next(v for v in views(template("models_scatter")) if "x2" in v["encoding"])
    assert rule["encoding"]["x"]["field"] == rule["encoding"]["y"]["field"]
    assert rule["encoding"]["x2"]["field"] == rule["encoding"]["y2"]["field"]


@pytest.mark.parametrize("name", sorted(TOP_LEVEL))
def test_dvc_fills_the_template_with_narrow_points(name, tmp_path):
    """What dvc-render makes of a top-level plot: titles filled, points holding only x, model, y and rev."""
    spec = TOP_LEVEL[name]
    y = next(iter(spec["y"].values()))
    row = {spec["x"]: "1", "model": "GRU", y: "0.5", f"{y}_min": "0.4", f"{y}_max": "0.6", "curve": "GRU update"}
    row = {k: v for k, v in row.items() if k in {spec["x"], y, *_columns(name)}}
    points = [{**row, "rev": "workspace", "filename": f"{name}.csv", "field": y}]
    properties = {k: spec[k] for k in ("title", "x_label", "y_label", "template")}
    properties |= {"x": spec["x"], "y": y, "template_dir": str(TEMPLATES)}
    properties["anchors_y_definitions"] = [{"filename": f"{name}.csv", "field": y}]
    filled = VegaRenderer(points, name, **properties).get_filled_template()
    text = json.dumps(filled)
    assert "<DVC_METRIC" not in text
    assert spec["x_label"] in text and json.dumps(spec["y_label"])[1:-1] in text
    assert filled["data"]["values"] == [{**row, "rev": "workspace"}]


def _columns(name: str) -> set[str]:
    if name == "ball_test_predictions":
        return {"model", "predicted_min", "predicted_max"}
    if name in ("gates", "gradient_flow"):
        return {"curve"}
    return {"model"}


# plot_data: the writer of the narrow csvs


def test_histories_become_rows_of_x_model_y():
    frames = {
        "mlp": pd.DataFrame({"epoch": [1, 2], "test_loss": [0.5, 0.25], "test_loss_seed0": [9.0, 9.0]}),
        "gru": pd.DataFrame({"epoch": [1, 2], "test_loss": [0.4, 0.2], "test_loss_seed0": [9.0, 9.0]}),
    }
    table = plot_data.histories(frames, "epoch", "test_loss")
    assert list(table.columns) == ["epoch", "model", "test_loss"]
    assert table.to_dict("records") == [
        {"epoch": 1, "model": "MLP", "test_loss": 0.5},
        {"epoch": 2, "model": "MLP", "test_loss": 0.25},
        {"epoch": 1, "model": "GRU", "test_loss": 0.4},
        {"epoch": 2, "model": "GRU", "test_loss": 0.2},
    ]


def test_empty_cells_are_rows_left_out(tmp_path):
    frame = pd.DataFrame({"step": [400, 401, 402], "truth": [1.0, 2.0, 3.0], "gru_one_step": [np.nan, 2.5, np.nan]})
    table = plot_data.series(frame, "step", {"truth": "truth", "gru_one_step": "gru"})
    assert table[table.model == "GRU"].step.tolist() == [401]
    assert table[table.model == "truth"].step.tolist() == [400, 401, 402]
    plot_data.write(tmp_path / "t.csv", table)
    assert ",," not in (tmp_path / "t.csv").read_text() and "nan" not in (tmp_path / "t.csv").read_text()


def test_values_are_written_to_4_significant_digits(tmp_path):
    table = plot_data.histories({"rnn": pd.DataFrame({"epoch": [1], "val_mae": [3.616553917527199]})}, "epoch", "val_mae")
    plot_data.write(tmp_path / "t.csv", table)
    assert (tmp_path / "t.csv").read_text() == "epoch,model,val_mae\n1,RNN,3.617\n"


def test_a_long_curve_keeps_its_envelope():
    rng = np.random.default_rng(0)
    y = rng.normal(size=2765)
    frame = pd.DataFrame({"epoch": np.arange(1, 2766), "val_mae": y})
    table = plot_data.histories({"rnn": frame}, "epoch", "val_mae")
    assert len(table) <= plot_data.MAX_POINTS + 2
    assert table.epoch.is_monotonic_increasing
    assert table.epoch.iloc[0] == 1 and table.epoch.iloc[-1] == 2765
    assert table.val_mae.min() == y.min() and table.val_mae.max() == y.max()
    short = pd.DataFrame({"epoch": [1, 2, 3], "val_mae": [3.0, 2.0, 1.0]})
    assert len(plot_data.histories({"rnn": short}, "epoch", "val_mae")) == 3


def test_spread_gives_mean_and_range_per_actual_position():
    frame = pd.DataFrame({"actual": [1.0, 1.0000001, 2.0], "rnn": [0.5, 1.5, 2.0]})
    table = plot_data.spread(frame, "actual", {"rnn": "rnn"}, "predicted")
    assert table.to_dict("records") == [
        {"actual": 1.0, "model": "RNN", "predicted": 1.0, "predicted_min": 0.5, "predicted_max": 1.5},
        {"actual": 2.0, "model": "RNN", "predicted": 2.0, "predicted_min": 2.0, "predicted_max": 2.0},
    ]


def test_curves_name_model_and_curve_in_one_column():
    frame = pd.DataFrame({"step": [1, 2], "lstm_forget": [0.5, 0.6], "gru_update": [0.4, np.nan]})
    table = plot_data.curves(frame, "step", {"lstm_forget": ("lstm", "forget"), "gru_update": ("gru", "update")}, "activation")
    assert list(table.columns) == ["step", "curve", "activation"]
    assert table.curve.tolist() == ["LSTM forget", "LSTM forget", "GRU update"]


def test_an_unknown_model_has_no_legend_name():
    with pytest.raises(ValueError, match="unknown model 'transformer'"):
        plot_data.display_name("transformer")


def test_stage_writes_every_plot_csv(tmp_path):
    """stages/plot_data.py on tiny inputs of the real layouts: one csv per top-level plot, nothing else."""
    from conftest import run

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    write = lambda path, frame: (path.parent.mkdir(parents=True, exist_ok=True), frame.to_csv(path, index=False))  # noqa: E731
    epochs = pd.DataFrame({"epoch": [1, 2], "train_loss": [0.5, 0.4], "test_loss": [0.6, 0.5],
                           "val_accuracy": [-1.0, 0.5], "val_mae": [2.0, 1.0]})
    iterations = pd.DataFrame({"iteration": [100, 200], "train_loss": [0.5, 0.4], "test_rollout": [0.9, 0.8]})
    for experiment, frame in (("sine", epochs), ("ball", epochs), ("windows", epochs), ("random", iterations)):
        key = "random_windows" if experiment == "random" else experiment
        for kind in params[key]["models"]:
            write(tmp_path / experiment / f"{kind}.csv", frame)
    models = params["sine"]["models"]
    write(tmp_path / "sine.csv", pd.DataFrame({"step": [801, 802], "truth": [0.1, 0.2], **{k: [0.1, 0.2] for k in models}}))
    write(tmp_path / "ball.csv", pd.DataFrame({"actual": [1.0, 2.0], **{k: [1.1, 2.1] for k in params["ball"]["models"]}}))
    write(tmp_path / "windows.csv", pd.DataFrame({
        "step": [400, 401], "truth": [0.1, 0.2],
        **{f"{k}_{w}": [np.nan, 0.2] for k in params["windows"]["models"] for w in ("one_step", "free")},
    }))
    gradient_flow = pd.DataFrame({"steps_back": [1, 0], "rnn_trained": [0.1, 1.0], "rnn_initial": [0.2, 1.0]})
    write(tmp_path / "gradient_flow.csv", gradient_flow)
    write(tmp_path / "gates.csv", pd.DataFrame({"step": [801, 802], "truth": [0.1, 0.2], "gru_pred": [0.1, 0.2],
                                                "gru_update": [0.5, 0.6], "gru_reset": [0.4, 0.5]}))
    run([
        "python", str(ROOT / "stages" / "plot_data.py"), "--params", str(ROOT / "params.yaml"),
        "--sine-histories", "sine", "--ball-histories", "ball", "--windows-histories", "windows",
        "--random-histories", "random", "--sine-predictions", "sine.csv", "--ball-predictions", "ball.csv",
        "--windows-predictions", "windows.csv", "--gradient-flow", "gradient_flow.csv", "--gates", "gates.csv",
        "--out", "interactive",
    ], tmp_path)
    written = {p.stem: pd.read_csv(p) for p in Path(tmp_path / "interactive").glob("*.csv")}
    assert set(written) == set(TOP_LEVEL)
    for name, spec in TOP_LEVEL.items():
        table = written[name]
        assert spec["x"] in table.columns and next(iter(spec["y"].values())) in table.columns, name
    assert set(written["gates"].curve) == {"GRU update", "GRU reset"}
    assert set(written["ball_val_mae"].model) == {"RNN", "LSTM", "GRU"}
    assert written["windows_predictions"].value.notna().all()


@pytest.mark.parametrize("name, styles", [
    ("models_curves", GATE_STYLES),                          # gates.png
    ("models_curves_log", {"trained": "-", "initial": "--"}),  # gradient_flow.png
])
def test_curve_dashes_are_the_pngs_line_styles_with_legend_swatches_long_enough_to_read(name, styles):
    dash = template(name)["encoding"]["strokeDash"]
    mapping = {part: tuple(pattern) for part, pattern in zip(dash["scale"]["domain"], dash["scale"]["range"], strict=True)}
    assert set(mapping) == set(styles)
    # one Vega dash pattern per matplotlib line style: solid, dashed, dotted
    kind = {"-": "solid", "--": "dashed", ":": "dotted"}
    def drawn(pattern):
        if len(pattern) == 2 and pattern[1] == 0:
            return "solid"
        return "dotted" if pattern[0] <= 2 else "dashed"
    assert {part: drawn(p) for part, p in mapping.items()} == {part: kind[ls] for part, ls in styles.items()}
    # the legend swatch shows a whole period of the longest pattern: a stroke symbol's length is sqrt(size)
    legend = dash["legend"]
    assert legend["symbolType"] == "stroke"
    assert legend["symbolSize"] ** 0.5 >= 2 * max(sum(p) for p in mapping.values())


def test_experiment_s_plots_say_nothing_of_the_sine_since_the_series_may_be_yours():
    """`series.csv_path` points S at any csv: its titles and axes must not claim a sine or a rollout length."""
    for name, spec in TOP_LEVEL.items():
        if not name.startswith("sine_"):
            continue
        words = " ".join((spec["title"], spec["x_label"], spec["y_label"])).lower()
        assert "series.csv_path" in spec["title"], name
        assert "sine" not in words and "noise" not in words, name
        assert not re.search(r"\b\d{2,}\b", words), f"{name}: a step count fits only the default series"
