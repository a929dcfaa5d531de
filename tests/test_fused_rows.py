"""Row kernels for dense float32 tensors along the last dim (fused softmax/log_softmax
backward, max/min with indices) checked against float64 runs of the general path and NumPy."""
import numpy as np
import pytest

import rustgrad as torch

F = torch.nn.functional


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("shape", [(3, 5), (4, 16), (2, 3, 37), (1, 1000)])
def test_softmax_backward_float32_matches_float64(shape, log):
    rng = np.random.default_rng(1)
    x, gout = rng.standard_normal(shape), rng.standard_normal(shape)
    grads = []
    for dt in (torch.float32, torch.float64):
        t = torch.tensor(x, dtype=dt, requires_grad=True)
        y = (F.log_softmax if log else F.softmax)(t, dim=-1)
        y.backward(torch.tensor(gout, dtype=dt))
        grads.append(t.grad.numpy().astype(np.float64))
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-4, atol=1e-5)


def test_softmax_backward_not_last_dim_and_double_backward():
    rng = np.random.default_rng(2)
    x = torch.tensor(rng.standard_normal((3, 4, 5)).astype(np.float32), requires_grad=True)
    y = F.log_softmax(x, dim=1)  # not the last dim: the composed path
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    g.pow(2).sum().backward()  # recorded backward: the composed path again
    assert x.grad is not None and np.isfinite(x.grad.numpy()).all()


def test_cross_entropy_gradient_float32():
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((6, 10)).astype(np.float32)
    target = rng.integers(0, 10, 6)
    t = torch.tensor(logits, requires_grad=True)
    F.cross_entropy(t, torch.tensor(target)).backward()
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(6), target] -= 1
    np.testing.assert_allclose(t.grad.numpy(), p / 6, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape, weighted, ignore", [((37, 1003), False, False), ((37, 1003), True, True),
                                                     ((5, 16), True, False), ((1003,), False, False),
                                                     ((4, 3), False, True), ((0, 7), False, False)])
def test_cross_entropy_backward_is_nll_over_log_softmax_bit_for_bit(shape, weighted, ignore, reduction):
    # cross_entropy's one-node backward (one write pass per row) against the two-node chain
    # it replaces, in float32: the same arithmetic, so the same bits.
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape).astype(np.float32) * 3
    c = shape[-1]
    target = rng.integers(0, c, shape[0] if len(shape) == 2 else ())
    if ignore:
        target[::3] = -100
    weight = torch.tensor(rng.uniform(0.5, 2.0, c).astype(np.float32)) if weighted else None
    gout = rng.standard_normal(target.shape if reduction == "none" else ()).astype(np.float32)
    grads, losses = [], []
    for fused in (True, False):
        t = torch.tensor(x, requires_grad=True)
        dim = 0 if t.dim() == 1 else 1
        loss = (F.cross_entropy(t, torch.tensor(target), weight=weight, reduction=reduction) if fused else
                F.nll_loss(F.log_softmax(t, dim), torch.tensor(target), weight=weight, reduction=reduction))
        loss.backward(torch.tensor(gout))
        grads.append(t.grad.numpy())
        losses.append(loss.detach().numpy())
    assert grads[0].tobytes() == grads[1].tobytes()
    assert losses[0].tobytes() == losses[1].tobytes()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_double_backward(reduction, weighted):
    rng = np.random.default_rng(5)
    x = torch.tensor(rng.standard_normal((4, 6)), requires_grad=True)
    target = torch.tensor([1, 5, -100, 0])
    weight = torch.tensor(rng.uniform(0.5, 2.0, 6)) if weighted else None
    fn = lambda a: F.cross_entropy(a, target, weight=None if weight is None else weight.to(a.dtype),  # noqa: E731
                                   reduction=reduction)
    assert torch.autograd.gradgradcheck(fn, (x,))
    # float32 under create_graph takes the differentiable path: its second derivative matches float64's.
    hv = []
    for dt in (torch.float32, torch.float64):
        a = torch.tensor(x.detach().numpy(), dtype=dt, requires_grad=True)
        (g,) = torch.autograd.grad(fn(a).sum(), a, create_graph=True)
        (h,) = torch.autograd.grad((g * g).sum(), a)
        hv.append(h.numpy().astype(np.float64))
    np.testing.assert_allclose(hv[0], hv[1], rtol=1e-4, atol=1e-6)


def test_cross_entropy_saved_tensors_are_freed_after_backward():
    x = torch.randn(3, 4, requires_grad=True)
    loss = F.cross_entropy(x, torch.tensor([0, 1, 2]))
    loss.backward()
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()


@pytest.mark.parametrize("shape", [(5, 1), (3, 7), (4, 16), (6, 33), (2, 3, 100)])
def test_max_min_with_indices_float32(shape):
    rng = np.random.default_rng(4)
    cases = [rng.standard_normal(shape).astype(np.float32), np.round(rng.standard_normal(shape)).astype(np.float32)]
    nan = rng.standard_normal(shape).astype(np.float32)
    nan[..., -1] = np.nan
    cases.append(nan)
    for a in cases:
        t = torch.tensor(a)
        for name, arg in (("max", np.argmax), ("min", np.argmin)):
            v, i = getattr(t, name)(dim=-1)
            want_i = np.where(np.isnan(a).any(-1), np.isnan(a).argmax(-1), arg(np.nan_to_num(a, nan=0), -1))
            np.testing.assert_array_equal(i.numpy(), want_i)  # first extreme, or first NaN
            np.testing.assert_array_equal(v.numpy(), np.take_along_axis(a, want_i[..., None], -1)[..., 0])


def test_max_with_indices_keeps_the_first_signed_zero():
    v, i = torch.tensor([[-0.0, 0.0, -0.0]]).max(dim=1)
    assert i.item() == 0 and np.signbit(v.numpy()[0])
