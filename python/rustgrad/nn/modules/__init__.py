"""``rustgrad.nn.modules``: the Module base class, containers and layers, one file per family
as in PyTorch's torch/nn/modules."""
import importlib

from .module import Module  # noqa: F401
from .container import Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict  # noqa: F401
from .linear import Identity, Linear, Bilinear  # noqa: F401
from .flatten import Flatten, Unflatten  # noqa: F401
from .activation import *  # noqa: F401,F403
from .activation import __all__ as _activations
from .dropout import Dropout, Dropout2d  # noqa: F401
from .sparse import Embedding  # noqa: F401
from .conv import Conv1d, Conv2d, ConvTranspose2d  # noqa: F401
from .pooling import MaxPool1d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d  # noqa: F401
from .batchnorm import BatchNorm1d, BatchNorm2d  # noqa: F401
from .normalization import LayerNorm, GroupNorm  # noqa: F401

__all__ = [
    "Module", "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict",
    "Identity", "Linear", "Bilinear", "Flatten", "Unflatten",
    *_activations,
    "Dropout", "Dropout2d", "Embedding", "Conv1d", "Conv2d", "ConvTranspose2d",
    "MaxPool1d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d",
    "BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm",
]

try:  # the losses are written separately; the package must import before they land
    _loss = importlib.import_module(".loss", __name__)
except ModuleNotFoundError as err:
    if err.name != __name__ + ".loss":
        raise
else:
    from .loss import *  # noqa: F401,F403
    __all__ += [name for name in getattr(_loss, "__all__", ()) if not name.startswith("_")]
