"""A fresh clone stays clean, as a new user meets it, with tiny params.

A repository commits what `dvc repro` made (dvc.lock, metrics, histories, PNGs). A fresh
`git clone` of it has no DVC cache, like a new machine: its `dvc repro` reruns every stage,
and afterwards `git status` must show nothing, because every committed output comes back byte
for byte and the training seconds go to the gitignored timings/ folder.
"""

import json
import re

import pytest

from conftest import clone

pytestmark = pytest.mark.slow


def stages_run(proc) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", proc.stdout))


def test_a_fresh_clone_reproduces_the_commit_and_leaves_git_clean(repro_done, tmp_path):
    fresh = clone(str(repro_done.path), tmp_path / "fresh")
    assert not (fresh.path / ".dvc" / "cache").exists(), "a fresh clone starts without a DVC cache"
    proc = fresh.run("dvc", "repro")
    assert "train_ball@gru" in stages_run(proc), "without a cache every stage must run"
    assert fresh.run("git", "status", "--porcelain").stdout == "", "a fresh repro changed committed files"
    assert json.loads((fresh.path / "timings/sine/gru.json").read_text())["train_seconds"] > 0

