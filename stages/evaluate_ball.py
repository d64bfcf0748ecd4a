"""Stage evaluate_ball: test metrics of every ball model and seed, by text 004's formula and in positions."""

import rnnlab  # noqa: F401  (first: pins the numerical libraries' CPU code paths, rnnlab/cpu.py)

# isort: split

import argparse
from pathlib import Path

import pandas as pd

from rnnlab import ball, ball_data, io, provenance
from rnnlab.checkpoints import load_checkpoint
from rnnlab.stage import load_params, run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shards", required=True, help="folder of prepared shards")
    parser.add_argument("--models", required=True, help="folder of trained <model>.pt")
    parser.add_argument("--metrics", required=True, help="metrics json to write: per model, the median over seeds")
    parser.add_argument("--detail", required=True, help="json to write: every seed's metrics, their median and range")
    parser.add_argument("--predictions", required=True, help="test-set predictions csv to write")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    p = load_params(args.params)

    testing = ball_data.load_split(args.shards, "testing")
    seeds = list(p.ball.train.seeds)
    per_seed, predictions = {}, None
    for kind in p.ball.models:
        saved = load_checkpoint(Path(args.models) / f"{kind}.pt", ball.model_config(p, kind), seeds,
                                provenance.ball(args.shards, p.ball.prepare.scale))
        scale = saved.extra["scale"]
        epochs, best = (ball.per_replica(saved.extra[k], len(seeds)) for k in ("epochs", "best_epoch"))
        per_seed[kind] = {}
        for r, seed in enumerate(seeds):
            metrics, actual, predicted = ball.testing_metrics(saved.reference(r), testing, scale)
            per_seed[kind][seed] = {**metrics, "epochs": epochs[r], "best_epoch": best[r]}
            if predictions is None:
                predictions = pd.DataFrame({"actual": actual})
            if r == 0:
                predictions[kind] = predicted  # the first seed's: the text's run
            if len(seeds) > 1:
                predictions[f"{kind}_seed{seed}"] = predicted
    headline, detail = ball.metrics_files(per_seed)
    # prefixed by experiment, as S, W and R are: `B.rnn.mae` cannot be read as the sine's
    io.write_json(args.detail, {"B": detail})
    io.write_json(args.metrics, {"B": headline})
    io.write_text(args.predictions, predictions.to_csv(index=False))


if __name__ == "__main__":
    run_stage(main)
