"""The exchange heap: one numpy arena plus per-slot metadata, with jitted ops.

Every object shared between domains lives here. Its metadata (owner domain,
generation, type, size, borrows, ...) is kept out of line in ``meta``, as in
RedLeaf's kernel heap, so that moving ownership is a metadata write and
reclaiming a crashed domain is one scan of ``meta``.

A *handle* is one int64: ``(generation << 32) | slot``. Freeing or moving an
object bumps its generation, so every older handle becomes stale and is
refused. Handle 0 is never valid (generations start at 1): it means "none".

The ``@njit`` kernels below are the only code that changes heap state; the
Python tier (:class:`ExchangeHeap`, :mod:`rref`) calls the very same kernels
and turns their negative error codes into rich exceptions. Memory comes from
power-of-two size classes with a free list each, carved from a bump pointer:
O(1) alloc and free; memory freed in one class is reused by that class only.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from numba import carray, njit

from ..lowlevel.memory import itemsize, load, pointer, ring_next, store
from .state import (D_ARENA, D_ARENA_BYTES, D_CHUNK_SLOTS, D_CLASSES, D_CTL, D_FREE,
                    D_META, D_NSLOTS, META_COLUMNS, MIN_CHUNK, NCLASSES, new_state)
from .types import ExType, HeapType, RRefType, Scalar

# meta columns
STATE, GEN, OWNER, TYPE, OFFSET, SIZE, SCLASS, BORROWS, BORROWER, PARENT, \
    CHILD_OFF, NCHILD, CHILD_TYPE = range(len(META_COLUMNS))
NMETA = len(META_COLUMNS)
FREE, LIVE = 0, 1
# ctl words
BUMP, FREE_TOP, LIVE_OBJECTS, LIVE_BYTES = range(4)
# owner id of an object held inside a container (RedLeaf uses domain id 0 too)
CONTAINED = 0
SLOT_MASK = 0xFFFFFFFF

# error codes returned by the kernels (all negative)
E_STALE, E_FOREIGN, E_EXHAUSTED, E_NO_SLOTS, E_BORROWED, E_NOT_BORROWED, \
    E_FULL, E_INDEX, E_TYPE, E_READONLY = range(-1, -11, -1)


# --- the kernel's arrays, seen from jitted code ----------------------------------
# ``h`` is the kernel descriptor's address (state.py). These views are
# ``numba.carray`` s over the arrays' data: Numba does not reference-count them.

@njit(cache=True, inline="always")
def meta_of(h):
    return carray(pointer(load(h, D_META), np.int64), (load(h, D_NSLOTS), NMETA))


@njit(cache=True, inline="always")
def words_of(h):
    return carray(pointer(load(h, D_ARENA), np.int64), load(h, D_ARENA_BYTES) >> 3)


@njit(cache=True, inline="always")
def arena_of(h):
    return carray(pointer(load(h, D_ARENA), np.uint8), load(h, D_ARENA_BYTES))


@njit(cache=True, inline="always")
def ctl_of(h):
    return carray(pointer(load(h, D_CTL), np.int64), 4)


@njit(cache=True, inline="always")
def free_of(h):
    return carray(pointer(load(h, D_FREE), np.int64), load(h, D_NSLOTS))


@njit(cache=True, inline="always")
def classes_of(h):
    return carray(pointer(load(h, D_CLASSES), np.int64), NCLASSES)


@njit(cache=True, inline="always")
def chunk_slots_of(h):
    return carray(pointer(load(h, D_CHUNK_SLOTS), np.int32), load(h, D_ARENA_BYTES) // MIN_CHUNK)


# --- jitted kernels ----------------------------------------------------------

@njit(cache=True, inline="always")
def make_handle(slot, gen):
    return (gen << 32) | slot


# The hot kernels (access checks, moves, borrows) read and write the metadata
# as raw words through its base address (lowlevel/memory.py) and take that address as a
# plain integer, so that nothing in a proxy's path is reference-counted. The
# ``h``-level functions below them only look the addresses up.

@njit(cache=True, inline="always")
def mget(mp, slot, col):
    return load(mp, slot * NMETA + col)


@njit(cache=True, inline="always")
def mset(mp, slot, col, value):
    store(mp, slot * NMETA + col, value)


@njit(cache=True, inline="always")
def _slot(mp, nslots, handle):
    slot = handle & SLOT_MASK
    live = (handle > 0 and slot < nslots and mget(mp, slot, STATE) == LIVE
            and mget(mp, slot, GEN) == handle >> 32)
    return slot if live else E_STALE


@njit(cache=True, inline="always")
def _read(mp, nslots, handle, caller):
    slot = _slot(mp, nslots, handle)
    if slot >= 0 and mget(mp, slot, OWNER) != caller and not (
            mget(mp, slot, BORROWS) > 0 and mget(mp, slot, BORROWER) == caller):
        slot = E_FOREIGN
    return slot


@njit(cache=True, inline="always")
def _write(mp, nslots, handle, caller):
    slot = _slot(mp, nslots, handle)
    if slot >= 0:
        if mget(mp, slot, OWNER) != caller:
            lent_to_caller = mget(mp, slot, BORROWS) > 0 and mget(mp, slot, BORROWER) == caller
            slot = E_READONLY if lent_to_caller else E_FOREIGN
        elif mget(mp, slot, BORROWS) > 0:
            slot = E_BORROWED
    return slot


@njit(cache=True, inline="always")
def slot_of(h, handle):
    """The slot a live handle names, or E_STALE."""
    return _slot(load(h, D_META), load(h, D_NSLOTS), handle)


@njit(cache=True, inline="always")
def check_read(h, handle, caller):
    """Slot, if ``caller`` owns the object or currently borrows it."""
    return _read(load(h, D_META), load(h, D_NSLOTS), handle, caller)


@njit(cache=True, inline="always")
def check_write(h, handle, caller):
    """Slot, if ``caller`` owns the object and has not lent it out."""
    return _write(load(h, D_META), load(h, D_NSLOTS), handle, caller)


@njit(cache=True)
def size_class(size):
    c = 0
    while (MIN_CHUNK << c) < size:
        c += 1
    return c


@njit(cache=True)
def alloc(h, owner, type_id, size, child_off, nchild, child_type):
    """Allocate a zeroed object owned by ``owner``; its handle, or an error."""
    if ctl_of(h)[FREE_TOP] == 0:
        return E_NO_SLOTS
    c = size_class(size)
    off = classes_of(h)[c]
    if off >= 0:
        classes_of(h)[c] = words_of(h)[off >> 3]
    else:
        off = ctl_of(h)[BUMP]
        if off + (MIN_CHUNK << c) > arena_of(h).shape[0]:
            return E_EXHAUSTED
        ctl_of(h)[BUMP] = off + (MIN_CHUNK << c)
    ctl_of(h)[FREE_TOP] -= 1
    slot = free_of(h)[ctl_of(h)[FREE_TOP]]
    arena_of(h)[off:off + max(size, MIN_CHUNK)] = 0
    m = meta_of(h)
    m[slot, STATE] = LIVE
    m[slot, OWNER] = owner
    m[slot, TYPE] = type_id
    m[slot, OFFSET] = off
    m[slot, SIZE] = size
    m[slot, SCLASS] = c
    m[slot, BORROWS] = 0
    m[slot, BORROWER] = 0
    m[slot, PARENT] = -1
    m[slot, CHILD_OFF] = child_off
    m[slot, NCHILD] = nchild
    m[slot, CHILD_TYPE] = child_type
    chunk_slots_of(h)[off // MIN_CHUNK] = slot + 1   # where the object starts (the IOMMU's map)
    ctl_of(h)[LIVE_OBJECTS] += 1
    ctl_of(h)[LIVE_BYTES] += size
    return make_handle(slot, m[slot, GEN])


@njit(cache=True)
def _alloc_many(h, owner, type_id, size, out):
    """Fill ``out`` with new plain objects; how many were made (an error code is left
    in ``out`` where it stopped)."""
    for i in range(out.shape[0]):
        r = alloc(h, owner, type_id, size, 0, 0, -1)
        out[i] = r
        if r < 0:
            return i
    return out.shape[0]


@njit(cache=True, inline="always")
def _bump_generation(mp, slot):
    g = mget(mp, slot, GEN) + 1
    g = 1 if g >= (1 << 31) else g
    mset(mp, slot, GEN, g)
    return make_handle(slot, g)


@njit(cache=True, inline="always")
def _transfer(mp, slot, new_owner):
    """Give ``slot`` to ``new_owner``; return its new handle (the old one goes stale).

    Only the owner word changes: as in RedLeaf, what a domain owns is found by
    scanning the owner column (:meth:`ExchangeHeap.accounting`, reclaim), not
    kept in per-domain counters, so a move stays a handful of memory ops.
    """
    mset(mp, slot, OWNER, new_owner)
    return _bump_generation(mp, slot)


@njit(cache=True)
def _release_slot(h, slot):
    m = meta_of(h)
    off = m[slot, OFFSET]
    c = m[slot, SCLASS]
    words_of(h)[off >> 3] = classes_of(h)[c]
    classes_of(h)[c] = off
    ctl_of(h)[LIVE_OBJECTS] -= 1
    ctl_of(h)[LIVE_BYTES] -= m[slot, SIZE]
    m[slot, STATE] = FREE
    m[slot, BORROWS] = 0
    m[slot, PARENT] = -1
    _bump_generation(load(h, D_META), slot)
    free_of(h)[ctl_of(h)[FREE_TOP]] = slot
    ctl_of(h)[FREE_TOP] += 1


@njit(cache=True)
def _child_base(h, slot):
    return (meta_of(h)[slot, OFFSET] + meta_of(h)[slot, CHILD_OFF]) >> 3


@njit(cache=True)
def _free_tree(h, slot):
    """Free an object and the RRefs it holds (RedLeaf's recursive drop)."""
    base = _child_base(h, slot)
    for i in range(meta_of(h)[slot, NCHILD]):
        child = words_of(h)[base + i]
        if child != 0:
            _release_slot(h, child & SLOT_MASK)
    _release_slot(h, slot)


@njit(cache=True)
def free(h, handle, caller):
    """Drop an object ``caller`` owns (and its contents); 0 or an error."""
    slot = check_write(h, handle, caller)
    if slot < 0:
        return slot
    _free_tree(h, slot)
    return 0


@njit(cache=True, inline="always")
def _move(mp, nslots, handle, caller, new_owner):
    out = _write(mp, nslots, handle, caller)
    if out >= 0:
        out = _transfer(mp, out, new_owner)
    return out


@njit(cache=True, inline="always")
def move(h, handle, caller, new_owner):
    """Give an object to ``new_owner``; the new handle (the old one goes stale)."""
    return _move(load(h, D_META), load(h, D_NSLOTS), handle, caller, new_owner)


@njit(cache=True, inline="always")
def give(h, slot, new_owner):
    """``move`` for a slot its caller has already checked (``check_write``)."""
    return _transfer(load(h, D_META), slot, new_owner)


@njit(cache=True, inline="always")
def _lend(mp, slot, borrower):
    prev = mget(mp, slot, BORROWER)
    mset(mp, slot, BORROWS, mget(mp, slot, BORROWS) + 1)
    mset(mp, slot, BORROWER, borrower)
    return prev


@njit(cache=True, inline="always")
def lend(h, slot, borrower):
    """``borrow`` for a slot its caller has already checked (``check_read``)."""
    return _lend(load(h, D_META), slot, borrower)


@njit(cache=True, inline="always")
def _borrow(mp, nslots, handle, caller, borrower):
    out = _read(mp, nslots, handle, caller)
    if out >= 0:
        out = _lend(mp, out, borrower)
    return out


@njit(cache=True, inline="always")
def borrow(h, handle, caller, borrower):
    """Lend an object to ``borrower``; returns the previous borrower (0: none)."""
    return _borrow(load(h, D_META), load(h, D_NSLOTS), handle, caller, borrower)


@njit(cache=True, inline="always")
def _release(mp, nslots, handle, prev_borrower):
    out = _slot(mp, nslots, handle)
    if out >= 0:
        slot = out
        out = E_NOT_BORROWED
        if mget(mp, slot, BORROWS) > 0:
            mset(mp, slot, BORROWS, mget(mp, slot, BORROWS) - 1)
            mset(mp, slot, BORROWER, prev_borrower)
            out = 0
    return out


@njit(cache=True, inline="always")
def release(h, handle, prev_borrower):
    """End a borrow, restoring the previous borrower; 0 or an error.

    A handle gone stale meanwhile (its owner crashed and was reclaimed) is
    reported, not fatal: the proxy that lent it ignores that case.
    """
    return _release(load(h, D_META), load(h, D_NSLOTS), handle, prev_borrower)


@njit(cache=True)
def reclaim(h, domain):
    """Free every object ``domain`` owns (and their contents); how many."""
    n = 0
    for slot in range(meta_of(h).shape[0]):
        if meta_of(h)[slot, STATE] == LIVE and meta_of(h)[slot, OWNER] == domain:
            n += 1 + _live_children(h, slot)
            _free_tree(h, slot)
    return n


@njit(cache=True)
def _live_children(h, slot):
    base = _child_base(h, slot)
    n = 0
    for i in range(meta_of(h)[slot, NCHILD]):
        if words_of(h)[base + i] != 0:
            n += 1
    return n


# --- containers: RRefArray and RRefDeque -------------------------------------

@njit(cache=True)
def _check_child(h, container, child, caller):
    """The slot of ``child`` if ``caller`` may put it into ``container``, or an error."""
    cslot = check_write(h, child, caller)
    if cslot < 0:
        return cslot
    if meta_of(h)[cslot, TYPE] != meta_of(h)[container, CHILD_TYPE]:
        return E_TYPE
    return cslot


@njit(cache=True)
def _adopt(h, container, cslot):
    """Move a checked child into ``container``; the handle to store."""
    meta_of(h)[cslot, PARENT] = container
    return _transfer(load(h, D_META), cslot, CONTAINED)


@njit(cache=True)
def _disown(h, child, caller):
    """Take a stored child out of its container, for ``caller``."""
    cslot = child & SLOT_MASK
    meta_of(h)[cslot, PARENT] = -1
    return _transfer(load(h, D_META), cslot, caller)


@njit(cache=True)
def _array_word(h, arr, caller, i, write):
    """The heap word of slot ``i`` of an RRefArray, or an error."""
    slot = check_write(h, arr, caller) if write else check_read(h, arr, caller)
    if slot < 0:
        return slot
    if i < 0 or i >= meta_of(h)[slot, NCHILD]:
        return E_INDEX
    return _child_base(h, slot) + i


@njit(cache=True)
def array_put(h, arr, caller, i, child):
    """Store ``child`` at ``i``; returns the child it replaced (now the caller's) or 0."""
    w = _array_word(h, arr, caller, i, True)
    if w < 0:
        return w
    cslot = _check_child(h, arr & SLOT_MASK, child, caller)
    if cslot < 0:
        return cslot
    stored = _adopt(h, arr & SLOT_MASK, cslot)
    old = words_of(h)[w]
    words_of(h)[w] = stored
    return _disown(h, old, caller) if old != 0 else 0


@njit(cache=True)
def array_take(h, arr, caller, i):
    """Take the child at ``i`` (now the caller's); 0 if the slot is empty."""
    w = _array_word(h, arr, caller, i, True)
    if w < 0:
        return w
    old = words_of(h)[w]
    words_of(h)[w] = 0
    return _disown(h, old, caller) if old != 0 else 0


@njit(cache=True)
def array_peek(h, arr, caller, i):
    """The stored handle at ``i`` (0 if empty), for reading in place."""
    w = _array_word(h, arr, caller, i, False)
    return w if w < 0 else words_of(h)[w]


@njit(cache=True)
def deque_len(h, dq, caller):
    slot = check_read(h, dq, caller)
    if slot < 0:
        return slot
    return words_of(h)[(meta_of(h)[slot, OFFSET] >> 3) + 2]


@njit(cache=True)
def deque_push_back(h, dq, caller, child):
    """Append ``child``; 0, or E_FULL (the caller keeps the child)."""
    slot = check_write(h, dq, caller)
    if slot < 0:
        return slot
    cslot = _check_child(h, slot, child, caller)
    if cslot < 0:
        return cslot
    hdr = meta_of(h)[slot, OFFSET] >> 3
    n = meta_of(h)[slot, NCHILD]
    if words_of(h)[hdr + 2] == n:
        return E_FULL
    stored = _adopt(h, slot, cslot)
    head = words_of(h)[hdr]
    words_of(h)[_child_base(h, slot) + head] = stored
    words_of(h)[hdr] = ring_next(head, n)
    words_of(h)[hdr + 2] += 1
    return 0


@njit(cache=True)
def deque_pop_front(h, dq, caller):
    """Remove the oldest child (now the caller's); 0 if empty."""
    slot = check_write(h, dq, caller)
    if slot < 0:
        return slot
    hdr = meta_of(h)[slot, OFFSET] >> 3
    if words_of(h)[hdr + 2] == 0:
        return 0
    tail = words_of(h)[hdr + 1]
    w = _child_base(h, slot) + tail
    child = words_of(h)[w]
    words_of(h)[w] = 0
    words_of(h)[hdr + 1] = ring_next(tail, meta_of(h)[slot, NCHILD])
    words_of(h)[hdr + 2] -= 1
    return _disown(h, child, caller)


@njit(cache=True, inline="always")
def _object_view(h, slot, dtype):
    """(address, value as an array of ``dtype``, its size rounded down to whole items) of
    the object in ``slot``, which the caller has checked."""
    mp = load(h, D_META)
    address = load(h, D_ARENA) + mget(mp, slot, OFFSET)
    return address, carray(pointer(address, dtype), mget(mp, slot, SIZE) // itemsize(dtype))


@njit(cache=True, inline="always")
def deque_pop_front_dma(h, dq, caller, dtype):
    """:func:`deque_pop_front`, with the object's (address, value as ``dtype``) as
    :func:`addressed_view` gives them, without checking the object again: it was the
    deque's, so it is live and now the caller's. (0, 0, empty) when the deque is empty;
    a refused pop is a panic."""
    child = deque_pop_front(h, dq, caller)
    if child < 0:
        _bad_access()
    if child == 0:
        return child, 0, carray(pointer(load(h, D_ARENA), dtype), 0)
    address, view = _object_view(h, child & SLOT_MASK, dtype)
    return child, address, view


@njit(cache=True)
def deque_splice(h, src, dst, caller, most):
    """Move up to ``most`` children from the front of ``src`` to the back of ``dst``
    (both the caller's, same child type); how many moved. The children stay
    contained throughout, so only their parent changes: a batch moves for the
    price of two container checks (nullnet's return path, buffer recycling)."""
    s, d = check_write(h, src, caller), check_write(h, dst, caller)
    if s < 0:
        return s
    if d < 0:
        return d
    m, w = meta_of(h), words_of(h)
    if m[s, CHILD_TYPE] != m[d, CHILD_TYPE] or s == d:
        return E_TYPE
    sh, dh = m[s, OFFSET] >> 3, m[d, OFFSET] >> 3
    sn, dn = m[s, NCHILD], m[d, NCHILD]
    sb, db = _child_base(h, s), _child_base(h, d)
    k = min(most, w[sh + 2], dn - w[dh + 2])
    tail, head = w[sh + 1], w[dh]   # kept in registers: written back once, below
    for _ in range(k):
        child = w[sb + tail]
        w[sb + tail] = 0
        m[child & SLOT_MASK, PARENT] = d
        w[db + head] = child
        tail = ring_next(tail, sn)
        head = ring_next(head, dn)
    w[sh + 1], w[dh] = tail, head
    w[sh + 2] -= k
    w[dh + 2] += k
    return k


@njit(cache=True)
def deque_peek(h, dq, caller, i):
    """The handle stored ``i``-th from the oldest (negative ``i``: from the newest),
    for reading in place: the item stays in the deque, owned by it. The caller
    must own or borrow the deque; E_INDEX if ``i`` is out of range."""
    slot = check_read(h, dq, caller)
    if slot < 0:
        return slot
    hdr = meta_of(h)[slot, OFFSET] >> 3
    n = words_of(h)[hdr + 2]
    j = i + n if i < 0 else i
    if j < 0 or j >= n:
        return E_INDEX
    at = (words_of(h)[hdr + 1] + j) % meta_of(h)[slot, NCHILD]   # from the tail (oldest)
    return words_of(h)[_child_base(h, slot) + at]


@njit(cache=True)
def _bad_item():
    raise IndexError("deque item: no such item (index out of range), or the deque is not "
                     "the caller's to write")


@njit(cache=True, inline="always")
def deque_item_view(h, dq, caller, i, dtype):
    """Item ``i`` (from the oldest) of a deque ``caller`` owns and has not lent, as a
    writable array of ``dtype``, in place (Rust's ``iter_mut``): who owns a container
    owns what it holds, and a contained item is live with the container as its parent
    (the heap's invariant), so one check of the container covers the item. A bad deque
    or index is a panic."""
    mp = load(h, D_META)
    slot = _write(mp, load(h, D_NSLOTS), dq, caller)
    if slot < 0:
        _bad_item()
    arena = load(h, D_ARENA)
    hdr = mget(mp, slot, OFFSET) >> 3
    if i < 0 or i >= load(arena, hdr + 2):
        _bad_item()
    at = load(arena, hdr + 1) + i      # from the tail (the oldest)
    if at >= mget(mp, slot, NCHILD):
        at -= mget(mp, slot, NCHILD)
    child = load(arena, _child_base(h, slot) + at)
    return _object_view(h, child & SLOT_MASK, dtype)[1]


@njit(cache=True, inline="always")
def contained_slot(h, parent, child, caller):
    """The slot of ``child`` if it is still held by the container ``parent`` and
    ``caller`` owns or borrows ``parent``: an item read in place, through its container.
    E_STALE once the item left the container (popped, taken, freed or spliced away)."""
    p = check_read(h, parent, caller)
    if p < 0:
        return p
    c = slot_of(h, child)
    if c >= 0 and meta_of(h)[c, PARENT] != p:
        c = E_STALE
    return c


@njit(cache=True, inline="always")
def contained_view(h, parent, child, caller):
    """An item's bytes, read in place through its container, for jitted domain
    code (see :func:`deque_peek`); a bad access is a panic."""
    slot = contained_slot(h, parent, child, caller)
    if slot < 0:
        raise ValueError("bad contained RRef access (container not readable by the caller, "
                         "or the item left it)")
    off = meta_of(h)[slot, OFFSET]
    return arena_of(h)[off:off + meta_of(h)[slot, SIZE]]


@njit(cache=True)
def _bad_access():
    """A panic kept out of line (a ``raise`` inlined into a hot path costs every call)."""
    raise ValueError("bad RRef access (stale, foreign or lent handle)")


@njit(cache=True, inline="always")
def addressed_view(h, handle, caller, write, dtype):
    """(address, view): an object's value as an array of ``dtype`` (its size rounded
    down to whole items) and where it is, for jitted domain code (the address only
    to hand a device); a bad handle is a panic."""
    mp, n = load(h, D_META), load(h, D_NSLOTS)
    slot = _write(mp, n, handle, caller) if write else _read(mp, n, handle, caller)
    if slot < 0:
        _bad_access()
    return _object_view(h, slot, dtype)


@njit(cache=True, inline="always")
def _word_address(mp, nslots, arena_p, handle, caller, write):
    slot = _write(mp, nslots, handle, caller) if write else _read(mp, nslots, handle, caller)
    if slot < 0:
        raise ValueError("bad RRef access (stale, foreign or lent handle)")
    return arena_p + mget(mp, slot, OFFSET)


@njit(cache=True, inline="always")
def word_address(h, handle, caller, write):
    """The address of an object's first 8-byte word, for raw access (lowlevel/memory.py):
    the cheapest way for jitted domain code to use a small RRef. A bad
    handle is a panic."""
    return _word_address(load(h, D_META), load(h, D_NSLOTS), load(h, D_ARENA), handle, caller,
                         write)


# --- the Python tier ---------------------------------------------------------

class HeapError(Exception):
    """A refused heap operation."""


class HeapExhausted(HeapError, MemoryError):
    """The exchange heap has no room (bytes or object slots) for an allocation."""


class StaleRRef(HeapError):
    """A handle used after its object was freed or moved."""


class ForeignRRef(HeapError):
    """A handle used by a domain that neither owns nor borrows its object."""


class BorrowError(HeapError):
    """Writing, moving or freeing an object while it is lent out (or read-only)."""


class ContainerError(HeapError):
    """A bad RRefArray/RRefDeque operation: wrong child type or index."""


class HeapCorrupted(HeapError):
    """The heap's bookkeeping is inconsistent (raised by ``check_invariants``, even under -O)."""


_ERRORS = {
    E_STALE: (StaleRRef, "is stale: its object was freed or moved"),
    E_FOREIGN: (ForeignRRef, "is not owned or borrowed by the caller"),
    E_BORROWED: (BorrowError, "is lent out: it cannot be written, moved or freed until the "
                              "borrow ends"),
    E_READONLY: (BorrowError, "is only borrowed by the caller: borrowed objects are read-only"),
    E_NOT_BORROWED: (BorrowError, "is not borrowed"),
    E_INDEX: (ContainerError, "index out of range"),
    E_TYPE: (ContainerError, "holds children of another type"),
}


class ExchangeHeap:
    """The Python tier of the exchange heap: typed allocation and rich errors.

    ``names`` maps domain ids to names for messages and accounting.
    """

    def __init__(self, capacity: int = 64 << 20, max_objects: int = 1 << 16,
                 max_domains: int = 256):
        if capacity < MIN_CHUNK or max_objects < 1 or max_domains < 2:
            raise ValueError("capacity must be >= 8 bytes, max_objects >= 1, max_domains >= 2")
        self.h, self.k = new_state(capacity, max_objects, max_domains)
        # the same memory, seen so that reading one word from Python is cheap
        self._meta_words = memoryview(self.h.meta).cast("B").cast("q")
        self._scalar_arenas: dict[Scalar, np.ndarray] = {}
        self.names: dict[int, str] = {CONTAINED: "(in a container)"}
        self._types: list[HeapType] = []
        self._type_ids: dict[HeapType, int] = {}

    # -- types --
    def type_id(self, t: HeapType) -> int:
        """The heap's id for a heap type (registered on first use)."""
        tid = self._type_ids.get(t)
        if tid is None:
            if t.child is not None:
                self.type_id(t.child)
            tid = self._type_ids[t] = len(self._types)
            self._types.append(t)
        return tid

    def type_of(self, tid: int) -> HeapType:
        return self._types[tid]

    # -- errors --
    def describe(self, handle: int) -> str:
        slot, gen = handle & SLOT_MASK, handle >> 32
        text = f"handle {handle:#x} (slot {slot}, generation {gen}"
        if slot_of(self.k, handle) < 0:
            return text + ")"
        owner = int(self.h.meta[slot, OWNER])
        return (text + f", {self.type_of(int(self.h.meta[slot, TYPE])).name}, owner "
                f"'{self.names.get(owner, owner)}')")

    def check(self, code: int, handle: int, caller: int, op: str) -> int:
        """Raise the rich error for a negative kernel result; else return it."""
        if code >= 0:
            return code
        who = self.names.get(caller, caller)
        if code == E_EXHAUSTED:
            raise HeapExhausted(f"{op}: exchange heap exhausted ({self.capacity} bytes, "
                                f"{self.live_bytes} live, {self.arena_used} carved) for caller '{who}'")
        if code == E_NO_SLOTS:
            raise HeapExhausted(f"{op}: exchange heap has no free object slots "
                                f"({self.h.meta.shape[0]} objects live) for caller '{who}'")
        cls, what = _ERRORS[code]
        raise cls(f"{op}: {self.describe(handle)} {what} (caller '{who}')")

    # -- operations (caller ids are domain ids) --
    def move(self, handle: int, caller: int, new_owner: int, op: str = "move") -> int:
        """Give ``caller``'s object to ``new_owner`` (checked by the kernel); the new handle."""
        new = move(self.k, handle, caller, new_owner)
        return new if new >= 0 else self.check(new, handle, caller, op)

    def borrow(self, handle: int, caller: int, borrower: int, op: str = "lend") -> int:
        """Lend an object ``caller`` owns or borrows to ``borrower``; the previous borrower."""
        prev = borrow(self.k, handle, caller, borrower)
        return prev if prev >= 0 else self.check(prev, handle, caller, op)

    def alloc(self, t: HeapType, owner: int) -> int:
        child = self.type_id(t.child) if t.child is not None else -1
        h = alloc(self.k, owner, self.type_id(t), t.nbytes, t.child_off, t.nchild, child)
        return self.check(h, 0, owner, f"alloc {t.name}")

    def alloc_many(self, t: RRefType, owner: int, n: int) -> np.ndarray:
        """``n`` zeroed ``RRef[T]`` objects for ``owner`` in one jitted call (a domain's
        buffers at create time); their handles. All or none: on failure none is kept."""
        out = np.zeros(n, np.int64)
        got = _alloc_many(self.k, owner, self.type_id(t), t.nbytes, out)
        if got < n:
            for h in out[:got]:
                free(self.k, int(h), owner)
            self.check(int(out[got]), 0, owner, f"alloc {n} x {t.name}")
        return out

    def view(self, handle: int, caller: int, write: bool = False) -> np.ndarray:
        """An ``RRef[T]``'s value as a numpy view (0-d for scalars and records).

        The access is checked first: reading needs ownership or a borrow,
        writing needs ownership and no outstanding borrow.
        """
        op = "write" if write else "read"
        slot = self.check((check_write if write else check_read)(self.k, handle, caller),
                          handle, caller, op)
        return self._value(slot, write)

    def read(self, handle: int, caller: int, target: ExType):
        """A copy of an ``RRef[T]``'s value (a numpy scalar, array or record);
        ``caller`` must own or borrow it."""
        slot = check_read(self.k, handle, caller)
        if slot < 0:
            self.check(slot, handle, caller, "read")
        if type(target) is Scalar:
            return self._scalars(target)[self._scalar_index(slot, target)]
        v = self._value(slot, False)
        return v[()].copy() if v.ndim == 0 else v.copy()

    def write(self, handle: int, caller: int, target: ExType, value, where: str) -> None:
        """Overwrite an ``RRef[T]``'s value, type-checked; ``caller`` must own it
        and not have lent it out."""
        slot = check_write(self.k, handle, caller)
        if slot < 0:
            self.check(slot, handle, caller, "write")
        if type(target) is Scalar:
            self._scalars(target)[self._scalar_index(slot, target)] = target.check(value, where)
        else:
            self._value(slot, True)[...] = target.coerce(value, where)

    def _scalars(self, t: Scalar) -> np.ndarray:
        """The arena as an array of ``t`` (objects start on 8-byte boundaries,
        so every scalar object is one aligned element of it)."""
        arr = self._scalar_arenas.get(t)
        if arr is None:
            arena = self.h.arena
            arr = self._scalar_arenas[t] = arena[:arena.shape[0] // 8 * 8].view(t.dtype)
        return arr

    def _scalar_index(self, slot: int, t: Scalar) -> int:
        return self._meta_words[slot * NMETA + OFFSET] // t.dtype.itemsize

    def view_contained(self, parent: int, child: int, caller: int) -> np.ndarray:
        """A read-only view of an ``RRef[T]`` held in the container ``parent``, read in
        place: ``caller`` must own or borrow the container, and the item must still be in it."""
        self.check(check_read(self.k, parent, caller), parent, caller, "read through")
        return self._value(self.check(contained_slot(self.k, parent, child, caller), child,
                                      caller, "read in its container"), False)

    def _value(self, slot: int, write: bool) -> np.ndarray:
        """The value of the (checked) ``RRef[T]`` in ``slot`` as a numpy view."""
        m = self.h.meta[slot]
        t = self.type_of(int(m[TYPE]))
        raw = self.h.arena[m[OFFSET]:m[OFFSET] + m[SIZE]]
        target = t.target
        out = (raw.view(target.elem.dtype).reshape(target.shape) if hasattr(target, "shape")
               else raw.view(target.dtype).reshape(()))
        out.flags.writeable = write
        return out

    # -- inspection --
    @property
    def capacity(self) -> int:
        return int(self.h.arena.shape[0])

    @property
    def live_objects(self) -> int:
        return int(self.h.ctl[LIVE_OBJECTS])

    @property
    def live_bytes(self) -> int:
        return int(self.h.ctl[LIVE_BYTES])

    @property
    def arena_used(self) -> int:
        return int(self.h.ctl[BUMP])

    def objects(self) -> pd.DataFrame:
        """Every live object: slot, owner, type, size, borrows, parent."""
        m = self.h.meta
        live = np.flatnonzero(m[:, STATE] == LIVE)
        df = pd.DataFrame(m[live], columns=META_COLUMNS).assign(slot=live)
        df["owner_name"] = [self.names.get(int(o), int(o)) for o in df.owner]
        df["type"] = [self.type_of(int(t)).name for t in df.type_id]
        return df[["slot", "generation", "owner", "owner_name", "type", "size", "borrows",
                   "parent"]].reset_index(drop=True)

    def owned(self, owner: int) -> tuple[int, int]:
        """(objects, bytes) that domain ``owner`` owns, found by scanning the owner column."""
        m = self.h.meta
        mine = (m[:, STATE] == LIVE) & (m[:, OWNER] == owner)
        return int(mine.sum()), int(m[mine, SIZE].sum())

    def accounting(self) -> pd.DataFrame:
        """Live objects and bytes per owner (a scan of the metadata, as RedLeaf's reclaim)."""
        m = self.h.meta
        live = m[:, STATE] == LIVE
        owners, index = np.unique(m[live, OWNER], return_inverse=True)  # ids are handles
        objects = np.bincount(index, minlength=len(owners))
        nbytes = np.bincount(index, weights=m[live, SIZE], minlength=len(owners))
        rows = [(self.names.get(int(d), int(d)), int(d), int(n), int(b))
                for d, n, b in zip(owners, objects, nbytes)]
        return pd.DataFrame(rows, columns=["domain", "id", "objects", "bytes"])

    def check_invariants(self) -> None:
        """Raise HeapCorrupted if the heap is inconsistent (used by tests and after crashes).

        Real checks, not ``assert``: ``python -O`` must not turn them off."""
        def check(ok, what: str) -> None:
            if not ok:
                raise HeapCorrupted(f"exchange heap corrupted: {what}")

        m, h = self.h.meta, self.h
        live = m[:, STATE] == LIVE
        check(live.sum() == h.ctl[LIVE_OBJECTS], "live-object counter drifted")
        check(m[live, SIZE].sum() == h.ctl[LIVE_BYTES], "live-byte counter drifted")
        check(h.ctl[FREE_TOP] + live.sum() == m.shape[0], "slots are lost or double-counted")
        free_stack = set(h.free_slots[:h.ctl[FREE_TOP]].tolist())
        check(free_stack.isdisjoint(np.flatnonzero(live).tolist()),
              "a slot is both free and live")
        check((m[live, OWNER] >= 0).all(), "a live object has no owner")
        # every contained object is referenced by exactly one live container word
        held = np.flatnonzero(live & (m[:, OWNER] == CONTAINED))
        refs = {}
        for c in np.flatnonzero(live & (m[:, NCHILD] > 0)):
            base = (m[c, OFFSET] + m[c, CHILD_OFF]) >> 3
            for w in h.words[base:base + m[c, NCHILD]]:
                if w:
                    s = int(w) & SLOT_MASK
                    check(slot_of(self.k, int(w)) == s, "a container holds a stale handle")
                    refs[s] = refs.get(s, 0) + 1
                    check(m[s, PARENT] == c, "a child's parent disagrees with its container")
        check(sorted(refs) == held.tolist() and all(v == 1 for v in refs.values()),
              "a contained object is orphaned or held twice")
