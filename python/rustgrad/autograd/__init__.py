"""Reverse-mode automatic differentiation, as ``torch.autograd``.

The tape and every backward rule live in the Rust engine (crates/engine/src/autograd); this
package is the Python surface: ``backward``/``grad``, grad-mode context managers, custom
``Function``s and finite-difference ``gradcheck``.
"""
from __future__ import annotations

from .. import _C
from . import graph
from .function import Function, FunctionCtx
from .grad_mode import enable_grad, inference_mode, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck, gradgradcheck

is_grad_enabled = _C.is_grad_enabled
is_inference_mode_enabled = _C.is_inference_mode_enabled

__all__ = ["Function", "FunctionCtx", "backward", "grad", "gradcheck", "gradgradcheck", "GradcheckError",
           "no_grad", "enable_grad", "set_grad_enabled", "inference_mode", "graph"]


def _tensor_seq(x):
    return (x,) if isinstance(x, _C.Tensor) else tuple(x)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, grad_variables=None,
             inputs=None):
    """Sum the gradients of ``tensors`` into the ``.grad`` of the leaves (or of ``inputs``)."""
    if grad_variables is not None:
        grad_tensors = grad_variables
    tensors = _tensor_seq(tensors)
    if grad_tensors is not None and isinstance(grad_tensors, _C.Tensor):
        grad_tensors = (grad_tensors,)
    if inputs is not None:
        inputs = _tensor_seq(inputs)
    _C._backward(tensors, grad_tensors, retain_graph, create_graph, inputs)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, only_inputs=True,
         allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """The gradients of ``outputs`` with respect to ``inputs``, as a tuple; ``.grad`` is untouched."""
    if is_grads_batched:
        raise NotImplementedError("rustgrad.autograd.grad: is_grads_batched=True is not supported")
    outputs = _tensor_seq(outputs)
    inputs = _tensor_seq(inputs)
    if grad_outputs is not None and isinstance(grad_outputs, _C.Tensor):
        grad_outputs = (grad_outputs,)
    if allow_unused is None:
        allow_unused = materialize_grads
    res = _C._grad(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused)
    if materialize_grads:
        res = tuple(_C.zeros(i.shape, dtype=i.dtype) if g is None else g for g, i in zip(res, inputs))
    return res
