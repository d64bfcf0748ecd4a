"""Compiled kernels: recurrent and dense layers forward and backward, the MSE, rollouts, the
inputs of scheduled sampling, Adam, SGD, and a whole SGD epoch of many-to-one minibatches.

At the lab's sizes (hidden 8-20, a handful of replicas, batch 1 to 100) a training step is a
few hundred thousand multiply-adds, which a compiled loop does in tens of microseconds; the
same step as PyTorch operations is hundreds of tiny kernel launches, each costing more in
dispatch than in arithmetic. So the hot loops are written out here, once, and compiled with
numba (``cache=True``: the machine code is kept in ``__pycache__`` beside this file, so only
the first run on a machine pays the compile (docs/workflow.md: how long); ``make setup`` does it up front).

Conventions, shared by every kernel:

* Arrays come from the model's own tensors (``tensor.numpy()`` shares memory), in the model's
  dtype (float32 in training, float64 in the gradient tests). Every sum and product is taken
  in float64 and rounded once when stored, so float32 results differ from PyTorch's only in
  the last bits, and float64 results match autograd to ~1e-15.
* Wide layers (inputs or hidden units from ``BLAS_FROM``, or from ``BLAS_FROM_BATCHED`` with two
  rows a replica or more) take their matrix products through BLAS (see the layouts below) in
  the model's own dtype, as PyTorch does: sgemm for a float32 model (its products' sums in
  float32, in BLAS's order), dgemm for a float64 one; their cells compute in it too.
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

import ctypes
import math

import numba
import numpy as np
from numba.core import types
from numba.extending import intrinsic

# glibc's malloc gives freed memory back to the system past a threshold that adapts to the largest
# block freed (twice it); a wide layer's training step allocates and frees tens of MB of tapes and
# gradients, so every step got fresh pages from the kernel, zeroed: at hidden 256 x 100 rows, 12 ms of
# a 73 ms step (docs/engine.md). Fixed thresholds keep up to TRIM_ABOVE of freed heap for the next
# step, and serve blocks up to MMAP_FROM (glibc's largest allowed) from it.
MMAP_FROM, TRIM_ABOVE = 32 << 20, 256 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def keep_freed_memory() -> bool:
    """Set glibc's malloc thresholds (above) for this process; False where there is no glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no mallopt (macOS): its allocator keeps its own pages
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_FROM)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_ABOVE))


keep_freed_memory()

compiled = numba.njit(cache=True, nogil=True, error_model="numpy")
# Helpers are left to LLVM to inline: numba's own ``inline="always"`` (inlining its IR before
# type inference) made the first compile 99 s instead of 56 s and a cached load 0.75 s instead
# of 0.56 s, and the trained numbers and step times were the same (benchmarks/bench_scale.py).
helper = numba.njit(cache=True, error_model="numpy")

# The recurrent kernels take their arrays grouped in plain tuples (a named tuple costs numba's
# dispatcher ~5-10 us a call, as much as a small training step's arithmetic):
#   state      (h, c)                                    (R, B, H) each, or (L, R, B, H) for a stack
#   weights    (weight_ih, weight_hh, bias_ih, bias_hh)  one layer's (R, G, I), (R, G, H), (R, G), (R, G)
#   params     (layers, head)                            a stack's: layers = weights with each entry a
#                                                        tuple over the layers; head = (weight (R, O, H), bias (R, O))
#   minibatches (x, lengths, target, starts)             an epoch's, end to end (sgd_epoch)


@helper
def _sigmoid(a):
    return 1.0 / (1.0 + math.exp(-a))


# ---------------------------------------------------------------------------------------
# tanh rounded to float32 without libm, for the RNN
#
# libm's tanh costs ~8 ns a call and cannot be vectorised: in the RNN's forward pass, whose
# only other work is a few multiply-adds, it was four fifths of the time. The RNN stores
# tanh(a) and uses nothing else of it, so in float32 only float32(tanh(a)) matters: we take it
# from a tanh of plain arithmetic (a loop of which vectorises), and from libm whenever a
# float32 rounding boundary is near enough that the two could round differently.
# ---------------------------------------------------------------------------------------


@helper
def _expm1_near_zero(z):
    """e^z - 1 for 0 <= z <= 0.625, from its Taylor series to z^15 (truncated: < 5e-17 relative),
    summed without the 1, so small z lose no digits to e^z - 1's cancellation. Horner's steps
    are written out: numba compiles a loop over the coefficients to one that does not vectorise."""
    p = 7.647163731819816e-13
    p = p * z + 1.1470745597729725e-11
    p = p * z + 1.6059043836821613e-10
    p = p * z + 2.08767569878681e-09
    p = p * z + 2.505210838544172e-08
    p = p * z + 2.755731922398589e-07
    p = p * z + 2.7557319223985893e-06
    p = p * z + 2.48015873015873e-05
    p = p * z + 0.0001984126984126984
    p = p * z + 0.001388888888888889
    p = p * z + 0.008333333333333333
    p = p * z + 0.041666666666666664
    p = p * z + 0.16666666666666666
    p = p * z + 0.5
    p = p * z + 1.0
    return p * z


@helper
def _expm1_doubled(u, times):
    """e^(2^times z) - 1 from u = e^z - 1, squaring ``times`` times: (1 + u)^2 - 1 = u (2 + u).
    Without the 1, so no digits are lost to cancellation; each squaring at most doubles u's
    relative error. ``times`` is a constant at every call: as fast as the squarings written out."""
    for _ in range(times):
        u = u * (2.0 + u)
    return u


@helper
def _tanh_arithmetic(a):
    """tanh(a) within ~1e-15 relative (measured 1.1e-15 over 10^7 values) for |a| < 10; +-tanh(10)
    beyond, which rounds to +-1 in float32 as every tanh beyond does.

    tanh|a| = u / (u + 2) with u = e^(2|a|) - 1, that from u at 2|a| / 32 squared five times.
    """
    u = _expm1_doubled(_expm1_near_zero(min(abs(a), 10.0) * 0.0625), 5)
    return math.copysign(u / (u + 2.0), a)


TANH_SLACK = 1e-12  # relative: ~1000 times our error, and libm's tanh is within 2 ulp (~4e-16)


@helper
def _tanh_float32(a, arithmetic):
    """float32(math.tanh(a)), given ``arithmetic`` = _tanh_arithmetic(a): when every value within
    TANH_SLACK of it rounds to one float32, so do libm's and the true tanh; otherwise (2.5-3 values
    in 10^5 measured, and NaN) libm decides."""
    slack = TANH_SLACK * abs(arithmetic)
    if np.float32(arithmetic - slack) == np.float32(arithmetic + slack):
        return np.float32(arithmetic)
    return np.float32(math.tanh(a))


@helper
def _rnn_cell_float32(gi, gh, h, active, out_t):
    """The RNN's step, h' = tanh(gi + gh), into float32 ``out_t`` (N, H): the tanh of every lane
    first, in one loop that vectorises, then the active lanes' values rounded; gi and gh are
    scratch afterwards (gh keeps the pre-activation for libm, gi its tanh)."""
    H, N = h.shape
    for j in range(H):
        for n in range(N):
            gh[j, n] += gi[j, n]
            gi[j, n] = _tanh_arithmetic(gh[j, n])
        for n in range(N):
            if active[n]:
                out_t[n, j] = _tanh_float32(gh[j, n], gi[j, n])
                h[j, n] = out_t[n, j]


# ---------------------------------------------------------------------------------------
# The GRU's and LSTM's float32 gates without libm, to libm's last bit
#
# A float32 cell stores its gates, state and output rounded to float32; only those roundings go
# on (the state is re-read from what was stored). So, as the RNN's tanh above: every value is
# computed from the arithmetic sigmoid and tanh (within 1e-13 of libm's; EXACT_SLACK is 1e-11, a
# hundredfold margin) in loops that vectorise, with a bound on how far libm's value could lie;
# where that whole interval rounds to one float32, libm's rounds to it too. A lane with any value
# too close to a rounding boundary (or a pre-activation beyond the arithmetic's range, or NaN)
# is computed again as before, with libm. Every stored number is then libm's, bit for bit.
# ---------------------------------------------------------------------------------------

@helper
def _gru_unit_libm(gi, gh, h, j, n, out_t, tape_t):
    """Unit j of lane n of the GRU's step with libm's sigmoid and tanh: tape_t and out_t (N, .) written."""
    H = h.shape[0]
    reset = _sigmoid(gi[j, n] + gh[j, n])
    update = _sigmoid(gi[H + j, n] + gh[H + j, n])
    new = math.tanh(gi[2 * H + j, n] + reset * gh[2 * H + j, n])
    tape_t[n, j], tape_t[n, H + j], tape_t[n, 2 * H + j] = reset, update, new
    tape_t[n, 3 * H + j] = gh[2 * H + j, n]
    out_t[n, j] = (h[j, n] - new) * update + new


@helper
def _lstm_unit_libm(gi, gh, c, j, n, out_t, tape_t):
    """Unit j of lane n of the LSTM's step with libm's: tape_t and out_t written, c moved to the
    stored c' (its tanh taken of the stored value: in float32, libm's float32 tanh)."""
    H = c.shape[0]
    i = _sigmoid(gi[j, n] + gh[j, n])
    f = _sigmoid(gi[H + j, n] + gh[H + j, n])
    g = math.tanh(gi[2 * H + j, n] + gh[2 * H + j, n])
    o = _sigmoid(gi[3 * H + j, n] + gh[3 * H + j, n])
    tape_t[n, j], tape_t[n, H + j], tape_t[n, 2 * H + j], tape_t[n, 3 * H + j] = i, f, g, o
    tape_t[n, 4 * H + j] = f * c[j, n] + i * g
    tape_t[n, 5 * H + j] = math.tanh(tape_t[n, 4 * H + j])
    c[j, n] = tape_t[n, 4 * H + j]
    out_t[n, j] = o * tape_t[n, 5 * H + j]


EXACT_SLACK = 1e-11


@helper
def _rounds_alike(v, slack):
    """Whether every value within ``slack`` of v rounds to the same float32 (False for NaN)."""
    return np.float32(v - slack) == np.float32(v + slack)


@helper
def _gru_cell_exact_float32(gi, gh, h, active, out_t, tape_t, values, exact):
    """``_cell``'s GRU for a float32 layer in the loops: the arithmetic pass over every lane of
    unit j, then libm for the lanes whose roundings it cannot vouch for. ``values`` (4, N)
    float64 and ``exact`` (N,) bool scratch."""
    H, N = h.shape
    for j in range(H):
        for n in range(N):
            a_r, a_z = gi[j, n] + gh[j, n], gi[H + j, n] + gh[H + j, n]
            reset, update = _sigmoid_arithmetic(a_r), _sigmoid_arithmetic(a_z)
            a_n = gi[2 * H + j, n] + reset * gh[2 * H + j, n]
            new = _tanh_arithmetic(a_n)
            value = (h[j, n] - new) * update + new
            slack_n = EXACT_SLACK * (1.0 + abs(gi[2 * H + j, n]) + abs(gh[2 * H + j, n]))
            slack_h = 2.0 * slack_n + EXACT_SLACK * (2.0 + abs(h[j, n]))
            exact[n] = ((max(abs(a_r), abs(a_z)) < 80.0) & (abs(a_n) < 9.5)
                        & _rounds_alike(reset, EXACT_SLACK * reset) & _rounds_alike(update, EXACT_SLACK * update)
                        & _rounds_alike(new, slack_n) & _rounds_alike(value, slack_h))
            values[0, n], values[1, n], values[2, n], values[3, n] = reset, update, new, value
        for n in range(N):
            if not active[n]:
                continue
            if exact[n]:
                tape_t[n, j], tape_t[n, H + j], tape_t[n, 2 * H + j] = values[0, n], values[1, n], values[2, n]
                tape_t[n, 3 * H + j] = gh[2 * H + j, n]
                out_t[n, j] = values[3, n]
            else:
                _gru_unit_libm(gi, gh, h, j, n, out_t, tape_t)
            h[j, n] = out_t[n, j]


@helper
def _lstm_cell_exact_float32(gi, gh, h, c, active, out_t, tape_t, values, exact):
    """``_cell``'s LSTM for a float32 layer in the loops, as ``_gru_cell_exact_float32``. tanh c'
    is taken of the stored c' as before (libm's float32 tanh: the stored value is a float32), so
    only the gates and c' come from the arithmetic; h' = o tanh c' is checked once tanh c' is
    known. ``values`` (5, N)."""
    H, N = h.shape
    for j in range(H):
        for n in range(N):
            a_i, a_f = gi[j, n] + gh[j, n], gi[H + j, n] + gh[H + j, n]
            a_g, a_o = gi[2 * H + j, n] + gh[2 * H + j, n], gi[3 * H + j, n] + gh[3 * H + j, n]
            i, f = _sigmoid_arithmetic(a_i), _sigmoid_arithmetic(a_f)
            g, o = _tanh_arithmetic(a_g), _sigmoid_arithmetic(a_o)
            cell = f * c[j, n] + i * g
            exact[n] = ((max(max(abs(a_i), abs(a_f)), abs(a_o)) < 80.0) & (abs(a_g) < 9.5)
                        & _rounds_alike(i, EXACT_SLACK * i) & _rounds_alike(f, EXACT_SLACK * f)
                        & _rounds_alike(g, EXACT_SLACK * abs(g)) & _rounds_alike(o, EXACT_SLACK * o)
                        & _rounds_alike(cell, 4.0 * EXACT_SLACK * (1.0 + abs(c[j, n]))))
            values[0, n], values[1, n], values[2, n], values[3, n], values[4, n] = i, f, g, o, cell
        for n in range(N):
            if not active[n]:
                continue
            if exact[n]:
                for k in range(5):
                    tape_t[n, k * H + j] = values[k, n]
                tape_t[n, 5 * H + j] = math.tanh(tape_t[n, 4 * H + j])
                value = values[3, n] * tape_t[n, 5 * H + j]
                if _rounds_alike(value, EXACT_SLACK * abs(value)):
                    out_t[n, j] = value
                else:
                    out_t[n, j] = _sigmoid(gi[3 * H + j, n] + gh[3 * H + j, n]) * tape_t[n, 5 * H + j]
                c[j, n] = tape_t[n, 4 * H + j]
            else:
                _lstm_unit_libm(gi, gh, c, j, n, out_t, tape_t)
            h[j, n] = out_t[n, j]


# ---------------------------------------------------------------------------------------
# The GRU's and LSTM's gates in float32 for wide layers, without libm
#
# At hidden 256 x 100 rows a GRU's forward pass calls libm's exp and tanh 1.5 million times a
# window, scalar: its cells took 24 ms a window against 10.5 ms for its matrix products. Wide
# float32 layers already sum their products in float32 (sgemm, as PyTorch), so their gates need
# float32's precision, not libm's last bit: here they come from arithmetic good to ~1e-13
# relative, in loops without a call (13 ms). Layers whose products take the loops (below
# BLAS_FROM_BATCHED: every default size) keep libm in their cells, and every number.
# ---------------------------------------------------------------------------------------


@helper
def _sigmoid_arithmetic(a):
    """1 / (1 + e^-a) within ~1e-13 relative, no libm call: u = e^|a| - 1 from ``_expm1_near_zero``
    at |a| / 256, squared eight times. |a| is clamped at 80: the
    sigmoid there is within 2e-35 of 0 or 1, nothing a float32 gate can tell apart."""
    u = _expm1_doubled(_expm1_near_zero(min(abs(a), 80.0) * 0.00390625), 8)
    return (1.0 + u) / (2.0 + u) if a >= 0 else 1.0 / (2.0 + u)


@helper
def _gated_cell_wide(kind, gi, gh, h, c, active, out_t, tape_t):
    """``_cell`` of the GRU or LSTM for a float32 layer whose products take BLAS: the same
    equations and the same stored values (gates, state and output rounded to float32 where
    stored, the state re-read from what was stored), the gates from the arithmetic above.

    Two passes: every lane's gates along the contiguous rows of gi and gh, into gi (gates) and
    gh (the GRU's new state in its first H rows, the LSTM's c', tanh c' and h' in its first 3H;
    the GRU's W_hn h + b_hn stays in gh's last H rows), loops with no call in them; then the
    active lanes' values transposed into out_t and tape_t (N, ...). (Blocking that transpose
    and the backward pass's by lanes was tried: slower here.)"""
    H, N = h.shape
    for j in range(H):
        if kind == GRU:
            for n in range(N):
                reset = np.float64(np.float32(_sigmoid_arithmetic(gi[j, n] + gh[j, n])))
                update = np.float64(np.float32(_sigmoid_arithmetic(gi[H + j, n] + gh[H + j, n])))
                new = np.float64(np.float32(_tanh_arithmetic(gi[2 * H + j, n] + reset * gh[2 * H + j, n])))
                gi[j, n], gi[H + j, n], gi[2 * H + j, n] = reset, update, new
                gh[j, n] = np.float64(np.float32((h[j, n] - new) * update + new))
                h[j, n] = gh[j, n] if active[n] else h[j, n]
        else:
            for n in range(N):
                i = np.float64(np.float32(_sigmoid_arithmetic(gi[j, n] + gh[j, n])))
                f = np.float64(np.float32(_sigmoid_arithmetic(gi[H + j, n] + gh[H + j, n])))
                g = np.float64(np.float32(_tanh_arithmetic(gi[2 * H + j, n] + gh[2 * H + j, n])))
                o = np.float64(np.float32(_sigmoid_arithmetic(gi[3 * H + j, n] + gh[3 * H + j, n])))
                cell = np.float64(np.float32(f * c[j, n] + i * g))
                tanh_cell = np.float64(np.float32(_tanh_arithmetic(cell)))
                gi[j, n], gi[H + j, n], gi[2 * H + j, n], gi[3 * H + j, n] = i, f, g, o
                gh[j, n], gh[H + j, n] = cell, tanh_cell
                gh[2 * H + j, n] = np.float64(np.float32(o * tanh_cell))
                h[j, n] = gh[2 * H + j, n] if active[n] else h[j, n]
                c[j, n] = cell if active[n] else c[j, n]
    first_out = 0 if kind == GRU else 2 * H  # the row of gh that holds h'
    for n in range(N):
        if not active[n]:
            continue
        for j in range(H):
            out_t[n, j] = gh[first_out + j, n]
        if kind == GRU:
            for j in range(3 * H):
                tape_t[n, j] = gi[j, n]
            for j in range(H):
                tape_t[n, 3 * H + j] = gh[2 * H + j, n]
        else:
            for j in range(4 * H):
                tape_t[n, j] = gi[j, n]
            for j in range(2 * H):
                tape_t[n, 4 * H + j] = gh[j, n]


# ---------------------------------------------------------------------------------------
# Lanes: every (replica, row) pair is one lane, and lanes are the innermost loop
#
#   lane n = r * B + b        state h (H, N), pre-activations (G, N)
#
# The weights come in one of three layouts, chosen by the number of lanes N:
#   ROWS (N < 8, the sine's replicas of one row): (R, G, K), each lane a plain matrix-vector
#     product, the contiguous K innermost;
#   LANES (up to 2^16 numbers per copy, the ball's batches of 100): (G, K, N), a copy of its
#     replica's weights for every lane, lanes innermost so the multiply-adds vectorise;
#   SHARED (larger, the windows' full batch: 1945 lanes x 80 gates x 20 inputs): (R, G, K),
#     each weight broadcast over its replica's contiguous lanes, which per-lane copies would
#     push out of the cache.
# All three sum every product in the same order, so the layout changes no number in the
# forward pass; weight gradients are summed per lane first in LANES (rows of a replica added
# at the end, in order), per replica directly in the others.
#   BLAS (wide layers: inputs or hidden units >= BLAS_FROM, or >= BLAS_FROM_BATCHED with two rows a
#     replica or more; ``takes_blas``): (R, G, K), each replica's products
#     one matrix product through BLAS (numba's np.dot) on the model's own weights, in their
#     dtype: sgemm for float32 models, as PyTorch's, dgemm for float64 ones (the gradient
#     tests); in the backward pass the weight gradients one product over every step at the end.
#     BLAS sums in its own order (blocked, vectorised), and a float32 model's products in
#     float32, so wide layers' numbers differ from the loops' in the last bits (float32's, as
#     PyTorch's own do); below BLAS_FROM_BATCHED (every size the texts use) the loops run and nothing changes.
# ---------------------------------------------------------------------------------------

ROWS, LANES, SHARED, BLAS = 0, 1, 2, 3
LANE_COPIES_UP_TO = 1 << 16  # numbers in one per-lane weight array (512 KiB)
BLAS_FROM = 48  # widest of inputs and hidden units from which BLAS's products beat the loops, one row a replica
# With two rows a replica or more, BLAS wins from 24 (a GRU step at hidden 24-40 and 2-100 rows:
# 1.1-2.9x the loops', docs/engine.md); it would from 8 too, but below 24 lie every width the
# texts use (8-20, experiment W's full batch among them), whose numbers the loops keep bit for bit.
BLAS_FROM_BATCHED = 24


@helper
def takes_blas(K, B):
    """Whether products of width K (the widest of inputs and hidden units) over B rows a replica
    go through BLAS (layout BLAS below)."""
    return K >= BLAS_FROM or (K >= BLAS_FROM_BATCHED and B >= 2)


@helper
def _layout(G, K, N, B):
    """The products' layout for G gate rows of width K over N lanes, B rows per replica. SHARED
    broadcasts a weight over its replica's rows, so it pays only when a replica has rows enough
    to vectorise (8); with fewer (the sine's 100 seeds of one window each) every lane keeps its
    own copy, however large: SHARED there is one scalar loop per replica, 5x slower at 100 seeds."""
    if takes_blas(K, B):
        return BLAS
    if N < 8:
        return ROWS
    return SHARED if G * K * N > LANE_COPIES_UP_TO and B >= 8 else LANES


@helper
def _weights(weight, B, layout):
    """(R, G, K) weights as the products take them: a pair (float64 copy, the model's own array).
    The loops read the copy: lane copies (G, K, R*B) in LANES, else (R, G, K). BLAS reads the
    model's array in its own dtype, so a float32 model's products are sgemm, as PyTorch's are
    (dgemm on float64 copies moved twice the bytes and ran at half the rate); its copy is empty."""
    R, G, K = weight.shape
    own = np.ascontiguousarray(weight)
    if layout == BLAS:
        return np.empty((0, 0, 0)), own
    if layout != LANES:
        return weight.astype(np.float64), own
    lanes = np.empty((G, K, R * B))
    for r in range(R):
        for g in range(G):
            for k in range(K):
                lanes[g, k, r * B : (r + 1) * B] = weight[r, g, k]
    return lanes, own


@helper
def _replica_columns(v, r, B, like):
    """Replica r's lanes of v (K, N), columns r*B .. (r+1)*B, as a contiguous (K, B) array in the
    dtype of ``like`` (the weights' own): what BLAS multiplies them with."""
    K = v.shape[0]
    columns = np.empty((K, B), like.dtype)
    for k in range(K):
        for b in range(B):
            columns[k, b] = v[k, r * B + b]
    return columns


@helper
def _bias(bias, B, layout):
    """(R, G) biases in float64: lane copies (G, R*B) in LANES, else (R, G)."""
    R, G = bias.shape
    if layout != LANES:
        return bias.astype(np.float64)
    lanes = np.empty((G, R * B))
    for r in range(R):
        for g in range(G):
            lanes[g, r * B : (r + 1) * B] = bias[r, g]
    return lanes


@helper
def _to_lanes(state, lanes):
    """(R, B, K) -> lanes (K, R*B), in float64."""
    R, B, K = state.shape
    for r in range(R):
        for b in range(B):
            for k in range(K):
                lanes[k, r * B + b] = state[r, b, k]


@helper
def _from_lanes(lanes, state):
    R, B, K = state.shape
    for r in range(R):
        for b in range(B):
            for k in range(K):
                state[r, b, k] = lanes[k, r * B + b]


@helper
def _active_at(t, lengths, active):
    """active[r * B + b] = t < lengths[b]: the lanes that have a step t (by row, not n % B:
    no integer division per lane and step)."""
    B = lengths.shape[0]
    for start in range(0, active.shape[0], B):
        for b in range(B):
            active[start + b] = t < lengths[b]


@helper
def _inputs_at(x, t, R, lanes):
    """x[:, :, t] (R|1, B, T, I) -> lanes (I, R*B): an input with a leading 1 feeds every replica."""
    B, I = x.shape[1], x.shape[3]
    for r in range(R):
        rx = 0 if x.shape[0] == 1 else r
        for b in range(B):
            for i in range(I):
                lanes[i, r * B + b] = x[rx, b, t, i]


@helper
def _project(weights, bias, v, out, layout):
    """out = W v + b for every lane: v (K, N) -> out (G, N); ``weights`` a pair of ``_weights``."""
    G, N = out.shape
    weight, own = weights
    if layout == BLAS:
        R = own.shape[0]
        B = N // R
        for r in range(R):
            product = np.dot(own[r], _replica_columns(v, r, B, own))  # (G, B), in the weights' dtype
            for g in range(G):
                for b in range(B):
                    out[g, r * B + b] = product[g, b] + bias[r, g]
        return
    if layout == LANES:
        K = weight.shape[1]
        for g in range(G):
            for n in range(N):
                out[g, n] = bias[g, n]
            for k in range(0, K - K % 4, 4):  # four products per pass over out, added in the same order
                for n in range(N):
                    out[g, n] = (((out[g, n] + weight[g, k, n] * v[k, n]) + weight[g, k + 1, n] * v[k + 1, n])
                                 + weight[g, k + 2, n] * v[k + 2, n]) + weight[g, k + 3, n] * v[k + 3, n]
            for k in range(K - K % 4, K):
                for n in range(N):
                    out[g, n] += weight[g, k, n] * v[k, n]
        return
    R, K = weight.shape[0], weight.shape[2]
    B = N // R
    if layout == ROWS:
        for n in range(N):
            w, b = weight[n // B], bias[n // B]
            for g in range(G):
                acc = b[g]
                for k in range(K):
                    acc += w[g, k] * v[k, n]
                out[g, n] = acc
        return
    for r in range(R):
        for g in range(G):
            for n in range(r * B, (r + 1) * B):
                out[g, n] = bias[r, g]
            for k in range(0, K - K % 4, 4):  # four products per pass over out, added in the same order
                w0, w1, w2, w3 = weight[r, g, k], weight[r, g, k + 1], weight[r, g, k + 2], weight[r, g, k + 3]
                for n in range(r * B, (r + 1) * B):
                    out[g, n] = (((out[g, n] + w0 * v[k, n]) + w1 * v[k + 1, n]) + w2 * v[k + 2, n]) + w3 * v[k + 3, n]
            for k in range(K - K % 4, K):
                w = weight[r, g, k]
                for n in range(r * B, (r + 1) * B):
                    out[g, n] += w * v[k, n]


@helper
def _project_back(weights, d, out, layout):
    """out += W^T d for every lane: d (G, N) -> out (K, N); ``weights`` a pair of ``_weights``."""
    G, N = d.shape
    K = out.shape[0]
    weight, own = weights
    if layout == BLAS:
        R = own.shape[0]
        B = N // R
        for r in range(R):
            product = np.dot(own[r].T, _replica_columns(d, r, B, own))  # (K, B), in the weights' dtype
            for k in range(K):
                for b in range(B):
                    out[k, r * B + b] += product[k, b]
        return
    if layout == LANES:
        for g in range(0, G - G % 4, 4):  # four products per pass over out, added in the same order
            for k in range(K):
                for n in range(N):
                    out[k, n] = (((out[k, n] + weight[g, k, n] * d[g, n]) + weight[g + 1, k, n] * d[g + 1, n])
                                 + weight[g + 2, k, n] * d[g + 2, n]) + weight[g + 3, k, n] * d[g + 3, n]
        for g in range(G - G % 4, G):
            for k in range(K):
                for n in range(N):
                    out[k, n] += weight[g, k, n] * d[g, n]
        return
    R = weight.shape[0]
    B = N // R
    if layout == ROWS:
        for n in range(N):
            w = weight[n // B]
            for g in range(G):
                for k in range(K):
                    out[k, n] += w[g, k] * d[g, n]
        return
    for r in range(R):
        for g in range(0, G - G % 4, 4):  # four products per pass over out, added in the same order
            for k in range(K):
                w0, w1, w2, w3 = weight[r, g, k], weight[r, g + 1, k], weight[r, g + 2, k], weight[r, g + 3, k]
                for n in range(r * B, (r + 1) * B):
                    out[k, n] = (((out[k, n] + w0 * d[g, n]) + w1 * d[g + 1, n]) + w2 * d[g + 2, n]) + w3 * d[g + 3, n]
        for g in range(G - G % 4, G):
            for k in range(K):
                w = weight[r, g, k]
                for n in range(r * B, (r + 1) * B):
                    out[k, n] += w * d[g, n]


@helper
def _dot(a, b, start, stop):
    """sum a[i] b[i] over [start, stop), four running sums so the loop is not one long chain."""
    s0 = s1 = s2 = s3 = 0.0
    i = start
    while i + 4 <= stop:
        s0 += a[i] * b[i]
        s1 += a[i + 1] * b[i + 1]
        s2 += a[i + 2] * b[i + 2]
        s3 += a[i + 3] * b[i + 3]
        i += 4
    while i < stop:
        s0 += a[i] * b[i]
        i += 1
    return (s0 + s1) + (s2 + s3)


@helper
def _accumulator(G, K, R, N, layout):
    """Zeroed weight-gradient sums: per lane (G, K, N) in LANES, per replica (R, G, K) else."""
    return np.zeros((G, K, N)) if layout == LANES else np.zeros((R, G, K))


@helper
def _bias_accumulator(G, R, N, layout):
    return np.zeros((G, N)) if layout == LANES else np.zeros((R, G))


@helper
def _accumulate(acc, acc_bias, d, v, layout):
    """Weight gradients of one step: acc += d v^T and acc_bias += d."""
    G, N = d.shape
    K = v.shape[0]
    if layout == BLAS:
        R = acc.shape[0]
        B = N // R
        for r in range(R):
            d_r = np.ascontiguousarray(d[:, r * B : (r + 1) * B])                         # (G, B)
            acc[r] += np.dot(d_r, np.ascontiguousarray(v[:, r * B : (r + 1) * B].T))       # (G, K)
            for g in range(G):
                for b in range(B):
                    acc_bias[r, g] += d_r[g, b]
        return
    if layout == LANES:
        for g in range(G):
            for n in range(N):
                acc_bias[g, n] += d[g, n]
            for k in range(K):
                for n in range(N):
                    acc[g, k, n] += d[g, n] * v[k, n]
        return
    R = acc.shape[0]
    B = N // R
    if layout == ROWS:
        for n in range(N):
            r = n // B
            for g in range(G):
                acc_bias[r, g] += d[g, n]
                for k in range(K):
                    acc[r, g, k] += d[g, n] * v[k, n]
        return
    if K >= 4:
        _accumulate_shared(acc, acc_bias, d, v)
        return
    ones = np.ones(N)
    for r in range(R):
        for g in range(G):
            acc_bias[r, g] += _dot(d[g], ones, r * B, (r + 1) * B)
            for k in range(K):
                acc[r, g, k] += _dot(d[g], v[k], r * B, (r + 1) * B)


@helper
def _accumulate_shared(acc, acc_bias, d, v):
    """``_accumulate`` in SHARED with every weight's ``_dot`` at once: the same four running sums
    per weight (lane i of a replica's lanes into sum i % 4 of its block of four, the rest into
    the first), the same products in the same order, so the same numbers; with v transposed
    the products of one lane for every k are contiguous, and that loop vectorises (a ``_dot`` is
    four dependent chains of scalar adds). The bias's sums are ``_dot``'s with ones: d itself."""
    G, N = d.shape
    K, R = v.shape[0], acc.shape[0]
    B = N // R
    v_t = np.empty((N, K))
    for k in range(K):
        for n in range(N):
            v_t[n, k] = v[k, n]
    sums, bias_sums = np.empty((4, K)), np.empty(4)
    for r in range(R):
        start, stop = r * B, (r + 1) * B
        blocks_end = start + (stop - start) // 4 * 4
        for g in range(G):
            sums[:] = 0.0
            bias_sums[:] = 0.0
            for i in range(start, blocks_end, 4):
                for j in range(4):
                    dg = d[g, i + j]
                    bias_sums[j] += dg
                    for k in range(K):
                        sums[j, k] += dg * v_t[i + j, k]
            for i in range(blocks_end, stop):
                dg = d[g, i]
                bias_sums[0] += dg
                for k in range(K):
                    sums[0, k] += dg * v_t[i, k]
            acc_bias[r, g] += (bias_sums[0] + bias_sums[1]) + (bias_sums[2] + bias_sums[3])
            for k in range(K):
                acc[r, g, k] += (sums[0, k] + sums[1, k]) + (sums[2, k] + sums[3, k])


@helper
def _store_grads(acc, R, out, layout):
    """Gradients into ``out`` (R, ...): as accumulated per replica, or in LANES each replica's
    lanes summed in row order."""
    if layout != LANES:
        out[:] = acc
        return
    flat_acc = acc.reshape(-1, acc.shape[-1])
    flat_out = out.reshape(R, -1)
    B = acc.shape[-1] // R
    for r in range(R):
        for m in range(flat_acc.shape[0]):
            total = 0.0
            for b in range(B):
                total += flat_acc[m, r * B + b]
            flat_out[r, m] = total


# ---------------------------------------------------------------------------------------
# Forward: the cells' equations once, used by the sequence loop and by the rollout
# ---------------------------------------------------------------------------------------

RNN, GRU, LSTM = 0, 1, 2  # the ``kind`` argument of the recurrent kernels


@helper
def tape_width(kind, H):
    """Columns of the tape per step: rnn none, gru [r, z, n, W_hn h + b_hn], lstm [i, f, g, o, c, tanh c]."""
    return (0 if kind == RNN else 4 if kind == GRU else 6) * H


@helper
def _cell(kind, gi, gh, h, c, active, out_t, tape_t, layout):
    """One step of every active lane, from gi = W_ih x + b_ih and gh = W_hh h + b_hh (G, N).

    rnn : h' = tanh(gi + gh)
    gru : r, z = sigma(gi_rz + gh_rz), n = tanh(gi_n + r * gh_n), h' = (h - n) z + n  (PyTorch's)
    lstm: i, f, o = sigma(.), g = tanh(.), c' = f c + i g, h' = o tanh(c')

    Writes out_t (N, H) and tape_t (N, K) in the model's dtype, then re-reads h (and c) from
    what was stored, so the next step and the backward pass see exactly the stored state.
    """
    H, N = h.shape
    if kind == RNN and out_t.itemsize == 4:  # float32: libm's tanh only where rounding is close
        _rnn_cell_float32(gi, gh, h, active, out_t)
        return
    if kind != RNN and out_t.itemsize == 4 and layout == BLAS:  # products in float32 already: gates without libm
        _gated_cell_wide(kind, gi, gh, h, c, active, out_t, tape_t)
        return
    if kind != RNN and out_t.itemsize == 4 and N >= 8:  # float32: the arithmetic where it rounds as libm
        exact = np.empty(N, np.bool_)
        if kind == GRU:
            _gru_cell_exact_float32(gi, gh, h, active, out_t, tape_t, np.empty((4, N)), exact)
        else:
            _lstm_cell_exact_float32(gi, gh, h, c, active, out_t, tape_t, np.empty((5, N)), exact)
        return
    for j in range(H):
        for n in range(N):
            if not active[n]:
                continue
            if kind == RNN:
                out_t[n, j] = math.tanh(gi[j, n] + gh[j, n])
            elif kind == GRU:
                _gru_unit_libm(gi, gh, h, j, n, out_t, tape_t)
            else:
                _lstm_unit_libm(gi, gh, c, j, n, out_t, tape_t)
            h[j, n] = out_t[n, j]


# ---------------------------------------------------------------------------------------
# The BLAS layout's sequence passes, in rows
#
# In BLAS the products are whole matrices, so nothing needs the lanes' (K, N) order: a
# replica's rows stay rows (B, K), as the arrays come (out (R, B, T, H), tape (R, B, T, K)),
# and every product has PyTorch's shapes: h W_hh^T per step, the input projections of every
# step in one product before the loop, and after the loop dL/dx and the weight gradients of
# every step in one product each. A lane's cell reads and writes its gates, tape and output
# contiguously. (The lanes' version moved every value between (K, N) and the tape's rows:
# at hidden 256 x 100 rows, a third of the forward pass and half of the backward pass.)
# The same equations as ``_cell`` and ``_cell_backward``. A float32 GRU's or LSTM's forward cells
# compute in float32, as PyTorch's do (its products are sgemm's already), with vectorised gates
# (``_exp_float32``); the RNN's (tanh as ``_rnn_cell_float32``) and a float64 model's (libm) as
# the loops'. The backward cells compute in the model's dtype, as PyTorch's do, and carry dL/dh
# and dL/dc in it. Rollouts and scheduled sampling keep the lanes (``_gated_cell_wide``): their
# numbers differ from these in float32's last bits.
# ---------------------------------------------------------------------------------------


@helper
def _cell_row(kind, gi, gh, b_ih, b_hh, h, c, out, tape, work):
    """One lane's step: gi = W_ih x, gh = W_hh h (G,), products without their biases; h (and
    c) (H,) the state as stored, moved in place; out (H,) and tape (K,) written; ``work`` (3, G)
    float32 scratch. A float32 GRU or LSTM computes in float32 over whole rows of units (below),
    the RNN and a float64 model as ``_cell``."""
    if out.itemsize == 4 and kind == GRU:
        _gru_row_float32(gi, gh, b_ih, b_hh, h, out, tape, work)
        return
    if out.itemsize == 4 and kind == LSTM:
        _lstm_row_float32(gi, gh, b_ih, b_hh, h, c, out, tape, work)
        return
    H = h.shape[0]
    for j in range(H):
        if kind == RNN:
            a = (gi[j] + b_ih[j]) + (gh[j] + b_hh[j])
            out[j] = _tanh_float32(a, _tanh_arithmetic(a)) if out.itemsize == 4 else math.tanh(a)
        elif kind == GRU:
            reset = _sigmoid((gi[j] + b_ih[j]) + (gh[j] + b_hh[j]))
            update = _sigmoid((gi[H + j] + b_ih[H + j]) + (gh[H + j] + b_hh[H + j]))
            hidden_n = gh[2 * H + j] + b_hh[2 * H + j]
            new = math.tanh((gi[2 * H + j] + b_ih[2 * H + j]) + reset * hidden_n)
            tape[j], tape[H + j], tape[2 * H + j], tape[3 * H + j] = reset, update, new, hidden_n
            out[j] = (h[j] - new) * update + new
        else:
            i = _sigmoid((gi[j] + b_ih[j]) + (gh[j] + b_hh[j]))
            f = _sigmoid((gi[H + j] + b_ih[H + j]) + (gh[H + j] + b_hh[H + j]))
            g = math.tanh((gi[2 * H + j] + b_ih[2 * H + j]) + (gh[2 * H + j] + b_hh[2 * H + j]))
            o = _sigmoid((gi[3 * H + j] + b_ih[3 * H + j]) + (gh[3 * H + j] + b_hh[3 * H + j]))
            tape[j], tape[H + j], tape[2 * H + j], tape[3 * H + j] = i, f, g, o
            tape[4 * H + j] = f * c[j] + i * g
            tape[5 * H + j] = math.tanh(tape[4 * H + j])
            c[j] = tape[4 * H + j]
            out[j] = o * tape[5 * H + j]
        h[j] = out[j]


# float32 e^x, sigmoid and tanh over arrays, as Cephes' expf and tanhf: e^x = 2^n e^r with
# n = round(x log2 e), r = x - n ln 2 in two parts, e^r from a degree-7 polynomial, and 2^n
# written into a float32's exponent bits (the n + 127 of 1.5 * 2^23 + n's low bits). Eight
# values a vector instruction, against 4.4 ns a value for the float64 arithmetic above: at
# hidden 256 x 100 rows, the GRU's forward cells took ~11 ms a window. Within 2.4 ulp of the
# true sigmoid and tanh (float32's, as PyTorch's own vectorised ones).
_F32 = np.float32
_LOG2E, _LN2_HI, _LN2_LO = _F32(1.4426950408889634), _F32(0.693359375), _F32(-2.12194440e-4)
_ROUNDING, _EXPONENT_BIAS = _F32(12582912.0), np.int32(0x4B400000 - 127)  # 1.5 * 2^23
_EXP_LOW, _EXP_HIGH, _TANH_FROM = _F32(-87.0), _F32(88.0), _F32(10.0)
_ONE, _TWO, _SMALL_TANH = _F32(1.0), _F32(2.0), _F32(0.625)
_E0, _E1, _E2 = _F32(1.9875691500e-4), _F32(1.3981999507e-3), _F32(8.3334519073e-3)
_E3, _E4, _E5 = _F32(4.1665795894e-2), _F32(1.6666665459e-1), _F32(5.0000001201e-1)
_T0, _T1, _T2 = _F32(-5.70498872745e-3), _F32(2.06390887954e-2), _F32(-5.37397155531e-2)
_T3, _T4 = _F32(1.33314422036e-1), _F32(-3.33332819422e-1)


@helper
def _exp_float32(x, out, bits):
    """out = e^x for float32 arrays, ``bits`` float32 scratch of the same length. Three loops,
    each of which vectorises (the exponent's bits through an int32 view of ``bits``)."""
    as_int = bits.view(np.int32)
    for i in range(x.shape[0]):
        v = min(max(x[i], _EXP_LOW), _EXP_HIGH)
        shifted = v * _LOG2E + _ROUNDING
        n = shifted - _ROUNDING
        r = (v - n * _LN2_HI) - n * _LN2_LO
        p = ((((_E0 * r + _E1) * r + _E2) * r + _E3) * r + _E4) * r + _E5
        out[i] = (p * r) * r + r + _ONE
        bits[i] = shifted
    for i in range(x.shape[0]):
        as_int[i] = (as_int[i] - _EXPONENT_BIAS) << np.int32(23)
    for i in range(x.shape[0]):
        out[i] *= bits[i]


@helper
def _sigmoid_float32(a, out, work):
    """out = 1 / (1 + e^-a) for float32 arrays; ``work`` (2, n) float32 scratch."""
    n = a.shape[0]
    for i in range(n):
        work[0, i] = -a[i]
    _exp_float32(work[0, :n], out, work[1, :n])  # into out: an exp in place (the same array twice) runs unvectorised
    for i in range(n):
        out[i] = _ONE / (_ONE + out[i])


@helper
def _tanh_into_float32(a, out, work):
    """out = tanh(a) for float32 arrays: near 0 Cephes' odd polynomial, beyond 0.625
    1 - 2 / (e^2|a| + 1) (|a| clamped at 10, where tanh is 1 in float32); ``work`` (2, n)."""
    n = a.shape[0]
    for i in range(n):
        work[0, i] = _TWO * min(abs(a[i]), _TANH_FROM)
    _exp_float32(work[0, :n], out, work[1, :n])
    for i in range(n):
        v = a[i]
        z = v * v
        small = ((((_T0 * z + _T1) * z + _T2) * z + _T3) * z + _T4) * z * v + v
        large = _ONE - _TWO / (out[i] + _ONE)
        out[i] = small if abs(v) < _SMALL_TANH else (large if v >= 0 else -large)


@helper
def _gru_row_float32(gi, gh, b_ih, b_hh, h, out, tape, work):
    """``_cell_row`` of a float32 GRU, in float32 as PyTorch's: pre-activations, gates and state
    rounded at every operation, the gates as ``_sigmoid_float32``/``_tanh_into_float32``.
    ``work`` (3, G) float32 scratch; tape [r, z, n, W_hn h + b_hn]."""
    H = h.shape[0]
    a = work[2]
    for j in range(2 * H):
        a[j] = (gi[j] + _F32(b_ih[j])) + (gh[j] + _F32(b_hh[j]))
    _sigmoid_float32(a[: 2 * H], tape[: 2 * H], work[:2])
    for j in range(H):
        hidden_n = gh[2 * H + j] + _F32(b_hh[2 * H + j])
        tape[3 * H + j] = hidden_n
        a[j] = (gi[2 * H + j] + _F32(b_ih[2 * H + j])) + tape[j] * hidden_n
    _tanh_into_float32(a[:H], tape[2 * H : 3 * H], work[:2])
    for j in range(H):
        new = tape[2 * H + j]
        out[j] = (h[j] - new) * tape[H + j] + new
        h[j] = out[j]


@helper
def _lstm_row_float32(gi, gh, b_ih, b_hh, h, c, out, tape, work):
    """``_cell_row`` of a float32 LSTM, in float32 as ``_gru_row_float32``; ``work`` (3, G);
    tape [i, f, g, o, c', tanh c']."""
    H = h.shape[0]
    a = work[2]
    for j in range(4 * H):
        a[j] = (gi[j] + _F32(b_ih[j])) + (gh[j] + _F32(b_hh[j]))
    _sigmoid_float32(a[: 2 * H], tape[: 2 * H], work[:2])
    _tanh_into_float32(a[2 * H : 3 * H], tape[2 * H : 3 * H], work[:2])
    _sigmoid_float32(a[3 * H : 4 * H], tape[3 * H : 4 * H], work[:2])
    for j in range(H):
        tape[4 * H + j] = tape[H + j] * c[j] + tape[j] * tape[2 * H + j]
        c[j] = tape[4 * H + j]
    _tanh_into_float32(c, tape[5 * H : 6 * H], work[:2])
    for j in range(H):
        out[j] = tape[3 * H + j] * tape[5 * H + j]
        h[j] = out[j]


@helper
def _replica_rows(x, r):
    """Replica r's inputs x (R|1, B, T, I) as rows (B*T, I), row b*T + t (a leading 1: every replica's)."""
    return np.ascontiguousarray(x[0 if x.shape[0] == 1 else r]).reshape(-1, x.shape[3])


@helper
def _scaled(v, w, out):
    """out = v * w, rounded as stored."""
    for g in range(w.shape[0]):
        out[g] = v * w[g]


@helper
def _sequence_forward_rows(kind, x, lengths, state0, weights, out, tape, state_n):
    """``sequence_forward`` in the BLAS layout, a replica at a time in rows."""
    (h0, c0), (h_n, c_n) = state0, state_n
    weight_ih, weight_hh, bias_ih, bias_hh = weights
    R, B, T, I, G = out.shape[0], x.shape[1], x.shape[2], x.shape[3], weight_hh.shape[1]
    for r in range(R):
        for b in range(B):  # zero past each row's end; the cells write every value before it
            out[r, b, min(lengths[b], T) :] = 0
            tape[r, b, min(lengths[b], T) :] = 0
        w_ih_t = np.ascontiguousarray(weight_ih[r].T)                                   # (I, G)
        w_hh_t = np.ascontiguousarray(weight_hh[r].T)                                   # (H, G)
        b_ih, b_hh = bias_ih[r].astype(np.float64), bias_hh[r].astype(np.float64)
        # one input: its projection is one product a gate, x * W_ih (sgemm's own number), taken
        # row by row instead of through a (B*T, G) array written and read back
        gi = np.empty((1 if I == 1 else B * T, G), out.dtype)                          # row b*T + t
        if I > 1:
            np.dot(_replica_rows(x, r), w_ih_t, gi)
        h, c = h0[r].copy(), c0[r].copy()                                               # the state as stored
        work, gh = np.empty((3, G), np.float32), np.empty((B, G), out.dtype)
        for t in range(min(T, lengths.max())):
            np.dot(h, w_hh_t, gh)                                                       # (B, G)
            for b in range(B):
                if t < lengths[b]:
                    if I == 1:
                        _scaled(x[0 if x.shape[0] == 1 else r, b, t, 0], w_ih_t[0], gi[0])
                    _cell_row(kind, gi[0 if I == 1 else b * T + t], gh[b], b_ih, b_hh, h[b], c[b], out[r, b, t],
                              tape[r, b, t], work)
        h_n[r] = h
        c_n[r] = c


@helper
def _cell_backward_row(kind, tape, out, h_prev, c_prev, dh, d_out, dc, d_gi, d_gh, direct, one):
    """``_cell_backward`` of one active lane, in the model's dtype (``one`` its 1), as PyTorch's
    backward computes in float32: from dL/dh_t = dh + d_out (H,) to the pre-activations'
    gradients d_gi, d_gh (G,) and ``direct`` (H,); the LSTM's dc (H,) moves from dL/dc_t to
    dL/dc_{t-1} in place. Short loops over a few gate blocks each: a loop touching every array
    at once needs more runtime alias checks than LLVM will emit, and runs scalar (at hidden 256,
    a GRU's 2000 rows took 4.3-5.2 ms this way, 2.7-2.8 ms as below)."""
    H = dh.shape[0]
    if kind == RNN:
        for j in range(H):
            value = out[j]
            d_gi[j] = d_gh[j] = (dh[j] + d_out[j]) * (one - value * value)
        direct[:] = 0
    elif kind == GRU:
        reset, update, new, hidden_n = tape[:H], tape[H : 2 * H], tape[2 * H : 3 * H], tape[3 * H : 4 * H]
        d_a_r, d_a_z, d_a_n = d_gi[:H], d_gi[H : 2 * H], d_gi[2 * H :]
        for j in range(H):
            d = dh[j] + d_out[j]
            direct[j] = d
            d_a_z[j] = d * (h_prev[j] - new[j]) * update[j] * (one - update[j])
        for j in range(H):
            d_a_n[j] = direct[j] * (one - update[j]) * (one - new[j] * new[j])
            direct[j] = direct[j] * update[j]
        for j in range(H):
            d_a_r[j] = d_a_n[j] * hidden_n[j] * reset[j] * (one - reset[j])
        d_gh[: 2 * H] = d_gi[: 2 * H]
        d_gh_n = d_gh[2 * H :]
        for j in range(H):
            d_gh_n[j] = d_a_n[j] * reset[j]
    else:
        i, f, g, o = tape[:H], tape[H : 2 * H], tape[2 * H : 3 * H], tape[3 * H : 4 * H]
        tanh_c = tape[5 * H : 6 * H]
        d_i, d_f, d_g, d_o = d_gi[:H], d_gi[H : 2 * H], d_gi[2 * H : 3 * H], d_gi[3 * H :]
        for j in range(H):  # dc becomes dL/dc_t with this step's output
            d = dh[j] + d_out[j]
            d_o[j] = d * tanh_c[j] * o[j] * (one - o[j])
            dc[j] = dc[j] + d * o[j] * (one - tanh_c[j] * tanh_c[j])
        for j in range(H):
            d_i[j] = dc[j] * g[j] * i[j] * (one - i[j])
            d_g[j] = dc[j] * i[j] * (one - g[j] * g[j])
        for j in range(H):
            d_f[j] = dc[j] * c_prev[j] * f[j] * (one - f[j])
            dc[j] = dc[j] * f[j]
        d_gh[:] = d_gi
        direct[:] = 0


@helper
def _column_sums(m, out):
    """out[g] = the sum of m[:, g] in float64."""
    total = np.zeros(m.shape[1])
    for row in range(m.shape[0]):
        for g in range(m.shape[1]):
            total[g] += np.float64(m[row, g])
    out[:] = total


@helper
def _states_read_by_step(r, B, steps, s0, states, upto):
    """The state each step read, step-major (row t*B + b): replica r's s0[r, b] at step 0,
    then states[r, b, t - 1, :upto] (its outputs, or the LSTM's cells from its tape)."""
    read = np.empty((steps * B, upto), states.dtype)
    for t in range(steps):
        for b in range(B):
            if t == 0:
                read[b] = s0[r, b]
            else:
                read[t * B + b] = states[r, b, t - 1, :upto]
    return read


@helper
def _single_input_step(d_gi, x_t, w_ih, t, lengths, d_x_t, acc_w, acc_b):
    """A single input's gradients at step t from d_gi (B, G): dL/dx_t = d_gi W_ih (B,) for the rows
    with a step t, and their d_gi x_t and d_gi added into acc_w and acc_b (G,) in float64."""
    products = np.dot(d_gi, w_ih)                                                             # (B, 1)
    for b in range(d_gi.shape[0]):
        if t < lengths[b]:
            d_x_t[b] = products[b, 0]
            v = np.float64(x_t[b])
            for g in range(d_gi.shape[1]):
                acc_w[g] += np.float64(d_gi[b, g]) * v
                acc_b[g] += np.float64(d_gi[b, g])


@helper
def _sequence_backward_rows(kind, x, lengths, state0, weights, out, tape, d_out, d_state_n, d_x, d_state0, d_weights):
    """``sequence_backward`` in the BLAS layout, a replica at a time in rows. The recurrent
    gradients d_gh and the states they multiply run step-major (row t*B + b), so each step's
    product reads its rows in place; d_gi runs as the inputs do (row b*T + t)."""
    (h0, c0), (d_h_n, d_c_n), (d_h0, d_c0) = state0, d_state_n, d_state0
    weight_ih, weight_hh, _, _ = weights
    d_weight_ih, d_weight_hh, d_bias_ih, d_bias_hh = d_weights
    R, B, T, I = out.shape[0], x.shape[1], x.shape[2], x.shape[3]
    H, G = h0.shape[2], weight_hh.shape[1]
    steps = min(T, lengths.max())
    one = np.ones(1, out.dtype)[0]
    for r in range(R):
        w_ih, w_hh = np.ascontiguousarray(weight_ih[r]), np.ascontiguousarray(weight_hh[r])   # (G, I), (G, H)
        # one input: d_gi a step at a time (B, G), its products with x and W_ih taken per step
        # (see _single_input_step) instead of through a (B*T, G) array written and read back
        d_gi, d_gh = np.empty((B if I == 1 else B * T, G), out.dtype), np.empty((steps * B, G), out.dtype)
        acc_w, acc_b = np.zeros(G), np.zeros(G)
        if I == 1:
            d_x[r] = 0
        else:
            for b in range(B):  # zero where no step is computed; the cells write every other row
                d_gi[b * T + min(lengths[b], T) : (b + 1) * T] = 0
        h_prev = _states_read_by_step(r, B, steps, h0, out, H)
        c_prev = _states_read_by_step(r, B, steps, c0, tape[:, :, :, 4 * H :], H if kind == LSTM else 0)
        dh, dh_next, direct = d_h_n[r].copy(), np.empty((B, H), out.dtype), np.empty((B, H), out.dtype)
        dc = d_c_n[r].copy()
        for t in range(steps - 1, -1, -1):
            d_gh_t = d_gh[t * B : (t + 1) * B]
            for b in range(B):
                if t >= lengths[b]:  # no step t in this row: dL/dh passes on, nothing else
                    direct[b] = dh[b]
                    d_gh_t[b] = 0
                    continue
                _cell_backward_row(kind, tape[r, b, t], out[r, b, t], h_prev[t * B + b], c_prev[t * B + b], dh[b],
                                   d_out[r, b, t], dc[b], d_gi[b if I == 1 else b * T + t], d_gh_t[b], direct[b], one)
            if I == 1:
                _single_input_step(d_gi, x[0 if x.shape[0] == 1 else r, :, t, 0], w_ih, t, lengths, d_x[r, :, t, 0],
                                   acc_w, acc_b)
            np.dot(d_gh_t, w_hh, dh_next)                                                     # (B, H)
            dh_next += direct
            dh, dh_next = dh_next, dh
        d_h0[r] = dh
        if kind == LSTM:
            d_c0[r] = dc
        if I == 1:
            d_weight_ih[r, :, 0] = acc_w
            d_bias_ih[r] = acc_b
        else:
            d_x[r] = np.dot(d_gi, w_ih).reshape(B, T, I)                                      # zero past a row's end
            d_weight_ih[r] = np.dot(d_gi.T, _replica_rows(x, r))
            _column_sums(d_gi, d_bias_ih[r])
        d_weight_hh[r] = np.dot(d_gh.T, h_prev)
        _column_sums(d_gh, d_bias_hh[r])


@compiled
def sequence_forward(kind, x, lengths, state0, weights, out, tape, state_n):
    """One layer of every replica over a padded sequence: out, tape, and the final state.
    ``state0``/``state_n`` are states (h, c), ``weights`` the layer's weights (tuples, see the top)."""
    (h0, c0), (h_n, c_n) = state0, state_n
    weight_ih, weight_hh, bias_ih, bias_hh = weights
    R, B, T, I = out.shape[0], x.shape[1], x.shape[2], x.shape[3]
    H, G, N = h0.shape[2], weight_hh.shape[1], out.shape[0] * x.shape[1]
    layout = _layout(G, max(I, H), N, B)
    if layout == BLAS:
        _sequence_forward_rows(kind, x, lengths, state0, weights, out, tape, state_n)
        return
    w_ih, w_hh = _weights(weight_ih, B, layout), _weights(weight_hh, B, layout)
    b_ih, b_hh = _bias(bias_ih, B, layout), _bias(bias_hh, B, layout)
    h, c, xt = np.empty((H, N)), np.zeros((H, N)), np.empty((I, N))
    gi, gh = np.empty((G, N)), np.empty((G, N))
    _to_lanes(h0, h)
    if kind == LSTM:
        _to_lanes(c0, c)
    active = np.empty(N, np.bool_)
    out[:] = 0
    tape[:] = 0
    out_lanes, tape_lanes = out.reshape(N, T, H), tape.reshape(N, T, tape.shape[3])
    for t in range(min(T, lengths.max())):  # steps past every row's end stay zero
        _active_at(t, lengths, active)
        _inputs_at(x, t, R, xt)
        _project(w_ih, b_ih, xt, gi, layout)
        _project(w_hh, b_hh, h, gh, layout)
        _cell(kind, gi, gh, h, c, active, out_lanes[:, t], tape_lanes[:, t], layout)
    _from_lanes(h, h_n)
    if kind == LSTM:
        _from_lanes(c, c_n)


@helper
def _stack_in_layout(weight_ih, weight_hh, bias_ih, bias_hh, head_weight, head_bias, B, layout):
    """Every layer's weights and biases (lists over the layers) and the head's, in ``layout``."""
    L = len(weight_hh)
    w_ih = [_weights(weight_ih[layer], B, layout) for layer in range(L)]
    w_hh = [_weights(weight_hh[layer], B, layout) for layer in range(L)]
    b_ih = [_bias(bias_ih[layer], B, layout) for layer in range(L)]
    b_hh = [_bias(bias_hh[layer], B, layout) for layer in range(L)]
    return w_ih, w_hh, b_ih, b_hh, _weights(head_weight, B, layout), _bias(head_bias, B, layout)


@helper
def _state_in_lanes(kind, h, c, N):
    """(L, R, B, H) h and c -> (L, H, N) lanes; c stays zero without a cell state."""
    L, H = h.shape[0], h.shape[3]
    hs, cs = np.empty((L, H, N)), np.zeros((L, H, N))
    for layer in range(L):
        _to_lanes(h[layer], hs[layer])
        if kind == LSTM:
            _to_lanes(c[layer], cs[layer])
    return hs, cs


@helper
def _stack_step(kind, xt, w_ih, w_hh, b_ih, b_hh, w_head, b_head, hs, cs, gi, gh, active, out_t, tape_t, y, layout):
    """One step of the stack from input lanes xt: every layer moves its state in hs/cs (the last
    layer's tape in tape_t), then the head writes the prediction into y (O, N)."""
    L = hs.shape[0]
    for layer in range(L):
        _project(w_ih[layer], b_ih[layer], xt if layer == 0 else hs[layer - 1], gi, layout)
        _project(w_hh[layer], b_hh[layer], hs[layer], gh, layout)
        _cell(kind, gi, gh, hs[layer], cs[layer], active, out_t, tape_t, layout)
    _project(w_head, b_head, hs[L - 1], y, layout)


@compiled
def rollout(kind, x0, state, params, preds, tape):
    """Feed each prediction back as the next input, through every layer and the Linear head.

    x0 (R, B, I) is the first input; ``state`` (h, c (L, R, B, H)) the state to start from,
    updated in place; ``params`` the stack's (layers, head) (each layer weight a tuple, one array per layer);
    preds (R, B, steps, O) and the last layer's tape (R, B, steps, K) are written. Same
    arithmetic as ``sequence_forward``.
    """
    h, c = state
    (weight_ih, weight_hh, bias_ih, bias_hh), (head_weight, head_bias) = params
    R, B, steps, O = preds.shape
    L, H, N = h.shape[0], h.shape[3], R * B
    G = weight_hh[0].shape[1]
    layout = _layout(G, max(x0.shape[2], H), N, B)
    w_ih, w_hh, b_ih, b_hh, w_head, b_head = _stack_in_layout(weight_ih, weight_hh, bias_ih, bias_hh, head_weight,
                                                              head_bias, B, layout)
    hs, cs = _state_in_lanes(kind, h, c, N)
    xt, y = np.empty((x0.shape[2], N)), np.empty((O, N))
    _to_lanes(x0, xt)
    gi, gh = np.empty((G, N)), np.empty((G, N))
    active = np.ones(N, np.bool_)
    out_t, tape_t = np.empty((N, H), preds.dtype), np.empty((N, tape.shape[3]), tape.dtype)
    pred_lanes, tape_lanes = preds.reshape(N, steps, O), tape.reshape(N, steps, tape.shape[3])
    for t in range(steps):
        _stack_step(kind, xt, w_ih, w_hh, b_ih, b_hh, w_head, b_head, hs, cs, gi, gh, active, out_t, tape_t, y, layout)
        tape_lanes[:, t] = tape_t
        for o in range(O):
            for n in range(N):
                pred_lanes[n, t, o] = y[o, n]
                xt[o, n] = pred_lanes[n, t, o]  # the prediction, as stored, is the next input
    for layer in range(L):
        _from_lanes(hs[layer], h[layer])
        if kind == LSTM:
            _from_lanes(cs[layer], c[layer])


@compiled
def sampled_inputs(kind, x, feed, state0, params, inputs, preds):
    """Scheduled sampling's inputs (Bengio et al. 2015): one forward pass over a window in which
    step t > 0 reads the model's own prediction from step t - 1 wherever ``feed`` says so, the
    true input elsewhere. The fed-back prediction is a value, not a path for the gradient: a
    training step then runs on ``inputs`` as on any other.

    x (R|1, B, T, I) the true inputs; feed (R, B, T) bool (step 0 always reads x); ``state0``
    (h0, c0 (L, R, B, H)) the state to start from, only read; ``params`` the stack's as in
    ``rollout``; writes inputs (R, B, T, I), what each step read, and preds (R, B, T, O), I = O.
    Same arithmetic as ``rollout`` (all fed back) and ``sequence_forward`` (none fed back).
    """
    h0, c0 = state0
    (weight_ih, weight_hh, bias_ih, bias_hh), (head_weight, head_bias) = params
    R, B, T, O = preds.shape
    H, N = h0.shape[3], R * B
    G, I = weight_hh[0].shape[1], x.shape[3]
    K = tape_width(kind, H)
    layout = _layout(G, max(I, H), N, B)
    w_ih, w_hh, b_ih, b_hh, w_head, b_head = _stack_in_layout(weight_ih, weight_hh, bias_ih, bias_hh, head_weight,
                                                              head_bias, B, layout)
    hs, cs = _state_in_lanes(kind, h0, c0, N)
    xt, y = np.empty((I, N)), np.empty((O, N))
    gi, gh = np.empty((G, N)), np.empty((G, N))
    active = np.ones(N, np.bool_)
    out_t, tape_t = np.empty((N, H), preds.dtype), np.empty((N, K), preds.dtype)
    pred_lanes, input_lanes = preds.reshape(N, T, O), inputs.reshape(N, T, I)
    for t in range(T):
        _inputs_at(x, t, R, xt)
        if t > 0:
            for r in range(R):
                for b in range(B):
                    if feed[r, b, t]:
                        for i in range(I):
                            xt[i, r * B + b] = pred_lanes[r * B + b, t - 1, i]  # the prediction, as stored
        for i in range(I):
            for n in range(N):
                input_lanes[n, t, i] = xt[i, n]
        _stack_step(kind, xt, w_ih, w_hh, b_ih, b_hh, w_head, b_head, hs, cs, gi, gh, active, out_t, tape_t, y, layout)
        for o in range(O):
            for n in range(N):
                pred_lanes[n, t, o] = y[o, n]


# ---------------------------------------------------------------------------------------
# Backward through time: gradients of inputs, initial state and weights
# ---------------------------------------------------------------------------------------


@helper
def _rnn_cell_backward(out_t, active, dh, d_out_t, d_gi, d_gh, direct):
    """``_cell_backward`` of the RNN, h' = tanh(a): dL/da = dL/dh' (1 - h'^2) on active lanes;
    an inactive lane passes dL/dh' on. Selects instead of branches."""
    H, N = dh.shape
    for j in range(H):
        for n in range(N):
            h = np.float64(out_t[n, j])
            a = (dh[j, n] + d_out_t[n, j]) * (1.0 - h * h)
            d_gi[j, n] = a if active[n] else 0.0
            d_gh[j, n] = a if active[n] else 0.0
            direct[j, n] = 0.0 if active[n] else dh[j, n]


@helper
def _cell_backward(kind, tape_t, out_t, h_prev, c_prev, active, dh, d_out_t, dc, d_gi, d_gh, direct):
    """One step of every lane backwards: dL/dh_t = dh + d_out_t -> the gradients of the
    pre-activations ``d_gi`` (= W_ih x + b_ih) and ``d_gh`` (= W_hh h + b_hh), and ``direct``:
    the part of dL/dh_{t-1} that bypasses W_hh (the GRU's z; everything for an inactive lane).
    The LSTM's dL/dc_t comes in ``dc`` and leaves as dL/dc_{t-1}."""
    H, N = dh.shape
    if kind == RNN:
        _rnn_cell_backward(out_t, active, dh, d_out_t, d_gi, d_gh, direct)
        return
    for j in range(H):
        for n in range(N):
            if not active[n]:
                for k in range(d_gi.shape[0] // H):
                    d_gi[k * H + j, n], d_gh[k * H + j, n] = 0.0, 0.0
                direct[j, n] = dh[j, n]
                continue
            d = dh[j, n] + d_out_t[n, j]
            if kind == GRU:
                reset, update = np.float64(tape_t[n, j]), np.float64(tape_t[n, H + j])
                new, hidden_n = np.float64(tape_t[n, 2 * H + j]), np.float64(tape_t[n, 3 * H + j])
                d_a_n = d * (1.0 - update) * (1.0 - new * new)
                d_a_r = d_a_n * hidden_n * reset * (1.0 - reset)
                d_a_z = d * (h_prev[j, n] - new) * update * (1.0 - update)
                d_gi[j, n], d_gi[H + j, n], d_gi[2 * H + j, n] = d_a_r, d_a_z, d_a_n
                d_gh[j, n], d_gh[H + j, n], d_gh[2 * H + j, n] = d_a_r, d_a_z, d_a_n * reset
                direct[j, n] = d * update
            else:
                i, f = np.float64(tape_t[n, j]), np.float64(tape_t[n, H + j])
                g, o = np.float64(tape_t[n, 2 * H + j]), np.float64(tape_t[n, 3 * H + j])
                tc = np.float64(tape_t[n, 5 * H + j])
                dc[j, n] += d * o * (1.0 - tc * tc)
                d_gi[j, n] = dc[j, n] * g * i * (1.0 - i)
                d_gi[H + j, n] = dc[j, n] * c_prev[j, n] * f * (1.0 - f)
                d_gi[2 * H + j, n] = dc[j, n] * i * (1.0 - g * g)
                d_gi[3 * H + j, n] = d * tc * o * (1.0 - o)
                for k in range(4):
                    d_gh[k * H + j, n] = d_gi[k * H + j, n]
                dc[j, n] *= f
                direct[j, n] = 0.0


@compiled
def sequence_backward(kind, x, lengths, state0, weights, out, tape, d_out, d_state_n, d_x, d_state0, d_weights):
    """Backward through time of one layer (what ``sequence_forward`` recorded): writes the
    gradients of the inputs ``d_x``, of the initial state ``d_state0`` and of the four weights
    ``d_weights`` (the same order; the biases of ``weights`` are not read).

    ``d_out`` is dL/d(out), ``d_state_n`` dL/d(final state). Weight gradients are summed in
    float64 and stored once.
    """
    (h0, c0), (d_h_n, d_c_n), (d_h0, d_c0) = state0, d_state_n, d_state0
    weight_ih, weight_hh, _, _ = weights
    d_weight_ih, d_weight_hh, d_bias_ih, d_bias_hh = d_weights
    R, B, T, I = out.shape[0], x.shape[1], x.shape[2], x.shape[3]
    H, G, N = h0.shape[2], weight_hh.shape[1], out.shape[0] * x.shape[1]
    K = tape.shape[3]
    layout = _layout(G, max(I, H), N, B)
    if layout == BLAS:
        _sequence_backward_rows(kind, x, lengths, state0, weights, out, tape, d_out, d_state_n, d_x, d_state0,
                                d_weights)
        return
    w_ih, w_hh = _weights(weight_ih, B, layout), _weights(weight_hh, B, layout)
    acc_ih, acc_hh = _accumulator(G, I, R, N, layout), _accumulator(G, H, R, N, layout)
    acc_bih, acc_bhh = _bias_accumulator(G, R, N, layout), _bias_accumulator(G, R, N, layout)
    dh, dh_next, dc = np.empty((H, N)), np.empty((H, N)), np.zeros((H, N))
    xt, h_prev, c_prev, dx = np.empty((I, N)), np.empty((H, N)), np.zeros((H, N)), np.empty((I, N))
    d_gi, d_gh, direct = np.empty((G, N)), np.empty((G, N)), np.empty((H, N))
    active = np.empty(N, np.bool_)
    _to_lanes(d_h_n, dh)
    if kind == LSTM:
        _to_lanes(d_c_n, dc)
    out_lanes, tape_lanes = out.reshape(N, T, H), tape.reshape(N, T, K)
    d_out_lanes, d_x_lanes = d_out.reshape(N, T, H), d_x.reshape(N, T, I)
    d_x[:] = 0
    for t in range(min(T, lengths.max()) - 1, -1, -1):
        _active_at(t, lengths, active)
        if t == 0:
            _to_lanes(h0, h_prev)
            if kind == LSTM:
                _to_lanes(c0, c_prev)
        else:
            for k in range(H):
                for n in range(N):
                    h_prev[k, n] = out_lanes[n, t - 1, k]
                    if kind == LSTM:
                        c_prev[k, n] = tape_lanes[n, t - 1, 4 * H + k]
        _cell_backward(kind, tape_lanes[:, t], out_lanes[:, t], h_prev, c_prev, active, dh, d_out_lanes[:, t], dc,
                       d_gi, d_gh, direct)
        _inputs_at(x, t, R, xt)
        _accumulate(acc_ih, acc_bih, d_gi, xt, layout)
        _accumulate(acc_hh, acc_bhh, d_gh, h_prev, layout)
        dx[:] = 0
        _project_back(w_ih, d_gi, dx, layout)
        for i in range(I):
            for n in range(N):
                d_x_lanes[n, t, i] = dx[i, n]
        dh_next[:] = direct
        _project_back(w_hh, d_gh, dh_next, layout)
        dh, dh_next = dh_next, dh
    _from_lanes(dh, d_h0)
    if kind == LSTM:
        _from_lanes(dc, d_c0)
    _store_grads(acc_ih, R, d_weight_ih, layout)
    _store_grads(acc_hh, R, d_weight_hh, layout)
    _store_grads(acc_bih, R, d_bias_ih, layout)
    _store_grads(acc_bhh, R, d_bias_hh, layout)


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
            for i in range(weight.shape[2]):
                acc[i] = x[rx, m, i]
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


@helper
def _mlp_buffers(inputs, weights, preds):
    """The MLP's working vectors for one lane: v (float64) and y, which rounds each layer's
    output to the model's dtype as ``dense_forward`` stores it; wide enough for every layer."""
    width = inputs
    for w in weights:
        width = max(width, w.shape[1])
    return np.empty(width), np.empty(width, preds.dtype)


@helper
def _mlp_lane(weights, biases, r, v, y):
    """Replica r's MLP on one lane: its input in v, through every layer (ReLU between), the
    output left in v. Same arithmetic as ``dense_forward``."""
    last = len(weights) - 1
    for k in range(len(weights)):
        w, bias = weights[k][r], biases[k][r]
        for o in range(w.shape[0]):
            s = np.float64(bias[o])
            for i in range(w.shape[1]):
                s += np.float64(w[o, i]) * v[i]
            y[o] = s if k == last or s > 0 else 0.0
        for o in range(w.shape[0]):
            v[o] = y[o]


@compiled
def mlp_rollout(x0, weights, biases, preds):
    """The MLP fed its own output: x0 (R, B, I), weights/biases tuples (ReLU between layers),
    preds (R, B, steps, O). Same arithmetic as ``dense_forward``."""
    R, B, steps, _ = preds.shape
    v, y = _mlp_buffers(x0.shape[2], weights, preds)
    for r in range(R):
        for b in range(B):
            for i in range(x0.shape[2]):
                v[i] = x0[r, b, i]
            for t in range(steps):
                _mlp_lane(weights, biases, r, v, y)
                for o in range(preds.shape[3]):
                    preds[r, b, t, o] = v[o]  # the prediction is the next input


@compiled
def mlp_sampled_inputs(x, feed, weights, biases, inputs, preds):
    """``sampled_inputs`` for the MLP: x (R|1, B, T, I), feed (R, B, T) bool; writes inputs
    (R, B, T, I) and preds (R, B, T, O), I = O. Same arithmetic as ``dense_forward``."""
    R, B, T, _ = preds.shape
    I = x.shape[3]
    v, y = _mlp_buffers(I, weights, preds)
    for r in range(R):
        rx = 0 if x.shape[0] == 1 else r
        for b in range(B):
            for t in range(T):
                for i in range(I):
                    inputs[r, b, t, i] = preds[r, b, t - 1, i] if t > 0 and feed[r, b, t] else x[rx, b, t, i]
                    v[i] = inputs[r, b, t, i]
                _mlp_lane(weights, biases, r, v, y)
                for o in range(preds.shape[3]):
                    preds[r, b, t, o] = v[o]


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
# One training step of a recurrent stack, in one call
# ---------------------------------------------------------------------------------------


@compiled
def recurrent_step(kind, x, lengths, target, last_only, state0, params, grads, loss, pred, state_n):
    """Loss and gradient of L recurrent layers and a Linear head: the same kernels, called in
    the same order as one would from Python, without Python between them (a ball minibatch is
    ~100 us of arithmetic; the glue around five kernel calls cost as much again).

    x (R|1, B, T, I); ``state0``, ``state_n`` (h, c (L, R, B, H), c zero-width without a cell
    state); ``params`` and ``grads`` (layers, head) (each layer weight a tuple, one array per layer).
    ``target`` (M, O) with M = B (``last_only``: the prediction after each row's last step) or
    B*T. Writes ``loss`` (R,), ``pred`` (R, M, O), the gradients and the final state.
    """
    (h0, c0), (h_n, c_n) = state0, state_n
    (weight_ih, weight_hh, bias_ih, bias_hh), (head_weight, head_bias) = params
    (d_weight_ih, d_weight_hh, d_bias_ih, d_bias_hh), (d_head_weight, d_head_bias) = grads
    L, R, B, H = h0.shape
    T = x.shape[2]
    K = tape_width(kind, H)
    inputs, outs, tapes = [x], [], []
    for layer in range(L):
        out, tape = np.empty((R, B, T, H), h0.dtype), np.empty((R, B, T, K), h0.dtype)
        sequence_forward(kind, inputs[layer], lengths, (h0[layer], c0[layer]),
                         (weight_ih[layer], weight_hh[layer], bias_ih[layer], bias_hh[layer]), out, tape,
                         (h_n[layer], c_n[layer]))
        outs.append(out)
        tapes.append(tape)
        inputs.append(out)
    top = outs[L - 1]
    if last_only:
        features = np.empty((R, B, H), h0.dtype)
        for r in range(R):
            for b in range(B):
                features[r, b] = top[r, b, lengths[b] - 1]
    else:
        features = top.reshape(R, B * T, H)
    dense_forward(features, head_weight, head_bias, False, pred)
    d_pred = np.empty_like(pred)
    mse(pred, target, loss, d_pred)
    d_features = np.empty_like(features)
    dense_backward(features, head_weight, pred, False, d_pred, d_features, d_head_weight, d_head_bias)
    if last_only:
        d_out = np.zeros((R, B, T, H), h0.dtype)
        for r in range(R):
            for b in range(B):
                d_out[r, b, lengths[b] - 1] = d_features[r, b]
    else:
        d_out = d_features.reshape(R, B, T, H)
    # the carried state is detached between batches: no gradient flows into it
    zero_h, zero_c = np.zeros_like(h0[0]), np.zeros_like(c0[0])
    d_h0, d_c0 = np.empty_like(h0[0]), np.empty_like(c0[0])
    for layer in range(L - 1, -1, -1):
        inp = inputs[layer]
        d_x = np.empty((R, B, T, inp.shape[3]), h0.dtype)
        sequence_backward(kind, inp, lengths, (h0[layer], c0[layer]),
                          (weight_ih[layer], weight_hh[layer], bias_ih[layer], bias_hh[layer]), outs[layer],
                          tapes[layer], d_out, (zero_h, zero_c), d_x, (d_h0, d_c0),
                          (d_weight_ih[layer], d_weight_hh[layer], d_bias_ih[layer], d_bias_hh[layer]))
        d_out = d_x


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


@intrinsic
def _fused_multiply_add(typingctx, a, b, c):
    """a * b + c rounded once (LLVM's fma), for floats of one type."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return a(a, b, c), codegen


@compiled
def sgd_step(param, grad, lr):
    """p <- p - lr g, rounded as PyTorch's ``p.add_(g, alpha=-lr)`` rounds it on a CPU with FMA:
    alpha = -lr in the param's dtype, then g * alpha + p rounded once (its vector code is
    ``fmadd(g, alpha, p)``). ``training.sgd_rounds_like_torch`` checks it on the machine."""
    alpha = np.empty(1, param.dtype)
    alpha[0] = -lr
    for k in range(param.shape[0]):
        param[k] = _fused_multiply_add(grad[k], alpha[0], param[k])


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


# ---------------------------------------------------------------------------------------
# A whole epoch of minibatches with plain SGD, in one call
# ---------------------------------------------------------------------------------------


@helper
def _keep_larger(best, value):
    """torch.maximum's rule for a running max: a NaN, once seen, stays."""
    return best if best != best or not (value != value or value > best) else value


@compiled
def sgd_epoch(kind, minibatches, params, grads, flat, flat_grad, replica_of, lr, losses, preds, grad_norm):
    """Every minibatch of an epoch in order, each as ``fit`` steps it: ``recurrent_step`` from a
    zero state (many to one), the gradient norm of each replica, then ``sgd_step`` on the flat
    parameter. One call instead of one per minibatch: at the ball's sizes the Python around
    each step (wrappers, norm, optimizer, metrics: ~50 us) cost half as much as the step.

    The ``minibatches`` lie end to end: rows ``starts[s]:starts[s + 1]`` of x (rows, T, I)
    (inputs shared by every replica), lengths (rows,) and target (rows, O) are minibatch s.
    ``params`` and ``grads`` ((layers, head)) are the engine's views of ``flat`` and ``flat_grad``
    (``replica_of`` as in ``replica_norms``). Writes losses (S, R), every prediction into preds
    (R, rows, O), and grad_norm (R,): the largest norm of the epoch, before its update.
    """
    x, lengths, target, starts = minibatches
    (weight_ih, weight_hh, _, _), (head_weight, _) = params
    L, R, H = len(weight_ih), head_weight.shape[0], weight_hh[0].shape[2]
    T, I = x.shape[1], x.shape[2]
    C = H if kind == LSTM else 0  # rnn and gru take zero-width cell states
    loss, norms = np.empty(R), np.empty(R)
    grad_norm[:] = -np.inf
    for s in range(starts.shape[0] - 1):
        a, b = starts[s], starts[s + 1]
        h0, c0 = np.zeros((L, R, b - a, H), flat.dtype), np.zeros((L, R, b - a, C), flat.dtype)
        h_n, c_n = np.empty_like(h0), np.empty_like(c0)
        pred = np.empty((R, b - a, preds.shape[2]), preds.dtype)
        recurrent_step(kind, x[a:b].reshape(1, b - a, T, I), lengths[a:b], target[a:b], True, (h0, c0), params,
                       grads, loss, pred, (h_n, c_n))
        replica_norms(flat_grad, replica_of, norms)
        sgd_step(flat, flat_grad, lr)
        for r in range(R):
            losses[s, r] = loss[r]
            grad_norm[r] = _keep_larger(grad_norm[r], norms[r])
        preds[:, a:b] = pred
