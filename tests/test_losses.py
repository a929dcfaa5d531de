# mse_loss, nll_loss and cross_entropy (rustgrad.nn.functional): values against NumPy, gradients
# by gradcheck and against NumPy finite differences, values/grads/grad_fn names against PyTorch,
# and PyTorch's errors for bad targets.

import numpy as np
import pytest
import rustgrad as rg
from _helpers import assert_same, numeric_grad, params, requires_torch, to_numpy, torch_or_none

F = rg.nn.functional
REDUCTIONS = ("mean", "sum", "none")


def log_softmax_np(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def nll_np(x, t, w=None, ignore=-100, reduction="mean"):
    x2, t2 = (x[None], np.atleast_1d(t)) if x.ndim == 1 else (x, t)
    w = np.ones(x2.shape[1]) if w is None else w
    keep = t2 != ignore
    cls = np.where(keep, t2, 0)
    wt = np.where(keep, w[cls], 0.0)
    terms = -x2[np.arange(len(t2)), cls] * wt
    if reduction == "none":
        return terms.reshape(np.shape(t))
    return terms.sum() if reduction == "sum" else terms.sum() / wt.sum()


RNG = np.random.default_rng(7)
X = RNG.standard_normal((4, 5))
T = np.array([1, 0, 4, 2])
W = RNG.uniform(0.5, 2.0, 5)

CASES = [
    ("mse", lambda m, x, r: m.nn.functional.mse_loss(x, m.tensor(X * 0.5 + 0.25, dtype=x.dtype), reduction=r),
     lambda x, r: {"mean": np.mean, "sum": np.sum, "none": lambda d: d}[r]((x - (X * 0.5 + 0.25)) ** 2)),
    ("mse_broadcast_target", lambda m, x, r: m.nn.functional.mse_loss(x, m.tensor(X[0] * 0.5, dtype=x.dtype).expand(4, 5), reduction=r),
     lambda x, r: {"mean": np.mean, "sum": np.sum, "none": lambda d: d}[r]((x - X[0] * 0.5) ** 2)),
    ("nll", lambda m, x, r: m.nn.functional.nll_loss(x, m.tensor(T), reduction=r),
     lambda x, r: nll_np(x, T, reduction=r)),
    ("nll_weight", lambda m, x, r: m.nn.functional.nll_loss(x, m.tensor(T), weight=m.tensor(W, dtype=x.dtype), reduction=r),
     lambda x, r: nll_np(x, T, W, reduction=r)),
    ("nll_ignore", lambda m, x, r: m.nn.functional.nll_loss(x, m.tensor([1, -100, 4, 2]), reduction=r),
     lambda x, r: nll_np(x, np.array([1, -100, 4, 2]), reduction=r)),
    ("nll_1d", lambda m, x, r: m.nn.functional.nll_loss(x[1], m.tensor(3), reduction=r),
     lambda x, r: nll_np(x[1], np.array(3), reduction=r)),
    ("cross_entropy", lambda m, x, r: m.nn.functional.cross_entropy(x, m.tensor(T), reduction=r),
     lambda x, r: nll_np(log_softmax_np(x, 1), T, reduction=r)),
    ("cross_entropy_weight", lambda m, x, r: m.nn.functional.cross_entropy(x, m.tensor(T), weight=m.tensor(W, dtype=x.dtype), reduction=r),
     lambda x, r: nll_np(log_softmax_np(x, 1), T, W, reduction=r)),
]
ROWS = params([(f"{n}-{r}", fn, ref, r) for n, fn, ref in CASES for r in REDUCTIONS])


@pytest.mark.parametrize("fn, ref, reduction", ROWS)
def test_loss_value_and_gradient(fn, ref, reduction):
    x = rg.tensor(X, requires_grad=True)
    out = fn(rg, x, reduction)
    expected = np.asarray(ref(X, reduction))
    assert_same(out, expected, rtol=1e-10, atol=1e-12)
    g = RNG.standard_normal(expected.shape)
    out.backward(rg.tensor(g))
    num = numeric_grad(lambda a: np.asarray(ref(a, reduction)), [X], g)[0]
    np.testing.assert_allclose(to_numpy(x.grad), num, rtol=1e-5, atol=1e-7)
    assert rg.autograd.gradcheck(lambda t: fn(rg, t, reduction), (rg.tensor(X, requires_grad=True),))


@requires_torch
@pytest.mark.parametrize("fn, ref, reduction", ROWS)
def test_loss_matches_pytorch(fn, ref, reduction):
    # Two separate runs (under the torch test backend rg *is* torch).
    runs = []
    for m in (rg, torch_or_none()):
        x = m.tensor(X.astype(np.float32), requires_grad=True)
        out = fn(m, x, reduction)
        out.sum().backward()
        runs.append((x, out))
    (x_rg, out_rg), (x_pt, out_pt) = runs
    assert_same(out_rg, out_pt, rtol=1e-5, atol=1e-6)
    assert type(out_rg.grad_fn).__name__ == type(out_pt.grad_fn).__name__
    assert_same(x_rg.grad, x_pt.grad, rtol=1e-5, atol=1e-6)


def test_mse_loss_gradient_reaches_the_target():
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    y = rg.tensor([0.0, 4.0], requires_grad=True)
    F.mse_loss(x, y).backward()
    assert_same(x.grad, np.array([1.0, -2.0], np.float32))
    assert_same(y.grad, np.array([-1.0, 2.0], np.float32))


@pytest.mark.parametrize("target, err", [
    (lambda m: m.tensor([1, 0, 7]), IndexError),
    (lambda m: m.tensor([1.0, 0.0, 2.0]), RuntimeError),
    (lambda m: m.tensor([1, 0]), ValueError),
])
def test_nll_loss_rejects_bad_targets(target, err):
    with pytest.raises(err):
        F.nll_loss(rg.zeros(3, 5), target(rg))


def test_all_ignored_mean_is_nan():
    out = F.nll_loss(rg.zeros(2, 3), rg.tensor([-100, -100]))
    assert np.isnan(out.item())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("fn", [F.nll_loss, F.cross_entropy])
def test_all_ignored_mean_gradient_is_zero(fn, dtype):
    # PyTorch skips ignored samples in the backward: the loss is NaN (0 / 0), the gradient zeros.
    x = rg.tensor(X[:2].astype(dtype), requires_grad=True)
    out = fn(x, rg.tensor([-100, -100]))
    out.backward()
    assert np.isnan(out.item())
    assert_same(x.grad, np.zeros((2, 5), dtype))
