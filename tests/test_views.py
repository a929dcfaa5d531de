# Views and shape ops: storage sharing (data_ptr, storage_offset, contiguous), and view/reshape/
# flatten/squeeze/transpose/permute/expand/narrow/flip/roll, unbind/split/chunk and cat/stack
# checked against NumPy on contiguous and strided inputs. Error cases live in test_errors.py.
import numpy as np
import pytest
import rustgrad as rg
from _helpers import assert_same, pair, params

LAYOUTS = ["contig", "T", "step"]

# (id, input shape, rustgrad op, NumPy reference) -- valid for every layout
SHAPE_OPS = [
    ("reshape", (2, 3, 4), lambda t: t.reshape(4, -1), lambda a: a.reshape(4, -1)),
    ("reshape_tuple", (2, 3, 4), lambda t: t.reshape((6, 4)), lambda a: a.reshape(6, 4)),
    ("reshape_flat", (2, 3, 4), lambda t: t.reshape(-1), lambda a: a.reshape(-1)),
    ("reshape_0d", (1, 1), lambda t: t.reshape(()), lambda a: a.reshape(())),
    ("reshape_fn", (2, 3, 4), lambda t: rg.reshape(t, (3, 8)), lambda a: a.reshape(3, 8)),
    ("flatten", (2, 3, 4), lambda t: t.flatten(), lambda a: a.reshape(-1)),
    ("flatten_start", (2, 3, 4), lambda t: t.flatten(1), lambda a: a.reshape(2, 12)),
    ("flatten_range", (2, 3, 4), lambda t: t.flatten(0, 1), lambda a: a.reshape(6, 4)),
    ("flatten_neg", (2, 3, 4), lambda t: t.flatten(-2, -1), lambda a: a.reshape(2, 12)),
    ("flatten_fn", (2, 3, 4), lambda t: rg.flatten(t, start_dim=1), lambda a: a.reshape(2, 12)),
    ("unflatten", (2, 3, 4), lambda t: t.unflatten(1, (3, 1)), lambda a: a.reshape(2, 3, 1, 4)),
    ("unflatten_neg", (2, 3, 4), lambda t: t.unflatten(-1, (2, -1)),
     lambda a: a.reshape(2, 3, 2, 2)),
    ("squeeze_all", (1, 3, 1, 2), lambda t: t.squeeze(), lambda a: a.reshape(3, 2)),
    ("squeeze_dim", (1, 3, 1, 2), lambda t: t.squeeze(0), lambda a: a.reshape(3, 1, 2)),
    ("squeeze_neg", (1, 3, 1, 2), lambda t: t.squeeze(-2), lambda a: a.reshape(1, 3, 2)),
    ("squeeze_noop", (1, 3, 1, 2), lambda t: t.squeeze(1), lambda a: a),
    ("squeeze_tuple", (1, 3, 1, 2), lambda t: t.squeeze((0, 2)), lambda a: a.reshape(3, 2)),
    ("squeeze_tuple_partial", (1, 3, 1, 2), lambda t: t.squeeze((0, 1)),
     lambda a: a.reshape(3, 1, 2)),
    ("unsqueeze0", (2, 3), lambda t: t.unsqueeze(0), lambda a: a[None]),
    ("unsqueeze1", (2, 3), lambda t: t.unsqueeze(1), lambda a: a[:, None]),
    ("unsqueeze_neg", (2, 3), lambda t: t.unsqueeze(-1), lambda a: a[..., None]),
    ("unsqueeze_neg_first", (2, 3), lambda t: t.unsqueeze(-3), lambda a: a[None]),
    ("unsqueeze_fn", (2, 3), lambda t: rg.unsqueeze(t, 2), lambda a: a[..., None]),
    ("transpose", (2, 3, 4), lambda t: t.transpose(0, 2), lambda a: np.swapaxes(a, 0, 2)),
    ("transpose_neg", (2, 3, 4), lambda t: t.transpose(-1, 0), lambda a: np.swapaxes(a, 0, 2)),
    ("transpose_fn", (2, 3, 4), lambda t: rg.transpose(t, 1, 2), lambda a: np.swapaxes(a, 1, 2)),
    ("t_2d", (2, 3), lambda t: t.t(), lambda a: a.T),
    ("t_1d", (3,), lambda t: t.t(), lambda a: a),
    ("t_fn", (2, 3), lambda t: rg.t(t), lambda a: a.T),
    ("permute", (2, 3, 4), lambda t: t.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1)),
    ("permute_tuple", (2, 3, 4), lambda t: t.permute((1, 2, 0)), lambda a: a.transpose(1, 2, 0)),
    ("permute_neg", (2, 3, 4), lambda t: t.permute(-1, 0, 1), lambda a: a.transpose(2, 0, 1)),
    ("movedim", (2, 3, 4), lambda t: t.movedim(0, -1), lambda a: np.moveaxis(a, 0, -1)),
    ("movedim_tuple", (2, 3, 4), lambda t: t.movedim((0, 1), (2, 0)),
     lambda a: np.moveaxis(a, (0, 1), (2, 0))),
    ("expand", (3, 1), lambda t: t.expand(3, 4), lambda a: np.broadcast_to(a, (3, 4))),
    ("expand_keep", (3, 1), lambda t: t.expand(-1, 4), lambda a: np.broadcast_to(a, (3, 4))),
    ("expand_new_dim", (3, 1), lambda t: t.expand(2, -1, -1),
     lambda a: np.broadcast_to(a, (2, 3, 1))),
    ("expand_tuple", (3, 1), lambda t: t.expand((2, 3, 5)),
     lambda a: np.broadcast_to(a, (2, 3, 5))),
    ("expand_as", (1, 4), lambda t: t.expand_as(rg.zeros(3, 4)),
     lambda a: np.broadcast_to(a, (3, 4))),
    ("narrow", (2, 3, 4), lambda t: t.narrow(0, 1, 1), lambda a: a[1:2]),
    ("narrow_neg", (2, 3, 4), lambda t: t.narrow(-1, 1, 2), lambda a: a[..., 1:3]),
    ("narrow_fn", (2, 3, 4), lambda t: rg.narrow(t, 1, 0, 2), lambda a: a[:, 0:2]),
    ("flip", (2, 3, 4), lambda t: t.flip(0), lambda a: np.flip(a, 0)),
    ("flip_dims", (2, 3, 4), lambda t: t.flip((0, 2)), lambda a: np.flip(a, (0, 2))),
    ("flip_neg", (2, 3, 4), lambda t: rg.flip(t, [-1]), lambda a: np.flip(a, -1)),
    ("roll_flat", (2, 3, 4), lambda t: t.roll(1), lambda a: np.roll(a, 1)),
    ("roll_dim", (2, 3, 4), lambda t: t.roll(-2, 1), lambda a: np.roll(a, -2, 1)),
    ("roll_dims", (2, 3, 4), lambda t: t.roll((1, 2), (0, 2)),
     lambda a: np.roll(a, (1, 2), (0, 2))),
    ("roll_big_shift", (2, 3, 4), lambda t: rg.roll(t, 7, -1), lambda a: np.roll(a, 7, -1)),
    ("roll_kw", (2, 3, 4), lambda t: t.roll(shifts=-5), lambda a: np.roll(a, -5)),
    ("mT", (2, 3, 4), lambda t: t.mT, lambda a: np.swapaxes(a, -1, -2)),
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape, fn, ref", params(SHAPE_OPS))
def test_shape_op(shape, fn, ref, layout):
    t, a = pair(shape, "float32", layout)
    assert_same(fn(t), ref(a))


VIEW_OPS = [
    ("view", (2, 3, 4), lambda t: t.view(6, 4), lambda a: a.reshape(6, 4)),
    ("view_flat", (2, 3, 4), lambda t: t.view(-1), lambda a: a.reshape(-1)),
    ("view_mid_infer", (2, 3, 4), lambda t: t.view(2, -1, 2), lambda a: a.reshape(2, 6, 2)),
    ("view_tuple", (2, 3, 4), lambda t: t.view((4, 6)), lambda a: a.reshape(4, 6)),
    ("view_size", (2, 3, 4), lambda t: t.view(rg.Size([24])), lambda a: a.reshape(24)),
    ("view_0d", (1,), lambda t: t.view(()), lambda a: a.reshape(())),
    ("view_add_ones", (2, 3), lambda t: t.view(1, 2, 1, 3), lambda a: a.reshape(1, 2, 1, 3)),
    # views of non-contiguous tensors that do not need merging strided dims are valid
    ("view_split_transposed", (3, 2, 4), lambda t: t.transpose(0, 1).view(2, 3, 2, 2),
     lambda a: a.transpose(1, 0, 2).reshape(2, 3, 2, 2)),
    ("view_step_add_dim", (3, 4), lambda t: t[:, ::2].view(3, 2, 1),
     lambda a: a[:, ::2].reshape(3, 2, 1)),
]


@pytest.mark.parametrize("shape, fn, ref", params(VIEW_OPS))
def test_view(shape, fn, ref):
    t, a = pair(shape, "int64")
    out = fn(t)
    assert_same(out, ref(a))
    out.fill_(-9)  # a view: writes reach the base
    assert (t == -9).sum().item() == out.numel()


# Ops that return views: mutating the base shows through the view and vice versa.
VIEWS = [
    ("view", lambda t: t.view(12)), ("reshape", lambda t: t.reshape(2, 6)),
    ("flatten", lambda t: t.flatten()), ("T", lambda t: t.T), ("t", lambda t: t.t()),
    ("transpose", lambda t: t.transpose(0, 1)), ("permute", lambda t: t.permute(1, 0)),
    ("movedim", lambda t: t.movedim(0, 1)), ("unsqueeze", lambda t: t.unsqueeze(1)),
    ("squeeze", lambda t: t.unsqueeze(0).squeeze(0)),
    ("unflatten", lambda t: t.unflatten(1, (2, 2))),
    ("narrow", lambda t: t.narrow(1, 1, 2)), ("row", lambda t: t[1]), ("col", lambda t: t[:, 2]),
    ("slice_step", lambda t: t[::2, 1::2]), ("ellipsis", lambda t: t[..., None, 0]),
    ("unbind", lambda t: t.unbind(1)[2]), ("split", lambda t: t.split(2)[1]),
    ("chunk", lambda t: t.chunk(2, 1)[1]), ("mT", lambda t: t.mT), ("data", lambda t: t.data),
]


@pytest.mark.parametrize("fn", params(VIEWS))
def test_view_shares_storage(fn):
    t = rg.arange(12.0).reshape(3, 4)
    v = fn(t)
    v.mul_(10)  # writes through the view
    v_ref = fn(rg.arange(12.0).reshape(3, 4)) * 10
    assert_same(v, v_ref.numpy())
    assert int((t != rg.arange(12.0).reshape(3, 4)).sum().item()) == int((v_ref != 0).sum().item())
    t.fill_(7.0)  # and reads through it
    assert (v == 7.0).all().item()


def test_expand_is_a_view():
    t = rg.tensor([[1.0], [2.0]])
    e = t.expand(2, 3)
    assert e.stride() == (1, 0) and e.data_ptr() == t.data_ptr()
    t[1, 0] = 5.0
    assert e.tolist() == [[1.0, 1.0, 1.0], [5.0, 5.0, 5.0]]


def test_storage_offset_and_data_ptr():
    t = rg.arange(12, dtype=rg.float32).reshape(3, 4)
    assert t.storage_offset() == 0
    cases = [(t[1], 4), (t[:, 2], 2), (t[1:, 1:], 5), (t[2, 3], 11), (t.T[1], 1),
             (t.view(-1)[7:], 7), (t.narrow(0, 2, 1), 8)]
    for v, offset in cases:
        assert v.storage_offset() == offset
        assert v.data_ptr() == t.data_ptr() + offset * t.element_size()


@pytest.mark.parametrize("layout", ["T", "step"])
def test_contiguous_copies_strided(layout):
    t, a = pair((3, 4), "float32", layout)
    assert not t.is_contiguous()
    c = t.contiguous()
    assert c.is_contiguous() and c.data_ptr() != t.data_ptr() and c.stride() == (4, 1)
    assert_same(c, a)
    c.fill_(0)
    assert_same(t, a)  # a copy: the source is untouched


def test_contiguous_returns_self_when_contiguous():
    t = rg.zeros(3, 4)
    assert t.contiguous().data_ptr() == t.data_ptr()
    row = t[1]
    assert row.contiguous().data_ptr() == row.data_ptr()


def test_reshape_views_when_possible_and_copies_otherwise():
    t = rg.arange(6.0).reshape(2, 3)
    assert t.reshape(3, 2).data_ptr() == t.data_ptr()
    r = t.T.reshape(-1)
    assert r.tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    r.fill_(0)
    assert t.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]


# (id, input shape, rustgrad op, list of NumPy references)
MULTI = [
    ("unbind0", (3, 2), lambda t: t.unbind(), lambda a: list(a)),
    ("unbind1", (3, 2), lambda t: t.unbind(1), lambda a: [a[:, 0], a[:, 1]]),
    ("unbind_fn", (3, 2), lambda t: rg.unbind(t, -1), lambda a: [a[:, 0], a[:, 1]]),
    ("split_int", (5, 3), lambda t: t.split(2), lambda a: np.split(a, [2, 4])),
    ("split_list", (5, 3), lambda t: t.split([1, 4]), lambda a: np.split(a, [1])),
    ("split_dim", (5, 3), lambda t: t.split(2, dim=1), lambda a: np.split(a, [2], axis=1)),
    ("split_list_dim", (5, 3), lambda t: rg.split(t, [1, 0, 2], -1),
     lambda a: np.split(a, [1, 1], axis=1)),
    ("split_bigger", (5, 3), lambda t: t.split(7), lambda a: [a]),
    ("chunk", (5, 3), lambda t: t.chunk(3), lambda a: np.split(a, [2, 4])),
    ("chunk_fewer", (6, 3), lambda t: t.chunk(4), lambda a: np.split(a, [2, 4])),
    ("chunk_dim", (5, 3), lambda t: t.chunk(2, dim=1), lambda a: np.split(a, [2], axis=1)),
    ("chunk_fn", (5, 3), lambda t: rg.chunk(t, 5), lambda a: np.split(a, [1, 2, 3, 4])),
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape, fn, ref", params(MULTI))
def test_multi_output(shape, fn, ref, layout):
    t, a = pair(shape, "float32", layout)
    out, expected = fn(t), ref(a)
    assert isinstance(out, tuple) and len(out) == len(expected)
    for o, e in zip(out, expected):
        assert_same(o, e)


# (id, input shapes, rustgrad op on the list of tensors, NumPy reference)
JOIN = [
    ("cat0", [(2, 3), (1, 3)], lambda ts: rg.cat(ts), lambda as_: np.concatenate(as_)),
    ("cat1", [(2, 3), (2, 1)], lambda ts: rg.cat(ts, dim=1), lambda as_: np.concatenate(as_, 1)),
    ("cat_neg", [(2, 3), (2, 2), (2, 1)], lambda ts: rg.cat(ts, -1),
     lambda as_: np.concatenate(as_, -1)),
    ("cat_tuple", [(2, 2), (2, 2)], lambda ts: rg.cat(tuple(ts)), lambda as_: np.concatenate(as_)),
    ("cat_single", [(2, 3)], lambda ts: rg.cat(ts), lambda as_: as_[0]),
    ("cat_empty_part", [(0, 3), (2, 3)], lambda ts: rg.cat(ts), lambda as_: np.concatenate(as_)),
    ("concat", [(2, 3), (2, 3)], lambda ts: rg.concat(ts, 1), lambda as_: np.concatenate(as_, 1)),
    ("stack", [(2, 3), (2, 3)], lambda ts: rg.stack(ts), lambda as_: np.stack(as_)),
    ("stack1", [(2, 3), (2, 3), (2, 3)], lambda ts: rg.stack(ts, dim=1),
     lambda as_: np.stack(as_, 1)),
    ("stack_neg", [(2, 3), (2, 3)], lambda ts: rg.stack(ts, -1), lambda as_: np.stack(as_, -1)),
    ("stack_0d", [(), ()], lambda ts: rg.stack(ts), lambda as_: np.stack(as_)),
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shapes, fn, ref", params(JOIN))
def test_join(shapes, fn, ref, layout):
    pairs = [pair(s, "float32", layout, seed=i) for i, s in enumerate(shapes)]
    assert_same(fn([p[0] for p in pairs]), ref([p[1] for p in pairs]))


@pytest.mark.parametrize("a, b, out", [("int64", "float32", "float32"),
                                       ("float32", "float64", "float64"),
                                       ("bool", "int32", "int32"), ("uint8", "int32", "int32"),
                                       ("int32", "int64", "int64")])
def test_cat_promotes(a, b, out):
    (x, xa), (y, ya) = pair((2,), a), pair((3,), b, seed=1)
    assert_same(rg.cat([x, y]), np.concatenate([xa, ya]).astype(out), dtype=out)
    assert_same(rg.stack([x, y[:2]]), np.stack([xa, ya[:2]]).astype(out), dtype=out)


def test_join_copies():
    a = rg.zeros(2)
    c = rg.cat([a, a])
    a.fill_(1)
    assert c.tolist() == [0.0] * 4


def test_in_place_t_():
    t = rg.arange(6).reshape(2, 3)
    ptr = t.data_ptr()
    assert t.t_() is t
    assert t.shape == (3, 2) and t.data_ptr() == ptr and t.tolist() == [[0, 3], [1, 4], [2, 5]]


def test_as_strided_views_the_storage_with_bounds_and_gradients():
    a = rg.arange(12.0)
    b = rg.as_strided(a, (3, 2), (4, 1), 2)
    assert b.storage_offset() == 2 and b.stride() == (4, 1)
    assert_same(b, np.arange(12.0, dtype=np.float32)[2:][np.array([[0, 1], [4, 5], [8, 9]])])
    a.add_(1)
    assert b[0, 0].item() == 3.0  # a view: sees writes to the base
    with pytest.raises(RuntimeError, match="out of bounds for storage"):
        a.as_strided((5, 5), (5, 1))
    x = rg.arange(12.0, requires_grad=True)
    y = x.as_strided((2, 3), (1, 2), 1)
    y.sum().backward()
    assert_same(x.grad, np.array([0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0], dtype=np.float32))
    assert type(y.grad_fn).__name__ == "AsStridedBackward0"
    with pytest.raises(RuntimeError, match="non-overlapping"):
        x.as_strided((3, 3), (1, 1))  # overlapping windows of a tensor that requires grad


@pytest.mark.parametrize("reps", [(2, 1), (1, 1), (2, 3, 2), ((3, 2),), (0, 2), (1, 1, 1)])
def test_repeat_tiles_like_numpy(reps):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = rg.tensor(a)
    r = t.repeat(*reps)
    want = np.tile(a, reps[0] if len(reps) == 1 else reps)
    np.testing.assert_array_equal(r.numpy(), want)
    # Always a copy, even when nothing repeats.
    if r.numel():
        r.view(-1)[0] = 99.0
    assert t[0, 0].item() == 0.0


def test_repeat_gradient_sums_the_copies_and_rejects_too_few_dims():
    x = rg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    (x.repeat(3, 2) * rg.arange(24.0).reshape(6, 4)).sum().backward()
    g = np.arange(24.0).reshape(3, 2, 2, 2).sum((0, 2))
    np.testing.assert_allclose(x.grad.numpy(), g)
    with pytest.raises(RuntimeError, match="can not be smaller than number of dimensions"):
        x.repeat(2)
