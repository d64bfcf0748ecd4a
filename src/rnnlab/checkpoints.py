"""Checkpoints: the weights of every replica, the config that rebuilds them, the recurrent
state training ended with (text 003's test rollout starts from it), and a little metadata.

One format for every experiment: weights are stored stacked, ``{reference name: (R, ...)}``,
so a single PyTorch model is a stack of one. Plain tensors and containers only, loaded with
``weights_only=True``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from rnnlab import provenance
from rnnlab.errors import DataError
from rnnlab.io import load_torch, save_torch
from rnnlab.models import ModelConfig, build_reference, empty_stack
from rnnlab.params import MAX_SEEDS, MAX_WIDTH, check_sizes

FORMAT = "rnnlab-checkpoint-1"
MAX_REPLICAS = MAX_SEEDS  # seeds a checkpoint may hold: each is a whole model to allocate


@dataclass
class Checkpoint:
    cfg: ModelConfig
    seeds: list[int]
    weights: dict[str, Tensor]            # reference name -> (R, *shape)
    state: object = None                  # tensor, (h, c) pair, or None
    extra: dict = field(default_factory=dict)

    def stack(self):
        """The replicas as one stacked module (training and evaluation of experiment S)."""
        model = empty_stack(self.cfg, len(self.seeds))
        model.load_stacked_state_dict(self.weights)
        return model

    def reference(self, replica: int = 0) -> nn.Module:
        """One replica as its plain PyTorch module."""
        with torch.random.fork_rng():  # building draws an initialisation we overwrite at once
            model = build_reference(self.cfg)
        model.load_state_dict({name: w[replica] for name, w in self.weights.items()})
        return model


def _state_to_dict(state) -> dict[str, Tensor]:
    if state is None:
        return {}
    if isinstance(state, tuple):
        return {"h": state[0], "c": state[1]}
    return {"h": state}


def _state_from_dict(data: dict):
    if not data:
        return None
    return (data["h"], data["c"]) if "c" in data else data["h"]


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> None:
    save_torch(path, {
        "format": FORMAT,
        "model_config": asdict(checkpoint.cfg),
        "seeds": list(checkpoint.seeds),
        "weights": {name: w.detach().clone() for name, w in checkpoint.weights.items()},
        "state": _state_to_dict(checkpoint.state),
        "extra": checkpoint.extra,
    })


def stack_checkpoint(model, seeds: list[int], state) -> Checkpoint:
    return Checkpoint(model.cfg, list(seeds), model.stacked_state_dict(), state)


def load_checkpoint(path: str | Path, cfg: ModelConfig | None = None, seeds: list[int] | None = None,
                    trained_on: dict | None = None) -> Checkpoint:
    """Read and check a checkpoint; every problem is a DataError naming the file.

    With ``cfg`` (and ``seeds``), a checkpoint trained under other params is refused too: a
    stage must not report numbers of a model that params.yaml no longer describes. With
    ``trained_on`` (``provenance.sine`` or ``provenance.ball`` of the data at hand), one trained
    on other data, windows or engine code is refused as well.
    """
    data = load_torch(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DataError(f"{path}: not an rnnlab checkpoint (expected format {FORMAT!r})")
    try:
        checkpoint = Checkpoint(ModelConfig(**data["model_config"]), [int(s) for s in data["seeds"]], data["weights"],
                                _state_from_dict(data["state"]), data["extra"])
        _check_weights(checkpoint)
    except KeyError as exc:
        raise DataError(f"{path}: damaged checkpoint (no {exc} in it)") from None
    except (TypeError, ValueError, RuntimeError) as exc:
        raise DataError(f"{path}: damaged checkpoint ({_first_line(exc)})") from None
    if (cfg is not None and checkpoint.cfg != cfg) or (seeds is not None and checkpoint.seeds != list(seeds)):
        raise DataError(f"{path}: trained with other params than params.yaml; run `dvc repro` "
                        f"({_difference(checkpoint, cfg, seeds)})")
    if trained_on is not None:
        provenance.check(path, checkpoint.extra, trained_on, "retrain it: `dvc repro`")
    return checkpoint


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_weights(checkpoint: Checkpoint) -> None:
    """Every weight the architecture has, of exactly its shape and dtype: ``copy_`` would
    otherwise broadcast a wrong shape or cast integers without a word."""
    if not isinstance(checkpoint.weights, dict):
        raise TypeError("weights must be a mapping of name to tensor")
    _check_claims(checkpoint)  # before allocating what the file claims: a 3 KB file once asked for 360 GB
    expected = empty_stack(checkpoint.cfg, len(checkpoint.seeds)).stacked_state_dict()
    if set(expected) != set(checkpoint.weights):
        raise ValueError(f"weights do not match a {checkpoint.cfg.kind}: "
                         f"keys {sorted(set(expected) ^ set(checkpoint.weights))}")
    for name, want in expected.items():
        got = checkpoint.weights[name]
        if not isinstance(got, Tensor) or got.shape != want.shape or got.dtype != want.dtype:
            what = f"{got.dtype} {tuple(got.shape)}" if isinstance(got, Tensor) else type(got).__name__
            raise ValueError(f"weight {name} is {what}, a {checkpoint.cfg.kind} needs {want.dtype} {tuple(want.shape)}")
        if want.is_floating_point() and not torch.isfinite(got).all():
            raise ValueError(f"weight {name} holds NaN or infinity, as a diverged training leaves; retrain it")
    checkpoint.stack()


def _check_claims(checkpoint: Checkpoint) -> None:
    """The sizes the file claims, within params.py's bounds, before any of them is allocated."""
    cfg = checkpoint.cfg
    check_sizes(cfg.hidden_size, cfg.num_layers, cfg.mlp_widths, "model_config", ValueError)
    for name in ("input_size", "output_size"):
        if not 0 < getattr(cfg, name) <= MAX_WIDTH:
            raise ValueError(f"model_config.{name} must be in 1..{MAX_WIDTH}, got {getattr(cfg, name)}")
    if not 0 < len(checkpoint.seeds) <= MAX_REPLICAS:
        raise ValueError(f"{len(checkpoint.seeds)} seeds (1 to {MAX_REPLICAS})")


def _difference(checkpoint: Checkpoint, cfg: ModelConfig | None, seeds: list[int] | None) -> str:
    """The first field where the checkpoint and params.yaml disagree, e.g. ``hidden_size 8, params.yaml 16``."""
    if cfg is not None:
        for name, mine in asdict(checkpoint.cfg).items():
            if mine != (wanted := getattr(cfg, name)):
                return f"{name} {mine}, params.yaml {wanted}"
    return f"seeds {checkpoint.seeds}, params.yaml {list(seeds)}"
