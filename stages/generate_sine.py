"""Stage generate_sine: the noisy sine series of text 003, one value per line."""

import argparse
import logging

from rnnlab import data, io
from rnnlab.stage import load_params, run_stage

log = logging.getLogger("generate_sine")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", help="csv file to write")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    p = load_params(args.params)

    values = data.noisy_sine(p.sine.data)
    io.write_text(args.out, data.series_csv(values))
    log.info("wrote %d points to %s", len(values), args.out)


if __name__ == "__main__":
    run_stage(main)
