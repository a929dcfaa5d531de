"""float32 elementary functions (computed without libm, vectorised) against float64 references,
over their whole range: ordinary values, both tails, values near zero and the special values."""
import math

import numpy as np
import pytest
import rustgrad as rg

F = rg.nn.functional


def grid(lo, hi):
    x = np.linspace(lo, hi, 20011)
    return np.concatenate([x, x * 1e-3, x * 1e-6, [0.0, -0.0]]).astype(np.float32)


def np_gelu(a):
    return 0.5 * a * np.vectorize(math.erfc)(-a / math.sqrt(2))


def np_softplus(a):
    return np.where(a > 20, a, np.log1p(np.exp(a)))


CASES = [
    # (name, rustgrad fn, float64 reference, (lo, hi), max ulp)
    ("exp", rg.exp, np.exp, (-103, 88), 2),
    ("expm1", rg.expm1, np.expm1, (-30, 88), 2),
    ("log", rg.log, np.log, (1e-30, 1e30), 1),
    ("log1p", rg.log1p, np.log1p, (-0.9999, 1e6), 2),
    ("log2", rg.log2, np.log2, (1e-30, 1e30), 2),
    ("log10", rg.log10, np.log10, (1e-30, 1e30), 2),
    ("tanh", rg.tanh, np.tanh, (-12, 12), 3),
    ("erf", rg.erf, np.vectorize(math.erf), (-6, 6), 4),
    ("erfc", rg.erfc, np.vectorize(math.erfc), (-6, 9.5), 8),
    ("gelu", F.gelu, np_gelu, (-13, 13), 8),
    ("softplus", F.softplus, np_softplus, (-80, 30), 4),
    ("elu", F.elu, lambda a: np.where(a > 0, a, np.expm1(a)), (-30, 30), 2),
    ("sin", rg.sin, np.sin, (-8192, 8192), 2),
    ("cos", rg.cos, np.cos, (-8192, 8192), 2),
    ("tan", rg.tan, np.tan, (-8192, 8192), 3),
]


@pytest.mark.parametrize("name,fn,ref,rng,max_ulp", CASES, ids=[c[0] for c in CASES])
def test_float32_within_ulps_of_float64(name, fn, ref, rng, max_ulp):
    x = grid(*rng)
    if name in ("log", "log2", "log10"):  # log-spaced: the whole positive range, subnormals included
        x = np.concatenate([np.geomspace(1e-44, 3e38, 40001), x[x > 0]]).astype(np.float32)
    got = fn(rg.tensor(x)).numpy()
    want = ref(x.astype(np.float64)).astype(np.float32)
    assert got.dtype == np.float32
    np.testing.assert_array_max_ulp(got, want, maxulp=max_ulp)


@pytest.mark.parametrize("name,fn,ref,rng,max_ulp", CASES, ids=[c[0] for c in CASES])
def test_float32_special_values_match_float64(name, fn, ref, rng, max_ulp):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], dtype=np.float32)
    got = fn(rg.tensor(x)).numpy()
    want = fn(rg.tensor(x.astype(np.float64))).numpy().astype(np.float32)
    np.testing.assert_array_equal(got, want)
    real = ~np.isnan(want)  # the sign of a NaN carries no meaning
    np.testing.assert_array_equal(np.signbit(got[real]), np.signbit(want[real]))


@pytest.mark.parametrize("name", ["sin", "cos", "tan"])
def test_sin_cos_tan_beyond_the_polynomial_range(name):
    # Runs holding a finite argument past 8192 are computed by libm: huge arguments stay right,
    # also mixed with small ones, strided, and in place.
    fn, ref = getattr(rg, name), getattr(np, name)
    small = np.linspace(-7, 7, 1001).astype(np.float32)
    big = np.array([8193.5, -1e5, 3.0e8, 1e30, -3.3e38, 12345.678], dtype=np.float32)
    for x in (big, np.concatenate([small, big, [np.nan, np.inf]]).astype(np.float32)):
        got, finite = fn(rg.tensor(x)).numpy(), np.isfinite(x)
        want = ref(x[finite].astype(np.float64)).astype(np.float32)
        np.testing.assert_array_max_ulp(got[finite], want, maxulp=2)
        assert np.isnan(got[~finite]).all()
    m = np.random.default_rng(0).uniform(-50, 50, (64, 48)).astype(np.float32)
    strided = rg.tensor(m).t()[::2]
    np.testing.assert_array_max_ulp(fn(strided).numpy(), ref(m.T[::2].astype(np.float64)).astype(np.float32), maxulp=2)
    t = rg.tensor(m)
    getattr(t, name + "_")()
    np.testing.assert_array_max_ulp(t.numpy(), ref(m.astype(np.float64)).astype(np.float32), maxulp=2)
