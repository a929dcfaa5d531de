"""Helpers shared by the layer modules: ``_single``/``_pair``/``_triple`` turn an int into a
tuple, ``_reverse_repeat_tuple`` turns conv padding into ``F.pad``'s, ``_empty`` allocates a
parameter honouring the ``device``/``dtype`` factory arguments."""
from __future__ import annotations

import collections.abc
from itertools import repeat

from ... import _C


def _ntuple(n, name="parse"):
    def parse(x):
        if isinstance(x, collections.abc.Iterable):
            return tuple(x)
        return tuple(repeat(x, n))

    parse.__name__ = name
    return parse


_single = _ntuple(1, "_single")
_pair = _ntuple(2, "_pair")
_triple = _ntuple(3, "_triple")


def _reverse_repeat_tuple(t, n):
    # F.pad lists padding from the last dim backwards, each side once.
    return tuple(x for x in reversed(t) for _ in range(n))


def _empty(*shape, device=None, dtype=None):
    # Uninitialised storage for a parameter or buffer; reset_parameters fills it.
    t = _C.empty(*shape, dtype=dtype)
    return t if device is None else t.to(device)
