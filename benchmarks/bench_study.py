"""Time the sequence-length study through DVC's queue beside DVC's own floor, in one run.

The study is the README's command: one queued experiment per length (``-S seq_len=L``), run by
two queue workers (``dvc exp run --run-all -j 2``, which returns when the queue is empty). The
floor is as many queued experiments that change a key no stage reads (``-S +bench.floor=k``): DVC
builds the same workspace per experiment, checks every stage, runs none and records the experiment.
What the study takes beyond the floor is our work: the stages that rerun (trainings, evaluation,
analyses, plots), their processes' start-up included.

Both run in a temporary clone of HEAD that uses this repository's DVC cache (``dvc checkout``
puts the committed outputs in place, so only what a length changes reruns), one after the
other on the same machine: read the ratio, not the seconds.

    python benchmarks/bench_study.py                     # 6 lengths, 2 workers
    python benchmarks/bench_study.py --lengths 10,20     # quicker
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def dvc(repo: Path, *args: str) -> str:
    """Run ``dvc args`` with this interpreter's DVC in ``repo``; its stdout."""
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"dvc {' '.join(args)} failed in {repo}:\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def queue_and_time(repo: Path, overrides: list[str], jobs: int) -> float:
    """Queue one experiment per ``-S`` override and return the seconds ``dvc exp run --run-all``
    takes to run them with ``jobs`` workers (it returns once the queue is empty)."""
    for override in overrides:
        dvc(repo, "exp", "run", "--queue", "-S", override)
    start = time.perf_counter()
    dvc(repo, "exp", "run", "--run-all", "-j", str(jobs))
    seconds = time.perf_counter() - start
    failed = [line for line in dvc(repo, "queue", "status").splitlines() if "Failed" in line]
    if failed:
        raise SystemExit("an experiment failed (see `dvc queue logs <name>`):\n" + "\n".join(failed))
    return seconds


def clone_with_cache(dest: Path) -> Path:
    """A clone of HEAD whose DVC cache is this repository's, its outputs checked out."""
    subprocess.run(["git", "clone", "-q", str(ROOT), str(dest)], check=True)
    dvc(dest, "cache", "dir", "--local", str(ROOT / ".dvc" / "cache"))
    dvc(dest, "checkout")
    if "up to date" not in dvc(dest, "status"):
        raise SystemExit("HEAD's outputs are not all in the DVC cache: run `dvc repro` (or `make repro`) first")
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", default="5,10,20,30,40,50", help="seq_len values (default %(default)s)")
    parser.add_argument("--jobs", type=int, default=2, help="queue workers (default %(default)s)")
    args = parser.parse_args()
    lengths = [int(n) for n in args.lengths.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        repo = clone_with_cache(Path(tmp) / "repo")
        floor = queue_and_time(repo, [f"+bench.floor={k}" for k in range(len(lengths))], args.jobs)
        study = queue_and_time(repo, [f"seq_len={n}" for n in lengths], args.jobs)
        shutil.rmtree(repo / ".dvc" / "tmp", ignore_errors=True)
    n = len(lengths)
    rows = {"DVC's floor (no stage runs)": floor, f"the study (seq_len={args.lengths})": study,
            "our part (study - floor)": study - floor}
    print(f"{n} experiments, {args.jobs} queue workers, this machine, one run:")
    for label, seconds in rows.items():
        print(f"  {label:<40} {seconds:6.1f} s  ({seconds / n:.1f} s per experiment)")
    print(f"  study / floor = {study / floor:.2f}x")

if __name__ == "__main__":
    main()
