"""The same bytes on other CPUs: tests/cpu_probe.py here and under qemu's emulated Intel and AMD CPUs.

The probe computes, through each pinned library, what the stages compute (text 004's packed
training on nn.RNN/LSTM/GRU, batched products, numpy's transcendental loops, statsmodels'
AutoReg and exponential smoothing) and prints a hash of each part. Run here with the pins and
without, and under ``qemu-x86_64 -cpu MODEL`` for each emulated CPU with and without: every
library dispatches on the CPU qemu reports (vendor, AVX2, no AVX-512). Writes
``benchmarks/results/cross_cpu.json``, from which docs/reproducibility.md's table is generated.
tests/test_cpu.py asserts the same on two of the CPUs at every ``make test``.

    python benchmarks/cross_cpu.py     # needs qemu-user (apt-get install qemu-user); about 3 min
"""

import rnnlab  # noqa: F401  (first: pins the numerical libraries' CPU code paths, rnnlab/cpu.py)

# isort: split

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

from rnnlab import cpu

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "tests" / "cpu_probe.py"
EMULATED = {"Haswell-v4": "Intel Haswell (AVX2), emulated", "Skylake-Client-v4": "Intel Skylake (AVX2), emulated",
            "EPYC-v3": "AMD EPYC Zen 1 (AVX2), emulated", "EPYC-Rome-v2": "AMD EPYC Zen 2 (AVX2), emulated"}


def probe(prefix: list[str], pinned: bool) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in cpu.PINS}  # as a fresh shell has them
    env["RNNLAB_CPU"] = "" if pinned else "native"
    proc = subprocess.run([*prefix, sys.executable, str(PROBE)], env=env, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    if shutil.which("qemu-x86_64") is None:
        raise SystemExit("needs qemu-x86_64: apt-get install qemu-user")
    runs = []
    for pinned in (True, False):
        runs.append({"cpu": f"this machine: {cpu.machine()}", "pins": "on" if pinned else "off", "hashes": probe([], pinned)})
        for model, name in EMULATED.items():
            runs.append({"cpu": name, "pins": "on" if pinned else "off",
                         "hashes": probe(["qemu-x86_64", "-cpu", model], pinned)})
            print(runs[-1], flush=True)
    out = ROOT / "benchmarks/results/cross_cpu.json"
    out.write_text(json.dumps({"date": date.today().isoformat(), "runs": runs}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
