"""The key-value store's general data model: memcached's item semantics over the
exchange heap (what a memcached protocol front puts on the wire; the fixed-size fast
path Figure 10 measures is :mod:`redleaf_nb.apps.kvstore`).

An item is a key (1..250 bytes without spaces, line breaks or NULs, as memcached's),
a value of up to 1 MiB, 32-bit client flags, a CAS id (unique per change, as
memcached's ``gets``/``cas``) and an expiry time. Each value lives in the exchange
heap as an ``RRef<[u8; N]>`` owned by the store's domain, N the power of two (at least
64 bytes) that holds it, so ``append``/``prepend`` grow in place until the next
size class and then move to a new object. Every change allocates what it needs
before it frees or rewrites anything: when the heap is full the change is refused
(:class:`~redleaf_nb.kernel.heap.HeapExhausted`) and the item keeps its old value.

Expiry follows memcached: 0 never expires; up to 30 days is seconds from now; more
is a Unix time; a negative time expires at once. Expired items are dropped when
next touched, or by :meth:`KvData.sweep`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from redleaf_nb.kernel import heap as hp
from redleaf_nb.kernel.domain import Kernel
from redleaf_nb.kernel.rref import RRef
from redleaf_nb.kernel.types import exchangeable, u8

MAX_KEY = 250                   # bytes (memcached's KEY_MAX_LENGTH)
MAX_VALUE = 1 << 20             # bytes (memcached's default item size limit)
MIN_CAPACITY = 64
RELATIVE_LIMIT = 60 * 60 * 24 * 30   # exptimes up to 30 days are relative (memcached)
STORED, NOT_STORED, EXISTS, NOT_FOUND = "STORED", "NOT_STORED", "EXISTS", "NOT_FOUND"


@dataclass
class Item:
    handle: int      # the value's RRef, owned by the store's domain
    length: int
    capacity: int
    flags: int
    cas: int
    expires: float   # seconds since the epoch; 0: never


def _capacity(n: int) -> int:
    return max(MIN_CAPACITY, 1 << max(0, n - 1).bit_length())


def check_key(key: bytes) -> bytes:
    """``key`` if memcached would take it; else a ValueError that says why."""
    if not isinstance(key, (bytes, bytearray)):
        raise TypeError(f"kvdata: a key is bytes, not {type(key).__name__}")
    if not 1 <= len(key) <= MAX_KEY:
        raise ValueError(f"kvdata: key of {len(key)} bytes, must be 1..{MAX_KEY}")
    if b" " in key or b"\n" in key or b"\r" in key or b"\0" in key:   # the text protocol's
        raise ValueError(f"kvdata: key {bytes(key)[:40]!r} holds a space, a line break or a NUL")
    return bytes(key)


def check_value(value: bytes, what: str = "value") -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"kvdata: a {what} is bytes, not {type(value).__name__}")
    if len(value) > MAX_VALUE:
        raise ValueError(f"kvdata: {what} of {len(value)} bytes, larger than the item "
                         f"limit of {MAX_VALUE} bytes")
    return bytes(value)


class KvData:
    """Items in the exchange heap of ``kernel``, owned by domain ``owner`` (by default a
    small kernel of its own, its init domain). ``clock`` gives seconds since the epoch
    (a test passes a fake one)."""

    def __init__(self, kernel: Kernel | None = None, owner: int | None = None,
                 clock: Callable[[], float] = time.time):
        self.kernel = kernel or Kernel(heap_bytes=64 << 20, max_objects=1 << 14)
        self.owner = self.kernel.init.id if owner is None else owner
        self.clock = clock
        self.items: dict[bytes, Item] = {}
        self._next_cas = 0
        self.stats = {"get_hits": 0, "get_misses": 0, "sets": 0, "expired": 0}

    # -- the heap side --
    def _alloc(self, data: bytes) -> tuple[int, int]:
        cap = _capacity(len(data))
        heap = self.kernel.heap
        h = heap.alloc(exchangeable(RRef[u8[cap]]), self.owner)
        heap.view(h, self.owner, write=True)[:len(data)] = np.frombuffer(data, np.uint8)
        return h, cap

    def _free(self, item: Item) -> None:
        heap = self.kernel.heap
        heap.check(hp.free(heap.k, item.handle, self.owner), item.handle, self.owner, "free")

    def _bytes(self, item: Item) -> bytes:
        return self.kernel.heap.view(item.handle, self.owner)[:item.length].tobytes()

    def _cas(self) -> int:
        self._next_cas += 1
        return self._next_cas

    def _expires(self, exptime: int) -> float:
        if exptime == 0:
            return 0.0
        if exptime < 0:
            return -1.0
        return self.clock() + exptime if exptime <= RELATIVE_LIMIT else float(exptime)

    def _live(self, key: bytes) -> Item | None:
        """The item under ``key`` unless it has expired (then it is dropped)."""
        item = self.items.get(key)
        if item is not None and item.expires and item.expires <= self.clock():
            self._drop(key)
            self.stats["expired"] += 1
            return None
        return item

    def _drop(self, key: bytes) -> None:
        self._free(self.items.pop(key))

    # -- memcached's commands --
    def get(self, key: bytes) -> tuple[bytes, int, int] | None:
        """(value, flags, cas) or None."""
        item = self._live(check_key(key))
        self.stats["get_hits" if item else "get_misses"] += 1
        return None if item is None else (self._bytes(item), item.flags, item.cas)

    def set(self, key: bytes, value: bytes, flags: int = 0, exptime: int = 0) -> str:
        key, value = check_key(key), check_value(value)
        if not 0 <= flags < 1 << 32:
            raise ValueError(f"kvdata: flags={flags} out of range 0..2**32-1")
        handle, cap = self._alloc(value)   # first: a full heap leaves the old value
        old = self.items.get(key)
        self.items[key] = Item(handle, len(value), cap, flags, self._cas(),
                               self._expires(exptime))
        if old is not None:
            self._free(old)
        self.stats["sets"] += 1
        return STORED

    def add(self, key: bytes, value: bytes, flags: int = 0, exptime: int = 0) -> str:
        """Store only if no live item has the key."""
        if self._live(check_key(key)) is not None:
            return NOT_STORED
        return self.set(key, value, flags, exptime)

    def replace(self, key: bytes, value: bytes, flags: int = 0, exptime: int = 0) -> str:
        """Store only if a live item has the key."""
        if self._live(check_key(key)) is None:
            return NOT_STORED
        return self.set(key, value, flags, exptime)

    def cas(self, key: bytes, value: bytes, cas: int, flags: int = 0, exptime: int = 0) -> str:
        """Store only if the item is unchanged since ``gets`` returned ``cas``."""
        item = self._live(check_key(key))
        if item is None:
            return NOT_FOUND
        if item.cas != cas:
            return EXISTS
        return self.set(key, value, flags, exptime)

    def _grow(self, key: bytes, data: bytes, front: bool) -> str:
        item = self._live(check_key(key))
        data = check_value(data, "appended value")
        if item is None:
            return NOT_STORED
        n = item.length + len(data)
        if n > MAX_VALUE:
            raise ValueError(f"kvdata: {key[:40]!r} would grow to {n} bytes, larger than the "
                             f"item limit of {MAX_VALUE} bytes")
        heap = self.kernel.heap
        if n <= item.capacity:   # in place
            view = heap.view(item.handle, self.owner, write=True)
            if front:
                view[len(data):n] = view[:item.length].copy()
                view[:len(data)] = np.frombuffer(data, np.uint8)
            else:
                view[item.length:n] = np.frombuffer(data, np.uint8)
        else:                    # the next size class: a new object, then the old one freed
            old = self._bytes(item)
            handle, cap = self._alloc(data + old if front else old + data)
            self._free(item)
            item.handle, item.capacity = handle, cap
        item.length, item.cas = n, self._cas()
        return STORED

    def append(self, key: bytes, data: bytes) -> str:
        return self._grow(key, data, front=False)

    def prepend(self, key: bytes, data: bytes) -> str:
        return self._grow(key, data, front=True)

    def incr(self, key: bytes, delta: int) -> int | str:
        """Add ``delta`` (negative: decr) to a decimal value, as memcached: incr wraps at
        2**64, decr stops at 0; the new value, or NOT_FOUND. A value that is not a
        decimal number below 2**64 is a ValueError."""
        item = self._live(check_key(key))
        if item is None:
            return NOT_FOUND
        text = self._bytes(item)
        if not (text.isdigit() and len(text) <= 20 and int(text) < 1 << 64):
            raise ValueError("cannot increment or decrement non-numeric value")
        value = (int(text) + delta) % (1 << 64) if delta >= 0 else max(0, int(text) + delta)
        new = str(value).encode()
        handle, cap = self._alloc(new)
        self._free(item)
        item.handle, item.capacity, item.length, item.cas = handle, cap, len(new), self._cas()
        return value

    def delete(self, key: bytes) -> str:
        if self._live(check_key(key)) is None:
            return NOT_FOUND
        self._drop(key)
        return "DELETED"

    def touch(self, key: bytes, exptime: int) -> str:
        item = self._live(check_key(key))
        if item is None:
            return NOT_FOUND
        item.expires = self._expires(exptime)
        return "TOUCHED"

    def flush_all(self) -> None:
        for key in list(self.items):
            self._drop(key)

    def sweep(self) -> int:
        """Drop every expired item; how many."""
        now = self.clock()
        dead = [k for k, it in self.items.items() if it.expires and it.expires <= now]
        for key in dead:
            self._drop(key)
        self.stats["expired"] += len(dead)
        return len(dead)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def heap_bytes(self) -> int:
        """Exchange-heap bytes the store's values hold (their size classes)."""
        return sum(it.capacity for it in self.items.values())
