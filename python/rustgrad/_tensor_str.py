"""Text rendering of tensors, matching PyTorch's ``repr(tensor)`` character for character.

Pure Python on purpose: the engine hands us a tensor-like object and we only read
``dtype``, ``shape``, ``device``, ``requires_grad``, ``grad_fn`` and the values via
``detach().cpu().numpy()``.  Nothing from rustgrad is imported here, so the module
can be loaded (and tested against real torch tensors) without the compiled core.
"""

import contextlib
import dataclasses
import math

import numpy as np

# The engine may change this when it grows ``set_default_dtype``.
_default_dtype_name = "float32"

_FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
# Types numpy can't hold (or the engine can't export); they are printed via float32, as torch does.
_UPCAST_DTYPES = ("float16", "bfloat16")


@dataclasses.dataclass
class _PrintOptions:
    precision: int = 4
    threshold: float = 1000
    edgeitems: int = 3
    linewidth: int = 80
    sci_mode: object = None  # None = decide per tensor, True/False = force


PRINT_OPTS = _PrintOptions()

_PROFILES = {
    "default": dict(precision=4, threshold=1000, edgeitems=3, linewidth=80),
    "short": dict(precision=2, threshold=1000, edgeitems=2, linewidth=80),
    "full": dict(precision=4, threshold=math.inf, edgeitems=3, linewidth=80),
}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None,
                     profile=None, sci_mode=None):
    """Same semantics as ``torch.set_printoptions``.

    A profile is applied first and explicit arguments override it; unknown profile
    names are ignored. ``sci_mode`` is always assigned, so omitting it resets it to
    automatic (torch behaves the same way).
    """
    if profile in _PROFILES:
        for key, value in _PROFILES[profile].items():
            setattr(PRINT_OPTS, key, value)
    for key, value in (("precision", precision), ("threshold", threshold),
                       ("edgeitems", edgeitems), ("linewidth", linewidth)):
        if value is not None:
            setattr(PRINT_OPTS, key, value)
    PRINT_OPTS.sci_mode = sci_mode


def get_printoptions():
    """Current options as a dict (precision, threshold, edgeitems, linewidth, sci_mode)."""
    return dataclasses.asdict(PRINT_OPTS)


@contextlib.contextmanager
def printoptions(**kwargs):
    """Temporarily apply ``set_printoptions(**kwargs)``."""
    saved = get_printoptions()
    set_printoptions(**kwargs)
    try:
        yield
    finally:
        set_printoptions(**saved)


class _Formatter:
    """Decides one style (int-like, fixed or scientific) and one column width for all elements."""

    def __init__(self, values, is_float):
        self.is_float = is_float
        self.int_mode = True   # floats that are all whole numbers print as "3."
        self.sci_mode = False
        self.width = 1
        if not is_float:
            self.width = max([1] + [len(str(v)) for v in values.tolist()])
            return
        # Zeros, nan and inf don't influence the style; if nothing else is left torch
        # keeps the int-like style and even ignores a forced sci_mode.
        shown = values[np.isfinite(values) & (values != 0)]
        if shown.size == 0:
            return
        self.int_mode = bool(np.all(shown == np.ceil(shown)))
        magnitudes = np.abs(shown.astype(np.float64))
        lo, hi = float(magnitudes.min()), float(magnitudes.max())
        if PRINT_OPTS.sci_mode is None:
            self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4
        else:
            self.sci_mode = bool(PRINT_OPTS.sci_mode)
        self.width = max(len(self._render(v)) for v in shown.tolist())

    def _render(self, value):
        if not self.is_float:
            return str(value)
        if self.sci_mode:
            return f"{value:.{PRINT_OPTS.precision}e}"
        if self.int_mode:
            # The trailing dot marks "float"; nan/inf already read as floats.
            return f"{value:.0f}" + ("" if math.isinf(value) or math.isnan(value) else ".")
        return f"{value:.{PRINT_OPTS.precision}f}"

    def format(self, value):
        return self._render(value).rjust(self.width)


def _visible_values(a):
    """Flat array of the elements a summarized print shows; the formatter only looks at these."""
    edge = PRINT_OPTS.edgeitems
    if a.ndim == 0:
        return a.reshape(1)
    if a.ndim == 1:
        # Note a[-0:] is the whole array, so edgeitems=0 keeps every value here (as torch does).
        return np.concatenate([a[:edge], a[-edge:]]) if len(a) > 2 * edge else a
    if not edge:
        return a.reshape(-1)[:0]
    rows = list(a[:edge]) + list(a[-edge:]) if len(a) > 2 * edge else list(a)
    return np.concatenate([_visible_values(row) for row in rows])


def _vector_str(a, indent, summarize, fmt):
    per_line = max(1, math.floor((PRINT_OPTS.linewidth - indent) / (fmt.width + 2)))
    edge = PRINT_OPTS.edgeitems
    if summarize and not edge:
        items = ["..."]
    elif summarize and len(a) > 2 * edge:
        items = ([fmt.format(v) for v in a[:edge].tolist()] + [" ..."]
                 + [fmt.format(v) for v in a[-edge:].tolist()])
    else:
        items = [fmt.format(v) for v in a.tolist()]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _body_str(a, indent, summarize, fmt):
    if a.ndim == 0:
        return fmt.format(a.item())
    if a.ndim == 1:
        return _vector_str(a, indent, summarize, fmt)
    edge = PRINT_OPTS.edgeitems
    if summarize and len(a) > 2 * edge:
        parts = ([_body_str(row, indent + 1, summarize, fmt) for row in a[:edge]] + ["..."]
                 + [_body_str(row, indent + 1, summarize, fmt) for row in a[len(a) - edge:]])
    else:
        parts = [_body_str(row, indent + 1, summarize, fmt) for row in a]
    # Sub-blocks of a k-D tensor are separated by k-2 blank lines.
    return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(parts) + "]"


def _add_suffixes(text, suffixes, indent):
    """Append ', key=value' items, wrapping onto an indented line when the line gets too long."""
    # torch overestimates the last line's length by 2 (rfind + 1 instead of - 1); mirrored on purpose.
    line_len = len(text) - text.rfind("\n") + 1
    pieces = [text]
    for suffix in suffixes:
        if line_len + len(suffix) + 2 > PRINT_OPTS.linewidth:
            pieces.append(",\n" + " " * indent + suffix)
            line_len = indent + len(suffix)
        else:
            pieces.append(", " + suffix)
            line_len += len(suffix) + 2
    return "".join(pieces) + ")"


def _grad_fn_name(grad_fn):
    name = grad_fn.name() if callable(getattr(grad_fn, "name", None)) else type(grad_fn).__name__
    return name.rsplit("::", 1)[-1]  # C++ nodes may report a namespaced name


def tensor_repr(t):
    """``repr(t)`` / ``str(t)`` exactly as PyTorch prints it."""
    prefix = "tensor("
    indent = len(prefix)
    dtype_str = str(t.dtype)
    dtype_name = dtype_str.rsplit(".", 1)[-1]
    if "." not in dtype_str:
        dtype_str = "rustgrad." + dtype_str
    shape = tuple(int(n) for n in t.shape)
    numel = math.prod(shape)

    suffixes = []
    if t.device.type != "cpu":
        suffixes.append(f"device='{t.device}'")
    if numel == 0:
        body = "[]"
        if len(shape) != 1:  # like NumPy, only the plain (0,) shape goes without saying
            suffixes.append(f"size={shape}")
        # No values to tell ints from floats, so any non-default dtype is spelled out.
        if dtype_name != _default_dtype_name:
            suffixes.append(f"dtype={dtype_str}")
    else:
        if not PRINT_OPTS.edgeitems:  # nothing but "..." is shown, so give the size
            suffixes.append(f"size={shape}")
        if dtype_name not in (_default_dtype_name, "int64", "bool"):
            suffixes.append(f"dtype={dtype_str}")
        src = t.detach().cpu()
        values = np.asarray((src.float() if dtype_name in _UPCAST_DTYPES else src).numpy())
        summarize = numel > PRINT_OPTS.threshold
        shown = _visible_values(values) if summarize else values.reshape(-1)
        fmt = _Formatter(shown, dtype_name in _FLOAT_DTYPES)
        body = _body_str(values, indent, summarize, fmt)

    grad_fn = getattr(t, "grad_fn", None)
    if grad_fn is not None:
        suffixes.append(f"grad_fn=<{_grad_fn_name(grad_fn)}>")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    return _add_suffixes(prefix + body, suffixes, indent)
