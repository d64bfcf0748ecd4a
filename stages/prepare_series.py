"""Stage prepare_series: experiment S's series, checked and in the units the models train in.

Reads ``series.csv_path`` (the generated sine, or a csv of yours), refuses any defect with the
file and line named before writing anything, then writes three files, every value exact:
the series in its own units (for plots and metrics), the series scaled by the training part's
statistics (``series.scaling``; for training; the identity for the texts' runs), and the scaling.
"""

import argparse
import logging

from rnnlab import data, io, transforms
from rnnlab.stage import load_params, run_stage, watch

log = logging.getLogger("prepare_series")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    # dvc.yaml passes no path: a params value on a shell command line is code (a quote in it ends the quoting)
    parser.add_argument("csv", nargs="?", help="the series csv (default: params.yaml's series.csv_path)")
    parser.add_argument("--series", required=True, help="csv to write: the series, one value per line")
    parser.add_argument("--scaled", required=True, help="csv to write: the series in the models' units")
    parser.add_argument("--scaling", required=True, help="json to write: the scaling's mean and std")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    p = load_params(args.params)
    args.csv = args.csv or p.series.csv_path
    watch(args.csv)  # replaced while this stage reads it: fail rather than let DVC record the new one

    raw = data.read_user_series(args.csv, p.series.column, p.series.gaps)
    data.check_length(raw, p, source=args.csv)
    if p.series.recipe == "forecaster":  # transformed, then scaled by the transformed training part
        units = transforms.Units.fit(raw, p, source=args.csv)
        scaled, saved, to_model, lag = units.to_model(raw, args.csv), units.to_json(), units.scaler, units.transform.lag
    else:
        to_model = data.Scaler.fit(raw, p.sine.data.train_fraction, p.series.scaling)
        scaled, saved, lag = to_model.scale(raw), to_model.to_json(), 0
    transforms.warn_if_test_beyond_training(scaled, transforms.boundary(p, len(raw)) - lag, p.series.transform, args.csv)
    io.write_text(args.series, data.exact_csv(raw))
    io.write_text(args.scaled, data.exact_csv(scaled))
    io.write_json(args.scaling, saved)
    log.info("%s: %d points, transform %s, scaling %s (mean %.6g, std %.6g)", args.csv, len(raw), p.series.transform,
             p.series.scaling, to_model.mean, to_model.std)


if __name__ == "__main__":
    run_stage(main)
