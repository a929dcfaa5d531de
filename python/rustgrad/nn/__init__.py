"""Neural-network building blocks (``rustgrad.nn``): ``Module``, ``Parameter``, containers,
layers and losses, with ``functional``, ``init`` and ``utils`` as submodules."""
from .parameter import Parameter, Buffer  # noqa: F401
from .modules import *  # noqa: F401,F403
from .modules import Module  # noqa: F401
from . import functional  # noqa: F401
from . import init  # noqa: F401
from . import utils  # noqa: F401
