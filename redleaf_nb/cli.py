"""The ``redleaf-nb`` command: reproduce the results, or open the notebooks.

Until the experiments harness lands, ``reproduce`` executes the tour
notebook and writes it, with its outputs, to ``data/results/`` as HTML.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path.cwd()


def reproduce(args) -> int:
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import ExecutePreprocessor

    out = ROOT / "data" / "results"
    out.mkdir(parents=True, exist_ok=True)
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not notebooks:
        print("no notebooks found: run from the repository root", file=sys.stderr)
        return 2
    for nb_path in notebooks:
        print(f"executing {nb_path.relative_to(ROOT)} ...", flush=True)
        nb = nbformat.read(nb_path, as_version=4)
        ExecutePreprocessor(timeout=args.timeout, kernel_name="python3").preprocess(
            nb, {"metadata": {"path": str(nb_path.parent)}})
        html, _ = HTMLExporter().from_notebook_node(nb)
        target = out / f"{nb_path.stem}.html"
        target.write_text(html)
        print(f"  wrote {target.relative_to(ROOT)}")
    return 0


def lab(args) -> int:
    return subprocess.call([sys.executable, "-m", "jupyter", "lab", str(ROOT / "notebooks")])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="redleaf-nb", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("reproduce", help="execute every notebook and write HTML results")
    p.add_argument("--timeout", type=int, default=900, help="seconds per cell (default 900)")
    p.set_defaults(func=reproduce)
    sub.add_parser("lab", help="open JupyterLab on the notebooks").set_defaults(func=lab)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
