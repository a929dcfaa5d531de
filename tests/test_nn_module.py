# nn.Module and friends: Parameter, registration and attribute semantics, traversal order and
# prefixes, modes, zero_grad, dtype moves, state dicts, hooks, containers and printing. Where
# PyTorch is importable, the same construction runs under both and messages/reprs/gradients
# are compared (spelling 'torch.' as 'rustgrad.').
import copy
import pickle
import warnings
from collections import OrderedDict

import numpy as np
import pytest
import rustgrad as rg
from _helpers import assert_same, norm, to_numpy, torch_or_none

nn = rg.nn


def both(fn):
    """fn(module) under rustgrad and, where importable, under torch: (ours, theirs or None)."""
    torch = torch_or_none()
    return fn(rg), (fn(torch) if torch is not None else None)


def error_of(fn, lib):
    with pytest.raises(Exception) as info:
        fn(lib)
    return info.value


def same_error(fn, exc_type, contains=None):
    """fn raises exc_type under rustgrad; under torch too, with the same message (normalised)."""
    ours = error_of(fn, rg)
    assert type(ours) is exc_type, (type(ours), ours)
    got = norm(ours).replace("torch Tensor", "rustgrad Tensor")
    if contains is not None:
        assert contains in got
    torch = torch_or_none()
    if torch is not None:
        theirs = error_of(fn, torch)
        assert type(theirs) is exc_type
        assert got == norm(theirs).replace("torch Tensor", "rustgrad Tensor"), (str(ours), str(theirs))
    return got


class Small:
    """A net built through the public API of either library (`lib` is rustgrad or torch)."""

    @staticmethod
    def make(lib):
        class Net(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.w = lib.nn.Parameter(lib.tensor([[1.0, 2.0], [3.0, 4.0]]))
                self.register_buffer("scale", lib.tensor([2.0, 0.5]))
                self.register_buffer("tmp", lib.tensor([1.0]), persistent=False)
                self.inner = lib.nn.Sequential(OrderedDict(
                    [("a", Leaf.make(lib)), ("act", lib.nn.Tanh()), ("b", Leaf.make(lib))]))

            def forward(self, x):
                return self.inner(x @ self.w * self.scale)

        return Net()


class Leaf:
    @staticmethod
    def make(lib):
        class Affine(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.weight = lib.nn.Parameter(lib.tensor([[0.5, -1.0], [0.25, 2.0]]))
                self.bias = lib.nn.Parameter(lib.tensor([0.1, -0.2]))

            def forward(self, x):
                return x @ self.weight.t() + self.bias

        return Affine()


# ---- Parameter ----

def test_parameter_basics():
    p = nn.Parameter(rg.tensor([1.0, 2.0]))
    assert isinstance(p, rg.Tensor) and isinstance(p, nn.Parameter)
    assert p.requires_grad and p.is_leaf and p.grad_fn is None
    assert not nn.Parameter(rg.ones(2), requires_grad=False).requires_grad
    assert nn.Parameter().shape == (0,)
    y = p * 2
    assert type(y) is rg.Tensor and type(p.detach()) is rg.Tensor and type(p.data) is rg.Tensor
    # Built from a non-leaf: a new leaf sharing the values.
    x = rg.ones(2, requires_grad=True)
    q = nn.Parameter(x * 3)
    assert q.is_leaf and q.grad_fn is None
    assert_same(q, np.array([3.0, 3.0], np.float32))


def test_parameter_shares_memory_with_data():
    t = rg.zeros(3)
    p = nn.Parameter(t)
    with rg.no_grad():
        p.add_(1)
    assert_same(t, np.ones(3, np.float32))


def test_parameter_repr_matches_torch():
    ours, theirs = both(lambda lib: (repr(lib.nn.Parameter(lib.tensor([[1.0, 2.5], [3.0, 4.0]]))),
                                     str(lib.nn.Parameter(lib.tensor([1.0]), requires_grad=False))))
    assert ours[0] == "Parameter containing:\ntensor([[1.0000, 2.5000],\n        [3.0000, 4.0000]], requires_grad=True)"
    assert ours[1] == "Parameter containing:\ntensor([1.])"
    if theirs is not None:
        assert ours == tuple(norm(s) for s in theirs)


def test_parameter_deepcopy_and_pickle():
    p = nn.Parameter(rg.tensor([1.0, -2.0]))
    for q in (copy.deepcopy(p), pickle.loads(pickle.dumps(p))):
        assert type(q) is nn.Parameter and q.requires_grad
        assert q.data_ptr() != p.data_ptr()
        assert_same(q, np.array([1.0, -2.0], np.float32))
    frozen = pickle.loads(pickle.dumps(nn.Parameter(rg.ones(2, dtype=rg.float64), requires_grad=False)))
    assert not frozen.requires_grad and frozen.dtype == rg.float64


def test_buffer_marker():
    m = nn.Module()
    m.b = nn.Buffer(rg.ones(2))
    m.c = nn.Buffer(rg.zeros(1), persistent=False)
    assert [n for n, _ in m.named_buffers()] == ["b", "c"]
    assert list(m.state_dict()) == ["b"]


# ---- registration and attribute semantics ----

def test_attribute_registration_order_and_kinds():
    m = Small.make(rg)
    assert list(m._parameters) == ["w"]
    assert list(m._buffers) == ["scale", "tmp"]
    assert list(m._modules) == ["inner"]
    assert m.w is m._parameters["w"] and m.inner is m._modules["inner"]
    assert "w" not in m.__dict__ and "inner" not in m.__dict__
    m.plain = 3
    assert m.__dict__["plain"] == 3


def test_reassignments_move_between_kinds():
    m = nn.Module()
    m.x = rg.ones(1)  # a plain attribute
    m.x = nn.Parameter(rg.ones(1))
    assert "x" in m._parameters and "x" not in m.__dict__
    m.x = None  # a parameter slot may hold None
    assert m._parameters["x"] is None and list(m.parameters()) == []
    m.register_buffer("b", rg.zeros(2))
    m.b = rg.ones(2)  # stays a buffer
    assert_same(m._buffers["b"], np.ones(2, np.float32))
    m.b = nn.Identity()  # a module replaces the buffer
    assert "b" in m._modules and "b" not in m._buffers
    del m.b
    assert "b" not in m._modules
    del m.x
    assert "x" not in m._parameters
    with pytest.raises(AttributeError):
        del m.nothing


def test_assignment_errors_match_torch():
    def param_as_tensor(lib):
        m = lib.nn.Linear(2, 2)
        m.weight = lib.zeros(2, 2)

    same_error(param_as_tensor, TypeError, "cannot assign 'rustgrad.FloatTensor' as parameter 'weight' "
                                           "(rustgrad.nn.Parameter or None expected)")

    def module_as_int(lib):
        m = lib.nn.Sequential(lib.nn.ReLU())
        setattr(m, "0", 3)

    same_error(module_as_int, TypeError, "cannot assign 'int' as child module '0'")

    def buffer_as_list(lib):
        m = lib.nn.Module()
        m.register_buffer("b", lib.zeros(1))
        m.b = [1]

    same_error(buffer_as_list, TypeError)

    def missing(lib):
        return lib.nn.Linear(2, 2).nothing

    same_error(missing, AttributeError, "'Linear' object has no attribute 'nothing'")

    def before_init(lib):
        class Bad(lib.nn.Module):
            def __init__(self):
                self.w = lib.nn.Parameter(lib.zeros(1))

        Bad()

    same_error(before_init, AttributeError, "cannot assign parameters before Module.__init__() call")


@pytest.mark.parametrize("case", ["dot", "empty", "exists", "type"])
def test_register_errors_match_torch(case):
    def run(lib):
        m = lib.nn.Module()
        m.attr = 1
        if case == "dot":
            m.register_buffer("a.b", lib.zeros(1))
        elif case == "empty":
            m.register_parameter("", lib.nn.Parameter(lib.zeros(1)))
        elif case == "exists":
            m.add_module("attr", lib.nn.ReLU())
        else:
            m.register_buffer("b", [1.0])

    same_error(run, TypeError if case == "type" else KeyError)


def test_register_parameter_rejects_non_leaf_and_plain_tensor():
    m = nn.Module()
    with pytest.raises(TypeError) as info:
        m.register_parameter("p", rg.zeros(1))
    assert norm(info.value).startswith("cannot assign 'rustgrad.FloatTensor' object to parameter 'p'")
    with pytest.raises(TypeError, match="is not a Module subclass"):
        m.add_module("x", 3)
    with pytest.raises(TypeError, match="module name should be a string"):
        m.add_module(1, nn.ReLU())


def test_module_init_rejects_arguments():
    with pytest.raises(TypeError, match="takes 1 positional argument but 2 were given"):
        nn.Module(1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'x'"):
        nn.Module(x=1)


def test_forward_missing_raises():
    with pytest.raises(NotImplementedError, match='Module \\[Module\\] is missing the required "forward" function'):
        nn.Module()(rg.ones(1))


def test_get_submodule_parameter_buffer():
    m = Small.make(rg)
    assert m.get_submodule("inner.a") is m.inner.a
    assert m.get_parameter("inner.b.bias") is m.inner.b.bias
    assert m.get_buffer("scale") is m.scale
    with pytest.raises(AttributeError, match="has no attribute `zz`"):
        m.get_submodule("inner.zz")
    with pytest.raises(AttributeError, match="is not an nn.Parameter"):
        m.get_parameter("scale")


def test_dir_lists_members():
    m = Small.make(rg)
    d = dir(m)
    for name in ("w", "scale", "tmp", "inner", "forward", "training"):
        assert name in d
    assert d == sorted(d)
    assert "0" not in dir(nn.Sequential(nn.ReLU()))


# ---- traversal ----

def test_named_members_order_and_prefixes_match_torch():
    def names(lib):
        m = Small.make(lib)
        return ([n for n, _ in m.named_parameters()], [n for n, _ in m.named_parameters(prefix="net")],
                [n for n, _ in m.named_parameters(recurse=False)], [n for n, _ in m.named_buffers()],
                [n for n, _ in m.named_modules()], [n for n, _ in m.named_modules(prefix="root")],
                [n for n, _ in m.named_children()], [n for n, _ in m.inner.named_children()],
                len(list(m.parameters())), len(list(m.buffers())), len(list(m.modules())))

    ours, theirs = both(names)
    assert ours[0] == ["w", "inner.a.weight", "inner.a.bias", "inner.b.weight", "inner.b.bias"]
    assert ours[1][0] == "net.w" and ours[3] == ["scale", "tmp"]
    assert ours[4] == ["", "inner", "inner.a", "inner.act", "inner.b"]
    if theirs is not None:
        assert ours == theirs


def test_shared_modules_and_parameters_deduplicated():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias"]
    assert [n for n, _ in seq.named_parameters(remove_duplicate=False)] == \
        ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert [n for n, _ in seq.named_modules()] == ["", "0", "1"]
    assert len(list(seq.modules(remove_duplicate=False))) == 4
    assert len(list(seq.children())) == 2
    seq.add_module("tied", nn.Module())
    seq.tied.w = lin.weight
    assert len(list(seq.parameters())) == 2


def test_apply_visits_children_first():
    seen = []
    m = Small.make(rg)
    assert m.apply(lambda mod: seen.append(type(mod).__name__)) is m
    assert seen == ["Affine", "Tanh", "Affine", "Sequential", "Net"]


# ---- modes, gradients, dtypes ----

def test_train_eval_propagate():
    m = Small.make(rg)
    assert m.training and m.inner.a.training
    assert m.eval() is m
    assert not any(mod.training for mod in m.modules())
    m.inner.train()
    assert not m.training and m.inner.act.training
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        m.train(1)


def test_zero_grad_and_requires_grad():
    m = Small.make(rg)
    m(rg.ones(1, 2)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad(set_to_none=False)
    for p in m.parameters():
        assert p.grad is not None and not p.grad.any().item()
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    assert m.requires_grad_(False) is m
    assert not any(p.requires_grad for p in m.parameters())


def test_double_float_to_keep_parameter_objects():
    m = Small.make(rg)
    w = m.w
    m(rg.ones(1, 2)).sum().backward()
    assert m.double() is m
    assert m.w is w and w.dtype == rg.float64 and w.grad.dtype == rg.float64
    assert m.scale.dtype == rg.float64 and m.inner.a.bias.dtype == rg.float64
    out = m(rg.ones(1, 2, dtype=rg.float64))
    m.zero_grad()
    out.sum().backward()
    assert w.grad.dtype == rg.float64
    m.to(rg.float32)
    assert w.dtype == rg.float32
    m.to(dtype=rg.float64)
    assert w.dtype == rg.float64
    m.to(rg.zeros(1))
    assert w.dtype == rg.float32
    assert m.to("cpu") is m and m.cpu() is m
    m.float()
    assert m.w.dtype == rg.float32


def test_dtype_moves_leave_integer_buffers():
    bn = nn.BatchNorm1d(3)
    bn.double()
    assert bn.running_mean.dtype == rg.float64 and bn.num_batches_tracked.dtype == rg.int64
    bn.to(rg.float32)
    assert bn.num_batches_tracked.dtype == rg.int64
    bn.type(rg.float64)
    assert bn.num_batches_tracked.dtype == rg.float64  # type() converts everything, as in torch


def test_to_rejects_integer_dtype_and_bad_args():
    with pytest.raises(TypeError, match="nn.Module.to only accepts floating point"):
        nn.Linear(1, 1).to(rg.int64)


def test_cuda_raises_like_tensor_cuda():
    if rg.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(Exception) as mod_err:
        nn.Linear(1, 1).cuda()
    with pytest.raises(Exception) as t_err:
        rg.ones(1).cuda()
    assert type(mod_err.value) is type(t_err.value) and str(mod_err.value) == str(t_err.value)


# ---- state dicts ----

def test_state_dict_keys_values_detached():
    m = Small.make(rg)
    sd = m.state_dict()
    assert isinstance(sd, OrderedDict)
    assert list(sd) == ["w", "scale", "inner.a.weight", "inner.a.bias", "inner.b.weight", "inner.b.bias"]
    assert not sd["w"].requires_grad and type(sd["w"]) is rg.Tensor
    assert sd["w"].data_ptr() == m.w.data_ptr()  # detached, not copied
    assert sd._metadata[""]["version"] == 1 and "inner.a" in sd._metadata
    kept = m.state_dict(keep_vars=True)
    assert kept["w"] is m.w
    assert list(m.state_dict(prefix="p.")) [0] == "p.w"
    ours, theirs = both(lambda lib: list(Small.make(lib).state_dict()))
    if theirs is not None:
        assert ours == theirs


def test_state_dict_round_trip():
    a, b = Small.make(rg), Small.make(rg)
    with rg.no_grad():
        for p in a.parameters():
            p.mul_(3)
        a.scale.fill_(7)
    w = b.w
    res = b.load_state_dict(a.state_dict())
    assert res.missing_keys == [] and res.unexpected_keys == []
    assert repr(res) == "<All keys matched successfully>"
    assert b.w is w  # copied in place
    for (n, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
        assert_same(q, to_numpy(p))
    assert b.w.requires_grad and b.w.grad_fn is None


def test_load_state_dict_errors_match_torch():
    def load(lib, edit, strict=True):
        m = Small.make(lib)
        sd = m.state_dict()
        edit(lib, sd)
        return m.load_state_dict(sd, strict=strict)

    def mismatch(lib, sd):
        sd["inner.a.bias"] = lib.zeros(3)

    def missing_and_extra(lib, sd):
        del sd["scale"], sd["inner.b.weight"]
        sd["extra"] = lib.zeros(1)
        sd["inner.zz.w"] = lib.zeros(1)
        sd["inner.a.nothing"] = lib.zeros(1)

    err = same_error(lambda lib: load(lib, mismatch), RuntimeError)
    assert err == ("Error(s) in loading state_dict for Net:\n\tsize mismatch for inner.a.bias: copying a param "
                        "with shape rustgrad.Size([3]) from checkpoint, the shape in current model is "
                        "rustgrad.Size([2]).")
    err = same_error(lambda lib: load(lib, missing_and_extra), RuntimeError)
    assert err.startswith('Error(s) in loading state_dict for Net:\n\tMissing key(s) in state_dict: "scale", '
                               '"inner.b.weight". \n\tUnexpected key(s) in state_dict: "extra"')

    ours, theirs = both(lambda lib: repr(load(lib, missing_and_extra, strict=False)))
    assert ours == ("_IncompatibleKeys(missing_keys=['scale', 'inner.b.weight'], "
                    "unexpected_keys=['extra', 'inner.zz.w', 'inner.a.nothing'])")
    if theirs is not None:
        assert ours == theirs
    # A shape mismatch is an error even when not strict.
    same_error(lambda lib: load(lib, mismatch, strict=False), RuntimeError)
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like"):
        nn.Linear(1, 1).load_state_dict([1])


def test_load_state_dict_assign():
    m = nn.Linear(2, 1)
    new_w = rg.tensor([[5.0, 6.0]])
    m.load_state_dict({"weight": new_w, "bias": rg.tensor([1.0])}, assign=True)
    assert isinstance(m.weight, nn.Parameter) and m.weight.requires_grad
    assert m.weight.data_ptr() == new_w.data_ptr()


def test_batchnorm_old_checkpoint_gets_num_batches_tracked():
    bn = nn.BatchNorm1d(2)
    sd = bn.state_dict()
    assert list(sd) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    del sd["num_batches_tracked"]
    sd._metadata[""]["version"] = 1
    assert repr(nn.BatchNorm1d(2).load_state_dict(sd)) == "<All keys matched successfully>"
    sd._metadata[""]["version"] = 2
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "num_batches_tracked"'):
        nn.BatchNorm1d(2).load_state_dict(sd)


def test_state_dict_hooks_and_extra_state():
    class WithExtra(nn.Module):
        def __init__(self):
            super().__init__()
            self.state = "s0"

        def get_extra_state(self):
            return {"s": self.state}

        def set_extra_state(self, st):
            self.state = st["s"]

    a, b = WithExtra(), WithExtra()
    a.state = "s1"
    sd = a.state_dict()
    assert sd["_extra_state"] == {"s": "s1"}
    b.load_state_dict(sd)
    assert b.state == "s1"
    seen = []
    h = a.register_load_state_dict_post_hook(lambda mod, keys: seen.append(list(keys.missing_keys)))
    a.load_state_dict(sd)
    h.remove()
    a.load_state_dict(sd)
    assert seen == [[]]


def test_module_pickle_and_deepcopy():
    m = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    for c in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert repr(c) == repr(m)
        assert c[0].weight is not m[0].weight and isinstance(c[0].weight, nn.Parameter)
        assert_same(c[0].weight, to_numpy(m[0].weight))


def test_module_with_buffers_pickles():
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    m[1].running_mean.add_(0.5)
    c = pickle.loads(pickle.dumps(m))
    assert repr(c) == repr(m)
    for (k, v), (k2, v2) in zip(m.state_dict().items(), c.state_dict().items()):
        assert k == k2 and v.dtype == v2.dtype
        assert_same(v2, to_numpy(v))
    x = rg.arange(6.0).reshape(2, 3).t()  # a strided view pickles by value
    y = pickle.loads(pickle.dumps(x))
    assert_same(y, to_numpy(x))
    assert not y.requires_grad and pickle.loads(pickle.dumps(x.requires_grad_())).requires_grad


# ---- hooks ----

def test_forward_hooks_modify_and_remove():
    m = Leaf.make(rg)
    calls = []
    pre = m.register_forward_pre_hook(lambda mod, args: (args[0] * 2,))
    post = m.register_forward_hook(lambda mod, args, out: out + 100)
    first = m.register_forward_hook(lambda mod, args, out: calls.append("first"), prepend=True)
    x = rg.tensor([[1.0, 1.0]])
    assert_same(m(x), to_numpy(x * 2 @ m.weight.t() + m.bias + 100))
    assert calls == ["first"]
    pre.remove(), post.remove(), first.remove()
    assert_same(m(x), to_numpy(x @ m.weight.t() + m.bias))
    with m.register_forward_pre_hook(lambda mod, args: args[0] * 0):  # a bare value is wrapped in a tuple
        assert_same(m(x), to_numpy(m.bias.unsqueeze(0)))
    assert_same(m(x), to_numpy(x @ m.weight.t() + m.bias))


def test_forward_hooks_with_kwargs_and_always_call():
    class K(nn.Module):
        def forward(self, x, scale=1.0):
            if scale < 0:
                raise ValueError("negative")
            return x * scale

    m = K()
    m.register_forward_pre_hook(lambda mod, args, kwargs: (args, {"scale": kwargs.get("scale", 1.0) * 3}),
                                with_kwargs=True)
    seen = []
    m.register_forward_hook(lambda mod, args, kwargs, out: seen.append(kwargs["scale"]), with_kwargs=True)
    assert_same(m(rg.ones(1), scale=2.0), np.array([6.0], np.float32))
    assert seen == [6.0]
    always = []
    m2 = K()
    m2.register_forward_hook(lambda mod, args, out: always.append(out), always_call=True)
    with pytest.raises(ValueError):
        m2(rg.ones(1), scale=-1.0)
    assert always == [None]
    bad = K()
    bad.register_forward_pre_hook(lambda mod, args, kwargs: 3, with_kwargs=True)
    with pytest.raises(RuntimeError, match="forward pre-hook must return None or a tuple"):
        bad(rg.ones(1))


def _hooked_run(lib, case):
    """A two-input, three-output module with a full backward hook; returns the hook's records
    and the input gradient as NumPy."""
    class M(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = lib.nn.Parameter(lib.tensor([[1.0, 2.0], [3.0, 4.0]]))

        def forward(self, x, y, k=3):
            return x @ self.w * 2, y * y, 5

    m = M()
    log = []

    def hook(mod, gi, go):
        log.append([None if g is None else to_numpy(g).tolist() for g in gi + go])
        if case == "replace":
            return (gi[0] * 10,) + gi[1:]

    m.register_full_backward_hook(hook)
    x = lib.tensor([[1.0, -1.0]], requires_grad=True)
    y = lib.tensor([2.0, 3.0], requires_grad=case == "y_grad")
    if case == "y_number":
        y = 3.0
    a, b, c = m(x, y)
    loss = a.sum() * 3
    if case == "y_grad":
        loss = loss + b.sum()
    loss.backward()
    return log, to_numpy(x.grad).tolist()


@pytest.mark.parametrize("case", ["plain", "y_grad", "y_number", "replace"])
def test_full_backward_hook_values(case):
    ours, theirs = both(lambda lib: _hooked_run(lib, case))
    log, grad = ours
    assert len(log) == 1
    assert log[0][0] == [[18.0, 42.0]] and log[0][2] == [[3.0, 3.0]]
    assert grad == ([[180.0, 420.0]] if case == "replace" else [[18.0, 42.0]])
    if theirs is not None:
        assert ours == theirs


def test_full_backward_hook_in_sequential_and_pre_hook():
    def run(lib):
        seq = lib.nn.Sequential(lib.nn.Tanh(), lib.nn.Sigmoid())
        log = []
        seq[0].register_full_backward_hook(lambda mod, gi, go: log.append((to_numpy(gi[0]), to_numpy(go[0]))))
        seq[1].register_full_backward_pre_hook(lambda mod, go: (go[0] * 2,))
        x = lib.tensor([0.5, -0.25], requires_grad=True)
        seq(x).sum().backward()
        return log, to_numpy(x.grad)

    (log, grad), theirs = both(run)
    x = np.array([0.5, -0.25])
    s = 1 / (1 + np.exp(-np.tanh(x)))
    go = 2 * s * (1 - s)
    np.testing.assert_allclose(log[0][1], go, rtol=1e-6)
    np.testing.assert_allclose(log[0][0], go * (1 - np.tanh(x) ** 2), rtol=1e-6)
    np.testing.assert_allclose(grad, log[0][0], rtol=1e-6)
    if theirs is not None:
        np.testing.assert_allclose(grad, theirs[1], rtol=1e-6)


def test_full_backward_hook_without_input_grad_fires_on_outputs():
    m = Leaf.make(rg)
    seen = []
    m.register_full_backward_hook(lambda mod, gi, go: seen.append((gi, go)))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        m(rg.ones(1, 2)).sum().backward()
    assert any("Full backward hook is firing" in str(x.message) for x in w)
    assert seen[0][0] == (None,)
    assert_same(seen[0][1][0], np.ones((1, 2), np.float32))
    assert_same(m.bias.grad, np.ones(2, np.float32))


def test_backward_hook_wrong_count_and_removal():
    m = Leaf.make(rg)
    h = m.register_full_backward_hook(lambda mod, gi, go: (gi[0], gi[0]))
    x = rg.ones(1, 2, requires_grad=True)
    with pytest.raises(RuntimeError, match="Backward hook returned an invalid number of grad_input, got 2, but "
                                           "expected 1"):
        m(x).sum().backward()
    h.remove()
    assert not m._backward_hooks
    m(x).sum().backward()


# ---- containers ----

def test_sequential_indexing_and_editing():
    a, b, c = nn.ReLU(), nn.Tanh(), nn.Sigmoid()
    s = nn.Sequential(a, b)
    assert len(s) == 2 and s[0] is a and s[-1] is b and list(s) == [a, b]
    sub = s[1:]
    assert type(sub) is nn.Sequential and list(sub._modules) == ["1"] and sub[0] is b
    s.append(c)
    assert s[2] is c
    s.insert(0, nn.Identity())
    assert list(s._modules) == ["0", "1", "2", "3"] and s[1] is a
    del s[0]
    assert list(s) == [a, b, c] and list(s._modules) == ["0", "1", "2"]
    s[1] = nn.ELU()
    assert isinstance(s[1], nn.ELU)
    s.extend(nn.Sequential(nn.ReLU()))
    assert len(s) == 4
    t = s + nn.Sequential(nn.Tanh())
    assert len(t) == 5 and len(s) == 4
    assert s.pop(0) is a and len(s) == 3
    with pytest.raises(IndexError, match="index 10 is out of range"):
        s[10]
    with pytest.raises(ValueError, match="add operator supports only objects of Sequential class"):
        s + nn.ReLU()
    named = nn.Sequential(OrderedDict([("first", nn.ReLU()), ("second", nn.Tanh())]))
    assert named.first is named[0] and list(named._modules) == ["first", "second"]
    x = rg.tensor([-1.0, 2.0])
    assert_same(nn.Sequential(nn.ReLU(), nn.Tanh())(x), np.tanh(np.maximum([-1.0, 2.0], 0)).astype(np.float32))


def test_module_list_and_dict():
    layers = nn.ModuleList([nn.ReLU(), nn.Tanh()])
    layers.append(nn.Sigmoid())
    layers.extend([nn.ELU()])
    layers.insert(1, nn.Identity())
    assert [type(m).__name__ for m in layers] == ["ReLU", "Identity", "Tanh", "Sigmoid", "ELU"]
    assert isinstance(layers[-1], nn.ELU) and len(layers[1:3]) == 2
    del layers[1]
    assert list(layers._modules) == ["0", "1", "2", "3"]
    layers += [nn.ReLU()]
    assert len(layers) == 5 and len(layers + nn.ModuleList([nn.ReLU()])) == 6
    with pytest.raises(TypeError, match="ModuleList.extend should be called with an iterable"):
        layers.extend(3)

    d = nn.ModuleDict({"b": nn.ReLU(), "a": nn.Tanh()})
    assert list(d.keys()) == ["b", "a"] and "a" in d and len(d) == 2
    d["c"] = nn.Identity()
    d.update([("z", nn.ELU())])
    assert list(d) == ["b", "a", "c", "z"]
    assert isinstance(d.pop("a"), nn.Tanh) and "a" not in d
    holder = nn.Module()
    holder.blocks = nn.ModuleList([nn.Linear(1, 1), nn.Linear(1, 1)])
    assert [n for n, _ in holder.named_parameters()] == ["blocks.0.weight", "blocks.0.bias", "blocks.1.weight",
                                                         "blocks.1.bias"]


def test_parameter_list_and_dict():
    pl = nn.ParameterList([nn.Parameter(rg.ones(2)), rg.zeros(3)])
    assert len(pl) == 2 and all(isinstance(p, nn.Parameter) for p in pl)
    pl.append(rg.ones(1))
    assert [n for n, _ in pl.named_parameters()] == ["0", "1", "2"]
    assert len(pl[1:]) == 2
    with pytest.raises(RuntimeError, match="ParameterList should not be called."):
        pl(1)
    pd = nn.ParameterDict({"b": rg.ones(1), "a": nn.Parameter(rg.zeros(2))})
    assert list(pd) == ["a", "b"]  # a plain dict is sorted, as in torch
    pd["c"] = rg.ones(3)
    assert isinstance(pd["c"], nn.Parameter) and "c" in pd and len(pd) == 3
    assert pd.get("zz") is None and isinstance(pd.pop("c"), nn.Parameter)
    with pytest.raises(TypeError, match="Index given to ParameterDict cannot be used as a key"):
        pd[1] = rg.ones(1)


# ---- printing ----

def _zoo(lib):
    nn_ = lib.nn

    class Block(nn_.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn_.Conv2d(3, 8, 3, padding=1, bias=False)
            self.bn = nn_.BatchNorm2d(8)
            self.act = nn_.ReLU(inplace=True)

    class Net(nn_.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn_.Sequential(Block(), nn_.MaxPool2d(2))
            self.blocks = nn_.ModuleList([nn_.Linear(4, 4) for _ in range(3)] + [nn_.Dropout(0.2)])
            self.heads = nn_.ModuleDict({"cls": nn_.Linear(4, 2), "aux": nn_.Identity()})
            self.params = nn_.ParameterList([nn_.Parameter(lib.ones(2, 3))])
            self.pdict = nn_.ParameterDict({"scale": nn_.Parameter(lib.ones(1))})
            self.empty = nn_.Sequential()
            self.none = None

    return repr(Net())


def test_repr_of_nested_model_matches_torch():
    ours, theirs = both(_zoo)
    assert "(0-2): 3 x Linear(in_features=4, out_features=4, bias=True)" in ours
    assert "(conv): Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)" in ours
    if theirs is not None:
        assert norm(ours) == norm(theirs)


def test_extra_repr_multiline_and_custom():
    class Custom(nn.Module):
        def extra_repr(self):
            return "a=1\nb=2"

    assert repr(Custom()) == "Custom(\n  a=1\n  b=2\n)"
    outer = nn.Module()
    outer.c = Custom()
    assert repr(outer) == "Module(\n  (c): Custom(\n    a=1\n    b=2\n  )\n)"


def test_removable_handle_context_and_ids():
    m = nn.Module()
    h1 = m.register_forward_hook(lambda *a: None)
    h2 = m.register_forward_hook(lambda *a: None)
    assert h2.id > h1.id and list(m._forward_hooks) == [h1.id, h2.id]
    h1.remove()
    h1.remove()  # removing twice is harmless
    assert list(m._forward_hooks) == [h2.id]
