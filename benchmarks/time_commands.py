"""What the README's commands cost from a fresh clone: the one source of the times the docs state.

Clones this repository's HEAD into a temporary folder, as a new machine has it (no venv, no DVC
cache, no numba cache), and times, one after another: ``make setup`` (with its kernel warm-up,
which it prints), ``make repro`` (``dvc repro`` of the default params) and ``make test``. Records
the machine and its load average before and after each command, and writes
``benchmarks/results/commands.json``; docs/workflow.md's table is generated from it (``rnnlab docs``).

    python benchmarks/time_commands.py            # about 13 min here (setup, repro, test)
    python benchmarks/time_commands.py --skip-test
"""

import rnnlab  # noqa: F401  (first: pins the numerical libraries' CPU code paths, rnnlab/cpu.py)

# isort: split

import argparse
import json
import os
import re
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path

from rnnlab import cpu

ROOT = Path(__file__).resolve().parents[1]
WARM_UP = re.compile(r"kernels \((\w+)\) ready in (\d+) s")
PYTEST = re.compile(r"=+ (.*?) in ([\d.]+)s")
STATUS = re.compile(r"Every output is the commit's, byte for byte|\d+ committed outputs differ from what this machine made")


def timed(command: list[str], cwd: Path) -> dict:
    env = {key: value for key, value in os.environ.items() if key not in cpu.PINS and key != "VIRTUAL_ENV"}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if ".venv" not in p)  # a fresh shell's
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return {"command": " ".join(command), "seconds": round(seconds), "load_before": round(load, 2),
            "load_after": round(os.getloadavg()[0], 2), "output": proc.stdout + proc.stderr}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-test", action="store_true", help="time make setup and make repro only")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/commands.json"))
    args = parser.parse_args()
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.strip()
    results = {}
    with tempfile.TemporaryDirectory(prefix="time-commands-") as scratch:
        clone = Path(scratch) / "rnnlab"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        for name in ("setup", "repro", *(() if args.skip_test else ("test",))):
            results[name] = timed(["make", name], clone)
            print(f"make {name}: {results[name]['seconds']} s (load {results[name]['load_before']} -> "
                  f"{results[name]['load_after']})", flush=True)
    warm = {part: int(seconds) for part, seconds in WARM_UP.findall(results["setup"]["output"])}
    # what `make repro` ends with (rnnlab status): the commit's bytes, or how many files differ
    status = STATUS.search(results["repro"]["output"])
    results["repro"]["status"] = status.group(0) if status else "no status line"
    results["setup"]["kernel_warm_up_seconds"] = warm
    if "test" in results and (found := PYTEST.findall(results["test"]["output"])):
        results["test"]["pytest"] = {"summary": found[-1][0], "seconds": round(float(found[-1][1]))}
    for result in results.values():
        del result["output"]
    machine = {"cpu": cpu.machine(), "cores": os.cpu_count(), "date": date.today().isoformat(), "commit": rev}
    Path(args.out).write_text(json.dumps({"machine": machine, "commands": results}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
