# nn.utils: clip_grad_norm_ (every norm type, the returned total norm, non-finite handling),
# clip_grad_value_ and parameters <-> vector, against NumPy and against PyTorch.

import numpy as np
import pytest
import rustgrad as rg
from _helpers import assert_same, requires_torch, to_numpy, torch_or_none

utils = rg.nn.utils
RNG = np.random.default_rng(5)
GRADS = [RNG.standard_normal((3, 4)), RNG.standard_normal(5), RNG.standard_normal((2, 2, 2))]


def make_params(grads, dtype=rg.float64, module=rg):
    params = []
    for g in grads:
        p = module.zeros(tuple(g.shape), dtype=dtype, requires_grad=True)
        p.grad = module.tensor(np.array(g, copy=True), dtype=dtype)
        params.append(p)
    return params


def vector_norm_np(v, p):
    v = np.abs(np.asarray(v, np.float64).reshape(-1))
    if p == float("inf"):
        return v.max()
    if p == float("-inf"):
        return v.min()
    if p == 0:
        return float((v != 0).sum())
    return (v ** p).sum() ** (1 / p)


def total_norm_np(grads, p):
    # PyTorch's definition: the norm of the per-tensor norms (for p != 0 this is the norm of all
    # entries together; for p = 0 it counts the tensors with a nonzero entry).
    return vector_norm_np([vector_norm_np(g, p) for g in grads], p)


@pytest.mark.parametrize("norm_type", [2.0, 1, 3.5, float("inf"), float("-inf"), 0.0, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm(norm_type, max_norm):
    params = make_params(GRADS)
    total = utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
    want = total_norm_np(GRADS, float(norm_type))
    assert_same(total, np.array(want), rtol=1e-12, atol=1e-12)
    coef = min(max_norm / (want + 1e-6), 1.0)
    for p, g in zip(params, GRADS):
        assert_same(p.grad, g * coef, rtol=1e-12, atol=1e-12)


def test_clip_grad_norm_accepts_tensor_generator_and_skips_missing_grads():
    (p,) = make_params(GRADS[:1])
    total = utils.clip_grad_norm_(p, 1.0)
    assert_same(total, np.array(np.linalg.norm(GRADS[0])), rtol=1e-12)
    no_grad = rg.zeros(3, requires_grad=True)
    params = make_params(GRADS) + [no_grad]
    total = utils.clip_grad_norm_((q for q in params), 1.0)
    assert_same(total, np.array(total_norm_np(GRADS, 2.0)), rtol=1e-12)
    assert no_grad.grad is None
    assert_same(utils.clip_grad_norm_([], 1.0), np.array(0.0, np.float32))


def test_clip_grad_norm_empty_generator_warns():
    with pytest.warns(UserWarning, match="`parameters` is an empty generator, no gradient clipping will occur."):
        utils.clip_grad_norm_((p for p in []), 1.0)


def test_clip_grad_norm_non_finite():
    grads = [np.array([1.0, np.inf]), np.array([2.0])]
    with pytest.raises(RuntimeError, match="The total norm of order 2.0 for gradients from `parameters` is non-finite"):
        utils.clip_grad_norm_(make_params(grads), 1.0, error_if_nonfinite=True)
    params = make_params(grads)
    total = utils.clip_grad_norm_(params, 1.0)
    assert np.isinf(total.item())
    # max_norm / inf = 0: the finite entries are zeroed, inf * 0 is NaN, as in PyTorch.
    np.testing.assert_array_equal(to_numpy(params[1].grad), [0.0])


def test_clip_grad_norm_is_not_recorded():
    params = make_params(GRADS)
    total = utils.clip_grad_norm_(params, 0.1)
    assert not total.requires_grad and all(p.grad.grad_fn is None for p in params)


def test_module_paths():
    from rustgrad.nn.utils import clip_grad, convert_parameters  # noqa: F401
    assert utils.clip_grad.clip_grad_norm_ is utils.clip_grad_norm_
    assert utils.convert_parameters.parameters_to_vector is utils.parameters_to_vector
    with pytest.warns(FutureWarning):
        utils.clip_grad_norm(make_params(GRADS), 1.0)
    total = utils.get_total_norm([p.grad for p in make_params(GRADS)], 1.0)
    assert_same(total, np.array(total_norm_np(GRADS, 1.0)), rtol=1e-12)


@pytest.mark.parametrize("clip", [0.3, 1, 10.0])
def test_clip_grad_value(clip):
    params = make_params(GRADS)
    assert utils.clip_grad_value_(params, clip) is None
    for p, g in zip(params, GRADS):
        assert_same(p.grad, np.clip(g, -clip, clip))
    (p,) = make_params(GRADS[:1])
    utils.clip_grad_value_(p, clip)
    assert_same(p.grad, np.clip(GRADS[0], -clip, clip))


def test_parameters_to_vector_and_back():
    values = [RNG.standard_normal((2, 3)), RNG.standard_normal(4)]
    params = [rg.tensor(v, requires_grad=True) for v in values]
    vec = utils.parameters_to_vector(params)
    assert_same(vec, np.concatenate([v.reshape(-1) for v in values]))
    vec.sum().backward()
    assert_same(params[0].grad, np.ones((2, 3)))
    new = RNG.standard_normal(10)
    utils.vector_to_parameters(rg.tensor(new), params)
    assert_same(params[0], new[:6].reshape(2, 3))
    assert_same(params[1], new[6:])
    assert params[0].requires_grad and params[0].is_leaf
    with pytest.raises(TypeError, match="expected torch.Tensor, but got: list"):
        utils.vector_to_parameters([1.0, 2.0], params)


@requires_torch
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 0.5, 0.0, float("inf"), float("-inf")])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_clip_grad_norm_matches_torch(norm_type, dtype):
    torch = torch_or_none()
    ours = make_params(GRADS, getattr(rg, dtype))
    theirs = make_params(GRADS, getattr(torch, dtype), module=torch)
    got = utils.clip_grad_norm_(ours, 0.7, norm_type)
    want = torch.nn.utils.clip_grad_norm_(theirs, 0.7, norm_type)
    assert_same(got, want, rtol=1e-5)
    for o, t in zip(ours, theirs):
        assert_same(o.grad, t.grad, rtol=1e-5, atol=1e-7)
    utils.clip_grad_value_(ours, 0.05)
    torch.nn.utils.clip_grad_value_(theirs, 0.05)
    for o, t in zip(ours, theirs):
        assert_same(o.grad, t.grad, rtol=1e-5, atol=1e-7)
    assert_same(utils.parameters_to_vector(ours), torch.nn.utils.parameters_to_vector(theirs))


@pytest.mark.parametrize("foreach", [None, False, True])
def test_foreach_flag_gives_the_same_result(foreach):
    params = make_params(GRADS)
    total = utils.clip_grad_norm_(params, 0.5, foreach=foreach)
    assert_same(total, np.array(total_norm_np(GRADS, 2.0)), rtol=1e-12)
    utils.clip_grad_value_(params, 0.01, foreach=foreach)
    assert all(np.abs(to_numpy(p.grad)).max() <= 0.01 for p in params)
