# torch.optim.RMSprop: steps scaled by a running root-mean-square of the gradients, optionally
# centered and with momentum; the update is _functional.rmsprop.
from __future__ import annotations

from .. import _C
from . import _functional as F
from .adam import _check_capturable
from .optimizer import Optimizer, _get_scalar_dtype, _to_scalar, _use_grad_for_differentiable

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        if isinstance(lr, _C.Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                        maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("momentum", 0)
            group.setdefault("centered", False)
            group.setdefault("foreach", None)
            group.setdefault("maximize", False)
            group.setdefault("differentiable", False)
            group.setdefault("capturable", False)
            for p in group["params"]:
                p_state = self.state.get(p, [])
                if len(p_state) != 0 and not isinstance(p_state["step"], _C.Tensor):
                    # Old checkpoints stored the step as a Python number.
                    p_state["step"] = _C.tensor(float(p_state["step"]), dtype=_get_scalar_dtype(),
                                                device=p.device if group["capturable"] else None)

    def _init_group(self, group, params, grads, square_avgs, momentum_buffers, grad_avgs, state_steps):
        for p in group["params"]:
            if p.grad is None:
                continue
            params.append(p)
            grads.append(p.grad)
            state = self.state[p]
            if len(state) == 0:
                state["step"] = _C.zeros((), dtype=_get_scalar_dtype(),
                                         device=p.device if group["capturable"] else None)
                state["square_avg"] = _C.zeros(p.shape, dtype=p.dtype, device=p.device)
                if group["momentum"] > 0:
                    state["momentum_buffer"] = _C.zeros(p.shape, dtype=p.dtype, device=p.device)
                if group["centered"]:
                    state["grad_avg"] = _C.zeros(p.shape, dtype=p.dtype, device=p.device)
            square_avgs.append(state["square_avg"])
            state_steps.append(state["step"])
            if group["momentum"] > 0:
                momentum_buffers.append(state["momentum_buffer"])
            if group["centered"]:
                grad_avgs.append(state["grad_avg"])

    @_use_grad_for_differentiable
    def step(self, closure=None):
        """One RMSprop step over every group; returns the closure's loss if one is given."""
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            params, grads, square_avgs, grad_avgs, momentum_buffers, state_steps = [], [], [], [], [], []
            self._init_group(group, params, grads, square_avgs, momentum_buffers, grad_avgs, state_steps)
            if group["capturable"]:
                _check_capturable(params)
            F.rmsprop(params, grads, square_avgs, grad_avgs, momentum_buffers, state_steps,
                      lr=_to_scalar(group["lr"]), alpha=group["alpha"], eps=group["eps"],
                      weight_decay=group["weight_decay"], momentum=group["momentum"],
                      centered=group["centered"], maximize=group["maximize"],
                      differentiable=group["differentiable"])
        return loss
