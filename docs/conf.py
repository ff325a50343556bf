"""Sphinx configuration of the pyconvnet documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html`` after installing
the package with its ``docs`` extra (``pip install -e ".[docs]"``). The build
needs no network: MathJax is loaded by the reader's browser.
"""
import os
import re
import sys
from pathlib import Path

import pyconvnet

HERE = Path(__file__).resolve().parent
# Local Sphinx helpers (gallery scraper); the package itself must be installed.
sys.path.insert(0, str(HERE / "_ext"))

# The gallery trains LeNet-5 for this many epochs (docs/_ext/gallery_helpers.py).
os.environ.setdefault("PYCONVNET_EXAMPLE_EPOCHS", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

project = "pyconvnet"
author = "The pyconvnet developers"
copyright = "the pyconvnet developers"
release = pyconvnet.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
    "sphinx.ext.doctest",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip"]
root_doc = "index"

# -- autodoc / autosummary / numpydoc ----------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# No network at build time: intersphinx inventories are not fetched unless
# PYCONVNET_DOCS_INTERSPHINX=1 (then numpy/scipy names become links).
intersphinx_mapping = {}
if os.environ.get("PYCONVNET_DOCS_INTERSPHINX") == "1":
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "scipy": ("https://docs.scipy.org/doc/scipy", None),
    }

# -- gallery -----------------------------------------------------------------
EXAMPLES = HERE.parent / "examples"


# Every script in examples/ is shown; these run during the build (LeNet-5 for
# a couple of epochs, see gallery_helpers.example_argv). The Dask example
# starts a cluster of processes and is shown without running.
_RUN = [p.stem for p in sorted(EXAMPLES.glob("plot_*.py"))] + ["template_matching",
                                                               "train_lenet5"]

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # Run the plot_* examples, the template matching and the LeNet-5 training.
    "filename_pattern": r"[/\\](" + "|".join(re.escape(n) for n in _RUN) + r")\.py$",
    "ignore_pattern": r"(__init__|_common)\.py$",
    "image_scrapers": ("matplotlib", "gallery_helpers.saved_png_scraper"),
    "reset_argv": "gallery_helpers.example_argv",
    "reset_modules": ("matplotlib", "gallery_helpers.reset_saved_pngs"),
    "download_all_examples": False,
    # "Gallery examples using ..." under every function and class.
    "doc_module": ("pyconvnet",),
    "backreferences_dir": "api/generated/backreferences",
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
    "show_memory": False,
}

# -- HTML --------------------------------------------------------------------
html_theme = "alabaster"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_title = f"pyconvnet {release}"
html_theme_options = {
    "description": "Convolution and pooling for CNNs, fast on a CPU, with "
                   "the derivations behind every formula.",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "230px",
}
html_sidebars = {"**": ["about.html", "navigation.html", "relations.html",
                        "searchbox.html"]}

# pyconvnet.dask needs the optional dask; document it from mocks when absent.
import importlib.util  # noqa: E402

autodoc_mock_imports = [name for name in ("dask", "distributed")
                        if importlib.util.find_spec(name) is None]
