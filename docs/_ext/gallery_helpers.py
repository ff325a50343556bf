"""Helpers for sphinx-gallery: figures that examples save to files.

Some examples are command-line scripts that save their figures as PNG files
and close them, so the default matplotlib scraper sees nothing. When the
gallery runs them, :func:`example_argv` points their ``--output`` option at
a scratch folder, and :func:`saved_png_scraper` picks up every PNG that
appears there after a code block ran.
"""
import os
import shutil
import tempfile
from pathlib import Path

from sphinx_gallery.scrapers import figure_rst

SCRATCH = Path(tempfile.gettempdir()) / "pyconvnet-gallery-output"

def _argv(name):
    """Command-line arguments per example script (none for the others)."""
    if name == "template_matching.py":
        return ["--output", str(SCRATCH / "template_matching.png")]
    if name == "train_lenet5.py":
        # a short schedule: the docs show the curves, not the best accuracy
        epochs = os.environ.get("PYCONVNET_EXAMPLE_EPOCHS", "2")
        return ["--output-dir", str(SCRATCH), "--epochs", epochs, "--no-progress"]
    return []


def example_argv(gallery_conf, script_vars):
    """``sys.argv[1:]`` for an example run by the gallery."""
    return _argv(Path(script_vars["src_file"]).name)


def reset_saved_pngs(gallery_conf, fname, when=None):
    """Empty the scratch folder before and after each example."""
    shutil.rmtree(SCRATCH, ignore_errors=True)
    SCRATCH.mkdir(parents=True, exist_ok=True)


def saved_png_scraper(block, block_vars, gallery_conf):
    """Move the PNG files an example block saved into the gallery images."""
    if not SCRATCH.is_dir():
        return ""
    pngs = sorted(SCRATCH.glob("*.png"), key=lambda p: p.stat().st_mtime)
    image_names = []
    paths = block_vars["image_path_iterator"]
    for png, image_path in zip(pngs, paths):
        shutil.move(str(png), image_path)
        image_names.append(image_path)
    return figure_rst(image_names, gallery_conf["src_dir"])
