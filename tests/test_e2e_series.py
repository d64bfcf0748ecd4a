"""A real series no one here made, the README's sunspots experiment with tiny params: only
experiment S reruns, the references are the series' own (no clean sine), in its own units."""

import json

import pytest

pytestmark = pytest.mark.slow

SUNSPOTS = ["-S", "series.csv_path=data/sunspots/sunspots.csv", "-S", "series.column=SUNACTIVITY",
            "-S", "series.scaling=standard", "-S", "series.season=11"]  # the README's command


def test_the_readmes_sunspots_experiment_reruns_experiment_s_alone_on_the_sunspot_numbers(repro_done):
    project = repro_done
    proc = project.run("dvc", "exp", "run", "-n", "sunspots", *SUNSPOTS)
    assert "Stage 'train_ball@rnn' didn't change, skipping" in proc.stdout  # only S reruns
    references = json.loads((project.path / "metrics/sine_detail.json").read_text())["references"]
    assert "clean_sine" not in references and "seasonal_naive" in references
    assert 1000 < references["naive"]["rollout_mse"] < 20000  # sunspot numbers, squared
    assert (project.path / "data/series/series.csv").read_text().splitlines()[:2] == ["5.0", "11.0"]
