"""Stage extract_sunspots: the yearly sunspot numbers 1700-2008 that statsmodels ships.

A real series no one here made, for experiment S beside the sine. The csv is copied byte for
byte from the installed package (no download; statsmodels is pinned in constraints.txt). Its
licence, in the package: "This data is public domain." (statsmodels.datasets.sunspots.COPYRIGHT)
"""

import argparse
import logging
from importlib import resources

from rnnlab import io
from rnnlab.stage import run_stage

log = logging.getLogger("extract_sunspots")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", help="csv file to write (header YEAR,SUNACTIVITY)")
    args = parser.parse_args()

    text = (resources.files("statsmodels.datasets.sunspots") / "sunspots.csv").read_text()
    io.write_text(args.out, text)
    log.info("wrote %d years of sunspot numbers to %s", text.count("\n") - 1, args.out)


if __name__ == "__main__":
    run_stage(main)
