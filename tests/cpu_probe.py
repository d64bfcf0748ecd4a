"""Hashes of what each pinned library computes, one line of JSON: run by tests/test_cpu.py on
this CPU and on others emulated by qemu, whose lines must be equal.

Each part exercises one library the way a stage does: PyTorch (MKL's products, ATen's
vectorised kernels) through text 004's packed recurrent training and the gradient analysis'
batched products; numpy's transcendental loops; OpenBLAS through statsmodels' references.
"""

import rnnlab  # noqa: F401  (first: pins the numerical libraries' CPU code paths, rnnlab/cpu.py)

# isort: split

import hashlib
import json
import sys
import warnings

import numpy as np
import torch
from torch.nn.utils.rnn import pack_padded_sequence


def digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a.detach().numpy() if isinstance(a, torch.Tensor) else a).tobytes())
    return h.hexdigest()[:16]


def torch_packed_training(kind: str) -> str:
    """Text 004's loop in small: packed histories, the last real step's output, SGD lr 0.1."""
    torch.manual_seed(0)
    layer = getattr(torch.nn, kind)(1, 8, batch_first=True)
    head = torch.nn.Linear(8, 1)
    optimizer = torch.optim.SGD([*layer.parameters(), *head.parameters()], lr=0.1)
    lengths = torch.randint(4, 10, (100,))
    x = torch.randn(100, 9, 1) / 5
    target = torch.randn(100, 1) / 5
    for _ in range(5):
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, state = layer(packed)
        h = state[0] if isinstance(state, tuple) else state
        loss = torch.nn.functional.mse_loss(head(h[-1]), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return digest(*layer.parameters(), *head.parameters())


def torch_products() -> str:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 99, 16, generator=g), torch.randn(5, 16, 48, generator=g)
    x, w = torch.randn(7, 333, generator=g), torch.randn(333, 65, generator=g)
    return digest(torch.bmm(a, b), x @ w, torch.sigmoid(a).norm(dim=1), torch.tanh(b).sum(dim=2))


def numpy_loops() -> str:
    x = np.random.default_rng(0).normal(0, 3, 20000)
    return digest(np.exp(x), np.log(np.abs(x)), np.power(np.abs(x), 1.7), np.arctan(x), np.expm1(x), np.sin(x))


def statsmodels_references() -> str:
    from statsmodels.tsa.ar_model import AutoReg
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    rng = np.random.RandomState(42)
    y = np.sin(np.linspace(0, 10 * np.pi, 1000)) + rng.normal(0, 0.1, 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ar = AutoReg(y[:800], lags=20).fit()
        smoothing = ExponentialSmoothing(y[:800], trend="add").fit()
    return digest(ar.params, ar.predict(800, 999), smoothing.params["smoothing_level"], smoothing.forecast(50))


PARTS = {"rnn": lambda: torch_packed_training("RNN"), "gru": lambda: torch_packed_training("GRU"),
         "lstm": lambda: torch_packed_training("LSTM"), "products": torch_products, "numpy": numpy_loops,
         "statsmodels": statsmodels_references}

if __name__ == "__main__":
    torch.set_num_threads(1)
    names = sys.argv[1:] or list(PARTS)
    print(json.dumps({name: PARTS[name]() for name in names}))
