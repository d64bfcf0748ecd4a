"""The compiled engine: the same numbers as PyTorch's modules and autograd, a rollout that
leaves its caller's state alone, PyTorch's Adam and SGD, an SGD epoch in one call that equals
its steps, and kernels compiled once per machine."""

import ctypes
import math
import subprocess
import sys

import numba
import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence
from torch_reference import reference_loss_and_grad, reference_modules

from rnnlab import kernels
from rnnlab.engine import Batch, Epoch
from rnnlab.models import MODELS, ModelConfig, build_reference, build_stack
from rnnlab.training import CompiledAdam, PlainSGD, one_cycle, sgd_rounds_like_torch

RECURRENT = [k for k, arch in MODELS.items() if arch.recurrent]


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("last_only", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("batch", [1, 4, 900])  # the kernels' three weight layouts (see kernels._layout)
def test_train_step_gradient_equals_pytorchs_modules(kind, last_only, num_layers, batch):
    # float64 so that any difference is a wrong derivative, not rounding; the reference is nn.GRU/
    # nn.LSTM/nn.RNN/nn.Linear per replica through autograd, never the engine's own backward
    stack = build_stack(ModelConfig(kind, hidden_size=5, num_layers=num_layers), [0, 1, 2]).double()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, batch, 6, 1, generator=g, dtype=torch.float64)
    target = torch.randn(batch, 1, generator=g, dtype=torch.float64) if last_only \
        else torch.randn(batch, 6, 1, generator=g, dtype=torch.float64)
    batch = Batch(x, target, last_only=last_only)

    expected_loss, expected_grad = reference_loss_and_grad(stack, batch)
    loss, _, _ = stack.train_step(batch)

    torch.testing.assert_close(loss, expected_loss, atol=1e-14, rtol=1e-12)
    torch.testing.assert_close(stack.flat.grad, expected_grad, atol=1e-13, rtol=1e-10)


@pytest.mark.parametrize("kind", RECURRENT)
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize(("hidden", "batch"), [(kernels.BLAS_FROM, 1), (64, 7), (kernels.BLAS_FROM_BATCHED, 2),
                                               (kernels.BLAS_FROM - 1, 1), (kernels.BLAS_FROM_BATCHED - 1, 9)])
def test_wide_layers_gradient_equals_pytorchs_modules(kind, num_layers, hidden, batch):
    """Wide layers take BLAS's matrix products (kernels.BLAS): the same loss and gradient as
    nn.GRU/nn.LSTM/nn.RNN through autograd, many to many and after each row's last real step;
    the widest loop layouts just below both crossovers (one row a replica, and several) too."""
    stack = build_stack(ModelConfig(kind, hidden_size=hidden, num_layers=num_layers), [0, 1]).double()
    g = torch.Generator().manual_seed(6)
    x = torch.randn(1, batch, 5, 1, generator=g, dtype=torch.float64)
    lengths = torch.randint(1, 6, (batch,), generator=g)
    lengths[0] = 5
    for step in (Batch(x, torch.randn(batch, 5, 1, generator=g, dtype=torch.float64)),
                 Batch(x, torch.randn(batch, 1, generator=g, dtype=torch.float64), lengths, last_only=True)):
        expected_loss, expected_grad = reference_loss_and_grad(stack, step)
        loss, _, _ = stack.train_step(step)
        torch.testing.assert_close(loss, expected_loss, atol=1e-14, rtol=1e-12)
        torch.testing.assert_close(stack.flat.grad, expected_grad, atol=1e-13, rtol=1e-10)


def _hidden_sizes(params) -> list[int]:
    if isinstance(params, dict):
        return [v for key, value in params.items()
                for v in ([value] if key == "hidden_size" else _hidden_sizes(value))]
    return [v for value in params for v in _hidden_sizes(value)] if isinstance(params, list) else []


def test_every_width_of_the_default_params_trains_in_the_loops_whatever_the_batch(default_params):
    """BLAS sums in its own order and in float32: the texts' numbers come from the loops, so no
    default model may take BLAS, at one row a replica or experiment W's full batch."""
    widths = _hidden_sizes(default_params)
    assert len(widths) >= 4
    assert not any(kernels.takes_blas(width, rows) for width in widths for rows in (1, 2, 100, 1945))
    assert kernels.takes_blas(kernels.BLAS_FROM, 1) and kernels.takes_blas(kernels.BLAS_FROM_BATCHED, 2)


@pytest.mark.parametrize("kind", RECURRENT)
@pytest.mark.parametrize(("hidden", "batch"), [(64, 1), (64, 7), (kernels.BLAS_FROM_BATCHED, 7)])
def test_wide_float32_layers_are_as_accurate_as_pytorchs_own_float32_modules(kind, hidden, batch):
    """A float32 wide layer multiplies in float32 (sgemm) and takes the GRU's and LSTM's gates
    from arithmetic instead of libm: its loss and gradient are the exact ones (autograd in
    float64 on the same weights) to float32's precision, no further from them than PyTorch's own
    float32 modules are."""
    stack = build_stack(ModelConfig(kind, hidden_size=hidden), [0, 1])
    exact = build_stack(ModelConfig(kind, hidden_size=hidden), [0, 1]).double()
    exact.load_state_dict(stack.state_dict())
    g = torch.Generator().manual_seed(7)
    x = torch.randn(1, batch, 20, 1, generator=g)
    lengths = torch.randint(1, 21, (batch,), generator=g)
    lengths[0] = 20
    for step in (Batch(x, torch.randn(batch, 20, 1, generator=g)),
                 Batch(x, torch.randn(batch, 1, generator=g), lengths, last_only=True)):
        step64 = Batch(step.x.double(), step.target.double(), step.lengths, step.last_only)
        exact_loss, exact_grad = reference_loss_and_grad(exact, step64)
        torch_loss, torch_grad = reference_loss_and_grad(stack, step)             # PyTorch's float32 modules
        loss, _, _ = stack.train_step(step)
        scale = exact_grad.abs().max()
        ours, theirs = (stack.flat.grad.double() - exact_grad).abs().max(), (torch_grad.double() - exact_grad).abs().max()
        assert ours <= max(4 * theirs, 1e-6 * scale), f"gradient {ours:.2e} from the exact one, PyTorch's {theirs:.2e}"
        torch.testing.assert_close(loss.double(), exact_loss, rtol=1e-5, atol=0)
        torch.testing.assert_close(torch_loss.double(), exact_loss, rtol=1e-5, atol=0)


def test_the_wide_gates_arithmetic_is_libms_sigmoid_and_tanh_to_float32s_precision():
    """The wide float32 cells' sigmoid and tanh without libm: within 1e-12 relative of libm's over
    every pre-activation a float32 gate can tell apart (and exactly 0 < s < 1 beyond)."""
    a = np.concatenate([np.linspace(-80, 80, 400_001), np.geomspace(1e-12, 1, 1001), -np.geomspace(1e-12, 1, 1001)])[::37]
    sigmoid = np.array([kernels._sigmoid_arithmetic(v) for v in a])
    np.testing.assert_allclose(sigmoid, 1.0 / (1.0 + np.exp(-a)), rtol=1e-12, atol=0)
    tanh = np.array([kernels._tanh_arithmetic(v) for v in a])
    np.testing.assert_allclose(tanh, np.where(np.abs(a) < 10, np.tanh(a), np.sign(a) * np.tanh(10.0)), rtol=1e-12, atol=0)
    far = np.array([kernels._sigmoid_arithmetic(v) for v in (-1e4, -100.0, 100.0, 1e4)])
    assert np.all((far >= 0) & (far <= 1)) and far[0] < 1e-34 and far[-1] == 1.0


def test_the_float32_gates_are_within_3_ulps_of_the_true_sigmoid_and_tanh():
    """The wide float32 cells' vectorised sigmoid and tanh (float32 arithmetic, as PyTorch's own):
    against float64 numpy, within 3 float32 ulps from -100 to 100 and down to 1e-30; where the
    sigmoid is below float32's normal range (a < -87) it may stop at 6.1e-39."""
    a = np.concatenate([np.linspace(-100, 100, 400_001), np.geomspace(1e-30, 1, 1001),
                        -np.geomspace(1e-30, 1, 1001)]).astype(np.float32)
    exact_a, out, work = a.astype(np.float64), np.empty_like(a), np.empty((2, a.size), np.float32)
    kernels._sigmoid_float32(a, out, work)
    exact = 1.0 / (1.0 + np.exp(-exact_a))
    ulps = np.abs(out - exact) / np.spacing(exact.astype(np.float32))
    assert ulps[a >= -87].max() < 3 and np.abs(out - exact)[a < -87].max() < 1e-38
    kernels._tanh_into_float32(a, out, work)
    exact = np.tanh(exact_a)
    assert (np.abs(out - exact) / np.spacing(np.abs(exact).astype(np.float32))).max() < 3


@pytest.mark.parametrize("kind", RECURRENT)
def test_a_wide_rollout_feeds_pytorchs_module_its_own_output(kind):
    stack = build_stack(ModelConfig(kind, hidden_size=64), [0, 1]).double()
    firsts = torch.linspace(-1, 1, 3, dtype=torch.float64).view(1, 3, 1, 1)
    preds = stack.rollout(firsts, None, 6)                                      # (R, B, 6, 1)
    for r, module in enumerate(reference_modules(stack)):
        x, state, expected = firsts[0], None, []
        for _ in range(6):
            y, state = module(x, state)                                          # (B, 1, 1)
            expected.append(y)
            x = y
        torch.testing.assert_close(preds[r], torch.cat(expected, 1).detach(), atol=1e-13, rtol=1e-11)


@pytest.mark.parametrize("kind", RECURRENT)
@pytest.mark.parametrize("hidden", [6, 64])  # the loops (in row chunks) and BLAS (every row at once)
def test_last_outputs_are_pytorchs_packed_final_states(kind, hidden):
    stack = build_stack(ModelConfig(kind, hidden_size=hidden), [0, 1]).double()
    g = torch.Generator().manual_seed(8)
    lengths = torch.randint(1, 8, (300,), generator=g)
    x = torch.randn(300, 7, 1, generator=g, dtype=torch.float64)
    last = stack.engine().last_outputs(x.unsqueeze(0), lengths)                 # (R, B, H)
    for r, module in enumerate(reference_modules(stack)):
        _, state = module.rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        h = state[0] if isinstance(state, tuple) else state                     # (L, B, H)
        torch.testing.assert_close(last[r], h[-1].detach(), atol=1e-13, rtol=1e-11)


@pytest.mark.parametrize("kind", RECURRENT)
@pytest.mark.parametrize("repeat", [1, 2, 500])  # 4, 8 or 2000 rows: the kernels' three weight layouts
def test_padded_rows_stop_at_their_length_like_packed_sequences(kind, repeat):
    """The ball's batches: each row's prediction after its last real input, and the gradient,
    as nn.RNN/LSTM/GRU give them on a packed batch."""
    cfg = ModelConfig(kind, hidden_size=6)
    stack = build_stack(cfg, [4]).double()
    reference = build_reference(cfg, 4).double()
    g = torch.Generator().manual_seed(5)
    lengths = torch.tensor([5, 2, 7, 3] * repeat)
    rows = len(lengths)
    x = torch.randn(rows, 7, 1, generator=g, dtype=torch.float64)             # (B, T, 1), padded
    target = torch.randn(rows, 1, generator=g, dtype=torch.float64)

    loss, pred, _ = stack.train_step(Batch(x.unsqueeze(0), target, lengths, last_only=True))

    out, _ = reference.rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    unpacked, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
    expected = reference.head(unpacked[torch.arange(rows), lengths - 1])      # (B, 1)
    ref_loss = ((expected - target) ** 2).mean()
    ref_loss.backward()
    torch.testing.assert_close(pred[0], expected.detach(), atol=1e-13, rtol=0)
    torch.testing.assert_close(loss[0], ref_loss.detach(), atol=1e-14, rtol=0)
    grads = dict(zip(stack.names, stack.flat.grad.split(stack._sizes)))
    for name, p in reference.named_parameters():
        torch.testing.assert_close(grads[name].view(p.shape), p.grad, atol=1e-13, rtol=1e-10, msg=name)


@pytest.mark.parametrize("kind", list(MODELS))
def test_rollout_leaves_the_callers_state_as_it_was(kind):
    # training carries this state on after the per-epoch rollout: the rollout must not move it
    stack = build_stack(ModelConfig(kind, hidden_size=4), [0, 1])
    state = stack.initial_state(1)
    if state is not None:
        state = tuple(s + 0.5 for s in state) if isinstance(state, tuple) else state + 0.5
    before = None if state is None else [s.clone() for s in (state if isinstance(state, tuple) else (state,))]
    stack.rollout(torch.full((1, 1, 1, 1), 0.2), state, 10)
    after = None if state is None else list(state if isinstance(state, tuple) else (state,))
    assert before is None or all(torch.equal(a, b) for a, b in zip(before, after))


def test_compiled_adam_follows_pytorchs_adam():
    g = torch.Generator().manual_seed(0)
    start = torch.randn(50, generator=g)
    ours, theirs = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    optimizers = CompiledAdam([ours], lr=0.01), torch.optim.Adam([theirs], lr=0.01)
    for _ in range(200):
        grad = torch.randn(50, generator=g)
        for p, optimizer in zip((ours, theirs), optimizers):
            p.grad = grad.clone()
            optimizer.step()
    # the same formula; ours rounds once per element, PyTorch after every operation
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)
    assert not torch.equal(ours, start)


def test_two_runs_of_a_kernel_are_bitwise_identical():
    stack = build_stack(ModelConfig("lstm", hidden_size=7), [0, 1])
    x = torch.randn(1, 3, 9, 1, generator=torch.Generator().manual_seed(1))
    batch = Batch(x, torch.randn(3, 9, 1, generator=torch.Generator().manual_seed(2)))
    first = [t.clone() for t in (stack.train_step(batch)[0], stack.flat.grad)]
    second = [stack.train_step(batch)[0], stack.flat.grad]
    assert all(torch.equal(a, b) for a, b in zip(first, second))


PROBE = """
import numpy as np
from rnnlab import kernels
from rnnlab.recurrent import run_layer
x = np.zeros((1, 1, 2, 1), np.float32); w = [np.zeros(s, np.float32) for s in ((1, 3, 1), (1, 3, 1), (1, 3), (1, 3))]
run_layer("gru", x, np.array([2]), np.zeros((1, 1, 1), np.float32), None, *w)
stats = kernels.sequence_forward.stats
print(sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
"""


def test_compiled_kernels_are_cached_for_the_next_process():
    # the first process may compile (and writes the cache); every later one only loads
    subprocess.run([sys.executable, "-c", PROBE], check=True, capture_output=True, text=True)
    hits, misses = map(int, subprocess.run([sys.executable, "-c", PROBE], check=True, capture_output=True,
                                           text=True).stdout.split())
    assert (hits, misses) == (1, 0), f"second process: {hits} cache hits, {misses} misses"


def test_one_cycle_drives_compiled_adam_as_pytorchs_scheduler_drives_adam():
    g = torch.Generator().manual_seed(4)
    start = torch.randn(20, generator=g)
    ours, theirs = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    compiled, reference = CompiledAdam([ours], lr=0.02), torch.optim.Adam([theirs], lr=0.02)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(reference, max_lr=0.02, total_steps=60)
    for hyper in one_cycle("adam", 0.02, 60):
        grad = torch.randn(20, generator=g)
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        assert hyper["lr"] == reference.param_groups[0]["lr"] and hyper["betas"] == reference.param_groups[0]["betas"]
        compiled.param_groups[0].update(hyper)
        compiled.step()
        reference.step()
        scheduler.step()
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("rows", [50, 5000])
def test_a_batched_rollout_equals_one_rollout_per_row(kind, rows):
    # the kernels' three weight layouts: one row (ROWS), 50 (LANES), 5000 (SHARED)
    stack = build_stack(ModelConfig(kind, hidden_size=4), [0, 1])
    firsts = torch.linspace(-1, 1, rows).view(1, rows, 1, 1)
    batched = stack.rollout(firsts, None, 7)                                  # (R, B, 7, 1)
    for b in (0, 1, rows // 2, rows - 1):
        torch.testing.assert_close(batched[:, b], stack.rollout(firsts[:, b : b + 1], None, 7)[:, 0], atol=0, rtol=0)


@pytest.mark.parametrize("kind", RECURRENT)
def test_a_rollout_from_zeros_does_not_change_the_next_one(kind):
    # the engine keeps one zero state per batch size; a rollout must not write into it
    stack = build_stack(ModelConfig(kind, hidden_size=4), [0])
    first = stack.rollout(torch.full((1, 1, 1, 1), 0.3), None, 5)
    assert torch.equal(stack.rollout(torch.full((1, 1, 1, 1), 0.3), None, 5), first)
    x = torch.randn(1, 1, 4, 1, generator=torch.Generator().manual_seed(0))
    loss = stack.train_step(Batch(x, torch.zeros(1, 4, 1)))[0].clone()
    stack.rollout(x[:, :, :1], None, 5)
    assert torch.equal(stack.train_step(Batch(x, torch.zeros(1, 4, 1)))[0], loss)


def minibatches_of_ragged_rows(sizes, widths, seed=0):
    """Many-to-one minibatches (x (B, T, 1), lengths (B,), target (B, 1)), rows of 1 to T steps."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(b, t, 1, generator=g), torch.randint(1, t + 1, (b,), generator=g), torch.randn(b, 1, generator=g))
            for b, t in zip(sizes, widths)]


@pytest.mark.parametrize("kind", RECURRENT)
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("replicas", [1, 3])
def test_an_sgd_epoch_in_one_call_equals_stepping_batch_by_batch(kind, num_layers, replicas):
    if not sgd_rounds_like_torch(torch.float32):
        pytest.skip("PyTorch rounds p - lr g twice on this machine: fit steps batch by batch")
    cfg = ModelConfig(kind, hidden_size=8, num_layers=num_layers)
    stepped, whole = build_stack(cfg, list(range(replicas))), build_stack(cfg, list(range(replicas)))
    batches = minibatches_of_ragged_rows([100, 100, 37, 100], [6, 9, 9, 4])  # ragged sizes and widths
    sgd = PlainSGD(stepped.parameters(), lr=0.1)
    losses, preds, norms = [], [], []
    for x, lengths, y in batches:
        sgd.zero_grad()
        loss, pred, _ = stepped.train_step(Batch(x.unsqueeze(0), y, lengths, last_only=True))
        norms.append(stepped.replica_grad_norms())
        sgd.step()
        losses.append(loss)
        preds.append(pred)
    epoch_losses, epoch_preds, largest_norm = whole.engine().sgd_epoch(Epoch.of(batches), lr=0.1)
    assert torch.equal(whole.flat, stepped.flat)  # bit for bit
    assert torch.equal(epoch_losses, torch.stack(losses))
    assert torch.equal(epoch_preds, torch.cat(preds, dim=1))
    assert torch.equal(largest_norm, torch.stack(norms).max(dim=0).values)


@pytest.mark.parametrize("size", [1, 97, 273, 361])  # the ball's RNN, GRU and LSTM: PyTorch's scalar tail differs
def test_sgd_step_rounds_as_pytorchs_sgd(size):
    if not sgd_rounds_like_torch(torch.float32):
        pytest.skip("PyTorch rounds p - lr g twice on this machine")
    g = torch.Generator().manual_seed(size)
    for _ in range(50):
        param, grad = torch.randn(size, generator=g), torch.randn(size, generator=g) * torch.rand(size, generator=g) ** 4
        theirs, ours = param.clone(), param.clone()
        theirs.add_(grad, alpha=-0.1)
        kernels.sgd_step(ours.numpy(), grad.numpy(), 0.1)
        assert torch.equal(ours, theirs)


@numba.njit
def _rnn_tanh_in_float32(a, arithmetic, out):
    for k in range(a.shape[0]):
        arithmetic[k] = kernels._tanh_arithmetic(a[k])
        out[k] = kernels._tanh_float32(a[k], arithmetic[k])


def test_the_rnns_float32_tanh_is_libms_rounded():
    g = np.random.default_rng(0)
    a = np.concatenate([g.normal(0, scale, 200_000) for scale in (1e-30, 1e-6, 1e-2, 0.5, 2, 6, 20)]
                       + [np.array([0.0, -0.0, 10.0, -10.0, 1e300, np.inf, -np.inf, np.nan, 5e-324])])
    arithmetic, ours = np.empty(len(a)), np.empty(len(a), np.float32)
    _rnn_tanh_in_float32(a, arithmetic, ours)
    libm = np.array([math.tanh(v) for v in a])
    assert np.array_equal(ours.view(np.uint32), libm.astype(np.float32).view(np.uint32))  # signed zeros, NaN too
    # the libm fallback is what makes it exact; the slack is honest only if our error stays far inside it
    inside = np.abs(a) < 10
    error = np.abs(arithmetic[inside] - libm[inside]) / np.maximum(np.abs(libm[inside]), 1e-300)
    assert error.max() < kernels.TANH_SLACK / 100


def _float32_midpoints(g, n, low, high):
    """n points halfway between neighbouring float32 values in [low, high]: where a value a
    hair off rounds the other way."""
    v = g.uniform(low, high, n).astype(np.float32)
    return (v.astype(np.float64) + np.nextafter(v, np.float32(np.inf)).astype(np.float64)) / 2


def _libm_float32_cell(kind, gi, gh, h, c, active):
    """A float32 GRU or LSTM step of the loop layouts as plain Python on libm (math.exp,
    math.tanh, glibc's tanhf for the LSTM's tanh of its stored cell), every stored value
    rounded to float32 and the state re-read from it: what the kernels stored before their
    gates came from arithmetic."""
    tanhf = ctypes.CDLL("libm.so.6").tanhf
    tanhf.restype, tanhf.argtypes = ctypes.c_float, [ctypes.c_float]
    H, N = h.shape
    sigmoid = lambda a: 1.0 / (1.0 + math.exp(-a))  # noqa: E731
    out, tape = np.zeros((N, H), np.float32), np.zeros((N, kernels.tape_width(kind, H)), np.float32)
    h, c = h.copy(), c.copy()
    for j in range(H):
        for n in np.flatnonzero(active):
            if kind == kernels.GRU:
                reset, update = sigmoid(gi[j, n] + gh[j, n]), sigmoid(gi[H + j, n] + gh[H + j, n])
                new = math.tanh(gi[2 * H + j, n] + reset * gh[2 * H + j, n])
                tape[n, j], tape[n, H + j], tape[n, 2 * H + j], tape[n, 3 * H + j] = reset, update, new, gh[2 * H + j, n]
                out[n, j] = (h[j, n] - new) * update + new
            else:
                i, f = sigmoid(gi[j, n] + gh[j, n]), sigmoid(gi[H + j, n] + gh[H + j, n])
                g, o = math.tanh(gi[2 * H + j, n] + gh[2 * H + j, n]), sigmoid(gi[3 * H + j, n] + gh[3 * H + j, n])
                tape[n, j], tape[n, H + j], tape[n, 2 * H + j], tape[n, 3 * H + j] = i, f, g, o
                tape[n, 4 * H + j] = f * c[j, n] + i * g
                tape[n, 5 * H + j] = tanhf(float(tape[n, 4 * H + j]))
                out[n, j] = o * float(tape[n, 5 * H + j])
                c[j, n] = tape[n, 4 * H + j]
            h[j, n] = out[n, j]
    return out, tape, h, c


@pytest.mark.skipif(sys.platform != "linux", reason="the reference calls glibc's tanhf")
@pytest.mark.parametrize("kind", [kernels.GRU, kernels.LSTM])
def test_the_gru_and_lstm_float32_cells_store_libms_values_bit_for_bit(kind):
    """The loops' float32 GRU/LSTM cells take their gates from arithmetic and fall back on libm
    wherever a stored value could round otherwise: against plain Python on libm, every stored
    gate, state and output is the same float32, on ordinary pre-activations, on ones whose
    gates sit halfway between two float32 values (the arithmetic's 1e-13 could round either
    way), beyond the arithmetic's range, NaN, and lanes that take no step."""
    g = np.random.default_rng(11)
    H, N = 8, 600
    G = (3 if kind == kernels.GRU else 4) * H
    gi, gh = g.normal(0, 2, (G, N)), g.normal(0, 2, (G, N))
    near = slice(N // 3, 2 * N // 3)  # sigmoid and tanh gates on rounding midpoints, from gi alone
    for gate in range(G // H):
        tanh_gate = gate == 2
        m = _float32_midpoints(g, H * (N // 3), -0.99 if tanh_gate else 0.01, 0.99).reshape(H, N // 3)
        gi[gate * H : (gate + 1) * H, near] = np.arctanh(m) if tanh_gate else np.log(m) - np.log1p(-m)
        gh[gate * H : (gate + 1) * H, near] = 0.0
    tanh_rows = slice(2 * H, 3 * H)  # beyond the arithmetic tanh's range (+-10), where it stops at tanh(10)
    gi[tanh_rows, :60], gh[tanh_rows, :60] = g.choice([-1, 1], (H, 60)) * g.uniform(10.0, 14.0, (H, 60)), 0.0
    gi[0, :5], gi[H, 5:10] = [np.nan, 85.0, -85.0, 1e6, -np.inf], 90.0
    h = np.tanh(g.normal(0, 1, (H, N))).astype(np.float32).astype(np.float64)
    c = g.normal(0, 2, (H, N)).astype(np.float32).astype(np.float64) if kind == kernels.LSTM else np.zeros((H, 0))
    active = g.random(N) < 0.95
    expected = _libm_float32_cell(kind, gi, gh, h, c, active)
    out, tape = np.zeros((N, H), np.float32), np.zeros((N, kernels.tape_width(kind, H)), np.float32)
    h_ours, c_ours = h.copy(), c.copy()
    kernels._cell(kind, gi, gh, h_ours, c_ours, active, out, tape, kernels.LANES)
    for ours, theirs in zip((out, tape), expected[:2]):
        assert np.array_equal(ours.view(np.uint32), theirs.view(np.uint32))
    np.testing.assert_array_equal(h_ours, expected[2])
    np.testing.assert_array_equal(c_ours, expected[3])


def test_shared_layout_sums_in_the_plain_loops_order():
    """SHARED's blocked products (four per pass) and its weight gradients (every weight's four
    running sums at once, on the transposed inputs) give the plain loops' numbers bit for bit:
    out = b + w_0 v_0 + w_1 v_1 + ... left to right, out += W^T d over g in order, and each
    gradient four running sums over a replica's lanes (lane i into sum i % 4 of its block of
    four, the rest into the first), added as (s0 + s1) + (s2 + s3). Sizes leave remainders."""
    rng = np.random.default_rng(3)
    R, B, G, K = 3, 37, 10, 6
    N = R * B
    weight, bias = rng.standard_normal((R, G, K)), rng.standard_normal((R, G))
    v, d = rng.standard_normal((K, N)), rng.standard_normal((G, N))
    out = np.empty((G, N))
    kernels._project((weight, weight), bias, v, out, kernels.SHARED)  # (loops' copy, own)
    back = rng.standard_normal((K, N))
    expected_back = back.copy()
    kernels._project_back((weight, weight), d, back, kernels.SHARED)
    acc, acc_bias = rng.standard_normal((R, G, K)), rng.standard_normal((R, G))
    expected_acc, expected_bias = acc.copy(), acc_bias.copy()
    kernels._accumulate(acc, acc_bias, d, v, kernels.SHARED)

    def dot(a, b, lanes):  # kernels._dot in plain Python floats (IEEE doubles, the same operations)
        sums = [0.0, 0.0, 0.0, 0.0]
        whole = len(lanes) // 4 * 4
        for i, n in enumerate(lanes):
            sums[i % 4 if i < whole else 0] += float(a[n]) * float(b[n])
        return (sums[0] + sums[1]) + (sums[2] + sums[3])

    for n in range(N):
        r = n // B
        for g in range(G):
            total = float(bias[r, g])
            for k in range(K):
                total += float(weight[r, g, k]) * float(v[k, n])
            assert out[g, n] == total
        for k in range(K):
            total = float(expected_back[k, n])
            for g in range(G):
                total += float(weight[r, g, k]) * float(d[g, n])
            assert back[k, n] == total
    ones = np.ones(N)
    for r in range(R):
        lanes = range(r * B, (r + 1) * B)
        for g in range(G):
            assert acc_bias[r, g] == float(expected_bias[r, g]) + dot(d[g], ones, lanes)
            for k in range(K):
                assert acc[r, g, k] == float(expected_acc[r, g, k]) + dot(d[g], v[k], lanes)


# --- scheduled sampling: the inputs a window is trained on (kernels.sampled_inputs) -----------------

DEPTHS = [(kind, 1) for kind in MODELS] + [(kind, 2) for kind in RECURRENT]  # the MLP's depth is mlp_widths


def carried_state(stack, batch: int, seed: int = 7):
    """A non-zero state, as training carries one from window to window (None for the MLP)."""
    state = stack.initial_state(batch)
    if state is None:
        return None
    g = torch.Generator().manual_seed(seed)
    noise = lambda s: (torch.rand(s.shape, generator=g, dtype=s.dtype) - 0.5)  # noqa: E731
    return tuple(noise(s) for s in state) if isinstance(state, tuple) else noise(state)


@pytest.mark.parametrize(("kind", "num_layers"), DEPTHS)
@pytest.mark.parametrize("batch", [1, 4])
def test_sampled_inputs_with_nothing_fed_back_are_teacher_forcing(kind, num_layers, batch):
    stack = build_stack(ModelConfig(kind, hidden_size=4, num_layers=num_layers), [0, 1, 2])
    x = torch.randn(1, batch, 6, 1, generator=torch.Generator().manual_seed(1))
    state = carried_state(stack, batch)
    inputs, preds = stack.engine().sampled_inputs(x, np.zeros((3, batch, 6), bool), state)
    _, teacher_forced, _ = stack.train_step(Batch(x, torch.zeros(batch, 6, 1)), state)  # (R, B*T, O)
    assert torch.equal(inputs, x.expand(3, -1, -1, -1))
    assert torch.equal(preds.reshape(teacher_forced.shape), teacher_forced)


@pytest.mark.parametrize(("kind", "num_layers"), DEPTHS)
def test_sampled_inputs_with_everything_fed_back_are_the_rollout(kind, num_layers):
    stack = build_stack(ModelConfig(kind, hidden_size=4, num_layers=num_layers), [0, 1])
    x = torch.randn(1, 1, 8, 1, generator=torch.Generator().manual_seed(2))
    state = carried_state(stack, 1)
    before = None if state is None else tuple(s.clone() for s in (state if isinstance(state, tuple) else (state,)))
    inputs, preds = stack.engine().sampled_inputs(x, np.ones((2, 1, 8), bool), state)
    rollout = stack.rollout(x[:, :, :1], state, 8)                              # (R, B, steps, O)
    assert torch.equal(preds, rollout)
    assert torch.equal(inputs[:, :, 0], x.expand(2, -1, -1, -1)[:, :, 0])       # step 0 reads the truth
    assert torch.equal(inputs[:, :, 1:], rollout[:, :, :-1])                    # then its own predictions
    after = None if state is None else tuple(state if isinstance(state, tuple) else (state,))
    assert before is None or all(torch.equal(a, b) for a, b in zip(before, after))  # the caller's state as it was


@pytest.mark.parametrize("kind", list(MODELS))
def test_a_replicas_sampled_inputs_do_not_depend_on_the_others(kind):
    cfg = ModelConfig(kind, hidden_size=5)
    together, alone = build_stack(cfg, [0, 1, 2]), build_stack(cfg, [1])
    x = torch.randn(1, 1, 12, 1, generator=torch.Generator().manual_seed(3))
    feed = np.random.default_rng(0).random((3, 1, 12)) < 0.5
    state = carried_state(together, 1)
    alone_state = None if state is None else (tuple(s[1:2] for s in state) if isinstance(state, tuple) else state[1:2])
    inputs, _ = together.engine().sampled_inputs(x, feed, state)
    single, _ = alone.engine().sampled_inputs(x, feed[1:2], alone_state)
    assert torch.equal(inputs[1], single[0])
    other_feed = feed.copy()
    other_feed[[0, 2]] = ~other_feed[[0, 2]]                                    # the others toss other coins
    assert torch.equal(together.engine().sampled_inputs(x, other_feed, state)[0][1], inputs[1])


@pytest.mark.parametrize(("kind", "num_layers"), DEPTHS)
def test_gradient_on_sampled_inputs_equals_pytorchs_modules(kind, num_layers):
    """The fed-back predictions are constant inputs: the step's gradient is PyTorch's modules'
    through autograd on them, each replica on its own inputs from its carried state."""
    stack = build_stack(ModelConfig(kind, hidden_size=5, num_layers=num_layers), [0, 1, 2]).double()
    g = torch.Generator().manual_seed(4)
    x = torch.randn(1, 1, 9, 1, generator=g, dtype=torch.float64)
    target = torch.randn(1, 9, 1, generator=g, dtype=torch.float64)
    state = carried_state(stack, 1)
    feed = np.random.default_rng(1).random((3, 1, 9)) < 0.5
    inputs, _ = stack.engine().sampled_inputs(x, feed, state)
    assert not torch.equal(inputs, x.expand(3, -1, -1, -1))
    batch = Batch(inputs, target)                                               # x per replica: (R, B, T, I)
    expected_loss, expected_grad = reference_loss_and_grad(stack, batch, state)
    loss, _, _ = stack.train_step(batch, state)
    torch.testing.assert_close(loss, expected_loss, atol=1e-14, rtol=1e-12)
    torch.testing.assert_close(stack.flat.grad, expected_grad, atol=1e-13, rtol=1e-10)


def test_two_sampled_passes_are_bitwise_identical():
    stack = build_stack(ModelConfig("gru", hidden_size=6), [0, 1])
    x = torch.randn(1, 1, 10, 1, generator=torch.Generator().manual_seed(5))
    feed = np.random.default_rng(2).random((2, 1, 10)) < 0.5
    first = stack.engine().sampled_inputs(x, feed, None)
    second = stack.engine().sampled_inputs(x, feed, None)
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def test_sampled_inputs_need_outputs_that_can_be_inputs():
    stack = build_stack(ModelConfig("gru", hidden_size=3, input_size=2, output_size=1), [0])
    with pytest.raises(ValueError, match="as many outputs as inputs, got 1 and 2"):
        stack.engine().sampled_inputs(torch.zeros(1, 1, 4, 2), np.zeros((1, 1, 4), bool), None)
