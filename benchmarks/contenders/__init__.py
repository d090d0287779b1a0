"""The contenders of ``benchmarks/mlp_epoch.py``: one module each, the same three functions.

``build_model(seed)`` makes the 784-512-256-10 MLP with the weights every contender starts from
(``common.init_weights``); ``train(x, y, batch, seed)`` returns ``run(n)``, which takes ``n``
shuffled training steps and returns the last loss; ``evaluate(xt, batch, seed)`` returns ``run()``,
which computes softmax probabilities for all of ``xt``. The harness times ``run``.
"""
import importlib

MODULES = {
    "tinygrad": "framework",     # tinygrad_mlp through its public API, eager
    "tinygrad-jit": "framework_jit",  # the same step compiled with tg.jit (captured, replayed)
    "torch": "pytorch",          # the same model and loop in PyTorch on the CPU
    "numpy": "handwritten",      # forward, backward and update by hand: the floor for a numpy framework
    "matmul": "matmul",          # the matrix products alone: the hardware floor
}
NAMES = tuple(MODULES)


def load(name: str):
    """The module of contender ``name`` (imported only when asked for: torch is optional)."""
    return importlib.import_module(f"{__name__}.{MODULES[name]}")
