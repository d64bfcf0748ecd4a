"""An independent reference for the compiled engine's loss and gradient: every replica as PyTorch's
own module (nn.RNN/nn.LSTM/nn.GRU + nn.Linear, or the MLP's nn.Linear layers) with that replica's
weights, differentiated by autograd. Nothing here runs a kernel of rnnlab."""

import rnnlab  # noqa: F401  (first: pins the numerical libraries' CPU code paths, rnnlab/cpu.py)

# isort: split

import torch

from rnnlab.engine import Batch
from rnnlab.models import MODELS


def replica_state(state, r):
    """The stack's (R, L, B, H) state (or (h, c) pair, or None) -> PyTorch's (L, B, H) for replica r."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s[r].contiguous() for s in state)
    return state[r].contiguous()


def reference_modules(stack) -> list[torch.nn.Module]:
    """One PyTorch module per replica, in the stack's dtype, holding that replica's weights."""
    modules = []
    for weights in stack.reference_state_dicts():
        with torch.random.fork_rng():
            module = MODELS[stack.cfg.kind].reference(stack.cfg).to(stack.flat.dtype)
        module.load_state_dict(weights)
        modules.append(module)
    return modules


def reference_loss_and_grad(stack, batch: Batch, state=None):
    """Per-replica MSE (R,) and the gradient of their sum in the stack's flat layout, by autograd
    through PyTorch's modules: ``stack.train_step``'s contract, computed without the engine."""
    losses, grads = [], []
    for r, module in enumerate(reference_modules(stack)):
        x = batch.x[r if batch.x.shape[0] > 1 else 0]                         # (B, T, I)
        y, _ = module(x, replica_state(state, r))                             # (B, T, O)
        if batch.last_only:
            B, T = y.shape[:2]
            lengths = batch.lengths if batch.lengths is not None else torch.full((B,), T)
            y = y[torch.arange(B), lengths - 1]                               # (B, O)
        loss = ((y - batch.target.reshape(y.shape)) ** 2).mean()
        loss.backward()
        losses.append(loss.detach())
        grads.append(dict(module.named_parameters()))
    flat = torch.cat([torch.stack([g[name].grad for g in grads]).reshape(-1) for name in stack.names])
    return torch.stack(losses), flat
