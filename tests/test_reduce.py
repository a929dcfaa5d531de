# Reductions against NumPy: sum/mean (dims, negative dims, tuples, keepdim, dtype=), max/min
# (whole tensor and with dim -> (values, indices)), argmax/argmin, all/any, incl. NaN and empty
# inputs. Error cases live in test_errors.py.
import numpy as np
import pytest
import rustgrad as rg
from _helpers import assert_same, pair

LAYOUTS = ["contig", "T", "step"]
NUMERIC = ("float32", "float64", "int64", "int32")
FLOATS = ("float32", "float64")
ALL = NUMERIC + ("bool",)

# (id, rustgrad op, NumPy reference, dtypes it applies to)
REDUCE = [
    ("sum", lambda t: t.sum(), lambda a: a.sum(), ALL),
    ("sum0", lambda t: t.sum(0), lambda a: a.sum(0), ALL),
    ("sum_neg", lambda t: t.sum(-1), lambda a: a.sum(-1), ALL),
    ("sum_tuple", lambda t: t.sum((0, 2)), lambda a: a.sum((0, 2)), ALL),
    ("sum_keepdim", lambda t: t.sum(1, keepdim=True), lambda a: a.sum(1, keepdims=True), ALL),
    ("sum_kw", lambda t: t.sum(dim=(0, -1), keepdim=True),
     lambda a: a.sum((0, 2), keepdims=True), ALL),
    ("sum_fn", lambda t: rg.sum(t, 1), lambda a: a.sum(1), ALL),
    ("sum_all_dims", lambda t: t.sum((0, 1, 2)), lambda a: a.sum(), ALL),
    ("sum_dtype", lambda t: t.sum(dtype=rg.float64), lambda a: a.sum(dtype=np.float64), ALL),
    ("sum_dim_dtype", lambda t: t.sum(0, dtype=rg.int32), lambda a: a.sum(0, dtype=np.int32), ALL),
    ("mean", lambda t: t.mean(), lambda a: a.mean(dtype=a.dtype), FLOATS),
    ("mean_dim", lambda t: t.mean(1), lambda a: a.mean(1, dtype=a.dtype), FLOATS),
    ("mean_tuple", lambda t: t.mean((-1, 0)), lambda a: a.mean((0, 2), dtype=a.dtype), FLOATS),
    ("mean_keepdim", lambda t: rg.mean(t, 2, keepdim=True),
     lambda a: a.mean(2, keepdims=True, dtype=a.dtype), FLOATS),
    ("mean_int_dtype", lambda t: t.mean(dtype=rg.float64), lambda a: a.mean(dtype=np.float64),
     ("int64",)),
    ("max", lambda t: t.max(), lambda a: a.max(), ALL),
    ("min", lambda t: t.min(), lambda a: a.min(), ALL),
    ("max_fn", lambda t: rg.max(t), lambda a: a.max(), NUMERIC),
    ("argmax", lambda t: t.argmax(), lambda a: a.argmax(), NUMERIC),
    ("argmin", lambda t: t.argmin(), lambda a: a.argmin(), NUMERIC),
    ("argmax_dim", lambda t: t.argmax(1), lambda a: a.argmax(1), NUMERIC),
    ("argmin_neg", lambda t: t.argmin(dim=-1), lambda a: a.argmin(-1), NUMERIC),
    ("argmax_keepdim", lambda t: rg.argmax(t, 0, keepdim=True),
     lambda a: a.argmax(0, keepdims=True), NUMERIC),
    ("all", lambda t: t.all(), lambda a: a.all(), ALL),
    ("any", lambda t: t.any(), lambda a: a.any(), ALL),
    ("all_dim", lambda t: t.all(1), lambda a: a.all(1), ALL),
    ("any_keepdim", lambda t: t.any(0, keepdim=True), lambda a: a.any(0, keepdims=True), ALL),
    ("all_fn", lambda t: rg.all(t, -1), lambda a: a.all(-1), ALL),
    ("any_fn", lambda t: rg.any(t), lambda a: a.any(), ALL),
]
CASES = [pytest.param(fn, ref, d, id=f"{name}-{d}")
         for name, fn, ref, dtypes in REDUCE for d in dtypes]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("fn, ref, dtype", CASES)
def test_reduce(fn, ref, dtype, layout):
    t, a = pair((3, 4, 5), dtype, layout, low=-2, high=2)
    assert_same(fn(t), np.asarray(ref(a)))


# max/min with a dim return (values, indices), a named tuple
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_min_with_dim(name, dim, keepdim, dtype, layout):
    t, a = pair((3, 4, 5), dtype, layout, low=-2, high=2)
    values = getattr(a, name)(dim, keepdims=keepdim)
    indices = getattr(a, "arg" + name)(dim, keepdims=keepdim)
    out = getattr(t, name)(dim, keepdim=keepdim)
    assert_same(out.values, values)
    assert_same(out.indices, indices)
    v, i = out
    assert_same(v, values)
    assert_same(i, indices)
    assert_same(out[0], values)
    assert_same(out[1], indices)
    fn_out = getattr(rg, name)(t, dim=dim, keepdim=keepdim)
    assert_same(fn_out.values, values)
    assert_same(fn_out.indices, indices)


def test_ties_pick_the_first_index():
    t = rg.tensor([[1, 3, 3], [2, 2, 0]])
    assert t.argmax().item() == 1 and t.argmax(1).tolist() == [1, 0]
    assert t.max(1).indices.tolist() == [1, 0] and t.min(0).indices.tolist() == [0, 1, 1]


def test_nan_propagates():
    t = rg.tensor([1.0, float("nan"), 3.0])
    for r in (t.max(), t.min(), t.sum(), t.mean()):
        assert r.item() != r.item()
    assert t.argmax().item() == 1 and t.argmin().item() == 1
    assert t.max(0).indices.item() == 1


def test_empty_reductions():
    assert_same(rg.zeros(0).sum(), np.array(0, np.float32))
    assert_same(rg.zeros(0, 3).sum(0), np.zeros(3, np.float32))
    assert_same(rg.zeros(0, 3, dtype=rg.int64).sum(1), np.zeros(0, np.int64))
    assert rg.zeros(0).all().item() is True and rg.zeros(0).any().item() is False
    assert rg.zeros(0).mean().item() != rg.zeros(0).mean().item()  # NaN


def test_sum_of_uint8_is_int64():
    assert_same(rg.tensor([200, 100], dtype=rg.uint8).sum(), np.array(300))


@pytest.mark.parametrize("width", [1, 7, 8, 31, 32, 33, 63, 100, 1025])
@pytest.mark.parametrize("dtype", FLOATS)
def test_row_reductions_of_every_tail_length(width, dtype):
    # Rows of every remainder mod 32 (the kernels' lane count), contiguous and sliced: the tail
    # of each row is folded into the lanes, which are then combined as a tree.
    rng = np.random.default_rng(width)
    a = rng.standard_normal((5, 3, width + 2)).astype(dtype)
    for arr, t in ((a, rg.tensor(a)), (a[:, :, 1:-1], rg.tensor(a)[:, :, 1:-1])):
        # Sums against float64 references, within float32 rounding of the row's magnitude.
        scale = np.abs(arr.astype(np.float64)).sum(-1) * (1e-6 if dtype == "float32" else 1e-13)
        np.testing.assert_allclose(t.sum(-1).numpy(), arr.astype(np.float64).sum(-1), rtol=0, atol=scale.max())
        np.testing.assert_allclose(t.mean(-1).numpy(), arr.astype(np.float64).mean(-1), rtol=0, atol=scale.max() / width)
        # Each row's sum is, bit for bit, that row's sum alone (short rows are summed four
        # side by side; 15 rows leave a remainder of three).
        alone = np.array([t[i, j].sum().item() for i in range(5) for j in range(3)], dtype=dtype)
        np.testing.assert_array_equal(t.sum(-1).numpy().reshape(-1), alone)
        np.testing.assert_array_equal(t.amax(-1).numpy(), arr.max(-1))
        np.testing.assert_array_equal(t.amin(-1).numpy(), arr.min(-1))
        np.testing.assert_allclose(t.norm(dim=-1).numpy(), np.sqrt((arr.astype(np.float64) ** 2).sum(-1)), rtol=1e-6)
        # A NaN anywhere in a row, the last element included, reaches that row's result only.
        b = arr.copy()
        b[2, 1, -1] = np.nan
        tb = rg.tensor(b)
        for op in ("sum", "amax", "amin"):
            r = getattr(tb, op)(-1).numpy()
            assert np.isnan(r[2, 1]) and not np.isnan(np.delete(r.reshape(-1), 2 * 3 + 1)).any(), op
        # A NaN in a row's first (lane) block, and one in the first row of a whole reduction, which
        # later rows must not drop.
        sliced = arr is not a
        for pos in (0, width // 2):
            c = a.copy()
            c[0, 0, pos + sliced] = np.nan
            tc = rg.tensor(c)[:, :, 1:-1] if sliced else rg.tensor(c)
            for op in ("amax", "amin", "sum"):
                r = getattr(tc, op)(-1).numpy()
                assert np.isnan(r[0, 0]) and not np.isnan(r.reshape(-1)[1:]).any(), (op, pos)
                assert np.isnan(getattr(tc, op)().item()), (op, pos)
        # Infinities are values: a row of -inf has amax -inf, a +inf wins over everything.
        d = arr.copy()
        d[1, 2, :] = -np.inf
        d[3, 0, width // 3] = np.inf
        td = rg.tensor(d)
        np.testing.assert_array_equal(td.amax(-1).numpy(), d.max(-1))
        np.testing.assert_array_equal(td.amin(-1).numpy(), d.min(-1))
        assert td.amax().item() == np.inf and td.amin().item() == -np.inf


@pytest.mark.parametrize("dtype", [*FLOATS, "int64"])
def test_reductions_of_permuted_views_in_memory_order(dtype):
    # The reduced dims are walked in memory order, whatever the view's logical order: transposed,
    # permuted, sliced, flipped and expanded views reduce to NumPy's values.
    rng = np.random.default_rng(7)
    a = (rng.standard_normal((6, 40, 37)) * 10).astype(dtype)
    t = rg.tensor(a)
    views = [
        (t.permute(2, 0, 1), a.transpose(2, 0, 1)),
        (t.permute(1, 2, 0)[:, 1:], a.transpose(1, 2, 0)[:, 1:]),
        (t.transpose(0, 2)[3:, :, 1:-1], a.transpose(2, 1, 0)[3:, :, 1:-1]),
        (t.flip(2).transpose(1, 2), a[:, :, ::-1].transpose(0, 2, 1)),
        (t[:, :1, :].expand(6, 5, 37).transpose(0, 2), np.broadcast_to(a[:, :1, :], (6, 5, 37)).transpose(2, 1, 0)),
    ]
    for view, ref in views:
        wide = ref.astype(np.float64)
        for dims in (None, (0, 1), (0, 2), (1, 2), 1):
            got = view.sum() if dims is None else view.sum(dims)
            want = wide.sum() if dims is None else wide.sum(axis=dims)
            np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-3)
            got = view.amax() if dims is None else view.amax(dims)
            np.testing.assert_array_equal(got.numpy(), ref.max() if dims is None else ref.max(axis=dims))
            got = view.amin() if dims is None else view.amin(dims)
            np.testing.assert_array_equal(got.numpy(), ref.min() if dims is None else ref.min(axis=dims))
        if dtype != "int64":
            np.testing.assert_allclose(view.mean().item(), wide.mean(), rtol=1e-5)
            np.testing.assert_allclose(view.norm().item(), np.sqrt((wide ** 2).sum()), rtol=1e-5)
    if dtype != "int64":
        b = a.copy()
        b[4, 17, 30] = np.nan
        tb = rg.tensor(b).permute(2, 0, 1)
        for op in ("sum", "amax", "amin"):
            assert np.isnan(getattr(tb, op)().item()), op


@pytest.mark.parametrize("value", [0.1, -3.7, -0.0, float("inf"), float("nan")])
def test_sums_of_broadcast_values(value):
    # A scalar expanded over a tensor (the gradient `sum()` and `mean()` hand back), summed as
    # a convolution's bias gradient sums it: every run has stride 0.
    g = rg.tensor(np.float32(value)).expand(64, 16, 10, 10)
    ref = np.broadcast_to(np.float32(value), (64, 16, 10, 10)).astype(np.float64)
    for dims in (None, (0, 2, 3), (1,), (0, 1, 2, 3)):
        got = g.sum() if dims is None else g.sum(dims)
        want = ref.sum() if dims is None else ref.sum(axis=dims)
        np.testing.assert_array_equal(got.numpy(), want.astype(np.float32))
    np.testing.assert_array_equal(g.mean((0, 2)).numpy(), ref.mean(axis=(0, 2)).astype(np.float32))


@pytest.mark.parametrize("width", [1, 15, 16, 17, 33, 100, 1025])
def test_max_with_indices_over_rows_of_every_tail_length(width):
    # The float32 row kernel: the extreme, then the first position holding it (the first NaN
    # when a row has one), over rows whose lengths end inside and outside the 16-lane blocks.
    rng = np.random.default_rng(width)
    a = rng.standard_normal((6, width)).astype(np.float32)
    a[1, -1] = 5.0  # the last element
    a[2, width // 2] = a[2, -1] = 5.0  # a tie: the first index wins
    a[3, width // 3] = np.nan
    a[4, -1] = np.nan
    a[4, 0] = -7.0
    t = rg.tensor(a)
    for name in ("max", "min"):
        v, i = getattr(t, name)(-1)
        np.testing.assert_array_equal(v.numpy(), getattr(a, name)(-1))
        np.testing.assert_array_equal(i.numpy(), getattr(a, "arg" + name)(-1))
        np.testing.assert_array_equal(getattr(t, "arg" + name)(-1).numpy(), getattr(a, "arg" + name)(-1))


@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 5), (300, 257)])
@pytest.mark.parametrize("correction", [0, 1, 2])
@pytest.mark.parametrize("keepdim", [False, True])
def test_var_std_over_every_dim_of_float32(shape, correction, keepdim):
    # Over every dim, float32 var/std take the mean and then the squared deviations from it in
    # two passes (a large case splits each pass across threads); NumPy in float64 is the reference.
    rng = np.random.default_rng(len(shape) + correction)
    a = (rng.standard_normal(shape) * 3 + 100).astype(np.float32)
    for t, ref in ((rg.tensor(a), a), (rg.tensor(a).t() if a.ndim == 2 else rg.tensor(a), a.T)):
        n = ref.size
        with np.errstate(divide="ignore", invalid="ignore"):
            want = ((ref.astype(np.float64) - ref.astype(np.float64).mean()) ** 2).sum() / max(n - correction, 0)
        want_shape = (1,) * ref.ndim if keepdim else ()
        for fn, w in (("var", want), ("std", np.sqrt(want))):
            got = getattr(t, fn)(correction=correction, keepdim=keepdim)
            assert got.dtype == rg.float32 and tuple(got.shape) == want_shape, (fn, got.shape)
            np.testing.assert_allclose(got.numpy(), np.full(want_shape, w, np.float32), rtol=2e-5)
    # NaN and infinity poison the result; an empty tensor has no variance.
    b = a.copy().reshape(-1)
    if b.size:
        b[b.size // 2] = np.nan
        assert np.isnan(rg.tensor(b).var().item())
        b[b.size // 2] = np.inf
        assert np.isnan(rg.tensor(b).std().item())
    assert np.isnan(rg.zeros(0).var().item())


@pytest.mark.parametrize("width", [1, 2, 17, 100, 1025])
@pytest.mark.parametrize("correction", [0, 1])
def test_var_std_over_rows_of_float32(width, correction):
    # Row reductions (trailing dims, contiguous rows, also a slice of rows) take each row's mean
    # and squared deviations in two passes; NumPy in float64 is the reference.
    rng = np.random.default_rng(width)
    a = (rng.standard_normal((6, 5, width + 2)) * 2 - 50).astype(np.float32)
    a[2, 3, 1] = np.nan
    full = rg.tensor(a)
    for t, ref in ((full, a), (full[:, :, 1:-1], a[:, :, 1:-1]), (full[1:, :, :], a[1:])):
        wide = ref.astype(np.float64)
        for dims, keep in ((-1, False), (-1, True), ((1, 2), False)):
            n = np.prod([ref.shape[d] for d in np.atleast_1d(dims)])
            with np.errstate(divide="ignore", invalid="ignore"):
                want = ((wide - wide.mean(dims, keepdims=True)) ** 2).sum(dims, keepdims=keep) / max(n - correction, 0)
            np.testing.assert_allclose(t.var(dims, correction=correction, keepdim=keep).numpy(), want, rtol=2e-5, atol=1e-6)
            np.testing.assert_allclose(t.std(dims, correction=correction, keepdim=keep).numpy(), np.sqrt(want), rtol=2e-5, atol=1e-6)
