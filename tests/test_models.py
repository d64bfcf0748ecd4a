"""The registry: every architecture behind one interface, replicas seeded like the texts."""

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from rnnlab import closed_loop, kernels, warm
from rnnlab.engine import Batch
from rnnlab.errors import ParamsError
from rnnlab.models import MODELS, ModelConfig, build_reference, build_stack, detach_state, parameter_count, warm_up
from rnnlab.training import CompiledAdam


@pytest.mark.parametrize("kind", list(MODELS))
def test_every_model_maps_a_sequence_to_a_sequence(kind):
    stack = build_stack(ModelConfig(kind), [0, 1])
    y, state = stack(torch.randn(1, 3, 20, 1))  # (R=1 shared, B, T, I)
    assert y.shape == (2, 3, 20, 1)
    if kind == "mlp":
        assert state is None
    elif kind == "lstm":
        assert [s.shape for s in state] == [(2, 1, 3, 16)] * 2
    else:
        assert state.shape == (2, 1, 3, 16)


@pytest.mark.parametrize("kind", list(MODELS))
def test_reference_model_has_the_same_interface(kind):
    y, _ = build_reference(ModelConfig(kind))(torch.randn(3, 20, 1))
    assert y.shape == (3, 20, 1)


def test_unknown_model_lists_the_choices():
    with pytest.raises(ParamsError, match=r"unknown model 'tcn'; choose from \['gru', 'lstm', 'mlp', 'rnn'\]"):
        ModelConfig("tcn")


def test_replicas_are_initialised_exactly_as_the_seed_builds_its_model():
    # text 003: torch.manual_seed(0), then nn.GRU(1, 16), then nn.Linear(16, 1)
    torch.manual_seed(0)
    gru, linear = nn.GRU(1, 16), nn.Linear(16, 1)
    stack = build_stack(ModelConfig("gru"), [5, 0])
    replica = stack.reference_state_dicts()[1]
    assert torch.equal(replica["rnn.weight_hh_l0"], gru.weight_hh_l0)
    assert torch.equal(replica["head.weight"], linear.weight)


def test_text_003_parameter_counts():
    assert parameter_count(ModelConfig("gru")) == 3 * (16 + 16 * 16 + 2 * 16) + 17
    assert parameter_count(ModelConfig("mlp")) == (2 * 32) + (33 * 16) + 17


def test_tiny_init_draws_recurrent_weights_from_a_narrow_normal():
    model = build_reference(ModelConfig("rnn", init_std=0.001), seed=0)
    weights = torch.cat([p.flatten() for p in model.rnn.parameters()])
    assert weights.abs().max() < 0.006 and 0.0005 < weights.std() < 0.002


def test_detach_state_cuts_tensor_and_lstm_pair_alike():
    h = torch.ones(2, requires_grad=True) * 2
    assert not detach_state(h).requires_grad
    pair = detach_state((h, h * 3))
    assert isinstance(pair, tuple) and not any(s.requires_grad for s in pair)
    assert detach_state(None) is None


def test_warm_up_compiles_what_the_stages_use():
    """After ``warm_up`` the stages' calls need no new kernel signature (a fresh clone's stages
    would compile it): several replicas' rollouts (a writable input, where one replica's was a
    read-only view), two-layer stacks (the windows), Adam."""
    warm_up()
    dispatchers = {name: f for name, f in vars(kernels).items() if hasattr(f, "signatures")}
    before = {name: len(f.signatures) for name, f in dispatchers.items()}
    for kind in MODELS:
        stack = build_stack(ModelConfig(kind, hidden_size=3, num_layers=2 if kind != "mlp" else 1), [0, 1, 2])
        x = torch.randn(1, 4, 5, 1)
        stack.train_step(Batch(x, torch.zeros(4, 1), last_only=True), None)
        stack.train_step(Batch(x, torch.zeros(4, 5, 1)), None)
        CompiledAdam([stack.flat], lr=0.01).step()
        build_stack(ModelConfig(kind, hidden_size=3), [0, 1, 2]).rollout(x[:, :, :1], None, 3)
    assert {name: len(f.signatures) for name, f in dispatchers.items()} == before


SIGNATURES_AFTER_EACH_PART = """
import json, sys
from rnnlab import closed_loop, kernels, warm
for part in sys.argv[1:]:
    warm.warm_up(None if part == "whole" else part)
    print(json.dumps({f"{module.__name__}.{name}": sorted(map(str, f.signatures)) for module in (kernels, closed_loop)
                      for name, f in vars(module).items() if hasattr(f, "signatures")}))
"""


def signatures_after_each(*parts: str) -> list[dict[str, set[str]]]:
    """Each kernel's loaded signatures after each warm-up part in turn, in one fresh process."""
    proc = subprocess.run([sys.executable, "-c", SIGNATURES_AFTER_EACH_PART, *parts], capture_output=True, text=True,
                          check=True)
    return [{name: set(sigs) for name, sigs in json.loads(line).items()} for line in proc.stdout.splitlines()]


def test_make_setups_two_warm_up_halves_load_every_signature_of_the_whole_warm_up():
    """``make setup`` compiles the kernels in two processes (``python -m rnnlab.warm one_layer``
    and ``rest``): together they must leave nothing for a stage to compile that the whole warm-up
    would have compiled, the closed loop's kernels included."""
    one_layer, both, whole = signatures_after_each("one_layer", "rest", "whole")
    [rest] = signatures_after_each("rest")
    assert both == whole, "the whole warm-up loaded signatures the two halves did not"
    assert {name: one_layer[name] | rest[name] for name in whole} == whole
    assert one_layer != whole and rest != whole, "each half leaves work to the other"


def test_the_warm_up_compiles_what_a_closed_loop_stage_uses():
    """``-S sine.train.horizon=k`` trains every architecture on the closed loop, several seeds,
    the state carried from window to window: after the warm-up none of it compiles."""
    warm.warm_up_closed_loop()
    dispatchers = {name: f for name, f in vars(closed_loop).items() if hasattr(f, "signatures")}
    before = {name: len(f.signatures) for name, f in dispatchers.items()}
    for kind in MODELS:
        stack = build_stack(ModelConfig(kind, hidden_size=3), [0, 1, 2])
        x = torch.randn(1, 1, 6, 1)
        _, _, state = closed_loop.train_step(stack, x, torch.randn(1, 6, 1), None, horizon=3)
        closed_loop.train_step(stack, x, torch.randn(1, 6, 1), state, horizon=3)
    assert {name: len(f.signatures) for name, f in dispatchers.items()} == before
