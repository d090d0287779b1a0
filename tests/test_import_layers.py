"""The floors of the package as a test: imports only go down.

Every module of the package is parsed (``ast``, nothing is imported) and each import of a package
module, at the top or inside a function, is checked against the floor table below:
- a module imports nothing from a higher floor (the same floor is fine: nn and optim are both 4);
- nothing outside ``viz`` and ``onnx`` imports them (they read recorded graphs; nothing reads them);
- ``autograd`` imports no package module at all (numpy only);
- ``data`` uses nothing above ``tensor`` (numpy, plus Tensor for batches);
- a "Floor N" ("Below floor 1" for floor 0) at the start of a module's docstring agrees with the table.
The top-level ``__init__``/``__main__`` gather the public API and may import anything below them.
"""
import ast
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "tinygrad_mlp"
TOP = 99  # the package's own __init__ and __main__: above every floor

# first name under the package -> floor (the design's "house, floor by floor"; a new module or
# subpackage gets its row here)
FLOORS = {
    "_atomic": 0, "_validate": 0,          # below floor 1: stdlib/numpy helpers any floor may use
    "_random": 1, "_special": 1, "autograd": 1,
    "ops": 2, "tensor": 2, "_conventions": 2, "_inplace": 2,
    "functional": 3,
    "nn": 4, "optim": 4, "gradcheck": 4, "serialization": 4, "jit": 4,
    "data": 5, "training": 5,
    "viz": 6, "onnx": 6, "sweep": 6,
    "__init__": TOP, "__main__": TOP,
}
READ_ONLY = ("viz", "onnx")  # nothing else in the package may import these


def package_modules():
    """{dotted module name: path} for every .py file in the package."""
    root = os.path.join(REPO, PACKAGE)
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            if name.endswith(".py"):
                rel = os.path.relpath(os.path.join(dirpath, name), REPO)[:-3].split(os.sep)
                if rel[-1] == "__init__" and len(rel) > 1 and rel[-2] != PACKAGE:
                    rel = rel[:-1]
                out[".".join(rel)] = os.path.join(dirpath, name)
    return out


MODULES = package_modules()


def top_name(module: str) -> str:
    """'tinygrad_mlp.nn.layers' -> 'nn'; the package itself -> '__init__'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imported_modules(module: str, path: str):
    """[(line, dotted name)] of every package module that ``path`` imports, wherever it does."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    is_package = path.endswith("__init__.py")
    here = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names
                      if a.name == PACKAGE or a.name.startswith(PACKAGE + ".")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(here[:len(here) - node.level + 1] if node.level > 1 else here)
                target = base + ("." + node.module if node.module else "")
            else:
                target = node.module or ""
            if target != PACKAGE and not target.startswith(PACKAGE + "."):
                continue
            # ``from pkg import sub`` imports the submodule; ``from pkg import name`` the package
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES]
            found += [(node.lineno, name) for name in subs] or [(node.lineno, target)]
    return found


def floor_of(module: str) -> int:
    name = top_name(module)
    if name not in FLOORS:
        raise AssertionError(f"{module} is not in the floor table of tests/test_import_layers.py; "
                             f"add it with its floor from DESIGN.md")
    return FLOORS[name]


def import_violations(modules) -> list:
    problems = []
    for module, path in sorted(modules.items()):
        rel = os.path.relpath(path, REPO)
        mine, my_floor = top_name(module), floor_of(module)
        for line, target in imported_modules(module, path):
            theirs = top_name(target)
            if theirs == mine and mine != "__init__":
                continue  # within one package (viz importing viz, nn importing nn)
            where = f"{rel}:{line} imports {target}"
            if theirs in READ_ONLY:
                problems.append(f"{where}: nothing in the package may import {theirs}")
            elif mine == "autograd":
                problems.append(f"{where}: autograd imports no package module (numpy only)")
            elif mine == "data" and floor_of(target) > FLOORS["tensor"]:
                problems.append(f"{where}: data may use only numpy and tensor (floor <= 2)")
            elif floor_of(target) > my_floor:
                problems.append(f"{where}: floor {floor_of(target)} is above {mine}'s floor "
                                f"{my_floor}")
    return problems


def test_imports_only_go_down():
    problems = import_violations(MODULES)
    assert not problems, "imports that go up a floor:\n" + "\n".join(problems)


DOC_FLOOR = re.compile(r"^\s*(?:Floor (\d+)|(Below floor 1))\b")


def test_floor_labels_in_docstrings_agree_with_the_table():
    wrong = []
    for module, path in sorted(MODULES.items()):
        with open(path, encoding="utf-8") as f:
            doc = ast.get_docstring(ast.parse(f.read())) or ""
        m = DOC_FLOOR.match(doc)
        if m:
            said = 0 if m.group(2) else int(m.group(1))
            if said != floor_of(module):
                wrong.append(f"{os.path.relpath(path, REPO)} says floor {said}; the table says "
                             f"{floor_of(module)}")
    assert not wrong, "\n".join(wrong)


# --------------------------------------------------------------------------- the checker itself

def checked(tmp_path, relpath, source):
    path = tmp_path / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    module = relpath[:-3].replace("/", ".")
    if module.endswith(".__init__"):
        module = module[:-len(".__init__")]
    return import_violations({module: str(path)})


@pytest.mark.parametrize("relpath, source, expected", [
    ("tinygrad_mlp/nn/bad.py", "from ..training import fit\n", r"floor 5 is above nn's floor 4"),
    ("tinygrad_mlp/tensor.py", "def f():\n    from . import functional\n",
     r"floor 3 is above tensor's floor 2"),
    ("tinygrad_mlp/training/loop.py", "import tinygrad_mlp.viz.plots\n",
     r"nothing in the package may import viz"),
    ("tinygrad_mlp/autograd.py", "from ._random import resolve_rng\n",
     r"autograd imports no package module"),
    ("tinygrad_mlp/data/loader.py", "from ..nn import Linear\n", r"data may use only numpy and tensor"),
    ("tinygrad_mlp/nn/layers.py", "from tinygrad_mlp import Tensor\n",
     r"imports tinygrad_mlp: floor 99 is above"),
])
def test_the_checker_catches_each_kind_of_upward_import(tmp_path, relpath, source, expected):
    problems = checked(tmp_path, relpath, source)
    assert len(problems) == 1 and re.search(expected, problems[0]), problems


def test_the_checker_allows_imports_that_go_down_or_stay_inside_a_package(tmp_path):
    assert checked(tmp_path, "tinygrad_mlp/training/loop.py",
                   "from .. import functional as F\nfrom ..nn import Module\nfrom .history import History\n"
                   "from ..data import DataLoader\nimport numpy as np\n") == []
    assert checked(tmp_path, "tinygrad_mlp/viz/graph.py",
                   "from . import _dot\nfrom ..autograd import trace_modules\n") == []


def test_the_package_loads_data_training_and_viz_on_first_use():
    import subprocess
    import sys
    code = (
        "import sys\n"
        "import tinygrad_mlp as tg\n"
        "lazy = ('data', 'training', 'viz', 'onnx')\n"
        "print(sorted(n for n in lazy if 'tinygrad_mlp.' + n in sys.modules))\n"
        "print(tg.data.DataLoader.__name__, tg.training.fit.__name__, tg.viz.draw_graph.__name__)\n"
        "print(all(n in dir(tg) for n in lazy))\n"
        "from tinygrad_mlp import training\n"
        "print(training is tg.training)\n"
        "try:\n    tg.no_such_thing\nexcept AttributeError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == ["[]", "DataLoader fit draw_graph", "True", "True",
                   "module 'tinygrad_mlp' has no attribute 'no_such_thing'"]


def test_examples_use_the_public_api_only():
    """Examples are what users copy: no private module (``tinygrad_mlp._atomic``) and no private
    Tensor attribute (``_from_op``, ``_ctx``, ``_version``, ...)."""
    private = re.compile(r"tinygrad_mlp\._\w+|\.(_from_op|_const|_ctx|_version|_hooks|_sum_to|"
                         r"_retains_grad|_tensor_operand)\b")
    found = []
    for folder in ("examples",):  # benchmarks may measure internals
        for name in sorted(os.listdir(os.path.join(REPO, folder))):
            if name.endswith(".py"):
                with open(os.path.join(REPO, folder, name), encoding="utf-8") as f:
                    for i, line in enumerate(f, 1):
                        if private.search(line):
                            found.append(f"{folder}/{name}:{i}: {line.strip()}")
    assert not found, "private API used:\n" + "\n".join(found)
