"""Stages extract_co2 and extract_nile: real series that statsmodels ships, for experiment S.

Copied out of the installed package (no download; statsmodels is pinned in constraints.txt), both
public domain as the package states. ``nile``: the yearly flow as is (header year,volume).
``co2``: the weekly Mauna Loa values as monthly means (header month,co2), a month without any
weekly value left empty: ``series.gaps`` decides (``datasets.monthly_means``).
"""

import argparse
import logging

from rnnlab import datasets, io
from rnnlab.stage import run_stage

log = logging.getLogger("extract_series")

SERIES = {"co2": datasets.co2_csv, "nile": lambda: datasets.packaged_csv("nile")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name", choices=sorted(SERIES), help="which packaged series")
    parser.add_argument("out", help="csv file to write")
    args = parser.parse_args()

    text = SERIES[args.name]()
    io.write_text(args.out, text)
    rows = text.splitlines()[1:]
    log.info("wrote %d rows of %s to %s (%d without a value)", len(rows), args.name, args.out,
             sum(row.endswith(",") for row in rows))


if __name__ == "__main__":
    run_stage(main)
