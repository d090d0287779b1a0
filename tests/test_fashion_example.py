"""The main job, examples/fashion_mlp.py: its command-line errors and a real end-to-end run."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_mlp as tg
from tinygrad_mlp import nn
from tinygrad_mlp.data import DatasetNotFoundError, load_fashion_mnist

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "fashion_mlp.py"


def run_example(*args, cwd=None, timeout=600):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(EXAMPLE), *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


def real_data_or_skip():
    try:
        return load_fashion_mnist(download=False)
    except DatasetNotFoundError as e:
        if os.environ.get("TINYGRAD_MLP_REQUIRE_DATA"):
            raise
        pytest.skip(f"Fashion-MNIST not found (apt-get install dataset-fashion-mnist): {e}")


@pytest.mark.parametrize("args, expected", [
    (["--hidden", "0"], "--hidden"),
    (["--hidden", "512,abc"], "--hidden"),
    (["--lr", "-0.1"], "--lr must be positive"),
    (["--optimizer", "rmsprop"], "--optimizer must be sgd, adam or adamw"),
    (["--schedule", "linear"], "--schedule"),
    (["--dropout", "1.5"], "--dropout"),
    (["--epochs", "0"], "--epochs"),
    (["--val-fraction", "1"], "--val-fraction"),
])
def test_bad_arguments_exit_with_one_line(tmp_path, args, expected):
    out = tmp_path / "run"
    proc = run_example(*args, "--out", str(out))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert not out.exists(), "a rejected command must not create its run directory"


def test_missing_resume_directory(tmp_path):
    proc = run_example("--resume", str(tmp_path / "nowhere"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "nowhere" in proc.stderr and "checkpoint.npz" in proc.stderr


def test_unreadable_model_file(tmp_path):
    bad = tmp_path / "model.npz"
    bad.write_bytes(b"this is not a zip archive")
    proc = run_example("--eval-only", str(bad))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert str(bad) in proc.stderr


def test_a_model_that_does_not_fit_is_refused_with_the_whole_reason(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"hidden": "16", "dropout": 0.0}))
    other = nn.Sequential(nn.Linear(784, 8), nn.ReLU(), nn.Linear(8, 10))
    tg.save(other.state_dict(), tmp_path / "model.npz")
    proc = run_example("--eval-only", str(tmp_path / "model.npz"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for fragment in ("0.weight: shape (8, 784) in the state dict but (16, 784) in the model",
                     "2.weight: shape (10, 8) in the state dict but (10, 16) in the model"):
        assert fragment in lines[0]


def test_existing_run_directory_is_not_touched(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    keep = out / "model.npz"
    keep.write_bytes(b"a user's file")
    proc = run_example("--out", str(out), "--epochs", "1")
    assert proc.returncode == 2 and "--resume" in proc.stderr
    assert keep.read_bytes() == b"a user's file"
    assert sorted(p.name for p in out.iterdir()) == ["model.npz"]


def test_one_epoch_on_the_real_data_end_to_end(tmp_path):
    real_data_or_skip()
    out = tmp_path / "run"
    proc = run_example("--out", str(out), "--epochs", "1", "--hidden", "64",
                       "--batch-size", "128", "--schedule", "step", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    for name in ["config.json", "model.npz", "checkpoint.npz", "metrics.csv", "history.json",
                 "results.json", "curves.png", "weights.png", "confusion_matrix.png",
                 "predictions.png", "graph.svg"]:
        assert (out / name).is_file(), f"{name} missing from the run directory"
    results = json.loads((out / "results.json").read_text())
    assert results["test_accuracy"] >= 0.80
    # the training loss is label-smoothed, the reported test loss is plain cross-entropy
    assert results["test_loss_label_smoothed"] > results["test_loss"] > 0
    assert "test_loss is plain cross-entropy" in results["loss_note"]
    assert f"{results['test_accuracy']:.4f}" in proc.stdout

    # --eval-only on the saved model gives the same accuracy from a fresh process.
    proc = run_example("--eval-only", str(out / "model.npz"))
    assert proc.returncode == 0, proc.stderr
    assert f"test accuracy {results['test_accuracy']:.4f}" in proc.stdout

    # A finished run resumed for more epochs continues rather than restarting (the step
    # schedule does not depend on the number of epochs; the cosine schedule would).
    config = json.loads((out / "config.json").read_text())
    config["epochs"] = 2
    (out / "config.json").write_text(json.dumps(config))
    proc = run_example("--resume", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    history = json.loads((out / "history.json").read_text())
    assert len(history["train_loss"]) == 2
    assert np.all(np.isfinite(history["train_loss"]))


def test_help_shows_every_default():
    import importlib.util
    spec = importlib.util.spec_from_file_location("fashion_mlp_example", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    proc = run_example("--help")
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())  # argparse wraps lines
    options = text[text.index("options:"):]
    for key, value in example.DEFAULTS.items():
        option = "--" + key.replace("_", "-")
        entry = options[options.index(" " + option + " "):]
        # the first default after the option's entry is its own
        assert entry[entry.index("(default: "):].startswith(f"(default: {value}"), (option, value)
