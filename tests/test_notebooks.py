"""Every notebook runs unattended, top to bottom, and is committed without outputs.

Notebooks are executed with nbclient on the ``python3`` kernel, from the
``notebooks/`` directory (as ``redleaf-nb reproduce`` and JupyterLab run them).
Run from ``.venv/bin/python``, that kernel is this interpreter: jupyter_client
replaces the spec's ``python`` with ``sys.executable``, and
``test_kernel_is_this_python`` checks it.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("*.ipynb"))
KERNEL = "python3"
CELL_TIMEOUT = 600  # seconds per cell
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colours in IPython tracebacks


def _client(nb) -> NotebookClient:
    return NotebookClient(nb, kernel_name=KERNEL, timeout=CELL_TIMEOUT,
                          resources={"metadata": {"path": str(NB_DIR)}})


def _failed_cell(nb) -> int:
    """Index of the code cell whose outputs hold the error (-1 if none does)."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and any(o.get("output_type") == "error"
                                            for o in cell.get("outputs", [])):
            return i
    return -1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path: Path):
    nb = nbformat.read(path, as_version=4)  # executed in memory; the file is not touched
    try:
        _client(nb).execute()
    except CellExecutionError as e:
        error = ANSI.sub("", str(e))  # the failing cell's source, output and traceback
    else:
        return
    index = _failed_cell(nb)
    pytest.fail(f"{path.name}: cell {index} (0-based, markdown cells counted) raised\n{error}",
                pytrace=False)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_committed_without_outputs(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
             and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, (f"{path.name}: code cells {dirty} have outputs or execution counts; "
                       "clear them before committing")


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks in {NB_DIR}"


def test_kernel_is_this_python():
    """The ``python3`` kernel runs in this environment (the venv), not another Python."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import sys, redleaf_nb; print(sys.prefix)")])
    _client(nb).execute()
    printed = "".join(o.get("text", "") for o in nb.cells[0].outputs
                      if o.get("output_type") == "stream" and o.get("name") == "stdout")
    assert Path(printed.strip()).resolve() == Path(sys.prefix).resolve()


def test_the_tour_is_short_enough_to_read():
    """The tour is for a student who has read only the paper's abstract: at most 3,000
    words of text."""
    nb = nbformat.read(NB_DIR / "00_tour.ipynb", as_version=4)
    words = sum(len(re.findall(r"\w+", c.source)) for c in nb.cells if c.cell_type == "markdown")
    assert 200 < words <= 3000
