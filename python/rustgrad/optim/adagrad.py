# torch.optim.Adagrad: per-element learning rates from the running sum of squared gradients,
# with lr decay; state is created eagerly in __init__ as PyTorch does. Update: _functional.adagrad.
from __future__ import annotations

from .. import _C
from . import _functional as F
from .optimizer import (Optimizer, _check_fused, _check_non_negative, _check_tensor_lr, _get_scalar_dtype,
                        _params_with_grad, _step_tensor, _to_scalar, _use_grad_for_differentiable)

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None):
        _check_tensor_lr(lr)
        _check_non_negative(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                            initial_accumulator_value=initial_accumulator_value, eps=eps)
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        _check_fused(fused, foreach, differentiable)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(group, p, initial_accumulator_value)

    def _init_state(self, group, p, initial_accumulator_value):
        state = self.state[p]
        state["step"] = _step_tensor(0, p, group)
        state["sum"] = _C.full(p.shape, initial_accumulator_value, dtype=p.dtype, device=p.device)

    def __setstate__(self, state):
        super().__setstate__(state)
        self._setdefault_in_groups(foreach=None, maximize=False, differentiable=False, fused=None)
        for s in self.state.values():
            if "step" in s and not isinstance(s["step"], _C.Tensor):
                # Old checkpoints stored the step as a Python number.
                s["step"] = _C.tensor(float(s["step"]), dtype=_get_scalar_dtype())

    def _init_group(self, group):
        params, grads = _params_with_grad(group)
        for p in params:
            if len(self.state[p]) == 0:
                # A group added after construction: PyTorch takes the constructor's default here.
                self._init_state(group, p, self.defaults["initial_accumulator_value"])
        return params, grads, [self.state[p]["sum"] for p in params], [self.state[p]["step"] for p in params]

    @_use_grad_for_differentiable
    def step(self, closure=None):
        """One Adagrad step over every group; returns the closure's loss if one is given."""
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            params, grads, state_sums, state_steps = self._init_group(group)
            F.adagrad(params, grads, state_sums, state_steps, lr=_to_scalar(group["lr"]),
                      weight_decay=group["weight_decay"], lr_decay=group["lr_decay"], eps=group["eps"],
                      maximize=group["maximize"], differentiable=group["differentiable"])
        return loss
