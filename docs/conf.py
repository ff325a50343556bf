"""Sphinx configuration of the pyconvnet documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html`` after installing
the package with its ``docs`` extra (``pip install -e ".[docs]"``). Neither
the build nor the reader needs a network: MathJax is shipped with the pages
(``_ext/offline_mathjax.py``) and no page loads anything from another site.
"""
import os
import re
import sys
from pathlib import Path

import pyconvnet

HERE = Path(__file__).resolve().parent
# Local Sphinx helpers (gallery scraper); the package itself must be installed.
sys.path.insert(0, str(HERE / "_ext"))

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
    "sphinx_design",
    "sphinx_copybutton",
    "matplotlib.sphinxext.plot_directive",
    "offline_mathjax",
]

# -- math: MathJax from _static, no network (see _ext/offline_mathjax.py) ----
mathjax_path = "mathjax/tex-svg.js"

# -- figures of the theory pages (``.. plot::`` calling docs/_ext/figures.py)
plot_include_source = False
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]
plot_rcparams = {"font.size": 10, "savefig.bbox": "tight"}
plot_pre_code = "import figures"

templates_path = ["_templates"]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip"]
root_doc = "index"

# -- autodoc / autosummary / numpydoc ----------------------------------------
autosummary_generate = True
autosummary_imported_members = True
# Class pages list their methods and attributes (numpydoc builds the tables
# from the class template's ``:members:``); signatures show ``numpy.float32``
# rather than ``<class 'numpy.float32'>`` (see _signature below).
autodoc_default_options = {"members": True}
autodoc_typehints = "none"
autodoc_member_order = "groupwise"
autodoc_preserve_defaults = True
numpydoc_show_class_members = True
numpydoc_show_inherited_class_members = True
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
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
# Every example runs during the build, written as cells of prose and code
# ("# %%"). train_lenet5.py is the command-line form of plot_lenet5_digits.py
# (the README's first command) and is not part of the gallery.
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"\.py$",
    "ignore_pattern": r"(__init__|_common|train_lenet5)\.py$",
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "matplotlib_animations": False,
    "capture_repr": (),
    "download_all_examples": False,
    # "Gallery examples using ..." under every function and class.
    "doc_module": ("pyconvnet",),
    "backreferences_dir": "api/generated/backreferences",
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
    "show_memory": False,
    # its pages load DataTables from a CDN; the docs load nothing from the network
    "write_computation_times": False,
}

# -- HTML --------------------------------------------------------------------
# pydata-sphinx-theme, as SciPy, scikit-learn and scikit-image use: top
# navigation, "on this page" panel, light and dark modes, the version in the
# navbar. Nothing is fetched from another site when a page is read.
html_theme = "pydata_sphinx_theme"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_title = f"pyconvnet {release}"
html_short_title = "pyconvnet"
html_last_updated_fmt = None
html_theme_options = {
    "navbar_start": ["navbar-logo", "version-switcher-static"],
    "navbar_center": ["navbar-nav"],
    "navbar_end": ["theme-switcher"],
    "navbar_persistent": ["search-button"],
    "header_links_before_dropdown": 6,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "logo": {"text": "pyconvnet"},
    "pygments_light_style": "tango",
    "pygments_dark_style": "monokai",
}
html_sidebars = {"index": [], "install": [], "quickstart": []}
html_context = {"default_mode": "auto"}

# sphinx-copybutton: copy code without the prompts and the output.
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = False

# pyconvnet.dask needs the optional dask; document it from mocks when absent.
import importlib.util  # noqa: E402

autodoc_mock_imports = [name for name in ("dask", "distributed")
                        if importlib.util.find_spec(name) is None]


def _signature(app, what, name, obj, options, signature, return_annotation):
    """``dtype=<class 'numpy.float32'>`` -> ``dtype=numpy.float32``."""
    if signature:
        signature = re.sub(r"<class '([\w.]+)'>", r"\1", signature)
        signature = re.sub(r"<function (\w+) at 0x[0-9a-f]+>", r"\1", signature)
    return signature, return_annotation


def setup(app):
    app.connect("autodoc-process-signature", _signature)
