"""Stage train_sine: train one architecture on the sine windows, one replica per seed."""

import argparse

from rnnlab import data, provenance, recipe, sine
from rnnlab.checkpoints import save_checkpoint, stack_checkpoint
from rnnlab.progress import LiveHistory
from rnnlab.stage import add_training_outputs, load_params, parse_training_args, run_stage, training_run, write_timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="prepared series csv, in the models' units")
    parser.add_argument("--scaling", required=True, help="the scaling json prepare_series wrote")
    parser.add_argument("--series", required=True, help="the series in its own units (the forecaster recipe's targets)")
    add_training_outputs(parser, "a key of the model registry")
    args = parse_training_args(parser)
    p = load_params(args.params)
    training_run("sine", args.model, list(p.seeds), "sine.train")

    values = data.read_series(args.data)
    seeds = list(p.seeds)
    if p.series.recipe == "forecaster":  # its validation and test MSEs are in the series' units already
        if args.series is None:
            parser.error("--series is needed with series.recipe forecaster")
        series = data.read_series(args.series)
        history = LiveHistory(args.history, lambda result: sine.history_frame(result, seeds))
        units = recipe.Units.read(args.scaling)
        model, result, seconds = recipe.train(p, series, values, units, args.model, history.on_epoch)
    else:
        unit = data.Scaler.read(args.scaling).std ** 2  # the history is written in the series' own units
        history = LiveHistory(args.history, lambda result: sine.history_frame(result, seeds, unit))
        model, result, seconds = sine.train(p, values, args.model, history.on_epoch, unit=unit)
    saved = stack_checkpoint(model, seeds, result.state)
    saved.extra[provenance.KEY] = provenance.sine(p, args.series, args.data, args.scaling)  # readers check it
    save_checkpoint(args.checkpoint, saved)
    history.finish(result)
    write_timing(args.timing, seconds)


if __name__ == "__main__":
    run_stage(main)
