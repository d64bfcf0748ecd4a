"""Stage evaluate_random: metrics and figures of experiment R."""

import rnnlab  # noqa: F401  (first: pins the numerical libraries' CPU code paths, rnnlab/cpu.py)

# isort: split

import argparse
from pathlib import Path

from rnnlab import io, plotting, random_windows
from rnnlab.checkpoints import load_checkpoint
from rnnlab.stage import load_params, run_stage

DECLARED = ('rollout_mse', 'train_loss')  # per model, in metrics/random_windows.json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", required=True, help="folder of trained <model>.pt")
    parser.add_argument("--histories", required=True, help="folder of <model>.csv histories")
    parser.add_argument("--metrics", required=True, help="metrics json to write: the medians over seeds")
    parser.add_argument("--detail", required=True, help="json to write: every measure, with min and max over seeds")
    parser.add_argument("--predictions", required=True, help="free-run predictions csv to write")
    parser.add_argument("--out", required=True, help="folder for the PNGs")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    p = load_params(args.params)

    metrics, histories, frame = {}, {}, None
    for kind in p.random_windows.models:
        saved = load_checkpoint(Path(args.models) / f"{kind}.pt", random_windows.model_config(p, kind), list(p.seeds))
        histories[kind] = io.read_frame(Path(args.histories) / f"{kind}.csv", ("iteration", "train_loss"))
        preds, truth = random_windows.held_out_free_runs(saved.stack(), saved.state, p.random_windows)
        metrics[kind] = random_windows.summary(preds, truth, histories[kind])
        if frame is None:
            frame = random_windows.free_run_frame(truth, p.random_windows)
        frame[f"{kind}_pred"] = preds[0].reshape(-1).double().numpy()
    # prefixed by experiment (no name collides across files); declared metrics are few (`dvc metrics
    # show` is one row of every key): the spread over seeds is in the detail
    io.write_json(args.detail, {"R": metrics})
    io.write_json(args.metrics, {"R": {kind: {key: m[key] for key in DECLARED} for kind, m in metrics.items()}})
    io.write_text(args.predictions, frame.to_csv(index=False))
    out, r, caption = Path(args.out), p.random_windows, plotting.random_caption(p)
    io.save_figure(out / "random_predictions.png", plotting.random_window_predictions(frame, caption=caption))
    panels = {"train_loss": f"Train loss (mean of {r.iterations_per_epoch} iterations)",
              "test_rollout": f"Test: {r.steps - 1}-step free run"}
    # the free-run bands of the three models overlap: one small panel per model
    figure = plotting.curves(histories, "iteration", panels, "Random windows (text 002)", per_model=("test_rollout",),
                             caption=caption)
    io.save_figure(out / "random_loss.png", figure)


if __name__ == "__main__":
    run_stage(main)
