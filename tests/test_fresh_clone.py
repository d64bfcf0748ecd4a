"""A fresh clone stays clean (issue 10), as a new user meets it, with tiny params.

A repository commits what `dvc repro` made (dvc.lock, metrics, histories, PNGs). A fresh
`git clone` of it has no DVC cache, like a new machine: its `dvc repro` reruns every stage,
and afterwards `git status` must show nothing, because every committed output comes back byte
for byte and the training seconds go to the gitignored timings/ folder. An experiment on
seq_len must then rerun only what seq_len feeds, not the ball, windows or random training.
"""

import json
import re

import pytest

from conftest import clone, tiny

pytestmark = pytest.mark.slow


def stages_run(proc) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", proc.stdout))


def fewer_models(params: dict) -> dict:
    """Two sine models (one without state), one of each other experiment: the test pays about
    3 s of process start per stage run, and what it proves does not depend on how many."""
    params["sine"]["models"] = ["mlp", "gru"]
    for experiment in ("ball", "windows", "random_windows"):
        params[experiment]["models"] = ["gru"]
    return params


def test_a_fresh_clone_reproduces_the_commit_and_leaves_git_clean(project, tmp_path):
    params = fewer_models(tiny(project.params()))
    project.write_params(params)
    project.commit("tiny params")
    project.run("dvc", "repro")
    project.commit("baseline: dvc.lock, metrics, histories and plots of a dvc repro")

    fresh = clone(str(project.path), tmp_path / "fresh")
    assert not (fresh.path / ".dvc" / "cache").exists(), "a fresh clone starts without a DVC cache"
    proc = fresh.run("dvc", "repro")
    assert "train_ball@gru" in stages_run(proc), "without a cache every stage must run"
    assert fresh.run("git", "status", "--porcelain").stdout == "", "a fresh repro changed committed files"
    assert json.loads((fresh.path / "timings/sine/gru.json").read_text())["train_seconds"] > 0

    # seq_len is a param of prepare_series (its length check), train_sine and evaluate_sine; the
    # sine models and histories feed plots_sine, both analyses and plot_data (the interactive plots'
    # csvs). Nothing else may run.
    proc = fresh.run("dvc", "exp", "run", "-S", "seq_len=10")
    expected = {f"train_sine@{m}" for m in params["sine"]["models"]}
    expected |= {"prepare_series", "evaluate_sine", "plots_sine", "analyze_gradients", "analyze_gates", "plot_data"}
    assert stages_run(proc) == expected, proc.stdout
    for skipped in ("train_ball@gru", "train_windows@gru", "train_random@gru"):
        assert f"Stage '{skipped}' didn't change, skipping" in proc.stdout, proc.stdout
