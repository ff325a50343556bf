"""Command line: ``python -m pyconvnet <command> ...``."""
import argparse
import sys

from ._cli_shapes import add_subcommands as add_shape_subcommands
from ._cli_train import add_subcommands as add_train_subcommands


def build_parser():
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="python -m pyconvnet",
        description="Shape, parameter and cost calculators for convolutional "
                    "networks, and LeNet-5 training on handwritten digits.")
    subparsers = parser.add_subparsers(dest="command", metavar="command")
    subparsers.required = True
    add_shape_subcommands(subparsers)
    add_train_subcommands(subparsers)
    return parser


def main(argv=None):
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
