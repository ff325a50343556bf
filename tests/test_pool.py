"""Pooling against naive loops, PyTorch and finite differences."""
import concurrent.futures

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import tolerance
from pyconvnet import _pooling as P
from pyconvnet import _reference as ref
from pyconvnet._ext._pool import Layout

RNG = np.random.default_rng(2024)
SETTINGS = settings(max_examples=15, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True)
def threads_even_for_tiny_inputs(monkeypatch):
    """Share even the tiny test inputs between threads, so that n_threads=2
    really runs the kernels on two threads."""
    monkeypatch.setattr(P, "_MIN_WORK_PER_THREAD", 0)


MAX = {1: P.max_pool1d, 2: P.max_pool2d, 3: P.max_pool3d}
AVG = {1: P.avg_pool1d, 2: P.avg_pool2d, 3: P.avg_pool3d}
MAX_BACK = {1: P.max_pool1d_backward, 2: P.max_pool2d_backward, 3: P.max_pool3d_backward}
AVG_BACK = {1: P.avg_pool1d_backward, 2: P.avg_pool2d_backward, 3: P.avg_pool3d_backward}


def random(shape, dtype=np.float64, rng=RNG):
    return rng.standard_normal(shape).astype(dtype)


def seeded(data):
    """A generator seeded by hypothesis, so that a failing example replays."""
    return np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1), label="seed"))


def with_specials(x, rng, ties=False, nans=False, infs=False):
    """x with some entries rounded to few values (ties), NaN or -inf/+inf."""
    x = x.copy()
    if ties:
        x = np.round(x).astype(x.dtype)
    if nans:
        x[rng.random(x.shape) < 0.08] = np.nan
    if infs:
        x[rng.random(x.shape) < 0.08] = -np.inf
        x[rng.random(x.shape) < 0.03] = np.inf
    return x


# --- configurations ------------------------------------------------------------

@st.composite
def pool_configs(draw, nd, dilation=True):
    """Random valid pooling arguments and an input shape they fit: each
    length is drawn from the smallest the window allows up to a few more."""
    extra = {1: 8, 2: 4, 3: 2}[nd]
    k = tuple(draw(st.integers(1, 4 if nd < 3 else 3)) for _ in range(nd))
    s = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    p = tuple(draw(st.integers(0, ki // 2)) for ki in k)
    d = tuple(draw(st.integers(1, 3 if nd < 3 else 2)) for _ in range(nd)) if dilation \
        else (1,) * nd
    ceil_mode = draw(st.booleans())
    spatial = tuple(draw(st.integers(max(1, di * (ki - 1) + 1 - 2 * pi),
                                     max(1, di * (ki - 1) + 1 - 2 * pi) + extra))
                    for ki, pi, di in zip(k, p, d))
    batch = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    return batch + spatial, k, s, p, d, ceil_mode


# --- max pooling against the naive loops -------------------------------------

@pytest.mark.parametrize("nd", [1, 2, 3])
@SETTINGS
@given(data=st.data())
def test_max_pool_matches_reference(nd, dtype, n_threads, data):
    rng = seeded(data)
    shape, k, s, p, d, ceil_mode = data.draw(pool_configs(nd))
    kinds = data.draw(st.fixed_dictionaries(
        {"ties": st.booleans(), "nans": st.booleans(), "infs": st.booleans()}))
    x = with_specials(random(shape, dtype, rng=rng), rng, **kinds)
    y, idx = MAX[nd](x, k, s, p, d, ceil_mode, return_indices=True, n_threads=n_threads)
    want, want_idx = ref.max_pool(x, k, s, p, d, ceil_mode)
    assert y.dtype == dtype and idx.dtype == np.int64
    np.testing.assert_array_equal(y, want.astype(dtype))
    np.testing.assert_array_equal(idx, want_idx)
    # without indices: the same values
    np.testing.assert_array_equal(MAX[nd](x, k, s, p, d, ceil_mode, n_threads=n_threads), y)


@pytest.mark.parametrize("nd", [1, 2, 3])
@SETTINGS
@given(data=st.data())
def test_max_pool_backward_matches_reference(nd, dtype, n_threads, data):
    rng = seeded(data)
    shape, k, s, p, d, ceil_mode = data.draw(pool_configs(nd))
    x = with_specials(random(shape, dtype, rng=rng), rng, ties=data.draw(st.booleans()))
    y, idx = MAX[nd](x, k, s, p, d, ceil_mode, return_indices=True)
    g = random(y.shape, dtype, rng=rng)
    got = MAX_BACK[nd](g, idx, x.shape, n_threads=n_threads)
    assert got.dtype == dtype and got.shape == x.shape
    np.testing.assert_allclose(got, ref.max_pool_backward(g, idx, x.shape), **tolerance(dtype))


# --- average pooling against the naive loops ---------------------------------

@st.composite
def avg_configs(draw, nd):
    shape, k, s, p, _, ceil_mode = draw(pool_configs(nd, dilation=False))
    if nd == 3:
        assume(all(n >= ki for n, ki in zip(shape[2:], k)))
    count_include_pad = draw(st.booleans())
    divisor = draw(st.one_of(st.none(), st.integers(-3, 7).filter(bool)))
    return shape, k, s, p, ceil_mode, count_include_pad, divisor


@pytest.mark.parametrize("nd", [1, 2, 3])
@SETTINGS
@given(data=st.data())
def test_avg_pool_matches_reference(nd, dtype, n_threads, data):
    rng = seeded(data)
    shape, k, s, p, ceil_mode, cip, divisor = data.draw(avg_configs(nd))
    x = random(shape, dtype, rng=rng)
    got = AVG[nd](x, k, s, p, ceil_mode, cip, divisor, n_threads=n_threads)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, ref.avg_pool(x, k, s, p, ceil_mode, cip, divisor),
                               **tolerance(dtype))


@pytest.mark.parametrize("nd", [1, 2, 3])
@SETTINGS
@given(data=st.data())
def test_avg_pool_backward_matches_reference(nd, dtype, n_threads, data):
    rng = seeded(data)
    shape, k, s, p, ceil_mode, cip, divisor = data.draw(avg_configs(nd))
    y = AVG[nd](np.zeros(shape, dtype), k, s, p, ceil_mode, cip, divisor)
    g = random(y.shape, dtype, rng=rng)
    got = AVG_BACK[nd](g, shape, k, s, p, ceil_mode, cip, divisor, n_threads=n_threads)
    assert got.dtype == dtype and got.shape == shape
    want = ref.avg_pool_backward(g, shape, k, s, p, ceil_mode, cip, divisor)
    np.testing.assert_allclose(got, want, **tolerance(dtype))


def test_avg_pool_backward_of_disjoint_windows_is_kronecker_upsampling(dtype):
    g = random((2, 3, 4, 5), dtype)
    got = P.avg_pool2d_backward(g, (2, 3, 8, 15), (2, 3))
    want = np.kron(g, np.ones((2, 3), dtype) / 6)
    np.testing.assert_allclose(got, want, **tolerance(dtype))


# --- whole-plane layouts (disjoint 2x2, stride-1 same size) -----------------

LAYOUT_CASES = [
    # (input shape, kernel, stride, padding, ceil_mode, expected layout)
    ((2, 3, 8, 10), 2, 2, 0, False, Layout.DISJOINT_2X2),
    ((2, 3, 9, 7), 2, 2, 0, False, Layout.DISJOINT_2X2),     # last row and column left out
    ((1, 2, 9, 7), 2, 2, 0, True, Layout.GENERIC),           # ceil mode: partial windows
    ((1, 2, 2, 2), 2, 2, 0, False, Layout.DISJOINT_2X2),
    ((2, 3, 9, 7), 3, 1, 1, False, Layout.SAME_STRIDE_1),
    ((1, 2, 6, 11), (5, 3), 1, (2, 1), True, Layout.SAME_STRIDE_1),
    ((1, 2, 2, 1), 5, 1, 2, False, Layout.SAME_STRIDE_1),    # planes smaller than the window
    ((1, 2, 1, 9), (1, 7), 1, (0, 3), False, Layout.SAME_STRIDE_1),
    ((2, 2, 5, 4), 1, 1, 0, False, Layout.SAME_STRIDE_1),
]


@pytest.mark.parametrize("shape, k, s, p, ceil_mode, layout", LAYOUT_CASES, ids=str)
def test_whole_plane_layouts_match_reference(shape, k, s, p, ceil_mode, layout, dtype,
                                             n_threads):
    nd = 2
    kk, ss, pp = (P.ntuple(v, nd, "v") for v in (k, s, p))
    axes = [P._Axis.pooling(n, ref.pool_out_len(n, *a, ceil_mode=ceil_mode), *a, 1)
            for n, *a in zip(shape[2:], kk, ss, pp)]
    assert P._layout(shape[2:], axes) == layout
    x = with_specials(random(shape, dtype), RNG, ties=True, nans=True, infs=True)
    y, idx = P.max_pool2d(x, k, s, p, 1, ceil_mode, True, n_threads=n_threads)
    want, want_idx = ref.max_pool(x, kk, ss, pp, (1, 1), ceil_mode)
    np.testing.assert_array_equal(y, want.astype(dtype))
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_array_equal(P.max_pool2d(x, k, s, p, 1, ceil_mode, n_threads=n_threads),
                                  y)
    x = random(shape, dtype)
    for cip, div in [(True, None), (False, None), (True, 3)]:
        got = P.avg_pool2d(x, k, s, p, ceil_mode, cip, div, n_threads=n_threads)
        np.testing.assert_allclose(got, ref.avg_pool(x, kk, ss, pp, ceil_mode, cip, div),
                                   **tolerance(dtype))
        g = random(got.shape, dtype)
        np.testing.assert_allclose(
            P.avg_pool2d_backward(g, shape, k, s, p, ceil_mode, cip, div, n_threads=n_threads),
            ref.avg_pool_backward(g, shape, kk, ss, pp, ceil_mode, cip, div),
            **tolerance(dtype))


# --- adaptive and global pooling ---------------------------------------------

@SETTINGS
@given(data=st.data())
def test_adaptive_pooling_matches_reference(dtype, n_threads, data):
    rng = seeded(data)
    H, W = data.draw(st.integers(1, 9)), data.draw(st.integers(1, 9))
    oh, ow = data.draw(st.integers(1, 11)), data.draw(st.integers(1, 11))
    x = with_specials(random((2, 2, H, W), dtype, rng=rng), rng,
                      ties=data.draw(st.booleans()), nans=data.draw(st.booleans()))
    got = P.adaptive_avg_pool2d(x, (oh, ow), n_threads=n_threads)
    np.testing.assert_allclose(got, ref.adaptive_avg_pool2d(x, (oh, ow)), **tolerance(dtype))
    y, idx = P.adaptive_max_pool2d(x, (oh, ow), return_indices=True, n_threads=n_threads)
    want, want_idx = ref.adaptive_max_pool2d(x, (oh, ow))
    np.testing.assert_array_equal(y, want.astype(dtype))
    np.testing.assert_array_equal(idx, want_idx)
    g = random(y.shape, dtype, rng=rng)
    np.testing.assert_allclose(
        P.adaptive_avg_pool2d_backward(g, x.shape, n_threads=n_threads),
        ref.adaptive_avg_pool2d_backward(g, x.shape), **tolerance(dtype))
    np.testing.assert_allclose(
        P.adaptive_max_pool2d_backward(g, idx, x.shape, n_threads=n_threads),
        ref.max_pool_backward(g, idx, x.shape), **tolerance(dtype))


def test_adaptive_bins_of_two_use_the_2x2_layout(dtype):
    x = with_specials(random((2, 3, 14, 12), dtype), RNG, ties=True, nans=True)
    assert P._layout((14, 12), [P._Axis.adaptive(14, 7), P._Axis.adaptive(12, 6)]) \
        == Layout.DISJOINT_2X2
    np.testing.assert_allclose(P.adaptive_avg_pool2d(x, (7, 6)),
                               ref.adaptive_avg_pool2d(x, (7, 6)), **tolerance(dtype))
    y, idx = P.adaptive_max_pool2d(x, (7, 6), return_indices=True)
    want, want_idx = ref.adaptive_max_pool2d(x, (7, 6))
    np.testing.assert_array_equal(y, want.astype(dtype))
    np.testing.assert_array_equal(idx, want_idx)
    g = random(y.shape, dtype)
    np.testing.assert_allclose(P.adaptive_avg_pool2d_backward(g, x.shape),
                               ref.adaptive_avg_pool2d_backward(g, x.shape), **tolerance(dtype))


def test_adaptive_output_size_none_and_int():
    x = random((1, 2, 6, 5))
    assert P.adaptive_avg_pool2d(x, (3, None)).shape == (1, 2, 3, 5)
    assert P.adaptive_avg_pool2d(x, None).shape == (1, 2, 6, 5)
    assert P.adaptive_max_pool2d(x, 4).shape == (1, 2, 4, 4)
    np.testing.assert_allclose(P.adaptive_avg_pool2d(x, (6, 5)), x)
    assert P.adaptive_avg_pool2d(x, (0, 3)).shape == (1, 2, 0, 3)


def test_global_avg_pool(dtype, n_threads):
    x = random((3, 4, 7, 6), dtype)
    got = P.global_avg_pool2d(x, n_threads=n_threads)
    assert got.shape == (3, 4, 1, 1) and got.dtype == dtype
    np.testing.assert_allclose(got[..., 0, 0], x.astype(np.float64).mean(axis=(2, 3)),
                               **tolerance(dtype))
    assert P.global_avg_pool2d(x, keepdims=False).shape == (3, 4)
    assert P.global_avg_pool2d(x[0]).shape == (4, 1, 1)
    np.testing.assert_allclose(P.adaptive_avg_pool2d(x, 1), got, **tolerance(dtype))
    with pytest.raises(TypeError, match="keepdims"):
        P.global_avg_pool2d(x, keepdims="yes")


# --- sub-sampling -------------------------------------------------------------

@SETTINGS
@given(data=st.data())
def test_subsample_matches_reference(dtype, n_threads, data):
    rng = seeded(data)
    fh, fw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    H, W = data.draw(st.integers(fh, 9)), data.draw(st.integers(fw, 9))
    C = data.draw(st.integers(1, 3))
    x = random((2, C, H, W), dtype, rng=rng)
    beta, bias = random(C, dtype, rng=rng), random(C, dtype, rng=rng)
    factor = (fh, fw) if fh != fw or data.draw(st.booleans()) else fh
    got = P.subsample2d(x, factor, beta, bias, n_threads=n_threads)
    assert got.dtype == dtype and got.shape == (2, C, H // fh, W // fw)
    np.testing.assert_allclose(got, ref.subsample2d(x, (fh, fw), beta, bias),
                               **tolerance(dtype))
    g = random(got.shape, dtype, rng=rng)
    gx, gbeta, gbias = P.subsample2d_backward(g, x, factor, beta, n_threads=n_threads)
    want = ref.subsample2d_backward(g, x, (fh, fw), beta)
    for a, b in zip((gx, gbeta, gbias), want):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, **tolerance(dtype))


def test_subsample_leftover_rows_and_columns_get_zero_gradient():
    x = random((1, 2, 7, 5))
    g = random((1, 2, 3, 2))
    gx, _, _ = P.subsample2d_backward(g, x, 2, [1.5, -2.0])
    assert np.all(gx[:, :, 6, :] == 0) and np.all(gx[:, :, :, 4] == 0)
    np.testing.assert_allclose(gx[0, 0, :6, :4], 1.5 * np.kron(g[0, 0], np.ones((2, 2))))
    np.testing.assert_allclose(gx[0, 1, :6, :4], -2.0 * np.kron(g[0, 1], np.ones((2, 2))))


def test_subsample_is_scaled_average_pooling(dtype):
    x = random((2, 3, 8, 6), dtype)
    beta, bias = np.array([1.0, 2.0, -0.5]), np.array([0.0, 0.1, 0.2])
    got = P.subsample2d(x, 2, beta.astype(dtype), bias.astype(dtype))
    want = 4 * P.avg_pool2d(x, 2) * beta[:, None, None] + bias[:, None, None]
    np.testing.assert_allclose(got, want, **tolerance(dtype))


# --- PyTorch as an oracle ----------------------------------------------------

MAX_CASES = [
    (2, (2, 3, 9, 11), dict(kernel_size=3, stride=2, padding=1)),
    (2, (2, 3, 8, 8), dict(kernel_size=2)),
    (2, (1, 2, 10, 7), dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1),
                            dilation=(2, 3), ceil_mode=True)),
    (2, (2, 2, 7, 9), dict(kernel_size=3, stride=3, ceil_mode=True)),
    (1, (2, 3, 17), dict(kernel_size=4, stride=3, padding=2, dilation=2, ceil_mode=True)),
    (1, (3, 12), dict(kernel_size=3)),
    (3, (2, 2, 5, 6, 7), dict(kernel_size=(2, 3, 3), stride=(1, 2, 2), padding=(1, 1, 0))),
    (3, (2, 5, 5, 5), dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True)),
]


@pytest.mark.parametrize("nd, shape, kwargs", MAX_CASES, ids=str)
def test_max_pool_matches_torch(torch, nd, shape, kwargs, dtype):
    x = with_specials(random(shape, dtype), RNG, ties=True, nans=True, infs=True)
    tx = torch.from_numpy(x)
    tfun = getattr(torch.nn.functional, f"max_pool{nd}d")
    ty, tidx = tfun(tx, return_indices=True, **kwargs)
    y, idx = MAX[nd](x, return_indices=True, **kwargs)
    np.testing.assert_array_equal(y, ty.numpy())
    np.testing.assert_array_equal(idx, tidx.numpy())
    np.testing.assert_array_equal(MAX[nd](x, **kwargs), tfun(tx, **kwargs).numpy())


@pytest.mark.parametrize("nd, shape, kwargs", MAX_CASES, ids=str)
def test_max_pool_backward_matches_torch_autograd(torch, nd, shape, kwargs):
    x = RNG.permutation(np.prod(shape)).reshape(shape).astype(np.float64)   # no ties
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = getattr(torch.nn.functional, f"max_pool{nd}d")(tx, **kwargs)
    g = random(tuple(ty.shape))
    ty.backward(torch.from_numpy(g))
    _, idx = MAX[nd](x, return_indices=True, **kwargs)
    np.testing.assert_allclose(MAX_BACK[nd](g, idx, x.shape), tx.grad.numpy(), rtol=1e-12)


AVG_CASES = [
    (2, (2, 3, 8, 8), dict(kernel_size=2, stride=2)),
    (2, (2, 3, 9, 7), dict(kernel_size=3, stride=1, padding=1)),
    (2, (1, 2, 9, 7), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                           count_include_pad=False)),
    (2, (1, 2, 10, 5), dict(kernel_size=(4, 2), stride=(3, 2), padding=(2, 1),
                            ceil_mode=True, divisor_override=5)),
    (1, (2, 3, 11), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (1, (3, 11), dict(kernel_size=2, count_include_pad=False, padding=1)),
    (3, (2, 2, 5, 6, 7), dict(kernel_size=(2, 3, 3), stride=(1, 2, 2), padding=(1, 1, 0))),
    (3, (2, 4, 5, 6), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                           count_include_pad=False)),
]


@pytest.mark.parametrize("nd, shape, kwargs", AVG_CASES, ids=str)
def test_avg_pool_and_backward_match_torch(torch, nd, shape, kwargs, dtype):
    x = random(shape, dtype)
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = getattr(torch.nn.functional, f"avg_pool{nd}d")(tx, **kwargs)
    np.testing.assert_allclose(AVG[nd](x, **kwargs), ty.detach().numpy(), **tolerance(dtype))
    g = random(tuple(ty.shape), dtype)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(AVG_BACK[nd](g, x.shape, **kwargs), tx.grad.numpy(),
                               **tolerance(dtype))


@pytest.mark.parametrize("shape, out", [((2, 3, 14, 14), 7), ((2, 3, 14, 14), 1),
                                        ((1, 2, 10, 7), (3, 4)), ((3, 5, 6), (8, None)),
                                        ((2, 2, 5, 5), (7, 3))], ids=str)
def test_adaptive_pooling_matches_torch(torch, shape, out, dtype):
    x = with_specials(random(shape, dtype), RNG, ties=True, nans=True)
    F = torch.nn.functional
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = F.adaptive_avg_pool2d(tx, out)
    np.testing.assert_allclose(P.adaptive_avg_pool2d(x, out), ty.detach().numpy(),
                               **tolerance(dtype))
    my, midx = P.adaptive_max_pool2d(x, out, return_indices=True)
    tmy, tmidx = F.adaptive_max_pool2d(torch.from_numpy(x), out, return_indices=True)
    np.testing.assert_array_equal(my, tmy.numpy())
    np.testing.assert_array_equal(midx, tmidx.numpy())
    # gradients on finite, tie-free input
    x = RNG.permutation(np.prod(shape)).reshape(shape).astype(dtype)
    tx = torch.from_numpy(x).requires_grad_(True)
    g = random(tuple(F.adaptive_avg_pool2d(tx, out).shape), dtype)
    F.adaptive_avg_pool2d(tx, out).backward(torch.from_numpy(g))
    np.testing.assert_allclose(P.adaptive_avg_pool2d_backward(g, x.shape), tx.grad.numpy(),
                               **tolerance(dtype))
    tx.grad = None
    F.adaptive_max_pool2d(tx, out).backward(torch.from_numpy(g))
    _, idx = P.adaptive_max_pool2d(x, out, return_indices=True)
    np.testing.assert_allclose(P.adaptive_max_pool2d_backward(g, idx, x.shape),
                               tx.grad.numpy(), **tolerance(dtype))


def test_subsample_gradients_match_torch_autograd(torch):
    x, beta, bias = random((2, 3, 9, 8)), random(3), random(3)
    tx, tb, tc = (torch.from_numpy(a).requires_grad_(True) for a in (x, beta, bias))
    blocks = torch.nn.functional.avg_pool2d(tx, (3, 2)) * 6
    ty = tb[:, None, None] * blocks + tc[:, None, None]
    np.testing.assert_allclose(P.subsample2d(x, (3, 2), beta, bias), ty.detach().numpy(),
                               rtol=1e-12)
    g = random(tuple(ty.shape))
    ty.backward(torch.from_numpy(g))
    for got, want in zip(P.subsample2d_backward(g, x, (3, 2), beta), (tx, tb, tc)):
        np.testing.assert_allclose(got, want.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_window_of_padding_only(torch):
    # dilation 2, padding 1 on a length-1 row: the window is positions -1, 1
    x = np.array([[[5.0]]])
    y, idx = P.max_pool1d(x, 2, 1, 1, dilation=2, return_indices=True)
    ty = torch.nn.functional.max_pool1d(torch.from_numpy(x), 2, 1, 1, dilation=2)
    np.testing.assert_array_equal(y, ty.numpy())
    assert y[0, 0, 0] == -np.inf and idx[0, 0, 0] == -1    # torch gives 1, outside the row
    np.testing.assert_array_equal(P.max_pool1d_backward(np.ones((1, 1, 1)), idx, x.shape), 0)


# --- finite differences --------------------------------------------------------

def numeric_grad(f, x, g, eps=1e-6):
    """d/dx of sum(f(x) * g) by central differences (f runs on one thread:
    hundreds of tiny calls should not each start a thread team)."""
    out = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        hi = np.sum(f(x) * g)
        x[i] = old - eps
        lo = np.sum(f(x) * g)
        x[i] = old
        out[i] = (hi - lo) / (2 * eps)
    return out


@pytest.mark.parametrize("nd, shape, kwargs", [
    (1, (1, 2, 9), dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True)),
    (2, (1, 2, 7, 6), dict(kernel_size=3, stride=2, padding=1)),
    (2, (2, 1, 6, 6), dict(kernel_size=2, stride=1)),
    (3, (1, 1, 4, 5, 4), dict(kernel_size=(2, 3, 2), stride=(1, 2, 2), padding=(1, 1, 0))),
], ids=str)
def test_max_pool_backward_finite_differences(nd, shape, kwargs):
    # distinct values spaced far more than eps apart: the argmax never flips
    x = RNG.permutation(np.prod(shape)).reshape(shape) * 0.1
    y, idx = MAX[nd](x, return_indices=True, **kwargs)
    g = random(y.shape)
    want = numeric_grad(lambda z: MAX[nd](z, **kwargs, n_threads=1), x, g)
    np.testing.assert_allclose(MAX_BACK[nd](g, idx, x.shape), want, atol=1e-7)


@pytest.mark.parametrize("nd, shape, kwargs", [
    (1, (1, 2, 9), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (2, (1, 2, 7, 6), dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    (2, (2, 1, 6, 7), dict(kernel_size=(2, 3), stride=1, divisor_override=4)),
    (3, (1, 1, 4, 5, 4), dict(kernel_size=(2, 3, 2), stride=(1, 2, 2), padding=(1, 1, 0),
                              ceil_mode=True)),
], ids=str)
def test_avg_pool_backward_finite_differences(nd, shape, kwargs):
    x = random(shape)
    y = AVG[nd](x, **kwargs)
    g = random(y.shape)
    want = numeric_grad(lambda z: AVG[nd](z, **kwargs, n_threads=1), x, g)
    np.testing.assert_allclose(AVG_BACK[nd](g, x.shape, **kwargs), want, atol=1e-7)


def test_adaptive_backward_finite_differences():
    shape, out = (1, 2, 7, 5), (3, 4)
    x = RNG.permutation(np.prod(shape)).reshape(shape) * 0.1
    g = random((1, 2) + out)
    want = numeric_grad(lambda z: P.adaptive_avg_pool2d(z, out, n_threads=1), x, g)
    np.testing.assert_allclose(P.adaptive_avg_pool2d_backward(g, shape), want, atol=1e-7)
    _, idx = P.adaptive_max_pool2d(x, out, return_indices=True)
    want = numeric_grad(lambda z: P.adaptive_max_pool2d(z, out, n_threads=1), x, g)
    np.testing.assert_allclose(P.adaptive_max_pool2d_backward(g, idx, shape), want, atol=1e-7)


def test_subsample_backward_finite_differences():
    x, beta, bias = random((2, 2, 7, 6)), random(2), random(2)
    g = random((2, 2, 3, 3))
    gx, gbeta, gbias = P.subsample2d_backward(g, x, (2, 2), beta)
    np.testing.assert_allclose(
        gx, numeric_grad(lambda z: P.subsample2d(z, 2, beta, bias, n_threads=1), x, g),
        atol=1e-7)
    np.testing.assert_allclose(
        gbeta, numeric_grad(lambda b: P.subsample2d(x, 2, b, bias), beta.copy(), g), atol=1e-6)
    np.testing.assert_allclose(
        gbias, numeric_grad(lambda c: P.subsample2d(x, 2, beta, c), bias.copy(), g), atol=1e-6)


# --- semantics: NaN, ties, infinities, layouts -------------------------------

def test_nan_propagates_and_last_nan_is_picked():
    x = np.array([[[[1.0, np.nan, 3.0],
                    [np.nan, 9.0, 2.0],
                    [0.0, 1.0, 2.0]]]])
    y, idx = P.max_pool2d(x, 3, return_indices=True)
    assert np.isnan(y[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 3    # the last NaN, row-major
    y, idx = P.max_pool2d(x, 2, stride=1, return_indices=True)
    np.testing.assert_array_equal(idx[0, 0], [[3, 1], [3, 4]])
    assert np.isnan(y[0, 0, 1, 0]) and y[0, 0, 1, 1] == 9.0


def test_ties_go_to_the_first_maximum_in_row_major_order():
    x = np.array([[[[0.0, 7.0, 1.0],
                    [7.0, 0.0, 7.0]]]])
    _, idx = P.max_pool2d(x, (2, 3), return_indices=True)
    assert idx[0, 0, 0, 0] == 1
    _, idx = P.max_pool2d(x[:, :, ::-1, :].copy(), (2, 3), return_indices=True)
    assert idx[0, 0, 0, 0] == 0          # row 0 now holds 7 at column 0
    y, idx = P.max_pool2d(np.full((1, 1, 3, 3), -np.inf), 3, padding=1,
                          return_indices=True)
    assert np.all(y == -np.inf) and idx[0, 0, 0, 0] == 0


def test_unbatched_input(dtype):
    x = random((3, 6, 7), dtype)
    y, idx = P.max_pool2d(x, 2, return_indices=True)
    y4, idx4 = P.max_pool2d(x[None], 2, return_indices=True)
    np.testing.assert_array_equal(y, y4[0])
    np.testing.assert_array_equal(idx, idx4[0])
    np.testing.assert_array_equal(P.max_pool2d_backward(np.ones_like(y), idx, x.shape),
                                  P.max_pool2d_backward(np.ones_like(y4), idx4, (1,) + x.shape)[0])
    np.testing.assert_allclose(P.avg_pool1d(x[0], 3), P.avg_pool1d(x[:1], 3)[0])
    np.testing.assert_allclose(P.avg_pool3d(x[None], 2), P.avg_pool3d(x[None, None], 2)[0])
    np.testing.assert_allclose(P.avg_pool2d_backward(np.ones((3, 3, 3), dtype), x.shape, 2),
                               P.avg_pool2d_backward(np.ones((1, 3, 3, 3), dtype),
                                                     (1,) + x.shape, 2)[0])
    assert P.subsample2d(x, 2, np.ones(3), np.zeros(3)).shape == (3, 3, 3)


def test_empty_batch():
    x = np.zeros((0, 3, 6, 6))
    assert P.max_pool2d(x, 2).shape == (0, 3, 3, 3)
    assert P.avg_pool2d(x, 2).shape == (0, 3, 3, 3)
    assert P.adaptive_max_pool2d(x, 2, return_indices=True)[1].shape == (0, 3, 2, 2)
    assert P.max_pool2d_backward(np.zeros((0, 3, 3, 3)), np.zeros((0, 3, 3, 3), np.int64),
                                 x.shape).shape == x.shape


@pytest.mark.parametrize("layout", ["strided", "fortran", "readonly", "int", "list"])
def test_layouts_and_dtypes_are_accepted_and_inputs_untouched(layout):
    base = random((2, 3, 12, 10))
    if layout == "strided":
        x = base[:, :, ::2, 1::2]
    elif layout == "fortran":
        x = np.asfortranarray(base)
    elif layout == "readonly":
        x = base.copy()
        x.flags.writeable = False
    elif layout == "int":
        x = np.round(base * 10).astype(np.int32)
    else:
        x = base[:1, :1].tolist()
    copy = np.array(x, copy=True)
    want = np.ascontiguousarray(copy, dtype=np.float64)
    y, idx = P.max_pool2d(x, 3, 2, 1, return_indices=True)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, ref.max_pool(want, (3, 3), (2, 2), (1, 1), (1, 1))[0])
    np.testing.assert_allclose(P.avg_pool2d(x, 2), ref.avg_pool(want, (2, 2), (2, 2), (0, 0)))
    np.testing.assert_array_equal(np.asarray(x), copy)


def test_backward_inputs_are_not_modified():
    x = random((2, 3, 9, 8))
    y, idx = P.max_pool2d(x, 3, 2, 1, return_indices=True)
    g = random(y.shape)
    g.flags.writeable = False
    idx.flags.writeable = False
    keep_g, keep_idx = g.copy(), idx.copy()
    P.max_pool2d_backward(g, idx, x.shape)
    P.avg_pool2d_backward(g, x.shape, 3, 2, 1)
    P.adaptive_avg_pool2d_backward(g, x.shape)
    P.adaptive_max_pool2d_backward(g, idx, x.shape)
    P.subsample2d_backward(g[:, :, :4, :4], x, 2, np.ones(3))
    np.testing.assert_array_equal(g, keep_g)
    np.testing.assert_array_equal(idx, keep_idx)


def test_float32_stays_float32_and_float16_widens():
    x = random((1, 2, 6, 6), np.float32)
    assert P.max_pool2d(x, 2).dtype == np.float32
    assert P.avg_pool2d(x.astype(np.float16), 2).dtype == np.float32
    assert P.max_pool2d_backward(np.ones((1, 2, 3, 3), np.float32),
                                 P.max_pool2d(x, 2, return_indices=True)[1],
                                 x.shape).dtype == np.float32


def test_thread_counts_agree(dtype):
    # each plane is computed the same way whichever thread takes it
    x = with_specials(random((3, 5, 13, 12), dtype), RNG, ties=True, nans=True)
    g = random((3, 5, 7, 6), dtype)
    calls = [
        lambda n: P.max_pool2d(x, 3, 2, 1, return_indices=True, n_threads=n),
        lambda n: (P.avg_pool2d(x, 3, 1, 1, n_threads=n),),
        lambda n: (P.adaptive_avg_pool2d(x, (5, 4), n_threads=n),),
        lambda n: (P.avg_pool2d_backward(g, x.shape, 3, 2, 1, n_threads=n),),
        lambda n: P.subsample2d_backward(g[:, :, :6, :6], x, 2, np.arange(5.0), n_threads=n),
    ]
    for call in calls:
        for a, b in zip(call(1), call(3)):
            np.testing.assert_array_equal(a, b)


def test_thread_team_size(monkeypatch):
    monkeypatch.setattr(P, "_MIN_WORK_PER_THREAD", 1000)
    assert P._team(2, 100, 999) == 1          # too little work to share
    assert P._team(2, 100, 2000) == 2
    assert P._team(8, 3, 10 ** 9) == 3        # no more threads than planes
    assert P._team(1, 100, 10 ** 9) == 1


def test_concurrent_calls_from_python_threads():
    inputs = [random((4, 3, 16, 15)) for _ in range(8)]

    def work(x):
        y, idx = P.max_pool2d(x, 3, 2, 1, return_indices=True, n_threads=2)
        gx = P.max_pool2d_backward(np.ones_like(y), idx, x.shape, n_threads=2)
        return y, gx, P.avg_pool2d(x, 2, n_threads=2)

    serial = [work(x) for x in inputs]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(work, inputs * 3))
    for got, want in zip(parallel, serial * 3):
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("limit", [2 ** 24, 4])
def test_windows_beyond_float32_exact_integers(monkeypatch, limit):
    # The argmax kernel holds window row numbers and positions in the value
    # dtype; past float32's exact integers (lowered here to reach that path)
    # the work moves to float64.
    monkeypatch.setattr(P, "_FLOAT32_EXACT", limit)
    x = with_specials(random((2, 3, 300, 7), np.float32), RNG, ties=True, nans=True)
    for out in [(1, 1), (3, 2), (1, 7)]:
        y, idx = P.adaptive_max_pool2d(x, out, return_indices=True)
        want, want_idx = ref.adaptive_max_pool2d(x, out)
        assert y.dtype == np.float32
        np.testing.assert_array_equal(y, want.astype(np.float32))
        np.testing.assert_array_equal(idx, want_idx)
    rows = x[:, :, 0, :]
    y, idx = P.max_pool1d(rows, 6, 1, 3, return_indices=True)
    want, want_idx = ref.max_pool(rows, (6,), (1,), (3,), (1,))
    np.testing.assert_array_equal(y, want.astype(np.float32))
    np.testing.assert_array_equal(idx, want_idx)


# --- bad input -------------------------------------------------------------------

X4 = np.zeros((1, 1, 6, 6))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(kernel_size=0), ValueError, "kernel_size must be >= 1"),
    (dict(kernel_size=-2), ValueError, "kernel_size must be >= 1"),
    (dict(kernel_size=2, stride=0), ValueError, "stride must be >= 1"),
    (dict(kernel_size=2, dilation=0), ValueError, "dilation must be >= 1"),
    (dict(kernel_size=2, padding=-1), ValueError, "padding must be >= 0"),
    (dict(kernel_size=3, padding=2), ValueError, "padding must be at most half"),
    (dict(kernel_size=(2, 4), padding=(1, 3)), ValueError, "padding must be at most half"),
    (dict(kernel_size=7), ValueError, "larger than the padded input"),
    (dict(kernel_size=3, dilation=3), ValueError, "larger than the padded input"),
    (dict(kernel_size=2.0), TypeError, "kernel_size must be an int"),
    (dict(kernel_size=(2, 2, 2)), ValueError, "kernel_size must be an int or a sequence of 2"),
    (dict(kernel_size=2, ceil_mode=1), TypeError, "ceil_mode must be a bool"),
    (dict(kernel_size=2, return_indices="no"), TypeError, "return_indices must be a bool"),
    (dict(kernel_size=2, n_threads=0), ValueError, "n_threads"),
])
def test_max_pool_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        P.max_pool2d(X4, **kwargs)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(kernel_size=2, divisor_override=0), ValueError, "divisor_override must not be zero"),
    (dict(kernel_size=2, divisor_override=1.5), TypeError, "divisor_override must be an int"),
    (dict(kernel_size=2, count_include_pad=None), TypeError, "count_include_pad must be a bool"),
    (dict(kernel_size=4, padding=3), ValueError, "padding must be at most half"),
    (dict(kernel_size=(2, 9)), ValueError, "larger than the padded input"),
])
def test_avg_pool_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        P.avg_pool2d(X4, **kwargs)


def test_rejects_bad_inputs():
    with pytest.raises(ValueError, match="x must be 4-dimensional .* or 3-dimensional"):
        P.max_pool2d(np.zeros((6, 6)), 2)
    with pytest.raises(ValueError, match="x must be 3-dimensional"):
        P.avg_pool1d(np.zeros((1, 1, 2, 6)), 2)
    with pytest.raises(ValueError, match="x must be 5-dimensional"):
        P.max_pool3d(np.zeros((6, 6, 6)), 2)
    with pytest.raises(ValueError, match="non-zero channel and spatial"):
        P.max_pool2d(np.zeros((1, 0, 6, 6)), 2)
    with pytest.raises(ValueError, match="non-zero channel and spatial"):
        P.avg_pool2d(np.zeros((1, 1, 0, 6)), 1)
    with pytest.raises(TypeError, match="x: .*complex"):
        P.max_pool2d(np.zeros((1, 1, 4, 4), complex), 2)
    with pytest.raises(TypeError, match="x must be array_like"):
        P.avg_pool2d([[[1.0, 2.0], [3.0]]], 1)
    with pytest.raises(ValueError, match="avg_pool3d needs an input at least as large"):
        P.avg_pool3d(np.zeros((1, 1, 2, 2, 2)), 3, padding=1)
    with pytest.raises(ValueError, match="output_size must be >= 0"):
        P.adaptive_avg_pool2d(X4, -1)
    with pytest.raises(ValueError, match="output_size must be an int or a sequence of 2"):
        P.adaptive_max_pool2d(X4, (1, 2, 3))
    with pytest.raises(ValueError, match="non-zero spatial"):
        P.adaptive_max_pool2d(np.zeros((1, 1, 0, 6)), 2)


def test_max_backward_rejects_bad_indices():
    x = random((2, 3, 6, 6))
    y, idx = P.max_pool2d(x, 2, return_indices=True)
    g = np.ones_like(y)
    with pytest.raises(TypeError, match="indices must be an integer array"):
        P.max_pool2d_backward(g, idx.astype(float), x.shape)
    with pytest.raises(ValueError, match="indices must have the shape of grad_output"):
        P.max_pool2d_backward(g, idx[:, :, :2], x.shape)
    for bad in (36, -2, 10 ** 12):
        wrong = idx.copy()
        wrong[1, 2, 0, 1] = bad
        with pytest.raises(ValueError, match=r"indices must be flat positions .* \[0, 36\)"):
            P.max_pool2d_backward(g, wrong, x.shape)
    with pytest.raises(ValueError, match="indices hold values beyond"):
        P.max_pool2d_backward(g, np.full(idx.shape, 2 ** 64 - 1, np.uint64), x.shape)
    with pytest.raises(ValueError, match="input_shape must have as many dimensions"):
        P.max_pool2d_backward(g, idx, (3, 6, 6))
    with pytest.raises(ValueError, match="agree on the leading"):
        P.max_pool2d_backward(g, idx, (2, 4, 6, 6))
    with pytest.raises(TypeError, match="input_shape must be a tuple"):
        P.max_pool2d_backward(g, idx, 36)
    with pytest.raises(ValueError, match="grad_output must be 3- or 4-dimensional"):
        P.max_pool2d_backward(g[0, 0], idx[0, 0], (6, 6))
    # int32 indices are accepted
    np.testing.assert_array_equal(P.max_pool2d_backward(g, idx.astype(np.int32), x.shape),
                                  P.max_pool2d_backward(g, idx, x.shape))


def test_avg_backward_rejects_inconsistent_shapes():
    g = np.ones((2, 3, 3, 3))
    with pytest.raises(ValueError, match="grad_output has spatial shape"):
        P.avg_pool2d_backward(g, (2, 3, 8, 8), 2)
    with pytest.raises(ValueError, match="agree on the leading"):
        P.avg_pool2d_backward(g, (2, 2, 6, 6), 2)
    with pytest.raises(ValueError, match="padding must be at most half"):
        P.avg_pool2d_backward(g, (2, 3, 6, 6), 2, padding=2)
    with pytest.raises(ValueError, match="agree on the leading"):
        P.adaptive_avg_pool2d_backward(g, (2, 4, 6, 6))
    with pytest.raises(ValueError, match="non-zero"):
        P.adaptive_avg_pool2d_backward(g, (2, 3, 0, 6))


def test_subsample_rejects_bad_arguments():
    x = random((2, 3, 6, 6))
    with pytest.raises(ValueError, match=r"beta must have shape \(C,\)"):
        P.subsample2d(x, 2, np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match=r"bias must have shape \(C,\)"):
        P.subsample2d(x, 2, np.ones(3), np.ones((3, 1)))
    with pytest.raises(ValueError, match="factor must be >= 1"):
        P.subsample2d(x, 0, np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="factor .* is larger than the maps"):
        P.subsample2d(x, (7, 2), np.ones(3), np.ones(3))
    with pytest.raises(TypeError, match="beta: .*complex"):
        P.subsample2d(x, 2, np.ones(3, complex), np.ones(3))
    with pytest.raises(ValueError, match="grad_output must have shape"):
        P.subsample2d_backward(np.ones((2, 3, 2, 3)), x, 2, np.ones(3))
