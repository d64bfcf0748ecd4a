"""Recurrent layers for a stack of independent replicas, with hand-written BPTT.

PyTorch's ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` run one set of weights; we train several
seeds of the same architecture at once, so every weight here carries a leading replica
dimension ``R`` and every matmul is a batched ``bmm``. The forward pass uses the same
equations, in the same operation order, as PyTorch's CPU cells (``aten/src/ATen/native/RNN.cpp``).

The backward pass is written out instead of recorded by autograd. Autograd would record
about a dozen tiny nodes per time step; at hidden size 16 each costs more in dispatch than in
arithmetic. Here every derivative factor that does not depend on the incoming gradient is
computed once for the whole sequence after the forward loop, so one backward step is a
handful of ops, and the weight gradients are one ``bmm`` over all steps at the end.

Shapes: R replicas, B batch, T steps, I input features, H hidden units, G = gates * H.
    x      (R, B, T, I)          weight_ih (R, G, I)   bias_ih (R, G)
    h      (R, B, H)             weight_hh (R, G, H)   bias_hh (R, G)
    out    (R, B, T, H)          the hidden state after every step
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Trace:
    """What one forward pass leaves behind: per-step hidden states and gate activations.

    ``gates`` maps a gate name to its activation ``(R, B, T, H)`` (analysis reads it);
    ``tape`` is what the cell's backward needs.
    """

    out: Tensor
    gates: dict[str, Tensor]
    tape: tuple[Tensor, ...]


def _input_projection(x: Tensor, weight_ih: Tensor, bias_ih: Tensor) -> Tensor:
    """x @ W_ih^T + b_ih for every step at once, as PyTorch precomputes it on CPU."""
    R, B, T, I = x.shape
    flat = x.reshape(R, B * T, I)                                              # (R, BT, I)
    gi = torch.baddbmm(bias_ih.unsqueeze(1), flat, weight_ih.transpose(1, 2))  # (R, BT, G)
    return gi.view(R, B, T, -1)                                                # (R, B, T, G)


def hidden_projection(weight_hh: Tensor, bias_hh: Tensor):
    """h -> W_hh h + b_hh, with the transpose and broadcast view made once per sequence."""
    weight_t, bias = weight_hh.transpose(1, 2), bias_hh.unsqueeze(1)  # (R, H, G), (R, 1, G)
    return lambda h: torch.baddbmm(bias, h, weight_t)                 # (R, B, G)


def _weight_grads(d_gates_i: Tensor, d_gates_h: Tensor, x: Tensor, h_prev: Tensor):
    """Sum the per-step gate gradients into weight and bias gradients with one bmm each."""
    R, B, T, G = d_gates_h.shape
    dgi = d_gates_i.reshape(R, B * T, G)                                      # (R, BT, G)
    dgh = d_gates_h.reshape(R, B * T, G)                                      # (R, BT, G)
    d_weight_ih = torch.bmm(dgi.transpose(1, 2), x.reshape(R, B * T, -1))      # (R, G, I)
    d_weight_hh = torch.bmm(dgh.transpose(1, 2), h_prev.reshape(R, B * T, -1))  # (R, G, H)
    return d_weight_ih, d_weight_hh, dgi.sum(1), dgh.sum(1)


def _input_grad(d_gates_i: Tensor, weight_ih: Tensor) -> Tensor:
    R, B, T, G = d_gates_i.shape
    dx = torch.bmm(d_gates_i.reshape(R, B * T, G), weight_ih)                 # (R, BT, I)
    return dx.view(R, B, T, -1)


def _scan(step, gi: Tensor, state, project):
    """Run ``step`` over the time axis; stack what each step saved along dim 2."""
    saved = []
    for gi_t in gi.unbind(2):
        state, kept = step(gi_t, state, project)
        saved.append(kept)
    return state, [torch.stack(column, 2) for column in zip(*saved)]  # each (R, B, T, .)


# ---------------------------------------------------------------------------------------
# tanh RNN:  h_t = tanh(W_hh h_{t-1} + b_hh + W_ih x_t + b_ih)
# ---------------------------------------------------------------------------------------


def rnn_step(gi_t, h, project):
    h = torch.tanh(project(h) + gi_t)
    return h, (h,)


def rnn_gates(kept) -> dict[str, Tensor]:
    return {}  # no gates: the whole state is rewritten every step


def rnn_forward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh) -> tuple[Trace, Tensor]:
    gi = _input_projection(x, weight_ih, bias_ih)
    h, (out,) = _scan(rnn_step, gi, h0, hidden_projection(weight_hh, bias_hh))
    return Trace(out, {}, (x, h0, out)), h


def rnn_backward(tape, weight_ih, weight_hh, d_out, d_h):
    x, h0, out = tape
    h_prev = torch.cat([h0.unsqueeze(2), out[:, :, :-1]], 2)                   # (R, B, T, H)
    k = 1 - out * out                                                          # tanh'
    d_pre = []
    for d_out_t, k_t in zip(reversed(d_out.unbind(2)), reversed(k.unbind(2))):
        d_a = (d_h + d_out_t) * k_t
        d_h = torch.bmm(d_a, weight_hh)                                        # (R, B, H)
        d_pre.append(d_a)
    d_gates = torch.stack(d_pre[::-1], 2)                                      # (R, B, T, H)
    grads = _weight_grads(d_gates, d_gates, x, h_prev)
    return _input_grad(d_gates, weight_ih), d_h, grads


# ---------------------------------------------------------------------------------------
# GRU (PyTorch's formulation, reset gate applied after the hidden matmul):
#   r = sigma(a_r), z = sigma(a_z), n = tanh(gi_n + r * (W_hn h + b_hn)),  h' = (h - n) z + n
# ---------------------------------------------------------------------------------------


def gru_step(gi_t, h, project):
    H = h.shape[-1]
    hg = project(h)                                                            # (R, B, 3H)
    rz = torch.sigmoid(hg[..., : 2 * H] + gi_t[..., : 2 * H])                  # (R, B, 2H)
    hn = hg[..., 2 * H :]
    n = torch.tanh(gi_t[..., 2 * H :] + hn * rz[..., :H])
    h = (h - n) * rz[..., H:] + n
    return h, (h, rz, n, hn)


def gru_gates(kept) -> dict[str, Tensor]:
    """Named gates from what ``gru_step`` keeps (one step, or stacked over time)."""
    h, rz, n, _ = kept
    H = h.shape[-1]
    return {"reset": rz[..., :H], "update": rz[..., H:], "new": n}


def gru_forward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh) -> tuple[Trace, Tensor]:
    gi = _input_projection(x, weight_ih, bias_ih)
    h, kept = _scan(gru_step, gi, h0, hidden_projection(weight_hh, bias_hh))
    return Trace(kept[0], gru_gates(kept), (x, h0, *kept)), h


def gru_backward(tape, weight_ih, weight_hh, d_out, d_h):
    x, h0, out, rz, n, hn = tape
    H = h0.shape[-1]
    r, z = rz[..., :H], rz[..., H:]
    h_prev = torch.cat([h0.unsqueeze(2), out[:, :, :-1]], 2)                   # (R, B, T, H)
    # dh/d(pre-activation) of each gate, per unit of dh: all that does not need dh itself.
    k_n = (1 - z) * (1 - n * n)
    k_z = (h_prev - n) * z * (1 - z)
    k_r = k_n * hn * r * (1 - r)
    k_hidden = torch.cat([k_r, k_z, k_n * r], -1)                              # (R, B, T, 3H)
    d_hs, d_hgs = [], []
    steps = zip(*(reversed(t.unbind(2)) for t in (d_out, k_hidden, z)))
    for d_out_t, k_t, z_t in steps:
        d_h = d_h + d_out_t
        d_hg = torch.cat([d_h] * 3, -1) * k_t                                  # (R, B, 3H)
        d_hs.append(d_h), d_hgs.append(d_hg)
        d_h = torch.baddbmm(d_h * z_t, d_hg, weight_hh)                        # (R, B, H)
    d_hg = torch.stack(d_hgs[::-1], 2)                                         # (R, B, T, 3H)
    d_gi = torch.cat([d_hg[..., : 2 * H], torch.stack(d_hs[::-1], 2) * k_n], -1)
    grads = _weight_grads(d_gi, d_hg, x, h_prev)
    return _input_grad(d_gi, weight_ih), d_h, grads


# ---------------------------------------------------------------------------------------
# LSTM:  i, f, o = sigma(a_i, a_f, a_o), g = tanh(a_g),  c' = f c + i g,  h' = o tanh(c')
# ---------------------------------------------------------------------------------------


def lstm_step(gi_t, state, project):
    h, c = state
    H = h.shape[-1]
    a = project(h) + gi_t                                                      # (R, B, 4H)
    sig = torch.sigmoid(a)  # the g slot is wasted work, but one op beats three slices
    g = torch.tanh(a[..., 2 * H : 3 * H])
    c = sig[..., H : 2 * H] * c + sig[..., :H] * g
    tc = torch.tanh(c)
    h = sig[..., 3 * H :] * tc
    return (h, c), (h, c, sig, g, tc)


def lstm_gates(kept) -> dict[str, Tensor]:
    """Named gates from what ``lstm_step`` keeps (one step, or stacked over time)."""
    h, _, sig, g, _ = kept
    H = h.shape[-1]
    return {"input": sig[..., :H], "forget": sig[..., H : 2 * H], "cell": g, "output": sig[..., 3 * H :]}


def lstm_forward(x, state, weight_ih, weight_hh, bias_ih, bias_hh) -> tuple[Trace, tuple]:
    h0, c0 = state
    gi = _input_projection(x, weight_ih, bias_ih)
    final, kept = _scan(lstm_step, gi, state, hidden_projection(weight_hh, bias_hh))
    return Trace(kept[0], lstm_gates(kept), (x, h0, c0, *kept)), final


def lstm_backward(tape, weight_ih, weight_hh, d_out, d_state):
    x, h0, c0, out, c, sig, g, tc = tape
    H = h0.shape[-1]
    d_h, d_c = d_state
    i, f, o = sig[..., :H], sig[..., H : 2 * H], sig[..., 3 * H :]
    h_prev = torch.cat([h0.unsqueeze(2), out[:, :, :-1]], 2)                   # (R, B, T, H)
    c_prev = torch.cat([c0.unsqueeze(2), c[:, :, :-1]], 2)                     # (R, B, T, H)
    k_c = o * (1 - tc * tc)                                                    # dc'/dh'
    # d(pre-activation)/dc' for i, f, g and d(pre-activation)/dh' for o
    k = torch.cat([g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g * g), tc * o * (1 - o)], -1)
    d_as = []
    steps = zip(*(reversed(t.unbind(2)) for t in (d_out, k_c, k, f)))
    for d_out_t, k_c_t, k_t, f_t in steps:
        d_h = d_h + d_out_t
        d_c = d_c + d_h * k_c_t
        d_a = torch.cat([d_c, d_c, d_c, d_h], -1) * k_t                        # (R, B, 4H)
        d_as.append(d_a)
        d_h = torch.bmm(d_a, weight_hh)                                        # (R, B, H)
        d_c = d_c * f_t
    d_a = torch.stack(d_as[::-1], 2)                                           # (R, B, T, 4H)
    grads = _weight_grads(d_a, d_a, x, h_prev)
    return _input_grad(d_a, weight_ih), (d_h, d_c), grads


@dataclass(frozen=True)
class Cell:
    """One recurrent cell type: how many gate blocks it has and its forward/backward."""

    gates: int
    step: Callable       # (gi_t, state, project) -> (state, kept)
    gate_view: Callable  # kept -> {gate name: activation}
    forward: Callable
    backward: Callable
    has_cell_state: bool = False

    def hidden(self, state) -> Tensor:
        """The hidden state h of a state (the LSTM's state is the pair (h, c))."""
        return state[0] if self.has_cell_state else state


CELLS = {
    "rnn": Cell(1, rnn_step, rnn_gates, rnn_forward, rnn_backward),
    "gru": Cell(3, gru_step, gru_gates, gru_forward, gru_backward),
    "lstm": Cell(4, lstm_step, lstm_gates, lstm_forward, lstm_backward, has_cell_state=True),
}


class _RecurrentLayer(torch.autograd.Function):
    """Autograd wrapper: forward runs the cell loop without recording, backward is ours."""

    @staticmethod
    def forward(ctx, kind: str, x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh):
        cell = CELLS[kind]
        state = (h0, c0) if cell.has_cell_state else h0
        trace, final = cell.forward(x, state, weight_ih, weight_hh, bias_ih, bias_hh)
        # The tape goes through save_for_backward (not a ctx attribute) because it holds
        # the output itself; autograd then keeps no reference cycle through the graph.
        ctx.kind = kind
        ctx.save_for_backward(weight_ih, weight_hh, *trace.tape)
        h_n, c_n = final if cell.has_cell_state else (final, None)
        return (trace.out, h_n, c_n) if c_n is not None else (trace.out, h_n, h_n.new_empty(0))

    @staticmethod
    def backward(ctx, d_out, d_h, d_c):
        cell = CELLS[ctx.kind]
        weight_ih, weight_hh, *tape = ctx.saved_tensors
        d_state = (d_h, d_c) if cell.has_cell_state else d_h
        dx, d_state0, grads = cell.backward(tape, weight_ih, weight_hh, d_out, d_state)
        d_h0, d_c0 = d_state0 if cell.has_cell_state else (d_state0, None)
        return (None, dx, d_h0, d_c0, *grads)


def recurrent_layer(kind: str, x: Tensor, state, weight_ih, weight_hh, bias_ih, bias_hh):
    """Run one layer of replicas over a sequence: ``(out, final_state)``.

    ``state`` is ``h`` for rnn/gru and ``(h, c)`` for lstm, each ``(R, B, H)``.
    Under ``torch.inference_mode()`` or when nothing needs a gradient the cell loop runs
    directly, so evaluation builds no graph at all.
    """
    cell = CELLS[kind]
    h0, c0 = state if cell.has_cell_state else (state, None)
    needs_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh)
    )
    if not needs_grad:
        trace, final = cell.forward(x, state, weight_ih, weight_hh, bias_ih, bias_hh)
        return trace.out, final
    if c0 is None:
        c0 = h0.new_empty(0)
    out, h_n, c_n = _RecurrentLayer.apply(kind, x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh)
    return out, ((h_n, c_n) if cell.has_cell_state else h_n)


def recurrent_trace(kind: str, x: Tensor, state, weight_ih, weight_hh, bias_ih, bias_hh):
    """Forward pass that also returns the gate activations (for analysis, never trained)."""
    return CELLS[kind].forward(x, state, weight_ih, weight_hh, bias_ih, bias_hh)
