# Elementwise forward ops against NumPy: arithmetic with broadcasting and Python scalars on both
# sides, comparisons, bitwise ops, casts (to/float/long/type), clone, and in-place ops keeping
# identity and storage. Error cases live in test_errors.py.
import operator

import numpy as np
import pytest
import rustgrad as rg
from _helpers import assert_same, pair, params, torch_or_none


def np_ref(res):
    """NumPy's result cast the way rustgrad types it (float64 -> float32 for our inputs)."""
    res = np.asarray(res)
    return res.astype(np.float32) if res.dtype == np.float64 else res


# (id, shape a, layout a, shape b, layout b)
BROADCAST = [
    ("same", (3, 4), "contig", (3, 4), "contig"),
    ("same_strided", (3, 4), "T", (3, 4), "step"),
    ("row", (3, 4), "contig", (4,), "contig"),
    ("row_strided", (3, 4), "step", (4,), "step"),
    ("outer", (3, 1), "contig", (1, 4), "T"),
    ("3d", (2, 1, 4), "T", (3, 1), "contig"),
    ("0d_left", (), "contig", (3,), "contig"),
    ("0d_right", (2, 3), "T", (), "contig"),
    ("empty", (0, 3), "contig", (3,), "contig"),
]
BINARY = [("add", operator.add), ("sub", operator.sub), ("mul", operator.mul),
          ("truediv", operator.truediv), ("floordiv", operator.floordiv),
          ("mod", operator.mod), ("pow", operator.pow)]


@pytest.mark.parametrize("dtype", ["float32", "int64", "int32"])
@pytest.mark.parametrize("op", params(BINARY))
@pytest.mark.parametrize("sa, la, sb, lb", params(BROADCAST))
def test_binary_broadcast(op, sa, la, sb, lb, dtype):
    pow_ = op is operator.pow
    x, a = pair(sa, dtype, la, low=1 if pow_ else -4, seed=1)
    y, b = pair(sb, dtype, lb, low=0 if pow_ else -4, high=3 if pow_ else 4, seed=2,
                nonzero=True)
    assert_same(op(x, y), np_ref(op(a, b)))


FUNCTIONS = [
    ("rg.add", lambda x, y: rg.add(x, y), operator.add),
    ("rg.add_alpha", lambda x, y: rg.add(x, y, alpha=2), lambda a, b: a + 2 * b),
    ("method_add_alpha", lambda x, y: x.add(y, alpha=-1), lambda a, b: a - b),
    ("rg.sub_alpha", lambda x, y: rg.sub(x, y, alpha=3), lambda a, b: a - 3 * b),
    ("rg.mul", lambda x, y: rg.mul(x, y), operator.mul),
    ("method_mul", lambda x, y: x.mul(y), operator.mul),
    ("rg.div", lambda x, y: rg.div(x, y), operator.truediv),
    ("method_div", lambda x, y: x.div(y), operator.truediv),
    ("rg.pow", lambda x, y: rg.pow(x.abs(), 2), lambda a, b: np.abs(a) ** 2),
    ("rg.abs", lambda x, y: rg.abs(x), lambda a, b: np.abs(a)),
    ("rg.neg", lambda x, y: rg.neg(x), lambda a, b: -a),
    ("method_neg", lambda x, y: x.neg(), lambda a, b: -a),
]


@pytest.mark.parametrize("dtype", ["float32", "int64"])
@pytest.mark.parametrize("fn, ref", params(FUNCTIONS))
def test_functional_forms(fn, ref, dtype):
    x, a = pair((3, 4), dtype, "T", seed=1)
    y, b = pair((4,), dtype, seed=2, nonzero=True)
    assert_same(fn(x, y), np_ref(ref(a, b)))


def test_out_argument():
    (x, a), (y, b) = pair((3, 4), seed=1), pair((3, 4), "float32", "T", seed=2)
    for fn, ref in [(rg.mul, a * b), (rg.add, a + b), (rg.sub, a - b)]:
        out = rg.empty(3, 4)
        ptr = out.data_ptr()
        res = fn(x, y, out=out)
        assert res is out and out.data_ptr() == ptr
        assert_same(out, ref)


# (id, fn, data kind) -- the same lambda runs on tensors and arrays
SCALAR = [
    ("add", lambda x: x + 2, "any"),
    ("radd", lambda x: 2 + x, "any"),
    ("add_float", lambda x: x + 2.5, "any"),
    ("sub", lambda x: x - 2, "any"),
    ("rsub", lambda x: 2 - x, "any"),
    ("rsub_float", lambda x: 0.5 - x, "any"),
    ("mul", lambda x: x * 3, "any"),
    ("rmul_float", lambda x: 0.5 * x, "any"),
    ("div", lambda x: x / 2, "any"),
    ("rdiv", lambda x: 2 / x, "any"),
    ("floordiv", lambda x: x // 3, "any"),
    ("rfloordiv", lambda x: 7 // x, "any"),
    ("floordiv_neg", lambda x: x // -3, "any"),
    ("mod", lambda x: x % 3, "any"),
    ("rmod", lambda x: 7 % x, "any"),
    ("rmod_neg", lambda x: -7 % x, "any"),
    ("mod_neg", lambda x: x % -3, "any"),
    ("mod_float", lambda x: x % 2.5, "any"),
    ("pow", lambda x: x ** 2, "any"),
    ("pow_float", lambda x: x ** 0.5, "pos"),
    ("rpow", lambda x: 2 ** x, "pos"),
    ("rpow_float", lambda x: 1.5 ** x, "any"),
    ("neg", lambda x: -x, "any"),
    ("pos", lambda x: +x, "any"),
    ("abs", lambda x: abs(x), "any"),
    ("chain", lambda x: (x * 2 + 1) / 4 - x, "any"),
]


@pytest.mark.parametrize("layout", ["contig", "T"])
@pytest.mark.parametrize("dtype", ["float32", "int64", "int32"])
@pytest.mark.parametrize("fn, kind", params(SCALAR))
def test_scalar_ops(fn, kind, dtype, layout):
    low = 1 if kind == "pos" else -4
    t, a = pair((3, 4), dtype, layout, low=low, nonzero=True)
    assert_same(fn(t), np_ref(fn(a)))


def test_python_floor_semantics():
    t = rg.tensor([-7, -6, 6, 7])
    assert (t // 4).tolist() == [-2, -2, 1, 1] and (t % 4).tolist() == [1, 2, 2, 3]
    assert (t % -4).tolist() == [-3, -2, -2, -1] and (t // -4).tolist() == [1, 1, -2, -2]
    f = rg.tensor([-7.5, 7.5])
    assert (f // 2).tolist() == [-4.0, 3.0] and (f % 2).tolist() == [0.5, 1.5]


def test_float_division_by_zero():
    t = rg.tensor([1.0, -1.0, 0.0])
    r = (t / 0).tolist()
    assert r[0] == float("inf") and r[1] == float("-inf") and r[2] != r[2]
    assert (rg.tensor([1, 0]) / 0).tolist()[0] == float("inf")


COMPARE = [("lt", operator.lt), ("le", operator.le), ("gt", operator.gt),
           ("ge", operator.ge), ("eq", operator.eq), ("ne", operator.ne)]


@pytest.mark.parametrize("op", params(COMPARE))
@pytest.mark.parametrize("sa, la, sb, lb", params(BROADCAST))
def test_comparison(op, sa, la, sb, lb):
    x, a = pair(sa, "float32", la, low=-1, high=1, seed=1)
    y, b = pair(sb, "int64", lb, low=-1, high=1, seed=2)
    assert_same(op(x, y), op(a, b))
    assert_same(op(x, 0.5), op(a, 0.5))
    assert_same(op(1, y), op(1, b))


@pytest.mark.parametrize("name, op", COMPARE)
def test_comparison_methods(name, op):
    x, a = pair((3, 4), "int64", "T", low=-1, high=1, seed=1)
    y, b = pair((4,), "int64", low=-1, high=1, seed=2)
    assert_same(getattr(x, name)(y), op(a, b))
    assert_same(getattr(rg, name)(x, y), op(a, b))
    assert_same(getattr(x, name)(0), op(a, 0))


BITWISE = [("and", operator.and_), ("or", operator.or_), ("xor", operator.xor)]


@pytest.mark.parametrize("dtype", ["bool", "int64", "int32", "uint8"])
@pytest.mark.parametrize("op", params(BITWISE))
def test_bitwise(op, dtype):
    x, a = pair((3, 4), dtype, "T", low=-8, high=8, seed=1)
    y, b = pair((4,), dtype, low=-8, high=8, seed=2)
    assert_same(op(x, y), op(a, b))
    s = True if dtype == "bool" else 5
    assert_same(op(x, s), op(a, s))
    assert_same(op(s, x), op(s, a))
    assert_same(~x, ~a)


def test_bitwise_mixed_bool_int():
    x, y = rg.tensor([True, False, True]), rg.tensor([3, 3, -2])
    assert_same(x & y, np.array([1, 0, 0]))
    assert_same(x | y, np.array([3, 3, -1]))
    assert_same(~rg.tensor([5, -1]), np.array([-6, 0]))
    assert_same(rg.logical_not(x), np.array([False, True, False]))


CASTS = [
    ("float_to_long", [-1.7, -0.5, 0.5, 1.7], "float32", lambda t: t.long(), [-1, 0, 0, 1],
     "int64"),
    ("float_to_int", [-1.7, 2.9], "float32", lambda t: t.int(), [-1, 2], "int32"),
    ("float_to_bool", [0.0, -0.5, 2.0], "float32", lambda t: t.bool(), [False, True, True], "bool"),
    ("bool_to_float", [True, False], "bool", lambda t: t.float(), [1.0, 0.0], "float32"),
    ("int_to_double", [1, -2], "int64", lambda t: t.double(), [1.0, -2.0], "float64"),
    ("double_to_float", [0.1, 1e-50], "float64", lambda t: t.float(), [0.1, 0.0], "float32"),
    ("long_to_u8_wraps", [257, -1, 3], "int64", lambda t: t.to(rg.uint8), [1, 255, 3], "uint8"),
    ("long_to_int32", [2**31 + 5, -3], "int64", lambda t: t.int(), [-(2**31) + 5, -3], "int32"),
    ("u8_to_long", [255, 0], "uint8", lambda t: t.long(), [255, 0], "int64"),
    ("to_dtype_kw", [1, 2], "int64", lambda t: t.to(dtype=rg.float64), [1.0, 2.0], "float64"),
    ("to_device_dtype", [1, 2], "int64", lambda t: t.to("cpu", rg.float32), [1.0, 2.0], "float32"),
    ("type_dtype", [1.5, 2.5], "float32", lambda t: t.type(rg.int32), [1, 2], "int32"),
    ("to_other_tensor", [1, 2], "int64", lambda t: t.to(rg.zeros(1, dtype=rg.float64)),
     [1.0, 2.0], "float64"),
]


@pytest.mark.parametrize("values, src, fn, expected, dst", params(CASTS))
def test_casts(values, src, fn, expected, dst):
    t = rg.tensor(values, dtype=getattr(rg, src))
    assert_same(fn(t), np.array(expected), dtype=dst)
    assert_same(fn(t.flip(0)), np.array(expected[::-1]), dtype=dst)


def test_cast_returns_copy_and_same_dtype_returns_self():
    t = rg.tensor([1.0, 2.0])
    assert t.to(rg.float32).data_ptr() == t.data_ptr() and t.float().data_ptr() == t.data_ptr()
    d = t.double()
    d[0] = 9.0
    assert t.tolist() == [1.0, 2.0]


@pytest.mark.parametrize("name, type_name", [
    ("float32", "FloatTensor"), ("float64", "DoubleTensor"), ("int64", "LongTensor"),
    ("int32", "IntTensor"), ("uint8", "ByteTensor"), ("bool", "BoolTensor")])
def test_type_string(name, type_name):
    assert rg.zeros(1, dtype=getattr(rg, name)).type().replace("torch.", "rustgrad.") == \
        f"rustgrad.{type_name}"


@pytest.mark.parametrize("layout", ["contig", "T", "step"])
def test_clone(layout):
    t, a = pair((3, 4), "float32", layout)
    c = t.clone()
    assert_same(c, a)
    assert c.data_ptr() != t.data_ptr()
    c.fill_(0)
    assert_same(t, a)
    assert_same(rg.clone(t), a)


# (id, in-place op (t, other) -> result, NumPy reference (a, b) -> new a)
IN_PLACE = [
    ("add_", lambda t, o: t.add_(o), lambda a, b: a + b),
    ("add_alpha", lambda t, o: t.add_(o, alpha=2), lambda a, b: a + 2 * b),
    ("add_scalar", lambda t, o: t.add_(2), lambda a, b: a + 2),
    ("sub_", lambda t, o: t.sub_(o), lambda a, b: a - b),
    ("sub_alpha", lambda t, o: t.sub_(o, alpha=3), lambda a, b: a - 3 * b),
    ("mul_", lambda t, o: t.mul_(o), lambda a, b: a * b),
    ("mul_scalar", lambda t, o: t.mul_(0.5), lambda a, b: a * 0.5),
    ("div_", lambda t, o: t.div_(o), lambda a, b: a / b),
    ("div_scalar", lambda t, o: t.div_(4), lambda a, b: a / 4),
    ("iadd", lambda t, o: operator.iadd(t, o), lambda a, b: a + b),
    ("iadd_scalar", lambda t, o: operator.iadd(t, 1), lambda a, b: a + 1),
    ("isub", lambda t, o: operator.isub(t, o), lambda a, b: a - b),
    ("imul", lambda t, o: operator.imul(t, o), lambda a, b: a * b),
    ("itruediv", lambda t, o: operator.itruediv(t, o), lambda a, b: a / b),
    ("iadd_int_other", lambda t, o: operator.iadd(t, o.long()), lambda a, b: a + b.astype(int)),
    ("copy_", lambda t, o: t.copy_(o), lambda a, b: np.broadcast_to(b, a.shape)),
    ("copy_cast", lambda t, o: t.copy_(o.long()),
     lambda a, b: np.broadcast_to(b.astype(int), a.shape)),
    ("copy_f64", lambda t, o: t.copy_(o.double() / 3),
     lambda a, b: np.broadcast_to(b / 3, a.shape)),
    ("fill_", lambda t, o: t.fill_(3), lambda a, b: np.full_like(a, 3)),
    ("fill_0d_tensor", lambda t, o: t.fill_(o[0]), lambda a, b: np.full_like(a, b[0])),
    ("zero_", lambda t, o: t.zero_(), lambda a, b: np.zeros_like(a)),
]


@pytest.mark.parametrize("layout", ["contig", "T", "step"])
@pytest.mark.parametrize("fn, ref", params(IN_PLACE))
def test_in_place(fn, ref, layout):
    t, a = pair((3, 4), "float32", layout, seed=1)
    o, b = pair((4,), "float32", seed=2, nonzero=True)
    ident, ptr, strides = id(t), t.data_ptr(), t.stride()
    out = fn(t, o)
    assert out is t and id(t) == ident and t.data_ptr() == ptr and t.stride() == strides
    assert_same(t, np.asarray(ref(a, b)).astype(a.dtype))  # in-place keeps t's dtype


def test_in_place_on_view_updates_base():
    base = rg.zeros(3, 4)
    base.T.add_(rg.tensor([1.0, 2.0, 3.0]))
    col = base[:, 1]
    col *= 10
    base[::2].sub_(1)
    expected = np.tile(np.array([[1.0], [2.0], [3.0]], np.float32), (1, 4))
    expected[:, 1] *= 10
    expected[::2] -= 1
    assert_same(base, expected)


def test_in_place_int_and_bool():
    t = rg.tensor([1, 2, 3])
    t += 2
    t *= rg.tensor([2, 2, 2], dtype=rg.int32)
    t //= 3
    assert_same(t, np.array([2, 2, 3]))
    b = rg.tensor([True, False])
    b &= rg.tensor([True, True])
    assert_same(b, np.array([True, False]))


# A fresh elementwise result is laid out as PyTorch lays it out: row-major when every operand is
# a contiguous tensor of the result's shape, else dense in the operands' memory order, the
# first operand that orders two dims deciding. (id, builder m -> result, NumPy reference,
# strides PyTorch gives); torch itself is asked too when it is importable.
P = np.arange(120, dtype=np.float32).reshape(2, 3, 4, 5).transpose(0, 2, 3, 1)
T = (np.arange(12, dtype=np.float32).reshape(3, 4) - 5).T


def _perm(m):
    return m.tensor(np.arange(120, dtype=np.float32).reshape(2, 3, 4, 5)).permute(0, 2, 3, 1)


def _t(m):
    return m.tensor(np.arange(12, dtype=np.float32).reshape(3, 4) - 5).t()


LAYOUT_CASES = [
    ("unary_t", lambda m: _t(m).exp(), np.exp(T), (1, 4)),
    ("binary_t_t", lambda m: _t(m) + _t(m), T + T, (1, 4)),
    ("binary_t_first", lambda m: _t(m) * m.full((4, 3), 2.0), T * 2, (1, 4)),
    ("binary_contig_first", lambda m: m.full((4, 3), 2.0) * _t(m), T * 2, (3, 1)),
    ("number", lambda m: _t(m) + 1, T + 1, (1, 4)),
    ("compare", lambda m: _t(m) > 0, T > 0, (1, 4)),
    ("where", lambda m: m.where(_t(m) > 0, _t(m), 0.0), np.where(T > 0, T, 0), (1, 4)),
    ("relu", lambda m: _t(m).relu(), np.maximum(T, 0), (1, 4)),
    ("int_times_float", lambda m: _t(m).int() * 1.5, T * 1.5, (1, 4)),
    ("permuted", lambda m: _perm(m).neg(), -P, (60, 5, 1, 20)),
    ("permuted_sliced", lambda m: _perm(m)[:, ::2].neg(), -P[:, ::2], (30, 5, 1, 10)),
    ("permuted_broadcast", lambda m: _perm(m) + m.arange(3.0), P + np.arange(3), (60, 5, 1, 20)),
    ("broadcast_first", lambda m: m.ones(4, 1, 3) + _perm(m), P + 1, (60, 15, 1, 5)),
    ("sliced", lambda m: m.arange(12.0).reshape(3, 4)[:, ::2].t().neg(), -np.arange(12.0).reshape(3, 4)[:, ::2].T, (1, 2)),
    ("contiguous_size1", lambda m: m.arange(4.0).reshape(4, 1).t().neg(), -np.arange(4.0).reshape(1, 4), (4, 1)),
    # clone() and to(dtype) keep a dense tensor's strides (preserve_format); contiguous() does not
    ("clone_t", lambda m: _t(m).clone(), T, (1, 4)),
    ("clone_permuted", lambda m: _perm(m).clone(), P, (60, 5, 1, 20)),
    ("clone_sliced", lambda m: m.arange(12.0).reshape(3, 4)[:, ::2].t().clone(), np.arange(12.0).reshape(3, 4)[:, ::2].T, (1, 2)),
    ("double_t", lambda m: _t(m).double(), T, (1, 4)),
    ("contiguous_t", lambda m: _t(m).contiguous(), T, (3, 1)),
]


@pytest.mark.parametrize("name, fn, ref, strides", [pytest.param(*c, id=c[0]) for c in LAYOUT_CASES])
def test_result_layout_follows_operands(name, fn, ref, strides):
    out = fn(rg)
    assert out.stride() == strides
    np.testing.assert_allclose(out.numpy().astype(np.float64), ref.astype(np.float64), rtol=1e-6)
    np.testing.assert_allclose(out.reshape(-1).numpy().astype(np.float64), ref.reshape(-1).astype(np.float64), rtol=1e-6)
    torch = torch_or_none()
    if torch is not None:
        assert fn(torch).stride() == strides


def test_leaf_gradient_stays_contiguous():
    # Results and gradients inside the graph follow the transposed operands; a contiguous leaf's
    # .grad is contiguous all the same (PyTorch's gradient layout contract).
    x = rg.tensor(np.arange(12, dtype=np.float32).reshape(3, 4) / 10, requires_grad=True)
    y = x.t().exp() * 2
    assert y.stride() == (1, 4)
    y.sum().backward()
    assert x.grad.stride() == (4, 1)
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp(x.detach().numpy()), rtol=1e-6)


# Rows shorter than 64 with a row broadcast over them are walked as wider rows of the repeated
# row (`kernels/map.rs`, `widened_rows`), with the rows left over at their own width.
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "uint8"])
@pytest.mark.parametrize("w", [2, 3, 8, 10, 63])
def test_short_rows_with_a_broadcast_row(w, dtype):
    rng = np.random.default_rng(w)
    rows = 4099  # not a multiple of any widened row's count of rows
    x = rng.integers(1, 50, size=(rows, w)).astype(dtype)
    r = rng.integers(1, 50, size=w).astype(dtype)
    y = rng.integers(1, 50, size=(rows, w)).astype(dtype)
    tx, tr, ty = rg.from_numpy(x), rg.from_numpy(r), rg.from_numpy(y)
    np.testing.assert_array_equal((tx * tr).numpy(), x * r)
    np.testing.assert_array_equal((tr - tx).numpy(), r - x)
    np.testing.assert_array_equal((tx + 3).numpy(), x + dtype_scalar(3, dtype))
    np.testing.assert_array_equal((tx > tr).numpy(), x > r)
    np.testing.assert_array_equal((tx + ty).numpy(), x + y)
    # Outer dims that coalesce into the rows, in place, and into a given output.
    x3 = x[: rows - rows % 7].reshape(7, -1, w)
    np.testing.assert_array_equal((rg.from_numpy(x3) * tr).numpy(), x3 * r)
    t = rg.from_numpy(x.copy())
    t.mul_(tr)
    np.testing.assert_array_equal(t.numpy(), x * r)
    out = rg.empty((rows, w), dtype=tx.dtype)
    rg.add(tx, tr, out=out)
    np.testing.assert_array_equal(out.numpy(), x + r)


def dtype_scalar(v, dtype):
    return np.array(v, dtype=dtype)
