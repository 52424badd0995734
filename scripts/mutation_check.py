"""Does the test suite catch deliberate breakages of the kernel core?

Each mutant in ``scripts/mutants.toml`` replaces one exact snippet of a trusted
file (the heap, the call protocol) with a broken version: a check deleted, a
comparison flipped, a cleanup step dropped. For every mutant this script
copies the checkout into a scratch folder, applies the mutant there (the
working tree is never touched), runs the mutant's tests with ``-x`` and calls
the mutant *killed* when they fail (or time out), *survived* when they pass.
The unmutated copy must pass the same tests first, or nothing is learnt.

Mutants marked ``named = true`` are the must-kill ones (breakages the suite
once missed): all of them must be killed. Of all mutants at least
``--min-score`` (default 90%) must be.
Exit status 0 when both hold, 1 otherwise, 2 when the list no longer applies
(a snippet not found exactly once: the code moved, update the list).

    python scripts/mutation_check.py [--only ID ...] [--min-score 0.9]

The scratch copies share one numba cache, so what a mutant leaves unchanged
is compiled once.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "scripts" / "mutants.toml"
TIMEOUT_S = 240


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str
    find: str
    replace: str
    tests: tuple[str, ...]
    why: str
    named: bool = False

    def apply(self, text: str) -> str:
        """The file's text with this mutant applied; ValueError if it no longer applies."""
        n = text.count(self.find)
        if n != 1:
            raise ValueError(f"mutant {self.id}: its snippet occurs {n} times in {self.file} "
                             "(must be exactly once): update scripts/mutants.toml")
        return text.replace(self.find, self.replace)


def load_mutants(path: Path = MUTANTS) -> list[Mutant]:
    """Every mutant of the list, checked for the fields it needs."""
    out = []
    for entry in tomllib.loads(path.read_text())["mutant"]:
        m = Mutant(id=entry["id"], file=entry["file"], find=entry["find"],
                   replace=entry["replace"], tests=tuple(entry["tests"]), why=entry["why"],
                   named=entry.get("named", False))
        if m.find == m.replace:
            raise ValueError(f"mutant {m.id}: replace equals find (no mutation)")
        out.append(m)
    ids = [m.id for m in out]
    if len(set(ids)) != len(ids):
        raise ValueError("scripts/mutants.toml: mutant ids must be unique")
    return out


def scratch_copy(dest: Path) -> None:
    """The committed and modified files of the checkout (not .venv, results, caches)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def run_tests(copy: Path, tests: tuple[str, ...], cache: Path) -> tuple[str, float]:
    """(outcome, seconds) of ``pytest -x`` on ``tests`` inside the scratch copy; the
    outcome is "passed", "failed" or "timeout"."""
    env = dict(os.environ, REDLEAF_NB_ROOT=str(copy), REDLEAF_NB_CACHE=str(cache),
               PYTHONPATH=str(copy))
    env.pop("NUMBA_CACHE_DIR", None)
    t0 = time.perf_counter()
    try:
        r = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                            "--hypothesis-seed=0", *tests], cwd=copy, env=env,
                           capture_output=True, text=True, timeout=TIMEOUT_S)
        outcome = "passed" if r.returncode == 0 else "failed"
    except subprocess.TimeoutExpired:
        outcome = "timeout"       # a mutant that hangs the suite is caught too
    return outcome, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", help="run only these mutant ids")
    ap.add_argument("--min-score", type=float, default=0.9,
                    help="the fraction of mutants that must be killed (default 0.9)")
    args = ap.parse_args(argv)
    mutants = load_mutants()
    if args.only:
        unknown = set(args.only) - {m.id for m in mutants}
        if unknown:
            ap.error(f"unknown mutant id(s) {', '.join(sorted(unknown))}")
        mutants = [m for m in mutants if m.id in args.only]
    originals = {m.file: (ROOT / m.file).read_text() for m in mutants}
    try:
        for m in mutants:
            m.apply(originals[m.file])
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2

    from tqdm import tqdm
    with tempfile.TemporaryDirectory(prefix="redleaf-mutants-") as tmp:
        copy, cache = Path(tmp) / "checkout", Path(tmp) / "cache"
        scratch_copy(copy)
        baseline = sorted({t for m in mutants for t in m.tests})
        outcome, secs = run_tests(copy, tuple(baseline), cache)
        if outcome != "passed":
            print(f"the unmutated checkout fails {' '.join(baseline)}: fix that first",
                  file=sys.stderr)
            return 1
        print(f"baseline: {len(baseline)} test selections pass ({secs:.0f} s)")
        results = []
        for m in tqdm(mutants, desc="mutants", unit="mutant"):
            target = copy / m.file
            target.write_text(m.apply(originals[m.file]))
            try:
                outcome, secs = run_tests(copy, m.tests, cache)
            finally:
                target.write_text(originals[m.file])
            results.append((m, outcome, secs))

    width = max(len(m.id) for m in mutants)
    label = {"failed": "killed  ", "timeout": "timed out", "passed": "SURVIVED"}
    for m, outcome, secs in results:
        print(f"{label[outcome]:<9} {m.id:<{width}} {secs:5.0f} s  "
              f"{'[named] ' if m.named else ''}{m.why}")
    killed = sum(o != "passed" for _, o, _ in results)
    named = [(m, o != "passed") for m, o, _ in results if m.named]
    score = killed / len(results)
    print(f"\nmutation score: {killed}/{len(results)} killed ({score:.0%}); named mutants: "
          f"{sum(k for _, k in named)}/{len(named)} killed")
    good = score >= args.min_score and all(k for _, k in named)
    if not good:
        print(f"short of the target: every named mutant killed and >= {args.min_score:.0%} "
              "overall", file=sys.stderr)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
