"""Convolutions and sliding-window folds (``rustgrad.nn.functional``): one engine op each,
GEMMs over im2col columns in the Rust engine."""
from __future__ import annotations

from ... import _C
from .vision import pad as _pad


def _ntuple(v, n, name):
    if isinstance(v, (list, tuple)):
        if len(v) != n:
            raise RuntimeError(f"expected {name} to be a single integer value or a list of {n} values to match the "
                               f"convolution dimensions, but got {name}={list(v)}")
        return tuple(int(x) for x in v)
    return (int(v),) * n


def _pair(v, name):
    return _ntuple(v, 2, name)


def _same_padding(weight, dilation, spatial):
    """Per-dim (left, extra-right) padding that keeps the input size, as PyTorch's 'same'."""
    ks = weight.shape[-spatial:]
    left, extra = [], []
    for k, d in zip(ks, dilation):
        total = d * (k - 1)
        left.append(total // 2)
        extra.append(total - 2 * (total // 2))
    return tuple(left), tuple(extra)


def _conv(input, weight, bias, stride, padding, dilation, groups, spatial):
    if input.dim() == spatial + 1:
        # Unbatched input runs as a batch of one, as in PyTorch (grad_fn SqueezeBackward1).
        return _conv(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups, spatial).squeeze(0)
    stride = _ntuple(stride, spatial, "stride")
    dilation = _ntuple(dilation, spatial, "dilation")
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0,) * spatial
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise RuntimeError("padding='same' is not supported for strided convolutions")
            padding, extra = _same_padding(weight, dilation, spatial)
            if any(extra):
                # Odd total padding: the extra column/row goes on the right, as in PyTorch.
                pads = []
                for e in reversed(extra):
                    pads += [0, e]
                input = _pad(input, pads)
        else:
            raise RuntimeError(f"Invalid padding string: '{padding}'")
    padding = _ntuple(padding, spatial, "padding")
    if spatial == 1:
        stride, padding, dilation = (1,) + stride, (0,) + padding, (1,) + dilation
    return _C._convolution(input, weight, bias, stride, padding, dilation, False, (0, 0), groups, spatial)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    if input.dim() == 3:
        return conv_transpose2d(input.unsqueeze(0), weight, bias, stride, padding, output_padding, groups,
                                dilation).squeeze(0)
    return _C._convolution(input, weight, bias, _pair(stride, "stride"), _pair(padding, "padding"),
                           _pair(dilation, "dilation"), True, _pair(output_padding, "output_padding"), groups, 2)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    return _C._unfold(input, _pair(kernel_size, "kernel_size"), _pair(dilation, "dilation"),
                      _pair(padding, "padding"), _pair(stride, "stride"))


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    return _C._fold(input, _pair(output_size, "output_size"), _pair(kernel_size, "kernel_size"),
                    _pair(dilation, "dilation"), _pair(padding, "padding"), _pair(stride, "stride"))
