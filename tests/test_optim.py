# rustgrad.optim: SGD/Adam/AdamW/RMSprop/Adagrad against NumPy references and PyTorch (params,
# state tensors, state dicts step by step), state_dict round trips, zero_grad, param groups,
# hooks, closures and argument validation.
import copy
import importlib

import numpy as np
import pytest

from _helpers import norm, params, requires_torch, to_numpy, torch_or_none

rg = importlib.import_module("rustgrad")


def _optim():
    # `rustgrad.optim` once the namespace imports it; the subpackage import works before that.
    return getattr(rg, "optim", None) or importlib.import_module("rustgrad.optim")


optim = _optim()

RNG = np.random.default_rng(0)
W0 = RNG.standard_normal((3, 4))
B0 = RNG.standard_normal(3)
X = RNG.standard_normal((5, 4))
Y = RNG.standard_normal((5, 3))


def make_params(mod, dtype="float32"):
    """(weight, bias) leaves with the fixed initial values, in `mod` (rustgrad or torch)."""
    return [mod.tensor(np.array(a, dtype=dtype), requires_grad=True) for a in (W0, B0)]


def quadratic_loss(mod, w, b, dtype="float32"):
    """A least-squares loss whose gradients each framework computes with its own autograd."""
    x, y = mod.tensor(X.astype(dtype)), mod.tensor(Y.astype(dtype))
    return ((x @ w.t() + b - y) ** 2).mean()


def run(mod, name, kwargs, steps, dtype="float32", opt_module=None):
    """Take `steps` steps of optimizer `name`; returns (params, optimizer, params after each step)."""
    opt_module = opt_module or (optim if mod is rg else mod.optim)
    ps = make_params(mod, dtype)
    opt = getattr(opt_module, name)(ps, **kwargs)
    history = []
    for _ in range(steps):
        set_grads(mod, ps, dtype)
        opt.step()
        history.append([to_numpy(p).copy() for p in ps])
    return ps, opt, history


def set_grads(mod, ps, dtype="float32"):
    """Give (weight, bias) the loss gradients at their current values, computed once in float64
    by NumPy so that both frameworks step with bit-identical gradients."""
    grads = numpy_grads(*(to_numpy(p).astype(np.float64) for p in ps))
    for p, g in zip(ps, grads):
        p.grad = mod.tensor(g.astype(dtype))


CASES = [
    ("sgd_plain", "SGD", dict(lr=0.1)),
    ("sgd_momentum", "SGD", dict(lr=0.1, momentum=0.9)),
    ("sgd_dampening", "SGD", dict(lr=0.05, momentum=0.8, dampening=0.3)),
    ("sgd_nesterov", "SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("sgd_wd", "SGD", dict(lr=0.1, momentum=0.5, weight_decay=0.1)),
    ("sgd_maximize", "SGD", dict(lr=0.01, momentum=0.9, maximize=True)),
    ("sgd_default_lr", "SGD", dict()),
    ("adam", "Adam", dict(lr=0.05)),
    ("adam_betas_eps", "Adam", dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6)),
    ("adam_wd", "Adam", dict(lr=0.05, weight_decay=0.1)),
    ("adam_amsgrad", "Adam", dict(lr=0.05, amsgrad=True)),
    ("adam_maximize", "Adam", dict(lr=0.05, maximize=True, amsgrad=True)),
    ("adam_decoupled", "Adam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
    ("adamw", "AdamW", dict(lr=0.05)),
    ("adamw_wd_amsgrad", "AdamW", dict(lr=0.05, weight_decay=0.3, amsgrad=True)),
    ("adamw_maximize", "AdamW", dict(lr=0.05, maximize=True)),
    ("rmsprop", "RMSprop", dict(lr=0.01)),
    ("rmsprop_centered", "RMSprop", dict(lr=0.01, centered=True)),
    ("rmsprop_momentum", "RMSprop", dict(lr=0.01, momentum=0.9, alpha=0.9)),
    ("rmsprop_all", "RMSprop", dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.1, eps=1e-4)),
    ("rmsprop_maximize", "RMSprop", dict(lr=0.01, maximize=True, centered=True)),
    ("adagrad", "Adagrad", dict(lr=0.1)),
    ("adagrad_lr_decay", "Adagrad", dict(lr=0.1, lr_decay=0.05)),
    ("adagrad_init_acc", "Adagrad", dict(lr=0.1, initial_accumulator_value=0.5, eps=1e-6)),
    ("adagrad_wd_maximize", "Adagrad", dict(lr=0.1, weight_decay=0.1, maximize=True)),
]


def assert_state_equal(actual, expected, rtol=1e-6, atol=1e-6):
    """Two state dicts (rustgrad and torch, or rustgrad and rustgrad) agree key by key."""
    assert sorted(actual["state"]) == sorted(expected["state"])
    for idx, exp_state in expected["state"].items():
        act_state = actual["state"][idx]
        assert list(act_state) == list(exp_state)
        for key, exp in exp_state.items():
            act = act_state[key]
            assert norm(act.dtype) == norm(exp.dtype), key
            assert tuple(act.shape) == tuple(exp.shape), key
            np.testing.assert_allclose(to_numpy(act), to_numpy(exp), rtol=rtol, atol=atol, err_msg=key)
    assert len(actual["param_groups"]) == len(expected["param_groups"])
    for act_group, exp_group in zip(actual["param_groups"], expected["param_groups"]):
        assert act_group == exp_group


# ---- PyTorch parity ------------------------------------------------------------------------

@requires_torch
@pytest.mark.parametrize("name, kwargs", params(CASES))
def test_matches_torch_every_step(name, kwargs):
    torch = torch_or_none()
    ps, opt, hist = run(rg, name, kwargs, 8)
    tps, topt, thist = run(torch, name, kwargs, 8)
    for step, (got, exp) in enumerate(zip(hist, thist)):
        for g, e in zip(got, exp):
            np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-6, err_msg=f"step {step}")
    assert_state_equal(opt.state_dict(), topt.state_dict())
    assert norm(repr(opt)) == norm(repr(topt))


@requires_torch
@pytest.mark.parametrize("name, kwargs", params(CASES[1:2] + CASES[10:11] + CASES[19:20] + CASES[22:23]))
def test_matches_torch_float64(name, kwargs):
    torch = torch_or_none()
    _, opt, hist = run(rg, name, kwargs, 6, dtype="float64")
    _, topt, thist = run(torch, name, kwargs, 6, dtype="float64")
    for got, exp in zip(hist, thist):
        for g, e in zip(got, exp):
            assert g.dtype == np.float64
            np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)
    assert_state_equal(opt.state_dict(), topt.state_dict(), rtol=1e-12, atol=1e-12)


@requires_torch
@pytest.mark.parametrize("name, kwargs", params([c for c in CASES if c[0] in
                                                  ("sgd_momentum", "adam_amsgrad", "rmsprop_all", "adagrad")]))
def test_torch_state_dict_loads_by_value(name, kwargs):
    """A torch optimizer's state dict, converted tensor by tensor, resumes identically here."""
    torch = torch_or_none()
    tps, topt, _ = run(torch, name, kwargs, 4)
    tsd = topt.state_dict()
    converted = {
        "state": {i: {k: rg.tensor(to_numpy(v).copy()) for k, v in s.items()} for i, s in tsd["state"].items()},
        "param_groups": copy.deepcopy(tsd["param_groups"]),
    }
    ps = [rg.tensor(to_numpy(p).copy(), requires_grad=True) for p in tps]
    opt = getattr(optim, name)(ps, **kwargs)
    opt.load_state_dict(converted)
    assert_state_equal(opt.state_dict(), tsd)
    for _ in range(4):
        for mod, o, pp in ((rg, opt, ps), (torch, topt, tps)):
            set_grads(mod, pp)
            o.step()
    for p, tp in zip(ps, tps):
        np.testing.assert_allclose(to_numpy(p), to_numpy(tp), rtol=1e-6, atol=1e-6)
    assert_state_equal(opt.state_dict(), topt.state_dict())


@requires_torch
def test_state_dict_loads_into_torch():
    torch = torch_or_none()
    ps, opt, _ = run(rg, "Adam", dict(lr=0.05, amsgrad=True), 3)
    sd = opt.state_dict()
    converted = {
        "state": {i: {k: torch.tensor(to_numpy(v).copy()) for k, v in s.items()} for i, s in sd["state"].items()},
        "param_groups": copy.deepcopy(sd["param_groups"]),
    }
    tps = [torch.tensor(to_numpy(p).copy(), requires_grad=True) for p in ps]
    topt = torch.optim.Adam(tps, lr=0.05, amsgrad=True)
    topt.load_state_dict(converted)
    assert_state_equal(sd, topt.state_dict())


@requires_torch
def test_param_groups_with_different_options_match_torch():
    torch = torch_or_none()
    results = []
    for mod, om in ((rg, optim), (torch, torch.optim)):
        w, b = make_params(mod)
        opt = om.SGD([{"params": [w]}, {"params": b, "lr": 0.01, "momentum": 0.5}], lr=0.1, momentum=0.9)
        for _ in range(5):
            opt.zero_grad()
            quadratic_loss(mod, w, b).backward()
            opt.step()
        results.append((to_numpy(w), to_numpy(b), opt.state_dict(), repr(opt)))
    (w, b, sd, r), (tw, tb, tsd, tr) = results
    np.testing.assert_allclose(w, tw, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(b, tb, rtol=1e-6, atol=1e-6)
    assert_state_equal(sd, tsd)
    assert norm(r) == norm(tr)


# ---- NumPy references (run without torch) --------------------------------------------------

def numpy_grads(w, b):
    """Gradients of quadratic_loss with respect to w and b, in float64."""
    r = X @ w.T + b - Y
    g = 2 * r / r.size
    return g.T @ X, g.sum(0)


def numpy_sgd(steps, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
    ps, bufs, out = [W0.copy(), B0.copy()], [None, None], []
    for _ in range(steps):
        for i, g in enumerate(numpy_grads(*ps)):
            g = -g if maximize else g
            g = g + weight_decay * ps[i]
            if momentum:
                bufs[i] = g.copy() if bufs[i] is None else momentum * bufs[i] + (1 - dampening) * g
                g = g + momentum * bufs[i] if nesterov else bufs[i]
            ps[i] = ps[i] - lr * g
        out.append([p.copy() for p in ps])
    return out, bufs


def numpy_adam(steps, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False):
    b1, b2 = betas
    ps = [W0.copy(), B0.copy()]
    m, v, vmax = [np.zeros_like(p) for p in ps], [np.zeros_like(p) for p in ps], [np.zeros_like(p) for p in ps]
    out = []
    for t in range(1, steps + 1):
        for i, g in enumerate(numpy_grads(*ps)):
            if decoupled:
                ps[i] = ps[i] * (1 - lr * weight_decay)
            else:
                g = g + weight_decay * ps[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            vmax[i] = np.maximum(vmax[i], v[i])
            denom = np.sqrt(vmax[i] if amsgrad else v[i]) / np.sqrt(1 - b2 ** t) + eps
            ps[i] = ps[i] - lr / (1 - b1 ** t) * m[i] / denom
        out.append([p.copy() for p in ps])
    return out, (m, v, vmax)


@pytest.mark.parametrize("kwargs", [
    dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.05, momentum=0.8, dampening=0.3),
    dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.05), dict(lr=0.02, momentum=0.9, maximize=True),
])
def test_sgd_matches_numpy(kwargs):
    _, opt, hist = run(rg, "SGD", kwargs, 7, dtype="float64")
    exp, bufs = numpy_sgd(7, **kwargs)
    for got, want in zip(hist, exp):
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
    if kwargs.get("momentum"):
        for i, buf in enumerate(bufs):
            np.testing.assert_allclose(to_numpy(opt.state_dict()["state"][i]["momentum_buffer"]), buf,
                                       rtol=1e-10, atol=1e-12)
    else:
        assert opt.state_dict()["state"] == {}


@pytest.mark.parametrize("name, kwargs, decoupled", [
    ("Adam", dict(lr=0.05), False),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1), False),
    ("Adam", dict(lr=0.05, amsgrad=True), False),
    ("AdamW", dict(lr=0.05, weight_decay=0.2, amsgrad=True), True),
])
def test_adam_matches_numpy(name, kwargs, decoupled):
    _, opt, hist = run(rg, name, kwargs, 7, dtype="float64")
    exp, (m, v, vmax) = numpy_adam(7, decoupled=decoupled, **kwargs)
    for got, want in zip(hist, exp):
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12)
    state = opt.state_dict()["state"]
    for i in range(2):
        np.testing.assert_allclose(to_numpy(state[i]["exp_avg"]), m[i], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(to_numpy(state[i]["exp_avg_sq"]), v[i], rtol=1e-9, atol=1e-12)
        if kwargs.get("amsgrad"):
            np.testing.assert_allclose(to_numpy(state[i]["max_exp_avg_sq"]), vmax[i], rtol=1e-9, atol=1e-12)
        assert state[i]["step"].item() == 7.0


def test_adagrad_and_rmsprop_match_numpy():
    _, opt, hist = run(rg, "Adagrad", dict(lr=0.1, lr_decay=0.1, initial_accumulator_value=0.2), 4, "float64")
    ps, sums = [W0.copy(), B0.copy()], [np.full_like(W0, 0.2), np.full_like(B0, 0.2)]
    for t in range(1, 5):
        for i, g in enumerate(numpy_grads(*ps)):
            sums[i] = sums[i] + g * g
            ps[i] = ps[i] - 0.1 / (1 + (t - 1) * 0.1) * g / (np.sqrt(sums[i]) + 1e-10)
    for g, w in zip(hist[-1], ps):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)

    _, opt, hist = run(rg, "RMSprop", dict(lr=0.01, alpha=0.9, centered=True, momentum=0.5), 4, "float64")
    ps = [W0.copy(), B0.copy()]
    sq, ga, buf = [np.zeros_like(p) for p in ps], [np.zeros_like(p) for p in ps], [np.zeros_like(p) for p in ps]
    for _ in range(4):
        for i, g in enumerate(numpy_grads(*ps)):
            sq[i] = 0.9 * sq[i] + 0.1 * g * g
            ga[i] = 0.9 * ga[i] + 0.1 * g
            avg = np.sqrt(sq[i] - ga[i] * ga[i]) + 1e-8
            buf[i] = 0.5 * buf[i] + g / avg
            ps[i] = ps[i] - 0.01 * buf[i]
    for g, w in zip(hist[-1], ps):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12)


# ---- state layout --------------------------------------------------------------------------

@pytest.mark.parametrize("name, kwargs, keys", [
    ("SGD", dict(momentum=0.9), ["momentum_buffer"]),
    ("Adam", dict(), ["step", "exp_avg", "exp_avg_sq"]),
    ("Adam", dict(amsgrad=True), ["step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"]),
    ("AdamW", dict(), ["step", "exp_avg", "exp_avg_sq"]),
    ("RMSprop", dict(), ["step", "square_avg"]),
    ("RMSprop", dict(momentum=0.9, centered=True), ["step", "square_avg", "momentum_buffer", "grad_avg"]),
    ("Adagrad", dict(), ["step", "sum"]),
])
def test_state_keys_and_dtypes(name, kwargs, keys):
    ps, opt, _ = run(rg, name, kwargs, 2)
    for p in ps:
        state = opt.state[p]
        assert list(state) == keys
        for key, value in state.items():
            if key == "step":
                assert value.dtype == rg.float32 and value.dim() == 0 and value.item() == 2.0
            else:
                assert value.dtype == p.dtype and tuple(value.shape) == tuple(p.shape)


def test_step_counter_follows_default_dtype():
    old = rg.get_default_dtype()
    rg.set_default_dtype(rg.float64)
    try:
        ps, opt, _ = run(rg, "Adam", dict(), 1)
        assert opt.state[ps[0]]["step"].dtype == rg.float64
    finally:
        rg.set_default_dtype(old)


def test_adagrad_state_exists_before_any_step():
    w, b = make_params(rg)
    opt = optim.Adagrad([w, b], initial_accumulator_value=0.25)
    assert opt.state[w]["step"].item() == 0.0
    np.testing.assert_array_equal(to_numpy(opt.state[b]["sum"]), np.full(3, 0.25, np.float32))


def test_state_dict_layout():
    w, b = make_params(rg)
    extra = rg.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([{"params": [w, b]}, {"params": [extra], "lr": 0.5}], lr=0.1, momentum=0.9)
    quadratic_loss(rg, w, b).backward()
    opt.step()
    sd = opt.state_dict()
    assert list(sd) == ["state", "param_groups"]
    assert list(sd["state"]) == [0, 1]  # `extra` had no gradient, so no state
    assert sd["param_groups"] == [
        {"lr": 0.1, "momentum": 0.9, "dampening": 0, "weight_decay": 0, "nesterov": False, "maximize": False,
         "foreach": None, "differentiable": False, "fused": None, "params": [0, 1]},
        {"params": [2], "lr": 0.5, "momentum": 0.9, "dampening": 0, "weight_decay": 0, "nesterov": False,
         "maximize": False, "foreach": None, "differentiable": False, "fused": None},
    ]
    assert [list(g)[-1] for g in sd["param_groups"]] == ["params", "params"]  # ids come last, as in PyTorch
    # the state dict holds the live state tensors, as PyTorch's does
    assert sd["state"][0]["momentum_buffer"] is opt.state[w]["momentum_buffer"]


@pytest.mark.parametrize("name, kwargs", params([c for c in CASES if c[0] in
                                                  ("sgd_nesterov", "adam_amsgrad", "adamw", "rmsprop_all",
                                                   "adagrad_lr_decay")]))
def test_state_dict_round_trip(name, kwargs):
    ps, opt, _ = run(rg, name, kwargs, 3)
    saved = copy.deepcopy(opt.state_dict())
    ps2 = [p.detach().clone().requires_grad_(True) for p in ps]
    opt2 = getattr(optim, name)(ps2, lr=123.0)  # options come back from the state dict
    opt2.load_state_dict(saved)
    assert_state_equal(opt2.state_dict(), opt.state_dict(), rtol=0, atol=0)
    assert opt2.param_groups[0]["params"][0] is ps2[0]
    for _ in range(3):
        for o, pp in ((opt, ps), (opt2, ps2)):
            o.zero_grad()
            quadratic_loss(rg, *pp).backward()
            o.step()
    for p, p2 in zip(ps, ps2):
        np.testing.assert_array_equal(to_numpy(p), to_numpy(p2))
    assert_state_equal(opt2.state_dict(), opt.state_dict(), rtol=0, atol=0)


def test_load_state_dict_casts_to_param_dtype_but_keeps_step():
    ps, opt, _ = run(rg, "Adam", dict(lr=0.05), 2)
    sd = opt.state_dict()
    sd = {"state": {i: {k: v.to(rg.float64) for k, v in s.items()} for i, s in sd["state"].items()},
          "param_groups": sd["param_groups"]}
    ps2 = make_params(rg)
    opt2 = optim.Adam(ps2)
    opt2.load_state_dict(sd)
    assert opt2.state[ps2[0]]["exp_avg"].dtype == rg.float32
    assert opt2.state[ps2[0]]["step"].dtype == rg.float64  # `step` is never cast


def test_load_state_dict_errors():
    w, b = make_params(rg)
    opt = optim.SGD([w, b], lr=0.1)
    other = optim.SGD([{"params": [w]}, {"params": [b]}], lr=0.1)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        opt.load_state_dict(other.state_dict())
    single = optim.SGD([w], lr=0.1)
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        opt.load_state_dict(single.state_dict())


# ---- behaviour -----------------------------------------------------------------------------

def test_updates_in_place():
    for name, kwargs in (("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", {}), ("RMSprop", {}), ("Adagrad", {})):
        w, b = make_params(rg)
        opt = getattr(optim, name)([w, b], **kwargs)
        ptr, version, before = w.data_ptr(), w._version, to_numpy(w).copy()
        quadratic_loss(rg, w, b).backward()
        opt.step()
        assert w.data_ptr() == ptr
        assert w._version > version
        assert w.is_leaf and w.requires_grad and w.grad_fn is None
        assert not np.array_equal(to_numpy(w), before)


def test_params_without_grad_are_skipped():
    w, b = make_params(rg)
    opt = optim.Adam([w, b], lr=0.1)
    (w * w).sum().backward()
    opt.step()
    np.testing.assert_array_equal(to_numpy(b), B0.astype(np.float32))
    assert b not in opt.state and len(opt.state) == 1


def test_zero_grad():
    w, b = make_params(rg)
    opt = optim.SGD([w, b], lr=0.1)
    quadratic_loss(rg, w, b).backward()
    ptr = w.grad.data_ptr()
    opt.zero_grad(set_to_none=False)
    assert w.grad is not None and w.grad.data_ptr() == ptr
    np.testing.assert_array_equal(to_numpy(w.grad), np.zeros((3, 4), np.float32))
    opt.zero_grad()
    assert w.grad is None and b.grad is None
    opt.zero_grad()  # no grads at all is fine
    # zeroed gradients still count as gradients: a step with them changes nothing for plain SGD
    quadratic_loss(rg, w, b).backward()
    opt.zero_grad(set_to_none=False)
    before = to_numpy(w).copy()
    opt.step()
    np.testing.assert_array_equal(to_numpy(w), before)


def test_closure_runs_with_grad_enabled():
    w, b = make_params(rg)
    opt = optim.SGD([w, b], lr=0.1)
    seen = []

    def closure():
        opt.zero_grad()
        seen.append(rg.is_grad_enabled())
        loss = quadratic_loss(rg, w, b)
        loss.backward()
        return loss

    with rg.no_grad():
        loss = opt.step(closure)
    assert seen == [True]
    assert abs(loss.item() - quadratic_loss(rg, *make_params(rg)).item()) < 1e-6
    assert opt.step() is None


def test_step_restores_grad_mode():
    w, b = make_params(rg)
    opt = optim.Adam([w, b])
    quadratic_loss(rg, w, b).backward()
    opt.step()
    assert rg.is_grad_enabled()
    with rg.no_grad():
        opt.step()
        assert not rg.is_grad_enabled()


def test_param_groups_and_add_param_group():
    w, b = make_params(rg)
    opt = optim.Adam([w], lr=0.01, betas=(0.8, 0.9))
    opt.add_param_group({"params": b, "lr": 0.1})
    assert len(opt.param_groups) == 2
    g = opt.param_groups[1]
    assert g["params"][0] is b and g["lr"] == 0.1 and g["betas"] == (0.8, 0.9) and g["amsgrad"] is False
    assert opt.defaults["lr"] == 0.01
    before = to_numpy(b).copy()
    quadratic_loss(rg, w, b).backward()
    opt.step()
    # the first Adam step moves every element by lr (when |grad| >> eps)
    np.testing.assert_allclose(np.abs(to_numpy(b) - before), 0.1, rtol=1e-4)
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        opt.add_param_group({"params": [w]})
    with pytest.raises(TypeError, match="param_group must be a dict"):
        opt.add_param_group([b])


def test_repr():
    w, b = make_params(rg)
    opt = optim.SGD([w, b], lr=0.1, momentum=0.9)
    assert repr(opt) == (
        "SGD (\nParameter Group 0\n    dampening: 0\n    differentiable: False\n    foreach: None\n"
        "    fused: None\n    lr: 0.1\n    maximize: False\n    momentum: 0.9\n    nesterov: False\n"
        "    weight_decay: 0\n)")
    r = repr(optim.AdamW([w]))
    assert r.startswith("AdamW (\nParameter Group 0\n    amsgrad: False\n    betas: (0.9, 0.999)\n")
    assert "    decoupled_weight_decay: True\n" in r and "    weight_decay: 0.01\n" in r
    assert isinstance(optim.AdamW([w]), optim.Adam)


def test_step_hooks():
    w, b = make_params(rg)
    opt = optim.SGD([w, b], lr=0.1)
    calls = []
    pre = opt.register_step_pre_hook(lambda o, args, kwargs: calls.append(("pre", o is opt, args, kwargs)))
    post = opt.register_step_post_hook(lambda o, args, kwargs: calls.append(("post", o is opt, args, kwargs)))
    opt.step()
    assert calls == [("pre", True, (opt,), {}), ("post", True, (opt,), {})]
    pre.remove()
    post.remove()
    opt.step()
    assert len(calls) == 2

    # a pre-hook may replace the arguments
    def closure():
        return 42

    h = opt.register_step_pre_hook(lambda o, args, kwargs: ((o,), {"closure": closure}))
    assert opt.step() == 42
    h.remove()
    bad = opt.register_step_pre_hook(lambda o, args, kwargs: 3)
    with pytest.raises(RuntimeError, match="must return None or a tuple"):
        opt.step()
    bad.remove()


def test_global_step_hooks():
    w, b = make_params(rg)
    opt = optim.Adam([w, b])
    calls = []
    module = importlib.import_module(optim.__name__ + ".optimizer")
    handle = module.register_optimizer_step_post_hook(lambda o, a, k: calls.append(type(o).__name__))
    try:
        opt.step()
    finally:
        handle.remove()
    opt.step()
    assert calls == ["Adam"]


def test_tensor_lr():
    w, b = make_params(rg)
    opt = optim.SGD([w, b], lr=rg.tensor(0.5))
    quadratic_loss(rg, w, b).backward()
    grad = to_numpy(w.grad).copy()
    opt.step()
    np.testing.assert_allclose(to_numpy(w), W0.astype(np.float32) - 0.5 * grad, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="Tensor lr must be 1-element"):
        optim.SGD([w], lr=rg.tensor([0.1, 0.2]))


# ---- errors --------------------------------------------------------------------------------

def test_construction_errors():
    w, b = make_params(rg)
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="should be an iterable of Tensors or dicts, but got rustgrad.FloatTensor"
                       if rg.__name__ == "rustgrad" else "should be an iterable of Tensors or dicts"):
        optim.SGD(w, lr=0.1)
    with pytest.raises(TypeError, match="optimizer can only optimize Tensors, but one of the params is float"):
        optim.SGD([1.0], lr=0.1)
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        optim.SGD([w * 2], lr=0.1)
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        optim.SGD([{"params": [w]}, {"params": [w, b]}], lr=0.1)
    with pytest.raises(TypeError, match="ordered collections"):
        optim.SGD([{"params": {w, b}}], lr=0.1)
    with pytest.warns(UserWarning, match="duplicate parameters"):
        optim.SGD([w, w], lr=0.1)


@pytest.mark.parametrize("name, kwargs, message", [
    ("SGD", dict(lr=-0.1), "Invalid learning rate: -0.1"),
    ("SGD", dict(lr=0.1, momentum=-1), "Invalid momentum value: -1"),
    ("SGD", dict(lr=0.1, weight_decay=-1e-3), "Invalid weight_decay value: -0.001"),
    ("SGD", dict(lr=0.1, nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
     "Nesterov momentum requires a momentum and zero dampening"),
    ("Adam", dict(lr=-1.0), "Invalid learning rate: -1.0"),
    ("Adam", dict(eps=-1.0), "Invalid epsilon value: -1.0"),
    ("Adam", dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    ("Adam", dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    ("Adam", dict(weight_decay=-0.5), "Invalid weight_decay value: -0.5"),
    ("Adam", dict(betas=(0, 0.9)), "betas must be either both floats or both Tensors"),
    ("AdamW", dict(betas=(0.9, 1.5)), "Invalid beta parameter at index 1: 1.5"),
    ("RMSprop", dict(alpha=-0.5), "Invalid alpha value: -0.5"),
    ("RMSprop", dict(momentum=-0.5), "Invalid momentum value: -0.5"),
    ("RMSprop", dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
    ("Adagrad", dict(lr_decay=-1), "Invalid lr_decay value: -1"),
    ("Adagrad", dict(initial_accumulator_value=-1), "Invalid initial_accumulator_value value: -1"),
    ("Adagrad", dict(eps=-1), "Invalid epsilon value: -1"),
])
def test_argument_validation(name, kwargs, message):
    w, _ = make_params(rg)
    with pytest.raises(ValueError) as info:
        getattr(optim, name)([w], **kwargs)
    assert str(info.value) == message


def test_fused_and_capturable_flags():
    w, b = make_params(rg)
    with pytest.raises(RuntimeError, match="`fused` does not support `differentiable`"):
        optim.Adam([w], fused=True, differentiable=True)
    with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True` together."):
        optim.SGD([w], fused=True, foreach=True)
    # fused/foreach select implementations only: the results are the same
    _, _, plain = run(rg, "Adam", dict(lr=0.05), 3)
    _, _, fused = run(rg, "Adam", dict(lr=0.05, fused=True), 3)
    _, _, foreach = run(rg, "Adam", dict(lr=0.05, foreach=True), 3)
    for a, c, d in zip(plain[-1], fused[-1], foreach[-1]):
        np.testing.assert_allclose(a, c, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(a, d, rtol=1e-6, atol=1e-7)
    opt = optim.Adam([w], capturable=True)
    quadratic_loss(rg, w, b).backward()
    with pytest.raises(AssertionError, match="If capturable=True"):
        opt.step()


# ---- differentiable=True: the step itself is recorded by autograd --------------------------

DIFFERENTIABLE = [
    ("sgd", "SGD", dict(lr=0.9, momentum=0.9, weight_decay=0.1, nesterov=True), ["momentum_buffer"]),
    ("adam", "Adam", dict(lr=0.1, weight_decay=0.1, amsgrad=True), ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]),
    ("adamw", "AdamW", dict(lr=0.1, weight_decay=0.1), ["exp_avg", "exp_avg_sq"]),
    ("rmsprop", "RMSprop", dict(lr=0.1, momentum=0.5, centered=True),
     ["square_avg", "momentum_buffer", "grad_avg"]),
    ("adagrad", "Adagrad", dict(lr=0.1, lr_decay=0.1, weight_decay=0.1), ["sum"]),
]


def differentiable_step(mod, name, kwargs, keys):
    """f(param, grad, *state) -> (param, *state) after one differentiable step."""
    opt_module = optim if mod is rg else mod.optim

    def f(p, g, *states):
        q = p.clone()  # a non-leaf, so the in-place update can be recorded
        q.grad = g
        opt = getattr(opt_module, name)([q], differentiable=True, **kwargs)
        if "exp_avg" in keys or name in ("RMSprop", "Adagrad"):
            opt.state[q]["step"] = mod.tensor(3.0)
        for key, s in zip(keys, states):
            opt.state[q][key] = s.clone()
        opt.step()
        return (q,) + tuple(opt.state[q][k] for k in keys)
    return f


def differentiable_inputs(mod, n):
    rng = np.random.default_rng(3)
    # the first state (RMSprop's square_avg) above the later ones squared keeps the centered
    # variance positive
    scale = [1.0, 1.0, 2.0] + [0.5] * (n - 3)
    return [mod.tensor(rng.uniform(0.2, 1.0, 4) * scale[i], requires_grad=True) for i in range(n)]


@pytest.mark.parametrize("name, kwargs, keys", params(DIFFERENTIABLE))
def test_differentiable_step_gradcheck(name, kwargs, keys):
    f = differentiable_step(rg, name, kwargs, keys)
    assert rg.autograd.gradcheck(f, differentiable_inputs(rg, 2 + len(keys)))


@requires_torch
@pytest.mark.parametrize("name, kwargs, keys", params(DIFFERENTIABLE))
def test_differentiable_step_matches_torch(name, kwargs, keys):
    torch = torch_or_none()
    grads = []
    for mod in (rg, torch):
        inputs = differentiable_inputs(mod, 2 + len(keys))
        outs = differentiable_step(mod, name, kwargs, keys)(*inputs)
        sum(o.sum() * (i + 1) for i, o in enumerate(outs)).backward()
        grads.append(([to_numpy(o) for o in outs], [to_numpy(x.grad) for x in inputs]))
    # Adam's differentiable bias corrections are float32 0-dim tensors, rounded slightly
    # differently (PyTorch divides a number by a tensor as reciprocal-then-multiply).
    rtol = 1e-6 if "exp_avg" in keys else 1e-10
    for a, b in zip(grads[0][0] + grads[0][1], grads[1][0] + grads[1][1]):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-12)


def test_deepcopy_keeps_state_per_parameter():
    ps, opt, _ = run(rg, "Adam", dict(lr=0.1, amsgrad=True), 2)
    clone = copy.deepcopy(opt)
    p2 = clone.param_groups[0]["params"][0]
    assert p2 is not ps[0] and list(clone.state[p2]) == list(opt.state[ps[0]])
    set_grads(rg, clone.param_groups[0]["params"])
    clone.step()
    assert clone.state[p2]["step"].item() == 3.0 and opt.state[ps[0]]["step"].item() == 2.0
    handle = clone.register_step_post_hook(lambda *args: None)  # hooks survive the copy machinery
    handle.remove()
