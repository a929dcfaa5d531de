"""``rustgrad.nn.functional``: PyTorch's stateless ops, one file per family; the heavy ones are
single engine ops reached through ``rustgrad._C``."""
from .activation import *  # noqa: F401,F403
from .activation import _softmax_dim  # noqa: F401
from .loss import *  # noqa: F401,F403
from .loss import _reduction  # noqa: F401
from .vision import *  # noqa: F401,F403
