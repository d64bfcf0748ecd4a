"""Stage analyze_gradients: |dL_T/dh_t| back through time, trained vs freshly initialised."""

import rnnlab  # noqa: F401  (first: pins the numerical libraries' CPU code paths, rnnlab/cpu.py)

# isort: split

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from rnnlab import analysis, data, io, plotting, sine
from rnnlab.checkpoints import load_checkpoint
from rnnlab.errors import ParamsError
from rnnlab.models import MODELS, build_stack
from rnnlab.stage import load_params, run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="series csv")
    parser.add_argument("--models", required=True, help="folder of trained <model>.pt")
    parser.add_argument("--histories", required=True, help="folder of <model>.csv training histories")
    parser.add_argument("--metrics", required=True, help="metrics json to write")
    parser.add_argument("--curves", required=True, help="gradient-flow csv to write")
    parser.add_argument("--figure", required=True, help="PNG to write")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    p = load_params(args.params)

    split = data.split_series(data.read_series(args.data), p.sine.data.train_fraction)
    if p.analysis.window + 1 > len(split.train):  # it was cut to what there is, without a word
        raise ParamsError(f"analysis.window {p.analysis.window} is more steps than the training part holds "
                          f"({len(split.train) - 1}); choose at most that")
    series = split.train[: p.analysis.window + 1]
    curves = pd.DataFrame({"steps_back": np.arange(len(series) - 2, -1, -1)})  # h_1 .. h_T
    metrics = {}
    for kind in [k for k in p.sine.models if MODELS[k].recurrent]:
        cfg = sine.model_config(p, kind)
        trained = load_checkpoint(Path(args.models) / f"{kind}.pt", cfg, list(p.seeds)).stack()
        initial = build_stack(cfg, list(p.seeds))
        history = io.read_frame(Path(args.histories) / f"{kind}.csv", ("epoch", "train_grad_norm"))
        metrics[kind] = {"train_grad_norm_max": float(history.train_grad_norm.max())}
        for when, model in (("trained", trained), ("initial", initial)):
            norms = analysis.gradient_flow(model, series).mean(0).double().numpy()  # mean over seeds
            curves[f"{kind}_{when}"] = norms
            # log10: dvc metrics diff rounds to 5 decimals; null: underflowed to 0
            metrics[kind][f"{when}_log10_ratio"] = analysis.log10_ratio(float(norms[0]), float(norms[-1]))
    io.write_json(args.metrics, {"gradients": metrics})  # prefixed: no name collides with another file's
    # a gradient that underflowed to exactly 0 is written as a gap: a log axis has no place for it
    io.write_text(args.curves, curves.replace(0.0, np.nan).to_csv(index=False))
    caption = plotting.gradient_caption(p, models=list(metrics))  # the recurrent models only
    io.save_figure(args.figure, plotting.gradient_flow(curves, caption=caption))


if __name__ == "__main__":
    run_stage(main)
