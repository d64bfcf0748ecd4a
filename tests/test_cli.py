"""`rnnlab predict-ball`, driven the way a person drives it: arguments and real stdin."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rnnlab import ball
from rnnlab.checkpoints import reference_checkpoint, save_checkpoint
from rnnlab.models import ModelConfig, build_reference


@pytest.fixture
def models(tmp_path):
    """Untrained but real ball models; the metrics file makes the LSTM the default."""
    for seed, kind in enumerate(["rnn", "lstm", "gru"]):
        cfg = ModelConfig(kind, hidden_size=8)
        model = build_reference(cfg, seed=seed)
        save_checkpoint(tmp_path / f"{kind}.pt", reference_checkpoint(cfg, model, seed, scale=50.0, epochs=1, best_epoch=1))
    metrics = {"rnn": {"mae": 0.5}, "lstm": {"mae": 0.1}, "gru": {"mae": 0.3}}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    return tmp_path


def rnnlab(*args, stdin="", folder: Path):
    command = [str(Path(sys.executable).parent / "rnnlab"), *args, "--models", str(folder),
               "--metrics", str(folder / "metrics.json")]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=120)


def expected(folder, kind, history):
    from rnnlab.checkpoints import load_checkpoint

    saved = load_checkpoint(folder / f"{kind}.pt")
    return f"Next ball location: {ball.predict_history(saved.reference(), history, 50.0):.4f}"


def test_history_argument_prints_the_next_location_with_the_best_model(models):
    proc = rnnlab("predict-ball", "1,3,5,7", folder=models)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == expected(models, "lstm", [1, 3, 5, 7])


def test_model_can_be_chosen(models):
    proc = rnnlab("predict-ball", "9,7,5,3", "--model", "gru", folder=models)
    assert proc.stdout.strip() == expected(models, "gru", [9, 7, 5, 3])


def test_interactive_session_reports_bad_lines_and_goes_on_until_end_of_input(models):
    proc = rnnlab("predict-ball", stdin="1,2,3\n\n4,x\n5\n2,0,-2\n", folder=models)
    assert proc.returncode == 0, proc.stderr
    lines = [line.removeprefix("History ball locations: ") for line in proc.stdout.splitlines()]
    answers = [line for line in lines if line]
    assert answers == [
        expected(models, "lstm", [1, 2, 3]),
        "error: empty position",
        "error: not an integer position: 'x'",
        "error: a history needs at least 2 positions",
        expected(models, "lstm", [2, 0, -2]),
    ]
    assert proc.stdout.count("History ball locations: ") == 6  # one more prompt, answered by end of input


def test_bad_history_argument_exits_non_zero(models):
    proc = rnnlab("predict-ball", "1,a", folder=models)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: not an integer position: 'a'"


def test_missing_model_says_which_dvc_target_makes_it(models):
    (models / "gru.pt").unlink()
    proc = rnnlab("predict-ball", "1,2,3", "--model", "gru", folder=models)
    assert proc.returncode == 1
    assert "gru.pt: no such file; run `dvc repro train_ball@gru`" in proc.stderr


def test_missing_metrics_says_how_to_make_them(models):
    (models / "metrics.json").unlink()
    proc = rnnlab("predict-ball", "1,2,3", folder=models)
    assert proc.returncode == 1
    assert "run `dvc repro evaluate_ball` (or pass --model)" in proc.stderr
