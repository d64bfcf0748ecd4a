"""`rnnlab report` on a fabricated set of experiments, as `dvc exp show --json` lists them."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest

from rnnlab import report
from rnnlab.errors import RnnlabError

PARAMS = {"seq_len": 20, "seeds": [0, 1, 2], "threads": 1, "sine": {"train": {"lr": 0.0005}}}
REFERENCES = {"clean_sine": {"rollout_mse": 0.0093}, "zero": {"rollout_mse": 0.52}, "linear_ar": {"rollout_mse": 0.05}}


def run_data(seq_len, gru=(0.02, 0.018, 0.019), rnn=(0.5, 0.9, 1.2), params=None):
    per_seed = {
        model: {str(s): {"rollout_mse": v, "rollout_mse_best": v / 2, "rollout_mse_last10": v * 1.1} for s, v in enumerate(vals)}
        for model, vals in (("gru", gru), ("rnn", rnn))
    }
    p = copy.deepcopy(params or PARAMS)
    p["seq_len"] = seq_len
    return {
        "params": {"params.yaml": {"data": p}},
        "metrics": {"metrics/sine_seeds.json": {"data": per_seed},
                    "metrics/sine.json": {"data": {"reference": REFERENCES}}},
    }


def exp(name, data):
    return {"name": name, "revs": [{"rev": "f" * 40, "name": name, "data": data}]}


def shown(*experiments, base=20):
    return [
        {"rev": "workspace", "data": run_data(base)},
        {"rev": "a" * 40, "name": "main", "data": run_data(base), "experiments": list(experiments)},
    ]


def test_study_has_one_run_per_sequence_length_including_the_commit():
    study = report.collect(shown(exp("exp-ten", run_data(10)), exp("exp-forty", run_data(40, gru=(0.2, 0.3, 0.8)))))
    runs = report.by_seq_len(study)
    assert list(runs) == [10, 20, 40]
    assert runs[40].values("gru", "rollout_mse") == [0.2, 0.3, 0.8]


def test_table_is_model_by_seq_len_with_median_and_range():
    study = report.collect(shown(exp("exp-ten", run_data(10))))
    frame = report.table(report.by_seq_len(study), study.models, "rollout_mse")
    assert list(frame.columns) == ["seq_len 10", "seq_len 20"]
    assert frame.loc["GRU", "seq_len 20"] == "0.019 [0.018, 0.02]"
    assert frame.loc["RNN", "seq_len 10"] == "0.9 [0.5, 1.2]"
    assert frame.loc["linear AR (reference)", "seq_len 10"] == "0.05"


def test_runs_missing_metrics_or_changing_other_params_are_listed_and_skipped():
    broken = run_data(30)
    del broken["metrics"]["metrics/sine_seeds.json"]
    other_lr = run_data(50, params={**PARAMS, "sine": {"train": {"lr": 0.01}}})
    study = report.collect(shown(exp("exp-broken", broken), exp("exp-lr", other_lr), exp("exp-failed", None),
                                 exp("exp-ten", run_data(10))))
    assert sorted(r.seq_len for r in study.runs) == [10, 20]
    reasons = dict(study.skipped)
    assert reasons["exp-broken"] == "missing metrics/sine_seeds.json or metrics/sine.json"
    assert reasons["exp-lr"] == "changes more than seq_len: sine.train.lr"
    assert reasons["exp-failed"].startswith("no data")


def test_a_second_run_at_the_same_length_is_reported_once():
    study = report.collect(shown(exp("exp-new", run_data(10)), exp("exp-old", run_data(10, gru=(9, 9, 9)))))
    runs = report.by_seq_len(study)
    assert runs[10].name == "exp-new"
    assert ("exp-old", "seq_len 10 already reported by exp-new") in study.skipped


def test_write_makes_the_figure_and_three_tables(tmp_path):
    study = report.collect(shown(exp("exp-ten", run_data(10)), exp("exp-thirty", run_data(30))))
    report.write(study, tmp_path / "study.png", tmp_path / "study.md")
    assert (tmp_path / "study.png").stat().st_size > 10_000
    text = (tmp_path / "study.md").read_text()
    assert text.count("| GRU |") == 3 and "mean of the last 10 epochs" in text
    fig = report.figure(report.by_seq_len(study), study.models)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert [line.get_label() for line in ax.get_lines()][:2] == ["GRU", "RNN"]


def test_without_experiments_it_says_how_to_make_them(tmp_path):
    study = report.collect(shown())
    with pytest.raises(RnnlabError, match=r"dvc exp run --queue -S seq_len=5,10,20,30,40,50"):
        report.write(study, tmp_path / "s.png", tmp_path / "s.md")


def test_report_command_outside_a_dvc_repository_fails_with_one_line(tmp_path):
    proc = subprocess.run([str(Path(sys.executable).parent / "rnnlab"), "report", "--repo", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: `dvc exp show --json` failed")
