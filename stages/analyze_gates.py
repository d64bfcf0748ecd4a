"""Stage analyze_gates: GRU and LSTM gate activity along the test rollout."""

import rnnlab  # noqa: F401  (first: pins the numerical libraries' CPU code paths, rnnlab/cpu.py)

# isort: split

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from rnnlab import analysis, data, io, plotting, sine
from rnnlab.checkpoints import load_checkpoint
from rnnlab.stage import load_params, run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="series csv")
    parser.add_argument("--models", required=True, help="folder of trained <model>.pt")
    parser.add_argument("--metrics", required=True, help="metrics json to write")
    parser.add_argument("--curves", required=True, help="gates csv to write (first seed)")
    parser.add_argument("--figure", required=True, help="PNG to write")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    p = load_params(args.params)

    values = data.read_series(args.data)
    split = data.split_series(values, p.sine.data.train_fraction)
    frame = pd.DataFrame({"step": np.arange(split.boundary + 1, len(values)), "truth": split.test[1:].double().numpy()})
    metrics = {}
    for kind in [k for k in p.sine.models if k in analysis.GATES]:
        saved = load_checkpoint(Path(args.models) / f"{kind}.pt", sine.model_config(p, kind), list(p.seeds))
        preds, gates = analysis.rollout_gates(saved.stack(), split.test[0], saved.state, len(split.test) - 1)
        frame[f"{kind}_pred"] = preds[0].double().numpy()
        for gate, activation in gates.items():
            frame[f"{kind}_{gate}"] = activation[0].double().numpy()
        # per gate: its mean over the rollout, median over seeds
        metrics[kind] = {f"{gate}_mean": float(np.median(activation.mean(1).numpy())) for gate, activation in gates.items()}
    io.write_json(args.metrics, {"gates": metrics})  # prefixed: no name collides with another file's
    io.write_text(args.curves, frame.to_csv(index=False))
    caption = plotting.sine_caption(p, models=list(metrics))  # the gated models only
    io.save_figure(args.figure, plotting.gates(frame, caption=caption))


if __name__ == "__main__":
    run_stage(main)
