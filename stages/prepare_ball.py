"""Stage prepare_ball: the ball csv -> gzip-compressed (padded, lengths) shards, 60/20/20."""

import argparse
import logging

from rnnlab import ball_csv, ball_data, io
from rnnlab.stage import load_params, run_stage, watch

log = logging.getLogger("prepare_ball")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    # dvc.yaml passes no csv path: a params value on a shell command line is code
    parser.add_argument("csv", nargs="?", help="ball csv, one history per line, e.g. 1,3,5,7 (default: ball.csv_path)")
    parser.add_argument("out", help="folder of shards to write")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    p = load_params(args.params)
    cfg, args.csv = p.ball.prepare, args.csv or p.ball.csv_path
    watch(args.csv)  # replaced while this stage reads it: fail rather than let DVC record the new one

    rows = ball_csv.read_rows(args.csv)  # every line is checked before anything is written
    with io.atomic_dir(args.out) as folder:
        for chunk, parts in ball_data.make_shards(rows, cfg.chunk_lines, cfg.scale, cfg.split, cfg.seed):
            for split, shard in parts.items():
                (folder / ball_data.shard_name(split, chunk)).write_bytes(ball_data.shard_bytes(shard))
    log.info("%d balls from %s -> %d chunks of shards in %s", len(rows), args.csv, chunk + 1, args.out)


if __name__ == "__main__":
    run_stage(main)
