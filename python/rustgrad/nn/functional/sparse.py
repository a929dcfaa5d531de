# Index-to-vector ops (``rustgrad.nn.functional``): `embedding` (row lookup whose weight
# gradient skips padding_idx and can be scaled by index frequency) and `one_hot`.
from __future__ import annotations

import numpy as np

from ... import _C
from ...autograd.function import Function
from ...autograd.grad_mode import no_grad

__all__ = ["embedding", "one_hot"]


class Embedding(Function):
    """One recorded node (grad_fn ``EmbeddingBackward``), as PyTorch's embedding_backward: the
    weight gradient is a scatter-add of the output gradient rows, with the padding row left at
    zero and, optionally, each row divided by how often its index occurs."""

    @staticmethod
    def forward(ctx, indices, weight, padding_idx, scale_grad_by_freq):
        flat = indices.reshape(-1)
        ctx.save_for_backward(flat)
        ctx.num_weights = weight.shape[0]
        ctx.padding_idx = padding_idx
        ctx.scale_grad_by_freq = scale_grad_by_freq
        return weight.index_select(0, flat).view(*indices.shape, weight.shape[1])

    @staticmethod
    def backward(ctx, grad_output):
        (flat,) = ctx.saved_tensors
        dim = grad_output.shape[-1]
        grad = grad_output.reshape(-1, dim)
        if ctx.scale_grad_by_freq:
            counts = _C.zeros(ctx.num_weights, dtype=grad.dtype).scatter_add(
                0, flat, _C.ones(flat.shape, dtype=grad.dtype))
            grad = grad / counts.index_select(0, flat).unsqueeze(1)
        if ctx.padding_idx >= 0:
            grad = grad.masked_fill((flat == ctx.padding_idx).unsqueeze(1), 0.0)
        grad_weight = _C.zeros((ctx.num_weights, dim), dtype=grad.dtype).scatter_add(
            0, flat.unsqueeze(1).expand(flat.shape[0], dim), grad)
        return None, grad_weight, None, None


def _renorm_rows_(weight, indices, max_norm, norm_type):
    # embedding_renorm_: each referenced row whose norm exceeds max_norm is scaled down to it.
    with no_grad():
        rows_idx = _C.tensor(np.unique(indices.numpy()), dtype=_C.int64)
        rows = weight.index_select(0, rows_idx)
        norms = rows.norm(norm_type, dim=1, keepdim=True)
        scale = _C.where(norms > max_norm, max_norm / (norms + 1e-7), _C.ones((), dtype=norms.dtype))
        weight[rows_idx] = rows * scale


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    # `sparse=True` asks for a sparse weight gradient; rustgrad has no sparse layout, so the
    # gradient is returned dense (same values).
    if padding_idx is not None:
        if padding_idx > 0:
            if padding_idx >= weight.size(0):
                raise AssertionError("Padding_idx must be within num_embeddings")
        elif padding_idx < 0:
            if padding_idx < -weight.size(0):
                raise AssertionError("Padding_idx must be within num_embeddings")
            padding_idx = weight.size(0) + padding_idx
    else:
        padding_idx = -1
    if weight.dim() != 2:
        raise RuntimeError("'weight' must be 2-D")
    if input.dtype not in (_C.int64, _C.int32):
        kind = {"float32": "Float", "float64": "Double", "uint8": "Byte", "bool": "Bool"}
        name = kind.get(str(input.dtype).split(".")[-1], str(input.dtype))
        raise RuntimeError("Expected tensor for argument #1 'indices' to have one of the following scalar "
                           f"types: Long, Int; but got torch.{name}Tensor instead (while checking arguments "
                           "for embedding)")
    if input.numel() and (int(input.min().item()) < 0 or int(input.max().item()) >= weight.size(0)):
        raise IndexError("index out of range in self")
    if max_norm is not None:
        _renorm_rows_(weight, input.contiguous(), max_norm, norm_type)
    return Embedding.apply(input, weight, padding_idx, bool(scale_grad_by_freq))


def one_hot(tensor, num_classes=-1):
    if tensor.dtype != _C.int64:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    if tensor.numel() == 0:
        if num_classes <= 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        return _C.empty(tuple(tensor.shape) + (num_classes,), dtype=_C.int64)
    if int(tensor.min().item()) < 0:
        raise RuntimeError("Class values must be non-negative.")
    top = int(tensor.max().item())
    if num_classes == -1:
        num_classes = top + 1
    elif num_classes <= top:
        raise RuntimeError("Class values must be smaller than num_classes.")
    return (tensor.unsqueeze(-1) == _C.arange(num_classes)).to(_C.int64)
