"""The README's DVC workflow, run for real in a fresh repository with tiny params."""

import json

import pytest

from conftest import tiny

pytestmark = pytest.mark.slow

MODELS = ["mlp", "rnn", "lstm", "gru"]


def test_repro_then_experiment_then_metrics_diff(project):
    project.write_params(tiny(project.params()))
    project.commit("tiny params")

    project.run("dvc", "repro")
    metrics = json.loads((project.path / "metrics/sine.json").read_text())
    assert set(MODELS) <= set(metrics)
    assert set(metrics["reference"]) == {"clean_sine", "zero", "linear_ar"}
    for name in ("sine_data", "sine_loss", "sine_predictions"):
        assert (project.path / f"plots/sine/{name}.png").stat().st_size > 10_000
    project.commit("baseline")
    assert project.run("dvc", "status").stdout.strip() == "Data and pipelines are up to date."

    project.run("dvc", "exp", "run", "-S", "seq_len=10")
    diff = json.loads(project.run("dvc", "metrics", "diff", "--json").stdout)["metrics/sine.json"]
    for model in MODELS:
        assert f"{model}.rollout_mse" in diff, f"{model} missing from dvc metrics diff: {sorted(diff)}"
    # the references that depend on seq_len move too; the noise floor does not
    assert "reference.linear_ar.rollout_mse" in diff
    assert "reference.clean_sine.rollout_mse" not in diff

    shown = project.run("dvc", "plots", "show", "-o", "dvc_plots").stdout
    assert (project.path / "dvc_plots/index.html").exists(), shown
    # the experiment's curves overlaid on the baseline's, one dash pattern per revision
    project.run("dvc", "plots", "diff", "HEAD", "-o", "dvc_plots_diff")
    html = (project.path / "dvc_plots_diff/index.html").read_text()
    assert '"rev": "HEAD"' in html and '"rev": "workspace"' in html
