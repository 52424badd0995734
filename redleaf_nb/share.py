"""Executed notebooks to send to a colleague: ``redleaf-nb share [NAMES]`` runs notebooks
with papermill (at the parameters given, into a notebook's ``parameters`` cell) and
writes each, with its outputs, as ``.ipynb`` and as one standalone HTML file (figures
embedded) into ``data/results/notebooks/``, stamped with the machine, the code version
and the parameters. The ``.ipynb`` opens in JupyterLab and runs again with others."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from .experiments import HarnessError, repo_root


def notebooks() -> dict[str, Path]:
    """Every notebook of the checkout, by name (its file name without ``.ipynb``)."""
    return {p.stem: p for p in sorted((repo_root() / "notebooks").glob("*.ipynb"))}


def share(names: list[str] | None = None, parameters: dict | None = None,
          out: Path | None = None) -> list[Path]:
    """Execute the notebooks ``names`` (default: all) with ``parameters``; the written
    ``.ipynb`` paths (each with an ``.html`` beside it)."""
    import nbformat
    import papermill as pm
    from nbconvert import HTMLExporter

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
    written = []
    for name in names or list(known):
        src, dst = known[name], out / f"{name}.ipynb"
        pm.execute_notebook(str(src), str(dst), parameters=parameters, cwd=str(src.parent),
                            kernel_name="python3", progress_bar=False)
        nb = nbformat.read(dst, as_version=4)
        m = machine()
        stamp = {"executed_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                 "parameters": parameters, "code_version": code_version(), "machine": m}
        nb.metadata["redleaf_nb"] = stamp
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(
            f"*Executed by `redleaf-nb share` on {stamp['executed_utc']}: {m['cpu_model']}, "
            f"{m['cores']} cores, TSC {m['tsc_ghz']} GHz; parameters "
            f"`{json.dumps(parameters)}`; code version `{stamp['code_version'][:12]}`.*"))
        nb.cells[0]["id"] = "shared-stamp"
        nbformat.write(nb, dst)
        html, _ = HTMLExporter().from_notebook_node(nb)
        dst.with_suffix(".html").write_text(html)
        written.append(dst)
    return written
