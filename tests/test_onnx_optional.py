"""The ONNX exporter is an optional extra: the package, and tinygrad_mlp.onnx itself, import without it."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_package_imports_without_onnx():
    code = ("import sys; sys.modules['onnx'] = None; sys.modules['onnxruntime'] = None\n"
            "import numpy as np, tinygrad_mlp as tg, tinygrad_mlp.onnx as tx\n"
            "assert 'Add' in tx.TRANSLATIONS\n"
            "try:\n"
            "    tx.export(tg.nn.Linear(2, 2, rng=0), np.ones((1, 2), np.float32))\n"
            "except ImportError as e:\n"
            "    print(e)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "pip install 'tinygrad_mlp[onnx]'" in proc.stdout
