"""Recurrent layers for a stack of independent replicas: compiled sequence loops, PyTorch steps.

PyTorch's ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` run one set of weights; we train several
seeds of the same architecture at once, so every weight here carries a leading replica
dimension ``R``. Two views of each cell live here:

* the sequence loop, forward and backward through time, runs in the compiled kernels of
  ``kernels.py`` (one call per layer and sequence instead of a dozen tiny PyTorch operations
  per step, which at these sizes cost more in dispatch than in arithmetic);
* the single step in PyTorch operations (``rnn_step``, ``gru_step``, ``lstm_step``), PyTorch's
  own equations in its own order: the analyses differentiate through it step by step, and the
  tests hold the kernels to it and to ``nn.RNN``/``nn.LSTM``/``nn.GRU``.

Shapes: R replicas, B batch, T steps, I input features, H hidden units, G = gates * H.
    x      (R, B, T, I)          weight_ih (R, G, I)   bias_ih (R, G)
    h      (R, B, H)             weight_hh (R, G, H)   bias_hh (R, G)
    out    (R, B, T, H)          the hidden state after every step
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from rnnlab import kernels


def hidden_projection(weight_hh: Tensor, bias_hh: Tensor):
    """h -> W_hh h + b_hh, with the transpose and broadcast view made once per sequence."""
    weight_t, bias = weight_hh.transpose(1, 2), bias_hh.unsqueeze(1)  # (R, H, G), (R, 1, G)
    return lambda h: torch.baddbmm(bias, h, weight_t)                 # (R, B, G)


# ---------------------------------------------------------------------------------------
# One step in PyTorch operations (the analyses differentiate through these)
# ---------------------------------------------------------------------------------------


def rnn_step(gi_t, h, project):
    """h' = tanh(W_hh h + b_hh + W_ih x + b_ih), with ``gi_t`` = W_ih x + b_ih."""
    return torch.tanh(project(h) + gi_t)


def gru_step(gi_t, h, project):
    """PyTorch's GRU, reset gate applied after the hidden matmul:
    r = sigma(a_r), z = sigma(a_z), n = tanh(gi_n + r * (W_hn h + b_hn)),  h' = (h - n) z + n."""
    H = h.shape[-1]
    hg = project(h)                                                            # (R, B, 3H)
    rz = torch.sigmoid(hg[..., : 2 * H] + gi_t[..., : 2 * H])                  # (R, B, 2H)
    n = torch.tanh(gi_t[..., 2 * H :] + hg[..., 2 * H :] * rz[..., :H])
    return (h - n) * rz[..., H:] + n


def lstm_step(gi_t, state, project):
    """i, f, o = sigma(a_i, a_f, a_o), g = tanh(a_g),  c' = f c + i g,  h' = o tanh(c')."""
    h, c = state
    H = h.shape[-1]
    a = project(h) + gi_t                                                      # (R, B, 4H)
    sig = torch.sigmoid(a)
    c = sig[..., H : 2 * H] * c + sig[..., :H] * torch.tanh(a[..., 2 * H : 3 * H])
    return sig[..., 3 * H :] * torch.tanh(c), c


# ---------------------------------------------------------------------------------------
# The cells: gate layout, compiled sequence kernels, PyTorch step
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One recurrent cell type.

    ``tape`` names the blocks of H columns the forward kernel records per step (what its
    backward needs); ``gates`` maps the gate names the analyses read to their blocks.
    """

    gates: int                      # gate blocks in the weights: G = gates * H
    step: Callable                  # (gi_t, state, project) -> state, in PyTorch operations
    code: int                       # the kernels' ``kind`` (kernels.RNN, GRU, LSTM)
    tape: tuple[str, ...] = ()
    gate_names: dict[str, str] | None = None
    has_cell_state: bool = False

    def hidden(self, state) -> Tensor:
        """The hidden state h of a state (the LSTM's state is the pair (h, c))."""
        return state[0] if self.has_cell_state else state

    def gate_view(self, tape: Tensor) -> dict[str, Tensor]:
        """Named gate activations ``(R, B, T, H)`` from a recorded tape ``(R, B, T, K)``."""
        H = tape.shape[-1] // max(len(self.tape), 1)
        blocks = {name: tape[..., k * H : (k + 1) * H] for k, name in enumerate(self.tape)}
        return {gate: blocks[block] for gate, block in (self.gate_names or {}).items()}


CELLS = {
    "rnn": Cell(1, rnn_step, kernels.RNN),
    "gru": Cell(3, gru_step, kernels.GRU, tape=("r", "z", "n", "hn"),
                gate_names={"reset": "r", "update": "z", "new": "n"}),
    "lstm": Cell(4, lstm_step, kernels.LSTM, tape=("i", "f", "g", "o", "c", "tanh_c"),
                 gate_names={"input": "i", "forget": "f", "cell": "g", "output": "o"}, has_cell_state=True),
}


# ---------------------------------------------------------------------------------------
# Running a layer: numpy views of the tensors in, the kernels' results out
# ---------------------------------------------------------------------------------------


def full_lengths(batch: int, steps: int) -> np.ndarray:
    return np.full(batch, steps, dtype=np.int64)


@dataclass
class LayerRun:
    """What one layer's forward pass leaves behind, as numpy arrays: its backward's input."""

    kind: str
    x: np.ndarray         # (R|1, B, T, I)
    lengths: np.ndarray   # (B,) real steps per row
    h0: np.ndarray        # (R, B, H)
    c0: np.ndarray        # (R, B, H), or (R, B, 0) without a cell state
    out: np.ndarray       # (R, B, T, H)
    tape: np.ndarray      # (R, B, T, K)
    h_n: np.ndarray       # (R, B, H)
    c_n: np.ndarray


def run_layer(kind: str, x: np.ndarray, lengths: np.ndarray, h0: np.ndarray, c0: np.ndarray | None,
              weight_ih: np.ndarray, weight_hh: np.ndarray, bias_ih: np.ndarray, bias_hh: np.ndarray) -> LayerRun:
    """One layer of every replica over a (padded) sequence, through the compiled kernel."""
    cell = CELLS[kind]
    R, B, H = h0.shape
    T, dtype = x.shape[2], weight_hh.dtype
    if c0 is None:
        c0 = np.zeros((R, B, H if cell.has_cell_state else 0), dtype)
    out = np.empty((R, B, T, H), dtype)
    tape = np.empty((R, B, T, kernels.tape_width(cell.code, H)), dtype)
    h_n, c_n = np.empty_like(h0), np.empty_like(c0)
    kernels.sequence_forward(cell.code, x, lengths, (h0, c0),
                             (weight_ih, weight_hh, bias_ih, bias_hh), out, tape, (h_n, c_n))
    return LayerRun(kind, x, lengths, h0, c0, out, tape, h_n, c_n)


def backward_layer(run: LayerRun, weights: tuple[np.ndarray, ...], d_out: np.ndarray, d_h_n: np.ndarray,
                   d_c_n: np.ndarray, d_weights: tuple[np.ndarray, ...]):
    """Backward through time of one layer with ``weights`` (weight_ih, weight_hh, bias_ih,
    bias_hh): writes the four weight gradients into ``d_weights`` (the same order) and returns
    (d_x (R, B, T, I), d_h0, d_c0)."""
    R, B, T, _ = run.out.shape
    d_x = np.empty((R, B, T, run.x.shape[3]), run.out.dtype)
    d_h0, d_c0 = np.empty_like(run.h0), np.empty_like(run.c0)
    kernels.sequence_backward(CELLS[run.kind].code, run.x, run.lengths, (run.h0, run.c0),
                              tuple(weights), run.out, run.tape, np.ascontiguousarray(d_out),
                              (d_h_n, d_c_n), d_x, (d_h0, d_c0), tuple(d_weights))
    return d_x, d_h0, d_c0


def _numpy(t: Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().contiguous().numpy()


class _RecurrentLayer(torch.autograd.Function):
    """Autograd wrapper: forward and backward both run the compiled kernels."""

    @staticmethod
    def forward(ctx, kind: str, x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh):
        cell = CELLS[kind]
        lengths = full_lengths(x.shape[1], x.shape[2])
        weights = [_numpy(w) for w in (weight_ih, weight_hh, bias_ih, bias_hh)]
        run = run_layer(kind, _numpy(x), lengths, _numpy(h0), _numpy(c0) if cell.has_cell_state else None, *weights)
        ctx.run, ctx.weights, ctx.x_replicas = run, weights, x.shape[0]
        c_n = torch.from_numpy(run.c_n) if cell.has_cell_state else h0.new_empty(0)
        return torch.from_numpy(run.out), torch.from_numpy(run.h_n), c_n

    @staticmethod
    def backward(ctx, d_out, d_h, d_c):
        run = ctx.run
        d_c = _numpy(d_c) if run.c0.shape[2] else np.zeros_like(run.c0)
        d_weights = tuple(np.empty_like(w) for w in ctx.weights)
        d_x, d_h0, d_c0 = backward_layer(run, ctx.weights, _numpy(d_out), _numpy(d_h), d_c, d_weights)
        if ctx.x_replicas == 1:
            d_x = d_x.sum(0, keepdims=True)  # an input shared by every replica gets every replica's gradient
        d_c0 = torch.from_numpy(d_c0) if run.c0.shape[2] else None
        return (None, torch.from_numpy(d_x), torch.from_numpy(d_h0), d_c0, *map(torch.from_numpy, d_weights))


def recurrent_layer(kind: str, x: Tensor, state, weight_ih, weight_hh, bias_ih, bias_hh):
    """Run one layer of replicas over a sequence: ``(out, final_state)``.

    ``state`` is ``h`` for rnn/gru and ``(h, c)`` for lstm, each ``(R, B, H)``. Under
    ``torch.inference_mode()`` nothing is recorded: evaluation builds no graph.
    """
    cell = CELLS[kind]
    h0, c0 = state if cell.has_cell_state else (state, None)
    if c0 is None:
        c0 = h0.new_empty(0)
    if not torch.is_grad_enabled():
        out, h_n, c_n = _RecurrentLayer.forward(_NoContext(), kind, x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh)
    else:
        out, h_n, c_n = _RecurrentLayer.apply(kind, x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh)
    return out, ((h_n, c_n) if cell.has_cell_state else h_n)


def recurrent_trace(kind: str, x: Tensor, state, weight_ih, weight_hh, bias_ih, bias_hh):
    """Forward pass that also returns the gate activations (for analysis, never trained):
    ``(out, final_state, {gate: (R, B, T, H)})``."""
    cell = CELLS[kind]
    h0, c0 = state if cell.has_cell_state else (state, None)
    weights = [_numpy(w) for w in (weight_ih, weight_hh, bias_ih, bias_hh)]
    run = run_layer(kind, _numpy(x), full_lengths(x.shape[1], x.shape[2]), _numpy(h0), _numpy(c0), *weights)
    final = (torch.from_numpy(run.h_n), torch.from_numpy(run.c_n)) if cell.has_cell_state else torch.from_numpy(run.h_n)
    return torch.from_numpy(run.out), final, cell.gate_view(torch.from_numpy(run.tape))


class _NoContext:
    """Stands in for autograd's ctx when a forward runs outside autograd (nothing is kept)."""
