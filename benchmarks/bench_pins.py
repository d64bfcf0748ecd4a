"""What each CPU pin governs and costs: the whole pipeline with one pin left to its library.

Each variant is a full ``dvc repro`` of the default params in its own copy of this working tree,
one after another (never two at once: they would share the two cores):

* ``pinned``                 every pin (what every stage runs);
* ``<PIN> as this CPU``      that one variable left to the library, which then chooses for this CPU;
* ``<PIN> as another CPU``   the same, with the choice another CPU makes forced (OpenBLAS's
                             SkylakeX kernels: what an AVX-512 Intel CPU takes; here it takes Haswell's);
* ``native``                 no pin at all.

An output "governed" by a pin is one whose hash in the variant's dvc.lock differs from the pinned
run's. Times are each run's wall clock (DVC included) and text 004's RNN training seconds (the
torch engine: MKL's products), one run each, in the order above. Writes
``benchmarks/results/bench_pins.json``, which docs/reproducibility.md's table is generated from
(``rnnlab docs``).

    python benchmarks/bench_pins.py                 # 7 runs of dvc repro: about 30 min here
    python benchmarks/bench_pins.py --only pinned MKL_CBWR
"""

import rnnlab  # noqa: F401  (first: pins the numerical libraries' CPU code paths, rnnlab/cpu.py)

# isort: split

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import yaml

from rnnlab import cpu

ROOT = Path(__file__).resolve().parents[1]
# The variants: name -> (RNNLAB_CPU, the environment that stands for the CPU's own choice)
VARIANTS = {
    "pinned": ("", {}),
    "ATEN_CPU_CAPABILITY": ("native:ATEN_CPU_CAPABILITY", {}),
    "MKL_CBWR": ("native:MKL_CBWR", {}),
    "NPY_DISABLE_CPU_FEATURES": ("native:NPY_DISABLE_CPU_FEATURES", {}),
    "OPENBLAS_CORETYPE": ("native:OPENBLAS_CORETYPE", {"OPENBLAS_CORETYPE": "SkylakeX"}),
    "OPENBLAS_NUM_THREADS": ("native:OPENBLAS_NUM_THREADS", {}),
    "native": ("native", {}),
}


def snapshot(dest: Path) -> None:
    """The working tree as a commit of it would hold it (tracked and new files, not ignored), taken
    once, so that every variant runs the same code, and numba's compiled kernels beside its sources
    (the cache is valid for a copy whose sources keep their times: copy2; else minutes of compiling)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "src/rnnlab/__pycache__", dest / "src/rnnlab/__pycache__", dirs_exist_ok=True)


def outs(lock: Path) -> dict[str, str]:
    """Every output of a dvc.lock and its hash."""
    found = {}
    for stage in yaml.safe_load(lock.read_text())["stages"].values():
        for out in stage.get("outs", []):
            found[out["path"]] = out.get("md5", "")
    return found


def library_paths(env: dict) -> dict[str, str]:
    code = "import rnnlab, json; print(json.dumps(rnnlab.cpu.paths()))"  # run in the variant's own env
    return json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                     check=True).stdout)


def run_variant(name: str, scratch: Path) -> dict:
    setting, forced = VARIANTS[name]
    project = scratch / name
    shutil.copytree(scratch / "tree", project, symlinks=True)
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    (project / "dvc.lock").unlink(missing_ok=True)
    env = {key: value for key, value in os.environ.items() if key not in cpu.PINS}  # as a fresh shell has them
    env |= {"RNNLAB_CPU": setting, **forced, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
            "PYTHONPATH": str(project / "src")}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=project, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{name}: dvc repro failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    rnn = json.loads((project / "timings/ball/rnn.json").read_text())["train_seconds"]
    return {"setting": setting or "(unset)", "forced": forced, "paths": library_paths(env), "seconds": round(seconds, 1),
            "ball_rnn_seconds": rnn, "outs": outs(project / "dvc.lock"), "metrics": metric_values(project)}


def metric_values(project: Path) -> dict[str, float]:
    """Every number of every metrics file (the details included), by file and dotted key."""
    found = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}", item)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            found[prefix] = float(value)

    for path in sorted((project / "metrics").glob("*.json")):
        walk(path.stem, json.loads(path.read_text()))
    return found


def largest_change(values: dict[str, float], pinned: dict[str, float]) -> dict:
    """How far a variant's metrics moved from the pinned run's: the largest relative change and where."""
    changed = {key: abs(v - pinned[key]) / max(abs(pinned[key]), 1e-300) for key, v in values.items()
               if key in pinned and v != pinned[key]}
    if not changed:
        return {"metrics_changed": 0}
    key = max(changed, key=changed.get)
    return {"metrics_changed": len(changed), "largest_relative_change": float(f"{changed[key]:.3g}"), "where": key}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=list(VARIANTS), help="these variants (pinned is always run)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/bench_pins.json"))
    args = parser.parse_args()
    names = ["pinned", *[n for n in VARIANTS if n != "pinned" and (not args.only or n in args.only)]]
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-pins-") as scratch:
        snapshot(Path(scratch) / "tree")
        for name in names:
            results[name] = run_variant(name, Path(scratch))
            governed = sorted(p for p, h in results[name]["outs"].items() if results["pinned"]["outs"].get(p) != h)
            results[name]["differs_from_pinned"] = governed
            results[name] |= largest_change(results[name]["metrics"], results["pinned"]["metrics"])
            print(f"{name:<26} {results[name]['seconds']:7.1f} s  ball rnn {results[name]['ball_rnn_seconds']:6.1f} s  "
                  f"outputs differing from pinned: {len(governed)} {' '.join(governed)}; "
                  f"metrics: {results[name].get('metrics_changed')} changed, largest "
                  f"{results[name].get('largest_relative_change', 0):.3g} ({results[name].get('where', '-')})", flush=True)
    for result in results.values():
        del result["outs"], result["metrics"]
    machine = {"cpu": cpu.machine(), "date": date.today().isoformat(),
               "load": "quiet: nothing else ran (one run per variant, in the order listed)"}
    Path(args.out).write_text(json.dumps({"machine": machine, "variants": results}, indent=2) + "\n")
    print(f"wrote {args.out}")



if __name__ == "__main__":
    main()
