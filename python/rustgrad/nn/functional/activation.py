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
