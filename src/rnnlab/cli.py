"""The ``rnnlab`` console command."""

import argparse


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="rnnlab", description=__doc__)
    parser.parse_args(argv)
    return 0
