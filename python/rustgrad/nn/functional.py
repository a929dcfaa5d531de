"""``rustgrad.nn.functional``: stateless ops on tensors, each a single engine op."""
from __future__ import annotations

from .. import _C


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


def pad(input, pad, mode="constant", value=None):
    if mode != "constant":
        raise NotImplementedError(f"rustgrad.nn.functional.pad: mode '{mode}' is not supported (only 'constant')")
    return _C._pad(input, tuple(pad), value)


def _reduction(size_average, reduce, reduction):
    # The deprecated size_average/reduce pair, as PyTorch still accepts it.
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    return ("mean" if size_average else "sum") if reduce else "none"


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    if weight is not None:
        raise NotImplementedError("rustgrad.nn.functional.mse_loss: weight is not supported")
    return _C._mse_loss(input, target, _reduction(size_average, reduce, reduction))


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    return _C._nll_loss(input, target, weight, ignore_index, _reduction(size_average, reduce, reduction))


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    if label_smoothing != 0.0:
        raise NotImplementedError("rustgrad.nn.functional.cross_entropy: label_smoothing is not supported")
    if target.is_floating_point():
        raise NotImplementedError("rustgrad.nn.functional.cross_entropy: class-probability targets are not supported")
    logp = input.log_softmax(0 if input.dim() == 1 else 1)
    return nll_loss(logp, target, weight, None, ignore_index, None, _reduction(size_average, reduce, reduction))
