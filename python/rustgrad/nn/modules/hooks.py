"""Module hook plumbing: ``RemovableHandle`` (what every ``register_*_hook`` returns) and
``BackwardHook``, which runs full backward hooks through two identity autograd Functions, one
around the module's inputs and one around its outputs, as PyTorch's BackwardHook does."""
from __future__ import annotations

import warnings
import weakref
from collections import OrderedDict

from ... import _C
from ...autograd.function import Function

Tensor = _C.Tensor


class RemovableHandle:
    """Removes the hook it was returned for; usable as a context manager."""

    next_id = 0

    def __init__(self, hooks_dict, *, extra_dict=None):
        self.hooks_dict_ref = weakref.ref(hooks_dict)
        self.id = RemovableHandle.next_id
        RemovableHandle.next_id += 1
        if isinstance(extra_dict, dict):
            extra_dict = [extra_dict]
        self.extra_dict_ref = tuple(weakref.ref(d) for d in extra_dict or ())

    def remove(self):
        for ref in (self.hooks_dict_ref, *self.extra_dict_ref):
            d = ref()
            if d is not None and self.id in d:
                del d[self.id]

    def __getstate__(self):
        return (self.hooks_dict_ref(), self.id, tuple(ref() for ref in self.extra_dict_ref))

    def __setstate__(self, state):
        self.hooks_dict_ref = weakref.ref(OrderedDict() if state[0] is None else state[0])
        self.id = state[1]
        RemovableHandle.next_id = max(RemovableHandle.next_id, self.id + 1)
        self.extra_dict_ref = tuple(weakref.ref(d) for d in state[2] if d is not None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class _HookIdentity(Function):
    # Passes tensors through unchanged; its backward hands the gradients to `on_backward`,
    # which may replace them.
    @staticmethod
    def forward(ctx, on_backward, *tensors):
        ctx.on_backward = on_backward
        return tensors

    @staticmethod
    def backward(ctx, *grads):
        return (None, *ctx.on_backward(grads))


def _positions(args):
    # (positions of tensors, positions of tensors that require grad), or (None, []) when no
    # gradient can flow and the hooks are not set up.
    idx = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
    if not (_C.is_grad_enabled() and any(args[i].requires_grad for i in idx)):
        return None, []
    return idx, [i for i in idx if args[i].requires_grad]


def _wrap(args, grad_idx, on_backward):
    # Only tensors that require grad go through the identity node.
    new = _HookIdentity.apply(on_backward, *[args[i] for i in grad_idx])
    out = list(args)
    for i, t in zip(grad_idx, new):
        out[i] = t
    return tuple(out) if type(args) is tuple else type(args)(*out)


def _pack_with_none(indices, values, size):
    res = [None] * size
    for idx, val in zip(indices, values):
        res[idx] = val
    return tuple(res)


class BackwardHook:
    """One module call's full backward hooks: collects grad_output at the outputs' identity
    node, then calls the user hooks with grad_input at the inputs' identity node."""

    def __init__(self, module, user_hooks, user_pre_hooks):
        self.module = module
        self.user_hooks = user_hooks
        self.user_pre_hooks = user_pre_hooks
        self.grad_outputs = None
        self.n_inputs = self.n_outputs = -1
        self.input_tensors_index = self.output_tensors_index = None

    def setup_input_hook(self, args):
        self.n_inputs = len(args)
        self.input_tensors_index, grad_idx = _positions(args)
        if self.input_tensors_index is None:
            return args
        # Tensors that need no grad get zeros, as PyTorch's identity node materializes them.
        zeros = {i: (args[i].shape, args[i].dtype) for i in self.input_tensors_index if i not in grad_idx}

        def on_backward(grads):
            if self.grad_outputs is None:
                # Gradient reached the inputs without passing the outputs (double backward).
                return grads
            by_pos = {i: _C.zeros(shape, dtype=dtype) for i, (shape, dtype) in zeros.items()}
            by_pos.update(zip(grad_idx, grads))
            res = _pack_with_none(list(by_pos), list(by_pos.values()), self.n_inputs)
            for hook in self.user_hooks:
                out = hook(self.module, res, self.grad_outputs)
                if out is None:
                    continue
                if len(out) != len(res):
                    raise RuntimeError("Backward hook returned an invalid number of grad_input, "
                                       f"got {len(out)}, but expected {len(res)}")
                res = out
            self.grad_outputs = None
            return tuple(res[i] for i in grad_idx)

        return _wrap(args, grad_idx, on_backward)

    def setup_output_hook(self, result):
        is_tuple = isinstance(result, tuple)
        args = result if is_tuple else (result,)
        self.n_outputs = len(args)
        self.output_tensors_index, grad_idx = _positions(args)
        if self.output_tensors_index is None:
            return result
        received = {}

        def on_backward(grads):
            # Outputs that no gradient reached are None, as PyTorch reports them.
            self.grad_outputs = _pack_with_none(grad_idx, [received.get(i) for i in grad_idx], self.n_outputs)
            for pre_hook in self.user_pre_hooks:
                out = pre_hook(self.module, self.grad_outputs)
                if out is None:
                    continue
                if len(out) != len(self.grad_outputs):
                    raise RuntimeError("Backward pre hook returned an invalid number of grad_output, "
                                       f"got {len(out)}, but expected {len(self.grad_outputs)}")
                self.grad_outputs = out
            local = self.grad_outputs
            if self.input_tensors_index is None:
                warnings.warn("Full backward hook is firing when gradients are computed with respect to module "
                              "outputs since no inputs require gradients. See "
                              "https://docs.pytorch.org/docs/main/generated/torch.nn.Module.html"
                              "#torch.nn.Module.register_full_backward_hook for more details.", stacklevel=5)
                grad_inputs = _pack_with_none([], [], self.n_inputs)
                for hook in self.user_hooks:
                    res = hook(self.module, grad_inputs, self.grad_outputs)
                    if res is not None and not (isinstance(res, tuple) and all(el is None for el in res)):
                        raise RuntimeError("Backward hook for Modules where no input requires gradient should "
                                           "always return None or None for all gradients.")
                self.grad_outputs = None
            return tuple(g if local[i] is None else local[i] for i, g in zip(grad_idx, grads))

        res = _wrap(args, grad_idx, on_backward)
        for i in grad_idx:
            res[i].register_hook(_recorder(received, i))
        return res if is_tuple else res[0]


def _recorder(received, i):
    def hook(grad):
        received[i] = grad
    return hook
