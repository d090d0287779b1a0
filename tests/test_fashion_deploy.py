"""Shipping a model of examples/fashion_mlp.py: self-contained model files, --predict on pictures,
and --export-onnx."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_mlp as tg
from tinygrad_mlp.data import CLASSES, DatasetNotFoundError, load_fashion_mnist, to_float

Image = pytest.importorskip("PIL.Image")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "fashion_mlp.py"


def load_example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mlp = load_example("fashion_mlp.py")
deploy = sys.modules["fashion_deploy"]
PREPROCESSING = {"method": "normalize", "mean": 0.2860, "std": 0.3530}


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run_example(*args, cwd=None):
    """The example's command line in a fresh process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(EXAMPLE), *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


@pytest.fixture
def run_main(capsys):
    """The example's main() in this process (faster than a new interpreter each time)."""
    def run(*args):
        capsys.readouterr()
        code = mlp.main(list(args))
        out, err = capsys.readouterr()
        return Result(code, out, err)
    return run


def make_model_file(directory, hidden="24", preprocess=PREPROCESSING, **config):
    config = dict(mlp.DEFAULTS, hidden=hidden, dropout=0.1, **config)
    model = mlp.build_model(config, np.random.default_rng(1))
    path = Path(directory) / "model.npz"
    deploy.save_model(path, model, config, preprocess, test_accuracy=0.5, test_loss=1.5)
    return path, model


def write_test_images(tmp_path):
    """A few test-set images (the real ones when the data set is installed)."""
    try:
        ds = load_fashion_mnist(download=False)
        images = ds.test_images[:4]
    except DatasetNotFoundError:
        if os.environ.get("TINYGRAD_MLP_REQUIRE_DATA"):
            raise
        rng = np.random.default_rng(0)
        images = np.zeros((4, 28, 28), np.uint8)
        images[:, 4:24, 6:22] = rng.integers(60, 255, (4, 20, 16))
    paths = []
    for k, img in enumerate(images):
        paths.append(tmp_path / f"test{k}.png")
        Image.fromarray(img).save(paths[-1])
    return images, paths


def test_model_file_carries_its_metadata(tmp_path):
    path, model = make_model_file(tmp_path, hidden="24,12", batch_norm=True)
    loaded, meta = deploy.load_model(path, mlp.build_model, mlp.DEFAULTS)
    assert meta["architecture"]["hidden"] == [24, 12] and meta["architecture"]["batch_norm"]
    assert meta["preprocessing"] == PREPROCESSING
    assert meta["classes"] == list(CLASSES) and meta["library_version"] == tg.__version__
    assert meta["test_accuracy"] == 0.5
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and np.array_equal(a, b)
    assert not loaded.training


def test_older_model_file_uses_config_json_beside_it(tmp_path):
    config = dict(mlp.DEFAULTS, hidden="20")
    model = mlp.build_model(config, np.random.default_rng(0))
    tg.save(model.state_dict(), tmp_path / "model.npz")  # the layout before metadata
    with pytest.raises(deploy.DeployError, match="config.json"):
        deploy.load_model(tmp_path / "model.npz", mlp.build_model, mlp.DEFAULTS)
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded, meta = deploy.load_model(tmp_path / "model.npz", mlp.build_model, mlp.DEFAULTS)
    assert meta["legacy"] and meta["preprocessing"] is None
    assert np.array_equal(loaded.state_dict()["0.weight"], model.state_dict()["0.weight"])


def test_predictions_on_png_equal_the_models_on_the_arrays(tmp_path, run_main):
    path, model = make_model_file(tmp_path)
    images, paths = write_test_images(tmp_path)
    proc = run_main("--predict", str(path), *map(str, paths), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    with tg.no_grad():
        logits = model.eval()(tg.Tensor(deploy.apply_preprocessing(PREPROCESSING,
                                                                   to_float(images)))).numpy()
    probabilities = deploy.softmax(logits.astype(np.float64))
    for entry, p, want in zip(result, paths, probabilities):
        assert entry["image"] == str(p) and entry["inverted"] is False
        top = np.argsort(-want, kind="stable")[:3]
        assert [t["index"] for t in entry["top"]] == top.tolist()
        assert [t["class"] for t in entry["top"]] == [CLASSES[i] for i in top]
        np.testing.assert_allclose([t["probability"] for t in entry["top"]], want[top],
                                   rtol=1e-6)
    text = run_main("--predict", str(path), str(paths[0]))
    assert text.returncode == 0 and CLASSES[int(np.argmax(probabilities[0]))] in text.stdout
    assert text.stdout.count("%") == 3


def test_picture_is_framed_like_fashion_mnist(tmp_path):
    # A dark 60x20 garment on a white 200x100 photo, in colour and as JPEG.
    photo = np.full((100, 200, 3), 250, np.uint8)
    photo[20:80, 90:110] = (30, 40, 50)
    Image.fromarray(photo).save(tmp_path / "photo.jpg", quality=95)
    x, inverted = deploy.load_image(tmp_path / "photo.jpg")
    assert inverted and x.shape == (28, 28) and x.dtype == np.float32
    assert x[0, 0] < 0.05 and x[14, 14] > 0.7  # light garment on black, as the data set
    cols = np.flatnonzero((x > 0.5).any(axis=0))
    rows = np.flatnonzero((x > 0.5).any(axis=1))
    assert rows[0] <= 1 and rows[-1] >= 26  # the long side fills the frame
    assert 8 <= len(cols) <= 11 and abs((cols[0] + cols[-1]) / 2 - 13.5) <= 1  # aspect, centred
    x_no, inv_no = deploy.load_image(tmp_path / "photo.jpg", invert="no")
    assert not inv_no and x_no[0, 0] > 0.9


def test_transparent_png_and_grey_28x28(tmp_path):
    rgba = np.zeros((40, 30, 4), np.uint8)
    rgba[5:35, 10:20] = (0, 0, 0, 255)  # an opaque black shape, the rest transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    x, inverted = deploy.load_image(tmp_path / "alpha.png")
    assert inverted and x[14, 14] > 0.9 and x[14, 0] < 0.05
    grey = np.zeros((28, 28), np.uint8)
    grey[3:9, 4:7] = 200
    Image.fromarray(grey).save(tmp_path / "grey.png")
    x, inverted = deploy.load_image(tmp_path / "grey.png", invert="auto")
    assert not inverted and np.array_equal(x, grey / np.float32(255))


def test_sixteen_bit_grey_png_is_scaled_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 28 * 28).reshape(28, 28).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    x, inverted = deploy.load_image(tmp_path / "deep.png", invert="no")
    np.testing.assert_allclose(x, ramp / 65535.0, atol=1e-6)


def test_bad_inputs_one_line_each_exit_2_nothing_written(tmp_path):
    path, _ = make_model_file(tmp_path)
    Image.new("L", (50, 40), 255).save(tmp_path / "blank.png")  # nothing but background
    (tmp_path / "notes.png").write_text("not an image")
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = run_example("--predict", str(path), str(tmp_path / "missing.png"),
                       str(tmp_path / "notes.png"), str(tmp_path / "blank.png"),
                       "--export-onnx", str(tmp_path / "m.onnx"), cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 3 and "Traceback" not in proc.stderr, proc.stderr
    assert "missing.png: no such image file" in lines[0]
    assert "notes.png: not an image" in lines[1]
    assert "blank.png: an empty image" in lines[2]
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("case", ["missing", "another_shape", "not_a_model", "no_images"])
def test_bad_model_files(tmp_path, case, run_main):
    Image.fromarray(np.eye(28, dtype=np.uint8) * 255).save(tmp_path / "a.png")
    model = tmp_path / "model.npz"
    if case == "another_shape":
        other = tg.nn.Sequential(tg.nn.Linear(100, 10, rng=0))
        deploy.save_model(model, other, dict(mlp.DEFAULTS, hidden="64"), PREPROCESSING)
    elif case == "not_a_model":
        tg.save({"hello": "world"}, model)
    args = ["--predict", str(model)] + ([] if case == "no_images" else [str(tmp_path / "a.png")])
    if case == "no_images":
        make_model_file(tmp_path)
    proc = run_main(*args)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    expected = {"missing": "no such model file", "another_shape": "do not fit the architecture",
                "not_a_model": "not a model file", "no_images": "at least one image"}[case]
    assert expected in lines[0]


def test_another_input_size_is_refused(tmp_path):
    path, model = make_model_file(tmp_path)
    obj = tg.load(path)
    obj["metadata"]["architecture"]["input_size"] = 100
    tg.save(obj, path)
    with pytest.raises(deploy.DeployError, match="another shape"):
        deploy.load_model(path, mlp.build_model, mlp.DEFAULTS)


@pytest.mark.parametrize("preprocess", [PREPROCESSING, {"method": "per-image"}])
def test_export_onnx_from_predict_matches(tmp_path, preprocess, run_main):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    path, model = make_model_file(tmp_path, batch_norm=True, preprocess=preprocess)
    images, paths = write_test_images(tmp_path)
    onnx_path = tmp_path / "model.onnx"
    proc = run_main("--predict", str(path), *map(str, paths), "--json",
                    "--export-onnx", str(onnx_path))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    probabilities, = session.run(None, {"image": to_float(images)})
    assert probabilities.shape == (len(images), 10)
    for entry, p in zip(result, probabilities):
        for t in entry["top"]:
            assert abs(p[t["index"]] - t["probability"]) < 1e-5
    classes = json.loads(session.get_modelmeta().custom_metadata_map["classes"])
    assert classes == list(CLASSES)
    again = run_main("--predict", str(path), str(paths[0]), "--export-onnx", str(onnx_path))
    assert again.returncode == 2 and "already exists" in again.stderr


def test_eval_only_from_the_file_alone_and_from_an_older_file(tmp_path, run_main):
    try:
        ds = load_fashion_mnist(download=False)
    except DatasetNotFoundError:
        if os.environ.get("TINYGRAD_MLP_REQUIRE_DATA"):
            raise
        pytest.skip("Fashion-MNIST not found (apt-get install dataset-fashion-mnist)")
    path, model = make_model_file(tmp_path)
    x = deploy.apply_preprocessing(PREPROCESSING, to_float(ds.test_images))
    with tg.no_grad():
        want = float(np.mean(model.eval()(tg.Tensor(x)).numpy().argmax(1) == ds.test_labels))
    proc = run_main("--eval-only", str(path), "--no-download")
    assert proc.returncode == 0, proc.stderr
    assert f"test accuracy {want:.4f}" in proc.stdout

    older = tmp_path / "older"
    older.mkdir()
    tg.save(model.state_dict(), older / "model.npz")
    proc = run_main("--eval-only", str(older / "model.npz"), "--no-download")
    assert proc.returncode == 2 and "config.json" in proc.stderr
    (older / "config.json").write_text(json.dumps(dict(mlp.DEFAULTS, hidden="24", dropout=0.1)))
    proc = run_main("--eval-only", str(older / "model.npz"), "--no-download")
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy" in proc.stdout  # statistics recomputed from the training split


def test_the_ten_line_onnxruntime_script_in_the_docs(tmp_path, run_main):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    text = (ROOT / "docs" / "deploy.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    script, = [b for b in blocks if "custom_metadata_map" in b]
    assert len([line for line in script.splitlines() if line.strip()]) <= 12
    path, _ = make_model_file(tmp_path)
    images, paths = write_test_images(tmp_path)
    os.replace(paths[1], tmp_path / "shirt.png")
    proc = run_main("--predict", str(path), str(tmp_path / "shirt.png"), "--json",
                    "--export-onnx", str(tmp_path / "model.onnx"))
    assert proc.returncode == 0, proc.stderr
    top = json.loads(proc.stdout)[0]["top"][0]
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    name, percent = out.stdout.strip().rsplit(" ", 1)
    assert name == top["class"]
    assert abs(float(percent.rstrip("%")) - 100 * top["probability"]) <= 0.051


def test_training_writes_a_self_contained_model_and_exports_it(tmp_path, run_main):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    try:
        load_fashion_mnist(download=False)
    except DatasetNotFoundError:
        if os.environ.get("TINYGRAD_MLP_REQUIRE_DATA"):
            raise
        pytest.skip("Fashion-MNIST not found (apt-get install dataset-fashion-mnist)")
    out, onnx_path = tmp_path / "run", tmp_path / "run.onnx"
    onnx_path.write_text("a user's file")
    proc = run_main("--out", str(out), "--epochs", "1", "--hidden", "8", "--batch-size", "512",
                    "--no-progress", "--no-download", "--export-onnx", str(onnx_path))
    assert proc.returncode == 2 and "already exists" in proc.stderr
    assert not out.exists() and onnx_path.read_text() == "a user's file"
    onnx_path.unlink()
    proc = run_main("--out", str(out), "--epochs", "1", "--hidden", "8", "--batch-size", "512",
                    "--no-progress", "--no-download", "--export-onnx", str(onnx_path),
                    "--preprocess", "per-image")
    assert proc.returncode == 0, proc.stderr
    results = json.loads((out / "results.json").read_text())
    meta = tg.load(out / "model.npz")["metadata"]
    assert meta["test_accuracy"] == results["test_accuracy"]
    assert meta["preprocessing"] == {"method": "per-image"}
    assert meta["architecture"]["hidden"] == [8]
    import onnxruntime as ort
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ds = load_fashion_mnist(download=False)
    probabilities, = session.run(None, {"image": to_float(ds.test_images)})
    accuracy = float(np.mean(probabilities.argmax(1) == ds.test_labels))
    assert abs(accuracy - results["test_accuracy"]) <= 2e-4  # at most a near-tie or two apart
