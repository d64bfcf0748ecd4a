"""Stage evaluate_sine: metrics of every trained model and of the classical references."""

import rnnlab  # noqa: F401  (first: pins the numerical libraries' CPU code paths, rnnlab/cpu.py)

# isort: split

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from rnnlab import data, io, provenance, recipe, references, sine
from rnnlab.checkpoints import load_checkpoint
from rnnlab.models import parameter_count
from rnnlab.stage import absurd_results, load_params, run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", required=True, help="prepared series csv, in its own units (for the metrics)")
    parser.add_argument("--data", required=True, help="prepared series csv, in the models' units (their input)")
    parser.add_argument("--scaling", required=True, help="the scaling json prepare_series wrote")
    parser.add_argument("--models", required=True, help="folder of trained <model>.pt")
    parser.add_argument("--histories", required=True, help="folder of <model>.csv training histories")
    parser.add_argument("--metrics", required=True, help="metrics json to write: the headline medians")
    parser.add_argument("--detail", required=True, help="json to write: every seed, every measure")
    parser.add_argument("--predictions", required=True, help="test-range rollouts csv to write")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    p = load_params(args.params)

    values = data.read_series(args.data)
    to_series = data.Scaler.read(args.scaling)
    series = data.read_series(args.series)  # exactly the csv's values: fitted references are sensitive to an ulp
    split = data.split_series(series, p.sine.data.train_fraction)
    seeds = list(p.seeds)
    predictions = pd.DataFrame({"step": np.arange(split.boundary + 1, len(series)), "truth": split.test[1:].double().numpy()})
    per_seed, parameters, ensembles = {}, {}, {}
    units = recipe.Units.read(args.scaling) if p.series.recipe == "forecaster" else None
    trained_on = provenance.sine(p, args.series, args.data, args.scaling)
    for kind in p.sine.models:
        saved = load_checkpoint(Path(args.models) / f"{kind}.pt", sine.model_config(p, kind), seeds, trained_on)
        model = saved.stack()
        history = io.read_frame(Path(args.histories) / f"{kind}.csv", ("epoch", "train_loss"))
        if units is None:
            preds = sine.evaluate(p, values, to_series, model, saved.state)
        else:  # the forecaster recipe: every answer read from the seq_len values before it, undone
            preds = recipe.answers(p, series, values, units, model)
        per_seed[kind] = sine.seed_metrics(p, series, history, preds, seeds)
        if units is not None:
            recipe.restore_validation(per_seed[kind], history)
        ensembles[kind] = sine.ensemble_metrics(p, series, preds)
        parameters[kind] = parameter_count(model.cfg)
        for r, seed in enumerate(seeds):
            predictions[f"{kind}_seed{seed}"] = preds["rollout"][r].double().numpy()
        predictions[kind] = predictions[f"{kind}_seed{seeds[0]}"]  # the first seed's: the texts' run
    answers = sine.reference_predictions(p, series)
    metrics, detail = sine.metrics_files(per_seed, parameters, sine.reference_metrics(p, series, answers), ensembles,
                                         headline=sine.HEADLINE[p.series.recipe])
    if best := references.best(detail["references"], "rollout_mse"):  # drawn beside the networks' rollouts
        predictions[f"reference_{best}"] = answers[best]["rollout"]
    medians = {kind: model["median"] for kind, model in detail["models"].items()}
    for line in absurd_results({**medians, **detail["references"]}, "rollout_mse", "zero", p.sine.models):
        print(line, file=sys.stderr)
    io.write_json(args.detail, detail)
    io.write_json(args.metrics, metrics)
    io.write_text(args.predictions, predictions.to_csv(index=False))


if __name__ == "__main__":
    run_stage(main)
