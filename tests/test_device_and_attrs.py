# Devices (cpu only here) and tensor attributes: shape/Size, size(), ndim, numel, item, tolist,
# element_size, stride, T/mT, data, len() and iteration. Error cases live in test_errors.py.
import numpy as np
import pytest
import rustgrad as rg
from _helpers import assert_same, norm, pair, params


def test_device_object():
    d = rg.device("cpu")
    assert repr(d) == "device(type='cpu')" and str(d) == "cpu" and d.type == "cpu"
    assert d == rg.device("cpu") and rg.device(type="cpu") == d


def test_tensor_device():
    t = rg.zeros(2)
    assert t.device == rg.device("cpu") and t.device.type == "cpu" and str(t.device) == "cpu"
    for dev in ("cpu", rg.device("cpu")):
        for factory in (rg.zeros, rg.ones, rg.rand, rg.randn, rg.empty):
            assert factory(2, device=dev).device == rg.device("cpu")
        assert rg.arange(3, device=dev).device.type == "cpu"
        assert rg.full((2,), 1.0, device=dev).device.type == "cpu"


def test_to_cpu_is_a_no_op():
    t = rg.ones(3)
    for moved in (t.to("cpu"), t.to(rg.device("cpu")), t.cpu(), t.to(device="cpu")):
        assert moved.device.type == "cpu" and moved.data_ptr() == t.data_ptr()


def test_cuda_not_available():
    assert rg.cuda.is_available() is False


def test_shape_is_size():
    t = rg.zeros(2, 3)
    assert isinstance(t.shape, rg.Size) and isinstance(t.shape, tuple)
    assert t.shape == (2, 3) and t.shape == rg.Size([2, 3]) and list(t.shape) == [2, 3]
    assert norm(repr(t.shape)) == "rustgrad.Size([2, 3])" == norm(str(t.shape))
    assert norm(repr(rg.zeros(()).shape)) == "rustgrad.Size([])"
    assert t.shape[-1] == 3 and isinstance(t.shape[0], int)
    assert isinstance(t.shape[1:], rg.Size) and t.shape[1:] == (3,)


@pytest.mark.parametrize("dims, n", [([2, 3], 6), ([], 1), ([4, 0, 2], 0), ([5], 5)])
def test_size_numel(dims, n):
    assert rg.Size(dims).numel() == n
    assert rg.zeros(dims).numel() == n


def test_size_and_dims():
    t = rg.zeros(2, 3, 4)
    assert t.size() == (2, 3, 4) and isinstance(t.size(), rg.Size)
    assert (t.size(0), t.size(1), t.size(-1), t.size(-3)) == (2, 3, 4, 2)
    assert t.ndim == 3 and t.dim() == 3 and t.numel() == 24
    s = rg.tensor(5.0)
    assert s.shape == () and s.ndim == 0 and s.dim() == 0 and s.numel() == 1


ITEM = [
    ("int", lambda: rg.tensor(3), 3, int),
    ("float", lambda: rg.tensor(2.5), 2.5, float),
    ("bool", lambda: rg.tensor(True), True, bool),
    ("one_element_2d", lambda: rg.tensor([[4.0]]), 4.0, float),
    ("int32", lambda: rg.tensor([-7], dtype=rg.int32), -7, int),
    ("uint8", lambda: rg.tensor([200], dtype=rg.uint8), 200, int),
    ("float32_rounded", lambda: rg.tensor(0.1), float(np.float32(0.1)), float),
    ("float64", lambda: rg.tensor(0.1, dtype=rg.float64), 0.1, float),
    ("indexed", lambda: rg.arange(6).reshape(2, 3)[1, 2], 5, int),
]


@pytest.mark.parametrize("fn, value, kind", params(ITEM))
def test_item(fn, value, kind):
    v = fn().item()
    assert type(v) is kind and v == value


TOLIST = [
    ("2d_int", lambda: rg.tensor([[1, 2], [3, 4]]), [[1, 2], [3, 4]], int),
    ("1d_float", lambda: rg.tensor([1.5, -2.0]), [1.5, -2.0], float),
    ("bool", lambda: rg.tensor([True, False]), [True, False], bool),
    ("0d", lambda: rg.tensor(2.5), 2.5, float),
    ("empty", lambda: rg.zeros(0), [], None),
    ("empty_rows", lambda: rg.zeros(2, 0), [[], []], None),
    ("transposed", lambda: rg.tensor([[1, 2], [3, 4]]).T, [[1, 3], [2, 4]], int),
    ("stepped", lambda: rg.arange(6)[::2], [0, 2, 4], int),
    ("float32_widened", lambda: rg.tensor([0.1]), [float(np.float32(0.1))], float),
]


@pytest.mark.parametrize("fn, value, kind", params(TOLIST))
def test_tolist(fn, value, kind):
    out = fn().tolist()
    assert out == value
    flat = np.array(out, dtype=object).ravel().tolist() if isinstance(out, list) else [out]
    assert kind is None or all(type(v) is kind for v in flat)


@pytest.mark.parametrize("name, size", [("float32", 4), ("float64", 8), ("int64", 8),
                                        ("int32", 4), ("uint8", 1), ("bool", 1)])
def test_element_size(name, size):
    assert rg.zeros(2, dtype=getattr(rg, name)).element_size() == size


STRIDES = [
    ("contig_3d", lambda: rg.zeros(2, 3, 4), (12, 4, 1), True),
    ("transposed", lambda: rg.zeros(3, 4).T, (1, 4), False),
    ("step_cols", lambda: rg.zeros(3, 4)[:, ::2], (4, 2), False),
    ("step_rows", lambda: rg.zeros(4, 3)[::2], (6, 1), False),
    ("row", lambda: rg.zeros(3, 4)[1], (1,), True),
    ("column", lambda: rg.zeros(3, 4)[:, 1], (4,), False),
    ("permuted", lambda: rg.zeros(2, 3, 4).permute(2, 0, 1), (1, 12, 4), False),
    ("0d", lambda: rg.zeros(()), (), True),
    ("unsqueezed", lambda: rg.zeros(3, 4).unsqueeze(1), (4, 4, 1), True),
]


@pytest.mark.parametrize("fn, strides, contiguous", params(STRIDES))
def test_stride_and_is_contiguous(fn, strides, contiguous):
    t = fn()
    assert t.stride() == strides and t.is_contiguous() is contiguous
    assert all(t.stride(d) == s for d, s in enumerate(strides))
    if strides:
        assert t.stride(-1) == strides[-1]


@pytest.mark.parametrize("layout", ["contig", "T", "step"])
def test_T_and_mT(layout):
    t, a = pair((3, 4), "float32", layout)
    assert_same(t.T, a.T)
    t3, a3 = pair((2, 3, 4), "int64", layout)
    assert_same(t3.mT, np.swapaxes(a3, -1, -2))


def test_data_shares_storage():
    t = rg.ones(3, requires_grad=True)
    d = t.data
    assert d.requires_grad is False and d.data_ptr() == t.data_ptr()
    d[0] = 5.0
    assert t.detach().tolist() == [5.0, 1.0, 1.0]


def test_len_and_iteration():
    t, a = pair((3, 4), "float32", "T")
    assert len(t) == 3 and len(rg.zeros(0, 2)) == 0
    rows = list(t)
    assert len(rows) == 3
    for r, ar in zip(rows, a):
        assert_same(r, ar)
    items = list(rg.tensor([5, 6]))
    assert [i.shape for i in items] == [(), ()] and [i.item() for i in items] == [5, 6]
