# Shared test helpers: the PyTorch probe, reference comparison against NumPy or PyTorch, and
# (rustgrad tensor, numpy array) pairs with equal values in contiguous and strided layouts.
import importlib

import numpy as np
import pytest

FLOAT_NAMES = ("float32", "float64")
DTYPE_NAMES = ("float32", "float64", "int64", "int32", "uint8", "bool")


def _rg():
    # Imported lazily so that conftest's backend alias is in place first.
    return importlib.import_module("rustgrad")


def torch_or_none():
    """The real PyTorch module, or None where it cannot be imported."""
    try:
        return importlib.import_module("torch")
    except Exception:  # ImportError, or a broken install raising OSError
        return None


requires_torch = pytest.mark.skipif(torch_or_none() is None, reason="PyTorch is not importable")


def params(rows):
    """Table rows (id, *args) -> pytest params named by their first column."""
    return [pytest.param(*row[1:], id=row[0]) for row in rows]


def norm(s):
    """A repr/str from PyTorch spelled the rustgrad way: 'torch.float32' -> 'rustgrad.float32'."""
    return str(s).replace("torch.", "rustgrad.")


def dtype_name(d):
    """'rustgrad.<name>' for a rustgrad/torch dtype, a NumPy dtype or a bare name like 'int64'."""
    if isinstance(d, str):
        return d if d.startswith("rustgrad.") else "rustgrad." + d
    if isinstance(d, (np.dtype, type)):
        return "rustgrad." + np.dtype(d).name
    return norm(d)


def _np_dtype(name):
    return np.dtype(dtype_name(name).split(".", 1)[1])


def to_numpy(t):
    """A tensor's values as a NumPy array (works for rustgrad and torch tensors)."""
    if getattr(t, "requires_grad", False):
        t = t.detach()
    if hasattr(t, "cpu"):
        t = t.cpu()
    return np.asarray(t.numpy())


def assert_same(actual, expected, rtol=1e-6, atol=1e-6, dtype=None):
    """Assert a tensor has the values, shape and dtype of `expected`.

    `expected` is a NumPy array (or scalar), a torch tensor, or a list/number together with
    `dtype=`; `dtype=` also overrides the expected dtype (e.g. NumPy's float64 -> 'float32').
    Floats compare with rtol/atol (NaNs equal); other dtypes compare exactly."""
    assert not isinstance(actual, (np.ndarray, np.generic)), "expected a tensor, got a NumPy value"
    if hasattr(expected, "dtype") and not isinstance(expected, (np.ndarray, np.generic)):
        exp_dtype, exp = dtype_name(expected.dtype), to_numpy(expected)  # a torch tensor
    elif isinstance(expected, (np.ndarray, np.generic)):
        exp = np.asarray(expected)
        exp_dtype = dtype_name(exp.dtype)
    else:
        if dtype is None:
            raise TypeError("assert_same needs dtype= for a list or Python scalar")
        exp = np.asarray(expected)
        exp_dtype = dtype_name(dtype)
    if dtype is not None:
        exp_dtype = dtype_name(dtype)
        exp = exp.astype(_np_dtype(exp_dtype))
    assert dtype_name(actual.dtype) == exp_dtype, f"dtype {dtype_name(actual.dtype)} != {exp_dtype}"
    assert tuple(actual.shape) == exp.shape, f"shape {tuple(actual.shape)} != {exp.shape}"
    got = to_numpy(actual)
    assert got.shape == exp.shape and got.dtype == exp.dtype, (got.shape, got.dtype)
    if exp.dtype.kind == "f":
        np.testing.assert_allclose(got, exp, rtol=rtol, atol=atol, equal_nan=True)
    else:
        np.testing.assert_array_equal(got, exp)


def to_torch(t):
    """A rustgrad tensor copied into a torch tensor (through NumPy)."""
    return torch_or_none().from_numpy(np.array(to_numpy(t), copy=True))


def from_torch(t):
    """A torch tensor copied into a rustgrad tensor (through NumPy)."""
    return _rg().tensor(np.array(to_numpy(t), copy=True))


def pair(shape, dtype="float32", layout="contig", *, low=-4, high=4, seed=0, nonzero=False):
    """(rustgrad tensor, numpy array) with equal values.

    Floats are multiples of 0.25 in [low, high] (so sums and products are exact), ints lie in
    [low, high], `nonzero` replaces zeros by 1. layout 'T' gives a permuted (reversed-dims)
    view and 'step' a view sliced [::2] along dim 0; both are non-contiguous for ndim >= 2."""
    rg, shape = _rg(), tuple(shape)
    if layout == "T" and len(shape) < 2 or layout == "step" and len(shape) < 1:
        layout = "contig"
    if layout == "step":
        store = (2 * shape[0],) + shape[1:]
    else:
        store = shape[::-1] if layout == "T" else shape
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        data = rng.integers(0, 2, size=store).astype(bool)
    elif dtype in FLOAT_NAMES:
        data = (rng.integers(4 * low, 4 * high + 1, size=store) / 4).astype(dtype)
    else:
        data = rng.integers(low, high + 1, size=store).astype(dtype)
    data = np.asarray(data)
    if nonzero and dtype != "bool":
        data[data == 0] = 1
    base = rg.tensor(data)
    if layout == "T":
        return base.permute(*reversed(range(len(shape)))), data.transpose()
    if layout == "step":
        return base[::2], data[::2]
    return base, data


def check_parity(fn, *arrays, rtol=1e-6, atol=1e-6):
    """Run fn(module, *tensors) with rustgrad and with torch on the same NumPy inputs and
    compare results; where torch raises, rustgrad must raise the same exception type."""
    torch, rg = torch_or_none(), _rg()
    try:
        expected = fn(torch, *[torch.from_numpy(np.array(a, copy=True)) for a in arrays])
    except Exception as err:  # torch rejects this case: rustgrad must reject it the same way
        with pytest.raises(type(err)):
            fn(rg, *[rg.tensor(np.array(a, copy=True)) for a in arrays])
        return
    actual = fn(rg, *[rg.tensor(np.array(a, copy=True)) for a in arrays])
    assert_same(actual, expected, rtol=rtol, atol=atol)


def numeric_grad(fn, arrays, grad_out, eps=1e-6):
    """Central-difference gradients of sum(fn(*arrays) * grad_out) with respect to each array.

    A check of backward that depends on NumPy alone (not on rg.autograd.gradcheck). Each array
    is perturbed in its own dtype, one element at a time; the grads come back in that dtype."""
    xs = [np.array(a, copy=True) for a in arrays]
    g = np.asarray(grad_out, dtype=np.float64)

    def f():
        return float(np.sum(np.asarray(fn(*xs), dtype=np.float64) * g))

    grads = []
    for x in xs:
        grad = np.zeros(x.shape, np.float64)
        for i in np.ndindex(x.shape):
            keep = x[i]
            x[i] = keep + eps
            up = f()
            x[i] = keep - eps
            down = f()
            x[i] = keep
            grad[i] = (up - down) / (2 * eps)
        grads.append(grad.astype(x.dtype))
    return grads
