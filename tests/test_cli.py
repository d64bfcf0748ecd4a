"""`rnnlab predict-ball`, driven the way a person drives it: arguments and real stdin."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from rnnlab import ball, ball_data, provenance
from rnnlab.checkpoints import save_checkpoint
from rnnlab.cli import main
from rnnlab.models import ModelConfig, build_reference

from conftest import ball_models_folder, reference_checkpoint


@pytest.fixture
def models(tmp_path):
    return ball_models_folder(tmp_path)


def rnnlab(*args, stdin="", folder: Path, shards: Path | None = None):
    command = [str(Path(sys.executable).parent / "rnnlab"), *args, "--models", str(folder),
               "--metrics", str(folder / "metrics.json"), "--shards", str(shards or folder / "shards")]
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


def test_a_history_may_start_with_a_negative_number_without_double_dash(models):
    proc = rnnlab("predict-ball", "-1,-2,-3", folder=models)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == expected(models, "lstm", [-1, -2, -3])
    assert proc.stderr == ""


def test_a_negative_history_may_come_before_the_options(models):
    proc = rnnlab("predict-ball", "-9,-7,-5", "--model", "gru", folder=models)
    assert proc.stdout.strip() == expected(models, "gru", [-9, -7, -5])


def test_a_bad_negative_history_says_what_is_wrong_with_it(models):
    proc = rnnlab("predict-ball", "-1,a", folder=models)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: not an integer position: 'a'"


def test_an_unknown_option_is_still_an_error(models):
    proc = rnnlab("predict-ball", "--bogus", folder=models)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1] == "rnnlab: error: unrecognized arguments: --bogus"


def test_a_second_history_is_an_error(models):
    proc = rnnlab("predict-ball", "1,2", "-3,4", folder=models)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1] == "rnnlab: error: unrecognized arguments: -3,4"


def test_help_says_how_a_history_is_written():
    proc = subprocess.run([str(Path(sys.executable).parent / "rnnlab"), "predict-ball", "--help"],
                          capture_output=True, text=True, timeout=120)
    text = " ".join(proc.stdout.split())  # argparse wraps to the terminal's width
    assert "comma-separated integers: 1,3,5,7 or -1,-2,-3 (no `--` needed)" in text
    assert 'quote a history with spaces: "1, 3, 5"' in text


def test_a_history_outside_the_training_range_warns_and_still_answers(models):
    proc = rnnlab("predict-ball", "100,200,300", folder=models)
    assert proc.returncode == 0
    assert proc.stdout.strip() == expected(models, "lstm", [100, 200, 300])
    assert proc.stderr == ("warning: positions 100..300 lie outside the training data's range -12..40; "
                           "the answer is an extrapolation\n")


def test_the_warning_names_only_the_positions_outside_the_range(models):
    proc = rnnlab("predict-ball", "-20,-12,-4", folder=models)
    assert proc.stderr == ("warning: position -20 lies outside the training data's range -12..40; "
                           "the answer is an extrapolation\n")


def test_a_history_inside_the_training_range_gets_no_warning(models):
    proc = rnnlab("predict-ball", "-12,0,40", folder=models)
    assert proc.returncode == 0 and proc.stderr == ""


def test_interactive_session_warns_per_line(models):
    proc = rnnlab("predict-ball", stdin="1,2,3\n50,60\n", folder=models)
    assert proc.stderr.splitlines()[1:] == [
        "warning: positions 50..60 lie outside the training data's range -12..40; the answer is an extrapolation"]


def test_without_training_shards_it_says_so_and_still_answers(models, tmp_path_factory):
    empty = tmp_path_factory.mktemp("no_shards")
    proc = rnnlab("predict-ball", "100,200", folder=models, shards=empty)
    assert proc.returncode == 0
    assert proc.stdout.strip() == expected(models, "lstm", [100, 200])
    assert proc.stderr == (f"warning: {empty / 'training_set.0.pt'}: no such file; run `dvc repro prepare_ball`; "
                           "histories are not checked against the training range\n")


def test_version_prints_the_package_version():
    from importlib import metadata

    proc = subprocess.run([str(Path(sys.executable).parent / "rnnlab"), "--version"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert proc.stdout == f"rnnlab {metadata.version('rnnlab')}\n"


def test_top_level_help_explains_experiments_and_texts_to_a_newcomer(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert 'texts" 000-004' in out and "text 004" in out
    for letter, task in (("S", "noisy sine"), ("B", "ball"), ("W", "sliding windows"), ("R", "random windows")):
        assert re.search(rf"^  {letter}  .*{task}", out, re.MULTILINE), (letter, out)


def test_forecast_model_has_help(capsys):
    with pytest.raises(SystemExit):
        main(["forecast", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "which trained S model continues the series" in out


@pytest.mark.parametrize("scale", [0.0, float("nan"), -50.0, "50", None])
def test_a_checkpoint_whose_scale_is_no_positive_number_is_refused(models, scale):
    cfg = ModelConfig("gru", hidden_size=8)
    extra = {"epochs": 1, "best_epoch": 1, "trained_on": provenance.ball(models / "shards", 50.0)}
    if scale is not None:
        extra["scale"] = scale
    save_checkpoint(models / "gru.pt", reference_checkpoint(cfg, build_reference(cfg, seed=0), 0, **extra))
    proc = rnnlab("predict-ball", "--model", "gru", "1,2,3", folder=models)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == f"error: {models / 'gru.pt'}: damaged checkpoint: extra.scale is {scale!r}, not a positive number; " \
                          "run `dvc repro train_ball@gru`\n"


def test_a_model_trained_on_other_shards_is_refused(models, tmp_path_factory):
    other = tmp_path_factory.mktemp("other_shards")
    for chunk, splits in ball_data.make_shards([[1, 2, 3], [4, 5, 6]] * 5, chunk_lines=10, scale=50.0, cuts=(0.6, 0.8), seed=0):
        for split, shard in splits.items():
            (other / ball_data.shard_name(split, chunk)).write_bytes(ball_data.shard_bytes(shard))
    proc = rnnlab("predict-ball", "1,2,3", folder=models, shards=other)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"error: {models / 'lstm.pt'}: trained on something else than it would be now: data ")
