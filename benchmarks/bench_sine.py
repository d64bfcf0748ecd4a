"""Time our sine training against a straightforward text-style loop, fairly, in one run.

The text-style loop is text 003's algorithm as its text writes it: nn.GRU + nn.Linear and the
MLP trained side by side window by window, per-epoch rollouts built with autograd on, one tiny
tensor per step. Ours is ``rnnlab.sine.train`` at the same params (the compiled engine), one
seed, then every seed of ``seeds`` batched. All run in this process on one torch thread.

Fair timing: every side first runs once untimed (imports, ``torch.optim``'s first construction,
numba's cache, first-call warm-ups), then the sides are timed in turn, round after round, and each
side's best round is reported; the ratio of best times is the speed-up. The kernels' one-time
costs are printed apart: compiling them into an empty cache (in a subprocess), and loading them
from the cache, which every later process pays.

    python benchmarks/bench_sine.py               # text 003's settings: 150 epochs, seq_len 20
    python benchmarks/bench_sine.py --epochs 30 --rounds 2   # quicker
"""

from __future__ import annotations

import rnnlab  # noqa: F401  (first: pins the numerical libraries' CPU code paths, rnnlab/cpu.py)

# isort: split

import argparse
import dataclasses
import logging
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from timing import best_of
from torch import nn

from rnnlab import data, sine
from rnnlab.models import warm_up
from rnnlab.params import load

WARM_UP = "from rnnlab.models import warm_up; print(warm_up())"


def compile_seconds() -> float:
    """Seconds to compile every kernel into an empty cache, in a fresh process."""
    with tempfile.TemporaryDirectory() as cache:
        proc = subprocess.run([sys.executable, "-c", WARM_UP], env={**os.environ, "NUMBA_CACHE_DIR": cache},
                              check=True, capture_output=True, text=True)
    return float(proc.stdout.split()[-1])


def text_style(values: np.ndarray, seq_len: int, epochs: int, lr: float, hidden: int, seed: int) -> dict[str, float]:
    """Text 003's loop: GRU and MLP trained side by side, rollouts with autograd on."""
    split = int(0.8 * len(values))
    train_data, test_data = values[:split], values[split:]
    train_num = len(train_data) // (seq_len + 1) * (seq_len + 1)
    windows = train_data[:train_num].reshape(-1, seq_len + 1, 1)
    np.random.seed(seed)
    torch.manual_seed(seed)
    x_train = torch.from_numpy(windows[:, :seq_len]).to(torch.float32)
    y_train = torch.from_numpy(windows[:, 1:]).to(torch.float32)
    x_test = torch.tensor(test_data[:-1], dtype=torch.float32)
    y_test = torch.tensor(test_data[1:], dtype=torch.float32)

    gru, head = nn.GRU(1, hidden), nn.Linear(hidden, 1)
    mlp = nn.Sequential(nn.Linear(1, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 1))
    gru_optim = torch.optim.Adam([*gru.parameters(), *head.parameters()], lr=lr)
    mlp_optim = torch.optim.Adam(mlp.parameters(), lr=lr)

    def gru_forward(x, h):
        out, h = gru(torch.transpose(x, 0, 1), h)
        return head(out.view(-1, hidden)), h

    def rollout(step, x, pred_steps):
        pred, inp = [], x.view(-1, 1)
        for _ in range(pred_steps):
            inp = step(inp)
            pred.append(inp.detach())
        return torch.concat(pred).reshape(-1)

    hidden_state = None
    for _ in range(epochs):
        gru_loss = mlp_loss = 0.0
        for X, y in zip(x_train, y_train):
            if hidden_state is not None:
                hidden_state.detach_()
            pred, hidden_state = gru_forward(X[None, ...], hidden_state)
            loss = nn.functional.mse_loss(pred.view(y.shape), y)
            gru_optim.zero_grad()
            loss.backward()
            gru_optim.step()
            gru_loss += loss.item()
            loss = nn.functional.mse_loss(mlp(X.view(-1, 1)).view(y.shape), y)
            mlp_optim.zero_grad()
            loss.backward()
            mlp_optim.step()
            mlp_loss += loss.item()
        h = [hidden_state[:, -1]]

        def gru_step(inp, h=h):
            out, h[0] = gru_forward(inp, h[0])
            return out

        gru_test = nn.functional.mse_loss(rollout(gru_step, x_test[0], len(y_test)), y_test).item()
        mlp_test = nn.functional.mse_loss(rollout(mlp, x_test[0], len(y_test)), y_test).item()
    n = len(x_train)
    return {"gru_train": gru_loss / n, "gru_test": gru_test, "mlp_train": mlp_loss / n, "mlp_test": mlp_test}


def ours(p, values: np.ndarray) -> dict[str, float]:
    """rnnlab's training of the GRU and the MLP, every seed of ``p.seeds`` at once."""
    result = {}
    for kind in ("gru", "mlp"):
        _, fit, _ = sine.train(p, values, kind)
        result[f"{kind}_train"] = fit.history["train_loss"][-1, 0].item()
        result[f"{kind}_test"] = fit.history["test_loss"][-1, 0].item()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--epochs", type=int, help="override sine.train.epochs")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per side after the untimed one")
    parser.add_argument("--no-compile-time", action="store_true",
                        help="skip measuring a compile into an empty cache (a minute or more; tests skip it)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    p = load(args.params)
    if args.epochs:
        p = dataclasses.replace(p, sine=dataclasses.replace(p.sine, train=dataclasses.replace(p.sine.train, epochs=args.epochs)))
    torch.set_num_threads(p.threads)
    values = data.noisy_sine(p.sine.data)
    values = data.parse_series(data.series_csv(values))  # the csv round trip, as the pipeline sees it
    cfg, first = p.sine, p.seeds[0]
    print(f"GRU + MLP, seq_len {p.seq_len}, {cfg.train.epochs} epochs, {p.threads} thread(s); "
          f"each side warmed up once, then best of {args.rounds} alternating rounds")
    compiling = "" if args.no_compile_time else \
        f"{compile_seconds():.1f} s to compile into an empty cache (once per machine), "
    print(f"  kernels: {compiling}{warm_up():.2f} s to load from the cache (once per process); not counted below")
    one, every = f"rnnlab, seed {first}", f"rnnlab, {len(p.seeds)} seeds batched"
    best = best_of(args.rounds, {
        "text-style loop": lambda: text_style(values, p.seq_len, cfg.train.epochs, cfg.train.lr, cfg.model.hidden_size,
                                              first),
        one: lambda: ours(dataclasses.replace(p, seeds=(first,)), values),
        every: lambda: ours(p, values),
    })
    for name in ("text-style loop", one):
        seconds, r = best[name]
        print(f"  {name:16s}: {seconds:6.2f} s   seed {first}: GRU train {r['gru_train']:.6f} test {r['gru_test']:.6f}"
              f"   MLP train {r['mlp_train']:.4f} test {r['mlp_test']:.4f}")
    print("  (the text builds its MLP after its GRU, from another random state than ours: its MLP differs)")
    t_text, t_one, t_every = best["text-style loop"][0], best[one][0], best[every][0]
    print(f"  speed-up, one seed      : {t_text / t_one:6.2f}x")
    print(f"  {every}: {t_every:6.2f} s = {t_every / t_one:.2f}x one seed")


if __name__ == "__main__":
    main()
