"""Training loops: mini-batch SGD, evaluation, and the LeNet-5 digits run.

:func:`train_lenet5` is the single implementation behind both
``examples/train_lenet5.py`` and ``pyconvnet train-lenet5``.
"""
import math
import os
import time

import numpy as np

from .losses import CrossEntropyLoss
from .optim import SGD

__all__ = ["fit", "evaluate", "predict", "train_lenet5"]

#: Where :func:`train_lenet5` writes by default: a folder of that name in the
#: current directory (the summary prints the full path of every file).
DEFAULT_OUTPUT_DIR = "pyconvnet-lenet5"


def _batches(n, batch_size, gen=None):
    order = np.arange(n) if gen is None else gen.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def predict(model, X, batch_size=256):
    """Network outputs for ``X`` in evaluation mode, batch by batch."""
    was_training = model.training
    model.eval()
    try:
        outs = [model.forward(X[i:i + batch_size]) for i in range(0, len(X), batch_size)]
    finally:
        model.train(was_training)
    return np.concatenate(outs)


def evaluate(model, X, y, batch_size=256, loss=None):
    """(mean loss, accuracy) of ``model`` on ``X, y`` in evaluation mode.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconvnet.nn import Sequential, Flatten, Linear
    >>> model = Sequential(Flatten(), Linear(4, 2, rng=0))
    >>> loss, acc = evaluate(model, np.zeros((3, 1, 2, 2), np.float32), np.array([0, 1, 1]))
    >>> round(loss, 4), round(acc, 4)
    (0.6931, 0.3333)
    """
    loss = loss or CrossEntropyLoss()
    out = predict(model, X, batch_size)
    return float(loss.forward(out, y)), float(np.mean(out.argmax(axis=1) == y))


def fit(model, X, y, *, epochs=10, batch_size=32, optimizer=None, loss=None, rng=0,
        X_val=None, y_val=None, progress=False, lr=0.01, momentum=0.0,
        weight_decay=0.0, layer_lr=None, lr_decay=1.0, warmup=0, augment=None):
    """Train ``model`` by mini-batch SGD (``batch_size=1`` is online learning).

    Each epoch visits the training set in a new random order (seeded by
    ``rng``); after each epoch the learning rates are multiplied by
    ``lr_decay``.

    Parameters
    ----------
    model : Module
    X, y : ndarray
        Inputs and integer labels.
    epochs, batch_size : int
    optimizer : SGD, optional
        Built from ``lr, momentum, weight_decay, layer_lr`` when not given.
    loss : loss object, optional
        :class:`CrossEntropyLoss` by default.
    rng : int or Generator
        Seed of the shuffling.
    X_val, y_val : ndarray, optional
        Evaluated after every epoch.
    progress : bool
        Show a tqdm progress bar with the running loss and accuracy.
    warmup : int
        Ramp the learning rates up linearly over the first ``warmup`` steps
        (``optimizer.lr_scale`` goes from ``1/warmup`` to 1), which keeps a
        large rate from pushing ReLU units into a dead state at the start.
    augment : callable, optional
        ``augment(batch, generator)`` returns a transformed copy of each
        training batch (e.g. :func:`pyconvnet.datasets.random_shift`).

    Returns
    -------
    dict
        Per-epoch lists ``loss``, ``accuracy`` (training, running over the
        epoch), ``val_loss``, ``val_accuracy`` and ``time`` (seconds).

    Raises
    ------
    FloatingPointError
        When the loss becomes NaN or infinite; the message names the epoch
        and step.
    ValueError
        For inputs and labels of different lengths, or labels out of range.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconvnet.nn import Sequential, Linear
    >>> X = np.random.default_rng(0).standard_normal((64, 2)).astype(np.float32)
    >>> y = (X[:, 0] > 0).astype(np.int64)
    >>> h = fit(Sequential(Linear(2, 2, rng=0)), X, y, epochs=5, lr=0.5)
    >>> h["accuracy"][-1] > 0.9
    True
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} examples but y has {len(y)} labels")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    loss = loss or CrossEntropyLoss()
    opt = optimizer or SGD(model, lr=lr, momentum=momentum, weight_decay=weight_decay,
                           layer_lr=layer_lr)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    history = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": [], "time": []}
    n_batches = math.ceil(len(X) / batch_size)
    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm
            bar = tqdm(total=epochs * n_batches, unit="batch", dynamic_ncols=True)
        except ImportError:  # pragma: no cover - tqdm is an optional dependency
            bar = None
    model.train()
    step = 0
    start = time.perf_counter()
    try:
        for epoch in range(epochs):
            total, correct, seen = 0.0, 0, 0
            for b, idx in enumerate(_batches(len(X), batch_size, gen)):
                xb, yb = X[idx], y[idx]
                if augment is not None:
                    xb = augment(xb, gen)
                if warmup and step < warmup:
                    opt.lr_scale = (step + 1) / warmup
                elif warmup and step == warmup:
                    opt.lr_scale = 1.0
                out = model.forward(xb)
                step += 1
                try:
                    value = loss.forward(out, yb) + model.penalty()
                except ValueError:
                    if np.isfinite(out).all():
                        raise
                    value = float("nan")   # the loss refuses non-finite outputs
                if not math.isfinite(value):
                    raise FloatingPointError(
                        f"the loss became {value} at step {step} (epoch {epoch + 1}, "
                        f"batch {b + 1}): lower the learning rate")
                model._backward(loss.backward(), False)   # no input gradient
                opt.step()
                total += value * len(idx)
                correct += int((out.argmax(axis=1) == yb).sum())
                seen += len(idx)
                if bar is not None:
                    bar.update(1)
                    if b % 10 == 0 or b == n_batches - 1:
                        bar.set_postfix(epoch=epoch + 1, loss=f"{total / seen:.4f}",
                                        acc=f"{correct / seen:.3f}", refresh=False)
            history["loss"].append(total / seen)
            history["accuracy"].append(correct / seen)
            if X_val is not None:
                vl, va = evaluate(model, X_val, y_val, loss=loss)
                history["val_loss"].append(vl)
                history["val_accuracy"].append(va)
                if bar is not None:
                    bar.set_postfix(epoch=epoch + 1, loss=f"{total / seen:.4f}",
                                    acc=f"{correct / seen:.3f}", val_acc=f"{va:.3f}")
            history["time"].append(time.perf_counter() - start)
            if lr_decay != 1.0:
                opt.lr *= lr_decay
                opt.layer_lr = {k: v * lr_decay for k, v in opt.layer_lr.items()}
    finally:
        if bar is not None:
            bar.close()
    return history


def _plots(history, model, digit, label, output_dir):
    """Learning curves and the C1 feature maps of one digit, as PNG files."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(epochs, history["loss"], label="training")
    if history["val_loss"]:
        ax1.plot(epochs, history["val_loss"], label="held-out test")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("cross-entropy")
    ax1.set_yscale("log")
    ax1.legend()
    ax2.plot(epochs, history["accuracy"], label="training")
    if history["val_accuracy"]:
        ax2.plot(epochs, history["val_accuracy"], label="held-out test")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy")
    ax2.legend()
    fig.suptitle("LeNet-5 on the scikit-learn digits")
    fig.tight_layout()
    curves = os.path.join(output_dir, "lenet5_learning_curves.png")
    fig.savefig(curves, dpi=100)
    plt.close(fig)

    model.eval()
    # the convolution outputs, before the activation: a ReLU map that is
    # negative everywhere for this digit would otherwise show as blank
    maps = model["c1"].forward(digit[None])[0]
    model.train()
    fig, axes = plt.subplots(1, 1 + len(maps), figsize=(2 * (1 + len(maps)), 2.6))
    axes[0].imshow(digit[0], cmap="gray_r")
    axes[0].set_title(f"input ({label})")
    for i, (ax, fmap) in enumerate(zip(axes[1:], maps)):
        lim = float(np.abs(fmap).max()) or 1.0
        ax.imshow(fmap, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(f"C1 map {i}")
    for ax in axes:
        ax.axis("off")
    fig.suptitle("C1 feature maps (convolution outputs before the activation; "
                 "red positive, blue negative)", fontsize=10)
    fig.tight_layout()
    features = os.path.join(output_dir, "lenet5_c1_feature_maps.png")
    fig.savefig(features, dpi=100)
    plt.close(fig)
    return curves, features


def _matplotlib_missing():
    """True when matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return True
    return False


def train_lenet5(output_dir=None, *, epochs=15, batch_size=32,
                 lr=0.05, momentum=0.9, weight_decay=1e-4, lr_decay=0.9,
                 warmup=100, activation="relu", pooling="max", sparse_c3=False,
                 test_size=0.2,
                 shift=2, seed=0, n_threads=None, limit=None, progress=True, plots=True,
                 verbose=True):
    """Train LeNet-5 on the scikit-learn digits and report held-out accuracy.

    The 1,797 digits (:func:`pyconvnet.datasets.load_digits`, 1x32x32) are
    split with a fixed seed into a stratified training set and a test set
    (``test_size``) that training never sees; the network is trained with
    SGD and momentum, then evaluated on the test set. Weights
    (``lenet5_digits.npz``) and, with ``plots``, two PNG files (learning
    curves and C1 feature maps of one test digit) go to ``output_dir``.
    Without matplotlib the plots are skipped, with one line saying how to
    get them.

    Parameters
    ----------
    output_dir : str, optional
        Created if missing; by default ``pyconvnet-lenet5`` in the current
        directory. The summary prints the full path of every file.
    epochs, batch_size : int
    lr, momentum, weight_decay, lr_decay : float
    warmup : int
        Steps of linear learning-rate warm-up (see :func:`fit`).
    activation, pooling, sparse_c3
        Passed to :func:`pyconvnet.nn.lenet5`.
    shift : int
        Augment the training batches by random translations of up to
        ``shift`` pixels (0: none).
    test_size : float
    seed : int
        Seeds the split, the weights and the shuffling.
    n_threads : int, optional
    limit : int, optional
        Train on only the first ``limit`` training digits (quick trials); the
        test set is unchanged.
    progress : bool
        tqdm progress bar.
    plots : bool
        Write the PNG files (when matplotlib is installed).
    verbose : bool
        Print a summary, ending with ``test accuracy: 0.xxx``.

    Returns
    -------
    dict
        ``test_accuracy``, ``test_loss``, ``train_time`` (s), ``history``,
        ``model`` and the output ``files``.
    """
    from ..datasets import load_digits, random_shift, stratified_split
    from .lenet5 import lenet5

    output_dir = os.path.abspath(DEFAULT_OUTPUT_DIR if output_dir is None else output_dir)
    skipped_plots = plots and _matplotlib_missing()
    plots = plots and not skipped_plots

    X, y = load_digits()
    train_idx, test_idx = stratified_split(y, test_size, rng=seed)
    if limit is not None:
        train_idx = train_idx[:int(limit)]
    X_train, y_train, X_test, y_test = X[train_idx], y[train_idx], X[test_idx], y[test_idx]
    model = lenet5(activation=activation, pooling=pooling, sparse_c3=sparse_c3,
                   rng=seed, n_threads=n_threads)
    if verbose:
        print(f"LeNet-5 ({activation}, {pooling} pooling{', sparse C3' if sparse_c3 else ''}, "
              f"{model.n_params()} parameters) on {len(X_train)} training and "
              f"{len(X_test)} held-out test digits")
    start = time.perf_counter()
    history = fit(model, X_train, y_train, epochs=epochs, batch_size=batch_size, lr=lr,
                  momentum=momentum, weight_decay=weight_decay, lr_decay=lr_decay,
                  warmup=warmup, rng=seed, X_val=X_test, y_val=y_test, progress=progress,
                  augment=(lambda xb, gen: random_shift(xb, shift, gen)) if shift else None)
    train_time = time.perf_counter() - start
    test_loss, test_acc = evaluate(model, X_test, y_test)
    os.makedirs(output_dir, exist_ok=True)
    weights = os.path.join(output_dir, "lenet5_digits.npz")
    model.save(weights)
    files = [weights]
    if plots:
        files += list(_plots(history, model, X_test[0], int(y_test[0]), output_dir))
    if verbose:
        print(f"trained {epochs} epoch{'s' if epochs != 1 else ''} in {train_time:.1f} s; "
              f"final training loss {history['loss'][-1]:.4f}, training accuracy "
              f"{history['accuracy'][-1]:.4f}")
        print("wrote " + ", ".join(files))
        if skipped_plots:
            print("skipped the plots: matplotlib is not installed (pip install matplotlib "
                  "to get them)")
        print(f"test accuracy: {test_acc:.3f}")
    return {"test_accuracy": test_acc, "test_loss": test_loss, "train_time": train_time,
            "history": history, "model": model, "files": files}
