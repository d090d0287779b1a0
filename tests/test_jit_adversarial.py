"""Adversarial tests for floor 4 (jit): ways a compiled function could differ from the same
function run eagerly without a JitWarning.

Each test builds the same thing twice from the same seeds, runs one copy eagerly and the other
through ``tg.jit``, and compares the two bit for bit. The reference is always the eager run. A
test passes when the results agree, whether the jit replays correctly or refuses (falls back to
eager with a JitWarning): both are acceptable answers; a silent difference is not. These tests
were written against a library that fails them (see notes/jit-review.md); they are the
reproductions of the findings.
"""
import warnings

import numpy as np
import pytest

import tinygrad_mlp as tg
from tinygrad_mlp import functional as F
from tinygrad_mlp import nn, optim
from tinygrad_mlp.optim import lr_scheduler


# ---------------------------------------------------------------- helpers

def same(a, b) -> bool:
    """Bitwise equality of two arrays or tensors (or None and None)."""
    if a is None or b is None:
        return a is None and b is None
    a = a.data if isinstance(a, tg.Tensor) else np.asarray(a)
    b = b.data if isinstance(b, tg.Tensor) else np.asarray(b)
    return (a.dtype == b.dtype and a.shape == b.shape
            and np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes())


def flat(value):
    if isinstance(value, (tuple, list)):
        return [x for v in value for x in flat(v)]
    return [value]


def assert_same_values(eager, compiled, what):
    a, b = flat(eager), flat(compiled)
    assert len(a) == len(b), f"{what}: different structure"
    for k, (x, y) in enumerate(zip(a, b)):
        if isinstance(x, (tg.Tensor, np.ndarray)) or isinstance(y, (tg.Tensor, np.ndarray)):
            assert same(x, y), f"{what}: item {k} differs"
        else:
            assert x == y, f"{what}: item {k} is {y!r} compiled but {x!r} eager"


def assert_same_tensors(eager, compiled, grads=True):
    assert len(eager) == len(compiled)
    for k, (p, q) in enumerate(zip(eager, compiled)):
        assert same(p, q), f"tensor {k} differs"
        if grads:
            assert same(p.grad, q.grad), f"the .grad of tensor {k} differs"


def batches(n, rows=4, d=5, c=3, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((rows, d)).astype(np.float32), rng.integers(0, c, rows))
            for _ in range(n)]


def run_both(build, calls, between=None):
    """``build()`` -> (step, tensors to compare, extra state); calls ``step`` ``calls`` times
    eagerly and compiled (with ``between(i, state)`` before call i), and returns
    {mode: (outputs, tensors)}."""
    out = {}
    for mode in ("eager", "compiled"):
        tg.manual_seed(0)
        step, tensors, state = build()
        fn = tg.jit(step) if mode == "compiled" else step
        results = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", tg.JitWarning)  # a refusal is an acceptable answer
            for i, args in enumerate(calls):
                if between is not None:
                    between(i, state)
                results.append(fn(*args))
        out[mode] = (results, tensors(state))
    return out


def assert_compiled_equals_eager(build, calls, between=None, grads=True):
    out = run_both(build, calls, between)
    (er, et), (cr, ct) = out["eager"], out["compiled"]
    for i, (a, b) in enumerate(zip(er, cr)):
        assert_same_values(a, b, f"call {i}")
    assert_same_tensors(et, ct, grads)


def classifier_step(model, opt, loss=None):
    def step(x, y):
        opt.zero_grad()
        out = model(tg.Tensor(x))
        value = F.cross_entropy(out, y) if loss is None else loss(out, y)
        value.backward()
        opt.step()
        return value
    return step


# ---------------------------------------------------------------- hooks added after the capture

def test_a_forward_hook_registered_between_calls_runs_at_the_next_call():
    """register_forward_hook appends to a list the plan's snapshot holds by identity and does not
    bump the structure clock: the plan replays without the hook."""
    def build():
        model = nn.Sequential(nn.Linear(5, 3, rng=1))
        opt = optim.SGD(model.parameters(), lr=0.1)
        return classifier_step(model, opt), lambda s: list(s.parameters()), model

    def between(i, model):
        if i == 3:
            model[0].register_forward_hook(lambda module, args, output: output * 2.0)

    assert_compiled_equals_eager(build, batches(5), between)


def test_a_forward_pre_hook_registered_between_calls_runs_at_the_next_call():
    def build():
        model = nn.Sequential(nn.Linear(5, 3, rng=1))
        opt = optim.SGD(model.parameters(), lr=0.1)
        return classifier_step(model, opt), lambda s: list(s.parameters()), model

    def between(i, model):
        if i == 3:
            model[0].register_forward_pre_hook(lambda module, args: (args[0] * 0.5,))

    assert_compiled_equals_eager(build, batches(5), between)


def test_a_tensor_hook_registered_on_a_parameter_between_calls_changes_its_grad():
    """A hook on a parameter makes capture refuse, but one added after the plan exists is never
    looked at: the replay assigns the unhooked gradient and the optimiser uses it."""
    def build():
        model = nn.Sequential(nn.Linear(5, 3, rng=1))
        opt = optim.SGD(model.parameters(), lr=0.1)
        return classifier_step(model, opt), lambda s: list(s.parameters()), model

    def between(i, model):
        if i == 3:
            model[0].weight.register_hook(lambda g: g * 0.0)  # freeze by hook

    assert_compiled_equals_eager(build, batches(5), between)


# ------------------------------------------------ module state the plan does not watch

class _LossNet(nn.Module):
    """A model whose step calls a method (Lightning style), not the model itself."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(5, 3, rng=1)
        self.alpha = 1.0

    def forward(self, x):
        return self.body(x)

    def loss(self, x, y):
        return F.cross_entropy(self.body(x), y) * self.alpha


def _method_step_build():
    model = _LossNet()
    opt = optim.SGD(model.parameters(), lr=0.1)

    def step(x, y):
        opt.zero_grad()
        loss = model.loss(tg.Tensor(x), y)
        loss.backward()
        opt.step()
        return loss
    return step, lambda s: list(s.parameters()), model


def test_an_attribute_of_a_model_whose_method_the_step_calls_is_read_at_every_call():
    """Only modules entered through ``__call__`` (and those below them) are snapshot; the model
    whose method the step calls is above ``body`` and its ``alpha`` change is not seen."""
    def between(i, model):
        if i == 3:
            model.alpha = 0.5  # e.g. a KL weight annealed between steps

    assert_compiled_equals_eager(_method_step_build, batches(5), between)


def test_a_layer_replaced_on_a_model_whose_method_the_step_calls_is_used():
    def between(i, model):
        if i == 3:
            model.body = nn.Linear(5, 3, rng=7)

    out = run_both(_method_step_build, batches(5), between)
    (er, et), (cr, ct) = out["eager"], out["compiled"]
    for i, (a, b) in enumerate(zip(er, cr)):
        assert_same_values(a, b, f"call {i}")
    assert_same_tensors(et, ct)


class _Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 3, rng=1)
        self.scales = [1.0]  # a list attribute (loss weights, a schedule's table...)

    def forward(self, x):
        return self.fc(x) * self.scales[0]


def test_a_list_attribute_of_a_called_module_changed_in_place_is_read_at_every_call():
    """The snapshot compares attributes by identity: a list (dict, ndarray) changed in place
    keeps its identity, so the plan keeps the old number."""
    def build():
        model = _Scaled()
        opt = optim.SGD(model.parameters(), lr=0.1)
        return classifier_step(model, opt), lambda s: list(s.parameters()), model

    def between(i, model):
        if i == 3:
            model.scales[0] = 3.0

    assert_compiled_equals_eager(build, batches(5), between)


# ---------------------------------------------------------------- names rebound between calls

def test_a_model_and_optimiser_rebound_between_calls_are_the_ones_trained():
    """A step defined once (a notebook cell, a script) reads ``model`` and ``opt`` from its
    enclosing scope; the user then makes a fresh model (a new fold, a new trial) under the same
    names. The plan keeps the old model's tensors and the old optimiser's step: the new model is
    never trained and the old one keeps training."""
    def build():
        model = nn.Linear(5, 3, rng=1)
        opt = optim.SGD(model.parameters(), lr=0.1)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(model(tg.Tensor(x)), y)
            loss.backward()
            opt.step()
            return loss

        def new_run():
            nonlocal model, opt
            model = nn.Linear(5, 3, rng=7)
            opt = optim.SGD(model.parameters(), lr=0.1)
        return step, lambda s: list(model.parameters()), new_run

    def between(i, new_run):
        if i == 3:
            new_run()

    assert_compiled_equals_eager(build, batches(5), between)


def test_a_closed_over_dict_changed_in_place_is_read_at_every_call():
    """A settings dict the step closes over, changed in place between calls (``cfg["beta"]``
    annealed by the loop): no identity changes, so it must be compared by value."""
    def build():
        model = nn.Linear(5, 3, rng=1)
        opt = optim.SGD(model.parameters(), lr=0.1)
        cfg = {"beta": 0.0}
        penalty = lambda out, y: F.cross_entropy(out, y) + (out * out).mean() * cfg["beta"]  # noqa: E731
        return classifier_step(model, opt, penalty), lambda s: list(model.parameters()), cfg

    def between(i, cfg):
        cfg["beta"] = 0.1 * i

    assert_compiled_equals_eager(build, batches(6), between)


def test_a_closed_over_list_appended_to_by_the_step_refuses_capture():
    """The step logs into a list it closes over: a replay would not append."""
    log = []
    model = nn.Linear(5, 3, rng=1)

    def predict(x):
        log.append(len(log))
        return model(tg.Tensor(x)).softmax(axis=1)

    fn = tg.jit(predict)
    with tg.no_grad():
        with pytest.warns(tg.JitWarning, match="closes over"):
            fn(batches(1)[0][0])
        for x, _ in batches(3):
            fn(x)
    assert log == [0, 1, 2, 3] and fn.replays == 0


def test_a_dropout_generator_rebound_between_calls_is_drawn_from():
    def build():
        model = nn.Linear(5, 3, rng=1)
        opt = optim.SGD(model.parameters(), lr=0.1)
        gen = np.random.default_rng(1)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(F.dropout(model(tg.Tensor(x)), 0.5, rng=gen), y)
            loss.backward()
            opt.step()
            return loss

        def reseed():
            nonlocal gen
            gen = np.random.default_rng(99)
        return step, lambda s: list(model.parameters()), reseed

    def between(i, reseed):
        if i == 3:
            reseed()

    assert_compiled_equals_eager(build, batches(5), between)


# ---------------------------------------------------------------- library code reading values

def _accuracy_batches():
    """Batches whose accuracy under the untrained model is 0.5, 0.5, then 1.0 and 0.0 (the
    first two agree, so the two captures agree)."""
    model = nn.Linear(5, 3, rng=1)
    xs = [x for x, _ in batches(4, rows=4, seed=3)]
    out = []
    for k, x in enumerate(xs):
        with tg.no_grad():
            pred = np.argmax(model(tg.Tensor(x)).numpy(), axis=1)
        wrong = (pred + 1) % 3
        right = [2, 2, 4, 0][k]  # how many rows get the predicted label
        out.append((x, np.where(np.arange(4) < right, pred, wrong)))
    return out


def test_accuracy_returned_from_a_compiled_step_is_computed_at_every_call():
    """F.accuracy reads arrays inside the library (exempt from the .data watch), is no kernel and
    does not refuse: a returned Python float that agrees in the two captures is baked in."""
    def build():
        model = nn.Linear(5, 3, rng=1)

        def evaluate(x, y):
            logits = model(tg.Tensor(x))
            return F.cross_entropy(logits, y), F.accuracy(logits, y)
        return evaluate, lambda s: [], None

    with tg.no_grad():
        assert_compiled_equals_eager(build, _accuracy_batches(), grads=False)


def test_accuracy_with_a_label_out_of_range_raises_at_replay_as_eager():
    model = nn.Linear(5, 3, rng=1)

    def evaluate(x, y):
        with tg.no_grad():
            logits = model(tg.Tensor(x))
            return logits.sum(), F.accuracy(logits, y)

    calls = _accuracy_batches()[:3]
    bad_x, bad_y = calls[2][0], np.array([0, 1, 2, 7])
    with pytest.raises(ValueError):
        evaluate(bad_x, bad_y)  # eager refuses the label 7
    compiled = tg.jit(evaluate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tg.JitWarning)
        for x, y in calls:
            compiled(x, y)
        with pytest.raises(ValueError):
            compiled(bad_x, bad_y)


# ---------------------------------------------------------------- .grad and Python state

def test_grads_set_to_none_at_the_end_of_the_step_are_none_after_a_replay():
    """``for p in params: p.grad = None`` (PyTorch's cheap zero_grad) at the end of the step: the
    replay assigns every .grad and never clears them."""
    def build():
        model = nn.Linear(5, 3, rng=1)
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

        def step(x, y):
            loss = F.cross_entropy(model(tg.Tensor(x)), y)
            loss.backward()
            opt.step()
            for p in model.parameters():
                p.grad = None
            return loss
        return step, lambda s: list(model.parameters()), None

    assert_compiled_equals_eager(build, batches(5))


def test_the_learning_rate_returned_for_logging_follows_the_schedule():
    """A step that returns ``sched.get_last_lr()[0]`` for logging: the number is a constant of the
    plan when the two captures saw the same rate (StepLR with step_size > 2)."""
    def build():
        model = nn.Linear(5, 3, rng=1)
        opt = optim.SGD(model.parameters(), lr=0.1)
        sched = lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(model(tg.Tensor(x)), y)
            loss.backward()
            opt.step()
            sched.step()
            return loss, sched.get_last_lr()[0]
        return step, lambda s: list(model.parameters()), None

    assert_compiled_equals_eager(build, batches(6))


# ---------------------------------------------------------------- errors at replay

def test_an_index_out_of_range_at_replay_gives_the_eager_error():
    """Eager wraps numpy's IndexError in a message naming getitem and the shape; the replay
    raises numpy's bare error."""
    x = np.arange(20, dtype=np.float32).reshape(4, 5)
    good, bad = np.array([0, 1, 2, 3]), np.array([0, 9, 2, 3])

    def pick(x, i):
        return tg.Tensor(x)[tg.Tensor(i)]

    with pytest.raises(IndexError) as eager_error:
        pick(x, bad)
    compiled = tg.jit(pick)
    for _ in range(3):
        compiled(x, good)
    assert compiled.replays == 1
    with pytest.raises(IndexError) as compiled_error:
        compiled(x, bad)
    assert str(compiled_error.value) == str(eager_error.value)


# ---------------------------------------------------------------- .grad already there at a replay

def test_gradient_accumulation_over_batches_of_two_sizes_keeps_every_gradient():
    """Accumulating two micro-batches per optimiser step, with batches of varying size (bucketed
    by length). The size-4 signature is captured twice right after zero_grad (no .grad there),
    so its plan assigns .grad; replayed later as the second micro-batch it overwrites the
    gradient of the first instead of adding to it (eager adds)."""
    rng = np.random.default_rng(0)
    sizes = [4, 6, 4, 6, 6, 4, 4, 4]
    calls = [(rng.standard_normal((n, 5)).astype(np.float32), rng.integers(0, 3, n))
             for n in sizes]

    def build():
        model = nn.Linear(5, 3, rng=1)
        opt = optim.SGD(model.parameters(), lr=0.1)

        def forward_backward(x, y):
            loss = F.cross_entropy(model(tg.Tensor(x)), y) * 0.5
            loss.backward()
            return loss
        return forward_backward, lambda s: list(s[0].parameters()), (model, opt)

    def between(i, state):
        model, opt = state
        if i % 2 == 0:  # an optimiser step every two micro-batches
            if i:
                opt.step()
            opt.zero_grad()

    assert_compiled_equals_eager(build, calls, between)


def test_an_input_passed_again_accumulates_its_grad_as_eager():
    """Input gradients (saliency, adversarial examples): calling the function a second time on
    the same input adds to ``x.grad`` eagerly; the replay replaces it."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((4, 5)).astype(np.float32) for _ in range(3)]
    w = tg.Tensor(rng.standard_normal((5, 3)).astype(np.float32))

    def saliency(x):
        score = (x @ w).relu().sum()
        score.backward()
        return score

    def run(fn):
        xs = [tg.Tensor(a, requires_grad=True) for a in arrays]
        for x in xs + [xs[2]]:  # the last input twice
            fn(x)
        return xs

    eager = run(saliency)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tg.JitWarning)
        compiled = run(tg.jit(saliency))
    for a, b in zip(eager, compiled):
        assert same(a.grad, b.grad)


# ---------------------------------------------------------------- the random generator

def test_manual_seed_inside_the_function_reseeds_at_every_call():
    """MC-dropout prediction made reproducible by seeding inside the function: eagerly every call
    draws the same masks; the replay never reseeds, so the masks move on."""
    rng = np.random.default_rng(0)
    calls = [(rng.standard_normal((4, 5)).astype(np.float32),) for _ in range(5)]

    def build():
        model = nn.Sequential(nn.Linear(5, 8, rng=1), nn.Dropout(0.5), nn.Linear(8, 3, rng=2))

        def mc_predict(x):
            tg.manual_seed(123)
            x = tg.Tensor(x)
            return (model(x) + model(x) + model(x)) * (1.0 / 3.0)
        return mc_predict, lambda s: [], None

    with tg.no_grad():
        assert_compiled_equals_eager(build, calls, grads=False)


class _Net(nn.Module):
    """A model with its training step as a method, as many PyTorch codebases write it."""

    def __init__(self, compiled):
        super().__init__()
        self.fc = nn.Linear(5, 3, rng=1)
        self.temperature = 1.0
        self.opt = optim.SGD(self.fc.parameters(), lr=0.1)
        if compiled:
            self.train_step = tg.jit(self._step)
        else:
            self.train_step = self._step

    def _step(self, x, y):
        self.opt.zero_grad()
        loss = F.cross_entropy(self.fc(tg.Tensor(x)) * (1.0 / self.temperature), y)
        loss.backward()
        self.opt.step()
        return loss


def test_an_attribute_of_the_module_whose_compiled_method_is_the_step_is_read_at_every_call():
    """``self.temperature`` changed between calls (a schedule): ``self`` is never called, only
    ``self.fc`` is, so the plan's snapshot does not cover ``self``."""
    results = {}
    for compiled in (False, True):
        net = _Net(compiled)
        losses = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", tg.JitWarning)
            for i, (x, y) in enumerate(batches(5)):
                if i == 3:
                    net.temperature = 4.0
                losses.append(net.train_step(x, y))
        results[compiled] = (losses, list(net.parameters()))
    (el, ep), (cl, cp) = results[False], results[True]
    for i, (a, b) in enumerate(zip(el, cl)):
        assert same(a, b), f"call {i} differs"
    assert_same_tensors(ep, cp)


# ---------------------------------------------------------------- .data rebound inside the call

class _RebindingSGD(optim.Optimizer):
    """A hand-written optimiser in the PyTorch-tutorial style: ``p.data = p.data - lr * grad``
    (rebinds ``.data`` instead of writing in place). Its ``step`` is replayed."""

    def __init__(self, params, lr):
        super().__init__(params, dict(lr=lr))

    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.data = p.data - group["lr"] * p.grad.data


def test_parameters_read_after_a_step_that_rebinds_their_data_are_the_updated_ones():
    """The loss after the update (or a second model's forward after the first one's step, as
    in a GAN): the capture reads the new array as a second external of the same tensor, and
    the replay fills every external slot before the first step, so it reads the old one."""
    def build():
        model = nn.Linear(5, 3, rng=1)
        opt = _RebindingSGD(model.parameters(), lr=0.1)

        def step(x, y):
            opt.zero_grad()
            x = tg.Tensor(x)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            with tg.no_grad():
                after = F.cross_entropy(model(x), y)
            return loss, after
        return step, lambda s: list(model.parameters()), None

    assert_compiled_equals_eager(build, batches(5))


# ---------------------------------------------------------------- memory layout and reused buffers

def test_a_batch_laid_out_differently_from_the_captured_ones_gives_the_eager_bits():
    """A regression on a column-major feature matrix (``DataFrame.values`` is one): the first
    batches are slices (column-major strides), later ones shuffled by fancy indexing (row-major).
    The signature ignores the layout; the buffered ops write into buffers made with
    ``np.empty_like`` of the captured (column-major) results, where eager gives row-major
    results; the matrix-vector product of the (N, 1) head then rounds differently."""
    rng = np.random.default_rng(0)
    features = np.asfortranarray(rng.standard_normal((6 * 64, 200)).astype(np.float32))
    targets = [rng.standard_normal((64, 1)).astype(np.float32) for _ in range(6)]
    calls = [(features[i * 64:(i + 1) * 64] if i < 2 else features[np.arange(i * 64, (i + 1) * 64)],
              targets[i]) for i in range(6)]
    assert not calls[0][0].flags.c_contiguous and calls[2][0].flags.c_contiguous

    def build():
        model = nn.Linear(200, 1, rng=1)
        opt = optim.SGD(model.parameters(), lr=0.01)
        mu = tg.Tensor(features.mean(axis=0))
        inv_sd = tg.Tensor(1.0 / features.std(axis=0))

        def step(x, t):
            opt.zero_grad()
            loss = F.mse_loss(model((tg.Tensor(x) - mu) * inv_sd), tg.Tensor(t))
            loss.backward()
            opt.step()
            return loss
        return step, lambda s: list(model.parameters()), None

    assert_compiled_equals_eager(build, calls)


def test_a_matrix_vector_product_after_an_elementwise_op_follows_the_call_layout():
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((64, 200)).astype(np.float32) for _ in range(5)]
    v = tg.Tensor(rng.standard_normal(200).astype(np.float32))
    calls = [(tg.Tensor(np.asfortranarray(a) if i < 2 else np.ascontiguousarray(a)),)
             for i, a in enumerate(arrays)]

    def build():
        def score(x):
            return (x * 1.5) @ v
        return score, lambda s: [], None

    assert_compiled_equals_eager(build, calls, grads=False)


# ---------------------------------------------------------------- a compiled closure inside a step

def test_a_compiled_closure_given_to_step_does_not_switch_off_the_value_read_check():
    """``opt.step(closure)`` with a compiled closure, inside a compiled step: the closure's
    capture runs inside the replayed ``step`` call and, when it ends, puts the plain
    ``Tensor.data`` back, so the rest of the outer capture reads ``.data`` unwatched. The outer
    plan then bakes a branch on a weight's value (no warning); eager takes the other branch once
    the weight crosses the threshold."""
    rng = np.random.default_rng(0)
    x = tg.Tensor(rng.standard_normal((4, 5)).astype(np.float32))
    target = tg.Tensor(np.eye(3, dtype=np.float32)[rng.integers(0, 3, 4)])

    def run(compiled):
        model = nn.Linear(5, 3, rng=1)
        opt = optim.SGD(model.parameters(), lr=0.5)

        def closure():
            opt.zero_grad()
            loss = F.mse_loss(model(x), target)
            loss.backward()
            return loss

        inner = tg.jit(closure) if compiled else closure

        def step(threshold):
            loss = opt.step(inner)
            big = bool(np.abs(model.weight.data).max() > threshold)  # a value read: must refuse
            return loss * (2.0 if big else 1.0)

        fn = tg.jit(step) if compiled else step
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", tg.JitWarning)
            return [fn(0.5) for _ in range(8)], list(model.parameters())

    (el, ep), (cl, cp) = run(False), run(True)
    for i, (a, b) in enumerate(zip(el, cl)):
        assert same(a, b), f"call {i} differs"
    assert_same_tensors(ep, cp)


# ------------------------------------------------ gradients that are part of a graph

def _gradient_norm_penalty_build(between_backwards):
    """``loss.backward(create_graph=True)``, a penalty on the parameters' gradients, something
    done to the gradients, then ``backward`` of the total (gradient-norm regularisation)."""
    def build():
        model = nn.Sequential(nn.Linear(5, 8, rng=1), nn.Tanh(), nn.Linear(8, 3, rng=2))
        opt = optim.SGD(model.parameters(), lr=0.1)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(model(tg.Tensor(x)), y)
            loss.backward(create_graph=True)
            penalty = None
            for p in model.parameters():
                term = (p.grad * p.grad).sum()
                penalty = term if penalty is None else penalty + term
            between_backwards(model, opt)
            opt.zero_grad()
            (loss + penalty * 0.5).backward()
            opt.step()
            return loss, penalty
        return step, lambda s: list(model.parameters()), None
    return build


def test_zero_grad_to_zeros_between_a_create_graph_backward_and_its_use_keeps_the_graph():
    """Eagerly, ``reset_grads(set_to_none=False)`` replaces a gradient that is part of a graph
    (autograd.py:652-655: ``g._ctx`` is set) and leaves its array alone, since the penalty's
    backward still reads it. At replay ``_grad_step`` wraps the array in a tensor without
    ``_ctx``, so the replayed zero_grad zeroes it in place and the penalty's gradient is lost."""
    build = _gradient_norm_penalty_build(lambda model, opt: opt.zero_grad(set_to_none=False))
    assert_compiled_equals_eager(build, batches(5))


def test_clipping_gradients_that_are_part_of_a_graph_leaves_the_graph_as_eager():
    """The same through ``clip_grad_norm_`` / ``clip_grad_value_`` (nn/utils.py ``_scale_grad``
    and the clip_value branch choose in-place vs replace on ``g._ctx``)."""
    for clip in (lambda m, o: nn.utils.clip_grad_norm_(list(m.parameters()), 0.01),
                 lambda m, o: nn.utils.clip_grad_value_(list(m.parameters()), 0.001)):
        assert_compiled_equals_eager(_gradient_norm_penalty_build(clip), batches(5))


# ------------------------------------------------ compiling the model, torch.compile style

def _compiled_forward_training(compiled, penalty):
    rng = np.random.default_rng(0)
    calls = [(rng.standard_normal((4, 5)).astype(np.float32), rng.integers(0, 3, 4))
             for _ in range(5)]
    model = nn.Sequential(nn.Linear(5, 8, rng=1), nn.ReLU(), nn.Linear(8, 3, rng=2))
    opt = optim.SGD(model.parameters(), lr=0.1)
    forward = tg.jit(model) if compiled else model  # model = torch.compile(model)
    losses = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tg.JitWarning)
        for x, y in calls:
            opt.zero_grad()
            loss = F.cross_entropy(forward(tg.Tensor(x)), y)
            if penalty:
                loss = loss + F.l2_penalty(model.parameters(), 1e-3)
            loss.backward()
            opt.step()
            losses.append(loss)
    return losses, list(model.parameters())


def test_a_compiled_model_trained_by_an_eager_loop_gets_its_gradients():
    """``tg.jit(model)`` as a PyTorch user writes ``torch.compile(model)``, trained by an ordinary
    loop. From the third call the forward is replayed and returns tensors with no graph: with an
    L2 term in the loss ``backward`` still runs, only the penalty's gradient reaches the weights,
    and training silently goes wrong. The capture can tell: the returned tensor's graph is still
    unreleased at the end of the call (the caller may backpropagate through it)."""
    (el, ep), (cl, cp) = (_compiled_forward_training(False, True),
                          _compiled_forward_training(True, True))
    for i, (a, b) in enumerate(zip(el, cl)):
        assert same(a, b), f"call {i} differs"
    assert_same_tensors(ep, cp)


def test_a_compiled_model_trained_without_a_penalty_does_not_raise_where_eager_does_not():
    """Without the penalty the same loop raises at the third call ("this tensor does not require
    grad"): a different error from eager (which has none), and no JitWarning says why."""
    eager = _compiled_forward_training(False, False)
    compiled = _compiled_forward_training(True, False)
    assert_same_tensors(eager[1], compiled[1])
