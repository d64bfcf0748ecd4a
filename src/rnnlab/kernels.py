"""Compiled kernels: recurrent layers, dense layers and the MSE loss, forward and backward.

At the lab's sizes (hidden 8-20, a handful of replicas, batch 1 to 100) a training step is a
few hundred thousand multiply-adds, which a compiled loop does in tens of microseconds; the
same step as PyTorch operations is hundreds of tiny kernel launches, each costing more in
dispatch than in arithmetic. So the hot loops are written out here, once, and compiled with
numba (``cache=True``: the machine code is kept in ``__pycache__`` beside this file, so only
the first run on a machine pays the compile, about 20 s; see ``warm_up``).

Conventions, shared by every kernel:

* Arrays come from the model's own tensors (``tensor.numpy()`` shares memory), in the model's
  dtype (float32 in training, float64 in the gradient tests). Every sum and product is taken
  in float64 and rounded once when stored, so float32 results differ from PyTorch's only in
  the last bits, and float64 results match autograd to ~1e-15.
* Replicas ``R`` lead every array; an input with a leading 1 is shared by all replicas.
* Sequences may be shorter than the padded ``T``: step ``t`` of row ``b`` exists when
  ``t < lengths[b]`` (the ball's packed histories). Outputs past a row's end are zero and its
  final state is the one after its last real step, as ``pack_padded_sequence`` gives.
* The recurrent state is re-read from what was stored after every step, so a sequence run in
  one call or step by step (rollouts) gives the same numbers, and the backward pass sees
  exactly the states the forward pass used.

Shapes: x (R|1, B, T, I), h0/c0 (R, B, H), weight_ih (R, G, I), weight_hh (R, G, H),
bias (R, G), out (R, B, T, H), tape (R, B, T, K); G = gates * H as in PyTorch's layout.
Tapes: rnn none (K = 0), gru [r, z, n, W_hn h + b_hn] (K = 4H), lstm [i, f, g, o, c, tanh c]
(K = 6H). rnn and gru take zero-width c arrays (R, B, 0) so every cell has one signature.
"""

from __future__ import annotations

import math

import numba
import numpy as np

compiled = numba.njit(cache=True, nogil=True, error_model="numpy")


@numba.njit(cache=True, inline="always", error_model="numpy")
def _sigmoid(a):
    return 1.0 / (1.0 + math.exp(-a))


@numba.njit(cache=True, inline="always", error_model="numpy")
def _affine(weight, bias, v, out):
    """out[g] = bias[g] + sum_k weight[g, k] v[k], in float64."""
    for g in range(weight.shape[0]):
        acc = np.float64(bias[g])
        for k in range(weight.shape[1]):
            acc += weight[g, k] * v[k]
        out[g] = acc


@numba.njit(cache=True, inline="always", error_model="numpy")
def _load(src, dst):
    for k in range(src.shape[0]):
        dst[k] = src[k]


@numba.njit(cache=True, inline="always", error_model="numpy")
def _accumulate_outer(d_gates, v, d_weight, d_bias):
    """d_weight += d_gates v^T, d_bias += d_gates (float64 accumulators)."""
    for g in range(d_gates.shape[0]):
        d_bias[g] += d_gates[g]
        for k in range(v.shape[0]):
            d_weight[g, k] += d_gates[g] * v[k]


@numba.njit(cache=True, inline="always", error_model="numpy")
def _transpose_times(weight, d_gates, out):
    """out[k] = sum_g weight[g, k] d_gates[g]  (out += W^T d, after zeroing)."""
    for k in range(weight.shape[1]):
        acc = 0.0
        for g in range(weight.shape[0]):
            acc += weight[g, k] * d_gates[g]
        out[k] = acc


# ---------------------------------------------------------------------------------------
# Forward: the cells' equations once, used by the sequence loop and by the rollout
# ---------------------------------------------------------------------------------------

RNN, GRU, LSTM = 0, 1, 2  # the ``kind`` argument of the forward kernels
KINDS = {"rnn": RNN, "gru": GRU, "lstm": LSTM}


@numba.njit(cache=True, inline="always", error_model="numpy")
def _cell(kind, gi, gh, h, c, kept, h_out):
    """One step of one row: gi = W_ih x + b_ih, gh = W_hh h + b_hh (float64) -> h_out, kept.

    rnn : h' = tanh(gi + gh)
    gru : r, z = sigma(gi_rz + gh_rz), n = tanh(gi_n + r * gh_n), h' = (h - n) z + n  (PyTorch's)
    lstm: i, f, o = sigma(.), g = tanh(.), c' = f c + i g, h' = o tanh(c'); c' goes to kept
    """
    H = h.shape[0]
    if kind == RNN:
        for j in range(H):
            h_out[j] = math.tanh(gi[j] + gh[j])
    elif kind == GRU:
        for j in range(H):
            reset = _sigmoid(gi[j] + gh[j])
            update = _sigmoid(gi[H + j] + gh[H + j])
            new = math.tanh(gi[2 * H + j] + reset * gh[2 * H + j])
            kept[j], kept[H + j], kept[2 * H + j], kept[3 * H + j] = reset, update, new, gh[2 * H + j]
            h_out[j] = (h[j] - new) * update + new
    else:
        for j in range(H):
            i = _sigmoid(gi[j] + gh[j])
            f = _sigmoid(gi[H + j] + gh[H + j])
            g = math.tanh(gi[2 * H + j] + gh[2 * H + j])
            o = _sigmoid(gi[3 * H + j] + gh[3 * H + j])
            kept[j], kept[H + j], kept[2 * H + j], kept[3 * H + j] = i, f, g, o
            kept[4 * H + j] = f * c[j] + i * g
            kept[5 * H + j] = math.tanh(kept[4 * H + j])
            h_out[j] = o * kept[5 * H + j]


@numba.njit(cache=True, inline="always", error_model="numpy")
def _step(kind, weight_ih, weight_hh, bias_ih, bias_hh, xv, h, c, gi, gh, kept, h_out):
    """A whole step: both projections, the cell, then h (and c) re-read from what was stored."""
    _affine(weight_ih, bias_ih, xv, gi)
    _affine(weight_hh, bias_hh, h, gh)
    _cell(kind, gi, gh, h, c, kept, h_out)
    _load(h_out, h)
    if kind == LSTM:
        H = h.shape[0]
        _load(kept[4 * H : 5 * H], c)


@compiled
def sequence_forward(kind, x, lengths, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, out, tape, h_n, c_n):
    """One layer of every replica over a padded sequence: out, tape, and the final state."""
    R, B, I, H = out.shape[0], x.shape[1], x.shape[3], h0.shape[2]
    G = weight_hh.shape[1]
    xv, h, c = np.empty(I), np.empty(H), np.zeros(H)
    gi, gh = np.empty(G), np.empty(G)
    out[:] = 0
    tape[:] = 0
    for r in range(R):
        rx = 0 if x.shape[0] == 1 else r
        w_ih, w_hh = weight_ih[r].astype(np.float64), weight_hh[r].astype(np.float64)  # converted once, not per step
        b_ih, b_hh = bias_ih[r].astype(np.float64), bias_hh[r].astype(np.float64)
        for b in range(B):
            _load(h0[r, b], h)
            if kind == LSTM:
                _load(c0[r, b], c)
            for t in range(lengths[b]):
                _load(x[rx, b, t], xv)
                _step(kind, w_ih, w_hh, b_ih, b_hh, xv, h, c, gi, gh, tape[r, b, t], out[r, b, t])
            for j in range(H):
                h_n[r, b, j] = h[j]
                if kind == LSTM:
                    c_n[r, b, j] = c[j]


@compiled
def rollout(kind, x0, h, c, weight_ih, weight_hh, bias_ih, bias_hh, head_weight, head_bias, preds, tape):
    """Feed each prediction back as the next input, through every layer and the Linear head.

    x0 (R, B, I) is the first input; h, c (L, R, B, H) the state to start from, updated in
    place; the layers' weights are tuples (one array per layer); preds (R, B, steps, O) and
    the last layer's tape (R, B, steps, K) are written. Same arithmetic as ``sequence_forward``.
    """
    R, B, steps, O = preds.shape
    L, H = h.shape[0], h.shape[3]
    G = weight_hh[0].shape[1]
    width = max(x0.shape[2], H)
    xv, hv, cv = np.empty(width), np.empty(H), np.zeros(H)
    gi, gh, h_out, kept = np.empty(G), np.empty(G), np.empty(H, h.dtype), np.empty(tape.shape[3], tape.dtype)
    for r in range(R):
        w_ih = [weight_ih[layer][r].astype(np.float64) for layer in range(L)]  # converted once per replica
        w_hh = [weight_hh[layer][r].astype(np.float64) for layer in range(L)]
        b_ih = [bias_ih[layer][r].astype(np.float64) for layer in range(L)]
        b_hh = [bias_hh[layer][r].astype(np.float64) for layer in range(L)]
        for b in range(B):
            for i in range(x0.shape[2]):
                xv[i] = x0[r, b, i]
            for t in range(steps):
                for layer in range(L):
                    _load(h[layer, r, b], hv)
                    if kind == LSTM:
                        _load(c[layer, r, b], cv)
                    _step(kind, w_ih[layer], w_hh[layer], b_ih[layer], b_hh[layer], xv[: w_ih[layer].shape[1]],
                          hv, cv, gi, gh, kept, h_out)
                    for j in range(H):
                        h[layer, r, b, j] = h_out[j]
                        if kind == LSTM:
                            c[layer, r, b, j] = cv[j]
                        xv[j] = h_out[j]
                for k in range(kept.shape[0]):
                    tape[r, b, t, k] = kept[k]
                for o in range(O):
                    s = np.float64(head_bias[r, o])
                    for j in range(H):
                        s += np.float64(head_weight[r, o, j]) * xv[j]
                    preds[r, b, t, o] = s
                for o in range(O):  # the prediction, as stored, is the next input
                    xv[o] = preds[r, b, t, o]


# ---------------------------------------------------------------------------------------
# Backward through time: gradients of inputs, initial state and weights
# ---------------------------------------------------------------------------------------


@numba.njit(cache=True, inline="always", error_model="numpy")
def _previous(h0, out, r, b, t, buffer):
    """The state a step started from: h0 for the first step, else the previous output."""
    if t == 0:
        _load(h0[r, b], buffer)
    else:
        _load(out[r, b, t - 1], buffer)


@numba.njit(cache=True, inline="always", error_model="numpy")
def _cell_backward(kind, kept, h_t, h_prev, c_prev, d, dc, d_gi, d_gh, direct):
    """One step of one row backwards: ``d`` = dL/dh_t (from later steps and from this step's
    output) -> the gradients of the pre-activations ``d_gi`` (= W_ih x + b_ih) and ``d_gh``
    (= W_hh h + b_hh), and ``direct``: the part of dL/dh_{t-1} that bypasses W_hh (GRU's z).
    The LSTM's dL/dc_t comes in ``dc`` and leaves as dL/dc_{t-1}."""
    H = d.shape[0]
    if kind == RNN:
        for j in range(H):
            a = d[j] * (1.0 - h_t[j] * h_t[j])
            d_gi[j], d_gh[j], direct[j] = a, a, 0.0
    elif kind == GRU:
        for j in range(H):
            reset, update = np.float64(kept[j]), np.float64(kept[H + j])
            new, hidden_n = np.float64(kept[2 * H + j]), np.float64(kept[3 * H + j])
            d_a_n = d[j] * (1.0 - update) * (1.0 - new * new)
            d_a_r = d_a_n * hidden_n * reset * (1.0 - reset)
            d_a_z = d[j] * (h_prev[j] - new) * update * (1.0 - update)
            d_gi[j], d_gi[H + j], d_gi[2 * H + j] = d_a_r, d_a_z, d_a_n
            d_gh[j], d_gh[H + j], d_gh[2 * H + j] = d_a_r, d_a_z, d_a_n * reset
            direct[j] = d[j] * update
    else:
        for j in range(H):
            i, f = np.float64(kept[j]), np.float64(kept[H + j])
            g, o = np.float64(kept[2 * H + j]), np.float64(kept[3 * H + j])
            tc = np.float64(kept[5 * H + j])
            dc[j] += d[j] * o * (1.0 - tc * tc)
            d_gi[j] = dc[j] * g * i * (1.0 - i)
            d_gi[H + j] = dc[j] * c_prev[j] * f * (1.0 - f)
            d_gi[2 * H + j] = dc[j] * i * (1.0 - g * g)
            d_gi[3 * H + j] = d[j] * tc * o * (1.0 - o)
            dc[j] *= f
            direct[j] = 0.0
        for k in range(4 * H):
            d_gh[k] = d_gi[k]


@compiled
def sequence_backward(kind, x, lengths, h0, c0, weight_ih, weight_hh, out, tape, d_out, d_h_n, d_c_n,
                      d_x, d_h0, d_c0, d_weight_ih, d_weight_hh, d_bias_ih, d_bias_hh):
    """Backward through time of one layer (what ``sequence_forward`` recorded): writes the
    gradients of the inputs, of the initial state and of the four weights.

    ``d_out`` is dL/d(out), ``d_h_n``/``d_c_n`` dL/d(final state). Weight gradients are summed
    over rows and steps in float64 and stored once.
    """
    R, B, I = out.shape[0], x.shape[1], x.shape[3]
    H, G = h0.shape[2], weight_hh.shape[1]
    xv, h_t, h_prev, c_prev = np.empty(I), np.empty(H), np.empty(H), np.zeros(H)
    d, dh, dc, direct, dx = np.empty(H), np.empty(H), np.zeros(H), np.empty(H), np.empty(I)
    d_gi, d_gh = np.empty(G), np.empty(G)
    d_x[:] = 0
    for r in range(R):
        acc_ih, acc_hh = np.zeros((G, I)), np.zeros((G, H))
        acc_bih, acc_bhh = np.zeros(G), np.zeros(G)
        w_ih, w_hh = weight_ih[r].astype(np.float64), weight_hh[r].astype(np.float64)
        for b in range(B):
            _load(d_h_n[r, b], dh)
            if kind == LSTM:
                _load(d_c_n[r, b], dc)
            for t in range(lengths[b] - 1, -1, -1):
                _previous(h0, out, r, b, t, h_prev)
                if kind == LSTM:
                    _load(c0[r, b] if t == 0 else tape[r, b, t - 1, 4 * H : 5 * H], c_prev)
                _load(out[r, b, t], h_t)
                for j in range(H):
                    d[j] = dh[j] + d_out[r, b, t, j]
                _cell_backward(kind, tape[r, b, t], h_t, h_prev, c_prev, d, dc, d_gi, d_gh, direct)
                _load(x[0 if x.shape[0] == 1 else r, b, t], xv)
                _accumulate_outer(d_gi, xv, acc_ih, acc_bih)
                _accumulate_outer(d_gh, h_prev, acc_hh, acc_bhh)
                _transpose_times(w_ih, d_gi, dx)
                for i in range(I):
                    d_x[r, b, t, i] = dx[i]
                _transpose_times(w_hh, d_gh, dh)
                for j in range(H):
                    dh[j] += direct[j]
            for j in range(H):
                d_h0[r, b, j] = dh[j]
                if kind == LSTM:
                    d_c0[r, b, j] = dc[j]
        d_weight_ih[r] = acc_ih
        d_weight_hh[r] = acc_hh
        d_bias_ih[r] = acc_bih
        d_bias_hh[r] = acc_bhh


# ---------------------------------------------------------------------------------------
# Dense layers (the heads and the MLP) and the loss
# ---------------------------------------------------------------------------------------


@compiled
def dense_forward(x, weight, bias, relu, y):
    """y = x W^T + b per replica, optionally through ReLU: x (R|1, M, I) -> y (R, M, O)."""
    R, M = y.shape[0], y.shape[1]
    acc = np.empty(weight.shape[2])
    for r in range(R):
        rx = 0 if x.shape[0] == 1 else r
        for m in range(M):
            _load(x[rx, m], acc)
            for o in range(weight.shape[1]):
                s = np.float64(bias[r, o])
                for i in range(weight.shape[2]):
                    s += np.float64(weight[r, o, i]) * acc[i]
                y[r, m, o] = max(s, 0.0) if relu else s


@compiled
def dense_backward(x, weight, y, relu, d_y, d_x, d_weight, d_bias):
    """Gradients of a dense layer; ``d_x`` may have zero width to skip the input gradient."""
    R, M, O, I = y.shape[0], y.shape[1], weight.shape[1], weight.shape[2]
    d_pre = np.empty(O)
    for r in range(R):
        rx = 0 if x.shape[0] == 1 else r
        acc_w, acc_b = np.zeros((O, I)), np.zeros(O)
        for m in range(M):
            for o in range(O):
                d_pre[o] = d_y[r, m, o] if (not relu or y[r, m, o] > 0) else 0.0
                acc_b[o] += d_pre[o]
                for i in range(I):
                    acc_w[o, i] += d_pre[o] * np.float64(x[rx, m, i])
            if d_x.shape[2] == I:
                for i in range(I):
                    s = 0.0
                    for o in range(O):
                        s += np.float64(weight[r, o, i]) * d_pre[o]
                    d_x[r, m, i] = s
        d_weight[r] = acc_w
        d_bias[r] = acc_b


@compiled
def mlp_rollout(x0, weights, biases, preds):
    """The MLP fed its own output: x0 (R, B, I), weights/biases tuples (ReLU between layers),
    preds (R, B, steps, O). Same arithmetic as ``dense_forward``."""
    R, B, steps, _ = preds.shape
    width = x0.shape[2]
    for w in weights:
        width = max(width, w.shape[1])
    v, y = np.empty(width), np.empty(width, preds.dtype)  # y rounds each layer's output, as dense_forward stores it
    last = len(weights) - 1
    for r in range(R):
        for b in range(B):
            for i in range(x0.shape[2]):
                v[i] = x0[r, b, i]
            for t in range(steps):
                for k in range(len(weights)):
                    w, bias = weights[k][r], biases[k][r]
                    for o in range(w.shape[0]):
                        s = np.float64(bias[o])
                        for i in range(w.shape[1]):
                            s += np.float64(w[o, i]) * v[i]
                        y[o] = s if k == last or s > 0 else 0.0
                    for o in range(w.shape[0]):
                        v[o] = y[o]
                for o in range(preds.shape[3]):
                    preds[r, b, t, o] = v[o]  # the prediction is the next input


@compiled
def mse(pred, target, loss, d_pred):
    """Per replica: loss[r] = mean((pred[r] - target)^2) and its gradient: pred (R, M, O), target (M, O)."""
    R, M, O = pred.shape
    scale = 2.0 / (M * O)
    for r in range(R):
        total = 0.0
        for m in range(M):
            for o in range(O):
                diff = np.float64(pred[r, m, o]) - np.float64(target[m, o])
                total += diff * diff
                d_pred[r, m, o] = scale * diff
        loss[r] = total / (M * O)


# ---------------------------------------------------------------------------------------
# Optimizer steps on the flat parameter vector, per replica
# ---------------------------------------------------------------------------------------


@compiled
def replica_norms(grad, replica_of, norms):
    """The gradient norm of each replica; ``replica_of[k]`` is the replica of element k."""
    squares = np.zeros(norms.shape[0])
    for k in range(grad.shape[0]):
        squares[replica_of[k]] += np.float64(grad[k]) * np.float64(grad[k])
    for r in range(norms.shape[0]):
        norms[r] = math.sqrt(squares[r])


@compiled
def adam_step(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, step):
    """PyTorch's Adam (no weight decay, no amsgrad), element by element in the param's dtype.

    The same formula as ``torch.optim.Adam``'s single-tensor path: m <- lerp(m, g, 1 - beta1),
    v <- beta2 v + (1 - beta2) g^2, p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
    """
    bias_correction1 = 1.0 - beta1**step
    bias_correction2_sqrt = math.sqrt(1.0 - beta2**step)
    step_size = lr / bias_correction1
    for k in range(param.shape[0]):
        g = np.float64(grad[k])
        exp_avg[k] += (1.0 - beta1) * (g - exp_avg[k])
        exp_avg_sq[k] = beta2 * exp_avg_sq[k] + (1.0 - beta2) * g * g
        denom = math.sqrt(exp_avg_sq[k]) / bias_correction2_sqrt + eps
        param[k] -= step_size * exp_avg[k] / denom


@compiled
def sgd_step(param, grad, lr):
    for k in range(param.shape[0]):
        param[k] -= lr * np.float64(grad[k])
