# `out=` on the functional forms that take it in PyTorch: the result lands in the given tensor
# (the same object, its memory reused when the shape fits, resized when not) with the values
# of the call without `out`, and PyTorch's own `out=` call agrees when torch is importable.
import numpy as np
import pytest
import rustgrad as rg
from _helpers import assert_same, params, requires_torch, torch_or_none

RNG = np.random.default_rng(7)
M = RNG.standard_normal((4, 5)).astype(np.float32)
B3 = RNG.standard_normal((3, 4, 5)).astype(np.float32)
V4, V5 = RNG.standard_normal(4).astype(np.float32), RNG.standard_normal(5).astype(np.float32)
IDX = np.array([[0, 2, 1], [3, 3, 0], [1, 0, 4], [2, 1, 2]])

# (id, call(module, tensor-maker)): each call passes its out= through `**kw`.
CASES = [
    ("sum", lambda m, t, **kw: m.sum(t(M), 1, **kw)),
    ("sum_keepdim_dtype", lambda m, t, **kw: m.sum(t(M), 0, True, dtype=m.float64, **kw)),
    ("mean", lambda m, t, **kw: m.mean(t(M), 1, **kw)),
    ("prod", lambda m, t, **kw: m.prod(t(M), 0, **kw)),
    ("amax", lambda m, t, **kw: m.amax(t(M), 1, **kw)),
    ("amin", lambda m, t, **kw: m.amin(t(B3), (0, 2), **kw)),
    ("all", lambda m, t, **kw: m.all(t(M) > -1, 1, **kw)),
    ("any", lambda m, t, **kw: m.any(t(M) > 1, 0, **kw)),
    ("argmax", lambda m, t, **kw: m.argmax(t(M), 1, **kw)),
    ("argmin", lambda m, t, **kw: m.argmin(t(M), 0, **kw)),
    ("var", lambda m, t, **kw: m.var(t(M), 1, **kw)),
    ("std", lambda m, t, **kw: m.std(t(M), 0, keepdim=True, **kw)),
    ("logsumexp", lambda m, t, **kw: m.logsumexp(t(M), 1, **kw)),
    ("cumsum", lambda m, t, **kw: m.cumsum(t(M), 1, **kw)),
    ("gather", lambda m, t, **kw: m.gather(t(M), 1, t(IDX), **kw)),
    ("index_select", lambda m, t, **kw: m.index_select(t(M), 0, t(np.array([3, 0, 3])), **kw)),
    ("clamp", lambda m, t, **kw: m.clamp(t(M), -0.5, 0.5, **kw)),
    ("clip", lambda m, t, **kw: m.clip(t(M), min=0.0, **kw)),
    ("where", lambda m, t, **kw: m.where(t(M) > 0, t(M), t(M) * 2, **kw)),
    ("dot", lambda m, t, **kw: m.dot(t(V5), t(V5), **kw)),
    ("mv", lambda m, t, **kw: m.mv(t(M), t(V5), **kw)),
    ("outer", lambda m, t, **kw: m.outer(t(V4), t(V5), **kw)),
    ("ger", lambda m, t, **kw: m.ger(t(V4), t(V5), **kw)),
    ("bmm", lambda m, t, **kw: m.bmm(t(B3), t(B3).transpose(1, 2), **kw)),
    ("addmm", lambda m, t, **kw: m.addmm(t(M[:, :4]), t(M), t(M.T[:, :4]), beta=0.5, alpha=2.0, **kw)),
]


@pytest.mark.parametrize("call", params(CASES))
def test_out_receives_the_result(call):
    expected = call(rg, rg.tensor)
    out = rg.empty(expected.shape, dtype=expected.dtype)
    ptr = out.data_ptr()
    res = call(rg, rg.tensor, out=out)
    assert res is out and out.data_ptr() == ptr
    assert_same(out, expected.numpy())
    # A wrongly shaped out= is resized to the result's shape (PyTorch warns when it was non-empty).
    other = rg.empty(0, dtype=expected.dtype)
    assert call(rg, rg.tensor, out=other) is other
    assert_same(other, expected.numpy())


@requires_torch
@pytest.mark.filterwarnings("ignore:torch.ger is deprecated")
@pytest.mark.parametrize("call", params(CASES))
def test_out_matches_torch(call):
    torch = torch_or_none()
    expected = call(torch, torch.tensor)
    out = torch.empty(expected.shape, dtype=expected.dtype)
    call(torch, torch.tensor, out=out)
    mine = rg.empty(tuple(expected.shape), dtype=getattr(rg, str(expected.dtype).split(".")[1]))
    call(rg, rg.tensor, out=mine)
    assert_same(mine, out, rtol=1e-5, atol=1e-5)


def test_out_refuses_autograd():
    x = rg.tensor(M, requires_grad=True)
    with pytest.raises(RuntimeError, match="out=... arguments don't support automatic differentiation"):
        rg.sum(x, 1, out=rg.empty(4))
