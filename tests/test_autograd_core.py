# The autograd tape's behaviour, as PyTorch defines it: requires_grad and is_leaf, .grad and its
# accumulation, grad_fn / next_functions, reprs with grad, backward() and its errors, freed
# graphs and retain_graph, autograd.grad / autograd.backward, grad modes (no_grad, enable_grad,
# set_grad_enabled, inference_mode), detach and .data, in-place rules (leaves, non-leaves, views,
# version counters, saved tensors modified), hooks, retain_grad, custom autograd.Function,
# gradcheck, dtype and broadcasting of grads, and what never requires grad. Expected values are
# hard-coded where the math is obvious; graph structure and reprs are also compared to torch.
# Per-op gradients are in test_autograd_ops.py.
import re
import warnings

import numpy as np
import pytest
import rustgrad as rg
from _helpers import assert_same, norm, requires_torch, to_numpy, torch_or_none

LEAF_MSG = "a leaf Variable that requires grad"
FREED_MSG = "Trying to backward through the graph a second time"
INPLACE_MSG = "modified by an inplace operation"
FLOAT_ONLY_MSG = "(?i)only Tensors of floating point"
SCALAR_MSG = "grad can be implicitly created only for scalar outputs"
NO_GRAD_FN_MSG = "element 0 of tensors does not require grad and does not have a grad_fn"


def f32(*values):
    return np.array(values, np.float32)


def leaf(*values, dtype=None):
    return rg.tensor(list(values), dtype=dtype, requires_grad=True)


def name(node):
    return type(node).__name__


def graph(t):
    """t's backward graph as nested tuples (node class name, ((child, output index), ...));
    None stands for an input that does not require grad."""
    def walk(node):
        if node is None:
            return None
        return (name(node), tuple((walk(n), i) for n, i in node.next_functions))
    return walk(t.grad_fn)


def fixed_addresses(s):
    """'<MulBackward0 object at 0x7f..>' with the address normalized."""
    return re.sub(r"0x[0-9a-fA-F]+", "0x?", s)


@pytest.fixture(autouse=True)
def grad_mode_back_on():
    # A test that fails half-way through a grad-mode switch must not disable grad for the rest.
    yield
    if hasattr(rg, "set_grad_enabled"):
        rg.set_grad_enabled(True)


# ---------------------------------------------------------------------------------------------
# requires_grad and is_leaf

FACTORIES = [
    ("tensor", lambda **kw: rg.tensor([1.0, 2.0], **kw)),
    ("zeros", lambda **kw: rg.zeros(2, 3, **kw)),
    ("ones", lambda **kw: rg.ones((2,), **kw)),
    ("randn", lambda **kw: rg.randn(3, **kw)),
    ("rand", lambda **kw: rg.rand(2, 2, **kw)),
    ("full", lambda **kw: rg.full((2,), 1.5, **kw)),
    ("empty", lambda **kw: rg.empty(2, **kw)),
    ("arange", lambda **kw: rg.arange(0.0, 3.0, **kw)),
    ("linspace", lambda **kw: rg.linspace(0, 1, 5, **kw)),
    ("eye", lambda **kw: rg.eye(2, **kw)),
    ("zeros_like", lambda **kw: rg.zeros_like(rg.ones(2), **kw)),
    ("ones_like", lambda **kw: rg.ones_like(rg.ones(2), **kw)),
    ("float64", lambda **kw: rg.ones(2, dtype=rg.float64, **kw)),
]
FACTORY_PARAMS = [pytest.param(f, id=n) for n, f in FACTORIES]


@pytest.mark.parametrize("factory", FACTORY_PARAMS)
def test_requires_grad_defaults_to_false(factory):
    t = factory()
    assert t.requires_grad is False and t.is_leaf is True and t.grad_fn is None and t.grad is None
    assert (t * 2).requires_grad is False and (t * 2).grad_fn is None


@pytest.mark.parametrize("factory", FACTORY_PARAMS)
def test_factories_take_requires_grad(factory):
    t = factory(requires_grad=True)
    assert t.requires_grad is True and t.is_leaf is True and t.grad_fn is None and t.grad is None
    y = t * 2
    assert y.requires_grad is True and y.is_leaf is False and name(y.grad_fn) == "MulBackward0"


INT_ATTEMPTS = [
    ("setter", lambda: setattr(rg.tensor([1, 2]), "requires_grad", True)),
    ("requires_grad_", lambda: rg.tensor([1, 2]).requires_grad_()),
    ("tensor_kw", lambda: rg.tensor([1, 2], requires_grad=True)),
    ("zeros_int64", lambda: rg.zeros(2, dtype=rg.int64, requires_grad=True)),
    ("ones_int32", lambda: rg.ones(2, dtype=rg.int32, requires_grad=True)),
    ("bool_setter", lambda: setattr(rg.tensor([True]), "requires_grad", True)),
    ("uint8_requires_grad_", lambda: rg.tensor([1], dtype=rg.uint8).requires_grad_(True)),
    ("arange_int", lambda: rg.arange(3, requires_grad=True)),
]


@pytest.mark.parametrize("attempt", [pytest.param(f, id=n) for n, f in INT_ATTEMPTS])
def test_only_floating_point_tensors_can_require_grad(attempt):
    with pytest.raises(RuntimeError, match=FLOAT_ONLY_MSG):
        attempt()


def test_int_tensor_may_say_it_does_not_require_grad():
    t = rg.tensor([1, 2])
    t.requires_grad = False
    t.requires_grad_(False)
    assert t.requires_grad is False


def test_requires_grad_setter_and_method():
    t = rg.tensor([1.0, 2.0])
    assert t.requires_grad_() is t and t.requires_grad is True and t.is_leaf
    t.requires_grad_(False)
    assert t.requires_grad is False
    t.requires_grad = True
    assert t.requires_grad is True and t.grad_fn is None


def test_requires_grad_of_a_non_leaf_cannot_be_switched_off():
    y = leaf(1.0, 2.0) * 2
    with pytest.raises(RuntimeError, match="only change requires_grad flags of leaf variables"):
        y.requires_grad_(False)
    y.requires_grad_(True)  # a no-op: it already requires grad
    assert y.requires_grad


def test_is_leaf():
    x = leaf(1.0, 2.0)
    c = rg.tensor([1.0, 2.0])
    assert x.is_leaf and c.is_leaf
    assert not (x * 2).is_leaf and not (x + c).is_leaf and not x[0].is_leaf
    assert (c * 2).is_leaf  # results that do not require grad are leaves by convention
    assert x.detach().is_leaf and (x * 2).detach().is_leaf
    with rg.no_grad():
        assert (x * 2).is_leaf


def test_result_requires_grad_if_any_input_does():
    x, c = leaf(1.0, 2.0), rg.tensor([3.0, 4.0])
    assert (x + c).requires_grad and (c + x).requires_grad and (c * x).sum().requires_grad
    assert not (c + c).requires_grad
    assert rg.cat([c, x]).requires_grad and rg.stack([x, c]).requires_grad


# ---------------------------------------------------------------------------------------------
# .grad

def test_grad_is_none_until_backward():
    x = leaf(1.0, 2.0)
    y = (x * x).sum()
    assert x.grad is None
    y.backward()
    assert_same(x.grad, f32(2.0, 4.0))
    assert x.grad.requires_grad is False and x.grad.grad_fn is None


def test_grad_accumulates_with_retain_graph():
    x = leaf(1.0, 2.0)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert_same(x.grad, f32(4.0, 8.0))


def test_grad_accumulates_across_graphs():
    x = leaf(1.0, 2.0)
    (x * 2).sum().backward()
    (x * 3).sum().backward()
    assert_same(x.grad, f32(5.0, 5.0))


def test_grad_accumulates_in_place():
    # The existing .grad object takes the sum (PyTorch's AccumulateGrad adds in place), also
    # when it is a strided tensor set by hand or the new gradient is broadcast.
    x = leaf(1.0, 2.0, 3.0)
    (x * 2).sum().backward()
    g = x.grad
    (x * 3).sum().backward()
    assert g.data_ptr() == x.grad.data_ptr()
    assert_same(g, f32(5.0, 5.0, 5.0))
    w = rg.ones(2, 3, requires_grad=True)
    w.grad = rg.zeros(3, 2).t()
    (w * rg.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert w.grad.stride() == (1, 2)
    np.testing.assert_array_equal(w.grad.numpy(), [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    v = leaf(1.0, 1.0, 1.0)
    v.grad = rg.zeros(3)
    v.expand(4, 3).sum().backward()
    assert_same(v.grad, f32(4.0, 4.0, 4.0))


def test_grad_is_settable():
    x = leaf(1.0, 2.0)
    x.grad = rg.tensor([10.0, 20.0])
    assert_same(x.grad, f32(10.0, 20.0))
    (x * 2).sum().backward()
    assert_same(x.grad, f32(12.0, 22.0))  # backward adds to a grad set by hand
    x.grad = None
    assert x.grad is None
    (x * 3).sum().backward()
    assert_same(x.grad, f32(3.0, 3.0))


def test_grad_zero_and_in_place_edit():
    x = leaf(1.0, 2.0)
    (x * x).sum().backward()
    x.grad.zero_()
    assert_same(x.grad, f32(0.0, 0.0))
    (x * 2).sum().backward()
    assert_same(x.grad, f32(2.0, 2.0))


@pytest.mark.parametrize("bad", [
    pytest.param(lambda: rg.zeros(3), id="shape"),
    pytest.param(lambda: rg.zeros(2, dtype=rg.float64), id="dtype"),
])
def test_assigned_grad_must_match(bad):
    x = leaf(1.0, 2.0)
    with pytest.raises(RuntimeError):
        x.grad = bad()
    assert x.grad is None


# ---------------------------------------------------------------------------------------------
# grad_fn and next_functions

def test_grad_fn_is_none_on_leaves():
    assert leaf(1.0).grad_fn is None and rg.tensor([1.0]).grad_fn is None


def test_next_functions_structure():
    a, b = leaf(1.0, 2.0), rg.tensor([3.0, 4.0])
    y = a * b
    nf = y.grad_fn.next_functions
    assert isinstance(nf, tuple) and len(nf) == 2
    assert all(isinstance(e, tuple) and len(e) == 2 for e in nf)
    acc, index = nf[0]
    assert name(acc) == "AccumulateGrad" and index == 0
    assert nf[1] == (None, 0)  # b does not require grad
    assert acc.next_functions == ()
    assert_same(acc.variable, f32(1.0, 2.0))


def test_graph_of_a_chain():
    a = leaf(1.0, 2.0)
    z = (a * 2).exp().sum()
    acc = ("AccumulateGrad", ())
    mul = ("MulBackward0", ((acc, 0), (None, 0)))
    assert graph(z) == ("SumBackward0", ((("ExpBackward0", ((mul, 0),)), 0),))


def test_multi_output_nodes_name_their_output_index():
    a = leaf(1.0, 2.0)
    s = a.split(1)
    (n1, i1), (n0, i0) = (s[1] * s[0]).grad_fn.next_functions
    assert name(n1) == name(n0) == "SplitBackward0" and (i1, i0) == (1, 0)
    u = a.unbind()
    (m1, j1), (m0, j0) = (u[1] + u[0]).grad_fn.next_functions
    assert name(m1) == name(m0) == "UnbindBackward0" and (j1, j0) == (1, 0)


# Expressions whose whole graph must look like torch's.
GRAPHS = [
    ("mul_const", lambda m, a, b: a * m.tensor([3.0, 4.0])),
    ("mul_py", lambda m, a, b: a * 2),
    ("add_chain", lambda m, a, b: (a + b * a).sum()),
    ("exp_mean", lambda m, a, b: (a.exp() - b).mean()),
    ("split", lambda m, a, b: (lambda s: s[1] * s[0])(a.split(1))),
    ("unbind_partial", lambda m, a, b: (lambda u: u[1])(a.unbind())),
    ("matmul", lambda m, a, b: a.reshape(2, 1) @ b.reshape(1, 2)),
    ("index_cat", lambda m, a, b: m.cat([a[1:], b, a[:1]])),
    ("same_leaf_twice", lambda m, a, b: a * a),
    ("softmax_view", lambda m, a, b: a.view(1, 2).softmax(1).t()),
    ("detach_cut", lambda m, a, b: a.detach() * b),
    ("to_dtype", lambda m, a, b: a.to(m.float64).sum()),
    ("inplace", lambda m, a, b: (a * 2).add_(1).mul_(b)),
]


@requires_torch
@pytest.mark.parametrize("fn", [pytest.param(f, id=n) for n, f in GRAPHS])
def test_graph_matches_torch(fn):
    torch = torch_or_none()
    got = [graph(fn(m, m.tensor([1.0, 2.0], requires_grad=True),
                    m.tensor([3.0, 4.0], requires_grad=True))) for m in (rg, torch)]
    assert got[0] == got[1]


# ---------------------------------------------------------------------------------------------
# repr / str with autograd information

REPRS = [
    ("leaf", lambda m: m.tensor([1.0, 2.0], requires_grad=True),
     "tensor([1., 2.], requires_grad=True)"),
    ("sum", lambda m: m.tensor([1.0, 2.0], requires_grad=True).sum(),
     "tensor(3., grad_fn=<SumBackward0>)"),
    ("mul", lambda m: m.tensor([1.0, 2.0], requires_grad=True) * 2,
     "tensor([2., 4.], grad_fn=<MulBackward0>)"),
    ("float64_leaf", lambda m: m.tensor([1.0, 2.0], dtype=m.float64, requires_grad=True),
     "tensor([1., 2.], dtype=rustgrad.float64, requires_grad=True)"),
    ("float64_result", lambda m: m.tensor([1.0, 2.0], dtype=m.float64, requires_grad=True) + 1,
     "tensor([2., 3.], dtype=rustgrad.float64, grad_fn=<AddBackward0>)"),
    ("2d", lambda m: m.ones(2, 2, requires_grad=True) * 2,
     "tensor([[2., 2.],\n        [2., 2.]], grad_fn=<MulBackward0>)"),
    ("detached", lambda m: (m.tensor([1.0, 2.0], requires_grad=True) * 2).detach(),
     "tensor([2., 4.])"),
    ("not_requiring", lambda m: m.tensor([1.0, 2.0]) * 2, "tensor([2., 4.])"),
    ("mean_0d", lambda m: m.ones(3, requires_grad=True).mean(),
     "tensor(1., grad_fn=<MeanBackward0>)"),
    ("view", lambda m: m.ones(4, requires_grad=True).view(2, 2)[0],
     "tensor([1., 1.], grad_fn=<SelectBackward0>)"),
]
REPR_PARAMS = [pytest.param(f, e, id=n) for n, f, e in REPRS]


@pytest.mark.parametrize("make, expected", REPR_PARAMS)
def test_repr_with_grad(make, expected):
    t = make(rg)
    assert norm(repr(t)) == expected and norm(str(t)) == expected


@requires_torch
@pytest.mark.parametrize("make, expected", REPR_PARAMS)
def test_repr_with_grad_matches_torch(make, expected):
    assert norm(str(make(rg))) == norm(str(make(torch_or_none())))


def test_repr_inside_no_grad_has_no_grad_fn():
    x = leaf(1.0, 2.0)
    with rg.no_grad():
        assert repr(x * 2) == "tensor([2., 4.])"
    assert repr(x) == "tensor([1., 2.], requires_grad=True)"  # the leaf's flag is unchanged


def test_repr_of_grad_fn():
    s = repr((leaf(1.0) * 2).grad_fn)
    assert fixed_addresses(s) == "<MulBackward0 object at 0x?>"


# ---------------------------------------------------------------------------------------------
# backward()

def test_backward_with_gradient_for_non_scalar():
    x = leaf(1.0, 2.0, 3.0)
    y = x * 2
    y.backward(rg.tensor([1.0, 0.1, 0.0]))
    assert_same(x.grad, f32(2.0, 0.2, 0.0))


def test_backward_gradient_keyword():
    x = leaf(1.0, 2.0)
    (x * x).backward(gradient=rg.tensor([1.0, 1.0]))
    assert_same(x.grad, f32(2.0, 4.0))


def test_backward_on_a_one_element_non_scalar():
    # "scalar" means one element: shape (1,) and (1, 1) work without a gradient
    x = leaf(2.0)
    (x * 3).backward()
    assert_same(x.grad, f32(3.0))
    (x.reshape(1, 1) * 3).backward()
    assert_same(x.grad, f32(6.0))


def test_implicit_gradient_needs_a_scalar():
    x = leaf(1.0, 2.0)
    with pytest.raises(RuntimeError, match=SCALAR_MSG):
        (x * 2).backward()
    assert x.grad is None


def test_backward_of_a_tensor_without_grad_fn():
    with pytest.raises(RuntimeError, match=NO_GRAD_FN_MSG):
        rg.ones(2).sum().backward()


def test_backward_on_a_leaf():
    x = leaf(2.0)
    x.backward()
    assert_same(x.grad, f32(1.0))


@pytest.mark.parametrize("make", [
    pytest.param(lambda x: (x * x).sum(), id="mul_saves_inputs"),
    pytest.param(lambda x: x.exp().sum(), id="exp_saves_result"),
    pytest.param(lambda x: (x * 2).sum(), id="mul_by_number_saves_it"),
    pytest.param(lambda x: x.sin().mean(), id="sin_saves_input"),
])
def test_second_backward_through_freed_graph_raises(make):
    x = leaf(1.0, 2.0)
    y = make(x)
    y.backward()
    with pytest.raises(RuntimeError, match=FREED_MSG):
        y.backward()


@pytest.mark.parametrize("make, b_grad", [
    pytest.param(lambda a, b: (a + b).sum(), 2.0, id="add_sum"),
    pytest.param(lambda a, b: (a - b).sum(), -2.0, id="sub_sum"),
    pytest.param(lambda a, b: (a + b).reshape(2, 1).sum(), 2.0, id="view"),
])
def test_second_backward_without_saved_tensors_is_allowed(make, b_grad):
    # PyTorch only raises when a node needs a freed saved tensor; add/sub/sum/reshape save none,
    # so a second backward runs and accumulates.
    a, b = leaf(1.0, 2.0), leaf(3.0, 4.0)
    y = make(a, b)
    y.backward()
    y.backward()
    assert_same(a.grad, f32(2.0, 2.0))
    assert_same(b.grad, f32(b_grad, b_grad))


def test_retain_graph_allows_a_second_backward():
    x = leaf(1.0, 2.0)
    y = x.exp().sum()
    y.backward(retain_graph=True)
    y.backward(retain_graph=True)
    y.backward()
    assert_same(x.grad, 3 * np.exp(f32(1.0, 2.0)), rtol=1e-6)
    with pytest.raises(RuntimeError, match=FREED_MSG):
        y.backward()


def test_backward_inputs_restricts_accumulation():
    a, b = leaf(1.0, 2.0), leaf(3.0, 4.0)
    (a * b).sum().backward(inputs=[a])
    assert_same(a.grad, f32(3.0, 4.0))
    assert b.grad is None
    (a * b).sum().backward(inputs=[a, b])
    assert_same(a.grad, f32(6.0, 8.0))
    assert_same(b.grad, f32(1.0, 2.0))


def test_backward_inputs_may_be_a_non_leaf():
    a = leaf(1.0, 2.0)
    h = a * 2
    (h * h).sum().backward(inputs=[h])
    assert_same(h.grad, f32(4.0, 8.0))
    assert a.grad is None


def test_shared_subgraph_gets_summed_grads():
    x = leaf(1.0, 2.0)
    y = x * 3
    z = (y * y + y).sum()  # dz/dx = 3 * (2y + 1)
    z.backward()
    assert_same(x.grad, f32(21.0, 39.0))


# ---------------------------------------------------------------------------------------------
# rg.autograd.grad and rg.autograd.backward

def test_autograd_grad_returns_a_tuple_and_leaves_grad_alone():
    x = leaf(1.0, 2.0)
    g = rg.autograd.grad((x * x).sum(), x)
    assert isinstance(g, tuple) and len(g) == 1
    assert_same(g[0], f32(2.0, 4.0))
    assert x.grad is None
    a, b = leaf(1.0, 2.0), leaf(3.0, 4.0)
    ga, gb = rg.autograd.grad((a * b).sum(), [a, b])
    assert_same(ga, f32(3.0, 4.0))
    assert_same(gb, f32(1.0, 2.0))
    assert a.grad is None and b.grad is None


def test_autograd_grad_allow_unused():
    x, unused = leaf(1.0, 2.0), leaf(5.0)
    with pytest.raises(RuntimeError, match="not have been used in the graph"):
        rg.autograd.grad((x * 2).sum(), [x, unused])
    gx, gu = rg.autograd.grad((x * 2).sum(), [x, unused], allow_unused=True)
    assert_same(gx, f32(2.0, 2.0))
    assert gu is None


def test_autograd_grad_input_must_require_grad():
    x = leaf(1.0, 2.0)
    with pytest.raises(RuntimeError, match="does not require grad"):
        rg.autograd.grad((x * 2).sum(), [x, rg.ones(2)])


def test_autograd_grad_output_must_require_grad():
    with pytest.raises(RuntimeError, match=NO_GRAD_FN_MSG):
        rg.autograd.grad(rg.ones(2).sum(), leaf(1.0))


def test_autograd_grad_outputs():
    x = leaf(1.0, 2.0, 3.0)
    (g,) = rg.autograd.grad(x * 2, x, grad_outputs=rg.tensor([1.0, 0.5, 0.0]))
    assert_same(g, f32(2.0, 1.0, 0.0))
    with pytest.raises(RuntimeError, match=SCALAR_MSG):
        rg.autograd.grad(x * 2, x)


def test_autograd_grad_of_several_outputs_sums():
    x = leaf(1.0, 2.0)
    (g,) = rg.autograd.grad([(x * 2).sum(), (x * x).sum()], [x])
    assert_same(g, f32(4.0, 6.0))


def test_autograd_grad_frees_the_graph_unless_retained():
    x = leaf(1.0, 2.0)
    y = (x * x).sum()
    rg.autograd.grad(y, x, retain_graph=True)
    rg.autograd.grad(y, x)
    with pytest.raises(RuntimeError, match=FREED_MSG):
        rg.autograd.grad(y, x)


def test_autograd_grad_with_respect_to_a_non_leaf():
    x = leaf(1.0, 2.0)
    y = x * 2
    z = (y * y).sum()
    (g,) = rg.autograd.grad(z, y)
    assert_same(g, f32(4.0, 8.0))  # dz/dy = 2y
    assert x.grad is None


def test_autograd_backward_function():
    x = leaf(1.0, 2.0)
    y1, y2 = x * 2, x * x
    rg.autograd.backward([y1, y2], [rg.tensor([1.0, 1.0]), rg.tensor([1.0, 0.5])])
    assert_same(x.grad, f32(4.0, 4.0))  # 2 + 2x * [1, .5]
    rg.autograd.backward((x * 3).sum())
    assert_same(x.grad, f32(7.0, 7.0))
    rg.autograd.backward(x * 1, grad_tensors=rg.tensor([1.0, 2.0]))
    assert_same(x.grad, f32(8.0, 9.0))


# ---------------------------------------------------------------------------------------------
# Grad modes

def test_no_grad_context():
    x = leaf(1.0, 2.0)
    assert rg.is_grad_enabled()
    with rg.no_grad():
        assert not rg.is_grad_enabled()
        y = x * 2
        z = x.exp().sum()
    assert rg.is_grad_enabled()
    for t in (y, z):
        assert t.requires_grad is False and t.grad_fn is None and t.is_leaf
    assert_same(y, f32(2.0, 4.0))
    assert x.requires_grad  # the leaf keeps its flag


def test_no_grad_keeps_requires_grad_of_new_leaves():
    with rg.no_grad():
        w = rg.ones(2, requires_grad=True)
    assert w.requires_grad and w.is_leaf


@pytest.mark.parametrize("decorate", [
    pytest.param(lambda f: rg.no_grad()(f), id="no_grad()"),
    pytest.param(lambda f: rg.no_grad(f), id="no_grad"),
    pytest.param(lambda f: rg.inference_mode()(f), id="inference_mode()"),
    pytest.param(lambda f: rg.set_grad_enabled(False)(f), id="set_grad_enabled(False)"),
])
def test_disabling_decorators(decorate):
    x = leaf(1.0, 2.0)

    def f(t):
        return t * 2, rg.is_grad_enabled()

    y, enabled = decorate(f)(x)
    assert enabled is False and y.requires_grad is False and y.grad_fn is None
    assert rg.is_grad_enabled()


def test_enable_grad_inside_no_grad():
    x = leaf(1.0, 2.0)
    with rg.no_grad():
        with rg.enable_grad():
            assert rg.is_grad_enabled()
            y = x * 2
        assert not rg.is_grad_enabled()
        z = x * 2

        @rg.enable_grad()
        def f(t):
            return t * 3
        w = f(x)
    assert y.requires_grad and name(y.grad_fn) == "MulBackward0"
    assert not z.requires_grad
    assert w.requires_grad


def test_nested_modes_restore_on_exit_and_on_error():
    with rg.no_grad():
        with rg.no_grad():
            assert not rg.is_grad_enabled()
        assert not rg.is_grad_enabled()
        with rg.set_grad_enabled(True):
            assert rg.is_grad_enabled()
        assert not rg.is_grad_enabled()
    assert rg.is_grad_enabled()
    with pytest.raises(ValueError):
        with rg.no_grad():
            raise ValueError
    assert rg.is_grad_enabled()


def test_set_grad_enabled_context_and_call():
    x = leaf(1.0)
    with rg.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    with rg.set_grad_enabled(True):
        assert (x * 2).requires_grad
    try:
        rg.set_grad_enabled(False)  # as a plain call it switches the mode until switched back
        assert not rg.is_grad_enabled() and not (x * 2).requires_grad
    finally:
        rg.set_grad_enabled(True)
    assert rg.is_grad_enabled() and (x * 2).requires_grad


def test_inference_mode():
    x = leaf(1.0, 2.0)
    with rg.inference_mode():
        assert not rg.is_grad_enabled()
        y = x * 2
    assert y.requires_grad is False and y.grad_fn is None
    assert_same(y, f32(2.0, 4.0))
    assert rg.is_grad_enabled()


# ---------------------------------------------------------------------------------------------
# detach, detach_, .data

def test_detach_shares_storage_and_drops_grad():
    x = leaf(1.0, 2.0)
    d = x.detach()
    assert d.requires_grad is False and d.grad_fn is None and d.is_leaf
    d[0] = 10.0
    assert_same(x.detach(), f32(10.0, 2.0))
    y = x * 2
    dy = y.detach()
    assert not dy.requires_grad and y.requires_grad
    assert_same(dy, f32(20.0, 4.0))


def test_data_shares_storage_and_drops_grad():
    x = leaf(1.0, 2.0)
    assert x.data.requires_grad is False and x.data.grad_fn is None
    x.data.mul_(3)  # the pre-no_grad way of updating parameters; not seen by autograd
    assert_same(x.detach(), f32(3.0, 6.0))
    assert x.requires_grad and x.is_leaf and x.grad_fn is None


def test_detach_in_place():
    x = leaf(1.0, 2.0)
    y = x * 2
    assert y.detach_() is y
    assert y.requires_grad is False and y.grad_fn is None and y.is_leaf
    assert_same(y, f32(2.0, 4.0))


def test_detached_values_stop_gradients():
    x = leaf(1.0, 2.0)
    y = x * x.detach()  # d/dx = x (the detached factor is a constant)
    y.sum().backward()
    assert_same(x.grad, f32(1.0, 2.0))


# ---------------------------------------------------------------------------------------------
# In-place operations

@pytest.mark.parametrize("op", [
    pytest.param(lambda x: x.add_(1), id="add_"),
    pytest.param(lambda x: x.mul_(2), id="mul_"),
    pytest.param(lambda x: x.zero_(), id="zero_"),
    pytest.param(lambda x: x.fill_(1.0), id="fill_"),
    pytest.param(lambda x: x.__iadd__(1), id="iadd"),
    pytest.param(lambda x: x.__setitem__(0, 5.0), id="setitem"),
    pytest.param(lambda x: x[1:].mul_(2), id="view_mul_"),
])
def test_in_place_on_a_leaf_requiring_grad_raises(op):
    x = leaf(1.0, 2.0)
    with pytest.raises(RuntimeError, match=LEAF_MSG):
        op(x)
    assert_same(x.detach(), f32(1.0, 2.0))  # checked before anything was written
    assert x._version == 0


def test_in_place_under_no_grad_is_an_sgd_step():
    w = leaf(1.0, 2.0)
    (w * w).sum().backward()
    lr = 0.1
    with rg.no_grad():
        w -= lr * w.grad
    assert_same(w.detach(), f32(0.8, 1.6))
    assert w.is_leaf and w.requires_grad and w.grad_fn is None
    with rg.no_grad():
        w.add_(w.grad, alpha=-lr)
        w.grad.zero_()
    assert_same(w.detach(), f32(0.6, 1.2))
    assert_same(w.grad, f32(0.0, 0.0))
    (w * w).sum().backward()  # still usable as a parameter
    assert_same(w.grad, f32(1.2, 2.4))


def test_in_place_on_a_non_leaf_is_differentiable():
    x = leaf(1.0, 2.0, 3.0)
    y = x * 2
    assert y.add_(1) is y
    y.mul_(3)
    assert name(y.grad_fn) == "MulBackward0" and not y.is_leaf
    assert_same(y, f32(9.0, 15.0, 21.0))
    y.sum().backward()
    assert_same(x.grad, f32(6.0, 6.0, 6.0))


def test_setitem_on_a_non_leaf_is_differentiable():
    x, v = leaf(1.0, 2.0, 3.0), rg.tensor(5.0, requires_grad=True)
    y = x * 1
    y[0] = 0.0
    y[1] = v * 2
    assert name(y.grad_fn) == "CopySlices"
    assert_same(y, f32(0.0, 10.0, 3.0))
    y.sum().backward()
    assert_same(x.grad, f32(0.0, 0.0, 1.0))
    assert_same(v.grad, np.array(2.0, np.float32))


def test_in_place_on_a_view_of_a_non_leaf():
    x = leaf(1.0, 2.0, 3.0)
    y = x * 1
    y[:2].mul_(2)
    assert name(y.grad_fn) == "CopySlices"
    assert_same(y, f32(2.0, 4.0, 3.0))
    y.sum().backward()
    assert_same(x.grad, f32(2.0, 2.0, 1.0))


def test_in_place_with_a_requiring_operand_makes_a_non_leaf():
    x = leaf(1.0, 2.0)
    a = rg.zeros(2)
    a.add_(x * 3)
    assert a.requires_grad and not a.is_leaf and name(a.grad_fn) == "AddBackward0"
    a.sum().backward()
    assert_same(x.grad, f32(3.0, 3.0))


@pytest.mark.parametrize("scenario", [
    pytest.param("exp_result", id="exp_result"),
    pytest.param("mul_input", id="mul_input"),
    pytest.param("leaf_under_no_grad", id="leaf_under_no_grad"),
    pytest.param("view_of_saved", id="view_of_saved"),
])
def test_modifying_a_saved_tensor_raises_at_backward(scenario):
    x = leaf(1.0, 2.0, 3.0)
    if scenario == "exp_result":  # exp saves its result
        y = x.exp()
        y.add_(1)
        out = y.sum()
    elif scenario == "mul_input":  # b = a*a saves a
        a = x * 2
        b = a * a
        a.mul_(2)
        out = b.sum()
    elif scenario == "leaf_under_no_grad":  # sin saves its input, the leaf itself
        y = x.sin()
        with rg.no_grad():
            x.add_(1)
        out = y.sum()
    else:  # a view shares its base's version counter
        a = x * 2
        b = a * a
        a[1:].zero_()
        out = b.sum()
    with pytest.raises(RuntimeError, match=INPLACE_MSG):
        out.backward()


def test_modifying_a_tensor_that_was_not_saved_is_fine():
    x = leaf(1.0, 2.0, 3.0)
    a = x * 2
    b = a + 1  # add saves no tensors
    a.mul_(2)
    b.sum().backward()
    assert_same(x.grad, f32(2.0, 2.0, 2.0))


def test_version_counter():
    t = rg.zeros(3)
    assert t._version == 0
    t.add_(1)
    assert t._version == 1
    t[0] = 2.0
    assert t._version == 2
    v = t[1:]
    v.add_(1)
    assert t._version == 3 and v._version == 3  # views share the counter
    _ = t + 1
    _ = t.sum()
    assert t._version == 3  # out-of-place ops do not count
    with rg.no_grad():
        t.mul_(2)
    assert t._version == 4  # in-place under no_grad counts too
    assert (t * 1)._version == 0


# ---------------------------------------------------------------------------------------------
# Hooks and retain_grad

def test_hook_on_a_leaf_changes_its_grad():
    x = leaf(1.0, 2.0)
    x.register_hook(lambda g: g * 2)
    (x * 3).sum().backward()
    assert_same(x.grad, f32(6.0, 6.0))


def test_hook_on_a_non_leaf_changes_what_flows_on():
    x = leaf(1.0, 2.0)
    y = x * 3
    seen = []
    y.register_hook(lambda g: seen.append(to_numpy(g).copy()))  # returns None: observe only
    y.register_hook(lambda g: g + 1)
    y.sum().backward()
    np.testing.assert_array_equal(seen[0], f32(1.0, 1.0))
    assert_same(x.grad, f32(6.0, 6.0))  # 3 * (1 + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns when reading a non-leaf's .grad
        assert y.grad is None  # a hook does not retain the grad


def test_hooks_run_in_registration_order():
    x = leaf(1.0)
    x.register_hook(lambda g: g * 2)
    x.register_hook(lambda g: g + 1)
    (x * 5).sum().backward()
    assert_same(x.grad, f32(11.0))  # (5 * 2) + 1, not (5 + 1) * 2


def test_hook_handle_remove():
    x = leaf(1.0, 2.0)
    handle = x.register_hook(lambda g: g * 100)
    handle.remove()
    (x * 3).sum().backward()
    assert_same(x.grad, f32(3.0, 3.0))


def test_hook_needs_requires_grad():
    with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't"):
        rg.ones(2).register_hook(lambda g: g)


def test_retain_grad():
    x = leaf(1.0, 2.0)
    y = x * 2
    y.retain_grad()
    assert y.retains_grad and not x.retains_grad
    w = x * 3
    ((y * y).sum() + w.sum()).backward()
    assert_same(y.grad, f32(4.0, 8.0))  # 2y
    assert not y.is_leaf
    assert_same(x.grad, f32(11.0, 19.0))  # 2 * 2y + 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns when reading a non-leaf's .grad
        assert w.grad is None


def test_retain_grad_on_a_leaf_is_a_no_op():
    x = leaf(1.0)
    x.retain_grad()
    (x * 2).sum().backward()
    assert_same(x.grad, f32(2.0))


# ---------------------------------------------------------------------------------------------
# Custom autograd.Function

def my_relu(m):
    class MyReLU(m.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return input.clamp(min=0)

        @staticmethod
        def backward(ctx, grad_output):
            (input,) = ctx.saved_tensors
            grad_input = grad_output.clone()
            grad_input[input < 0] = 0
            return grad_input
    return MyReLU


def my_exp(m, wrong=False):
    class Exp(m.autograd.Function):
        @staticmethod
        def forward(ctx, i):
            result = i.exp()
            ctx.save_for_backward(result)
            return result

        @staticmethod
        def backward(ctx, grad_output):
            (result,) = ctx.saved_tensors
            return grad_output * result * (2 if wrong else 1)
    return Exp


def test_custom_function_relu():
    MyReLU = my_relu(rg)
    x = leaf(-1.0, 2.0, -3.0, 4.0)
    y = MyReLU.apply(x)
    assert_same(y, f32(0.0, 2.0, 0.0, 4.0))
    assert name(y.grad_fn) == "MyReLUBackward" and y.requires_grad and not y.is_leaf
    y.backward(rg.tensor([1.0, 2.0, 3.0, 4.0]))
    assert_same(x.grad, f32(0.0, 2.0, 0.0, 4.0))


def test_custom_function_in_a_larger_graph():
    Exp = my_exp(rg)
    x = leaf(0.0, 1.0)
    y = (Exp.apply(x * 2) * 3).sum()  # d/dx = 6 exp(2x)
    y.backward()
    assert_same(x.grad, 6 * np.exp(f32(0.0, 2.0)), rtol=1e-6)
    assert name(y.grad_fn.next_functions[0][0].next_functions[0][0]) == "ExpBackward"


def test_custom_function_ctx_and_none_grads():
    record = {}

    class ScaledMul(rg.autograd.Function):
        @staticmethod
        def forward(ctx, a, b, scale):
            record["needs"] = tuple(ctx.needs_input_grad)
            record["grad_enabled"] = rg.is_grad_enabled()
            ctx.save_for_backward(a, b)
            ctx.scale = scale
            return a * b * scale

        @staticmethod
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            ga = g * b * ctx.scale if ctx.needs_input_grad[0] else None
            gb = g * a * ctx.scale if ctx.needs_input_grad[1] else None
            return ga, gb, None  # None for the non-tensor argument

    a, b = leaf(1.0, 2.0), rg.tensor([3.0, 4.0])
    y = ScaledMul.apply(a, b, 0.5)
    assert record == {"needs": (True, False, False), "grad_enabled": False}
    assert name(y.grad_fn) == "ScaledMulBackward"
    y.sum().backward()
    assert_same(a.grad, f32(1.5, 2.0))
    assert b.grad is None
    z = ScaledMul.apply(rg.tensor([1.0]), rg.tensor([2.0]), 1.0)  # nothing requires grad
    assert not z.requires_grad and z.grad_fn is None


@pytest.mark.parametrize("m", [rg] + ([torch_or_none()] if torch_or_none() else []), ids=lambda m: m.__name__)
def test_custom_function_non_differentiable_input_returned_as_is(m):
    class Passthrough(m.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.mark_non_differentiable(x)
            return x

        @staticmethod
        def backward(ctx, g):
            return g

    x = m.ones(2, requires_grad=True)
    y = Passthrough.apply(x)
    assert y is not x and not y.requires_grad and y.grad_fn is None


def test_custom_function_repr():
    y = my_relu(rg).apply(leaf(1.0, 2.0))
    assert repr(y) == "tensor([1., 2.], grad_fn=<MyReLUBackward>)"


def test_gradcheck_of_custom_functions():
    x = rg.tensor([-1.5, 0.5, 2.0, -0.3], dtype=rg.float64, requires_grad=True)
    assert rg.autograd.gradcheck(my_relu(rg).apply, (x,)) is True
    assert rg.autograd.gradcheck(my_exp(rg).apply, (x,)) is True


def test_gradcheck_catches_a_wrong_backward():
    x = rg.tensor([-1.5, 0.5, 2.0], dtype=rg.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="Jacobian mismatch"):
        rg.autograd.gradcheck(my_exp(rg, wrong=True).apply, (x,))
    assert rg.autograd.gradcheck(my_exp(rg, wrong=True).apply, (x,), raise_exception=False) is False


def test_gradcheck_of_builtin_ops():
    x = rg.tensor([[0.5, -1.0], [2.0, 0.25]], dtype=rg.float64, requires_grad=True)
    assert rg.autograd.gradcheck(lambda t: (t.exp() * t).sum(1), (x,)) is True
    assert rg.autograd.gradgradcheck(lambda t: (t.exp() * t).sum(1), (x,)) is True


# ---------------------------------------------------------------------------------------------
# dtypes, broadcasting, numbers

def test_mixed_dtype_grads_keep_each_leafs_dtype():
    a = leaf(1.0, 2.0)
    b = leaf(3.0, 4.0, dtype=rg.float64)
    y = a * b
    assert y.dtype == rg.float64
    y.sum().backward()
    assert_same(a.grad, f32(3.0, 4.0))
    assert_same(b.grad, np.array([1.0, 2.0]))


def test_broadcast_grads_are_summed_to_input_shapes():
    a = rg.ones(3, 1, requires_grad=True)
    b = rg.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    (a * b).sum().backward()
    assert_same(a.grad, np.full((3, 1), 10.0, np.float32))
    assert_same(b.grad, np.full(4, 3.0, np.float32))
    s = rg.tensor(2.0, requires_grad=True)
    m = rg.ones(2, 3, requires_grad=True)
    (s + m).sum().backward()
    assert_same(s.grad, np.array(6.0, np.float32))
    assert_same(m.grad, np.ones((2, 3), np.float32))


@pytest.mark.parametrize("fn, expected", [
    pytest.param(lambda x: x * 3, [3.0, 3.0], id="mul"),
    pytest.param(lambda x: 3 * x, [3.0, 3.0], id="rmul"),
    pytest.param(lambda x: x / 2, [0.5, 0.5], id="div"),
    pytest.param(lambda x: 2 / x, [-2.0, -0.5], id="rdiv"),  # -2/x^2 at x = 1, 2
    pytest.param(lambda x: 1 - x, [-1.0, -1.0], id="rsub"),
    pytest.param(lambda x: x ** 2, [2.0, 4.0], id="pow"),
    pytest.param(lambda x: 2 ** x, [2 * np.log(2), 4 * np.log(2)], id="rpow"),
])
def test_grad_with_python_numbers(fn, expected):
    x = leaf(1.0, 2.0)
    fn(x).sum().backward()
    assert_same(x.grad, np.array(expected, np.float32))


# ---------------------------------------------------------------------------------------------
# Outputs that never require grad

NON_DIFFERENTIABLE = [
    ("gt", lambda x: x > 0),
    ("eq", lambda x: x == x),
    ("eq_method", lambda x: x.eq(x * 2)),
    ("ne", lambda x: x != 1),
    ("argmax", lambda x: x.argmax()),
    ("argmin_dim", lambda x: x.argmin(0)),
    ("max_indices", lambda x: x.max(0).indices),
    ("isnan", lambda x: x.isnan()),
    ("long", lambda x: x.long()),
    ("to_int", lambda x: x.to(rg.int32)),
    ("all", lambda x: (x > 0).all()),
]


@pytest.mark.parametrize("fn", [pytest.param(f, id=n) for n, f in NON_DIFFERENTIABLE])
def test_outputs_that_do_not_require_grad(fn):
    out = fn(leaf(1.0, -2.0, 3.0))
    assert out.requires_grad is False and out.grad_fn is None


def test_max_values_require_grad_and_indices_do_not():
    values, indices = leaf(1.0, -2.0, 3.0).max(0)
    assert values.requires_grad and not indices.requires_grad


# ---------------------------------------------------------------------------------------------
# errors raised inside backward, and deep graphs

def test_exception_in_a_hook_reaches_the_caller_unchanged():
    x = leaf(1.0, 2.0)
    y = x * 2

    def bad(grad):
        raise ValueError("boom from a hook")
    y.register_hook(bad)
    with pytest.raises(ValueError, match="boom from a hook"):
        y.sum().backward()


def test_exception_in_a_custom_backward_reaches_the_caller_unchanged():
    class Broken(rg.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 1

        @staticmethod
        def backward(ctx, grad):
            raise KeyError("broken backward")

    x = leaf(1.0, 2.0)
    with pytest.raises(KeyError, match="broken backward"):
        Broken.apply(x).sum().backward()


def test_a_very_deep_graph_backpropagates_and_frees():
    # 100k nodes: backward and teardown must not recurse per node.
    x = leaf(1.0, 2.0)
    y = x
    for _ in range(100_000):
        y = y + 1
    y.sum().backward()
    assert_same(x.grad, f32(1.0, 1.0))


@pytest.mark.parametrize("op", ["gather", "scatter", "scatter_add"])
def test_zero_dim_index_addresses_one_position(op):
    x = rg.tensor([1.0, 2.0, 3.0])
    got = {"gather": lambda: x.gather(0, rg.tensor(2)),
           "scatter": lambda: x.scatter(0, rg.tensor(1), rg.tensor(9.0)),
           "scatter_add": lambda: x.scatter_add(0, rg.tensor(1), rg.tensor(9.0))}[op]()
    want = {"gather": np.float32(3.0), "scatter": np.array([1.0, 9.0, 3.0], np.float32),
            "scatter_add": np.array([1.0, 11.0, 3.0], np.float32)}[op]
    assert_same(got, np.asarray(want))


# ---------------------------------------------------------------------------------------------
# ReLU's backward writes into the incoming gradient when the backward owns it alone; gradients
# that anyone else can see (retained, captured by autograd.grad, kept by a hook, passed by the
# caller, shared by two consumers) must come out unchanged.

def _relu_chain():
    x = rg.tensor([[-1.0, 2.0, -3.0], [4.0, -5.0, 6.0]], requires_grad=True)
    h = x * 2  # non-leaf input of the relu
    y = rg.relu(h)
    z = y * 3  # y's gradient is a fresh, owned tensor of 3s
    return x, h, y, z


def test_relu_backward_leaves_visible_gradients_alone():
    expected_x = np.where(np.array([[-1, 2, -3], [4, -5, 6]]) > 0, 6.0, 0.0).astype(np.float32)
    x, h, y, z = _relu_chain()
    y.retain_grad()
    z.sum().backward()
    assert_same(y.grad, np.full((2, 3), 3.0, np.float32))
    assert_same(x.grad, expected_x)

    x, h, y, z = _relu_chain()
    seen = []
    y.register_hook(lambda g: seen.append(g))
    z.sum().backward()
    assert_same(seen[0], np.full((2, 3), 3.0, np.float32))
    assert_same(x.grad, expected_x)

    x, h, y, z = _relu_chain()
    gy, gx = rg.autograd.grad(z.sum(), [y, x])
    assert_same(gy, np.full((2, 3), 3.0, np.float32))
    assert_same(gx, expected_x)

    x, h, y, _ = _relu_chain()
    g = rg.full((2, 3), 3.0)
    y.backward(g)
    assert_same(g, np.full((2, 3), 3.0, np.float32))
    assert_same(x.grad, expected_x)

    # One gradient feeding two ReLUs (add's backward passes it to both): each sees it whole.
    x = rg.tensor([[-1.0, 2.0, -3.0], [4.0, -5.0, 6.0]], requires_grad=True)
    a, b = rg.relu(x), rg.relu(-x)
    ((a + b) * 1).sum().backward()
    assert_same(x.grad, np.where(to_numpy(x.detach()) > 0, 1.0, -1.0).astype(np.float32))
