"""After ``dvc repro``: are the outputs the commit's, and where are the results?

``make repro`` ends with ``rnnlab status``. On every x86-64 CPU with AVX2 the pinned libraries
(``rnnlab.cpu``) make the commit's bytes, so ``git status`` stays empty. Elsewhere (arm64,
another libc) some outputs can differ in their last bits; then this machine's outputs are its
own baseline, and the way back after an experiment (``git checkout HEAD -- params.yaml && dvc
repro``) returns to them from DVC's run cache. What would not work is checking the commit's
``dvc.lock`` out: its outputs were never made here, so ``dvc checkout`` has nothing to restore.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from rnnlab.errors import RnnlabError

TRACKED = ("dvc.lock", "metrics", "plots")  # what a `dvc repro` writes into git's files
LOOK = """Results:
  dvc metrics show metrics/sine.json      experiment S, one row per model (metrics/*.json: every experiment)
  rnnlab scores                           who won experiment S: every network and classical forecaster, sorted
  dvc plots show                          every plot, one page: dvc_plots/index.html
  plots/*/*.png                           the figures (plots/sine/sine_predictions.png: S's test range)
  rnnlab --help                           forecast, predict-ball, scores, report, status, cpu"""


@dataclass(frozen=True)
class Status:
    changed: list[str]   # git's short status lines of the committed outputs
    pipeline_clean: bool  # dvc status: every stage up to date with dvc.lock

    @property
    def the_commits(self) -> bool:
        return not self.changed and self.pipeline_clean


def _run(cmd: list[str], repo: Path) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise RnnlabError(f"`{' '.join(cmd)}`: {exc.strerror}") from None


def status(repo: Path) -> Status:
    git = _run(["git", "status", "--porcelain", "--", *TRACKED], repo)
    if git.returncode != 0:
        raise RnnlabError(f"{repo}: not a git repository ({' '.join(git.stderr.strip().splitlines()[-1:])})")
    dvc = _run([sys.executable, "-m", "dvc", "status", "--quiet"], repo)  # exit 1: a stage is not up to date
    return Status([line for line in git.stdout.splitlines() if line.strip()], dvc.returncode == 0)


def describe(state: Status) -> str:
    if not state.pipeline_clean:
        head = "Some stages are not up to date with dvc.lock (`dvc status` lists them): run `dvc repro`."
    elif state.the_commits:
        head = "Every output is the commit's, byte for byte: `git status` shows no change."
    else:
        listed = "\n".join(f"  {line}" for line in state.changed[:12])
        more = f"\n  ... and {len(state.changed) - 12} more" if len(state.changed) > 12 else ""
        head = (f"{len(state.changed)} committed outputs differ from what this machine made:\n{listed}{more}\n"
                "Either you changed params.yaml or code (then this is your experiment), or this machine computes "
                "other last bits than the commit's (docs/reproducibility.md: which machines do). Your workspace is "
                "this machine's baseline; to compare experiments with it rather than with the commit, commit it:\n"
                "  git commit -m 'baseline on this machine' -- dvc.lock metrics plots")
    return f"{head}\n{LOOK}"
