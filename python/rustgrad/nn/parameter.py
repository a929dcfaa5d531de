"""``nn.Parameter`` (a Tensor a Module registers as learnable state) and ``nn.Buffer`` (a marker
that makes an assigned tensor a buffer)."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import _C

Tensor = _C.Tensor

__all__ = ["Parameter", "Buffer"]


def _shared_leaf(cls, data, requires_grad):
    # A new object of class `cls` over data's storage, with no autograd history of its own.
    t = Tensor.__new__(cls, _shares=data.detach())
    t.requires_grad_(requires_grad)
    return t


def _rebuild_parameter(array, requires_grad, hooks=None):
    # Pickled parameters travel as NumPy arrays: a CPU tensor's dtype maps one to one.
    return Parameter(_C.from_numpy(array), requires_grad)


class Parameter(Tensor):
    """A Tensor that a Module registers as a parameter when assigned as an attribute.
    Ops on a Parameter return plain Tensors."""

    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            data = _C.empty(0)
        return _shared_leaf(cls, data, requires_grad)

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        result = type(self)(self.data.clone(), self.requires_grad)
        memo[id(self)] = result
        return result

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__

    def __reduce_ex__(self, proto):
        array = np.array(self.detach().numpy(), copy=True)
        return _rebuild_parameter, (array, self.requires_grad, OrderedDict())


class _BufferMeta(type(Tensor)):
    # A Buffer is a plain tensor carrying a flag, as in PyTorch; isinstance reads the flag.
    def __instancecheck__(cls, instance):
        if cls is Buffer and isinstance(instance, Tensor) and getattr(instance, "_is_buffer", False):
            return True
        return super().__instancecheck__(instance)


class Buffer(Tensor, metaclass=_BufferMeta):
    """Marks a tensor assigned to a Module attribute as a buffer (``persistent`` as in
    ``register_buffer``)."""

    def __new__(cls, data=None, *, persistent=True):
        if data is None:
            data = _C.empty(0)
        t = data.detach().requires_grad_(data.requires_grad)
        t._is_buffer = True
        t.persistent = persistent
        return t
