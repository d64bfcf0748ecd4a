"""Checkpoints: the weights of every replica, the config that rebuilds them, and the
recurrent state training ended with (the test rollout of seed 003 starts from it).

Stored as plain tensors and containers; loaded with ``weights_only=True``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from rnnlab.errors import DataError
from rnnlab.io import load_torch, save_torch
from rnnlab.models import ModelConfig, empty_stack

FORMAT = "rnnlab-checkpoint-1"


def _state_to_dict(state) -> dict[str, torch.Tensor]:
    if state is None:
        return {}
    if isinstance(state, tuple):
        return {"h": state[0], "c": state[1]}
    return {"h": state}


def _state_from_dict(data: dict):
    if not data:
        return None
    return (data["h"], data["c"]) if "c" in data else data["h"]


def save_checkpoint(path: str | Path, model, seeds: list[int], state) -> None:
    save_torch(path, {
        "format": FORMAT,
        "model_config": asdict(model.cfg),
        "seeds": list(seeds),
        "state_dict": model.stacked_state_dict(),
        "state": _state_to_dict(state),
    })


def load_checkpoint(path: str | Path):
    """-> (model stack, seeds, final training state). Errors name the file."""
    data = load_torch(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DataError(f"{path}: not an rnnlab checkpoint (expected format {FORMAT!r})")
    try:
        cfg = ModelConfig(**data["model_config"])
        seeds = [int(s) for s in data["seeds"]]
        model = empty_stack(cfg, len(seeds))
        model.load_stacked_state_dict(data["state_dict"])
        state = _state_from_dict(data["state"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise DataError(f"{path}: damaged checkpoint ({exc})") from None
    return model, seeds, state
