# nn.functional losses and the loss modules: every loss x reduction x option against a NumPy
# reference (values, input/target gradients by finite differences), gradcheck in float64, values and
# gradients against PyTorch, PyTorch's exception types for bad arguments, and the modules' reduction,
# buffers, state dicts and repr.
import warnings

import numpy as np
import pytest
import rustgrad as rg
from _helpers import assert_same, numeric_grad, params, requires_torch, to_numpy, torch_or_none

F = rg.nn.functional
R3 = ("none", "mean", "sum")
pytestmark = pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")


# ---- NumPy references -------------------------------------------------------------------------

def reduce_np(loss, r):
    return {"none": loss, "mean": np.mean(loss), "sum": np.sum(loss)}[r]


def weighted_np(loss, w, r, by_weight=True):
    loss = loss * w
    if r == "mean":
        return loss.sum() / w.sum() if by_weight else loss.mean()
    return reduce_np(loss, r)


def smooth_l1_np(x, t, beta):
    z = np.abs(x - t)
    return z if beta == 0 else np.where(z < beta, 0.5 * z * z / beta, z - 0.5 * beta)


def huber_np(x, t, delta):
    z = np.abs(x - t)
    return np.where(z < delta, 0.5 * z * z, delta * (z - 0.5 * delta))


def bce_np(x, t, w=1.0):
    with np.errstate(divide="ignore"):
        return -(t * np.maximum(np.log(x), -100) + (1 - t) * np.maximum(np.log1p(-x), -100)) * w


def bce_logits_np(x, t, w=1.0, pw=1.0):
    # -log sigmoid(x) = logaddexp(0, -x): an independent form of PyTorch's stable expression.
    return ((1 - t) * x + (1 + (pw - 1) * t) * np.logaddexp(0, -x)) * w


def kl_np(x, t, r, log_target=False):
    if log_target:
        loss = np.exp(t) * (t - x)
    else:
        loss = np.where(t == 0, 0.0, t * np.log(np.where(t == 0, 1.0, t))) - t * x
    if r == "batchmean":
        return loss.sum() / (x.shape[0] if x.ndim else 1)
    return reduce_np(loss, r)


def log_softmax_np(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def nll_np(logp, t, r, w=None, ignore=-100, ls=0.0):
    """NLL on log-probabilities (N, C, d...) or (C,), with PyTorch's label smoothing: each kept
    sample scores -sum_c ((1 - ls) [c == y] w_y + ls / C w_c) logp_c; 'mean' divides by sum w_y."""
    cd = 0 if logp.ndim == 1 else 1
    c = logp.shape[cd]
    lp = np.moveaxis(logp, cd, -1).reshape(-1, c)
    tt = np.asarray(t).reshape(-1)
    w = np.ones(c) if w is None else w
    keep = tt != ignore
    cls = np.where(keep, tt, 0)
    q = (1 - ls) * np.eye(c)[cls] * w[cls][:, None] + ls / c * w
    terms = -(q * lp).sum(1) * keep
    if r == "none":
        return terms.reshape(np.shape(t))
    return terms.sum() if r == "sum" else terms.sum() / (w[cls] * keep).sum()


def ce_np(x, t, r, w=None, ignore=-100, ls=0.0):
    return nll_np(log_softmax_np(x, 0 if x.ndim == 1 else 1), t, r, w, ignore, ls)


def ce_prob_np(x, t, r, w=None, ls=0.0):
    cd = 0 if x.ndim == 1 else 1
    c = x.shape[cd]
    wb = 1.0 if w is None else w.reshape([c if d == cd else 1 for d in range(x.ndim)])
    loss = -(log_softmax_np(x, cd) * (t * (1 - ls) + ls / c) * wb).sum(cd)
    return loss.sum() / (x.size // c) if r == "mean" else reduce_np(loss, r)


def softmax_np(x, axis):
    return np.exp(log_softmax_np(x, axis))


# ---- inputs -----------------------------------------------------------------------------------

RNG = np.random.default_rng(1234)
X = RNG.standard_normal((3, 4))
Y = RNG.standard_normal((3, 4))
W34 = RNG.uniform(0.5, 2.0, (3, 4))
W4 = RNG.uniform(0.5, 2.0, 4)
P = RNG.uniform(0.05, 0.95, (3, 4))            # probabilities for BCE
T01 = RNG.uniform(0.0, 1.0, (3, 4))            # soft binary targets
LOGITS = RNG.standard_normal((3, 4)) * 6       # includes large logits
LOGP = log_softmax_np(RNG.standard_normal((3, 4)), 1)
Q = softmax_np(RNG.standard_normal((3, 4)), 1)                  # strictly positive distribution
Q0 = Q.copy()
Q0[0, 1] = 0.0                                                   # a zero target probability
X2, T2 = RNG.standard_normal((5, 4)), np.array([1, 0, 3, 2, 3])
T2I = np.array([1, -100, 3, 2, -100])
X1, T1 = RNG.standard_normal(4), np.array(2)
X3, T3 = RNG.standard_normal((2, 4, 3)), RNG.integers(0, 4, (2, 3))
X4, T4 = RNG.standard_normal((2, 4, 3, 2)), RNG.integers(0, 4, (2, 3, 2))
X5, T5 = RNG.standard_normal((2, 4, 2, 2, 2)), RNG.integers(0, 4, (2, 2, 2, 2))
T4I = T4.copy()
T4I[0, 0, 0] = T4I[1, 2, 1] = -100
P2 = softmax_np(RNG.standard_normal((5, 4)), 1)
P3 = softmax_np(RNG.standard_normal((2, 4, 3)), 1)
P1 = softmax_np(RNG.standard_normal(4), 0)


def c(m, a, like):
    """A constant (weight) as a tensor of `like`'s dtype."""
    return m.tensor(np.asarray(a), dtype=like.dtype)


# (id, fn(m, x, t, r), ref(x, t, r), x, t, target differentiable, reductions)
CASES = [
    ("l1", lambda m, x, t, r: m.nn.functional.l1_loss(x, t, reduction=r),
     lambda x, t, r: reduce_np(np.abs(x - t), r), X, Y, True, R3),
    ("l1_broadcast_target", lambda m, x, t, r: m.nn.functional.l1_loss(x, t.expand(3, 4), reduction=r),
     lambda x, t, r: reduce_np(np.abs(x - t), r), X, Y[0], True, R3),
    ("l1_weight", lambda m, x, t, r: m.nn.functional.l1_loss(x, t, reduction=r, weight=c(m, W34, x)),
     lambda x, t, r: weighted_np(np.abs(x - t), W34, r), X, Y, True, R3),
    ("mse_weight", lambda m, x, t, r: m.nn.functional.mse_loss(x, t, reduction=r, weight=c(m, W34, x)),
     lambda x, t, r: weighted_np((x - t) ** 2, W34, r), X, Y, True, R3),
    ("mse", lambda m, x, t, r: m.nn.functional.mse_loss(x, t, reduction=r),
     lambda x, t, r: reduce_np((x - t) ** 2, r), X, Y, True, R3),
] + [
    (f"smooth_l1_beta{b}", lambda m, x, t, r, b=b: m.nn.functional.smooth_l1_loss(x, t, reduction=r, beta=b),
     lambda x, t, r, b=b: reduce_np(smooth_l1_np(x, t, b), r), X, Y, True, R3) for b in (1.0, 0.5, 2.0, 0.0)
] + [
    (f"huber_delta{d}", lambda m, x, t, r, d=d: m.nn.functional.huber_loss(x, t, reduction=r, delta=d),
     lambda x, t, r, d=d: reduce_np(huber_np(x, t, d), r), X, Y, True, R3) for d in (1.0, 0.5, 2.0)
] + [
    ("huber_weight", lambda m, x, t, r: m.nn.functional.huber_loss(x, t, reduction=r, delta=0.7, weight=c(m, W34, x)),
     lambda x, t, r: weighted_np(huber_np(x, t, 0.7), W34, r, by_weight=False), X, Y, True, R3),
    ("bce", lambda m, x, t, r: m.nn.functional.binary_cross_entropy(x, t, reduction=r),
     lambda x, t, r: reduce_np(bce_np(x, t), r), P, T01, True, R3),
    ("bce_weight", lambda m, x, t, r: m.nn.functional.binary_cross_entropy(x, t, c(m, W34, x), reduction=r),
     lambda x, t, r: reduce_np(bce_np(x, t, W34), r), P, T01, True, R3),
    ("bce_weight_broadcast", lambda m, x, t, r: m.nn.functional.binary_cross_entropy(x, t, c(m, W4, x), reduction=r),
     lambda x, t, r: reduce_np(bce_np(x, t, W4), r), P, T01, True, R3),
    ("bce_logits", lambda m, x, t, r: m.nn.functional.binary_cross_entropy_with_logits(x, t, reduction=r),
     lambda x, t, r: reduce_np(bce_logits_np(x, t), r), LOGITS, T01, True, R3),
    ("bce_logits_weight", lambda m, x, t, r: m.nn.functional.binary_cross_entropy_with_logits(
        x, t, c(m, W34, x), reduction=r),
     lambda x, t, r: reduce_np(bce_logits_np(x, t, W34), r), LOGITS, T01, True, R3),
    ("bce_logits_pos_weight", lambda m, x, t, r: m.nn.functional.binary_cross_entropy_with_logits(
        x, t, reduction=r, pos_weight=c(m, W4 * 2, x)),
     lambda x, t, r: reduce_np(bce_logits_np(x, t, pw=W4 * 2), r), LOGITS, T01, True, R3),
    ("bce_logits_both_weights", lambda m, x, t, r: m.nn.functional.binary_cross_entropy_with_logits(
        x, t, c(m, W34, x), reduction=r, pos_weight=c(m, W34[::-1] * 3, x)),
     lambda x, t, r: reduce_np(bce_logits_np(x, t, W34, W34[::-1] * 3), r), LOGITS, T01, True, R3),
    ("kl_div", lambda m, x, t, r: m.nn.functional.kl_div(x, t, reduction=r),
     lambda x, t, r: kl_np(x, t, r), LOGP, Q, True, R3 + ("batchmean",)),
    ("kl_div_zero_target", lambda m, x, t, r: m.nn.functional.kl_div(x, t, reduction=r),
     lambda x, t, r: kl_np(x, t, r), LOGP, Q0, False, R3 + ("batchmean",)),
    ("kl_div_log_target", lambda m, x, t, r: m.nn.functional.kl_div(x, t, reduction=r, log_target=True),
     lambda x, t, r: kl_np(x, t, r, log_target=True), LOGP, np.log(Q), True, R3 + ("batchmean",)),
    ("kl_div_1d_batchmean", lambda m, x, t, r: m.nn.functional.kl_div(x, t, reduction=r),
     lambda x, t, r: kl_np(x, t, r), LOGP[0], Q[0], True, ("batchmean",)),
    ("nll_1d", lambda m, x, t, r: m.nn.functional.nll_loss(x, t, reduction=r),
     lambda x, t, r: nll_np(x, t, r), X1, T1, False, R3),
    ("nll_2d", lambda m, x, t, r: m.nn.functional.nll_loss(x, t, reduction=r),
     lambda x, t, r: nll_np(x, t, r), X2, T2, False, R3),
] + [
    (f"nll_{k}d{opt}", lambda m, x, t, r, kw=kw: m.nn.functional.nll_loss(
        x, t, reduction=r, **{k: (c(m, v, x) if k == "weight" else v) for k, v in kw.items()}),
     lambda x, t, r, kw=kw: nll_np(x, t, r, kw.get("weight"), kw.get("ignore_index", -100)), xa, ta, False, R3)
    for k, xa, ta in ((3, X3, T3), (4, X4, T4), (5, X5, T5))
    for opt, kw in (("", {}), ("_weight", {"weight": W4}), ("_ignore", {"ignore_index": 1}),
                    ("_weight_ignore", {"weight": W4, "ignore_index": 2}))
] + [
    ("nll_4d_ignore_default", lambda m, x, t, r: m.nn.functional.nll_loss(x, t, reduction=r),
     lambda x, t, r: nll_np(x, t, r), X4, T4I, False, R3),
] + [
    (f"cross_entropy_{name}{opt}", lambda m, x, t, r, kw=kw: m.nn.functional.cross_entropy(
        x, t, reduction=r, **{k: (c(m, v, x) if k == "weight" else v) for k, v in kw.items()}),
     lambda x, t, r, kw=kw: ce_np(x, t, r, kw.get("weight"), kw.get("ignore_index", -100),
                                  kw.get("label_smoothing", 0.0)), xa, ta, False, R3)
    for name, xa, ta, ignores in (("2d", X2, T2, True), ("2d_ignored", X2, T2I, False), ("3d", X3, T3, True),
                                  ("4d", X4, T4I, False), ("1d", X1, T1, True))
    for opt, kw in (("", {}), ("_weight", {"weight": W4}), ("_ignore1", {"ignore_index": 1}),
                    ("_ls", {"label_smoothing": 0.2}), ("_ls_weight", {"label_smoothing": 0.3, "weight": W4}),
                    ("_ls_weight_ignore", {"label_smoothing": 0.1, "weight": W4, "ignore_index": 3}),
                    ("_ls1", {"label_smoothing": 1.0}))
    if ignores or "ignore_index" not in kw  # a target holding -100 needs ignore_index=-100
] + [
    (f"cross_entropy_probs_{name}{opt}", lambda m, x, t, r, kw=kw: m.nn.functional.cross_entropy(
        x, t, reduction=r, **{k: (c(m, v, x) if k == "weight" else v) for k, v in kw.items()}),
     lambda x, t, r, kw=kw: ce_prob_np(x, t, r, kw.get("weight"), kw.get("label_smoothing", 0.0)),
     xa, ta, True, R3)
    for name, xa, ta in (("1d", X1, P1), ("2d", X2, P2), ("3d", X3, P3))
    for opt, kw in (("", {}), ("_weight", {"weight": W4}), ("_ls", {"label_smoothing": 0.25}),
                    ("_ls_weight", {"label_smoothing": 0.4, "weight": W4}))
]
ROWS = params([(f"{case[0]}-{r}", *case[1:6], r) for case in CASES for r in case[6]])


def _inputs(m, x, t, target_grad, dtype):
    xt = m.tensor(np.array(x, dtype=dtype), requires_grad=True)
    if np.asarray(t).dtype.kind == "f":
        tt = m.tensor(np.array(t, dtype=dtype), requires_grad=target_grad)
    else:
        tt = m.tensor(np.array(t))
    return xt, tt


@pytest.mark.parametrize("fn, ref, x, t, diff_t, reduction", ROWS)
def test_value_and_numeric_gradients(fn, ref, x, t, diff_t, reduction):
    xt, tt = _inputs(rg, x, t, diff_t, "float64")
    out = fn(rg, xt, tt, reduction)
    expected = np.asarray(ref(x, t, reduction))
    assert_same(out, expected, rtol=1e-10, atol=1e-12)
    g = RNG.standard_normal(expected.shape)
    out.backward(rg.tensor(g))
    if diff_t:
        num_x, num_t = numeric_grad(lambda a, b: ref(a, b, reduction), [x, t], g)
        np.testing.assert_allclose(to_numpy(tt.grad), num_t, rtol=1e-5, atol=1e-6)
    else:
        num_x = numeric_grad(lambda a: ref(a, t, reduction), [x], g)[0]
    np.testing.assert_allclose(to_numpy(xt.grad), num_x, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fn, ref, x, t, diff_t, reduction", ROWS)
def test_gradcheck(fn, ref, x, t, diff_t, reduction):
    xt, tt = _inputs(rg, x, t, diff_t, "float64")
    if diff_t:
        assert rg.autograd.gradcheck(lambda a, b: fn(rg, a, b, reduction), (xt, tt))
    else:
        assert rg.autograd.gradcheck(lambda a: fn(rg, a, tt, reduction), (xt,))


@requires_torch
@pytest.mark.parametrize("fn, ref, x, t, diff_t, reduction", ROWS)
def test_matches_pytorch(fn, ref, x, t, diff_t, reduction):
    runs = []
    for m in (rg, torch_or_none()):  # two separate runs: under the torch test backend rg *is* torch
        xt, tt = _inputs(m, x, t, diff_t, "float32")
        out = fn(m, xt, tt, reduction)
        out.sum().backward()
        runs.append((out, xt.grad, tt.grad if diff_t else None))
    (out_rg, gx_rg, gt_rg), (out_pt, gx_pt, gt_pt) = runs
    assert_same(out_rg, out_pt, rtol=1e-5, atol=1e-6)
    assert_same(gx_rg, gx_pt, rtol=1e-5, atol=1e-6)
    if diff_t:
        assert_same(gt_rg, gt_pt, rtol=1e-5, atol=1e-6)


# ---- second derivatives -----------------------------------------------------------------------

GRADGRAD = ["bce", "bce_weight", "bce_logits", "bce_logits_both_weights", "smooth_l1_beta0.5", "huber_delta1.0",
            "kl_div_log_target", "cross_entropy_2d_ignored_ls_weight", "cross_entropy_probs_2d_ls_weight"]


@pytest.mark.parametrize("name", GRADGRAD)
@pytest.mark.parametrize("reduction", R3)
def test_gradgradcheck(name, reduction):
    fn, _, x, t, diff_t = next(case[1:6] for case in CASES if case[0] == name)
    xt, tt = _inputs(rg, x, t, diff_t, "float64")
    if diff_t:
        assert rg.autograd.gradgradcheck(lambda a, b: fn(rg, a, b, reduction), (xt, tt))
    else:
        assert rg.autograd.gradgradcheck(lambda a: fn(rg, a, tt, reduction), (xt,))


# ---- edge values ------------------------------------------------------------------------------

def test_bce_saturated_inputs_keep_finite_gradients():
    # PyTorch's closed-form backward: (x - y) / max(x (1 - x), 1e-12), and -logit(x) for the target.
    x = rg.tensor([0.0, 1.0, 0.0, 1.0, 1e-30], requires_grad=True)
    y = rg.tensor([0.3, 0.3, 0.0, 1.0, 0.5], requires_grad=True)
    out = F.binary_cross_entropy(x, y, reduction="none")
    assert_same(out, np.array([30.0, 70.0, 0.0, 0.0, 34.538776], np.float32), rtol=1e-6)
    out.sum().backward()
    assert_same(x.grad, np.array([-3e11, 7e11, 0.0, 0.0, -5e11], np.float32), rtol=1e-5)
    assert_same(y.grad, np.array([np.inf, -np.inf, np.inf, -np.inf, 69.07755], np.float32), rtol=1e-5)


def test_bce_with_logits_is_stable_for_large_logits():
    x = rg.tensor([100.0, -100.0, 50.0], requires_grad=True)
    y = rg.tensor([0.0, 1.0, 1.0])
    out = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    assert_same(out, np.array([100.0, 100.0, 0.0], np.float32))
    out.sum().backward()
    assert_same(x.grad, np.array([1.0, -1.0, 0.0], np.float32))


@pytest.mark.parametrize("fn", [F.nll_loss, F.cross_entropy])
@pytest.mark.parametrize("reduction", R3)
def test_1d_input_with_one_element_target_gives_a_0d_loss(fn, reduction):
    # (PyTorch's own backward rejects this shape pairing, so only values are specified.)
    x = rg.tensor(X1)
    out = fn(x, rg.tensor([2]), reduction=reduction)
    assert_same(out, np.asarray(fn(x, rg.tensor(2), reduction="sum").item()), rtol=1e-12)
    torch = torch_or_none()
    if torch is not None:
        tfn = getattr(torch.nn.functional, fn.__name__)
        assert_same(out, tfn(torch.tensor(X1), torch.tensor([2]), reduction=reduction), rtol=1e-12)


def test_cross_entropy_label_smoothing_all_ignored_mean_is_nan():
    out = F.cross_entropy(rg.randn(2, 3), rg.tensor([-100, -100]), label_smoothing=0.1)
    assert np.isnan(out.item())


@pytest.mark.parametrize("reduction, expected", [("none", np.zeros((0, 4), np.float32)),
                                                 ("sum", np.float32(0.0)), ("mean", np.float32(np.nan))])
def test_nll_loss_nd_empty_batch(reduction, expected):
    out = F.nll_loss(rg.zeros(0, 3, 4), rg.zeros(0, 4, dtype=rg.int64), reduction=reduction)
    assert_same(out, expected)


def test_cross_entropy_probs_empty_batch_mean_is_nan():
    assert np.isnan(F.cross_entropy(rg.zeros(0, 3), rg.zeros(0, 3)).item())


def test_nll_loss_nd_equals_flattened_2d():
    x, t = rg.tensor(X4), rg.tensor(T4I)
    flat = F.nll_loss(x.movedim(1, -1).reshape(-1, 4), t.reshape(-1), reduction="none").reshape(2, 3, 2)
    assert_same(F.nll_loss(x, t, reduction="none"), to_numpy(flat))


@pytest.mark.parametrize("fn", [F.nll_loss, F.cross_entropy])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_uint8_targets_are_class_indices(fn, label_smoothing):
    # Only the (N, C) kernel takes Byte targets; the N-d one wants Long (see ERRORS).
    kw = {"label_smoothing": label_smoothing} if fn is F.cross_entropy else {}
    x = rg.tensor(X2)
    expected = fn(x, rg.tensor(T2), reduction="none", **kw)
    assert_same(fn(x, rg.tensor(T2.astype(np.uint8)), reduction="none", **kw), to_numpy(expected))


def test_dtypes_follow_pytorch():
    f32, f64 = rg.float32, rg.float64
    # BCE with logits computes in the target's dtype; BCE casts its weight to the input's dtype.
    assert F.binary_cross_entropy_with_logits(rg.rand(3, dtype=f64), rg.rand(3)).dtype == f32
    assert F.binary_cross_entropy_with_logits(rg.rand(3), rg.rand(3, dtype=f64)).dtype == f64
    assert F.binary_cross_entropy(rg.rand(3), rg.rand(3), weight=rg.rand(3, dtype=f64)).dtype == f32
    assert F.cross_entropy(rg.randn(2, 3), rg.rand(2, 3, dtype=f64)).dtype == f64
    assert F.kl_div(rg.rand(3), rg.rand(3, dtype=f64), reduction="sum").dtype == f64
    assert F.l1_loss(rg.rand(2), rg.rand(2, dtype=f64)).dtype == f64


# ---- warnings ---------------------------------------------------------------------------------

def test_legacy_size_average_and_reduce_warn_and_map_to_reduction():
    x, y = rg.tensor(X), rg.tensor(Y)
    with pytest.warns(UserWarning, match="reduction='sum'"):
        out = F.l1_loss(x, y, size_average=False)
    assert_same(out, np.abs(X - Y).sum())
    with pytest.warns(UserWarning, match="reduction='none'"):
        out = F.cross_entropy(rg.tensor(X2), rg.tensor(T2), reduce=False)
    assert_same(out, ce_np(X2, T2, "none"))


def test_elementwise_mean_is_a_deprecated_alias():
    with pytest.warns(UserWarning, match="elementwise_mean"):
        out = F.smooth_l1_loss(rg.tensor(X), rg.tensor(Y), reduction="elementwise_mean")
    assert_same(out, smooth_l1_np(X, Y, 1.0).mean())


def test_kl_div_mean_warns_and_batchmean_does_not():
    with pytest.warns(UserWarning, match="batchmean"):
        F.kl_div(rg.tensor(LOGP), rg.tensor(Q))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.kl_div(rg.tensor(LOGP), rg.tensor(Q), reduction="batchmean")


# ---- errors -----------------------------------------------------------------------------------

def _grad_weight(m, n):
    return m.ones(n, requires_grad=True)


ERRORS = [
    ("l1_bad_reduction", lambda m: m.nn.functional.l1_loss(m.zeros(2), m.zeros(2), reduction="bad"), ValueError),
    ("l1_weight_bad_reduction", lambda m: m.nn.functional.l1_loss(m.zeros(2), m.zeros(2), reduction="bad",
                                                                  weight=m.ones(2)), ValueError),
    ("l1_weight_bad_size", lambda m: m.nn.functional.l1_loss(m.zeros(2, 3), m.zeros(2, 3), weight=m.ones(3)),
     ValueError),
    ("l1_bad_broadcast", lambda m: m.nn.functional.l1_loss(m.zeros(2, 3), m.zeros(2)), RuntimeError),
    ("mse_bad_reduction", lambda m: m.nn.functional.mse_loss(m.zeros(2), m.zeros(2), reduction="batchmean"),
     ValueError),
    ("mse_weight_bad_size", lambda m: m.nn.functional.mse_loss(m.zeros(2, 3), m.zeros(3), weight=m.ones(3)),
     ValueError),
    ("mse_int", lambda m: m.nn.functional.mse_loss(m.ones(2, dtype=m.int64), m.ones(2, dtype=m.int64)),
     NotImplementedError),
    ("smooth_l1_negative_beta", lambda m: m.nn.functional.smooth_l1_loss(m.zeros(2), m.ones(2), beta=-1.0),
     RuntimeError),
    ("smooth_l1_int", lambda m: m.nn.functional.smooth_l1_loss(m.tensor([0, 1]), m.tensor([0, 3])),
     NotImplementedError),
    ("smooth_l1_bad_reduction", lambda m: m.nn.functional.smooth_l1_loss(m.zeros(2), m.ones(2), reduction="x"),
     ValueError),
    ("huber_zero_delta", lambda m: m.nn.functional.huber_loss(m.zeros(2), m.ones(2), delta=0.0), RuntimeError),
    ("huber_negative_delta", lambda m: m.nn.functional.huber_loss(m.zeros(2), m.ones(2), delta=-2.0), RuntimeError),
    ("huber_int", lambda m: m.nn.functional.huber_loss(m.tensor([0, 1]), m.tensor([0, 3])), NotImplementedError),
    ("huber_weight_bad_size", lambda m: m.nn.functional.huber_loss(m.zeros(2), m.ones(2), weight=m.ones(3)),
     ValueError),
    ("huber_weight_bad_reduction", lambda m: m.nn.functional.huber_loss(m.zeros(2), m.ones(2), reduction="x",
                                                                        weight=m.ones(2)), ValueError),
    ("bce_input_above_one", lambda m: m.nn.functional.binary_cross_entropy(m.tensor([1.5]), m.tensor([0.5])),
     RuntimeError),
    ("bce_input_below_zero", lambda m: m.nn.functional.binary_cross_entropy(m.tensor([-0.1]), m.tensor([0.5])),
     RuntimeError),
    ("bce_input_nan", lambda m: m.nn.functional.binary_cross_entropy(m.tensor([float("nan")]), m.tensor([0.5])),
     RuntimeError),
    ("bce_target_out_of_range", lambda m: m.nn.functional.binary_cross_entropy(m.tensor([0.5]), m.tensor([2.0])),
     RuntimeError),
    ("bce_shape", lambda m: m.nn.functional.binary_cross_entropy(m.rand(3), m.rand(3, 1)), ValueError),
    ("bce_target_dtype", lambda m: m.nn.functional.binary_cross_entropy(m.rand(3), m.rand(3, dtype=m.float64)),
     RuntimeError),
    ("bce_int_target", lambda m: m.nn.functional.binary_cross_entropy(m.rand(3), m.tensor([0, 1, 1])),
     RuntimeError),
    ("bce_int_input", lambda m: m.nn.functional.binary_cross_entropy(m.tensor([0, 1]), m.tensor([0, 1])),
     NotImplementedError),
    ("bce_weight_bad_broadcast", lambda m: m.nn.functional.binary_cross_entropy(m.rand(2, 3), m.rand(2, 3),
                                                                                weight=m.rand(2)), RuntimeError),
    ("bce_weight_requires_grad", lambda m: m.nn.functional.binary_cross_entropy(m.rand(3), m.rand(3),
                                                                                weight=_grad_weight(m, 3)),
     RuntimeError),
    ("bce_bad_reduction", lambda m: m.nn.functional.binary_cross_entropy(m.rand(3), m.rand(3), reduction="x"),
     ValueError),
    ("bce_logits_shape", lambda m: m.nn.functional.binary_cross_entropy_with_logits(m.rand(3), m.rand(3, 1)),
     ValueError),
    ("bce_logits_int_target", lambda m: m.nn.functional.binary_cross_entropy_with_logits(
        m.rand(3), m.tensor([0, 1, 1])), RuntimeError),
    ("bce_logits_int_input", lambda m: m.nn.functional.binary_cross_entropy_with_logits(
        m.tensor([0, 1]), m.rand(2)), NotImplementedError),
    ("bce_logits_weight_bigger", lambda m: m.nn.functional.binary_cross_entropy_with_logits(
        m.rand(2, 3), m.rand(2, 3), weight=m.rand(4, 2, 3)), RuntimeError),
    ("bce_logits_pos_weight_bad", lambda m: m.nn.functional.binary_cross_entropy_with_logits(
        m.rand(2, 3), m.rand(2, 3), pos_weight=m.rand(2)), RuntimeError),
    ("bce_logits_pos_weight_requires_grad", lambda m: m.nn.functional.binary_cross_entropy_with_logits(
        m.rand(3), m.rand(3), pos_weight=_grad_weight(m, 3)), RuntimeError),
    ("kl_int", lambda m: m.nn.functional.kl_div(m.randn(2), m.tensor([0, 1])), RuntimeError),
    ("kl_bad_reduction", lambda m: m.nn.functional.kl_div(m.randn(2), m.rand(2), reduction="x"), ValueError),
    ("nll_0d_input", lambda m: m.nn.functional.nll_loss(m.tensor(1.0), m.tensor(0)), ValueError),
    ("nll_2d_out_of_range", lambda m: m.nn.functional.nll_loss(m.zeros(3, 5), m.tensor([1, 0, 7])), IndexError),
    ("nll_2d_negative", lambda m: m.nn.functional.nll_loss(m.zeros(2, 5), m.tensor([1, -1])), IndexError),
    ("nll_3d_out_of_range", lambda m: m.nn.functional.nll_loss(m.zeros(2, 3, 4), m.full((2, 4), 3)), IndexError),
    ("nll_4d_out_of_range", lambda m: m.nn.functional.nll_loss(m.zeros(2, 3, 4, 5), m.full((2, 4, 5), 5)),
     IndexError),
    ("nll_3d_negative", lambda m: m.nn.functional.nll_loss(m.zeros(2, 3, 4), m.full((2, 4), -1)), IndexError),
    ("nll_float_target", lambda m: m.nn.functional.nll_loss(m.zeros(2, 3, 4), m.zeros(2, 4)), RuntimeError),
    ("nll_3d_uint8_target", lambda m: m.nn.functional.nll_loss(m.zeros(2, 3, 4), m.zeros(2, 4, dtype=m.uint8)),
     RuntimeError),
    ("nll_int32_target", lambda m: m.nn.functional.nll_loss(m.zeros(2, 3), m.zeros(2, dtype=m.int32)),
     RuntimeError),
    ("nll_3d_target_shape", lambda m: m.nn.functional.nll_loss(m.zeros(2, 3, 4), m.zeros(2, 3, dtype=m.int64)),
     RuntimeError),
    ("nll_4d_target_dim", lambda m: m.nn.functional.nll_loss(m.zeros(2, 3, 4, 5),
                                                             m.zeros(2, 4, 5, 1, dtype=m.int64)), RuntimeError),
    ("nll_4d_target_shape", lambda m: m.nn.functional.nll_loss(m.zeros(2, 3, 4, 5),
                                                               m.zeros(2, 4, 4, dtype=m.int64)), RuntimeError),
    ("nll_batch_mismatch", lambda m: m.nn.functional.nll_loss(m.zeros(2, 3, 4), m.zeros(3, 4, dtype=m.int64)),
     ValueError),
    ("nll_2d_batch_mismatch", lambda m: m.nn.functional.nll_loss(m.zeros(3, 5), m.tensor([1, 0])), ValueError),
    ("nll_0d_target_for_batch", lambda m: m.nn.functional.nll_loss(m.zeros(2, 3), m.tensor(1)), ValueError),
    ("nll_1d_input_2_targets", lambda m: m.nn.functional.nll_loss(m.zeros(3), m.tensor([0, 1])), ValueError),
    ("nll_2d_target_for_2d_input", lambda m: m.nn.functional.nll_loss(m.zeros(2, 3), m.zeros(2, 1, dtype=m.int64)),
     RuntimeError),
    ("nll_weight_size", lambda m: m.nn.functional.nll_loss(m.zeros(2, 3), m.tensor([0, 1]), weight=m.ones(2)),
     RuntimeError),
    ("nll_3d_weight_size", lambda m: m.nn.functional.nll_loss(m.zeros(2, 3, 4), m.zeros(2, 4, dtype=m.int64),
                                                              weight=m.ones(2)), RuntimeError),
    ("nll_weight_dtype", lambda m: m.nn.functional.nll_loss(m.zeros(2, 3), m.tensor([0, 1]),
                                                            weight=m.ones(3, dtype=m.float64)), RuntimeError),
    ("nll_weight_requires_grad", lambda m: m.nn.functional.nll_loss(m.zeros(2, 3), m.tensor([0, 1]),
                                                                    weight=_grad_weight(m, 3)), RuntimeError),
    ("nll_int_input", lambda m: m.nn.functional.nll_loss(m.zeros(2, 3, dtype=m.int64), m.tensor([0, 1])),
     NotImplementedError),
    ("ce_bad_reduction", lambda m: m.nn.functional.cross_entropy(m.zeros(2, 3), m.tensor([0, 1]), reduction="x"),
     ValueError),
    ("ce_out_of_range", lambda m: m.nn.functional.cross_entropy(m.zeros(2, 3), m.tensor([0, 3])), IndexError),
    ("ce_ls_out_of_range", lambda m: m.nn.functional.cross_entropy(m.zeros(2, 3), m.tensor([0, 5]),
                                                                   label_smoothing=0.1), IndexError),
    ("ce_3d_ls_out_of_range", lambda m: m.nn.functional.cross_entropy(m.zeros(2, 3, 4), m.full((2, 4), 3),
                                                                      label_smoothing=0.1), IndexError),
    ("ce_ls_above_one", lambda m: m.nn.functional.cross_entropy(m.zeros(2, 3), m.tensor([0, 1]),
                                                                label_smoothing=1.5), RuntimeError),
    ("ce_probs_ls_above_one", lambda m: m.nn.functional.cross_entropy(m.zeros(2, 3), m.rand(2, 3),
                                                                      label_smoothing=1.1), RuntimeError),
    ("ce_probs_int_target", lambda m: m.nn.functional.cross_entropy(m.zeros(2, 3), m.zeros(2, 3, dtype=m.int64)),
     RuntimeError),
    ("ce_probs_ignore_index", lambda m: m.nn.functional.cross_entropy(m.zeros(2, 3), m.rand(2, 3), ignore_index=1),
     RuntimeError),
    ("ce_probs_weight_size", lambda m: m.nn.functional.cross_entropy(m.zeros(2, 3), m.rand(2, 3), weight=m.ones(2)),
     RuntimeError),
    ("ce_float_target_wrong_shape", lambda m: m.nn.functional.cross_entropy(m.zeros(2, 3), m.rand(2)), RuntimeError),
    ("ce_3d_target_shape", lambda m: m.nn.functional.cross_entropy(m.zeros(2, 3, 4), m.zeros(2, 5, dtype=m.int64)),
     RuntimeError),
    ("ce_ls_weight_dtype", lambda m: m.nn.functional.cross_entropy(m.zeros(2, 3), m.tensor([0, 1]), label_smoothing=0.1,
                                                                   weight=m.ones(3, dtype=m.float64)), RuntimeError),
    ("huber_module_delta_type", lambda m: m.nn.HuberLoss(delta="1"), TypeError),
]


@pytest.mark.parametrize("fn, exc", params(ERRORS))
def test_errors(fn, exc):
    with pytest.raises(exc):
        fn(rg)


@requires_torch
@pytest.mark.parametrize("fn, exc", params(ERRORS))
def test_errors_match_pytorch(fn, exc):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(exc):
            fn(torch_or_none())


# ---- modules ----------------------------------------------------------------------------------

def _w(m):
    return m.tensor(W4, dtype=m.float32)


# (class, constructor kwargs(m), functional equivalent(m, module, x, t), x, t, buffers, repr)
MODULES = [
    ("L1Loss", lambda m: {}, lambda m, x, t: m.nn.functional.l1_loss(x, t), X, Y, [], "L1Loss()"),
    ("MSELoss", lambda m: {"reduction": "sum"}, lambda m, x, t: m.nn.functional.mse_loss(x, t, reduction="sum"),
     X, Y, [], "MSELoss()"),
    ("SmoothL1Loss", lambda m: {"beta": 0.5, "reduction": "none"},
     lambda m, x, t: m.nn.functional.smooth_l1_loss(x, t, beta=0.5, reduction="none"), X, Y, [], "SmoothL1Loss()"),
    ("HuberLoss", lambda m: {"delta": 2.0}, lambda m, x, t: m.nn.functional.huber_loss(x, t, delta=2.0), X, Y, [],
     "HuberLoss()"),
    ("KLDivLoss", lambda m: {"reduction": "batchmean", "log_target": True},
     lambda m, x, t: m.nn.functional.kl_div(x, t, reduction="batchmean", log_target=True), LOGP, np.log(Q), [],
     "KLDivLoss()"),
    ("BCELoss", lambda m: {"weight": m.tensor(W34, dtype=m.float32)},
     lambda m, x, t: m.nn.functional.binary_cross_entropy(x, t, m.tensor(W34, dtype=m.float32)), P, T01, ["weight"],
     "BCELoss()"),
    ("BCEWithLogitsLoss", lambda m: {"pos_weight": _w(m), "weight": m.tensor(W34, dtype=m.float32)},
     lambda m, x, t: m.nn.functional.binary_cross_entropy_with_logits(x, t, m.tensor(W34, dtype=m.float32),
                                                                       pos_weight=_w(m)),
     LOGITS, T01, ["weight", "pos_weight"], "BCEWithLogitsLoss()"),
    ("NLLLoss", lambda m: {"weight": _w(m), "ignore_index": 2},
     lambda m, x, t: m.nn.functional.nll_loss(x, t, _w(m), ignore_index=2), X3, T3, ["weight"], "NLLLoss()"),
    ("CrossEntropyLoss", lambda m: {"weight": _w(m), "label_smoothing": 0.2, "reduction": "sum"},
     lambda m, x, t: m.nn.functional.cross_entropy(x, t, _w(m), label_smoothing=0.2, reduction="sum"), X4, T4I,
     ["weight"], "CrossEntropyLoss()"),
    ("CrossEntropyLoss", lambda m: {}, lambda m, x, t: m.nn.functional.cross_entropy(x, t), X2, P2, [],
     "CrossEntropyLoss()"),
]
MODULE_ROWS = params([(f"{row[0]}-{i}", *row) for i, row in enumerate(MODULES)])


def _module_inputs(m, x, t):
    xt = m.tensor(np.array(x, dtype=np.float32), requires_grad=True)
    tt = m.tensor(np.array(t, dtype=np.float32)) if np.asarray(t).dtype.kind == "f" else m.tensor(np.array(t))
    return xt, tt


@pytest.mark.parametrize("name, kwargs, functional, x, t, buffers, text", MODULE_ROWS)
def test_module_matches_functional(name, kwargs, functional, x, t, buffers, text):
    module = getattr(rg.nn, name)(**kwargs(rg))
    assert repr(module) == text
    assert [k for k, _ in module.named_buffers()] == buffers
    assert list(module.state_dict().keys()) == buffers
    assert list(module.parameters()) == []
    xt, tt = _module_inputs(rg, x, t)
    assert_same(module(xt, tt), to_numpy(functional(rg, xt, tt)), rtol=1e-6)


@requires_torch
@pytest.mark.parametrize("name, kwargs, functional, x, t, buffers, text", MODULE_ROWS)
def test_module_matches_pytorch(name, kwargs, functional, x, t, buffers, text):
    runs = []
    for m in (rg, torch_or_none()):
        module = getattr(m.nn, name)(**kwargs(m))
        xt, tt = _module_inputs(m, x, t)
        out = module(xt, tt)
        out.sum().backward()
        runs.append((module, out, xt.grad))
    (mod_rg, out_rg, g_rg), (mod_pt, out_pt, g_pt) = runs
    assert repr(mod_rg) == repr(mod_pt)
    assert mod_rg.reduction == mod_pt.reduction
    sd_rg, sd_pt = mod_rg.state_dict(), mod_pt.state_dict()
    assert list(sd_rg.keys()) == list(sd_pt.keys())
    for k in sd_rg:
        assert_same(sd_rg[k], sd_pt[k])
    assert_same(out_rg, out_pt, rtol=1e-5, atol=1e-6)
    assert_same(g_rg, g_pt, rtol=1e-5, atol=1e-6)


def test_module_defaults_and_attributes():
    nn = rg.nn
    assert nn.CrossEntropyLoss().weight is None
    ce = nn.CrossEntropyLoss()
    assert (ce.reduction, ce.ignore_index, ce.label_smoothing) == ("mean", -100, 0.0)
    assert nn.NLLLoss().ignore_index == -100
    assert (nn.SmoothL1Loss().beta, nn.HuberLoss().delta, nn.KLDivLoss().log_target) == (1.0, 1.0, False)
    bcel = nn.BCEWithLogitsLoss()
    assert bcel.weight is None and bcel.pos_weight is None
    assert nn.HuberLoss(reduction="none", delta=3).delta == 3
    assert isinstance(nn.MSELoss(), rg.nn.Module)


@pytest.mark.parametrize("kwargs, reduction", [({"size_average": False}, "sum"), ({"reduce": False}, "none"),
                                               ({"size_average": True, "reduce": True}, "mean")])
def test_module_legacy_arguments_set_reduction(kwargs, reduction):
    nn = rg.nn
    with pytest.warns(UserWarning, match="size_average and reduce"):
        assert nn.L1Loss(**kwargs).reduction == reduction
    with pytest.warns(UserWarning, match="size_average and reduce"):
        assert nn.CrossEntropyLoss(**kwargs).reduction == reduction


def test_module_weight_buffers_follow_dtype_and_state_dict():
    nn = rg.nn
    m = nn.BCEWithLogitsLoss(weight=rg.ones(2, 3), pos_weight=rg.full((3,), 2.0)).double()
    assert m.weight.dtype == rg.float64 and m.pos_weight.dtype == rg.float64
    other = nn.BCEWithLogitsLoss(weight=rg.zeros(2, 3), pos_weight=rg.zeros(3))
    other.load_state_dict(nn.BCEWithLogitsLoss(weight=rg.ones(2, 3), pos_weight=rg.full((3,), 2.0)).state_dict())
    assert_same(other.pos_weight, np.full(3, 2.0, np.float32))
    x, t = rg.tensor(LOGITS[:2, :3]), rg.tensor(T01[:2, :3])
    assert_same(other(x, t), bce_logits_np(LOGITS[:2, :3], T01[:2, :3], 1.0, 2.0).mean())


@requires_torch
@pytest.mark.parametrize("name, args", [
    ("binary_cross_entropy", lambda m: (m.tensor([0.2, 0.7], requires_grad=True), m.tensor([0.0, 1.0]))),
    ("binary_cross_entropy_with_logits", lambda m: (m.tensor([0.2, -0.7], requires_grad=True), m.tensor([0.0, 1.0]))),
    ("mse_loss", lambda m: (m.tensor([0.2, 0.7], requires_grad=True), m.tensor([0.0, 1.0]))),
    ("cross_entropy", lambda m: (m.tensor([[0.2, 0.7]], requires_grad=True), m.tensor([1]))),
    ("nll_loss", lambda m: (m.tensor([[0.2, 0.7]], requires_grad=True), m.tensor([1]))),
])
def test_loss_grad_fn_names_match_torch(name, args):
    torch = torch_or_none()
    ours = getattr(rg.nn.functional, name)(*args(rg))
    theirs = getattr(torch.nn.functional, name)(*args(torch))
    assert type(ours.grad_fn).__name__ == type(theirs.grad_fn).__name__
