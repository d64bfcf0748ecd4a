"""What a GRU training step costs from hidden 8 to 1024: rnnlab against PyTorch and the arithmetic.

The job, at every size: a GRU (1 input, ``hidden`` units, one layer) and a Linear head trained
with Adam (lr 5e-4) on windows of 20 steps of noisy sines, ``batch`` rows per window, the state
carried from window to window and detached (text 003's stateful recipe, batch 1 there). Timed:

* rnnlab      the compiled engine: ``stack.train_step`` + ``CompiledAdam`` (what ``rnnlab.sine`` runs);
* texts' loop text 003's step as its text writes it: nn.GRU over the window (sequence first),
              ``head(out.view(-1, H))``, mse_loss, zero_grad, backward, Adam, ``loss.item()``;
* plain path  PyTorch's own best plain path: nn.GRU (batch first) over the whole window, the
              head, mse_loss, backward, ``Adam(foreach=True)``, no ``.item()``;
* floor       the arithmetic: the matrix products one training step cannot avoid (forward
              h W_hh^T each step, backward d W_hh each step, the weight gradients once over
              all steps, the input projections), each timed through this machine's BLAS
              (numpy's and PyTorch's, float32 as PyTorch trains; the faster) on exactly
              those shapes, in this run.

Every side starts from the same weights (torch seed 0) and data, so their losses after the same
steps agree (printed: the largest difference between rnnlab's and the plain path's, to float32
rounding). Every side is built untimed (weights, optimizer, the floor's matrices) and warmed up
untimed, then only its training is timed, the sides alternately, best of ``--repeat``.
One torch thread and one BLAS thread for everyone.

    python benchmarks/bench_scale.py                       # hidden 8..1024, batch 1 and 100: a few minutes
    python benchmarks/bench_scale.py --hidden 16 256 --batch 1 --repeat 5 --work 2
"""

from __future__ import annotations

import rnnlab  # noqa: F401  (first: pins the numerical libraries' CPU code paths, rnnlab/cpu.py)

# isort: split

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy/scipy load their BLAS: one thread, as torch below

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from rnnlab import kernels  # noqa: E402
from rnnlab.engine import Batch  # noqa: E402
from rnnlab.models import ModelConfig, build_stack  # noqa: E402
from rnnlab.training import CompiledAdam  # noqa: E402

SEQ_LEN, LR = 20, 5e-4


def windows(batch: int, steps: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``steps`` consecutive windows (x (B, T, 1), y (B, T, 1)) of ``batch`` noisy sines, one phase a row."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps * SEQ_LEN + 1) * 0.1
    series = np.sin(t[None, :] + rng.uniform(0, 2 * np.pi, (batch, 1))) + rng.normal(0, 0.05, (batch, len(t)))
    series = torch.from_numpy(series).float().unsqueeze(-1)                          # (B, steps*T + 1, 1)
    return [(series[:, s * SEQ_LEN : (s + 1) * SEQ_LEN], series[:, s * SEQ_LEN + 1 : (s + 1) * SEQ_LEN + 1])
            for s in range(steps)]


# Every side is a setup, untimed (fresh weights from seed 0, the optimizer, the floor's
# matrices), that returns the training to time: ``side(hidden, batch)`` -> ``train(data) -> losses``.


def rnnlab_side(hidden: int, batch: int):
    stack = build_stack(ModelConfig("gru", hidden_size=hidden), [0])
    optimizer = CompiledAdam(stack.parameters(), lr=LR)

    def train(data) -> list[float]:
        state, losses = None, []
        for x, y in data:
            loss, _, state = stack.train_step(Batch(x.unsqueeze(0), y), state)
            optimizer.step()
            losses.append(float(loss[0]))
        return losses
    return train


def reference(hidden: int, batch_first: bool):
    torch.manual_seed(0)  # build_stack's replica of seed 0: the same weights
    gru, head = nn.GRU(1, hidden, batch_first=batch_first), nn.Linear(hidden, 1)
    return gru, head


def texts_side(hidden: int, batch: int):
    gru, head = reference(hidden, batch_first=False)
    optimizer = torch.optim.Adam([*gru.parameters(), *head.parameters()], lr=LR)

    def train(data) -> list[float]:
        state, losses = None, []
        for x, y in data:
            if state is not None:
                state.detach_()
            out, state = gru(torch.transpose(x, 0, 1), state)                          # (T, B, H)
            pred = head(out.view(-1, hidden))                                           # (T*B, 1)
            loss = nn.functional.mse_loss(pred.view(out.shape[0], -1).T.reshape(y.shape), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return losses
    return train


def plain_side(hidden: int, batch: int):
    gru, head = reference(hidden, batch_first=True)
    optimizer = torch.optim.Adam([*gru.parameters(), *head.parameters()], lr=LR, foreach=True)

    def train(data) -> list[float]:
        state, losses = None, []
        for x, y in data:
            out, state = gru(x, state)                                                  # (B, T, H)
            loss = nn.functional.mse_loss(head(out), y)
            optimizer.zero_grad(set_to_none=False)
            loss.backward()
            optimizer.step()
            state = state.detach()
            losses.append(loss.detach())
        return [float(v) for v in losses]
    return train


def floor_products(hidden: int, batch: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The matrix products of one training step, as (a, b, out) float32 arrays for np.dot(a, b, out)."""
    G, rows = 3 * hidden, SEQ_LEN * batch
    rng = np.random.default_rng(0)
    mats = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    step = [(mats(batch, hidden), mats(hidden, G), mats(batch, G)),         # forward: h W_hh^T
            (mats(batch, G), mats(G, hidden), mats(batch, hidden))]         # backward: d W_hh into dL/dh
    once = [(mats(rows, 1), mats(1, G), mats(rows, G)),                     # input projections, every step
            (mats(G, rows), mats(rows, hidden), mats(G, hidden)),           # dL/dW_hh over all steps
            (mats(G, rows), mats(rows, 1), mats(G, 1)),                     # dL/dW_ih
            (mats(rows, hidden), mats(hidden, 1), mats(rows, 1)),           # the head
            (mats(rows, 1), mats(1, hidden), mats(rows, hidden))]           # the head's backward
    return step * SEQ_LEN + once


def flops(products) -> float:
    return sum(2.0 * a.shape[0] * a.shape[1] * b.shape[1] for a, b, _ in products)


def products_train(products, product):
    def train(data) -> list[float]:
        for _ in data:
            for a, b, out in products:
                product(a, b, out=out)
        return []
    return train


def floor_side(hidden: int, batch: int):
    return products_train(floor_products(hidden, batch), np.dot)


def floor_torch_side(hidden: int, batch: int):
    """The same products through PyTorch's BLAS (torch.mm into preallocated outputs)."""
    return products_train([tuple(map(torch.from_numpy, p)) for p in floor_products(hidden, batch)], torch.mm)


SIDES = {"rnnlab": rnnlab_side, "texts": texts_side, "plain path": plain_side, "floor": floor_side,
         "floor torch": floor_torch_side}


def measure(hidden: int, batch: int, steps: int, repeat: int) -> dict:
    data = windows(batch, steps)
    best, losses = {}, {}
    for side in SIDES:  # warm-up, untimed: first calls, compiled kernels, torch's lazy imports
        losses[side] = SIDES[side](hidden, batch)(data[:2])
    for _ in range(repeat):
        for side in SIDES:  # alternated, so load drifts hit every side alike
            train = SIDES[side](hidden, batch)
            start = time.perf_counter()
            out = train(data)
            seconds = time.perf_counter() - start
            best[side] = min(best.get(side, np.inf), seconds)
            losses[side] = out
    best["floor"] = min(best["floor"], best.pop("floor torch"))  # the faster BLAS is the floor
    return {"seconds": {s: t / steps for s, t in best.items()}, "losses": losses,
            "gflop": flops(floor_products(hidden, batch)) / 1e9}


def steps_for(hidden: int, batch: int, work: float) -> int:
    """Windows per timed run: about ``work`` GFLOP of arithmetic, between 5 and 200 windows."""
    return int(np.clip(work / (flops(floor_products(hidden, batch)) / 1e9), 5, 200))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, nargs="+", default=[8, 16, 64, 256, 1024])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per side; the best is reported")
    parser.add_argument("--work", type=float, default=0.5, help="GFLOP of arithmetic per timed run (sets the windows)")
    parser.add_argument("--steps", type=int, default=None, help="windows per timed run (overrides --work)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"GRU + Linear, windows of {SEQ_LEN} steps, Adam; ms per training step, best of {args.repeat}; "
          f"rnnlab takes BLAS from {kernels.BLAS_FROM_BATCHED} units with 2 rows a replica or more, "
          f"from {kernels.BLAS_FROM} with one")
    print(f"{'hidden':>6} {'batch':>5} {'steps':>5} {'GFLOP':>7} {'rnnlab':>9} {'texts':>9} {'plain':>9} {'floor':>9}"
          f" {'texts/rnnlab':>12} {'plain/rnnlab':>12} {'rnnlab/floor':>12} {'|d plain|':>9} {'|d texts|':>9} {'loss':>9}")
    print("(|d plain|, |d texts|: the largest difference between rnnlab's loss and theirs over the same steps)")
    for batch in args.batch:
        for hidden in args.hidden:
            steps = args.steps or steps_for(hidden, batch, args.work)
            m = measure(hidden, batch, steps, args.repeat)
            ms = {s: 1e3 * t for s, t in m["seconds"].items()}
            agree = max(abs(a - b) for a, b in zip(m["losses"]["rnnlab"], m["losses"]["plain path"]))
            agree_texts = max(abs(a - b) for a, b in zip(m["losses"]["rnnlab"], m["losses"]["texts"]))
            print(f"{hidden:>6} {batch:>5} {steps:>5} {m['gflop']:>7.4f} {ms['rnnlab']:>9.3f} {ms['texts']:>9.3f} "
                  f"{ms['plain path']:>9.3f} {ms['floor']:>9.3f} {ms['texts'] / ms['rnnlab']:>11.1f}x "
                  f"{ms['plain path'] / ms['rnnlab']:>11.1f}x {ms['rnnlab'] / ms['floor']:>11.1f}x "
                  f"{agree:>9.2e} {agree_texts:>9.2e} {m['losses']['rnnlab'][-1]:>9.6f}",
                  flush=True)


if __name__ == "__main__":
    main()
