"""Command line: ``pyconvnet <command> ...`` (or ``python -m pyconvnet``)."""
import argparse
import os
import sys

from ._cli_shapes import add_subcommands as add_shape_subcommands
from ._cli_train import add_subcommands as add_train_subcommands


def build_parser(prog="pyconvnet"):
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Shape, parameter and cost calculators for convolutional "
                    "networks, and LeNet-5 training on handwritten digits.")
    subparsers = parser.add_subparsers(dest="command", metavar="command")
    subparsers.required = True
    add_shape_subcommands(subparsers)
    add_train_subcommands(subparsers)
    return parser


def _silence_stdout():
    """Point stdout at the null device, so that nothing more is written (or
    flushed at exit) to a pipe whose reader is gone."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv=None, prog="pyconvnet"):
    """Run the command line; returns the exit status.

    When the reader of the output goes away (``pyconvnet ... | head``), the
    command ends quietly with status 1 instead of a traceback.
    """
    try:
        args = build_parser(prog).parse_args(argv)
        status = args.func(args)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        _silence_stdout()
        return 1
    except SystemExit:   # --help and usage errors: flush before argparse's exit
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
        raise


if __name__ == "__main__":
    sys.exit(main(prog="python -m pyconvnet"))
