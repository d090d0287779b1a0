"""Tests for floor 4 (optim): parameter groups, RMSprop/Adagrad/AMSGrad, the newer schedules and
EMA weight averaging. Trajectories and rate sequences are compared with PyTorch's (the
reference); without torch those tests are skipped and the hand-worked ones still run.
"""
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_mlp as tg
from tinygrad_mlp import Tensor, nn, optim
from tinygrad_mlp.optim import lr_scheduler


# ---------------------------------------------------------------- trajectories vs PyTorch

def two_groups(make_ours, make_theirs, kw_groups, dtype, steps=50, seed=0):
    """Run both optimisers over the same gradients on two parameters in two groups."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    shapes = [(5, 3), (3,)]
    w0 = [rng.normal(size=s).astype(dtype) for s in shapes]
    grads = [[rng.normal(size=s).astype(dtype) for s in shapes] for _ in range(steps)]
    ours = [nn.Parameter(w.copy()) for w in w0]
    theirs = [torch.nn.Parameter(torch.tensor(w.copy())) for w in w0]
    opt = make_ours([{"params": [p], **g} for p, g in zip(ours, kw_groups)])
    topt = make_theirs([{"params": [p], **g} for p, g in zip(theirs, kw_groups)])
    for gs in grads:
        for p, t, g in zip(ours, theirs, gs):
            p.grad, t.grad = Tensor(g.copy()), torch.tensor(g.copy())
        opt.step()
        topt.step()
    return ours, theirs


CASES = [
    ("RMSprop", dict(lr=0.01), [dict(), dict(alpha=0.9, weight_decay=0.1)]),
    ("RMSprop", dict(lr=0.01, momentum=0.9), [dict(centered=True), dict(eps=1e-3)]),
    ("RMSprop", dict(lr=0.005, centered=True, momentum=0.5, weight_decay=0.01),
     [dict(), dict(lr=0.02)]),
    ("Adagrad", dict(lr=0.1), [dict(lr_decay=0.01), dict(weight_decay=0.1)]),
    ("Adagrad", dict(lr=0.05, initial_accumulator_value=0.5, eps=1e-6),
     [dict(), dict(lr_decay=0.1)]),
    ("Adam", dict(lr=0.01, amsgrad=True), [dict(weight_decay=0.1), dict(betas=(0.8, 0.9))]),
    ("AdamW", dict(lr=0.01, amsgrad=True), [dict(), dict(weight_decay=0.0, lr=0.003)]),
    ("SGD", dict(lr=0.05, momentum=0.9), [dict(nesterov=True), dict(momentum=0.0,
                                                                     weight_decay=0.01)]),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, kw, groups", CASES)
def test_trajectories_with_groups_match_pytorch(name, kw, groups, dtype):
    torch = pytest.importorskip("torch")
    ours, theirs = two_groups(lambda g: getattr(optim, name)(g, **kw),
                              lambda g: getattr(torch.optim, name)(g, **kw), groups, dtype)
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    for p, t in zip(ours, theirs):
        assert p.dtype == dtype
        want = t.detach().numpy()
        # Relative to each element and, for elements that pass near zero, to the tensor's scale
        # (float32 rounding differs where PyTorch's kernels fuse a multiply-add).
        np.testing.assert_allclose(p.data, want, rtol=rtol, atol=rtol * np.abs(want).max())


def test_groups_really_differ():
    # Guard for the test above: the second group's settings change its trajectory.
    a, b = nn.Parameter([1.0]), nn.Parameter([1.0])
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a.grad, b.grad = Tensor([1.0]), Tensor([1.0])
    opt.step()
    assert a.data[0] == pytest.approx(0.9) and b.data[0] == pytest.approx(0.5)


# ---------------------------------------------------------------- groups: API

def test_groups_defaults_lr_attribute_and_add_param_group():
    w, b, c = nn.Parameter(np.ones((2, 2))), nn.Parameter(np.ones(2)), nn.Parameter([0.0])
    opt = optim.AdamW([{"params": [w]}, {"params": b, "weight_decay": 0.0}], lr=0.1)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.01, 0.0]
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.1]
    assert opt.params == [w, b] and len(opt.state) == 2
    opt.param_groups[1]["lr"] = 0.5
    assert opt.lr == 0.1                       # reads the first group
    opt.lr = 0.2                               # sets every group
    assert [g["lr"] for g in opt.param_groups] == [0.2, 0.2]
    opt.betas = [0.5, 0.6]
    assert opt.param_groups[1]["betas"] == (0.5, 0.6)
    with pytest.raises(ValueError, match="learning rate -1"):
        opt.lr = -1
    assert opt.lr == 0.2
    opt.add_param_group({"params": [c], "lr": 1.0, "amsgrad": True})
    assert opt.param_groups[2]["lr"] == 1.0 and opt.param_groups[2]["weight_decay"] == 0.01
    assert opt.param_groups[2]["amsgrad"] and not opt.param_groups[0]["amsgrad"]
    with pytest.raises(ValueError, match="appears twice"):
        opt.add_param_group({"params": [w]})
    assert "group 2: 1 parameters" in repr(opt)


def test_excluding_biases_from_weight_decay():
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.ReLU(), nn.Linear(4, 2, rng=1))
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = optim.SGD([{"params": decay, "weight_decay": 0.1},
                     {"params": no_decay, "weight_decay": 0.0}], lr=1.0)
    before = [p.data.copy() for p in model.parameters()]
    for p in model.parameters():
        p.grad = Tensor(np.zeros_like(p.data))
    opt.step()
    for p, old in zip(model.parameters(), before):
        expected = old * 0.9 if p.ndim >= 2 else old
        np.testing.assert_allclose(p.data, expected, rtol=1e-6)


def test_group_state_dict_round_trip_and_resume_is_exact(tmp_path):
    def make():
        model = nn.Sequential(nn.Linear(3, 5, rng=0), nn.Tanh(), nn.Linear(5, 2, rng=1))
        ws = [p for p in model.parameters() if p.ndim == 2]
        bs = [p for p in model.parameters() if p.ndim == 1]
        opt = optim.RMSprop([{"params": ws, "momentum": 0.9}, {"params": bs, "lr": 0.05}],
                            lr=0.01, centered=True)
        return model, opt, lr_scheduler.MultiStepLR(opt, [2, 4], gamma=0.5)

    def train(model, opt, sched, steps, rng):
        for _ in range(steps):
            x = Tensor(rng.normal(size=(8, 3)).astype(np.float32))
            opt.zero_grad()
            tg.functional.cross_entropy(model(x), rng.integers(0, 2, size=8)).backward()
            opt.step()
            sched.step()

    model, opt, sched = make()
    train(model, opt, sched, 3, np.random.default_rng(0))
    tg.save({"opt": opt.state_dict(), "sched": sched.state_dict(),
             "model": model.state_dict()}, tmp_path / "c.npz")
    train(model, opt, sched, 3, np.random.default_rng(1))
    model2, opt2, sched2 = make()
    ckpt = tg.load(tmp_path / "c.npz")
    model2.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["opt"])
    sched2.load_state_dict(ckpt["sched"])
    assert [g["lr"] for g in opt2.param_groups] == [0.005, 0.025]
    train(model2, opt2, sched2, 3, np.random.default_rng(1))
    for a, b in zip(model.parameters(), model2.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    assert opt.param_groups[1]["lr"] == opt2.param_groups[1]["lr"] == 0.0125
    # The group layout must fit.
    one_group = optim.RMSprop(model2.parameters(), lr=0.01)
    with pytest.raises(ValueError, match="2 parameter groups, this optimizer 1"):
        one_group.load_state_dict(ckpt["opt"])


def test_state_dict_from_before_groups_still_loads():
    p = nn.Parameter(np.array([1.0, 2.0]))
    opt = optim.SGD([p], lr=0.5, momentum=0.9)
    old = {"type": "SGD", "hyperparameters": {"lr": 0.1, "momentum": 0.8, "dampening": 0.0,
                                              "nesterov": False, "weight_decay": 0.0},
           "state": {"0": {"momentum_buffer": np.array([1.0, 1.0])}}}
    opt.load_state_dict(old)
    assert opt.lr == 0.1 and opt.momentum == 0.8
    np.testing.assert_array_equal(opt.state[0]["momentum_buffer"], [1.0, 1.0])


@pytest.mark.parametrize("grad, match", [
    (np.ones((3, 2)), r"parameter 1 \(group 1\) has shape \(2, 3\) and dtype float64, but its "
                      r"\.grad has shape \(3, 2\)"),
    (np.ones((2, 3), np.float32), "dtype float32"),
])
def test_grad_of_the_wrong_shape_or_dtype_is_named(grad, match):
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones((2, 3)))
    opt = optim.Adam([{"params": [a]}, {"params": [b]}])
    a.grad = Tensor(np.ones(2))
    b.grad = Tensor(grad)
    with pytest.raises(ValueError, match=match):
        opt.step()


@pytest.mark.parametrize("make, match", [
    (lambda p: optim.RMSprop(p, alpha=-0.1), "alpha"),
    (lambda p: optim.RMSprop(p, momentum=-1), "momentum"),
    (lambda p: optim.Adagrad(p, lr_decay=-1), "lr_decay"),
    (lambda p: optim.Adagrad(p, initial_accumulator_value=-1), "initial_accumulator_value"),
    (lambda p: optim.Adagrad([{"params": p, "betas": (0.9, 0.99)}]), "unknown keys"),
    (lambda p: optim.Adam(p, amsgrad=True).add_param_group({"params": [p[0] * 1]}), "leaf"),
])
def test_new_optimizer_arguments_are_checked(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make([nn.Parameter([1.0])])


# ---------------------------------------------------------------- schedules vs PyTorch

def sequences(make_ours, make_theirs, steps=30, groups=(0.3, 0.05), opt_name="SGD",
              opt_kw=None, metrics=None):
    """The lr of every group after construction and after each step, ours and PyTorch's."""
    torch = pytest.importorskip("torch")
    opt_kw = opt_kw or {}
    opt = getattr(optim, opt_name)([{"params": [nn.Parameter([0.0])], "lr": lr}
                                    for lr in groups], **opt_kw)
    topt = getattr(torch.optim, opt_name)(
        [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in groups], **opt_kw)
    sched, tsched = make_ours(opt), make_theirs(topt, torch.optim.lr_scheduler)
    ours, theirs = [], []
    for t in range(steps + 1):
        ours.append([g["lr"] for g in opt.param_groups])
        theirs.append([g["lr"] for g in topt.param_groups])
        if "momentum" in opt.defaults or "betas" in opt.defaults:
            key = "betas" if "betas" in opt.defaults else "momentum"
            assert [g[key] for g in opt.param_groups] == [tuple(g[key]) if key == "betas"
                                                         else g[key]
                                                         for g in topt.param_groups], t
        if t == steps:
            break
        topt.step()
        if metrics is None:
            sched.step()
            tsched.step()
        else:
            sched.step(metrics[t])
            tsched.step(metrics[t])
        assert sched.get_last_lr() == tsched.get_last_lr()
    return ours, theirs


@pytest.mark.parametrize("make", [
    lambda o, S: S.MultiStepLR(o, milestones=[3, 7, 7, 12], gamma=0.5),
    lambda o, S: S.LinearLR(o, start_factor=0.1, total_iters=6),
    lambda o, S: S.LinearLR(o, start_factor=1.0, end_factor=0.2, total_iters=10),
    lambda o, S: S.StepLR(o, step_size=4, gamma=0.3),
    lambda o, S: S.CosineAnnealingLR(o, T_max=7, eta_min=0.001),
    lambda o, S: S.ExponentialLR(o, gamma=0.8),
    lambda o, S: S.LambdaLR(o, [lambda t: 0.9 ** t, lambda t: 1 / (t + 1)]),
], ids=["multistep", "linear-warmup", "linear-down", "step", "cosine", "exponential", "lambda"])
def test_schedules_per_group_equal_pytorch(make):
    ours, theirs = sequences(lambda o: make(o, lr_scheduler), make)
    assert ours == theirs
    assert len({tuple(r) for r in ours}) > 3   # the rate does change


@pytest.mark.parametrize("kw", [
    dict(max_lr=1.0, total_steps=30),
    dict(max_lr=[1.0, 0.1], epochs=3, steps_per_epoch=10, anneal_strategy="linear",
         pct_start=0.25, div_factor=10.0, final_div_factor=100.0),
    dict(max_lr=0.5, total_steps=30, three_phase=True, base_momentum=0.8, max_momentum=0.9),
])
@pytest.mark.parametrize("opt_name, opt_kw", [("SGD", dict(momentum=0.9)), ("Adam", {})])
def test_one_cycle_equals_pytorch_with_momentum(kw, opt_name, opt_kw):
    ours, theirs = sequences(lambda o: lr_scheduler.OneCycleLR(o, **kw),
                             lambda o, S: S.OneCycleLR(o, **kw), opt_name=opt_name,
                             opt_kw=opt_kw)
    np.testing.assert_allclose(ours, theirs, rtol=1e-15)


def test_one_cycle_refuses_to_step_past_its_end():
    sched = lr_scheduler.OneCycleLR(optim.SGD([nn.Parameter([0.0])], momentum=0.9), 1.0,
                                    total_steps=30)
    for _ in range(30):
        sched.step()
    with pytest.raises(ValueError, match="total_steps is 30"):
        sched.step()


def test_sequential_warmup_then_cosine_equals_pytorch():
    def make(o, S):
        return S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=4),
                                  S.CosineAnnealingLR(o, T_max=10, eta_min=0.01),
                                  S.ExponentialLR(o, gamma=0.9)], milestones=[5, 15])
    ours, theirs = sequences(lambda o: make(o, lr_scheduler), make)
    np.testing.assert_allclose(ours, theirs, rtol=1e-14)


@pytest.mark.parametrize("kw", [
    dict(patience=2, factor=0.5),
    dict(mode="max", patience=1, threshold=0.1, threshold_mode="abs", cooldown=2, min_lr=0.01),
    dict(patience=0, cooldown=1, min_lr=[0.1, 0.001], threshold=0.05),
])
def test_reduce_on_plateau_equals_pytorch(kw):
    metrics = [1.0, 0.9, 0.95, 0.95, 0.96, 0.8, 0.85, 0.85, 0.85, 0.7, 0.7, 0.9, 0.9, 0.9,
               0.9, 0.9, 1.2, 0.6, 0.6, 0.6, 0.6, 0.6]
    ours, theirs = sequences(lambda o: lr_scheduler.ReduceLROnPlateau(o, **kw),
                             lambda o, S: S.ReduceLROnPlateau(o, **kw), steps=len(metrics),
                             metrics=metrics)
    assert ours == theirs
    assert ours[-1] != ours[0]


def test_plateau_state_dict_resumes_and_step_needs_the_metric():
    def make():
        opt = optim.SGD([nn.Parameter([0.0])], lr=1.0)
        return opt, lr_scheduler.ReduceLROnPlateau(opt, patience=1)
    opt, sched = make()
    for m in [1.0, 1.0, 1.0]:
        sched.step(m)
    sd = sched.state_dict()
    opt2, sched2 = make()
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sd)
    for m in [0.5, 0.6, 0.6, 0.6]:
        sched.step(m)
        sched2.step(m)
        assert opt.lr == opt2.lr
    assert opt.lr == pytest.approx(0.01)   # reduced twice by 0.1
    with pytest.raises(TypeError, match="pass the monitored value"):
        sched.step()


def test_sequential_state_dict_resumes(tmp_path):
    def make():
        opt = optim.SGD([nn.Parameter([0.0])], lr=1.0)
        return opt, lr_scheduler.SequentialLR(
            opt, [lr_scheduler.LinearLR(opt, 0.25, total_iters=3),
                  lr_scheduler.StepLR(opt, 2, 0.5)], milestones=[3])
    opt, sched = make()
    for _ in range(4):
        sched.step()
    tg.save({"o": opt.state_dict(), "s": sched.state_dict()}, tmp_path / "s.npz")
    ckpt = tg.load(tmp_path / "s.npz")
    opt2, sched2 = make()
    opt2.load_state_dict(ckpt["o"])
    sched2.load_state_dict(ckpt["s"])
    for _ in range(5):
        sched.step()
        sched2.step()
        assert opt.lr == opt2.lr
    assert opt.lr == 0.125


@pytest.mark.parametrize("make, match", [
    (lambda o: lr_scheduler.MultiStepLR(o, [0, 3]), "milestone"),
    (lambda o: lr_scheduler.LinearLR(o, start_factor=0.0), "start_factor"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=1.0), "total_steps"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=[1.0, 2.0], total_steps=5), "2 entries"),
    (lambda o: lr_scheduler.OneCycleLR(optim.Adagrad(o.params), max_lr=1.0, total_steps=5),
     "cycle_momentum"),
    (lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.StepLR(o, 2)], [3]), "milestones"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=1.0), "factor"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, mode="up"), "mode"),
])
def test_new_schedule_arguments_are_checked(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make(optim.SGD([nn.Parameter([0.0])], lr=0.1, momentum=0.9))


# ---------------------------------------------------------------- EMA

def test_ema_matches_the_recurrence_and_swaps_weights_in_and_back():
    model = nn.Sequential(nn.Linear(2, 3, rng=0), nn.ReLU(), nn.Linear(3, 1, rng=1))
    params = list(model.parameters())
    ema = optim.EMA(model, decay=0.9)
    rng = np.random.default_rng(0)
    for t in range(5):
        for p in params:
            p.data += rng.normal(size=p.shape).astype(np.float32)
        ema.update()
        # The first update copies the weights (as PyTorch's AveragedModel does).
        expected = [p.data.astype(np.float64) if t == 0 else 0.9 * e + 0.1 * p.data
                    for e, p in zip(expected if t else params, params)]
    trained = [p.data.copy() for p in params]
    arrays = [p.data for p in params]
    x = Tensor(rng.normal(size=(4, 2)).astype(np.float32))
    with ema.average_parameters():
        for p, e in zip(params, expected):
            np.testing.assert_allclose(p.data, e, rtol=1e-5)
        averaged_out = model(x).numpy()
    for p, w, arr in zip(params, trained, arrays):
        np.testing.assert_array_equal(p.data, w)
        assert p.data is arr                    # in place: the optimizer's arrays stay valid
    assert not np.allclose(averaged_out, model(x).numpy())
    assert ema.num_updates == 5


def test_ema_restores_weights_after_an_error_and_round_trips_its_state(tmp_path):
    model = nn.Linear(2, 2, rng=0)
    ema = optim.EMA(model, decay=0.5)
    ema.update()
    model.weight.data += 1.0
    ema.update()
    trained = model.weight.data.copy()
    with pytest.raises(KeyError):
        with ema.average_parameters():
            raise KeyError("boom")
    np.testing.assert_array_equal(model.weight.data, trained)
    tg.save(ema.state_dict(), tmp_path / "ema.npz")
    other = optim.EMA(nn.Linear(2, 2, rng=5), decay=0.9)
    other.load_state_dict(tg.load(tmp_path / "ema.npz"))
    assert other.decay == 0.5 and other.num_updates == 2
    np.testing.assert_array_equal(other.average[0], ema.average[0])
    with pytest.raises(ValueError, match="shape"):
        optim.EMA(nn.Linear(3, 2)).load_state_dict(ema.state_dict())
    with pytest.raises(ValueError, match="decay"):
        optim.EMA(model, decay=1.5)


def test_ema_equals_pytorch_averaged_model():
    torch = pytest.importorskip("torch")
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
    rng = np.random.default_rng(1)
    w0 = rng.normal(size=(3, 2)).astype(np.float32)
    ours = nn.Linear(2, 3, bias=False)
    ours.weight.data[...] = w0
    theirs = torch.nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(w0))
    ema = optim.EMA(ours, decay=0.8)
    avg = AveragedModel(theirs, multi_avg_fn=get_ema_multi_avg_fn(0.8))
    for _ in range(10):
        step = rng.normal(size=(3, 2)).astype(np.float32)
        ours.weight.data += step
        with torch.no_grad():
            theirs.weight += torch.tensor(step)
        ema.update()
        avg.update_parameters(theirs)
    np.testing.assert_allclose(ema.average[0], avg.module.weight.detach().numpy(), rtol=1e-6)


def test_fit_steps_reduce_on_plateau_with_the_monitored_metric():
    from tinygrad_mlp.data import DataLoader
    from tinygrad_mlp.training import fit
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    y = rng.integers(0, 2, size=40)       # random labels: validation loss will not improve
    model = nn.Linear(3, 2, rng=0)
    opt = optim.SGD(model.parameters(), lr=0.5)
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    history = fit(model, tg.functional.cross_entropy, opt, DataLoader(x[:30], y[:30], 10), 6,
                  val_loader=DataLoader(x[30:], y[30:], 10), scheduler=sched, progress=False)
    val = history.as_dict()["val_loss"]
    # Replay the rule on the recorded losses: the rate is halved after every epoch that did
    # not beat the best so far.
    lr, best, expected = 0.5, math.inf, []
    for v in val:
        if v < best * (1 - 1e-4):
            best = v
        else:
            lr *= 0.5
        expected.append(lr)
    assert [g["lr"] for g in opt.param_groups] == [expected[-1]]
    assert expected[-1] < 0.5
    with pytest.raises(ValueError, match="mode='max'"):
        fit(model, tg.functional.cross_entropy, opt, DataLoader(x, y, 10), 1,
            val_loader=DataLoader(x, y, 10), scheduler=sched, monitor="val_acc", progress=False)
    # Without a val_loader the monitor defaults to the training loss, and the schedule steps on
    # it; a validation monitor asked for without a val_loader is refused.
    with pytest.raises(ValueError, match="no val_loader"):
        fit(model, tg.functional.cross_entropy, opt, DataLoader(x, y, 10), 1,
            scheduler=sched, progress=False, restore_best=False, monitor="val_loss")
    steps = sched.state_dict().get("last_epoch")
    fit(model, tg.functional.cross_entropy, opt, DataLoader(x, y, 10), 2, scheduler=sched,
        progress=False)
    assert sched.state_dict().get("last_epoch") == steps + 2


def test_step_post_hook_drives_an_ema_and_can_be_removed():
    model = nn.Linear(2, 1, rng=0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    ema = optim.EMA(model, decay=0.5)
    calls = []
    handle = opt.register_step_post_hook(lambda o, args, kwargs: (calls.append(o), ema.update()))
    for p in model.parameters():
        p.grad = Tensor(np.ones_like(p.data))
    opt.step()
    opt.step()
    assert calls == [opt, opt] and ema.num_updates == 2
    handle.remove()
    opt.step()
    assert ema.num_updates == 2
    with pytest.raises(TypeError, match="callable"):
        opt.register_step_post_hook(3)


def test_ema_as_a_fit_callback_resumes_exactly(tmp_path):
    from tinygrad_mlp.data import DataLoader
    from tinygrad_mlp.training import fit

    def run(epochs, directory, resume=False):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(40, 3)).astype(np.float32)
        y = (x[:, 0] > 0).astype(np.int64)
        model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Tanh(), nn.Linear(4, 2, rng=1))
        opt = optim.Adam(model.parameters(), lr=0.05)
        ema = optim.EMA(model, decay=0.7)
        opt.register_step_post_hook(lambda *_: ema.update())
        fit(model, tg.functional.cross_entropy, opt,
            DataLoader(x, y, 8, shuffle=True, rng=1), epochs, callbacks=[ema],
            checkpoint_dir=directory, resume=resume, progress=False, restore_best=False)
        return ema

    straight = run(4, tmp_path / "a")
    run(2, tmp_path / "b")
    resumed = run(4, tmp_path / "b", resume=True)
    assert resumed.num_updates == straight.num_updates == 20
    for a, b in zip(straight.average, resumed.average):
        np.testing.assert_array_equal(a, b)


def test_fashion_example_rejects_a_bad_ema_decay(tmp_path):
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(root / "examples" / "fashion_mlp.py"), "--ema",
                           "1.5", "--out", str(tmp_path / "run")], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(root)}, timeout=300)
    assert proc.returncode == 2 and "--ema must be in [0, 1)" in proc.stderr
    assert not (tmp_path / "run").exists()
