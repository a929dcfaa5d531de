"""The functional namespace (`rustgrad.add(a, b)`, `rustgrad.sum(t, 1)`, ...): each name is the
native Tensor method itself, so there is no Python wrapper on the call path; plus the
`*_like` factories."""
from __future__ import annotations

from . import _C

Tensor = _C.Tensor

# Methods whose functional form takes the tensor as first argument.
METHOD_FUNCTIONS = """
add sub subtract mul multiply div divide true_divide floor_divide remainder pow maximum minimum
eq ne not_equal lt less le less_equal gt greater ge greater_equal equal allclose
logical_and logical_or logical_xor logical_not bitwise_and bitwise_or bitwise_xor bitwise_not
neg negative abs absolute sign relu square exp log log2 log10 log1p expm1 erf erfc sqrt rsqrt sin cos tan
tanh sigmoid reciprocal floor ceil round trunc clamp clip isnan isinf isfinite
sum mean prod max min amax amin argmax argmin all any matmul mm dot
reshape flatten unflatten squeeze unsqueeze transpose swapaxes t permute movedim moveaxis
narrow as_strided select unbind split chunk flip roll nonzero clone numel detach
var std logsumexp softmax log_softmax norm cumsum gather scatter scatter_add index_select
masked_fill bmm addmm outer ger mv
""".split()


# The `*_like` factories lay their result out by `memory_format` (default `preserve_format`:
# a dense input's own strides, as PyTorch), so they start from `_C._empty_like` (zeros, as
# `empty`) and fill it in place.
def _filled_like(input, dtype, memory_format, requires_grad, fill):
    t = _C._empty_like(input, dtype, memory_format)
    fill(t)
    return t.requires_grad_() if requires_grad else t


def zeros_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    return _filled_like(input, dtype, memory_format, requires_grad, lambda t: None)


def ones_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    return _filled_like(input, dtype, memory_format, requires_grad, lambda t: t.fill_(1))


def empty_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    return _filled_like(input, dtype, memory_format, requires_grad, lambda t: None)


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    return _filled_like(input, dtype, memory_format, requires_grad, lambda t: t.fill_(fill_value))


def rand_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    return _filled_like(input, dtype, memory_format, requires_grad, lambda t: t.uniform_())


def randn_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    return _filled_like(input, dtype, memory_format, requires_grad, lambda t: t.normal_())


def randint_like(input, low=0, high=None, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    if high is None:
        low, high = 0, low
    return _filled_like(input, dtype, memory_format, requires_grad, lambda t: t.random_(low, high))


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def is_floating_point(input) -> bool:
    return input.is_floating_point()


def numel(input) -> int:
    return input.numel()


def concat(tensors, dim=0, *, out=None):
    return _C.cat(tensors, dim, out=out)


concatenate = concat


def namespace() -> dict:
    """Every functional name, for `rustgrad/__init__.py` to export."""
    ns = {name: getattr(Tensor, name) for name in METHOD_FUNCTIONS}
    for name in ("zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like",
                 "randint_like", "is_tensor", "is_floating_point", "numel", "concat", "concatenate"):
        ns[name] = globals()[name]
    return ns
