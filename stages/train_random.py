"""Stage train_random: seed 002's random-window training, one replica per seed."""

import argparse

from rnnlab import io, random_windows
from rnnlab.checkpoints import save_checkpoint, stack_checkpoint
from rnnlab.stage import add_training_outputs, load_params, run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="rnn, lstm or gru")
    add_training_outputs(parser)
    args = parser.parse_args()
    p = load_params(args.params)

    model, _, result, seconds = random_windows.train(p, args.model)
    save_checkpoint(args.checkpoint, stack_checkpoint(model, list(p.seeds), result.state))
    frame = random_windows.history_frame(result, list(p.seeds), p.random_windows.iterations_per_epoch)
    io.write_text(args.history, frame.to_csv(index=False))
    io.write_json(args.timing, {"train_seconds": round(seconds, 2)})


if __name__ == "__main__":
    run_stage(main)
