"""Differential test against PyTorch: random programs, the same on both sides, must agree.

hypothesis draws a program (``tests/differential_ops.py``): 1-3 leaves of broadcastable shapes
(0-d and size-1 axes included, values with exact zeros and ties on purpose), then up to 10 steps,
each an op of the op table, a shape op, an index, a reduction over one or several axes, or a loss,
applied to earlier values. Each program runs in tinygrad_mlp and in PyTorch and is compared on
- the value of every intermediate,
- first-order gradients of the output (against a random output gradient) with respect to every
  leaf, by ``tg.grad`` and by ``backward()``,
- Hessian-vector products through ``create_graph=True``,
in float64 (tight tolerances) and in float32 (our error against the float64 result may be at most
a few times PyTorch's own float32 error). A failure is shrunk to a short program, printed as code.
Deliberate convention differences are listed, with reasons, in ``differential_ops.CONVENTIONS``.

Skipped only when torch is not installed; the numpy-only property tests cover the ops without it.
"""
import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import tinygrad_mlp as tg  # noqa: E402
from tinygrad_mlp import Tensor  # noqa: E402

import differential_ops  # noqa: E402
from differential_ops import (BY_NAME, CONVENTIONS, NOT_COMPARED, OPS, programs,  # noqa: E402
                             single_op_programs)
from op_properties import OPS as TABLE  # noqa: E402

differential_ops.torch = torch

PROGRAMS_FLOAT64 = 400
PROGRAMS_FLOAT32 = 200
SCALE = int(os.environ.get("TG_EXAMPLES_SCALE", "1"))

# float32: |ours - exact| <= FLOAT32_FACTOR * |torch32 - exact| + atol (or simply close to torch32)
FLOAT32_FACTOR = 8.0
FLOAT32_RTOL = 2e-5


# ------------------------------------------------------------------------------------------
# Running a program on either side
# ------------------------------------------------------------------------------------------

class Side:
    """How one library makes leaves and differentiates; ``run`` is shared."""

    def __init__(self, name, dtype):
        self.name, self.dtype = name, dtype

    def leaf(self, array):
        array = np.asarray(array, dtype=self.dtype)
        if self.name == "ours":
            return Tensor(array.copy(), requires_grad=True)
        return torch.tensor(array, requires_grad=True)

    def const(self, array, like):
        if self.name == "ours":
            return Tensor(np.asarray(array, dtype=like.dtype))
        return torch.tensor(np.asarray(array), dtype=like.dtype)

    def array(self, t):
        if t is None:
            return None
        return t.data.copy() if self.name == "ours" else t.detach().numpy(force=True).copy()

    def requires_grad(self, t):
        return t.requires_grad

    def grad(self, out, inputs, grad_out=None, create_graph=False):
        """Gradients of ``out`` (or sum(out * grad_out)) with respect to ``inputs``; None where
        an input is unused (or ``out`` does not depend on any)."""
        if not out.requires_grad:
            return [None] * len(inputs)
        if self.name == "ours":
            return tg.grad(out, inputs, grad_outputs=grad_out, create_graph=create_graph,
                           allow_unused=True)
        return list(torch.autograd.grad(out, inputs, grad_outputs=grad_out,
                                        create_graph=create_graph, allow_unused=True))

    def run(self, program):
        """Every value of the program (leaves first, in order) and the leaves."""
        values, leaves = [], []
        for a in program.leaves:
            leaves.append(self.leaf(a))
            values.append(leaves[-1])
        for step in program.steps:
            if step.leaf is not None:
                leaves.append(self.leaf(step.leaf))
                values.append(leaves[-1])
            fn = step.op.ours if self.name == "ours" else step.op.theirs
            values.append(fn(*[values[i] for i in step.args], **step.params))
        return values, leaves


def directions(program, out_shape, leaf_shapes, dtype):
    rng = np.random.default_rng(program.seed)
    v = rng.uniform(0.5, 1.5, size=out_shape).astype(dtype)
    us = [rng.uniform(-1, 1, size=s).astype(dtype) for s in leaf_shapes]
    return v, us


def evaluate(side, program):
    """Values, gradients (by grad and by backward) and Hessian-vector products, as arrays."""
    values, leaves = side.run(program)
    out = values[-1]
    v, us = directions(program, tuple(out.shape), [tuple(x.shape) for x in leaves], side.dtype)
    result = {"values": [side.array(t) for t in values],
              "dtypes": [str(t.dtype).replace("torch.", "") for t in values]}
    grads = side.grad(out, leaves, side.const(v, out))
    result["grad"] = [side.array(g) for g in grads]

    values, leaves = side.run(program)
    out = values[-1]
    if out.requires_grad:
        out.backward(side.const(v, out))
    result["backward"] = [side.array(x.grad) for x in leaves]

    values, leaves = side.run(program)
    out = values[-1]
    grads = side.grad(out, leaves, side.const(v, out), create_graph=True)
    total = None
    for g, u in zip(grads, us):
        if g is not None and g.requires_grad:
            term = (g * side.const(u, g)).sum()
            total = term if total is None else total + term
    hvp = [None] * len(leaves) if total is None else side.grad(total, leaves)
    result["hvp"] = [side.array(h) for h in hvp]
    return result


# ------------------------------------------------------------------------------------------
# Comparing
# ------------------------------------------------------------------------------------------

def _filled(a, like):
    return np.zeros(like.shape, like.dtype) if a is None else a


def _accepted(ours, theirs, derivative, nan_seen=False):
    """Where results may differ (CONVENTIONS): both infinite (signed zeros); either NaN in a
    program that has a NaN or infinite value; for derivatives, PyTorch's is NaN, or PyTorch's
    is infinite and ours NaN."""
    accepted = np.isinf(theirs) & np.isinf(ours)
    if nan_seen:
        accepted |= np.isnan(ours) | np.isnan(theirs)
    if derivative:
        accepted |= np.isnan(theirs) | (np.isinf(theirs) & np.isnan(ours))
    return accepted


def _close64(ours, theirs, derivative=False, nan_seen=False):
    ours = np.where(_accepted(ours, theirs, derivative, nan_seen), theirs, ours)
    scale = max(1.0, float(np.abs(theirs[np.isfinite(theirs)]).max(initial=0)))
    np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=1e-9 * scale, equal_nan=True)


def _close32(ours, theirs32, exact, derivative=False, nan_seen=False):
    """float32: as close to the exact result as PyTorch's float32 is, within a factor."""
    ours, theirs32 = ours.astype(np.float64), theirs32.astype(np.float64)
    ours = np.where(_accepted(ours, theirs32, derivative, nan_seen), theirs32, ours)
    same_nonfinite = (np.isnan(ours) == np.isnan(theirs32)) & \
        (np.isinf(ours) == np.isinf(theirs32))
    finite = np.isfinite(ours) & np.isfinite(theirs32) & np.isfinite(exact)
    scale = max(1.0, float(np.abs(exact[np.isfinite(exact)]).max(initial=0)))
    tol = FLOAT32_FACTOR * np.abs(theirs32 - exact) + FLOAT32_RTOL * (np.abs(exact) + scale)
    ok = np.where(finite, np.abs(ours - exact) <= tol, True)
    ok &= np.where(np.isinf(ours) & np.isinf(theirs32), ours == theirs32, True)
    ok &= np.where(~np.isfinite(ours) | ~np.isfinite(theirs32), same_nonfinite, True)
    # Where the float64 result is not finite but both float32 results are, they must agree.
    ok |= np.isclose(ours, theirs32, rtol=1e-4, atol=1e-5 * scale, equal_nan=True)
    if not ok.all():
        bad = np.argwhere(~ok)[:5].tolist()
        raise AssertionError(f"float32 mismatch at {bad}: ours {ours[~ok][:5]}, PyTorch "
                             f"{theirs32[~ok][:5]}, float64 {exact[~ok][:5]}")


def compare(program, ours, theirs, exact=None):
    """``exact``: PyTorch's float64 results on the same (float32-rounded) leaves, for float32."""
    checks = [("value", i, ours["values"][i], theirs["values"][i],
               None if exact is None else exact["values"][i]) for i in range(len(ours["values"]))]
    for kind in ("grad", "backward", "hvp"):
        for i, (a, b) in enumerate(zip(ours[kind], theirs[kind])):
            like = ours["values"][i] if i < len(program.leaves) else b if b is not None else a
            like = like if like is not None else np.zeros(0)
            e = None if exact is None else exact["hvp" if kind == "hvp" else "grad"][i]
            checks.append((kind, i, a, b, e))
    nan_seen = any(not np.isfinite(v).all() for v in theirs["values"])
    for kind, i, a, b, e in checks:
        what = f"{kind} of {'value' if kind == 'value' else 'leaf'} #{i}"
        if a is None and b is None:
            continue
        ref = b if b is not None else a
        a, b = _filled(a, ref), _filled(b, ref)
        if a.shape != b.shape:
            raise AssertionError(f"{what}: shape {a.shape}, PyTorch {b.shape}\n{program!r}")
        try:
            if e is None:
                _close64(a, b, kind != "value", nan_seen)
            else:
                _close32(a, b, _filled(e, b).astype(np.float64), kind != "value", nan_seen)
        except AssertionError as err:
            raise AssertionError(f"{what} differs from PyTorch:\n{err}\nprogram:{program!r}") \
                from None
    if ours["dtypes"] != theirs["dtypes"]:
        raise AssertionError(f"dtypes {ours['dtypes']} vs PyTorch {theirs['dtypes']}\n{program!r}")


def run_both(program, dtype):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # PyTorch warns about var/std with no degrees of freedom and the like; not under test.
        warnings.simplefilter("ignore", UserWarning)
        try:
            ours = evaluate(Side("ours", dtype), program)
        except TypeError as e:
            # The generator checks shapes in float64 only, so in a float32 program a value cast
            # with astype(np.float64) can meet a float32 one in a matmul: both sides must refuse.
            assert "different dtypes" in str(e), e
            with pytest.raises((RuntimeError, TypeError), match="(?i)dtype|type"):
                evaluate(Side("torch", dtype), program)
            return
        theirs = evaluate(Side("torch", dtype), program)
        exact = None
        if dtype == np.float32:
            rounded = _rounded(program)
            exact = evaluate(Side("torch", np.float64), rounded)
        compare(program, ours, theirs, exact)


def _rounded(program):
    """The program with float32-rounded leaves (so that float64 gives its exact result)."""
    import copy
    p = copy.copy(program)
    p.leaves = [a.astype(np.float32).astype(np.float64) for a in program.leaves]
    p.steps = [copy.copy(s) for s in program.steps]
    for s in p.steps:
        if s.leaf is not None:
            s.leaf = s.leaf.astype(np.float32).astype(np.float64)
    return p


# ------------------------------------------------------------------------------------------
# The tests
# ------------------------------------------------------------------------------------------

DIFF_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                           HealthCheck.data_too_large,
                                                           HealthCheck.filter_too_much])


@settings(max_examples=PROGRAMS_FLOAT64 * SCALE, **DIFF_SETTINGS)
@given(program=programs())
def test_random_programs_agree_with_pytorch_float64(program):
    run_both(program, np.float64)


@settings(max_examples=PROGRAMS_FLOAT32 * SCALE, **DIFF_SETTINGS)
@given(program=programs())
def test_random_programs_agree_with_pytorch_float32(program):
    run_both(program, np.float32)


def test_every_op_of_the_op_table_is_compared():
    names = {op.name for op in TABLE}
    missing = names - set(BY_NAME) - set(NOT_COMPARED)
    assert not missing, f"op-table rows without a PyTorch counterpart in differential_ops: " \
                        f"{sorted(missing)}"
    assert len(BY_NAME) == len(OPS)


def test_conventions_are_listed_with_reasons():
    assert CONVENTIONS and all(isinstance(r, str) and len(r) > 20 for r in CONVENTIONS.values())
    assert all(len(r) > 20 for r in NOT_COMPARED.values())


def test_a_wrong_op_is_caught_and_the_program_printed():
    # The comparison itself must be able to fail: a deliberately wrong gradient (relu's at 0
    # and below routed as if it were the identity) is reported with the program as code.
    from differential_ops import Program, Step, DiffOp
    wrong = DiffOp("relu_identity_gradient", 1, lambda a: a + (a.relu() - a).detach(),
                   lambda a: a.relu(), "{0}.relu()")
    program = Program([np.array([-1.0, 0.0, 2.0])], [Step(wrong, (0,))], seed=0)
    with pytest.raises(AssertionError, match=r"(?s)grad of leaf #0 differs.*x0 = Tensor"):
        run_both(program, np.float64)


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
@settings(max_examples=4 * SCALE, **DIFF_SETTINGS)
@given(data=st.data())
def test_each_op_alone_agrees_with_pytorch(op, data):
    # Every op, every run, whatever the random programs happened to draw.
    program = data.draw(single_op_programs(op), label="program")
    run_both(program, np.float64)
    run_both(program, np.float32)
