# torch.optim.Adagrad: per-element learning rates from the running sum of squared gradients,
# with lr decay; state is created eagerly in __init__ as PyTorch does. Update: _functional.adagrad.
from __future__ import annotations

from .. import _C
from . import _functional as F
from .optimizer import Optimizer, _get_scalar_dtype, _to_scalar, _use_grad_for_differentiable

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None):
        if isinstance(lr, _C.Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        if fused:
            if differentiable:
                raise RuntimeError("`fused` does not support `differentiable`")
            if foreach:
                raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(group, p, initial_accumulator_value)

    def _init_state(self, group, p, initial_accumulator_value):
        state = self.state[p]
        if group["fused"]:
            state["step"] = _C.zeros((), dtype=_C.float32, device=p.device)
        else:
            state["step"] = _C.tensor(0.0, dtype=_get_scalar_dtype())
        state["sum"] = _C.full(p.shape, initial_accumulator_value, dtype=p.dtype, device=p.device)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("foreach", None)
            group.setdefault("maximize", False)
            group.setdefault("differentiable", False)
            group.setdefault("fused", None)
        for s in self.state.values():
            if "step" in s and not isinstance(s["step"], _C.Tensor):
                # Old checkpoints stored the step as a Python number.
                s["step"] = _C.tensor(float(s["step"]), dtype=_get_scalar_dtype())

    def _init_group(self, group, params, grads, state_sums, state_steps):
        for p in group["params"]:
            if p.grad is None:
                continue
            params.append(p)
            grads.append(p.grad)
            state = self.state[p]
            if len(state) == 0:
                # A group added after construction: PyTorch takes the constructor's default here.
                self._init_state(group, p, self.defaults["initial_accumulator_value"])
            state_sums.append(state["sum"])
            state_steps.append(state["step"])

    @_use_grad_for_differentiable
    def step(self, closure=None):
        """One Adagrad step over every group; returns the closure's loss if one is given."""
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            params, grads, state_sums, state_steps = [], [], [], []
            self._init_group(group, params, grads, state_sums, state_steps)
            F.adagrad(params, grads, state_sums, state_steps, lr=_to_scalar(group["lr"]),
                      weight_decay=group["weight_decay"], lr_decay=group["lr_decay"], eps=group["eps"],
                      maximize=group["maximize"], differentiable=group["differentiable"])
        return loss
