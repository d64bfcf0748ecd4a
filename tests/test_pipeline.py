"""dvc.yaml is honest: every stage depends on exactly the code it runs."""

import ast
import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from rnnlab import report

from conftest import ROOT, run

PACKAGE = ROOT / "src" / "rnnlab"


def rnnlab_imports(path: Path) -> set[str]:
    """Modules of the rnnlab package that ``path`` imports directly."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "rnnlab":
            if node.module == "rnnlab":
                found |= {a.name for a in node.names if (PACKAGE / f"{a.name}.py").exists()}
            else:
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("rnnlab.")}
    return found


def closure(script: Path) -> set[str]:
    # importing anything of rnnlab runs its __init__ first, which pins the CPU code paths (cpu.py)
    todo, seen = rnnlab_imports(script) | {"__init__"}, set()
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo |= rnnlab_imports(PACKAGE / f"{module}.py")
    return {f"src/rnnlab/{m}.py" for m in seen}


def stages():
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in spec.items():
        script = re.search(r"python (stages/\S+\.py)", stage["cmd"]).group(1)
        yield pytest.param(stage, script, id=name)


@pytest.mark.parametrize(("stage", "script"), list(stages()))
def test_stage_depends_on_its_script_and_exactly_the_library_it_imports(stage, script):
    deps = set(stage["deps"])
    assert script in deps
    library = {d for d in deps if d.startswith("src/")}
    assert library == closure(ROOT / script), "deps must list the rnnlab modules the script imports"


# What a stage runs, for real, and reports which heavy modules it loaded on its way out.
LOADED = """import runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    print("loaded:", " ".join(m for m in ("torch", "matplotlib") if m in sys.modules))
"""


@pytest.mark.parametrize(("name", "args"), [
    ("generate_sine", ["sine.csv"]),
    ("generate_ball", ["ball.csv"]),
    ("generate_windows", ["windows.csv"]),
    ("prepare_series", ["sine.csv", "--series", "s.csv", "--scaled", "z.csv", "--scaling", "scaling.json"]),
])
def test_a_stage_that_makes_no_tensors_starts_without_torch_or_matplotlib(name, args, tmp_path, default_params):
    # each costs about 2 s (torch) and 0.1-0.5 s (matplotlib) of a stage's start, every dvc repro
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(default_params))
    if name == "prepare_series":
        run([sys.executable, str(ROOT / "stages/generate_sine.py"), "sine.csv"], tmp_path)
    proc = run([sys.executable, "-c", LOADED, str(ROOT / "stages" / f"{name}.py"), *args], tmp_path)
    assert proc.stdout.strip().splitlines()[-1] == "loaded:", proc.stdout + proc.stderr


def test_seq_len_is_a_top_level_param_used_by_training():
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert "seq_len" in yaml.safe_load((ROOT / "params.yaml").read_text())
    assert "seq_len" in spec["train_sine"]["params"]


def test_the_only_git_tracked_outs_are_the_details_of_the_metrics():
    # cache: false leaves a file to git. Metrics and plots aside, that is only the detail beside each
    # experiment's few declared metrics: `rnnlab report` reads S's from each experiment's commit with
    # `git show`, B's sits beside it for the same reason, and `rnnlab docs` reads W's and R's spread
    # over seeds from theirs; DVC 3 still run-caches such a stage
    # (dvc/stage/cache.py commits uncached outs into the run cache).
    uncached = set()
    for stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].values():
        for out in stage.get("outs", []):
            if isinstance(out, dict):
                uncached |= {path for path, options in out.items() if options.get("cache") is False}
    assert uncached == {f"metrics/{name}_detail.json" for name in ("sine", "ball", "windows", "random_windows")}
    assert report.DETAIL == "metrics/sine_detail.json"


def test_declared_metrics_are_few_and_the_readmes_command_lists_them_one_per_line():
    """`dvc metrics show` puts every declared key of every file in one row: detail goes to *_detail.json.
    The README reads them with `dvc metrics diff --all`, one per line."""
    def width(*cmd):
        out = run([str(Path(sys.executable).parent / "dvc"), *cmd], ROOT).stdout
        return max(map(len, out.splitlines()))

    for name, prefix in (("windows", "W"), ("random_windows", "R")):
        declared = json.loads((ROOT / "metrics" / f"{name}.json").read_text())[prefix]
        assert all(len(keys) == 2 for keys in declared.values()), name  # the medians; min/max in the detail
    # 2621 with W's and R's spread declared; 2024 since AutoReg with a constant joined the references
    assert width("metrics", "show") <= 2100
    assert width("metrics", "diff", "--all") <= 110
