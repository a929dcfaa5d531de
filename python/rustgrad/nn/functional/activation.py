"""Activations and softmax (``rustgrad.nn.functional``)."""
from __future__ import annotations

from ... import _C


def relu(input, inplace=False):
    return _C._activation(input, "relu", inplace=inplace)


def relu_(input):
    return _C._activation(input, "relu", inplace=True)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return _C._activation(input, "leaky_relu", negative_slope, inplace=inplace)


def elu(input, alpha=1.0, inplace=False):
    return _C._activation(input, "elu", alpha, 1.0, 1.0, inplace=inplace)


def selu(input, inplace=False):
    alpha, scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
    return _C._activation(input, "elu", alpha, scale, 1.0, inplace=inplace)


def celu(input, alpha=1.0, inplace=False):
    return _C._activation(input, "elu", alpha, 1.0, 1.0 / alpha, inplace=inplace)


def gelu(input, approximate="none"):
    if approximate not in ("none", "tanh"):
        raise RuntimeError(f"approximate argument must be either none or tanh.")
    return _C._activation(input, "gelu" if approximate == "none" else "gelu_tanh")


def silu(input, inplace=False):
    return _C._activation(input, "silu", inplace=inplace)


def softplus(input, beta=1.0, threshold=20.0):
    return _C._activation(input, "softplus", beta, threshold)


def sigmoid(input):
    return input.sigmoid()


def tanh(input):
    return input.tanh()


def _softmax_dim(ndim):
    # PyTorch's legacy choice when dim is omitted.
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    return input.softmax(_softmax_dim(input.dim()) if dim is None else dim, dtype=dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    return input.log_softmax(_softmax_dim(input.dim()) if dim is None else dim, dtype=dtype)


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    return softmax(-input, dim, dtype=dtype)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    return _C._activation(input, "hardtanh", min_val, max_val, inplace=inplace)


def hardtanh_(input, min_val=-1.0, max_val=1.0):
    return hardtanh(input, min_val, max_val, inplace=True)


def relu6(input, inplace=False):
    return _C._activation(input, "hardtanh", 0.0, 6.0, inplace=inplace)


def hardsigmoid(input, inplace=False):
    return _C._activation(input, "hardsigmoid", inplace=inplace)


def hardswish(input, inplace=False):
    return _C._activation(input, "hardswish", inplace=inplace)


def mish(input, inplace=False):
    return _C._activation(input, "mish", inplace=inplace)


def logsigmoid(input):
    return _C._activation(input, "logsigmoid")


def threshold(input, threshold, value, inplace=False):
    return _C._activation(input, "threshold", threshold, value, inplace=inplace)


def threshold_(input, threshold, value):
    return _C._activation(input, "threshold", threshold, value, inplace=True)


def hardshrink(input, lambd=0.5):
    return _C._activation(input, "hardshrink", lambd)


def softshrink(input, lambd=0.5):
    if lambd < 0:
        raise RuntimeError(f"lambda must be greater or equal to 0, but found to be {lambd}.")
    return _C._activation(input, "softshrink", lambd)


# Composed from other ops, as in PyTorch (their grad_fn is the last op's).

def softsign(input):
    return input / (input.abs() + 1.0)


def tanhshrink(input):
    return input - input.tanh()


def glu(input, dim=-1):
    if input.dim() == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    d = dim % input.dim()
    if input.shape[d] % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {d} is size {input.shape[d]}")
    a, b = input.chunk(2, d)
    return a * b.sigmoid()
