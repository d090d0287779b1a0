"""examples/from_scratch.py: runs on a subset of the real Fashion-MNIST and uses the public API
only (the full run's accuracies are in the example's docstring and docs/autograd.md)."""
import importlib.util
import re
from pathlib import Path

from test_fashion_example import real_data_or_skip

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "from_scratch.py"


def load_example():
    spec = importlib.util.spec_from_file_location("from_scratch", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_run_learns_both_models(capsys):
    real_data_or_skip()
    results = load_example().main(["--quick"])
    assert set(results) == {"softmax regression", "MLP"}
    for name, (accuracy, _) in results.items():
        assert accuracy > 0.7, (name, accuracy)  # chance is 0.1; one epoch on 5,000 images
    assert "test accuracy" in capsys.readouterr().out


def test_uses_no_private_api_and_neither_nn_nor_optim():
    source = EXAMPLE.read_text()
    assert not re.findall(r"\._\w", source), re.findall(r"\._\w+", source)
    assert not re.search(r"\b(tg\.)?(nn|optim)\.", source)
    assert "p -= " in source and "with tg.no_grad()" in source
