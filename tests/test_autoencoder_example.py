"""examples/autoencoder.py: a quick real-data run writes its figure and metrics, scores PCA
sensibly, and refuses to overwrite a previous run's outputs."""
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

from tinygrad_mlp.data import DatasetNotFoundError, load_fashion_mnist

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "autoencoder.py"


def load_example():
    spec = importlib.util.spec_from_file_location("autoencoder_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pca_reconstruct_is_exact_with_all_components_and_projects_with_fewer():
    ae = load_example()
    rng = np.random.default_rng(0)
    train = rng.normal(size=(50, 6)).astype(np.float32)
    test = rng.normal(size=(5, 6)).astype(np.float32)
    np.testing.assert_allclose(ae.pca_reconstruct(train, test, 6), test, atol=1e-5)
    # Data on a line through the mean: one component rebuilds it.
    line = np.outer(rng.normal(size=40), [1.0, 2.0, -1.0]).astype(np.float32) + 3.0
    np.testing.assert_allclose(ae.pca_reconstruct(line, line[:4], 1), line[:4], atol=1e-4)


def test_quick_run_writes_figure_and_metrics_and_never_overwrites(tmp_path, capsys):
    try:
        load_fashion_mnist(download=False)
    except DatasetNotFoundError as e:
        if os.environ.get("TINYGRAD_MLP_REQUIRE_DATA"):
            raise
        pytest.skip(f"Fashion-MNIST not found: {e}")
    ae = load_example()
    out = tmp_path / "ae"
    args = ["--quick", "--train-size", "1000", "--epochs", "1", "--code", "8", "--out", str(out)]
    assert ae.main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_images"] == 950 and metrics["code"] == 8
    # Pixels are in [0, 1]: any MSE is below 1; PCA with 8 components explains much of the
    # variance (the per-pixel variance of Fashion-MNIST is about 0.1).
    assert 0 < metrics["test_mse_pca"] < 0.05
    assert 0 < metrics["test_mse_autoencoder"] < 0.2
    assert (out / "reconstructions.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    before = (out / "metrics.json").read_bytes()
    assert ae.main(args) == 2
    assert "nothing was overwritten" in capsys.readouterr().err
    assert (out / "metrics.json").read_bytes() == before
