"""Tests for floor 5 (training): fit, evaluate, History, callbacks, checkpoint files, progress.

Expected values come from numpy written out here (losses, accuracies, SGD-with-L2 updates), from
closed forms (learning-rate schedules), from a hand-written training loop that follows the
documented step, or from per-epoch copies recorded by a test callback; none from the training
module itself. Resume is tested in tests/test_resume.py.
"""
import csv
import io
import json
import math
import re
import sys

import numpy as np
import pytest

import tinygrad_mlp as tg
from tinygrad_mlp import functional as F
from tinygrad_mlp import nn, optim
from tinygrad_mlp.data import DataLoader
from tinygrad_mlp.optim import lr_scheduler
from tinygrad_mlp.training import (CHECKPOINT_FILE, BestModel, Callback, EarlyStopping, History,
                                   NonFiniteLossError, evaluate, fit, load_checkpoint)


def make_data(n=120, d=6, c=3, seed=0, noise=0.5):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    w = rng.normal(size=(d, c))
    y = (x @ w + noise * rng.normal(size=(n, c))).argmax(1).astype(np.int64)
    return x, y


def make_model(dropout=0.2, d=6, c=3, hidden=12):
    layers = [nn.Linear(d, hidden, rng=1), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout, rng=2))
    layers.append(nn.Linear(hidden, c, rng=3))
    return nn.Sequential(*layers)


def loaders(x, y, n_train=80, batch=8):
    return (DataLoader(x[:n_train], y[:n_train], batch, shuffle=True, rng=4),
            DataLoader(x[n_train:], y[n_train:], 16))


class Recorder(Callback):
    """Copies of the model's state and the logs at the end of every epoch."""

    def __init__(self):
        self.states, self.logs = [], []

    def on_epoch_end(self, epoch, logs, model):
        self.states.append(model.state_dict())
        self.logs.append(dict(logs))


def numpy_forward(state, x):
    """The two-layer ReLU MLP of ``make_model`` in numpy (dropout is the identity in eval)."""
    keys = sorted(k for k in state if k.endswith("weight"))
    h = x.astype(np.float64) @ state[keys[0]].T + state[keys[0][:-6] + "bias"]
    h = np.maximum(h, 0)
    return h @ state[keys[1]].T + state[keys[1][:-6] + "bias"]


def numpy_cross_entropy(logits, y):
    """Per-sample softmax cross-entropy in float64."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(y)), y]


def assert_states_equal(a, b):
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


# ---------------------------------------------------------------- the loop

def test_fit_learns_a_separable_problem():
    x, y = make_data(n=200, noise=0.0)
    model = make_model(dropout=0.0)
    train, val = loaders(x, y, n_train=150)
    history = fit(model, F.cross_entropy, optim.Adam(model.parameters(), lr=0.05), train, 15,
                  val_loader=val, progress=False)
    assert isinstance(history, History) and len(history) == 15
    assert history.epoch == list(range(1, 16))
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    logits = numpy_forward(model.state_dict(), x[150:])
    assert np.mean(logits.argmax(1) == y[150:]) > 0.9


def test_train_and_val_metrics_are_averaged_over_samples():
    # lr = 0 keeps the weights fixed, so every batch is scored by the same model; 50 samples in
    # batches of 16 leave a last batch of 2, where a mean over batches would differ.
    x, y = make_data(n=80, noise=1.0)
    model = make_model(dropout=0.0)
    train = DataLoader(x[:50], y[:50], 16, shuffle=True, rng=0)
    val = DataLoader(x[50:], y[50:], 7)
    history = fit(model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.0), train, 2,
                  val_loader=val, progress=False)
    state = model.state_dict()
    per_sample = numpy_cross_entropy(numpy_forward(state, x[:50]), y[:50])
    by_batch = np.mean([per_sample[i:i + 16].mean() for i in range(0, 50, 16)])
    assert abs(by_batch - per_sample.mean()) > 1e-3  # the two averages are distinguishable
    assert history.train_loss == pytest.approx([per_sample.mean()] * 2, rel=1e-5)
    train_acc = np.mean(numpy_forward(state, x[:50]).argmax(1) == y[:50])
    assert history.train_acc == pytest.approx([train_acc] * 2, abs=1e-12)
    val_logits = numpy_forward(state, x[50:])
    assert history.val_loss[0] == pytest.approx(numpy_cross_entropy(val_logits, y[50:]).mean(),
                                                rel=1e-5)
    assert history.val_acc[0] == pytest.approx(np.mean(val_logits.argmax(1) == y[50:]))


def test_fit_does_what_the_hand_written_loop_does():
    """Dropout, shuffling, L2 on the weight matrices, momentum and a schedule: fit (with a
    validation set in between) ends with the same bits as the loop written out here."""
    x, y = make_data()
    results = []
    for use_fit in (True, False):
        model = make_model(dropout=0.3)
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        sched = lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        train, val = loaders(x, y)
        if use_fit:
            fit(model, F.cross_entropy, opt, train, 3, val_loader=val, scheduler=sched, l2=0.01,
                progress=False, restore_best=False)
        else:
            weights = [model[0].weight, model[3].weight]
            for _ in range(3):
                model.train()
                for xb, yb in train:
                    loss = F.cross_entropy(model(xb), yb) + F.l2_penalty(weights, 0.01)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                sched.step()
        results.append((model.state_dict(), model[2].rng.bit_generator.state, opt.lr))
    (a, rng_a, lr_a), (b, rng_b, lr_b) = results
    assert_states_equal(a, b)
    assert rng_a == rng_b and lr_a == lr_b


def test_l2_decays_weight_matrices_and_not_biases():
    x, y = make_data(n=8)
    model = make_model(dropout=0.0)
    before = model.state_dict()
    zero_loss = lambda out, labels: (out * 0.0).sum()  # noqa: E731  only the penalty has a gradient
    fit(model, zero_loss, optim.SGD(model.parameters(), lr=0.1), DataLoader(x, y, 8), 1,
        l2=0.5, progress=False, monitor="train_loss")
    after = model.state_dict()
    for k in ("0.weight", "2.weight"):  # w - lr * l2 * w
        np.testing.assert_allclose(after[k], before[k] * (1 - 0.1 * 0.5), rtol=1e-6)
    for k in ("0.bias", "2.bias"):
        np.testing.assert_array_equal(after[k], before[k])


def test_the_scheduler_steps_once_per_epoch_and_history_has_each_epochs_rate():
    x, y = make_data()
    model = make_model()
    opt = optim.SGD(model.parameters(), lr=0.1)
    train, val = loaders(x, y)
    history = fit(model, F.cross_entropy, opt, train, 4, val_loader=val, progress=False,
                  scheduler=lr_scheduler.ExponentialLR(opt, gamma=0.5))
    assert history.lr == pytest.approx([0.1, 0.05, 0.025, 0.0125], rel=1e-12)
    assert opt.lr == pytest.approx(0.1 * 0.5 ** 4, rel=1e-12)


def test_train_acc_is_none_when_outputs_are_not_class_scores():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype(np.float32)
    y = np.zeros(16, dtype=np.int64)
    model = nn.Sequential(nn.Linear(3, 1, rng=0), nn.Flatten(0))  # outputs of shape (N,)
    loss = lambda out, labels: (out * out).mean()  # noqa: E731
    history = fit(model, loss, optim.SGD(model.parameters(), lr=0.1), DataLoader(x, y, 4),
                  2, progress=False, monitor="train_loss")
    assert history.train_acc == [None, None] and history.val_loss == [None, None]


# ---------------------------------------------------------------- evaluate

def test_evaluate_matches_numpy_without_graph_or_dropout():
    x, y = make_data(n=50, noise=1.0)
    model = make_model(dropout=0.5)
    grad_enabled = []

    def loss_fn(out, labels):
        grad_enabled.append(tg.is_grad_enabled())
        return F.cross_entropy(out, labels)

    result = evaluate(model, DataLoader(x, y, 16), loss_fn)
    logits = numpy_forward(model.state_dict(), x)
    assert result.loss == pytest.approx(numpy_cross_entropy(logits, y).mean(), rel=1e-5)
    assert result.accuracy == pytest.approx(np.mean(logits.argmax(1) == y))
    assert result.predictions.dtype == np.int64
    np.testing.assert_array_equal(result.predictions, logits.argmax(1))
    np.testing.assert_array_equal(result.labels, y)
    assert grad_enabled and not any(grad_enabled)
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("set_mode", [lambda m: m.train(), lambda m: m.eval(),
                                      lambda m: (m.train(), m[2].eval())])
def test_evaluate_restores_every_modules_mode(set_mode):
    x, y = make_data(n=20)
    model = make_model(dropout=0.5)
    set_mode(model)
    modes = [m.training for m in model.modules()]
    evaluate(model, DataLoader(x, y, 8))
    assert [m.training for m in model.modules()] == modes


def test_evaluate_rejects_an_empty_loader_and_a_non_scalar_loss():
    x, y = make_data(n=10)
    with pytest.raises(ValueError, match="no batches"):
        evaluate(make_model(), [])
    per_sample = lambda out, labels: F.cross_entropy(out, labels, reduction="none")  # noqa: E731
    with pytest.raises(TypeError, match="scalar Tensor.*shape \\(5,\\)"):
        evaluate(make_model(), DataLoader(x, y, 5), per_sample)


# ---------------------------------------------------------------- best model, early stopping

@pytest.mark.parametrize("monitor, lr, pick", [("val_loss", 0.05, np.argmin),
                                                ("val_acc", 0.5, np.argmax)])
def test_best_model_restores_and_saves_the_best_epoch(tmp_path, monitor, lr, pick):
    x, y = make_data()
    model = make_model()
    train, val = loaders(x, y)
    recorder = Recorder()
    path = tmp_path / "best.npz"
    history = fit(model, F.cross_entropy, optim.SGD(model.parameters(), lr=lr, momentum=0.9),
                  train, 8, val_loader=val, progress=False, monitor=monitor,
                  callbacks=[BestModel(monitor, path=path), recorder])
    values = [logs[monitor] for logs in recorder.logs]
    best = int(pick(values))  # numpy picks the first of equal values, as "best" should
    assert best != len(values) - 1, "the setup must make an earlier epoch the best"
    assert history.best_epoch == best + 1
    assert_states_equal(model.state_dict(), recorder.states[best])
    assert_states_equal(tg.load(path), recorder.states[best])


def test_best_model_is_added_by_default_and_can_be_left_out():
    x, y = make_data()
    results = {}
    for restore in (True, False):
        model = make_model()
        train, val = loaders(x, y)
        recorder = Recorder()
        fit(model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.05, momentum=0.9), train,
            8, val_loader=val, progress=False, callbacks=[recorder], restore_best=restore)
        results[restore] = (model.state_dict(), recorder)
    state, recorder = results[True]
    best = int(np.argmin([logs["val_loss"] for logs in recorder.logs]))
    assert best != 7
    assert_states_equal(state, recorder.states[best])
    state, recorder = results[False]
    assert_states_equal(state, recorder.states[-1])


def test_best_model_ignores_non_finite_values_and_honours_min_delta():
    model = make_model()
    cb = BestModel("val_loss", min_delta=0.1)
    cb.on_train_begin(model, resumed=False)
    for epoch, value in enumerate([1.0, math.nan, 0.95, math.inf, 0.85, -math.inf], 1):
        cb.on_epoch_end(epoch, {"val_loss": value}, model)
    assert (cb.best, cb.best_epoch) == (0.85, 5)


@pytest.mark.parametrize("values, kw, stop_at", [
    ([1.0, 0.8, 0.85, 0.81, 0.79, 0.9, 0.9, 0.9], dict(patience=3), 8),
    ([1.0, 0.8, 0.85, 0.81, 0.79, 0.9, 0.9, 0.9], dict(patience=2), 4),
    ([1.0, 0.8, 0.85, 0.81, 0.79, 0.9, 0.9, 0.9], dict(patience=3, min_delta=0.05), 5),
    ([0.5, 0.6, 0.6, 0.7, 0.6, 0.6], dict(monitor="val_acc", patience=2), 6),
    ([0.5, 0.6, 0.6, 0.7, 0.6, 0.6], dict(monitor="val_acc", patience=2, mode="min"), 3),
    ([1.0, math.nan, math.nan], dict(patience=2), 3),
])
def test_early_stopping_counts_epochs_without_improvement(values, kw, stop_at):
    cb = EarlyStopping(**kw)
    monitor = kw.get("monitor", "val_loss")
    cb.on_train_begin(None, resumed=False)
    stopped_at = next(e for e, v in enumerate(values, 1)
                      if cb.on_epoch_end(e, {monitor: v}, None))
    assert stopped_at == cb.stopped_epoch == stop_at


def test_early_stopping_ends_fit_and_says_so(capsys):
    x, y = make_data()
    model = make_model()
    train, val = loaders(x, y)
    recorder = Recorder()
    stopper = EarlyStopping("val_loss", patience=2)
    history = fit(model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.5, momentum=0.9),
                  train, 30, val_loader=val, callbacks=[stopper, recorder])
    values = [logs["val_loss"] for logs in recorder.logs]
    best = int(np.argmin(values))
    assert len(values) == best + 1 + 2 < 30  # two epochs without improvement after the best
    assert len(history) == stopper.stopped_epoch == len(values)
    out = capsys.readouterr().out
    assert f"stopped by EarlyStopping after epoch {len(values)}" in out
    assert_states_equal(model.state_dict(), recorder.states[best])


# ---------------------------------------------------------------- non-finite values

class PoisonedLoss:
    """Cross-entropy, but NaN at one training step (counted only while gradients are on, so the
    validation passes do not count)."""

    def __init__(self, at_step):
        self.at_step, self.calls = at_step, 0

    def __call__(self, out, labels):
        loss = F.cross_entropy(out, labels)
        if tg.is_grad_enabled():
            self.calls += 1
            if self.calls == self.at_step:
                return loss * float("nan")
        return loss


def test_a_non_finite_loss_stops_with_epoch_and_step_and_keeps_the_last_checkpoint(tmp_path):
    x, y = make_data()
    model = make_model()
    train, val = loaders(x, y, n_train=40)  # 5 steps per epoch: step 8 is epoch 2, step 3
    recorder = Recorder()
    # The loss counts its calls in an attribute: a compiled step would not count, so fit sees
    # the change during capture and runs the step eagerly, saying so.
    with pytest.raises(NonFiniteLossError, match=r"nan at epoch 2/4, step 3;.*last checkpoint"), \
            pytest.warns(tg.JitWarning, match="changes the attributes of its PoisonedLoss"):
        fit(model, PoisonedLoss(8), optim.SGD(model.parameters(), lr=0.1), train, 4,
            val_loader=val, callbacks=[recorder], checkpoint_dir=tmp_path, progress=False)
    assert all(np.isfinite(p.data).all() for p in model.parameters())
    ckpt = load_checkpoint(tmp_path)
    assert ckpt["epoch"] == 1
    assert_states_equal(ckpt["model"], recorder.states[0])
    assert json.loads((tmp_path / "history.json").read_text())["epoch"] == [1]


class PoisonedSGD(optim.SGD):
    """SGD that writes a NaN into the first weight at one step."""

    at_step = 10

    def step(self, closure=None):
        super().step(closure)
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == self.at_step:
            self.params[0].data[0, 0] = np.nan


def test_nan_weights_at_the_end_of_an_epoch_are_not_checkpointed(tmp_path):
    x, y = make_data()
    model = make_model()
    train, val = loaders(x, y, n_train=40)  # step 10 is the last step of epoch 2
    recorder = Recorder()
    with pytest.raises(NonFiniteLossError, match=r"weight became NaN.*epoch 2/3"):
        fit(model, F.cross_entropy, PoisonedSGD(model.parameters(), lr=0.1), train, 3,
            val_loader=val, callbacks=[recorder], checkpoint_dir=tmp_path, progress=False)
    ckpt = load_checkpoint(tmp_path)
    assert ckpt["epoch"] == 1
    assert_states_equal(ckpt["model"], recorder.states[0])


# ---------------------------------------------------------------- files

def test_checkpoint_holds_everything_a_resume_needs(tmp_path):
    x, y = make_data()
    model = make_model()
    opt = optim.Adam(model.parameters(), lr=0.01)
    sched = lr_scheduler.StepLR(opt, 1, 0.9)
    train, val = loaders(x, y)
    stopper = EarlyStopping(patience=50)
    history = fit(model, F.cross_entropy, opt, train, 3, val_loader=val, scheduler=sched,
                  callbacks=[stopper], checkpoint_dir=tmp_path, progress=False, restore_best=False)
    ckpt = load_checkpoint(tmp_path / CHECKPOINT_FILE)
    assert ckpt["epoch"] == 3 and ckpt["stopped"] is False
    assert_states_equal(ckpt["model"], model.state_dict())
    assert ckpt["optimizer"]["param_groups"]["0"]["lr"] == opt.lr
    for i, s in enumerate(opt.state):
        np.testing.assert_array_equal(ckpt["optimizer"]["state"][str(i)]["exp_avg"],
                                      s["exp_avg"])
    assert ckpt["scheduler"]["last_epoch"] == 3
    assert ckpt["train_loader"] == train.state_dict()
    assert ckpt["module_rngs"] == {"2": model[2].rng.bit_generator.state}
    assert ckpt["callbacks"] == {"0:EarlyStopping": stopper.state_dict()}
    assert ckpt["history"] == history.as_dict()


def test_history_files_are_written_after_every_epoch(tmp_path):
    x, y = make_data()
    model = make_model()
    train, val = loaders(x, y)
    seen = []

    class ReadFiles(Callback):  # runs before this epoch's files are written
        def on_epoch_end(self, epoch, logs, model):
            path = tmp_path / "history.json"
            seen.append(json.loads(path.read_text())["epoch"] if path.exists() else None)

    history = fit(model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.1), train, 3,
                  val_loader=val, callbacks=[ReadFiles()], checkpoint_dir=tmp_path,
                  progress=False)
    assert seen == [None, [1], [1, 2]]
    assert json.loads((tmp_path / "history.json").read_text()) == history.as_dict()
    rows = list(csv.DictReader(io.StringIO((tmp_path / "metrics.csv").read_text())))
    assert list(rows[0]) == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr",
                             "seconds"]
    for key, values in history.as_dict().items():
        assert [float(r[key]) for r in rows] == values
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_metrics_csv_leaves_missing_validation_empty(tmp_path):
    x, y = make_data()
    model = make_model()
    fit(model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.1), loaders(x, y)[0], 2,
        checkpoint_dir=tmp_path, progress=False, monitor="train_loss")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "metrics.csv").read_text())))
    assert [(r["val_loss"], r["val_acc"]) for r in rows] == [("", ""), ("", "")]


def test_an_existing_checkpoint_is_never_overwritten_without_resume(tmp_path):
    x, y = make_data()

    def run(**kw):
        model = make_model()
        train, val = loaders(x, y)
        return fit(model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.1), train, 2,
                   val_loader=val, checkpoint_dir=tmp_path, progress=False, **kw)

    run()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(FileExistsError, match="checkpoint.npz.*resume=True"):
        run()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    (tmp_path / CHECKPOINT_FILE).unlink()
    with pytest.raises(FileExistsError, match="history.json"):
        run()


def test_resume_needs_a_checkpoint_unless_auto(tmp_path):
    x, y = make_data()
    model = make_model()
    train, val = loaders(x, y)
    args = (model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.1), train, 2)
    with pytest.raises(FileNotFoundError, match="holds no checkpoint.npz"):
        fit(*args, val_loader=val, checkpoint_dir=tmp_path, resume=True, progress=False)
    with pytest.raises(ValueError, match="needs the checkpoint_dir"):
        fit(*args, val_loader=val, resume=True, progress=False)
    history = fit(*args, val_loader=val, checkpoint_dir=tmp_path / "new", resume="auto",
                  progress=False)
    assert len(history) == 2 and load_checkpoint(tmp_path / "new")["epoch"] == 2


def test_best_model_refuses_to_overwrite_a_file_of_another_run(tmp_path):
    path = tmp_path / "best.npz"
    path.write_bytes(b"someone's model")
    x, y = make_data()
    model = make_model()
    train, val = loaders(x, y)
    with pytest.raises(FileExistsError, match="best.npz already exists"):
        fit(model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.1), train, 1,
            val_loader=val, callbacks=[BestModel(path=path)], progress=False)
    assert path.read_bytes() == b"someone's model"


# ---------------------------------------------------------------- progress

LINE = re.compile(r"epoch (\d+)/3  train_loss (\S+)  train_acc (\S+)  val_loss (\S+)  "
                  r"val_acc (\S+)  lr (\S+)  \d+\.\ds")


def test_plain_progress_is_one_line_per_epoch(capsys):
    x, y = make_data()
    model = make_model()
    train, val = loaders(x, y)
    history = fit(model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.1), train, 3,
                  val_loader=val)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for i, line in enumerate(lines):
        m = LINE.fullmatch(line)
        assert m, line
        assert int(m[1]) == i + 1
        for group, key in zip(m.groups()[1:5], ("train_loss", "train_acc", "val_loss", "val_acc")):
            assert float(group) == pytest.approx(getattr(history, key)[i], abs=5e-5)
        assert float(m[6]) == pytest.approx(0.1)


def test_progress_false_prints_nothing(capsys):
    x, y = make_data()
    model = make_model()
    train, val = loaders(x, y)
    fit(model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.1), train, 2,
        val_loader=val, progress=False)
    assert capsys.readouterr().out == ""


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_a_tqdm_bar_per_epoch(monkeypatch):
    pytest.importorskip("tqdm")
    out = Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    x, y = make_data()
    model = make_model()
    train, val = loaders(x, y)
    fit(model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.1), train, 2, val_loader=val)
    text = out.getvalue()
    for epoch in (1, 2):
        assert re.search(rf"epoch {epoch}/2: 100%.*10/10 .*batch/s.*val_loss \d\.\d{{4}}", text)


def test_a_terminal_without_tqdm_gets_plain_lines(monkeypatch):
    out = Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes "import tqdm" fail
    x, y = make_data()
    model = make_model()
    train, val = loaders(x, y)
    fit(model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.1), train, 3, val_loader=val)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and all(LINE.fullmatch(line) for line in lines)


# ---------------------------------------------------------------- History and bad arguments

def test_history_as_dict_and_best_epoch():
    h = History("val_loss")
    for e, (loss, acc) in enumerate([(0.9, 0.5), (0.7, 0.6), (0.7, 0.8), (0.8, 0.8)], 1):
        h.append({"epoch": e, "train_loss": 1.0, "train_acc": 0.5, "val_loss": loss,
                  "val_acc": acc, "lr": 0.1, "seconds": 1.0})
    d = h.as_dict()
    assert list(d) == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr",
                       "seconds"]
    assert d["val_loss"] == [0.9, 0.7, 0.7, 0.8] and h.best_epoch == 2
    assert History.from_dict(d, "val_acc").best_epoch == 3
    assert History("train_loss").best_epoch is None
    d["lr"] = d["lr"][:2]
    with pytest.raises(ValueError, match="differ in length"):
        History.from_dict(d)


@pytest.mark.parametrize("kw, error, match", [
    (dict(epochs=0), ValueError, "epochs must be a positive integer"),
    (dict(epochs=2.5), ValueError, "epochs must be a positive integer"),
    (dict(l2=-0.1), ValueError, "l2 must be a finite number >= 0"),
    (dict(monitor="loss"), ValueError, "monitor must be one of"),
    (dict(resume="yes"), ValueError, "resume must be False, True or 'auto'"),
    (dict(val_loader=None, monitor="val_loss"), ValueError,
     r"BestModel\(monitor='val_loss'\).*no val_loader"),
    (dict(val_loader=None, restore_best=False, callbacks=[EarlyStopping("val_acc")]), ValueError,
     r"EarlyStopping\(monitor='val_acc'\) watches a validation metric"),
    (dict(loss_fn=lambda o, t: F.cross_entropy(o, t, reduction="none")), TypeError,
     r"must return a scalar Tensor.*shape \(8,\)"),
])
def test_bad_arguments_are_named(kw, error, match):
    x, y = make_data()
    model = make_model()
    train, val = loaders(x, y)
    args = dict(loss_fn=F.cross_entropy, optimizer=optim.SGD(model.parameters(), lr=0.1),
                train_loader=train, epochs=2, val_loader=val, progress=False)
    args.update(kw)
    before = model.state_dict()
    with pytest.raises(error, match=match):
        fit(model, **args)
    if error is ValueError:
        assert_states_equal(model.state_dict(), before)


@pytest.mark.parametrize("make, match", [
    (lambda: BestModel("accuracy"), "monitor must be one of"),
    (lambda: BestModel(mode="up"), "mode must be 'min', 'max' or None"),
    (lambda: EarlyStopping(patience=-1), "patience must be an integer >= 0"),
    (lambda: EarlyStopping(min_delta=-0.1), "min_delta must be a number >= 0"),
])
def test_bad_callback_arguments_are_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()
