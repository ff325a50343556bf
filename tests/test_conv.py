"""Convolution layers: forward pass and gradients against a naive reference,
PyTorch, finite differences, and the argument rules."""
import concurrent.futures
import math
import multiprocessing
import threading
import types

import numpy as np
import pytest
import threadpoolctl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyconvnet import _convolution as conv
from pyconvnet import _reference as ref
from pyconvnet._geometry import window_count
from pyconvnet.functional import (
    conv1d,
    conv1d_backward,
    conv2d,
    conv2d_backward,
    conv3d,
    conv3d_backward,
)

from conftest import tolerance

FORWARD = {1: conv1d, 2: conv2d, 3: conv3d}
BACKWARD = {1: conv1d_backward, 2: conv2d_backward, 3: conv3d_backward}
KERNELS = ["auto", "winograd-2", "winograd-4", "gemm", "gemm-split", "padded", "depthwise",
           "blocked", "pointwise", "implicit", "direct"]
# every version of the vector loops this CPU can run
SIMD = ("baseline", "avx2", "avx512")[:("baseline", "avx2", "avx512").index(
    conv._conv.simd()) + 1]


@pytest.fixture(params=KERNELS)
def kernel(request, monkeypatch):
    """Run every convolution with one kernel wherever it applies."""
    force_kernel(monkeypatch, request.param)
    return request.param


def force_kernel(monkeypatch, name):
    if name == "auto":
        return
    if name == "gemm-split":
        # GEMM with work split into channel blocks of any width whenever
        # there are fewer images than threads
        monkeypatch.setattr(conv, "_MIN_BLOCK", 1)
        name = "gemm"
    if name.startswith("winograd-"):
        m = int(name[-1])
        monkeypatch.setattr(conv, "_winograd_m", lambda geom: m)
        name = "winograd"
    choose = conv._algorithm

    def forced(geom, op="forward", n_threads=1):
        return name if name in conv._applicable(geom, op) else choose(geom, op, n_threads)

    monkeypatch.setattr(conv, "_algorithm", forced)


def close(actual, expected, dtype, scale=None):
    """assert_allclose with tolerances for ``dtype``, relative to the size
    of the expected values (sums of many terms)."""
    tol = tolerance(dtype)
    expected = np.asarray(expected, dtype=np.float64)
    if scale is None:
        scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=tol["rtol"],
                               atol=tol["atol"] * scale)


# --- random layers ------------------------------------------------------------

@st.composite
def layers(draw, nd=None, max_size=7):
    """A random valid layer: arrays and every argument."""
    nd = draw(st.sampled_from([1, 2, 3])) if nd is None else nd
    small = nd == 3    # keep the reference's loops short
    if small:
        max_size = min(max_size, 4)
    groups = draw(st.sampled_from([1, 2] if small else [1, 1, 2, 3]))
    cg = draw(st.integers(1, 2 if small else 3))
    kg = draw(st.integers(1, 2 if small else 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    padding = draw(st.sampled_from(["int", "tuple", "same", "valid"]))
    stride = (1,) * nd if padding == "same" else \
        tuple(draw(st.integers(1, 3)) for _ in range(nd))
    if padding == "int":
        padding = draw(st.integers(0, 2))
        pads = (padding,) * nd
    elif padding == "tuple":
        pads = tuple(draw(st.integers(0, 3)) for _ in range(nd))
        padding = pads
    else:
        pads = (0,) * nd
    # spatial sizes at least as large as the dilated kernel minus the padding
    spatial = tuple(
        draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), max_size + d * (k - 1)))
        for k, d, p in zip(kernel, dilation, pads))
    n = draw(st.integers(1, 2))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, cg * groups) + spatial)
    w = rng.standard_normal((kg * groups, cg) + kernel)
    b = rng.standard_normal(kg * groups) if draw(st.booleans()) else None
    return dict(x=x, w=w, b=b, stride=stride, padding=padding, dilation=dilation,
                groups=groups, nd=nd)


def run_forward(layer, dtype, n_threads):
    x = layer["x"].astype(dtype)
    w = layer["w"].astype(dtype)
    b = None if layer["b"] is None else layer["b"].astype(dtype)
    return FORWARD[layer["nd"]](x, w, b, layer["stride"], layer["padding"],
                                layer["dilation"], layer["groups"], n_threads=n_threads)


def run_backward(layer, dy, dtype, n_threads):
    return BACKWARD[layer["nd"]](dy.astype(dtype), layer["x"].astype(dtype),
                                 layer["w"].astype(dtype), layer["stride"],
                                 layer["padding"], layer["dilation"], layer["groups"],
                                 n_threads=n_threads)


def reference_args(layer):
    return dict(stride=layer["stride"], padding=layer["padding"],
                dilation=layer["dilation"], groups=layer["groups"])


@pytest.mark.parametrize("kernel", KERNELS, indirect=True)
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layer=layers())
def test_forward_and_backward_match_reference(layer, kernel, dtype, n_threads):
    # The (float64) references cast their inputs from the dtype under test.
    cast = {k: (v.astype(dtype).astype(np.float64) if isinstance(v, np.ndarray) else v)
            for k, v in layer.items()}
    y = run_forward(layer, dtype, n_threads)
    expected = ref.conv_forward(cast["x"], cast["w"], cast["b"], **reference_args(layer))
    assert y.dtype == dtype
    assert y.shape == expected.shape
    close(y, expected, dtype)

    dy = np.random.default_rng(1).standard_normal(y.shape)
    dy_cast = dy.astype(dtype).astype(np.float64)
    dx, dw, db = run_backward(layer, dy, dtype, n_threads)
    ex, ew, eb = ref.conv_backward(dy_cast, cast["x"], cast["w"], **reference_args(layer))
    for got, want in ((dx, ex), (dw, ew), (db, eb)):
        assert got.dtype == dtype
        assert got.shape == want.shape
        close(got, want, dtype)


def test_reference_matches_the_definition_on_a_hand_worked_case():
    # 1 image, 1 channel, 3x3 input, 2x2 kernel, padding 1, stride 2:
    # outputs at rows/cols {0, 2} of the padded 5x5 grid.
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    y = ref.conv_forward(x, w, stride=2, padding=1)
    # y[0,0] = 4*x[0,0]; y[0,1] = 3*x[0,1] + 4*x[0,2]; y[1,0] = 2*x[1,0] + 4*x[2,0]
    # y[1,1] = 1*x[1,1] + 2*x[1,2] + 3*x[2,1] + 4*x[2,2]
    np.testing.assert_array_equal(y[0, 0], [[4.0, 6 + 12], [8 + 28, 5 + 12 + 24 + 36]])
    np.testing.assert_array_equal(conv2d(x, w, stride=2, padding=1), y)


# --- kernels on larger layers, against PyTorch -----------------------------

# (N, C, spatial) -> K, kernel, stride, padding, dilation, groups
TORCH_CASES = [
    ((2, 32, 17, 15), 24, (3, 3), 1, 1, 1, 1),        # Winograd, odd sizes
    ((3, 32, 20, 19), 32, (3, 3), 1, 2, 2, 1),        # Winograd over dilation phases
    ((2, 32, 12, 12), 48, (3, 3), 1, "same", (1, 3), 2),
    ((2, 16, 9, 9), 16, (3, 3), 1, 4, 1, 1),          # padding beyond the kernel
    ((2, 3, 40, 36), 16, (7, 7), 2, 3, 1, 1),         # stem-like
    ((2, 64, 7, 7), 32, (1, 1), 1, 0, 1, 1),          # 1x1: no unrolling
    ((2, 16, 11, 10), 24, (1, 1), 2, 0, 1, 1),        # strided 1x1
    ((4, 1, 32, 32), 6, (5, 5), 1, 0, 1, 1),          # LeNet-like
    ((2, 24, 14, 14), 24, (3, 3), 1, 1, 1, 24),       # depthwise
    ((2, 24, 14, 13), 48, (3, 3), 2, 1, 1, 24),       # depthwise, multiplier 2, strided
    ((3, 40, 13, 11), 40, (5, 5), 2, 2, 1, 40),       # depthwise, blocks of channels + rest
    ((1, 17, 9, 10), 17, (3, 3), 1, 3, 2, 17),        # depthwise, dilated, wide padding
    ((2, 33, 16, 15), 33, (1, 7), (1, 2), (0, 3), 1, 33),  # depthwise 1x7
    ((2, 32, 16, 16), 32, (3, 3), 1, 1, 1, 8),        # grouped
    ((2, 16, 20, 21), 16, (2, 4), (2, 3), (1, 2), (2, 1), 2),
    ((1, 8, 30, 30), 16, (4, 4), 1, "same", 1, 1),    # even kernel, 'same'
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda c: f"{c[0]}->{c[1]},{c[2]}")
@pytest.mark.parametrize("kernel", KERNELS, indirect=True)
def test_against_torch(torch, case, kernel, dtype):
    shape, K, ks, stride, padding, dilation, groups = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((K, shape[1] // groups) + ks).astype(dtype)
    b = rng.standard_normal(K).astype(dtype)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    bt = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, wt, bt, stride, padding, dilation, groups)
    y = conv2d(x, w, b, stride, padding, dilation, groups, n_threads=2)
    close(y, yt.detach().numpy(), dtype)
    dy = rng.standard_normal(y.shape).astype(dtype)
    yt.backward(torch.tensor(dy, dtype=torch.float64))
    dx, dw, db = conv2d_backward(dy, x, w, stride, padding, dilation, groups, n_threads=2)
    close(dx, xt.grad.numpy(), dtype)
    close(dw, wt.grad.numpy(), dtype)
    close(db, bt.grad.numpy(), dtype)


@pytest.mark.parametrize("nd", [1, 3])
def test_1d_and_3d_against_torch(torch, nd, dtype, n_threads):
    rng = np.random.default_rng(nd)
    fwd = getattr(torch.nn.functional, f"conv{nd}d")
    spatial = (29,) if nd == 1 else (6, 7, 5)
    for stride, padding, dilation, groups, ks in [
            (1, 1, 1, 1, 3), (2, 0, 1, 2, 2), (1, "same", 2, 1, 3), (1, 0, 1, 4, 1)]:
        x = rng.standard_normal((2, 8) + spatial).astype(dtype)
        w = rng.standard_normal((12, 8 // groups) + (ks,) * nd).astype(dtype)
        xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
        yt = fwd(xt, wt, None, stride, padding, dilation, groups)
        y = FORWARD[nd](x, w, None, stride, padding, dilation, groups, n_threads=n_threads)
        close(y, yt.detach().numpy(), dtype)
        dy = rng.standard_normal(y.shape).astype(dtype)
        yt.backward(torch.tensor(dy, dtype=torch.float64))
        dx, dw, db = BACKWARD[nd](dy, x, w, stride, padding, dilation, groups,
                                  n_threads=n_threads)
        close(dx, xt.grad.numpy(), dtype)
        close(dw, wt.grad.numpy(), dtype)
        close(db, dy.sum(axis=tuple(a for a in range(dy.ndim) if a != 1)), dtype)


@pytest.mark.parametrize("kernel", ["gemm", "winograd-2", "winograd-4"], indirect=True)
def test_many_tiles_and_tasks(kernel, monkeypatch, torch):
    # Small tiles split images into many GEMM tiles that start and end in the
    # middle of output rows; small Winograd budgets give many tasks.
    monkeypatch.setattr(conv, "_MIN_TILE", 5)
    monkeypatch.setattr(conv, "_TILE_BYTES", 16)
    monkeypatch.setattr(conv, "_WINOGRAD_BYTES", 16)
    rng = np.random.default_rng(3)
    for stride, padding, dilation in [(1, 1, 1), (2, 2, 1), (1, 2, 2), ((1, 3), (0, 2), (2, 1))]:
        x = rng.standard_normal((3, 8, 13, 11))
        w = rng.standard_normal((8, 8, 3, 3))
        y = conv2d(x, w, None, stride, padding, dilation, n_threads=2)
        xt = torch.tensor(x, requires_grad=True)
        wt = torch.tensor(w, requires_grad=True)
        yt = torch.nn.functional.conv2d(xt, wt, None, stride, padding, dilation)
        close(y, yt.detach().numpy(), np.float64)
        yt.backward(torch.tensor(y))
        dx, dw, _ = conv2d_backward(y, x, w, stride, padding, dilation, n_threads=2)
        close(dx, xt.grad.numpy(), np.float64)
        close(dw, wt.grad.numpy(), np.float64)


def test_kernel_choice_for_typical_layers():
    def algorithm(shape, K, ks, stride=1, padding=0, dilation=1, groups=1):
        x = np.zeros(shape, np.float32)
        w = np.zeros((K, shape[1] // groups, ks, ks), np.float32)
        geom = conv._validate(2, x, w, None, stride, padding, dilation, groups)[3]
        return conv._algorithm(geom, "forward")

    # (the register-blocked kernel's blocks, and so its predicted cost,
    # depend on the CPU: 16 float32 channels with AVX2, 32 with AVX-512)
    assert algorithm((1, 64, 56, 56), 64, 3, padding=1) == "winograd"
    assert algorithm((1, 64, 56, 56), 64, 3, padding=2, dilation=2) == "winograd"
    assert algorithm((1, 64, 56, 56), 64, 3, stride=2, padding=1) in ("gemm", "blocked",
                                                                       "implicit")
    assert algorithm((8, 256, 56, 56), 64, 1) == "pointwise"
    assert algorithm((8, 512, 28, 28), 512, 3, stride=2, padding=1) in ("gemm", "blocked",
                                                                         "implicit")
    assert algorithm((1, 16, 28, 28), 32, 3, padding=1) == "blocked"
    assert algorithm((1, 3, 224, 224), 64, 7, stride=2, padding=3) in ("gemm", "blocked",
                                                                        "implicit")
    assert algorithm((8, 960, 7, 7), 960, 3, padding=1, groups=960) == "depthwise"
    assert algorithm((8, 576, 14, 14), 576, 3, stride=2, padding=1, groups=576) == "depthwise"
    assert algorithm((1, 32, 28, 28), 64, 3, padding=1, groups=32) == "padded"  # multiplier 2
    # LeNet-5's C1 at batch 1: a few tens of microseconds either way, where
    # the two kernels' fixed costs are within the model's error
    assert algorithm((1, 1, 32, 32), 6, 5) in ("padded", "blocked")


# --- gradients by finite differences ----------------------------------------

@pytest.mark.parametrize("nd,spatial,kwargs", [
    (1, (11,), dict(stride=2, padding=1, dilation=2, groups=2)),
    (2, (7, 6), dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=1)),
    (2, (6, 6), dict(stride=1, padding="same", dilation=1, groups=2)),
    (2, (8, 8), dict(stride=1, padding=1, dilation=1, groups=1)),
    (3, (4, 5, 4), dict(stride=(1, 2, 1), padding=1, dilation=1, groups=2)),
])
@pytest.mark.parametrize("kernel", KERNELS, indirect=True)
def test_backward_matches_finite_differences(nd, spatial, kwargs, kernel):
    rng = np.random.default_rng(7)
    c, k = 4, 4
    x = rng.standard_normal((2, c) + spatial)
    w = rng.standard_normal((k, c // kwargs["groups"]) + (3,) * nd)
    b = rng.standard_normal(k)
    y = FORWARD[nd](x, w, b, **kwargs)
    r = rng.standard_normal(y.shape)   # L = sum(r * y): dL/dy = r

    def loss(x, w, b):
        return float(np.sum(r * FORWARD[nd](x, w, b, **kwargs)))

    dx, dw, db = BACKWARD[nd](r, x, w, **kwargs)
    h = 1e-6
    for arr, grad, name in ((x, dx, "x"), (w, dw, "w"), (b, db, "b")):
        flat = arr.reshape(-1)
        for i in rng.choice(flat.size, size=min(flat.size, 12), replace=False):
            old = flat[i]
            flat[i] = old + h
            up = loss(x, w, b)
            flat[i] = old - h
            down = loss(x, w, b)
            flat[i] = old
            numeric = (up - down) / (2 * h)
            assert abs(grad.reshape(-1)[i] - numeric) <= 1e-5 * max(1.0, abs(numeric)), \
                (name, i, grad.reshape(-1)[i], numeric)


def test_strided_input_gradient_is_zero_where_no_output_reads():
    # Stride 3 with a 2x2 kernel skips every third row and column.
    x = np.ones((1, 1, 9, 9))
    dx, _, _ = conv2d_backward(np.ones((1, 1, 3, 3)), x, np.ones((1, 1, 2, 2)), stride=3)
    read = np.zeros((9, 9), bool)
    read[np.ix_([0, 1, 3, 4, 6, 7], [0, 1, 3, 4, 6, 7])] = True
    np.testing.assert_array_equal(dx[0, 0], np.where(read, 1.0, 0.0))


# --- arrays: layouts, dtypes, shapes -------------------------------------------

def test_layouts_and_read_only_inputs_are_accepted_and_not_modified():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((3, 8, 20, 18))
    x = base[::2, ::2, 1::2, ::-1]                       # non-contiguous, reversed
    w = np.asfortranarray(rng.standard_normal((6, 2, 3, 3)))
    b = rng.standard_normal(12)[::2]
    for arr in (x, w, b):
        arr.flags.writeable = False
    copies = [a.copy() for a in (x, w, b)]
    expected = ref.conv_forward(np.array(x), np.array(w), np.array(b), 2, 1, 1, 2)
    y = conv2d(x, w, b, stride=2, padding=1, groups=2)
    close(y, expected, np.float64)
    dy = np.asfortranarray(rng.standard_normal(y.shape))
    dy.flags.writeable = False
    dy_copy = dy.copy()
    got = conv2d_backward(dy, x, w, stride=2, padding=1, groups=2)
    want = ref.conv_backward(np.array(dy), np.array(x), np.array(w), 2, 1, 1, 2)
    for g, e in zip(got, want):
        close(g, e, np.float64)
    for arr, copy in zip((x, w, b, dy), copies + [dy_copy]):
        np.testing.assert_array_equal(arr, copy)


def test_inputs_are_not_modified(kernel):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 16, 9, 9)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    dy = rng.standard_normal((2, 16, 9, 9)).astype(np.float32)
    saved = [a.copy() for a in (x, w, b, dy)]
    conv2d(x, w, b, padding=1)
    conv2d_backward(dy, x, w, padding=1)
    for arr, copy in zip((x, w, b, dy), saved):
        np.testing.assert_array_equal(arr, copy)


@pytest.mark.parametrize("x_dtype,w_dtype,expected", [
    (np.float32, np.float32, np.float32),
    (np.float16, np.float32, np.float32),
    (np.float32, np.float64, np.float64),
    (np.int32, np.int64, np.float64),
    (np.uint8, np.float32, np.float64),
    (bool, np.float32, np.float64),
])
def test_dtypes(x_dtype, w_dtype, expected):
    x = (np.arange(2 * 3 * 5 * 5) % 7).reshape(2, 3, 5, 5).astype(x_dtype)
    w = (np.arange(4 * 3 * 2 * 2) % 3).reshape(4, 3, 2, 2).astype(w_dtype)
    y = conv2d(x, w)
    assert y.dtype == expected
    close(y, ref.conv_forward(x.astype(np.float64), w.astype(np.float64)), expected)
    grads = conv2d_backward(np.ones(y.shape, np.float32), x, w)
    assert all(g.dtype == expected for g in grads)


def test_unbatched_input_matches_a_batch_of_one():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 10, 9))
    w = rng.standard_normal((6, 2, 3, 2))
    y = conv2d(x, w, None, 1, (1, 0), 1, 2)
    assert y.shape == (6, 10, 8)
    np.testing.assert_allclose(y, conv2d(x[None], w, None, 1, (1, 0), 1, 2)[0])
    dy = rng.standard_normal(y.shape)
    dx, dw, db = conv2d_backward(dy, x, w, 1, (1, 0), 1, 2)
    bx, bw, bb = conv2d_backward(dy[None], x[None], w, 1, (1, 0), 1, 2)
    assert dx.shape == x.shape
    np.testing.assert_allclose(dx, bx[0])
    np.testing.assert_allclose(dw, bw)
    np.testing.assert_allclose(db, bb)
    assert conv1d(np.ones((3, 8)), np.ones((2, 3, 3))).shape == (2, 6)


def test_empty_batch():
    y = conv2d(np.zeros((0, 3, 8, 8)), np.ones((5, 3, 3, 3)), padding=1)
    assert y.shape == (0, 5, 8, 8)
    dx, dw, db = conv2d_backward(np.zeros((0, 5, 8, 8)), np.zeros((0, 3, 8, 8)),
                                 np.ones((5, 3, 3, 3)), padding=1)
    assert dx.shape == (0, 3, 8, 8)
    np.testing.assert_array_equal(dw, 0)
    np.testing.assert_array_equal(db, 0)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("kernel_size,dilation", [(2, 1), (4, 1), (3, 2), (4, 3), (1, 5)])
def test_same_padding_keeps_the_size(kernel_size, dilation, torch):
    x = np.random.default_rng(0).standard_normal((1, 2, 9, 8))
    w = np.random.default_rng(1).standard_normal((3, 2, kernel_size, kernel_size))
    y = conv2d(x, w, padding="same", dilation=dilation)
    assert y.shape == (1, 3, 9, 8)
    expected = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w),
                                          padding="same", dilation=dilation)
    close(y, expected.numpy(), np.float64)


def test_thread_counts_agree(kernel):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 16, 15, 14)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    dy = rng.standard_normal((3, 16, 15, 14)).astype(np.float32)
    one = conv2d(x, w, padding=1, n_threads=1), *conv2d_backward(dy, x, w, padding=1,
                                                                 n_threads=1)
    for n_threads in (2, 3, None, -1):
        other = conv2d(x, w, padding=1, n_threads=n_threads), \
            *conv2d_backward(dy, x, w, padding=1, n_threads=n_threads)
        for a, b in zip(one, other):
            close(a, b, np.float32)


def test_concurrent_calls_from_python_threads():
    rng = np.random.default_rng(6)
    jobs = []
    for i, (shape, K, ks, stride, padding, groups) in enumerate([
            ((4, 32, 20, 20), 32, 3, 1, 1, 1),     # Winograd
            ((4, 16, 21, 19), 24, 3, 2, 1, 1),     # GEMM, col2im
            ((4, 16, 20, 20), 16, 3, 1, 1, 16),    # padded loops
            ((4, 8, 20, 20), 8, 3, 2, 0, 8),       # direct loops
            ((4, 64, 10, 10), 32, 1, 1, 0, 1)]):   # 1x1 GEMM
        x = rng.standard_normal(shape).astype(np.float32)
        w = rng.standard_normal((K, shape[1] // groups, ks, ks)).astype(np.float32)
        args = (stride, padding, 1, groups)
        y = conv2d(x, w, None, *args, n_threads=2)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        jobs.append((x, w, dy, args, (y,) + conv2d_backward(dy, x, w, *args, n_threads=2)))

    def run(job):
        x, w, dy, args, _ = job
        return (conv2d(x, w, None, *args, n_threads=2),) + \
            conv2d_backward(dy, x, w, *args, n_threads=2)

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, jobs * 4))
    for job, got in zip(jobs * 4, results):
        for a, b in zip(got, job[4]):
            np.testing.assert_array_equal(a, b)


def _blas_threads():
    return [(pool["filepath"], pool["num_threads"]) for pool in threadpoolctl.threadpool_info()
            if pool["user_api"] == "blas"]


def test_blas_thread_setting_is_restored():
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        assert before and all(n == 2 for _, n in before)
        conv2d(np.ones((2, 16, 8, 8)), np.ones((16, 16, 3, 3)), padding=1)
        assert _blas_threads() == before


def test_blas_runs_on_one_thread_inside_the_kernels(monkeypatch):
    force_kernel(monkeypatch, "gemm")
    seen = []

    def spy(kernel):
        def run(*args):
            seen.append([lib.num_threads for lib, _ in conv._blas_controllers()])
            return kernel(*args)
        return run

    for name in ("gemm_forward", "gemm_forward_images", "gemm_forward_shared"):
        monkeypatch.setattr(conv._conv, name, spy(getattr(conv._conv, name)))
    assert conv._blas_controllers(), "the BLAS behind scipy is found (OpenBLAS in the wheels)"
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        conv2d(np.ones((2, 16, 8, 8)), np.ones((16, 16, 3, 3)), stride=2)
        assert seen == [[1] * len(conv._blas_controllers())]
        assert all(n == 2 for _, n in _blas_threads())


class _FakeBlas:
    """A BLAS with a process-wide thread count, as threadpoolctl shows one."""

    internal_api = "blis"

    def __init__(self, n):
        self.num_threads = n
        self.calls = []

    def set_num_threads(self, n):
        self.calls.append(n)
        self.num_threads = n


def test_blas_is_held_from_the_first_running_call_to_the_last(monkeypatch):
    fake, single = _FakeBlas(4), _FakeBlas(1)
    monkeypatch.setattr(conv, "_blas_libraries",
                        [(b, b.set_num_threads) for b in (fake, single)])
    entered, release = threading.Barrier(2), threading.Event()

    def other_call():
        with conv._single_threaded_blas():
            entered.wait()
            release.wait()

    thread = threading.Thread(target=other_call)
    with conv._single_threaded_blas():
        with conv._single_threaded_blas():     # nested: nothing more to do
            assert fake.num_threads == 1
        thread.start()
        entered.wait()
    assert fake.num_threads == 1, "the other thread's call still runs"
    release.set()
    thread.join()
    assert fake.num_threads == 4
    assert fake.calls == [1, 4] and single.calls == []


def test_only_process_wide_blas_settings_are_held():
    def lib(internal_api, layer=None):
        return types.SimpleNamespace(internal_api=internal_api, threading_layer=layer)

    assert conv._process_wide(lib("openblas", "pthreads"))
    assert conv._process_wide(lib("blis", "openmp"))
    assert conv._process_wide(lib("flexiblas"))
    assert not conv._process_wide(lib("openblas", "openmp"))
    assert not conv._process_wide(lib("mkl", "intel"))


def _child_after_fork(queue):
    fake = conv._blas_libraries[0][0]
    restored = fake.num_threads
    with conv._single_threaded_blas():       # the lock is free in the child
        held = fake.num_threads
    queue.put((restored, held, fake.num_threads))


def test_a_child_forked_during_a_call_gets_blas_back(monkeypatch):
    fake = _FakeBlas(3)
    monkeypatch.setattr(conv, "_blas_libraries", [(fake, fake.set_num_threads)])
    fork = multiprocessing.get_context("fork")
    queue = fork.Queue()
    with conv._single_threaded_blas():
        with conv._blas_lock:                  # another thread in the middle of a call
            child = fork.Process(target=_child_after_fork, args=(queue,))
            child.start()
        result = queue.get(timeout=60)
        child.join(60)
    assert child.exitcode == 0
    assert result == (3, 1, 3)
    assert fake.num_threads == 3


# --- bad input ---------------------------------------------------------------------

X = np.zeros((2, 4, 8, 8))
W = np.zeros((6, 2, 3, 3))


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(weight=np.zeros((6, 3, 3, 3)), groups=2), ValueError,
     r"x has 4 channels but weight expects in_channels = weight.shape\[1\] \* groups = 3 \* 2"
     r" = 6"),
    (dict(weight=np.zeros((5, 2, 3, 3)), groups=2), ValueError,
     r"out_channels \(weight.shape\[0\] = 5\) must be divisible by groups \(2\)"),
    (dict(weight=np.zeros((6, 2, 9, 3)), groups=2), ValueError,
     r"kernel size 9 \(dilated to 9\) along spatial axis 0 is larger than the padded input size 8"
     r" \+ 0 = 8"),
    (dict(dilation=(1, 5), groups=2), ValueError,
     r"kernel size 3 \(dilated to 11\) along spatial axis 1 is larger than the padded input"),
    (dict(weight=np.zeros((6, 2, 11, 3)), padding=1, groups=2), ValueError,
     r"larger than the padded input size 8 \+ 2 = 10: the output would be empty"),
    (dict(stride=0, groups=2), ValueError, r"stride must be >= 1, got 0"),
    (dict(stride=(1, -2), groups=2), ValueError, r"stride must be >= 1, got -2"),
    (dict(stride=(1, 2, 3), groups=2), ValueError,
     r"stride must be an int or a sequence of 2 ints"),
    (dict(stride=1.5, groups=2), TypeError, r"stride must be an int, got float"),
    (dict(dilation=0, groups=2), ValueError, r"dilation must be >= 1, got 0"),
    (dict(padding=-1, groups=2), ValueError, r"padding must be >= 0, got -1"),
    (dict(padding=(0, -3), groups=2), ValueError, r"padding must be >= 0, got -3"),
    (dict(padding="same", stride=2, groups=2), ValueError,
     r"padding='same' requires stride 1 on every axis, got stride=\(2, 2\)"),
    (dict(padding="full", groups=2), ValueError,
     r"padding must be one of 'valid', 'same', got 'full'"),
    (dict(bias=np.zeros(5), groups=2), ValueError,
     r"bias must have shape \(out_channels,\) = \(6,\), got \(5,\)"),
    (dict(bias=np.zeros((6, 1)), groups=2), ValueError, r"bias must have shape"),
    (dict(groups=0), ValueError, r"groups must be >= 1, got 0"),
    (dict(groups=2.0), TypeError, r"groups must be an int, got float"),
    (dict(groups=True), TypeError, r"groups must be an int, got bool"),
    (dict(x=np.zeros((4, 8)), groups=2), ValueError,
     r"x must be 4-dimensional \(N, C, \*spatial\) or 3-dimensional \(C, \*spatial\)"),
    (dict(x=np.zeros((1, 2, 4, 8, 8)), groups=2), ValueError, r"x must be 4-dimensional"),
    (dict(weight=np.zeros((6, 2, 3)), groups=2), ValueError,
     r"weight must be 4-dimensional \(out_channels, in_channels/groups, kH, kW\)"),
    (dict(weight=np.zeros((0, 2, 3, 3)), groups=2), ValueError,
     r"weight must not have a zero-length axis"),
    (dict(x=np.zeros((2, 4, 0, 8)), groups=2), ValueError,
     r"x must have non-zero spatial sizes"),
    (dict(x=np.zeros((2, 4, 8, 8), complex), groups=2), TypeError,
     r"x: dtype complex128 is not supported"),
    (dict(weight=np.zeros((6, 2, 3, 3), object), groups=2), TypeError,
     r"weight: dtype object is not supported"),
    (dict(bias=np.array(["a"] * 6), groups=2), TypeError, r"bias: dtype <U1 is not supported"),
    (dict(x=[[[[1.0]], [[1.0, 2.0]]]], groups=2), TypeError,
     r"x must be array_like of real numbers"),
    (dict(groups=2, n_threads=0), ValueError, r"n_threads must not be 0"),
    (dict(groups=2, n_threads=1.0), TypeError, r"n_threads must be an int or None"),
])
def test_forward_rejects_bad_arguments(kwargs, error, match):
    args = dict(x=X, weight=W, bias=None, stride=1, padding=0, dilation=1, groups=1)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        conv2d(**args)


@pytest.mark.parametrize("dy,error,match", [
    (np.zeros((2, 6, 6, 5)), ValueError,
     r"grad_output must have the shape of the forward output, \(2, 6, 6, 6\), got \(2, 6, 6, 5\)"),
    (np.zeros((6, 6, 6)), ValueError, r"grad_output must have the shape of the forward output"),
    (np.zeros((2, 6, 6, 6), complex), TypeError, r"grad_output: dtype complex128 is not supported"),
])
def test_backward_rejects_bad_grad_output(dy, error, match):
    with pytest.raises(error, match=match):
        conv2d_backward(dy, X, W, groups=2)


def test_backward_applies_the_forward_rules():
    with pytest.raises(ValueError, match="must be divisible by groups"):
        conv2d_backward(np.zeros((2, 6, 6, 6)), X, W, groups=4)
    with pytest.raises(ValueError, match="requires stride 1"):
        conv1d_backward(np.zeros((1, 1, 4)), np.zeros((1, 1, 8)), np.zeros((1, 1, 3)),
                        stride=2, padding="same")
    with pytest.raises(ValueError, match=r"weight must be 5-dimensional"):
        conv3d_backward(np.zeros((1, 1, 2, 2, 2)), np.zeros((1, 1, 4, 4, 4)),
                        np.zeros((1, 1, 3, 3)))


def test_output_size_formula():
    # floor((n + P - d(k-1) - 1) / s) + 1, checked against counting positions.
    for n in range(1, 12):
        for k in range(1, 5):
            for s in range(1, 4):
                for p in range(0, 3):
                    for d in range(1, 3):
                        if d * (k - 1) + 1 > n + 2 * p:
                            continue
                        count = sum(1 for o in range(n + 2 * p)
                                    if o * s + d * (k - 1) < n + 2 * p)
                        assert window_count(n, k, s, 2 * p, d) == count
    assert math.prod(conv2d(np.zeros((1, 1, 7, 7)), np.zeros((1, 1, 3, 3)), stride=2).shape) == 9


# --- input-gradient route and skipping the input gradient --------------------

def _geometry(shape, K, ks, **kwargs):
    x = np.zeros(shape, np.float32)
    w = np.zeros((K, shape[1] // kwargs.get("groups", 1), ks, ks), np.float32)
    return conv._validate(2, x, w, None, kwargs.get("stride", 1),
                          kwargs.get("padding", 0), kwargs.get("dilation", 1),
                          kwargs.get("groups", 1))[3]


def test_input_gradient_route_for_typical_layers():
    # LeNet-5's C5 (1x1 output of a 5x5 input) and C3 take GEMM + col2im;
    # 'same' layers and few-channel layers keep the full correlation.
    assert conv._input_grad_algorithm(_geometry((32, 16, 5, 5), 120, 5)) == "dense"
    assert conv._input_grad_algorithm(_geometry((32, 16, 6, 6), 120, 5)) == "gemm"
    assert conv._input_grad_algorithm(_geometry((32, 6, 14, 14), 16, 5)) == "gemm"
    assert conv._input_grad_algorithm(_geometry((32, 1, 32, 32), 6, 5)) == "transposed"
    assert conv._input_grad_algorithm(_geometry((1, 64, 56, 56), 64, 3, padding=1)) \
        == "transposed"
    assert conv._input_grad_algorithm(_geometry((1, 8, 9, 9), 8, 5, groups=8)) \
        == "depthwise"
    assert conv._input_grad_algorithm(_geometry((1, 8, 9, 9), 8, 3, stride=2, groups=8)) \
        == "depthwise"
    assert conv._input_grad_algorithm(_geometry((1, 8, 9, 9), 16, 5, groups=8)) \
        == "transposed"
    assert conv._input_grad_algorithm(_geometry((1, 8, 9, 9), 8, 3, stride=2)) == "gemm"


@pytest.mark.parametrize("route", ["transposed", "gemm"])
@pytest.mark.parametrize("shape,K,ks,kwargs", [
    ((3, 4, 5, 5), 7, 5, {}),                              # 1x1 output
    ((2, 3, 9, 8), 5, 5, {}),
    ((2, 4, 7, 7), 6, 3, {"dilation": 2}),
    ((2, 4, 6, 7), 4, 4, {"padding": 1, "groups": 2}),
    ((1, 2, 5, 5), 3, 5, {"padding": 2}),
])
def test_unit_stride_input_gradient_routes_match_reference(route, shape, K, ks, kwargs,
                                                           dtype, n_threads, monkeypatch):
    monkeypatch.setattr(conv, "_input_grad_algorithm", lambda geom, n_threads=1: route)
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((K, shape[1] // kwargs.get("groups", 1), ks, ks)).astype(dtype)
    y = conv2d(x, w, **kwargs)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = conv2d_backward(dy, x, w, n_threads=n_threads, **kwargs)
    ex, ew, eb = ref.conv_backward(dy.astype(np.float64), x.astype(np.float64),
                                   w.astype(np.float64), **kwargs)
    for got, want in ((dx, ex), (dw, ew), (db, eb)):
        assert got.dtype == dtype
        close(got, want, dtype)


def test_lenet_c5_backward_against_torch(torch, dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 16, 5, 5)).astype(dtype)
    w = rng.standard_normal((120, 16, 5, 5)).astype(dtype)
    dy = rng.standard_normal((4, 120, 1, 1)).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    torch.nn.functional.conv2d(tx, tw).backward(torch.tensor(dy))
    dx, dw, _ = conv2d_backward(dy, x, w)
    close(dx, tx.grad.numpy(), dtype)
    close(dw, tw.grad.numpy(), dtype)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_backward_without_input_gradient(nd, dtype, n_threads):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 4) + (6,) * nd).astype(dtype)
    w = rng.standard_normal((6, 2) + (3,) * nd).astype(dtype)
    kwargs = dict(stride=2 if nd == 2 else 1, padding=1, groups=2)
    dy = rng.standard_normal(FORWARD[nd](x, w, **kwargs).shape).astype(dtype)
    full = BACKWARD[nd](dy, x, w, n_threads=n_threads, **kwargs)
    dx, dw, db = BACKWARD[nd](dy, x, w, n_threads=n_threads, compute_input_grad=False,
                              **kwargs)
    assert dx is None
    np.testing.assert_array_equal(dw, full[1])
    np.testing.assert_array_equal(db, full[2])
    # unbatched and empty batches too
    dx, dw, db = BACKWARD[nd](dy[0], x[0], w, compute_input_grad=False, **kwargs)
    assert dx is None and dw.shape == w.shape
    dx, dw, db = BACKWARD[nd](dy[:0], x[:0], w, compute_input_grad=False, **kwargs)
    assert dx is None
    np.testing.assert_array_equal(dw, 0)


@pytest.mark.parametrize("value", [1, None, "no", np.array([True])])
def test_compute_input_grad_must_be_a_bool(value):
    with pytest.raises(TypeError, match="compute_input_grad must be a bool"):
        conv2d_backward(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)),
                        compute_input_grad=value)


@pytest.mark.parametrize("shape,K,ks,kwargs,dense", [
    ((32, 16, 5, 5), 120, 5, {}, True),          # LeNet-5's C5
    ((3, 2, 4, 4), 5, 4, {"stride": 3}, True),
    ((3, 2, 4, 4), 5, 4, {"padding": 1}, False),
    ((3, 2, 4, 4), 4, 4, {"groups": 2}, False),
    ((3, 2, 5, 5), 5, 3, {"dilation": 2}, False),
    ((3, 2, 2, 2), 5, 2, {"padding": "same"}, False),
    ((3, 2, 5, 4), 5, 4, {}, False),
])
def test_fully_connected_layers_are_one_matrix_product(shape, K, ks, kwargs, dense):
    geom = _geometry(shape, K, ks, **kwargs)
    assert (conv._algorithm(geom, "forward") == "dense") == dense


@pytest.mark.parametrize("loop_macs,task_macs", [(0, 1), (1 << 30, 1 << 30), (1 << 30, 1)],
                         ids=["blas", "dot-products", "dot-products-split"])
@pytest.mark.parametrize("bias", [True, False])
def test_small_and_large_fully_connected_layers_agree(loop_macs, task_macs, bias, dtype,
                                                      n_threads, monkeypatch):
    """Every way of a fully connected layer (dot products on the calling
    thread, or split over threads by blocks of outputs, for small ones;
    BLAS for the others) against the reference: one input channel, one
    output, odd lengths, a squeeze-and-excitation gate's shape."""
    monkeypatch.setattr(conv, "_DENSE_LOOP_MACS", loop_macs)
    monkeypatch.setattr(conv, "_DENSE_TASK_MACS", task_macs)
    rng = np.random.default_rng(3)
    for n, c, k, size in [(1, 1, 1, 1), (3, 7, 13, 1), (2, 26, 104, 1), (5, 3, 9, 3)]:
        x = rng.standard_normal((n, c, size, size)).astype(dtype)
        w = rng.standard_normal((k, c, size, size)).astype(dtype)
        b = rng.standard_normal(k).astype(dtype) if bias else None
        y = conv2d(x, w, b, n_threads=n_threads + 1)
        expected = ref.conv_forward(x.astype(float), w.astype(float),
                                    None if b is None else b.astype(float))
        close(y, expected, dtype)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("batched", [True, False])
def test_fully_connected_layers_match_reference(nd, batched, dtype, n_threads):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 3) + (3,) * nd).astype(dtype)[:, :, ::-1]
    w = rng.standard_normal((5, 3) + (3,) * nd).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    x = x if batched else x[0]
    x64 = np.ascontiguousarray(x, np.float64)[None] if not batched else x.astype(np.float64)
    y = FORWARD[nd](x, w, b, stride=2, n_threads=n_threads)
    expected = ref.conv_forward(x64, w.astype(np.float64), b.astype(np.float64), stride=2)
    assert y.dtype == dtype and y.shape == (expected.shape if batched else expected.shape[1:])
    close(y, expected.reshape(y.shape), dtype)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = BACKWARD[nd](dy, x, w, stride=2, n_threads=n_threads)
    ex, ew, eb = ref.conv_backward(dy.astype(np.float64).reshape(expected.shape), x64,
                                   w.astype(np.float64), stride=2)
    for got, want in ((dx, ex.reshape(x.shape)), (dw, ew), (db, eb)):
        assert got.dtype == dtype
        close(got, want, dtype)


def test_weight_gradient_kernel_choice():
    def algorithm(shape, K, ks, **kwargs):
        return conv._algorithm(_geometry(shape, K, ks, **kwargs), "weight_grad")

    assert algorithm((32, 6, 14, 14), 16, 5) == "gemm"         # LeNet-5's C3
    assert algorithm((32, 1, 32, 32), 6, 5) == "padded"        # and C1
    assert algorithm((8, 3, 64, 64), 16, 5) in ("padded", "gemm")
    # (measured: Winograd 11.0 ms, GEMM 12.6 ms at batch 8 on 2 threads)
    assert algorithm((8, 64, 56, 56), 64, 3, padding=1) == "winograd"


# --- non-finite values stay in their windows ------------------------------------

@pytest.mark.parametrize("kernel", KERNELS, indirect=True)
@pytest.mark.parametrize("shape,K,ks,kwargs", [
    ((2, 16, 11, 10), 16, 3, dict(padding=1)),              # Winograd
    ((1, 16, 12, 12), 16, 3, dict(padding=2, dilation=2)),  # Winograd over phases
    ((2, 4, 9, 9), 6, 3, dict(stride=2, padding=1)),
    ((1, 3, 8, 9), 4, 5, dict(padding=0)),                  # padded, junk columns
    ((2, 8, 7, 7), 8, 3, dict(padding=1, groups=8)),        # depthwise
    ((3, 8, 5, 7), 9, 1, dict()),                           # pointwise, images side by side
])
def test_nan_and_inf_stay_in_their_windows(kernel, shape, K, ks, kwargs, dtype, n_threads):
    """An inf or NaN in the input reaches exactly the outputs (and weight
    gradients) whose windows read it, with the definition's values: inf
    stays inf, as in PyTorch."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    x[0, 0, 1, 2] = np.nan
    x[-1, -1, -1, -2] = np.inf
    x[-1, 0, 4, 0] = -np.inf
    w = rng.standard_normal((K, shape[1] // kwargs.get("groups", 1), ks, ks))
    y = conv2d(x.astype(dtype), w.astype(dtype), None, n_threads=n_threads, **kwargs)
    expected = ref.conv_forward(x, w, **kwargs)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(expected))
    finite = np.isfinite(expected)
    close(y[finite], expected[finite], dtype, scale=np.abs(expected[finite]).max())
    dy = rng.standard_normal(y.shape)
    _, dw, _ = conv2d_backward(dy.astype(dtype), x.astype(dtype), w.astype(dtype),
                               n_threads=n_threads, compute_input_grad=False, **kwargs)
    _, expected_dw, _ = ref.conv_backward(dy, x, w, **kwargs)
    np.testing.assert_array_equal(np.isnan(dw), np.isnan(expected_dw))
    np.testing.assert_array_equal(np.isinf(dw), np.isinf(expected_dw))


def test_nonfinite_scan_finds_every_position():
    for dtype in (np.float32, np.float64):
        a = np.zeros(3 * 4096 + 17, dtype=dtype)
        assert conv._all_finite(a, 2)
        for i in (0, 4095, 4096, len(a) - 1):
            for value in (np.nan, np.inf, -np.inf):
                b = a.copy()
                b[i] = value
                assert not conv._all_finite(b, 2)
        b = a.copy()
        b[5] = np.finfo(dtype).max
        assert conv._all_finite(b, 1)


def test_repeated_calls_check_every_argument_again():
    """Checked geometries are reused for repeated calls, but an argument of
    another type (True for 1, 1.0 for 1) is still refused."""
    x = np.ones((1, 2, 5, 5))
    w = np.ones((2, 2, 3, 3))
    expected = conv2d(x, w, stride=1, padding=1, groups=1)
    np.testing.assert_array_equal(conv2d(x, w, stride=(1, 1), padding=[1, 1]), expected)
    for kwargs in (dict(stride=True), dict(stride=(1, True)), dict(groups=1.0),
                   dict(padding=np.float64(1)), dict(dilation=(1.0, 1))):
        args = dict(stride=1, padding=1, groups=1)
        args.update(kwargs)
        with pytest.raises(TypeError):
            conv2d(x, w, **args)
    with pytest.raises(ValueError, match="bias must have shape"):
        conv2d(x, w, np.ones(3), stride=1, padding=1)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_gemm_with_several_images_per_product(data):
    """Layers whose output channels outnumber their output positions run
    GEMM over several images at once, forward and for the weight gradient;
    every image's outputs land in place and every image's terms are summed."""
    n = data.draw(st.integers(2, 7))
    groups = data.draw(st.integers(1, 2))
    cg = data.draw(st.integers(1, 3))
    kg = data.draw(st.integers(4, 12))
    k = data.draw(st.integers(1, 3))
    stride = data.draw(st.integers(1, 2))
    dilation = data.draw(st.integers(1, 2))
    padding = data.draw(st.integers(0, 1))
    smallest = max(1, dilation * (k - 1) + 1 - 2 * padding)
    size = data.draw(st.integers(smallest, smallest + 3))
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    n_threads = data.draw(st.integers(1, 3))
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    x = rng.standard_normal((n, cg * groups, size, size + 1))
    w = rng.standard_normal((kg * groups, cg, k, k))
    b = rng.standard_normal(kg * groups) if data.draw(st.booleans()) else None
    narrow = data.draw(st.booleans())   # channel blocks of any width
    geom = conv._validate(2, x, w, b, stride, padding, dilation, groups)[3]
    images = conv._gemm_forward_plan(geom, n_threads).images
    assert images > 1 or math.prod(geom.out) >= kg or n <= n_threads
    saved, saved_block = conv._algorithm, conv._MIN_BLOCK
    conv._algorithm = lambda g, op="forward", n_threads=1: (
        "gemm" if "gemm" in conv._applicable(g, op) else saved(g, op, n_threads))
    conv._MIN_BLOCK = 1 if narrow else saved_block
    try:
        args = (stride, padding, dilation, groups)
        y = conv2d(x.astype(dtype), w.astype(dtype), None if b is None else b.astype(dtype),
                   *args, n_threads=n_threads)
        dy = rng.standard_normal(y.shape)
        _, dw, _ = conv2d_backward(dy.astype(dtype), x.astype(dtype), w.astype(dtype), *args,
                                   n_threads=n_threads)
    finally:
        conv._algorithm, conv._MIN_BLOCK = saved, saved_block
    cast = [None if a is None else a.astype(dtype).astype(float) for a in (x, w, b, dy)]
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    close(y, ref.conv_forward(*cast[:3], **kwargs), dtype)
    close(dw, ref.conv_backward(cast[3], cast[0], cast[1], **kwargs)[1], dtype)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_depthwise_kernels_match_reference(data):
    """The depthwise kernels (blocks of 16 float32 or 8 float64 channels of
    one image, padded, in bands of rows) against the reference, forward,
    input and weight gradients: channel counts around the block width, any
    kernel, stride, dilation and padding, 1-D to 3-D, bands and chunks of
    images of any size."""
    nd = data.draw(st.integers(1, 3))
    channels = data.draw(st.sampled_from([1, 3, 8, 9, 16, 17, 31, 33]))
    n = data.draw(st.integers(1, 3))
    kernel = tuple(data.draw(st.integers(1, 5 if nd < 3 else 3)) for _ in range(nd))
    stride = tuple(data.draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(data.draw(st.integers(1, 2)) for _ in range(nd))
    padding = tuple(data.draw(st.integers(0, k)) for k in kernel)
    spatial = tuple(data.draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), d * (k - 1) + 6))
                    for k, d, p in zip(kernel, dilation, padding))
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    n_threads = data.draw(st.integers(1, 3))
    band_bytes = data.draw(st.sampled_from([1, 1 << 12, conv._DEPTHWISE_BAND_BYTES]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    x = rng.standard_normal((n, channels) + spatial)
    w = rng.standard_normal((channels, 1) + kernel)
    b = rng.standard_normal(channels) if data.draw(st.booleans()) else None
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=channels)
    geom = conv._validate(nd, x, w, b, *kwargs.values())[3]
    assert "depthwise" in conv._applicable(geom, "forward")
    saved, saved_band = conv._algorithm, conv._DEPTHWISE_BAND_BYTES
    conv._algorithm = lambda g, op="forward", n_threads=1: (
        "depthwise" if "depthwise" in conv._applicable(g, op) else saved(g, op, n_threads))
    conv._DEPTHWISE_BAND_BYTES = band_bytes
    previous = conv._conv._limit_simd(data.draw(st.sampled_from(SIMD)))
    try:
        y = FORWARD[nd](x.astype(dtype), w.astype(dtype),
                        None if b is None else b.astype(dtype), n_threads=n_threads, **kwargs)
        dy = rng.standard_normal(y.shape)
        dx, dw, _ = BACKWARD[nd](dy.astype(dtype), x.astype(dtype), w.astype(dtype),
                                 n_threads=n_threads, **kwargs)
    finally:
        conv._algorithm, conv._DEPTHWISE_BAND_BYTES = saved, saved_band
        conv._conv._limit_simd(previous)
    cast = [None if a is None else a.astype(dtype).astype(float) for a in (x, w, b, dy)]
    close(y, ref.conv_forward(*cast[:3], **kwargs), dtype)
    ex, ew, _ = ref.conv_backward(cast[3], cast[0], cast[1], **kwargs)
    close(dx, ex, dtype)
    close(dw, ew, dtype)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_register_blocked_kernel_matches_reference(data):
    """The register-blocked direct kernel (strips of output positions for
    blocks of 16 float32 or 8 float64 output channels) against the
    reference: output channels around the block width, every kernel,
    stride, dilation, padding and groups, 1-D to 3-D, bands of positions,
    passes over the input channels and groups of output blocks per task of
    any size."""
    nd = data.draw(st.integers(1, 3))
    groups = data.draw(st.integers(1, 3))
    cg = data.draw(st.integers(1, 6))
    kg = data.draw(st.sampled_from([1, 2, 7, 8, 9, 16, 17]))
    n = data.draw(st.integers(1, 3))
    kernel = tuple(data.draw(st.integers(1, 4 if nd < 3 else 3)) for _ in range(nd))
    stride = tuple(data.draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(data.draw(st.integers(1, 2)) for _ in range(nd))
    padding = tuple(data.draw(st.integers(0, k)) for k in kernel)
    spatial = tuple(data.draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), d * (k - 1) + 6))
                    for k, d, p in zip(kernel, dilation, padding))
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    n_threads = data.draw(st.integers(1, 3))
    band = data.draw(st.sampled_from([1, 5, conv._BLOCKED_BAND]))
    input_bytes = data.draw(st.sampled_from([1, conv._BLOCKED_INPUT_BYTES]))
    weight_bytes = data.draw(st.sampled_from([1, conv._BLOCKED_WEIGHT_BYTES]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    x = rng.standard_normal((n, cg * groups) + spatial)
    w = rng.standard_normal((kg * groups, cg) + kernel)
    b = rng.standard_normal(kg * groups) if data.draw(st.booleans()) else None
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    geom = conv._validate(nd, x, w, b, *kwargs.values())[3]
    assert "blocked" in conv._applicable(geom, "forward")
    saved = (conv._algorithm, conv._BLOCKED_BAND, conv._BLOCKED_WEIGHT_BYTES,
             conv._BLOCKED_INPUT_BYTES)
    conv._algorithm = lambda g, op="forward", n_threads=1: (
        "blocked" if "blocked" in conv._applicable(g, op) else saved[0](g, op, n_threads))
    conv._BLOCKED_BAND, conv._BLOCKED_WEIGHT_BYTES = band, weight_bytes
    conv._BLOCKED_INPUT_BYTES = input_bytes
    previous = conv._conv._limit_simd(data.draw(st.sampled_from(SIMD)))
    try:
        y = FORWARD[nd](x.astype(dtype), w.astype(dtype),
                        None if b is None else b.astype(dtype), n_threads=n_threads, **kwargs)
        dy = rng.standard_normal(y.shape)
        dx, _, _ = BACKWARD[nd](dy.astype(dtype), x.astype(dtype), w.astype(dtype),
                                n_threads=n_threads, **kwargs)
    finally:
        (conv._algorithm, conv._BLOCKED_BAND, conv._BLOCKED_WEIGHT_BYTES,
         conv._BLOCKED_INPUT_BYTES) = saved
        conv._conv._limit_simd(previous)
    cast = [None if a is None else a.astype(dtype).astype(float) for a in (x, w, b, dy)]
    close(y, ref.conv_forward(*cast[:3], **kwargs), dtype)
    close(dx, ref.conv_backward(cast[3], cast[0], cast[1], **kwargs)[0], dtype)


def unaligned(a):
    """A C-contiguous copy of ``a`` starting 4 bytes past a 64-byte boundary."""
    buf = np.empty(a.nbytes + 128, np.uint8)
    start = (-buf.ctypes.data) % 64 + 4
    out = buf[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_pointwise_kernel_matches_reference(data):
    """The pointwise kernel (1x1, unit stride, no padding: strips of
    positions counted over the images side by side, blocks of output
    channels) against the reference, in every version of its vector loops:
    output channels around the block widths, maps shorter and longer than a
    strip, groups, 1-D to 3-D, bands and groups of blocks per task of any
    size, inputs at any alignment."""
    nd = data.draw(st.integers(1, 3))
    groups = data.draw(st.integers(1, 3))
    cg = data.draw(st.integers(1, 20))
    kg = data.draw(st.sampled_from([1, 3, 4, 5, 7, 8, 9, 16, 17, 25]))
    if cg * kg == 1:
        kg = 2   # (a depthwise 1x1 layer takes the depthwise kernels)
    n = data.draw(st.integers(1, 4))
    spatial = tuple(data.draw(st.integers(1, 9 if nd == 1 else 7 if nd == 2 else 4))
                    for _ in range(nd))
    if nd == 1:
        spatial = (data.draw(st.integers(1, 60)),)
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    n_threads = data.draw(st.integers(1, 3))
    simd = data.draw(st.sampled_from(SIMD))
    band = data.draw(st.integers(1, 4))
    kgroup = data.draw(st.integers(1, 5))
    chunk = data.draw(st.integers(1, 3))
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    x = rng.standard_normal((n, cg * groups) + spatial)
    w = rng.standard_normal((kg * groups, cg) + (1,) * nd)
    b = rng.standard_normal(kg * groups) if data.draw(st.booleans()) else None
    geom = conv._validate(nd, x, w, b, 1, 0, 1, groups)[3]
    assert "pointwise" in conv._applicable(geom, "forward")
    xd, wd = unaligned(x.astype(dtype)), w.astype(dtype)
    saved = conv._algorithm, conv._pointwise_plan
    conv._algorithm = lambda g, op="forward", n_threads=1: (
        "pointwise" if "pointwise" in conv._applicable(g, op) else saved[0](g, op, n_threads))
    conv._pointwise_plan = lambda g, n_threads: (band, kgroup, chunk)
    previous = conv._conv._limit_simd(simd)
    try:
        y = FORWARD[nd](xd, wd, None if b is None else b.astype(dtype), groups=groups,
                        n_threads=n_threads)
        dy = rng.standard_normal(y.shape)
        # the input gradient of a pointwise layer is a pointwise layer
        dx, _, _ = BACKWARD[nd](dy.astype(dtype), xd, wd, groups=groups, n_threads=n_threads)
    finally:
        conv._algorithm, conv._pointwise_plan = saved
        conv._conv._limit_simd(previous)
    cast = [None if a is None else a.astype(dtype).astype(float) for a in (x, w, b, dy)]
    close(y, ref.conv_forward(*cast[:3], groups=groups), dtype)
    close(dx, ref.conv_backward(cast[3], cast[0], cast[1], groups=groups)[0], dtype)
    np.testing.assert_array_equal(xd, x.astype(dtype))   # input untouched


def test_pointwise_plan_uses_every_thread():
    """Batch 1 on a 7x7 map still gives every thread tasks: positions of
    the images side by side, then blocks of output channels shared out."""
    for shape, k, n_threads in [((1, 960, 7, 7), 160, 2), ((1, 160, 7, 7), 960, 16),
                                ((8, 256, 56, 56), 64, 16), ((2, 32, 3, 3), 8, 4)]:
        x = np.empty(shape, np.float32)
        geom = conv._validate(2, x, np.empty((k, shape[1], 1, 1), np.float32), None,
                              1, 0, 1, 1)[3]
        block, strip = conv._conv.pointwise_shape(np.float32)
        band, kgroup, _ = conv._pointwise_plan(geom, n_threads)
        strips = -(-shape[0] * shape[2] * shape[3] // strip)
        kblocks = -(-k // block)
        tasks = -(-strips // band) * -(-kblocks // kgroup)
        assert tasks >= min(n_threads, strips * kblocks)


def test_simd_levels_can_be_limited_and_restored():
    top = conv._conv.simd()
    try:
        for level in SIMD:
            conv._conv._limit_simd(level)
            assert conv._conv.simd() == level
            block, strip = conv._conv.pointwise_shape(np.float32)
            assert strip % 8 == 0 or level == "baseline"
    finally:
        conv._conv._limit_simd(None)
    assert conv._conv.simd() == top


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_implicit_gemm_matches_reference(data):
    """The implicit GEMM (columns built a chunk of strips at a time, a pass
    per block of rows, the later passes adding to the outputs) against the
    reference in every version of its vector loops: any kernel, stride,
    dilation, padding (cropping too, as the input gradient's transposed
    layer does) and groups, 1-D to 3-D, bands, chunks, groups of blocks and
    rows per pass of any size, inputs at any alignment."""
    nd = data.draw(st.integers(1, 3))
    groups = data.draw(st.integers(1, 3))
    cg = data.draw(st.integers(1, 6))
    kg = data.draw(st.sampled_from([1, 3, 4, 5, 8, 9, 17]))
    if cg * kg == 1:
        kg = 2
    n = data.draw(st.integers(1, 3))
    kernel = tuple(data.draw(st.integers(1, 4 if nd < 3 else 3)) for _ in range(nd))
    stride = tuple(data.draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(data.draw(st.integers(1, 2)) for _ in range(nd))
    padding = tuple(data.draw(st.integers(0, k)) for k in kernel)
    limit = 9 if nd == 1 else 6 if nd == 2 else 3
    spatial = tuple(data.draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), d * (k - 1) + limit))
                    for k, d, p in zip(kernel, dilation, padding))
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    n_threads = data.draw(st.integers(1, 3))
    simd = data.draw(st.sampled_from(SIMD))
    plan = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 5)),
            data.draw(st.integers(1, 3)), data.draw(st.sampled_from([1, 2, 5, 16, 10 ** 6])))
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    x = rng.standard_normal((n, cg * groups) + spatial)
    w = rng.standard_normal((kg * groups, cg) + kernel)
    b = rng.standard_normal(kg * groups) if data.draw(st.booleans()) else None
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    geom = conv._validate(nd, x, w, b, *kwargs.values())[3]
    assert "implicit" in conv._applicable(geom, "forward") or conv._pointwise(geom)
    xd, wd = unaligned(x.astype(dtype)), w.astype(dtype)
    saved = conv._algorithm, conv._implicit_plan
    conv._algorithm = lambda g, op="forward", n_threads=1: (
        "implicit" if "implicit" in conv._applicable(g, op) else saved[0](g, op, n_threads))
    conv._implicit_plan = lambda g, n_threads: plan
    previous = conv._conv._limit_simd(simd)
    try:
        y = FORWARD[nd](xd, wd, None if b is None else b.astype(dtype), n_threads=n_threads,
                        **kwargs)
        dy = rng.standard_normal(y.shape)
        dx, _, _ = BACKWARD[nd](dy.astype(dtype), xd, wd, n_threads=n_threads, **kwargs)
    finally:
        conv._algorithm, conv._implicit_plan = saved
        conv._conv._limit_simd(previous)
    cast = [None if a is None else a.astype(dtype).astype(float) for a in (x, w, b, dy)]
    close(y, ref.conv_forward(*cast[:3], **kwargs), dtype)
    close(dx, ref.conv_backward(cast[3], cast[0], cast[1], **kwargs)[0], dtype)
    np.testing.assert_array_equal(xd, x.astype(dtype))


def test_implicit_plan_uses_every_thread_and_bounds_its_buffers():
    for shape, k, ks, n_threads in [((1, 512, 7, 7), 512, 3, 2), ((8, 512, 7, 7), 512, 3, 16),
                                    ((1, 3, 224, 224), 64, 7, 4), ((2, 64, 27, 27), 192, 5, 3)]:
        x = np.empty(shape, np.float32)
        w = np.empty((k, shape[1], ks, ks), np.float32)
        geom = conv._validate(2, x, w, None, 1, ks // 2, 1, 1)[3]
        block, strip = conv._conv.pointwise_shape(np.float32)
        band, kgroup, chunk, rows = conv._implicit_plan(geom, n_threads)
        strips = -(-shape[0] * shape[2] * shape[3] // strip)
        tasks = -(-strips // band) * -(-(-(-k // block)) // kgroup)
        assert tasks >= min(n_threads, strips)
        assert 1 <= chunk <= band and rows <= geom.rows
        assert rows * block * 4 <= max(conv._IMPLICIT_WEIGHT_BYTES, 16 * block * 4)
        assert chunk == 1 or chunk * rows * strip * 4 <= conv._IMPLICIT_CHUNK_BYTES
