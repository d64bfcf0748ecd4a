"""Stage train_ball: train one architecture on the ball shards, keep its best epoch."""

import argparse

from rnnlab import ball
from rnnlab.checkpoints import reference_checkpoint, save_checkpoint
from rnnlab.progress import LiveHistory
from rnnlab.stage import add_training_outputs, load_params, run_stage, write_timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="rnn, lstm or gru")
    parser.add_argument("--shards", required=True, help="folder of prepared shards")
    add_training_outputs(parser)
    args = parser.parse_args()
    p = load_params(args.params)

    scale = p.ball.prepare.scale
    history = LiveHistory(args.history, lambda result: ball.history_frame(result, scale))
    model, result, seconds = ball.train(p, args.shards, args.model, history.on_epoch)
    epochs = len(result.history["train_loss"])
    checkpoint = reference_checkpoint(ball.model_config(p, args.model), model, p.ball.train.seed,
                                      scale=scale, epochs=epochs, best_epoch=result.best_epoch)
    save_checkpoint(args.checkpoint, checkpoint)
    history.finish(result)
    write_timing(args.timing, seconds)


if __name__ == "__main__":
    run_stage(main)
