"""Time the sequence-length study through DVC's queue beside DVC's own floor, in one run.

The study is the README's command: one queued experiment per length (``-S seq_len=L``), run by
``dvc queue start -j 2``. The floor is as many queued experiments that change a key no stage reads
(``-S +bench.floor=k``): DVC builds the same workspace per experiment, checks every stage, runs
none and records the experiment. What the study takes beyond the floor is our work: the stages
that rerun (trainings, evaluation, analyses, plots), their processes' start-up included.

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


def experiments(repo: Path) -> int:
    """How many experiments the repository has recorded (cheap: a git ref each, no DVC start-up)."""
    refs = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], cwd=repo, capture_output=True,
                          text=True, check=True)
    return sum("/celery/" not in ref for ref in refs.stdout.splitlines())  # the queue's own stash is no experiment


def queue_and_time(repo: Path, overrides: list[str], jobs: int) -> float:
    """Queue one experiment per ``-S`` override, run the queue with ``jobs`` workers, and return
    the seconds from ``dvc queue start`` until every experiment is recorded."""
    expected = experiments(repo) + len(overrides)
    for override in overrides:
        dvc(repo, "exp", "run", "--queue", "-S", override)
    start = time.perf_counter()
    dvc(repo, "queue", "start", "-j", str(jobs))
    next_check = start + 10
    while experiments(repo) < expected:
        if time.perf_counter() > next_check:  # a failed experiment records no ref: do not wait forever
            fail_if_any_failed(repo)
            next_check += 10
        time.sleep(0.2)
    seconds = time.perf_counter() - start
    stop_workers(repo)  # not timed: the shutdown is not the study
    return seconds


def stop_workers(repo: Path) -> None:
    """Stop the queue's workers and wait until none is left (``dvc queue status`` lists them)."""
    dvc(repo, "queue", "stop")
    while "Worker status: 0 active" not in dvc(repo, "queue", "status"):
        time.sleep(0.5)


def fail_if_any_failed(repo: Path) -> None:
    failed = [line for line in dvc(repo, "queue", "status").splitlines() if "Failed" in line]
    if failed:
        raise SystemExit("an experiment failed (see `dvc queue logs <name>`):\n" + "\n".join(failed))


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
