"""The experiments harness: parameters, runs, recorded results and the report.

Each file in the repository's ``experiments/`` folder reproduces one paper
figure or table and defines ``EXPERIMENT``, an :class:`Experiment`: its
parameters (each with a ``quick`` and a ``full`` setting and a valid range),
``run(params) -> DataFrame`` (a tidy table of our measurements) and
``plot(ours, paper) -> Figure`` (ours beside the paper's numbers, which come
only from ``data/paper/``). :func:`run` records CSV, PNG and a JSON of
metadata (machine, parameters, date, commit) under ``data/results/<name>/``;
:func:`report` gathers every recorded figure into one HTML page.
"""
from __future__ import annotations

import datetime as dt
import html
import importlib.util
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from .kernel.clock import machine


class ParamError(ValueError):
    """A parameter value outside its valid range."""


@dataclass(frozen=True)
class Param:
    """One experiment parameter: its quick and full settings and valid range."""

    name: str
    quick: Any
    full: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None

    @property
    def kind(self) -> type:
        return type(self.quick)

    def valid(self) -> str:
        if self.choices is not None:
            return f"one of {', '.join(map(str, self.choices))}"
        return f"a {self.kind.__name__} in [{self.low}, {self.high}]"

    def check(self, value, where: str):
        """The value converted to this parameter's type, or a ParamError."""
        try:
            v = self.kind(value) if not isinstance(value, self.kind) else value
        except (TypeError, ValueError):
            raise ParamError(f"{where}: {self.name}={value!r} is not {self.valid()}") from None
        if self.choices is not None and v not in self.choices:
            raise ParamError(f"{where}: {self.name}={value!r} is not {self.valid()}")
        if (self.low is not None and v < self.low) or (self.high is not None and v > self.high):
            raise ParamError(f"{where}: {self.name}={value!r} is out of range: must be "
                             f"{self.valid()}")
        return v


@dataclass
class Experiment:
    """One paper figure or table, reproduced on this machine."""

    name: str
    figure: str          # e.g. "Table 1"
    title: str
    paper_csv: str       # file name in data/paper/
    params: tuple[Param, ...]
    run: Callable[[dict], pd.DataFrame]
    plot: Callable[[pd.DataFrame, pd.DataFrame], Any]
    bound: str = ""      # what bounds our numbers: host cost, device capacity
    notes: str = ""      # how to read the figure (shown in the report)
    extra: dict = field(default_factory=dict)
    # our numbers against the targets: ours -> {target: value}, recorded
    # in the run's metadata and shown in the report (never asserted)
    targets: Callable[[pd.DataFrame], dict] | None = None

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


def repo_root() -> Path:
    """The repository the toolkit runs from (``$REDLEAF_NB_ROOT`` overrides)."""
    env = os.environ.get("REDLEAF_NB_ROOT")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parents[1]
    return here if (here / "experiments").is_dir() else Path.cwd()


def discover() -> dict[str, Experiment]:
    """Every experiment in ``experiments/``, by name."""
    root = str(repo_root())
    if root not in sys.path:   # experiments import the device models from devices/
        sys.path.insert(0, root)
    found = {}
    for path in sorted((repo_root() / "experiments").glob("[!_]*.py")):
        name = f"redleaf_experiments_{path.stem}"
        mod = sys.modules.get(name)
        if mod is None:
            spec = importlib.util.spec_from_file_location(name, path)
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            spec.loader.exec_module(mod)
        exp = mod.EXPERIMENT
        found[exp.name] = exp
    return found


def get(name: str) -> Experiment:
    exps = discover()
    if name not in exps:
        raise KeyError(f"no experiment '{name}' (known: {', '.join(exps)})")
    return exps[name]


def paper(exp: Experiment) -> pd.DataFrame:
    """The paper's reported numbers for an experiment (from data/paper/)."""
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


def report(out: Path | None = None) -> Path:
    """One HTML page with every recorded figure, ours beside the paper's."""
    root = repo_root() / "data" / "results"
    out = out or root / "report.html"
    parts = ["<html><head><meta charset='utf-8'><title>redleaf-nb results</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
             "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;"
             "padding:2px 6px}img{max-width:100%}</style></head><body>",
             "<h1>redleaf-nb: the RedLeaf evaluation, reproduced here</h1>",
             "<p>Each figure shows our measurements beside the paper's reported numbers "
             "(data/paper/). Absolute numbers differ across machines: compare shapes and "
             "ratios.</p>"]
    for exp in discover().values():
        d = results_dir(exp.name)
        meta_path = d / f"{exp.name}.json"
        parts.append(f"<h2>{html.escape(exp.figure)}: {html.escape(exp.title)}</h2>")
        if not meta_path.exists():
            parts.append(f"<p><i>not run yet: <code>redleaf-nb run {exp.name}</code></i></p>")
            continue
        meta = json.loads(meta_path.read_text())
        parts.append(f"<p>{html.escape(exp.bound)}</p>")
        if exp.notes:
            parts.append(f"<p><small>{html.escape(exp.notes)}</small></p>")
        parts.append(f"<img src='{exp.name}/{exp.name}.png'>")
        if meta.get("targets"):
            parts.append("<p>Against the targets:</p><ul>" + "".join(
                f"<li>{html.escape(k)}: <b>{html.escape(str(v))}</b></li>"
                for k, v in meta["targets"].items()) + "</ul>")
        table = pd.read_csv(d / f"{exp.name}.csv")
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
