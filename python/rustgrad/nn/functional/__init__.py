"""``rustgrad.nn.functional``: PyTorch's stateless ops, one file per family; the heavy ones are
single engine ops reached through ``rustgrad._C``."""
from .activation import *  # noqa: F401,F403
from .activation import _softmax_dim  # noqa: F401
from .loss import *  # noqa: F401,F403
from .loss import _reduction  # noqa: F401
from .vision import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403
from .sparse import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
