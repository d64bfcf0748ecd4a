"""No value of params.yaml is code: DVC puts a `${...}` into a stage's command as it is, and a shell
runs that command, so dvc.yaml's commands hold no params value (the csv paths are read from
params.yaml by the stage, the matrix item from DVC's stage name)."""

import re

import pytest
import yaml

from conftest import ROOT

pytestmark = pytest.mark.slow

# quotes, command substitution, backticks, a command separator, a newline
PAYLOADS = ["a'$(touch INJECTED)'b", 'a"$(touch INJECTED)"b', "a`touch INJECTED`b", "a;touch INJECTED;b", "a\ntouch INJECTED\nb"]


def test_dvc_yaml_puts_no_params_value_on_a_command_line():
    for name, stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        assert not re.search(r"\$\{", stage["cmd"]), f"{name}: {stage['cmd']}"


@pytest.mark.parametrize("payload", PAYLOADS, ids=["quote", "double-quote", "backtick", "semicolon", "newline"])
def test_a_csv_path_with_shell_syntax_is_read_as_a_file_name(project, payload):
    data = project.path / "data"
    data.mkdir(exist_ok=True)
    odd = f"data/{payload}.csv"
    (project.path / odd).write_text("\n".join(f"{0.01 * k:.6f}" for k in range(300)) + "\n")
    params = project.params()
    params["series"].update(csv_path=odd, season=None)
    project.write_params(params)
    proc = project.run("dvc", "repro", "prepare_series", check=False)
    assert not list(project.path.rglob("INJECTED")), "a params value ran as shell code"
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len((project.path / "data/series/series.csv").read_text().splitlines()) == 300


@pytest.mark.parametrize("payload", PAYLOADS[:4], ids=["quote", "double-quote", "backtick", "semicolon"])
def test_a_model_name_with_shell_syntax_runs_nothing_and_is_refused(project, payload):
    project.run("dvc", "repro", "prepare_ball")  # its shards ready: only the payload's stage is left to run
    params = project.params()
    params["ball"]["models"] = [payload]
    project.write_params(params)
    proc = project.run("dvc", "repro", "train_ball", check=False)
    assert not list(project.path.rglob("INJECTED")), "a params value ran as shell code"
    assert proc.returncode != 0
    assert f"Running stage 'train_ball@{payload}'" in proc.stdout, proc.stdout  # the command did run
    assert "unknown model" in proc.stderr or "ball.models" in proc.stderr, proc.stderr
