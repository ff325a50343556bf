"""
Training LeNet-5 on handwritten digits
======================================

LeNet-5 learns to read the 1,797 handwritten digits that ship with
scikit-learn. This page builds the network from :mod:`pyconvnet.nn`, writes
the training loop out in full (forward pass, loss, backward pass, update),
and looks at what the first layer learned. It runs in well under a minute
on two cores.

The layers and their gradients are derived in :ref:`theory-conv-layer`,
:ref:`theory-backprop-conv` and :ref:`theory-backprop-pool`, the loss and the
update rule in :ref:`theory-training`. ``python examples/train_lenet5.py``
runs the same training from the command line, with options.
"""

import time

import matplotlib.pyplot as plt
import numpy as np

from pyconvnet.datasets import load_digits, random_shift, stratified_split
from pyconvnet.nn import SGD, CrossEntropyLoss, lenet5

# %%
# The data
# --------
# The digits are 8x8 images. :func:`~pyconvnet.datasets.load_digits`
# upsamples them to 24x24 and pads them to LeNet-5's 32x32 input, as the
# 28x28 MNIST digits were padded in the original paper. A stratified fifth
# of them is held out: the network never sees those digits until the end.

X, y = load_digits()
train_idx, test_idx = stratified_split(y, test_size=0.2, rng=0)
X_train, y_train = X[train_idx], y[train_idx]
X_test, y_test = X[test_idx], y[test_idx]
print(f"{len(X_train)} training and {len(X_test)} test digits of shape {X.shape[1:]}, "
      f"{X.dtype}")

fig, axes = plt.subplots(2, 10, figsize=(10, 2.4))
for ax, image, label in zip(axes.flat, X_train[:20], y_train[:20]):
    ax.imshow(image[0], cmap="gray_r")
    ax.set_title(str(label), fontsize=10)
    ax.set_axis_off()
fig.suptitle("training digits, upsampled to 32x32")
fig.tight_layout()

# %%
# The network
# -----------
# :func:`~pyconvnet.nn.lenet5` returns a :class:`~pyconvnet.nn.Sequential`
# of C1 (six 5x5 convolutions), S2 (2x2 pooling), C3 (sixteen 5x5
# convolutions), S4, C5 (120 5x5 convolutions on 5x5 maps), F6 (84 units)
# and ten outputs. ReLU and max pooling train faster than the paper's tanh
# and sub-sampling; both are options.

model = lenet5(activation="relu", pooling="max", rng=0)
print(model)
print(f"{model.n_params():,} trainable parameters")

# %%
# The training loop
# -----------------
# Each step takes a mini-batch, shifts its digits by up to two pixels (a
# cheap way to show the network more varied handwriting), runs the forward
# pass, measures the cross-entropy, back-propagates its gradient through
# every layer, and lets stochastic gradient descent with momentum move the
# weights. The learning rate ramps up over the first 100 steps, so that a
# large rate cannot push ReLU units into a dead state at the start, and
# shrinks by 10% after every epoch.

loss_fn = CrossEntropyLoss()
optimizer = SGD(model, lr=0.03, momentum=0.9, weight_decay=1e-4)
rng = np.random.default_rng(0)
epochs, batch_size, warmup = 20, 32, 100


def accuracy(model, X, y):
    """Fraction of ``X`` classified correctly, in evaluation mode."""
    model.eval()
    predicted = model(X).argmax(axis=1)
    model.train()
    return float(np.mean(predicted == y))


history = {"loss": [], "train": [], "test": []}
step = 0
start = time.perf_counter()
for epoch in range(epochs):
    order = rng.permutation(len(X_train))
    total = 0.0
    for first in range(0, len(order), batch_size):
        batch = order[first:first + batch_size]
        images = random_shift(X_train[batch], 2, rng)
        optimizer.lr_scale = min(1.0, (step + 1) / warmup)

        logits = model(images)                           # forward
        loss = loss_fn.forward(logits, y_train[batch])   # cross-entropy
        model.backward(loss_fn.backward())               # gradients of every layer
        optimizer.step()                                 # w <- w - lr * (velocity)

        total += loss * len(batch)
        step += 1
    optimizer.lr *= 0.9
    history["loss"].append(total / len(order))
    history["train"].append(accuracy(model, X_train, y_train))
    history["test"].append(accuracy(model, X_test, y_test))
    print(f"epoch {epoch + 1:2d}: loss {history['loss'][-1]:.4f}, "
          f"training accuracy {history['train'][-1]:.3f}, "
          f"test accuracy {history['test'][-1]:.3f}")
elapsed = time.perf_counter() - start
test_accuracy = history["test"][-1]
print(f"trained in {elapsed:.1f} s; test accuracy: {test_accuracy:.3f}")
# the documentation build fails if training does not reach this
assert test_accuracy >= 0.97, test_accuracy

# %%
# Learning curves
# ---------------
# The training loss falls steadily; the held-out accuracy follows the
# training accuracy closely, so the network generalises rather than
# memorises the 1,438 training digits.

epochs_axis = np.arange(1, epochs + 1)
fig, (ax_loss, ax_acc) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True)
ax_loss.plot(epochs_axis, history["loss"], "o-")
ax_loss.set_yscale("log")
ax_loss.set_ylabel("training cross-entropy")
ax_loss.grid(True, which="both", alpha=0.3)
ax_acc.plot(epochs_axis, history["train"], "o-", label="training digits")
ax_acc.plot(epochs_axis, history["test"], "s-", label="held-out test digits")
ax_acc.set_ylim(0.5, 1.0)
ax_acc.set_xlabel("epoch")
ax_acc.set_ylabel("accuracy")
ax_acc.grid(True, alpha=0.3)
ax_acc.legend(loc="lower right")
fig.tight_layout()

# %%
# What the first layer computes
# -----------------------------
# C1's six 5x5 kernels, and the six feature maps they produce from one test
# digit: the convolution outputs before the activation, red where the
# kernel matches the digit and blue where it matches its negative
# (see :ref:`theory-correlation`).

digit, label = X_test[:1], int(y_test[0])
model.eval()
maps = model["c1"](digit)[0]
kernels = model["c1"].params()["weight"][:, 0]

fig, axes = plt.subplots(2, 7, figsize=(10, 3.4))
axes[0, 0].imshow(digit[0, 0], cmap="gray_r")
axes[0, 0].set_title(f"input ({label})")
axes[1, 0].set_axis_off()
for i in range(6):
    k_lim = float(np.abs(kernels[i]).max())
    axes[0, i + 1].imshow(kernels[i], cmap="RdBu_r", vmin=-k_lim, vmax=k_lim)
    axes[0, i + 1].set_title(f"kernel {i}")
    m_lim = float(np.abs(maps[i]).max()) or 1.0
    axes[1, i + 1].imshow(maps[i], cmap="RdBu_r", vmin=-m_lim, vmax=m_lim)
    axes[1, i + 1].set_title(f"map {i}")
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()

# %%
# Mistakes
# --------
# The few test digits the network gets wrong, with its answer and the truth.

predicted = model(X_test).argmax(axis=1)
wrong = np.flatnonzero(predicted != y_test)
print(f"{len(wrong)} of {len(y_test)} test digits misclassified")
if len(wrong):
    shown = wrong[:8]
    fig, axes = plt.subplots(1, len(shown), figsize=(1.25 * len(shown) + 1, 1.9),
                             squeeze=False)
    for ax, i in zip(axes[0], shown):
        ax.imshow(X_test[i, 0], cmap="gray_r")
        ax.set_title(f"{predicted[i]} (is {y_test[i]})", fontsize=9)
        ax.set_axis_off()
    fig.tight_layout()

# sphinx_gallery_thumbnail_number = 2
