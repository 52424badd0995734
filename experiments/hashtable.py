"""Figure 5: the cost of the language — one hashtable in C, C-style and idiomatic code.

The paper (§5.1, "Rust overhead") measures an open-addressing hashtable with
linear probing and the FNV hash, 8-byte keys and 8-byte values, kept 75% full,
for table sizes 2^12 .. 2^26, in three implementations with the same hashing
logic: C, idiomatic Rust and C-style Rust. It reports cycles per get and per
set (Figure 5): idiomatic Rust is about 25% slower than C for most sizes;
C-style Rust is comparable to, or 3-10 cycles faster than, C.

Here the same benchmark runs with Numba standing in for Rust, each
implementation measured on this machine:

* ``C``: the reference, C source (:data:`C_SOURCE`) compiled once at run time
  with the system ``gcc -O2`` through cffi (cached under
  ``~/.cache/redleaf_nb/native/``, keyed by a hash of source and flags). It
  works on numpy-allocated buffers handed over with ``ffi.from_buffer`` — in
  fact on the *same* buffer as the jitted C-style version — so page placement
  (transparent huge pages) is identical. Its cycles are read with ``__rdtsc``
  around the loop, inside C.
* ``jit C-style``: :func:`cstyle_get` / :func:`cstyle_set`, ``@njit`` over a
  flat ``uint64`` array of {key, value} pairs (16 bytes an entry, key 0 =
  empty), an unbounded probe loop, a ``(found, value)`` result, no bounds
  checks: line for line the C code.
* ``jit idiomatic``: :func:`idiom_get` / :func:`idiom_set`, see their
  docstring for the idioms (array of records with an ``occupied`` flag, i.e.
  ``Option<(K, V)>``, 24-byte entries; ``Optional`` results; bounds-checked
  indexing; a bounded probe iteration).
* ``Python dict`` and ``Python list``: the plain-Python way and the same
  algorithm in plain Python, only for tables up to ``2^py_max_log2`` entries
  (16 by default): they are there to show scale (hundreds of times slower).

The benchmark loop is the RedLeaf source's (``benchhash``): insert keys
1..n (here value = key XOR :data:`VALUE_XOR`, so a value is never mistaken for
its key), then look up the same keys; n = size * load / 100. The paper's
table is 75% full (``load=75``); the RedLeaf source's benchmark loads 25%.
Cycles come from the time-stamp counter read inside the compiled code (so call
overhead is excluded); ns from ``time.perf_counter_ns`` around each call. The
table is zeroed (every page touched) before each timed insert pass, so page
faults are never timed. The implementations take turns pass by pass (see
:func:`measure_size`); a repeat is at least :data:`MIN_OPS` operations (small
tables: the median of several passes); the median over ``repeats`` is
reported. The process is pinned to one CPU while it measures. Every pass of
every implementation must return the same checksum (the sum of the values it
got), or the run fails.

Compilers: Numba compiles at LLVM -O3 for this CPU; the C reference is built
with ``gcc -O2`` (parameter ``c_opt``; ``-O3`` offered). The difference
matters here: gcc -O2 keeps FNV's 8-round byte loop as a loop with a
variable shift, LLVM (and gcc -O3) unrolls it into constant shifts, which
costs C about 10-15 cycles per operation in cache and more out of cache
(fewer lookups in flight). :func:`ablation` measures which idiom of the
idiomatic version costs what.
"""
from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import shutil
import sysconfig
import tempfile
import time
from contextlib import contextmanager
from functools import lru_cache

import numpy as np
import pandas as pd
from numba import njit

from redleaf_nb.experiments import Experiment, Param, ParamError
from redleaf_nb.kernel.clock import cpu_model, rdtsc, tsc_hz
from redleaf_nb.native import cache_dir

# --------------------------------------------------------------------------------------
# Constants (uint64 globals: Numba freezes them, and mixing uint64 with int64 literals
# would silently compute in float64)

FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)
VALUE_XOR = np.uint64(0x5555555555555555)
_U0 = np.uint64(0)
_U1 = np.uint64(1)
_U2 = np.uint64(2)
_U8 = np.uint64(8)
_BYTE = np.uint64(0xFF)
_M64 = (1 << 64) - 1

MIN_OPS = 1 << 20     # operations per measurement for compiled code (small tables: passes)
IMPLEMENTATIONS = ("C", "jit C-style", "jit idiomatic", "Python dict", "Python list")
PYTHON_IMPLS = ("Python dict", "Python list")

#: the idiomatic version's slot, Rust's ``Option<(u64, u64)>``: a tag, padded, then the pair
SLOT = np.dtype([("occupied", np.bool_), ("key", np.uint64), ("value", np.uint64)],
                align=True)
#: the same slot packed: the paper's "at least 1 extra byte per entry" (ablation only)
SLOT_PACKED = np.dtype([("occupied", np.bool_), ("key", np.uint64), ("value", np.uint64)],
                       align=False)


# --------------------------------------------------------------------------------------
# The hash: FNV-1, 64 bit, over the 8 bytes of the key (little-endian), multiply then xor

@njit(cache=True)
def fnv1_64(key):
    """FNV-1 64-bit hash of the 8 key bytes (offset 0xcbf29ce484222325, prime 0x100000001b3)."""
    h = FNV_OFFSET
    shift = _U0
    for _ in range(8):
        h = h * FNV_PRIME
        h = h ^ ((key >> shift) & _BYTE)
        shift += _U8
    return h


def py_fnv1_64(key: int) -> int:
    """The same hash in plain Python (the naive twin the kernels are checked against)."""
    h = 0xCBF29CE484222325
    for i in range(8):
        h = (h * 0x100000001B3) & _M64
        h ^= (key >> (8 * i)) & 0xFF
    return h


# --------------------------------------------------------------------------------------
# The C reference, compiled once with the system gcc -O2 through cffi

C_CDEF = """
uint64_t bench_set(uint64_t *table, uint64_t cap, uint64_t n);
uint64_t bench_get(uint64_t *table, uint64_t cap, uint64_t n, uint64_t *checksum);
void set_many(uint64_t *table, uint64_t cap, uint64_t *keys, uint64_t *values, uint64_t m);
void get_many(uint64_t *table, uint64_t cap, uint64_t *keys, uint64_t m,
              uint64_t *values, uint8_t *found);
"""

C_SOURCE = r"""
#include <stdint.h>
#include <x86intrin.h>

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME  0x100000001b3ULL
#define VALUE_XOR  0x5555555555555555ULL

/* One entry: 16 bytes, key 0 marks an empty slot. */
typedef struct { uint64_t key, value; } entry_t;

static inline uint64_t fnv1_64(uint64_t key) {
    uint64_t h = FNV_OFFSET;
    for (int i = 0; i < 8; i++) {
        h *= FNV_PRIME;
        h ^= (key >> (8 * i)) & 0xff;
    }
    return h;
}

static inline void ht_set(entry_t *t, uint64_t mask, uint64_t key, uint64_t value) {
    uint64_t i = fnv1_64(key) & mask;
    for (;;) {
        if (t[i].key == key || t[i].key == 0) {
            t[i].key = key;
            t[i].value = value;
            return;
        }
        i = (i + 1) & mask;
    }
}

static inline int ht_get(const entry_t *t, uint64_t mask, uint64_t key, uint64_t *value) {
    uint64_t i = fnv1_64(key) & mask;
    for (;;) {
        if (t[i].key == key) {
            *value = t[i].value;
            return 1;
        }
        if (t[i].key == 0)
            return 0;
        i = (i + 1) & mask;
    }
}

uint64_t bench_set(uint64_t *table, uint64_t cap, uint64_t n) {
    entry_t *t = (entry_t *)table;
    uint64_t t0 = __rdtsc();
    for (uint64_t k = 1; k <= n; k++)
        ht_set(t, cap - 1, k, k ^ VALUE_XOR);
    return __rdtsc() - t0;
}

uint64_t bench_get(uint64_t *table, uint64_t cap, uint64_t n, uint64_t *checksum) {
    const entry_t *t = (const entry_t *)table;
    uint64_t sum = 0, v;
    uint64_t t0 = __rdtsc();
    for (uint64_t k = 1; k <= n; k++)
        if (ht_get(t, cap - 1, k, &v))
            sum += v;
    uint64_t t1 = __rdtsc();
    *checksum = sum;
    return t1 - t0;
}

void set_many(uint64_t *table, uint64_t cap, uint64_t *keys, uint64_t *values, uint64_t m) {
    for (uint64_t j = 0; j < m; j++)
        ht_set((entry_t *)table, cap - 1, keys[j], values[j]);
}

void get_many(uint64_t *table, uint64_t cap, uint64_t *keys, uint64_t m,
              uint64_t *values, uint8_t *found) {
    for (uint64_t j = 0; j < m; j++) {
        uint64_t v = 0;
        found[j] = (uint8_t)ht_get((const entry_t *)table, cap - 1, keys[j], &v);
        values[j] = v;
    }
}
"""

C_COMPILER = "gcc"
#: optimisation settings offered for the C reference; appended after Python's own CFLAGS
#: (which say -O3), so the last -O is the one that counts. The paper's setting is not stated;
#: -O2 is the ordinary choice.
C_OPT_CHOICES = ("-O2", "-O3")


@lru_cache(maxsize=None)
def native(c_opt: str = "-O2"):
    """(ffi, lib) of the C reference built with ``gcc c_opt``; compiled once, then cached."""
    import cffi

    if c_opt not in C_OPT_CHOICES:
        raise ParamError(f"hashtable: c_opt={c_opt!r} is not one of {', '.join(C_OPT_CHOICES)}")
    flags = c_opt.split()
    key = hashlib.sha256("\0".join([C_CDEF, C_SOURCE, C_COMPILER, *flags, cffi.__version__,
                                    sysconfig.get_config_var("EXT_SUFFIX")]).encode())
    modname = f"_rnb_hashtable_{key.hexdigest()[:16]}"
    out_dir = cache_dir()
    so = out_dir / (modname + sysconfig.get_config_var("EXT_SUFFIX"))
    if not so.exists():
        out_dir.mkdir(parents=True, exist_ok=True)
        ffi = cffi.FFI()
        ffi.cdef(C_CDEF)
        ffi.set_source(modname, C_SOURCE, extra_compile_args=flags)
        tmp = tempfile.mkdtemp(prefix=modname, dir=out_dir)
        old_cc = os.environ.get("CC")
        try:
            os.environ["CC"] = C_COMPILER
            built = ffi.compile(tmpdir=tmp)
            os.replace(built, so)            # atomic: concurrent builders never see half a file
        finally:
            if old_cc is None:
                os.environ.pop("CC", None)
            else:
                os.environ["CC"] = old_cc
            shutil.rmtree(tmp, ignore_errors=True)
    spec = importlib.util.spec_from_file_location(modname, so)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.ffi, mod.lib


# --------------------------------------------------------------------------------------
# jitted C-style: flat uint64 array, entry i = table[2i] (key, 0 = empty), table[2i+1] (value)

@njit(cache=True)
def cstyle_set(table, mask, key, value):
    """Insert or update ``key`` (nonzero); the table must have an empty slot."""
    i = fnv1_64(key) & mask
    while True:
        k = table[i * _U2]
        if k == key or k == _U0:
            table[i * _U2] = key
            table[i * _U2 + _U1] = value
            return
        i = (i + _U1) & mask


@njit(cache=True)
def cstyle_get(table, mask, key):
    """``(found, value)`` for ``key``; value is 0 when not found."""
    i = fnv1_64(key) & mask
    while True:
        k = table[i * _U2]
        if k == key:
            return True, table[i * _U2 + _U1]
        if k == _U0:
            return False, _U0
        i = (i + _U1) & mask


@njit(cache=True)
def cstyle_bench_set(table, n):
    mask = np.uint64(table.size // 2 - 1)
    t0 = rdtsc()
    for k in range(1, n + 1):
        key = np.uint64(k)
        cstyle_set(table, mask, key, key ^ VALUE_XOR)
    return rdtsc() - t0


@njit(cache=True)
def cstyle_bench_get(table, n):
    mask = np.uint64(table.size // 2 - 1)
    total = _U0
    t0 = rdtsc()
    for k in range(1, n + 1):
        found, v = cstyle_get(table, mask, np.uint64(k))
        if found:
            total += v
    return rdtsc() - t0, total


@njit(cache=True)
def cstyle_mean_probes(table, n):
    """Mean slots probed by a get of keys 1..n in a filled flat table (1 = no collision)."""
    mask = np.uint64(table.size // 2 - 1)
    total = 0
    for k in range(1, n + 1):
        key = np.uint64(k)
        i = fnv1_64(key) & mask
        probes = 1
        while table[i * _U2] != key:
            i = (i + _U1) & mask
            probes += 1
        total += probes
    return total / n


@njit(cache=True)
def cstyle_set_many(table, keys, values):
    mask = np.uint64(table.size // 2 - 1)
    for j in range(keys.size):
        cstyle_set(table, mask, keys[j], values[j])


@njit(cache=True)
def cstyle_get_many(table, keys, values, found):
    mask = np.uint64(table.size // 2 - 1)
    for j in range(keys.size):
        found[j], values[j] = cstyle_get(table, mask, keys[j])


# --------------------------------------------------------------------------------------
# jitted idiomatic: an array of records, each an Option<(key, value)>

@njit(cache=True, boundscheck=True)
def idiom_get(slots, key):
    """The value stored under ``key``, or ``None``.

    The idioms, each the Numba counterpart of what idiomatic Rust writes:

    1. **Option<T> slots**: the table is an array of records
       ``{occupied: bool, key: u64, value: u64}`` (:data:`SLOT`); the explicit
       ``occupied`` flag is the ``Option`` tag, so any key (even 0) can be stored.
       Aligned like ``Option<(u64, u64)>``, an entry is 24 bytes instead of 16:
       1.5x the memory traffic, and entries straddle cache lines.
    2. **Optional results**: ``get`` returns ``None`` or the value (Rust's
       ``Option<&V>``), ``set`` returns the previous value or ``None``; the
       caller tests ``is not None``.
    3. **Bounds-checked indexing**: compiled with ``boundscheck=True``, so every
       ``slots[i]`` is checked as Rust's slice indexing is (the C-style kernels
       are not, like C).
    4. **A bounded probe iteration**: ``for step in range(len(slots))`` over the
       probe sequence (Rust's ``(0..cap).map(..).find(..)``) instead of an
       unbounded ``while`` loop; a full table raises instead of spinning.

    Not modelled: Rust closures passed to iterator adapters (higher-order
    functions). In Numba a function passed as an argument defeats the on-disk
    cache, and both compilers inline them away.
    """
    mask = np.uint64(len(slots) - 1)
    h = fnv1_64(key)
    for step in range(len(slots)):
        slot = slots[(h + np.uint64(step)) & mask]
        if not slot.occupied:
            return None
        if slot.key == key:
            return slot.value
    return None


@njit(cache=True, boundscheck=True)
def idiom_set(slots, key, value):
    """Insert or update ``key``; the previous value or ``None`` (see :func:`idiom_get`)."""
    mask = np.uint64(len(slots) - 1)
    h = fnv1_64(key)
    for step in range(len(slots)):
        slot = slots[(h + np.uint64(step)) & mask]
        if not slot.occupied:
            slot.occupied = True
            slot.key = key
            slot.value = value
            return None
        if slot.key == key:
            old = slot.value
            slot.value = value
            return old
    raise IndexError("hash table saturated")


@njit(cache=True)
def idiom_bench_set(slots, n):
    t0 = rdtsc()
    for k in range(1, n + 1):
        key = np.uint64(k)
        idiom_set(slots, key, key ^ VALUE_XOR)
    return rdtsc() - t0


@njit(cache=True)
def idiom_bench_get(slots, n):
    total = _U0
    t0 = rdtsc()
    for k in range(1, n + 1):
        v = idiom_get(slots, np.uint64(k))
        if v is not None:
            total += v
    return rdtsc() - t0, total


@njit(cache=True)
def idiom_set_many(slots, keys, values):
    for j in range(keys.size):
        idiom_set(slots, keys[j], values[j])


@njit(cache=True)
def idiom_get_many(slots, keys, values, found):
    for j in range(keys.size):
        v = idiom_get(slots, keys[j])
        if v is None:
            found[j] = False
            values[j] = _U0
        else:
            found[j] = True
            values[j] = v


# The idiomatic kernels without bounds checks: only for the ablation (which idiom costs what)

@njit(cache=True)
def unchecked_get(slots, key):
    """:func:`idiom_get` compiled without bounds checks (ablation)."""
    mask = np.uint64(len(slots) - 1)
    h = fnv1_64(key)
    for step in range(len(slots)):
        slot = slots[(h + np.uint64(step)) & mask]
        if not slot.occupied:
            return None
        if slot.key == key:
            return slot.value
    return None


@njit(cache=True)
def unchecked_set(slots, key, value):
    """:func:`idiom_set` compiled without bounds checks (ablation)."""
    mask = np.uint64(len(slots) - 1)
    h = fnv1_64(key)
    for step in range(len(slots)):
        slot = slots[(h + np.uint64(step)) & mask]
        if not slot.occupied:
            slot.occupied = True
            slot.key = key
            slot.value = value
            return None
        if slot.key == key:
            old = slot.value
            slot.value = value
            return old
    raise IndexError("hash table saturated")


@njit(cache=True)
def unchecked_bench_set(slots, n):
    t0 = rdtsc()
    for k in range(1, n + 1):
        key = np.uint64(k)
        unchecked_set(slots, key, key ^ VALUE_XOR)
    return rdtsc() - t0


@njit(cache=True)
def unchecked_bench_get(slots, n):
    total = _U0
    t0 = rdtsc()
    for k in range(1, n + 1):
        v = unchecked_get(slots, np.uint64(k))
        if v is not None:
            total += v
    return rdtsc() - t0, total


# --------------------------------------------------------------------------------------
# Plain Python, to show scale

class PyListTable:
    """The same algorithm in plain Python: two lists, FNV-1 in Python ints, linear probing."""

    def __init__(self, cap: int):
        self.mask = cap - 1
        self.keys = [0] * cap
        self.values = [0] * cap

    def set(self, key: int, value: int) -> None:
        i = py_fnv1_64(key) & self.mask
        keys = self.keys
        while keys[i] != key and keys[i] != 0:
            i = (i + 1) & self.mask
        keys[i] = key
        self.values[i] = value

    def get(self, key: int):
        i = py_fnv1_64(key) & self.mask
        keys = self.keys
        while True:
            k = keys[i]
            if k == key:
                return self.values[i]
            if k == 0:
                return None
            i = (i + 1) & self.mask


def _py_bench_set(table, n: int) -> int:
    """Cycles to insert keys 1..n into ``table`` (a dict or a PyListTable)."""
    x = int(VALUE_XOR)
    if isinstance(table, dict):
        t0 = rdtsc()
        for k in range(1, n + 1):
            table[k] = k ^ x
        return rdtsc() - t0
    put = table.set
    t0 = rdtsc()
    for k in range(1, n + 1):
        put(k, k ^ x)
    return rdtsc() - t0


def _py_bench_get(table, n: int) -> tuple[int, int]:
    get = table.get
    total = 0
    t0 = rdtsc()
    for k in range(1, n + 1):
        v = get(k)
        if v is not None:
            total += v
    cycles = rdtsc() - t0
    return cycles, total & _M64


# --------------------------------------------------------------------------------------
# One table per implementation: allocate, reset, time a set pass and a get pass

#: the ablation's variants (which idiom costs what) -> their table layout and kernels
ABLATION = {
    "C-style: flat 16 B entries, no checks": "jit C-style",
    "records 24 B (Option tag), no bounds checks": "records, unchecked",
    "records 24 B + bounds checks (= jit idiomatic)": "jit idiomatic",
    "records 17 B packed + bounds checks": "records packed",
}


class _Tables:
    """The tables of one size, one per implementation, and how to time each.

    C and jit C-style share one flat buffer (the same pages, huge or not); each other
    implementation has its own. ``reset(impl)`` empties a table and writes every page of
    it, so no page fault is ever timed.
    """

    def __init__(self, cap: int, impls=IMPLEMENTATIONS, c_opt: str = "-O2"):
        self.cap = cap
        self.impls = tuple(impls)
        self.flat = np.zeros(2 * cap, np.uint64)          # {key, value} x cap
        self.slots = {}
        for impl, dtype in (("jit idiomatic", SLOT), ("records, unchecked", SLOT),
                            ("records packed", SLOT_PACKED)):
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
            self.py[impl] = PyListTable(self.cap)

    def bench_set(self, impl: str, n: int) -> int:
        if impl == "C":
            return int(self.lib.bench_set(self.cflat, self.cap, n))
        if impl == "jit C-style":
            return int(cstyle_bench_set(self.flat, n))
        if impl == "records, unchecked":
            return int(unchecked_bench_set(self.slots[impl], n))
        if impl in self.slots:
            return int(idiom_bench_set(self.slots[impl], n))
        return _py_bench_set(self.py[impl], n)

    def bench_get(self, impl: str, n: int) -> tuple[int, int]:
        if impl == "C":
            cycles = self.lib.bench_get(self.cflat, self.cap, n, self.csum)
            return int(cycles), int(self.csum[0])
        if impl == "jit C-style":
            cycles, total = cstyle_bench_get(self.flat, n)
        elif impl == "records, unchecked":
            cycles, total = unchecked_bench_get(self.slots[impl], n)
        elif impl in self.slots:
            cycles, total = idiom_bench_get(self.slots[impl], n)
        else:
            return _py_bench_get(self.py[impl], n)
        return int(cycles), int(total)


def n_keys(size_log2: int, load: int) -> int:
    """Keys inserted into a table of 2^size_log2 entries kept ``load`` percent full."""
    return max(1, (1 << size_log2) * load // 100)


def expected_checksum(n: int) -> int:
    """Sum (mod 2^64) of the values of keys 1..n: what every get pass must return."""
    return int((np.arange(1, n + 1, dtype=np.uint64) ^ VALUE_XOR).sum(dtype=np.uint64))


def measure(tables: _Tables, impl: str, n: int) -> dict:
    """One pass: reset, timed set of keys 1..n, timed get of keys 1..n."""
    tables.reset(impl)
    t0 = time.perf_counter_ns()
    set_cycles = tables.bench_set(impl, n)
    t1 = time.perf_counter_ns()
    get_cycles, total = tables.bench_get(impl, n)
    t2 = time.perf_counter_ns()
    return {"set_cycles": set_cycles, "get_cycles": get_cycles, "set_ns": t1 - t0,
            "get_ns": t2 - t1, "checksum": total}


def measure_size(tables: _Tables, n: int, repeats: int, progress=None) -> dict:
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


@contextmanager
def _pinned():
    """Run on one CPU (as the paper does), then restore the process's CPU set."""
    try:
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {max(before)})
    except (AttributeError, OSError):
        yield
        return
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _warm_up(impls, c_opt: str, seconds: float = 0.2) -> None:
    """Compile (or load from cache) every kernel, then keep the CPU busy for a moment:
    a vCPU that was idle runs slower for its first milliseconds."""
    t = _Tables(1 << 10, impls, c_opt)
    for impl in impls:
        measure(t, impl, 16)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        measure(t, "jit C-style", 768)


def run(params: dict) -> pd.DataFrame:
    """Cycles and ns per set and per get, per implementation and table size (tidy).

    Columns: implementation, size_log2, op (set/get), cycles_per_op, ns_per_op, repeats,
    then keys (inserted), load (%), c_opt (the C reference's gcc flag) and mean_probes
    (slots probed per get: a property of FNV-1 on keys 1..n at this size).
    """
    from tqdm.auto import tqdm

    lo, hi, load, repeats = (params["min_log2"], params["max_log2"], params["load"],
                             params["repeats"])
    py_max, c_opt = params["py_max_log2"], params["c_opt"]
    if lo > hi:
        raise ParamError(f"hashtable: min_log2={lo} is larger than max_log2={hi}")
    sizes = list(range(lo, hi + 1))
    rows = []
    with _pinned():
        _warm_up(IMPLEMENTATIONS, c_opt)
        bar = tqdm(total=len(sizes) * repeats, desc="hashtable", unit="repeat",
                   leave=False, mininterval=0.5)
        for size in sizes:
            impls = [i for i in IMPLEMENTATIONS if i not in PYTHON_IMPLS or size <= py_max]
            tables = _Tables(1 << size, impls, c_opt)
            n = n_keys(size, load)
            results = measure_size(tables, n, repeats, bar)
            # the keys' layout is the hash's, not the implementation's: count it once
            tables.reset("jit C-style")
            cstyle_bench_set(tables.flat, n)
            probes = float(cstyle_mean_probes(tables.flat, n))
            for impl in impls:
                for op in ("set", "get"):
                    per = np.array(results[(impl, op)])
                    rows.append({
                        "implementation": impl, "size_log2": size, "op": op,
                        "cycles_per_op": float(np.median(per[:, 0])),
                        "ns_per_op": float(np.median(per[:, 1])),
                        "repeats": len(per), "keys": n, "load": load, "c_opt": c_opt,
                        "mean_probes": probes})
            del tables
        bar.close()
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------
# Which idiom costs what: the idiomatic kernels with one idiom removed at a time

def ablation(sizes=(12, 16, 20), load: int = 75, repeats: int = 5) -> pd.DataFrame:
    """Cycles/op of the idiomatic table with its idioms switched on one at a time.

    The variants (:data:`ABLATION`) are measured like :func:`run` measures (round robin,
    median). Returns a tidy table: variant, size_log2, op, cycles_per_op, ratio_to_cstyle.
    """
    impls = list(ABLATION.values())
    name = {v: k for k, v in ABLATION.items()}
    rows = []
    with _pinned():
        _warm_up(impls, "-O2")
        for size in sizes:
            n = n_keys(size, load)
            results = measure_size(_Tables(1 << size, impls), n, repeats)
            for (impl, op), per in results.items():
                rows.append({"variant": name[impl], "size_log2": size, "op": op,
                             "cycles_per_op": float(np.median(np.array(per)[:, 0]))})
    df = pd.DataFrame(rows)
    base = df[df.variant == next(iter(ABLATION))].set_index(["size_log2", "op"]).cycles_per_op
    df["ratio_to_cstyle"] = [c / base[(s, o)] for c, s, o in
                             zip(df.cycles_per_op, df.size_log2, df.op)]
    return df


# --------------------------------------------------------------------------------------
# Ours beside the paper's

def ratios(ours: pd.DataFrame) -> pd.DataFrame:
    """Per size and op: C, C-style and idiomatic cycles/op, their ratios and differences to C."""
    wide = ours.pivot_table(index=["size_log2", "op"], columns="implementation",
                            values="cycles_per_op")
    out = pd.DataFrame({"C": wide["C"], "jit C-style": wide["jit C-style"],
                        "jit idiomatic": wide["jit idiomatic"]})
    out["C-style / C"] = out["jit C-style"] / out["C"]
    out["idiomatic / C"] = out["jit idiomatic"] / out["C"]
    out["C-style - C (cycles)"] = out["jit C-style"] - out["C"]
    return out.reset_index()


def paper_refs(paper: pd.DataFrame) -> dict:
    """The paper's Figure 5 statements, read from data/paper/hashtable.csv."""
    p = paper[paper.figure == "fig5"]
    refs = {}
    for _, row in p.iterrows():
        system, metric, unit = str(row.system), str(row.metric), str(row.unit)
        if system.startswith("idiomatic") and unit == "percent":
            refs["idiomatic_slowdown_pct"] = float(row.value)
            refs["idiomatic_where"] = str(row.param_value)
        elif system.startswith("C-style") and unit == "cycles" and "low" in metric:
            refs["cstyle_faster_low"] = float(row.value)
        elif system.startswith("C-style") and unit == "cycles" and "high" in metric:
            refs["cstyle_faster_high"] = float(row.value)
        elif unit == "instructions":
            refs["instr_cstyle" if "C-style" in metric else "instr_c"] = float(row.value)
    return refs


def _math(text: str) -> str:
    """'2^12..2^26' as matplotlib mathtext."""
    import re
    return re.sub(r"2\^(\d+)", r"$2^{\1}$", text)


PALETTE = {"C": "#222222", "jit C-style": "#1f77b4", "jit idiomatic": "#d62728",
           "Python dict": "#2ca02c", "Python list": "#9467bd"}


def plot(ours: pd.DataFrame, paper: pd.DataFrame):
    """Cycles/op vs table size (get, set), and our ratios to C beside the paper's."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = plt.subplots(2, 2, figsize=(13, 10.5))
    sizes = sorted(ours.size_log2.unique())
    ticks = sizes if len(sizes) <= 10 else sizes[::2]
    impls = [i for i in IMPLEMENTATIONS if i in set(ours.implementation)]
    py_sizes = ours[ours.implementation.isin(PYTHON_IMPLS)].size_log2
    for ax, op in zip(axes[0], ("get", "set")):
        d = ours[ours.op == op]
        sns.lineplot(data=d, x="size_log2", y="cycles_per_op", hue="implementation",
                     hue_order=impls, palette=PALETTE, marker="o", ax=ax)
        ax.set_yscale("log")
        probes = ""
        if "mean_probes" in d:
            pr = d.drop_duplicates("size_log2").set_index("size_log2").mean_probes
            probes = (f"\nslots probed per op (FNV-1 on keys 1..n): {pr.min():.2f}-"
                      f"{pr.max():.2f}, most at $2^{{{pr.idxmax()}}}$")
        ax.set_title(f"{op}: cycles per {op}" +
                     (f" (Python only up to $2^{{{py_sizes.max()}}}$)" if len(py_sizes) else ""))
        ax.set_ylabel(f"cycles per {op} (log scale)")
        lo, hi = d.cycles_per_op.min(), d.cycles_per_op.max()
        ax.set_ylim(lo / 1.5, hi * 30)                        # room for the legend on top
        ax.legend(fontsize=8, loc="upper center", ncol=3)
    ax = axes[1, 0]
    r = ratios(ours).melt(id_vars=["size_log2", "op"], value_vars=["C-style / C", "idiomatic / C"],
                          var_name="ratio", value_name="value")
    sns.lineplot(data=r, x="size_log2", y="value", hue="ratio", style="op", markers=True,
                 palette={"C-style / C": PALETTE["jit C-style"],
                          "idiomatic / C": PALETTE["jit idiomatic"]}, ax=ax)
    ax.axhline(1.0, color=PALETTE["C"], lw=1)
    ax.axhspan(0.9, 1.1, color=PALETTE["jit C-style"], alpha=0.08,
               label="target: C-style within 10% of C")
    refs = paper_refs(paper)
    if "idiomatic_slowdown_pct" in refs:
        ax.axhline(1 + refs["idiomatic_slowdown_pct"] / 100, color=PALETTE["jit idiomatic"],
                   ls="--", lw=1.5,
                   label=f"paper: idiomatic Rust +{refs['idiomatic_slowdown_pct']:g}% vs C "
                         f"({_math(refs['idiomatic_where'])})")
    ax.set_title("ours: ratio to C; paper's idiomatic Rust dashed")
    ax.set_ylabel("cycles/op relative to C (1 = C)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3)
    ax = axes[1, 1]
    dif = ratios(ours)
    sns.lineplot(data=dif, x="size_log2", y="C-style - C (cycles)", style="op", markers=True,
                 color=PALETTE["jit C-style"], ax=ax)
    ax.axhline(0, color=PALETTE["C"], lw=1)
    if "cstyle_faster_low" in refs and "cstyle_faster_high" in refs:
        lo, hi = refs["cstyle_faster_low"], refs["cstyle_faster_high"]
        ax.axhspan(-hi, -lo, color="orange", alpha=0.25,
                   label=f"paper: C-style Rust {lo:g}-{hi:g} cycles faster than C")
    if "instr_cstyle" in refs and "instr_c" in refs:
        ax.text(0.02, 0.04, f"paper: {refs['instr_cstyle']:g} instructions on the get/set "
                f"critical path in C-style Rust vs {refs['instr_c']:g} in C",
                transform=ax.transAxes, fontsize=8)
    ax.set_title("ours: jit C-style minus C; paper's C-style Rust minus C shaded")
    ax.set_ylabel("C-style - C (cycles/op; < 0: faster)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"$2^{{{s}}}$" for s in ticks])
        ax.set_xlabel("table size (entries)" + (probes if i < 2 else ""))
    load = int(ours["load"].iloc[0]) if "load" in ours else None
    c_opt = str(ours["c_opt"].iloc[0]) if "c_opt" in ours else "-O2"
    fig.suptitle("Figure 5, hashtable (FNV-1, linear probing, 8 B keys/values"
                 + (f", {load}% full" if load else "") + "): host cost on THIS machine, "
                 f"{cpu_model()}, TSC {tsc_hz() / 1e9:.2f} GHz\nAbsolute cycles differ from the "
                 f"paper's (Haswell 2.6 GHz, Rust): compare ratios. C = gcc {c_opt} via cffi; "
                 "jit = Numba", fontsize=11)
    fig.tight_layout()
    return fig


EXPERIMENT = Experiment(
    name="hashtable",
    figure="Figure 5",
    title="Language overhead: open-addressing hashtable in C, C-style and idiomatic jitted code",
    paper_csv="hashtable.csv",
    params=(
        Param("min_log2", 12, 12, "smallest table, log2 of entries", low=10, high=26),
        Param("max_log2", 20, 26, "largest table, log2 of entries", low=10, high=26),
        Param("load", 75, 75, "percent of the table filled (paper 75; RedLeaf source 25)",
              low=10, high=90),
        Param("repeats", 3, 5, "measurements per point (median reported)", low=1, high=100),
        Param("py_max_log2", 16, 16, "largest table for the pure-Python versions", low=10,
              high=20),
        Param("c_opt", "-O2", "-O2", "gcc optimisation of the C reference",
              choices=C_OPT_CHOICES),
    ),
    run=run,
    plot=plot,
    bound="Host cost: cycles per get/set of our code on this machine (no device involved).",
    notes="C and jit C-style share one numpy buffer; C built with gcc -O2 (baseline x86-64), "
          "Numba targets this CPU.",
    extra={"ratios": ratios, "ablation": ablation, "paper_refs": paper_refs,
           "C_SOURCE": C_SOURCE, "native": native, "n_keys": n_keys,
           "kernels": {"cstyle_get": cstyle_get, "cstyle_set": cstyle_set,
                       "idiom_get": idiom_get, "idiom_set": idiom_set, "fnv1_64": fnv1_64,
                       "PyListTable": PyListTable},
           "SLOT": SLOT, "ABLATION": ABLATION, "IMPLEMENTATIONS": IMPLEMENTATIONS},
)
