"""Finite-difference checks of autograd: ``gradcheck`` compares each analytical Jacobian (one
backward per output element) with central differences; ``gradgradcheck`` does the same for
the gradient function itself (second order). Use float64 inputs."""
from __future__ import annotations

import numpy as np

from .. import _C
from .grad_mode import enable_grad, no_grad


class GradcheckError(RuntimeError):
    """Raised when an analytical gradient disagrees with finite differences."""


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _values(outputs):
    return [np.array(o.detach().numpy(), dtype=np.float64, copy=True).reshape(-1) for o in outputs]


def _numerical(func, inputs, wrt, n_out, eps):
    """jac[o][i]: (numel(input i), numel(output o)) by central differences."""
    jac = [[None] * len(wrt) for _ in range(n_out)]
    for col, i in enumerate(wrt):
        x = inputs[i]
        arr = x.detach().numpy()  # shares memory with x: perturb in place
        rows = []
        for idx in np.ndindex(arr.shape):
            orig = arr[idx].item()
            arr[idx] = orig + eps
            with no_grad():
                plus = _values([t for t in _as_tuple(func(*inputs)) if isinstance(t, _C.Tensor)])
            arr[idx] = orig - eps
            with no_grad():
                minus = _values([t for t in _as_tuple(func(*inputs)) if isinstance(t, _C.Tensor)])
            arr[idx] = orig
            rows.append([(p - m) / (2 * eps) for p, m in zip(plus, minus)])
        for o in range(n_out):
            size = 0 if not rows else rows[0][o].size
            jac[o][col] = np.array([r[o] for r in rows]).reshape(arr.size, size)
    return jac


def _analytical(outputs, inputs, wrt):
    jac = [[None] * len(wrt) for _ in range(len(outputs))]
    for o, out in enumerate(outputs):
        rows = {col: np.zeros((inputs[i].numel(), out.numel())) for col, i in enumerate(wrt)}
        if out.requires_grad:
            for k in range(out.numel()):
                seed = np.zeros(out.numel())
                seed[k] = 1.0
                go = _C.tensor(seed.reshape(tuple(out.shape)), dtype=out.dtype)
                grads = _C._grad((out,), tuple(inputs[i] for i in wrt), (go,), True, False, True)
                for col, g in enumerate(grads):
                    if g is not None:
                        rows[col][:, k] = np.asarray(g.detach().numpy(), dtype=np.float64).reshape(-1)
        for col in rows:
            jac[o][col] = rows[col]
    return jac


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, nondet_tol=0.0,
              check_undefined_grad=True, check_grad_dtypes=False, check_batched_grad=False,
              check_batched_forward_grad=False, check_forward_ad=False, check_backward_ad=True,
              fast_mode=False, masked=None):
    """True if the gradients of ``func`` at ``inputs`` match finite differences."""
    inputs = _as_tuple(inputs)
    wrt = [i for i, x in enumerate(inputs) if isinstance(x, _C.Tensor) and x.requires_grad]
    if not wrt:
        raise ValueError("gradcheck expects at least one input tensor to require gradient, "
                         "but none of the them have requires_grad=True.")
    outputs = [o for o in _as_tuple(func(*inputs)) if isinstance(o, _C.Tensor)]
    numerical = _numerical(func, inputs, wrt, len(outputs), eps)
    analytical = _analytical(outputs, inputs, wrt)
    for o in range(len(outputs)):
        for col, i in enumerate(wrt):
            a, n = analytical[o][col], numerical[o][col]
            if a.shape != n.shape or not np.allclose(a, n, rtol=rtol, atol=atol):
                if not raise_exception:
                    return False
                raise GradcheckError(
                    f"Jacobian mismatch for output {o} with respect to input {i},\n"
                    f"numerical:{n}\nanalytical:{a}\n")
    return True


def gradgradcheck(func, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3,
                  gen_non_contig_grad_outputs=False, raise_exception=True, nondet_tol=0.0,
                  check_undefined_grad=True, check_grad_dtypes=False, check_batched_grad=False,
                  check_fwd_over_rev=False, check_rev_over_rev=True, fast_mode=False, masked=False):
    """gradcheck of the map (inputs, grad_outputs) -> gradients (second derivatives)."""
    inputs = _as_tuple(inputs)
    outputs = [o for o in _as_tuple(func(*inputs)) if isinstance(o, _C.Tensor) and o.requires_grad]
    if grad_outputs is None:
        rng = np.random.default_rng(0)
        grad_outputs = tuple(_C.tensor(rng.standard_normal(tuple(o.shape)), dtype=o.dtype, requires_grad=True)
                             for o in outputs)
    grad_outputs = _as_tuple(grad_outputs)
    n_in = len(inputs)
    wrt = [i for i, x in enumerate(inputs) if isinstance(x, _C.Tensor) and x.requires_grad]

    def first_order(*args):
        # Differentiated (and differentiable) even when the caller evaluates it under no_grad.
        with enable_grad():
            inps, gos = args[:n_in], args[n_in:]
            outs = [o for o in _as_tuple(func(*inps)) if isinstance(o, _C.Tensor) and o.requires_grad]
            grads = _C._grad(tuple(outs), tuple(inps[i] for i in wrt), tuple(gos), True, True, True)
            return tuple(g for g in grads if g is not None)

    return gradcheck(first_order, inputs + grad_outputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)
