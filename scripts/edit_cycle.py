"""Time the edit-test cycle: `pytest tests/test_semantics.py` after typical edits.

    python scripts/edit_cycle.py [REV]     (default HEAD; e.g. an older commit to compare)

Exports REV of this repository to a temporary folder, with a fresh numba cache
there, and runs the core tests cold, warm, then after each edit below (each edit
undone before the next, with a warm run in between). Prints seconds and how many
functions numba compiled (cache saves). Machine noise applies: compare the ratios.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = ["tests/test_semantics.py"]
EDITS = [   # (what, file, function of the text)
    ("comment, non-jitted file", "redleaf_nb/experiments.py", lambda s: s + "# a comment\n"),
    ("comment, test file", "tests/test_semantics.py", lambda s: s + "# a comment\n"),
    ("comment, jitted file", "experiments/comm_cost.py", lambda s: s + "# a comment\n"),
    ("docstring, kernel file", "redleaf_nb/kernel/heap.py",
     lambda s: s.replace('"""The exchange heap:', '"""The exchange heap (a new line)\n\n', 1)),
    ("code, jitted leaf file", "experiments/comm_cost.py",
     lambda s: s.replace("bad = 0", "bad = 0 * 1", 1)),
    ("code, kernel file", "redleaf_nb/kernel/heap.py",
     lambda s: s.replace("    return c\n", "    return c + 0\n", 1)),
]


def run(root: Path, env: dict) -> tuple[float, int]:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "pytest", *TESTS, "-q", "-x", "-s",
                        "-p", "no:cacheprovider"], cwd=root, env=env, capture_output=True,
                       text=True)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(r.stdout[-3000:] + r.stderr[-3000:])
    return seconds, len(re.findall(r"\[cache\] data saved", r.stdout))


def main(rev: str = "HEAD") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "checkout"
        root.mkdir()
        archive = subprocess.run(["git", "archive", rev], cwd=REPO, capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
        env.update(PYTHONPATH=str(root), REDLEAF_NB_CACHE=str(Path(tmp) / "cache"),
                   NUMBA_DEBUG_CACHE="1")
        print(f"{rev}: {' '.join(TESTS)}")
        for what in ("cold", "warm", "warm"):
            print(f"  {what:28s} {'%.1f s, %d compiled' % run(root, env)}")
        for what, name, edit in EDITS:
            path = root / name
            original = path.read_text()
            edited = edit(original)
            assert edited != original, f"the edit '{what}' no longer applies to {name}"
            path.write_text(edited)
            print(f"  {what:28s} {'%.1f s, %d compiled' % run(root, env)}")
            path.write_text(original)
            print(f"  {'  undone':28s} {'%.1f s, %d compiled' % run(root, env)}")


if __name__ == "__main__":
    main(*sys.argv[1:])
