"""Tests for floor 4 (optim): update rules against hand-computed steps, state dicts, schedules.

The expected parameter values are worked out by hand (written as numbers) or by the textbook
formulas re-stated here (Adam with bias-corrected ``m_hat``/``v_hat``), and the schedules against
their closed forms; none comes from the optimiser under test.
"""
import math
import tracemalloc

import numpy as np
import pytest

import tinygrad_mlp as tg
from tinygrad_mlp import Tensor, nn, optim
from tinygrad_mlp.optim import lr_scheduler


def run(opt_cls, grads, p0=1.0, dtype=np.float64, **kw):
    """Apply ``grads`` (one per step; a callable of p for p-dependent ones) and return the path."""
    p = nn.Parameter(np.array([p0], dtype=dtype))
    opt = opt_cls([p], **kw)
    path = []
    for g in grads:
        p.grad = Tensor(np.array([g(p.data[0]) if callable(g) else g], dtype=dtype))
        opt.step()
        path.append(p.data[0])
    return np.array(path)


# ---------------------------------------------------------------- SGD by hand

def test_plain_sgd():
    p = nn.Parameter(np.array([1.0, -2.0]))
    opt = optim.SGD([p], lr=0.1)
    expected = [[0.95, -2.1], [1.05, -2.1], [0.85, -2.3]]
    for g, want in zip([[0.5, 1.0], [-1.0, 0.0], [2.0, 2.0]], expected):
        p.grad = Tensor(np.array(g))
        opt.step()
        np.testing.assert_allclose(p.data, want, rtol=1e-14)


@pytest.mark.parametrize("kw, expected", [
    # buf: 1, 1.9, 2.71 -> p: 0.9, 0.71, 0.439
    (dict(momentum=0.9), [0.9, 0.71, 0.439]),
    # step direction g + 0.9 buf: 1.9, 2.71, 3.439
    (dict(momentum=0.9, nesterov=True), [0.81, 0.539, 0.1951]),
    # the first buffer is the gradient itself; later ones add (1 - 0.5) g: 1, 1.4, 1.76
    (dict(momentum=0.9, dampening=0.5), [0.9, 0.76, 0.584]),
])
def test_sgd_momentum_variants(kw, expected):
    np.testing.assert_allclose(run(optim.SGD, [1.0] * 3, lr=0.1, **kw), expected, rtol=1e-12)


def test_sgd_weight_decay_with_and_without_momentum():
    # no momentum, zero gradient: p <- p - 0.1 * 0.1 p = 0.99 p
    np.testing.assert_allclose(run(optim.SGD, [0.0] * 3, lr=0.1, weight_decay=0.1),
                               [0.99, 0.9801, 0.970299], rtol=1e-12)
    # g = 1 + 0.5 p:  1.5 -> buf 1.5, p 0.85;  1.425 -> buf 2.775, p 0.5725;
    # 1.28625 -> buf 3.78375, p 0.194125
    np.testing.assert_allclose(run(optim.SGD, [1.0] * 3, lr=0.1, momentum=0.9, weight_decay=0.5),
                               [0.85, 0.5725, 0.194125], rtol=1e-12)


# ---------------------------------------------------------------- Adam and AdamW by hand

def adam_reference(p, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                   decoupled=False):
    b1, b2 = betas
    m = v = 0.0
    path = []
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        p = p - lr * m_hat / (math.sqrt(v_hat) + eps)
        path.append(p)
    return np.array(path)


def test_adam_first_step_is_lr_times_sign_thanks_to_bias_correction():
    # m_hat = g and v_hat = g^2 after one step, whatever the betas: the step is
    # lr * g / (|g| + eps), i.e. lr * sign(g) up to eps.
    for g in (0.5, -3.0, 1e-3):
        got = run(optim.Adam, [g], lr=0.1, betas=(0.8, 0.99))[0]
        np.testing.assert_allclose(got, 1.0 - 0.1 * g / (abs(g) + 1e-8), rtol=1e-12)


def test_adam_several_steps():
    grads = [0.5, -1.0, 0.25, 2.0, -0.1]
    np.testing.assert_allclose(run(optim.Adam, grads, lr=0.1),
                               adam_reference(1.0, grads, 0.1), rtol=1e-12)
    # Step two by hand: m = -0.055, v = 0.00124975, m_hat = m / 0.19, v_hat = v / 0.001999
    want = 1.0 - 0.1 / (1 + 2e-8) + 0.1 * (0.055 / 0.19) / (math.sqrt(0.00124975 / 0.001999) + 1e-8)
    np.testing.assert_allclose(run(optim.Adam, grads[:2], lr=0.1)[1], want, rtol=1e-12)
    np.testing.assert_allclose(run(optim.Adam, grads, lr=0.05, weight_decay=0.3),
                               adam_reference(1.0, grads, 0.05, weight_decay=0.3), rtol=1e-12)


def test_adamw_decouples_weight_decay_from_the_gradient():
    # With a zero gradient AdamW only shrinks: p <- p (1 - lr wd) = 0.99 p ...
    np.testing.assert_allclose(run(optim.AdamW, [0.0] * 3, lr=0.1, weight_decay=0.1),
                               [0.99, 0.9801, 0.970299], rtol=1e-12)
    # ... while Adam's L2 decay goes through the moments: its first step is lr * sign(p).
    np.testing.assert_allclose(run(optim.Adam, [0.0], lr=0.1, weight_decay=0.1), [0.9],
                               rtol=1e-6)
    grads = [0.5, -1.0, 0.25, 2.0]
    np.testing.assert_allclose(run(optim.AdamW, grads, lr=0.1, weight_decay=0.2),
                               adam_reference(1.0, grads, 0.1, weight_decay=0.2, decoupled=True),
                               rtol=1e-12)
    assert optim.AdamW([nn.Parameter([1.0])]).weight_decay == 1e-2


# ---------------------------------------------------------------- mechanics

@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True,
                                                       weight_decay=1e-3),
                                  lambda ps: optim.Adam(ps, weight_decay=0.1),
                                  lambda ps: optim.AdamW(ps, amsgrad=True),
                                  lambda ps: optim.RMSprop(ps, momentum=0.9, centered=True,
                                                           weight_decay=0.1),
                                  lambda ps: optim.RMSprop(ps),
                                  lambda ps: optim.Adagrad(ps, weight_decay=0.1, lr_decay=0.1),
                                  lambda ps: optim.SGD([{"params": ps[:1]},
                                                        {"params": ps[1:], "lr": 0.5}], lr=0.1)])
def test_updates_in_place_in_float32_without_graph_or_per_step_allocation(make):
    ps = [nn.Parameter(np.ones((256, 512), dtype=np.float32)), nn.Parameter(np.ones(256))]
    opt = make(ps)
    arrays = [p.data for p in ps]
    for p in ps:
        p.grad = Tensor(np.full(p.shape, 0.5, dtype=p.dtype))
    opt.step()
    opt.step()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        opt.step()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < 16_000, f"a step allocated {peak} bytes; a (256, 512) float32 array is 524288"
    for p, arr in zip(ps, arrays):
        assert p.data is arr and p.grad_fn is None and p.is_leaf
    assert ps[0].dtype == np.float32 and ps[1].dtype == np.float64
    assert not np.array_equal(arrays[0], np.ones((256, 512)))
    for s in opt.state[0].values():
        assert not isinstance(s, np.ndarray) or s.dtype == np.float32


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1),
                                  lambda ps: optim.Adam(ps, lr=0.1, weight_decay=0.1)])
def test_column_major_parameters_update_like_row_major_ones(make):
    # Linear keeps its weight column-major; the scratch arrays follow each parameter's layout.
    rng = np.random.default_rng(0)
    w0, grads = rng.normal(size=(3, 5)), [rng.normal(size=(3, 5)) for _ in range(3)]
    c, f = nn.Parameter(w0), nn.Parameter(np.asfortranarray(w0))
    opts = make([c]), make([f])
    for g in grads:
        c.grad, f.grad = Tensor(g), Tensor(np.asfortranarray(g))
        for opt in opts:
            opt.step()
    assert f.data.flags.f_contiguous and not f.data.flags.c_contiguous
    np.testing.assert_array_equal(f.data, c.data)
    assert not np.allclose(c.data, w0)


def test_parameters_without_grad_are_skipped():
    a, b = nn.Parameter([1.0]), nn.Parameter([2.0])
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = Tensor(np.array([1.0], dtype=np.float32))
    opt.step()
    opt.step()
    assert b.data[0] == 2.0 and opt.state[1] == {} and opt.state[0]["step"] == 2
    b.grad = Tensor(np.array([1.0], dtype=np.float32))
    opt.step()
    assert opt.state[1]["step"] == 1
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_schedule_changes_the_rate_the_optimizer_uses():
    p = nn.Parameter(np.array([0.0]))
    opt = optim.SGD([p], lr=1.0)
    sched = lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    path = []
    for _ in range(3):
        p.grad = Tensor(np.array([1.0]))
        opt.step()
        sched.step()
        path.append(p.data[0])
    assert path == [-1.0, -1.5, -1.75]


@pytest.mark.parametrize("make, match", [
    (lambda p: optim.SGD(p, lr=-0.1), "learning rate -0.1"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=-1), "momentum -1"),
    (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "nesterov"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "nesterov"),
    (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1e-4), "weight_decay"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.999)), r"betas\[0\] = 1.0"),
    (lambda p: optim.Adam(p, betas=(0.9, -0.1)), r"betas\[1\]"),
    (lambda p: optim.Adam(p, betas=0.9), "pair"),
    (lambda p: optim.AdamW(p, eps=-1.0), "eps"),
    (lambda p: optim.SGD(p, lr="fast"), "lr must be a number"),
    (lambda p: optim.SGD([], lr=0.1), "empty parameter list"),
    (lambda p: optim.SGD(p[0], lr=0.1), "single Tensor"),
    (lambda p: optim.SGD(nn.Linear(2, 2), lr=0.1), r"model.parameters\(\)"),
    (lambda p: optim.SGD([{"params": p, "weight_deacy": 0.0}], lr=0.1), "weight_deacy"),
    (lambda p: optim.SGD([{"params": p}, nn.Parameter([2.0])], lr=0.1), "mixes"),
    (lambda p: optim.SGD([{"params": p}, {"params": p}], lr=0.1), "appears twice"),
    (lambda p: optim.SGD([{"params": p, "lr": -1.0}], lr=0.1), "learning rate -1.0"),
    (lambda p: optim.SGD([{"weight_decay": 0.0}], lr=0.1), "'params'"),
    (lambda p: optim.SGD(p + p, lr=0.1), "appears twice"),
    (lambda p: optim.SGD([p[0] * 2], lr=0.1), "leaf"),
])
def test_bad_arguments_are_named(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make([nn.Parameter([1.0])])


# ---------------------------------------------------------------- state dicts and resuming

def train_steps(model, opt, sched, steps, rng):
    for _ in range(steps):
        x = Tensor(rng.normal(size=(8, 3)).astype(np.float32))
        y = rng.integers(0, 2, size=8)
        opt.zero_grad()
        tg.functional.cross_entropy(model(x), y).backward()
        opt.step()
        sched.step()


@pytest.mark.parametrize("make_opt", [
    lambda ps: optim.SGD(ps, lr=0.5, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda ps: optim.Adam(ps, lr=0.01, betas=(0.8, 0.99)),
    lambda ps: optim.AdamW(ps, lr=0.01),
])
def test_training_resumes_exactly_from_a_saved_checkpoint(tmp_path, make_opt):
    def fresh():
        model = nn.Sequential(nn.Linear(3, 5, rng=0), nn.Tanh(), nn.Linear(5, 2, rng=1))
        opt = make_opt(model.parameters())
        return model, opt, lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=1e-3)

    model, opt, sched = fresh()
    train_steps(model, opt, sched, 3, np.random.default_rng(0))
    tg.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
             "scheduler": sched.state_dict()}, tmp_path / "ckpt.npz")
    rng_state = np.random.default_rng(1)
    train_steps(model, opt, sched, 3, rng_state)

    model2, opt2, sched2 = fresh()
    ckpt = tg.load(tmp_path / "ckpt.npz")
    model2.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["optimizer"])
    sched2.load_state_dict(ckpt["scheduler"])
    train_steps(model2, opt2, sched2, 3, np.random.default_rng(1))
    for a, b in zip(model.parameters(), model2.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    assert opt.lr == opt2.lr and sched.get_last_lr() == sched2.get_last_lr()


def test_optimizer_state_dict_format_and_copies():
    p = nn.Parameter(np.array([1.0, 2.0]))
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = Tensor(np.array([1.0, 1.0]))
    opt.step()
    sd = opt.state_dict()
    assert sd["type"] == "SGD"
    assert sd["param_groups"]["0"] == {"params": [0], "lr": 0.1, "momentum": 0.9, "dampening": 0.0,
                                     "nesterov": False, "weight_decay": 0.0}
    np.testing.assert_array_equal(sd["state"]["0"]["momentum_buffer"], [1.0, 1.0])
    opt.step()
    np.testing.assert_array_equal(sd["state"]["0"]["momentum_buffer"], [1.0, 1.0])


def test_optimizer_load_state_dict_errors():
    p = nn.Parameter(np.array([1.0, 2.0]))
    sgd = optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = Tensor(np.array([1.0, 1.0]))
    sgd.step()
    with pytest.raises(ValueError, match="for 'SGD', not 'Adam'"):
        optim.Adam([p]).load_state_dict(sgd.state_dict())
    other = optim.SGD([nn.Parameter(np.zeros(3))], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"momentum_buffer of parameter 0 has shape \(2,\)"):
        other.load_state_dict(sgd.state_dict())
    bad = sgd.state_dict()
    bad["param_groups"]["0"]["lr"] = -1.0
    with pytest.raises(ValueError, match="learning rate"):
        sgd.load_state_dict(bad)
    assert sgd.lr == 0.1


# ---------------------------------------------------------------- schedules (12 epochs)

def schedule(make, epochs=12, lr=0.5):
    opt = optim.SGD([nn.Parameter([0.0])], lr=lr)
    sched = make(opt)
    rates = [opt.lr]
    assert sched.get_last_lr() == [opt.lr]
    for _ in range(epochs):
        sched.step()
        rates.append(opt.lr)
        assert sched.get_last_lr() == [opt.lr]
    return np.array(rates)


def test_step_lr():
    got = schedule(lambda o: lr_scheduler.StepLR(o, step_size=3, gamma=0.1))
    np.testing.assert_allclose(got, [0.5 * 0.1 ** (e // 3) for e in range(13)], rtol=1e-12)


def test_exponential_lr():
    got = schedule(lambda o: lr_scheduler.ExponentialLR(o, gamma=0.8))
    np.testing.assert_allclose(got, [0.5 * 0.8 ** e for e in range(13)], rtol=1e-12)


@pytest.mark.parametrize("T_max, eta_min", [(12, 0.0), (5, 0.01)])
def test_cosine_annealing_lr(T_max, eta_min):
    # Past T_max the cosine keeps going (back up), as PyTorch's recurrence does.
    got = schedule(lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=T_max, eta_min=eta_min))
    want = [eta_min + (0.5 - eta_min) * (1 + math.cos(math.pi * e / T_max)) / 2
            for e in range(13)]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_lambda_lr_applies_the_factor_from_epoch_zero():
    got = schedule(lambda o: lr_scheduler.LambdaLR(o, lambda e: 1 / (e + 2)))
    np.testing.assert_allclose(got, [0.5 / (e + 2) for e in range(13)], rtol=1e-12)


def test_the_seed_projects_exponential_and_step_decay():
    k = 0.3
    exp_decay = schedule(lambda o: lr_scheduler.ExponentialLR(o, gamma=math.exp(-k)))
    np.testing.assert_allclose(exp_decay, [0.5 * math.exp(-k * t) for t in range(13)],
                               rtol=1e-12)
    k = 0.7
    step_decay = schedule(lambda o: lr_scheduler.ExponentialLR(o, gamma=k))
    np.testing.assert_allclose(step_decay, [0.5 * k ** t for t in range(13)], rtol=1e-12)


def test_scheduler_state_dict_resumes_and_rejects_other_types():
    opt = optim.SGD([nn.Parameter([0.0])], lr=1.0)
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=6)
    for _ in range(4):
        sched.step()
    sd = sched.state_dict()
    assert sd == {"type": "CosineAnnealingLR", "last_epoch": 4, "base_lrs": [1.0],
                  "last_lr": [opt.lr], "T_max": 6, "eta_min": 0.0}
    opt2 = optim.SGD([nn.Parameter([0.0])], lr=opt.lr)
    sched2 = lr_scheduler.CosineAnnealingLR(opt2, T_max=6)
    sched2.load_state_dict(sd)
    sched.step()
    sched2.step()
    assert opt2.lr == opt.lr
    with pytest.raises(ValueError, match="StepLR"):
        lr_scheduler.StepLR(opt, step_size=2).load_state_dict(sd)


@pytest.mark.parametrize("make, match", [
    (lambda o: lr_scheduler.StepLR(o, step_size=0), "step_size must be a positive integer"),
    (lambda o: lr_scheduler.ExponentialLR(o, gamma=-0.5), "gamma must be a positive number"),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=2.5), "T_max"),
    (lambda o: lr_scheduler.LambdaLR(o, 0.5), "callable"),
    (lambda o: lr_scheduler.StepLR("opt", step_size=1), "expected an Optimizer"),
])
def test_scheduler_bad_arguments(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make(optim.SGD([nn.Parameter([0.0])], lr=0.1))


# ---------------------------------------------------------------- optional: against PyTorch

@pytest.mark.parametrize("name, kw", [
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1)),
])
def test_trajectories_match_pytorch(name, kw):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(4, 3))
    grads = [rng.normal(size=(4, 3)) for _ in range(8)]
    ours = nn.Parameter(w0)
    theirs = torch.nn.Parameter(torch.tensor(w0))
    opt, topt = getattr(optim, name)([ours], **kw), getattr(torch.optim, name)([theirs], **kw)
    for g in grads:
        ours.grad = Tensor(g)
        theirs.grad = torch.tensor(g)
        opt.step()
        topt.step()
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name, kw", [("StepLR", dict(step_size=3, gamma=0.5)),
                                      ("ExponentialLR", dict(gamma=0.9)),
                                      ("CosineAnnealingLR", dict(T_max=5, eta_min=0.01))])
def test_schedules_match_pytorch_exactly(name, kw):
    torch = pytest.importorskip("torch")
    ours = schedule(lambda o: getattr(lr_scheduler, name)(o, **kw), lr=0.3)
    topt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.3)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kw)
    theirs = [topt.param_groups[0]["lr"]]
    for _ in range(12):
        topt.step()
        tsched.step()
        theirs.append(topt.param_groups[0]["lr"])
    assert ours.tolist() == theirs


def test_a_model_instead_of_its_parameters_is_a_type_error():
    # docs/nn.md promises TypeError (the argument has the wrong type), not ValueError
    with pytest.raises(TypeError, match=r"model\.parameters\(\)"):
        optim.Adam(nn.Linear(2, 2))
