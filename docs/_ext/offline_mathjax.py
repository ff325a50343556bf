"""MathJax shipped with the built pages, so formulas render with no network.

The copy comes from the ``django-static-mathjax`` package (a pinned MathJax 3
release; the package needs nothing of Django to be installed), listed in the
``docs`` extra. This extension copies the parts a page needs into
``_static/mathjax/`` of the HTML output; ``conf.py`` points
:mod:`sphinx.ext.mathjax` at them (``mathjax_path = "mathjax/tex-svg.js"``):

* ``tex-svg.js``, one file with the TeX input, the SVG output (SVG needs no
  web fonts, which browsers may refuse to load from ``file://`` pages) and
  the context menu;
* ``input/tex/extensions/``, the TeX packages that ``autoload`` fetches on
  first use (``\\boldsymbol``, ``\\cancel``, ...);
* ``a11y/`` and ``ui/``, loaded by the menu's accessibility options;
* MathJax's ``LICENSE`` (Apache 2.0).
"""
import shutil
from importlib import util
from pathlib import Path

from sphinx.errors import ExtensionError

#: The MathJax release the docs are built and tested with.
MATHJAX_VERSION = "3.2.2"
ENTRY = "tex-svg.js"
PARTS = (ENTRY, "input/tex/extensions", "a11y", "ui")


def mathjax_source():
    """The folder of the installed MathJax ES5 components."""
    spec = util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise ExtensionError("MathJax is not installed: pip install django-static-mathjax "
                             "(it is part of the docs extra: pip install -e '.[docs]')")
    root = Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax"
    es5 = root / "es5"
    if not (es5 / ENTRY).is_file():
        raise ExtensionError(f"no MathJax {ENTRY} under {es5}")
    version = (es5 / ENTRY).read_text(encoding="utf-8", errors="replace")
    if f'VERSION="{MATHJAX_VERSION}"' not in version:
        raise ExtensionError(f"{es5 / ENTRY} is not MathJax {MATHJAX_VERSION}")
    return root


def _copy(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    root = mathjax_source()
    target = Path(app.outdir) / "_static" / "mathjax"
    for part in PARTS:
        src, dst = root / "es5" / part, target / part
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)
    shutil.copy2(root / "LICENSE", target / "LICENSE")


def setup(app):
    mathjax_source()                  # fail early, before reading any page
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
