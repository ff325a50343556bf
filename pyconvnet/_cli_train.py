"""The ``train-lenet5`` subcommand of the ``pyconvnet`` command line."""
import argparse

__all__ = ["add_subcommands"]


def _number(convert, rule, check):
    """An argparse type: ``convert(text)``, refused with ``rule`` when it
    fails or ``check`` is false; argparse names the option in the message."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text!r}") from None
        if not check(value):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text!r}")
        return value
    parse.__name__ = rule
    return parse


_positive_int = _number(int, "a positive integer", lambda v: v >= 1)
_non_negative_int = _number(int, "a non-negative integer", lambda v: v >= 0)
_integer = _number(int, "an integer", lambda v: True)
_positive_float = _number(float, "a positive number", lambda v: v > 0)
_non_negative_float = _number(float, "a non-negative number", lambda v: v >= 0)
_fraction = _number(float, "a number between 0 and 1 (exclusive)", lambda v: 0 < v < 1)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds ``(default: ...)`` to every option's help unless it says its default."""

    def _get_help_string(self, action):
        if "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def add_subcommands(subparsers):
    """Add ``train-lenet5`` to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "train-lenet5",
        help="train LeNet-5 on the scikit-learn handwritten digits",
        formatter_class=_HelpFormatter,
        description="Train LeNet-5 on the 1,797 scikit-learn digits (upsampled to "
                    "32x32) with a fixed seed, report the accuracy on a held-out "
                    "stratified test split, and save the weights and, with matplotlib, "
                    "PNG plots. Needs scikit-learn.")
    # the default is train_lenet5's (None), named here without importing
    # pyconvnet.nn, which the calculator commands must not load
    p.add_argument("--output-dir", default=None,
                   help="folder for the weights and plots, created if missing; a "
                        "relative path is taken from the current directory, and the "
                        "full paths of the files written are printed (default: "
                        "pyconvnet-lenet5 in the current directory)")
    p.add_argument("--epochs", type=_positive_int, default=15,
                   help="passes over the training digits")
    p.add_argument("--batch-size", type=_positive_int, default=32,
                   help="digits per SGD step; 1 gives online learning")
    p.add_argument("--lr", type=_positive_float, default=0.05, help="learning rate")
    p.add_argument("--momentum", type=_non_negative_float, default=0.9,
                   help="SGD momentum")
    p.add_argument("--weight-decay", type=_non_negative_float, default=1e-4,
                   help="L2 penalty on the weights")
    p.add_argument("--lr-decay", type=_positive_float, default=0.9,
                   help="learning-rate factor per epoch")
    p.add_argument("--warmup", type=_non_negative_int, default=100,
                   help="steps of linear learning-rate warm-up")
    p.add_argument("--activation", choices=("relu", "tanh"), default="relu",
                   help="activation after each convolution and F6")
    p.add_argument("--pooling", choices=("max", "avg", "subsampling"), default="max",
                   help="max or average pooling, or LeNet's trainable subsampling")
    p.add_argument("--sparse-c3", action="store_true",
                   help="LeCun's sparse C3 connection table")
    p.add_argument("--shift", type=_non_negative_int, default=2,
                   help="random translations of up to this many pixels (0: none)")
    p.add_argument("--test-size", type=_fraction, default=0.2,
                   help="fraction of the digits held out for the test accuracy")
    p.add_argument("--seed", type=_non_negative_int, default=0,
                   help="seeds the split, the weights and the shuffling")
    p.add_argument("--threads", type=_integer, default=None, dest="n_threads", metavar="N",
                   help="threads of the kernels (default: all cores)")
    p.add_argument("--limit", type=_positive_int, default=None,
                   help="train on only this many digits, for quick trials "
                        "(default: all training digits)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plots", action="store_true",
                   help="skip the PNG files (they need matplotlib)")
    p.set_defaults(func=_run_train)
    return p


def _run_train(args):
    from .nn.train import train_lenet5
    train_lenet5(args.output_dir, epochs=args.epochs, batch_size=args.batch_size,
                 lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
                 lr_decay=args.lr_decay, warmup=args.warmup, activation=args.activation,
                 pooling=args.pooling, sparse_c3=args.sparse_c3, shift=args.shift,
                 test_size=args.test_size, seed=args.seed, n_threads=args.n_threads,
                 limit=args.limit, progress=not args.no_progress, plots=not args.no_plots)
    return 0
