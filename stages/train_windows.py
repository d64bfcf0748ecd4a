"""Stage train_windows: one architecture on sliding windows, full batch, one replica per seed."""

import argparse

from rnnlab import data, io, windows
from rnnlab.checkpoints import save_checkpoint, stack_checkpoint
from rnnlab.stage import load_params, run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="a key of the model registry")
    parser.add_argument("--data", required=True, help="series csv")
    parser.add_argument("--checkpoint", required=True, help="checkpoint to write (.pt)")
    parser.add_argument("--history", required=True, help="per-epoch history to write (.csv)")
    parser.add_argument("--timing", required=True, help="training seconds to write (.json)")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    p = load_params(args.params)

    values = data.read_series(args.data)
    model, _, result, seconds = windows.train(p, values, args.model)
    save_checkpoint(args.checkpoint, stack_checkpoint(model, list(p.seeds), None))
    io.write_text(args.history, windows.history_frame(result, list(p.seeds)).to_csv(index=False))
    io.write_json(args.timing, {"train_seconds": round(seconds, 2)})


if __name__ == "__main__":
    run_stage(main)
