"""
Feature maps of edge filters
============================

A convolutional layer whose kernels are chosen by hand instead of learned:
horizontal and vertical Sobel filters and a Laplacian, applied to a
photograph with :func:`pyconvnet.functional.conv2d`. Each output channel is
a feature map, large where the image looks like its kernel (see
:ref:`theory-correlation`). A ReLU and a 2x2 max pooling follow, as in a
network's first stage (:ref:`theory-pooling`).
"""
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from skimage import data

from pyconvnet.functional import conv2d, max_pool2d

plt.switch_backend("Agg")   # no window: the figures are saved
OUTPUT = Path("examples", "output") if Path("examples").is_dir() else Path("output")
OUTPUT.mkdir(parents=True, exist_ok=True)

# %%
# The image and the kernels
# -------------------------
# The camera man photograph as a ``(N, C, H, W) = (1, 1, 512, 512)`` batch,
# and four 3x3 kernels stacked into a weight array of shape
# ``(C_out, C_in, 3, 3) = (4, 1, 3, 3)``. Like every deep-learning library,
# ``conv2d`` computes a correlation (no kernel flip), so the Sobel kernel
# below responds positively where brightness increases to the right.

image = data.camera().astype(np.float32) / 255.0
x = image[np.newaxis, np.newaxis]

sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float32)
laplacian = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float32)
kernels = {
    "Sobel x (dark to bright, left to right)": sobel_x,
    "Sobel y (dark to bright, top to bottom)": sobel_x.T,
    "Laplacian": laplacian,
    "Sobel x, flipped": sobel_x[::-1, ::-1],
}
weight = np.stack(list(kernels.values()))[:, np.newaxis]
print("input", x.shape, "weight", weight.shape)

# %%
# One convolutional layer
# -----------------------
# Padding 1 keeps the 512x512 size ((512 + 2 - 3)/1 + 1 = 512). The fourth
# kernel is the first one rotated by 180 degrees, which is what a true
# convolution would use: its map is the first map negated. The zeros of the
# padding are darker than the photograph's border, so the filters also find
# "edges" along the frame of the image.

maps = conv2d(x, weight, padding=1)
print("feature maps", maps.shape)
print("flipped kernel gives the negated map:", np.allclose(maps[0, 3], -maps[0, 0]))

edges = np.hypot(maps[0, 0], maps[0, 1])      # gradient magnitude

fig, axes = plt.subplots(2, 3, figsize=(12, 8))
axes[0, 0].imshow(image, cmap="gray")
axes[0, 0].set_title("input")
for ax, (title, fmap) in zip(axes.flat[1:], zip(kernels, maps[0])):
    limit = np.percentile(np.abs(fmap), 99.5)      # a few strong edges set no scale
    ax.imshow(fmap, cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_title(title, fontsize=10)
axes[1, 2].imshow(edges, cmap="magma")
axes[1, 2].set_title("gradient magnitude from the two Sobel maps", fontsize=10)
for ax in axes.flat:
    ax.set_axis_off()
fig.suptitle("conv2d with four hand-made 3x3 kernels (red > 0 > blue)")
fig.tight_layout()
fig.savefig(OUTPUT / "edge_filters_maps.png", dpi=100)

# %%
# ReLU and max pooling
# --------------------
# The ReLU keeps the positive responses only (edges of one polarity); a 2x2
# max pooling with stride 2 halves each side, ``(512 - 2)/2 + 1 = 256``, and
# keeps the strongest response of each block.

activated = np.maximum(maps, 0)
pooled = max_pool2d(activated, 2)
print("after ReLU and 2x2 max pooling", pooled.shape)

fig, axes = plt.subplots(1, 2, figsize=(10, 5))
axes[0].imshow(activated[0, 0], cmap="gray")
axes[0].set_title("Sobel x after ReLU, 512x512")
axes[1].imshow(pooled[0, 0], cmap="gray")
axes[1].set_title("after 2x2 max pooling, 256x256")
for ax in axes:
    ax.set_axis_off()
fig.tight_layout()
fig.savefig(OUTPUT / "edge_filters_pooled.png", dpi=100)
