"""
Template search in a large mosaic with Dask
===========================================

:func:`pyconvnet.dask.similarity_map` scores a template against every window
of a Dask array that may be larger than memory: each chunk is scored by the
compiled kernels from its own data plus a halo borrowed from its neighbours,
so that no match is lost at a seam. Here the array is a mosaic of
photographs that ship with scikit-image, built lazily tile by tile, and the
search runs on a local Dask cluster.

Needs the ``dask`` extra (``pip install -e ".[dask]"``; the ``examples`` and
``docs`` extras include it). The similarity itself is derived in
:ref:`theory-cosine-similarity`.
"""

import itertools
import time

import dask
import dask.array as da
import matplotlib.pyplot as plt
import numpy as np
from distributed import Client, LocalCluster
from skimage import data, transform

from pyconvnet import dask as pdask

# %%
# A mosaic of distinct tiles
# --------------------------
# Eight photographs in each of their eight orientations (four rotations,
# with and without a transpose) give 64 different tiles, exactly enough for
# an 8x8 mosaic, shuffled. Distinct tiles matter: a template cut from a tile
# that appeared twice would match both copies equally well. Each tile is
# built by the worker that needs it, so the task graph carries no pixels.

PHOTOS = ["camera", "coins", "moon", "page", "text", "brick", "grass", "gravel"]
ORIENTATIONS = [(rot, transpose) for transpose in (False, True) for rot in range(4)]
TILE, SIDE = 256, 8


def photo(name):
    """A photograph as float64 in [0, 1], resized to TILE x TILE."""
    return transform.resize(getattr(data, name)().astype(np.float64) / 255.0,
                            (TILE, TILE), anti_aliasing=True)


def tile(name, rot, transpose):
    """One orientation of one photograph."""
    image = photo(name)
    return np.ascontiguousarray(np.rot90(image.T if transpose else image, rot))


layout = list(itertools.product(PHOTOS, ORIENTATIONS))
np.random.default_rng(0).shuffle(layout)
rows = [[da.from_delayed(dask.delayed(tile)(name, *orientation), shape=(TILE, TILE),
                         dtype=np.float64)
         for name, orientation in layout[r * SIDE:(r + 1) * SIDE]]
        for r in range(SIDE)]
mosaic = da.block(rows).rechunk(512)
print(f"mosaic {mosaic.shape}, chunks of {mosaic.chunksize}, {mosaic.npartitions} chunks")

# the tiles really are distinct: no two share their pixels
tiles = [tile(name, *orientation) for name, orientation in layout]
assert len({t.tobytes() for t in tiles}) == SIDE * SIDE

# %%
# The template
# ------------
# A 32x32 patch cut at a random place, which may straddle tiles and chunks.

size = 32
rng = np.random.default_rng(1)
top, left = (int(v) for v in rng.integers(0, mosaic.shape[0] - size, size=2))
template = mosaic[top:top + size, left:left + size].compute()
print(f"template cut at (row, col) = ({top}, {left})")

# %%
# The search on a local cluster
# -----------------------------
# Two single-threaded workers (in this process, so that the example runs
# anywhere; ``processes=True`` spreads them over processes, and a
# ``distributed`` scheduler address spreads them over machines). The map is
# lazy until ``compute``: only a reduced copy for the plot and the position
# of the maximum come back.

with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                  dashboard_address=None) as cluster, Client(cluster) as client:
    start = time.perf_counter()
    scores = pdask.similarity_map(mosaic, template, centered=True)
    step = 4
    preview, best, best_score = client.compute(
        [scores[::step, ::step], scores.argmax(), scores.max()], sync=True)
    elapsed = time.perf_counter() - start

peak = tuple(int(p) for p in np.unravel_index(int(best), scores.shape))
print(f"map {scores.shape} in {elapsed:.1f} s; best match at {peak}, "
      f"similarity {float(best_score):.6f}")
# the best match is where the template was cut, and nowhere else is as good
assert peak == (top, left), (peak, (top, left))

# %%
# The result
# ----------
# The mosaic with the cut in red, and the similarity map (every fourth
# position along each axis): the peak stands alone.

fig, (ax_image, ax_map) = plt.subplots(1, 2, figsize=(10, 5.4))
ax_image.imshow(mosaic[::2, ::2].compute(), cmap="gray")
ax_image.add_patch(plt.Rectangle((left / 2 - 8, top / 2 - 8), size / 2 + 16, size / 2 + 16,
                                 edgecolor="red", facecolor="none", lw=2))
ax_image.set_title(f"{mosaic.shape[0]}x{mosaic.shape[1]} mosaic, template in red")
shown = ax_map.imshow(preview, cmap="viridis", vmin=-1, vmax=1)
ax_map.plot(peak[1] / step, peak[0] / step, "o", markerfacecolor="none",
            markeredgecolor="red", markersize=16, markeredgewidth=2)
ax_map.set_title("similarity map, peak circled")
fig.colorbar(shown, ax=ax_map, fraction=0.046)
for ax in (ax_image, ax_map):
    ax.set_axis_off()
fig.tight_layout()

# %%
fig, ax = plt.subplots(figsize=(3, 3))
ax.imshow(template, cmap="gray")
ax.set_title("template (32x32)")
ax.set_axis_off()
fig.tight_layout()

# sphinx_gallery_thumbnail_number = 1
