"""Loss functions (``rustgrad.nn.functional``): regression losses, binary and multi-class cross
entropy, NLL and KL divergence, composed from differentiable tensor ops; mse_loss and the
class-index NLL are single engine ops reached through ``rustgrad._C``."""
from __future__ import annotations

import warnings

from ... import _C
from ...autograd.function import Function

__all__ = ["l1_loss", "smooth_l1_loss", "huber_loss", "mse_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "kl_div", "nll_loss", "cross_entropy"]

# PyTorch's C++ scalar-type names, which its error messages use.
_SCALAR_NAMES = {"float32": "Float", "float64": "Double", "float16": "Half", "bfloat16": "BFloat16",
                 "int64": "Long", "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte",
                 "bool": "Bool"}


def _scalar_name(dtype):
    name = str(dtype).rsplit(".", 1)[-1]
    return _SCALAR_NAMES.get(name, name)


# ---- reductions -------------------------------------------------------------------------------

def _reduction(size_average, reduce, reduction):
    # The deprecated size_average/reduce pair, as PyTorch still accepts it.
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    ret = ("mean" if size_average else "sum") if reduce else "none"
    warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{ret}' instead.",
                  stacklevel=3)
    return ret


def _check_reduction(reduction):
    # PyTorch's _Reduction.get_enum: validated before any work, 'elementwise_mean' is an old alias.
    if reduction == "elementwise_mean":
        warnings.warn("reduction='elementwise_mean' is deprecated. Please use reduction='mean' instead.",
                      stacklevel=3)
        return "mean"
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _reduce(loss, reduction):
    if reduction == "none":
        return loss
    return loss.mean() if reduction == "mean" else loss.sum()


def _weighted(loss, input, weight, reduction, mean_by_weight):
    # The Python-side weighted path of l1/mse/huber, with its own error messages.
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError("Weights and input must have the same size.")
    loss = loss * weight
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.sum() / weight.sum() if mean_by_weight else loss.mean()
    raise ValueError(f"Invalid reduction mode: {reduction}. Expected one of 'none', 'mean', 'sum'.")


def _require_floating(dtype, kernel):
    if not dtype.is_floating_point:
        raise NotImplementedError(f'"{kernel}" not implemented for \'{_scalar_name(dtype)}\'')


def _no_grad_for(t, fn, arg):
    # Weights are constants for PyTorch's loss kernels: a weight that wants a gradient is an error.
    if t is not None and t.requires_grad and _C.is_grad_enabled():
        raise RuntimeError(f"The function '{fn}' is not differentiable with respect to argument '{arg}'. "
                           "This input cannot have requires_grad True.")


# ---- regression losses ------------------------------------------------------------------------

def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    reduction = _reduction(size_average, reduce, reduction)
    loss = (input - target).abs()
    if weight is not None:
        return _weighted(loss, input, weight, reduction, mean_by_weight=True)
    return _reduce(loss, _check_reduction(reduction))


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    reduction = _reduction(size_average, reduce, reduction)
    if weight is not None:
        return _weighted((input - target).pow(2), input, weight, reduction, mean_by_weight=True)
    reduction = _check_reduction(reduction)
    _require_floating(_C.result_type(input, target), "mse_cpu")
    return _C._mse_loss(input, target, reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    reduction = _check_reduction(_reduction(size_average, reduce, reduction))
    if beta == 0.0:  # pure L1, as PyTorch dispatches it: the quadratic branch would divide by 0
        return l1_loss(input, target, reduction=reduction)
    diff = input - target
    _require_floating(diff.dtype, "smooth_l1_cpu")
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    z = diff.abs()
    return _reduce(_C.where(z < beta, 0.5 * diff * diff / beta, z - 0.5 * beta), reduction)


def _huber(input, target, delta):
    diff = input - target
    _require_floating(diff.dtype, "huber_cpu")
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    z = diff.abs()
    return _C.where(z < delta, 0.5 * diff * diff, delta * (z - 0.5 * delta))


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    if weight is not None:
        if tuple(weight.shape) != tuple(input.shape):  # checked before delta, as PyTorch orders it
            raise ValueError("Weights and input must have the same size.")
        return _weighted(_huber(input, target, delta), input, weight, reduction, mean_by_weight=False)
    reduction = _check_reduction(reduction)
    return _reduce(_huber(input, target, delta), reduction)


# ---- binary cross entropy ---------------------------------------------------------------------

def _elementwise_grad(grad, reduction, input, weight):
    # The binary cross entropies' backward: the gradient reaching each element's (weighted) loss.
    if reduction == "mean":
        grad = grad / input.numel()
    if weight is not None:
        grad = grad * weight
    return grad


class BinaryCrossEntropy(Function):
    """-w (y log x + (1 - y) log(1 - x)) with both logs clamped at -100; the backward is PyTorch's
    closed form, which stays finite where x saturates at 0 or 1 (the composed chain gives NaN)."""

    _backward_name = "BinaryCrossEntropyBackward0"

    @staticmethod
    def forward(ctx, input, target, weight, reduction):
        loss = (target - 1) * (-input).log1p().clamp(min=-100) - target * input.log().clamp(min=-100)
        if weight is not None:
            loss = loss * weight
        ctx.save_for_backward(input, target, weight)
        ctx.reduction = reduction
        return _reduce(loss, reduction)

    @staticmethod
    def backward(ctx, grad):
        input, target, weight = ctx.saved_tensors
        grad = _elementwise_grad(grad, ctx.reduction, input, weight)
        grad_input = grad_target = None
        if ctx.needs_input_grad[0]:
            grad_input = grad * (input - target) / ((1 - input) * input).clamp(min=1e-12)
        if ctx.needs_input_grad[1]:
            grad_target = -grad * (input / (1 - input)).log()
        return grad_input, grad_target, None, None


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    reduction = _check_reduction(_reduction(size_average, reduce, reduction))
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({target.shape}) that is different to the input size "
                         f"({input.shape}) is deprecated. Please ensure they have the same size.")
    if target.dtype != input.dtype:
        raise RuntimeError(f"Found dtype {_scalar_name(target.dtype)} but expected {_scalar_name(input.dtype)}")
    _require_floating(input.dtype, "binary_cross_entropy")
    _no_grad_for(weight, "binary_cross_entropy", "weight")
    if weight is not None:
        weight = weight.to(input.dtype).expand(input.shape)
    # Comparisons are false for NaN, so NaN inputs are rejected as PyTorch rejects them.
    if not ((input >= 0) & (input <= 1)).all().item():
        raise RuntimeError("all elements of input should be between 0 and 1")
    if not ((target >= 0) & (target <= 1)).all().item():
        raise RuntimeError("all elements of target should be between 0 and 1")
    return BinaryCrossEntropy.apply(input, target, weight, reduction)


def _log_sigmoid(x):
    # min(x, 0) - log1p(exp(-|x|)): never exponentiates a positive number.
    return x.clamp(max=0) - (-x.abs()).exp().log1p()


class BinaryCrossEntropyWithLogits(Function):
    """(1 - y) x - (1 + (p - 1) y) log sigmoid(x), times w, in the target's dtype as PyTorch
    computes it; the backward is PyTorch's closed form (sigmoid(x) - y without pos_weight)."""

    _backward_name = "BinaryCrossEntropyWithLogitsBackward0"

    @staticmethod
    def forward(ctx, input, target, weight, pos_weight, reduction):
        log_sig = _log_sigmoid(input)
        if pos_weight is not None:
            log_sig = log_sig * ((pos_weight - 1) * target + 1)
        loss = (1 - target) * input - log_sig
        if weight is not None:
            loss = loss * weight
        if tuple(loss.shape) != tuple(input.shape):
            raise RuntimeError(f"output with shape {list(input.shape)} doesn't match the broadcast shape "
                               f"{list(loss.shape)}")
        ctx.save_for_backward(input, target, weight, pos_weight)
        ctx.reduction = reduction
        return _reduce(loss.to(target.dtype), reduction)

    @staticmethod
    def backward(ctx, grad):
        input, target, weight, pos_weight = ctx.saved_tensors
        grad = _elementwise_grad(grad, ctx.reduction, input, weight)
        grad_input = grad_target = None
        if ctx.needs_input_grad[0]:
            if pos_weight is None:
                grad_input = grad * (input.sigmoid() - target)
            else:
                pt = pos_weight * target
                grad_input = grad * ((pt + 1 - target) * input.sigmoid() - pt)
        if ctx.needs_input_grad[1]:
            if pos_weight is None:
                grad_target = -grad * input
            else:
                grad_target = grad * (_log_sigmoid(-input) - _log_sigmoid(input) * pos_weight)
        return grad_input, grad_target, None, None, None


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    reduction = _check_reduction(_reduction(size_average, reduce, reduction))
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({target.shape}) must be the same as input size ({input.shape})")
    _require_floating(input.dtype, "log_sigmoid_cpu")
    if not target.is_floating_point():
        raise RuntimeError(f"result type Float can't be cast to the desired output type "
                           f"{_scalar_name(target.dtype)}")
    _no_grad_for(weight, "binary_cross_entropy_with_logits", "weight")
    _no_grad_for(pos_weight, "binary_cross_entropy_with_logits", "pos_weight")
    return BinaryCrossEntropyWithLogits.apply(input, target, weight, pos_weight, reduction)


# ---- KL divergence ----------------------------------------------------------------------------

def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    if size_average is not None or reduce is not None:
        reduction = _reduction(size_average, reduce, reduction)
    elif reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the support size."
                      "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                      "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
                      stacklevel=2)
    if reduction != "batchmean":
        reduction = _check_reduction(reduction)
    if not (input.is_floating_point() and target.is_floating_point()):
        raise RuntimeError("kl_div: Integral inputs not supported.")
    if log_target:
        loss = target.exp() * (target - input)
    else:
        # xlogy(t, t): a zero target contributes 0, not 0 * log 0.
        loss = _C.where(target == 0, 0.0, target * target.log()) - target * input
    if reduction != "batchmean":
        return _reduce(loss, reduction)
    loss = loss.sum()
    return loss / input.shape[0] if input.dim() != 0 else loss


# ---- negative log likelihood and cross entropy ------------------------------------------------

def _check_nll_weight(input, weight, fn):
    if weight is None:
        return
    if weight.dtype != input.dtype:
        raise RuntimeError(f"expected scalar type {_scalar_name(input.dtype)} but found "
                           f"{_scalar_name(weight.dtype)}")
    _no_grad_for(weight, fn, "weight")


def _nll_loss_nd(input, target, weight, ignore_index, reduction):
    # (N, C, d1, ...): classes moved last and flattened onto the engine's (M, C) kernel.
    n, c, spatial = input.shape[0], input.shape[1], tuple(input.shape[2:])
    if input.dim() == 4 and target.dim() != 3:
        raise RuntimeError("only batches of spatial targets supported (3D tensors) but got targets of "
                           f"dimension: {target.dim()}")
    if tuple(target.shape[1:]) != spatial:
        if input.dim() == 4:
            raise RuntimeError(f"size mismatch (got input: {list(input.shape)} , target: {list(target.shape)}")
        raise RuntimeError(f"Expected target size {[n, *spatial]}, got {list(target.shape)}")
    _require_floating(input.dtype, "nll_loss2d_forward_out_frame")
    if target.dtype == _C.uint8:  # PyTorch's spatial kernel takes Long targets only
        raise RuntimeError("expected scalar type Long but found Byte")
    if weight is not None:
        if weight.numel() != c:
            raise RuntimeError("weight tensor should be defined either for all or no classes")
        weight = weight.reshape(c)
    rows = target.numel()
    out = _C._nll_loss(input.movedim(1, -1).reshape(rows, c), target.reshape(rows), weight, ignore_index,
                       reduction)
    return out.reshape(target.shape) if reduction == "none" else out


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    reduction = _check_reduction(_reduction(size_average, reduce, reduction))
    return _nll(input, target, weight, ignore_index, reduction, logits=False)


def _nll(input, target, weight, ignore_index, reduction, logits):
    # With `logits`, the NLL of input.log_softmax(class dim) as one op (cross_entropy): the
    # checks see the input, which has the log-probabilities' shape and dtype.
    if input.dim() < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {input.dim()})")
    target_batch = target.size(0) if target.dim() > 0 else 0
    if input.dim() != 1 and input.size(0) != target_batch:
        raise ValueError(f"Expected input batch_size ({input.size(0)}) to match target batch_size "
                         f"({target_batch}).")
    _check_nll_weight(input, weight, "nll_loss_forward" if input.dim() <= 2 else "nll_loss2d_forward")
    if input.dim() > 2:
        if logits:
            input = input.log_softmax(1)
        return _nll_loss_nd(input, target, weight, ignore_index, reduction)
    _require_floating(input.dtype, "nll_loss_out_frame")
    if input.dim() == 1 and target.dim() == 1:
        # One sample given as a 1-element batch of targets: PyTorch returns a 0-dim loss.
        if target.numel() != 1:
            raise ValueError(f"For 1D input, 1D target must have size 1, but got target size: {target.numel()}")
        target = target.reshape(())
    return _C._nll_loss(input, target, weight, ignore_index, reduction, logits)


def _class_weight(weight, input, class_dim):
    # A (C,) weight shaped to broadcast along the class dim of `input`.
    shape = [1] * input.dim()
    shape[class_dim] = weight.numel()
    return weight.reshape(shape)


def _cross_entropy_probs(logp, target, weight, reduction, label_smoothing, class_dim):
    n_classes = logp.shape[class_dim]
    if weight is not None and (weight.dim() != 1 or weight.numel() != n_classes):
        raise RuntimeError(f"cross_entropy: weight tensor should be defined either for all {n_classes} classes "
                           f"or no classes but got weight tensor of shape: {list(weight.shape)}")
    if label_smoothing > 0.0:
        if label_smoothing > 1.0:
            raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
        target = target * (1 - label_smoothing) + label_smoothing / n_classes
    terms = logp * target
    if weight is not None:
        terms = terms * _class_weight(weight, logp, class_dim)
    if reduction == "none":
        return -terms.sum(class_dim)
    if reduction == "sum":
        return -terms.sum()
    # 'mean' averages over samples (every position but the class dim), not over elements.
    return -terms.sum() / (logp.numel() // n_classes) if logp.numel() else -terms.sum() * float("nan")


def _cross_entropy_smoothed(logp, target, weight, ignore_index, reduction, label_smoothing, class_dim):
    # PyTorch's formula: (1 - eps) * nll + eps / C * (sum over classes of -w_c log p_c), with ignored
    # targets contributing nothing and 'mean' normalised by the weights of the kept targets.
    n_classes = logp.shape[class_dim]
    nll = nll_loss(logp, target, weight, ignore_index=ignore_index, reduction=reduction)
    ignored = target == ignore_index
    if weight is not None:
        smooth = -(logp * _class_weight(weight, logp, class_dim)).sum(class_dim)
    else:
        smooth = -logp.sum(class_dim)
    smooth = smooth.masked_fill(ignored, 0.0)
    if reduction == "sum":
        smooth = smooth.sum()
    elif reduction == "mean":
        if weight is not None:
            kept = weight[target.masked_fill(ignored, 0).long()].masked_fill(ignored, 0.0).sum()
        else:
            kept = (~ignored).sum()
        smooth = smooth.sum() / kept
    return (1 - label_smoothing) * nll + smooth * (label_smoothing / n_classes)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    reduction = _check_reduction(_reduction(size_average, reduce, reduction))
    class_dim = 0 if input.dim() == 1 else 1
    if tuple(input.shape) == tuple(target.shape):
        # Same shapes means class probabilities (PyTorch's rule, whatever the target's dtype).
        if not target.is_floating_point():
            raise RuntimeError("Expected floating point type for target with class probabilities, got "
                               f"{_scalar_name(target.dtype)}")
        if ignore_index >= 0:
            raise RuntimeError("ignore_index is not supported for floating point target")
        logp = input.log_softmax(class_dim)
        return _cross_entropy_probs(logp, target, weight, reduction, label_smoothing, class_dim)
    if label_smoothing > 0.0:
        if label_smoothing > 1.0:
            raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
        logp = input.log_softmax(class_dim)
        return _cross_entropy_smoothed(logp, target, weight, ignore_index, reduction, label_smoothing, class_dim)
    if input.dim() == 0 or not input.is_floating_point():
        input.log_softmax(class_dim)  # raises PyTorch's error for the shape or dtype
    return _nll(input, target, weight, ignore_index, reduction, logits=True)
