"""
Template matching on a photograph
=================================

Cut a patch out of a real photograph, then find it again by sliding it over
the image and scoring every position with the zero-mean cosine similarity
(normalised cross-correlation) of :func:`pyconvnet.signal.similarity_map`.
The peak of the similarity map marks where the patch came from. The score
is derived in :ref:`theory-cosine-similarity`.
"""

import time

import matplotlib.pyplot as plt
import numpy as np
from skimage import data

from pyconvnet.signal import similarity_map

# %%
# The image and the template
# --------------------------
# The coins photograph of scikit-image, as floats in [0, 1], and a 51x51
# patch around one coin.

image = data.coins().astype(np.float64) / 255.0
top, left, size = 170, 75, 51
template = image[top:top + size, left:left + size]
print(f"image {image.shape}, template {template.shape} cut at ({top}, {left})")

# %%
# The similarity map
# ------------------
# ``centered=True`` subtracts the mean of the template and of every window
# before taking the cosine, so the score ignores brightness and contrast and
# lies in [-1, 1]. The map has one value per position of the template that
# fits wholly inside the image ('valid' mode).

start = time.perf_counter()
similarity = similarity_map(image, template, centered=True)
elapsed = time.perf_counter() - start
peak = tuple(int(p) for p in np.unravel_index(np.argmax(similarity), similarity.shape))
print(f"map {similarity.shape} in {elapsed * 1e3:.1f} ms; best match at (row, col) = "
      f"{peak}, similarity {similarity[peak]:.4f}")
assert peak == (top, left)

# %%
# Other coins of the same size and shading score high too, and show as
# bright spots in the map; only the original scores 1.

fig, (ax_image, ax_map) = plt.subplots(1, 2, figsize=(10, 4.6))
ax_image.imshow(image, cmap="gray")
ax_image.add_patch(plt.Rectangle((peak[1], peak[0]), size, size,
                                 edgecolor="red", facecolor="none", lw=2))
ax_image.set_title("image, best match in red")
shown = ax_map.imshow(similarity, cmap="viridis", vmin=-1, vmax=1)
ax_map.plot(peak[1], peak[0], "o", markeredgecolor="red", markerfacecolor="none",
            markersize=14, markeredgewidth=2)
ax_map.set_title("similarity map (peak circled)")
fig.colorbar(shown, ax=ax_map, fraction=0.046)
for ax in (ax_image, ax_map):
    ax.set_axis_off()
fig.tight_layout()
