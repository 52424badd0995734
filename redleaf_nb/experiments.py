"""The experiments harness: parameters, runs, recorded results and the report.

The repository's ``experiments/`` folder is a Python package; each public module
in it (``experiments.comm_cost``, ``experiments.hashtable``, ...) reproduces one
paper figure or table and defines ``EXPERIMENT``, an :class:`Experiment`: its
typed parameters (:class:`Param`: each with a ``quick`` and a ``full`` setting
and a valid range), ``run(params) -> DataFrame`` (a tidy table of our
measurements) and ``plot(ours, paper) -> Figure`` (ours beside the paper's
numbers, which come only from ``data/paper/``). Helpers the experiments share
are private modules (``experiments._drivers``). Anything else an experiment
offers (ratios, ablations, kernels) is a named attribute of its module.
:func:`run` records CSV, PNG and a JSON of metadata (machine, parameters, date,
commit) under ``data/results/<name>/``; :func:`report` gathers every recorded
figure into one HTML page.
"""
from __future__ import annotations

import base64
import datetime as dt
import html
import importlib
import json
import math
import numbers
import os
import pkgutil
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from .lowlevel.clock import machine


class ParamError(ValueError):
    """A parameter value of the wrong type or outside its valid range."""


class HarnessError(RuntimeError):
    """No usable redleaf-nb checkout, or an experiments package that breaks the rules."""


TRUE_WORDS = ("true", "1", "yes")
FALSE_WORDS = ("false", "0", "no")
PARAM_TYPES = (bool, int, float, str)


@dataclass(frozen=True)
class Param:
    """One experiment parameter: its type, quick and full settings and valid range.

    ``type`` is bool, int, float or str; ints and floats may have ``low``/``high``
    (inclusive), any type may list its ``choices``. This is all a widget or a sweep
    needs: :meth:`check` converts what a command line, a widget or a sweep gives.
    """

    name: str
    type: type
    quick: Any
    full: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None

    def __post_init__(self):
        if self.type not in PARAM_TYPES:
            raise TypeError(f"Param {self.name}: type must be one of bool, int, float, str, "
                            f"not {self.type!r}")
        if (self.low is not None or self.high is not None) and self.type not in (int, float):
            raise TypeError(f"Param {self.name}: low/high apply to int and float only")
        if self.type is str and self.choices is None:
            raise TypeError(f"Param {self.name}: a str parameter needs its choices")
        for setting in ("quick", "full"):
            self.check(getattr(self, setting), f"Param {self.name} ({setting} setting)")

    def valid(self) -> str:
        """The valid values, in words (for errors, ``redleaf-nb list`` and widgets)."""
        if self.choices is not None:
            return f"one of {', '.join(map(str, self.choices))}"
        if self.type is bool:
            return "a bool: true/false, yes/no or 1/0 (any case)"
        what = "an int" if self.type is int else "a float"
        return f"{what} in [{self.low}, {self.high}]"

    def _convert(self, value):
        """``value`` as this parameter's type, or None when it is not one."""
        if self.type is bool:
            if isinstance(value, (bool, numbers.Integral)) and value in (0, 1):
                return bool(value)
            word = value.strip().lower() if isinstance(value, str) else None
            return True if word in TRUE_WORDS else False if word in FALSE_WORDS else None
        if isinstance(value, bool):         # True is an int to Python, not to a parameter
            return None
        if self.type is int:
            if isinstance(value, numbers.Integral):
                return int(value)
            if isinstance(value, str):
                try:
                    return int(value.strip())
                except ValueError:
                    return None
            return None                     # 1.5 (or 2.0): a float is not an int
        if self.type is float:
            try:
                v = float(value) if isinstance(value, (numbers.Real, str)) else None
            except ValueError:
                return None
            return v if v is not None and math.isfinite(v) else None
        return value if isinstance(value, str) else None

    def check(self, value, where: str):
        """The value converted to this parameter's type, or a ParamError naming ``where``
        (the experiment), the parameter and its valid values."""
        v = self._convert(value)
        if v is None:
            raise ParamError(f"{where}: parameter {self.name}={value!r} is not {self.valid()}")
        if self.choices is not None and v not in self.choices:
            raise ParamError(f"{where}: parameter {self.name}={value!r} is not {self.valid()}")
        if (self.low is not None and v < self.low) or (self.high is not None and v > self.high):
            raise ParamError(f"{where}: parameter {self.name}={value!r} is out of range: must "
                             f"be {self.valid()}")
        return v


@dataclass
class Experiment:
    """One paper figure or table, reproduced on this machine."""

    name: str
    figure: str          # e.g. "Table 1"
    title: str
    paper_csv: str | None   # file name in data/paper/ (None: beyond the paper)
    params: tuple[Param, ...]
    run: Callable[[dict], pd.DataFrame]
    plot: Callable[[pd.DataFrame, pd.DataFrame], Any]
    bound: str = ""      # what bounds our numbers: host cost, device capacity
    notes: str = ""      # how to read the figure (shown in the report)
    # our numbers against the targets this project set for the figure (each named
    # in full by its key): ours -> {target: value}, recorded
    # in the run's metadata and shown in the report (never asserted)
    targets: Callable[[pd.DataFrame], dict] | None = None
    # what the report shows of the recorded table (default: all of it): ours -> table
    summary: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    # does it measure time? A sweep (sweep.py) then runs its points one per machine,
    # pinned to a core: two at once on two cores perturb each other's numbers through
    # the shared caches and memory
    timing_sensitive: bool = True
    # the columns that differ from run to run (times, rates); the others are outcomes,
    # the same for the same parameters and seed on any backend, in any order
    measured: tuple[str, ...] = ()

    def resolve(self, full: bool = False, **overrides) -> dict:
        """Parameters for a run: the quick (or full) setting, plus checked overrides."""
        by_name = {p.name: p for p in self.params}
        unknown = set(overrides) - set(by_name)
        if unknown:
            raise ParamError(f"{self.name}: unknown parameter(s) {', '.join(sorted(unknown))}; "
                             f"valid: {', '.join(by_name)}")
        out = {p.name: (p.full if full else p.quick) for p in self.params}
        for k, v in overrides.items():
            out[k] = by_name[k].check(v, self.name)
        return out


def is_checkout(path: Path) -> bool:
    """A redleaf-nb checkout: a pyproject.toml naming the project ``redleaf-nb``, beside
    an ``experiments/`` package."""
    try:
        name = tomllib.loads((path / "pyproject.toml").read_text())["project"]["name"]
    except (OSError, KeyError, TypeError, tomllib.TOMLDecodeError):
        return False
    return name == "redleaf-nb" and (path / "experiments" / "__init__.py").is_file()


def repo_root() -> Path:
    """The checkout whose experiments run: ``$REDLEAF_NB_ROOT``, else the current
    directory or the nearest parent that is a checkout, else this package's own."""
    env = os.environ.get("REDLEAF_NB_ROOT")
    if env:
        if not is_checkout(Path(env)):
            raise HarnessError(f"REDLEAF_NB_ROOT={env} is not a redleaf-nb checkout "
                                  "(pyproject.toml naming redleaf-nb, and experiments/)")
        return Path(env).resolve()
    cwd = Path.cwd().resolve()
    for path in (cwd, *cwd.parents, Path(__file__).resolve().parents[1]):
        if is_checkout(path):
            return path
    raise HarnessError(f"{cwd} is not inside a redleaf-nb checkout, and the installed "
                          "package has none: run from a checkout or set REDLEAF_NB_ROOT")


def experiments_package(root: Path | None = None):
    """The ``experiments`` package of the checkout ``root`` (imported from there)."""
    root = root or repo_root()
    if "experiments" not in sys.modules:   # the root first: its experiments/ and devices/
        if str(root) in sys.path:
            sys.path.remove(str(root))
        sys.path.insert(0, str(root))
    pkg = importlib.import_module("experiments")
    where = Path(pkg.__file__).resolve().parent
    if where != root / "experiments":
        raise HarnessError(f"the experiments package was imported from {where}, not from "
                              f"{root / 'experiments'}: one process runs one checkout")
    return pkg


def discover() -> dict[str, Experiment]:
    """Every experiment of the checkout, by name: each public module of ``experiments``."""
    pkg = experiments_package()
    found = {}
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"experiments.{info.name}")
        exp = getattr(mod, "EXPERIMENT", None)
        if not isinstance(exp, Experiment):
            raise HarnessError(f"experiments.{info.name} defines no EXPERIMENT (a helper "
                                  f"module's name starts with '_')")
        found[exp.name] = exp
    return found


def get(name: str) -> Experiment:
    exps = discover()
    if name not in exps:
        raise KeyError(f"no experiment '{name}' (known: {', '.join(exps)})")
    return exps[name]


def paper(exp: Experiment) -> pd.DataFrame:
    """The paper's reported numbers for an experiment (from data/paper/); empty for an
    experiment that goes beyond the paper."""
    if exp.paper_csv is None:
        return pd.DataFrame(columns=["figure", "system", "config", "metric", "value", "unit"])
    return pd.read_csv(repo_root() / "data" / "paper" / exp.paper_csv)


def results_dir(name: str) -> Path:
    return repo_root() / "data" / "results" / name


def run(name: str, full: bool = False, out: Path | None = None, **overrides) -> pd.DataFrame:
    """Run an experiment and record CSV, PNG and metadata; returns our table."""
    exp = get(name)
    params = exp.resolve(full, **overrides)
    started = dt.datetime.now(dt.timezone.utc)
    ours = exp.run(params)
    out = out or results_dir(name)
    out.mkdir(parents=True, exist_ok=True)
    ours.to_csv(out / f"{name}.csv", index=False)
    fig = exp.plot(ours, paper(exp))
    fig.savefig(out / f"{name}.png", dpi=110, bbox_inches="tight")
    meta = {"experiment": name, "figure": exp.figure, "title": exp.title,
            "setting": "full" if full else "quick", "params": params, "bound": exp.bound,
            "started_utc": started.isoformat(timespec="seconds"),
            "seconds": round((dt.datetime.now(dt.timezone.utc) - started).total_seconds(), 1),
            "machine": machine()}
    if exp.targets is not None:
        meta["targets"] = exp.targets(ours)
    (out / f"{name}.json").write_text(json.dumps(meta, indent=2, default=str))
    import matplotlib.pyplot as plt
    plt.close(fig)
    return ours


def judge_claims(out: Path | None = None) -> tuple[list, Path]:
    """Judge every paper claim from the recorded results; record the verdicts in
    ``out`` (default ``data/results/claims.json``) with the code version and each
    result's run."""
    from . import claims
    from .codeversion import code_version
    root = repo_root()
    results_root = root / "data" / "results"
    verdicts = claims.judge_all(claims.load_results(results_root),
                                claims.load_paper(root / "data" / "paper"))
    runs = {}
    for meta in sorted(results_root.glob("*/*.json")):
        if meta.stem == meta.parent.name:
            m = json.loads(meta.read_text())
            runs[meta.stem] = {k: m.get(k) for k in ("setting", "started_utc", "seconds")}
            runs[meta.stem]["git_commit"] = m.get("machine", {}).get("git_commit")
    path = claims.write(verdicts, out or results_root / "claims.json",
                        {"code_version": code_version(), "machine": machine(), "runs": runs})
    return verdicts, path


VERDICT_COLOURS = {"holds": "#d4edda", "does not hold": "#f8d7da", "inconclusive": "#fff3cd",
                   "not run": "#e2e3e5"}


def _verdict_table(verdicts) -> str:
    """The report's opening table: each claim, its verdict, inputs, threshold, links."""
    rows = []
    for v in verdicts:
        inputs = "<br>".join(
            f"{html.escape(name)}: {html.escape(i['verdict'])}"
            + (f" ({i['value']:.3g} [{i['lo']:.3g}, {i['hi']:.3g}])" if "value" in i else "")
            for name, i in v.inputs.items())
        anchor = v.experiments[0]
        rows.append(
            f"<tr style='background:{VERDICT_COLOURS[v.verdict]}'><td>{v.number}</td>"
            f"<td><b>{html.escape(v.verdict)}</b></td><td>{html.escape(v.title)}<br><small>"
            f"threshold: {html.escape(v.threshold)}<br>paper: {html.escape(v.paper)}<br>"
            f"{html.escape(v.reason)}</small></td><td><a href='#{anchor}'>"
            f"{html.escape(v.figure)}</a><br><small><a href='../../{html.escape(v.notebook)}'>"
            f"{html.escape(v.notebook)}</a></small></td>"
            f"<td><details><summary>{len(v.inputs)} checks</summary><small>{inputs}"
            "</small></details></td></tr>")
    return ("<h2>The paper's claims, judged here</h2><p>Each claim is judged from this run's "
            "results with the spread each experiment recorded: <b>holds</b> or <b>does not "
            "hold</b> only when the whole spread is on one side of the threshold, otherwise "
            "<b>inconclusive</b>. Thresholds were fixed from the paper's numbers beforehand "
            "(redleaf_nb/claims.py); the verdicts, with every input, are in claims.json.</p>"
            "<table><tr><th>#</th><th>verdict</th><th>claim</th><th>figure, notebook</th>"
            "<th>inputs</th></tr>" + "".join(rows) + "</table>" + _stability_summary())


def _stability_summary() -> str:
    """The last ``redleaf-nb stability`` runs, if any: how often each verdict came back."""
    out = []
    for label in ("plain", "with-hog"):
        path = repo_root() / "data" / "results" / "stability" / f"{label}.json"
        if not path.exists():
            continue
        doc = json.loads(path.read_text())
        cells = "".join(
            f"<tr><td>{r['claim']}</td>" + "".join(f"<td>{r[v]}</td>" for v in
                                                   ("holds", "does not hold", "inconclusive",
                                                    "not run")) + "</tr>"
            for r in doc["summary"])
        out.append(f"<p>Stability ({html.escape(label)}: {doc['runs']} runs of "
                   f"{html.escape(', '.join(doc['experiments']))}; {html.escape(doc['note'])}):"
                   "</p><table><tr><th>claim</th><th>holds</th><th>does not hold</th>"
                   f"<th>inconclusive</th><th>not run</th></tr>{cells}</table>")
    return "".join(out)


def _paper_order(exp: Experiment) -> tuple:
    """Table 1, then the figures by number, then what is beyond the paper."""
    kind, _, number = exp.figure.partition(" ")
    rank = {"Table": 0, "Figure": 1}.get(kind, 2)
    return (rank, int(number) if number.isdigit() else 0, exp.name)


def notebook_of(exp: Experiment) -> str | None:
    """The notebook that explores ``exp`` (the first that runs it, ``ex.get("name")``),
    relative to the checkout; None if no notebook does."""
    call = f'ex.get("{exp.name}")'
    for path in sorted((repo_root() / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        if any(call in "".join(c["source"]) for c in cells if c["cell_type"] == "code"):
            return f"notebooks/{path.name}"
    return None


def _embedded_figure(png: Path, alt: str) -> str:
    """The figure inside the page (base64), so that the page is one file and shows the
    figure of the same run as its table, whatever is written later."""
    if not png.exists():
        return f"<p><i>no figure recorded ({html.escape(png.name)})</i></p>"
    data = base64.b64encode(png.read_bytes()).decode()
    return f"<img alt='{html.escape(alt, quote=True)}' src='data:image/png;base64,{data}'>"


def report(out: Path | None = None) -> Path:
    """One HTML page: the claims' verdicts, then every recorded figure, ours beside
    the paper's. Writes ``claims.json`` beside it."""
    root = repo_root() / "data" / "results"
    out = out or root / "report.html"
    verdicts, _ = judge_claims(out.parent / "claims.json")
    parts = ["<html><head><meta charset='utf-8'><title>redleaf-nb results</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
             "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;"
             "padding:2px 6px}img{max-width:100%}</style></head><body>",
             "<h1>redleaf-nb: the RedLeaf evaluation, reproduced here</h1>",
             "<p>Each figure shows our measurements beside the paper's reported numbers "
             "(data/paper/). Absolute numbers differ across machines: compare shapes and "
             "ratios.</p>", _verdict_table(verdicts)]
    for exp in sorted(discover().values(), key=_paper_order):
        d = results_dir(exp.name)
        meta_path = d / f"{exp.name}.json"
        parts.append(f"<h2 id='{exp.name}'>{html.escape(exp.figure)}: "
                     f"{html.escape(exp.title)}</h2>")
        notebook = notebook_of(exp)
        if notebook:
            parts.append(f"<p>Explore it: <a href='../../{notebook}'>{notebook}</a> "
                         "(<code>make lab</code>)</p>")
        if not meta_path.exists():
            parts.append(f"<p><i>not run yet: <code>redleaf-nb run {exp.name}</code></i></p>")
            continue
        meta = json.loads(meta_path.read_text())
        parts.append(f"<p>{html.escape(exp.bound)}</p>")
        if exp.notes:
            parts.append(f"<p><small>{html.escape(exp.notes)}</small></p>")
        parts.append(_embedded_figure(d / f"{exp.name}.png",
                                      f"{exp.figure}: {exp.title} (ours beside the paper's)"))
        if meta.get("targets"):
            parts.append("<p>Against the targets:</p><ul>" + "".join(
                f"<li>{html.escape(k)}: <b>{html.escape(str(v))}</b></li>"
                for k, v in meta["targets"].items()) + "</ul>")
        table = pd.read_csv(d / f"{exp.name}.csv")
        if exp.summary is not None:
            table = exp.summary(table).reset_index()
        parts.append(table.to_html(index=False, float_format=lambda x: f"{x:,.1f}"))
        m = meta["machine"]
        parts.append(f"<p><small>{meta['setting']} setting, params {html.escape(str(meta['params']))}"
                     f"; {html.escape(m['cpu_model'])}, {m['cores']} cores, TSC {m['tsc_ghz']} GHz"
                     f"; numba {m['numba']}; commit {m['git_commit']}; {meta['started_utc']}"
                     f" ({meta['seconds']} s)</small></p>")
    parts.append("</body></html>")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts))
    return out
