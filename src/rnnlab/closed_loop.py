"""The closed-loop objective (``sine.train.horizon: k``): training through the model's own free run.

Teacher forcing (the texts') trains every step on the true previous value; the test is a free run
in which the model reads nothing but its own outputs. With a horizon k, each training window ends
in a free run of k steps, and the gradient flows through the fed-back values (backpropagation
through the closed loop; scheduled sampling feeds predictions back as constants)::

    window of T = seq_len steps, horizon k (here T = 6, k = 3):
    step    :  0    1    2    3    4    5
    input   :  x0   x1   x2   x3   y3   y4        steps >= T - k + 1 read the previous prediction
    output  :  y1   y2   y3   y4   y5   y6        loss: mean (y_t - x_t)^2 over all T predictions
    gradient:  the loss of y5 reaches y4's input, through it y3, and from there the weights

so the last k predictions are a k-step free run from the true x_{T-k}. k = 1 is teacher forcing
(its one prediction reads the true input); k = T is a free run from the window's first value and
the carried state. The state carried to the next window is the one after reading the window's
*true* inputs (what teacher forcing carries): the free run is a branch off the data, and the test
range still starts from a state that has read the data.

The kernels run every replica in one call, in the compiled engine's layouts, and call the forward
and backward helpers of ``kernels.py`` (``_project``, ``_cell``, ``_cell_backward``,
``_project_back``, ``_accumulate``), so the cells' arithmetic is written once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from rnnlab import kernels
from rnnlab.kernels import (
    LSTM,
    _accumulate,
    _accumulator,
    _bias_accumulator,
    _cell,
    _cell_backward,
    _from_lanes,
    _inputs_at,
    _layout,
    _project,
    _project_back,
    _stack_in_layout,
    _state_in_lanes,
    _store_grads,
    compiled,
)
from rnnlab.recurrent import CELLS
from rnnlab.training import StatefulWindows


@compiled
def _layer_forward(kind, v, w_ih, w_hh, b_ih, b_hh, h, c, gi, gh, active, out_t, tape_t, layout):
    """One layer's step from input lanes v (K, N): its state moves in h/c, out_t and tape_t are
    written. A function of its own, not inlined: it is called from two places, and the cells'
    code inlined into each would make the kernel slow to compile."""
    _project(w_ih, b_ih, v, gi, layout)
    _project(w_hh, b_hh, h, gh, layout)
    _cell(kind, gi, gh, h, c, active, out_t, tape_t, layout)


@compiled
def _layer_backward(kind, tape_t, out_t, h_prev, c_prev, active, dh, d_out, dc, v, w_ih, w_hh, acc_ih, acc_bih, acc_hh,
                    acc_bhh, d_gi, d_gh, direct, d_in, dh_next, layout):
    """One layer's step backwards (``kernels.sequence_backward``'s loop body): from dL/dh_t =
    dh + d_out (and the LSTM's dc, updated in place to dL/dc_{t-1}), accumulates the weight
    gradients of step t and writes dL/d(input) into d_in and dL/dh_{t-1} into dh_next."""
    _cell_backward(kind, tape_t, out_t, h_prev, c_prev, active, dh, d_out, dc, d_gi, d_gh, direct)
    _accumulate(acc_ih, acc_bih, d_gi, v, layout)
    _accumulate(acc_hh, acc_bhh, d_gh, h_prev, layout)
    d_in[:] = 0.0
    _project_back(w_ih, d_gi, d_in, layout)
    dh_next[:] = direct
    _project_back(w_hh, d_gh, dh_next, layout)


@compiled
def recurrent_closed_loop(kind, x, free_from, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, head_weight, head_bias,
                          target, d_weight_ih, d_weight_hh, d_bias_ih, d_bias_hh, d_head_weight, d_head_bias, loss,
                          pred, h_n, c_n):
    """Loss and gradient of L recurrent layers and a Linear head over a window whose steps
    t >= ``free_from`` (> 0) read the prediction of step t - 1 instead of x, with the gradient
    through that input; ``free_from`` >= T: teacher forcing.

    x (R|1, B, T, I), I = O; h0, c0, h_n, c_n (L, R, B, H) (c zero-width without a cell state);
    the layers' weights and their gradients are tuples (one array per layer) as in
    ``kernels.recurrent_step``; target (B*T, O). Writes loss (R,) (the mean over the B*T
    predictions), pred (R, B*T, O), every gradient, and h_n/c_n: the state after reading the
    window's true inputs.
    """
    L, R, B, H = h0.shape
    T, I = x.shape[2], x.shape[3]
    O, N, G = head_weight.shape[1], R * B, weight_hh[0].shape[1]
    K = (0 if kind == kernels.RNN else 4 if kind == kernels.GRU else 6) * H  # the tape's width
    layout = _layout(G, max(I, H), N, B)
    w_ih, w_hh, b_ih, b_hh, w_head, b_head = _stack_in_layout(weight_ih, weight_hh, bias_ih, bias_hh, head_weight,
                                                              head_bias, B, layout)
    hs, cs = _state_in_lanes(kind, h0, c0, N)
    h_init, c_init = hs.copy(), cs.copy()
    outs, tapes = np.empty((L, N, T, H), pred.dtype), np.empty((L, N, T, K), pred.dtype)
    inputs = np.empty((T, I, N))                       # what each step read, as stored
    xt, y = np.empty((I, N)), np.empty((O, N))
    gi, gh = np.empty((G, N)), np.empty((G, N))
    active = np.ones(N, np.bool_)
    pred_lanes = pred.reshape(N, T, O)                 # lane n = r * B + b, row b * T + t of replica r
    saved_h, saved_c = hs.copy(), cs.copy()
    # -- forward: teacher-forced, then the free run ------------------------------------------
    for t in range(T):
        if t >= free_from and t > 0:
            for o in range(O):
                for n in range(N):
                    xt[o, n] = pred_lanes[n, t - 1, o]  # the prediction, as stored, is the next input
        else:
            _inputs_at(x, t, R, xt)
        if t == free_from:  # where the true inputs' run branches off
            saved_h[:] = hs
            saved_c[:] = cs
        inputs[t, :, :] = xt
        for layer in range(L):
            _layer_forward(kind, xt if layer == 0 else hs[layer - 1], w_ih[layer], w_hh[layer], b_ih[layer],
                           b_hh[layer], hs[layer], cs[layer], gi, gh, active, outs[layer][:, t], tapes[layer][:, t],
                           layout)
        _project(w_head, b_head, hs[L - 1], y, layout)
        for o in range(O):
            for n in range(N):
                pred_lanes[n, t, o] = y[o, n]
    # -- the state carried on: the true inputs read to the end -------------------------------
    if free_from < T:
        out_t, tape_t = np.empty((N, 1, H), pred.dtype), np.empty((N, 1, K), pred.dtype)  # [:, 0]: as outs[l][:, t]
        for t in range(free_from, T):
            _inputs_at(x, t, R, xt)
            for layer in range(L):
                _layer_forward(kind, xt if layer == 0 else saved_h[layer - 1], w_ih[layer], w_hh[layer], b_ih[layer],
                               b_hh[layer], saved_h[layer], saved_c[layer], gi, gh, active, out_t[:, 0], tape_t[:, 0],
                               layout)
        hs, cs = saved_h, saved_c
    for layer in range(L):
        _from_lanes(hs[layer], h_n[layer])
        if kind == LSTM:
            _from_lanes(cs[layer], c_n[layer])
    # -- the loss: mean squared error of every prediction, per replica -----------------------
    scale = 2.0 / (B * T * O)
    d_pred = np.empty((N, T, O))
    for r in range(R):
        total = 0.0
        for b in range(B):
            for t in range(T):
                for o in range(O):
                    diff = np.float64(pred_lanes[r * B + b, t, o]) - np.float64(target[b * T + t, o])
                    total += diff * diff
                    d_pred[r * B + b, t, o] = scale * diff
        loss[r] = total / (B * T * O)
    # -- backward through time and through the fed-back inputs -------------------------------
    acc_ih = [_accumulator(G, I if layer == 0 else H, R, N, layout) for layer in range(L)]
    acc_hh = [_accumulator(G, H, R, N, layout) for layer in range(L)]
    acc_bih = [_bias_accumulator(G, R, N, layout) for layer in range(L)]
    acc_bhh = [_bias_accumulator(G, R, N, layout) for layer in range(L)]
    acc_head, acc_head_bias = _accumulator(O, H, R, N, layout), _bias_accumulator(O, R, N, layout)
    dh, dc = np.zeros((L, H, N)), np.zeros((L, H, N))  # dL/d(state after step t), per layer
    d_fed = np.zeros((I, N))                           # dL/d(input of step t + 1), when it was fed back
    dy, d_top, d_in_x, d_in_h = np.empty((O, N)), np.empty((H, N)), np.empty((I, N)), np.empty((H, N))
    d_out = np.empty((N, H))
    h_prev, c_prev, v = np.empty((H, N)), np.zeros((H, N)), np.empty((H, N))
    d_gi, d_gh, direct, dh_next = np.empty((G, N)), np.empty((G, N)), np.empty((H, N)), np.empty((H, N))
    for t in range(T - 1, -1, -1):
        fed = t + 1 < T and t + 1 >= free_from and t + 1 > 0
        for o in range(O):
            for n in range(N):
                dy[o, n] = d_pred[n, t, o] + (d_fed[o, n] if fed else 0.0)
        for k in range(H):
            for n in range(N):
                v[k, n] = outs[L - 1][n, t, k]
        _accumulate(acc_head, acc_head_bias, dy, v, layout)
        d_top[:] = 0.0
        _project_back(w_head, dy, d_top, layout)
        for k in range(H):
            for n in range(N):
                d_out[n, k] = d_top[k, n]
        for layer in range(L - 1, -1, -1):
            if t == 0:
                h_prev[:] = h_init[layer]
                c_prev[:] = c_init[layer]
            else:
                for k in range(H):
                    for n in range(N):
                        h_prev[k, n] = outs[layer][n, t - 1, k]
                        if kind == LSTM:
                            c_prev[k, n] = tapes[layer][n, t - 1, 4 * H + k]
            if layer > 0:
                for k in range(H):
                    for n in range(N):
                        v[k, n] = outs[layer - 1][n, t, k]
            _layer_backward(kind, tapes[layer][:, t], outs[layer][:, t], h_prev, c_prev, active, dh[layer], d_out,
                            dc[layer], inputs[t] if layer == 0 else v, w_ih[layer], w_hh[layer], acc_ih[layer],
                            acc_bih[layer], acc_hh[layer], acc_bhh[layer], d_gi, d_gh, direct,
                            d_in_x if layer == 0 else d_in_h, dh_next, layout)
            dh[layer, :, :] = dh_next
            if layer > 0:  # the layer below produced this layer's input
                for k in range(H):
                    for n in range(N):
                        d_out[n, k] = d_in_h[k, n]
            else:          # the window's input: a path to the previous prediction if it was fed back
                d_fed[:] = d_in_x
    for layer in range(L):
        _store_grads(acc_ih[layer], R, d_weight_ih[layer], layout)
        _store_grads(acc_hh[layer], R, d_weight_hh[layer], layout)
        _store_grads(acc_bih[layer], R, d_bias_ih[layer], layout)
        _store_grads(acc_bhh[layer], R, d_bias_hh[layer], layout)
    _store_grads(acc_head, R, d_head_weight, layout)
    _store_grads(acc_head_bias, R, d_head_bias, layout)


@compiled
def mlp_closed_loop(x, free_from, weights, biases, target, d_weights, d_biases, loss, pred):
    """``recurrent_closed_loop`` for the MLP (ReLU between its Linear layers): x (R|1, B, T, I),
    I = O; weights/biases and their gradients tuples over the layers, (R, out, in) and (R, out);
    target (B*T, O); writes loss (R,), pred (R, B*T, O) and the gradients. Each layer's output
    is stored in the model's dtype, as ``kernels.dense_forward`` stores it."""
    R, O = pred.shape[0], pred.shape[2]
    B, T, I = x.shape[1], x.shape[2], x.shape[3]
    layers = len(weights)
    width = I
    for w in weights:
        width = max(width, w.shape[1])
    acts = np.zeros((layers + 1, T, width), pred.dtype)  # acts[0]: the inputs read; acts[k + 1]: layer k's output
    d, d_new, d_pre, d_fed = np.empty(width), np.empty(width), np.empty(width), np.zeros(I)
    scale = 2.0 / (B * T * O)
    for r in range(R):
        rx = 0 if x.shape[0] == 1 else r
        acc_w = [np.zeros(w.shape[1:]) for w in weights]
        acc_b = [np.zeros(w.shape[1]) for w in weights]
        total = 0.0
        for b in range(B):
            for t in range(T):
                for i in range(I):
                    acts[0, t, i] = pred[r, b * T + t - 1, i] if t >= free_from and t > 0 else x[rx, b, t, i]
                for k in range(layers):
                    w, bias = weights[k][r], biases[k][r]
                    for o in range(w.shape[0]):
                        s = np.float64(bias[o])
                        for i in range(w.shape[1]):
                            s += np.float64(w[o, i]) * np.float64(acts[k, t, i])
                        acts[k + 1, t, o] = s if k == layers - 1 or s > 0 else 0.0
                for o in range(O):
                    pred[r, b * T + t, o] = acts[layers, t, o]
            d_fed[:] = 0.0
            for t in range(T - 1, -1, -1):
                fed = t + 1 < T and t + 1 >= free_from
                for o in range(O):
                    diff = np.float64(pred[r, b * T + t, o]) - np.float64(target[b * T + t, o])
                    total += diff * diff
                    d[o] = scale * diff + (d_fed[o] if fed else 0.0)
                for k in range(layers - 1, -1, -1):
                    w = weights[k][r]
                    relu = k < layers - 1
                    for o in range(w.shape[0]):
                        d_pre[o] = d[o] if (not relu or acts[k + 1, t, o] > 0) else 0.0
                        acc_b[k][o] += d_pre[o]
                        for i in range(w.shape[1]):
                            acc_w[k][o, i] += d_pre[o] * np.float64(acts[k, t, i])
                    for i in range(w.shape[1]):
                        s = 0.0
                        for o in range(w.shape[0]):
                            s += np.float64(w[o, i]) * d_pre[o]
                        d_new[i] = s
                    d[: w.shape[1]] = d_new[: w.shape[1]]
                d_fed[:] = d[:I]
        loss[r] = total / (B * T * O)
        for k in range(layers):
            d_weights[k][r] = acc_w[k]
            d_biases[k][r] = acc_b[k]


def free_from(steps: int, horizon: int) -> int:
    """The first step of a window of ``steps`` that reads a prediction: the last ``horizon``
    predictions are the free run (``horizon`` <= 1: none, teacher forcing)."""
    if horizon > steps:
        raise ValueError(f"a horizon of {horizon} steps does not fit a window of {steps}")
    return steps - horizon + 1 if horizon > 1 else steps


def train_step(model, x: Tensor, target: Tensor, state, horizon: int) -> tuple[Tensor, Tensor, object]:
    """One window of a replica stack trained on the closed loop: x (1|R, B, T, I) the true
    inputs, target (B, T, O); -> per-replica MSE (R,), predictions (R, B*T, O) and the state
    after the window's true inputs. The gradient of the summed loss is in ``model.flat.grad``
    (overwritten), as after ``model.train_step``."""
    engine = model.engine()
    x_ = np.ascontiguousarray(x.detach().numpy())
    R, B, T, I = model.replicas, x_.shape[1], x_.shape[2], x_.shape[3]
    target_ = np.ascontiguousarray(target.detach().numpy().reshape(B * T, -1))
    if target_.shape[1] != I:
        raise ValueError(f"feeding predictions back needs as many outputs as inputs, got {target_.shape[1]} and {I}")
    start = free_from(T, horizon)
    loss = np.empty(R)
    pred = np.empty((R, B * T, I), x_.dtype)
    if model.cfg.kind == "mlp":
        linears = engine._linears()
        kernels_args = (tuple(engine.w[f"{n}.weight"] for n in linears), tuple(engine.w[f"{n}.bias"] for n in linears))
        grads = (tuple(engine.g[f"{n}.weight"] for n in linears), tuple(engine.g[f"{n}.bias"] for n in linears))
        mlp_closed_loop(x_, start, *kernels_args, target_, *grads, loss, pred)
        final = None
    else:
        h0, c0 = engine._state_by_layer(state, B)
        h_n, c_n = np.empty_like(h0), np.empty_like(c0)
        recurrent_closed_loop(CELLS[model.cfg.kind].code, x_, start, h0, c0, *engine.params[0], engine.w["head.weight"],
                              engine.w["head.bias"], target_, *engine.grads[0], engine.g["head.weight"],
                              engine.g["head.bias"], loss, pred, h_n, c_n)
        final = torch.from_numpy(np.ascontiguousarray(h_n.transpose(1, 0, 2, 3)))  # (R, L, B, H)
        if CELLS[model.cfg.kind].has_cell_state:
            final = (final, torch.from_numpy(np.ascontiguousarray(c_n.transpose(1, 0, 2, 3))))
    model.flat.grad = engine.grad
    return torch.from_numpy(loss).to(engine.grad.dtype), torch.from_numpy(pred), final


@dataclass(frozen=True)
class ClosedLoopWindows(StatefulWindows):
    """Text 003's stateful windows (``training.StatefulWindows``: same order, same carried state,
    same rollout test), each trained on the closed loop: its last ``horizon`` predictions are a
    free run with the gradient through the fed-back values (``train_step``)."""

    horizon: int = 2

    def step(self, model, batch, state):
        inputs, targets = batch                                   # (1, B=1, T, 1) each
        loss, _, state = train_step(model, inputs, targets, state, self.horizon)
        return {"loss": loss}, state
