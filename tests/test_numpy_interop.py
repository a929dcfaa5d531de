# NumPy interop: from_numpy and Tensor.numpy() share memory both ways (also for strided arrays
# and views), as_tensor shares when no conversion is needed, tensor() always copies.
import numpy as np
import pytest
import rustgrad as rg
from _helpers import DTYPE_NAMES, assert_same, from_torch, requires_torch, to_torch, torch_or_none


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_from_numpy_dtypes_and_sharing(name):
    a = np.array([[1, 0], [2, 3]]).astype(name)
    t = rg.from_numpy(a)
    assert t.dtype is getattr(rg, name) and t.shape == (2, 2) and t.stride() == (2, 1)
    a[0, 1] = 1
    assert t[0, 1].item() == a[0, 1]
    t[1, 0] = 0
    assert a[1, 0] == 0
    assert_same(t, a)


@pytest.mark.parametrize("make, strides", [
    (lambda: np.arange(12.0).reshape(3, 4)[:, ::2], (4, 2)),
    (lambda: np.arange(12.0).reshape(3, 4).T, (1, 4)),
    (lambda: np.arange(24, dtype=np.int32).reshape(2, 3, 4)[1:, ::2, 1:3], (12, 8, 1)),
    (lambda: np.arange(12.0).reshape(3, 4)[1], (1,)),
])
def test_from_numpy_strided_shares(make, strides):
    a = make()
    t = rg.from_numpy(a)
    assert t.stride() == strides
    assert_same(t, a)
    a[0] = -1
    assert_same(t, a)
    t.fill_(7)
    assert (a == 7).all()


def test_numpy_shares_memory():
    t = rg.ones(5)
    n = t.numpy()
    assert n.dtype == np.float32 and n.shape == (5,)
    t.add_(1)
    assert (n == 2).all()
    n[0] = 5
    assert t[0].item() == 5.0


@pytest.mark.parametrize("view", [lambda t: t.T, lambda t: t[1:, ::2], lambda t: t[2],
                                  lambda t: t.expand(2, 3, 4)[1]])
def test_numpy_of_view_shares(view):
    base = rg.arange(12, dtype=rg.float64).reshape(3, 4)
    v = view(base)
    n = v.numpy()
    assert n.shape == tuple(v.shape)
    assert n.strides == tuple(s * 8 for s in v.stride())
    assert_same(v, n)
    base.mul_(-1)
    assert_same(v, n)


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_numpy_dtype_and_0d(name):
    n = rg.tensor([1, 0], dtype=getattr(rg, name)).numpy()
    assert n.dtype == np.dtype(name)
    s = rg.tensor(3, dtype=getattr(rg, name)).numpy()
    assert isinstance(s, np.ndarray) and s.shape == () and s.dtype == np.dtype(name)


def test_np_asarray_uses_the_tensor():
    t = rg.tensor([[1.0, 2.0], [3.0, 4.0]])
    n = np.asarray(t)
    assert n.dtype == np.float32 and n.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    n[0, 0] = 9
    assert t[0, 0].item() == 9.0
    assert np.asarray(t.T).tolist() == [[9.0, 3.0], [2.0, 4.0]]


def test_as_tensor():
    a = np.array([1.0, 2.0])
    t = rg.as_tensor(a)
    assert t.dtype is rg.float64
    a[0] = 5
    assert t[0].item() == 5.0  # shares: same dtype, no copy needed
    c = rg.as_tensor(a, dtype=rg.float32)
    a[1] = 7
    assert c.dtype is rg.float32 and c.tolist() == [5.0, 2.0]  # converted: a copy
    assert_same(rg.as_tensor([1, 2]), np.array([1, 2]))
    u = rg.tensor([1.0, 2.0])
    assert rg.as_tensor(u).data_ptr() == u.data_ptr()
    assert_same(rg.as_tensor(u, dtype=rg.float64), np.array([1.0, 2.0]))


def test_tensor_copies_numpy():
    a = np.zeros(3, np.float32)
    t = rg.tensor(a)
    a[0] = 1
    t[1] = 2
    assert a.tolist() == [1.0, 0.0, 0.0] and t.tolist() == [0.0, 2.0, 0.0]


def test_roundtrip_values():
    rng = np.random.default_rng(0)
    for a in (rng.standard_normal((3, 4)).astype(np.float32), rng.integers(-9, 9, (5,)),
              rng.standard_normal(()), rng.random((2, 2)) > 0.5):
        assert_same(rg.from_numpy(a), a, rtol=0, atol=0)
        assert_same(rg.tensor(a), a, rtol=0, atol=0)
        np.testing.assert_array_equal(rg.tensor(a).numpy(), a)


@requires_torch
def test_torch_roundtrip_helpers():
    torch = torch_or_none()
    t = rg.tensor([[1.5, -2.0]])
    tt = to_torch(t)
    assert isinstance(tt, torch.Tensor) and tt.dtype == torch.float32 and tt.tolist() == t.tolist()
    back = from_torch(torch.tensor([1, 2], dtype=torch.int32))
    assert back.dtype is rg.int32 and back.tolist() == [1, 2]
