"""
Finding every coin from one template
====================================

Template matching as it is used: one example of an object, cut from a
photograph, and every other object like it found in the same photograph.
:func:`pyconvnet.signal.similarity_map` scores every position by the
normalised cross-correlation (derived in :ref:`theory-cosine-similarity`),
and :func:`pyconvnet.signal.find_peaks` keeps the local maxima, the best
first, with non-maximum suppression so that each coin is reported once.
A second search uses a round mask, so that only the coin's own pixels
count, not the background in the corners of its square
(:ref:`theory-masked-ncc`), and the peaks are refined to a fraction of a
pixel (:ref:`theory-subpixel-peaks`).
"""
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from skimage import data

from pyconvnet.signal import find_peaks, similarity_map

plt.switch_backend("Agg")   # no window: the figures are saved
OUTPUT = Path("examples", "output") if Path("examples").is_dir() else Path("output")
OUTPUT.mkdir(parents=True, exist_ok=True)

# %%
# One coin as the template
# ------------------------
# scikit-image's photograph of 24 Greek coins on a light background, in
# float32. The template is the square around one coin in the second row.
image = data.coins().astype(np.float32)
top, left, size = 102, 184, 46
template = image[top:top + size, left:left + size]
print(f"image {image.shape}, template {template.shape}")

# %%
# Scores and peaks
# ----------------
# The centred score is insensitive to the brightness and contrast of each
# coin. ``find_peaks`` keeps maxima at least half a coin apart and above
# 0.4, and ``exclude_border=False`` keeps the coins that touch the edge of
# the score map (it is smaller than the image by the template's size).
score = similarity_map(image, template, centered=True)
positions, values = find_peaks(score, min_distance=size // 2, threshold=0.4,
                               exclude_border=False)
print(f"{len(positions)} coins found, scores {values.min():.2f} to {values.max():.2f}")


def draw(ax, positions, values, colour):
    ax.imshow(image, cmap="gray")
    for (row, col), value in zip(positions, values):
        ax.add_patch(plt.Rectangle((col - 0.5, row - 0.5), size, size, edgecolor=colour,
                                   facecolor="none", lw=1.5))
        ax.text(col, row - 2, f"{value:.2f}", color=colour, fontsize=7)
    ax.set_axis_off()


fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
axes[0].imshow(score, cmap="magma", vmin=-1, vmax=1)
axes[0].set_title("centred similarity")
axes[0].set_axis_off()
draw(axes[1], positions, values, "tab:red")
axes[1].set_title(f"{len(positions)} peaks of the similarity")
fig.tight_layout()
fig.savefig(OUTPUT / "find_coins.png", dpi=80)

# %%
# A masked search, to a fraction of a pixel
# -----------------------------------------
# A coin is round; the corners of its square are background, which varies
# from coin to coin. A disc-shaped mask leaves them out of every score: the
# means and norms are taken over the disc only. ``subpixel=True`` fits a
# parabola through each peak and its neighbours along each axis.
yy, xx = np.mgrid[:size, :size]
centre = (size - 1) / 2
disc = (yy - centre) ** 2 + (xx - centre) ** 2 <= (size / 2) ** 2
masked = similarity_map(image, template, centered=True, mask=disc)
fine, fine_values = find_peaks(masked, min_distance=size // 2, threshold=0.4,
                               exclude_border=False, subpixel=True)
print(f"masked: {len(fine)} coins found; mean score {fine_values.mean():.3f} "
      f"against {values.mean():.3f} unmasked")
print("first peaks to a fraction of a pixel:", np.round(fine[:3], 2).tolist())

fig, ax = plt.subplots(figsize=(5.5, 4.4))
draw(ax, fine, fine_values, "tab:cyan")
ax.contour(np.pad(disc, ((top, image.shape[0] - top - size),
                         (left, image.shape[1] - left - size))),
           levels=[0.5], colors="yellow", linewidths=1)
ax.set_title("masked search (template's disc in yellow)")
fig.tight_layout()
fig.savefig(OUTPUT / "find_coins_masked.png", dpi=80)
