# Indexing (__getitem__/__setitem__) against NumPy: ints, slices with steps, None, Ellipsis,
# bool masks, integer lists/tensors and mixed basic+advanced indexing, on contiguous and strided
# tensors; basic indexing returns views, advanced indexing copies. Errors live in test_errors.py.
import numpy as np
import pytest
import rustgrad as rg
from _helpers import assert_same, pair, params

LAYOUTS = ["contig", "T", "step"]


def rg_mk(x):
    return rg.tensor(x)


# (id, key builder (x, mk) -> key, basic?) on a (3, 4, 5) tensor; `mk` builds index tensors
# (rg.tensor for rustgrad, np.array for NumPy) and x is the indexed tensor/array.
GET = [
    ("int", lambda x, mk: 1, True),
    ("neg_int", lambda x, mk: -1, True),
    ("two_ints", lambda x, mk: (1, 2), True),
    ("three_ints", lambda x, mk: (2, -1, 4), True),
    ("slice", lambda x, mk: slice(1, None), True),
    ("slice_step", lambda x, mk: slice(None, None, 2), True),
    ("slice_step_inner", lambda x, mk: (slice(None), slice(1, None, 2)), True),
    ("slice_neg_bounds", lambda x, mk: (slice(-2, None), slice(None, -1)), True),
    ("slice_out_of_range", lambda x, mk: slice(1, 100), True),
    ("slice_empty", lambda x, mk: slice(2, 1), True),
    ("int_slice_step", lambda x, mk: (1, slice(None), slice(0, 5, 3)), True),
    ("ellipsis_int", lambda x, mk: (Ellipsis, 0), True),
    ("ellipsis_mid", lambda x, mk: (0, Ellipsis, 1), True),
    ("ellipsis_slice", lambda x, mk: (Ellipsis, slice(1, 3)), True),
    ("none", lambda x, mk: None, True),
    ("none_mid", lambda x, mk: (slice(None), None, 1), True),
    ("ellipsis_none", lambda x, mk: (Ellipsis, None), True),
    ("none_none_int", lambda x, mk: (None, 0, None, slice(None, None, 2)), True),
    ("empty_tuple", lambda x, mk: (), True),
    ("mask_full", lambda x, mk: x > 0, False),
    ("mask_dim0", lambda x, mk: mk([True, False, True]), False),
    ("mask_dim01", lambda x, mk: mk([[True, False, True, False]] * 3), False),
    ("mask_after_slice", lambda x, mk: (slice(None), mk([True, False, True, True])), False),
    ("mask_after_int", lambda x, mk: (1, mk([False, True, True, False])), False),
    ("mask_all_false", lambda x, mk: mk([False, False, False]), False),
    ("list", lambda x, mk: [0, 2], False),
    ("list_neg_repeat", lambda x, mk: [-1, 0, -1], False),
    ("tensor", lambda x, mk: mk([2, 0]), False),
    ("tensor_2d", lambda x, mk: mk([[0, 1], [2, 2]]), False),
    ("tensor_0d", lambda x, mk: mk(1), True),
    ("tensor_empty", lambda x, mk: mk(np.zeros(0, np.int64)), False),
    ("adv_inner", lambda x, mk: (slice(None), [0, 3]), False),
    ("adv_last", lambda x, mk: (Ellipsis, mk([4, 0, 1])), False),
    ("adv_pair", lambda x, mk: ([0, 2], [1, 3]), False),
    ("adv_triple", lambda x, mk: ([0, 2], [1, 3], [4, 0]), False),
    ("adv_broadcast", lambda x, mk: (mk([[0], [2]]), mk([1, 3])), False),
    ("adv_adjacent", lambda x, mk: (slice(None), [0, 1], [1, 2]), False),
    ("adv_separated", lambda x, mk: ([0, 2], slice(None), [1, 3]), False),
    ("adv_separated_2d", lambda x, mk: (mk([[0], [1]]), slice(1, 3), mk([[1, 2]])), False),
    ("adv_slice_step", lambda x, mk: (mk([2, 0]), slice(None, None, 2)), False),
    ("adv_with_int_adjacent", lambda x, mk: (1, [0, 2], slice(None)), False),
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("key, basic", params(GET))
def test_getitem(key, basic, layout):
    t, a = pair((3, 4, 5), "float32", layout)
    assert_same(t[key(t, rg_mk)], a[key(a, np.array)])


@pytest.mark.parametrize("key, basic", params(GET))
def test_getitem_view_or_copy(key, basic):
    t, a = pair((3, 4, 5), "int64")
    out = t[key(t, rg_mk)]
    out.fill_(99)
    expected = a.copy()
    if basic:  # basic indexing is a view: the write reaches t
        expected[key(a, np.array)] = 99
    assert_same(t, expected)


# Integer indexing is applied before advanced indexing in PyTorch: an int separated from an
# advanced index by a slice does not take part in the broadcast, unlike NumPy.
def test_int_and_separated_advanced_index():
    t, a = pair((3, 4, 5), "float32")
    assert_same(t[0, :, [1, 3]], a[0][:, [1, 3]])


# (id, key builder, value builder (mk) -> value)
SET = [
    ("col_zero", lambda x, mk: (slice(None), 1), lambda mk: 0),
    ("row_float", lambda x, mk: 0, lambda mk: 5.5),
    ("elem", lambda x, mk: (1, 2, 3), lambda mk: -9.0),
    ("elem_0d_value", lambda x, mk: (0, 0, 0), lambda mk: mk(np.float32(5.0))),
    ("mask_scalar", lambda x, mk: x > 0, lambda mk: 0),
    ("mask_dim0_broadcast", lambda x, mk: mk([True, False, True]),
     lambda mk: mk(np.arange(5, dtype=np.float32))),
    ("mask_partial", lambda x, mk: (slice(None), mk([True, False, False, True])), lambda mk: 1.5),
    ("row_broadcast", lambda x, mk: 1, lambda mk: mk(np.arange(5, dtype=np.float32))),
    ("col_broadcast", lambda x, mk: (slice(None), slice(None), 0),
     lambda mk: mk(np.array([[1.0], [2.0], [3.0]], np.float32))),
    ("full_tensor", lambda x, mk: Ellipsis, lambda mk: mk(np.ones((3, 4, 5), np.float32))),
    ("step", lambda x, mk: slice(None, None, 2), lambda mk: -1.0),
    ("step_inner", lambda x, mk: (slice(None), slice(1, None, 2)), lambda mk: 2.0),
    ("ellipsis", lambda x, mk: (Ellipsis, -1), lambda mk: 7),
    ("none", lambda x, mk: (None, 0), lambda mk: 4.0),
    ("list", lambda x, mk: [0, 2], lambda mk: 1.0),
    ("tensor", lambda x, mk: mk([1]), lambda mk: 2.0),
    ("adv_pair_values", lambda x, mk: ([0, 2], [1, 3]),
     lambda mk: mk(np.array([[10.0], [20.0]], np.float32))),
    ("adv_separated", lambda x, mk: ([0, 2], slice(None), [1, 3]), lambda mk: 3.0),
    ("adv_inner_values", lambda x, mk: (slice(None), [0, 3]),
     lambda mk: mk(np.arange(10, dtype=np.float32).reshape(2, 5))),
    ("int_value_into_float", lambda x, mk: 2, lambda mk: mk(np.array([1, 2, 3, 4, 5]))),
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("key, value", params(SET))
def test_setitem(key, value, layout):
    t, a = pair((3, 4, 5), "float32", layout)
    a = a.copy()
    ptr = t.data_ptr()
    t[key(t, rg_mk)] = value(rg_mk)
    a[key(a, np.array)] = value(np.array)
    assert_same(t, a)
    assert t.data_ptr() == ptr


def test_setitem_writes_through_views():
    base = rg.zeros(3, 4)
    base.T[1] = 5.0  # column 1 of base
    base[::2][:, 3] = 1.0
    row = base[2]
    row[0] = -1.0
    expected = np.zeros((3, 4), np.float32)
    expected[:, 1], expected[::2, 3], expected[2, 0] = 5, 1, -1
    assert_same(base, expected)


def test_setitem_from_an_overlapping_view_of_itself():
    # The value reads the memory being written (shifted rows, a transpose, the tensor itself):
    # NumPy's result, i.e. as if the value were copied first.
    a = np.arange(20, dtype=np.float32).reshape(4, 5)
    t = rg.tensor(a)
    t[1:] = t[:-1]
    b = a.copy()
    b[1:] = a[:-1].copy()
    assert_same(t, b)
    sq = np.arange(16, dtype=np.float32).reshape(4, 4)
    u = rg.tensor(sq)
    u[:, :] = u.T
    assert_same(u, sq.T.copy())
    w = rg.tensor(sq)
    w[::2] = w[1::2]
    c = sq.copy()
    c[::2] = sq[1::2]
    assert_same(w, c)


SET_CAST = [
    ("float_into_int", "int64", [2.7, -2.7, 0.2], [2, -2, 0]),
    ("int_into_bool", "bool", [5, 0, -1], [True, False, True]),
    ("bool_into_float", "float32", [True, False, True], [1.0, 0.0, 1.0]),
    ("float_into_u8", "uint8", [1.9, 255.0, 0.0], [1, 255, 0]),
]


@pytest.mark.parametrize("name, values, expected", params(SET_CAST))
def test_setitem_casts_to_target_dtype(name, values, expected):
    t = rg.zeros(3, dtype=getattr(rg, name))
    for i, v in enumerate(values):
        t[i] = v
    assert_same(t, np.array(expected), dtype=name)
    u = rg.zeros(3, dtype=getattr(rg, name))
    u[:] = rg.tensor(values)
    assert_same(u, np.array(expected), dtype=name)


def test_getitem_on_1d_and_0d_results():
    t = rg.tensor([10, 20, 30])
    assert t[1].shape == () and t[1].item() == 20 and t[-1].item() == 30
    assert t[None].shape == (1, 3) and t[..., None].shape == (3, 1)
    s = rg.tensor(5.0)
    assert s[...].shape == () and s[None].shape == (1,) and s[()].item() == 5.0


# gather/scatter walk the index in runs along its last dim; every dim of a 3-D tensor, an index
# smaller than the input outside `dim`, and strided input, index and source.
def np_gather(a, dim, idx):
    out = np.empty(idx.shape, a.dtype)
    for pos in np.ndindex(*idx.shape):
        src = list(pos)
        src[dim] = idx[pos]
        out[pos] = a[tuple(src)]
    return out


def np_scatter(a, dim, idx, src, add):
    out = a.copy()
    for pos in np.ndindex(*idx.shape):
        dst = list(pos)
        dst[dim] = idx[pos]
        v = src[pos] if isinstance(src, np.ndarray) else src
        out[tuple(dst)] = out[tuple(dst)] + v if add else v
    return out


@pytest.mark.parametrize("strided", [False, True], ids=["contig", "strided"])
@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_gather_scatter_every_dim(dim, strided):
    rng = np.random.default_rng(11)
    a = rng.standard_normal((4, 5, 6)).astype(np.float32)
    ishape = [3, 4, 5]
    ishape[dim] = 7  # longer than the input along dim: repeats
    idx = rng.integers(0, a.shape[dim], ishape)
    src = rng.standard_normal((8, 8, 8)).astype(np.float32)
    ta, ti, ts = rg.tensor(a), rg.tensor(idx), rg.tensor(src)
    if strided:
        ta = rg.tensor(np.ascontiguousarray(a.transpose(2, 1, 0))).permute(2, 1, 0)
        ti = rg.tensor(np.ascontiguousarray(idx.transpose(1, 0, 2))).permute(1, 0, 2)
        ts = rg.tensor(np.repeat(src, 2, axis=2))[:, :, ::2]  # src, every other column
    np.testing.assert_array_equal(ta.gather(dim, ti).numpy(), np_gather(a, dim, idx))
    np.testing.assert_allclose(ta.scatter_add(dim, ti, ts).numpy(), np_scatter(a, dim, idx, src, True), rtol=1e-6)
    np.testing.assert_array_equal(ta.scatter(dim, ti, 2.5).numpy(), np_scatter(a, dim, idx, 2.5, False))
    # scatter with repeated targets: the last write in row-major index order wins, as on CPU.
    np.testing.assert_array_equal(ta.scatter(dim, ti, ts).numpy(), np_scatter(a, dim, idx, src, False))
    # Out of range either way is PyTorch's RuntimeError (negative indices do not wrap here).
    for bad in (a.shape[dim], -1):
        wrong = rg.tensor(np.full(ishape, bad))
        for op in (lambda: ta.gather(dim, wrong), lambda: ta.scatter_add(dim, wrong, ts), lambda: ta.scatter(dim, wrong, 1.0)):
            with pytest.raises(RuntimeError, match=f"index {bad} is out of bounds for dimension {dim % 3} with size"):
                op()
