"""Measure an experiment before and after a change, interleaved, on this machine.

    python scripts/before_after.py OLD EXPERIMENT [--new REV] [--rounds 11]
                                   [--param KEY=VALUE ...]

Checks the commits OLD and NEW (default HEAD) out into scratch ``git worktree`` s
and runs ``redleaf-nb run EXPERIMENT`` in each in alternating rounds (old, new,
old, new, ...), so that a slow minute of a shared machine hits both alike, after
one unrecorded warm-up round each (compiling, paging in). Each side imports its
own checkout (``PYTHONPATH`` and ``REDLEAF_NB_ROOT``); both share this
environment's packages and numba's cache (keyed by code, so they never mix).

Prints, for every numeric column of the result (rows matched by the text
columns, or ``--keys``), each side's minimum, median and maximum over the
rounds, and the new/old ratio of the best round: the minimum for costs (the
default, ``--best min``: a VM's preemptions only ever add time) and the maximum
for rates (``--best max``: they only ever take rate away). Every round is kept in
``data/results/before_after/EXPERIMENT.csv``.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]


def run_once(checkout: Path, experiment: str, params: list[str]) -> pd.DataFrame:
    env = {**os.environ, "PYTHONPATH": str(checkout), "REDLEAF_NB_ROOT": str(checkout)}
    cmd = [sys.executable, "-m", "redleaf_nb.cli", "run", experiment,
           *[a for p in params for a in ("--param", p)]]
    subprocess.run(cmd, cwd=checkout, env=env, check=True, capture_output=True, text=True)
    return pd.read_csv(checkout / "data" / "results" / experiment / f"{experiment}.csv")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old")
    ap.add_argument("experiment")
    ap.add_argument("--new", default="HEAD")
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--param", action="append", default=[])
    ap.add_argument("--keys", nargs="*", help="columns that name a row (default: the text ones)")
    ap.add_argument("--values", nargs="*", help="columns to compare (default: every number)")
    ap.add_argument("--best", choices=("min", "max"), default="min",
                    help="the robust estimator: min for costs, max for rates")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="redleaf-before-after-") as tmp:
        sides = {"old": Path(tmp) / "old", "new": Path(tmp) / "new"}
        for side, rev in (("old", args.old), ("new", args.new)):
            subprocess.run(["git", "worktree", "add", "--detach", str(sides[side]), rev],
                           cwd=ROOT, check=True, capture_output=True)
        try:
            for checkout in sides.values():     # warm-up: compile, page in
                run_once(checkout, args.experiment, args.param)
            frames = []
            for r in tqdm(range(args.rounds), desc=f"{args.experiment} old/new", unit="round"):
                for side, checkout in sides.items():
                    df = run_once(checkout, args.experiment, args.param)
                    frames.append(df.assign(side=side, round=r))
        finally:
            for checkout in sides.values():
                subprocess.run(["git", "worktree", "remove", "--force", str(checkout)],
                               cwd=ROOT, capture_output=True)
    both = pd.concat(frames, ignore_index=True)
    out = ROOT / "data" / "results" / "before_after" / f"{args.experiment}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    both.to_csv(out, index=False)
    print(f"every round: {out}")
    keys = args.keys or [c for c in both.columns
                         if not pd.api.types.is_numeric_dtype(both[c]) and c not in ("side", "round")]
    values = args.values or [c for c in both.columns if c not in keys + ["side", "round"]
                             and pd.api.types.is_numeric_dtype(both[c]) and both[c].nunique() > 1]
    stats = both.groupby(keys + ["side"])[values].agg(["min", "median", "max"])
    pd.set_option("display.width", 200, "display.max_columns", 50, "display.max_rows", 200)
    print(stats.round(2))
    best = both.groupby(keys + ["side"])[values].agg(args.best).unstack("side")
    ratio = pd.DataFrame({v: best[(v, "new")] / best[(v, "old")] for v in values})
    print(f"\nnew / old, ratio of the best rounds ({args.best}):")
    print(ratio.round(3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
