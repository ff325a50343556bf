"""Time one training epoch of LeNet-5: pyconvnet.nn against PyTorch, in one run.

The same network (C1 6@5x5, pool, C3 16@5x5, pool, C5 120@5x5, F6 84,
output 10), the same data (the 1,437 training digits of the 32x32
scikit-learn digits, or random images of that shape when scikit-learn is
missing), batch size, loss (softmax cross-entropy) and optimiser (SGD with
momentum 0.9), float32 throughout. PyTorch runs with
``torch.set_num_threads(2)``; pyconvnet with ``n_threads`` 2 and 1. Prints
a Markdown table of median seconds per epoch and the ratio
(PyTorch time / pyconvnet time; above 1 means pyconvnet is faster).

    python benchmarks/bench_lenet5.py [--batch-size 32] [--repeat 5] [--quick]
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, median_time  # noqa: E402

from pyconvnet import nn  # noqa: E402

try:
    import torch
except ImportError:  # reported as missing, not faked
    torch = None


def training_data(n=1437):
    try:
        from pyconvnet.datasets import load_digits
        X, y = load_digits()
        return X[:n], y[:n]
    except ImportError:
        rng = np.random.default_rng(0)
        return (rng.random((n, 1, 32, 32), dtype=np.float32),
                rng.integers(0, 10, n).astype(np.int64))


def ours_epoch(activation, pooling, batch_size, n_threads, X, y):
    model = nn.lenet5(activation=activation, pooling=pooling, rng=0, n_threads=n_threads)
    opt = nn.SGD(model, lr=0.01, momentum=0.9)
    loss = nn.CrossEntropyLoss()
    order = np.random.default_rng(0).permutation(len(X))

    def epoch():
        for start in range(0, len(X), batch_size):
            idx = order[start:start + batch_size]
            loss.forward(model.forward(X[idx]), y[idx])
            model.backward(loss.backward(), input_grad=False)
            opt.step()
    return epoch


def torch_epoch(activation, pooling, batch_size, X, y):
    torch.manual_seed(0)
    act = torch.nn.Tanh if activation == "tanh" else torch.nn.ReLU
    pool = torch.nn.AvgPool2d if pooling == "avg" else torch.nn.MaxPool2d
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 5), act(), pool(2),
        torch.nn.Conv2d(6, 16, 5), act(), pool(2),
        torch.nn.Conv2d(16, 120, 5), act(), torch.nn.Flatten(),
        torch.nn.Linear(120, 84), act(), torch.nn.Linear(84, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(X)))

    def epoch():
        for start in range(0, len(X), batch_size):
            idx = order[start:start + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    return epoch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one configuration, 3 repeats")
    args = parser.parse_args(argv)
    X, y = training_data()
    configs = [("relu", "max"), ("tanh", "avg")]
    if args.quick:
        configs, args.repeat = configs[:1], 3
    if torch is not None:
        torch.set_num_threads(2)
    header = ["network", "batch", "pyconvnet 2 threads (s)", "pyconvnet 1 thread (s)",
              "PyTorch 2 threads (s)", "PyTorch / pyconvnet (2 threads)"]
    rows = []
    for activation, pooling in configs:
        ours = {nt: median_time(ours_epoch(activation, pooling, args.batch_size, nt, X, y),
                                repeat=args.repeat) for nt in (2, 1)}
        if torch is not None:
            peer = median_time(torch_epoch(activation, pooling, args.batch_size, X, y),
                               repeat=args.repeat)
            peer_cell, ratio = f"{peer:.3f}", f"{peer / ours[2]:.2f}"
        else:
            peer_cell = ratio = "torch not installed"
        rows.append([f"LeNet-5 {activation}/{pooling}", args.batch_size, f"{ours[2]:.3f}",
                     f"{ours[1]:.3f}", peer_cell, ratio])
    print(f"Seconds per training epoch ({len(X)} images of 1x32x32, float32, median of "
          f"{args.repeat}); {time.strftime('%Y-%m-%d %H:%M')}")
    print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
