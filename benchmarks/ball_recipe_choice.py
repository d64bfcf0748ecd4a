"""Choose the ball's improved recipe on the validation split alone, and show the choice.

The improved recipe (README, docs/ball.md) is Adam with a one-cycle schedule to lr 0.02, 60
epochs, minibatches of 128 reshuffled every epoch, every prefix of at least 2 inputs, the best
epoch by validation MAE. This script trains it and its one-key-at-a-time neighbours on the
pipeline's shards, each for every model and ``--seeds`` seeds (compiled engine, one batched pass),
and ranks the recipes by the median over seeds of the best validation MAE, the number the recipe
itself stops on. The test split is read only after the choice, to print what the chosen recipe
scores there.

    python benchmarks/ball_recipe_choice.py               # 9 recipes x 3 models x 3 seeds
    python benchmarks/ball_recipe_choice.py --seeds 2 --models gru
"""

from __future__ import annotations

import rnnlab  # noqa: F401  (first: pins the numerical libraries' CPU code paths, rnnlab/cpu.py)

# isort: split

import argparse
import dataclasses
import logging
from pathlib import Path

import numpy as np
import torch

from rnnlab import ball, ball_data
from rnnlab.params import load

IMPROVED = dict(optimizer="adam", lr=0.02, lr_schedule="onecycle", epochs=60, batch_size=128, shuffle=True,
                min_history=2, monitor="val_mae", engine="compiled")
NEIGHBOURS = {  # one key changed at a time
    "lr 0.005": {"lr": 0.005}, "lr 0.05": {"lr": 0.05},
    "30 epochs": {"epochs": 30}, "120 epochs": {"epochs": 120},
    "batch 32": {"batch_size": 32}, "whole rows only": {"min_history": None},
    "constant lr": {"lr_schedule": "constant"}, "no shuffle": {"shuffle": False},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--shards", default="data/ball/shards")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["rnn", "lstm", "gru"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    p = load(args.params)
    torch.set_num_threads(p.threads)
    recipes = {"improved": {}, **NEIGHBOURS}
    testing = ball_data.load_split(args.shards, "testing")
    scale = p.ball.prepare.scale
    print(f"median over seeds 0-{args.seeds - 1} of the best validation MAE (positions); * = the lowest per model")
    print(f"{'recipe':18s}" + "".join(f"{m:>10s}" for m in args.models))
    table, tests = {}, {}
    for name, change in recipes.items():
        recipe = dataclasses.replace(p.ball.train, **{**IMPROVED, **change, "seeds": tuple(range(args.seeds))})
        q = dataclasses.replace(p, ball=dataclasses.replace(p.ball, train=recipe))
        for kind in args.models:
            replicas, result, _ = ball.train(q, Path(args.shards), kind)
            best = [float(result.history["val_mae"][: result.stop_epochs[r], r].min()) * scale
                    for r in range(args.seeds)]
            table[name, kind] = float(np.median(best))
            tests[name, kind] = float(np.median([ball.testing_metrics(m, testing, scale)[0]["mae"] for m in replicas]))
        print(f"{name:18s}" + "".join(f"{table[name, m]:10.4f}" for m in args.models), flush=True)
    for kind in args.models:
        chosen = min(recipes, key=lambda n: table[n, kind])
        print(f"{kind}: validation chooses '{chosen}' (median validation MAE {table[chosen, kind]:.4f}; its test MAE "
              f"{tests[chosen, kind]:.4f}); the improved recipe: validation {table['improved', kind]:.4f}, "
              f"test {tests['improved', kind]:.4f}")


if __name__ == "__main__":
    main()
