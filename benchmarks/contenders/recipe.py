"""The example's recipe as a benchmark pair: examples/fashion_mlp.py's default model and training
step, in tinygrad_mlp (compiled with ``tg.jit``, eager, and through ``training.fit``) and in
PyTorch. Used by ``benchmarks/recipe_epoch.py``; ``tests/test_benchmark_contenders.py`` checks
that ``RECIPE`` still matches the example's ``DEFAULTS``.

The model is 784-512-256-10 with ReLU and Dropout(0.2) after each hidden layer, trained with
AdamW (lr 1e-3, weight decay 1e-2 on every parameter, as the example's ``build_optimizer``) on
cross-entropy with label smoothing 0.1, in shuffled batches of 64. Every contender starts from
the same weights (``common.init_weights``) and, like ``fit``, reads the loss (``.item()``) and
counts the correct predictions of every step. Left out, each a once-per-epoch call: the cosine
schedule's step and validation.

``train(name, x, y, batch, seed, dropout=None)`` returns ``run(n)``: ``n`` steps (at most one
epoch, drop_last) of a fresh shuffled epoch; it returns the last loss, the mean loss and the
accuracy over those steps. ``run.model`` and ``run.optimizer`` are there for the tests.
"""
import warnings

import numpy as np

from .common import SIZES, blas_threads, init_weights

# examples/fashion_mlp.py's DEFAULTS for what the benchmark runs (the test compares them)
RECIPE = dict(hidden="512,256", activation="relu", dropout=0.2, batch_norm=False,
              input_dropout=0.0, batch_size=64, optimizer="adamw", lr=1e-3, weight_decay=1e-2,
              label_smoothing=0.1, l2=0.0, ema=0.0)
assert tuple(int(h) for h in RECIPE["hidden"].split(",")) == SIZES[1:-1]

NAMES = ("tinygrad-jit", "tinygrad", "tinygrad-fit", "torch")


def _dropout(dropout):
    return RECIPE["dropout"] if dropout is None else dropout


def build_tinygrad(seed, dropout=None):
    """The example's ``build_model`` for the default config, with the common initial weights;
    both Dropout layers draw from one generator seeded with ``seed`` (as the example's rng)."""
    from tinygrad_mlp import nn
    p = _dropout(dropout)
    rng = np.random.default_rng(seed)
    layers, weights = [], init_weights(seed)
    for i, (w, b) in enumerate(weights):
        linear = nn.Linear(w.shape[1], w.shape[0])
        linear.weight.data[...] = w
        linear.bias.data[...] = b
        layers.append(linear)
        if i < len(weights) - 1:
            layers.append(nn.ReLU())
            if p > 0:
                layers.append(nn.Dropout(p, rng=rng))
    return nn.Sequential(*layers)


def build_torch(seed, dropout=None):
    import torch
    torch.set_num_threads(blas_threads())
    torch.manual_seed(seed)
    p = _dropout(dropout)
    layers, weights = [], init_weights(seed)
    for i, (w, b) in enumerate(weights):
        linear = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(b))
        layers.append(linear)
        if i < len(weights) - 1:
            layers.append(torch.nn.ReLU())
            if p > 0:
                layers.append(torch.nn.Dropout(p))
    return torch.nn.Sequential(*layers)


def _summary(last, loss_sum, correct, seen):
    return {"last_loss": float(last), "mean_loss": loss_sum / seen, "accuracy": correct / seen,
            "steps": 0}


def train(name, x, y, batch, seed, dropout=None):
    if name not in NAMES:
        raise ValueError(f"recipe: unknown contender {name!r}; expected one of {NAMES}")
    if name == "torch":
        return _train_torch(x, y, batch, seed, dropout)
    if name == "tinygrad-fit":
        return _train_fit(x, y, batch, seed, dropout)
    return _train_tinygrad(x, y, batch, seed, dropout, compiled=name == "tinygrad-jit")


def _train_tinygrad(x, y, batch, seed, dropout, compiled):
    import tinygrad_mlp as tg
    from tinygrad_mlp import functional as F, optim
    from tinygrad_mlp.data import DataLoader

    model = build_tinygrad(seed, dropout)
    model.train()
    opt = optim.AdamW(model.parameters(), lr=RECIPE["lr"], weight_decay=RECIPE["weight_decay"])
    loader = DataLoader(x, y, batch, shuffle=True, drop_last=True, rng=seed)
    smoothing = RECIPE["label_smoothing"]

    def step(xb, yb):
        outputs = model(xb)
        loss = F.cross_entropy(outputs, yb, label_smoothing=smoothing)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss, outputs

    if compiled:
        step = tg.jit(step)

    def run(n):
        loss_sum, correct, seen, steps = 0.0, 0, 0, 0
        for xb, yb in loader:
            if steps == n:
                break
            loss, outputs = step(xb, yb)
            value = loss.item()
            k = len(yb.data)
            loss_sum += value * k
            correct += int((outputs.data.argmax(axis=1) == yb.data).sum())
            seen += k
            steps += 1
        if compiled and step.eager_reasons:
            raise RuntimeError(f"recipe tinygrad-jit: tg.jit ran eagerly: "
                               f"{list(step.eager_reasons.values())}")
        return dict(_summary(value, loss_sum, correct, seen), steps=steps)
    run.model, run.optimizer = model, opt
    if compiled:
        run.compiled = step
    return run


def _train_fit(x, y, batch, seed, dropout):
    """``training.fit(compile=True)`` for one epoch per call, as the example trains (without
    validation, checkpoints or progress). ``fit`` captures its step afresh at the start of every
    epoch (docs/jit.md), so two capturing steps are inside every timed epoch. A ``JitWarning`` (the step ran
    eagerly) is an error here."""
    from tinygrad_mlp import functional as F, optim
    from tinygrad_mlp.data import DataLoader
    from tinygrad_mlp import JitWarning
    from tinygrad_mlp.training import fit

    model = build_tinygrad(seed, dropout)
    opt = optim.AdamW(model.parameters(), lr=RECIPE["lr"], weight_decay=RECIPE["weight_decay"])
    order = np.random.default_rng(seed)  # each epoch's shuffle
    smoothing = RECIPE["label_smoothing"]

    def loss_fn(logits, labels):
        return F.cross_entropy(logits, labels, label_smoothing=smoothing)

    def run(n):
        # ``n`` steps of a fresh shuffled epoch, over the first n * batch images (a view: no copy)
        m = min(n, len(x) // batch) * batch
        loader = DataLoader(x[:m], y[:m], batch, shuffle=True, drop_last=True, rng=order)
        with warnings.catch_warnings():  # fit's step must not fall back to eager unseen
            warnings.simplefilter("error", JitWarning)
            history = fit(model, loss_fn, opt, loader, 1, progress=False, compile=True)
        return {"last_loss": float("nan"), "mean_loss": float(history.train_loss[-1]),
                "accuracy": float(history.train_acc[-1]), "steps": m // batch}
    run.model, run.optimizer = model, opt
    return run


def _train_torch(x, y, batch, seed, dropout):
    import torch
    model = build_torch(seed, dropout)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=RECIPE["lr"],
                            weight_decay=RECIPE["weight_decay"])
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    rng = np.random.default_rng(seed)
    loss_fn = torch.nn.functional.cross_entropy
    smoothing = RECIPE["label_smoothing"]

    def run(n):
        order = torch.from_numpy(rng.permutation(len(x)))
        loss_sum, correct, seen, steps = 0.0, 0, 0, 0
        for i in range(min(n, len(x) // batch)):
            idx = order[i * batch:(i + 1) * batch]
            xb, yb = xt[idx], yt[idx]
            outputs = model(xb)
            loss = loss_fn(outputs, yb, label_smoothing=smoothing)
            opt.zero_grad()
            loss.backward()
            opt.step()
            value = loss.item()
            loss_sum += value * batch
            correct += int((outputs.argmax(dim=1) == yb).sum().item())
            seen += batch
            steps += 1
        return dict(_summary(value, loss_sum, correct, seen), steps=steps)
    run.model, run.optimizer = model, opt
    return run
