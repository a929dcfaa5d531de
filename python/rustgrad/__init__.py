"""rustgrad: a deep-learning framework with the PyTorch API and a Rust core.

`import rustgrad as torch` gives tensors, dtypes, devices and the functional namespace; the
heavy lifting happens in the native module `rustgrad._C` (crates/rustgrad-py over crates/engine).
"""
from __future__ import annotations

import os as _os

from . import _C
from ._size import Size
from . import return_types
from . import _tensor
from ._tensor_str import set_printoptions, get_printoptions, printoptions
from . import _functions
from . import cuda
from . import autograd
from .autograd.grad_mode import no_grad, enable_grad, set_grad_enabled, inference_mode
from . import nn
from . import optim
from . import utils

__version__ = "0.1.0"

Tensor = _C.Tensor
dtype = _C.dtype
device = _C.device
Generator = _C.Generator
memory_format = _C.memory_format
contiguous_format = _C.contiguous_format
preserve_format = _C.preserve_format
channels_last = _C.channels_last
channels_last_3d = _C.channels_last_3d

_C._register_hook("Size", Size)
# A forked child (DataLoader workers) must not touch the parent's engine threads.
if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(after_in_child=_C._after_fork_in_child)
_C._register_hook("max", return_types.max)
_C._register_hook("min", return_types.min)
_tensor.install()

# dtypes and their PyTorch aliases
bool = _C.bool
uint8 = _C.uint8
int32 = _C.int32
int64 = _C.int64
float32 = _C.float32
float64 = _C.float64
float = float32
double = float64
long = int64
int = int32

# factories and module-level functions implemented natively
from ._C import (  # noqa: E402
    tensor, as_tensor, from_numpy, zeros, ones, empty, empty_strided, full, eye, arange, linspace,
    rand, randn, randint, randperm, manual_seed, initial_seed, seed, cat, stack,
    result_type, promote_types, get_default_dtype, set_default_dtype,
    set_num_threads, get_num_threads, is_grad_enabled, is_inference_mode_enabled,
)
from ._C import where as where  # noqa: E402

globals().update(_functions.namespace())

default_generator = _C._default_generator()
_dtype_from_name = _C._dtype_from_name


def get_rng_state():
    return default_generator.get_state()


def set_rng_state(state):
    default_generator.set_state(state)

from .serialization import save, load  # noqa: E402
from .utils.safetensors import save_safetensors, load_safetensors  # noqa: E402
