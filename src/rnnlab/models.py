"""The model registry: every architecture the lab compares, behind one interface.

Each entry pairs two views of the same network:

* ``reference``: a plain PyTorch module (``nn.GRU`` + ``nn.Linear``, ...). It defines the
  parameters, their names and their initialisation, in the order the seed texts build them,
  so ``torch.manual_seed(s)`` followed by the reference constructor draws exactly the
  numbers the texts draw. Checkpoints store its ``state_dict`` layout.
* ``stacked``: R replicas of the reference, each from its own seed, run as one module whose
  parameters carry a leading replica dimension. Training and evaluation use it, so N seeds
  cost one pass instead of N (see ``recurrent.py``).

Both share one call signature, ``model(x, state) -> (y, state)``, so training and evaluation
never ask which architecture they hold. The MLP has no state and returns ``None`` for it.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from rnnlab import kernels
from rnnlab.engine import Batch, StackEngine
from rnnlab.errors import ParamsError
from rnnlab.recurrent import CELLS, recurrent_layer, recurrent_trace

RECURRENT_LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model; stored in every checkpoint."""

    kind: str
    hidden_size: int = 16
    num_layers: int = 1
    mlp_widths: tuple[int, ...] = (32, 16)
    input_size: int = 1
    output_size: int = 1
    # None keeps PyTorch's default initialisation; a number re-draws every recurrent
    # parameter from N(0, init_std) right after construction (text 002's tiny init).
    init_std: float | None = None

    def __post_init__(self):
        if self.kind not in MODELS:
            raise ParamsError(f"unknown model {self.kind!r}; choose from {sorted(MODELS)}")
        object.__setattr__(self, "mlp_widths", tuple(self.mlp_widths))


# ---------------------------------------------------------------------------------------
# Reference modules: one replica, plain PyTorch.
# ---------------------------------------------------------------------------------------


class RecurrentRegressor(nn.Module):
    """A recurrent layer whose output at every step goes through one Linear (many-to-many)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        layer = RECURRENT_LAYERS[cfg.kind]
        self.rnn = layer(cfg.input_size, cfg.hidden_size, cfg.num_layers, batch_first=True)
        if cfg.init_std is not None:
            for p in self.rnn.parameters():
                nn.init.normal_(p, mean=0.0, std=cfg.init_std)
        self.head = nn.Linear(cfg.hidden_size, cfg.output_size)

    def forward(self, x: Tensor, state=None):
        out, state = self.rnn(x, state)  # (B, T, H)
        return self.head(out), state     # (B, T, O)


class PointwiseMLP(nn.Module):
    """Linear-ReLU-...-Linear applied to every time step on its own: no memory at all."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        widths = (cfg.input_size, *cfg.mlp_widths, cfg.output_size)
        layers: list[nn.Module] = []
        for fan_in, fan_out in itertools.pairwise(widths):
            layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
        self.net = nn.Sequential(*layers[:-1])

    def forward(self, x: Tensor, state=None):
        return self.net(x), None


# ---------------------------------------------------------------------------------------
# Stacked modules: R replicas at once.
# ---------------------------------------------------------------------------------------


class _Stack(nn.Module):
    """The replicas' parameters, stacked along dim 0, in one flat tensor.

    One flat parameter means Adam updates every weight of every replica with one kernel per
    operation instead of one per tensor: at these sizes that is a third of a training step.
    ``weights()`` hands out per-name views ``(R, *shape)`` under the reference's names.
    """

    def __init__(self, cfg: ModelConfig, replicas: list[nn.Module]):
        super().__init__()
        self.cfg = cfg
        named = [dict(r.named_parameters()) for r in replicas]
        self.names = list(named[0])
        self.shapes = [tuple(named[0][n].shape) for n in self.names]
        self.replicas = len(replicas)
        blocks = [torch.stack([p[n].detach() for p in named]).reshape(-1) for n in self.names]
        self.flat = nn.Parameter(torch.cat(blocks))
        self._sizes = [b.numel() for b in blocks]

    def _replica_index(self) -> Tensor:
        """For every element of ``flat``, the replica it belongs to (blocks are (R, n) each)."""
        if getattr(self, "_replica_of", None) is None:
            self._replica_of = torch.cat([
                torch.arange(self.replicas).repeat_interleave(size // self.replicas) for size in self._sizes
            ])
        return self._replica_of

    def replica_grad_norms(self) -> Tensor:
        """The gradient norm of each replica, (R,), from the flat gradient in one compiled pass."""
        norms = np.empty(self.replicas)
        kernels.replica_norms(self.flat.grad.numpy(), self._replica_index().numpy(), norms)
        return torch.from_numpy(norms).to(self.flat.dtype)

    def scale_replica_grads(self, coef: Tensor) -> None:
        """Multiply each replica's gradient by its own factor, coef (R,)."""
        self.flat.grad.mul_(coef[self._replica_index()])

    def weights(self) -> dict[str, Tensor]:
        chunks = self.flat.split(self._sizes)
        return {n: c.view(self.replicas, *s) for n, c, s in zip(self.names, chunks, self.shapes)}

    def stacked_state_dict(self) -> dict[str, Tensor]:
        """``{reference name: (R, *shape)}``: what a checkpoint stores."""
        return {n: w.detach().clone() for n, w in self.weights().items()}

    def load_stacked_state_dict(self, state: dict[str, Tensor]) -> None:
        missing = set(self.names) ^ set(state)
        if missing:
            raise ValueError(f"state dict does not match {self.cfg.kind}: keys {sorted(missing)}")
        with torch.no_grad():
            for name, view in self.weights().items():
                view.copy_(state[name])

    def reference_state_dicts(self) -> list[dict[str, Tensor]]:
        """One ``state_dict`` per replica, loadable into the reference module."""
        stacked = self.stacked_state_dict()
        return [{n: w[r].clone() for n, w in stacked.items()} for r in range(self.replicas)]

    def forward(self, x: Tensor, state=None):
        """x (R or 1, B, T, I) -> y (R, B, T, O), final state."""
        return self.run(self.weights(), x, state)

    def engine(self) -> StackEngine:
        """The compiled engine bound to this stack's parameter (rebuilt if it was replaced)."""
        engine = getattr(self, "_engine", None)
        if engine is None or engine.ptr != self.flat.data_ptr():
            engine = self._engine = StackEngine(self)
        return engine

    def train_step(self, batch: Batch, state=None):
        """One batch's per-replica MSE (R,), predictions and final state, with the gradient
        of the summed loss written to ``flat.grad`` (compiled, no graph)."""
        return self.engine().loss_and_grad(batch, state)

    def rollout(self, x: Tensor, state, steps: int, *, gates: bool = False):
        """Feed each output back as the next input: x (R or 1, B, 1, I) -> (R, B, steps, O).

        With ``gates``, also the last layer's gate activations, ``{name: (R, B, steps, H)}``.
        """
        with torch.no_grad():
            return self.engine().rollout(x.to(self.flat.dtype), state, steps, gates)

    @staticmethod
    def _head(weights: dict[str, Tensor], out: Tensor) -> Tensor:
        R, B, T, H = out.shape
        w, b = weights["head.weight"], weights["head.bias"]
        y = torch.baddbmm(b.unsqueeze(1), out.reshape(R, B * T, H), w.transpose(1, 2))  # (R, BT, O)
        return y.view(R, B, T, -1)


class StackedRecurrent(_Stack):
    """R replicas of ``RecurrentRegressor``; state is (R, L, B, H), or a pair for the LSTM."""

    def initial_state(self, batch: int):
        h = self.flat.new_zeros(self.replicas, self.cfg.num_layers, batch, self.cfg.hidden_size)
        return (h, h.clone()) if CELLS[self.cfg.kind].has_cell_state else h

    def run(self, weights: dict[str, Tensor], x: Tensor, state=None, *, return_gates: bool = False):
        x = x.expand(self.replicas, *x.shape[1:])
        if state is None:
            state = self.initial_state(x.shape[1])
        lstm = CELLS[self.cfg.kind].has_cell_state
        finals, gates = [], []
        for layer in range(self.cfg.num_layers):
            layer_state = (state[0][:, layer], state[1][:, layer]) if lstm else state[:, layer]
            layer_weights = [weights[f"rnn.{w}_l{layer}"] for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            if return_gates:
                x, final, layer_gates = recurrent_trace(self.cfg.kind, x, layer_state, *layer_weights)
                gates.append(layer_gates)
            else:
                x, final = recurrent_layer(self.cfg.kind, x, layer_state, *layer_weights)
            finals.append(final)
        if lstm:
            final_state = (torch.stack([f[0] for f in finals], 1), torch.stack([f[1] for f in finals], 1))
        else:
            final_state = torch.stack(finals, 1)
        y = self._head(weights, x)
        return (y, final_state, gates) if return_gates else (y, final_state)


class StackedMLP(_Stack):
    """R replicas of ``PointwiseMLP``."""

    def initial_state(self, batch: int):
        return None

    def run(self, weights: dict[str, Tensor], x: Tensor, state=None):
        x = x.expand(self.replicas, *x.shape[1:])
        R, B, T, _ = x.shape
        h = x.reshape(R, B * T, -1)                                           # (R, BT, I)
        linears = [n.removesuffix(".weight") for n in self.names if n.endswith(".weight")]
        for k, name in enumerate(linears):
            w, b = weights[f"{name}.weight"], weights[f"{name}.bias"]
            h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))            # (R, BT, width)
            if k < len(linears) - 1:
                h = torch.relu(h)
        return h.view(R, B, T, -1), None


@dataclass(frozen=True)
class Architecture:
    reference: type[nn.Module]
    stacked: type[_Stack]
    recurrent: bool = field(default=True)


MODELS: dict[str, Architecture] = {
    "mlp": Architecture(PointwiseMLP, StackedMLP, recurrent=False),
    "rnn": Architecture(RecurrentRegressor, StackedRecurrent),
    "lstm": Architecture(RecurrentRegressor, StackedRecurrent),
    "gru": Architecture(RecurrentRegressor, StackedRecurrent),
}


def config_for(kind: str, arch, section: str, *, recurrent_only: bool = False, **overrides) -> ModelConfig:
    """A ModelConfig from a params section's ``model`` (hidden_size, num_layers, mlp_widths);
    a bad name is reported under ``<section>.models``, the key the user wrote it in."""
    if recurrent_only and kind in MODELS and not MODELS[kind].recurrent:
        raise ParamsError(f"{section}.models: {kind!r} has no recurrent state; choose rnn, lstm or gru")
    try:
        return ModelConfig(kind, hidden_size=arch.hidden_size, num_layers=arch.num_layers,
                           mlp_widths=arch.mlp_widths, **overrides)
    except ParamsError as exc:
        raise ParamsError(f"{section}.models: {exc}") from None


def build_reference(cfg: ModelConfig, seed: int | None = None) -> nn.Module:
    """The plain PyTorch model; with ``seed``, seeded right before construction."""
    if seed is not None:
        torch.manual_seed(seed)
    return MODELS[cfg.kind].reference(cfg)


def build_stack(cfg: ModelConfig, seeds: list[int]) -> _Stack:
    """One replica per seed, each initialised exactly as ``build_reference(cfg, seed)``."""
    replicas = [build_reference(cfg, seed) for seed in seeds]
    return MODELS[cfg.kind].stacked(cfg, replicas)


def empty_stack(cfg: ModelConfig, replicas: int) -> _Stack:
    """A stack of the right shape whose weights will be overwritten (checkpoint loading).

    Built under ``fork_rng`` so that loading a model never moves the global random stream.
    """
    with torch.random.fork_rng():
        reference = MODELS[cfg.kind].reference(cfg)
    return MODELS[cfg.kind].stacked(cfg, [reference] * replicas)


def parameter_count(cfg: ModelConfig) -> int:
    """Trainable parameters of one replica."""
    return sum(p.numel() for p in MODELS[cfg.kind].reference(cfg).parameters())


def detach_state(state):
    """Cut the graph behind a carried state: tensor, (h, c) pair, or None (the MLP)."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


WARM_UP_PARTS = ("one_layer", "rest")  # two halves of about equal compile time, for two processes


def warm_up(part: str | None = None) -> float:
    """Compile every kernel signature the pipeline's stages train, roll out and evaluate with
    (float32), or load them from numba's cache, so that no stage compiles: a tiny step of each
    architecture, one of a two-layer stack (the windows' tuples of two layers are another
    signature; the kernels take ``kind`` as a number, so one architecture compiles it for all),
    and one Adam update. Returns the seconds it took.

    ``part`` (one of WARM_UP_PARTS) compiles half of it: the one-layer training step (about half
    of the compile time), or everything else. Two processes, one per part, fill the cache in
    about half the time of one (``make setup``). numba writes each signature's code to a file of
    its own and re-reads a function's index just before adding to it, so the halves keep each
    other's entries (were two writes to coincide to the millisecond, a signature would compile
    again on first use: slower, never wrong)."""
    if part not in (None, *WARM_UP_PARTS):
        raise ValueError(f"warm_up part {part!r}: one of {WARM_UP_PARTS} or None")
    start = time.perf_counter()
    x = torch.zeros(1, 1, 2, 1)
    with torch.random.fork_rng():
        for kind in MODELS:
            stack = build_stack(ModelConfig(kind, hidden_size=2), [0])
            if part is None or (part == "one_layer") == (kind != "mlp"):  # the MLP's step is in "rest"
                stack.train_step(Batch(x, torch.zeros(1, 2, 1)), None)
                stack.train_step(Batch(x, torch.zeros(1, 1), torch.tensor([1]), last_only=True), None)
            if part != "one_layer":
                stack.rollout(x[:, :, :1], None, 2)
                with torch.inference_mode():
                    stack(x)
        if part != "one_layer":
            stack = build_stack(ModelConfig("rnn", hidden_size=2, num_layers=2), [0])
            stack.train_step(Batch(torch.zeros(1, 1, 2, 1), torch.zeros(1, 1), last_only=True), None)
    if part != "one_layer":
        param = np.zeros(2, np.float32)
        kernels.adam_step(param, param.copy(), param.copy(), param.copy(), 0.001, 0.9, 0.999, 1e-8, 1)
    return time.perf_counter() - start
