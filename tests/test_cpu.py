"""The same bytes on every x86-64 CPU with AVX2: each numerical library runs one pinned code path.

The reference for "another CPU" is a real one's choices: qemu emulates an Intel Haswell and an
AMD EPYC (both AVX2, no AVX-512), each library dispatches on what that CPU reports, and the
probe's hashes must equal this machine's. Without the pins the same probe must differ, or the
test could not fail.
"""

import ast
import json
import platform
import shutil
import sys
from pathlib import Path

import pytest

from rnnlab import cpu

from conftest import ROOT, run

PROBE = ROOT / "tests" / "cpu_probe.py"
EMULATED = ("Haswell-v4", "EPYC-v3")  # Intel and AMD, AVX2 without AVX-512
NUMERICAL = {"numpy", "torch", "pandas", "scipy", "statsmodels", "matplotlib", "numba"}


def has_avx2() -> bool:
    from numpy._core import _multiarray_umath as umath

    return bool(umath.__cpu_features__.get("AVX2"))


def probe(*prefix: str, native: bool = False) -> dict:
    env = {"RNNLAB_CPU": "native" if native else ""}
    proc = run([*prefix, sys.executable, str(PROBE)], ROOT, timeout=600, env_extra=env)
    return json.loads(proc.stdout.strip().splitlines()[-1])


needs_avx2 = pytest.mark.skipif(platform.machine() != "x86_64" or not has_avx2(), reason="the pins choose AVX2 paths")


@needs_avx2
def test_each_library_reports_the_pinned_path():
    paths = cpu.paths()
    assert paths["numpy dispatch"] == "X86_V3 (AVX2)"
    assert paths["ATen (PyTorch) capability"] == "AVX2"
    assert paths["MKL branch"] == "COMPATIBLE"
    cores = {value for key, value in paths.items() if key.startswith("OpenBLAS core")}
    assert cores == {"Haswell"}, "numpy's and scipy's OpenBLAS both"


def test_numpy_has_no_dispatch_target_above_avx2_left_on():
    """A numpy upgrade that adds a target (AVX10, say) must not slip past the pin unnoticed."""
    from numpy._core import _multiarray_umath as umath

    above_avx2 = set(umath.__cpu_dispatch__) - {"X86_V2", "X86_V3"}
    assert above_avx2 <= set(cpu.PINS["NPY_DISABLE_CPU_FEATURES"].split())


@needs_avx2
def test_the_rnnlab_command_prints_the_paths():
    out = run([str(Path(sys.executable).parent / "rnnlab"), "cpu"], ROOT).stdout
    assert "pins: on" in out and "COMPATIBLE" in out and "X86_V3" in out


def test_every_pin_is_in_the_environment_of_an_rnnlab_process():
    code = "import rnnlab, os, json; print(json.dumps({k: os.environ.get(k) for k in rnnlab.cpu.PINS}))"
    found = json.loads(run([sys.executable, "-c", code], ROOT, env_extra={"MKL_CBWR": "AVX2"}).stdout)
    assert found == cpu.PINS, "a user's own setting must not unpin a stage"


def test_a_stage_refuses_to_run_when_numpy_was_loaded_before_the_pins(tmp_path):
    stage = str(ROOT / "stages/generate_sine.py")
    code = f"import numpy, runpy, sys; sys.argv = ['generate_sine.py', 'x.csv']; runpy.run_path({stage!r}, run_name='__main__')"
    shutil.copy(ROOT / "params.yaml", tmp_path)
    unset = {key: "" for key in cpu.PINS}  # a fresh shell's: this process's pins would be inherited
    proc = run([sys.executable, "-c", code], tmp_path, check=False, env_extra=unset)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "error: generate_sine.py: numpy was imported before rnnlab pinned the CPU code paths "
        "(rnnlab.cpu): import rnnlab first, or set RNNLAB_CPU=native to accept machine-dependent bytes")
    assert not (tmp_path / "x.csv").exists()
    assert run([sys.executable, "-c", code], tmp_path, env_extra=unset | {"RNNLAB_CPU": "native"}).returncode == 0


def entry_points():
    yield from sorted((ROOT / "stages").glob("*.py"))
    yield from sorted((ROOT / "benchmarks").glob("*.py"))
    yield ROOT / "tests" / "conftest.py"
    yield PROBE


@pytest.mark.parametrize("script", list(entry_points()), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_entry_point_imports_rnnlab_before_any_numerical_library(script):
    for node in ast.parse(script.read_text()).body:
        if isinstance(node, ast.Import):
            tops = {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            tops = {(node.module or "").split(".")[0]}
        else:
            continue
        if "rnnlab" in tops:
            return
        assert not tops & NUMERICAL, f"{script.name} imports {tops & NUMERICAL} before rnnlab"


@pytest.mark.slow
@needs_avx2
@pytest.mark.skipif(shutil.which("qemu-x86_64") is None, reason="needs qemu-user (apt-get install qemu-user)")
def test_an_intel_and_an_amd_cpu_compute_this_machines_bytes_and_would_not_without_the_pins():
    here = probe()
    for model in EMULATED:
        assert probe("qemu-x86_64", "-cpu", model) == here, f"{model} computed other bytes under the pins"
    unpinned = probe("qemu-x86_64", "-cpu", "Haswell-v4", native=True)
    changed = {part for part in here if unpinned[part] != here[part]}
    # MKL's Intel AVX2 kernels: every part PyTorch computes (numpy: only on an AVX-512 host)
    assert {"rnn", "gru", "lstm", "products"} <= changed, changed


def test_no_stage_reaches_onednn(tiny_baseline):
    # oneDNN's LSTM blocks by cache size: pinning its ISA does not make it agree between CPUs
    log = (tiny_baseline.parent / "repro.log").read_text()
    assert "Running stage 'train_ball@lstm'" in log
    assert ",primitive,exec," not in log, "a stage executed a oneDNN primitive"


def test_an_unpacked_lstm_would_reach_onednn_so_the_check_above_can_fail():
    code = "import rnnlab, torch; torch.nn.LSTM(1, 4, batch_first=True)(torch.zeros(2, 3, 1))"
    assert ",primitive,exec," in run([sys.executable, "-c", code], ROOT, env_extra={"ONEDNN_VERBOSE": "1"}).stdout

