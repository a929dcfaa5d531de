"""Pooling (``rustgrad.nn.functional``): max/avg/adaptive over the last two dims in the engine;
the 1-d forms run the 2-d kernels on a height of 1, as PyTorch does."""
from __future__ import annotations

from ... import _C


def _pair(v, name="kernel_size"):
    if isinstance(v, (list, tuple)):
        if len(v) == 1:
            return (int(v[0]),) * 2
        if len(v) != 2:
            raise RuntimeError(f"{name} must either be a single int, or a tuple of two ints")
        return (int(v[0]), int(v[1]))
    return (int(v), int(v))


def _single(v, name):
    if isinstance(v, (list, tuple)):
        if len(v) != 1:
            raise RuntimeError(f"{name} must either be a single int, or a tuple of one int")
        return int(v[0])
    return int(v)


def _stride(stride, kernel):
    return kernel if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) else stride


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=True):
    k = _pair(kernel_size)
    return _C._max_pool2d(input, k, _pair(_stride(stride, k), "stride"), _pair(padding, "padding"),
                          _pair(dilation, "dilation"), bool(ceil_mode))


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    out, idx = max_pool2d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)
    return (out, idx) if return_indices else out


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=True):
    if input.dim() not in (2, 3):
        raise RuntimeError(f"max_pool1d() Expected 2D or 3D input tensor, but got {list(input.shape)}")
    k = _single(kernel_size, "max_pool1d() kernel_size")
    s = k if stride is None or stride == () else _single(stride, "max_pool1d() stride")
    out, idx = _C._max_pool2d(input.unsqueeze(-2), (1, k), (1, s), (0, _single(padding, "max_pool1d() padding")),
                              (1, _single(dilation, "max_pool1d() dilation")), bool(ceil_mode))
    return out.squeeze(-2), idx.squeeze(-2)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    out, idx = max_pool1d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)
    return (out, idx) if return_indices else out


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
    k = _pair(kernel_size)
    return _C._avg_pool2d(input, k, _pair(_stride(stride, k), "stride"), _pair(padding, "padding"),
                          bool(ceil_mode), bool(count_include_pad), divisor_override)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    if input.dim() not in (2, 3):
        raise RuntimeError(f"avg_pool1d() Expected 2D or 3D input tensor, but got {list(input.shape)}")
    k = _single(kernel_size, "avg_pool1d() kernel_size")
    s = k if stride is None or stride == () else _single(stride, "avg_pool1d() stride")
    out = _C._avg_pool2d(input.unsqueeze(-2), (1, k), (1, s), (0, _single(padding, "avg_pool1d() padding")),
                         bool(ceil_mode), bool(count_include_pad), None)
    return out.squeeze(-2)


def _adaptive_size(input, output_size):
    size = _pair(output_size, "output_size") if not isinstance(output_size, (list, tuple)) else tuple(output_size)
    if len(size) != 2:
        raise ValueError(f"adaptive pooling expects an output size of 2 values, got {output_size}")
    h, w = input.shape[-2], input.shape[-1]
    # None keeps that dim's input size.
    return (h if size[0] is None else int(size[0]), w if size[1] is None else int(size[1]))


def adaptive_avg_pool2d(input, output_size):
    size = _adaptive_size(input, output_size)
    if size == (1, 1) and input.dim() in (3, 4) and input.is_floating_point() and input.numel() > 0:
        # A mean over each plane, as PyTorch computes it too (grad_fn MeanBackward1 there):
        # the reduction kernel reads the planes as contiguous runs (4x faster than the pool).
        return input.mean((-2, -1), keepdim=True)
    return _C._adaptive_pool2d(input, size, False)[0]


def adaptive_max_pool2d_with_indices(input, output_size, return_indices=True):
    return _C._adaptive_pool2d(input, _adaptive_size(input, output_size), True)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    out, idx = adaptive_max_pool2d_with_indices(input, output_size)
    return (out, idx) if return_indices else out


def adaptive_avg_pool1d(input, output_size):
    if input.dim() not in (2, 3):
        raise RuntimeError(f"adaptive_avg_pool1d(): Expected 2D or 3D tensor, but got {list(input.shape)}")
    o = _single(output_size, "adaptive_avg_pool1d() output_size")
    return _C._adaptive_pool2d(input.unsqueeze(-2), (1, o), False)[0].squeeze(-2)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    if input.dim() not in (2, 3):
        raise RuntimeError(f"adaptive_max_pool1d(): Expected 2D or 3D tensor, but got {list(input.shape)}")
    o = _single(output_size, "adaptive_max_pool1d() output_size")
    out, idx = _C._adaptive_pool2d(input.unsqueeze(-2), (1, o), True)
    out, idx = out.squeeze(-2), idx.squeeze(-2)
    return (out, idx) if return_indices else out
