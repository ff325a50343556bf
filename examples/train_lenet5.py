"""
Training LeNet-5 on handwritten digits
======================================

The 1,797 8x8 digits that scikit-learn ships are upsampled to 24x24 and
padded to LeNet-5's 32x32 input; a stratified fifth of them is held out.
The script prints a progress bar, then ``test accuracy: ...`` on the held-out
digits, and saves the weights and two PNG files (learning curves, first-layer
feature maps) to ``pyconvnet-lenet5/`` in the current directory. Same as
``python -m pyconvnet train-lenet5``; pass ``--help`` for the options. The
gallery's ``plot_lenet5_digits.py`` writes the same training out as a loop.
"""
import argparse
import sys

from pyconvnet._cli_train import add_subcommands


def main(argv=None):
    parser = argparse.ArgumentParser(prog="train_lenet5.py")
    sub = parser.add_subparsers(dest="command")
    add_subcommands(sub)
    args = parser.parse_args(["train-lenet5"] + list(sys.argv[1:] if argv is None else argv))
    return args.func(args)


if __name__ == "__main__":
    main()
