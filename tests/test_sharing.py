"""A sweep spread over two machines, compared on a third, the DVC way (README: "Beyond one machine").

Every clone shares a git remote (a bare repository here) and the DVC remote configured in
the committed .dvc/config (a local folder here). Each machine runs its part of the sweep and
`dvc exp push origin`; the comparing clone runs `dvc exp pull origin` and `rnnlab report`.
"""

import pytest

from conftest import Project, run, tiny

pytestmark = pytest.mark.slow


def clone(url: str, dest) -> Project:
    run(["git", "clone", "-q", url, str(dest)], dest.parent)
    project = Project(dest)
    project.run("git", "config", "user.name", "test")
    project.run("git", "config", "user.email", "test@example.com")
    return project


def test_two_machines_run_the_sweep_a_third_reports_it(project, tmp_path):
    origin, storage = tmp_path / "origin.git", tmp_path / "dvc-storage"
    run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], tmp_path)

    # the baseline commit carries the DVC remote: without it `dvc exp push` uploads no data
    project.write_params(tiny(project.params()))
    project.run("dvc", "remote", "add", "-d", "storage", str(storage))
    project.run("dvc", "repro")
    project.commit("baseline with a shared DVC remote")
    project.run("git", "remote", "add", "origin", str(origin))
    project.run("git", "push", "-q", "origin", "main")
    project.run("dvc", "push")

    first = project                                   # machine 1
    second = clone(str(origin), tmp_path / "second")  # machine 2
    second.run("dvc", "pull")
    first.run("dvc", "exp", "run", "-n", "len-5", "-S", "seq_len=5")
    second.run("dvc", "exp", "run", "-n", "len-10", "-S", "seq_len=10")
    first.run("dvc", "exp", "push", "origin")
    second.run("dvc", "exp", "push", "origin")

    third = clone(str(origin), tmp_path / "third")    # the comparing clone
    third.run("dvc", "exp", "pull", "origin")
    listed = third.run("dvc", "exp", "list", "--name-only").stdout.split()
    assert sorted(listed) == ["len-10", "len-5"]

    proc = third.run("rnnlab", "report")
    assert "3 sequence lengths (5, 10, 20)" in proc.stdout, proc.stdout + proc.stderr
    table = (third.path / "plots/seq_len_study.md").read_text()
    assert "seq_len 5" in table and "seq_len 10" in table and "seq_len 20" in table

    # the experiments' data came along: applying one checks its models out of the cache
    third.run("dvc", "exp", "apply", "len-10")
    assert (third.path / "models/sine/gru.pt").exists()
