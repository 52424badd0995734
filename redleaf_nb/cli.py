"""The ``redleaf-nb`` command: list, run and report the paper's experiments.

    redleaf-nb list                       experiments and the paper figure each reproduces
    redleaf-nb run NAME [--full] [--param k=v ...]
    redleaf-nb claims [--out FILE]        the paper's claims judged from recorded results
    redleaf-nb stability [--runs 5] [--hog]  do the verdicts stand, run after run?
    redleaf-nb report                     data/results/report.html
    redleaf-nb reproduce [--full]         run every experiment, then the report
    redleaf-nb lab                        JupyterLab on the notebooks
    redleaf-nb share [NAMES] [--full] [--param K=V]  executed notebooks (.ipynb, HTML)
    redleaf-nb sweep NAME --grid K=V1,V2 ... [--scheduler ADDRESS|local] [--workers N]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from . import experiments as ex
from .sweep import SweepError


def _overrides(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ex.ParamError(f"--param expects key=value, got {pair!r}")
        out[key] = value
    return out


def cmd_list(args) -> int:
    for exp in ex.discover().values():
        print(f"{exp.name:12s} {exp.figure:10s} {exp.title}")
        for p in exp.params:
            print(f"{'':14s}{p.name} = {p.quick!r} (full {p.full!r}; {p.valid()}): {p.help}")
    return 0


def cmd_run(args) -> int:
    table = ex.run(args.name, full=args.full, **_overrides(args.param))
    print(table.to_string(index=False))
    print(f"wrote {ex.results_dir(args.name)}")
    return 0


def cmd_claims(args) -> int:
    import pandas as pd

    from .claims import table
    verdicts, path = ex.judge_claims(Path(args.out) if args.out else None)
    with pd.option_context("display.max_colwidth", 90, "display.width", 200):
        print(table(verdicts).to_string(index=False))
    print(f"wrote {path}")
    return 0


def cmd_stability(args) -> int:
    import pandas as pd

    from .stability import stability
    table = stability(args.runs, hog=args.hog,
                      experiments=args.experiments.split(",") if args.experiments else None)
    with pd.option_context("display.max_colwidth", 120, "display.width", 250):
        print(table.drop(columns="ranges").to_string(index=False))
        for row in table.itertuples():
            print(f"claim {row.claim}: {row.ranges}")
    return 0


def cmd_report(args) -> int:
    print(f"wrote {ex.report()}")
    return 0


def cmd_reproduce(args) -> int:
    for name in ex.discover():
        print(f"== {name} ({'full' if args.full else 'quick'})", flush=True)
        ex.run(name, full=args.full)
    return cmd_report(args)


TOUR = "00_tour.ipynb"


def lab_command(port: int | None = None, token: str | None = None,
                open_browser: bool = True, settings_dir: Path | None = None) -> list[str]:
    """JupyterLab on the notebooks, opening on the tour: as root too (containers), and
    without its first-run prompts (news, update checks), which fetch from the network.
    ``settings_dir``: where its ``overrides.json`` is (default: ``lab-settings/``)."""
    argv = [sys.executable, "-m", "jupyter", "lab", f"--notebook-dir={ex.repo_root() / 'notebooks'}",
            f"--LabApp.default_url=/lab/tree/{TOUR}", "--LabApp.news_url=None",
            # lab-settings/overrides.json: never ask to fetch news or check for updates
            f"--LabApp.app_settings_dir={settings_dir or ex.repo_root() / 'lab-settings'}",
            "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements."
            "NeverCheckForUpdate"]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    if port is not None:
        argv += [f"--port={port}", "--ServerApp.port_retries=0", "--ip=127.0.0.1"]
    if token is not None:
        argv.append(f"--IdentityProvider.token={token}")
    if not open_browser:
        argv.append("--no-browser")
    return argv


def cmd_lab(args) -> int:
    return subprocess.call(lab_command())


# --param full=False must not be the (true) string "False": words as papermill's -p reads them
PYTHON_WORDS = {"True": True, "False": False, "None": None}


def cmd_sweep(args) -> int:
    from . import sweep as sw
    start = time.perf_counter()
    table = sw.sweep(args.name, sw.parse_grid(args.grid), backend=args.scheduler,
                     workers=args.workers, replicates=args.replicates, root_seed=args.seed,
                     full=args.full,
                     cache=not args.no_cache, memory_limit=args.memory_limit)
    seconds = time.perf_counter() - start
    failures = table.attrs["failures"]
    for f in failures:
        print(f"failed: {', '.join(f'{k}={v}' for k, v in f.items() if k != 'traceback')}",
              file=sys.stderr)
    where = sw.save(table, args.name) if len(table) else None
    n = table.attrs["computed"] + table.attrs["cached"] + len(failures)
    print(f"sweep {args.name} on {table.attrs['backend']}: {n} points, "
          f"{table.attrs['computed']} run, "
          f"{table.attrs['cached']} from the cache, {len(failures)} failed, {seconds:.1f} s"
          + (f"; {len(table)} rows in {where}" if where else ""))
    return 1 if failures else 0


def cmd_share(args) -> int:
    from .share import share
    params = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep:
            raise ex.ParamError(f"share: --param {item!r} is not KEY=VALUE")
        try:
            params[key] = PYTHON_WORDS[value] if value in PYTHON_WORDS else json.loads(value)
        except ValueError:
            params[key] = value      # a bare word: a string
    if args.full:
        params["full"] = True
    for path in share(args.names or None, params):
        print(f"wrote {path} and {path.with_suffix('.html').name}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="redleaf-nb", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the experiments").set_defaults(func=cmd_list)
    p = sub.add_parser("run", help="run one experiment and record its results")
    p.add_argument("name")
    p.add_argument("--full", action="store_true", help="the full setting (default: quick)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("claims", help="judge the paper's claims from the recorded results")
    p.add_argument("--out", help="where to write the verdicts (default: "
                   "data/results/claims.json)")
    p.set_defaults(func=cmd_claims)
    p = sub.add_parser("stability", help="run the claim-bearing experiments N times and "
                       "count each claim's verdicts")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--hog", action="store_true",
                   help="with a CPU hog pinned to CPU 1 (experiments on CPU 0)")
    p.add_argument("--experiments", help="comma-separated (default: every one a claim needs)")
    p.set_defaults(func=cmd_stability)
    sub.add_parser("report", help="write the HTML report").set_defaults(func=cmd_report)
    p = sub.add_parser("reproduce", help="run every experiment, then the report")
    p.add_argument("--full", action="store_true")
    p.set_defaults(func=cmd_reproduce)
    sub.add_parser("lab", help="open JupyterLab on the notebooks").set_defaults(func=cmd_lab)
    p = sub.add_parser("share", help="execute notebooks and write them with their outputs "
                       "(.ipynb and HTML) into data/results/notebooks/")
    p.add_argument("names", nargs="*", help="notebook names (default: every one)")
    p.add_argument("--full", action="store_true", help="the figure notebooks at their "
                   "experiment's full setting (--param full=true: slow)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a value for the notebooks' parameters cell (JSON, True/False/None, "
                   "or a word)")
    p.set_defaults(func=cmd_share)
    p = sub.add_parser("sweep", help="run an experiment over a parameter grid, on Dask")
    p.add_argument("name")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="values of a parameter (or LOW..HIGH); KEY1+KEY2=... sets both")
    p.add_argument("--replicates", type=int, default=1, help="runs of each grid point, "
                   "each with its own seed")
    p.add_argument("--seed", type=int, default=0, help="the root seed of every point's seed")
    p.add_argument("--scheduler", help="'local' (a LocalCluster here), 'serial', or a Dask "
                   "scheduler's address (default: serial for under 3 points, else local)")
    p.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    p.add_argument("--memory-limit", default="auto", help="per LocalCluster worker "
                   "(e.g. 8GiB; auto: the machine's memory shared among the workers)")
    p.add_argument("--full", action="store_true", help="grid points start from the full "
                   "setting (default: quick)")
    p.add_argument("--no-cache", action="store_true", help="run every point again")
    p.set_defaults(func=cmd_sweep)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ex.ParamError, ex.HarnessError, KeyError, SweepError) as e:
        print(f"redleaf-nb: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
