# torch.optim.RMSprop: steps scaled by a running root-mean-square of the gradients, optionally
# centered and with momentum; the update is _functional.rmsprop.
from __future__ import annotations

from . import _functional as F
from .optimizer import (Optimizer, _check_capturable, _check_non_negative, _check_tensor_lr, _to_scalar,
                        _use_grad_for_differentiable)

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        _check_tensor_lr(lr)
        _check_non_negative(lr=lr, eps=eps, momentum=momentum, weight_decay=weight_decay, alpha=alpha)
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                        maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        self._setdefault_in_groups(momentum=0, centered=False, foreach=None, maximize=False,
                                   differentiable=False, capturable=False)
        self._steps_to_tensors()

    def _init_group(self, group):
        names = (["square_avg"] + (["momentum_buffer"] if group["momentum"] > 0 else [])
                 + (["grad_avg"] if group["centered"] else []))
        params, grads, state_steps, bufs = self._lazy_state(group, names)
        return (params, grads, bufs["square_avg"], bufs.get("grad_avg", []), bufs.get("momentum_buffer", []),
                state_steps)

    @_use_grad_for_differentiable
    def step(self, closure=None):
        """One RMSprop step over every group; returns the closure's loss if one is given."""
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            params, grads, square_avgs, grad_avgs, momentum_buffers, state_steps = self._init_group(group)
            if group["capturable"]:
                _check_capturable(params)
            F.rmsprop(params, grads, square_avgs, grad_avgs, momentum_buffers, state_steps,
                      lr=_to_scalar(group["lr"]), alpha=group["alpha"], eps=group["eps"],
                      weight_decay=group["weight_decay"], momentum=group["momentum"],
                      centered=group["centered"], maximize=group["maximize"],
                      differentiable=group["differentiable"])
        return loss
