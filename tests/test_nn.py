"""pyconvnet.nn: layers against PyTorch and finite differences, losses,
optimiser steps by hand, initialisers, saving and loading, LeNet-5."""
import inspect
import re

import numpy as np
import pytest

from conftest import tolerance
from pyconvnet import nn
from pyconvnet.gradcheck import gradcheck
from pyconvnet.shapes import summary

RNG = np.random.default_rng(2024)


def randn(*shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


# Every layer type with an input shape; each case is gradient-checked in
# float64 (inputs and all parameters).
LAYER_CASES = [
    ("conv1d", lambda: nn.Conv1d(2, 4, 3, stride=2, padding=1, rng=0, n_threads=1), (2, 2, 9)),
    ("conv1d_same_dilated", lambda: nn.Conv1d(3, 2, 3, padding="same", dilation=2, rng=1, n_threads=1),
     (2, 3, 8)),
    ("conv2d", lambda: nn.Conv2d(3, 4, 3, rng=0, n_threads=1), (2, 3, 6, 5)),
    ("conv2d_strided_groups", lambda: nn.Conv2d(4, 6, 3, stride=(1, 2), padding=1,
                                                dilation=2, groups=2, rng=0), (2, 4, 7, 8)),
    ("conv2d_same_nobias", lambda: nn.Conv2d(3, 4, 2, padding="same", bias=False, rng=0, n_threads=1),
     (2, 3, 5, 6)),
    ("conv2d_valid_wide", lambda: nn.Conv2d(10, 9, 3, padding="valid", rng=3, n_threads=1),
     (2, 10, 6, 6)),
    ("conv2d_masked", lambda: nn.Conv2d(6, 16, 5, mask=nn.c3_connection_mask(), rng=0, n_threads=1),
     (2, 6, 9, 9)),
    ("conv3d", lambda: nn.Conv3d(2, 3, 2, stride=(1, 2, 1), padding=1, rng=0, n_threads=1),
     (1, 2, 4, 4, 3)),
    ("maxpool2d", lambda: nn.MaxPool2d(2, n_threads=1), (2, 3, 6, 6)),
    ("maxpool2d_overlap", lambda: nn.MaxPool2d(3, stride=2, padding=1, n_threads=1), (2, 3, 7, 7)),
    ("avgpool2d", lambda: nn.AvgPool2d(2, n_threads=1), (2, 3, 6, 6)),
    ("avgpool2d_padded", lambda: nn.AvgPool2d(3, stride=2, padding=1,
                                              count_include_pad=False, n_threads=1), (2, 2, 7, 6)),
    ("adaptive_avgpool2d", lambda: nn.AdaptiveAvgPool2d((3, 2), n_threads=1), (2, 3, 7, 5)),
    ("subsampling", lambda: nn.Subsampling(3, 2, beta=0.7, n_threads=1), (2, 3, 6, 6)),
    ("subsampling_3", lambda: nn.Subsampling(2, 3, n_threads=1), (2, 2, 6, 9)),
    ("mapcombination", lambda: nn.MapCombination(3, 4, rng=0), (2, 3, 4, 4)),
    ("mapcombination_sparse", lambda: nn.MapCombination(3, 2, sparsity=0.5, rng=1),
     (2, 3, 3, 3)),
    ("linear", lambda: nn.Linear(5, 3, rng=0), (4, 5)),
    ("linear_nobias", lambda: nn.Linear(5, 3, bias=False, rng=0), (4, 5)),
    ("relu", lambda: nn.ReLU(), (3, 7)),
    ("sigmoid", lambda: nn.Sigmoid(), (3, 7)),
    ("tanh", lambda: nn.Tanh(), (3, 7)),
    ("tanh_lecun", lambda: nn.Tanh(1.7159, 2 / 3), (2, 3, 4)),
    ("flatten", lambda: nn.Flatten(), (2, 3, 4)),
    ("dropout", lambda: nn.Dropout(0.3, rng=0), (4, 5)),
    ("batchnorm2d", lambda: nn.BatchNorm2d(3), (4, 3, 3, 3)),
    ("batchnorm2d_noaffine", lambda: nn.BatchNorm2d(2, affine=False), (3, 2, 2, 3)),
    ("maxpool1d", lambda: nn.MaxPool1d(3, stride=2, padding=1, n_threads=1), (2, 3, 9)),
    ("maxpool3d", lambda: nn.MaxPool3d(2, n_threads=1), (1, 2, 4, 4, 5)),
    ("avgpool1d", lambda: nn.AvgPool1d(2, n_threads=1), (2, 3, 8)),
    ("avgpool3d", lambda: nn.AvgPool3d(2, stride=1, padding=1, count_include_pad=False,
                                       n_threads=1), (1, 2, 3, 4, 3)),
    ("avgpool2d_divisor", lambda: nn.AvgPool2d(3, stride=2, padding=1, divisor_override=5,
                                               n_threads=1), (2, 2, 7, 6)),
    ("conv2d_unbatched", lambda: nn.Conv2d(3, 2, 3, padding=1, rng=0, n_threads=1), (3, 5, 6)),
    ("maxpool2d_unbatched", lambda: nn.MaxPool2d(2, n_threads=1), (3, 6, 6)),
    ("linear_leading_dims", lambda: nn.Linear(5, 3, rng=0), (2, 3, 5)),
    ("linear_one_example", lambda: nn.Linear(5, 3, rng=0), (5,)),
    ("mapcombination_nobias", lambda: nn.MapCombination(3, 2, bias=False, rng=0),
     (2, 3, 3, 3)),
    ("mapcombination_entropy", lambda: nn.MapCombination(4, 3, entropy=0.7, rng=2),
     (2, 4, 3, 3)),
    ("batchnorm2d_cumulative", lambda: nn.BatchNorm2d(num_features=3, momentum=None),
     (4, 3, 3, 3)),
    ("batchnorm2d_untracked", lambda: nn.BatchNorm2d(2, track_running_stats=False),
     (3, 2, 2, 3)),
    ("sequential", lambda: nn.Sequential(nn.Conv2d(2, 3, 3, rng=0, n_threads=1), nn.Tanh(),
                                         nn.MaxPool2d(2, n_threads=1), nn.Flatten(),
                                         nn.Linear(12, 4, rng=0)), (2, 2, 6, 6)),
]


@pytest.mark.parametrize("make, shape", [c[1:] for c in LAYER_CASES],
                         ids=[c[0] for c in LAYER_CASES])
def test_every_layer_passes_gradcheck(make, shape):
    layer = make()
    result = gradcheck(layer, randn(*shape), max_per_array=40)
    assert result.passed, str(result)
    expected = set(layer.params()) | {"input"}
    assert set(result.errors) == expected


def test_batchnorm_eval_mode_passes_gradcheck():
    bn = nn.BatchNorm2d(3)
    bn.forward(randn(8, 3, 4, 4) * 2 + 1)
    bn.eval()
    assert gradcheck(bn, randn(4, 3, 3, 3)).passed


# -- PyTorch as the oracle ------------------------------------------------------

def _torch_conv(torch, layer, x, dy):
    nd = layer._nd
    f = getattr(torch.nn.functional, f"conv{nd}d")
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(layer._effective_weight(), requires_grad=True)
    bt = torch.tensor(layer.params()["bias"], requires_grad=True) if "bias" in layer.params() else None
    pad = layer.padding
    yt = f(xt, wt, bt, layer.stride, pad, layer.dilation, layer.groups)
    yt.backward(torch.tensor(dy))
    return yt.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), None if bt is None else bt.grad.numpy()


@pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")
@pytest.mark.parametrize("nd, kwargs, shape", [
    (1, dict(in_channels=3, out_channels=4, kernel_size=3, stride=2, padding=1), (2, 3, 10)),
    (2, dict(in_channels=4, out_channels=6, kernel_size=(3, 2), padding="same", groups=2),
     (3, 4, 7, 6)),
    (2, dict(in_channels=1, out_channels=6, kernel_size=5), (4, 1, 12, 12)),
    (2, dict(in_channels=16, out_channels=12, kernel_size=3, dilation=2, bias=False),
     (2, 16, 9, 9)),
    (3, dict(in_channels=2, out_channels=3, kernel_size=2, padding=1), (2, 2, 3, 4, 3)),
])
def test_conv_layers_match_torch(torch, nd, kwargs, shape, dtype, n_threads):
    layer = getattr(nn, f"Conv{nd}d")(**kwargs, rng=5, dtype=dtype, n_threads=n_threads)
    if "bias" in layer.params():
        layer.params()["bias"][...] = randn(layer.out_channels)
    x = randn(*shape, dtype=dtype)
    y = layer.forward(x)
    assert y.dtype == dtype
    dy = randn(*y.shape, dtype=dtype)
    dx = layer.backward(dy)
    ty, tdx, tdw, tdb = _torch_conv(torch, layer, x, dy)
    tol = tolerance(dtype)
    np.testing.assert_allclose(y, ty, **tol)
    np.testing.assert_allclose(dx, tdx, **tol)
    np.testing.assert_allclose(layer.grads()["weight"], tdw, **tol)
    if tdb is not None:
        np.testing.assert_allclose(layer.grads()["bias"], tdb, **tol)


def test_pools_batchnorm_and_linear_match_torch(torch):
    F = torch.nn.functional
    x = randn(3, 4, 8, 7)
    dy_shape = {}
    cases = [
        (nn.MaxPool2d(3, stride=2, padding=1), lambda t: F.max_pool2d(t, 3, 2, 1)),
        (nn.AvgPool2d(2), lambda t: F.avg_pool2d(t, 2)),
        (nn.AdaptiveAvgPool2d((3, 3)), lambda t: F.adaptive_avg_pool2d(t, (3, 3))),
        (nn.BatchNorm2d(4, affine=False),
         lambda t: F.batch_norm(t, None, None, training=True, eps=1e-5)),
        (nn.Tanh(1.7159, 2 / 3), lambda t: 1.7159 * torch.tanh(t * 2 / 3)),
        (nn.Sigmoid(), torch.sigmoid),
        (nn.ReLU(), torch.relu),
    ]
    for layer, tf in cases:
        layer.astype(np.float64)
        y = layer.forward(x)
        dy = randn(*y.shape)
        dx = layer.backward(dy)
        xt = torch.tensor(x, requires_grad=True)
        yt = tf(xt)
        yt.backward(torch.tensor(dy))
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-9, atol=1e-9,
                                   err_msg=repr(layer))
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-8, atol=1e-9,
                                   err_msg=repr(layer))
        dy_shape[repr(layer)] = y.shape
    fc = nn.Linear(6, 3, rng=0, dtype=np.float64)
    xf = randn(5, 6)
    yt = F.linear(torch.tensor(xf), torch.tensor(fc.params()["weight"]),
                  torch.tensor(fc.params()["bias"]))
    np.testing.assert_allclose(fc.forward(xf), yt.numpy(), rtol=1e-12)


def test_batchnorm_running_statistics_match_torch(torch):
    x = randn(6, 3, 4, 4) * 3 + 2
    bn = nn.BatchNorm2d(3, momentum=0.2, dtype=np.float64)
    tbn = torch.nn.BatchNorm2d(3, momentum=0.2).double()
    for _ in range(3):
        bn.forward(x)
        tbn(torch.tensor(x))
    np.testing.assert_allclose(bn.buffers()["running_mean"], tbn.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(bn.buffers()["running_var"], tbn.running_var.numpy(), rtol=1e-12)
    bn.eval()
    tbn.eval()
    np.testing.assert_allclose(bn.forward(x), tbn(torch.tensor(x)).detach().numpy(),
                               rtol=1e-10, atol=1e-10)


def test_cross_entropy_matches_torch(torch):
    z = randn(7, 5) * 4
    labels = RNG.integers(0, 5, 7)
    loss, grad = nn.softmax_cross_entropy(z, labels)
    zt = torch.tensor(z, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(zt, torch.tensor(labels))
    lt.backward()
    assert loss == pytest.approx(lt.item(), rel=1e-12)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=1e-10, atol=1e-14)


# -- naive references --------------------------------------------------------

def test_subsampling_equals_window_sums_times_beta_plus_bias():
    s = nn.Subsampling(2, 3, dtype=np.float64)
    s.params()["beta"][...] = [0.5, -2.0]
    s.params()["bias"][...] = [1.0, 3.0]
    x = randn(2, 2, 6, 7)
    y = s.forward(x)
    expect = np.empty((2, 2, 2, 2))
    for n in range(2):
        for c in range(2):
            for i in range(2):
                for j in range(2):
                    window = x[n, c, 3 * i:3 * i + 3, 3 * j:3 * j + 3]
                    expect[n, c, i, j] = s.params()["beta"][c] * window.sum() + s.params()["bias"][c]
    np.testing.assert_allclose(y, expect, rtol=1e-12)


def test_mapcombination_softmax_weights_and_combination():
    mc = nn.MapCombination(3, 2, rng=0, dtype=np.float64)
    c = mc.params()["c"]
    alpha = np.exp(c) / np.exp(c).sum(axis=0)
    np.testing.assert_allclose(mc.alpha(), alpha, rtol=1e-12)
    x = randn(2, 3, 4, 4)
    y = mc.forward(x)
    for j in range(2):
        np.testing.assert_allclose(y[:, j], sum(alpha[i, j] * x[:, i] for i in range(3)),
                                   rtol=1e-12)


def test_mapcombination_gradient_through_softmax_formula():
    mc = nn.MapCombination(4, 1, rng=3, dtype=np.float64)
    x = randn(2, 4, 3, 3)
    y = mc.forward(x)
    dy = randn(*y.shape)
    mc.backward(dy)
    a = mc.alpha()[:, 0]
    dalpha = np.array([(dy[:, 0] * x[:, i]).sum() for i in range(4)])
    expect = np.array([sum(dalpha[i] * a[i] * ((i == k) - a[k]) for i in range(4))
                       for k in range(4)])
    np.testing.assert_allclose(mc.grads()["c"][:, 0], expect, rtol=1e-10, atol=1e-14)


def test_mapcombination_penalty_value():
    mc = nn.MapCombination(5, 3, sparsity=0.25, rng=0)
    assert mc.penalty() == pytest.approx(0.25 * np.abs(mc.alpha()).sum(), rel=1e-6)
    assert mc.penalty() == pytest.approx(0.25 * 3, rel=1e-6)
    assert nn.MapCombination(5, 3).penalty() == 0.0
    model = nn.Sequential(mc, nn.Flatten())
    assert model.penalty() == pytest.approx(mc.penalty())


def test_masked_weights_stay_zero_through_training():
    model = nn.Sequential(nn.Conv2d(6, 16, 5, mask=nn.c3_connection_mask(), rng=0),
                          nn.Flatten(), nn.Linear(16, 3, rng=0))
    conv = model[0]
    cut = conv.mask == 0
    assert (conv.params()["weight"][cut] == 0).all()
    # a weight set by hand at a cut position has no effect either
    conv.params()["weight"][cut] = 5.0
    x = randn(4, 6, 5, 5, dtype=np.float32)
    ref_out = nn.Sequential(nn.Conv2d(6, 16, 5, rng=0), nn.Flatten())
    ref_out[0].params()["weight"][...] = conv.params()["weight"] * conv.mask
    ref_out[0].params()["bias"][...] = conv.params()["bias"]
    np.testing.assert_allclose(conv.forward(x), ref_out[0].forward(x), rtol=1e-6, atol=1e-6)
    conv.params()["weight"][cut] = 0.0
    opt = nn.SGD(model, lr=0.1, momentum=0.9, weight_decay=0.01)
    loss = nn.CrossEntropyLoss()
    for _ in range(5):
        loss(model.forward(x), np.array([0, 1, 2, 0]))
        model.backward(loss.backward())
        assert (model.grads()["0.weight"][cut] == 0).all()
        opt.step()
    w = conv.params()["weight"]
    assert (w[cut] == 0).all() and (w[~cut] != 0).all()
    assert conv.connection_table() == nn.LENET5_C3_TABLE


def test_c3_table_is_lecun_table_one():
    table = nn.LENET5_C3_TABLE
    assert len(table) == 16 and sum(len(r) for r in table) == 60
    assert [len(r) for r in table] == [3] * 6 + [4] * 9 + [6]
    # every S2 map feeds exactly 10 C3 maps
    assert np.bincount([i for r in table for i in r]).tolist() == [10] * 6
    assert table[0] == (0, 1, 2) and table[4] == (0, 4, 5) and table[14] == (0, 2, 3, 5)


# -- losses ------------------------------------------------------------------

def test_cross_entropy_is_stable_for_huge_logits():
    loss, grad = nn.softmax_cross_entropy(np.array([[1e4, 0.0, -1e4]]), [1])
    assert loss == pytest.approx(1e4)
    np.testing.assert_allclose(grad, [[1.0, -1.0, 0.0]], atol=1e-12)
    assert np.isfinite(nn.log_softmax(np.array([[1e300, -1e300, 0.0]]))).all()


def test_cross_entropy_value_by_hand():
    z = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    p = np.exp(z[0]) / np.exp(z[0]).sum()
    expect = (-np.log(p[2]) + np.log(3)) / 2
    assert nn.softmax_cross_entropy(z, [2, 1])[0] == pytest.approx(expect, rel=1e-12)


def test_cross_entropy_gradient_by_finite_differences():
    z = randn(4, 6)
    labels = np.array([0, 5, 2, 2])
    _, grad = nn.softmax_cross_entropy(z, labels)
    eps = 1e-6
    for idx in [(0, 0), (1, 5), (3, 1), (2, 4)]:
        zp, zm = z.copy(), z.copy()
        zp[idx] += eps
        zm[idx] -= eps
        num = (nn.softmax_cross_entropy(zp, labels)[0] - nn.softmax_cross_entropy(zm, labels)[0]) / (2 * eps)
        assert grad[idx] == pytest.approx(num, rel=1e-6, abs=1e-10)


def test_mse_is_half_sum_averaged_over_batch():
    o = np.array([[1.0, 2.0], [3.0, 5.0]])
    t = np.array([[0.0, 0.0], [3.0, 3.0]])
    loss, grad = nn.mean_squared_error(o, t)
    assert loss == pytest.approx((0.5 * (1 + 4) + 0.5 * 4) / 2)
    np.testing.assert_allclose(grad, (o - t) / 2)
    # the notes' half sum of squares is EuclideanLoss; MSELoss is PyTorch's mean
    loss2 = nn.EuclideanLoss()(np.zeros((2, 3)), np.array([0, 2]))
    assert loss2 == pytest.approx(0.5)
    assert nn.MSELoss()(np.zeros((2, 3)), np.array([0, 2])) == pytest.approx(2 / 6)


@pytest.mark.parametrize("labels, match", [
    ([0, 3], r"labels must lie in \[0, 2\] for 3 classes, got 3"),
    ([-1, 0], r"got -1"),
    ([0], r"labels must have shape \(2,\)"),
])
def test_bad_labels(labels, match):
    with pytest.raises(ValueError, match=match):
        nn.softmax_cross_entropy(np.zeros((2, 3)), labels)


def test_float_labels_and_bad_shapes_refused():
    with pytest.raises(TypeError, match="labels must be integers"):
        nn.softmax_cross_entropy(np.zeros((2, 3)), [0.0, 1.0])
    with pytest.raises(ValueError, match="logits must be 2-dimensional"):
        nn.softmax_cross_entropy(np.zeros(3), [0])
    with pytest.raises(ValueError, match="target shape"):
        nn.mean_squared_error(np.zeros((2, 3)), np.zeros((2, 2)))
    with pytest.raises(RuntimeError, match="before forward"):
        nn.CrossEntropyLoss().backward()


# -- optimiser ---------------------------------------------------------------

def _one_param_model(value, grad):
    fc = nn.Linear(1, 1, bias=False, dtype=np.float64)
    fc.params()["weight"][...] = value
    fc._grads["weight"] = np.array([[grad]])
    return fc


def test_sgd_plain_step():
    fc = _one_param_model(2.0, 0.5)
    nn.SGD(fc, lr=0.1).step()
    assert fc.params()["weight"][0, 0] == pytest.approx(2.0 - 0.05)


def test_sgd_momentum_two_steps_by_hand():
    fc = _one_param_model(1.0, 1.0)
    opt = nn.SGD(fc, lr=0.1, momentum=0.9)
    opt.step()                      # v = 1,    w = 1 - 0.1 = 0.9
    assert fc.params()["weight"][0, 0] == pytest.approx(0.9)
    fc._grads["weight"] = np.array([[0.5]])
    opt.step()                      # v = 0.9 + 0.5 = 1.4, w = 0.9 - 0.14 = 0.76
    assert fc.params()["weight"][0, 0] == pytest.approx(0.76)


def test_sgd_weight_decay_and_nesterov_by_hand():
    fc = _one_param_model(1.0, 0.5)
    opt = nn.SGD(fc, lr=0.1, momentum=0.5, weight_decay=0.1, nesterov=True)
    opt.step()   # g' = 0.6, v = 0.6, update = g' + 0.5 v = 0.9, w = 0.91
    assert fc.params()["weight"][0, 0] == pytest.approx(0.91)
    fc2 = _one_param_model(1.0, 0.5)
    nn.SGD(fc2, lr=0.1, weight_decay=0.1).step()   # w = 1 - 0.1 (0.5 + 0.1)
    assert fc2.params()["weight"][0, 0] == pytest.approx(0.94)


def test_sgd_per_layer_learning_rates():
    model = nn.Sequential(("a", nn.Linear(2, 2, rng=0, dtype=np.float64)),
                          ("b", nn.Linear(2, 2, rng=1, dtype=np.float64)))
    before = {k: v.copy() for k, v in model.params().items()}
    for m in model:
        m._grads = {k: np.ones_like(v) for k, v in m._params.items()}
    opt = nn.SGD(model, lr=0.1, layer_lr={"a": 0.5, "b.bias": 0.0})
    assert opt.lr_of("a.weight") == 0.5 and opt.lr_of("b.weight") == 0.1
    opt.step()
    after = model.params()
    np.testing.assert_allclose(after["a.weight"], before["a.weight"] - 0.5)
    np.testing.assert_allclose(after["a.bias"], before["a.bias"] - 0.5)
    np.testing.assert_allclose(after["b.weight"], before["b.weight"] - 0.1)
    np.testing.assert_allclose(after["b.bias"], before["b.bias"])


def test_online_and_minibatch_updates_agree_for_one_example():
    x = randn(1, 3)
    y = np.array([1])
    models = [nn.Sequential(nn.Linear(3, 2, rng=0, dtype=np.float64)) for _ in range(2)]
    for m in models:
        loss = nn.CrossEntropyLoss()
        loss(m.forward(x), y)
        m.backward(loss.backward())
        nn.SGD(m, lr=0.3).step()
    np.testing.assert_array_equal(models[0].params()["0.weight"], models[1].params()["0.weight"])


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=0.0), "lr must be positive"),
    (dict(lr=-1.0), "lr must be a finite number"),
    (dict(momentum=1.0), "momentum must be below 1"),
    (dict(weight_decay=-0.1), "weight_decay must be"),
    (dict(nesterov=True), "nesterov=True needs a positive momentum"),
    (dict(layer_lr={"nope": 0.1}), "layer_lr key 'nope' matches no parameter"),
])
def test_sgd_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nn.SGD(nn.Sequential(("fc", nn.Linear(2, 2))), **kwargs)


# -- initialisers --------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(nn.init.INITIALIZERS))
def test_initialisers_are_seeded_and_scaled(name):
    shape = (64, 32, 3, 3)
    a = nn.init.initialize(name, shape, rng=7)
    b = nn.init.initialize(name, shape, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.shape == shape
    fan_in, fan_out = 32 * 9, 64 * 9
    var = {"he_uniform": 2 / fan_in, "he_normal": 2 / fan_in, "lecun_uniform": 1 / fan_in,
           "xavier_uniform": 2 / (fan_in + fan_out),
           "xavier_normal": 2 / (fan_in + fan_out)}[name]
    assert a.var() == pytest.approx(var, rel=0.05)
    assert not np.array_equal(a, nn.init.initialize(name, shape, rng=8))


def test_model_construction_is_reproducible():
    a, b = nn.lenet5(rng=3), nn.lenet5(rng=3)
    for (k, v), w in zip(a.params().items(), b.params().values()):
        np.testing.assert_array_equal(v, w, err_msg=k)
    assert not np.array_equal(a.params()["c1.weight"], nn.lenet5(rng=4).params()["c1.weight"])


def test_bad_initialiser_and_rng():
    with pytest.raises(ValueError, match="init must be one of"):
        nn.Linear(2, 2, init="zeros")
    with pytest.raises(TypeError, match="rng must be"):
        nn.Linear(2, 2, rng="seed")


# -- saving and loading ----------------------------------------------------------

def test_save_load_round_trip(tmp_path):
    model = nn.lenet5(pooling="subsampling", sparse_c3=True, rng=0)
    bn_model = nn.Sequential(nn.Conv2d(1, 2, 3, rng=0), nn.BatchNorm2d(2))
    bn_model.forward(randn(4, 1, 5, 5, dtype=np.float32))
    for m, name in ((model, "lenet"), (bn_model, "bn")):
        path = tmp_path / f"{name}.npz"
        m.save(path)
        other = (nn.lenet5(pooling="subsampling", sparse_c3=True, rng=99) if name == "lenet"
                 else nn.Sequential(nn.Conv2d(1, 2, 3, rng=5), nn.BatchNorm2d(2)))
        nn.load_weights(other, path)
        for k, v in m.state_dict().items():
            np.testing.assert_array_equal(other.state_dict()[k], v, err_msg=k)
    x = randn(2, 1, 32, 32, dtype=np.float32)
    other = nn.lenet5(pooling="subsampling", sparse_c3=True, rng=1).load(tmp_path / "lenet.npz")
    np.testing.assert_array_equal(model.forward(x), other.forward(x))


def test_load_wrong_architecture_names_parameter_and_shapes(tmp_path):
    path = tmp_path / "w.npz"
    nn.Sequential(("fc", nn.Linear(4, 3))).save(path)
    with pytest.raises(ValueError, match=r"parameter 'fc.weight' has shape \(2, 4\) in "
                                         r"the model but \(3, 4\) in the weights"):
        nn.Sequential(("fc", nn.Linear(4, 2))).load(path)
    with pytest.raises(ValueError, match="missing fc2.weight.*unexpected fc.weight"):
        nn.Sequential(("fc2", nn.Linear(4, 3))).load(path)
    nn.lenet5(sparse_c3=True).save(path)
    with pytest.raises(ValueError, match="unexpected c3.mask"):
        nn.lenet5(sparse_c3=False).load(path)
    nn.lenet5(sparse_c3=False).save(path)
    with pytest.raises(ValueError, match="missing c3.mask"):
        nn.lenet5(sparse_c3=True).load(path)
    nn.lenet5(pooling="subsampling").save(path)
    with pytest.raises(ValueError, match="unexpected s2.beta, s2.bias, s4.beta, s4.bias"):
        nn.lenet5(pooling="max").load(path)
    state = nn.lenet5(sparse_c3=True).state_dict()
    state["c3.mask"][0, 5] = 1
    with pytest.raises(ValueError, match="'c3.mask': the connection mask"):
        nn.lenet5(sparse_c3=True).load_state_dict(state)


# -- errors --------------------------------------------------------------------

def test_sequential_shape_error_names_both_layers_and_shapes():
    model = nn.Sequential(("conv", nn.Conv2d(1, 4, 3, rng=0)), ("flat", nn.Flatten()),
                          ("fc", nn.Linear(10, 2, rng=0)))
    with pytest.raises(ValueError, match=r"layer 'fc' \(Linear\) cannot take the output of "
                                         r"'flat' with shape \(2, 144\).*expects 10 input "
                                         r"features, got 144"):
        model.forward(np.zeros((2, 1, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"layer 'conv' \(Conv2d\) cannot take the output "
                                         r"of 'input' with shape \(2, 3, 8, 8\)"):
        model.forward(np.zeros((2, 3, 8, 8), np.float32))


@pytest.mark.parametrize("make", [c[1] for c in LAYER_CASES], ids=[c[0] for c in LAYER_CASES])
def test_backward_before_forward_is_an_error(make):
    layer = make()
    with pytest.raises(RuntimeError, match=r"backward\(\) was called before forward\(\)"):
        layer.backward(np.zeros((2, 3)))


def test_layer_argument_errors():
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding must be"):
        nn.Conv2d(3, 4, 3, padding="full")
    with pytest.raises(ValueError, match="requires stride 1"):
        nn.Conv2d(3, 4, 3, padding="same", stride=2)
    with pytest.raises(ValueError, match=r"mask must have shape \(16, 6\)"):
        nn.Conv2d(6, 16, 5, mask=np.ones((6, 16)))
    with pytest.raises(ValueError, match="p must be a probability"):
        nn.Dropout(1.0)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        nn.Linear(2, 2, dtype=np.int32)
    with pytest.raises(ValueError, match="expects 6 maps, got 3"):
        nn.Subsampling(6).forward(np.zeros((1, 3, 4, 4)))
    with pytest.raises(ValueError, match="4-dimensional"):
        nn.MaxPool2d(2).forward(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="activation must be one of"):
        nn.lenet5(activation="gelu")


# -- modes, dtypes, repr, summary -----------------------------------------------------

def test_train_and_eval_modes():
    model = nn.Sequential(nn.Dropout(0.5, rng=0), nn.BatchNorm2d(1))
    x = np.ones((2, 1, 3, 3))
    assert model.training and all(m.training for m in model)
    model.eval()
    assert not any(m.training for m in model)
    np.testing.assert_array_equal(model[0].forward(x), x)
    model.train()
    y = model[0].forward(x)
    assert set(np.unique(y)) <= {0.0, 2.0} and (y == 0).any()


def test_float32_in_float32_out_and_astype():
    model = nn.lenet5(activation="relu", pooling="max")
    x = randn(2, 1, 32, 32, dtype=np.float32)
    assert model.forward(x).dtype == np.float32
    model.backward(np.ones((2, 10), np.float32))
    assert all(g.dtype == np.float32 for g in model.grads().values())
    model.astype(np.float64)
    assert model.dtype == np.float64
    assert model.forward(x.astype(np.float64)).dtype == np.float64


def test_repr_is_readable():
    text = repr(nn.lenet5(pooling="subsampling", sparse_c3=True))
    assert text.startswith("Sequential(\n  (c1): Conv2d(1, 6, kernel_size=(5, 5))")
    assert "(c3): Conv2d(6, 16, kernel_size=(5, 5), connections=60/96)" in text
    assert "(s2): Subsampling(6, kernel_size=2)" in text
    assert "(output): Linear(84, 10)" in text


@pytest.mark.parametrize("kwargs, total", [
    (dict(), 61706), (dict(pooling="subsampling"), 61750), (dict(pooling="max"), 61706),
    (dict(pooling="avg"), 61706), (dict(pooling="subsampling", sparse_c3=True), 61750 - 900),
    (dict(pooling="max", activation="relu"), 61706),
])
def test_summary_of_lenet5(kwargs, total):
    model = nn.lenet5(**kwargs)
    s = summary(model, (1, 32, 32))
    assert s.total_params == total == model.n_params()
    assert s.output_shape == (10,)
    shapes = {r.name: r.output_shape for r in s.rows}
    assert shapes["c1"] == (6, 28, 28) and shapes["s2"] == (6, 14, 14)
    assert shapes["c3"] == (16, 10, 10) and shapes["c5"] == (120, 1, 1)
    assert shapes["f6"] == (84,)


def test_summary_of_other_layers_counts_their_parameters():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding="same", groups=1, rng=0),
                          nn.BatchNorm2d(8), nn.ReLU(), nn.MapCombination(8, 4),
                          nn.AdaptiveAvgPool2d(2), nn.Dropout(0.2), nn.Flatten(),
                          nn.Linear(16, 5), nn.Sigmoid())
    s = summary(model, (3, 10, 10))
    assert s.total_params == model.n_params()
    assert s.output_shape == (5,)


def test_inplace_activations_match_the_plain_ones():
    x = randn(3, 4, 5, 5, dtype=np.float32)
    g = randn(3, 4, 5, 5, dtype=np.float32)
    for plain, inplace in ((nn.ReLU(), nn.ReLU(inplace=True)),
                           (nn.Tanh(1.7159, 2 / 3), nn.Tanh(1.7159, 2 / 3, inplace=True))):
        want_y, want_dx = plain.forward(x), plain.backward(g)
        xc, gc = x.copy(), g.copy()
        y = inplace.forward(xc)
        np.testing.assert_allclose(y, want_y, rtol=1e-6)
        np.testing.assert_allclose(inplace.backward(gc), want_dx, rtol=1e-6, atol=1e-7)
        assert "inplace=True" in repr(inplace)
    # read-only inputs are not overwritten
    ro = x.copy()
    ro.flags.writeable = False
    np.testing.assert_array_equal(nn.ReLU(inplace=True).forward(ro), np.maximum(x, 0))


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=15, deadline=None)
@given(groups=st.sampled_from([1, 2]), cin=st.integers(1, 2), cout=st.integers(1, 2),
       k=st.integers(1, 3), stride=st.integers(1, 2), padding=st.integers(0, 1),
       dilation=st.integers(1, 2), size=st.integers(5, 7), bias=st.booleans(),
       seed=st.integers(0, 100))
def test_random_conv2d_layers_pass_gradcheck(groups, cin, cout, k, stride, padding, dilation,
                                             size, bias, seed):
    layer = nn.Conv2d(cin * groups, cout * groups, k, stride, padding, dilation, groups,
                      bias, rng=seed, n_threads=1)
    x = np.random.default_rng(seed).standard_normal((2, cin * groups, size, size + 1))
    result = gradcheck(layer, x, max_per_array=12, rng=seed)
    assert result.passed, str(result)


def test_separate_models_in_several_threads_agree_with_one_thread():
    import concurrent.futures
    x = randn(4, 1, 32, 32, dtype=np.float32)
    labels = np.array([1, 2, 3, 4])

    def step(seed):
        model = nn.lenet5(activation="relu", pooling="max", rng=seed, n_threads=1)
        loss = nn.CrossEntropyLoss()
        loss(model.forward(x), labels)
        model.backward(loss.backward())
        nn.SGD(model, lr=0.1, momentum=0.9).step()
        return model.params()

    seeds = list(range(6))
    serial = [step(s) for s in seeds]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(step, seeds))
    for a, b in zip(serial, parallel):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_sequential_backward_without_input_gradient(monkeypatch):
    from pyconvnet import _convolution
    calls = []
    real = _convolution.conv2d_backward

    def spy(*args, **kwargs):
        calls.append(kwargs.get("compute_input_grad", True))
        return real(*args, **kwargs)

    monkeypatch.setattr(_convolution, "conv2d_backward", spy)
    x = np.random.default_rng(0).standard_normal((3, 1, 32, 32)).astype(np.float32)
    model = nn.lenet5(rng=0)
    y = model.forward(x)
    g = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    dx = model.backward(g)
    assert dx.shape == x.shape
    full = {k: v.copy() for k, v in model.grads().items()}
    assert calls == [True] * 3
    calls.clear()
    model.forward(x)
    assert model.backward(g, input_grad=False) is None
    assert calls == [True, True, False]          # C5, C3, then C1 without dx
    for name, value in model.grads().items():
        np.testing.assert_array_equal(value, full[name], err_msg=name)


def test_layer_backward_without_input_gradient_when_first_is_not_a_conv():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2, rng=0))
    x = np.ones((2, 1, 2, 2), np.float32)
    model.forward(x)
    assert model.backward(np.ones((2, 2), np.float32), input_grad=False) is None
    assert model.grads()["1.weight"].shape == (2, 4)


# -- one LeNet-5 --------------------------------------------------------------------

LENET5_OPTIONS = [dict(activation=a, pooling=p, c3=c)
                  for a in ("tanh", "relu") for p in ("avg", "max", "subsampling")
                  for c in ("full", "sparse")]


@pytest.mark.parametrize("options", LENET5_OPTIONS,
                         ids=lambda o: "-".join(o.values()))
def test_lenet5_model_and_named_architecture_agree(options):
    from pyconvnet import architectures

    model = summary(nn.lenet5(**options, rng=0), (1, 32, 32))
    named = summary(architectures.get_architecture("lenet5", **options),
                    architectures.default_input_shape("lenet5"))
    spec = summary(architectures.lenet5(**options), (1, 32, 32))
    assert named.total_params == spec.total_params == model.total_params
    assert named.trainable_params == model.trainable_params
    assert named.total_macs == model.total_macs
    assert named.output_shape == model.output_shape == (10,)
    # the model's rows are named c1, s2, ... where the spec's are C1, S2, ...
    by_name = {r.name.lower(): r for r in model.rows}
    layers = [r for r in named.rows if not r.name.endswith(".act") and r.name != "flatten"]
    assert [r.name for r in layers] == ["C1", "S2", "C3", "S4", "C5", "F6", "output"]
    for row in layers:
        other = by_name[row.name.lower()]
        assert (other.output_shape, other.params, other.macs) == \
            (row.output_shape, row.params, row.macs), row.name
    assert nn.lenet5(**options).n_params() == named.total_params


def test_lenet5_defaults_are_one_definition():
    from pyconvnet import architectures

    assert nn.lenet5().n_params() == summary("lenet5").total_params == 61_706
    assert nn.LENET5_C3_TABLE is architectures.LENET5_C3_TABLE
    model = inspect.signature(nn.lenet5).parameters
    spec = inspect.signature(architectures.lenet5).parameters
    for name in ("num_classes", "activation", "pooling", "c3", "output"):
        assert model[name].default == spec[name].default, name
    # the 44 parameters between the two counts: a coefficient and a bias per
    # map of S2 (6 maps) and S4 (16 maps) when pooling is LeCun's subsampling
    assert nn.lenet5(pooling="subsampling").n_params() - nn.lenet5().n_params() == 44


def test_lenet5_older_keyword_names_still_work():
    from pyconvnet import architectures

    assert nn.lenet5(sparse_c3=True).state_dict().keys() == \
        nn.lenet5(c3="sparse").state_dict().keys()
    assert nn.lenet5("relu", "max", True).n_params() == \
        nn.lenet5(activation="relu", pooling="max", c3="sparse").n_params()
    assert architectures.lenet5(act="relu") == architectures.lenet5(activation="relu")
    assert architectures.lenet5(pooling="trainable") == \
        architectures.lenet5(pooling="subsampling")
    with pytest.raises(TypeError, match="give the C3 connection once"):
        nn.lenet5(sparse_c3=False, c3="sparse")
    with pytest.raises(TypeError, match="give the activation once"):
        architectures.lenet5(act="relu", activation="sigmoid")
    with pytest.raises(ValueError, match="output='rbf' exists only as a spec"):
        nn.lenet5(output="rbf")
    with pytest.raises(ValueError, match="pooling must be one of avg, max, subsampling"):
        nn.lenet5(pooling="median")


# -- in-place safety, gradient shapes, non-finite logits, saving paths --------------

def _arrays(obj):
    if isinstance(obj, np.ndarray):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            yield from _arrays(item)


@pytest.mark.parametrize("make, shape", [c[1:] for c in LAYER_CASES],
                         ids=[c[0] for c in LAYER_CASES])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_no_layer_returns_an_array_it_keeps(make, shape, training):
    layer = make().train(training)
    if isinstance(layer, nn.BatchNorm2d) and not training:
        layer.train().forward(randn(*shape)).copy()
        layer.eval()
    y = layer.forward(randn(*shape))
    for kept in _arrays(layer._cache):
        assert not np.shares_memory(y, kept), repr(layer)


@pytest.mark.parametrize("make", [
    lambda: nn.BatchNorm2d(3, affine=False), lambda: nn.BatchNorm2d(3, affine=False).eval(),
    lambda: nn.BatchNorm2d(3), lambda: nn.Sigmoid(), lambda: nn.Tanh(), lambda: nn.ReLU(),
    lambda: nn.Dropout(0.5, rng=0).eval(), lambda: nn.Dropout(0.5, rng=0),
    lambda: nn.Flatten(), lambda: nn.MapCombination(3, 3, rng=0),
    lambda: nn.Conv2d(3, 3, 1, rng=0), lambda: nn.MaxPool2d(1),
], ids=["bn_noaffine", "bn_noaffine_eval", "bn", "sigmoid", "tanh", "relu", "dropout_eval",
        "dropout", "flatten", "mapcombination", "conv", "maxpool"])
@pytest.mark.parametrize("inplace", [lambda: nn.ReLU(inplace=True),
                                     lambda: nn.Tanh(inplace=True)], ids=["relu", "tanh"])
def test_inplace_after_any_layer_gives_the_plain_gradients(make, inplace):
    x, g, warm = randn(4, 3, 3, 3), None, randn(4, 3, 3, 3)
    results = []
    for act in (inplace(), type(inplace())()):
        first = make().astype(np.float64)
        if isinstance(first, nn.BatchNorm2d) and not first.training:
            first.train().forward(warm)
            first.eval()
        model = nn.Sequential(first, act)
        y = model.forward(x.copy())
        g = randn(*y.shape) if g is None else g
        results.append((y.copy(), model.backward(g.copy())))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-12, atol=1e-12)


def test_batchnorm_then_inplace_relu_matches_torch(torch):
    x = randn(4, 3, 5, 5)
    g = randn(4, 3, 5, 5)
    model = nn.Sequential(nn.BatchNorm2d(3, affine=False, dtype=np.float64),
                          nn.ReLU(inplace=True))
    model.forward(x.copy())
    dx = model.backward(g.copy())
    tmodel = torch.nn.Sequential(torch.nn.BatchNorm2d(3, affine=False),
                                 torch.nn.ReLU(inplace=True)).double()
    xt = torch.tensor(x, requires_grad=True)
    tmodel(xt).backward(torch.tensor(g))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("make, shape", [c[1:] for c in LAYER_CASES],
                         ids=[c[0] for c in LAYER_CASES])
def test_backward_refuses_a_gradient_of_another_shape(make, shape):
    layer = make()
    y = layer.forward(randn(*shape))
    broadcastable = np.ones((1,) + y.shape[1:]) if y.ndim > 1 and y.shape[0] > 1 \
        else np.ones(y.shape + (1,))
    for bad in (broadcastable, np.ones(y.shape[:-1] + (y.shape[-1] + 1,)), np.ones(())):
        with pytest.raises(ValueError, match=(
                rf"{type(layer).__name__}\.backward\(\) needs the gradient .* of shape "
                rf"{re.escape(str(y.shape))}; got shape {re.escape(str(bad.shape))}")):
            layer.backward(bad)
    assert layer.backward(np.ones(y.shape)).shape == shape


def test_backward_without_input_gradient_checks_the_shape_too():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, rng=0), nn.Flatten(), nn.Linear(18, 2, rng=0))
    model.forward(randn(2, 1, 5, 5, dtype=np.float32))
    with pytest.raises(ValueError, match=r"Sequential\.backward\(\) .* of shape \(2, 2\); "
                                         r"got shape \(1, 2\)"):
        model.backward(np.ones((1, 2)), input_grad=False)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_cross_entropy_refuses_non_finite_logits(bad):
    z = randn(3, 4)
    z[1, 2] = bad
    with pytest.raises(ValueError, match=r"the logits must be finite, got .* at position "
                                         r"\(1, 2\)"):
        nn.CrossEntropyLoss()(z, [0, 1, 2])
    with pytest.raises(ValueError, match="must be finite"):
        nn.softmax_cross_entropy(z.astype(np.float32), [0, 1, 2], reduction="none")


@pytest.mark.parametrize("name", ["weights", "weights.npz", "dir/weights"])
def test_save_and_load_take_the_same_path(tmp_path, name):
    (tmp_path / "dir").mkdir()
    a, b = nn.Linear(3, 2, rng=0), nn.Linear(3, 2, rng=1)
    nn.save_weights(a, tmp_path / name)
    assert sorted(p.name for p in tmp_path.rglob("*.npz")) == ["weights.npz"]
    nn.load_weights(b, tmp_path / name)
    np.testing.assert_array_equal(b.params()["weight"], a.params()["weight"])
    c = nn.Linear(3, 2, rng=2)
    c.load(str(tmp_path / name))
    np.testing.assert_array_equal(c.params()["weight"], a.params()["weight"])


# -- PyTorch's meaning of the shared names ----------------------------------------

@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_matches_torch(torch, reduction):
    o, t = randn(4, 3, 2), randn(4, 3, 2)
    loss = nn.MSELoss(reduction=reduction)
    value = loss(o, t)
    ot = torch.tensor(o, requires_grad=True)
    lt = torch.nn.MSELoss(reduction=reduction)(ot, torch.tensor(t))
    up = randn(*o.shape) if reduction == "none" else None
    lt.backward(None if up is None else torch.tensor(up))
    np.testing.assert_allclose(value, lt.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(loss.backward(up), ot.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_euclidean_loss_is_the_notes_half_sum_of_squares():
    o, t = randn(5, 3), randn(5, 3)
    value, grad = nn.euclidean_loss(o, t)
    assert value == pytest.approx(sum(0.5 * np.sum((o[n] - t[n]) ** 2) for n in range(5)) / 5)
    np.testing.assert_allclose(grad, (o - t) / 5)
    assert value == pytest.approx(nn.mse_loss(o, t)[0] * 3 / 2)
    assert nn.mean_squared_error(o, t)[0] == value
    assert nn.EuclideanLoss()(o, t) == value
    with pytest.raises(ValueError, match="reduction must be one of 'mean', 'sum', 'none'"):
        nn.MSELoss(reduction="avg")


@pytest.mark.parametrize("options", [
    {}, {"reduction": "sum"}, {"reduction": "none"},
    {"weight": [0.5, 2.0, 1.0, 0.1, 3.0]},
    {"ignore_index": 2}, {"ignore_index": -100},
    {"label_smoothing": 0.2},
    {"weight": [0.5, 2.0, 1.0, 0.1, 3.0], "label_smoothing": 0.3, "ignore_index": 1},
    {"weight": [0.5, 2.0, 1.0, 0.1, 3.0], "label_smoothing": 0.1, "reduction": "sum"},
    {"weight": [0.5, 2.0, 1.0, 0.1, 3.0], "label_smoothing": 0.1, "reduction": "none",
     "ignore_index": 0},
], ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()) if o else "default")
@pytest.mark.parametrize("shape", [(7, 5), (5,), (3, 5, 2, 3)], ids=["NC", "C", "NCHW"])
def test_cross_entropy_options_match_torch(torch, options, shape):
    z = randn(*shape) * 3
    label_shape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    labels = RNG.integers(0, 5, label_shape)
    if len(shape) > 1:
        labels.reshape(-1)[::4] = options.get("ignore_index", -100)
    loss = nn.CrossEntropyLoss(**options)
    value = loss(z, labels)
    topts = dict(options)
    if "weight" in topts:
        topts["weight"] = torch.tensor(topts["weight"], dtype=torch.float64)
    zt = torch.tensor(z, requires_grad=True)
    lt = torch.nn.CrossEntropyLoss(**topts)(zt, torch.tensor(labels))
    up = randn(*label_shape) if options.get("reduction") == "none" and label_shape else None
    lt.backward(None if up is None else torch.tensor(up))
    np.testing.assert_allclose(value, lt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(loss.backward(up), zt.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_cross_entropy_all_ignored_is_nan_as_torch():
    value, grad = nn.softmax_cross_entropy(np.zeros((2, 3)), [-100, -100])
    assert np.isnan(value) and (grad == 0).all()
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        nn.softmax_cross_entropy(np.zeros((2, 3)), [0, 1], weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="label_smoothing must be a number in"):
        nn.CrossEntropyLoss(label_smoothing=1.5)(np.zeros((2, 3)), [0, 1])


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.Conv1d(2, 3, 3, padding=1, rng=0), (2, 7)),
    (lambda: nn.Conv2d(2, 3, 3, stride=2, rng=0), (2, 7, 6)),
    (lambda: nn.Conv3d(2, 3, 2, rng=0), (2, 3, 4, 3)),
    (lambda: nn.MaxPool1d(2), (2, 8)),
    (lambda: nn.MaxPool2d(3, stride=2, padding=1), (2, 7, 6)),
    (lambda: nn.MaxPool3d(2), (2, 4, 4, 4)),
    (lambda: nn.AvgPool1d(2), (2, 8)),
    (lambda: nn.AvgPool2d(2), (2, 6, 6)),
    (lambda: nn.AvgPool3d(2), (2, 4, 4, 4)),
    (lambda: nn.AdaptiveAvgPool2d(2), (3, 5, 5)),
], ids=["conv1d", "conv2d", "conv3d", "maxpool1d", "maxpool2d", "maxpool3d", "avgpool1d",
        "avgpool2d", "avgpool3d", "adaptive"])
def test_unbatched_input_matches_torch(torch, make, shape):
    layer = make().astype(np.float64) if make().params() else make()
    x = randn(*shape)
    y = layer.forward(x)
    assert y.ndim == x.ndim
    dy = randn(*y.shape)
    dx = layer.backward(dy)
    assert dx.shape == x.shape
    batched = layer.forward(x[None])
    np.testing.assert_allclose(y, batched[0], rtol=1e-12)
    np.testing.assert_allclose(dx, layer.backward(dy[None])[0], rtol=1e-12)
    name = type(layer).__name__
    kwargs = {k: getattr(layer, k) for k in ("kernel_size", "stride", "padding")
              if hasattr(layer, k)}
    if name.startswith("Conv"):
        tl = getattr(torch.nn, name)(layer.in_channels, layer.out_channels, **kwargs).double()
        with torch.no_grad():
            tl.weight.copy_(torch.tensor(layer.params()["weight"]))
            tl.bias.copy_(torch.tensor(layer.params()["bias"]))
    elif name == "AdaptiveAvgPool2d":
        tl = torch.nn.AdaptiveAvgPool2d(layer.output_size)
    else:
        tl = getattr(torch.nn, name)(**kwargs)
    xt = torch.tensor(x, requires_grad=True)
    yt = tl(xt)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", [(5,), (2, 5), (2, 3, 5), (2, 1, 4, 5)])
def test_linear_takes_any_leading_dimensions_as_torch(torch, shape):
    fc = nn.Linear(5, 3, rng=0, dtype=np.float64)
    x = randn(*shape)
    y = fc.forward(x)
    dy = randn(*y.shape)
    dx = fc.backward(dy)
    tl = torch.nn.Linear(5, 3).double()
    with torch.no_grad():
        tl.weight.copy_(torch.tensor(fc.params()["weight"]))
        tl.bias.copy_(torch.tensor(fc.params()["bias"]))
    xt = torch.tensor(x, requires_grad=True)
    yt = tl(xt)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(fc.grads()["weight"], tl.weight.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(fc.grads()["bias"], tl.bias.grad.numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match=r"Linear expects 5 input features, got 4"):
        fc.forward(np.zeros((2, 4)))


@pytest.mark.parametrize("nd, kwargs", [
    (1, dict(kernel_size=3, stride=2, padding=1)), (2, dict(kernel_size=2)),
    (2, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (3, dict(kernel_size=2, stride=(1, 2, 2))),
])
def test_pool_layers_match_torch(torch, nd, kwargs):
    shape = (2, 3) + (7, 6, 5)[:nd]
    x = randn(*shape)
    for kind in ("Max", "Avg"):
        layer = getattr(nn, f"{kind}Pool{nd}d")(**kwargs)
        tl = getattr(torch.nn, f"{kind}Pool{nd}d")(**kwargs)
        y = layer.forward(x)
        dy = randn(*y.shape)
        dx = layer.backward(dy)
        xt = torch.tensor(x, requires_grad=True)
        yt = tl(xt)
        yt.backward(torch.tensor(dy))
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, err_msg=repr(layer))
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, err_msg=repr(layer))


@pytest.mark.parametrize("shape", [(2, 3, 7, 6), (3, 7, 6)])
def test_maxpool_return_indices_matches_torch(torch, shape):
    x = randn(*shape)
    pool = nn.MaxPool2d(3, stride=2, padding=1, return_indices=True)
    y, idx = pool.forward(x)
    ty, tidx = torch.nn.MaxPool2d(3, stride=2, padding=1, return_indices=True)(
        torch.tensor(x))
    np.testing.assert_array_equal(y, ty.numpy())
    np.testing.assert_array_equal(idx, tidx.numpy())
    dy = randn(*y.shape)
    plain = nn.MaxPool2d(3, stride=2, padding=1)
    plain.forward(x)
    np.testing.assert_array_equal(pool.backward(dy), plain.backward(dy))
    assert "return_indices=True" in repr(pool)


@pytest.mark.parametrize("nd, divisor", [(2, 3), (2, -2), (3, 5)])
def test_avgpool_divisor_override_matches_torch(torch, nd, divisor):
    x = randn(*((2, 2) + (6, 5, 4)[:nd]))
    layer = getattr(nn, f"AvgPool{nd}d")(2, padding=1, divisor_override=divisor)
    tl = getattr(torch.nn, f"AvgPool{nd}d")(2, padding=1, divisor_override=divisor)
    y = layer.forward(x)
    dy = randn(*y.shape)
    dx = layer.backward(dy)
    xt = torch.tensor(x, requires_grad=True)
    yt = tl(xt)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12)
    assert f"divisor_override={divisor}" in repr(layer)


@pytest.mark.parametrize("momentum", [None, 0.3])
@pytest.mark.parametrize("track", [True, False])
def test_batchnorm_options_match_torch(torch, momentum, track):
    bn = nn.BatchNorm2d(num_features=3, momentum=momentum, track_running_stats=track,
                        dtype=np.float64)
    tbn = torch.nn.BatchNorm2d(3, momentum=momentum, track_running_stats=track).double()
    for i in range(4):
        x = randn(5, 3, 3, 4) * (i + 1) + i
        np.testing.assert_allclose(bn.forward(x), tbn(torch.tensor(x)).detach().numpy(),
                                   rtol=1e-10, atol=1e-10)
    if track:
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            np.testing.assert_allclose(bn.buffers()[name], getattr(tbn, name).numpy(),
                                       rtol=1e-12, err_msg=name)
    else:
        assert bn.buffers() == {}
    bn.eval()
    tbn.eval()
    x = randn(2, 3, 3, 4)
    xt = torch.tensor(x, requires_grad=True)
    yt = tbn(xt)
    g = randn(*x.shape)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(bn.forward(x), yt.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(bn.backward(g), xt.grad.numpy(), rtol=1e-9, atol=1e-10)
    assert sorted(bn.state_dict()) == sorted(tbn.state_dict())


def test_batchnorm_channels_is_an_alias_of_num_features():
    assert nn.BatchNorm2d(channels=4).num_features == 4
    assert nn.BatchNorm2d(4).channels == 4
    with pytest.raises(ValueError, match="disagree"):
        nn.BatchNorm2d(3, channels=4)
    with pytest.raises(TypeError, match="needs num_features"):
        nn.BatchNorm2d()
    with pytest.raises(ValueError, match="momentum must be a number in"):
        nn.BatchNorm2d(3, momentum=2)
    assert "momentum=None" in repr(nn.BatchNorm2d(3, momentum=None))
    assert "track_running_stats=False" in repr(nn.BatchNorm2d(3, track_running_stats=False))


# -- map combinations: the bias and a penalty that sparsifies -----------------------

def test_mapcombination_bias_is_bouvries_b_j():
    mc = nn.MapCombination(3, 2, rng=0, dtype=np.float64)
    mc.params()["bias"][...] = [0.5, -1.0]
    x = randn(2, 3, 4, 4)
    y = mc.forward(x)
    a = mc.alpha()
    for j in range(2):
        np.testing.assert_allclose(y[:, j], sum(a[i, j] * x[:, i] for i in range(3))
                                   + mc.params()["bias"][j], rtol=1e-12)
    dy = randn(*y.shape)
    mc.backward(dy)
    np.testing.assert_allclose(mc.grads()["bias"], dy.sum(axis=(0, 2, 3)), rtol=1e-12)
    assert mc.n_params() == 3 * 2 + 2
    assert summary(nn.Sequential(mc), (3, 4, 4)).total_params == 8
    assert "bias=False" in repr(nn.MapCombination(3, 2, bias=False))


@pytest.mark.parametrize("penalties", [dict(entropy=0.8), dict(entropy=0.3, sparsity=0.5),
                                       dict(sparsity=0.5)])
def test_mapcombination_penalties_pass_gradcheck(penalties):
    model = nn.Sequential(nn.MapCombination(4, 3, rng=1, **penalties), nn.Flatten(),
                          nn.Linear(3, 2, rng=0)).astype(np.float64)
    res = gradcheck(model, randn(3, 4, 1, 1), np.array([0, 1, 1]), nn.CrossEntropyLoss())
    assert res.passed, str(res)


def test_mapcombination_entropy_penalty_value_and_zero_l1_gradient():
    mc = nn.MapCombination(5, 3, entropy=0.5, rng=0, dtype=np.float64)
    a = mc.alpha()
    assert mc.penalty() == pytest.approx(-0.5 * np.sum(a * np.log(a)), rel=1e-12)
    np.testing.assert_allclose(mc.column_entropy(), -np.sum(a * np.log(a), axis=0))
    # Bouvrie's L1 term alone has a zero gradient through the softmax
    l1 = nn.MapCombination(5, 3, bias=False, sparsity=2.0, rng=0, dtype=np.float64)
    y = l1.forward(randn(2, 5, 2, 2))
    l1.backward(np.zeros_like(y))
    np.testing.assert_allclose(l1.grads()["c"], 0.0, atol=1e-15)


def test_entropy_penalty_makes_the_combination_sparser_in_training():
    """Each output learns to copy one input map; with the same data and
    seed, the entropy penalty gives sparser weights (lower entropy, larger
    largest weight) than no penalty or Bouvrie's L1 term, which changes
    nothing."""
    from pyconvnet.nn.train import fit
    gen = np.random.default_rng(0)
    X = gen.standard_normal((256, 4, 2, 2)).astype(np.float64)
    y = (X[:, 0].sum(axis=(1, 2)) > 0).astype(np.int64)
    results = {}
    for name, kwargs in (("none", {}), ("l1", dict(sparsity=1.0)),
                         ("entropy", dict(entropy=0.5))):
        model = nn.Sequential(("mix", nn.MapCombination(4, 2, rng=3, **kwargs)),
                              nn.Flatten(), nn.Linear(8, 2, rng=0)).astype(np.float64)
        fit(model, X, y, epochs=15, batch_size=32, lr=0.2, rng=0)
        results[name] = model["mix"]
    ent = {k: float(m.column_entropy().mean()) for k, m in results.items()}
    np.testing.assert_allclose(results["l1"].params()["c"], results["none"].params()["c"],
                               rtol=1e-10, atol=1e-12)
    assert ent["entropy"] < 0.5 * ent["none"], ent
    assert results["entropy"].alpha().max(axis=0).min() > 0.8
    assert results["none"].alpha().max(axis=0).min() < 0.5


# -- the common pattern in one call ---------------------------------------------------

@pytest.mark.parametrize("kwargs, input_shape, features", [
    (dict(conv=[[16, 16], [32]], pool=2, fc=[64]), (3, 32, 32), 32 * 8 * 8),
    (dict(conv=[8, 8, 8], pool=[2, None, 2], fc=[]), "1x28x28", 8 * 7 * 7),
    (dict(conv=[[4]], pool=None, fc=[10, 5], padding=0, kernel_size=5), (2, 9, 9), 4 * 5 * 5),
    (dict(conv=[], fc=[7]), (3, 4, 4), 48),
])
def test_conv_net_sizes_the_first_linear_layer(kwargs, input_shape, features):
    model = nn.conv_net(input_shape, n_classes=3, rng=0, **kwargs)
    fcs = [layer for layer in model if isinstance(layer, nn.Linear)]
    assert fcs[0].in_features == features
    assert len(fcs) == len(kwargs.get("fc", ())) + 1 and fcs[-1].out_features == 3
    s = summary(model, input_shape)
    assert s.output_shape == (3,) and s.total_params == model.n_params()
    shape = tuple(int(v) for v in str(input_shape).strip("()").replace("x", ",").split(","))
    assert model.forward(randn(2, *shape, dtype=np.float32)).shape == (2, 3)


def test_conv_net_is_the_pattern_layer_by_layer():
    model = nn.conv_net((3, 16, 16), conv=[[4, 6], [8]], pool=2, fc=[12], n_classes=5,
                        activation="tanh", rng=0)
    kinds = [(name, type(layer).__name__) for name, layer in model.layers.items()]
    assert kinds == [("conv1_1", "Conv2d"), ("tanh1_1", "Tanh"), ("conv1_2", "Conv2d"),
                     ("tanh1_2", "Tanh"), ("pool1", "MaxPool2d"), ("conv2_1", "Conv2d"),
                     ("tanh2_1", "Tanh"), ("pool2", "MaxPool2d"), ("flatten", "Flatten"),
                     ("fc1", "Linear"), ("tanh_fc1", "Tanh"), ("fc2", "Linear")]
    assert [model[n].out_channels for n in ("conv1_1", "conv1_2", "conv2_1")] == [4, 6, 8]
    assert model["conv1_1"].padding == "same" and model["conv1_1"].kernel_size == (3, 3)
    again = nn.conv_net((3, 16, 16), conv=[[4, 6], [8]], pool=2, fc=[12], n_classes=5,
                        activation="tanh", rng=0)
    for k, v in model.params().items():
        np.testing.assert_array_equal(v, again.params()[k])
    small = nn.conv_net((1, 6, 6), conv=[[2]], fc=[3], n_classes=2, rng=1).astype(np.float64)
    assert gradcheck(small, randn(2, 1, 6, 6), np.array([0, 1]), nn.CrossEntropyLoss(),
                     max_per_array=20).passed


def test_conv_net_learns_a_simple_task():
    from pyconvnet.nn.train import fit
    gen = np.random.default_rng(0)
    X = gen.standard_normal((128, 1, 8, 8)).astype(np.float32)
    y = (X[:, 0, :4].mean(axis=(1, 2)) > X[:, 0, 4:].mean(axis=(1, 2))).astype(np.int64)
    model = nn.conv_net((1, 8, 8), conv=[[4]], pool=2, fc=[16], n_classes=2, rng=0)
    history = fit(model, X, y, epochs=20, batch_size=16, lr=0.05, momentum=0.9)
    assert history["accuracy"][-1] > 0.9


def test_conv_net_argument_errors():
    with pytest.raises(ValueError, match="activation must be one of 'relu', 'tanh'"):
        nn.conv_net((3, 8, 8), activation="gelu")
    with pytest.raises(ValueError, match=r"conv\[1\] must be a positive channel count"):
        nn.conv_net((3, 8, 8), conv=[[4], []])
    with pytest.raises(ValueError, match="pool has 1 entries for 2 conv blocks"):
        nn.conv_net((3, 8, 8), conv=[4, 4], pool=[2])
    with pytest.raises(ValueError, match=r"input_shape must be \(C, H, W\)"):
        nn.conv_net((8, 8))
    with pytest.raises(ValueError, match="vanishes at layer .pool4."):
        nn.conv_net((3, 8, 8), conv=[4, 4, 4, 4], pool=2)
