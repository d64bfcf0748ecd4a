"""Stage generate_ball: a ball csv like text 004's (10000 balls at constant integer speed)."""

import argparse
import logging

from rnnlab import ball_csv, io
from rnnlab.stage import load_params, run_stage

log = logging.getLogger("generate_ball")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", help="csv file to write")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    g = load_params(args.params).ball.generate

    ball_csv.check_generated(g.start, g.speed_max, g.length)
    rows = ball_csv.generate_rows(g.rows, g.start, g.speed_max, g.length, g.seed)
    io.write_text(args.out, ball_csv.format_rows(rows))
    log.info("wrote %d balls to %s", len(rows), args.out)


if __name__ == "__main__":
    run_stage(main)
