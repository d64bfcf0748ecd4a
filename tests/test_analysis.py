"""The theory measurements: gradient flow against a hand-computed case, gates against PyTorch."""

import json

import pytest
import torch
from torch import Tensor, nn

from rnnlab import analysis
from rnnlab.models import ModelConfig, build_reference, build_stack

from conftest import ROOT


def test_gradient_norms_of_a_one_unit_linear_rnn_are_powers_of_its_weight():
    # h_t = w h_{t-1} + x_t and L = h_T: dL/dh_t = w^(T-t), exactly
    w, T = torch.tensor([0.5, 1.5]), 6  # two replicas: one vanishing, one exploding

    def step(x_t, h):
        return w * h + x_t

    h0 = torch.zeros(2, requires_grad=True)
    norms = analysis.hidden_gradient_norms(step, h0, [torch.ones(2)] * T, loss=lambda h: h, hidden=lambda h: h)
    expected = torch.stack([w ** (T - t) for t in range(1, T + 1)], 1)
    torch.testing.assert_close(norms, expected)


def test_gradient_flow_of_a_stack_matches_autograd_through_pytorchs_gru():
    cfg = ModelConfig("gru", hidden_size=6)
    stack = build_stack(cfg, [3])
    series = torch.sin(torch.linspace(0, 6, 31))
    norms = analysis.gradient_flow(stack, series)

    ref = build_reference(cfg, 3)
    h, hs = torch.zeros(1, 1, 6), []
    for x in series[:-1]:
        _, h = ref.rnn(x.view(1, 1, 1), h)
        h.retain_grad()
        hs.append(h)
    ((ref.head(h.view(1, 6)) - series[-1]) ** 2).sum().backward()
    expected = torch.stack([g.grad.norm() for g in hs])
    torch.testing.assert_close(norms[0], expected, atol=1e-6, rtol=1e-4)


def pytorch_gru_gates(gru: nn.GRU, x: Tensor, h: Tensor):
    """The update and reset gates by PyTorch's documented GRU equations."""
    W_ir, W_iz, _ = gru.weight_ih_l0.chunk(3)
    W_hr, W_hz, _ = gru.weight_hh_l0.chunk(3)
    b_ir, b_iz, _ = gru.bias_ih_l0.chunk(3)
    b_hr, b_hz, _ = gru.bias_hh_l0.chunk(3)
    r = torch.sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
    z = torch.sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
    return z, r


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_rollout_gates_recompute_pytorchs_hidden_states(kind):
    cfg = ModelConfig(kind, hidden_size=5)
    stack = build_stack(cfg, [0, 1])
    preds, gates = analysis.rollout_gates(stack, torch.tensor(0.2), None, steps=15)
    assert set(gates) == set(analysis.GATES[kind]) and gates[analysis.GATES[kind][0]].shape == (2, 15)

    ref = build_reference(cfg, 1)  # replica 1, stepped by PyTorch itself
    x, state, expected, update = torch.tensor([[[0.2]]]), None, [], []
    with torch.no_grad():
        for _ in range(15):
            h_before = torch.zeros(1, 5) if state is None else (state[0] if kind == "lstm" else state)[0]
            if kind == "gru":
                update.append(pytorch_gru_gates(ref.rnn, x.view(1, 1), h_before)[0].mean())
            out, state = ref.rnn(x, state)
            x = ref.head(out)
            expected.append(x.item())
    torch.testing.assert_close(preds[1], torch.tensor(expected), atol=1e-6, rtol=0)
    if kind == "gru":
        torch.testing.assert_close(gates["update"][1], torch.stack(update), atol=1e-6, rtol=0)


def test_gradient_ratios_are_declared_as_log10_so_dvc_metrics_diff_tells_them_apart():
    """`dvc metrics diff` rounds to 5 decimals: the ratios 7.7e-07 and 8.7e-15 both print 0.0."""
    from dvc.compare import _format_field  # the formatter of `dvc metrics diff` / `dvc metrics show`

    from rnnlab.analysis import log10_ratio

    old, new = log10_ratio(7.7e-07, 1.0), log10_ratio(8.7e-15, 1.0)
    assert _format_field(7.7e-07, 5, round_digits=True) == _format_field(8.7e-15, 5, round_digits=True)
    assert _format_field(old, 5, round_digits=True) != _format_field(new, 5, round_digits=True)
    assert old == pytest.approx(-6.1135, abs=1e-4) and new == pytest.approx(-14.0605, abs=1e-4)
    assert log10_ratio(0.0, 1.0) is None  # underflowed: JSON null, not -inf (not JSON)
    committed = json.loads((ROOT / "metrics/gradients.json").read_text())["gradients"]
    assert all(set(m) == {"train_grad_norm_max", "trained_log10_ratio", "initial_log10_ratio"} for m in committed.values())
