# The engine's conv / pool / norm ops (rustgrad.nn.functional) from one table of cases, each run
# against an independent NumPy reference (float32/float64, contiguous and strided inputs), through
# gradcheck in float64, and against PyTorch (outputs, grads, grad_fn names, max-pool indices).
# Then gradgradcheck, batch-norm running statistics, argument errors and thread-count independence.
#
# Case functions take the module first (`fn(m, *leaves)`, m being rustgrad or torch), so one
# table drives both libraries.
import re

import numpy as np
import pytest
import rustgrad as rg
from _helpers import assert_same, requires_torch, to_numpy, torch_or_none


def F(m):
    return m.nn.functional


def deviation(reason):
    """xfail(strict) for a known rustgrad bug; none when conftest runs this file on PyTorch."""
    return [pytest.mark.xfail(strict=True, reason=reason)] if rg.__name__ == "rustgrad" else []


# ---------------------------------------------------------------------------------------------
# NumPy references. Sliding windows are read as strided slices of the padded input, one slice per
# kernel offset, so every reference loops over kernel offsets (or output cells), never elements.

def _two(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def out_len(n, k, s, p, d=1, ceil=False):
    """PyTorch's pooling output length; in ceil mode the last window must start inside the
    input or the left padding."""
    span = n + 2 * p - d * (k - 1) - 1
    o = (-(-span // s) if ceil else span // s) + 1
    if ceil and (o - 1) * s >= n + p:
        o -= 1
    return o


def windows(xp, k, s, d, out_hw):
    """(i, j, xp[..., rows, cols]) for each kernel offset: the (..., Ho, Wo) values under it."""
    for i in range(k[0]):
        for j in range(k[1]):
            yield i, j, xp[..., i * d[0]: i * d[0] + s[0] * (out_hw[0] - 1) + 1: s[0],
                           j * d[1]: j * d[1] + s[1] * (out_hw[1] - 1) + 1: s[1]]


def _pad_last2(x, pads, value=0.0):
    return np.pad(x, [(0, 0)] * (x.ndim - 2) + list(pads), constant_values=value)


def np_conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    if x.ndim == 3:
        return np_conv2d(x[None], w, b, stride, padding, dilation, groups)[0]
    s, d, k = _two(stride), _two(dilation), w.shape[2:]
    if padding == "valid":
        pads = ((0, 0), (0, 0))
    elif padding == "same":  # an odd total goes on the right/bottom
        pads = tuple((t // 2, t - t // 2) for t in (d[0] * (k[0] - 1), d[1] * (k[1] - 1)))
    else:
        pads = tuple((p, p) for p in _two(padding))
    xp = _pad_last2(x, pads)
    out_hw = [(xp.shape[2 + a] - d[a] * (k[a] - 1) - 1) // s[a] + 1 for a in range(2)]
    cg, og = w.shape[1], w.shape[0] // groups
    out = np.zeros((x.shape[0], w.shape[0], *out_hw))
    for g in range(groups):
        for i, j, win in windows(xp[:, g * cg:(g + 1) * cg], k, s, d, out_hw):
            out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", win, w[g * og:(g + 1) * og, :, i, j])
    return out if b is None else out + b[:, None, None]


def np_conv1d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    pad = padding if isinstance(padding, str) else (0, _two(padding)[0])
    out = np_conv2d(x[..., None, :], w[..., None, :], b, (1, _two(stride)[0]), pad,
                    (1, _two(dilation)[0]), groups)
    return out[..., 0, :]


def np_conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    if x.ndim == 3:
        return np_conv_transpose2d(x[None], w, b, stride, padding, output_padding, groups, dilation)[0]
    s, p, op, d = _two(stride), _two(padding), _two(output_padding), _two(dilation)
    (n, cin, h, wd), (og, k) = x.shape, (w.shape[1], w.shape[2:])
    cg = cin // groups
    in_hw = (h, wd)
    full_hw = [(in_hw[a] - 1) * s[a] + d[a] * (k[a] - 1) + 1 + op[a] for a in range(2)]
    full = np.zeros((n, og * groups, *full_hw))
    for g in range(groups):
        for i in range(k[0]):
            for j in range(k[1]):
                # Each input cell scatters w[c, :, i, j] to (row*s + i*d, col*s + j*d).
                full[:, g * og:(g + 1) * og, i * d[0]: i * d[0] + s[0] * (h - 1) + 1: s[0],
                     j * d[1]: j * d[1] + s[1] * (wd - 1) + 1: s[1]] += np.einsum(
                    "nchw,co->nohw", x[:, g * cg:(g + 1) * cg], w[g * cg:(g + 1) * cg, :, i, j])
    out = full[:, :, p[0]: full_hw[0] - p[0], p[1]: full_hw[1] - p[1]]
    return out if b is None else out + b[:, None, None]


def np_unfold(x, kernel_size, dilation=1, padding=0, stride=1):
    k, d, p, s = _two(kernel_size), _two(dilation), _two(padding), _two(stride)
    xp = _pad_last2(x, [(p[0], p[0]), (p[1], p[1])])
    out_hw = [(xp.shape[2 + a] - d[a] * (k[a] - 1) - 1) // s[a] + 1 for a in range(2)]
    blocks = np.zeros(x.shape[:2] + k + tuple(out_hw))
    for i, j, win in windows(xp, k, s, d, out_hw):
        blocks[:, :, i, j] = win
    return blocks.reshape(x.shape[0], -1, out_hw[0] * out_hw[1])  # rows: (channel, ki, kj)


def np_fold(x, output_size, kernel_size, dilation=1, padding=0, stride=1):
    if x.ndim == 2:
        return np_fold(x[None], output_size, kernel_size, dilation, padding, stride)[0]
    o, k, d, p, s = _two(output_size), _two(kernel_size), _two(dilation), _two(padding), _two(stride)
    out_hw = [(o[a] + 2 * p[a] - d[a] * (k[a] - 1) - 1) // s[a] + 1 for a in range(2)]
    blocks = x.reshape(x.shape[0], -1, k[0], k[1], *out_hw)
    full = np.zeros((x.shape[0], blocks.shape[1], o[0] + 2 * p[0], o[1] + 2 * p[1]))
    for i in range(k[0]):
        for j in range(k[1]):
            full[:, :, i * d[0]: i * d[0] + s[0] * (out_hw[0] - 1) + 1: s[0],
                 j * d[1]: j * d[1] + s[1] * (out_hw[1] - 1) + 1: s[1]] += blocks[:, :, i, j]
    return full[:, :, p[0]: p[0] + o[0], p[1]: p[1] + o[1]]


def np_max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """(values, flat h*W+w indices into the unpadded plane); the first maximum in a window wins."""
    k = _two(kernel_size)
    s = k if stride is None else _two(stride)
    p, d, hw = _two(padding), _two(dilation), x.shape[-2:]
    out_hw = [out_len(hw[a], k[a], s[a], p[a], d[a], ceil_mode) for a in range(2)]
    # ceil mode's last window may hang past the right padding: pad further, never selected.
    pads = [(p[a], max(p[a], (out_hw[a] - 1) * s[a] + d[a] * (k[a] - 1) + 1 - hw[a] - p[a])) for a in range(2)]
    xp = _pad_last2(x, pads, -np.inf)
    ip = _pad_last2(np.broadcast_to(np.arange(hw[0] * hw[1]).reshape(hw), x.shape), pads, -1)
    best = np.full(x.shape[:-2] + tuple(out_hw), -np.inf)
    arg = np.full(best.shape, -1, dtype=np.int64)
    for (_, _, win), (_, _, iwin) in zip(windows(xp, k, s, d, out_hw), windows(ip, k, s, d, out_hw)):
        take = win > best
        best, arg = np.where(take, win, best), np.where(take, iwin, arg)
    return best, arg


def np_max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    k = _two(kernel_size)[0]
    s = k if stride is None else _two(stride)[0]
    out, idx = np_max_pool2d(x[..., None, :], (1, k), (1, s), (0, _two(padding)[0]),
                             (1, _two(dilation)[0]), ceil_mode)
    return out[..., 0, :], idx[..., 0, :]


def np_avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                  divisor_override=None):
    k = _two(kernel_size)
    s = k if stride is None else _two(stride)
    p, hw = _two(padding), x.shape[-2:]
    out_hw = [out_len(hw[a], k[a], s[a], p[a], 1, ceil_mode) for a in range(2)]
    out = np.zeros(x.shape[:-2] + tuple(out_hw))
    for oh in range(out_hw[0]):
        for ow in range(out_hw[1]):
            # The window clipped to input+padding (its size counts the padding), then to the input.
            lo = [(oh, ow)[a] * s[a] - p[a] for a in range(2)]
            hi = [min(lo[a] + k[a], hw[a] + p[a]) for a in range(2)]
            pool = (hi[0] - lo[0]) * (hi[1] - lo[1])
            lo = [max(v, 0) for v in lo]
            hi = [min(hi[a], hw[a]) for a in range(2)]
            if divisor_override:
                div = divisor_override
            elif count_include_pad:
                div = pool
            else:
                div = (hi[0] - lo[0]) * (hi[1] - lo[1])
            out[..., oh, ow] = x[..., lo[0]:hi[0], lo[1]:hi[1]].sum((-2, -1)) / div
    return out


def np_avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    k = _two(kernel_size)[0]
    s = k if stride is None else _two(stride)[0]
    return np_avg_pool2d(x[..., None, :], (1, k), (1, s), (0, _two(padding)[0]), ceil_mode,
                         count_include_pad)[..., 0, :]


def _adaptive_bounds(n_in, n_out):
    return [((i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)) for i in range(n_out)]


def np_adaptive_pool2d(x, output_size, kind):
    hw = x.shape[-2:]
    o = [hw[a] if v is None else v for a, v in enumerate(_two(output_size))]
    out = np.zeros(x.shape[:-2] + tuple(o))
    idx = np.zeros(out.shape, dtype=np.int64)
    for oh, (h0, h1) in enumerate(_adaptive_bounds(hw[0], o[0])):
        for ow, (w0, w1) in enumerate(_adaptive_bounds(hw[1], o[1])):
            win = x[..., h0:h1, w0:w1]
            if kind == "avg":
                out[..., oh, ow] = win.mean((-2, -1))
            else:
                flat = win.reshape(win.shape[:-2] + (-1,))
                a = flat.argmax(-1)  # first maximum
                out[..., oh, ow] = np.take_along_axis(flat, a[..., None], -1)[..., 0]
                idx[..., oh, ow] = (h0 + a // (w1 - w0)) * hw[1] + w0 + a % (w1 - w0)
    return out if kind == "avg" else (out, idx)


def np_adaptive_avg_pool1d(x, n):
    return np_adaptive_pool2d(x[..., None, :], (1, n), "avg")[..., 0, :]


def np_adaptive_max_pool1d(x, n):
    out, idx = np_adaptive_pool2d(x[..., None, :], (1, n), "max")
    return out[..., 0, :], idx[..., 0, :]


def _per_channel(v, ndim):
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def np_batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, eps=1e-5):
    axes = (0,) + tuple(range(2, x.ndim))
    mean, var = (x.mean(axes), x.var(axes)) if training else (running_mean, running_var)
    y = (x - _per_channel(mean, x.ndim)) / np.sqrt(_per_channel(var, x.ndim) + eps)
    if weight is not None:
        y = y * _per_channel(weight, x.ndim)
    return y if bias is None else y + _per_channel(bias, x.ndim)


def np_running_stats(x, running_mean, running_var, momentum):
    """Running stats after one training step: the variance enters unbiased."""
    axes = (0,) + tuple(range(2, x.ndim))
    n = x.size // x.shape[1]
    return ((1 - momentum) * running_mean + momentum * x.mean(axes),
            (1 - momentum) * running_var + momentum * x.var(axes) * n / (n - 1))


def np_layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    y = (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + eps)
    if weight is not None:
        y = y * weight
    return y if bias is None else y + bias


def np_group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    g = x.reshape(x.shape[0], num_groups, -1)
    y = ((g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + eps)).reshape(x.shape)
    if weight is not None:
        y = y * _per_channel(weight, x.ndim)
    return y if bias is None else y + _per_channel(bias, x.ndim)


# ---------------------------------------------------------------------------------------------
# Input specs: "any" values in [-2, 2]; "distinct" values all different and at least 0.01 apart
# (max-pools: no ties, so indices and finite differences are well defined); "pos" in [0.5, 2].
class Spec:
    def __init__(self, shape, dom="any"):
        self.shape, self.dom = tuple(shape), dom

    def make(self, rng):
        n = int(np.prod(self.shape))
        if self.dom == "distinct":
            a = (rng.permutation(n) - n / 2) * (4.0 / max(n, 1))
            return a.reshape(self.shape)
        if self.dom == "pos":
            return rng.uniform(0.5, 2.0, self.shape)
        return rng.uniform(-2.0, 2.0, self.shape)


def A(*shape):
    return Spec(shape)


def D(*shape):
    return Spec(shape, "distinct")


def P(*shape):
    return Spec(shape, "pos")


# Fixed running statistics for eval-mode batch norm (made in the case's dtype).
RM3, RV3 = np.array([0.5, -1.0, 0.25]), np.array([1.5, 0.5, 2.0])


def _eval_stats(m, x):
    return m.tensor(RM3, dtype=x.dtype), m.tensor(RV3, dtype=x.dtype)


def _fresh_stats(m, x, c):
    return m.zeros(c, dtype=x.dtype), m.ones(c, dtype=x.dtype)


def fold_len(o, k, d=1, p=0, s=1):
    o, k, d, p, s = _two(o), _two(k), _two(d), _two(p), _two(s)
    return int(np.prod([(o[a] + 2 * p[a] - d[a] * (k[a] - 1) - 1) // s[a] + 1 for a in range(2)]))


# (id, fn(m, *leaves), reference(*float64 arrays), input specs[, options]).
# options: gg=True also runs gradgradcheck (ops named in the brief; tiny shapes).
CASES = [
    # conv1d
    ("conv1d", lambda m, x, w, b: F(m).conv1d(x, w, b), np_conv1d, [A(2, 3, 7), A(4, 3, 3), A(4)]),
    ("conv1d_stride_pad_dil", lambda m, x, w, b: F(m).conv1d(x, w, b, stride=2, padding=2, dilation=2),
     lambda x, w, b: np_conv1d(x, w, b, 2, 2, 2), [A(2, 3, 8), A(4, 3, 3), A(4)]),
    ("conv1d_groups", lambda m, x, w: F(m).conv1d(x, w, groups=2),
     lambda x, w: np_conv1d(x, w, groups=2), [A(2, 4, 6), A(6, 2, 3)]),
    ("conv1d_same_even_kernel", lambda m, x, w, b: F(m).conv1d(x, w, b, padding="same"),
     lambda x, w, b: np_conv1d(x, w, b, padding="same"), [A(2, 3, 6), A(2, 3, 4), A(2)]),
    ("conv1d_same_dilated", lambda m, x, w: F(m).conv1d(x, w, padding="same", dilation=3),
     lambda x, w: np_conv1d(x, w, padding="same", dilation=3), [A(1, 2, 7), A(3, 2, 2)]),
    ("conv1d_valid", lambda m, x, w: F(m).conv1d(x, w, padding="valid"),
     lambda x, w: np_conv1d(x, w), [A(2, 3, 6), A(2, 3, 3)]),
    ("conv1d_tuple_args", lambda m, x, w: F(m).conv1d(x, w, stride=(2,), padding=(1,), dilation=(1,)),
     lambda x, w: np_conv1d(x, w, None, 2, 1), [A(2, 3, 7), A(2, 3, 3)]),
    ("conv1d_unbatched", lambda m, x, w, b: F(m).conv1d(x, w, b, padding=1),
     lambda x, w, b: np_conv1d(x[None], w, b, padding=1)[0], [A(3, 6), A(2, 3, 3), A(2)]),
    # conv2d
    ("conv2d", lambda m, x, w, b: F(m).conv2d(x, w, b), np_conv2d, [A(2, 3, 5, 5), A(4, 3, 3, 3), A(4)], {"gg": True}),
    ("conv2d_nobias", lambda m, x, w: F(m).conv2d(x, w), np_conv2d, [A(2, 2, 4, 5), A(3, 2, 2, 3)]),
    ("conv2d_stride_pad", lambda m, x, w, b: F(m).conv2d(x, w, b, stride=2, padding=1),
     lambda x, w, b: np_conv2d(x, w, b, 2, 1), [A(2, 3, 6, 5), A(2, 3, 3, 3), A(2)]),
    ("conv2d_asym", lambda m, x, w, b: F(m).conv2d(x, w, b, stride=(1, 2), padding=(2, 0), dilation=(1, 2)),
     lambda x, w, b: np_conv2d(x, w, b, (1, 2), (2, 0), (1, 2)), [A(1, 2, 5, 7), A(3, 2, 3, 2), A(3)]),
    ("conv2d_dilation", lambda m, x, w: F(m).conv2d(x, w, dilation=2, padding=1),
     lambda x, w: np_conv2d(x, w, None, 1, 1, 2), [A(1, 2, 6, 6), A(2, 2, 3, 3)]),
    ("conv2d_groups", lambda m, x, w, b: F(m).conv2d(x, w, b, groups=2, padding=1),
     lambda x, w, b: np_conv2d(x, w, b, 1, 1, 1, 2), [A(2, 4, 4, 4), A(6, 2, 3, 3), A(6)]),
    ("conv2d_depthwise", lambda m, x, w: F(m).conv2d(x, w, groups=3),
     lambda x, w: np_conv2d(x, w, groups=3), [A(1, 3, 5, 5), A(3, 1, 3, 3)]),
    ("conv2d_same", lambda m, x, w, b: F(m).conv2d(x, w, b, padding="same", dilation=(2, 1)),
     lambda x, w, b: np_conv2d(x, w, b, 1, "same", (2, 1)), [A(1, 3, 5, 6), A(2, 3, 2, 4), A(2)]),
    ("conv2d_valid", lambda m, x, w: F(m).conv2d(x, w, padding="valid"),
     lambda x, w: np_conv2d(x, w), [A(2, 2, 5, 4), A(3, 2, 3, 3)]),
    ("conv2d_1x1", lambda m, x, w, b: F(m).conv2d(x, w, b), np_conv2d, [A(2, 3, 3, 4), A(5, 3, 1, 1), A(5)]),
    ("conv2d_unbatched", lambda m, x, w, b: F(m).conv2d(x, w, b, padding=1), lambda x, w, b: np_conv2d(x, w, b, 1, 1),
     [A(3, 4, 4), A(2, 3, 3, 3), A(2)]),
    # conv_transpose2d
    ("conv_t2d", lambda m, x, w, b: F(m).conv_transpose2d(x, w, b), np_conv_transpose2d,
     [A(2, 3, 4, 4), A(3, 2, 3, 3), A(2)], {"gg": True}),
    ("conv_t2d_stride_pad_outpad", lambda m, x, w, b: F(m).conv_transpose2d(x, w, b, 2, 1, 1),
     lambda x, w, b: np_conv_transpose2d(x, w, b, 2, 1, 1), [A(1, 3, 3, 4), A(3, 2, 3, 3), A(2)]),
    ("conv_t2d_groups", lambda m, x, w: F(m).conv_transpose2d(x, w, groups=2, stride=2),
     lambda x, w: np_conv_transpose2d(x, w, None, 2, 0, 0, 2), [A(1, 4, 3, 3), A(4, 3, 2, 2)]),
    ("conv_t2d_dilation_asym", lambda m, x, w, b: F(m).conv_transpose2d(
        x, w, b, stride=(2, 1), padding=(1, 0), output_padding=(1, 1), dilation=(1, 2)),
     lambda x, w, b: np_conv_transpose2d(x, w, b, (2, 1), (1, 0), (1, 1), 1, (1, 2)),
     [A(1, 2, 3, 4), A(2, 3, 3, 2), A(3)]),
    ("conv_t2d_unbatched", lambda m, x, w, b: F(m).conv_transpose2d(x, w, b, stride=2),
     lambda x, w, b: np_conv_transpose2d(x, w, b, 2), [A(3, 3, 3), A(3, 2, 2, 2), A(2)]),
    # unfold / fold
    ("unfold", lambda m, x: F(m).unfold(x, 2), lambda x: np_unfold(x, 2), [A(2, 3, 4, 5)]),
    ("unfold_options", lambda m, x: F(m).unfold(x, (2, 3), dilation=(1, 2), padding=1, stride=(2, 1)),
     lambda x: np_unfold(x, (2, 3), (1, 2), 1, (2, 1)), [A(1, 2, 5, 6)]),
    ("fold", lambda m, x: F(m).fold(x, (4, 5), 2), lambda x: np_fold(x, (4, 5), 2),
     [A(2, 12, fold_len((4, 5), 2))]),
    ("fold_options", lambda m, x: F(m).fold(x, (5, 6), (2, 3), dilation=(1, 2), padding=1, stride=(2, 1)),
     lambda x: np_fold(x, (5, 6), (2, 3), (1, 2), 1, (2, 1)), [A(1, 12, fold_len((5, 6), (2, 3), (1, 2), 1, (2, 1)))]),
    ("fold_unbatched", lambda m, x: F(m).fold(x, 4, 3, stride=1), lambda x: np_fold(x, 4, 3),
     [A(9, fold_len(4, 3))]),
    # max_pool2d / max_pool1d
    ("max_pool2d", lambda m, x: F(m).max_pool2d(x, 2), lambda x: np_max_pool2d(x, 2)[0], [D(2, 3, 6, 6)], {"gg": True}),
    ("max_pool2d_stride_pad", lambda m, x: F(m).max_pool2d(x, 3, 2, 1), lambda x: np_max_pool2d(x, 3, 2, 1)[0],
     [D(2, 2, 5, 6)]),
    ("max_pool2d_ceil", lambda m, x: F(m).max_pool2d(x, 3, 2, ceil_mode=True),
     lambda x: np_max_pool2d(x, 3, 2, ceil_mode=True)[0], [D(1, 2, 6, 6)]),
    ("max_pool2d_ceil_pad", lambda m, x: F(m).max_pool2d(x, 2, 2, 1, ceil_mode=True),
     lambda x: np_max_pool2d(x, 2, 2, 1, ceil_mode=True)[0], [D(1, 2, 5, 6)]),
    ("max_pool2d_dilation", lambda m, x: F(m).max_pool2d(x, 3, 1, 1, dilation=2),
     lambda x: np_max_pool2d(x, 3, 1, 1, 2)[0], [D(1, 2, 6, 5)]),
    ("max_pool2d_asym", lambda m, x: F(m).max_pool2d(x, (2, 3), (1, 2), (1, 1)),
     lambda x: np_max_pool2d(x, (2, 3), (1, 2), (1, 1))[0], [D(2, 1, 4, 6)]),
    ("max_pool2d_indices", lambda m, x: F(m).max_pool2d(x, 3, 2, 1, ceil_mode=True, return_indices=True),
     lambda x: np_max_pool2d(x, 3, 2, 1, ceil_mode=True), [D(2, 2, 6, 7)]),
    ("max_pool2d_indices_dilation", lambda m, x: F(m).max_pool2d(x, 2, 1, 1, dilation=2, return_indices=True),
     lambda x: np_max_pool2d(x, 2, 1, 1, 2), [D(1, 2, 5, 5)]),
    ("max_pool2d_unbatched", lambda m, x: F(m).max_pool2d(x, 2, return_indices=True),
     lambda x: np_max_pool2d(x, 2), [D(3, 5, 4)]),
    ("max_pool1d", lambda m, x: F(m).max_pool1d(x, 3, 2, 1), lambda x: np_max_pool1d(x, 3, 2, 1)[0], [D(2, 3, 9)]),
    ("max_pool1d_ceil_dilation", lambda m, x: F(m).max_pool1d(x, 2, 2, 1, dilation=2, ceil_mode=True),
     lambda x: np_max_pool1d(x, 2, 2, 1, 2, True)[0], [D(2, 2, 8)]),
    ("max_pool1d_indices", lambda m, x: F(m).max_pool1d(x, 3, return_indices=True),
     lambda x: np_max_pool1d(x, 3), [D(2, 2, 10)]),
    ("max_pool1d_unbatched", lambda m, x: F(m).max_pool1d(x, 2, 1), lambda x: np_max_pool1d(x, 2, 1)[0], [D(3, 7)]),
    # avg_pool2d / avg_pool1d
    ("avg_pool2d", lambda m, x: F(m).avg_pool2d(x, 2), lambda x: np_avg_pool2d(x, 2), [A(2, 3, 4, 6)], {"gg": True}),
    ("avg_pool2d_pad", lambda m, x: F(m).avg_pool2d(x, 3, 2, 1), lambda x: np_avg_pool2d(x, 3, 2, 1), [A(2, 2, 5, 6)]),
    ("avg_pool2d_pad_exclude", lambda m, x: F(m).avg_pool2d(x, 3, 2, 1, count_include_pad=False),
     lambda x: np_avg_pool2d(x, 3, 2, 1, count_include_pad=False), [A(2, 2, 5, 6)]),
    ("avg_pool2d_ceil", lambda m, x: F(m).avg_pool2d(x, 3, 2, ceil_mode=True),
     lambda x: np_avg_pool2d(x, 3, 2, ceil_mode=True), [A(1, 2, 6, 6)]),
    ("avg_pool2d_ceil_pad", lambda m, x: F(m).avg_pool2d(x, 2, 2, 1, ceil_mode=True),
     lambda x: np_avg_pool2d(x, 2, 2, 1, ceil_mode=True), [A(1, 2, 5, 6)]),
    ("avg_pool2d_ceil_pad_exclude", lambda m, x: F(m).avg_pool2d(x, 3, 2, 1, True, False),
     lambda x: np_avg_pool2d(x, 3, 2, 1, True, False), [A(1, 2, 6, 5)]),
    ("avg_pool2d_divisor", lambda m, x: F(m).avg_pool2d(x, 3, 2, 1, divisor_override=5),
     lambda x: np_avg_pool2d(x, 3, 2, 1, divisor_override=5), [A(1, 2, 5, 5)]),
    ("avg_pool2d_asym", lambda m, x: F(m).avg_pool2d(x, (2, 3), (1, 2), (1, 0)),
     lambda x: np_avg_pool2d(x, (2, 3), (1, 2), (1, 0)), [A(2, 1, 4, 7)]),
    ("avg_pool2d_unbatched", lambda m, x: F(m).avg_pool2d(x, 2, 1), lambda x: np_avg_pool2d(x, 2, 1), [A(3, 4, 4)]),
    ("avg_pool1d", lambda m, x: F(m).avg_pool1d(x, 3, 2, 1), lambda x: np_avg_pool1d(x, 3, 2, 1), [A(2, 3, 8)]),
    ("avg_pool1d_exclude_ceil", lambda m, x: F(m).avg_pool1d(x, 3, 2, 1, True, False),
     lambda x: np_avg_pool1d(x, 3, 2, 1, True, False), [A(2, 2, 8)]),
    ("avg_pool1d_unbatched", lambda m, x: F(m).avg_pool1d(x, 2), lambda x: np_avg_pool1d(x, 2), [A(3, 7)]),
    # adaptive pools
    ("adaptive_avg_pool2d", lambda m, x: F(m).adaptive_avg_pool2d(x, (3, 4)),
     lambda x: np_adaptive_pool2d(x, (3, 4), "avg"), [A(2, 2, 7, 9)]),
    ("adaptive_avg_pool2d_int_none", lambda m, x: F(m).adaptive_avg_pool2d(x, (None, 2)),
     lambda x: np_adaptive_pool2d(x, (None, 2), "avg"), [A(1, 2, 3, 5)]),
    ("adaptive_avg_pool2d_upsample", lambda m, x: F(m).adaptive_avg_pool2d(x, 5),
     lambda x: np_adaptive_pool2d(x, 5, "avg"), [A(1, 2, 3, 4)]),
    ("adaptive_avg_pool2d_unbatched", lambda m, x: F(m).adaptive_avg_pool2d(x, 2),
     lambda x: np_adaptive_pool2d(x, 2, "avg"), [A(3, 5, 5)]),
    ("adaptive_max_pool2d", lambda m, x: F(m).adaptive_max_pool2d(x, (3, 2)),
     lambda x: np_adaptive_pool2d(x, (3, 2), "max")[0], [D(2, 2, 7, 5)]),
    ("adaptive_max_pool2d_indices", lambda m, x: F(m).adaptive_max_pool2d(x, (2, None), return_indices=True),
     lambda x: np_adaptive_pool2d(x, (2, None), "max"), [D(1, 3, 5, 4)]),
    ("adaptive_max_pool2d_unbatched", lambda m, x: F(m).adaptive_max_pool2d(x, 3, True),
     lambda x: np_adaptive_pool2d(x, 3, "max"), [D(2, 4, 5)]),
    ("adaptive_avg_pool1d", lambda m, x: F(m).adaptive_avg_pool1d(x, 3),
     lambda x: np_adaptive_avg_pool1d(x, 3), [A(2, 3, 7)]),
    ("adaptive_avg_pool1d_unbatched", lambda m, x: F(m).adaptive_avg_pool1d(x, 4),
     lambda x: np_adaptive_avg_pool1d(x, 4), [A(2, 6)]),
    ("adaptive_max_pool1d", lambda m, x: F(m).adaptive_max_pool1d(x, 3),
     lambda x: np_adaptive_max_pool1d(x, 3)[0], [D(2, 3, 8)]),
    ("adaptive_max_pool1d_indices", lambda m, x: F(m).adaptive_max_pool1d(x, 4, return_indices=True),
     lambda x: np_adaptive_max_pool1d(x, 4), [D(2, 2, 7)]),
    # batch_norm (training: batch statistics; eval: the running ones)
    ("batch_norm_train_affine", lambda m, x, w, b: F(m).batch_norm(x, *_fresh_stats(m, x, 3), w, b, training=True),
     lambda x, w, b: np_batch_norm(x, None, None, w, b, True), [A(4, 3, 5), P(3), A(3)], {"gg": True}),
    ("batch_norm_train_4d", lambda m, x: F(m).batch_norm(x, *_fresh_stats(m, x, 4), training=True, eps=1e-3),
     lambda x: np_batch_norm(x, None, None, training=True, eps=1e-3), [A(3, 4, 2, 3)]),
    ("batch_norm_train_2d", lambda m, x, w, b: F(m).batch_norm(x, *_fresh_stats(m, x, 3), w, b, training=True),
     lambda x, w, b: np_batch_norm(x, None, None, w, b, True), [A(6, 3), P(3), A(3)]),
    ("batch_norm_train_no_stats", lambda m, x, w: F(m).batch_norm(x, None, None, w, training=True),
     lambda x, w: np_batch_norm(x, None, None, w, None, True), [A(4, 3, 2), P(3)]),
    ("batch_norm_eval_affine", lambda m, x, w, b: F(m).batch_norm(x, *_eval_stats(m, x), w, b),
     lambda x, w, b: np_batch_norm(x, RM3, RV3, w, b), [A(2, 3, 4), P(3), A(3)]),
    ("batch_norm_eval_plain", lambda m, x: F(m).batch_norm(x, *_eval_stats(m, x), training=False, eps=0.1),
     lambda x: np_batch_norm(x, RM3, RV3, eps=0.1), [A(2, 3, 2, 2)]),
    # layer_norm / group_norm
    ("layer_norm", lambda m, x, w, b: F(m).layer_norm(x, (4,), w, b), lambda x, w, b: np_layer_norm(x, (4,), w, b),
     [A(2, 3, 4), P(4), A(4)], {"gg": True}),
    ("layer_norm_2dims", lambda m, x, w, b: F(m).layer_norm(x, [3, 4], w, b),
     lambda x, w, b: np_layer_norm(x, (3, 4), w, b), [A(2, 3, 4), P(3, 4), A(3, 4)]),
    ("layer_norm_plain", lambda m, x: F(m).layer_norm(x, (5,), eps=1e-3),
     lambda x: np_layer_norm(x, (5,), eps=1e-3), [A(3, 5)]),
    ("layer_norm_weight_only", lambda m, x, w: F(m).layer_norm(x, (2, 3), w),
     lambda x, w: np_layer_norm(x, (2, 3), w), [A(2, 2, 3), P(2, 3)]),
    ("group_norm", lambda m, x, w, b: F(m).group_norm(x, 3, w, b), lambda x, w, b: np_group_norm(x, 3, w, b),
     [A(2, 6, 4), P(6), A(6)], {"gg": True}),
    ("group_norm_4d_plain", lambda m, x: F(m).group_norm(x, 2), lambda x: np_group_norm(x, 2), [A(2, 4, 3, 3)]),
    ("group_norm_one_group", lambda m, x, w, b: F(m).group_norm(x, 1, w, b, eps=1e-3),
     lambda x, w, b: np_group_norm(x, 1, w, b, 1e-3), [A(2, 3, 2, 2), P(3), A(3)]),
    ("group_norm_per_channel", lambda m, x, w: F(m).group_norm(x, 4, w), lambda x, w: np_group_norm(x, 4, w),
     [A(3, 4, 5), P(4)]),
    ("group_norm_2d_input", lambda m, x: F(m).group_norm(x, 2), lambda x: np_group_norm(x, 2), [A(3, 4)]),
]


class Case:
    def __init__(self, name, fn, ref, specs, opts=None):
        self.name, self.fn, self.ref, self.specs = name, fn, ref, specs
        self.opts = opts or {}

    def arrays(self):
        rng = np.random.default_rng(sum(map(ord, self.name)))
        return [s.make(rng) for s in self.specs]


ALL = [Case(*row) for row in CASES]
BY_NAME = {c.name: c for c in ALL}
LAYOUTS = ["contig", "T", "step"]


def case_params(cases=ALL):
    return [pytest.param(c, id=c.name) for c in cases]


def make_input(m, array, layout, dtype):
    """(leaf, input): the leaf owns the storage; the input is that storage seen as `array`.
    'T' stores the array with all dims reversed, 'step' every other element of the last dim."""
    if layout == "T" and array.ndim >= 2:
        leaf = m.tensor(np.ascontiguousarray(array.transpose()), dtype=dtype)
        return leaf, lambda t: t.permute(*reversed(range(array.ndim)))
    if layout == "step" and array.ndim >= 1:
        store = np.zeros(array.shape[:-1] + (2 * array.shape[-1],))
        store[..., ::2] = array
        leaf = m.tensor(store, dtype=dtype)
        return leaf, lambda t: t[..., ::2]
    return m.tensor(array, dtype=dtype), lambda t: t


def run(m, case, arrays, layout, dtype, requires_grad=False):
    """(leaves, output) with leaves made in `layout` (the op sees the viewed inputs)."""
    leaves, inputs = [], []
    for a in arrays:
        leaf, view = make_input(m, a, layout, getattr(m, dtype))
        leaf.requires_grad_(requires_grad)
        leaves.append(leaf)
        inputs.append(view(leaf))
    return leaves, case.fn(m, *inputs)


def as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


TOL = {"float32": dict(rtol=1e-5, atol=2e-5), "float64": dict(rtol=1e-10, atol=1e-10)}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", case_params())
def test_forward_matches_numpy(case, dtype, layout):
    arrays = [a.astype(dtype) for a in case.arrays()]
    _, out = run(rg, case, arrays, layout, dtype)
    expected = as_tuple(case.ref(*[a.astype(np.float64) for a in arrays]))
    out = as_tuple(out)
    assert len(out) == len(expected)
    assert_same(out[0], expected[0], dtype=dtype, **TOL[dtype])
    for o, e in zip(out[1:], expected[1:]):  # max-pool indices
        assert_same(o, e.astype(np.int64))


@pytest.mark.parametrize("case", case_params())
def test_gradcheck(case):
    xs = [rg.tensor(a, dtype=rg.float64, requires_grad=True) for a in case.arrays()]
    assert rg.autograd.gradcheck(lambda *t: as_tuple(case.fn(rg, *t))[0], xs)


GG_CASES = [
    ("conv2d", lambda m, x, w, b: F(m).conv2d(x, w, b, stride=2, padding=1), [A(1, 2, 3, 4), A(2, 2, 2, 2), A(2)]),
    ("conv2d_groups", lambda m, x, w: F(m).conv2d(x, w, groups=2), [A(1, 2, 3, 3), A(2, 1, 2, 2)]),
    ("conv_transpose2d", lambda m, x, w, b: F(m).conv_transpose2d(x, w, b, stride=2, output_padding=1),
     [A(1, 2, 2, 2), A(2, 1, 2, 2), A(1)]),
    ("avg_pool2d", lambda m, x: F(m).avg_pool2d(x, 2, 1, 1, count_include_pad=False), [A(1, 2, 3, 3)]),
    ("max_pool2d", lambda m, x: F(m).max_pool2d(x, 2, 1, 1), [D(1, 2, 3, 3)]),
    ("batch_norm_train", lambda m, x, w, b: F(m).batch_norm(x, None, None, w, b, training=True),
     [A(3, 2, 2), P(2), A(2)]),
    ("batch_norm_eval", lambda m, x, w, b: F(m).batch_norm(x, *_eval_stats(m, x), w, b),
     [A(2, 3), P(3), A(3)]),
    ("layer_norm", lambda m, x, w, b: F(m).layer_norm(x, (3,), w, b), [A(2, 3), P(3), A(3)]),
    ("group_norm", lambda m, x, w, b: F(m).group_norm(x, 2, w, b), [A(2, 4, 2), P(4), A(4)]),
]


@pytest.mark.parametrize("name, fn, specs", [pytest.param(*row, id=row[0]) for row in GG_CASES])
def test_gradgradcheck(name, fn, specs):
    xs = [rg.tensor(a, dtype=rg.float64, requires_grad=True) for a in Case(name, fn, None, specs).arrays()]
    assert rg.autograd.gradgradcheck(lambda *t: fn(rg, *t), xs)


# ---------------------------------------------------------------------------------------------
# PyTorch parity: the same data and the same output gradient through both libraries.

def grads_and_outputs(m, case, arrays, layout):
    leaves, out = run(m, case, arrays, layout, "float32", requires_grad=True)
    first = as_tuple(out)[0]
    rng = np.random.default_rng(1)
    first.backward(m.tensor(rng.uniform(-1, 1, tuple(first.shape)), dtype=first.dtype))
    return as_tuple(out), [leaf.grad for leaf in leaves], type(first.grad_fn).__name__


@requires_torch
@pytest.mark.parametrize("layout", ["contig", "T"])
@pytest.mark.parametrize("case", case_params())
def test_torch_parity(case, layout):
    torch = torch_or_none()
    arrays = [a.astype(np.float32) for a in case.arrays()]
    outs, grads, name = grads_and_outputs(rg, case, arrays, layout)
    t_outs, t_grads, t_name = grads_and_outputs(torch, case, arrays, layout)
    for o, t in zip(outs, t_outs):
        assert_same(o, t, rtol=1e-5, atol=1e-5)  # values, then int64 indices exactly
    for g, t in zip(grads, t_grads):
        assert_same(g, t, rtol=1e-5, atol=1e-5)


GRAD_FN_DEVIATIONS = {}


@requires_torch
@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=deviation(GRAD_FN_DEVIATIONS[c.name])
                                               if c.name in GRAD_FN_DEVIATIONS else []) for c in ALL])
def test_grad_fn_name_matches_torch(case):
    arrays = [a.astype(np.float32) for a in case.arrays()]
    name = grads_and_outputs(rg, case, arrays, "contig")[2]
    assert name == grads_and_outputs(torch_or_none(), case, arrays, "contig")[2]


# ---------------------------------------------------------------------------------------------
# Max-pool indices: the first maximum of each window wins (ties), and the indices are the
# gradient's destinations.

@pytest.mark.parametrize("fn, ref", [
    pytest.param(lambda m, x: F(m).max_pool2d(x, 2, 1, return_indices=True),
                 lambda x: np_max_pool2d(x, 2, 1), id="max_pool2d"),
    pytest.param(lambda m, x: F(m).max_pool1d(x.flatten(2), 3, 2, 1, return_indices=True),
                 lambda x: np_max_pool1d(x.reshape(x.shape[0], x.shape[1], -1), 3, 2, 1), id="max_pool1d"),
    pytest.param(lambda m, x: F(m).adaptive_max_pool2d(x, 2, return_indices=True),
                 lambda x: np_adaptive_pool2d(x, 2, "max"), id="adaptive_max_pool2d"),
])
def test_max_pool_ties_pick_first(fn, ref):
    x = np.array([[[[1, 1, 0], [1, 1, 2], [3, 2, 2]]]], dtype=np.float32)
    out, idx = fn(rg, rg.tensor(x))
    exp, exp_idx = ref(x.astype(np.float64))
    assert_same(out, exp.astype(np.float32))
    assert_same(idx, exp_idx)
    torch = torch_or_none()
    if torch is not None:
        t_out, t_idx = fn(torch, torch.tensor(x))
        assert_same(out, t_out)
        assert_same(idx, t_idx)


def test_max_pool_grad_goes_to_indices():
    x = rg.tensor(Spec((2, 3, 5, 6), "distinct").make(np.random.default_rng(3)), requires_grad=True)
    out, idx = F(rg).max_pool2d(x, 3, 2, 1, return_indices=True)
    g = np.random.default_rng(4).uniform(-1, 1, tuple(out.shape))
    out.backward(rg.tensor(g))
    expected = np.zeros((2, 3, 30))
    flat_idx = to_numpy(idx).reshape(2, 3, -1)
    for n in range(2):
        for c in range(3):
            np.add.at(expected[n, c], flat_idx[n, c], g[n, c].ravel())
    assert_same(x.grad, expected.reshape(2, 3, 5, 6))


def np_max_pool_2x2_nan(x):
    """PyTorch's loop for 2 x 2, stride 2: taps top-left, top-right, bottom-left, bottom-right,
    a later one taking over when greater or NaN."""
    h, w = x.shape[-2:]
    oh, ow = h // 2, w // 2
    best = x[..., 0:2 * oh:2, 0:2 * ow:2].copy()
    rows, cols = np.meshgrid(np.arange(oh) * 2, np.arange(ow) * 2, indexing="ij")
    arg = np.broadcast_to(rows * w + cols, best.shape).copy()
    for dy, dx in ((0, 1), (1, 0), (1, 1)):
        v = x[..., dy:dy + 2 * oh:2, dx:dx + 2 * ow:2]
        take = (v > best) | np.isnan(v)
        best, arg = np.where(take, v, best), np.where(take, (rows + dy) * w + cols + dx, arg)
    return best, arg


@pytest.mark.parametrize("layout", ["random", "top_left"])
def test_max_pool_overlapping_windows_grad_float32(layout):
    # 3 x 3 windows at stride 2: the backward's 2 x 2 shortcut must notice indices outside the
    # 2 x 2 block at (2y, 2x) and scatter instead ("random"), and may take the shortcut when every
    # index lies inside it ("top_left": each window's maximum is its top-left tap).
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 7, 9)).astype(np.float32)
    if layout == "top_left":
        x = -np.add.outer(np.arange(7), np.arange(9)).astype(np.float32) + np.zeros((2, 3, 1, 1), np.float32)
    xr = rg.tensor(x, requires_grad=True)
    out, idx = F(rg).max_pool2d(xr, 3, 2, return_indices=True)
    g = rng.standard_normal(tuple(out.shape)).astype(np.float32)
    out.backward(rg.tensor(g))
    want = np.zeros((2, 3, 63), dtype=np.float32)
    flat = to_numpy(idx).reshape(2, 3, -1)
    for n in range(2):
        for c in range(3):
            np.add.at(want[n, c], flat[n, c], g[n, c].ravel())
    oy, ox = np.meshgrid(np.arange(3), np.arange(4), indexing="ij")
    inside = (flat // 9 - 2 * oy.ravel() <= 1) & (flat % 9 - 2 * ox.ravel() <= 1)
    assert inside.all() == (layout == "top_left")
    assert_same(xr.grad, want.reshape(2, 3, 7, 9), rtol=0, atol=0)


@pytest.mark.parametrize("h, w", [(2, 2), (3, 5), (4, 31), (5, 32), (6, 33), (7, 64), (2, 70), (9, 2)])
def test_max_pool_2x2_float32(h, w):
    # The 2 x 2 float32 pool has a vector kernel (16 outputs per step, masked tails): every width
    # of tail, odd sizes, ties (coarse values), NaNs, signed zeros, and a -0.0 gradient, whose
    # scatter into zeros gives +0.0.
    rng = np.random.default_rng(h * 100 + w)
    x = rng.integers(-2, 3, (2, 3, h, w)).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan
    x[rng.random(x.shape) < 0.1] = -0.0
    xr = rg.tensor(x, requires_grad=True)
    out, idx = F(rg).max_pool2d(xr, 2, return_indices=True)
    exp, exp_idx = np_max_pool_2x2_nan(x)
    assert np.array_equal(to_numpy(out).view(np.uint32), exp.view(np.uint32))
    assert_same(idx, exp_idx)
    g = rng.standard_normal(exp.shape).astype(np.float32)
    g[..., ::3] = -0.0
    out.backward(rg.tensor(g))
    want = np.zeros((2, 3, h * w), dtype=np.float32)
    for n in range(2):
        for c in range(3):
            np.add.at(want[n, c], exp_idx[n, c].ravel(), g[n, c].ravel())
    assert np.array_equal(to_numpy(xr.grad).reshape(2, 3, -1).view(np.uint32), want.view(np.uint32))
    torch = torch_or_none()
    if torch is not None:
        t_out, t_idx = F(torch).max_pool2d(torch.tensor(x), 2, return_indices=True)
        assert np.array_equal(to_numpy(out).view(np.uint32), t_out.numpy().view(np.uint32))
        assert_same(idx, t_idx)


# ---------------------------------------------------------------------------------------------
# Batch norm's running statistics: updated in place in training (unbiased variance, momentum),
# read and left alone in eval.

@pytest.mark.parametrize("momentum", [0.1, 0.5, 1.0, 0.0])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batch_norm_running_stats(momentum, dtype):
    rng = np.random.default_rng(5)
    rm, rv = rg.zeros(3, dtype=getattr(rg, dtype)), rg.ones(3, dtype=getattr(rg, dtype))
    exp_m, exp_v = np.zeros(3), np.ones(3)
    for step in range(4):
        x = rng.uniform(-2, 2, (4, 3, 2, 3)) * (step + 1) + step
        y = F(rg).batch_norm(rg.tensor(x, dtype=getattr(rg, dtype)), rm, rv, training=True, momentum=momentum)
        exp_y = np_batch_norm(x.astype(dtype).astype(np.float64), None, None, training=True)
        exp_m, exp_v = np_running_stats(x.astype(dtype).astype(np.float64), exp_m, exp_v, momentum)
        assert_same(y, exp_y, dtype=dtype, **TOL[dtype])
        assert_same(rm, exp_m, dtype=dtype, rtol=1e-5 if dtype == "float32" else 1e-10, atol=1e-5)
        assert_same(rv, exp_v, dtype=dtype, rtol=1e-5 if dtype == "float32" else 1e-10, atol=1e-5)
    # eval uses the accumulated statistics and leaves them unchanged
    x = rng.uniform(-2, 2, (2, 3, 4))
    y = F(rg).batch_norm(rg.tensor(x, dtype=getattr(rg, dtype)), rm, rv, training=False, momentum=momentum)
    assert_same(y, np_batch_norm(x.astype(dtype).astype(np.float64), exp_m, exp_v), dtype=dtype,
                rtol=1e-4 if dtype == "float32" else 1e-9, atol=1e-4 if dtype == "float32" else 1e-9)
    assert_same(rm, exp_m, dtype=dtype, rtol=1e-5 if dtype == "float32" else 1e-10, atol=1e-5)


def test_batch_norm_running_stats_not_tracked_by_autograd():
    rm, rv = rg.zeros(2), rg.ones(2)
    x = rg.tensor(np.random.default_rng(6).uniform(-1, 1, (3, 2)), dtype=rg.float32, requires_grad=True)
    F(rg).batch_norm(x, rm, rv, training=True).sum().backward()
    assert not rm.requires_grad and not rv.requires_grad and rm.grad_fn is None


@requires_torch
@pytest.mark.parametrize("shape, momentum, affine", [
    pytest.param((4, 3), 0.1, True, id="2d"), pytest.param((3, 3, 5), 0.3, False, id="3d"),
    pytest.param((2, 3, 3, 4), 0.9, True, id="4d")])
def test_batch_norm_running_stats_torch_parity(shape, momentum, affine):
    torch = torch_or_none()
    rng = np.random.default_rng(7)
    w, b = rng.uniform(0.5, 2, 3).astype(np.float32), rng.uniform(-1, 1, 3).astype(np.float32)
    stats = {m: (m.zeros(3), m.ones(3)) for m in (rg, torch)}
    for step in range(5):
        x = (rng.uniform(-2, 2, shape) * (step + 1) + step).astype(np.float32)
        g = rng.uniform(-1, 1, shape).astype(np.float32)
        res = {}
        for m in (rg, torch):
            xt = m.tensor(x, requires_grad=True)
            wt, bt = (m.tensor(w, requires_grad=True), m.tensor(b, requires_grad=True)) if affine else (None, None)
            y = F(m).batch_norm(xt, *stats[m], wt, bt, training=True, momentum=momentum)
            y.backward(m.tensor(g))
            res[m] = [y, xt.grad] + ([wt.grad, bt.grad] if affine else [])
        for a, e in zip(res[rg], res[torch]):
            assert_same(a, e, rtol=1e-5, atol=2e-5)
        for a, e in zip(stats[rg], stats[torch]):
            assert_same(a, e, rtol=1e-5, atol=1e-5)
    x = rng.uniform(-2, 2, shape).astype(np.float32)
    assert_same(F(rg).batch_norm(rg.tensor(x), *stats[rg], training=False),
                F(torch).batch_norm(torch.tensor(x), *stats[torch], training=False), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Argument errors: (id, fn(m), exception type, fragment of PyTorch's message). The torch test
# checks the table itself against PyTorch; xfail rows document where rustgrad deviates.

def t(m, *shape, dtype="float32"):
    return m.ones(*shape, dtype=getattr(m, dtype))


ERRORS = [
    ("conv2d_rank", lambda m: F(m).conv2d(t(m, 2, 3), t(m, 4, 3, 3, 3)), RuntimeError,
     "Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: [2, 3]"),
    ("conv1d_rank", lambda m: F(m).conv1d(t(m, 1, 2, 3, 4), t(m, 4, 2, 3)), RuntimeError,
     "Expected 2D (unbatched) or 3D (batched) input to conv1d"),
    ("conv_t2d_rank", lambda m: F(m).conv_transpose2d(t(m, 3, 5), t(m, 3, 4, 3, 3)), RuntimeError,
     "input to conv_transpose2d"),
    ("conv2d_channels", lambda m: F(m).conv2d(t(m, 1, 3, 5, 5), t(m, 4, 2, 3, 3)), RuntimeError,
     "expected input[1, 3, 5, 5] to have 2 channels, but got 3 channels instead"),
    ("conv_t2d_channels", lambda m: F(m).conv_transpose2d(t(m, 1, 3, 5, 5), t(m, 2, 4, 3, 3)), RuntimeError,
     "to have 2 channels, but got 3 channels instead"),
    ("conv2d_groups_divide", lambda m: F(m).conv2d(t(m, 1, 4, 5, 5), t(m, 3, 2, 3, 3), groups=2), RuntimeError,
     "expected weight to be divisible by 2 at dimension 0"),
    ("conv_t2d_groups_divide", lambda m: F(m).conv_transpose2d(t(m, 1, 3, 5, 5), t(m, 3, 4, 3, 3), groups=2),
     RuntimeError, "expected weight to be divisible by 2 at dimension 0"),
    ("conv2d_groups_zero", lambda m: F(m).conv2d(t(m, 1, 4, 5, 5), t(m, 4, 2, 3, 3), groups=0), RuntimeError,
     "non-positive groups is not supported"),
    ("conv2d_bias_size", lambda m: F(m).conv2d(t(m, 1, 3, 5, 5), t(m, 4, 3, 3, 3), t(m, 3)), RuntimeError,
     "expected bias to be 1-dimensional with 4 elements, but got bias of size [3] instead"),
    ("conv_t2d_bias_size", lambda m: F(m).conv_transpose2d(t(m, 1, 3, 5, 5), t(m, 3, 4, 3, 3), t(m, 3)),
     RuntimeError, "expected bias to be 1-dimensional with 4 elements"),
    ("conv2d_kernel_too_big", lambda m: F(m).conv2d(t(m, 1, 3, 2, 2), t(m, 4, 3, 3, 3)), RuntimeError,
     "Kernel size can't be greater than actual input size"),
    ("conv1d_kernel_too_big", lambda m: F(m).conv1d(t(m, 1, 3, 2), t(m, 4, 3, 4), padding=0), RuntimeError,
     "Kernel size can't be greater than actual input size"),
    ("conv2d_stride_zero", lambda m: F(m).conv2d(t(m, 1, 3, 5, 5), t(m, 4, 3, 3, 3), stride=0), RuntimeError,
     "non-positive stride is not supported"),
    ("conv2d_dilation_zero", lambda m: F(m).conv2d(t(m, 1, 3, 5, 5), t(m, 4, 3, 3, 3), dilation=0), RuntimeError,
     "dilation should be greater than zero, but got [0, 0]"),
    ("conv2d_negative_padding", lambda m: F(m).conv2d(t(m, 1, 3, 5, 5), t(m, 4, 3, 3, 3), padding=-1),
     RuntimeError, "negative padding is not supported"),
    ("conv2d_same_strided", lambda m: F(m).conv2d(t(m, 1, 3, 5, 5), t(m, 4, 3, 3, 3), stride=2, padding="same"),
     RuntimeError, "padding='same' is not supported for strided convolutions"),
    ("conv2d_bad_padding_string", lambda m: F(m).conv2d(t(m, 1, 3, 5, 5), t(m, 4, 3, 3, 3), padding="full"),
     RuntimeError, "Invalid padding string"),
    ("conv2d_stride_length", lambda m: F(m).conv2d(t(m, 1, 3, 5, 5), t(m, 4, 3, 3, 3), stride=(1, 1, 1)),
     RuntimeError, "expected stride to be a single integer value or a list of 2 values"),
    ("conv2d_mixed_dtypes", lambda m: F(m).conv2d(t(m, 1, 3, 5, 5), t(m, 4, 3, 3, 3, dtype="float64")),
     RuntimeError, ""),
    ("conv_t2d_output_padding", lambda m: F(m).conv_transpose2d(t(m, 1, 3, 5, 5), t(m, 3, 4, 3, 3), stride=2,
                                                                output_padding=2),
     RuntimeError, "output padding must be smaller than either stride or dilation"),
    ("unfold_too_small", lambda m: F(m).unfold(t(m, 1, 3, 2, 2), 3), RuntimeError,
     "calculated shape of the array of sliding blocks"),
    ("fold_blocks", lambda m: F(m).fold(t(m, 1, 12, 5), (4, 4), 2), RuntimeError,
     "to match the calculated number of sliding blocks 3 * 3 = 9"),
    ("fold_channels", lambda m: F(m).fold(t(m, 1, 5, 9), (4, 4), 2), RuntimeError,
     "Expected size of input's dimension 1 to be divisible by the product of kernel_size"),
    ("max_pool2d_pad", lambda m: F(m).max_pool2d(t(m, 1, 1, 5, 5), 3, padding=2), RuntimeError,
     "pad should be at most half of effective kernel size, but got pad=2, kernel_size=3 and dilation=1"),
    ("max_pool1d_pad", lambda m: F(m).max_pool1d(t(m, 1, 1, 5), 2, padding=2), RuntimeError,
     "should be at most half of"),
    ("avg_pool2d_pad", lambda m: F(m).avg_pool2d(t(m, 1, 1, 5, 5), 3, padding=2), RuntimeError,
     "pad should be at most half of"),
    ("avg_pool1d_pad", lambda m: F(m).avg_pool1d(t(m, 1, 1, 5), 2, padding=2), RuntimeError,
     "pad should be at most half of"),
    ("max_pool2d_output_too_small", lambda m: F(m).max_pool2d(t(m, 1, 1, 2, 2), 3), RuntimeError,
     "Given input size: (1x2x2). Calculated output size: (1x0x0). Output size is too small"),
    ("avg_pool2d_output_too_small", lambda m: F(m).avg_pool2d(t(m, 1, 1, 2, 2), 3), RuntimeError,
     "Output size is too small"),
    ("max_pool2d_stride_zero", lambda m: F(m).max_pool2d(t(m, 1, 1, 5, 5), 2, stride=0), RuntimeError,
     "stride should not be zero"),
    ("avg_pool2d_stride_zero", lambda m: F(m).avg_pool2d(t(m, 1, 1, 5, 5), 2, stride=0), RuntimeError,
     "stride should not be zero"),
    ("max_pool2d_kernel_zero", lambda m: F(m).max_pool2d(t(m, 1, 1, 5, 5), 0), RuntimeError,
     "stride should not be zero"),
    ("max_pool2d_dilation_zero", lambda m: F(m).max_pool2d(t(m, 1, 1, 5, 5), 2, dilation=0), RuntimeError,
     "dilation"),
    ("avg_pool2d_divisor_zero", lambda m: F(m).avg_pool2d(t(m, 1, 1, 5, 5), 2, divisor_override=0), RuntimeError,
     "divisor must be not zero"),
    ("max_pool2d_rank", lambda m: F(m).max_pool2d(t(m, 5, 5), 2), RuntimeError, "3D or 4D (batch mode) tensor"),
    ("max_pool2d_rank5", lambda m: F(m).max_pool2d(t(m, 1, 1, 1, 5, 5), 2), RuntimeError,
     "3D or 4D (batch mode) tensor"),
    ("max_pool1d_rank", lambda m: F(m).max_pool1d(t(m, 1, 1, 5, 5), 2), RuntimeError, "max_pool1d"),
    ("avg_pool1d_rank", lambda m: F(m).avg_pool1d(t(m, 1, 1, 5, 5), 2), RuntimeError, "avg_pool1d"),
    ("adaptive_avg_pool2d_rank", lambda m: F(m).adaptive_avg_pool2d(t(m, 5, 5), 2), RuntimeError,
     "adaptive_avg_pool2d(): Expected 3D or 4D tensor"),
    ("adaptive_max_pool2d_rank", lambda m: F(m).adaptive_max_pool2d(t(m, 5, 5), 2), RuntimeError,
     "adaptive_max_pool2d(): Expected 3D or 4D tensor"),
    ("adaptive_avg_pool1d_rank", lambda m: F(m).adaptive_avg_pool1d(t(m, 1, 1, 5, 5), 2), RuntimeError,
     "adaptive_avg_pool1d"),
    ("adaptive_max_pool1d_rank", lambda m: F(m).adaptive_max_pool1d(t(m, 5), 2), RuntimeError,
     "adaptive_max_pool1d"),
    ("adaptive_avg_pool2d_empty", lambda m: F(m).adaptive_avg_pool2d(t(m, 1, 1, 0, 5), 2), RuntimeError,
     "adaptive_avg_pool2d()"),
    ("batch_norm_one_value_per_channel", lambda m: F(m).batch_norm(t(m, 1, 3), t(m, 3), t(m, 3), training=True),
     ValueError, "Expected more than 1 value per channel when training, got input size"),
    ("batch_norm_one_value_per_channel_4d",
     lambda m: F(m).batch_norm(t(m, 1, 3, 1, 1), None, None, training=True), ValueError,
     "Expected more than 1 value per channel when training"),
    ("batch_norm_running_mean_size", lambda m: F(m).batch_norm(t(m, 2, 4, 3), t(m, 3), t(m, 4), training=True),
     RuntimeError, "running_mean should contain 4 elements not 3"),
    ("batch_norm_weight_size", lambda m: F(m).batch_norm(t(m, 2, 4, 3), t(m, 4), t(m, 4), t(m, 3)), RuntimeError,
     "weight should contain 4 elements not 3"),
    ("batch_norm_bias_size", lambda m: F(m).batch_norm(t(m, 2, 4, 3), t(m, 4), t(m, 4), t(m, 4), t(m, 3)),
     RuntimeError, "bias should contain 4 elements not 3"),
    ("batch_norm_eval_no_stats", lambda m: F(m).batch_norm(t(m, 2, 4, 3), None, None), RuntimeError,
     "must be defined in evaluation mode"),
    ("layer_norm_shape", lambda m: F(m).layer_norm(t(m, 2, 3, 4), (5,)), RuntimeError,
     "Given normalized_shape=[5], expected input with shape [*, 5], but got input of size[2, 3, 4]"),
    ("layer_norm_shape_2dims", lambda m: F(m).layer_norm(t(m, 2, 3, 4), (2, 4)), RuntimeError,
     "expected input with shape [*, 2, 4]"),
    ("layer_norm_weight_shape", lambda m: F(m).layer_norm(t(m, 2, 3, 4), (4,), t(m, 3)), RuntimeError,
     "Expected weight to be of same shape as normalized_shape"),
    ("layer_norm_bias_shape", lambda m: F(m).layer_norm(t(m, 2, 3, 4), (4,), t(m, 4), t(m, 5)), RuntimeError,
     "Expected bias to be of same shape as normalized_shape"),
    ("group_norm_not_divisible", lambda m: F(m).group_norm(t(m, 2, 6, 4), 4), RuntimeError,
     "Expected number of channels in input to be divisible by num_groups, but got input of shape [2, 6, 4] and "
     "num_groups=4"),
    ("group_norm_weight_size", lambda m: F(m).group_norm(t(m, 2, 6, 4), 3, t(m, 3)), RuntimeError,
     "Expected weight to be a vector of size equal to the number of channels in input"),
    ("group_norm_rank", lambda m: F(m).group_norm(t(m, 6), 3), RuntimeError,
     "Expected at least 2 dimensions for input tensor but received 1"),
    # integer inputs: PyTorch's CPU kernels have no integer avg-pool or norm
    ("adaptive_avg_pool2d_int", lambda m: F(m).adaptive_avg_pool2d(t(m, 1, 1, 4, 4, dtype="int64"), 2),
     NotImplementedError, "not implemented for 'Long'"),
    ("batch_norm_int", lambda m: F(m).batch_norm(t(m, 2, 4, 3, dtype="int64"), t(m, 4), t(m, 4), training=True),
     NotImplementedError, "not implemented for 'Long'"),
    ("layer_norm_int", lambda m: F(m).layer_norm(t(m, 2, 3, 4, dtype="int64"), (4,)), NotImplementedError,
     "not implemented for 'Long'"),
    ("group_norm_int", lambda m: F(m).group_norm(t(m, 2, 6, 4, dtype="int64"), 3), NotImplementedError,
     "not implemented for 'Long'"),
    ("layer_norm_int_normalized_shape", lambda m: F(m).layer_norm(t(m, 2, 5), 5), TypeError, "normalized_shape"),
    ("batch_norm_momentum_none", lambda m: F(m).batch_norm(t(m, 4, 3), t(m, 3), t(m, 3), training=True,
                                                           momentum=None), TypeError, "momentum"),
    ("group_norm_zero_groups", lambda m: F(m).group_norm(t(m, 2, 6, 4), 0), ZeroDivisionError, ""),
    ("adaptive_avg_pool2d_negative", lambda m: F(m).adaptive_avg_pool2d(t(m, 1, 1, 4, 4), -1), RuntimeError,
     "elements of output_size must be greater than or equal to 0"),
    ("fold_4d", lambda m: F(m).fold(t(m, 1, 1, 4, 9), (4, 4), 2), RuntimeError, "Expected 2D or 3D"),
]

# rustgrad deviations from PyTorch, one reason each (see the report that came with this file).
DEVIATIONS = {
}


def error_params():
    rows = []
    for name, fn, exc, msg in ERRORS:
        marks = deviation(DEVIATIONS[name]) if name in DEVIATIONS else []
        rows.append(pytest.param(fn, exc, msg, id=name, marks=marks))
    return rows


@pytest.mark.parametrize("fn, exc, msg", error_params())
def test_errors(fn, exc, msg):
    with pytest.raises(exc, match=re.escape(msg) if msg else None):
        fn(rg)


@requires_torch
@pytest.mark.parametrize("name, fn, exc, msg", [pytest.param(*row, id=row[0]) for row in ERRORS])
def test_error_table_matches_torch(name, fn, exc, msg):
    with pytest.raises(exc, match=re.escape(msg) if msg else None):
        fn(torch_or_none())


# Integer inputs PyTorch's CPU kernels do compute (conv, max-pool, avg-pool truncating toward
# zero), and unbatched unfold.
@pytest.mark.parametrize("fn, ref", [
    pytest.param(lambda m, x, w: F(m).conv2d(x, w, padding=1), lambda x, w: np_conv2d(x, w, padding=1),
                 id="conv2d_int64",
                 marks=deviation("bug: conv2d on int64 raises NotImplementedError; PyTorch computes it")),
    pytest.param(lambda m, x, w: F(m).max_pool2d(x, 2), lambda x, w: np_max_pool2d(x, 2)[0],
                 id="max_pool2d_int64",
                 marks=deviation("bug: max_pool2d on int64 raises NotImplementedError; PyTorch computes it")),
    pytest.param(lambda m, x, w: F(m).avg_pool2d(x, 3, 1, 1), lambda x, w: np.trunc(np_avg_pool2d(x, 3, 1, 1)),
                 id="avg_pool2d_int64",
                 marks=deviation("bug: avg_pool2d on int64 raises NotImplementedError; PyTorch computes it")),
])
def test_integer_inputs(fn, ref):
    rng = np.random.default_rng(8)
    x, w = rng.integers(-9, 10, (1, 2, 4, 4)), rng.integers(-3, 4, (3, 2, 3, 3))
    out = fn(rg, rg.tensor(x), rg.tensor(w))
    assert_same(out, ref(x.astype(np.float64), w.astype(np.float64)).astype(np.int64))


@pytest.mark.parametrize("x", [pytest.param(np.random.default_rng(9).uniform(-1, 1, (3, 4, 5)), id="unbatched")])
def test_unfold_unbatched(x):
    assert_same(F(rg).unfold(rg.tensor(x), 2), np_unfold(x[None], 2)[0])


# ---------------------------------------------------------------------------------------------
# The kernels split work across threads: one and two threads must give identical results.

def test_thread_count_does_not_change_results():
    rng = np.random.default_rng(10)
    x = rng.uniform(-1, 1, (4, 8, 20, 20)).astype(np.float32)
    w = rng.uniform(-1, 1, (16, 8, 3, 3)).astype(np.float32)
    wt = rng.uniform(-1, 1, (8, 4, 3, 3)).astype(np.float32)

    def compute():
        xt, wt_ = rg.tensor(x, requires_grad=True), rg.tensor(w, requires_grad=True)
        outs = [F(rg).conv2d(xt, wt_, padding=1, stride=(1, 2)),
                F(rg).conv_transpose2d(xt, rg.tensor(wt), stride=2),
                *F(rg).max_pool2d(xt, 3, 2, 1, return_indices=True),
                F(rg).avg_pool2d(xt, 3, 2, 1, count_include_pad=False),
                F(rg).adaptive_avg_pool2d(xt, 7),
                F(rg).batch_norm(xt, None, None, training=True),
                F(rg).group_norm(xt, 4)]
        sum(o.sum() for o in outs if o.dtype == rg.float32).backward()
        return [to_numpy(o) for o in outs] + [to_numpy(xt.grad), to_numpy(wt_.grad)]

    before = rg.get_num_threads()
    try:
        rg.set_num_threads(1)
        one = compute()
        rg.set_num_threads(2)
        two = compute()
    finally:
        rg.set_num_threads(before)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(one[0], np_conv2d(x.astype(np.float64), w.astype(np.float64), None, (1, 2), 1),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("xs, ws, kw", [
    ((64, 6, 14, 14), (16, 6, 5, 5), {}),                   # LeNet conv2: output channels in vector lanes
    ((5, 4, 9, 9), (12, 4, 3, 3), dict(padding=1)),         # 12 of 16 lanes
    ((3, 6, 8, 8), (20, 3, 3, 3), dict(groups=2, padding=1)),  # 10 per group, two groups
    ((3, 4, 7, 7), (9, 4, 2, 2), dict(dilation=2)),
    ((8, 3, 32, 32), (6, 3, 5, 5), {}),                     # 6 channels: the dot-product kernel
    ((4, 8, 10, 10), (24, 8, 3, 3), dict(padding=1)),       # 24: two lane blocks
    ((2, 4, 10, 10), (40, 4, 3, 3), dict(padding=1)),       # 40: three lane blocks
    ((2, 4, 8, 8), (70, 4, 3, 3), dict(padding=1)),         # 70: the dot-product kernel
    ((4, 8, 32, 32), (16, 8, 3, 3), dict(stride=2, padding=1)),  # strided: phase-split planes
    ((3, 5, 17, 19), (7, 5, 3, 3), dict(stride=(2, 3), dilation=(1, 2))),
])
def test_conv_weight_grad_float32_matches_float64(xs, ws, kw):
    rng = np.random.default_rng(11)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    grads = []
    for dt in (rg.float32, rg.float64):
        wt = rg.tensor(w, dtype=dt, requires_grad=True)
        y = rg.nn.functional.conv2d(rg.tensor(x, dtype=dt), wt, **kw)
        y.backward(rg.tensor(np.cos(np.arange(y.numel())).reshape(tuple(y.shape)), dtype=dt))
        grads.append(wt.grad.numpy().astype(np.float64))
    scale = np.abs(grads[1]).max()
    np.testing.assert_allclose(grads[0], grads[1], rtol=0, atol=2e-5 * scale)


@pytest.mark.parametrize("xs, ws, kw", [
    ((2, 6, 14, 14), (16, 6, 5, 5), {}),                     # LeNet conv2: channels in vector lanes
    ((2, 32, 20, 40), (12, 32, 3, 3), dict(padding=1)),      # lanes; 288 weight rows, 40-wide rows
    ((2, 6, 9, 9), (20, 3, 3, 3), dict(groups=2, stride=2, padding=1)),  # lanes, per group
    ((2, 32, 32, 32), (8, 32, 3, 3), dict(padding=1)),       # tiles along output rows, stored in place
    ((2, 3, 36, 64), (6, 3, 5, 5), {}),                      # output rows of 60: a masked second tile
    ((1, 5, 12, 12), (40, 5, 3, 3), dict(dilation=2)),       # wide grid, narrowed
    ((2, 8, 32, 32), (20, 8, 3, 3), dict(stride=2, padding=1)),  # 16-wide rows, two per tile
    ((2, 5, 15, 16), (7, 5, 3, 3), dict(padding=1)),         # 16-wide, an odd row count (and its gradient)
    ((2, 4, 11, 13), (6, 4, 5, 3), dict(padding=(1, 2), dilation=(2, 1))),  # gradient tiles skip padding-only kernel rows
])
@pytest.mark.parametrize("bias", [False, True])
def test_conv_forward_and_input_grad_float32_match_float64(xs, ws, kw, bias):
    rng = np.random.default_rng(12)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    results = []
    for dt in (rg.float32, rg.float64):
        xt = rg.tensor(x, dtype=dt, requires_grad=True)
        y = rg.nn.functional.conv2d(xt, rg.tensor(w, dtype=dt), rg.tensor(b, dtype=dt) if bias else None, **kw)
        y.backward(rg.tensor(np.cos(np.arange(y.numel())).reshape(tuple(y.shape)), dtype=dt))
        results.append([y.detach().numpy().astype(np.float64), xt.grad.numpy().astype(np.float64)])
    want = np_conv2d(x, w, b if bias else None, kw.get("stride", 1), kw.get("padding", 0), kw.get("dilation", 1),
                     kw.get("groups", 1))
    np.testing.assert_allclose(results[1][0], want, rtol=1e-10, atol=1e-10)
    for got, ref in zip(results[0], results[1]):
        np.testing.assert_allclose(got, ref, rtol=0, atol=2e-5 * np.abs(ref).max())
