"""The README's DVC workflow on one machine, run for real with tiny params.

From a repository whose `dvc repro` is done (``repro_done``): an experiment at another seq_len
reruns only what seq_len feeds and shows in `dvc metrics diff` for every model, in `dvc exp show`
and in `dvc plots show` / `dvc plots diff`; the README's way back restores the baseline; a sweep
of recipes run with `--temp` leaves the workspace alone, and `rnnlab report` names the tuned
recipe. Several machines and a real series are the other ``test_e2e_*`` files, each from its own
copy of the same baseline, so that pytest-xdist runs them side by side.
"""

import json
import re

import pytest

pytestmark = pytest.mark.slow

MODELS = ["mlp", "rnn", "lstm", "gru"]
REFERENCES = {"clean_sine", "zero", "naive", "seasonal_naive", "linear_ar", "autoreg", "exp_smoothing", "arima", "ets",
              "autoreg_aic", "theta", "combination"}


def test_repro_an_experiment_in_metrics_diff_and_plots_the_way_back_and_a_sweep_in_temporary_copies(repro_done):
    project = repro_done
    metrics = json.loads((project.path / "metrics/sine.json").read_text())["S"]
    assert metrics == {model: {"rollout_mse": metrics[model]["rollout_mse"]} for model in MODELS}  # one number each
    detail = json.loads((project.path / "metrics/sine_detail.json").read_text())
    assert set(detail["references"]) == REFERENCES and set(detail["models"]["gru"]["seeds"]) == {"0", "1"}
    for name in ("sine/sine_data", "sine/sine_loss", "sine/sine_predictions", "ball/ball_training", "ball/ball_predictions"):
        assert (project.path / f"plots/{name}.png").stat().st_size > 10_000, name
    assert project.run("git", "status", "--porcelain").stdout == ""  # the commit holds every output
    assert project.run("dvc", "status").stdout.strip() == "Data and pipelines are up to date."

    proc = project.run("dvc", "exp", "run", "-n", "len-5", "-S", "seq_len=5")
    # seq_len is a param of prepare_series (its length check), train_sine and evaluate_sine; the
    # sine models and histories feed plots_sine, both analyses and plot_data (the interactive plots'
    # csvs). Nothing else may run.
    expected = {f"train_sine@{m}" for m in project.params()["sine"]["models"]}
    expected |= {"prepare_series", "evaluate_sine", "plots_sine", "analyze_gradients", "analyze_gates", "plot_data"}
    assert set(re.findall(r"Running stage '([^']+)'", proc.stdout)) == expected, proc.stdout
    for skipped in ("train_ball@gru", "train_windows@gru", "train_random@gru"):
        assert f"Stage '{skipped}' didn't change, skipping" in proc.stdout, proc.stdout
    diff = json.loads(project.run("dvc", "metrics", "diff", "--json").stdout)["metrics/sine.json"]
    for model in MODELS:
        assert f"S.{model}.rollout_mse" in diff, f"{model} missing from dvc metrics diff: {sorted(diff)}"
    # the references are in the detail, which `dvc metrics diff --targets` compares as well
    detail = project.run("dvc", "metrics", "diff", "--targets", "metrics/sine_detail.json", "--json").stdout
    diff = json.loads(detail)["metrics/sine_detail.json"]
    assert "references.linear_ar.rollout_mse" in diff      # fitted over seq_len lags: moves
    assert "references.clean_sine.rollout_mse" not in diff  # the noise floor does not
    # a person reads experiments side by side: the README's command fits a 200-column terminal, every
    # model's number and seq_len in full (DVC folds what does not fit into "…", from the right)
    view = project.run("dvc", "exp", "show", "--only-changed", "--drop", ".*/", "--no-pager",
                       env_extra={"COLUMNS": "200"}).stdout
    lines = view.splitlines()
    assert max(map(len, lines)) <= 200, view
    header = next(line for line in lines if "Experiment" in line).split()
    assert {"seq_len", *(f"S.{model}.rollout_mse" for model in MODELS)} <= set(header), view
    assert re.search(r"len-5\]\s.*\s5\s", view), view  # the experiment's row, with its seq_len
    columns = project.run("dvc", "exp", "show", "--only-changed", "--csv").stdout.splitlines()[0].split(",")
    assert len(columns) <= 40, columns
    # the README's `--drop '.*/'` hides the dependency hashes (columns named by a path) and nothing else
    shown = project.run("dvc", "exp", "show", "--only-changed", "--drop", ".*/", "--csv").stdout.splitlines()[0].split(",")
    deps = [c for c in columns if "/" in c]
    assert deps and shown == [c for c in columns if c not in deps], (columns, shown)
    assert "seq_len" in shown and "S.gru.rollout_mse" in shown
    md = {drop: project.run("dvc", "exp", "show", "--only-changed", "--md", *drop).stdout for drop in ((), ("--drop", ".*/"))}
    assert max(map(len, md[("--drop", ".*/")].splitlines())) <= max(map(len, md[()].splitlines())) - 32 * len(deps)
    project.run("dvc", "plots", "show", "-o", "dvc_plots")
    assert (project.path / "dvc_plots/index.html").exists()
    project.run("dvc", "plots", "diff", "HEAD", "-o", "dvc_plots_diff")  # the experiment over the baseline
    html = (project.path / "dvc_plots_diff/index.html").read_text()
    assert '"rev": "HEAD"' in html and '"rev": "workspace"' in html
    # the README's `dvc plots diff len-10 len-30`: experiments by the names `dvc exp list` prints
    assert project.run("dvc", "exp", "list", "--name-only").stdout.split() == ["len-5"]
    # who won, read from the experiment by its name and from the baseline commit
    scored = {rev: project.run("rnnlab", "scores", "--rev", rev).stdout for rev in ("len-5", "HEAD")}
    assert all("* the lowest backtest_mse: " in out for out in scored.values()) and scored["len-5"] != scored["HEAD"]
    project.run("dvc", "plots", "diff", "len-5", "HEAD", "-o", "dvc_plots_names")
    assert '"rev": "len-5"' in (project.path / "dvc_plots_names/index.html").read_text()
    # the README's way back to the baseline: the commit's params, then dvc repro takes every stage they
    # change out of DVC's run cache (nothing retrains: the baseline ran here). evaluate_sine runs again:
    # DVC keeps no run cache of a stage with a git-tracked output that is no metric (sine_detail.json)
    assert project.params()["seq_len"] == 5 and project.run("git", "status", "--porcelain", "metrics").stdout
    project.run("git", "checkout", "HEAD", "--", "params.yaml")
    back = project.run("dvc", "repro")
    assert set(re.findall(r"Running stage '([^']+)'", back.stdout)) == {"evaluate_sine"}, back.stdout
    assert "Stage 'train_sine@gru' is cached - skipping run" in back.stdout, back.stdout
    assert project.run("git", "status", "--porcelain", "--untracked-files=no").stdout == ""
    assert project.run("dvc", "status").stdout.strip() == "Data and pipelines are up to date."

    # -- a sweep of recipes, chosen on a validation slice: the README's commands, tiny ----------
    # one --temp run per recipe, not the queue: DVC's celery workers sometimes never exit after an
    # empty queue (seen here: both experiments collected, `dvc exp run --run-all` waiting forever)
    for n, lr in enumerate(("0.0005", "0.005"), start=2):
        project.run("dvc", "exp", "run", "--temp", "-S", "sine.data.validation_fraction=0.1", "-S", f"sine.train.lr={lr}")
        # --temp runs in a copy: the workspace is still the baseline, and the experiment is listed
        assert project.params()["seq_len"] == 20 and project.params()["sine"]["data"]["validation_fraction"] != 0.1
        assert project.run("git", "status", "--porcelain", "--untracked-files=no").stdout == ""
        assert len(project.run("dvc", "exp", "list", "--name-only").stdout.split()) == n
    proc = project.run("rnnlab", "report", "--force")  # the committed study rests on more runs than these
    assert "2 sequence lengths (5, 20)" in proc.stdout, proc.stdout + proc.stderr
    assert "tuned gru (by validation MSE): " in proc.stdout, proc.stdout + proc.stderr
    table = (project.path / "plots/seq_len_study.md").read_text()
    assert "## The sweep: 2 recipes at seq_len 20, chosen on the validation slice" in table
    assert "| validation 0.1 |" in table and "| lr 0.005, validation 0.1 |" in table


def test_a_queued_sweep_is_checked_before_it_runs(repro_done):
    """docs/study.md: `rnnlab report --check` reads what DVC lists of queued experiments (their params)
    and names the one the study would skip, before `dvc queue start` trains anything."""
    project = repro_done
    project.run("dvc", "exp", "run", "--queue", "-n", "q-len5", "-S", "seq_len=5")
    project.run("dvc", "exp", "run", "--queue", "-n", "q-models", "-S", "seq_len=10", "-S", "sine.models=[gru]")
    proc = project.run("rnnlab", "report", "--check", check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert sorted(proc.stdout.splitlines()) == ["q-len5: joins the study",
                                                "q-models: would be skipped: changes more than seq_len: sine.models"]
    project.run("dvc", "queue", "remove", "q-models")
    proc = project.run("rnnlab", "report", "--check")
    assert proc.stdout.splitlines() == ["q-len5: joins the study",
                                        "all 1 queued experiments join the study: dvc queue start -j 1"]
    assert project.run("dvc", "exp", "list", "--name-only").stdout.split() == []  # nothing ran
