"""Values an op keeps for its backward other than its inputs' tensors: the op's own output (exp,
tanh) and the index of an indexing op. A later in-place change of them must make backward refuse,
as a change of a saved input does, never give a gradient computed from the new values.

numpy functions that write into a Tensor (``out=t``, ``np.copyto(t, ...)``) follow the same
in-place rules and bump its version."""
import numpy as np
import pytest

import tinygrad_mlp as tg

MODIFIED = "modified by an in-place operation"


def _leaf():
    return tg.Tensor(np.array([0.5, 1.0, 2.0], np.float32), requires_grad=True)


def test_exp_output_changed_through_detach_refuses_backward():
    x = _leaf()
    y = x.exp()
    y.detach().mul_(2.0)   # PyTorch: detach() shares storage and version counter
    with pytest.raises(RuntimeError, match="output of Exp.*" + MODIFIED):
        y.sum().backward()


def test_tanh_output_changed_through_a_no_grad_view_refuses_backward():
    x = _leaf()
    y = x.tanh()
    with tg.no_grad():
        y[:].zero_()
    with pytest.raises(RuntimeError, match=MODIFIED):
        y.sum().backward()


def test_index_changed_after_indexing_gives_the_recorded_gradient():
    x = tg.Tensor(np.zeros(4, np.float32), requires_grad=True)
    idx = tg.tensor([0, 1])
    y = x[idx]
    idx[0] = 3             # e.g. a reused index buffer refilled for the next batch
    y.sum().backward()
    # Either the gradient of what was computed (rows 0 and 1) or a refusal; never rows 1 and 3.
    np.testing.assert_array_equal(x.grad.data, [1.0, 1.0, 0.0, 0.0])


def test_exp_gradient_when_nothing_changed():
    # The baseline the marked tests compare against: no in-place change, the right gradient.
    x = _leaf()
    x.exp().sum().backward()
    np.testing.assert_allclose(x.grad.data, np.exp(x.data), rtol=1e-6)


def test_embedding_index_changed_after_lookup_gives_the_recorded_gradient():
    emb = tg.nn.Embedding(5, 2)
    ids = tg.tensor([0, 1])
    out = emb(ids)
    ids[0] = 4             # the token buffer refilled for the next batch
    out.sum().backward()
    np.testing.assert_array_equal(emb.weight.grad.data[:, 0], [1.0, 1.0, 0.0, 0.0, 0.0])


NUMPY_WRITERS = {
    "clip_out": lambda w: np.clip(w, 0.0, 0.5, out=w),
    "copyto": lambda w: np.copyto(w, 0.0),
    "fill_diagonal": lambda w: np.fill_diagonal(w, 9.0),
    "put": lambda w: np.put(w, 0, 9.0),
}


@pytest.mark.parametrize("write", list(NUMPY_WRITERS.values()), ids=list(NUMPY_WRITERS))
def test_numpy_function_writing_into_a_saved_leaf_is_refused(write):
    # Recording is on and w requires grad: w.clamp_(...) / w.copy_(...) would raise here, and so
    # does the numpy spelling, naming the numpy function; w is left as it was.
    w = tg.Tensor(np.ones((2, 2), np.float32), requires_grad=True)
    (w * w).sum()
    with pytest.raises(RuntimeError, match=r"np\.\w+: in-place change of a leaf"):
        write(w)
    np.testing.assert_array_equal(w.data, np.ones((2, 2)))


@pytest.mark.parametrize("write", list(NUMPY_WRITERS.values()), ids=list(NUMPY_WRITERS))
def test_numpy_function_writing_under_no_grad_changes_the_tensor_and_its_version(write):
    # Allowed where w.copy_(...) is allowed (an optimiser-style update), and counted: a graph
    # that saved w before the write refuses its backward.
    w = tg.Tensor(np.ones((2, 2), np.float32), requires_grad=True)
    loss = (w * w).sum()
    with tg.no_grad():
        write(w)
    assert not np.array_equal(w.data, np.ones((2, 2)))
    with pytest.raises(RuntimeError, match=MODIFIED):
        loss.backward()


def test_numpy_functions_that_only_read_tensors_are_unchanged():
    w = tg.Tensor(np.arange(4, dtype=np.float32), requires_grad=True)
    assert np.mean(w) == 1.5 and np.clip(w, 0, 1).tolist() == [0, 1, 1, 1]


def test_output_changed_before_recording_is_not_refused():
    # Only a change after the op was recorded matters: an output changed by an earlier op's
    # in-place update is simply the value the next op reads.
    x = _leaf()
    y = x.exp()
    with tg.no_grad():
        y.detach().mul_(1.0)
    z = x.exp()            # recorded after the change
    z.sum().backward()
    np.testing.assert_allclose(x.grad.data, np.exp(x.data), rtol=1e-6)


def test_index_tuple_of_arrays_is_copied_too():
    x = tg.Tensor(np.zeros((2, 3), np.float32), requires_grad=True)
    rows, cols = np.array([0, 1]), np.array([2, 0])
    y = x[rows, cols]
    rows[0], cols[0] = 1, 1
    y.sum().backward()
    expected = np.zeros((2, 3), np.float32)
    expected[0, 2] = expected[1, 0] = 1
    np.testing.assert_array_equal(x.grad.data, expected)
