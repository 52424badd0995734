"""ExchangeHeap.check_invariants is a real check: ``python -O`` does not remove it."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from redleaf_nb import HeapCorrupted, Kernel, u64
from redleaf_nb.kernel.heap import LIVE_OBJECTS

ROOT = Path(__file__).resolve().parents[1]

CORRUPT = """
from redleaf_nb import HeapCorrupted, Kernel, u64
from redleaf_nb.kernel.heap import LIVE_OBJECTS
k = Kernel()
k.new(u64, 1)
k.heap.check_invariants()               # consistent: no error
k.heap.h.ctl[LIVE_OBJECTS] += 1         # the live-object counter drifts
try:
    k.heap.check_invariants()
except HeapCorrupted as e:
    print("refused:", e)
else:
    print("accepted a corrupted heap")
"""


def test_corrupted_heap_is_refused():
    k = Kernel()
    k.new(u64, 1)
    k.heap.check_invariants()
    k.heap.h.ctl[LIVE_OBJECTS] += 1
    with pytest.raises(HeapCorrupted, match="live-object counter drifted"):
        k.heap.check_invariants()


def test_corrupted_heap_is_refused_under_python_O():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-O", "-c", CORRUPT], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "refused: exchange heap corrupted: live-object counter drifted" in out.stdout, \
        out.stdout
