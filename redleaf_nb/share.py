"""Executed notebooks to send to a colleague: ``redleaf-nb share [NAMES]`` runs notebooks
with papermill (at the parameters given, into a notebook's ``parameters`` cell) and
writes each, with its outputs, as ``.ipynb`` and as one standalone HTML file (figures
embedded) into ``data/results/notebooks/``, stamped with the machine, the code version
and the parameters. The ``.ipynb`` opens in JupyterLab and runs again with others; the
HTML opens anywhere, offline: it loads nothing from the network."""
from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

from .experiments import HarnessError, repo_root

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# nbconvert's lab template without the scripts it loads from a CDN (require.js, MathJax,
# mermaid): our notebooks have no JavaScript outputs, no TeX and no diagrams
OFFLINE_TEMPLATE = """{%- extends "index.html.j2" -%}
{% block html_head_js_requirejs %}{% endblock html_head_js_requirejs %}
{% block html_head_js_mathjax %}{% endblock html_head_js_mathjax %}
{% block html_head_js_mermaidjs %}{% endblock html_head_js_mermaidjs %}
"""


def notebooks() -> dict[str, Path]:
    """Every notebook of the checkout, by name (its file name without ``.ipynb``)."""
    return {p.stem: p for p in sorted((repo_root() / "notebooks").glob("*.ipynb"))}


def _captured(state: dict, model_id: str) -> list:
    """What the Output and HTML widgets in widget ``model_id`` (and in its children)
    show: a form's results, and what it says about them (a recovery count)."""
    entry = state.get(model_id, {})
    model = entry.get("state", {})
    outputs = list(model.get("outputs", ()))
    if entry.get("model_name") == "HTMLModel" and model.get("value"):
        outputs.append({"output_type": "display_data", "metadata": {},
                        "data": {"text/html": model["value"]}})
    for child in model.get("children", ()):
        outputs += _captured(state, child.removeprefix("IPY_MODEL_"))
    return outputs


def standalone_html(nb) -> str:
    """``nb`` as one HTML file that fetches nothing: figures are embedded, and each widget
    is replaced by what its Output and HTML widgets show (a form's results), since drawing
    live widgets would take a widget manager from a CDN."""
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter
    nb = copy.deepcopy(nb)
    state = nb.metadata.pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [nbformat.from_dict(o) for out in cell.outputs for o in (
                _captured(state, out["data"][WIDGET_VIEW]["model_id"])
                if WIDGET_VIEW in out.get("data", {}) else [out])]
    exporter = HTMLExporter(template_file="offline.html.j2", extra_loaders=[
        jinja2.DictLoader({"offline.html.j2": OFFLINE_TEMPLATE})])
    return exporter.from_notebook_node(nb)[0]


def share(names: list[str] | None = None, parameters: dict | None = None,
          out: Path | None = None) -> list[Path]:
    """Execute the notebooks ``names`` (default: all) with ``parameters``; the written
    ``.ipynb`` paths (each with an ``.html`` beside it). ``{"full": True}`` runs the
    figure notebooks at their experiment's full setting (their ``full`` parameter)."""
    import nbformat
    import papermill as pm

    from .codeversion import code_version
    from .lowlevel.clock import machine
    known = notebooks()
    unknown = sorted(set(names or ()) - set(known))
    if unknown:
        raise HarnessError(f"share: no notebook named {', '.join(unknown)} (have: "
                           f"{', '.join(known)})")
    out = out or repo_root() / "data" / "results" / "notebooks"
    out.mkdir(parents=True, exist_ok=True)
    parameters = dict(parameters or {})
    chosen = names or list(known)
    declared = {name: set(pm.inspect_notebook(str(known[name]))) for name in chosen}
    unused = sorted(set(parameters) - set().union(*declared.values()))
    if unused:
        raise HarnessError(f"share: no chosen notebook has a parameter {', '.join(unused)} "
                           "(each notebook's parameters cell names its own)")
    written = []
    for name in chosen:
        src, dst = known[name], out / f"{name}.ipynb"
        given = {k: v for k, v in parameters.items() if k in declared[name]}  # its own only
        setting = "full" if given.get("full") is True else "the notebook's own"
        pm.execute_notebook(str(src), str(dst), parameters=given, cwd=str(src.parent),
                            kernel_name="python3", progress_bar=False)
        nb = nbformat.read(dst, as_version=4)
        m = machine()
        stamp = {"executed_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                 "setting": setting, "parameters": given,
                 "code_version": code_version(), "machine": m}
        nb.metadata["redleaf_nb"] = stamp
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(
            f"*Executed by `redleaf-nb share` on {stamp['executed_utc']}: {m['cpu_model']}, "
            f"{m['cores']} cores, TSC {m['tsc_ghz']} GHz; {setting} setting, parameters "
            f"`{json.dumps(given)}`; code version `{stamp['code_version'][:12]}`.*"))
        nb.cells[0]["id"] = "shared-stamp"
        nbformat.write(nb, dst)
        dst.with_suffix(".html").write_text(standalone_html(nb))
        written.append(dst)
    return written
