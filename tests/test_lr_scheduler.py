# rustgrad.optim.lr_scheduler: lr (and momentum/beta1) sequences against closed-form references
# and PyTorch, closed-form stepping with an epoch, state_dict round trips, errors.
import importlib
import math

import numpy as np
import pytest

from _helpers import params, requires_torch, torch_or_none

rg = importlib.import_module("rustgrad")
optim = getattr(rg, "optim", None) or importlib.import_module("rustgrad.optim")
lrs = optim.lr_scheduler

STEPS = 30


def make_optimizer(opt_module, mod, kind="SGD"):
    """An optimizer with two param groups (lr 0.1 and 0.05)."""
    a = mod.zeros(2, requires_grad=True)
    b = mod.zeros(3, requires_grad=True)
    groups = [{"params": [a]}, {"params": [b], "lr": 0.05}]
    if kind == "SGD":
        return opt_module.SGD(groups, lr=0.1, momentum=0.9)
    return getattr(opt_module, kind)(groups, lr=0.1)


def lambda_half_life(epoch):
    return 0.95 ** epoch


def warmup(epoch):
    return min(1.0, (epoch + 1) / 5)


def sequence(opt_module, mod, make, kind="SGD", steps=STEPS, metrics=None):
    """[(lrs, momenta/beta1s)] after construction and after each of `steps` steps."""
    opt = make_optimizer(opt_module, mod, kind)
    sched = make(opt_module.lr_scheduler, opt)

    def snapshot():
        momenta = [g["betas"][0] if "betas" in g else g.get("momentum") for g in opt.param_groups]
        return list(sched.get_last_lr()), [g["lr"] for g in opt.param_groups], momenta

    out = [snapshot()]
    for i in range(steps):
        opt.step()
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[i])
        out.append(snapshot())
    return out


PLATEAU_METRICS = [1.0, 0.9, 0.9, 0.9, 0.95, 0.91, 0.89, 0.89, 0.89, 0.89, 0.7, 0.71, 0.72, 0.73, 0.74,
                   0.75, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.5, 0.5, 0.5, 0.5]

SCHEDULES = [
    ("step", lambda m, o: m.StepLR(o, step_size=3, gamma=0.5), "SGD", None),
    ("step_default_gamma", lambda m, o: m.StepLR(o, 7), "SGD", None),
    ("multistep", lambda m, o: m.MultiStepLR(o, milestones=[5, 10, 10, 20], gamma=0.3), "SGD", None),
    ("exponential", lambda m, o: m.ExponentialLR(o, gamma=0.9), "SGD", None),
    ("cosine", lambda m, o: m.CosineAnnealingLR(o, T_max=10, eta_min=0.001), "SGD", None),
    ("cosine_long", lambda m, o: m.CosineAnnealingLR(o, T_max=30), "Adam", None),
    ("lambda", lambda m, o: m.LambdaLR(o, lambda_half_life), "SGD", None),
    ("lambda_per_group", lambda m, o: m.LambdaLR(o, [lambda_half_life, warmup]), "SGD", None),
    ("onecycle_cos", lambda m, o: m.OneCycleLR(o, max_lr=1.0, total_steps=STEPS + 1), "SGD", None),
    ("onecycle_linear", lambda m, o: m.OneCycleLR(o, max_lr=[1.0, 0.5], epochs=4, steps_per_epoch=8,
                                                  anneal_strategy="linear", pct_start=0.25), "SGD", None),
    ("onecycle_three_phase", lambda m, o: m.OneCycleLR(o, max_lr=0.3, total_steps=STEPS, three_phase=True,
                                                       div_factor=10.0, final_div_factor=100.0), "SGD", None),
    ("onecycle_adam_betas", lambda m, o: m.OneCycleLR(o, max_lr=0.01, total_steps=STEPS,
                                                      base_momentum=0.8, max_momentum=0.9), "Adam", None),
    ("onecycle_no_momentum", lambda m, o: m.OneCycleLR(o, max_lr=0.01, total_steps=STEPS, cycle_momentum=False),
     "Adagrad", None),
    ("plateau", lambda m, o: m.ReduceLROnPlateau(o, patience=2), "SGD", PLATEAU_METRICS),
    ("plateau_max_abs", lambda m, o: m.ReduceLROnPlateau(o, mode="max", threshold_mode="abs", threshold=0.01,
                                                         factor=0.5, patience=1), "SGD",
     [-x for x in PLATEAU_METRICS]),
    ("plateau_cooldown_min_lr", lambda m, o: m.ReduceLROnPlateau(o, factor=0.5, patience=0, cooldown=2,
                                                                 min_lr=[0.02, 0.001]), "Adam", PLATEAU_METRICS),
    ("plateau_eps", lambda m, o: m.ReduceLROnPlateau(o, factor=0.5, patience=0, eps=0.02), "SGD",
     PLATEAU_METRICS),
]


@requires_torch
@pytest.mark.parametrize("make, kind, metrics", params(SCHEDULES))
def test_sequences_match_torch(make, kind, metrics):
    torch = torch_or_none()
    ours = sequence(optim, rg, make, kind, metrics=metrics)
    theirs = sequence(torch.optim, torch, make, kind, metrics=metrics)
    for step, (got, exp) in enumerate(zip(ours, theirs)):
        for g, e in zip(got, exp):
            if e[0] is None:
                assert g == e
            else:
                np.testing.assert_allclose(g, e, rtol=1e-12, atol=0, err_msg=f"step {step}")


@requires_torch
@pytest.mark.parametrize("make, kind, metrics", params(SCHEDULES))
def test_state_dict_keys_match_torch(make, kind, metrics):
    torch = torch_or_none()
    ours = make(lrs, make_optimizer(optim, rg, kind)).state_dict()
    theirs = make(torch.optim.lr_scheduler, make_optimizer(torch.optim, torch, kind)).state_dict()
    assert sorted(ours) == sorted(theirs)
    for key in theirs:
        if key != "lr_lambdas":
            assert ours[key] == theirs[key], key


# ---- references without torch --------------------------------------------------------------

def lrs_after(make, kind="SGD", steps=STEPS, metrics=None):
    return [snap[1] for snap in sequence(optim, rg, make, kind, steps, metrics)]


def test_step_lr_closed_form():
    got = lrs_after(SCHEDULES[0][1])
    for epoch, lr in enumerate(got):
        np.testing.assert_allclose(lr, [b * 0.5 ** (epoch // 3) for b in (0.1, 0.05)], rtol=1e-12)


def test_multistep_lr_closed_form():
    got = lrs_after(SCHEDULES[2][1])
    for epoch, lr in enumerate(got):
        n = sum(epoch >= m for m in (5, 10, 10, 20))
        np.testing.assert_allclose(lr, [b * 0.3 ** n for b in (0.1, 0.05)], rtol=1e-12)


def test_exponential_lr_closed_form():
    got = lrs_after(SCHEDULES[3][1])
    for epoch, lr in enumerate(got):
        np.testing.assert_allclose(lr, [b * 0.9 ** epoch for b in (0.1, 0.05)], rtol=1e-12)


def test_cosine_lr_matches_closed_form_and_keeps_oscillating():
    got = lrs_after(SCHEDULES[4][1])
    for epoch, lr in enumerate(got):
        want = [0.001 + (b - 0.001) * (1 + math.cos(math.pi * epoch / 10)) / 2 for b in (0.1, 0.05)]
        np.testing.assert_allclose(lr, want, rtol=1e-10, atol=1e-15)
    assert got[10][0] == pytest.approx(0.001) and got[20][0] == pytest.approx(0.1)


def test_lambda_lr():
    got = lrs_after(SCHEDULES[7][1])
    for epoch, lr in enumerate(got):
        np.testing.assert_allclose(lr, [0.1 * 0.95 ** epoch, 0.05 * warmup(epoch)], rtol=1e-12)


def test_onecycle_shape():
    opt = make_optimizer(optim, rg)
    sched = lrs.OneCycleLR(opt, max_lr=1.0, total_steps=10, pct_start=0.3)
    group = opt.param_groups[0]
    assert group["initial_lr"] == pytest.approx(0.04) and group["max_lr"] == 1.0
    assert group["min_lr"] == pytest.approx(0.04 / 1e4)
    assert group["lr"] == pytest.approx(0.04) and group["momentum"] == pytest.approx(0.95)
    seen = [group["lr"]]
    for _ in range(9):
        opt.step()
        sched.step()
        seen.append(group["lr"])
    # warm-up ends at step pct_start * total - 1 = 2 with max_lr and base momentum
    assert seen[2] == pytest.approx(1.0) and opt.param_groups[0]["momentum"] == pytest.approx(0.95)
    assert seen[-1] == pytest.approx(0.04 / 1e4)
    assert np.all(np.diff(seen[:3]) > 0) and np.all(np.diff(seen[2:]) < 0)
    with pytest.raises(ValueError, match="Tried to step 11 times. The specified number of total steps is 10"):
        sched.step()
        sched.step()


def test_onecycle_cycles_adam_beta1():
    opt = make_optimizer(optim, rg, "Adam")
    lrs.OneCycleLR(opt, max_lr=0.01, total_steps=10, base_momentum=0.8, max_momentum=0.9)
    assert opt.param_groups[1]["betas"] == (0.9, 0.999)
    assert opt.param_groups[1]["max_momentum"] == 0.9 and opt.param_groups[1]["base_momentum"] == 0.8


def test_plateau_reduces_after_patience():
    opt = make_optimizer(optim, rg)
    sched = lrs.ReduceLROnPlateau(opt, patience=2, factor=0.5)
    seen = []
    for metric in [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5]:
        sched.step(metric)
        seen.append(sched.get_last_lr()[0])
    assert seen == [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025]
    assert sched.best == 0.5 and sched.last_epoch == 8
    sched.step(rg.tensor(0.1))  # metrics may be a 0-dim tensor
    assert sched.best == pytest.approx(0.1)


def test_initial_lr_and_base_lrs():
    opt = make_optimizer(optim, rg)
    sched = lrs.StepLR(opt, 2)
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.05]
    assert sched.base_lrs == [0.1, 0.05] and sched.last_epoch == 0 and sched.get_last_lr() == [0.1, 0.05]
    assert isinstance(sched, lrs.LRScheduler)


def test_step_with_epoch_uses_closed_form():
    opt = make_optimizer(optim, rg)
    sched = lrs.StepLR(opt, step_size=3, gamma=0.5)
    with pytest.warns(UserWarning, match="epoch parameter"):
        sched.step(7)
    assert sched.last_epoch == 7
    np.testing.assert_allclose(sched.get_last_lr(), [0.1 * 0.25, 0.05 * 0.25])
    opt = make_optimizer(optim, rg)
    sched = lrs.CosineAnnealingLR(opt, T_max=10)
    with pytest.warns(UserWarning):
        sched.step(5)
    np.testing.assert_allclose(sched.get_last_lr(), [0.05, 0.025])


def test_get_lr_outside_step_warns():
    sched = lrs.ExponentialLR(make_optimizer(optim, rg), gamma=0.5)
    with pytest.warns(UserWarning, match="get_last_lr"):
        sched.get_lr()


# ---- state dicts ---------------------------------------------------------------------------

@pytest.mark.parametrize("make, kind, metrics", params(SCHEDULES))
def test_state_dict_round_trip(make, kind, metrics):
    """A scheduler restored from a state dict (optimizer included) continues identically."""
    opt = make_optimizer(optim, rg, kind)
    sched = make(lrs, opt)
    for i in range(10):
        opt.step()
        sched.step() if metrics is None else sched.step(metrics[i])
    saved_opt, saved_sched = opt.state_dict(), sched.state_dict()
    assert "optimizer" not in saved_sched

    opt2 = make_optimizer(optim, rg, kind)
    sched2 = make(lrs, opt2)
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved_sched)
    assert sched2.last_epoch == sched.last_epoch and sched2.get_last_lr() == sched.get_last_lr()
    for i in range(10, 20):
        for o, s in ((opt, sched), (opt2, sched2)):
            o.step()
            s.step() if metrics is None else s.step(metrics[i])
        assert sched2.get_last_lr() == sched.get_last_lr()
        assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]


def test_lambda_state_dict_saves_callable_objects_only():
    class Decay:
        def __init__(self, rate):
            self.rate = rate

        def __call__(self, epoch):
            return self.rate ** epoch

    sched = lrs.LambdaLR(make_optimizer(optim, rg), [lambda_half_life, Decay(0.5)])
    sd = sched.state_dict()
    assert sd["lr_lambdas"] == [None, {"rate": 0.5}]
    other = lrs.LambdaLR(make_optimizer(optim, rg), [lambda_half_life, Decay(0.9)])
    other.load_state_dict(sd)
    assert other.lr_lambdas[1].rate == 0.5


def test_resume_with_last_epoch():
    opt = make_optimizer(optim, rg)
    with pytest.raises(KeyError, match="param 'initial_lr' is not specified in param_groups\\[0\\]"):
        lrs.StepLR(opt, 3, last_epoch=5)
    sched = lrs.StepLR(opt, 3)
    for _ in range(5):
        opt.step()
        sched.step()
    resumed = lrs.StepLR(opt, 3, last_epoch=5)
    assert resumed.last_epoch == 6 and resumed.base_lrs == [0.1, 0.05]


# ---- errors --------------------------------------------------------------------------------

def test_errors():
    opt = make_optimizer(optim, rg)
    with pytest.raises(TypeError, match="list is not an Optimizer"):
        lrs.StepLR([], 3)
    with pytest.raises(TypeError, match="int is not an Optimizer"):
        lrs.ReduceLROnPlateau(3)
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas, but got 1"):
        lrs.LambdaLR(opt, [warmup])
    with pytest.raises(ValueError, match="Factor should be < 1.0."):
        lrs.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode sideways is unknown!"):
        lrs.ReduceLROnPlateau(opt, mode="sideways")
    with pytest.raises(ValueError, match="threshold mode rel2 is unknown!"):
        lrs.ReduceLROnPlateau(opt, threshold_mode="rel2")
    with pytest.raises(ValueError, match="expected 2 min_lrs, got 3"):
        lrs.ReduceLROnPlateau(opt, min_lr=[0, 0, 0])
    with pytest.raises(ValueError, match="Expected positive integer total_steps, but got 0"):
        lrs.OneCycleLR(opt, 1.0, total_steps=0)
    with pytest.raises(ValueError, match="Expected positive integer epochs, but got -1"):
        lrs.OneCycleLR(opt, 1.0, epochs=-1, steps_per_epoch=3)
    with pytest.raises(ValueError, match="You must define either total_steps OR"):
        lrs.OneCycleLR(opt, 1.0)
    with pytest.raises(ValueError, match="Expected float between 0 and 1 pct_start, but got 1.5"):
        lrs.OneCycleLR(opt, 1.0, total_steps=10, pct_start=1.5)
    with pytest.raises(ValueError, match="anneal_strategy must be one of 'cos' or 'linear', instead got exp"):
        lrs.OneCycleLR(opt, 1.0, total_steps=10, anneal_strategy="exp")
    with pytest.raises(ValueError, match="max_lr must have the same length as optimizer.param_groups"):
        lrs.OneCycleLR(opt, [1.0], total_steps=10)
    no_momentum = optim.Adagrad([rg.zeros(2, requires_grad=True)])
    with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
        lrs.OneCycleLR(no_momentum, 1.0, total_steps=10)
