"""`rnnlab report` on a fabricated set of experiments, as `dvc exp show --json` lists them."""

import copy
import dataclasses
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from rnnlab import report
from rnnlab.errors import RnnlabError

from conftest import caption_text

PARAMS = {"seq_len": 20, "seeds": [0, 1, 2], "threads": 1, "sine": {"train": {"lr": 0.0005}},
          "ball": {"train": {"lr": 0.1}}}
REFERENCES = {"clean_sine": {"rollout_mse": 0.0093}, "zero": {"rollout_mse": 0.52}, "linear_ar": {"rollout_mse": 0.05},
              "exp_smoothing": {"rollout_mse": 0.0113}}


def run_data(seq_len, gru=(0.02, 0.018, 0.019), rnn=(0.5, 0.9, 1.2), params=None, validation=None):
    """A run as `dvc exp show --json` lists it, plus (under "detail", which DVC does not have) the
    metrics/sine_detail.json that `git show` finds in its commit. ``validation``: model -> each
    seed's validation_mse (a run that held out a validation slice)."""
    per_seed = {
        model: {str(s): {"rollout_mse": v, "oracle_rollout_mse_best": v / 2, "rollout_mse_last10": v * 1.1}
                for s, v in enumerate(vals)}
        for model, vals in (("gru", gru), ("rnn", rnn))
    }
    for model, values in (validation or {}).items():
        for seed, value in zip(per_seed[model].values(), values):
            seed["validation_mse"] = value
    p = copy.deepcopy(params or PARAMS)
    p["seq_len"] = seq_len
    return {
        "params": {"params.yaml": {"data": p}},
        "detail": {"models": {model: {"seeds": seeds} for model, seeds in per_seed.items()}, "references": REFERENCES},
        "lock": lock_of(p),
    }


def lock_of(params, code="c0de"):
    """The dvc.lock a complete run of ``params`` commits: evaluate_sine and a training stage, each with
    the params it read and the hash of a source file it ran (DVC does not list it: git show finds it)."""
    def stage(keys):
        return {"params": {"params.yaml": {key: copy.deepcopy(params.get(key)) for key in keys}},
                "deps": [{"path": "src/rnnlab/evaluation.py", "md5": code}, {"path": "data/series/scaled.csv", "md5": "d4"}]}
    return {"stages": {"train_sine@gru": stage(["seq_len", "seeds", "threads"]),
                       "evaluate_sine": stage([k for k in report.SINE_PARAMS if k in params]),
                       "train_ball@rnn": {"params": {"params.yaml": {"threads": 99}}}}}


def exp(name, data, state=None):
    """An experiment as `dvc exp show --json` lists it; ``state``: its queue executor's."""
    listed = {"name": name, "revs": [{"rev": hashlib.sha1(name.encode()).hexdigest(), "name": name, "data": data}]}
    if state:
        listed["executor"] = {"state": state, "name": "dvc-task"}
    return listed


def shown(*experiments, base=20):
    return [
        {"rev": "workspace", "data": run_data(base)},
        {"rev": "a" * 40, "name": "main", "data": run_data(base), "experiments": list(experiments)},
    ]


def reader(rows):
    """`git show <rev>:<path>` over the fabricated rows: metrics/sine_detail.json or dvc.lock."""
    files = {("a" * 40, report.DETAIL): rows[1]["data"]["detail"], ("a" * 40, "dvc.lock"): rows[1]["data"]["lock"]}
    for experiment in rows[1]["experiments"]:
        for rev in experiment["revs"]:
            files[rev["rev"], report.DETAIL] = (rev["data"] or {}).get("detail")
            files[rev["rev"], "dvc.lock"] = (rev["data"] or {}).get("lock")
    return lambda rev, path=report.DETAIL: files.get((rev, path))


def collect(rows):
    return report.collect(rows, reader(rows))


def test_study_has_one_run_per_sequence_length_including_the_commit():
    study = collect(shown(exp("exp-ten", run_data(10)), exp("exp-forty", run_data(40, gru=(0.2, 0.3, 0.8)))))
    runs = report.by_seq_len(study)
    assert list(runs) == [10, 20, 40]
    assert runs[40].values("gru", "rollout_mse") == [0.2, 0.3, 0.8]


def test_table_is_model_by_seq_len_with_median_and_bootstrap_interval():
    study = collect(shown(exp("exp-ten", run_data(10))))
    frame = report.table(report.by_seq_len(study), study.models, "rollout_mse")
    assert list(frame.columns) == ["seq_len 10 (3 seeds)", "seq_len 20 (3 seeds)"]
    # three seeds: the resampled medians run from the smallest value to the largest
    assert frame.loc["GRU", "seq_len 20 (3 seeds)"] == "0.019 [0.018, 0.02]"
    assert frame.loc["RNN", "seq_len 10 (3 seeds)"] == "0.9 [0.5, 1.2]"
    assert frame.loc["linear AR, no constant (the texts'; reference)", "seq_len 10 (3 seeds)"] == "0.05"
    assert frame.loc["Holt-Winters (reference)", "seq_len 10 (3 seeds)"] == "0.0113"  # every reference the run has
    assert "seasonal naive (reference)" not in frame.index


def test_runs_missing_metrics_or_changing_other_params_are_listed_and_skipped():
    broken = run_data(30)
    del broken["detail"]
    other_optimizer = run_data(50, params={**PARAMS, "sine": {"train": {"lr": 0.0005, "optimizer": "sgd"}}})
    study = collect(shown(exp("exp-broken", broken), exp("exp-sgd", other_optimizer), exp("exp-failed", None),
                                 exp("exp-ten", run_data(10))))
    assert sorted(r.seq_len for r in study.runs) == [10, 20]
    reasons = dict(study.skipped)
    assert reasons["exp-broken"] == "no metrics/sine_detail.json in its commit"
    assert reasons["exp-sgd"] == "changes more than seq_len: sine.train.optimizer"
    assert reasons["exp-failed"].startswith("no data")


def test_a_run_whose_pipeline_stopped_before_evaluate_sine_is_skipped_not_counted_at_its_params():
    """`dvc exp run -n fake-30 -S seq_len=30 prepare_series`: its commit holds the baseline's sine
    metrics, made at seq_len 20; its dvc.lock says so."""
    fake = run_data(30)
    fake["lock"] = lock_of({**PARAMS, "seq_len": 20})
    study = collect(shown(exp("fake-30", fake), exp("exp-ten", run_data(10))))
    assert [r.seq_len for r in report.by_seq_len(study).values()] == [10, 20]
    assert dict(study.skipped)["fake-30"] == ("train_sine@gru last ran at seq_len = 20, not 30: a pipeline stopped before "
                                              "evaluate_sine (run it to evaluate_sine)")


def test_a_run_made_by_other_code_than_its_baseline_is_skipped():
    """Edit evaluation.py, `dvc exp run --temp -S seq_len=25 evaluate_sine`, revert: the run's dvc.lock
    holds the edited file's hash."""
    edited = run_data(25)
    edited["lock"] = lock_of(edited["params"]["params.yaml"]["data"], code="ed17ed")
    study = collect(shown(exp("codechg", edited), exp("exp-ten", run_data(10))))
    assert dict(study.skipped)["codechg"] == "made by other code than its baseline: src/rnnlab/evaluation.py differs"
    assert 25 not in report.by_seq_len(study)


def test_a_run_without_a_dvc_lock_entry_for_evaluate_sine_is_skipped():
    bare = run_data(30)
    bare["lock"] = {"stages": {}}
    study = collect(shown(exp("bare", bare)))
    assert dict(study.skipped)["bare"] == "no evaluate_sine in its dvc.lock: its metrics were not made by its own run"


def test_the_evidence_rebuilds_the_table_and_figure_byte_for_byte_without_the_experiments(tmp_path):
    rows = shown(exp("exp-ten", run_data(10)), exp("exp-thirty", run_data(30, gru=(0.1 / 3, 2 ** 0.5, 3e-30))),
                 exp("exp-failed", None), exp("exp-ten-again", run_data(10)))
    report.write(collect(rows), tmp_path / "a.png", tmp_path / "a.md", evidence=tmp_path / "a")
    rebuilt = report.load_evidence(tmp_path / "a")
    report.write(rebuilt, tmp_path / "b.png", tmp_path / "b.md")
    assert (tmp_path / "b.md").read_bytes() == (tmp_path / "a.md").read_bytes()
    assert (tmp_path / "a" / "seeds.csv").read_text().splitlines()[0] == \
        "run,model,seed,rollout_mse,oracle_rollout_mse_best,rollout_mse_last10"
    assert len((tmp_path / "a" / "seeds.csv").read_text().splitlines()) == 1 + 4 * 2 * 3  # a row per trained model
    assert report.load_evidence(tmp_path / "a").runs[2].values("gru", "rollout_mse") == [0.1 / 3, 2 ** 0.5, 3e-30]


def test_damaged_evidence_names_the_file_and_line(tmp_path):
    report.write(collect(shown(exp("exp-ten", run_data(10)))), tmp_path / "a.png", tmp_path / "a.md", evidence=tmp_path / "a")
    seeds = tmp_path / "a" / "seeds.csv"
    lines = seeds.read_text().splitlines()
    seeds.write_text("\n".join([*lines[:3], lines[3].replace(",0.", ",x0.", 1), *lines[4:]]) + "\n")
    with pytest.raises(RnnlabError, match=r"seeds\.csv:4: could not convert string to float: 'x0"):
        report.load_evidence(tmp_path / "a")
    with pytest.raises(RnnlabError, match=r"nowhere/runs\.json: no such file"):
        report.load_evidence(tmp_path / "nowhere")


@pytest.mark.parametrize(("changed", "key"), [({"threads": 2}, "threads"), ({"series": {"horizon": 5}}, "series.horizon"),
                                             ({"sine": {"train": {"lr": 0.0005, "epochs": 9}}}, "sine.train.epochs")])
def test_every_param_that_feeds_the_sine_stages_counts_as_a_change(changed, key):
    study = collect(shown(exp("exp-other", run_data(10, params={**PARAMS, **changed}))))
    assert dict(study.skipped)["exp-other"] == f"changes more than seq_len: {key}"
    assert [r.seq_len for r in study.runs] == [20]


def test_runs_that_change_only_params_outside_the_sine_stages_join_the_study():
    other_ball = run_data(10, params={**PARAMS, "ball": {"train": {"lr": 0.5}}, "windows": {"seed": 7}})
    study = collect(shown(exp("exp-ball-lr", other_ball)))
    assert study.skipped == []
    assert report.by_seq_len(study)[10].name == "exp-ball-lr"


def test_seeds_and_origins_may_differ_from_the_commit_and_the_run_with_most_seeds_is_reported():
    """A study asks for more seeds (`-S seeds=30`) and origins than the commit's runs have: how sure
    a number is, not what was trained. At one length the run with the most seeds wins."""
    many = run_data(20, gru=tuple(0.02 + 0.001 * k for k in range(8)), params={**PARAMS, "seeds": 8,
                                                                                "series": {"origins": 25}})
    study = collect(shown(exp("exp-many", many), exp("exp-ten", run_data(10))))
    runs = report.by_seq_len(study)
    assert runs[20].name == "exp-many" and runs[20].seeds == 8
    assert ("aaaaaaa", "seq_len 20 already reported by exp-many") in study.skipped
    assert report.caption(report.protocols(study)).startswith("seq_len=10, 20 · 3-8 seeds a run · ")


def test_a_second_run_at_the_same_length_is_reported_once():
    study = collect(shown(exp("exp-new", run_data(10)), exp("exp-old", run_data(10, gru=(9, 9, 9)))))
    runs = report.by_seq_len(study)
    assert runs[10].name == "exp-new"
    assert ("exp-old", "seq_len 10 already reported by exp-new") in study.skipped


def test_write_makes_the_figure_the_hold_rates_three_tables_and_the_comparisons(tmp_path):
    study = collect(shown(exp("exp-ten", run_data(10)), exp("exp-thirty", run_data(30))))
    report.write(study, tmp_path / "study.png", tmp_path / "study.md")
    assert (tmp_path / "study.png").stat().st_size > 10_000
    text = (tmp_path / "study.md").read_text()
    assert text.startswith("<!-- rnnlab report: 3 runs, 18 trainings -->\n")
    assert text.count("| GRU |") == 4 and "mean of the last 10 epochs" in text  # hold rate + three measures
    assert "| GRU | 100% [44%, 100%] |" in text and "| RNN | 0% [0%, 56%] |" in text
    assert "### the texts' epochs: architecture vs architecture at one length (0 of 3 significant)" in text
    assert "| GRU at 10 vs RNN at 10 | 0.019 vs 0.9 | 1.00 | Mann-Whitney U, n = 3 / 3 | 0.1 | 0.3 | within noise | 6 |" \
        in text
    assert "| RNN at 30 vs linear AR (30 lags) | 0.9 vs 0.05 | 0 of 3 seeds below | sign test, n = 3 | 0.25 |" in text
    # the best classical reference at each length, beside the AR: Holt-Winters here (0.0113 < 0.05)
    assert "| GRU at 10 vs Holt-Winters (the best classical reference) | 0.019 vs 0.0113 | 0 of 3 seeds below |" in text
    assert text.count("Each comparison: the Mann-Whitney U test") == 1  # the methods once, not per measure
    findings = text.split("## Findings in plain words\n\n")[1].split("\n\n")[0].splitlines()
    assert findings[0].startswith("- **the texts' epochs**: the best network cell is GRU at seq_len 10, median rollout MSE "
                                  "0.019 [0.018, 0.02]; its free run holds on 3 of 3 seeds.")
    assert "Against the linear AR with the same lags: significantly better in 0 of 6 network cells" in findings[0]
    assert findings[-1] == "- Never holding a free run, on any seed, length or protocol: RNN."
    fig = report.figure(report.protocols(study), study.models)
    assert [ax.get_title() for ax in fig.axes][:2] == ["GRU", "RNN"]
    assert fig.axes[2].get_title().startswith("Hold rate")
    assert all(ax.get_yscale() == "log" for ax in fig.axes[:2])


def test_study_figure_gives_each_model_its_own_panel_on_one_scale_with_every_seed():
    study = collect(shown(exp("exp-ten", run_data(10)), exp("exp-forty", run_data(40, gru=(0.2, 0.3, 0.8)))))
    fig = report.figure(report.protocols(study), study.models)
    gru, rnn, _ = fig.axes
    assert gru.get_shared_y_axes().joined(gru, rnn)  # four bands on one axis hid each other
    seeds = [line for line in gru.get_lines() if line.get_marker() == "." and list(line.get_xdata()) == [40] * 3]
    assert [list(line.get_ydata()) for line in seeds] == [[0.2, 0.3, 0.8]]
    (median,) = [line for line in gru.get_lines() if line.get_label() == "GRU median"]
    assert list(median.get_xdata()) == [10, 20, 40] and median.get_ydata()[-1] == 0.3
    references = {line.get_label() for line in rnn.get_lines()} | {line.get_label() for line in gru.get_lines()}
    assert {"noise floor (clean sine)", "predict zero", "linear AR over seq_len lags"} <= references


def test_study_figure_is_captioned_with_the_params_its_runs_share():
    study = collect(shown(exp("exp-ten", run_data(10)), exp("exp-thirty", run_data(30))))
    text = caption_text(report.figure(report.protocols(study), study.models))
    assert text.startswith("seq_len=10, 20, 30 · seeds 0-2 · ")
    assert "lr 5e-4" in text and text.endswith("runs: exp-ten, aaaaaaa, exp-thirty")


def test_the_study_caption_names_a_step_budget_only_where_a_run_had_one(monkeypatch):
    monkeypatch.setitem(PARAMS["sine"]["train"], "epochs", 150)
    closed = collect(shown(exp("cl-ten", closed_loop_run(10)), exp("cl-forty", closed_loop_run(40))))
    assert "· 150 epochs ·" in report.caption(report.protocols(closed))  # a horizon, not a budget
    fair_runs = collect(shown(exp("fair-ten", fair(10)), exp("fair-forty", fair(40))))
    assert "· 150 epochs or a step budget ·" in report.caption(report.protocols(fair_runs))


def test_a_model_that_never_holds_is_named_in_the_hold_panel_not_drawn_at_zero():
    """The RNN's free runs (0.5-1.2) never get below predict zero / 10 (0.052); the GRU's (0.02) do."""
    study = collect(shown(exp("exp-ten", run_data(10)), exp("exp-thirty", run_data(30))))
    fig = report.figure(report.protocols(study), study.models)
    (hold,) = [ax for ax in fig.axes if ax.get_title().startswith("Hold rate")]
    assert [text.get_text() for text in hold.texts] == ["0% at every length: RNN"]
    assert hold.get_legend_handles_labels()[1] == ["GRU"]


def test_without_experiments_it_says_how_to_make_them(tmp_path):
    study = collect(shown())
    with pytest.raises(RnnlabError, match=r"dvc exp run --queue evaluate_sine -S seq_len=5,10,20,30,40,50"):
        report.write(study, tmp_path / "s.png", tmp_path / "s.md")


def test_report_command_outside_a_dvc_repository_fails_with_one_line(tmp_path):
    proc = subprocess.run([str(Path(sys.executable).parent / "rnnlab"), "report", "--repo", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: `dvc exp show --json` failed")


def run_report(monkeypatch, capsys, tmp_path, rows):
    from rnnlab import cli

    monkeypatch.setattr(report, "exp_show", lambda repo, all_commits, rev=None: rows)
    monkeypatch.setattr(report, "git_reader", lambda repo: reader(rows))
    code = cli.main(["report", "--figure", str(tmp_path / "s.png"), "--table", str(tmp_path / "s.md")])
    return code, capsys.readouterr()


def test_report_command_lists_every_skipped_run_with_its_reason(monkeypatch, capsys, tmp_path):
    code, out = run_report(monkeypatch, capsys, tmp_path, shown(exp("exp-failed", None), exp("exp-ten", run_data(10)),
                                                                exp("exp-ten-again", run_data(10))))
    assert code == 0
    assert out.err.splitlines() == ["skipped exp-failed: no data (a failed or still queued experiment)",
                                    "skipped exp-ten-again: seq_len 10 already reported by exp-ten"]
    assert out.out == f"2 sequence lengths (10, 20) -> {tmp_path / 's.png'}, {tmp_path / 's.md'}, evidence {tmp_path / 's'}/\n"


def test_report_command_lists_the_skipped_runs_when_too_few_are_left(monkeypatch, capsys, tmp_path):
    other_epochs = run_data(10, params={**PARAMS, "sine": {"train": {"lr": 0.0005, "epochs": 9}}})
    code, out = run_report(monkeypatch, capsys, tmp_path, shown(exp("exp-epochs", other_epochs)))
    assert code == 1
    assert out.err.splitlines()[:2] == [
        "skipped exp-epochs: changes more than seq_len: sine.train.epochs",
        "error: a study needs runs at two or more sequence lengths; found aaaaaaa (seq_len 20). Create them with:",
    ]
    assert out.out == ""


def fair(seq_len, steps=5700, **kwargs):
    params = copy.deepcopy(PARAMS)
    params["sine"]["train"]["steps"] = steps
    return run_data(seq_len, params=params, **kwargs)


def test_a_step_budget_is_a_second_protocol_beside_the_texts_epochs():
    """Issue 13's fair protocol: runs that change sine.train.steps (and seq_len) join the study
    as their own curve instead of being skipped."""
    fair_runs = exp("fair-ten", fair(10)), exp("fair-forty", fair(40, gru=(0.1, 0.1, 0.1)))
    study = collect(shown(exp("exp-ten", run_data(10)), *fair_runs))
    groups = report.protocols(study)
    assert list(groups) == [report.TEXTS, "5700 steps"]
    assert list(groups[report.TEXTS]) == [10, 20] and list(groups["5700 steps"]) == [10, 40]
    assert study.skipped == []


def test_the_study_figure_and_tables_show_each_protocol(tmp_path):
    study = collect(shown(exp("exp-ten", run_data(10)), exp("fair-ten", fair(10)), exp("fair-forty", fair(40))))
    fig = report.figure(report.protocols(study), study.models)
    labels = {line.get_label() for line in fig.axes[0].get_lines()}
    assert {"GRU median", "GRU median (5700 steps)"} <= labels
    report.write(study, tmp_path / "s.png", tmp_path / "s.md")
    text = (tmp_path / "s.md").read_text()
    assert "## Protocol: the texts' epochs" in text and "## Protocol: 5700 steps" in text


def test_a_protocol_with_one_length_is_listed_as_skipped():
    study = collect(shown(exp("exp-ten", run_data(10)), exp("fair-ten", fair(10))))
    assert list(report.protocols(study)) == [report.TEXTS]
    assert study.skipped == [("fair-ten", "the only seq_len with 5700 steps")]


def recipe(seq_len, validation=None, fraction=0.1, **train):
    """A run of the sweep: another recipe (``train``: sine.train / sine.model keys) and, with
    ``fraction``, a validation slice held out."""
    gru, rnn = train.pop("gru", (0.02, 0.018, 0.019)), train.pop("rnn", (0.5, 0.9, 1.2))
    params = copy.deepcopy(PARAMS)
    params["sine"].setdefault("model", {})
    for key, value in train.items():
        params["sine"]["model" if key == "hidden_size" else "train"][key] = value
    if fraction:
        params["sine"]["data"] = {"validation_fraction": fraction}
    return run_data(seq_len, params=params, validation=validation, gru=gru, rnn=rnn)


def test_a_recipe_change_is_its_own_protocol_named_by_what_it_changes():
    study = collect(shown(exp("lr-ten", recipe(10, lr=0.002, hidden_size=32, fraction=None)),
                          exp("lr-forty", recipe(40, lr=0.002, hidden_size=32, fraction=None))))
    assert list(report.protocols(study)) == ["lr 0.002, hidden 32"]  # the texts' recipe has one length here
    assert study.skipped == []


SWEEP = {  # name -> (lr, validation MSE of gru's seeds, of rnn's)
    "sweep-a": (0.0005, (0.05, 0.04, 0.06), (0.9, 0.8, 1.0)),
    "sweep-b": (0.002, (0.01, 0.02, 0.03), (0.7, 0.9, 0.95)),
    "sweep-c": (0.005, (0.2, 0.3, 0.1), (0.3, 0.2, 0.4)),
}


def sweep(*extra):
    return shown(*[exp(name, recipe(20, {"gru": gru, "rnn": rnn}, lr=lr)) for name, (lr, gru, rnn) in SWEEP.items()],
                 *extra)


def test_the_grid_is_the_validated_runs_at_one_length_one_per_recipe():
    study = collect(sweep(exp("tuned-ten", recipe(10, {"gru": (1, 1, 1), "rnn": (1, 1, 1)}, lr=0.002))))
    recipes = report.grid(study)
    assert list(recipes) == ["validation 0.1", "lr 0.002, validation 0.1", "lr 0.005, validation 0.1"]
    assert {run.seq_len for run in recipes.values()} == {20}


def test_each_model_is_tuned_by_its_validation_error_never_the_test_error():
    rows = sweep()
    rows[1]["experiments"][0]["revs"][0]["data"] = recipe(20, {"gru": (0.05, 0.04, 0.06), "rnn": (0.9, 0.8, 1.0)},
                                                          lr=0.0005, gru=(1e-4, 1e-4, 1e-4))  # best test, not best validation
    study = collect(rows)
    assert report.tuned(report.grid(study), study.models) == {"gru": "lr 0.002, validation 0.1",
                                                              "rnn": "lr 0.005, validation 0.1"}


def test_the_grid_table_shows_median_and_range_with_each_models_choice_in_bold():
    study = collect(sweep())
    recipes = report.grid(study)
    frame = report.grid_table(recipes, study.models, "validation_mse", report.tuned(recipes, study.models))
    assert frame.loc["lr 0.002, validation 0.1", "GRU"] == "**0.02 [0.01, 0.03]**"
    assert frame.loc["validation 0.1", "RNN"] == "0.9 [0.8, 1]"


def test_the_tuned_recipe_runs_at_other_lengths_are_that_models_curve_only(tmp_path):
    tuned = [exp(f"tuned-{n}", recipe(n, {"gru": (1, 1, 1), "rnn": (1, 1, 1)}, lr=0.002, gru=(0.5, 0.5, 0.5)))
             for n in (10, 40)]
    study = collect(sweep(*tuned, exp("exp-ten", run_data(10))))
    assert study.skipped == []  # the grid's runs at one length are reported by the grid
    report.write(study, tmp_path / "s.png", tmp_path / "s.md")
    best = report.tuned(report.grid(study), study.models)
    curves = {m: (best[m], runs) for m, runs in report.tuned_runs(study, best).items()}
    assert list(curves) == ["gru"] and list(curves["gru"][1]) == [10, 20, 40]
    fig = report.figure(report.protocols(study), study.models, curves)
    gru, rnn = ({line.get_label() for line in ax.get_lines()} for ax in fig.axes[:2])
    assert "GRU median (tuned: lr 0.002, validation 0.1)" in gru
    assert not any("tuned" in label or "validation" in label for label in rnn)
    text = (tmp_path / "s.md").read_text()
    assert "## The sweep: 3 recipes at seq_len 20, chosen on the validation slice" in text
    assert "- GRU: lr 0.002, validation 0.1\n- RNN: lr 0.005, validation 0.1\n" in text
    assert "| GRU (lr 0.002, validation 0.1) | 0.5 [0.5, 0.5] | 0.019 [0.018, 0.02] | 0.5 [0.5, 0.5] |" in text


def test_report_command_names_each_models_tuned_recipe(monkeypatch, capsys, tmp_path):
    code, out = run_report(monkeypatch, capsys, tmp_path, sweep(exp("exp-ten", run_data(10))))
    assert code == 0
    assert out.out.splitlines()[1:] == ["tuned gru (by validation MSE): lr 0.002, validation 0.1",
                                        "tuned rnn (by validation MSE): lr 0.005, validation 0.1"]


def test_queued_and_running_experiments_wait_for_their_metrics():
    """DVC lists a queued or running experiment with its params, and its rev's tree still holds
    the baseline's metrics: counted, it would put the baseline's numbers under its recipe."""
    rows = shown(exp("exp-queued", recipe(20, {"gru": (1, 1, 1), "rnn": (1, 1, 1)}, lr=0.002), state="queued"),
                 exp("exp-running", run_data(10), state="running"), exp("exp-failed", run_data(30), state="failed"),
                 exp("exp-done", run_data(40), state="success"))
    study = collect(rows)
    assert [run.name for run in study.runs] == ["aaaaaaa", "exp-done"]
    assert study.skipped == [("exp-queued", "queued, no metrics yet"), ("exp-running", "running, no metrics yet"),
                             ("exp-failed", "failed")]


def check(monkeypatch, capsys, rows):
    from rnnlab import cli

    monkeypatch.setattr(report, "exp_show", lambda repo, all_commits, rev=None: rows)
    code = cli.main(["report", "--check"])
    return code, capsys.readouterr()


def test_check_says_before_the_queue_runs_which_experiments_would_be_skipped(monkeypatch, capsys):
    """`rnnlab report --check` reads the queued experiments' params (all DVC knows before they run)
    and applies the study's rule to them: seq_len, the recipe keys, seeds and origins may vary."""
    models = run_data(30, params={**PARAMS, "sine": {**PARAMS["sine"], "models": ["gru", "lstm"]}})
    rows = shown(exp("q-ten", run_data(10), state="queued"), exp("q-models", models, state="queued"),
                 exp("q-steps", fair(40), state="queued"), exp("done", run_data(50), state="success"))
    code, out = check(monkeypatch, capsys, rows)
    assert code == 1
    assert out.out.splitlines() == ["q-ten: joins the study", "q-models: would be skipped: changes more than seq_len: "
                                    "sine.models", "q-steps: joins the study"]
    assert out.err.startswith("error: 1 of 3 queued experiments would be skipped after they ran")


def test_check_passes_a_sweep_the_study_can_use_and_says_how_to_start_it(monkeypatch, capsys):
    code, out = check(monkeypatch, capsys, shown(exp("q-ten", run_data(10), state="queued")))
    assert code == 0 and out.out.splitlines()[-1] == "all 1 queued experiments join the study: dvc queue start -j 1"


def test_check_without_a_queue_says_how_to_queue(monkeypatch, capsys):
    code, out = check(monkeypatch, capsys, shown(exp("done", run_data(10), state="success")))
    assert code == 1 and out.err.startswith("error: no queued experiments to check: queue the sweep first")


def test_on_a_tie_the_recipe_that_changes_less_is_the_tuned_one():
    same = {"gru": (0.05, 0.04, 0.06), "rnn": (0.9, 0.8, 1.0)}
    study = collect(shown(exp("plain", recipe(20, same)), exp("wider", recipe(20, same, hidden_size=32))))
    assert report.tuned(report.grid(study), study.models) == {"gru": "validation 0.1", "rnn": "validation 0.1"}


def test_a_richer_study_on_disk_is_not_overwritten_without_force(tmp_path):
    """Issue 24, item 5: a report over a few experiments silently replaced the committed study."""
    table, figure = tmp_path / "s.md", tmp_path / "s.png"
    rich = collect(shown(*[exp(f"exp-{n}", run_data(n)) for n in (5, 10, 30, 40)]))
    report.write(rich, figure, table)
    kept = table.read_text()
    assert kept.startswith("<!-- rnnlab report: 5 runs, 30 trainings -->")
    figure_bytes = figure.read_bytes()
    few = collect(shown(exp("exp-ten", run_data(10))))
    with pytest.raises(RnnlabError, match=r"s.md rests on 30 trainings, this study on 12: not overwritten .*--force"):
        report.write(few, figure, table)
    assert table.read_text() == kept and figure.read_bytes() == figure_bytes
    report.write(few, figure, table, force=True)
    assert table.read_text().startswith("<!-- rnnlab report: 2 runs, 12 trainings -->")
    report.write(rich, figure, table)  # a study at least as rich replaces it without asking
    assert table.read_text() == kept


def test_an_unmarked_table_on_disk_is_not_overwritten_without_force(tmp_path):
    table, figure = tmp_path / "s.md", tmp_path / "s.png"
    table.write_text("Rollout test MSE ... (a study written before the report marked its size)\n")
    with pytest.raises(RnnlabError, match="does not say how many trainings made it"):
        report.write(collect(shown(exp("exp-ten", run_data(10)))), figure, table)
    assert not figure.exists()


def test_report_command_refuses_to_overwrite_with_one_line_and_force_overrides(monkeypatch, capsys, tmp_path):
    from rnnlab import cli

    (tmp_path / "s.md").write_text("an older study\n")
    code, out = run_report(monkeypatch, capsys, tmp_path, shown(exp("exp-ten", run_data(10))))
    assert code == 1 and out.err.splitlines()[-1].startswith(f"error: {tmp_path / 's.md'} does not say how many")
    code = cli.main(["report", "--figure", str(tmp_path / "s.png"), "--table", str(tmp_path / "s.md"), "--force"])
    assert code == 0 and (tmp_path / "s.md").read_text().startswith("<!-- rnnlab report: 2 runs")


def closed_loop_run(seq_len, **kwargs):
    params = copy.deepcopy(PARAMS)
    params["sine"]["train"]["horizon"] = 10
    return run_data(seq_len, params=params, **kwargs)


def test_the_closed_loop_objective_is_its_own_protocol_compared_with_the_texts():
    study = collect(shown(exp("exp-ten", run_data(10)), exp("cl-ten", closed_loop_run(10, gru=(0.01, 0.011, 0.012))),
                          exp("cl-forty", closed_loop_run(40))))
    groups = report.protocols(study)
    assert list(groups) == [report.TEXTS, "horizon 10"]
    families = report.comparisons(groups, study.models, "rollout_mse")
    (against_texts,) = [f for name, f in families.items() if name.startswith("horizon 10 vs the texts'")]
    gru = next(f for f in against_texts if f.first == "GRU at 10 (horizon 10)")
    assert gru.second == "GRU at 10 (texts')" and gru.result.beats == 1.0


def test_comparisons_use_holm_within_each_family_and_the_sign_test_against_the_ar():
    many = tuple(0.001 * (k + 1) for k in range(12))   # 12 seeds, all far below the RNN's and the AR's 0.05
    worse = tuple(0.5 + 0.01 * k for k in range(12))
    params = {**PARAMS, "seeds": 12}
    study = collect(shown(exp("a", run_data(10, gru=many, rnn=worse, params=params)),
                          exp("b", run_data(30, gru=many, rnn=worse, params=params)),
                          exp("c", run_data(20, gru=many, rnn=worse, params=params))))
    families = report.comparisons(report.protocols(study), study.models, "rollout_mse")
    pairs = families["the texts' epochs: architecture vs architecture at one length"]
    assert [f.result.resolved for f in pairs] == [True] * 3
    assert all(f.result.p_adjusted == pytest.approx(min(1, 3 * f.result.p)) for f in pairs)  # equal p: Holm = 3 p
    ar = families["the texts' epochs: network vs the linear AR at the same lags"]
    gru_ar = next(f for f in ar if f.first == "GRU at 10")
    assert gru_ar.result.test == "sign test" and gru_ar.result.beats == 1.0
    assert gru_ar.result.p == pytest.approx(2 / 2**12)


def test_the_backtest_is_compared_with_the_linear_ar_s_backtest_not_its_rollout():
    """Each network's backtest MSE against the AR's backtest MSE at the same lags (a sign test of its
    seeds); the AR's rollout (0.05 here) is another question and must not stand in."""
    def with_backtest(seq_len):
        run = run_data(seq_len)
        for seeds in run["detail"]["models"].values():
            for number, seed in seeds["seeds"].items():
                seed["backtest_mse"] = 0.01 * (int(number) + 1)  # 0.01, 0.02, 0.03
        run["detail"]["references"] = {**REFERENCES, "linear_ar": {"rollout_mse": 0.05, "backtest_mse": 0.025}}
        return run

    study = collect(shown(exp("exp-ten", with_backtest(10)), base=20))
    study.runs = [run for run in study.runs if run.seq_len == 10]  # the commit's run has no backtest
    study.runs.append(dataclasses.replace(study.runs[0], name="exp-thirty", seq_len=30))
    families = report.comparisons(report.protocols(study), study.models, "backtest_mse")
    (ar,) = [f for name, f in families.items() if "linear AR" in name]
    assert {finding.medians[1] for finding in ar} == {0.025}
    gru = next(f for f in ar if f.first == "GRU at 10")
    assert gru.medians[0] == 0.02 and gru.result.beats == pytest.approx(2 / 3)  # seeds 0.01, 0.02 below 0.025
