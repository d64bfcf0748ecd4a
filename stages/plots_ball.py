"""Stage plots_ball: PNG figures of the ball training curves and test predictions."""

import rnnlab  # noqa: F401  (first: pins the numerical libraries' CPU code paths, rnnlab/cpu.py)

# isort: split

import argparse
from pathlib import Path

import pandas as pd

from rnnlab import io, plotting
from rnnlab.stage import load_params, run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--histories", required=True, help="folder of <model>.csv training histories")
    parser.add_argument("--predictions", required=True, help="test-set predictions csv")
    parser.add_argument("--out", required=True, help="folder for the PNGs")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    p = load_params(args.params)

    histories = {kind: pd.read_csv(Path(args.histories) / f"{kind}.csv") for kind in p.ball.models}
    out, caption = Path(args.out), plotting.ball_caption(p)
    io.save_figure(out / "ball_training.png", plotting.ball_training(histories, caption=caption))
    io.save_figure(out / "ball_predictions.png", plotting.ball_predictions(pd.read_csv(args.predictions), caption=caption))


if __name__ == "__main__":
    run_stage(main)
