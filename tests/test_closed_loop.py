"""The closed-loop objective (``sine.train.horizon``): its loss and gradient against autograd
through plain PyTorch modules (nn.RNNCell/GRUCell/LSTMCell and nn.Linear, or the MLP's
Linear-ReLU layers) rolled out by a Python loop that feeds each prediction back as a tensor with
its graph; its state; and its place in training."""

import numpy as np
import pytest
import torch
from torch import nn

from rnnlab import closed_loop
from rnnlab.models import MODELS, ModelConfig, build_stack

CELLS = {"rnn": nn.RNNCell, "gru": nn.GRUCell, "lstm": nn.LSTMCell}


def reference_replica(stack, r: int):
    """Replica r of the stack as plain PyTorch modules: a list of cells and a head (recurrent),
    or a list of Linear layers (the MLP), float64, with the replica's weights."""
    weights = {n: w[r].detach().clone() for n, w in stack.weights().items()}
    cfg = stack.cfg
    if cfg.kind == "mlp":
        names = [n.removesuffix(".weight") for n in stack.names if n.endswith(".weight")]
        layers = []
        for name in names:
            w = weights[f"{name}.weight"]
            layer = nn.Linear(w.shape[1], w.shape[0]).double()
            layer.weight.data.copy_(w)
            layer.bias.data.copy_(weights[f"{name}.bias"])
            layers.append(layer)
        return layers, None
    cells = []
    for layer in range(cfg.num_layers):
        w_ih = weights[f"rnn.weight_ih_l{layer}"]
        cell = CELLS[cfg.kind](w_ih.shape[1], cfg.hidden_size).double()
        for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, k).data.copy_(weights[f"rnn.{k}_l{layer}"])
        cells.append(cell)
    head = nn.Linear(cfg.hidden_size, 1).double()
    head.weight.data.copy_(weights["head.weight"])
    head.bias.data.copy_(weights["head.bias"])
    return cells, head


def reference_loss(stack, r, x, target, horizon, h0=None):
    """Loss of replica r over the window (x (T,), target (T,)), rolled out by hand: steps
    t >= T - horizon + 1 read the previous prediction, the graph through it kept. Returns the
    loss, the gradient in the stack's flat layout for replica r, and the state after the true inputs."""
    layers, head = reference_replica(stack, r)
    T = len(x)
    start = T - horizon + 1 if horizon > 1 else T
    params = [p for m in [*layers, *([head] if head is not None else [])] for p in m.parameters()]

    def step(value, states):
        inp = value.view(1, 1)
        if head is None:  # the MLP
            for k, layer in enumerate(layers):
                inp = layer(inp)
                if k < len(layers) - 1:
                    inp = torch.relu(inp)
            return inp.view(()), states
        new = []
        for cell, state in zip(layers, states):
            state = cell(inp, state)
            new.append(state)
            inp = state[0] if isinstance(state, tuple) else state
        return head(inp).view(()), new

    H = stack.cfg.hidden_size
    zero = torch.zeros(1, H, dtype=torch.float64)
    if head is None:
        states = []
    elif h0 is None:
        states = [(zero, zero) if stack.cfg.kind == "lstm" else zero for _ in layers]
    else:
        states = h0
    preds, value, true_states = [], x[0], states
    for t in range(T):
        value = preds[-1] if t >= start and t > 0 else x[t]
        y, states = step(value, states)
        preds.append(y)
    with torch.no_grad():  # the state the true inputs leave
        for t in range(T):
            _, true_states = step(x[t], true_states)
    loss = ((torch.stack(preds) - target) ** 2).mean()
    grads = torch.autograd.grad(loss, params)
    return loss.detach(), grads, true_states


def flat_grad_of_replica(stack, r):
    """The stack's gradient of replica r, in the order of the reference's parameters."""
    grads = {n: g.view(stack.replicas, *s)[r] for n, g, s in
             zip(stack.names, stack.flat.grad.split(stack._sizes), stack.shapes)}
    if stack.cfg.kind == "mlp":
        names = [n.removesuffix(".weight") for n in stack.names if n.endswith(".weight")]
        return [grads[f"{n}.{k}"] for n in names for k in ("weight", "bias")]
    order = [f"rnn.{k}_l{layer}" for layer in range(stack.cfg.num_layers)
             for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    return [grads[n] for n in [*order, "head.weight", "head.bias"]]


def window(seed=3, T=7):
    g = torch.Generator().manual_seed(seed)
    series = torch.sin(torch.linspace(0, 3, T + 1, dtype=torch.float64)) + 0.1 * torch.randn(
        T + 1, generator=g, dtype=torch.float64)
    return series[:-1], series[1:]


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("horizon", [1, 3, 7])
@pytest.mark.parametrize("replicas", [2, 9])  # 2 lanes: one weight layout; 9: per-lane copies (kernels._layout)
def test_gradient_equals_autograd_through_the_fed_back_values(kind, num_layers, horizon, replicas):
    if kind == "mlp" and num_layers == 2:
        pytest.skip("the MLP's depth is mlp_widths, not num_layers")
    stack = build_stack(ModelConfig(kind, hidden_size=5, num_layers=num_layers), list(range(replicas))).double()
    x, target = window()
    state = None
    if kind != "mlp":  # a carried state, as every window after the first starts from
        g = torch.Generator().manual_seed(5)
        h = 0.5 * torch.randn(replicas, num_layers, 1, 5, generator=g, dtype=torch.float64)
        state = (h, 0.5 * torch.randn(h.shape, generator=g, dtype=torch.float64)) if kind == "lstm" else h
    loss, _, final = closed_loop.train_step(stack, x.view(1, 1, -1, 1), target.view(1, -1, 1), state, horizon)
    for r in range(replicas):
        h0 = None
        if state is not None:
            if kind == "lstm":
                h0 = [(state[0][r, layer], state[1][r, layer]) for layer in range(num_layers)]
            else:
                h0 = [state[r, layer] for layer in range(num_layers)]
        expected_loss, expected_grads, true_state = reference_loss(stack, r, x, target, horizon, h0)
        torch.testing.assert_close(loss[r], expected_loss, atol=1e-14, rtol=1e-12)
        for ours, theirs in zip(flat_grad_of_replica(stack, r), expected_grads):
            torch.testing.assert_close(ours, theirs, atol=1e-13, rtol=1e-10)
        if kind != "mlp":  # the carried state: the one the window's true inputs leave
            for layer in range(num_layers):
                h_ref = true_state[layer][0] if kind == "lstm" else true_state[layer]
                h_ours = final[0][r, layer] if kind == "lstm" else final[r, layer]
                torch.testing.assert_close(h_ours, h_ref, atol=1e-14, rtol=1e-12)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_gradient_equals_autograd_with_100_replicas_of_one_row(kind):
    """A study of 100 seeds, one window each: more than 2^16 numbers per lane copy, and still
    per-lane copies (one row per replica is nothing to vectorise a shared weight over)."""
    stack = build_stack(ModelConfig(kind, hidden_size=16), list(range(100))).double()
    x, target = window()
    loss, _, _ = closed_loop.train_step(stack, x.view(1, 1, -1, 1), target.view(1, -1, 1), None, 5)
    for r in (0, 45, 99):
        expected_loss, expected_grads, _ = reference_loss(stack, r, x, target, 5)
        torch.testing.assert_close(loss[r], expected_loss, atol=1e-14, rtol=1e-12)
        for ours, theirs in zip(flat_grad_of_replica(stack, r), expected_grads):
            torch.testing.assert_close(ours, theirs, atol=1e-13, rtol=1e-10)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_gradient_equals_autograd_in_the_shared_weight_layout(kind):
    """10 replicas of 16 rows, hidden 16: more than 2^16 numbers per lane copy and rows enough per
    replica, the kernels' third layout. The loss is the mean over rows, so its gradient is the
    mean of each row's."""
    rows = 16
    stack = build_stack(ModelConfig(kind, hidden_size=16), list(range(10))).double()
    pairs = [window(seed=s) for s in range(rows)]
    x, target = torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])  # (rows, T) each
    loss, _, _ = closed_loop.train_step(stack, x.view(1, rows, -1, 1), target.view(rows, -1, 1), None, 5)
    for r in (0, 9):
        per_row = [reference_loss(stack, r, x[b], target[b], 5) for b in range(rows)]
        expected_loss = torch.stack([row[0] for row in per_row]).mean()
        torch.testing.assert_close(loss[r], expected_loss, atol=1e-14, rtol=1e-12)
        expected_grads = [torch.stack(grads).mean(0) for grads in zip(*(row[1] for row in per_row))]
        for ours, theirs in zip(flat_grad_of_replica(stack, r), expected_grads):
            torch.testing.assert_close(ours, theirs, atol=1e-13, rtol=1e-10)


@pytest.mark.parametrize("kind", list(MODELS))
def test_the_fed_back_path_carries_gradient(kind):
    """A free run's gradient differs from teacher forcing's on the same window (so the path
    through the fed-back values is there), and a horizon of 1 is teacher forcing."""
    from rnnlab.engine import Batch

    stack = build_stack(ModelConfig(kind, hidden_size=5), [0, 1]).double()
    x, target = window()
    stack.train_step(Batch(x.view(1, 1, -1, 1), target.view(1, -1, 1)))
    forced = stack.flat.grad.clone()
    closed_loop.train_step(stack, x.view(1, 1, -1, 1), target.view(1, -1, 1), None, 1)
    torch.testing.assert_close(stack.flat.grad, forced, atol=1e-14, rtol=1e-12)
    closed_loop.train_step(stack, x.view(1, 1, -1, 1), target.view(1, -1, 1), None, 4)
    assert not torch.allclose(stack.flat.grad, forced)


def test_a_horizon_longer_than_the_window_is_refused():
    with pytest.raises(ValueError, match="horizon of 8 steps does not fit a window of 7"):
        closed_loop.free_from(7, 8)
    assert closed_loop.free_from(7, 0) == 7 and closed_loop.free_from(7, 3) == 5


def test_float32_matches_float64_to_rounding():
    stack = build_stack(ModelConfig("gru", hidden_size=8), [0, 1, 2])
    x, target = window(T=20)
    loss32, _, _ = closed_loop.train_step(stack, x.float().view(1, 1, -1, 1), target.float().view(1, -1, 1), None, 10)
    g32 = stack.flat.grad.clone()
    stack64 = stack.double()
    loss64, _, _ = closed_loop.train_step(stack64, x.view(1, 1, -1, 1), target.view(1, -1, 1), None, 10)
    np.testing.assert_allclose(loss32.numpy(), loss64.numpy(), rtol=1e-5)
    np.testing.assert_allclose(g32.numpy(), stack64.flat.grad.numpy(), rtol=1e-3, atol=1e-6)
