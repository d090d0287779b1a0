"""Every ```python block in README.md and docs/*.md runs, so the docs cannot drift from the code.

The convention (also in README.md, "Code blocks in the docs"): the blocks of one file run in
order in one namespace, in a fresh temporary working directory; nothing is pre-imported (a block
imports what it uses). A block whose fence is directly preceded by a line
``<!-- not-run: <reason> -->`` is skipped: only for what needs a long training run, a network or
a server. A failure names the file, the block and the line of the Markdown file it stopped on.
"""
import glob
import linecache
import os
import re
import traceback

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# As CommonMark: a backtick fence's info string holds no backtick (so ```` ```python ```` in a
# sentence opens nothing); a closing fence is the same character, at least as long, and nothing else.
FENCE = re.compile(r"^(`{3,})\s*([^`\s]*)[^`]*$|^(~{3,})\s*(\S*).*$")
NOT_RUN = re.compile(r"^\s*<!--\s*not-run:\s*(\S.*?)\s*-->\s*$")


def markdown_files():
    files = [os.path.join(REPO, "README.md")] + sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))
    return [os.path.relpath(f, REPO) for f in files if os.path.exists(f)]


def python_blocks(text: str, relpath: str = "<text>"):
    """[(first line number of the code, code, skip reason or None)] for each ```python block."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i].lstrip())
        if not m:
            i += 1
            continue
        fence = m.group(1) or m.group(3)
        lang, start = (m.group(2) if m.group(1) else m.group(4)).lower(), i
        closing = re.compile(re.escape(fence[0]) + "{" + str(len(fence)) + r",}\s*$")
        i += 1
        while i < len(lines) and not closing.match(lines[i].lstrip()):
            i += 1
        if i == len(lines):
            raise AssertionError(f"{relpath}: the code block opened at line {start + 1} is never "
                                 f"closed")
        if lang in ("python", "py"):
            indent = len(lines[start]) - len(lines[start].lstrip())
            code = "\n".join(line[indent:] for line in lines[start + 1:i])
            marker = NOT_RUN.match(lines[start - 1]) if start > 0 else None
            blocks.append((start + 2, code, marker.group(1) if marker else None))
        i += 1
    return blocks


def run_blocks(relpath: str, blocks, workdir) -> list:
    """Run the blocks in order in one namespace inside ``workdir``; the indices of those run."""
    namespace = {"__name__": "__main__"}  # as if the file were a script
    ran = []
    old_cwd = os.getcwd()
    os.chdir(workdir)
    try:
        for number, (line, code, skip) in enumerate(blocks, 1):
            if skip is not None:
                continue
            # Padding puts each statement on its own line number in the Markdown file, so a
            # traceback points at the line that failed.
            source = "\n" * (line - 1) + code
            linecache.cache[relpath] = (len(source), None, source.splitlines(True), relpath)
            failure = None
            try:
                exec(compile(source, relpath, "exec"), namespace)
            except BaseException as exc:  # noqa: BLE001 - reported with where it happened
                trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                failure = (f"{relpath}: python block {number} of {len(blocks)} (starting at line "
                           f"{line}) failed: {type(exc).__name__}: {exc}\n{trace}")
            finally:
                linecache.cache.pop(relpath, None)
            if failure:
                pytest.fail(failure, pytrace=False)
            ran.append(number)
    finally:
        os.chdir(old_cwd)
    return ran


@pytest.fixture
def isolated_state():
    """Docs may seed the default generator or change the grad mode: give them back afterwards."""
    import tinygrad_mlp as tg
    from tinygrad_mlp import autograd
    state = tg.get_rng_state()
    grad_mode = autograd.is_grad_enabled()
    yield
    tg.set_rng_state(state)
    autograd.set_grad_enabled(grad_mode)


@pytest.mark.parametrize("relpath", markdown_files())
def test_python_blocks_run(relpath, tmp_path, isolated_state):
    with open(os.path.join(REPO, relpath), encoding="utf-8") as f:
        blocks = python_blocks(f.read(), relpath)
    run_blocks(relpath, blocks, tmp_path)


# --------------------------------------------------------------------------- the runner itself

def test_blocks_are_found_with_their_lines_and_markers():
    text = ("intro\n```python\nx = 1\n```\n<!-- not-run: needs a server -->\n```python\n"
            "connect()\n```\n```bash\nls\n```\n  ```py\n  y = x + 1\n  ```\n"
            "a sentence naming ```` ```python ```` blocks\n~~~python\nz = 3\n~~~\n")
    assert python_blocks(text) == [(3, "x = 1", None), (7, "connect()", "needs a server"),
                                   (13, "y = x + 1", None), (17, "z = 3", None)]
    with pytest.raises(AssertionError, match=r"doc\.md: the code block opened at line 2 is never"):
        python_blocks("text\n```python\nx = 1\n", "doc.md")


def test_blocks_share_one_namespace_and_skipped_ones_do_not_run(tmp_path):
    blocks = [(1, "x = 2", None), (3, "raise SystemExit('must not run')", "a reason"),
              (5, "assert x == 2\nopen('made.txt', 'w').close()", None)]
    assert run_blocks("doc.md", blocks, tmp_path) == [1, 3]
    assert (tmp_path / "made.txt").exists()  # the blocks ran in the working directory given


def test_a_failure_names_the_file_block_and_markdown_line(tmp_path):
    blocks = [(10, "a = 1", None), (20, "b = 2\nc = undefined_name", None)]
    with pytest.raises(pytest.fail.Exception) as info:
        run_blocks("docs/x.md", blocks, tmp_path)
    message = str(info.value)
    assert "docs/x.md: python block 2 of 2 (starting at line 20)" in message
    assert "NameError" in message and 'File "docs/x.md", line 21' in message
    assert "c = undefined_name" in message  # the failing line itself is shown


# --------------------------------------------------------------------------- quoted numbers

def test_numbers_quoted_in_visualization_md_are_what_make_figures_computes():
    pytest.importorskip("graphviz")  # draw_graph builds DOT with it; no `dot` program needed
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_figures",
                                                  os.path.join(REPO, "docs", "make_figures.py"))
    make_figures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_figures)
    numbers = make_figures.graph_numbers()
    with open(os.path.join(REPO, "docs", "visualization.md"), encoding="utf-8") as f:
        text = " ".join(f.read().split())
    assert make_figures.graph_sentence(numbers) in text, make_figures.graph_sentence(numbers)
    if numbers["source"] == "Fashion-MNIST":  # the gradient norms depend on the batch
        assert (f"fall from {numbers['grad_last_layer_output']} after the last layer to "
                f"{numbers['grad_first_layer_output']} before the first") in text
        assert (f"stay between {numbers['grad_weights_min']} and "
                f"{numbers['grad_weights_max']}") in text
