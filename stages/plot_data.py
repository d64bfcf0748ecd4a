"""Stage plot_data: the narrow csvs that dvc.yaml's top-level plots read (one per plot)."""

import rnnlab  # noqa: F401  (first: pins the numerical libraries' CPU code paths, rnnlab/cpu.py)

# isort: split

import argparse
from pathlib import Path

import pandas as pd

from rnnlab import io, plot_data
from rnnlab.stage import load_params, run_stage


def read_histories(folder: str, models) -> dict[str, pd.DataFrame]:
    return {kind: pd.read_csv(Path(folder) / f"{kind}.csv") for kind in models}


def split_columns(frame: pd.DataFrame, skip: set[str]) -> dict[str, tuple[str, str]]:
    """``gru_update`` -> (``gru``, ``update``) for every column but ``skip``."""
    return {c: tuple(c.split("_", 1)) for c in frame.columns if c not in skip}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("sine", "ball", "windows", "random"):
        parser.add_argument(f"--{name}-histories", required=True, help=f"folder of {name} <model>.csv histories")
    for name in ("sine", "ball", "windows"):
        parser.add_argument(f"--{name}-predictions", required=True, help=f"{name} predictions csv")
    parser.add_argument("--gradient-flow", required=True, help="analyze_gradients' curves csv")
    parser.add_argument("--gates", required=True, help="analyze_gates' curves csv")
    parser.add_argument("--out", required=True, help="folder for the plot csvs (replaced)")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    p = load_params(args.params)

    sine = read_histories(args.sine_histories, p.sine.models)
    ball = read_histories(args.ball_histories, p.ball.models)
    windows = read_histories(args.windows_histories, p.windows.models)
    random = read_histories(args.random_histories, p.random_windows.models)
    sine_predictions = pd.read_csv(args.sine_predictions)
    ball_predictions = pd.read_csv(args.ball_predictions)
    windows_predictions = pd.read_csv(args.windows_predictions)
    gradient_flow = pd.read_csv(args.gradient_flow)
    gates = pd.read_csv(args.gates)
    tables = {
        "sine_test_loss": plot_data.histories(sine, "epoch", "test_loss"),
        "sine_train_loss": plot_data.histories(sine, "epoch", "train_loss"),
        "sine_predictions": plot_data.series(
            sine_predictions, "step", {"truth": "truth", **{kind: kind for kind in p.sine.models}}
        ),
        "ball_val_accuracy": plot_data.histories(ball, "epoch", "val_accuracy"),
        "ball_val_mae": plot_data.histories(ball, "epoch", "val_mae"),
        "ball_test_predictions": plot_data.spread(
            ball_predictions, "actual", {kind: kind for kind in p.ball.models}, "predicted"
        ),
        "gradient_flow": plot_data.curves(
            gradient_flow, "steps_back", split_columns(gradient_flow, {"steps_back"}), "gradient"
        ),
        "gates": plot_data.curves(
            gates, "step", split_columns(gates, {"step", "truth", *(c for c in gates if c.endswith("_pred"))}),
            "activation",
        ),
        "windows_test_loss": plot_data.histories(windows, "epoch", "test_loss"),
        "windows_predictions": plot_data.series(
            windows_predictions, "step", {"truth": "truth", **{f"{kind}_one_step": kind for kind in p.windows.models}}
        ),
        "random_train_loss": plot_data.histories(random, "iteration", "train_loss"),
        "random_test_rollout": plot_data.histories(random, "iteration", "test_rollout"),
    }
    with io.atomic_dir(args.out) as tmp:
        for name, table in tables.items():
            plot_data.write(tmp / f"{name}.csv", table)


if __name__ == "__main__":
    run_stage(main)
