"""
Template matching on a photograph
=================================

Cut a patch out of a real photograph, then find it again by sliding it over
the image and scoring every position with the zero-mean cosine similarity
(normalised cross-correlation) of :func:`pyconvnet.signal.similarity_map`.
The peak of the similarity map marks where the patch came from.
"""
import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from skimage import data  # noqa: E402

from pyconvnet.signal import similarity_map  # noqa: E402


def find_template(image, top, left, size):
    """Cut a ``size`` square at (top, left) and locate it with the map."""
    template = image[top:top + size, left:left + size]
    start = time.perf_counter()
    similarity = similarity_map(image, template, centered=True)
    elapsed = time.perf_counter() - start
    peak = np.unravel_index(np.argmax(similarity), similarity.shape)
    return template, similarity, peak, elapsed


def plot(image, template, similarity, peak, size, path):
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2))
    axes[0].imshow(template, cmap="gray")
    axes[0].set_title("template")
    axes[1].imshow(image, cmap="gray")
    axes[1].add_patch(plt.Rectangle((peak[1], peak[0]), size, size,
                                    edgecolor="red", facecolor="none", lw=2))
    axes[1].set_title("image, best match in red")
    shown = axes[2].imshow(similarity, cmap="viridis", vmin=-1, vmax=1)
    axes[2].plot(peak[1], peak[0], "o", markeredgecolor="red",
                 markerfacecolor="none", markersize=12)
    axes[2].set_title("similarity map (peak circled)")
    fig.colorbar(shown, ax=axes[2], fraction=0.046)
    for ax in axes:
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Find a patch of a photograph again.")
    parser.add_argument("--image", choices=["coins", "camera"], default="coins")
    parser.add_argument("--top", type=int, default=170)
    parser.add_argument("--left", type=int, default=75)
    parser.add_argument("--size", type=int, default=51)
    parser.add_argument("--output", default="examples/output/template_matching.png")
    args = parser.parse_args(argv)

    image = getattr(data, args.image)().astype(np.float64) / 255.0
    template, similarity, peak, elapsed = find_template(
        image, args.top, args.left, args.size)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    plot(image, template, similarity, peak, args.size, out)
    print(f"image {image.shape}, template {template.shape}: map in {elapsed * 1e3:.1f} ms")
    print(f"best match at (row, col) = {tuple(int(p) for p in peak)}, "
          f"similarity {similarity[peak]:.4f}; the template was cut at "
          f"({args.top}, {args.left})")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
