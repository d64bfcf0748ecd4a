"""Stage generate_windows: text 001's noisy sine, sin(linspace(0, 100, 500)) + N(0, 0.1)."""

import rnnlab  # noqa: F401  (first: pins the numerical libraries' CPU code paths, rnnlab/cpu.py)

# isort: split

import argparse

import numpy as np

from rnnlab import data, io
from rnnlab.stage import load_params, run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", help="csv file to write")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    values = data.windows_series(load_params(args.params).windows.data)
    # float32 values, written with enough digits to read back exactly
    io.write_text(args.out, "".join(f"{v:.9g}\n" for v in values.astype(np.float64)))


if __name__ == "__main__":
    run_stage(main)
