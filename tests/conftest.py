import rnnlab  # noqa: F401  (first: pins the numerical libraries' CPU code paths, rnnlab/cpu.py)

# isort: split

import fcntl
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import pytest
import torch
import yaml

matplotlib.use("Agg")
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]

# pytest-xdist (`make test`: two workers, one file at a time, in this order, with
# --no-loadscope-reorder) hands each worker the next file when it is down to its last test. The
# end-to-end files take 50-150 s each, the rest of the suite about 250 s together: the first
# builds ``tiny_baseline`` (about 100 s) while the other worker runs files that do not need it,
# and the long files go before the many short ones, which fill in at the end (--durations).
FIRST = ("test_e2e_workflow.py", "test_faults.py", "test_faults_beyond.py", "test_benchmarks.py",
         "test_fresh_clone.py", "test_e2e_machines.py", "test_e2e_series.py",
         "test_stages.py", "test_cli.py")


def pytest_collection_modifyitems(items) -> None:
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(FIRST)))  # stable: the rest keep their order


def run(cmd: list[str], cwd: Path, check: bool = True, env_extra: dict | None = None,
        **kwargs) -> subprocess.CompletedProcess:
    """Run a command as a user would, with this interpreter's scripts first on PATH (and
    ``env_extra`` set on top of this process's environment)."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        # The sources under test, whichever venv runs them. A project copy holds the same files, but
        # numba keys its kernel cache by the source's path: importing the copy's would compile every
        # kernel again in each copy (about a minute each) instead of loading what `make setup` built.
        "PYTHONPATH": str(ROOT / "src"),
        **(env_extra or {}),
    }
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def tiny(params: dict, epochs: int = 2) -> dict:
    """Default params cut down to seconds: what end-to-end tests run."""
    params["seeds"] = [0, 1]
    params["sine"]["train"]["epochs"] = epochs
    params["ball"]["generate"]["rows"] = 300
    params["ball"]["train"]["epochs"] = epochs
    params["windows"]["train"]["epochs"] = epochs
    params["random_windows"]["train"]["epochs"] = epochs
    params["random_windows"]["iterations_per_epoch"] = 10
    return params


@dataclass
class Project:
    """A copy of the project as a fresh clone would have it, in its own git repository."""

    path: Path

    def run(self, *cmd: str, check: bool = True, env_extra: dict | None = None) -> subprocess.CompletedProcess:
        return run(list(cmd), self.path, check=check, env_extra=env_extra)

    def params(self) -> dict:
        return yaml.safe_load((self.path / "params.yaml").read_text())

    def write_params(self, params: dict) -> None:
        (self.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    def commit(self, message: str = "commit") -> None:
        self.run("git", "add", "-A")
        self.run("git", "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qm", message)


def clone(url: str, dest: Path) -> Project:
    """``git clone`` as a new machine would: the committed files, and no DVC cache."""
    run(["git", "clone", "-q", url, str(dest)], dest.parent)
    project = Project(dest)
    project.run("git", "config", "user.name", "test")
    project.run("git", "config", "user.email", "test@example.com")
    return project


def clone_tree(dest: Path) -> None:
    """Copy what a commit of the working tree would hold (tracked + new, not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def tiny_project(dest: Path, edit, message: str = "tiny params") -> Project:
    """A committed copy of the project at ``dest`` with tiny params, ``edit(params)`` applied on
    top; no dvc.lock (the main tree's hashes are not in this copy's cache)."""
    dest.mkdir()
    clone_tree(dest)
    (dest / "dvc.lock").unlink(missing_ok=True)
    run(["git", "init", "-q", "-b", "main"], dest)
    project = Project(dest)
    params = tiny(project.params())
    edit(params)
    project.write_params(params)
    project.commit(message)
    return project


def long_ball(epochs: int):
    """A params edit: the ball's GRU alone, on the torch engine (no kernel to compile in a fresh
    copy), trained ``epochs`` epochs without stopping early."""
    def edit(params: dict) -> None:
        params["ball"]["models"] = ["gru"]
        params["ball"]["train"].update(engine="torch", epochs=epochs, patience=epochs)
    return edit


@pytest.fixture(scope="session")
def tiny_baseline(tmp_path_factory) -> Path:
    """A committed copy of the project with tiny params whose ``dvc repro`` is done and committed
    (dvc.lock, metrics, plots; the models in its DVC cache): what a user has after the README's
    first command. Built once per ``make test``, by whichever pytest-xdist worker asks first,
    under a file lock in the folder the workers share; every test that starts from it gets its
    own copy (``repro_done``)."""
    # pytest-N/, above each xdist worker's popen-gwK/; without xdist this run's own pytest-N/ (its
    # parent holds every earlier run's, whose baseline came from other code)
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if "PYTEST_XDIST_WORKER" in os.environ else base
    path = shared / "tiny-baseline" / "project"
    with open(shared / "tiny-baseline.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released on close: the others wait while the first builds
        if not (path.parent / "done").exists():
            shutil.rmtree(path.parent, ignore_errors=True)
            path.parent.mkdir()
            project = tiny_project(path, lambda params: None)
            # oneDNN's verbose log on: tests/test_cpu.py checks that no stage executes a primitive of it
            proc = project.run("dvc", "repro", env_extra={"ONEDNN_VERBOSE": "1"})
            (path.parent / "repro.log").write_text(proc.stdout + proc.stderr)
            project.commit("baseline: dvc repro with tiny params")
            (path.parent / "done").touch()
    return path


@pytest.fixture
def repro_done(tiny_baseline: Path, tmp_path: Path) -> Project:
    """This test's own copy of ``tiny_baseline``: git history, workspace and DVC cache (not DVC's
    state database under .dvc/tmp, which is keyed by the original files' inodes)."""
    dest = tmp_path / "project"
    shutil.copytree(tiny_baseline, dest, symlinks=True, ignore=lambda folder, names: ["tmp"] if folder.endswith(".dvc") else [])
    return Project(dest)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    dest = tmp_path / "project"
    dest.mkdir()
    clone_tree(dest)
    run(["git", "init", "-q", "-b", "main"], dest)
    return Project(dest)


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def default_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


# --- helpers only tests use ------------------------------------------------------------------------


def caption_text(fig) -> str | None:
    """The params caption of a figure made by rnnlab.plotting, or None."""
    from rnnlab.plotting import CAPTION_GID

    return next((t.get_text() for t in fig.texts if t.get_gid() == CAPTION_GID), None)


def reference_checkpoint(cfg, model, seed: int, **extra):
    """A one-seed checkpoint of a plain PyTorch module, as a training stage would save it."""
    from rnnlab.checkpoints import Checkpoint

    weights = {name: p.detach().unsqueeze(0) for name, p in model.state_dict().items()}
    return Checkpoint(cfg, [seed], weights, None, extra)


def ball_models_folder(folder: Path) -> Path:
    """Untrained but real ball models (rnn, lstm, gru) in ``folder``, training shards spanning
    -12..40 in ``folder/shards`` (two chunks, so a range covers every shard, not the first), each
    checkpoint recording those shards as what it trained on, and metrics that make the LSTM the
    default. What `rnnlab predict-ball` reads."""
    import json

    from rnnlab import ball_data, provenance
    from rnnlab.checkpoints import save_checkpoint
    from rnnlab.models import ModelConfig, build_reference

    rows = [[-12, -10, -8], [0, 1, 2, 3], [5, 10], [40, 30, 20, 10]] * 5
    (folder / "shards").mkdir()
    for chunk, splits in ball_data.make_shards(rows, chunk_lines=10, scale=50.0, cuts=(0.6, 0.8), seed=0):
        for split, shard in splits.items():
            (folder / "shards" / ball_data.shard_name(split, chunk)).write_bytes(ball_data.shard_bytes(shard))
    trained_on = provenance.ball(folder / "shards", 50.0)
    for seed, kind in enumerate(["rnn", "lstm", "gru"]):
        cfg = ModelConfig(kind, hidden_size=8)
        model = build_reference(cfg, seed=seed)
        save_checkpoint(folder / f"{kind}.pt", reference_checkpoint(cfg, model, seed, scale=50.0, epochs=1, best_epoch=1,
                                                                    trained_on=trained_on))
    (folder / "metrics.json").write_text(json.dumps({"B": {"rnn": {"mae": 0.5}, "lstm": {"mae": 0.1}, "gru": {"mae": 0.3}}}))
    return folder
