"""Stage train_sine: train one architecture on the sine windows, one replica per seed."""

import argparse

from rnnlab import data, io, sine
from rnnlab.checkpoints import save_checkpoint, stack_checkpoint
from rnnlab.stage import add_training_outputs, load_params, run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="a key of the model registry")
    parser.add_argument("--data", required=True, help="series csv")
    add_training_outputs(parser)
    args = parser.parse_args()
    p = load_params(args.params)

    values = data.read_series(args.data)
    model, result, seconds = sine.train(p, values, args.model)
    save_checkpoint(args.checkpoint, stack_checkpoint(model, list(p.seeds), result.state))
    io.write_text(args.history, sine.history_frame(result, list(p.seeds)).to_csv(index=False))
    io.write_json(args.timing, {"train_seconds": round(seconds, 2)})


if __name__ == "__main__":
    run_stage(main)
