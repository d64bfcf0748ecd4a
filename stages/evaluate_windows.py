"""Stage evaluate_windows: metrics and figures of experiment W."""

import rnnlab  # noqa: F401  (first: pins the numerical libraries' CPU code paths, rnnlab/cpu.py)

# isort: split

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from rnnlab import data, io, plotting, windows
from rnnlab.checkpoints import load_checkpoint
from rnnlab.stage import load_params, run_stage

DECLARED = ('one_step_mse', 'rollout_mse')  # per model, in metrics/windows.json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="series csv")
    parser.add_argument("--models", required=True, help="folder of trained <model>.pt")
    parser.add_argument("--histories", required=True, help="folder of <model>.csv histories")
    parser.add_argument("--metrics", required=True, help="metrics json to write: the medians over seeds")
    parser.add_argument("--detail", required=True, help="json to write: every measure, with min and max over seeds")
    parser.add_argument("--predictions", required=True, help="test predictions csv to write")
    parser.add_argument("--out", required=True, help="folder for the PNGs")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    p = load_params(args.params)

    values = data.read_series(args.data)
    metrics, histories, preds = {}, {}, None
    for kind in p.windows.models:
        model = load_checkpoint(Path(args.models) / f"{kind}.pt", windows.model_config(p, kind), list(p.seeds)).stack()
        regime = windows.regime(p, values, kind)
        per_seed = windows.testing_predictions(model, regime)
        metrics[kind] = windows.summary(per_seed, regime)
        histories[kind] = io.read_frame(Path(args.histories) / f"{kind}.csv", ("epoch", "train_loss"))
        if preds is None:
            preds = pd.DataFrame({"step": np.arange(regime.boundary, len(values)), "truth": regime.test.double().numpy()})
        one_step = np.full(len(preds), np.nan)
        one_step[p.windows.time_step : p.windows.time_step + len(regime.test_y)] = per_seed["one_step"][0].double().numpy()
        preds[f"{kind}_one_step"], preds[f"{kind}_free"] = one_step, per_seed["free"][0].double().numpy()
    # prefixed by experiment (no name collides across files); declared metrics are few (`dvc metrics
    # show` is one row of every key): the spread over seeds is in the detail
    io.write_json(args.detail, {"W": metrics})
    io.write_json(args.metrics, {"W": {kind: {key: m[key] for key in DECLARED} for kind, m in metrics.items()}})
    io.write_text(args.predictions, preds.to_csv(index=False))
    out, boundary = Path(args.out), int(len(values) * p.windows.data.train_fraction)
    caption = plotting.windows_caption(p)
    io.save_figure(out / "windows_predictions.png", plotting.window_predictions(values, boundary, preds, caption=caption))
    panels = {"train_loss": "Train loss (full batch)", "test_loss": "Test: one step ahead"}
    figure = plotting.curves(histories, "epoch", panels, "Sliding windows (text 001)", caption=caption)
    io.save_figure(out / "windows_loss.png", figure)


if __name__ == "__main__":
    run_stage(main)
