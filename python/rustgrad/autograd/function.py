"""Custom differentiable ops: subclass ``Function`` with static ``forward(ctx, ...)`` and
``backward(ctx, *grads)``, call ``.apply``. The engine records one node named
``<ClassName>Backward`` whose backward calls back into Python."""
from __future__ import annotations

from .. import _C
from .grad_mode import no_grad


class FunctionCtx:
    """The ``ctx`` handed to ``forward`` and ``backward``."""

    def __init__(self):
        self.to_save = ()
        self._saved = None
        self.dirty_tensors = ()
        self.non_differentiable = ()
        self.materialize_grads = True
        self.needs_input_grad = ()

    def save_for_backward(self, *tensors):
        for t in tensors:
            if t is not None and not isinstance(t, _C.Tensor):
                raise TypeError("save_for_backward can only save variables, but argument "
                                f"{tensors.index(t)} is of type {type(t).__name__}")
        self.to_save = tensors

    @property
    def saved_tensors(self):
        if self._saved is None:
            return tuple(self.to_save)
        return tuple(None if s is None else s.unpack() for s in self._saved)

    def mark_dirty(self, *args):
        self.dirty_tensors = args

    def mark_non_differentiable(self, *args):
        self.non_differentiable = args

    def set_materialize_grads(self, value):
        self.materialize_grads = bool(value)


def _is(x, seq):
    return any(x is y for y in seq)


class Function:
    """Base class of custom autograd ops (use ``MyFn.apply(...)``, never instances)."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for your custom "
                                  "autograd.Function to use it with backward mode AD.")

    @classmethod
    def apply(cls, *args, **kwargs):
        ctx = FunctionCtx()
        tensor_args = [a for a in args if isinstance(a, _C.Tensor)]
        ctx.needs_input_grad = tuple(isinstance(a, _C.Tensor) and a.requires_grad for a in args)
        with no_grad():
            outputs = cls.forward(ctx, *args, **kwargs)
        if not (_C.is_grad_enabled() and any(ctx.needs_input_grad)):
            return outputs
        is_tuple = isinstance(outputs, tuple)
        outs = list(outputs) if is_tuple else [outputs]
        for k, o in enumerate(outs):
            # An input returned as-is gets a fresh object to carry the new history.
            if isinstance(o, _C.Tensor) and _is(o, tensor_args) and not _is(o, ctx.dirty_tensors):
                outs[k] = o.detach()
                # Everything that referred to the input now refers to the output object.
                ctx.to_save = tuple(outs[k] if s is o else s for s in ctx.to_save)
                ctx.non_differentiable = tuple(outs[k] if s is o else s for s in ctx.non_differentiable)
        diff = [o for o in outs if isinstance(o, _C.Tensor) and o.is_floating_point()
                and not _is(o, ctx.non_differentiable)]

        def backward_fn(grads, needs):
            grads = iter(grads)
            full = []
            for o in outs:
                if _is(o, diff):
                    full.append(next(grads))
                elif isinstance(o, _C.Tensor):
                    full.append(_C.zeros(o.shape, dtype=o.dtype) if ctx.materialize_grads else None)
                else:
                    full.append(None)
            res = cls.backward(ctx, *full)
            if not isinstance(res, tuple):
                res = (res,)
            if len(res) < len(args) or any(r is not None for r in res[len(args):]):
                raise RuntimeError(f"function {cls.__name__}Backward returned an incorrect number of "
                                   f"gradients (expected {len(args)}, got {len(res)})")
            return [r for r, a in zip(res, args) if isinstance(a, _C.Tensor)]

        to_save = [s for s in ctx.to_save if s is not None]
        # rustgrad's own Functions may carry PyTorch's node name (e.g. BinaryCrossEntropyBackward0).
        name = cls.__dict__.get("_backward_name") or cls.__name__ + "Backward"
        saved = _C._record_function(name, tensor_args, diff, backward_fn, to_save)
        if saved is not None:
            it = iter(saved)
            ctx._saved = [None if s is None else next(it) for s in ctx.to_save]
        return tuple(outs) if is_tuple else outs[0]
