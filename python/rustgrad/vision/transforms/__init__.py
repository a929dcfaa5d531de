# torchvision.transforms: the transform classes, with the image functions under .functional.
from . import functional
from .transforms import *  # noqa: F401,F403
from .transforms import __all__  # noqa: F401
