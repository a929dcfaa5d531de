"""`rustgrad.Size`: the tuple subclass returned by `Tensor.shape` and `Tensor.size()`."""
from __future__ import annotations

import math


class Size(tuple):
    """A tuple of ints that prints as ``rustgrad.Size([2, 3])``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"rustgrad.Size([{', '.join(str(d) for d in self)}])"

    __str__ = __repr__

    def numel(self) -> int:
        return math.prod(self)

    def __getitem__(self, key):
        item = super().__getitem__(key)
        return Size(item) if isinstance(key, slice) else item

    def __add__(self, other):
        return Size(tuple(self) + tuple(other))

    def __radd__(self, other):
        return Size(tuple(other) + tuple(self))

    def __mul__(self, n):
        return Size(tuple(self) * n)

    __rmul__ = __mul__

    def __reduce__(self):
        return (Size, (tuple(self),))
