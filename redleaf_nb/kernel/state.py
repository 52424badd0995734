"""The kernel's shared state: every array that both tiers read and write.

Python code reads the numpy arrays from :class:`StateArrays` (a NamedTuple).
Jitted code receives the kernel as one integer, ``k``: the address of a small
*descriptor* of int64 words holding the arrays' data addresses and sizes
(``D_META`` ... below). Kernels read and write through those addresses
(lowlevel/memory.py), or view them as arrays that Numba does not reference-count
(``numba.carray``). Passing a plain integer matters for cross-domain calls:
every Numba-managed object handed to a proxy costs atomic reference-count
updates on each call (measured: a tuple of ten arrays ~31 ns a call, one
StructRef still ~100 cycles on the RRef path), an integer costs nothing.
The arrays stay alive because the Python side owns them for as long as the
kernel lives.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

META_COLUMNS = ("state", "generation", "owner", "type_id", "offset", "size", "size_class",
                "borrows", "borrower", "parent", "child_off", "nchild", "child_type")
NCLASSES = 40   # power-of-two size classes of the heap allocator
MIN_CHUNK = 8   # bytes: the smallest chunk, and the alignment of every object
MAX_CONT = 64   # deepest nesting of jitted cross-domain calls
MAX_RES = 24    # memory regions the kernel can grant one domain (its state is the first)
RES_WORDS = 4   # a grant: data address, rows, columns (0: one-dimensional), item size

# descriptor words: data addresses, then sizes
D_META, D_DOMAINS, D_CONTS, D_CALLS, D_ARENA, D_CTL, D_FREE, D_CLASSES, \
    D_NSLOTS, D_ARENA_BYTES, D_NDOMAINS, D_GRANTS, D_CHUNK_SLOTS, D_FAULTS, D_TICKS = range(15)
# the `calls` words themselves (depth, current domain) live in the descriptor, right after
# its addresses and sizes: the running domain is one load from ``k`` (every heap check
# and the domain API ask for it)
D_CALL_WORDS = 15
MAX_TICKS = 8     # devices that run beside the CPU while a domain waits (kernel/views.py)
FAULT_WORDS = 16  # a domain's row of the fault table (kernel/faults.py)


class StateArrays(NamedTuple):
    """All kernel state, as numpy arrays (the Python tier's view)."""

    meta: np.ndarray         # (slots, 13) int64: per-object metadata, see META_COLUMNS
    arena: np.ndarray        # uint8: the exchange heap's bytes
    words: np.ndarray        # the same bytes as int64 words (handles inside containers)
    ctl: np.ndarray          # int64[4]: bump pointer, free slots, live objects, live bytes
    free_slots: np.ndarray   # int64 stack of free slot numbers
    class_heads: np.ndarray  # int64[NCLASSES]: first free chunk of each size class
    domains: np.ndarray      # int64[domains]: UNUSED / ALIVE / CRASHED / TERMINATED
    conts: np.ndarray        # (MAX_CONT, 2) int64: (caller, callee) of each active jitted call
    calls: np.ndarray        # int64[2]: jitted call depth, current domain (in the descriptor)
    grants: np.ndarray       # (domains, MAX_RES, RES_WORDS) int64: the memory each domain was
                             # granted (kernel/views.py); domains never see this table
    chunk_slots: np.ndarray  # int32 per MIN_CHUNK of the arena: 1 + the slot of the object
                             # allocated there (0: none yet); the IOMMU's address -> object map
    faults: np.ndarray       # (domains, FAULT_WORDS) int64: the fault armed in each domain
                             # (kernel/faults.py); word 0 is 0 while none is
    ticks: np.ndarray        # (MAX_TICKS, 2) int64: a device's step (a C function's address)
                             # and its register file's address; 0: none
    descriptor: np.ndarray   # int64 words: the addresses and sizes above (see D_*), then calls


def new_state(capacity: int, max_objects: int, max_domains: int):
    """Fresh, empty kernel state: (Python view, the jitted tier's integer ``k``)."""
    capacity = (capacity + MIN_CHUNK - 1) // MIN_CHUNK * MIN_CHUNK
    arena = np.zeros(capacity, np.uint8)
    meta = np.zeros((max_objects, len(META_COLUMNS)), np.int64)
    meta[:, 1] = 1    # generations start at 1, so handle 0 is never valid
    meta[:, 9] = -1   # no parent
    ctl = np.zeros(4, np.int64)
    ctl[1] = max_objects
    domains = np.zeros(max_domains, np.int64)
    conts = np.zeros((MAX_CONT, 2), np.int64)
    grants = np.zeros((max_domains, MAX_RES, RES_WORDS), np.int64)
    chunk_slots = np.zeros(capacity // MIN_CHUNK, np.int32)
    faults = np.zeros((max_domains, FAULT_WORDS), np.int64)
    ticks = np.zeros((MAX_TICKS, 2), np.int64)
    free_slots = np.arange(max_objects - 1, -1, -1, dtype=np.int64)
    class_heads = np.full(NCLASSES, -1, np.int64)
    descriptor = np.zeros(D_CALL_WORDS + 2, np.int64)
    calls = descriptor[D_CALL_WORDS:]        # a view: jitted code and Python share the words
    descriptor[:D_CALL_WORDS] = ([a.ctypes.data for a in (meta, domains, conts, calls, arena, ctl,
                                                          free_slots, class_heads)]
                                 + [max_objects, capacity, max_domains, grants.ctypes.data,
                                    chunk_slots.ctypes.data, faults.ctypes.data,
                                    ticks.ctypes.data])
    arrays = StateArrays(meta, arena, arena.view(np.int64), ctl, free_slots, class_heads, domains,
                         conts, calls, grants, chunk_slots, faults, ticks, descriptor)
    return arrays, int(descriptor.ctypes.data)
