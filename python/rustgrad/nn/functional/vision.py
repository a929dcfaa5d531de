"""Padding and resampling (``rustgrad.nn.functional``)."""
from __future__ import annotations

from ... import _C


def pad(input, pad, mode="constant", value=None):
    if mode != "constant":
        raise NotImplementedError(f"rustgrad.nn.functional.pad: mode '{mode}' is not supported (only 'constant')")
    return _C._pad(input, tuple(pad), value)
