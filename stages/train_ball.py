"""Stage train_ball: train one architecture on the ball shards, one replica per seed, each kept at its best epoch."""

import argparse

from rnnlab import ball, provenance
from rnnlab.checkpoints import save_checkpoint
from rnnlab.progress import LiveHistory
from rnnlab.stage import add_training_outputs, load_params, parse_training_args, run_stage, training_run, write_timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shards", required=True, help="folder of prepared shards")
    add_training_outputs(parser, "rnn, lstm or gru")
    args = parse_training_args(parser)
    p = load_params(args.params)
    training_run("ball", args.model, list(p.ball.train.seeds), "ball.train")

    scale, seeds = p.ball.prepare.scale, list(p.ball.train.seeds)
    history = LiveHistory(args.history, lambda result: ball.history_frame(result, scale, seeds))
    replicas, result, seconds = ball.train(p, args.shards, args.model, history.on_epoch)
    cfg, trained_on = ball.model_config(p, args.model), provenance.ball(args.shards, scale)
    save_checkpoint(args.checkpoint, ball.checkpoint(cfg, replicas, seeds, result, scale, trained_on))
    history.finish(result)
    write_timing(args.timing, seconds)


if __name__ == "__main__":
    run_stage(main)
