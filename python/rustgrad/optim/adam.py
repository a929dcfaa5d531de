# torch.optim.Adam: adaptive moment estimation with bias correction, optional AMSGrad and
# (decoupled_weight_decay=True, as AdamW) decoupled weight decay; the update is _functional.adam.
from __future__ import annotations

from .. import _C
from . import _functional as F
from .optimizer import (Optimizer, _check_capturable, _check_fused, _check_non_negative, _check_tensor_lr,
                        _to_scalar, _use_grad_for_differentiable)

__all__ = ["Adam"]


class Adam(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        _check_tensor_lr(lr, foreach, capturable)
        _check_non_negative(lr=lr, eps=eps)
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        _check_non_negative(weight_decay=weight_decay)
        if not ((isinstance(betas[0], float) and isinstance(betas[1], float))
                or (isinstance(betas[0], _C.Tensor) and isinstance(betas[1], _C.Tensor))):
            raise ValueError("betas must be either both floats or both Tensors")
        for i, beta in enumerate(betas[:2]):
            if isinstance(beta, _C.Tensor):
                if not capturable and foreach:
                    raise ValueError(
                        f"betas[{i}] as a Tensor is not supported for capturable=False and foreach=True")
                if beta.numel() != 1:
                    raise ValueError(f"Tensor betas[{i}] must be 1-element")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, foreach=foreach, capturable=capturable,
                        differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)
        _check_fused(fused, foreach, differentiable)

    def __setstate__(self, state):
        super().__setstate__(state)
        self._setdefault_in_groups(amsgrad=False, maximize=False, foreach=None, capturable=False,
                                   differentiable=False, decoupled_weight_decay=False, fused=None)
        self._steps_to_tensors()

    def _init_group(self, group):
        names = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if group["amsgrad"] else [])
        params, grads, state_steps, bufs = self._lazy_state(group, names)
        if group["differentiable"] and any(step.requires_grad for step in state_steps):
            raise RuntimeError("`requires_grad` is not supported for `step` in differentiable mode")
        return params, grads, bufs["exp_avg"], bufs["exp_avg_sq"], bufs.get("max_exp_avg_sq", []), state_steps

    @_use_grad_for_differentiable
    def step(self, closure=None):
        """One Adam step over every group; returns the closure's loss if one is given."""
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps = self._init_group(group)
            if group["capturable"]:
                _check_capturable(params)
            beta1, beta2 = group["betas"]
            F.adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps,
                   amsgrad=group["amsgrad"], beta1=_to_scalar(beta1), beta2=_to_scalar(beta2),
                   lr=_to_scalar(group["lr"]), weight_decay=group["weight_decay"], eps=group["eps"],
                   maximize=group["maximize"], decoupled_weight_decay=group["decoupled_weight_decay"],
                   differentiable=group["differentiable"])
        return loss
