"""Stage plots_sine: PNG figures of the data split, the losses and the predictions."""

import rnnlab  # noqa: F401  (first: pins the numerical libraries' CPU code paths, rnnlab/cpu.py)

# isort: split

import argparse
from pathlib import Path

import pandas as pd

from rnnlab import data, io, plotting, references
from rnnlab.stage import load_params, run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="series csv")
    parser.add_argument("--histories", required=True, help="folder of <model>.csv training histories")
    parser.add_argument("--detail", required=True, help="evaluate_sine's detail json (for the reference lines)")
    parser.add_argument("--predictions", required=True, help="test-range predictions csv")
    parser.add_argument("--out", required=True, help="folder for the PNGs")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    p = load_params(args.params)

    values = data.read_series(args.data)
    boundary = data.split_boundary(len(values), p.sine.data.train_fraction)
    histories = {kind: pd.read_csv(Path(args.histories) / f"{kind}.csv") for kind in p.sine.models}
    refs = io.read_json(args.detail)["references"]
    out, caption = Path(args.out), plotting.sine_caption(p)
    name = "Noisy sine" if p.series.is_generated_sine else p.series.name
    validation = data.validation_points(len(values), p.sine.data.validation_fraction)
    figure = plotting.dataset(values, boundary, name=name, caption=plotting.sine_data_caption(p), validation=validation)
    io.save_figure(out / "sine_data.png", figure)
    best = references.best(refs, "rollout_mse")
    shown = None if best is None else (best, f"best classical: {references.NAMES.get(best, best)}")
    io.save_figure(out / "sine_loss.png", plotting.losses(histories, refs, caption=caption, best=shown))
    preds = pd.read_csv(args.predictions)
    figure = plotting.predictions(values, boundary, preds, caption=caption, reference_names=references.NAMES)
    io.save_figure(out / "sine_predictions.png", figure)


if __name__ == "__main__":
    run_stage(main)
