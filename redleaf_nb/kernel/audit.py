"""The isolation audit: is the exchange heap whole, and does only the living own it?

:meth:`~redleaf_nb.kernel.heap.ExchangeHeap.check_invariants` says the same in
Python, readably, for tests; it takes milliseconds. The fault campaign asks
after every injected fault, thousands of times a second, so this is one jitted
scan of the metadata (about 10 µs for 4096 slots). At a quiet moment (no call in
progress) every live object must be owned by a live domain or held by exactly
one live container, lent to nobody; the counters must match what is live; no
slot may be both free and live; every handle a container holds must be current.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from . import heap as hp
from .proxy import jit_alive

OK, COUNTERS, SLOTS, FREE_AND_LIVE, NO_OWNER, DEAD_OWNER, LENT, STALE_CHILD, ORPHAN = range(9)
PROBLEMS = {COUNTERS: "the live-object or live-byte counter drifted",
            SLOTS: "slots are lost or double-counted",
            FREE_AND_LIVE: "a slot is both free and live",
            NO_OWNER: "a live object has no owner",
            DEAD_OWNER: "a live object is owned by a dead domain (leaked: not reclaimed)",
            LENT: "an object is still lent with no call in progress (dangling borrow)",
            STALE_CHILD: "a container holds a stale handle, or a child's parent disagrees",
            ORPHAN: "a contained object is orphaned or held twice"}


@njit(cache=True)
def audit(k):
    """0 if the heap is whole and only live domains own it, else the first problem found
    (a key of :data:`PROBLEMS`)."""
    m, ctl, free = hp.meta_of(k), hp.ctl_of(k), hp.free_of(k)
    words = hp.words_of(k)
    n = m.shape[0]
    live = nbytes = contained = 0
    held = np.zeros(n, np.int8)
    for s in range(n):
        if m[s, hp.STATE] != hp.LIVE:
            continue
        live += 1
        nbytes += m[s, hp.SIZE]
        owner = m[s, hp.OWNER]
        if owner == hp.CONTAINED:
            contained += 1
        elif owner < 0:
            return NO_OWNER
        elif not jit_alive(k, owner):
            return DEAD_OWNER
        if m[s, hp.BORROWS] != 0:
            return LENT
        nchild = m[s, hp.NCHILD]
        if nchild > 0:
            base = (m[s, hp.OFFSET] + m[s, hp.CHILD_OFF]) >> 3
            for i in range(nchild):
                w = words[base + i]
                if w != 0:
                    c = hp.slot_of(k, w)
                    if c < 0 or m[c, hp.PARENT] != s or m[c, hp.OWNER] != hp.CONTAINED:
                        return STALE_CHILD
                    held[c] += 1
    if live != ctl[hp.LIVE_OBJECTS] or nbytes != ctl[hp.LIVE_BYTES]:
        return COUNTERS
    if ctl[hp.FREE_TOP] + live != n:
        return SLOTS
    for i in range(ctl[hp.FREE_TOP]):
        if m[free[i], hp.STATE] == hp.LIVE:
            return FREE_AND_LIVE
    total = 0
    for s in range(n):
        if held[s] > 1:
            return ORPHAN
        total += held[s]
    return OK if total == contained else ORPHAN


def problem(k: int) -> str | None:
    """What :func:`audit` found, in words (None: nothing)."""
    code = audit(k)
    return None if code == OK else PROBLEMS[code]


__all__ = ["audit", "problem", "PROBLEMS"]
