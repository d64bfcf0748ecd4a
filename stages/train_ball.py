"""Stage train_ball: train one architecture on the ball shards, keep its best epoch."""

import argparse

from rnnlab import ball, io
from rnnlab.checkpoints import reference_checkpoint, save_checkpoint
from rnnlab.stage import add_training_outputs, load_params, run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="rnn, lstm or gru")
    parser.add_argument("--shards", required=True, help="folder of prepared shards")
    add_training_outputs(parser)
    args = parser.parse_args()
    p = load_params(args.params)

    model, result, seconds = ball.train(p, args.shards, args.model)
    epochs = len(result.history["train_loss"])
    checkpoint = reference_checkpoint(ball.model_config(p, args.model), model, p.ball.train.seed,
                                      scale=p.ball.prepare.scale, epochs=epochs, best_epoch=result.best_epoch)
    save_checkpoint(args.checkpoint, checkpoint)
    io.write_text(args.history, ball.history_frame(result, p.ball.prepare.scale).to_csv(index=False))
    io.write_json(args.timing, {"train_seconds": round(seconds, 1)})


if __name__ == "__main__":
    run_stage(main)
