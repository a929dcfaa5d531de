# rustgrad.vision: the torchvision subset the tutorials use (`import rustgrad.vision as torchvision`):
# datasets, transforms and the image-grid utilities.
from . import datasets, transforms, utils

__version__ = "0.29.0"
__all__ = ["datasets", "transforms", "utils"]
