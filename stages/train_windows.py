"""Stage train_windows: one architecture on sliding windows, full batch, one replica per seed."""

import argparse

from rnnlab import data, windows
from rnnlab.checkpoints import save_checkpoint, stack_checkpoint
from rnnlab.progress import LiveHistory
from rnnlab.stage import add_training_outputs, load_params, parse_training_args, run_stage, training_run, write_timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="series csv")
    add_training_outputs(parser, "a key of the model registry")
    args = parse_training_args(parser)
    p = load_params(args.params)
    training_run("windows", args.model, list(p.seeds), "windows.train")

    values = data.read_series(args.data)
    seeds = list(p.seeds)
    history = LiveHistory(args.history, lambda result: windows.history_frame(result, seeds))
    model, _, result, seconds = windows.train(p, values, args.model, history.on_epoch)
    save_checkpoint(args.checkpoint, stack_checkpoint(model, seeds, None))
    history.finish(result)
    write_timing(args.timing, seconds)


if __name__ == "__main__":
    run_stage(main)
