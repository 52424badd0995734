"""What jitted domain code may use to reach memory: typed views trusted code hands it.

RedLeaf's domains are safe Rust: they index only through bounds-checked slices
and never turn an integer into a pointer. Here a domain's jitted code reaches
memory only through this module:

* its own **state**, a record of named, typed fields (:func:`state_type` declares
  one), read as ``st = own_state(k, state, STATE)`` then ``st.rx_next``: ``state``
  is the second argument of every jitted domain function, the domain's own id,
  which its proxy hands it (any other id is a panic);
* the **regions** the kernel granted it (a device's rings and buffers, a RAM
  disk), as arrays of a fixed dtype: ``own_array(k, i, dtype)`` and
  ``own_matrix(k, i, dtype)``;
* **exchange-heap objects** through the heap's checked accessors (``rref_array``), which take no
  caller id: they act as the domain the kernel's own call state says is running.

The address, shape and item size of every view come from the kernel's grant
table (``StateArrays.grants``), which no domain can write, never from the
domain's own mutable state: a bounds check against a length the domain could
overwrite would prove nothing. Domain functions are compiled with bounds
checking (the checker, ``kernel/checker.py``, refuses them otherwise), so an
index out of range raises ``IndexError`` inside the domain: a panic that the
proxy turns into a crash of that one domain.
"""
from __future__ import annotations

import numpy as np
from numba import carray, njit

from . import heap as hp
from .faults import fault_point, fault_value
from .proxy import jit_alive, jit_current
from .state import D_GRANTS, D_TICKS, MAX_RES, MAX_TICKS, RES_WORDS
from ..lowlevel.memory import (call_void, compare_bytes, itemsize, load, move_bytes, pointer,
                               ring_next)

ADDRESS, ROWS, COLS, ITEMSIZE = range(RES_WORDS)
STATE = 0   # the grant that holds a domain's own state


def state_type(**fields) -> np.dtype:
    """A domain's state: named, typed fields, e.g. ``state_type(batch=np.int64,
    ring=(np.uint64, (512,)))``; aligned as a C struct."""
    return np.dtype(list(fields.items()), align=True)


@njit(cache=True)
def _refuse_grant():
    raise IndexError("no such grant for this domain, or not of this shape and item size")


@njit(cache=True, inline="always")
def _grant(k, index, size, matrix):
    """The running domain's grant ``index``: its address, rows, columns, checked
    against the item size and the shape the domain asks for."""
    if index < 0 or index >= MAX_RES:
        _refuse_grant()
    word = ((jit_current(k) & hp.SLOT_MASK) * MAX_RES + index) * RES_WORDS
    table = load(k, D_GRANTS)
    address, rows, cols = load(table, word), load(table, word + ROWS), load(table, word + COLS)
    if address == 0 or load(table, word + ITEMSIZE) != size or (cols > 0) != matrix:
        _refuse_grant()
    return address, rows, cols


@njit(cache=True)
def _not_me():
    raise PermissionError("a domain may ask only for its own state")


@njit(cache=True, inline="always")
def own_state(k, me, dtype):
    """The state of the running domain ``me`` (the id its proxy hands it as ``me``),
    a record of ``dtype`` (the one it declared). Any other id is a panic.

    Its own lookup rather than :func:`_grant`'s: it indexes by ``me`` (not by the
    running-domain word the proxy has just written) and checks only what a state
    grant can get wrong; routed through ``_grant`` the shadow's null call measured
    about 5 cycles slower."""
    table = load(k, D_GRANTS)
    word = ((me & hp.SLOT_MASK) * MAX_RES + STATE) * RES_WORDS
    if me != jit_current(k) or load(table, word + ITEMSIZE) != itemsize(dtype):
        _not_me()
    return carray(pointer(load(table, word), dtype), (1,))[0]


@njit(cache=True, inline="always")
def own_array(k, index, dtype):
    """Grant ``index`` of the running domain as a one-dimensional array of ``dtype``."""
    address, rows, _ = _grant(k, index, itemsize(dtype), False)
    return carray(pointer(address, dtype), (rows,))


@njit(cache=True, inline="always")
def own_matrix(k, index, dtype):
    """Grant ``index`` of the running domain as a two-dimensional array of ``dtype``."""
    address, rows, cols = _grant(k, index, itemsize(dtype), True)
    return carray(pointer(address, dtype), (rows, cols))


@njit(cache=True, inline="always")
def rref_array(k, handle, dtype, write):
    """The value of an exchange-heap object the running domain owns (or, to read,
    borrows) as an array of ``dtype`` (``np.uint8`` for its bytes); any other handle
    is a panic. To write, the domain must own it and not have lent it."""
    return hp.addressed_view(k, handle, jit_current(k), write, dtype)[1]


@njit(cache=True, inline="always")
def rref_dma(k, handle, dtype, write):
    """(device address, value as an array of ``dtype``) of an object the running domain
    owns: the address to hand a device in a descriptor (DMA), as a driver hands it a
    buffer's physical address, with one check for both. Domain code has no way to
    dereference an address: only the device uses it."""
    return hp.addressed_view(k, handle, jit_current(k), write, dtype)


@njit(cache=True, inline="always")
def rref_free(k, handle):
    """Free an object the running domain owns (and what it contains); 0, or a
    negative status if it is not the domain's to free (moved on, lent, stale)."""
    return hp.free(k, handle, jit_current(k))


@njit(cache=True)
def _refuse_copy():
    raise IndexError("copy or compare: the two arrays differ in size or item type, or one "
                     "is not contiguous")


@njit(cache=True, inline="always")
def copy_into(dst, src):
    """``dst[:] = src`` for two one-dimensional arrays of the same size and type that the
    domain holds (its views, slices of them, arrays of its own), as one memory copy:
    Numba copies a slice element by element (4 KiB of bytes: about 1.9 us; this: about
    0.1 us). The sizes come from the arrays, which domain code cannot forge."""
    if (dst.size != src.size or dst.itemsize != src.itemsize
            or dst.strides[0] != dst.itemsize or src.strides[0] != src.itemsize):
        _refuse_copy()
    move_bytes(dst.ctypes.data, src.ctypes.data, dst.size * dst.itemsize)


@njit(cache=True)
def _refuse_span():
    raise IndexError("slice out of range: a[lo:hi] must lie within a (0 <= lo <= hi <= len)")


@njit(cache=True, inline="always")
def span(a, lo, hi):
    """``a[lo:hi]`` as Rust's ``&a[lo..hi]``: a range that does not lie within ``a`` is a
    panic, where a Python or Numba slice would quietly come out shorter."""
    if lo < 0 or hi < lo or hi > a.shape[0]:
        _refuse_span()
    return a[lo:hi]


@njit(cache=True, inline="always")
def same_bytes(a, b):
    """``(a == b).all()`` for two one-dimensional arrays of the same size and type that the
    domain holds, as one ``memcmp`` (safe Rust's slice equality): a byte loop compares 64
    bytes in about 100 cycles. Arrays of different sizes are simply unequal."""
    if (a.itemsize != b.itemsize or a.strides[0] != a.itemsize
            or b.strides[0] != b.itemsize):
        _refuse_copy()
    return a.size == b.size and compare_bytes(a.ctypes.data, b.ctypes.data,
                                              a.size * a.itemsize) == 0


@njit(cache=True)
def device_wait(k):
    """Let the devices run while the domain waits (for a completion it polls for): each
    device that runs beside the CPU takes a step. In a machine the device runs on its
    own; the model runs when the CPU lets it, as the benchmark loops do between calls."""
    ticks = load(k, D_TICKS)
    for i in range(MAX_TICKS):
        fn = load(ticks, 2 * i)
        if fn != 0:
            call_void(fn, load(ticks, 2 * i + 1))


@njit(cache=True, inline="always")
def domain_alive(k, domain_id):
    """Whether a domain (by id, e.g. a driver a shadow guards) is alive."""
    return jit_alive(k, domain_id)


@njit(cache=True, inline="always")
def rref_borrows(k, handle):
    """How many shared borrows of an object the running domain owns or borrows are
    outstanding (a negative status if it does neither)."""
    slot = hp.check_read(k, handle, jit_current(k))
    return slot if slot < 0 else hp.meta_of(k)[slot, hp.BORROWS]


@njit(cache=True, inline="always")
def deque_len(k, dq):
    """How many items the running domain's (or a lent) deque holds; negative: refused."""
    return hp.deque_len(k, dq, jit_current(k))


@njit(cache=True, inline="always")
def deque_peek(k, dq, i):
    """The handle of item ``i`` of a deque (negative: from the newest), for reading in
    place with :func:`item_bytes`; ``hp.E_INDEX`` if out of range."""
    return hp.deque_peek(k, dq, jit_current(k), i)


@njit(cache=True, inline="always")
def item_bytes(k, dq, item):
    """The bytes of an item still held by the deque ``dq``, read in place; a bad access
    (the item left, the deque is not the domain's) is a panic."""
    return hp.contained_view(k, dq, item, jit_current(k))


@njit(cache=True, inline="always")
def deque_item(k, dq, i):
    """The bytes of item ``i`` (from the oldest) of the running domain's deque, writable
    in place: the deque is the domain's, so what it holds is (as ``iter_mut`` over a
    Rust collection it owns). A bad index, or a deque not the domain's to write, is a
    panic."""
    return hp.deque_item_view(k, dq, jit_current(k), i, np.uint8)


@njit(cache=True, inline="always")
def deque_pop_front(k, dq):
    """Take the oldest item out of the running domain's deque: its handle, now the
    domain's (0 if the deque is empty, negative if refused)."""
    return hp.deque_pop_front(k, dq, jit_current(k))


@njit(cache=True, inline="always")
def deque_pop_dma(k, dq, dtype):
    """Take the oldest item out of the running domain's deque, with the address to hand
    a device and its value as ``dtype`` (:func:`rref_dma`'s, for one check in place of
    two): (handle, address, value); the handle 0 if the deque was empty."""
    return hp.deque_pop_front_dma(k, dq, jit_current(k), dtype)


@njit(cache=True, inline="always")
def deque_push_back(k, dq, item):
    """Put an object the running domain owns at the back of its deque (0: done;
    negative: refused, e.g. full)."""
    return hp.deque_push_back(k, dq, jit_current(k), item)


@njit(cache=True, inline="always")
def deque_splice(k, src, dst, most):
    """Move up to ``most`` items from the front of the running domain's deque ``src``
    to the back of its deque ``dst``; how many moved (negative: refused)."""
    return hp.deque_splice(k, src, dst, jit_current(k), most)


#: what domain code may call from this module (the checker's allow-list)
DOMAIN_API = (own_state, own_array, own_matrix, rref_array, rref_dma, rref_free, rref_borrows,
              domain_alive, deque_len, deque_peek, item_bytes, deque_item, deque_pop_front,
              deque_pop_dma, deque_push_back, deque_splice, ring_next, fault_point, fault_value, copy_into,
              span, same_bytes, device_wait)
#: the constants domain code may read with them
E_INDEX = hp.E_INDEX
