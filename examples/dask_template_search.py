"""
Template search in a large mosaic with Dask
===========================================

Builds a large grey-level mosaic from photographs that ship with
scikit-image, cuts a template out of one tile, and finds it again with
:func:`pyconvnet.dask.similarity_map` on a local Dask cluster of worker
processes. Each chunk is scored by the compiled kernels from its own data
plus a halo borrowed from its neighbours, so no match is lost at a seam.
"""
import argparse
import time
from pathlib import Path

import dask
import dask.array as da
import matplotlib
import numpy as np
from distributed import Client, LocalCluster
from skimage import data, transform

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pyconvnet import dask as pdask  # noqa: E402

PHOTOS = ["camera", "coins", "moon", "page", "text", "brick", "grass", "gravel"]


def photo_tile(name, tile, flip_rows, flip_cols):
    """One photograph, resized to ``tile`` x ``tile`` and flipped; built on
    the worker that needs it, so the graph carries no pixel data."""
    photo = transform.resize(getattr(data, name)().astype(np.float64) / 255.0,
                             (tile, tile), anti_aliasing=True)
    return np.ascontiguousarray(photo[::flip_rows, ::flip_cols])


def mosaic(tiles_per_side, tile=512, seed=0):
    """A lazy mosaic of photographs, randomly chosen and flipped so that no
    two tiles are the same."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(tiles_per_side):
        row = []
        for _ in range(tiles_per_side):
            args = (PHOTOS[rng.integers(len(PHOTOS))], tile,
                    int(rng.choice([-1, 1])), int(rng.choice([-1, 1])))
            row.append(da.from_delayed(dask.delayed(photo_tile)(*args),
                                       shape=(tile, tile), dtype=np.float64))
        rows.append(row)
    return da.block(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Template search in a large mosaic with Dask.")
    parser.add_argument("--tiles", type=int, default=8, help="tiles per side (512 px each)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--template", type=int, default=32, help="template side")
    parser.add_argument("--output", default="examples/output/dask_template_search.png")
    args = parser.parse_args(argv)

    image = mosaic(args.tiles).rechunk(1024)
    rng = np.random.default_rng(1)
    top, left = (int(v) for v in rng.integers(0, image.shape[0] - args.template, size=2))
    template = image[top:top + args.template, left:left + args.template].compute()

    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      host="127.0.0.1") as cluster, Client(cluster) as client:
        print(f"Dask dashboard: {client.dashboard_link}")
        start = time.perf_counter()
        scores = pdask.similarity_map(image, template, centered=True)
        # keep a reduced copy of the map for the plot, and the peak
        step = max(1, scores.shape[0] // 512)
        preview, best = client.compute([scores[::step, ::step], scores.argmax()], sync=True)
        elapsed = time.perf_counter() - start
    peak = np.unravel_index(int(best), scores.shape)
    print(f"mosaic {image.shape}, template {template.shape} cut at ({top}, {left}); "
          f"best match at {tuple(int(p) for p in peak)} in {elapsed:.1f} s "
          f"on {args.workers} workers")

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    axes[0].imshow(template, cmap="gray")
    axes[0].set_title("template")
    axes[1].imshow(preview, cmap="viridis", vmin=-1, vmax=1)
    axes[1].plot(peak[1] / step, peak[0] / step, "o", markerfacecolor="none",
                 markeredgecolor="red", markersize=14)
    axes[1].set_title(f"similarity over the {image.shape[0]}x{image.shape[1]} mosaic")
    for ax in axes:
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
