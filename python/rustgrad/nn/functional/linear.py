# Affine maps (``rustgrad.nn.functional``): `linear` (y = x W^T + b) and `bilinear`
# (y = x1^T A x2 + b), composed from addmm/matmul so autograd records the engine's nodes.
from __future__ import annotations

__all__ = ["linear", "bilinear"]


def linear(input, weight, bias=None):
    if bias is None:
        return input.matmul(weight.t())
    if input.dim() == 2 and weight.dim() == 2:
        return bias.addmm(input, weight.t())
    if input.dim() >= 1 and weight.dim() == 2:
        # As PyTorch: fold the other dims into rows so the product and bias are one addmm.
        rows = input.reshape(-1, input.shape[-1])
        return bias.addmm(rows, weight.t()).view(*input.shape[:-1], weight.shape[0])
    return input.matmul(weight.t()) + bias


def bilinear(input1, input2, weight, bias=None):
    if input1.dim() != input2.dim():
        raise RuntimeError(f"bilinear(): input dimensions do not match: got {input1.dim()} and {input2.dim()}")
    for i in range(input1.dim() - 1):
        if input1.shape[i] != input2.shape[i]:
            raise RuntimeError(f"bilinear(): input batch dimensions do not match at dim {i}: "
                               f"got {input1.shape[i]} and {input2.shape[i]}")
    if weight.dim() != 3:
        raise RuntimeError(f"bilinear(): weight must be 3-D, but got {weight.dim()}-D")
    out_features, in1, in2 = weight.shape
    if input1.shape[-1] != in1:
        raise RuntimeError(f"bilinear(): input1 size does not match weight size: got {input1.shape[-1]} "
                           f"but expected {in1}")
    if input2.shape[-1] != in2:
        raise RuntimeError(f"bilinear(): input2 size does not match weight size: got {input2.shape[-1]} "
                           f"but expected {in2}")
    if bias is not None and bias.shape[0] != out_features:
        raise RuntimeError(f"bilinear(): bias size does not match weight size: got {bias.shape[0]} "
                           f"but expected {out_features}")
    batch = tuple(input1.shape[:-1])
    x1 = input1.reshape(-1, in1)
    x2 = input2.reshape(-1, in2)
    # x1 A_o for every o in one matmul: (N, in1) @ (in1, out*in2), then contract with x2.
    left = x1.matmul(weight.permute(1, 0, 2).reshape(in1, out_features * in2))
    out = (left.view(-1, out_features, in2) * x2.unsqueeze(1)).sum(-1)
    if bias is not None:
        out = out + bias
    return out.view(*batch, out_features)
