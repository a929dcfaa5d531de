# Dropout family (``rustgrad.nn.functional``): elementwise and channel-wise ("feature") masks
# drawn from the global RNG, plus the SELU-preserving alpha variants. As in PyTorch, the
# result is input * noise (MulBackward0), and eval mode / p == 0 returns the input itself.
from __future__ import annotations

import math
import warnings

from ... import _C

__all__ = ["dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"]

_ALPHA = 1.7580993408473766  # -SELU's scale * alpha: the value a dropped SELU unit saturates to
_TYPE_NAMES = {"int64": "Long", "int32": "Int", "uint8": "Byte", "bool": "Bool"}


def _check_p(p):
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _noise_shape(input, feature):
    if not feature:
        return tuple(input.shape)
    if input.dim() < 2:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
    # One draw per (sample, channel), broadcast over the spatial dims.
    return tuple(input.shape[:2]) + (1,) * (input.dim() - 2)


def _dropout_impl(input, p, train, inplace, feature=False, alpha=False):
    _check_p(p)
    if p == 0 or not train or input.numel() == 0:
        return input
    if p == 1:
        # Multiplying (rather than filling zeros) keeps NaN/inf visible, as PyTorch does.
        zero = _C.zeros((), dtype=input.dtype)
        return input.mul_(zero) if inplace else input * zero
    if not input.is_floating_point():
        name = _TYPE_NAMES.get(str(input.dtype).split(".")[-1], str(input.dtype))
        raise RuntimeError(f"result type Float can't be cast to the desired output type {name}")
    keep = _C.rand(_noise_shape(input, feature), dtype=input.dtype) < (1 - p)
    noise = keep.to(input.dtype)
    if not alpha:
        noise = noise / (1 - p)
        return input.mul_(noise) if inplace else input * noise
    # Dropped units go to -alpha', then an affine map restores zero mean and unit variance.
    a = 1.0 / math.sqrt((_ALPHA * _ALPHA * p + 1) * (1 - p))
    shift = (noise - 1) * (_ALPHA * a) + _ALPHA * a * p
    noise = noise * a
    return input.mul_(noise).add_(shift) if inplace else input * noise + shift


def dropout(input, p=0.5, training=True, inplace=False):
    _check_p(p)
    return _dropout_impl(input, p, training, inplace)


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    _check_p(p)
    return _dropout_impl(input, p, training, inplace, alpha=True)


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False):
    _check_p(p)
    return _dropout_impl(input, p, training, inplace, feature=True, alpha=True)


def _unbatched_feature_dropout(input, p, training, inplace, batched):
    # No-batch inputs get a batch dim of 1 so the channel dim sits at 1.
    if batched:
        return _dropout_impl(input, p, training, inplace, feature=True)
    x = input.unsqueeze_(0) if inplace else input.unsqueeze(0)
    result = _dropout_impl(x, p, training, inplace, feature=True)
    return result.squeeze_(0) if inplace else result.squeeze(0)


def dropout1d(input, p=0.5, training=True, inplace=False):
    _check_p(p)
    if input.dim() not in (2, 3):
        raise RuntimeError(
            f"dropout1d: Expected 2D or 3D input, but received a {input.dim()}D input. Note that dropout1d "
            "exists to provide channel-wise dropout on inputs with 1 spatial dimension, a channel dimension, "
            "and an optional batch dimension (i.e. 2D or 3D inputs).")
    return _unbatched_feature_dropout(input, p, training, inplace, input.dim() == 3)


def _warn_unusual_dim(n, dim):
    # dropoutNd on anything but (C, *spatial) or (N, C, *spatial) is deprecated, not yet an error.
    if dim not in (n + 1, n + 2):
        warnings.warn(
            f"dropout{n}d: Received a {dim}-D input to dropout{n}d, which is deprecated and will result in an "
            "error in a future release. To retain the behavior and silence this warning, please use dropout "
            f"instead. Note that dropout{n}d exists to provide channel-wise dropout on inputs with {n} spatial "
            f"dimensions, a channel dimension, and an optional batch dimension (i.e. {n + 1}D or {n + 2}D inputs).",
            stacklevel=3)


def dropout2d(input, p=0.5, training=True, inplace=False):
    _check_p(p)
    dim = input.dim()
    _warn_unusual_dim(2, dim)
    if dim == 3:
        # PyTorch's historical reading of 3-D input: (N, C, L), i.e. 1-D channel dropout.
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout behavior "
            "is desired - input is interpreted as shape (N, C, L), where C is the channel dim. This behavior "
            "will change in a future release to interpret the input as one without a batch dimension, i.e. "
            "shape (C, H, W). To maintain the 1D channel-wise dropout behavior, please switch to using "
            "dropout1d instead.", stacklevel=2)
    return _dropout_impl(input, p, training, inplace, feature=True)


def dropout3d(input, p=0.5, training=True, inplace=False):
    _check_p(p)
    dim = input.dim()
    _warn_unusual_dim(3, dim)
    return _unbatched_feature_dropout(input, p, training, inplace, dim == 5)
