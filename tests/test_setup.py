"""What `make setup` leaves behind for every later process."""

import importlib.util
from pathlib import Path

import dvc
import torch

import rnnlab.training


def test_make_setup_leaves_bytecode_for_the_packages_and_for_src():
    """Where PYTHONDONTWRITEBYTECODE is set (as on the machine this was built on) no process ever
    caches bytecode, so `make setup` compiles it: installed packages and the editable src/ alike."""
    for module in (torch, dvc, rnnlab.training):
        cached = Path(importlib.util.cache_from_source(module.__file__))
        assert cached.exists(), f"no bytecode for {module.__name__}: {cached}"
