# Padding and resampling (``rustgrad.nn.functional``): `pad` in every mode and `interpolate`, as
# gathers along one dim at a time (index_select, weighted and summed) that autograd differentiates;
# indices and weights follow PyTorch's formulas in its precision.
from __future__ import annotations

import math

import numpy as np

from ... import _C

__all__ = ["pad", "interpolate"]

_PAD_MODES = ("constant", "reflect", "replicate", "circular")
_AXES = ("W", "H", "D")  # spatial axis names, innermost first, as PyTorch's messages use them


def _gather(x, dim, taps):
    """sum_k x.index_select(dim, idx_k) * w_k: one resampling pass along `dim`.

    `taps` is a list of (indices, weights or None) NumPy arrays, one entry per output."""
    shape = [1] * x.dim()
    shape[dim] = -1
    out = None
    for idx, w in taps:
        term = x.index_select(dim, _C.tensor(np.ascontiguousarray(idx, dtype=np.int64)))
        if w is not None:
            term = term * _C.tensor(np.ascontiguousarray(w).reshape(shape), dtype=x.dtype)
        out = term if out is None else out + term
    return out


def _fmt_sizes(shape):
    return "[" + ", ".join(str(s) for s in shape) + "]"


# ---------------------------------------------------------------- pad

def pad(input, pad, mode="constant", value=None):
    if mode not in _PAD_MODES:
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    pad = tuple(pad)
    for i, p in enumerate(pad):
        if isinstance(p, bool) or not isinstance(p, (int, np.integer)):
            raise TypeError(f"pad(): argument 'pad' failed to unpack the object at pos {i + 1} with error "
                            f"\"type must be tuple of ints,but got {type(p).__name__}\"")
    if len(pad) % 2 != 0:
        raise RuntimeError("Padding length must be divisible by 2")
    if len(pad) > 2 * input.dim():
        raise RuntimeError("Padding length should be less than or equal to two times the input dimension but "
                           f"got padding length {len(pad)} and input of dimension {input.dim()}")
    if mode == "constant":
        return _C._pad(input, pad, value)
    if value is not None and value != 0:
        raise RuntimeError(f"Padding mode \"{mode}\" doesn't take in value argument")
    k = len(pad) // 2
    if k not in (1, 2, 3) or input.dim() not in (k + 1, k + 2):
        raise NotImplementedError(
            f"Padding size {len(pad)} is not supported for {input.dim()}D input tensor.\n"
            "Supported combinations for non-constant padding:\n"
            "  - 2D or 3D input: padding size = 2 (pads last dimension)\n"
            "  - 3D or 4D input: padding size = 4 (pads last 2 dimensions)\n"
            "  - 4D or 5D input: padding size = 6 (pads last 3 dimensions)")
    pairs = [(pad[2 * j], pad[2 * j + 1]) for j in range(k)]  # innermost dim first
    if mode == "circular":
        return _pad_circular(input, pairs)
    _check_reflect_replicate(input, pairs, mode)
    out = input
    for j, (left, right) in enumerate(pairs):
        dim = input.dim() - 1 - j
        n = input.shape[dim]
        src = np.arange(n + left + right, dtype=np.int64) - left
        if mode == "reflect":
            # Mirror about the first and the last element (the edge itself is not repeated).
            src = (n - 1) - np.abs((n - 1) - np.abs(src))
        else:
            src = np.clip(src, 0, n - 1)
        out = _gather(out, dim, [(src, None)])
    return out


def _check_reflect_replicate(input, pairs, mode):
    k, shape = len(pairs), tuple(input.shape)
    batched = input.dim() == k + 2
    if not all(s != 0 for s in (shape[1:] if batched else shape)):
        raise RuntimeError(f"Expected {k + 1}D or {k + 2}D (batch mode) tensor with possibly 0 batch size and "
                           f"other non-zero dimensions for input, but got: {_fmt_sizes(shape)}")
    sizes = [shape[-1 - j] for j in range(k)]  # W, H, D
    outs = [n + l + r for n, (l, r) in zip(sizes, pairs)]
    if mode == "reflect":
        for j, ((l, r), n) in enumerate(zip(pairs, sizes)):
            if not (l < n and r < n):
                raise RuntimeError(
                    f"Argument #{4 + 2 * j}: Padding size should be less than the corresponding input dimension, "
                    f"but got: padding ({l}, {r}) at dimension {input.dim() - 1 - j} of input {_fmt_sizes(shape)}")
    if all(o < 1 for o in outs):
        if k == 1:
            msg = f"input (W: {sizes[0]}) is too small. Calculated output W: {outs[0]}"
        elif k == 2:
            gap = " " if mode == "replicate" else ""
            msg = (f"input (H: {sizes[1]}, W: {sizes[0]}{gap}) is too small. "
                   f"Calculated output H: {outs[1]} W: {outs[0]}")
        else:
            msg = (f"input (D: {sizes[2]} H: {sizes[1]}, W: {sizes[0]}) is too small. "
                   f"Calculated output D: {outs[2]} H: {outs[1]} W: {outs[0]}")
        raise RuntimeError(msg)
    _check_no_negative(shape, pairs)


def _check_no_negative(shape, pairs):
    out_shape = list(shape)
    for j, (l, r) in enumerate(pairs):
        out_shape[-1 - j] += l + r
    bad = [s for s in out_shape if s < 0]
    if bad:
        raise RuntimeError(f"Trying to create tensor with negative dimension {bad[0]}: {_fmt_sizes(out_shape)}")


def _pad_circular(input, pairs):
    k, shape = len(pairs), tuple(input.shape)
    for i in range(k):  # outermost spatial dim first, as PyTorch checks them
        l, r = pairs[k - 1 - i]
        n = shape[input.dim() - k + i]
        if l > n or r > n:
            raise RuntimeError("Padding value causes wrapping around more than once.")
        if n + l + r < 0:
            raise RuntimeError("Negative padding value is resulting in an empty dimension")
    out = input
    for j, (left, right) in enumerate(pairs):
        dim = input.dim() - 1 - j
        n = input.shape[dim]
        # Negative pads crop first; the positive ones then wrap around what is left.
        start, kept = max(-left, 0), n - max(-left, 0) - max(-right, 0)
        total = kept + max(left, 0) + max(right, 0)
        if total == 0:
            out = out.narrow(dim, 0, 0)
            continue
        if kept <= 0:
            # PyTorch wraps uninitialised memory here; there is nothing left to wrap.
            raise RuntimeError("Padding value causes wrapping around more than once.")
        src = start + (np.arange(total, dtype=np.int64) - max(left, 0)) % kept
        out = _gather(out, dim, [(src, None)])
    return out


# ---------------------------------------------------------------- interpolate

def _is_int(x):
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError("align_corners option can only be set with the interpolating modes: "
                             "linear | bilinear | bicubic | trilinear")
    elif align_corners is None:
        align_corners = False
    dim = input.dim() - 2
    in_sizes = list(input.shape[2:])
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        scales = [None] * max(dim, 0)
        if isinstance(size, (list, tuple)):
            if len(size) != dim:
                raise ValueError(
                    "Input and output must have the same number of spatial dimensions, but got input with "
                    f"spatial dimensions of {in_sizes} and output size of {size}. Please provide input tensor "
                    "in (N, C, d1, d2, ...,dK) format and output size in (o1, o2, ...,oK) format.")
            if not all(_is_int(s) for s in size):
                raise TypeError("expected size to be one of int or Tuple[int] or Tuple[int, int] or "
                                f"Tuple[int, int, int], but got size with types {[type(s) for s in size]}")
            out_sizes = [int(s) for s in size]
        else:
            if not _is_int(size):
                raise TypeError(f"expected size to be an int or a tuple of ints, but got {type(size).__name__}")
            out_sizes = [int(size)] * max(dim, 0)
    elif scale_factor is not None:
        if isinstance(scale_factor, (list, tuple)):
            if len(scale_factor) != dim:
                raise ValueError(
                    "Input and scale_factor must have the same number of spatial dimensions, but got input "
                    f"with spatial dimensions of {in_sizes} and scale_factor of shape {scale_factor}. Please "
                    "provide input tensor in (N, C, d1, d2, ...,dK) format and scale_factor in (s1, s2, ...,sK) "
                    "format.")
            scales = [float(s) for s in scale_factor]
        else:
            scales = [float(scale_factor)] * max(dim, 0)
        # PyTorch: floor(in * scale) in double; the scale itself is then used for the indices.
        out_sizes = [int(math.floor(n * s)) for n, s in zip(in_sizes, scales)]
    else:
        raise ValueError("either size or scale_factor should be defined")
    if recompute_scale_factor and size is not None:
        raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
    if mode == "area" and size is None:
        recompute_scale_factor = True
    if recompute_scale_factor:
        scales = [None] * len(scales)  # indices then come from the integer sizes alone
    if antialias and not (mode in ("bilinear", "bicubic") and input.dim() == 4):
        raise ValueError("Anti-alias option is restricted to bilinear, bicubic, and lanczos modes and requires "
                         "a 4-D tensor as input")
    wanted = {"nearest": None, "nearest-exact": None, "area": None, "linear": 3, "bilinear": 4,
              "bicubic": 4, "trilinear": 5}
    if mode not in wanted or input.dim() not in (3, 4, 5):
        raise NotImplementedError(
            f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.dim()}D) for the modes: "
            f"nearest | linear | bilinear | bicubic | trilinear | lanczos | area | nearest-exact (got {mode})")
    if wanted[mode] is not None and wanted[mode] != input.dim():
        if mode == "bicubic":
            raise NotImplementedError(
                f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.dim()}D) for the modes: "
                f"nearest | linear | bilinear | bicubic | trilinear | lanczos | area | nearest-exact (got {mode})")
        raise NotImplementedError(f"Got {input.dim()}D input, but {mode} mode needs {wanted[mode]}D input")
    if mode == "area":  # adaptive average pooling, which allows an empty output
        _check_sizes(in_sizes, [1] * dim)
    else:
        _check_sizes(in_sizes, out_sizes)
    if not input.is_floating_point():
        kind = {"int64": "Long", "int32": "Int", "uint8": "Byte", "bool": "Bool"}
        name = kind.get(str(input.dtype).split(".")[-1], str(input.dtype))
        raise NotImplementedError(f"\"upsample_{mode.replace('-', '_')}{dim}d\" not implemented for '{name}'")
    ft = np.float64 if input.dtype == _C.float64 else np.float32  # PyTorch's opmath type
    out = input
    for j in range(dim):  # innermost dim first, the order PyTorch's kernels nest their sums
        d = input.dim() - 1 - j
        n, o, s = in_sizes[-1 - j], out_sizes[-1 - j], scales[-1 - j]
        if mode == "area" and o == 0:
            out = out.narrow(d, 0, 0)
            continue
        if mode == "area":
            taps = _area_taps(n, o)
        elif antialias:
            taps = _antialias_taps(n, o, s, align_corners, cubic=mode == "bicubic")
        elif mode in ("nearest", "nearest-exact"):
            taps = _nearest_taps(n, o, s, ft, exact=mode == "nearest-exact")
        elif mode == "bicubic":
            taps = _cubic_taps(n, o, s, align_corners, ft)
        else:
            taps = _linear_taps(n, o, s, align_corners, ft)
        if taps is not None:
            out = _gather(out, d, taps)
    return out


def _check_sizes(in_sizes, out_sizes):
    if all(n > 0 for n in in_sizes) and all(o > 0 for o in out_sizes):
        return
    names = _AXES[:len(in_sizes)][::-1]
    fmt = lambda sizes: ", ".join(f"{a}: {v}" for a, v in zip(names, sizes))  # noqa: E731
    joiner = " and output" if len(in_sizes) == 1 else " output"
    raise RuntimeError(f"Input and output sizes should be greater than 0, but got input ({fmt(in_sizes)})"
                       f"{joiner} ({fmt(out_sizes)})")


def _scale(n, o, align_corners, scale, ft):
    # area_pixel_compute_scale: the source step per output step, in the opmath type.
    if align_corners:
        return ft(n - 1) / ft(o - 1) if o > 1 else ft(0)
    if scale is not None and scale > 0:
        return ft(1.0 / scale)
    return ft(n) / ft(o)


def _source_index(scale, o, align_corners, ft, cubic=False):
    # area_pixel_compute_source_index: half-pixel centres unless align_corners; linear modes clamp
    # at 0 (OpenCV's resize), cubic does not.
    dst = np.arange(o).astype(ft)
    if align_corners:
        return scale * dst
    src = scale * (dst + ft(0.5)) - ft(0.5)
    return src if cubic else np.maximum(src, ft(0))


def _floorf(x):
    # PyTorch floors with floorf: a double index is rounded to float first.
    return np.floor(np.asarray(x).astype(np.float32)).astype(np.int64)


def _nearest_taps(n, o, scale, ft, exact):
    s = _scale(n, o, False, scale, ft)
    if exact:
        idx = _floorf(_source_index(s, o, False, ft) + 0.5)
    else:
        idx = _floorf(s * np.arange(o).astype(ft))
    idx = np.minimum(idx, n - 1)
    if o == n and np.array_equal(idx, np.arange(n)):
        return None
    return [(idx, None)]


def _guard_index_and_lambda(real, n, ft):
    idx = np.minimum(_floorf(real), n - 1)
    lam = np.clip(real - idx.astype(ft), ft(0), ft(1)).astype(ft)
    return idx, lam


def _linear_taps(n, o, scale, align_corners, ft):
    if o == n:
        return None  # PyTorch copies when the size is unchanged, whatever the scale
    real = _source_index(_scale(n, o, align_corners, scale, ft), o, align_corners, ft)
    i0, l1 = _guard_index_and_lambda(real, n, ft)
    i1 = i0 + (i0 < n - 1)
    return [(i0, ft(1) - l1), (i1, l1)]


def _cubic_coefficients(t, a):
    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _cubic_taps(n, o, scale, align_corners, ft):
    real = _source_index(_scale(n, o, align_corners, scale, ft), o, align_corners, ft, cubic=True)
    i0, t = _guard_index_and_lambda(real, n, ft)
    coeffs = _cubic_coefficients(t, ft(-0.75))
    return [(np.clip(i0 + k - 1, 0, n - 1), c) for k, c in enumerate(coeffs)]


def _area_taps(n, o):
    # adaptive_avg_pool's windows [floor(i*n/o), ceil((i+1)*n/o)), averaged.
    i = np.arange(o)
    start = (i * n) // o
    end = ((i + 1) * n + o - 1) // o
    width = end - start
    taps = []
    for k in range(int(width.max())):
        inside = k < width
        taps.append((np.where(inside, start + k, 0), np.where(inside, 1.0 / width, 0.0)))
    return taps


def _antialias_taps(n, o, scale, align_corners, cubic):
    # PIL-style resampling: when shrinking, the filter is stretched by the scale so every input
    # pixel contributes; weights are normalised per output.
    s = float(_scale(n, o, align_corners, scale, np.float64))
    interp_size = 4 if cubic else 2
    support = interp_size * 0.5 * s if s >= 1.0 else interp_size * 0.5
    max_taps = int(math.ceil(support)) * 2 + 1
    invscale = 1.0 / s if s >= 1.0 else 1.0
    center = s * (np.arange(o) + 0.5)
    xmin = np.maximum(np.trunc(center - support + 0.5).astype(np.int64), 0)
    xsize = np.clip(np.minimum(np.trunc(center + support + 0.5).astype(np.int64), n) - xmin, 0, max_taps)
    k = np.arange(max_taps)[:, None]
    x = np.abs((k + xmin[None, :] - center[None, :] + 0.5) * invscale)
    if cubic:
        a = -0.5
        w = np.where(x < 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                     np.where(x < 2, ((a * x - 5 * a) * x + 8 * a) * x - 4 * a, 0.0))
    else:
        w = np.maximum(1.0 - x, 0.0)
    w = np.where(k < xsize[None, :], w, 0.0)
    total = w.sum(0)
    w = np.where(total != 0, w / np.where(total != 0, total, 1.0), w)
    idx = np.where(k < xsize[None, :], np.minimum(k + xmin[None, :], n - 1), 0)
    return [(idx[j], w[j]) for j in range(max_taps)]
