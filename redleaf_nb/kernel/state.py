"""The kernel's shared state: every array that both tiers read and write.

Python code reads the numpy arrays from :class:`StateArrays` (a NamedTuple).
Jitted code receives the very same arrays as one numba StructRef,
:class:`KernelState`: a single pointer. That matters for cross-domain calls,
which pass the kernel state through a function pointer: on this project's
test machine a tuple of ten arrays cost about 31 ns per such call (each
array is passed by value and reference-counted), the StructRef about 4 ns.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba.core import types
from numba.experimental import structref

META_COLUMNS = ("state", "generation", "owner", "type_id", "offset", "size", "size_class",
                "borrows", "borrower", "parent", "child_off", "nchild", "child_type")
NCLASSES = 40   # power-of-two size classes of the heap allocator
MIN_CHUNK = 8   # bytes: the smallest chunk, and the alignment of every object
MAX_CONT = 64   # deepest nesting of jitted cross-domain calls
FIELDS = ("meta", "arena", "words", "ctl", "free_slots", "class_heads", "acct",
          "domains", "conts", "calls", "meta_p", "acct_p", "domains_p", "conts_p", "calls_p",
          "arena_p", "nslots")


class StateArrays(NamedTuple):
    """All kernel state, as numpy arrays (the Python tier's view)."""

    meta: np.ndarray         # (slots, 13) int64: per-object metadata, see META_COLUMNS
    arena: np.ndarray        # uint8: the exchange heap's bytes
    words: np.ndarray        # the same bytes as int64 words (handles inside containers)
    ctl: np.ndarray          # int64[4]: bump pointer, free slots, live objects, live bytes
    free_slots: np.ndarray   # int64 stack of free slot numbers
    class_heads: np.ndarray  # int64[NCLASSES]: first free chunk of each size class
    acct: np.ndarray         # (domains, 2) int64: live objects and bytes per owner id
    domains: np.ndarray      # int64[domains]: UNUSED / ALIVE / CRASHED / TERMINATED
    conts: np.ndarray        # (MAX_CONT, 2) int64: (caller, callee) of each active jitted call
    calls: np.ndarray        # int64[2]: jitted call depth, current domain
    # the data addresses of the hot arrays above, for raw word access (see raw.py)
    meta_p: int
    acct_p: int
    domains_p: int
    conts_p: int
    calls_p: int
    arena_p: int
    nslots: int


@structref.register
class KernelStateType(types.StructRef):
    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(t)) for name, t in fields)


class KernelState(structref.StructRefProxy):
    """The jitted tier's handle on :class:`StateArrays` (same arrays, one pointer)."""

    def __new__(cls, *arrays):
        return structref.StructRefProxy.__new__(cls, *arrays)


structref.define_proxy(KernelState, KernelStateType, list(FIELDS))


def new_state(capacity: int, max_objects: int, max_domains: int):
    """Fresh, empty kernel state: (Python view, jitted handle) over the same arrays."""
    capacity = (capacity + MIN_CHUNK - 1) // MIN_CHUNK * MIN_CHUNK
    arena = np.zeros(capacity, np.uint8)
    meta = np.zeros((max_objects, len(META_COLUMNS)), np.int64)
    meta[:, 1] = 1    # generations start at 1, so handle 0 is never valid
    meta[:, 9] = -1   # no parent
    ctl = np.zeros(4, np.int64)
    ctl[1] = max_objects
    acct, domains = np.zeros((max_domains, 2), np.int64), np.zeros(max_domains, np.int64)
    conts, calls = np.zeros((MAX_CONT, 2), np.int64), np.zeros(2, np.int64)
    arrays = StateArrays(meta, arena, arena.view(np.int64), ctl,
                         np.arange(max_objects - 1, -1, -1, dtype=np.int64),
                         np.full(NCLASSES, -1, np.int64), acct, domains, conts, calls,
                         *(a.ctypes.data for a in (meta, acct, domains, conts, calls, arena)),
                         max_objects)
    return arrays, KernelState(*arrays)
