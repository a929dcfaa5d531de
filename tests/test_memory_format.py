# Memory formats: the `*_like` factories keep a dense input's strides (`preserve_format`, as
# PyTorch), and `memory_format=` picks row-major or channels-last in the factories, `clone`,
# `contiguous`, `to` and `is_contiguous`. Strides are asserted as PyTorch gives them (written
# out here) and checked against torch when it is importable.
import pickle

import numpy as np
import pytest
import rustgrad as rg
from _helpers import assert_same, params, requires_torch, torch_or_none

X = np.random.default_rng(3).standard_normal((2, 3, 4, 5))

# (id, view of a 2x3x4x5 tensor, strides PyTorch's preserve_format gives a *_like of it)
VIEWS = [
    ("contiguous", lambda t: t, (60, 20, 5, 1)),
    ("permuted", lambda t: t.permute(0, 2, 3, 1), (60, 5, 1, 20)),
    ("reversed_dims", lambda t: t.permute(3, 2, 1, 0), (1, 5, 20, 60)),
    ("sliced_not_dense", lambda t: t[:, ::2], (40, 20, 5, 1)),
    ("transposed_then_sliced", lambda t: t.transpose(0, 1)[::2], (20, 40, 5, 1)),
]
LIKES = ["zeros_like", "ones_like", "empty_like", "rand_like", "randn_like", "full_like", "randint_like"]


def like(m, name, t, **kw):
    args = {"full_like": (2.5,), "randint_like": (0, 7)}.get(name, ())
    return getattr(m, name)(t, *args, **kw)


@pytest.mark.parametrize("name", LIKES)
@pytest.mark.parametrize("view, strides", params(VIEWS))
def test_like_factories_preserve_strides(name, view, strides):
    t = view(rg.tensor(X))
    out = like(rg, name, t)
    assert tuple(out.shape) == tuple(t.shape) and out.stride() == strides and out.dtype == t.dtype
    want = {"zeros_like": 0.0, "ones_like": 1.0, "full_like": 2.5}.get(name)
    if want is not None:
        assert_same(out, np.full(tuple(t.shape), want))
    if name == "rand_like":
        assert 0 <= out.min().item() and out.max().item() < 1
    if name == "randint_like":
        assert 0 <= out.min().item() and out.max().item() < 7
    assert like(rg, name, t, memory_format=rg.contiguous_format).is_contiguous()


@requires_torch
@pytest.mark.parametrize("name", LIKES)
@pytest.mark.parametrize("view, strides", params(VIEWS))
def test_like_factories_match_torch(name, view, strides):
    torch = torch_or_none()
    mine, theirs = like(rg, name, view(rg.tensor(X))), like(torch, name, view(torch.tensor(X)))
    assert mine.stride() == theirs.stride() == strides
    for fmt in ("contiguous_format", "channels_last"):
        t_view = view(torch.tensor(X))
        if t_view.dim() != 4:
            continue
        want = like(torch, name, t_view, memory_format=getattr(torch, fmt)).stride()
        assert like(rg, name, view(rg.tensor(X)), memory_format=getattr(rg, fmt)).stride() == want


def test_like_dtype_and_requires_grad():
    t = rg.tensor(X).permute(0, 2, 3, 1)
    z = rg.zeros_like(t, dtype=rg.float32, requires_grad=True)
    assert z.dtype == rg.float32 and z.requires_grad and z.is_leaf and z.stride() == (60, 5, 1, 20)
    assert rg.full_like(rg.tensor([1, 2]), 7).dtype == rg.int64


CHANNELS_LAST = (60, 1, 15, 3)


def test_channels_last_in_factories_and_copies():
    x = rg.tensor(X)
    for make in (lambda: rg.empty(2, 3, 4, 5, memory_format=rg.channels_last),
                 lambda: rg.zeros((2, 3, 4, 5), memory_format=rg.channels_last),
                 lambda: rg.ones(2, 3, 4, 5, memory_format=rg.channels_last),
                 lambda: x.contiguous(memory_format=rg.channels_last),
                 lambda: x.clone(memory_format=rg.channels_last),
                 lambda: x.to(memory_format=rg.channels_last),
                 lambda: x.to(rg.float32, memory_format=rg.channels_last)):
        out = make()
        assert out.stride() == CHANNELS_LAST
        assert out.is_contiguous(memory_format=rg.channels_last) and not out.is_contiguous()
    assert rg.ones(2, 3, 4, 5, memory_format=rg.channels_last).sum().item() == 120
    cl = x.contiguous(memory_format=rg.channels_last)
    assert_same(cl, X)
    # Already in the format: the same tensor back.
    assert cl.contiguous(memory_format=rg.channels_last) is cl and cl.to(memory_format=rg.channels_last) is cl
    assert cl.contiguous().stride() == (60, 20, 5, 1) and cl.clone().stride() == CHANNELS_LAST
    assert cl.clone(memory_format=rg.contiguous_format).is_contiguous()
    # Size-1 dims take any stride, as PyTorch checks them.
    assert rg.zeros(2, 1, 4, 5).is_contiguous(memory_format=rg.channels_last)
    assert not x.permute(0, 2, 3, 1).is_contiguous(memory_format=rg.channels_last)
    x5 = rg.zeros(2, 3, 4, 5, 6)
    assert x5.contiguous(memory_format=rg.channels_last_3d).stride() == (360, 1, 90, 18, 3)


def test_channels_last_copy_is_differentiable():
    inputs = [rg.tensor(X, requires_grad=True)]
    assert rg.autograd.gradcheck(lambda t: t.contiguous(memory_format=rg.channels_last) * 2, inputs)
    y = inputs[0].clone(memory_format=rg.channels_last)
    assert type(y.grad_fn).__name__ == "CloneBackward0"


@pytest.mark.parametrize("call, err, message", [
    (lambda: rg.zeros(2, 3).contiguous(memory_format=rg.channels_last), RuntimeError,
     "required rank 4 tensor to use channels_last format"),
    (lambda: rg.zeros(2, 3).clone(memory_format=rg.channels_last_3d), RuntimeError,
     "required rank 5 tensor to use channels_last_3d format"),
    (lambda: rg.zeros_like(rg.zeros(2, 3), memory_format=rg.channels_last), RuntimeError,
     "required rank 4 tensor to use channels_last format"),
    (lambda: rg.empty(2, 3, memory_format=rg.preserve_format), RuntimeError, "unsupported memory format Preserve"),
    (lambda: rg.zeros(2).clone(memory_format=1), TypeError, "argument 'memory_format' must be"),
])
def test_memory_format_errors(call, err, message):
    with pytest.raises(err, match=message):
        call()


def test_memory_format_objects():
    assert repr(rg.channels_last) == "rustgrad.channels_last" and str(rg.preserve_format) == "rustgrad.preserve_format"
    assert isinstance(rg.contiguous_format, rg.memory_format)
    assert rg.channels_last == rg.channels_last and rg.channels_last != rg.contiguous_format
    assert pickle.loads(pickle.dumps(rg.channels_last_3d)) is rg.channels_last_3d


def test_empty_strided():
    t = rg.empty_strided((2, 3), (1, 2))
    assert t.stride() == (1, 2) and not t.is_contiguous() and t.dtype == rg.float32
    t.copy_(rg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    assert_same(t, np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), dtype="float32")
    assert rg.empty_strided((2, 0), (5, 1), dtype=rg.int64).shape == (2, 0)
    assert rg.empty_strided([3], [0]).stride() == (0,)
    with pytest.raises(RuntimeError, match=r"dimensionality of sizes \(2\) must match dimensionality of strides \(1\)"):
        rg.empty_strided((2, 2), (1,))
    with pytest.raises(RuntimeError, match="Storage size calculation overflowed"):
        rg.empty_strided((2, 2), (-1, 1))


def test_module_to_channels_last_converts_4d_parameters():
    rg.manual_seed(0)
    net = rg.nn.Sequential(rg.nn.Conv2d(3, 8, 3), rg.nn.BatchNorm2d(8), rg.nn.Flatten(), rg.nn.Linear(8 * 4 * 4, 2))
    net.eval()
    x = rg.tensor(np.random.default_rng(1).standard_normal((2, 3, 6, 6)).astype(np.float32))
    before = net(x).detach().numpy()
    weight = net[0].weight
    assert net.to(memory_format=rg.channels_last) is net
    assert net[0].weight is weight and weight.stride() == (27, 1, 9, 3)
    assert net[3].weight.stride() == (128, 1) and net[0].bias.stride() == (1,)
    assert_same(net(x), before, rtol=1e-5, atol=1e-5)


def test_empty_like_and_empty_strided_are_zeroed_like_empty():
    # rustgrad's `empty` hands out zeros; its strided and *_like forms do too (a bool tensor of
    # uninitialised bytes would hold invalid values).
    assert not rg.empty_like(rg.ones(3, 4, dtype=rg.bool).t()).any().item()
    assert rg.empty_like(rg.ones(5, 7).t()).abs().sum().item() == 0
    assert rg.empty_strided((4, 5), (1, 4), dtype=rg.int64).abs().sum().item() == 0
