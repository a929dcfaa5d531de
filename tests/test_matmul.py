# matmul / @ / mm against NumPy (1-D and 2-D operands, batched with broadcasting, int and float,
# strided inputs, out=), plus equal and allclose. Error cases live in test_errors.py.
import numpy as np
import pytest
import rustgrad as rg
from _helpers import assert_same, pair, params

# (id, shape a, shape b)
SHAPES = [
    ("dot", (3,), (3,)),
    ("mat_vec", (2, 3), (3,)),
    ("vec_mat", (3,), (3, 4)),
    ("mat_mat", (2, 3), (3, 4)),
    ("outer_dims", (5, 1), (1, 4)),
    ("batch_mat", (5, 2, 3), (3, 4)),
    ("mat_batch", (2, 3), (5, 3, 4)),
    ("batch_batch", (5, 2, 3), (5, 3, 4)),
    ("broadcast_batch", (2, 1, 3, 4), (5, 4, 2)),
    ("vec_batch", (3,), (5, 3, 4)),
    ("batch_vec", (5, 2, 3), (3,)),
    ("empty_inner", (2, 0), (0, 3)),
    ("empty_rows", (0, 3), (3, 2)),
]
FORMS = [
    ("operator", lambda x, y: x @ y),
    ("method", lambda x, y: x.matmul(y)),
    ("function", lambda x, y: rg.matmul(x, y)),
]


@pytest.mark.parametrize("form", params(FORMS))
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
@pytest.mark.parametrize("la, lb", [("contig", "contig"), ("T", "step")])
@pytest.mark.parametrize("sa, sb", params(SHAPES))
def test_matmul(form, sa, sb, dtype, la, lb):
    (x, a), (y, b) = pair(sa, dtype, la, seed=1), pair(sb, dtype, lb, seed=2)
    assert_same(form(x, y), np.matmul(a, b))


@pytest.mark.parametrize("la, lb", [("contig", "contig"), ("T", "T"), ("step", "T")])
def test_mm(la, lb):
    (x, a), (y, b) = pair((3, 4), "float32", la, seed=1), pair((4, 2), "float32", lb, seed=2)
    assert_same(rg.mm(x, y), a @ b)
    assert_same(x.mm(y), a @ b)


def test_matmul_transposed_self():
    x, a = pair((4, 3), "float32", "T")
    assert_same(x @ x.T, a @ a.T)
    assert_same(x.T @ x, a.T @ a)


def test_matmul_non_exact_values():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((16, 32), np.float32), rng.standard_normal((32, 8), np.float32)
    assert_same(rg.tensor(a) @ rg.tensor(b), a @ b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("sa, sb", [
    ((16, 130, 70), (16, 70, 100)),     # side by side, B read in place (few rows)
    ((8, 300, 40), (8, 40, 90)),        # side by side, B packed (more rows than read in place)
    ((3, 130, 70), (3, 70, 100)),       # too few products: each split across the threads
    ((2, 8, 1, 33, 20), (4, 20, 17)),   # broadcast batch of small products
])
def test_batched_products_over_threads(threads, sa, sb):
    # The batch's products run side by side on the pool or split one by one; both must match.
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal(sa, np.float32), rng.standard_normal(sb, np.float32)
    before = rg.get_num_threads()
    rg.set_num_threads(threads)
    try:
        got = rg.tensor(a) @ rg.tensor(b)
        # A transposed view of the same batch takes the packed-A path of a column-major operand.
        got_t = rg.tensor(np.ascontiguousarray(np.swapaxes(a, -1, -2))).transpose(-1, -2) @ rg.tensor(b)
    finally:
        rg.set_num_threads(before)
    want = np.matmul(a.astype(np.float64), b.astype(np.float64))
    assert_same(got, want.astype(np.float32), rtol=1e-4, atol=1e-4)
    assert_same(got_t, want.astype(np.float32), rtol=1e-4, atol=1e-4)



@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("m, n, k", [(64, 120, 400), (64, 130, 500), (40, 70, 900), (64, 16, 1100)])
def test_a_times_b_transposed_split_over_threads(threads, m, n, k):
    # x @ W.T with both operands contiguous along k (a linear layer's forward) runs as dot
    # products; from 1M multiply-adds, on two threads, C's columns are split between them
    # (at multiples of four, the last part taking the rest). Both splits must match, and so must
    # the accumulating form (addmm's `beta` C plus the product).
    rng = np.random.default_rng(m + n)
    x, w, c = (rng.standard_normal(s, np.float32) for s in ((m, k), (n, k), (m, n)))
    before = rg.get_num_threads()
    rg.set_num_threads(threads)
    try:
        got = rg.tensor(x) @ rg.tensor(w).t()
        got_add = rg.addmm(rg.tensor(c), rg.tensor(x), rg.tensor(w).t())
    finally:
        rg.set_num_threads(before)
    want = x.astype(np.float64) @ w.astype(np.float64).T
    assert_same(got, want.astype(np.float32), rtol=1e-4, atol=1e-4)
    assert_same(got_add, (c + want).astype(np.float32), rtol=1e-4, atol=1e-4)

def test_matmul_out():
    (x, a), (y, b) = pair((2, 3), seed=1), pair((3, 4), seed=2)
    out = rg.empty(2, 4)
    ptr = out.data_ptr()
    res = rg.matmul(x, y, out=out)
    assert res is out and out.data_ptr() == ptr
    assert_same(out, a @ b)


EQUAL = [
    ("same", lambda: (rg.tensor([1.0, 2.0]), rg.tensor([1.0, 2.0])), True),
    ("value_differs", lambda: (rg.tensor([1.0, 2.0]), rg.tensor([1.0, 2.5])), False),
    ("shape_differs", lambda: (rg.tensor([1.0, 2.0]), rg.tensor([[1.0, 2.0]])), False),
    ("strided", lambda: (rg.arange(6).reshape(2, 3).T, rg.tensor([[0, 3], [1, 4], [2, 5]])),
     True),
    ("int", lambda: (rg.tensor([1, 2]), rg.tensor([1, 3])), False),
    ("empty", lambda: (rg.zeros(0), rg.zeros(0)), True),
    ("nan", lambda: (rg.tensor([float("nan")]), rg.tensor([float("nan")])), False),
]


@pytest.mark.parametrize("args, expected", params(EQUAL))
def test_equal(args, expected):
    a, b = args()
    assert rg.equal(a, b) is expected and a.equal(b) is expected


ALLCLOSE = [
    ("exact", [1.0, 2.0], [1.0, 2.0], {}, True),
    ("within_default", [1.0, 1e5], [1.0 + 1e-6, 1e5 + 0.5], {}, True),
    ("outside_default", [1.0], [1.001], {}, False),
    ("rtol", [100.0], [101.0], {"rtol": 0.02}, True),
    ("rtol_relative_to_other", [100.0], [98.0], {"rtol": 0.0201, "atol": 0.0}, False),
    ("atol", [0.0], [0.1], {"atol": 0.2}, True),
    ("atol_too_small", [0.0], [0.1], {"atol": 0.05}, False),
    ("nan_default", [float("nan")], [float("nan")], {}, False),
    ("nan_equal", [float("nan"), 1.0], [float("nan"), 1.0], {"equal_nan": True}, True),
    ("inf", [float("inf")], [float("inf")], {}, True),
    ("broadcast", [[1.0, 2.0], [1.0, 2.0]], [1.0, 2.0], {}, True),
]


@pytest.mark.parametrize("a, b, kwargs, expected", params(ALLCLOSE))
def test_allclose(a, b, kwargs, expected):
    x, y = rg.tensor(a, dtype=rg.float64), rg.tensor(b, dtype=rg.float64)
    assert rg.allclose(x, y, **kwargs) is expected and x.allclose(y, **kwargs) is expected
