"""Python-tier handles over the exchange heap: RRef, RRefArray, RRefDeque.

A handle object holds only (heap, handle word, type), never a Python
reference to the data, exactly like RedLeaf's ``RRef<T>`` holds pointers
into the shared heap. Every access asks the heap, with the *current*
domain of the calling thread, so a stale handle (freed or moved) or a
handle used by a domain that neither owns nor borrows it is refused.

In annotations, ``RRef[T]``, ``RRefArray[T, N]`` and ``RRefDeque[T, N]`` are
the exchangeable heap types of :mod:`types`.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from . import heap as hp
from .types import (Array, HeapType, RRefArrayType, RRefDequeType, RRefType,
                    deferred, exchangeable)


class Handle:
    """Common part of the three handle kinds."""

    __slots__ = ("_heap", "handle", "type")

    def __init__(self, heap: "DomainHeap", handle: int, type: HeapType):
        self._heap = heap
        self.handle = handle
        self.type = type

    @property
    def _caller(self) -> int:
        return self._heap.current()

    def _slot(self, code_fn, op: str) -> int:
        caller = self._caller
        return self._heap.heap.check(code_fn(self._heap.heap.k, self.handle, caller),
                                     self.handle, caller, op)

    @property
    def is_live(self) -> bool:
        """False once the object was freed or moved through this handle."""
        return hp.slot_of(self._heap.heap.k, self.handle) >= 0

    @property
    def owner(self) -> str:
        """Name of the owning domain (checks that the handle is live)."""
        slot = self._heap.heap.check(hp.slot_of(self._heap.heap.k, self.handle),
                                     self.handle, self._caller, "owner")
        owner = int(self._heap.heap.h.meta[slot, hp.OWNER])
        return self._heap.heap.names.get(owner, str(owner))

    def free(self) -> None:
        """Drop the object now (RedLeaf drops it when the RRef goes out of scope)."""
        caller = self._caller
        self._heap.heap.check(hp.free(self._heap.heap.k, self.handle, caller),
                              self.handle, caller, f"free {self.type.name}")

    def _wrap(self, handle: int, t: HeapType):
        return wrap(self._heap, handle, t) if handle else None

    def __repr__(self):
        return f"<{self.type.name} {self._heap.heap.describe(self.handle)}>"


class RRef(Handle):
    """A handle to one object of plain type T in the exchange heap."""

    __slots__ = ()

    def __class_getitem__(cls, target) -> RRefType:
        return deferred(RRefType, target)

    def get(self):
        """A copy of the value (a numpy scalar, array or record)."""
        return self._heap.heap.read(self.handle, self._heap.current(), self.type.target)

    def set(self, value) -> None:
        """Overwrite the value (type-checked; the caller must own it)."""
        self._heap.heap.write(self.handle, self._heap.current(), self.type.target, value,
                              f"set {self.type.name}")

    def __getitem__(self, index):
        return self._heap.heap.view(self.handle, self._caller)[index].copy()

    def __setitem__(self, index, value):
        """Write part of an array value (type-checked like :meth:`set`)."""
        view = self._heap.heap.view(self.handle, self._caller, write=True)
        part = view[index]
        if (isinstance(value, np.ndarray) and value.dtype == part.dtype
                and value.shape == np.shape(part)):
            view[index] = value   # already of the element type: nothing to convert
            return
        elem = getattr(self.type.target, "elem", self.type.target)
        where = f"set {self.type.name}[{index!r}]"
        if np.ndim(part) == 0:
            view[index] = elem.coerce(value, where)
        else:
            view[index] = Array(elem, np.shape(part)).coerce(np.broadcast_to(value, part.shape),
                                                              where)


class RRefArray(Handle):
    """N optional RRef slots in one heap object (RedLeaf's ``RRefArray<T, N>``)."""

    __slots__ = ()

    def __class_getitem__(cls, params) -> RRefArrayType:
        return RRefArrayType.subscript(params)

    def __len__(self):
        return self.type.n

    def put(self, i: int, value: RRef) -> RRef | None:
        """Store ``value`` (moved in) at ``i``; returns what it replaced, if any."""
        caller = self._caller
        old = self._heap.heap.check(hp.array_put(self._heap.heap.k, self.handle, caller, i,
                                                 _handle_of(value)),
                                    self.handle, caller, f"put into {self.type.name}")
        return self._wrap(old, self.type.child)

    def take(self, i: int) -> RRef | None:
        """Remove and return the RRef at ``i`` (None if empty)."""
        caller = self._caller
        h = self._heap.heap.check(hp.array_take(self._heap.heap.k, self.handle, caller, i),
                                  self.handle, caller, f"take from {self.type.name}")
        return self._wrap(h, self.type.child)

    def has(self, i: int) -> bool:
        caller = self._caller
        return self._heap.heap.check(hp.array_peek(self._heap.heap.k, self.handle, caller, i),
                                     self.handle, caller, f"read {self.type.name}") != 0


class RRefDeque(Handle):
    """A fixed-capacity ring of RRefs (RedLeaf's ``RRefDeque<T, N>``, packet batches)."""

    __slots__ = ()

    def __class_getitem__(cls, params) -> RRefDequeType:
        return RRefDequeType.subscript(params)

    @property
    def capacity(self) -> int:
        return self.type.n

    def __len__(self):
        caller = self._caller
        return self._heap.heap.check(hp.deque_len(self._heap.heap.k, self.handle, caller),
                                     self.handle, caller, f"len {self.type.name}")

    def push_back(self, value: RRef) -> RRef | None:
        """Append ``value`` (moved in). If full, returns ``value`` back, as RedLeaf does."""
        caller = self._caller
        r = hp.deque_push_back(self._heap.heap.k, self.handle, caller, _handle_of(value))
        if r == hp.E_FULL:
            return value
        self._heap.heap.check(r, self.handle, caller, f"push into {self.type.name}")
        return None

    def pop_front(self) -> RRef | None:
        """Remove and return the oldest RRef (None if empty)."""
        caller = self._caller
        h = self._heap.heap.check(hp.deque_pop_front(self._heap.heap.k, self.handle, caller),
                                  self.handle, caller, f"pop from {self.type.name}")
        return self._wrap(h, self.type.child)

    def __getitem__(self, i: int) -> "ContainedRef":
        """The ``i``-th item from the oldest (negative: from the newest), read in place."""
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"{self.type.name} indices must be integers, not "
                            f"{type(i).__name__}")
        caller = self._caller
        h = hp.deque_peek(self._heap.heap.k, self.handle, caller, i)
        if h == hp.E_INDEX:
            n = len(self)
            raise IndexError(f"{self.type.name} index {i} is out of range: it holds {n} "
                             f"item(s)" + (f" (valid: -{n}..{n - 1})" if n else ""))
        self._heap.heap.check(h, self.handle, caller, f"read {self.type.name}")
        return ContainedRef(self, h)

    def peek(self) -> "ContainedRef | None":
        """The oldest item (the next ``pop_front``), read in place; None if empty."""
        return self[0] if len(self) else None

    def __iter__(self):
        """The items from the oldest to the newest, read in place (RedLeaf's ``iter()``
        walks from the tail), as they were when the iteration began."""
        return iter([self[i] for i in range(len(self))])


class ContainedRef:
    """An item of a container, read in place (what RRefDeque indexing, ``peek`` and
    iteration give).

    Reads are allowed because the caller owns or borrows the container; the item
    stays in it, owned by it. So this is no RRef: it cannot be moved, freed,
    written or stored, and it goes stale once the item leaves the container (or
    the container moves to another domain).
    """

    __slots__ = ("_container", "handle", "type")

    def __init__(self, container: Handle, handle: int):
        self._container = container
        self.handle = handle
        self.type = container.type.child

    def _view(self) -> np.ndarray:
        c = self._container
        return c._heap.heap.view_contained(c.handle, self.handle, c._caller)

    def get(self):
        """A copy of the value (a numpy scalar, array or record)."""
        v = self._view()
        return v[()].copy() if v.ndim == 0 else v.copy()

    def __getitem__(self, index):
        return self._view()[index].copy()

    @property
    def is_live(self) -> bool:
        """False once the item left its container (or the container is gone)."""
        k, meta = self._container._heap.heap.k, self._container._heap.heap.h.meta
        parent, child = hp.slot_of(k, self._container.handle), hp.slot_of(k, self.handle)
        return parent >= 0 and child >= 0 and meta[child, hp.PARENT] == parent

    def __repr__(self):
        return f"<{self.type.name} in {self._container!r}>"


def _handle_of(value) -> int:
    if not isinstance(value, RRef):
        raise TypeError(f"expected an RRef, got {type(value).__name__}")
    return value.handle


_CLASSES = {RRefType: RRef, RRefArrayType: RRefArray, RRefDequeType: RRefDeque}


def wrap(heap: "DomainHeap", handle: int, t: HeapType) -> Handle:
    """The handle object of the right kind for heap type ``t``."""
    return _CLASSES[type(t)](heap, handle, t)


class DomainHeap:
    """The exchange heap as the running domain sees it: typed allocation.

    ``current`` returns the id of the domain running on this thread; new
    objects are owned by it.
    """

    def __init__(self, heap: hp.ExchangeHeap, current: Callable[[], int]):
        self.heap = heap
        self.current = current

    def new(self, t, value=None) -> Handle:
        """Allocate ``t`` (a plain type means ``RRef[t]``), optionally initialised."""
        t = exchangeable(t)
        if t.plain:
            t = RRefType(t)
        if not isinstance(t, HeapType):
            raise TypeError(f"cannot allocate {t} in the exchange heap: use a plain type, "
                            "RRef, RRefArray or RRefDeque")
        r = wrap(self, self.heap.alloc(t, self.current()), t)
        if value is not None:
            r.set(value)
        return r


__all__ = ["RRef", "RRefArray", "RRefDeque", "ContainedRef", "Handle", "DomainHeap", "wrap"]
