"""Normalization (``rustgrad.nn.functional``): batch, layer and group norm as single engine ops
(``NativeBatchNormBackward0`` and friends), the running statistics updated in the engine."""
from __future__ import annotations

from ... import _C


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    if not training and (running_mean is None or running_var is None):
        raise RuntimeError("running_mean and running_var must be defined in evaluation mode")
    return _C._batch_norm(input, running_mean, running_var, weight, bias, bool(training),
                          0.0 if momentum is None else float(momentum), float(eps))


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    return _C._layer_norm(input, [int(d) for d in normalized_shape], weight, bias, float(eps))


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    if input.dim() < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received {input.dim()}")
    return _C._group_norm(input, int(num_groups), weight, bias, float(eps))
