"""Tests for floor 6, tinygrad_mlp/viz/plots.py: files written, figure structure, colour scales,
confusion-matrix counts, input errors, and atomic saving."""

import os
import types
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("matplotlib")
from matplotlib.figure import Figure  # noqa: E402

from tinygrad_mlp.viz import plots  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAMES = ["T-shirt/top", "Trouser", "Pullover"]

HISTORY = {
    "train_loss": [1.0, 0.7, 0.5, 0.4, 0.35],
    "train_acc": [0.60, 0.70, 0.80, 0.85, 0.88],
    "val_loss": [0.9, 0.6, 0.55, 0.58, 0.62],  # best at epoch 3 (1-based)
    "val_acc": [0.62, 0.71, 0.78, 0.77, 0.76],
}
BEST_EPOCH = 3


def image_axes(fig):
    return [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]


def colorbar_axes(fig):
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


def line(ax, label):
    found = [ln for ln in ax.get_lines() if ln.get_label() == label]
    assert len(found) == 1, [ln.get_label() for ln in ax.get_lines()]
    return found[0]


def best_lines(ax):
    return [ln for ln in ax.get_lines() if ln.get_label().startswith("best val loss")]


def assert_png(path):
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE


def assert_svg(path):
    assert ET.parse(path).getroot().tag.endswith("svg")


# --------------------------------------------------------------------------- saving

@pytest.mark.parametrize("ext", [".png", ".svg", ".pdf", ".PNG"])
def test_saves_in_format_of_extension(tmp_path, ext):
    path = tmp_path / f"loss{ext}"
    fig = plots.plot_loss(HISTORY, path)
    assert isinstance(fig, Figure)
    head = path.read_bytes()[:8]
    if ext.lower() == ".png":
        assert head == PNG_SIGNATURE
    elif ext == ".svg":
        assert_svg(path)
    else:
        assert head.startswith(b"%PDF-")
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind


def test_saved_file_gets_ordinary_permissions(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    path = tmp_path / "loss.png"
    plots.plot_loss(HISTORY, path)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("name", ["plot.jpg", "plot", "plot.png.txt"])
def test_bad_extension_is_rejected_before_anything_is_written(tmp_path, name):
    path = tmp_path / "sub" / name
    with pytest.raises(ValueError) as info:
        plots.plot_history(HISTORY, path)
    message = str(info.value)
    assert str(path) in message
    for ext in (".png", ".svg", ".pdf"):
        assert ext in message
    assert not (tmp_path / "sub").exists()


def test_failing_save_leaves_existing_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "history.png"
    plots.plot_history(HISTORY, path)
    before = path.read_bytes()

    def savefig_that_dies_halfway(self, fname, **kwargs):
        fname.write(b"half a plot")
        raise OSError("no space left on device")

    monkeypatch.setattr(Figure, "savefig", savefig_that_dies_halfway)
    with pytest.raises(OSError, match="no space left"):
        plots.plot_history({"train_loss": [3.0], "train_acc": [0.1]}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["history.png"]


def test_no_path_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fig = plots.plot_history(HISTORY)
    assert isinstance(fig, Figure)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- history

def as_attributes(h):
    return types.SimpleNamespace(**h)


class WithAsDict:
    def __init__(self, h):
        self._h = h

    def as_dict(self):
        return dict(self._h)


@pytest.mark.parametrize("wrap", [dict, as_attributes, WithAsDict], ids=["mapping", "attrs", "as_dict"])
def test_plot_loss_draws_both_curves_on_one_based_epochs(tmp_path, wrap):
    fig = plots.plot_loss(wrap(HISTORY), tmp_path / "loss.png")
    assert_png(tmp_path / "loss.png")
    (ax,) = fig.axes
    epochs = list(range(1, len(HISTORY["train_loss"]) + 1))
    train, val = line(ax, "train"), line(ax, "validation")
    assert list(train.get_xdata()) == epochs
    assert np.allclose(train.get_ydata(), HISTORY["train_loss"])
    assert np.allclose(val.get_ydata(), HISTORY["val_loss"])
    assert ax.get_legend() is not None
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    (best,) = best_lines(ax)
    assert list(best.get_xdata()) == [BEST_EPOCH, BEST_EPOCH]


def test_plot_accuracy_draws_accuracy_and_marks_best_loss_epoch(tmp_path):
    fig = plots.plot_accuracy(HISTORY, tmp_path / "acc.svg")
    assert_svg(tmp_path / "acc.svg")
    (ax,) = fig.axes
    assert np.allclose(line(ax, "train").get_ydata(), HISTORY["train_acc"])
    assert np.allclose(line(ax, "validation").get_ydata(), HISTORY["val_acc"])
    (best,) = best_lines(ax)
    assert list(best.get_xdata()) == [BEST_EPOCH, BEST_EPOCH]


def test_loss_label_names_the_loss_on_the_axis_and_in_the_title():
    fig = plots.plot_history(HISTORY, loss_label="cross-entropy, label smoothing 0.1")
    ax_loss, ax_acc = fig.axes
    assert ax_loss.get_ylabel() == "cross-entropy, label smoothing 0.1"
    assert "label smoothing 0.1" in ax_loss.get_title()
    assert "smoothing" not in ax_acc.get_ylabel() + ax_acc.get_title()
    (ax,) = plots.plot_loss(HISTORY, loss_label="cross-entropy").axes
    assert ax.get_ylabel() == "cross-entropy"
    with pytest.raises(TypeError, match="loss_label must be a str"):
        plots.plot_loss(HISTORY, loss_label=0.1)


def test_plot_history_has_two_subplots(tmp_path):
    fig = plots.plot_history(HISTORY, tmp_path / "history.png")
    assert_png(tmp_path / "history.png")
    assert len(fig.axes) == 2
    loss_ax, acc_ax = fig.axes
    assert np.allclose(line(loss_ax, "train").get_ydata(), HISTORY["train_loss"])
    assert np.allclose(line(acc_ax, "train").get_ydata(), HISTORY["train_acc"])


@pytest.mark.parametrize("val", [None, [None, None, None]], ids=["missing", "all-none"])
def test_history_without_validation_draws_train_only(val):
    h = {"train_loss": [1.0, 0.5, 0.2], "train_acc": [0.5, 0.6, 0.7]}
    if val is not None:
        h["val_loss"] = val
        h["val_acc"] = val
    fig = plots.plot_history(h)
    for ax in fig.axes:
        assert [ln.get_label() for ln in ax.get_lines()] == ["train"]


def test_history_with_gaps_skips_none_epochs_when_finding_best():
    h = dict(HISTORY, val_loss=[None, 0.8, None, 0.4, 0.5])
    (ax,) = plots.plot_loss(h).axes
    assert np.isnan(line(ax, "validation").get_ydata()[0])
    (best,) = best_lines(ax)
    assert list(best.get_xdata()) == [4, 4]


def test_history_missing_train_key_names_it():
    with pytest.raises(ValueError, match="train_acc"):
        plots.plot_accuracy({"train_loss": [1.0]})


# --------------------------------------------------------------------------- weights

def three_layers(seed=0):
    rng = np.random.default_rng(seed)
    return [
        ("0.weight", rng.normal(0, 0.05, (512, 784))),
        ("2.weight", rng.normal(0, 0.3, (64, 512))),
        ("4.weight", rng.normal(0, 0.1, (10, 64))),
    ]


def test_plot_weights_shares_one_symmetric_scale(tmp_path):
    layers = three_layers()
    fig = plots.plot_weights(layers, tmp_path / "weights.png", shared_scale=True, percentile=100)
    assert_png(tmp_path / "weights.png")
    images = image_axes(fig)
    assert len(images) == 3 and len(colorbar_axes(fig)) == 1 and len(fig.axes) == 4
    m = max(np.abs(w).max() for _, w in layers)
    for ax, (name, w) in zip(images, layers):
        (im,) = ax.images
        assert im.get_clim() == pytest.approx((-m, m))
        assert im.get_array().shape == w.shape
        assert name in ax.get_title()
    # the middle layer holds the largest weight, so a per-layer scale would differ elsewhere
    assert np.abs(layers[0][1]).max() < m


def test_plot_weights_separate_scales(tmp_path):
    layers = three_layers()
    fig = plots.plot_weights(dict(layers), tmp_path / "weights.svg", percentile=100)
    assert_svg(tmp_path / "weights.svg")
    assert len(image_axes(fig)) == 3 and len(colorbar_axes(fig)) == 3
    for ax, (_, w) in zip(image_axes(fig), layers):
        m = np.abs(w).max()
        assert ax.images[0].get_clim() == pytest.approx((-m, m))


class FakeParam:
    def __init__(self, data):
        self.data = data


class FakeModel:
    def __init__(self, params):
        self._params = params

    def named_parameters(self):
        for name, arr in self._params:
            yield name, FakeParam(arr)


def test_plot_weights_takes_2d_weights_from_a_model():
    rng = np.random.default_rng(1)
    model = FakeModel([
        ("0.weight", rng.normal(size=(8, 6))),
        ("0.bias", rng.normal(size=8)),
        ("norm.weight", rng.normal(size=8)),  # 1-D weight: not a matrix to draw
        ("2.weight", rng.normal(size=(3, 8))),
        ("2.bias", rng.normal(size=3)),
    ])
    fig = plots.plot_weights(model)
    titles = [ax.get_title() for ax in image_axes(fig)]
    assert len(titles) == 2
    assert "0.weight" in titles[0] and "2.weight" in titles[1]


def test_plot_weights_rejects_non_matrix_and_empty_input():
    with pytest.raises(ValueError, match=r"0\.bias.*\(5,\)"):
        plots.plot_weights({"0.weight": np.ones((5, 3)), "0.bias": np.ones(5)})
    with pytest.raises(ValueError, match="no 2-D weight"):
        plots.plot_weights(FakeModel([("0.bias", np.ones(3))]))


def test_plot_weights_default_scale_is_the_99th_percentile_per_layer():
    layers = three_layers()
    layers[0][1][0, 0] = 50.0  # one outlier must not wash out the rest of its layer
    fig = plots.plot_weights(layers)
    for ax, (_, w) in zip(image_axes(fig), layers):
        m = np.percentile(np.abs(w), 99)
        assert ax.images[0].get_clim() == pytest.approx((-m, m))
    assert image_axes(fig)[0].images[0].get_clim()[1] < 0.2


def test_plot_weights_first_layer_as_input_images_of_sampled_units():
    rng = np.random.default_rng(2)
    w1, w2 = rng.normal(size=(20, 12)), rng.normal(size=(5, 20))
    fig = plots.plot_weights([("0.weight", w1), ("2.weight", w2)], input_shape=(3, 4), units=5)
    images = image_axes(fig)
    assert len(images) == 5 + 1  # five unit images, then the second layer's heatmap
    units = [int(ax.get_title()) for ax in images[:5]]
    assert units == [0, 5, 10, 14, 19]  # evenly spaced over the 20 hidden units, ends included
    for ax, unit in zip(images[:5], units):
        np.testing.assert_array_equal(ax.images[0].get_array(), w1[unit].reshape(3, 4))
    m = np.percentile(np.abs(w1), 99)  # the units share their layer's scale
    for ax in images[:5]:
        assert ax.images[0].get_clim() == pytest.approx((-m, m))
    assert images[5].images[0].get_array().shape == (5, 20)
    assert len(colorbar_axes(fig)) == 2


def test_plot_weights_bad_options_are_named():
    w = [("0.weight", np.ones((4, 6)))]
    with pytest.raises(ValueError, match=r"input_shape \(2, 2\) holds 4 values but '0\.weight' "
                                         r"has 6 input features"):
        plots.plot_weights(w, input_shape=(2, 2))
    with pytest.raises(ValueError, match=r"percentile must be in \(0, 100\]; got 0"):
        plots.plot_weights(w, percentile=0)
    with pytest.raises(ValueError, match=r"units must be a positive int; got 0"):
        plots.plot_weights(w, input_shape=(2, 3), units=0)


def test_plot_weights_all_zero_matrix_gets_a_usable_scale():
    fig = plots.plot_weights([("w", np.zeros((4, 4)))])
    lo, hi = image_axes(fig)[0].images[0].get_clim()
    assert lo < 0 < hi and lo == -hi


# --------------------------------------------------------------------------- confusion matrix

def test_confusion_matrix_hand_computed():
    y_true = [0, 0, 1, 2, 2, 2, 1]
    y_pred = [0, 1, 1, 2, 0, 2, 1]
    expected = np.array([[1, 1, 0],
                         [0, 2, 0],
                         [1, 0, 2]])
    cm = plots.confusion_matrix(np.array(y_true), np.array(y_pred), 3)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, expected)


def test_confusion_matrix_keeps_classes_that_never_occur():
    cm = plots.confusion_matrix([1, 1], [1, 0], 4)
    assert cm.shape == (4, 4)
    assert cm[1, 1] == 1 and cm[1, 0] == 1 and cm.sum() == 2


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6).flatmap(lambda k: st.tuples(
    st.just(k),
    st.lists(st.tuples(st.integers(0, k - 1), st.integers(0, k - 1)), max_size=60))))
def test_confusion_matrix_matches_counting_pairs(case):
    k, pairs = case
    y_true = np.array([t for t, _ in pairs], dtype=np.int64)
    y_pred = np.array([p for _, p in pairs], dtype=np.int64)
    expected = np.zeros((k, k), dtype=np.int64)
    for t, p in pairs:
        expected[t, p] += 1
    np.testing.assert_array_equal(plots.confusion_matrix(y_true, y_pred, k), expected)


@pytest.mark.parametrize("y_true, y_pred, k, match", [
    ([0, 1, 2], [0, 1], 3, r"y_true has 3 labels but y_pred has 2"),
    ([0, 3], [0, 1], 3, r"y_true\[1\] = 3 is outside 0\.\.2"),
    ([0, 1], [-1, 1], 3, r"y_pred\[0\] = -1 is outside"),
    ([0, 1.5], [0, 1], 3, r"y_true must hold integer"),
    ([[0.1, 0.9]], [1], 2, r"y_true must be a 1-D.*\(1, 2\).*argmax"),
    (["a"], [0], 2, r"y_true must hold integer"),
    ([0], [0], 0, r"num_classes must be at least 1"),
])
def test_confusion_matrix_bad_input(y_true, y_pred, k, match):
    with pytest.raises(ValueError, match=match):
        plots.confusion_matrix(y_true, y_pred, k)


def test_confusion_matrix_num_classes_must_be_int():
    with pytest.raises(TypeError, match="num_classes"):
        plots.confusion_matrix([0], [0], 2.5)


def cell_texts(ax):
    return {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}


def test_plot_confusion_matrix_counts_labels_and_accuracy(tmp_path):
    y_true = [0, 0, 1, 2, 2, 2, 1]
    y_pred = [0, 1, 1, 2, 0, 2, 1]
    expected = [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
    fig = plots.plot_confusion_matrix(y_true, y_pred, NAMES, tmp_path / "cm.png")
    assert_png(tmp_path / "cm.png")
    ax = image_axes(fig)[0]
    texts = cell_texts(ax)
    assert texts == {(i, j): str(expected[i][j]) for i in range(3) for j in range(3)}
    assert [t.get_text() for t in ax.get_xticklabels()] == NAMES
    assert [t.get_text() for t in ax.get_yticklabels()] == NAMES
    assert all(t.get_rotation() != 0 for t in ax.get_xticklabels())
    assert f"{100 * 5 / 7:.1f}%" in ax.get_title()


def test_plot_confusion_matrix_normalised_rows(tmp_path):
    y_true = [0, 0, 0, 0, 1, 1]
    y_pred = [0, 0, 0, 1, 1, 1]
    fig = plots.plot_confusion_matrix(y_true, y_pred, NAMES, tmp_path / "cm.svg", normalize=True)
    assert_svg(tmp_path / "cm.svg")
    texts = cell_texts(image_axes(fig)[0])
    assert texts[(0, 0)] == "0.75" and texts[(0, 1)] == "0.25"
    assert texts[(1, 1)] == "1.00"
    assert texts[(2, 0)] == texts[(2, 2)] == "0.00"  # class 2 never occurs in y_true


def test_plot_confusion_matrix_validates_labels_against_class_names():
    with pytest.raises(ValueError, match="outside 0..2"):
        plots.plot_confusion_matrix([0, 3], [0, 1], NAMES)


# --------------------------------------------------------------------------- predictions

def prediction_case(n_images=30, seed=0):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 3, n_images)
    y_pred = y_true.copy()
    y_pred[[1, 4, 5, 20, 27]] = (y_true[[1, 4, 5, 20, 27]] + 1) % 3
    return rng.random((n_images, 28, 28)), y_true, y_pred


def titles_and_colours(fig):
    from matplotlib.colors import to_rgba
    return [(ax.get_title(), to_rgba(ax.title.get_color())) for ax in fig.axes]


@pytest.mark.parametrize("flat", [False, True], ids=["NxHxW", "Nx784"])
def test_plot_predictions_grid_titles_and_red_errors(tmp_path, flat):
    images, y_true, y_pred = prediction_case()
    if flat:
        images = images.reshape(len(images), 784)
    fig = plots.plot_predictions(images, y_true, y_pred, NAMES, tmp_path / "pred.png", n=25)
    assert_png(tmp_path / "pred.png")
    assert len(fig.axes) == 25
    red = (1.0, 0.0, 0.0, 1.0)
    for i, (title, colour) in enumerate(titles_and_colours(fig)):
        assert title == f"{NAMES[y_pred[i]]} / {NAMES[y_true[i]]}"
        assert (colour == red) == (y_true[i] != y_pred[i])
    assert fig.axes[0].images[0].get_array().shape == (28, 28)


def test_plot_predictions_only_errors(tmp_path):
    images, y_true, y_pred = prediction_case()
    wrong = np.flatnonzero(y_true != y_pred)
    fig = plots.plot_predictions(images, y_true, y_pred, NAMES, n=3, only_errors=True)
    assert len(fig.axes) == 3
    for i, (title, colour) in zip(wrong[:3], titles_and_colours(fig)):
        assert title == f"{NAMES[y_pred[i]]} / {NAMES[y_true[i]]}"
        assert colour == (1.0, 0.0, 0.0, 1.0)
    # fewer images than n: every one is shown
    assert len(plots.plot_predictions(images[:4], y_true[:4], y_pred[:4], NAMES).axes) == 4


def test_plot_predictions_no_errors_to_show(tmp_path):
    images, y_true, _ = prediction_case()
    fig = plots.plot_predictions(images, y_true, y_true, NAMES, tmp_path / "p.png", only_errors=True)
    assert_png(tmp_path / "p.png")
    assert not image_axes(fig)


@pytest.mark.parametrize("kwargs, match", [
    ({"images": np.zeros((30, 783))}, "not a square"),
    ({"images": np.zeros((29, 28, 28))}, "29 entries but the labels have 30"),
    ({"n": 0}, "n must be a positive int"),
    ({"class_names": NAMES[:2]}, "outside 0..1"),
])
def test_plot_predictions_bad_input(kwargs, match):
    images, y_true, y_pred = prediction_case()
    args = dict(images=images, y_true=y_true, y_pred=y_pred, class_names=NAMES)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        plots.plot_predictions(**args)


def test_plotting_leaves_pyplot_and_the_backend_alone():
    # A Jupyter user's backend must survive: the module never imports pyplot or picks a backend.
    import subprocess
    import sys
    code = (
        "import sys, matplotlib\n"
        "matplotlib.rcParams['backend'] = 'svg'\n"
        "from tinygrad_mlp.viz import plots\n"
        "plots.plot_loss({'train_loss': [1.0, 0.5], 'train_acc': [0.1, 0.2]})\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
        "assert matplotlib.rcParams['backend'] == 'svg', matplotlib.rcParams['backend']\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_missing_directory_is_refused_not_created(tmp_path):
    # the same rule as render_graph and tinygrad_mlp.save: a typo in a path is not a new tree
    path = tmp_path / "a" / "b" / "loss.png"
    with pytest.raises(FileNotFoundError, match=r"directory .*a[/\\]b' does not exist"):
        plots.plot_loss(HISTORY, path)
    assert not (tmp_path / "a").exists()
