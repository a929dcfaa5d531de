"""Normalization (``rustgrad.nn.functional``): batch, layer and group norm as single engine ops
(``NativeBatchNormBackward0`` and friends), the running statistics updated in the engine."""
from __future__ import annotations

from ... import _C


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    if momentum is None:
        raise TypeError("batch_norm(): argument 'momentum' (position 7) must be float, not NoneType")
    if not training and (running_mean is None or running_var is None):
        raise RuntimeError("running_mean and running_var must be defined in evaluation mode")
    return _C._batch_norm(input, running_mean, running_var, weight, bias, bool(training),
                          float(momentum), float(eps))


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    if not isinstance(normalized_shape, (tuple, list)):
        raise TypeError("layer_norm(): argument 'normalized_shape' (position 2) must be tuple of ints, not "
                        f"{type(normalized_shape).__name__}")
    return _C._layer_norm(input, [int(d) for d in normalized_shape], weight, bias, float(eps))


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    if input.dim() < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received {input.dim()}")
    # PyTorch's batch-size check, including its ZeroDivisionError for num_groups=0.
    values = input.shape[0] * input.shape[1] // num_groups
    for d in input.shape[2:]:
        values *= d
    if values == 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {input.shape}")
    return _C._group_norm(input, int(num_groups), weight, bias, float(eps))
