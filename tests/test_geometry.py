"""Tests for pyconvnet._geometry: the window arithmetic every module shares."""
import ast
import pathlib

import pytest
from conftest import import_oracle
from hypothesis import given, settings
from hypothesis import strategies as st

import pyconvnet
from pyconvnet import _geometry, shapes
from pyconvnet._geometry import (
    InputTooSmallError,
    check_pool_padding,
    kernel_extent,
    pool_window_count,
    same_pair,
    window_count,
    window_length,
)

PACKAGE = pathlib.Path(pyconvnet.__file__).resolve().parent

windows = st.tuples(st.integers(1, 40), st.integers(1, 6), st.integers(1, 5),
                    st.integers(0, 6), st.integers(1, 3))


@given(windows, st.booleans())
def test_window_count_counts_window_positions(args, ceil_mode):
    n, k, s, total, d = args
    extent = kernel_extent(k, d)
    padded = n + total
    # floor: every start o*s whose window ends inside the padded input;
    # ceil: also the starts within one stride past the last of those
    span = padded - extent
    starts = [o for o in range(padded + s) if o * s <= span
              or (ceil_mode and o * s < span + s)]
    # (a window that does not fit at all gives zero or a negative count)
    assert max(0, window_count(n, k, s, total, d, ceil_mode)) == len(starts)


@settings(deadline=None)   # the first call imports torch
@given(windows, st.booleans())
def test_pool_window_count_matches_torch(args, ceil_mode):
    torch = import_oracle("torch")
    n, k, s, p, d = args
    p = min(p, k // 2)
    out = pool_window_count(n, k, s, p, d, ceil_mode)
    x = torch.zeros(1, 1, n)
    if out < 1:
        with pytest.raises(RuntimeError):
            torch.nn.functional.max_pool1d(x, k, s, p, d, ceil_mode)
        return
    assert torch.nn.functional.max_pool1d(x, k, s, p, d, ceil_mode).shape[-1] == out


@given(st.integers(1, 30), st.integers(1, 7), st.integers(1, 3))
def test_same_pair_keeps_the_size_and_pads_the_extra_one_after(n, k, d):
    before, after = same_pair(k, d)
    assert before + after == d * (k - 1)
    assert after - before in (0, 1)
    assert window_count(n, k, 1, before + after, d) == n


def test_window_length_refuses_a_kernel_larger_than_the_padded_input():
    assert window_length(5, 3, 1, 1, 1) == 5
    with pytest.raises(InputTooSmallError, match=r"padded input has only 2 \+ 0 \+ 0 = 2"):
        window_length(2, 3, 1, 0, 0)
    # pooling in ceil mode keeps a window that overhangs a short input
    assert window_length(3, 4, 2, 0, 0, ceil_mode=True, overhang=True) == 1


def test_pool_padding_is_at_most_half_the_kernel():
    check_pool_padding((1, 2), (3, 4))
    with pytest.raises(ValueError, match=r"padding must be at most half the kernel size"):
        check_pool_padding((2,), (3,))


def test_input_too_small_error_is_one_public_class():
    assert shapes.InputTooSmallError is InputTooSmallError
    assert InputTooSmallError.__module__ == "pyconvnet.shapes"
    assert issubclass(InputTooSmallError, ValueError)


def _imports(path):
    """Absolute names of the pyconvnet modules a source file imports."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if module.endswith(".__init__"):
        module = module[:-len(".__init__")]
        package = module
    else:
        package = module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return module, {t for t in found if t.split(".")[0] == "pyconvnet"}


def test_the_kernels_wrappers_use_geometry_and_validation_not_the_calculators():
    for name in ("_convolution", "_pooling", "signal", "dask"):
        _, imported = _imports(PACKAGE / f"{name}.py")
        assert not any(t == "pyconvnet.shapes" or t.startswith("pyconvnet.shapes.")
                       for t in imported), name
    assert "pyconvnet._geometry" in _imports(PACKAGE / "_convolution.py")[1]
    assert "pyconvnet._geometry" in _imports(PACKAGE / "_pooling.py")[1]
    assert "pyconvnet._geometry" in _imports(PACKAGE / "dask.py")[1]


def test_geometry_is_a_leaf():
    _, imported = _imports(PACKAGE / "_geometry.py")
    assert imported == set()
    assert _geometry.__all__


def _module_graph():
    """Edges between pyconvnet's modules, counting that importing ``a.b.c``
    runs the ``__init__`` of ``a.b`` first (the top package aside: it only
    gathers the public names)."""
    files = [p for p in PACKAGE.rglob("*.py") if "_ext" not in p.parts]
    known, edges = set(), {}
    for path in files:
        module, imported = _imports(path)
        known.add(module)
        edges[module] = imported
    graph = {}
    for module, imported in edges.items():
        targets = set()
        for t in imported:
            while t not in known and "." in t:   # an imported name, not a module
                t = t.rpartition(".")[0]
            parts = t.split(".")
            for i in range(2, len(parts) + 1):
                parent = ".".join(parts[:i])
                if parent in known and not module.startswith(parent + ".") \
                        and parent != module:
                    targets.add(parent)
        graph[module] = targets - {"pyconvnet"}
    return graph


def test_the_module_import_graph_is_acyclic():
    graph = _module_graph()
    assert "pyconvnet.architectures" in graph["pyconvnet.shapes._summary"]
    assert "pyconvnet._specs" in graph["pyconvnet.architectures"]
    state = {}

    def visit(node, path):
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", "import cycle: " + " -> ".join(path + [node])
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, path + [node])
        state[node] = "done"

    for node in sorted(graph):
        visit(node, [])
