"""redleaf-nb share: executed notebooks with their outputs, stamped, as .ipynb and one
HTML file; a colleague re-runs the shared notebook with other parameters."""
import re
import shutil
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from redleaf_nb import cli
from redleaf_nb import experiments as ex
from redleaf_nb.share import share, standalone_html

LAB = "lab_heap_and_faults"


def _text(nb) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            out.append(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")))
    return "\n".join(out)


def test_a_shared_notebook_has_its_outputs_its_stamp_and_runs_again_with_other_parameters(
        tmp_path):
    (path,) = share([LAB], {"calls": 60, "every": 20}, out=tmp_path)
    nb = nbformat.read(path, as_version=4)
    stamp = nb.metadata["redleaf_nb"]
    assert stamp["parameters"] == {"calls": 60, "every": 20} and stamp["machine"]["cpu_model"]
    assert "redleaf-nb share" in nb.cells[0].source and stamp["setting"] == "the notebook's own"
    assert re.search(r"^calls\s+60$", _text(nb), re.M)
    html = path.with_suffix(".html").read_text()
    images = re.findall(r"<img[^>]*src=\"([^\"]+)\"", html)
    assert images and all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.findall(r"<(?:script|link)[^>]*(?:src|href)=[\"']?https?:", html)
    again = tmp_path / "again.ipynb"
    pm.execute_notebook(str(path), str(again), parameters={"calls": 80}, cwd=str(tmp_path),
                        kernel_name="python3", progress_bar=False)
    assert re.search(r"^calls\s+80$", _text(nbformat.read(again, as_version=4)), re.M)


def test_share_names_what_it_does_not_know(capsys):
    with pytest.raises(ex.HarnessError, match="no notebook named nosuch"):
        share(["nosuch"])


def test_a_forms_results_stay_in_the_html_without_its_widgets():
    """Drawing a live widget takes a script from a CDN: the HTML shows what its Output
    widgets hold instead (a form's figure), and fetches nothing."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("form")])
    nb.cells[0].outputs = [nbformat.v4.new_output("execute_result", {
        "application/vnd.jupyter.widget-view+json": {"model_id": "box"},
        "text/plain": "VBox(...)"}, execution_count=1)]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {
        "box": {"state": {"children": ["IPY_MODEL_out", "IPY_MODEL_says"]}},
        "says": {"model_name": "HTMLModel", "state": {"value": "<b>recoveries</b>: 4"}},
        "out": {"state": {"outputs": [{"output_type": "display_data", "metadata": {},
                                       "data": {"image/png": "iVBORw0KGgo=",
                                                "text/plain": "<Figure>"}}]}}}}}
    html = standalone_html(nb)
    assert 'src="data:image/png;base64,iVBORw0KGgo=' in html and "VBox(...)" not in html
    assert "<b>recoveries</b>: 4" in html
    assert "http" not in "".join(re.findall(r"<(?:script|link)[^>]*>", html))


def test_share_full_sets_the_notebooks_full_parameter(monkeypatch):
    """--full is --param full=True (and a Python word is what it says, not a true string)."""
    given = []
    monkeypatch.setattr("redleaf_nb.share.share", lambda names, params: given.append(params) or [])
    assert cli.main(["share", "fig5_hashtable", "--full"]) == 0
    assert cli.main(["share", "--param", "full=False", "--param", "calls=60"]) == 0
    assert given == [{"full": True}, {"full": False, "calls": 60}]


def test_each_notebook_gets_only_the_parameters_its_cell_declares(monkeypatch, tmp_path):
    """--full reaches the notebooks with a ``full`` parameter (stamped "full"); the others
    run as they are, stamped so; a parameter no chosen notebook has is refused."""
    ran = {}

    def execute(src, dst, parameters, **_):
        ran[Path(src).stem] = parameters
        shutil.copy(src, dst)

    monkeypatch.setattr(pm, "execute_notebook", execute)
    paths = share(["00_tour", "fig5_hashtable"], {"full": True}, out=tmp_path)
    assert ran == {"00_tour": {}, "fig5_hashtable": {"full": True}}
    stamps = [nbformat.read(p, as_version=4).metadata["redleaf_nb"] for p in paths]
    assert [s["setting"] for s in stamps] == ["the notebook's own", "full"]
    with pytest.raises(ex.HarnessError, match="no chosen notebook has a parameter full"):
        share(["00_tour", LAB], {"full": True}, out=tmp_path)
