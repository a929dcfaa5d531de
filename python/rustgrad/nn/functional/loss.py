"""Loss functions (``rustgrad.nn.functional``)."""
from __future__ import annotations

from ... import _C


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
