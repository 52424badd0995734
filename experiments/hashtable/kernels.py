"""Figure 5's hashtables: the jitted kernels and their plain-Python twins.

* C-style (``cstyle_*``): ``@njit`` over a flat ``uint64`` array of {key, value}
  pairs (16 bytes an entry, key 0 = empty), an unbounded probe loop, a
  ``(found, value)`` result, no bounds checks: line for line the C reference.
* idiomatic (``idiom_*``): an array of records with an ``occupied`` flag (see
  :func:`slots_get` for the idioms), compiled with bounds checks.
* ``unchecked_*``: the idiomatic code without bounds checks (the ablation).

The idiomatic and unchecked kernels share one body (``slots_get``/``slots_set``
and the benchmark loops, inlined with ``inline="always"``): each public kernel is
a thin wrapper compiled with ``boundscheck=True`` or ``False``, and the inlined
body takes the wrapper's setting. Being distinct functions, the checked and the
unchecked wrapper never share an entry of numba's on-disk cache.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from redleaf_nb.lowlevel.clock import rdtsc

# uint64 globals: Numba freezes them, and mixing uint64 with int64 literals would
# silently compute in float64
FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)
VALUE_XOR = np.uint64(0x5555555555555555)
_U0 = np.uint64(0)
_U1 = np.uint64(1)
_U2 = np.uint64(2)
_U8 = np.uint64(8)
_BYTE = np.uint64(0xFF)
M64 = (1 << 64) - 1

#: the idiomatic version's slot, Rust's ``Option<(u64, u64)>``: a tag, padded, then the pair
SLOT = np.dtype([("occupied", np.bool_), ("key", np.uint64), ("value", np.uint64)],
                align=True)
#: the same slot packed: the paper's "at least 1 extra byte per entry" (ablation only)
SLOT_PACKED = np.dtype([("occupied", np.bool_), ("key", np.uint64), ("value", np.uint64)],
                       align=False)

checked = njit(cache=True, boundscheck=True)
unchecked = njit(cache=True, boundscheck=False)
inlined = njit(cache=True, inline="always")


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
        h = (h * 0x100000001B3) & M64
        h ^= (key >> (8 * i)) & 0xFF
    return h


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
# jitted idiomatic: an array of records, each an Option<(key, value)>; one body each,
# compiled checked (idiom_*) and unchecked (unchecked_*)

@inlined
def slots_get(slots, mask, key):
    """The value stored under ``key``, or ``None``.

    ``mask`` is the table's capacity - 1, kept beside the slots as a Rust table keeps
    it in its struct (every index is ``& mask``: a wrong mask is caught by the bounds
    checks of the checked wrappers). The idioms, each the Numba counterpart of what
    idiomatic Rust writes:

    1. **Option<T> slots**: the table is an array of records
       ``{occupied: bool, key: u64, value: u64}`` (:data:`SLOT`); the explicit
       ``occupied`` flag is the ``Option`` tag, so any key (even 0) can be stored.
       Aligned like ``Option<(u64, u64)>``, an entry is 24 bytes instead of 16:
       1.5x the memory traffic, and entries straddle cache lines.
    2. **Optional results**: ``get`` returns ``None`` or the value (Rust's
       ``Option<&V>``), ``set`` returns the previous value or ``None``; the
       caller tests ``is not None``.
    3. **Bounds-checked indexing**: the ``idiom_*`` wrappers are compiled with
       ``boundscheck=True``, so every ``slots[i]`` is checked as Rust's slice
       indexing is (the C-style kernels are not, like C).
    4. **A bounded probe iteration**: ``for step in range(len(slots))`` over the
       probe sequence (Rust's ``(0..cap).map(..).find(..)``) instead of an
       unbounded ``while`` loop; a full table raises instead of spinning.

    Not modelled: Rust closures passed to iterator adapters (higher-order
    functions). In Numba a function passed as an argument defeats the on-disk
    cache, and both compilers inline them away.
    """
    h = fnv1_64(key)
    for step in range(len(slots)):
        slot = slots[(h + np.uint64(step)) & mask]
        if not slot.occupied:
            return None
        if slot.key == key:
            return slot.value
    return None


@inlined
def slots_set(slots, mask, key, value):
    """Insert or update ``key``; the previous value or ``None`` (see :func:`slots_get`)."""
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


@inlined
def slots_bench_set(slots, n):
    mask = np.uint64(len(slots) - 1)
    t0 = rdtsc()
    for k in range(1, n + 1):
        key = np.uint64(k)
        slots_set(slots, mask, key, key ^ VALUE_XOR)
    return rdtsc() - t0


@inlined
def slots_bench_get(slots, n):
    mask = np.uint64(len(slots) - 1)
    total = _U0
    t0 = rdtsc()
    for k in range(1, n + 1):
        v = slots_get(slots, mask, np.uint64(k))
        if v is not None:
            total += v
    return rdtsc() - t0, total


@checked
def idiom_get(slots, mask, key):
    """:func:`slots_get`, bounds-checked."""
    return slots_get(slots, mask, key)


@unchecked
def unchecked_get(slots, mask, key):
    """:func:`slots_get` without bounds checks (ablation)."""
    return slots_get(slots, mask, key)


@checked
def idiom_set(slots, mask, key, value):
    """:func:`slots_set`, bounds-checked."""
    return slots_set(slots, mask, key, value)


@unchecked
def unchecked_set(slots, mask, key, value):
    """:func:`slots_set` without bounds checks (ablation)."""
    return slots_set(slots, mask, key, value)


@checked
def idiom_bench_set(slots, n):
    return slots_bench_set(slots, n)


@unchecked
def unchecked_bench_set(slots, n):
    return slots_bench_set(slots, n)


@checked
def idiom_bench_get(slots, n):
    return slots_bench_get(slots, n)


@unchecked
def unchecked_bench_get(slots, n):
    return slots_bench_get(slots, n)


@checked
def idiom_set_many(slots, keys, values):
    mask = np.uint64(len(slots) - 1)
    for j in range(keys.size):
        slots_set(slots, mask, keys[j], values[j])


@checked
def idiom_get_many(slots, keys, values, found):
    mask = np.uint64(len(slots) - 1)
    for j in range(keys.size):
        v = slots_get(slots, mask, keys[j])
        if v is None:
            found[j] = False
            values[j] = _U0
        else:
            found[j] = True
            values[j] = v


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


def py_bench_set(table, n: int) -> int:
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


def py_bench_get(table, n: int) -> tuple[int, int]:
    """(cycles, checksum) of a get of keys 1..n from ``table`` (a dict or a PyListTable)."""
    get = table.get
    total = 0
    t0 = rdtsc()
    for k in range(1, n + 1):
        v = get(k)
        if v is not None:
            total += v
    cycles = rdtsc() - t0
    return cycles, total & M64
