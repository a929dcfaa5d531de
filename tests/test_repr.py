# A few repr checks per dtype (the formatter's detailed spec is test_tensor_str.py): literal
# expectations that always run, and the same cases compared with PyTorch's repr where available.
import pytest
import rustgrad as rg
from _helpers import norm, params, requires_torch, torch_or_none

# (id, builder taking the module, expected repr)
REPRS = [
    ("int64", lambda m: m.tensor([1, 2, 3]), "tensor([1, 2, 3])"),
    ("float32", lambda m: m.tensor([1.5, 2.0, -3.25]), "tensor([ 1.5000,  2.0000, -3.2500])"),
    ("float32_integral", lambda m: m.tensor([[1.0, 2.0], [3.0, 4.0]]),
     "tensor([[1., 2.],\n        [3., 4.]])"),
    ("float64", lambda m: m.tensor([1.5, 2.0], dtype=m.float64),
     "tensor([1.5000, 2.0000], dtype=rustgrad.float64)"),
    ("int32", lambda m: m.tensor([1, -2], dtype=m.int32), "tensor([ 1, -2], dtype=rustgrad.int32)"),
    ("uint8", lambda m: m.tensor([1, 255], dtype=m.uint8),
     "tensor([  1, 255], dtype=rustgrad.uint8)"),
    ("bool", lambda m: m.tensor([True, False]), "tensor([ True, False])"),
    ("0d_float", lambda m: m.tensor(3.5), "tensor(3.5000)"),
    ("0d_int", lambda m: m.tensor(7), "tensor(7)"),
    ("0d_float64", lambda m: m.tensor(2.5, dtype=m.float64),
     "tensor(2.5000, dtype=rustgrad.float64)"),
    ("empty", lambda m: m.zeros(0), "tensor([])"),
    ("empty_int", lambda m: m.zeros(0, dtype=m.int64), "tensor([], dtype=rustgrad.int64)"),
    ("requires_grad", lambda m: m.tensor([1.0, 2.0], requires_grad=True),
     "tensor([1., 2.], requires_grad=True)"),
    ("wide_floats", lambda m: m.tensor([0.1, 100.0]), "tensor([  0.1000, 100.0000])"),
]


@pytest.mark.parametrize("fn, expected", params(REPRS))
def test_repr(fn, expected):
    t = fn(rg)
    assert norm(repr(t)) == expected and norm(str(t)) == expected


@requires_torch
@pytest.mark.parametrize("fn, expected", params(REPRS))
def test_repr_parity(fn, expected):
    assert norm(repr(fn(rg))) == norm(repr(fn(torch_or_none())))


def test_dtype_device_size_reprs():
    assert norm(repr(rg.int32)) == "rustgrad.int32"
    assert repr(rg.device("cpu")) == "device(type='cpu')"
    assert norm(repr(rg.Size([2, 3]))) == "rustgrad.Size([2, 3])"
