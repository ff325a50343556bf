"""pyconvnet.gradcheck: finds wrong gradients, and passes LeNet-5 end to end."""
import numpy as np
import pytest

from pyconvnet import nn
from pyconvnet.gradcheck import GradcheckResult, gradcheck

RNG = np.random.default_rng(7)


class _WrongLinear(nn.Linear):
    """A linear layer whose weight gradient is off by 1% in one element."""

    def backward(self, grad):
        dx = super().backward(grad)
        self._grads["weight"] = self._grads["weight"].copy()
        self._grads["weight"][1, 2] *= 1.01
        return dx


class _WrongInput(nn.Tanh):
    """tanh with the derivative of the plain function missing its square."""

    def backward(self, grad):
        t = self._cached()
        return grad * (1 - t)


def test_result_fields_and_passing():
    layer = nn.Linear(4, 3, rng=0)
    res = gradcheck(layer, RNG.standard_normal((5, 4)))
    assert isinstance(res, GradcheckResult)
    assert res.passed and bool(res)
    assert res.max_rel_error < 1e-7
    assert set(res.errors) == {"weight", "bias", "input"}
    assert res.checked == 12 + 3 + 20
    assert res.where[0] in res.errors and len(res.where[1]) in (1, 2)
    assert "gradcheck passed" in str(res)


def test_finds_a_wrong_parameter_gradient_and_where_it_is():
    model = nn.Sequential(("fc", _WrongLinear(4, 3, rng=0)), ("act", nn.Tanh()))
    res = gradcheck(model, RNG.standard_normal((5, 4)))
    assert not res.passed
    assert res.where == ("fc.weight", (1, 2))
    assert res.max_rel_error == pytest.approx(0.01 / 1.01, rel=1e-3)
    assert res.errors["fc.bias"] < 1e-7
    assert "FAILED" in str(res)


def test_finds_a_wrong_input_gradient():
    res = gradcheck(_WrongInput(), RNG.standard_normal((3, 4)))
    assert not res.passed and res.where[0] == "input"


def test_does_not_modify_the_model():
    model = nn.Sequential(nn.Linear(3, 2, rng=0))
    before = {k: v.copy() for k, v in model.params().items()}
    gradcheck(model, RNG.standard_normal((2, 3)), [0, 1], nn.CrossEntropyLoss())
    assert model.dtype == np.float32
    for k, v in model.params().items():
        np.testing.assert_array_equal(v, before[k])


def test_dropout_masks_are_replayed():
    model = nn.Sequential(nn.Linear(6, 8, rng=0), nn.Dropout(0.5, rng=3), nn.Linear(8, 3, rng=1))
    assert gradcheck(model, RNG.standard_normal((4, 6)), [0, 1, 2, 0],
                     nn.CrossEntropyLoss()).passed


def test_penalty_is_part_of_the_checked_loss():
    model = nn.Sequential(nn.MapCombination(3, 2, sparsity=0.3, rng=0), nn.Flatten(),
                          nn.Linear(8, 2, rng=0, dtype=np.float64))
    res = gradcheck(model, RNG.standard_normal((2, 3, 2, 2)), np.array([0, 1]),
                    nn.MSELoss())
    assert res.passed, str(res)


def test_selected_parameters_and_sampling():
    model = nn.Sequential(("a", nn.Linear(30, 20, rng=0)), ("b", nn.Linear(20, 2, rng=0)))
    res = gradcheck(model, RNG.standard_normal((3, 30)), params=["b.weight"],
                    check_input=False)
    assert list(res.errors) == ["b.weight"] and res.checked == 40
    res = gradcheck(model, RNG.standard_normal((3, 30)), max_per_array=5)
    assert res.checked == 5 + 5 + 5 + 2 + 5 and res.passed   # b.bias has only 2


def test_bad_arguments():
    with pytest.raises(ValueError, match="no parameter 'nope'"):
        gradcheck(nn.Linear(2, 2), np.ones((1, 2)), params=["nope"])
    with pytest.raises(ValueError, match="nothing to check"):
        gradcheck(nn.ReLU(), np.ones((1, 2)), check_input=False)
    with pytest.raises(ValueError, match="eps must be positive"):
        gradcheck(nn.ReLU(), np.ones((1, 2)), eps=0)


@pytest.mark.parametrize("kwargs", [
    dict(activation="tanh", pooling="subsampling", sparse_c3=True),
    dict(activation="relu", pooling="max"),
    dict(activation="tanh", pooling="avg"),
], ids=["tanh-subsampling-sparse", "relu-max", "tanh-avg"])
def test_lenet5_end_to_end(kwargs):
    model = nn.lenet5(**kwargs, rng=1, n_threads=1)
    x = RNG.standard_normal((2, 1, 32, 32))
    res = gradcheck(model, x, np.array([3, 7]), nn.CrossEntropyLoss(), max_per_array=6,
                    rng=2)
    assert res.passed, str(res)
    assert set(res.errors) == set(model.params()) | {"input"}
