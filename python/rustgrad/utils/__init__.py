# rustgrad.utils: helpers around the tensor library, as torch.utils (data loading lives in `data`).
from . import data

__all__ = ["data"]
