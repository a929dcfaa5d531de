"""Graph nodes: ``tensor.grad_fn`` objects are instances of subclasses of ``Node`` named after
the op's backward (``MulBackward0``, ``AccumulateGrad``, ...)."""
from .. import _C

Node = _C.Node
