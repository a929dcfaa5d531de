"""In-place ops and `out=` write straight into the destination when nothing is recorded.
These cases pin that path against NumPy: operands aliasing the destination, strided and
broadcast destinations, dtype changes that must fall back or fail, and the version counter."""
import numpy as np
import pytest

import rustgrad as torch


def arr(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_add_into_itself_and_a_reversed_view_of_itself():
    a = arr(4, 5)
    t = torch.tensor(a)
    t.add_(t)
    np.testing.assert_array_equal(t.numpy(), a + a)
    t = torch.tensor(a)
    t.add_(t.flip(1))  # reads positions the pass writes: must see the old values
    np.testing.assert_array_equal(t.numpy(), a + a[:, ::-1])



def test_partial_overlap_is_refused_like_pytorch():
    t = torch.tensor(arr(4, 5))
    with pytest.raises(RuntimeError, match="refer to a single memory location"):
        t[1:].mul_(t[:-1])
    s = torch.tensor(arr(4, 4))
    with pytest.raises(RuntimeError, match="refer to a single memory location"):
        s.add_(s.t())
    with pytest.raises(RuntimeError, match="refer to a single memory location"):
        s.copy_(s.t())
    with pytest.raises(RuntimeError, match="refer to a single memory location"):
        torch.add(t[1:], 1, out=t[:-1])
    b = torch.tensor(arr(4, 4))
    b[:2].add_(b[2:])  # same storage, disjoint halves: fine
    a = arr(4, 4)
    np.testing.assert_array_equal(b.numpy()[:2], a[:2] + a[2:])


def test_out_aliasing_an_input():
    a, b = arr(3, 4), arr(3, 4, seed=1)
    x, y = torch.tensor(a), torch.tensor(b)
    r = torch.add(x, y, out=y)
    assert r is y
    np.testing.assert_array_equal(y.numpy(), a + b)
    x, y = torch.tensor(a), torch.tensor(b)
    torch.mul(x, y, out=x)
    np.testing.assert_array_equal(x.numpy(), a * b)


@pytest.mark.parametrize("name, ref", [("exp", np.exp), ("tanh", np.tanh), ("neg", np.negative), ("sqrt", np.sqrt)])
def test_unary_out(name, ref):
    a = np.abs(arr(3, 4)) + 0.1
    fn = getattr(torch, name)
    out = torch.empty(3, 4)
    r = fn(torch.tensor(a), out=out)
    assert r is out
    np.testing.assert_allclose(out.numpy(), ref(a), rtol=1e-6)
    x = torch.tensor(a)
    fn(x, out=x)  # in place through out=
    np.testing.assert_allclose(x.numpy(), ref(a), rtol=1e-6)
    strided = torch.zeros(4, 3).t()  # a non-contiguous destination
    fn(torch.tensor(a), out=strided)
    np.testing.assert_allclose(strided.numpy(), ref(a), rtol=1e-6)
    d = torch.empty(3, 4, dtype=torch.float64)  # float32 result cast into float64
    fn(torch.tensor(a), out=d)
    assert d.dtype == torch.float64
    np.testing.assert_allclose(d.numpy(), ref(a.astype(np.float32)), rtol=1e-6)
    resized = torch.empty(0)
    fn(torch.tensor(a), out=resized)
    assert resized.shape == (3, 4)
    np.testing.assert_allclose(resized.numpy(), ref(a), rtol=1e-6)
    with pytest.raises(RuntimeError, match="out=... arguments don't support automatic differentiation"):
        fn(torch.tensor(a, requires_grad=True), out=torch.empty(3, 4))


def test_strided_destination_and_broadcast_operand():
    a, row = arr(6, 8), arr(8, seed=2)
    t = torch.tensor(a)
    v = t[::2, 1::3]
    v.sub_(torch.tensor(row[1::3]))
    want = a.copy()
    want[::2, 1::3] -= row[1::3]
    np.testing.assert_array_equal(t.numpy(), want)
    t = torch.tensor(a)
    t.relu_()
    np.testing.assert_array_equal(t.numpy(), np.maximum(a, 0))
    t = torch.tensor(a)
    t.t().exp_()
    np.testing.assert_allclose(t.numpy(), np.exp(a), rtol=1e-6)


def test_expanded_destination_is_refused_except_by_fill():
    base = torch.zeros(3)
    t = base.expand(2, 3)
    with pytest.raises(RuntimeError, match="more than one element"):
        t.add_(1)
    t.fill_(2)  # one value for every alias: allowed, as in PyTorch
    assert base.tolist() == [2.0, 2.0, 2.0]
    t.zero_()
    assert base.tolist() == [0.0, 0.0, 0.0]


def test_dtype_changes_fall_back_or_fail_like_pytorch():
    i = torch.tensor([1, 2, 3])
    with pytest.raises(RuntimeError):
        i.add_(1.5)  # float result into an integer tensor
    f = torch.tensor([1.0, 2.0])
    f.add_(torch.tensor([1, 2]))  # integer operand into a float tensor
    np.testing.assert_array_equal(f.numpy(), [2.0, 4.0])
    d = torch.tensor([0.5, 1.5], dtype=torch.float64)
    d.mul_(torch.tensor([2.0, 2.0]))  # float32 operand, float64 destination
    assert d.dtype == torch.float64
    np.testing.assert_array_equal(d.numpy(), [1.0, 3.0])
    out = torch.empty(2, dtype=torch.float64)
    torch.add(torch.tensor([1.0, 2.0]), 1, out=out)  # float32 result cast into a float64 out
    np.testing.assert_array_equal(out.numpy(), [2.0, 3.0])
    b = torch.empty(2, dtype=torch.bool)
    torch.gt(torch.tensor([1.0, -1.0]), 0, out=b)
    assert b.tolist() == [True, False]


def test_copy_and_fill_direct():
    a = arr(5, 7)
    t = torch.empty(5, 7)
    t.copy_(torch.tensor(a))
    np.testing.assert_array_equal(t.numpy(), a)
    t.copy_(torch.tensor(a[0]))  # broadcast source
    np.testing.assert_array_equal(t.numpy(), np.broadcast_to(a[0], (5, 7)))
    i = torch.zeros(3, dtype=torch.int64)
    i.copy_(torch.tensor([1.7, -2.2, 3.9]))  # copy_ casts, truncating like PyTorch
    assert i.tolist() == [1, -2, 3]
    i.fill_(2.9)
    assert i.tolist() == [2, 2, 2]
    t.zero_()
    assert not t.numpy().any()
    with pytest.raises(RuntimeError, match="0-dimension"):
        t.fill_(torch.ones(2))


def test_version_counter_still_catches_a_modified_saved_tensor():
    w = torch.ones(3, requires_grad=True)
    x = torch.ones(3)
    y = (w * x).sum()
    x.add_(1)  # x was saved for w's gradient; the direct write must bump its version
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


def test_recorded_in_place_ops_keep_their_gradient():
    w = torch.tensor(arr(4), requires_grad=True)
    h = w * 2
    h.add_(w)  # recorded: the general path
    h.mul_(3)
    h.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), np.full(4, 9.0))


@pytest.mark.parametrize("n", [1, 63, 64, 65, 128, 200, 4099])
def test_unary_in_place_in_blocks_and_tails(n):
    # In-place unary ops pass through 64-value blocks plus a tail below AVX-512 (test_kernel_variants
    # runs this file at each vector level): every position, NaN and the signed zeros included,
    # must come out as the out-of-place result.
    a = arr(n, seed=n)
    a[::7] = np.nan
    a[1::11] = -0.0
    for name, ref in [("relu_", lambda x: np.where(np.isnan(x) | (x > 0), x, np.float32(0))), ("neg_", np.negative), ("abs_", np.abs), ("exp_", np.exp)]:
        t = torch.tensor(a)
        getattr(t, name)()
        want = ref(a)
        np.testing.assert_allclose(t.numpy(), want, rtol=3e-7 if name == "exp_" else 0, atol=0, equal_nan=True, err_msg=name)
        np.testing.assert_array_equal(np.signbit(t.numpy()), np.signbit(want), err_msg=name)


def clamp_ref(a, lo, hi):
    # PyTorch's clamp: a value inside the bounds is kept as it is (-0.0 against a bound of 0.0
    # stays -0.0, where NumPy's maximum gives 0.0); NaN in `a` or in a bound propagates.
    r = a
    if lo is not None:
        r = np.where(np.isnan(lo) | (r < lo), np.float32(lo), r)
    if hi is not None:
        r = np.where(np.isnan(hi) | (r > hi), np.float32(hi), r)
    return r


@pytest.mark.parametrize("lo, hi", [(-0.5, 0.7), (-0.5, None), (None, 0.25), (-1, 1), (0.7, -0.5), (float("nan"), 1.0), (0.0, 0.0)])
def test_clamp_in_place_matches_clamp(lo, hi):
    # Number bounds on a float tensor are one hardtanh pass straight into the tensor; min > max
    # and NaN bounds take the general path. Every case must equal clamp() and NumPy's max-then-min.
    a = arr(300, seed=3)
    a[::13] = np.nan
    a[1::17] = -0.0
    t = torch.tensor(a)
    v = t._version
    r = t.clamp_(lo, hi)
    assert r is t and t._version > v
    want = clamp_ref(a, lo, hi)
    np.testing.assert_array_equal(t.numpy(), want)
    np.testing.assert_array_equal(t.numpy(), torch.tensor(a).clamp(lo, hi).numpy())
    np.testing.assert_array_equal(np.signbit(t.numpy()), np.signbit(want))


def test_clamp_in_place_on_views_ints_and_tensor_bounds():
    a = arr(6, 8, seed=4)
    t = torch.tensor(a)
    t.t().clamp_(-0.3, 0.3)  # a transposed view of the whole tensor
    np.testing.assert_array_equal(t.numpy(), np.clip(a, -0.3, 0.3))
    t = torch.tensor(a)
    t[:, ::2].clamp_(min=0.1)  # a strided view: only its columns change
    want = a.copy()
    want[:, ::2] = np.maximum(a[:, ::2], np.float32(0.1))
    np.testing.assert_array_equal(t.numpy(), want)
    i = torch.tensor(np.arange(-5, 5))
    i.clamp_(-2, 3)
    assert i.dtype == torch.int64
    np.testing.assert_array_equal(i.numpy(), np.clip(np.arange(-5, 5), -2, 3))
    lo, hi = arr(8, seed=5) - 1, arr(8, seed=6) + 1
    t = torch.tensor(a)
    t.clamp_(torch.tensor(lo), torch.tensor(hi))  # tensor bounds, broadcast over the rows
    np.testing.assert_array_equal(t.numpy(), np.minimum(np.maximum(a, lo), hi))


def test_clamp_in_place_records_its_gradient():
    w = torch.tensor(np.array([-2.0, -0.2, 0.1, 3.0], np.float32), requires_grad=True)
    h = w * 1
    h.clamp_(-1, 1)  # recorded: the general path, clamp's gradient
    h.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [0, 1, 1, 0])
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w.clamp_(-1, 1)


def test_clamp_in_place_without_bounds_raises_like_clamp():
    t = torch.tensor(arr(5))
    for call in (lambda: t.clamp_(), lambda: t.clamp_(None, None), lambda: t.clamp()):
        with pytest.raises(RuntimeError, match="At least one of 'min' or 'max' must not be None"):
            call()
