"""Do the verdicts stand? Run the claim-bearing experiments N times and count.

``redleaf-nb stability --runs 5`` runs every experiment a claim needs (quick
setting) ``runs`` times in a row, judges the claims after each run, and reports
per claim how many runs gave each verdict, with the range of every quantity the
claim judged. ``--hog`` does the same with a CPU hog (a busy loop, started and
stopped here, time-limited) pinned to one core while the experiments are pinned
to the other: what a laptop with a busy browser gives. The two-process round
trips of Table 1 use both cores, so under the hog they share a core with it:
such rows are marked in the report, and claim 1's verdict under the hog says so.

Each run's results are kept under ``data/results/stability/<label>/run<i>/``, and
the summary in ``data/results/stability/<label>.json``.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd

from . import claims as C
from . import experiments as ex

HOG_CODE = "import sys, time\nend = time.time() + float(sys.argv[1])\nwhile time.time() < end:\n    pass\n"


def claim_experiments() -> list[str]:
    """Every experiment some claim judges, in the order the claims name them."""
    return list(dict.fromkeys(e for c in C.CLAIMS for e in c.experiments))


@contextlib.contextmanager
def cpu_hog(seconds: float, hog_cpu: int, work_cpu: int):
    """A busy loop pinned to ``hog_cpu`` for at most ``seconds``; this process pinned to
    ``work_cpu`` meanwhile. Both are undone on the way out."""
    cpus = os.sched_getaffinity(0)
    if {hog_cpu, work_cpu} - cpus or hog_cpu == work_cpu:
        raise ex.ParamError(f"stability --hog: needs two distinct CPUs of {sorted(cpus)}, got "
                         f"hog on {hog_cpu} and work on {work_cpu}")
    hog = subprocess.Popen([sys.executable, "-c", HOG_CODE, str(seconds)],
                           preexec_fn=lambda: os.sched_setaffinity(0, {hog_cpu}))
    os.sched_setaffinity(0, {work_cpu})
    try:
        yield hog
    finally:
        os.sched_setaffinity(0, cpus)
        hog.terminate()
        hog.wait(timeout=10)


def run_once(out: Path, experiments: list[str]) -> list[C.Verdict]:
    """Every experiment once (quick), recorded under ``out`` (emptied first: a claim is
    judged on this run's results only); the claims judged on it."""
    shutil.rmtree(out, ignore_errors=True)
    for name in experiments:
        ex.run(name, out=out / name)
    return C.judge_all(C.load_results(out), C.load_paper(ex.repo_root() / "data" / "paper"))


def summarize_runs(runs: list[list[C.Verdict]]) -> pd.DataFrame:
    """Per claim: how many runs gave each verdict, the verdict they agree on (if they
    do), and the range over runs of every quantity the claim judged."""
    rows = []
    for number in sorted({v.number for run in runs for v in run}):
        mine = [v for run in runs for v in run if v.number == number]
        counts = Counter(v.verdict for v in mine)
        values: dict[str, list[float]] = {}
        for v in mine:
            for name, i in v.inputs.items():
                if "value" in i:
                    values.setdefault(name, []).append(i["value"])
        ranges = "; ".join(f"{name}: {min(vs):.3g}..{max(vs):.3g}" for name, vs in values.items())
        rows.append({"claim": number, "title": mine[0].title,
                     **{verdict: counts.get(verdict, 0) for verdict in C.VERDICTS},
                     "stable": counts.most_common(1)[0][1] == len(mine),
                     "verdict": counts.most_common(1)[0][0], "ranges": ranges})
    return pd.DataFrame(rows)


def stability(runs: int = 5, hog: bool = False, experiments: list[str] | None = None,
              hog_cpu: int = 1, work_cpu: int = 0, out: Path | None = None) -> pd.DataFrame:
    """Run the claim-bearing experiments ``runs`` times (with the hog if asked); the
    summary table (also written to ``<out>.json``)."""
    from tqdm.auto import tqdm
    if runs < 1:
        raise ex.ParamError(f"stability: runs must be at least 1, got {runs}")
    experiments = experiments or claim_experiments()
    unknown = set(experiments) - set(ex.discover())
    if unknown:
        raise KeyError(f"stability: no experiment {', '.join(sorted(unknown))} (known: "
                       f"{', '.join(ex.discover())})")
    label = "with-hog" if hog else "plain"
    out = out or ex.repo_root() / "data" / "results" / "stability" / label
    started = time.time()
    verdicts = []
    # the hog is time-limited to well past what the runs need, and stopped when they end
    guard = cpu_hog(3600.0, hog_cpu, work_cpu) if hog else contextlib.nullcontext()
    with guard:
        for i in tqdm(range(runs), desc=f"stability ({label})", unit="run"):
            verdicts.append(run_once(out / f"run{i}", experiments))
    table = summarize_runs(verdicts)
    note = (f"hog pinned to CPU {hog_cpu}, experiments to CPU {work_cpu}; the two-process "
            f"round trips of Table 1 (claim 1) ran beside the hog" if hog else "no hog")
    doc = {"runs": runs, "hog": hog, "note": note, "experiments": experiments,
           "seconds": round(time.time() - started, 1),
           "summary": table.to_dict("records"),
           "verdicts": [[{"claim": v.number, "verdict": v.verdict, "reason": v.reason}
                         for v in run] for run in verdicts]}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(doc, indent=2, default=str))
    return table
