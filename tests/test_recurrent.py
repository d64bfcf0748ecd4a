"""The replica engine computes what PyTorch's own recurrent layers compute, forward and back."""

import pytest
import torch

from rnnlab import kernels
from rnnlab.models import MODELS, ModelConfig, build_reference, build_stack

RECURRENT = [k for k, arch in MODELS.items() if arch.recurrent]


def random_state(stack, batch, generator):
    state = stack.initial_state(batch)
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(torch.randn(s.shape, generator=generator, dtype=s.dtype) for s in state)
    return torch.randn(state.shape, generator=generator, dtype=state.dtype)


def replica_state(state, r):
    """(R, L, B, H) -> PyTorch's (L, B, H) for replica r."""
    if isinstance(state, tuple):
        return tuple(s[r] for s in state)
    return None if state is None else state[r]


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("num_layers", [1, 2])
def test_stack_forward_equals_pytorch_per_replica(kind, num_layers):
    cfg = ModelConfig(kind, hidden_size=8, num_layers=num_layers)
    seeds = [0, 1, 2]
    stack = build_stack(cfg, seeds)
    g = torch.Generator().manual_seed(7)
    x = torch.randn(3, 4, 6, 1, generator=g)  # (R, B, T, I)
    state = random_state(stack, 4, g)

    y, final = stack(x, state)

    for r, seed in enumerate(seeds):
        y_ref, final_ref = build_reference(cfg, seed)(x[r], replica_state(state, r))
        torch.testing.assert_close(y[r], y_ref, atol=1e-6, rtol=0)
        if final_ref is not None:
            torch.testing.assert_close(replica_state(final, r), final_ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("hidden", [5, kernels.BLAS_FROM_BATCHED])  # the loops; BLAS's rows (3 rows a replica)
def test_hand_written_backward_equals_autograd_through_pytorch(kind, num_layers, hidden):
    # float64 so that any difference is a wrong derivative, not rounding; the input's and the
    # state's gradients too, which no parameter's gradient depends on in the first layer
    cfg = ModelConfig(kind, hidden_size=hidden, num_layers=num_layers)
    seeds = [3, 4]
    stack = build_stack(cfg, seeds).double()
    g = torch.Generator().manual_seed(11)
    x = torch.randn(2, 3, 7, 1, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randn(2, 3, 7, 1, generator=g, dtype=torch.float64)
    state = random_state(stack, 3, g)
    leaves = [] if state is None else list(state) if isinstance(state, tuple) else [state]
    for s in leaves:
        s.requires_grad_(True)

    y, final = stack(x, state)
    final_sum = 0 if final is None else sum(f.sum() for f in (final if isinstance(final, tuple) else (final,)))
    (((y - target) ** 2).sum() + 0.1 * final_sum).backward()
    grads = dict(zip(stack.names, stack.flat.grad.split(stack._sizes)))

    for r, seed in enumerate(seeds):
        ref = build_reference(cfg, seed).double()
        x_r = x[r].detach().requires_grad_(True)
        s_r = replica_state(state, r)
        s_r = None if s_r is None else tuple(s.detach().requires_grad_(True) for s in s_r) if isinstance(s_r, tuple) \
            else s_r.detach().requires_grad_(True)
        y_ref, final_ref = ref(x_r, s_r)
        ref_final_sum = 0 if final_ref is None else sum(
            f.sum() for f in (final_ref if isinstance(final_ref, tuple) else (final_ref,)))
        (((y_ref - target[r]) ** 2).sum() + 0.1 * ref_final_sum).backward()
        for name, p in ref.named_parameters():
            torch.testing.assert_close(grads[name].view(2, *p.shape)[r], p.grad, atol=1e-12, rtol=1e-10, msg=name)
        torch.testing.assert_close(x.grad[r], x_r.grad, atol=1e-12, rtol=1e-10)
        if s_r is not None:
            for mine, theirs in zip(leaves, s_r if isinstance(s_r, tuple) else (s_r,)):
                torch.testing.assert_close(mine.grad[r], theirs.grad, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("kind", RECURRENT)
def test_gates_are_recorded_for_analysis(kind):
    stack = build_stack(ModelConfig(kind, hidden_size=4), [0])
    _, _, gates = stack.run(stack.weights(), torch.randn(1, 2, 5, 1), None, return_gates=True)
    expected = {"rnn": set(), "gru": {"reset", "update", "new"}, "lstm": {"input", "forget", "cell", "output"}}[kind]
    assert set(gates[0]) == expected
    for activation in gates[0].values():
        assert activation.shape == (1, 2, 5, 4)


def test_evaluation_builds_no_graph():
    stack = build_stack(ModelConfig("gru"), [0])
    with torch.inference_mode():
        y, state = stack(torch.randn(1, 1, 5, 1))
    assert y.grad_fn is None and state.grad_fn is None
