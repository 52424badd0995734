"""Figure 5's measurement: one table per implementation, timed pass by pass.

C and jit C-style share one flat buffer (the same pages, huge or not); each other
implementation has its own. Every pass must return the same checksum (the sum of
the values it got), or the run fails.
"""
from __future__ import annotations

import math
import time

import numpy as np

from experiments.hashtable import kernels as K
from experiments.hashtable.c_reference import FAIR_C_OPT, native

MIN_OPS = 1 << 20     # operations per measurement for compiled code (small tables: passes)
IMPLEMENTATIONS = ("C", "jit C-style", "jit idiomatic", "Python dict", "Python list")
PYTHON_IMPLS = ("Python dict", "Python list")

#: the ablation's variants (which idiom costs what) -> their table layout and kernels
ABLATION = {
    "C-style: flat 16 B entries, no checks": "jit C-style",
    "records 24 B (Option tag), no bounds checks": "records, unchecked",
    "records 24 B + bounds checks (= jit idiomatic)": "jit idiomatic",
    "records 17 B packed + bounds checks": "records packed",
}


class Tables:
    """The tables of one size, one per implementation, and how to time each.

    C and jit C-style share one flat buffer (the same pages, huge or not); each other
    implementation has its own. ``reset(impl)`` empties a table and writes every page of
    it, so no page fault is ever timed.
    """

    def __init__(self, cap: int, impls=IMPLEMENTATIONS, c_opt: str = FAIR_C_OPT):
        self.cap = cap
        self.impls = tuple(impls)
        self.flat = np.zeros(2 * cap, np.uint64)          # {key, value} x cap
        self.slots = {}
        for impl, dtype in (("jit idiomatic", K.SLOT), ("records, unchecked", K.SLOT),
                            ("records packed", K.SLOT_PACKED)):
            if impl in self.impls:
                self.slots[impl] = np.zeros(cap, dtype)
        if "C" in self.impls:
            ffi, self.lib = native(c_opt)
            self.cflat = ffi.from_buffer("uint64_t[]", self.flat)
            self.csum = ffi.new("uint64_t *")
        self.py = {}

    def reset(self, impl: str) -> None:
        if impl in ("C", "jit C-style"):
            self.flat.fill(0)
        elif impl in self.slots:
            self.slots[impl].view(np.uint8).fill(0)
        elif impl == "Python dict":
            self.py[impl] = {}
        else:
            self.py[impl] = K.PyListTable(self.cap)

    def bench_set(self, impl: str, n: int) -> int:
        if impl == "C":
            return int(self.lib.bench_set(self.cflat, self.cap, n))
        if impl == "jit C-style":
            return int(K.cstyle_bench_set(self.flat, n))
        if impl == "records, unchecked":
            return int(K.unchecked_bench_set(self.slots[impl], n))
        if impl in self.slots:
            return int(K.idiom_bench_set(self.slots[impl], n))
        return K.py_bench_set(self.py[impl], n)

    def bench_get(self, impl: str, n: int) -> tuple[int, int]:
        if impl == "C":
            cycles = self.lib.bench_get(self.cflat, self.cap, n, self.csum)
            return int(cycles), int(self.csum[0])
        if impl == "jit C-style":
            cycles, total = K.cstyle_bench_get(self.flat, n)
        elif impl == "records, unchecked":
            cycles, total = K.unchecked_bench_get(self.slots[impl], n)
        elif impl in self.slots:
            cycles, total = K.idiom_bench_get(self.slots[impl], n)
        else:
            return K.py_bench_get(self.py[impl], n)
        return int(cycles), int(total)


def n_keys(size_log2: int, load: int) -> int:
    """Keys inserted into a table of 2^size_log2 entries kept ``load`` percent full."""
    return max(1, (1 << size_log2) * load // 100)


def expected_checksum(n: int) -> int:
    """Sum (mod 2^64) of the values of keys 1..n: what every get pass must return."""
    return int((np.arange(1, n + 1, dtype=np.uint64) ^ K.VALUE_XOR).sum(dtype=np.uint64))


def measure(tables: Tables, impl: str, n: int) -> dict:
    """One pass: reset, timed set of keys 1..n, timed get of keys 1..n."""
    tables.reset(impl)
    t0 = time.perf_counter_ns()
    set_cycles = tables.bench_set(impl, n)
    t1 = time.perf_counter_ns()
    get_cycles, total = tables.bench_get(impl, n)
    t2 = time.perf_counter_ns()
    return {"set_cycles": set_cycles, "get_cycles": get_cycles, "set_ns": t1 - t0,
            "get_ns": t2 - t1, "checksum": total}


def measure_size(tables: Tables, n: int, repeats: int, progress=None) -> dict:
    """Per implementation and op: [cycles/op, ns/op] of each repeat.

    Implementations take turns pass by pass (round robin, the order rotated every
    repeat), so that a noisy neighbour or a frequency change hits them all alike, and so
    that no implementation's branch predictor is trained on the very same key sequence
    pass after pass (the paper times a single pass per size). A
    repeat is at least :data:`MIN_OPS` operations (small tables: several passes) and its
    value is the median over its passes; a Python implementation runs one pass a repeat.
    Every pass must return :func:`expected_checksum`, or AssertionError.
    """
    impls = list(tables.impls)
    expected = expected_checksum(n)
    passes = max(1, math.ceil(MIN_OPS / n))
    out = {(impl, op): [] for impl in impls for op in ("set", "get")}
    for r in range(repeats):
        order = impls[r % len(impls):] + impls[:r % len(impls)]
        samples = {key: [] for key in out}
        for p in range(passes):
            for impl in order:
                if p and impl in PYTHON_IMPLS:
                    continue
                m = measure(tables, impl, n)
                if m["checksum"] != expected:
                    raise AssertionError(
                        f"hashtable: {impl} at 2^{int(math.log2(tables.cap))}: checksum of "
                        f"gets {m['checksum']} != {expected} (sum of the values of keys "
                        f"1..{n})")
                for op in ("set", "get"):
                    samples[(impl, op)].append((m[f"{op}_cycles"] / n, m[f"{op}_ns"] / n))
        for key, vals in samples.items():
            out[key].append(tuple(np.median(np.array(vals), axis=0)))
        if progress is not None:
            progress.update(1)
    return out


def warm_up(impls, c_opt: str, seconds: float = 0.2) -> None:
    """Compile (or load from cache) every kernel, then keep the CPU busy for a moment:
    a vCPU that was idle runs slower for its first milliseconds."""
    t = Tables(1 << 10, impls, c_opt)
    for impl in impls:
        measure(t, impl, 16)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        measure(t, "jit C-style", 768)
