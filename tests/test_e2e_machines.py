"""A sweep split over machines, for real with tiny params: every clone shares a git remote (a bare
repository here) and the DVC remote configured in the committed .dvc/config (a local folder
here). Two machines run their part of a sweep and `dvc exp push origin`; a third `dvc exp pull
origin`s and runs `rnnlab report`. (Without the DVC remote in the baseline commit, `dvc exp push`
uploads no data.)
"""

import pytest

from conftest import clone

pytestmark = pytest.mark.slow


def test_two_machines_push_their_experiments_and_a_third_reports_on_both(repro_done, tmp_path):
    project = repro_done
    origin, storage = tmp_path / "origin.git", tmp_path / "dvc-storage"
    project.run("git", "init", "-q", "--bare", "-b", "main", str(origin))
    project.run("dvc", "remote", "add", "-d", "storage", str(storage))
    project.commit("a shared DVC remote")
    project.run("git", "remote", "add", "origin", str(origin))
    project.run("git", "push", "-q", "origin", "main")
    project.run("dvc", "push")  # the baseline's data, before an experiment replaces the workspace's
    project.run("dvc", "exp", "run", "-n", "len-5", "-S", "seq_len=5")

    second = clone(str(origin), tmp_path / "second")
    second.run("dvc", "pull")
    second.run("dvc", "exp", "run", "-n", "len-10", "-S", "seq_len=10")
    project.run("dvc", "exp", "push", "origin")
    second.run("dvc", "exp", "push", "origin")

    third = clone(str(origin), tmp_path / "third")
    third.run("dvc", "exp", "pull", "origin")
    assert sorted(third.run("dvc", "exp", "list", "--name-only").stdout.split()) == ["len-10", "len-5"]
    proc = third.run("rnnlab", "report", "--force")  # the committed study rests on more runs than this one
    assert "3 sequence lengths (5, 10, 20)" in proc.stdout, proc.stdout + proc.stderr
    table = (third.path / "plots/seq_len_study.md").read_text()
    assert all(f"seq_len {n}" in table for n in (5, 10, 20))
    # the study's evidence travels with the table: a clone without a single experiment rebuilds it
    evidence = (third.path / "plots/seq_len_study/seeds.csv").read_text().splitlines()
    assert len(evidence) == 1 + 3 * 4 * 2  # a row per trained model: 3 runs x 4 models x 2 seeds
    third.commit("the study, with its evidence")
    third.run("git", "push", "-q", "origin", "main")
    fourth = clone(str(origin), tmp_path / "fourth")
    assert fourth.run("dvc", "exp", "list", "--name-only").stdout.split() == []
    proc = fourth.run("rnnlab", "report", "--table", "study.md", "--figure", "study.png")
    assert "rebuilding the committed one from plots/seq_len_study/" in proc.stderr, proc.stderr
    assert (fourth.path / "study.md").read_text() == table
    third.run("dvc", "exp", "apply", "len-10")  # its data came along: models check out of the cache
    assert (third.path / "models/sine/gru.pt").exists()
