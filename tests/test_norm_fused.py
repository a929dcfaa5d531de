"""The fused float32 normalisation kernels against the composed float64 path (the same
formulas op by op): batch norm's per-channel kernels in training and evaluation, layer norm's
per-row kernels, with and without affine parameters."""
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


def run_layer_norm(dt, x, g, w, b, k):
    xt = torch.tensor(x, dtype=dt, requires_grad=True)
    wt = None if w is None else torch.tensor(w, dtype=dt, requires_grad=True)
    bt = None if b is None else torch.tensor(b, dtype=dt, requires_grad=True)
    y = F.layer_norm(xt, x.shape[len(x.shape) - k:], wt, bt, eps=1e-5)
    y.backward(torch.tensor(g, dtype=dt))
    out = [y, xt.grad] + [t.grad for t in (wt, bt) if t is not None]
    return [o.detach().numpy().astype(np.float64) for o in out]


# Rows of 40 and 37 (two and a half blocks of 16 lanes, a tail), 1024, one value per row, many
# rows (split across threads), and two normalized dims.
@pytest.mark.parametrize("shape, k", [((6, 40), 1), ((3, 4, 37), 1), ((2, 3, 5, 7), 2), ((5, 1024), 1),
                                      ((4, 1), 1), ((3000, 64), 1)])
@pytest.mark.parametrize("affine", ["both", "weight", "none"])
def test_layer_norm_float32_kernels_match_float64(shape, k, affine):
    rng = np.random.default_rng(6)
    x = rng.standard_normal(shape) * 3 + 2
    g = rng.standard_normal(shape)
    d = shape[len(shape) - k:]
    w = rng.standard_normal(d) if affine != "none" else None
    b = rng.standard_normal(d) if affine == "both" else None
    got = run_layer_norm(torch.float32, x, g, w, b, k)
    want = run_layer_norm(torch.float64, x, g, w, b, k)
    for a, e in zip(got, want):
        np.testing.assert_allclose(a, e, rtol=2e-4, atol=2e-4 * max(1, np.abs(e).max() / 100))


def test_layer_norm_strided_and_expanded_gradient():
    # A transposed input takes the composed path; the kernels' result must be the same.
    x = torch.randn(16, 24, dtype=torch.float32)
    a = F.layer_norm(x.t(), (16,))
    b = F.layer_norm(x.t().contiguous(), (16,))
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5)
    xr = torch.randn(8, 33, requires_grad=True)
    F.layer_norm(xr, (33,)).sum().backward()  # g is an expanded 1
    np.testing.assert_allclose(xr.grad.numpy(), 0.0, atol=1e-5)  # each row's normalised sum is constant
