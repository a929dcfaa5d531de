"""Methods of `rustgrad.Tensor` that are naturally Python (printing, iteration, NumPy protocol,
`new_*` constructors). The hot paths (arithmetic, views, indexing) are Rust methods of
`rustgrad._C.Tensor`; these are attached to the same class at import."""
from __future__ import annotations

import numpy as np

from . import _C
from ._tensor_str import tensor_repr

Tensor = _C.Tensor


class _TensorMethods:
    __array_priority__ = 1000  # NumPy defers mixed arithmetic to the tensor

    def __repr__(self, *, tensor_contents=None):
        return tensor_repr(self)

    def __str__(self):
        return tensor_repr(self)

    def __format__(self, spec):
        if self.dim() == 0:
            return self.item().__format__(spec)
        return object.__format__(self, spec)

    def __iter__(self):
        if self.dim() == 0:
            raise TypeError("iteration over a 0-d tensor")
        return iter(self.unbind(0))

    def __reversed__(self):
        return self.flip(0) if self.dim() > 0 else self

    def __contains__(self, element):
        if isinstance(element, (Tensor, int, float, bool)):
            return bool((self == element).any().item())
        raise RuntimeError(
            f"Tensor.__contains__ only supports Tensor or scalar, but you passed in a {type(element)}.")

    def __array__(self, dtype=None, copy=None):
        arr = self.detach().numpy()
        return arr if dtype is None else arr.astype(dtype, copy=False)

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        from .autograd.grad_mode import no_grad
        if not self.is_leaf:
            raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) support the deepcopy "
                               "protocol at the moment.  If you were attempting to deepcopy a module, this may be "
                               "because of a torch.nn.utils.weight_norm usage, see "
                               "https://github.com/pytorch/pytorch/pull/103001")
        with no_grad():
            out = self.clone()
            if self.grad is not None:
                out.grad = self.grad.clone()
        if self.requires_grad and self.is_leaf:
            out.requires_grad_(True)
        memo[id(self)] = out
        return out

    def __reduce_ex__(self, proto):
        # Pickled by value (a NumPy copy), so modules and containers of tensors pickle.
        import numpy as np
        return _rebuild_tensor, (np.array(self.detach().numpy(), copy=True), self.requires_grad)

    # ---- new_* constructors: same dtype/device as self unless given ----
    def new_tensor(self, data, dtype=None, device=None, requires_grad=False):
        return _C.tensor(data, dtype=dtype or self.dtype, requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
        return _C.zeros(*size, dtype=dtype or self.dtype, requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
        return _C.ones(*size, dtype=dtype or self.dtype, requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False):
        return _C.empty(*size, dtype=dtype or self.dtype, requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
        return _C.full(size, fill_value, dtype=dtype or self.dtype, requires_grad=requires_grad)

    def repeat(self, *sizes):
        """Tiles the tensor `sizes[i]` times along dim i (leading dims added as needed), as
        `torch.Tensor.repeat` / `numpy.tile`: a view that repeats each dim through expand, made
        into a new tensor by the final reshape (always a copy, like PyTorch's)."""
        if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
            sizes = tuple(sizes[0])
        sizes = tuple(int(r) for r in sizes)
        if len(sizes) < self.dim():
            raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number "
                               "of dimensions of tensor")
        if any(r < 0 for r in sizes):
            raise RuntimeError(f"Trying to create tensor with negative dimension {min(sizes)}: {list(sizes)}")
        shape = (1,) * (len(sizes) - self.dim()) + tuple(self.shape)
        paired = [d for s in shape for d in (1, s)]
        expanded = [d for r, s in zip(sizes, shape) for d in (r, s)]
        out = self.reshape(paired).expand(expanded).reshape([r * s for r, s in zip(sizes, shape)])
        return out.clone() if all(r == 1 for r in sizes) else out

    # ---- conversions with PyTorch's short names ----
    def float(self):
        return self.to(_C.float32)

    def double(self):
        return self.to(_C.float64)

    def long(self):
        return self.to(_C.int64)

    def int(self):
        return self.to(_C.int32)

    def byte(self):
        return self.to(_C.uint8)

    def bool(self):
        return self.to(_C.bool)

    # ---- in-place random fills ----
    def uniform_(self, a=0.0, b=1.0, *, generator=None):
        _C._uniform_(self, float(a), float(b), generator)
        return self

    def normal_(self, mean=0.0, std=1.0, *, generator=None):
        _C._normal_(self, float(mean), float(std), generator)
        return self

    def random_(self, from_=0, to=None, *, generator=None):
        if to is None:
            # PyTorch's default range: every value the dtype holds exactly (floats: up to 2^mantissa).
            top = {"float32": 2 ** 24, "float64": 2 ** 53, "int64": 2 ** 63 - 1, "int32": 2 ** 31 - 1,
                   "uint8": 256, "bool": 2}.get(str(self.dtype).rsplit(".", 1)[-1], 2 ** 24)
            from_, to = 0, from_ if from_ else top
        self.copy_(_C.randint(from_, to, self.shape, generator=generator, dtype=self.dtype))
        return self


def _rebuild_tensor(array, requires_grad):
    t = _C.from_numpy(array)
    return t.requires_grad_(True) if requires_grad else t


def install() -> None:
    """Attach the Python-level methods to the native Tensor class."""
    for name, value in vars(_TensorMethods).items():
        if name.startswith("__") and name not in {
            "__repr__", "__str__", "__format__", "__iter__", "__reversed__", "__contains__",
            "__array__", "__deepcopy__", "__reduce_ex__", "__array_priority__",
        }:
            continue
        setattr(Tensor, name, value)
