# Tensor creation: tensor() from Python/NumPy data, the shape-taking factories (zeros, ones, full,
# empty, eye, arange, linspace), the random factories and their seeding, and the *_like family.
# Error cases live in test_errors.py.
import numpy as np
import pytest
import rustgrad as rg
from _helpers import assert_same, pair, params, torch_or_none

DATA = [
    ("nested_int", [[1, 2], [3, 4]], np.array([[1, 2], [3, 4]])),
    ("nested_float", [[1.5, 2], [3, 4]], np.array([[1.5, 2], [3, 4]], np.float32)),
    ("bools", [True, False], np.array([True, False])),
    ("int_scalar", 3, np.array(3)),
    ("float_scalar", -3.5, np.array(-3.5, np.float32)),
    ("bool_scalar", False, np.array(False)),
    ("tuples", ((1, 2), (3, 4), (5, 6)), np.array([[1, 2], [3, 4], [5, 6]])),
    ("list_of_tuples", [(1.0,), (2.0,)], np.array([[1.0], [2.0]], np.float32)),
    ("empty", [], np.zeros(0, np.float32)),
    ("empty_rows", [[], []], np.zeros((2, 0), np.float32)),
    ("3d", [[[1], [2]], [[3], [4]]], np.array([[[1], [2]], [[3], [4]]])),
    ("numpy_f64", np.array([[0.1, 0.2]]), np.array([[0.1, 0.2]])),
    ("numpy_i32", np.array([1, -2], np.int32), np.array([1, -2], np.int32)),
    ("numpy_u8", np.array([0, 255], np.uint8), np.array([0, 255], np.uint8)),
    ("numpy_0d", np.array(2.5, np.float32), np.array(2.5, np.float32)),
    ("numpy_transposed", np.arange(6.0).reshape(2, 3).T, np.arange(6.0).reshape(2, 3).T),
    ("numpy_stepped", np.arange(10)[::3], np.array([0, 3, 6, 9])),
]


@pytest.mark.parametrize("data, expected", params(DATA))
def test_tensor_from_data(data, expected):
    assert_same(rg.tensor(data), expected)


DTYPE_ARG = [
    ("int_to_float", [1, 2], "float32", [1.0, 2.0]),
    ("float_to_int_truncates", [1.7, -1.7, 0.5], "int64", [1, -1, 0]),
    ("int_to_bool", [0, 2, -1], "bool", [False, True, True]),
    ("float_to_f64", [0.1], "float64", [0.1]),
    ("bool_to_u8", [True, False], "uint8", [1, 0]),
    ("int_to_i32", [[1], [2]], "int32", [[1], [2]]),
    ("numpy_f64_to_f32", np.array([0.1, 0.2]), "float32", [0.1, 0.2]),
]


@pytest.mark.parametrize("data, name, values", params(DTYPE_ARG))
def test_tensor_dtype_argument(data, name, values):
    assert_same(rg.tensor(data, dtype=getattr(rg, name)), np.array(values), dtype=name)


def test_tensor_device_and_requires_grad():
    for dev in ("cpu", rg.device("cpu")):
        assert rg.tensor([1.0], device=dev).device == rg.device("cpu")
    assert rg.tensor([1.0]).requires_grad is False
    assert rg.tensor([1.0], requires_grad=True).requires_grad is True


def test_tensor_copies_its_data():
    a = np.array([1.0, 2.0], np.float32)
    t = rg.tensor(a)
    a[0] = 100
    assert t.tolist() == [1.0, 2.0]
    data = [1, 2]
    t = rg.tensor(data)
    data[0] = 5
    assert t.tolist() == [1, 2]


SHAPE_ARGS = [("varargs", (2, 3)), ("tuple", ((2, 3),)), ("list", ([2, 3],)),
              ("size", (rg.Size([2, 3]),))]


@pytest.mark.parametrize("args", params(SHAPE_ARGS))
@pytest.mark.parametrize("factory", ["zeros", "ones", "empty", "rand", "randn"])
def test_factory_shape_forms(factory, args):
    t = getattr(rg, factory)(*args)
    assert t.shape == (2, 3) and t.dtype is rg.float32 and t.is_contiguous()


FACTORIES = [
    ("zeros", lambda: rg.zeros(2, 3), np.zeros((2, 3), np.float32)),
    ("zeros_1d", lambda: rg.zeros(4), np.zeros(4, np.float32)),
    ("zeros_0d", lambda: rg.zeros(()), np.zeros((), np.float32)),
    ("zeros_empty", lambda: rg.zeros(0, 3), np.zeros((0, 3), np.float32)),
    ("zeros_int", lambda: rg.zeros(2, dtype=rg.int64), np.zeros(2, np.int64)),
    ("zeros_bool", lambda: rg.zeros(2, dtype=rg.bool), np.zeros(2, bool)),
    ("ones", lambda: rg.ones((3, 1)), np.ones((3, 1), np.float32)),
    ("ones_u8", lambda: rg.ones(2, dtype=rg.uint8), np.ones(2, np.uint8)),
    ("ones_f64", lambda: rg.ones([2], dtype=rg.float64), np.ones(2)),
    ("full_int", lambda: rg.full((2, 3), 7), np.full((2, 3), 7)),
    ("full_float", lambda: rg.full((2,), 1.5), np.full(2, 1.5, np.float32)),
    ("full_bool", lambda: rg.full((2,), True), np.full(2, True)),
    ("full_dtype", lambda: rg.full([2], 7, dtype=rg.float64), np.full(2, 7.0)),
    ("full_0d", lambda: rg.full((), -2.0), np.full((), -2.0, np.float32)),
    ("eye", lambda: rg.eye(3), np.eye(3, dtype=np.float32)),
    ("eye_rect", lambda: rg.eye(2, 3), np.eye(2, 3, dtype=np.float32)),
    ("eye_tall", lambda: rg.eye(3, 2), np.eye(3, 2, dtype=np.float32)),
    ("eye_int", lambda: rg.eye(2, dtype=rg.int64), np.eye(2, dtype=np.int64)),
    ("arange_stop", lambda: rg.arange(5), np.arange(5)),
    ("arange_start_stop", lambda: rg.arange(2, 8), np.arange(2, 8)),
    ("arange_step", lambda: rg.arange(1, 10, 3), np.arange(1, 10, 3)),
    ("arange_neg_step", lambda: rg.arange(5, 0, -1), np.arange(5, 0, -1)),
    ("arange_neg_step3", lambda: rg.arange(10, 0, -3), np.arange(10, 0, -3)),
    ("arange_to_neg", lambda: rg.arange(0, -3, -1), np.arange(0, -3, -1)),
    ("arange_empty", lambda: rg.arange(3, 3), np.arange(3, 3)),
    ("arange_float_step", lambda: rg.arange(0, 1, 0.25), np.arange(0, 1, 0.25, np.float32)),
    ("arange_float_start", lambda: rg.arange(0.0, 3), np.arange(0, 3, dtype=np.float32)),
    ("arange_tenth", lambda: rg.arange(1.0, 2.0, 0.1), np.arange(1, 2, 0.1).astype(np.float32)),
    ("arange_float_neg", lambda: rg.arange(1.0, -1.0, -0.5), np.arange(1, -1, -0.5, np.float32)),
    ("arange_dtype", lambda: rg.arange(4, dtype=rg.float32), np.arange(4, dtype=np.float32)),
    ("arange_f64", lambda: rg.arange(0, 2, 0.5, dtype=rg.float64), np.arange(0, 2, 0.5)),
    ("linspace", lambda: rg.linspace(0, 1, 5), np.linspace(0, 1, 5, dtype=np.float32)),
    ("linspace_neg", lambda: rg.linspace(-1, 1, steps=3), np.array([-1, 0, 1], np.float32)),
    ("linspace_desc", lambda: rg.linspace(2, -2, 5), np.linspace(2, -2, 5, dtype=np.float32)),
    ("linspace_one", lambda: rg.linspace(3, 10, 1), np.array([3.0], np.float32)),
    ("linspace_zero", lambda: rg.linspace(0, 1, 0), np.zeros(0, np.float32)),
    ("linspace_f64", lambda: rg.linspace(0, 1, 3, dtype=rg.float64), np.linspace(0, 1, 3)),
]


@pytest.mark.parametrize("fn, expected", params(FACTORIES))
def test_factory_values(fn, expected):
    assert_same(fn(), expected)


def test_empty_shape_and_dtype():
    t = rg.empty(2, 3, dtype=rg.int32)
    assert t.shape == (2, 3) and t.dtype is rg.int32 and t.is_contiguous()
    assert rg.empty(0).shape == (0,)


RANDOM = [
    ("rand", lambda: rg.rand(50)),
    ("randn", lambda: rg.randn(2, 25)),
    ("randint", lambda: rg.randint(0, 1000, (50,))),
    ("randperm", lambda: rg.randperm(50)),
    ("rand_like", lambda: rg.rand_like(rg.zeros(50))),
    ("randn_like", lambda: rg.randn_like(rg.zeros(5, 10))),
]


@pytest.mark.parametrize("fn", params(RANDOM))
def test_manual_seed_reproducible(fn):
    rg.manual_seed(0)
    a, a2 = fn().tolist(), fn().tolist()
    rg.manual_seed(0)
    b = fn().tolist()
    rg.manual_seed(1)
    c = fn().tolist()
    assert a == b and a != c and a != a2


def test_rand_statistics():
    rg.manual_seed(1234)
    x = rg.rand(100_000)
    assert x.dtype is rg.float32 and x.shape == (100_000,)
    n = x.numpy()
    assert n.min() >= 0.0 and n.max() < 1.0
    assert abs(n.mean() - 0.5) < 0.01 and abs(n.std() - 12 ** -0.5) < 0.01
    assert rg.rand(2, 3, dtype=rg.float64).dtype is rg.float64


def test_randn_statistics():
    rg.manual_seed(1234)
    n = rg.randn(100_000).numpy()
    assert n.dtype == np.float32
    assert abs(n.mean()) < 0.02 and abs(n.std() - 1) < 0.02
    assert (abs(n) > 3).mean() < 0.01 and n.min() < -3 and n.max() > 3


RANDINT = [
    ("low_high", lambda: rg.randint(3, 5, (1000,)), 3, 4, (1000,)),
    ("high_only", lambda: rg.randint(5, (10, 100)), 0, 4, (10, 100)),
    ("negative", lambda: rg.randint(-2, 1, (1000,)), -2, 0, (1000,)),
    ("size_kw", lambda: rg.randint(0, 3, size=(4, 250)), 0, 2, (4, 250)),
]


@pytest.mark.parametrize("fn, lo, hi, shape", params(RANDINT))
def test_randint_range(fn, lo, hi, shape):
    t = fn()
    assert t.dtype is rg.int64 and t.shape == shape
    assert set(np.unique(t.numpy())) == set(range(lo, hi + 1))


def test_randint_dtype():
    assert rg.randint(0, 3, (2,), dtype=rg.int32).dtype is rg.int32


@pytest.mark.parametrize("n", [0, 1, 7, 100])
def test_randperm_is_permutation(n):
    p = rg.randperm(n)
    assert p.dtype is rg.int64 and p.shape == (n,)
    assert sorted(p.tolist()) == list(range(n))


LIKE = [
    ("zeros_like", lambda t: rg.zeros_like(t), lambda a: np.zeros_like(a)),
    ("ones_like", lambda t: rg.ones_like(t), lambda a: np.ones_like(a)),
    ("full_like", lambda t: rg.full_like(t, 7), lambda a: np.full_like(a, 7)),
    ("zeros_like_f64", lambda t: rg.zeros_like(t, dtype=rg.float64),
     lambda a: np.zeros(a.shape)),
    ("ones_like_int", lambda t: rg.ones_like(t, dtype=rg.int64),
     lambda a: np.ones(a.shape, np.int64)),
    ("full_like_bool", lambda t: rg.full_like(t, True, dtype=rg.bool),
     lambda a: np.ones(a.shape, bool)),
]


@pytest.mark.parametrize("layout", ["contig", "T"])
@pytest.mark.parametrize("dtype", ["float32", "int64"])
@pytest.mark.parametrize("fn, ref", params(LIKE))
def test_like_factories(fn, ref, dtype, layout):
    t, a = pair((2, 3), dtype, layout)
    assert_same(fn(t), ref(a))


def test_full_like_casts_fill_value():
    assert_same(rg.full_like(rg.zeros(2, dtype=rg.int64), 2.7), np.array([2, 2]))


RANDOM_LIKE = [
    ("empty_like", lambda t: rg.empty_like(t), "int64"),
    ("empty_like_dtype", lambda t: rg.empty_like(t, dtype=rg.float64), "float64"),
    ("rand_like_dtype", lambda t: rg.rand_like(t, dtype=rg.float), "float32"),
    ("randn_like_dtype", lambda t: rg.randn_like(t, dtype=rg.float64), "float64"),
    ("randint_like", lambda t: rg.randint_like(t, 10), "int64"),
    ("randint_like_low", lambda t: rg.randint_like(t, 3, 5), "int64"),
    ("randint_like_dtype", lambda t: rg.randint_like(t, 10, dtype=rg.float32), "float32"),
]


@pytest.mark.parametrize("fn, name", params(RANDOM_LIKE))
def test_random_like_shape_and_dtype(fn, name):
    out = fn(rg.zeros(4, 50, dtype=rg.int64))
    assert out.shape == (4, 50) and out.dtype is getattr(rg, name)


def test_randint_like_range_and_rand_like_range():
    x = rg.randint_like(rg.zeros(1000, dtype=rg.int64), 3, 5).numpy()
    assert set(np.unique(x)) == {3, 4}
    r = rg.rand_like(rg.zeros(1000)).numpy()
    assert r.min() >= 0 and r.max() < 1 and r.std() > 0.2


@pytest.mark.parametrize("data, expected", [
    (lambda: np.float64(1.5), "float64"),
    (lambda: [np.float64(1.0)], "float64"),
    (lambda: np.int32(3), "int32"),
    (lambda: [np.int32(3)], "int32"),
    (lambda: [np.array([1.0, 2.0])], "float64"),
    (lambda: [np.array([1, 2], dtype=np.int32)], "int32"),
    (lambda: [1.5, np.float32(2)], "float32"),
    (lambda: [np.float32(1.0), 2], "float32"),
    (lambda: np.bool_(True), "bool"),
], ids=["f64_scalar", "f64_in_list", "i32_scalar", "i32_in_list", "f64_array_in_list", "i32_array_in_list",
        "float_and_f32", "f32_and_int", "bool_scalar"])
def test_numpy_scalars_and_arrays_keep_their_dtype(data, expected):
    # PyTorch infers from a NumPy scalar's (or nested array's) own dtype.
    assert rg.tensor(data()).dtype == getattr(rg, expected)
    assert rg.as_tensor(data()).dtype == getattr(rg, expected)
    torch = torch_or_none()
    if torch is not None:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert str(torch.tensor(data()).dtype) == f"torch.{expected}"


def test_random_defaults_cover_the_dtype_range():
    draws = rg.empty(64, dtype=rg.int64).random_()
    assert draws.max().item() > 2 ** 40  # int64 draws span [0, 2^63), not a float's 2^24
    f = rg.empty(1000).random_()
    assert f.min().item() >= 0 and f.max().item() <= 2 ** 24 and (f == f.floor()).all().item()
