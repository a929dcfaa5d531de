# Flattening parameters into one vector and back (``nn.utils.convert_parameters``). The CPU
# engine has a single device, so PyTorch's same-device check has nothing to reject.
from __future__ import annotations

from ... import _C

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def parameters_to_vector(parameters):
    return _C.cat([param.view(-1) for param in parameters])


def vector_to_parameters(vec, parameters):
    if not isinstance(vec, _C.Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {_typename(vec)}")
    pointer = 0
    for param in parameters:
        num_param = param.numel()
        # Rebinding .data makes each parameter a view of `vec`, exactly as PyTorch does.
        param.data = vec[pointer:pointer + num_param].view_as(param).data
        pointer += num_param


def _typename(obj):
    # torch.typename: the qualified class name for Python objects
    module = type(obj).__module__
    name = type(obj).__qualname__
    return name if module in ("builtins", "__builtin__") else f"{module}.{name}"
