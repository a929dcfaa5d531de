"""The per-channel float32 batch-norm kernels against the composed float64 path (the same
formulas op by op), in training and evaluation, with and without affine parameters."""
import numpy as np
import pytest

import rustgrad as torch

F = torch.nn.functional


def run(dt, x, g, w, b, rm, rv, training):
    xt = torch.tensor(x, dtype=dt, requires_grad=True)
    wt = None if w is None else torch.tensor(w, dtype=dt, requires_grad=True)
    bt = None if b is None else torch.tensor(b, dtype=dt, requires_grad=True)
    rmt, rvt = torch.tensor(rm, dtype=dt), torch.tensor(rv, dtype=dt)
    y = F.batch_norm(xt, rmt, rvt, wt, bt, training=training, momentum=0.1, eps=1e-5)
    y.backward(torch.tensor(g, dtype=dt))
    out = [y, xt.grad, rmt, rvt] + ([wt.grad] if wt is not None else []) + ([bt.grad] if bt is not None else [])
    return [o.detach().numpy().astype(np.float64) for o in out]


@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (8, 5), (3, 2, 17), (2, 4, 3, 3, 2)])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_float32_kernels_match_float64(shape, training, affine):
    rng = np.random.default_rng(5)
    c = shape[1]
    x = rng.standard_normal(shape) * 3 + 2
    g = rng.standard_normal(shape)
    w, b = (rng.standard_normal(c), rng.standard_normal(c)) if affine else (None, None)
    rm, rv = rng.standard_normal(c), rng.random(c) + 0.5
    got = run(torch.float32, x, g, w, b, rm, rv, training)
    want = run(torch.float64, x, g, w, b, rm, rv, training)
    for a, e in zip(got, want):
        np.testing.assert_allclose(a, e, rtol=2e-4, atol=2e-4)


def test_expanded_output_gradient():
    x = torch.randn(4, 3, 2, 2, requires_grad=True)
    F.batch_norm(x, None, None, training=True).sum().backward()  # g is an expanded 1
    np.testing.assert_allclose(x.grad.numpy(), 0.0, atol=1e-5)  # a sum of normalised values is constant


def test_double_backward_uses_the_composed_path():
    x = torch.randn(4, 3, 2, 2, dtype=torch.float32, requires_grad=True)
    w = torch.randn(3, requires_grad=True)
    y = F.batch_norm(x, None, None, w, None, training=True)
    (gx,) = torch.autograd.grad((y * y).sum(), x, create_graph=True)
    gx.sum().backward()
    assert w.grad is not None and np.isfinite(w.grad.numpy()).all()
