# dtypes: the six dtype singletons, their names and properties, dtype inference from Python data,
# type promotion (tensor/tensor, tensor/scalar, 0-dim tensors), promote_types/result_type and
# the default float dtype.
import operator

import numpy as np
import pytest
import rustgrad as rg
from _helpers import DTYPE_NAMES, assert_same, check_parity, norm, params, requires_torch

ITEMSIZE = {"float32": 4, "float64": 8, "int64": 8, "int32": 4, "uint8": 1, "bool": 1}


def T(values, name):
    return rg.tensor(values, dtype=getattr(rg, name))


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_dtype_singleton(name):
    d = getattr(rg, name)
    assert norm(str(d)) == f"rustgrad.{name}" and norm(repr(d)) == f"rustgrad.{name}"
    assert d.is_floating_point == name.startswith("float")
    assert d.itemsize == ITEMSIZE[name]
    assert rg.zeros(2, dtype=d).dtype is d
    assert rg.tensor([1, 0], dtype=d).dtype is d


def test_dtypes_are_distinct_and_hashable():
    dtypes = [getattr(rg, n) for n in DTYPE_NAMES]
    assert len(set(dtypes)) == 6
    assert rg.float32 != rg.float64 and rg.int64 == rg.int64


@pytest.mark.parametrize("alias, name", [("float", "float32"), ("double", "float64"),
                                         ("long", "int64"), ("int", "int32")])
def test_dtype_alias(alias, name):
    assert getattr(rg, alias) is getattr(rg, name)


INFER = [
    ("float_list", [1.0, 2.0], "float32"),
    ("int_list", [1, 2], "int64"),
    ("bool_list", [True, False], "bool"),
    ("int_float_list", [1, 2.5], "float32"),
    ("bool_int_list", [True, 2], "int64"),
    ("bool_float_list", [True, 2.5], "float32"),
    ("int_scalar", 3, "int64"),
    ("float_scalar", 3.5, "float32"),
    ("bool_scalar", True, "bool"),
    ("empty_list", [], "float32"),
    ("nested_tuple", ((1, 2), (3, 4)), "int64"),
    ("numpy_int32", np.array([1, 2], np.int32), "int32"),
    ("numpy_float64", np.array([1.5]), "float64"),
    ("numpy_uint8", np.array([7], np.uint8), "uint8"),
    ("numpy_bool", np.array([True]), "bool"),
]


@pytest.mark.parametrize("data, name", params(INFER))
def test_dtype_inference(data, name):
    assert rg.tensor(data).dtype is getattr(rg, name)


# (id, expression, expected dtype, expected values)
PROMOTE = [
    ("int_div_int_scalar", lambda: T([1, 2, 3], "int64") / 2, "float32", [0.5, 1.0, 1.5]),
    ("int_div_int", lambda: T([1, 3], "int64") / T([2, 2], "int64"), "float32", [0.5, 1.5]),
    ("int_add_float_scalar", lambda: T([1, 2], "int64") + 2.5, "float32", [3.5, 4.5]),
    ("int_add_int_scalar", lambda: T([1, 2], "int64") + 2, "int64", [3, 4]),
    ("int32_add_int_scalar", lambda: T([1, 2], "int32") + 2, "int32", [3, 4]),
    ("int32_mul_float_scalar", lambda: T([1, 2], "int32") * 0.5, "float32", [0.5, 1.0]),
    ("uint8_add_int_scalar", lambda: T([1, 2], "uint8") + 2, "uint8", [3, 4]),
    ("f32_add_f64", lambda: T([1.5], "float32") + T([0.25], "float64"), "float64", [1.75]),
    ("f64_add_f32", lambda: T([1.5], "float64") + T([0.25], "float32"), "float64", [1.75]),
    ("f64_add_float_scalar", lambda: T([1.5], "float64") + 0.1, "float64", [1.6]),
    ("i32_add_i64", lambda: T([1], "int32") + T([2], "int64"), "int64", [3]),
    ("u8_add_i32", lambda: T([200], "uint8") + T([100], "int32"), "int32", [300]),
    ("u8_add_bool", lambda: T([2], "uint8") + T([True], "bool"), "uint8", [3]),
    ("bool_add_bool", lambda: T([True, False], "bool") + T([True, False], "bool"), "bool",
     [True, False]),
    ("bool_sum", lambda: T([True, True, False], "bool").sum(), "int64", 2),
    ("bool_add_int_scalar", lambda: T([True, False], "bool") + 1, "int64", [2, 1]),
    ("bool_add_float_scalar", lambda: T([True, False], "bool") + 1.5, "float32", [2.5, 1.5]),
    ("bool_mul_i32", lambda: T([True, False], "bool") * T([3, 3], "int32"), "int32", [3, 0]),
    ("i32_add_true", lambda: T([1], "int32") + True, "int32", [2]),
    ("f32_add_0d_f64", lambda: T([1.5], "float32") + T(0.25, "float64"), "float32", [1.75]),
    ("i64_add_0d_f32", lambda: T([1], "int64") + T(0.5, "float32"), "float32", [1.5]),
    ("i64_add_0d_f64", lambda: T([1], "int64") + T(0.5, "float64"), "float64", [1.5]),
    ("i32_add_0d_i64", lambda: T([1], "int32") + T(2, "int64"), "int32", [3]),
    ("u8_add_0d_i64", lambda: T([1], "uint8") + T(2, "int64"), "uint8", [3]),
    ("bool_add_0d_i32", lambda: T([True], "bool") + T(2, "int32"), "int32", [3]),
    ("0d_f32_add_0d_f64", lambda: T(1.5, "float32") + T(0.25, "float64"), "float64", 1.75),
    ("0d_i64_add_f32", lambda: T(2, "int64") + T([0.5], "float32"), "float32", [2.5]),
    ("int_lt_float", lambda: T([1, 2], "int64") < T([1.5, 1.5], "float32"), "bool",
     [True, False]),
    ("float_eq_scalar", lambda: T([2.0, 3.0], "float32") == 2, "bool", [True, False]),
    ("int_pow_int", lambda: T([2, 3], "int64") ** 2, "int64", [4, 9]),
    ("int_pow_float", lambda: T([4, 9], "int64") ** 0.5, "float32", [2.0, 3.0]),
    ("int_rpow_int", lambda: 2 ** T([2, 3], "int64"), "int64", [4, 8]),
    ("int_rpow_float", lambda: 2.0 ** T([2, 3], "int64"), "float32", [4.0, 8.0]),
    ("int_floordiv_int", lambda: T([7, -7], "int64") // 2, "int64", [3, -4]),
    ("f32_floordiv_int", lambda: T([7.0, -7.0], "float32") // 2, "float32", [3.0, -4.0]),
    ("int_mod_float", lambda: T([7, -7], "int64") % 2.5, "float32", [2.0, 0.5]),
    ("cat_int_float", lambda: rg.cat([T([1], "int64"), T([0.5], "float32")]), "float32",
     [1.0, 0.5]),
]


@pytest.mark.parametrize("fn, name, values", params(PROMOTE))
def test_type_promotion(fn, name, values):
    assert_same(fn(), np.array(values), dtype=name)


@pytest.mark.parametrize("a, b, out", [
    ("int32", "float32", "float32"), ("uint8", "bool", "uint8"), ("int32", "int64", "int64"),
    ("uint8", "int32", "int32"), ("bool", "bool", "bool"), ("float32", "float64", "float64"),
    ("int64", "float32", "float32"), ("bool", "float64", "float64"), ("uint8", "int64", "int64"),
    ("bool", "int32", "int32"),
])
def test_promote_types(a, b, out):
    assert rg.promote_types(getattr(rg, a), getattr(rg, b)) is getattr(rg, out)
    assert rg.promote_types(getattr(rg, b), getattr(rg, a)) is getattr(rg, out)


RESULT_TYPE = [
    ("int_float_scalar", lambda: (T([1], "int64"), 2.5), "float32"),
    ("int32_int_scalar", lambda: (T([1], "int32"), 2), "int32"),
    ("f32_f64", lambda: (T([1], "float32"), T([1], "float64")), "float64"),
    ("f32_0d_f64", lambda: (T([1], "float32"), T(1, "float64")), "float32"),
    ("i64_0d_f32", lambda: (T([1], "int64"), T(1, "float32")), "float32"),
    ("bool_int_scalar", lambda: (T([True], "bool"), 1), "int64"),
    ("u8_i32", lambda: (T([1], "uint8"), T([1], "int32")), "int32"),
]


@pytest.mark.parametrize("args, name", params(RESULT_TYPE))
def test_result_type(args, name):
    assert rg.result_type(*args()) is getattr(rg, name)


@pytest.fixture
def float64_default():
    rg.set_default_dtype(rg.float64)
    try:
        yield
    finally:
        rg.set_default_dtype(rg.float32)


def test_default_dtype_is_float32():
    assert rg.get_default_dtype() is rg.float32


def test_set_default_dtype(float64_default):
    assert rg.get_default_dtype() is rg.float64
    for t in (rg.tensor([1.5]), rg.zeros(2), rg.ones(2), rg.rand(2), rg.arange(0.0, 1.0),
              rg.full((2,), 1.5), T([1], "int64") / 2, T([1], "int64") + 2.5):
        assert t.dtype is rg.float64
    assert rg.tensor([1]).dtype is rg.int64
    assert (T([1.0], "float32") + 2.5).dtype is rg.float32


# Full promotion matrix against PyTorch (incl. the combinations torch rejects, which must raise
# the same exception type).
BINARY = {"add": operator.add, "sub": operator.sub, "mul": operator.mul,
          "truediv": operator.truediv, "floordiv": operator.floordiv, "mod": operator.mod,
          "eq": operator.eq, "lt": operator.lt, "and": operator.and_}


@requires_torch
@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("a", DTYPE_NAMES)
@pytest.mark.parametrize("b", DTYPE_NAMES)
def test_promotion_matrix_parity(op, a, b):
    x, y = np.array([0, 1, 3]).astype(a), np.array([1, 2, 3]).astype(b)
    check_parity(lambda m, s, t: BINARY[op](s, t), x, y)


@requires_torch
@pytest.mark.parametrize("op", ["add", "mul", "truediv", "sub"])
@pytest.mark.parametrize("scalar", [2, 2.5, True])
@pytest.mark.parametrize("a", DTYPE_NAMES)
def test_scalar_promotion_parity(op, scalar, a):
    check_parity(lambda m, s: BINARY[op](s, scalar), np.array([0, 1, 3]).astype(a))
    check_parity(lambda m, s: BINARY[op](scalar, s), np.array([1, 2, 3]).astype(a))


@requires_torch
@pytest.mark.parametrize("a", DTYPE_NAMES)
@pytest.mark.parametrize("b", DTYPE_NAMES)
def test_zero_dim_promotion_parity(a, b):
    x, y = np.array([0, 1, 3]).astype(a), np.array(2).astype(b)
    check_parity(lambda m, s, t: s * t, x, y)
