# nn.init: gains and fan computations (against PyTorch's numbers), in-place fills that keep
# leaves leaves, and the distributions' bounds, means and standard deviations on large tensors.

import math
import warnings

import numpy as np
import pytest
import rustgrad as rg
from _helpers import requires_torch, to_numpy, torch_or_none

init = rg.nn.init

GAINS = [("linear", None, 1), ("conv1d", None, 1), ("conv2d", None, 1), ("conv3d", None, 1),
         ("conv_transpose1d", None, 1), ("conv_transpose2d", None, 1), ("conv_transpose3d", None, 1),
         ("sigmoid", None, 1), ("tanh", None, 5.0 / 3), ("relu", None, math.sqrt(2.0)),
         ("leaky_relu", None, math.sqrt(2.0 / (1 + 0.01 ** 2))), ("leaky_relu", 0.2, math.sqrt(2.0 / 1.04)),
         ("leaky_relu", 3, math.sqrt(2.0 / 10)), ("selu", None, 0.75)]


@pytest.mark.parametrize("name, param, gain", GAINS)
def test_calculate_gain(name, param, gain):
    assert init.calculate_gain(name, param) == pytest.approx(gain, rel=1e-15)
    torch = torch_or_none()
    if torch is not None:
        assert init.calculate_gain(name, param) == torch.nn.init.calculate_gain(name, param)


def test_calculate_gain_errors():
    with pytest.raises(ValueError, match="Unsupported nonlinearity gelu"):
        init.calculate_gain("gelu")
    with pytest.raises(ValueError, match="negative_slope True not a valid number"):
        init.calculate_gain("leaky_relu", True)
    with pytest.raises(ValueError, match="negative_slope 0.1 not a valid number"):
        init.calculate_gain("leaky_relu", "0.1")


FANS = [((5, 3), (3, 5)), ((8, 4, 3), (12, 24)), ((16, 3, 5, 5), (75, 400)), ((2, 6, 1, 2, 3), (36, 12)),
        ((0, 3), (3, 0))]


@pytest.mark.parametrize("shape, fans", FANS)
def test_fan_in_and_fan_out(shape, fans):
    t = rg.empty(*shape)
    assert init._calculate_fan_in_and_fan_out(t) == fans
    assert init._calculate_correct_fan(t, "fan_in") == fans[0]
    assert init._calculate_correct_fan(t, "FAN_OUT") == fans[1]
    torch = torch_or_none()
    if torch is not None:
        assert fans == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(*shape))


def test_fan_errors():
    for shape in [(), (4,)]:
        with pytest.raises(ValueError, match="Fan in and fan out can not be computed for tensor with fewer than 2"):
            init._calculate_fan_in_and_fan_out(rg.empty(shape))
        with pytest.raises(ValueError):
            init.xavier_uniform_(rg.empty(shape))
        with pytest.raises(ValueError):
            init.kaiming_normal_(rg.empty(shape))
    with pytest.raises(ValueError, match=r"Mode fan_avg not supported, please use one of \['fan_in', 'fan_out'\]"):
        init.kaiming_uniform_(rg.empty(3, 4), mode="fan_avg")


def stats(t):
    v = to_numpy(t).astype(np.float64)
    return v.min(), v.max(), v.mean(), v.std()


N = (400, 500)  # 200k draws: mean/std within ~1% of their targets


@pytest.mark.parametrize("fill, check", [
    (lambda t: init.uniform_(t, -2.0, 3.0), lambda lo, hi, m, s: lo >= -2 and hi < 3 and abs(m - 0.5) < 0.03
     and abs(s - 5 / math.sqrt(12)) < 0.02),
    (lambda t: init.normal_(t, 1.5, 0.5), lambda lo, hi, m, s: abs(m - 1.5) < 0.01 and abs(s - 0.5) < 0.005),
    (lambda t: init.constant_(t, 0.25), lambda lo, hi, m, s: lo == hi == 0.25),
    (lambda t: init.ones_(t), lambda lo, hi, m, s: lo == hi == 1),
    (lambda t: init.zeros_(t), lambda lo, hi, m, s: lo == hi == 0),
], ids=["uniform", "normal", "constant", "ones", "zeros"])
def test_basic_fills_in_place_on_a_leaf(fill, check):
    t = rg.empty(*N, requires_grad=True)
    out = fill(t)
    assert out is t
    assert t.is_leaf and t.requires_grad and t.grad_fn is None
    assert check(*stats(t))


def test_xavier():
    t = rg.empty(*N)
    bound = math.sqrt(6.0 / (N[0] + N[1])) * 2.0
    lo, hi, m, s = stats(init.xavier_uniform_(t, gain=2.0))
    assert -bound <= lo and hi <= bound and hi > 0.99 * bound and abs(m) < 0.01 * bound
    lo, hi, m, s = stats(init.xavier_normal_(t, gain=2.0))
    assert abs(s - 2.0 * math.sqrt(2.0 / (N[0] + N[1]))) < 0.01 * s and abs(m) < 0.01 * s


@pytest.mark.parametrize("a, mode, nonlinearity", [(0, "fan_in", "leaky_relu"), (math.sqrt(5), "fan_in", "leaky_relu"),
                                                   (0, "fan_out", "relu"), (0.1, "fan_in", "tanh")])
def test_kaiming(a, mode, nonlinearity):
    shape = (200, 100, 3, 3)
    fan = 100 * 9 if mode == "fan_in" else 200 * 9
    std = init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    lo, hi, m, s = stats(init.kaiming_uniform_(rg.empty(*shape), a=a, mode=mode, nonlinearity=nonlinearity))
    bound = math.sqrt(3.0) * std
    assert -bound <= lo and hi <= bound and hi > 0.99 * bound and abs(s - std) < 0.01 * std
    lo, hi, m, s = stats(init.kaiming_normal_(rg.empty(*shape), a=a, mode=mode, nonlinearity=nonlinearity))
    assert abs(s - std) < 0.01 * std and abs(m) < 0.01 * std


def test_kaiming_zero_element_warns():
    for fn in (init.kaiming_uniform_, init.kaiming_normal_):
        with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
            fn(rg.empty(0, 3))


def truncnorm_moments(mean, std, a, b):
    # Moments of N(mean, std^2) truncated to [a, b].
    al, be = (a - mean) / std, (b - mean) / std
    pdf = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda x: (1 + math.erf(x / math.sqrt(2))) / 2  # noqa: E731
    z = cdf(be) - cdf(al)
    mu = (pdf(al) - pdf(be)) / z
    var = 1 + (al * pdf(al) - be * pdf(be)) / z - mu * mu
    return mean + std * mu, std * math.sqrt(var)


@pytest.mark.parametrize("mean, std, a, b", [(0.0, 1.0, -2.0, 2.0), (0.5, 0.2, 0.0, 0.6), (0.0, 1.0, 2.0, 3.0),
                                             (1.0, 2.0, -1.0, 5.0)], ids=["default", "narrow", "tail", "wide"])
def test_trunc_normal(mean, std, a, b):
    t = rg.empty(*N, dtype=rg.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lo, hi, m, s = stats(init.trunc_normal_(t, mean, std, a, b))
    want_m, want_s = truncnorm_moments(mean, std, a, b)
    assert a <= lo and hi <= b
    assert abs(m - want_m) < 0.01 * want_s and abs(s - want_s) < 0.01 * want_s


def test_trunc_normal_warns_far_mean():
    with pytest.warns(UserWarning, match="mean is more than 2 std from"):
        init.trunc_normal_(rg.empty(10), mean=10.0, std=1.0, a=-2.0, b=2.0)


def test_eye_and_dirac():
    np.testing.assert_array_equal(to_numpy(init.eye_(rg.empty(3, 5))), np.eye(3, 5))
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions are supported"):
        init.eye_(rg.empty(3, 4, 5))
    w = to_numpy(init.dirac_(rg.empty(6, 2, 3, 3), groups=2))
    want = np.zeros((6, 2, 3, 3))
    for g in range(2):
        for d in range(2):
            want[g * 3 + d, d, 1, 1] = 1
    np.testing.assert_array_equal(w, want)
    with pytest.raises(ValueError, match="Only tensors with 3, 4, or 5 dimensions are supported"):
        init.dirac_(rg.empty(3, 4))
    with pytest.raises(ValueError, match="dim 0 must be divisible by groups"):
        init.dirac_(rg.empty(5, 2, 3), groups=2)


@requires_torch
@pytest.mark.parametrize("shape, groups", [((4, 4, 3), 1), ((6, 2, 3, 3), 2), ((3, 5, 2, 3, 4), 1), ((8, 2, 5), 4)])
def test_dirac_matches_torch(shape, groups):
    torch = torch_or_none()
    want = torch.nn.init.dirac_(torch.empty(*shape), groups).numpy()
    np.testing.assert_array_equal(to_numpy(init.dirac_(rg.empty(*shape), groups)), want)


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 2, 3)])
def test_orthogonal(shape):
    q = to_numpy(init.orthogonal_(rg.empty(*shape), gain=2.0)).reshape(shape[0], -1).astype(np.float64)
    small = min(q.shape)
    gram = q @ q.T if q.shape[0] == small else q.T @ q
    np.testing.assert_allclose(gram, 4.0 * np.eye(small), atol=1e-5)
    with pytest.raises(ValueError, match="Only tensors with 2 or more dimensions are supported"):
        init.orthogonal_(rg.empty(4))


def test_sparse():
    t = to_numpy(init.sparse_(rg.empty(10, 30), sparsity=0.3, std=0.5))
    assert ((t == 0).sum(0) >= 3).all() and ((t != 0).sum(0) >= 6).all()
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions are supported"):
        init.sparse_(rg.empty(2, 3, 4), 0.5)


@pytest.mark.parametrize("fill", [
    lambda t, g: init.uniform_(t, generator=g), lambda t, g: init.normal_(t, generator=g),
    lambda t, g: init.xavier_uniform_(t, generator=g), lambda t, g: init.kaiming_normal_(t, generator=g),
    lambda t, g: init.trunc_normal_(t, generator=g),
], ids=["uniform", "normal", "xavier_uniform", "kaiming_normal", "trunc_normal"])
def test_generator_makes_draws_reproducible(fill):
    a = fill(rg.empty(20, 30), rg.Generator().manual_seed(123))
    b = fill(rg.empty(20, 30), rg.Generator().manual_seed(123))
    c = fill(rg.empty(20, 30), rg.Generator().manual_seed(124))
    np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    assert not np.array_equal(to_numpy(a), to_numpy(c))


def test_deprecated_aliases():
    with pytest.warns(FutureWarning, match="`nn.init.normal` is now deprecated in favor of `nn.init.normal_`."):
        init.normal(rg.empty(3))
