# torch.optim.Adam: adaptive moment estimation with bias correction, optional AMSGrad and
# (decoupled_weight_decay=True, as AdamW) decoupled weight decay; the update is _functional.adam.
from __future__ import annotations

from .. import _C
from . import _functional as F
from .optimizer import Optimizer, _get_scalar_dtype, _to_scalar, _use_grad_for_differentiable

__all__ = ["Adam"]


def _check_capturable(params):
    # PyTorch's capturable mode keeps the step counter on an accelerator; CPU tensors cannot use it.
    supported = ["cuda", "xpu", "hpu", "privateuseone", "xla"]
    for p in params:
        if p.device.type not in supported:
            raise AssertionError(
                f"If capturable=True, params and state_steps must be on supported devices: {supported}.")


class Adam(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        if isinstance(lr, _C.Tensor):
            if foreach and not capturable:
                raise ValueError("lr as a Tensor is not supported for capturable=False and foreach=True")
            if lr.numel() != 1:
                raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
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
        if fused:
            if differentiable:
                raise RuntimeError("`fused` does not support `differentiable`")
            if foreach:
                raise RuntimeError("`fused` and `foreach` cannot be `True` together.")

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("amsgrad", False)
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("capturable", False)
            group.setdefault("differentiable", False)
            group.setdefault("decoupled_weight_decay", False)
            group.setdefault("fused", None)
            for p in group["params"]:
                p_state = self.state.get(p, [])
                if len(p_state) != 0 and not isinstance(p_state["step"], _C.Tensor):
                    # Old checkpoints stored the step as a Python number.
                    on_device = group["capturable"] or group["fused"]
                    dtype = _C.float32 if group["fused"] else _get_scalar_dtype()
                    p_state["step"] = _C.tensor(float(p_state["step"]), dtype=dtype,
                                                device=p.device if on_device else None)

    def _init_group(self, group, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps):
        for p in group["params"]:
            if p.grad is None:
                continue
            params.append(p)
            grads.append(p.grad)
            state = self.state[p]
            if len(state) == 0:
                # The step counter is a 0-dim tensor so that state dicts match PyTorch's.
                if group["capturable"] or group["fused"]:
                    dtype = _C.float32 if group["fused"] else _get_scalar_dtype()
                    state["step"] = _C.zeros((), dtype=dtype, device=p.device)
                else:
                    state["step"] = _C.tensor(0.0, dtype=_get_scalar_dtype())
                state["exp_avg"] = _C.zeros(p.shape, dtype=p.dtype, device=p.device)
                state["exp_avg_sq"] = _C.zeros(p.shape, dtype=p.dtype, device=p.device)
                if group["amsgrad"]:
                    state["max_exp_avg_sq"] = _C.zeros(p.shape, dtype=p.dtype, device=p.device)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            if group["amsgrad"]:
                max_exp_avg_sqs.append(state["max_exp_avg_sq"])
            if group["differentiable"] and state["step"].requires_grad:
                raise RuntimeError("`requires_grad` is not supported for `step` in differentiable mode")
            state_steps.append(state["step"])

    @_use_grad_for_differentiable
    def step(self, closure=None):
        """One Adam step over every group; returns the closure's loss if one is given."""
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps = [], [], [], [], [], []
            self._init_group(group, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps)
            if group["capturable"]:
                _check_capturable(params)
            beta1, beta2 = group["betas"]
            F.adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps,
                   amsgrad=group["amsgrad"], beta1=_to_scalar(beta1), beta2=_to_scalar(beta2),
                   lr=_to_scalar(group["lr"]), weight_decay=group["weight_decay"], eps=group["eps"],
                   maximize=group["maximize"], decoupled_weight_decay=group["decoupled_weight_decay"],
                   differentiable=group["differentiable"])
        return loss
