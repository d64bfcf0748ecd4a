"""Stage evaluate_ball: test metrics of every ball model, by the seed's formula and in positions."""

import argparse
from pathlib import Path

import pandas as pd

from rnnlab import ball, ball_data, io
from rnnlab.checkpoints import load_checkpoint
from rnnlab.stage import load_params, run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shards", required=True, help="folder of prepared shards")
    parser.add_argument("--models", required=True, help="folder of trained <model>.pt")
    parser.add_argument("--metrics", required=True, help="metrics json to write")
    parser.add_argument("--predictions", required=True, help="test-set predictions csv to write")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    p = load_params(args.params)

    testing = ball_data.load_split(args.shards, "testing")
    metrics, predictions = {}, None
    for kind in p.ball.models:
        saved = load_checkpoint(Path(args.models) / f"{kind}.pt", ball.model_config(p, kind))
        model, scale = saved.reference(), saved.extra["scale"]
        actual, predicted = ball.predict_positions(model, testing, scale)
        metrics[kind] = {
            "test_accuracy": ball.score(model, testing)["accuracy"].item(),
            **ball.position_metrics(actual, predicted),
            "epochs": saved.extra["epochs"],
            "best_epoch": saved.extra["best_epoch"],
        }
        if predictions is None:
            predictions = pd.DataFrame({"actual": actual})
        predictions[kind] = predicted
    io.write_json(args.metrics, metrics)
    io.write_text(args.predictions, predictions.to_csv(index=False))


if __name__ == "__main__":
    run_stage(main)
