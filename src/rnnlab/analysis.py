"""Making the seed texts' theory measurable: gradient flow through time, and gate activity.

Text 002 derives back-propagation through time and warns that the gradient reaching early
steps shrinks or grows as a product of per-step Jacobians; text 003 claims the GRU's gates
keep it from vanishing; the text-000 quiz says the update gate keeps long-term memory and the
reset gate short-term information. Both measurements use the library's own cells and the
trained checkpoints: no second model definition.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from rnnlab.recurrent import CELLS, hidden_projection


def log10_ratio(first: float, last: float) -> float | None:
    """log10(first / last): a ratio that spans 20 orders of magnitude as a number `dvc metrics diff`
    can show (it rounds to 5 decimals: 7.7e-07 and 8.7e-15 would both be 0.0). None (JSON null)
    when the gradient underflowed to exactly 0, which has no logarithm."""
    if first == 0:
        return None
    return math.log10(first / last)


def hidden_gradient_norms(step: Callable, state, inputs: Sequence[Tensor], loss: Callable, hidden: Callable) -> Tensor:
    """|dL/dh_t| for t = 1..T of the recurrence ``state_t = step(inputs[t-1], state_{t-1})``.

    ``loss(state_T)`` -> (R,) is the loss at the last step only; ``hidden(state)`` -> (R, ..., H)
    picks h out of the state (the tensor itself, not a view: the next step must use it).
    Returns (R, T): column t-1 is the norm of the total derivative of L_T with respect to h_t,
    through every later step.
    """
    with torch.enable_grad():
        states = []
        for x_t in inputs:
            state = step(x_t, state)
            h = hidden(state)
            h.retain_grad()
            states.append(h)
        loss(state).sum().backward()
    return torch.stack([h.grad.reshape(len(h.grad), -1).norm(dim=1) for h in states], 1)  # (R, T)


def gradient_flow(model, series: Tensor) -> Tensor:
    """|dL_T/dh_t| of every replica over ``series``: inputs series[:-1], the loss is the
    squared error of the last prediction against series[-1]. -> (R, T). One-layer models."""
    if model.cfg.num_layers != 1:
        raise ValueError("gradient flow is traced through one recurrent layer")
    cell, w = CELLS[model.cfg.kind], model.weights()
    R, T = model.replicas, len(series) - 1
    x = series[:-1].reshape(1, 1, T, 1).expand(R, 1, T, 1)                    # (R, B=1, T, 1)
    gi = torch.baddbmm(w["rnn.bias_ih_l0"].unsqueeze(1), x.reshape(R, T, 1), w["rnn.weight_ih_l0"].transpose(1, 2))
    inputs = gi.unsqueeze(1).unbind(2)                                        # T x (R, 1, G)
    project = hidden_projection(w["rnn.weight_hh_l0"], w["rnn.bias_hh_l0"])
    head_w, head_b = w["head.weight"], w["head.bias"]

    def step(gi_t, state):
        return cell.step(gi_t, state, project)

    def loss(state):
        y = torch.baddbmm(head_b.unsqueeze(1), cell.hidden(state), head_w.transpose(1, 2))  # (R, 1, 1)
        return ((y - series[-1]) ** 2).view(R)

    zeros = model.flat.new_zeros(R, 1, model.cfg.hidden_size)
    state = (zeros, zeros.clone()) if cell.has_cell_state else zeros
    return hidden_gradient_norms(step, state, inputs, loss, cell.hidden).detach()


# The gates each claim is about; "cell" (LSTM) and "new" (GRU) are candidate values, not gates.
GATES = {"gru": ("update", "reset"), "lstm": ("input", "forget", "output")}


@torch.inference_mode()
def rollout_gates(model, first: Tensor, state, steps: int) -> tuple[Tensor, dict[str, Tensor]]:
    """The test rollout with its gates: predictions (R, steps) and, per gate, the mean
    activation over hidden units at every step, (R, steps)."""
    preds, gates = model.rollout(first.reshape(1, 1, 1, 1), state, steps, gates=True)
    means = {name: gates[name].mean(-1).view(model.replicas, steps) for name in GATES.get(model.cfg.kind, ())}
    return preds.view(model.replicas, steps), means
