# torch.optim.SGD: stochastic gradient descent with optional momentum, dampening, Nesterov
# momentum and L2 weight decay; the update itself is _functional.sgd.
from __future__ import annotations

from . import _functional as F
from .optimizer import (Optimizer, _check_fused, _check_tensor_lr, _params_with_grad, _to_scalar,
                        _use_grad_for_differentiable)

__all__ = ["SGD"]


class SGD(Optimizer):
    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        _check_tensor_lr(lr)
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach,
                        differentiable=differentiable, fused=fused)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)
        _check_fused(fused, foreach, differentiable)

    def __setstate__(self, state):
        super().__setstate__(state)
        self._setdefault_in_groups(nesterov=False, maximize=False, foreach=None, differentiable=False, fused=False)

    @_use_grad_for_differentiable
    def step(self, closure=None):
        """One SGD step over every group; returns the closure's loss if one is given."""
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            params, grads = _params_with_grad(group)
            bufs = [self.state[p].get("momentum_buffer") for p in params] if group["momentum"] != 0 else []
            F.sgd(params, grads, bufs, lr=_to_scalar(group["lr"]), momentum=group["momentum"],
                  dampening=group["dampening"], weight_decay=_to_scalar(group["weight_decay"]),
                  nesterov=group["nesterov"], maximize=group["maximize"])
            if group["momentum"] != 0:
                for p, buf in zip(params, bufs):
                    self.state[p]["momentum_buffer"] = buf
        return loss
