"""redleaf-nb share: executed notebooks with their outputs, stamped, as .ipynb and one
HTML file; a colleague re-runs the shared notebook with other parameters."""
import re

import nbformat
import papermill as pm
import pytest

from redleaf_nb import experiments as ex
from redleaf_nb.share import share

LAB = "lab_heap_and_faults"


def _text(nb) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            out.append(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")))
    return "\n".join(out)


def test_a_shared_notebook_has_its_outputs_its_stamp_and_runs_again_with_other_parameters(
        tmp_path):
    (path,) = share([LAB], {"reads": 60, "every": 20}, out=tmp_path)
    nb = nbformat.read(path, as_version=4)
    stamp = nb.metadata["redleaf_nb"]
    assert stamp["parameters"] == {"reads": 60, "every": 20} and stamp["machine"]["cpu_model"]
    assert "redleaf-nb share" in nb.cells[0].source
    assert re.search(r"^reads\s+60$", _text(nb), re.M)
    html = path.with_suffix(".html").read_text()
    images = re.findall(r"<img[^>]*src=\"([^\"]+)\"", html)
    assert images and all(src.startswith("data:image/png;base64,") for src in images)
    again = tmp_path / "again.ipynb"
    pm.execute_notebook(str(path), str(again), parameters={"reads": 80}, cwd=str(tmp_path),
                        kernel_name="python3", progress_bar=False)
    assert re.search(r"^reads\s+80$", _text(nbformat.read(again, as_version=4)), re.M)


def test_share_names_what_it_does_not_know(capsys):
    with pytest.raises(ex.HarnessError, match="no notebook named nosuch"):
        share(["nosuch"])
