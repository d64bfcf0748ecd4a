"""Stage train_random: text 002's random-window training, one replica per seed."""

import argparse

from rnnlab import random_windows
from rnnlab.checkpoints import save_checkpoint, stack_checkpoint
from rnnlab.progress import LiveHistory
from rnnlab.stage import add_training_outputs, load_params, parse_training_args, run_stage, training_run, write_timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_training_outputs(parser, "rnn, lstm or gru")
    args = parse_training_args(parser)
    p = load_params(args.params)
    training_run("random_windows", args.model, list(p.seeds), "random_windows.train")

    seeds, every = list(p.seeds), p.random_windows.iterations_per_epoch
    history = LiveHistory(args.history, lambda result: random_windows.history_frame(result, seeds, every))
    model, _, result, seconds = random_windows.train(p, args.model, history.on_epoch)
    save_checkpoint(args.checkpoint, stack_checkpoint(model, seeds, result.state))
    history.finish(result)
    write_timing(args.timing, seconds)


if __name__ == "__main__":
    run_stage(main)
