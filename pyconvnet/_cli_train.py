"""The ``train-lenet5`` subcommand of ``python -m pyconvnet``."""
import argparse
import os

__all__ = ["add_subcommands"]


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def add_subcommands(subparsers):
    """Add ``train-lenet5`` to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "train-lenet5",
        help="train LeNet-5 on the scikit-learn handwritten digits",
        description="Train LeNet-5 on the 1,797 scikit-learn digits (upsampled to "
                    "32x32) with a fixed seed, report the accuracy on a held-out "
                    "stratified test split, and save the weights and PNG plots.")
    p.add_argument("--output-dir", default=os.path.join("examples", "output"),
                   help="where the weights and plots go (default: %(default)s)")
    p.add_argument("--epochs", type=_positive_int, default=15)
    p.add_argument("--batch-size", type=_positive_int, default=32,
                   help="1 gives online learning (default: %(default)s)")
    p.add_argument("--lr", type=_positive_float, default=0.05)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--lr-decay", type=_positive_float, default=0.9,
                   help="learning-rate factor per epoch (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=100,
                   help="steps of linear learning-rate warm-up (default: %(default)s)")
    p.add_argument("--activation", choices=("relu", "tanh"), default="relu")
    p.add_argument("--pooling", choices=("max", "avg", "subsampling"), default="max")
    p.add_argument("--sparse-c3", action="store_true",
                   help="LeCun's sparse C3 connection table")
    p.add_argument("--shift", type=int, default=2,
                   help="random translations of up to this many pixels (0: none)")
    p.add_argument("--test-size", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, dest="n_threads")
    p.add_argument("--limit", type=_positive_int, default=None,
                   help="train on only this many digits (quick trials)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG files")
    p.set_defaults(func=_run_train)
    return p


def _run_train(args):
    from .nn.train import train_lenet5
    train_lenet5(args.output_dir, epochs=args.epochs, batch_size=args.batch_size,
                 lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
                 lr_decay=args.lr_decay, warmup=args.warmup, activation=args.activation, pooling=args.pooling,
                 sparse_c3=args.sparse_c3, shift=args.shift, test_size=args.test_size, seed=args.seed,
                 n_threads=args.n_threads, limit=args.limit, progress=not args.no_progress,
                 plots=not args.no_plots)
    return 0
