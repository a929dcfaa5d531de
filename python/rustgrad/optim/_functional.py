# The update rules of every optimizer, one function per algorithm over a whole param group.
# Dense float groups go to one fused engine call (`_C._optim_step`); anything else (mixed
# dtypes, strided tensors, differentiable steps) runs the composite form below, which follows
# PyTorch's single-tensor formulas operation by operation.
from __future__ import annotations

from .. import _C

__all__ = ["sgd", "adam", "adamw", "rmsprop", "adagrad"]


def _fused(algo, params, grads, states, steps=(), fresh=(), **hyper):
    """One engine call for the whole group; False (nothing changed) when it does not apply."""
    if not params:
        return True
    return _C._optim_step(algo, list(params), list(grads), [list(s) for s in states], list(steps), list(fresh), hyper)


def _advance(state_steps):
    """Increments every step counter; returns the new counts."""
    counts = []
    for t in state_steps:
        t.add_(1)
        counts.append(t.item())
    return counts


# PyTorch's addcmul_/addcdiv_/lerp_ composed from existing ops, rounding in the same order as
# its CPU kernels: self + (value * t1) * t2, self + (value * t1) / t2, start + w * (end - start).

def _addcmul_(self, t1, t2, value=1.0):
    return self.add_(t1.mul(value).mul_(t2))


def _addcdiv_(self, t1, t2, value=1.0):
    return self.add_(t1.mul(value).div_(t2))


def _lerp_(self, end, weight):
    if abs(weight) < 0.5:
        return self.add_(end.sub(self).mul_(weight))
    # The large-weight branch anchors at `end` so that weight=1 returns `end` exactly.
    return self.copy_(end.sub(end.sub(self).mul_(1 - weight)))


def _check_steps(state_steps):
    if not all(isinstance(t, _C.Tensor) for t in state_steps):
        raise RuntimeError("API has changed, `state_steps` argument must contain a list of singleton tensors")


def sgd(params, grads, momentum_buffers, *, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """SGD with optional momentum/dampening/Nesterov and L2 weight decay. Newly created
    momentum buffers are written back into `momentum_buffers`."""
    fresh = []
    if momentum != 0:
        fresh = [b is None for b in momentum_buffers]
        bufs = [p.new_zeros(p.shape) if b is None else b for p, b in zip(params, momentum_buffers)] if any(fresh) else momentum_buffers
    if _fused("sgd", params, grads, [bufs] if momentum != 0 else [], fresh=fresh, lr=lr, momentum=momentum,
              dampening=dampening, weight_decay=weight_decay, nesterov=nesterov, maximize=maximize):
        if momentum != 0:
            momentum_buffers[:] = bufs
        return
    for i, param in enumerate(params):
        grad = grads[i] if not maximize else grads[i].neg()
        if weight_decay != 0:
            grad = grad.add(param, alpha=weight_decay)
        if momentum != 0:
            buf = momentum_buffers[i]
            if buf is None:
                buf = grad.detach().clone()
                momentum_buffers[i] = buf
            else:
                buf.mul_(momentum).add_(grad, alpha=1 - dampening)
            grad = grad.add(buf, alpha=momentum) if nesterov else buf
        param.add_(grad, alpha=-lr)


def adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, *, amsgrad, beta1, beta2,
         lr, weight_decay, eps, maximize, decoupled_weight_decay=False, differentiable=False):
    """Adam (and AdamW with decoupled_weight_decay=True), with optional AMSGrad. `differentiable`
    avoids overwriting tensors that the recorded graph still needs, as PyTorch does."""
    _check_steps(state_steps)
    if not differentiable and all(not t.requires_grad for t in state_steps):
        states = [exp_avgs, exp_avg_sqs] + ([max_exp_avg_sqs] if amsgrad else [])
        if _C._optim_fusable(list(params), list(grads), [list(x) for x in states]):
            _fused("adam", params, grads, states, steps=_advance(state_steps), lr=lr, beta1=beta1, beta2=beta2,
                   eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
                   decoupled_weight_decay=decoupled_weight_decay)
            return
    for i, param in enumerate(params):
        grad = grads[i] if not maximize else grads[i].neg()
        exp_avg, exp_avg_sq, step_t = exp_avgs[i], exp_avg_sqs[i], state_steps[i]
        step_t.add_(1)

        if weight_decay != 0:
            if decoupled_weight_decay:
                param.mul_(1 - lr * weight_decay)
            else:
                grad = grad.add(param, alpha=weight_decay)

        _lerp_(exp_avg, grad, 1 - beta1)
        _addcmul_(exp_avg_sq.mul_(beta2), grad, grad, value=1 - beta2)

        if amsgrad:
            old_max = max_exp_avg_sqs[i].clone() if differentiable else max_exp_avg_sqs[i]
            max_exp_avg_sqs[i].copy_(old_max.maximum(exp_avg_sq))
        second = max_exp_avg_sqs[i] if amsgrad else exp_avg_sq

        if differentiable:
            # PyTorch's differentiable path keeps the bias corrections as tensors of the step's
            # dtype (float32), folding the step size into the denominator.
            step_size_neg = (lr / (1 - beta1 ** step_t)).neg()
            bias_correction2_sqrt = (1 - beta2 ** step_t).sqrt()
            denom = (second.sqrt() / (bias_correction2_sqrt * step_size_neg)).add_(eps / step_size_neg)
            _addcdiv_(param, exp_avg, denom)
        else:
            step = step_t.item()
            step_size = lr / (1 - beta1 ** step)
            bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
            denom = (second.sqrt() / bias_correction2_sqrt).add_(eps)
            _addcdiv_(param, exp_avg, denom, value=-step_size)


def adamw(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, *, amsgrad, beta1, beta2,
          lr, weight_decay, eps, maximize, differentiable=False):
    """AdamW: Adam whose weight decay shrinks the parameters instead of adding to the gradient."""
    adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, amsgrad=amsgrad,
         beta1=beta1, beta2=beta2, lr=lr, weight_decay=weight_decay, eps=eps, maximize=maximize,
         decoupled_weight_decay=True, differentiable=differentiable)


def rmsprop(params, grads, square_avgs, grad_avgs, momentum_buffers, state_steps, *, lr, alpha, eps,
            weight_decay, momentum, centered, maximize, differentiable=False):
    """RMSprop, optionally centered (variance instead of second moment) and with momentum."""
    _check_steps(state_steps)
    if not differentiable:
        states = [square_avgs] + ([grad_avgs] if centered else []) + ([momentum_buffers] if momentum > 0 else [])
        if _C._optim_fusable(list(params), list(grads), [list(x) for x in states]):
            _fused("rmsprop", params, grads, states, steps=_advance(state_steps), lr=lr, alpha=alpha, eps=eps,
                   weight_decay=weight_decay, momentum=momentum, centered=centered, maximize=maximize)
            return
    for i, param in enumerate(params):
        grad = grads[i] if not maximize else grads[i].neg()
        square_avg = square_avgs[i]
        state_steps[i].add_(1)

        if weight_decay != 0:
            grad = grad.add(param, alpha=weight_decay)

        _addcmul_(square_avg.mul_(alpha), grad, grad, value=1 - alpha)
        if centered:
            grad_avg = grad_avgs[i]
            _lerp_(grad_avg, grad, 1 - alpha)
            avg = _addcmul_(square_avg.clone(), grad_avg, grad_avg, value=-1).sqrt_()
        else:
            avg = square_avg.sqrt()
        avg = avg.add(eps) if differentiable else avg.add_(eps)  # sqrt's output may be saved

        if momentum > 0:
            buf = momentum_buffers[i]
            _addcdiv_(buf.mul_(momentum), grad, avg)
            param.add_(buf, alpha=-lr)
        else:
            _addcdiv_(param, grad, avg, value=-lr)


def adagrad(params, grads, state_sums, state_steps, *, lr, weight_decay, lr_decay, eps, maximize,
            differentiable=False):
    """Adagrad: per-element steps scaled by the root of the summed squared gradients."""
    _check_steps(state_steps)
    if not differentiable and _C._optim_fusable(list(params), list(grads), [list(state_sums)]):
        _fused("adagrad", params, grads, [state_sums], steps=_advance(state_steps), lr=lr, weight_decay=weight_decay,
               lr_decay=lr_decay, eps=eps, maximize=maximize)
        return
    for param, grad, state_sum, step_t in zip(params, grads, state_sums, state_steps):
        step_t.add_(1)
        step = step_t.item()
        grad = grad if not maximize else grad.neg()
        if weight_decay != 0:
            grad = grad.add(param, alpha=weight_decay)
        clr = lr / (1 + (step - 1) * lr_decay)
        _addcmul_(state_sum, grad, grad, value=1)
        std = state_sum.sqrt().add(eps) if differentiable else state_sum.sqrt().add_(eps)
        _addcdiv_(param, grad, std, value=-clr)
