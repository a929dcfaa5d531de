"""`rustgrad.cuda`: reports whether a CUDA backend is usable in this build and machine."""
from __future__ import annotations


def is_available() -> bool:
    # The CPU build has no CUDA backend; the GPU backend will report devices here.
    return False


def device_count() -> int:
    return 0


def manual_seed(seed: int) -> None:
    """Seeds CUDA generators; without CUDA there is nothing to seed (as in PyTorch)."""


manual_seed_all = manual_seed
