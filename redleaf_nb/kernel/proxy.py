"""The runtime of a cross-domain call, for both tiers.

The IDL compiler (:mod:`idl`) generates one proxy per interface; the code it
generates is short because every step of the protocol lives here:

1. check that the callee (and the caller) are alive;
2. check every argument before anything moves (types, ownership);
3. move by-value ``RRef`` arguments to the callee, lend borrowed ones
   (a lone ``RRef`` argument is checked and moved by one heap kernel);
4. record a continuation, so a panic unwinds back to this call;
5. run the callee; a panic (any exception) crashes the callee and becomes
   an :class:`RpcError` *value* for the caller;
6. pop the continuation and move returned ``RRef`` s to the caller.

The jitted tier does the same in ``@njit`` kernels over
:mod:`state`'s kernel descriptor (status codes instead of exceptions).
"""
from __future__ import annotations

import threading
from numba import njit

from . import heap as hp
from .rref import Handle, wrap
from ..lowlevel.memory import load, store
from .state import D_CALL_WORDS, D_CALLS, D_CONTS, D_DOMAINS, MAX_CONT
from .types import (Array, BorrowType, Device, DeviceType, ExType, HeapType, InterfaceType,
                    OptionalType, RecordType, Scalar, TupleType, UnitType)

# domain states, shared by both tiers: the low half of a slot's word in the kernel's
# ``domains`` array, whose high half is the generation of the slot's latest domain
# (a domain id is ``(generation << 32) | slot``, see domain.py)
UNUSED, ALIVE, CRASHED, TERMINATED = 0, 1, 2, 3
STATE_NAMES = {UNUSED: "unused", ALIVE: "alive", CRASHED: "crashed", TERMINATED: "terminated"}


class RpcError(Exception):
    """Returned (not raised) by a proxy when the callee crashed or is dead.

    RedLeaf's ``RpcResult<T>``: check ``isinstance(r, RpcError)``; ``raise r``
    if you cannot handle it.
    """

    def __init__(self, domain: str, method: str, reason: str, cause: BaseException | None = None):
        self.domain, self.method, self.reason, self.cause = domain, method, reason, cause
        super().__init__(f"{method} on domain '{domain}': {reason}")


class DomainUnwind(BaseException):
    """Unwinds a thread out of a domain that died while the thread was inside.

    A ``BaseException`` so that ``except Exception`` in domain code cannot
    stop it; the proxy that entered the dead domain turns it into RpcError.
    """

    def __init__(self, domain_id: int):
        self.domain_id = domain_id
        super().__init__(f"unwinding out of dead domain {domain_id}")


class Proxy:
    """Base of generated proxies: a reference to a domain through its interface."""

    __slots__ = ("_kernel", "_domain")
    __interface__: type

    def __init__(self, kernel, domain):
        self._kernel = kernel
        self._domain = domain

    @property
    def domain(self):
        return self._domain

    def __repr__(self):
        return (f"<{type(self).__name__} to domain '{self._domain.name}' "
                f"({self._domain.state})>")


class Continuation:
    """Where a panic in ``callee`` unwinds to: this call, in ``caller``.

    ``lent`` lists (handle, previous borrower) of what the call borrowed;
    None until something is lent (most calls lend nothing).
    """

    __slots__ = ("caller", "callee", "method", "lent")

    def __init__(self, caller, callee, method: str):
        self.caller, self.callee, self.method, self.lent = caller, callee, method, None


class _Stacks(threading.local):
    """One continuation stack per thread (``local`` runs ``__init__`` in each)."""

    def __init__(self):
        self.stack: list[Continuation] = []


def check_handle(t: HeapType, value, where: str) -> None:
    """A heap argument must be a handle object of exactly type ``t``."""
    vt = getattr(value, "type", None) if isinstance(value, Handle) else None
    if vt is not t and vt != t:
        raise TypeError(f"{where}: expected {t.name}, got "
                        f"{vt.name if vt is not None else type(value).__name__}")


# --- argument checking and transfer (Python tier) ----------------------------

def check_value(kernel, t: ExType, value, owner: int, where: str, seen: dict,
                lend: bool = False):
    """Check ``value`` against ``t`` before anything moves; returns the value
    to pass (plain data copied and converted), or raises a clear error.

    A by-value heap object must be owned by ``owner`` and not lent out; a
    borrowed one (``lend``) may also be one that ``owner`` itself borrows.
    """
    if isinstance(t, BorrowType):
        return check_value(kernel, t.inner, value, owner, where, seen, lend=True)
    if isinstance(t, (Scalar, Array, RecordType)):
        return t.coerce(value, where)
    if isinstance(t, HeapType):
        check_handle(t, value, where)
        # any number of shared borrows of one RRef, as in Rust; a move excludes all else
        before = seen.get(value.handle)    # None: first use; True: lent; False: moved
        if before is not None and not (lend and before):
            raise ValueError(f"{where}: the same {t.name} is passed twice in one call, "
                             "and by value at least once")
        seen[value.handle] = lend
        check = hp.check_read if lend else hp.check_write
        kernel.heap.check(check(kernel.heap.k, value.handle, owner), value.handle, owner, where)
        return value
    if isinstance(t, OptionalType):
        return None if value is None else check_value(kernel, t.inner, value, owner, where, seen)
    if isinstance(t, TupleType):
        if not isinstance(value, tuple) or len(value) != len(t.items):
            raise TypeError(f"{where}: expected a tuple of {len(t.items)} items ({t.name})")
        return tuple(check_value(kernel, it, v, owner, f"{where}[{i}]", seen)
                     for i, (it, v) in enumerate(zip(t.items, value)))
    if isinstance(t, InterfaceType):
        if not isinstance(value, Proxy):
            raise TypeError(f"{where}: expected a proxy to a {t.name} domain (from "
                            f"Kernel.create or lookup), got {type(value).__name__}")
        if value.__interface__ is not t.iface:
            raise TypeError(f"{where}: expected a {t.name} proxy, got a "
                            f"{value.__interface__.__name__} proxy")
        return value
    if isinstance(t, UnitType):
        if value is not None:
            raise TypeError(f"{where}: expected None, got {type(value).__name__}")
        return None
    if isinstance(t, DeviceType):
        if not isinstance(value, Device) or value.kernel is not kernel:
            raise TypeError(f"{where}: expected a Device capability of this kernel (from "
                            f"Kernel.add_device), got {value!r}")
        return value
    raise TypeError(f"{where}: {t} cannot be passed")  # pragma: no cover - compiler rejects


def transfer(kernel, t: ExType, value, src: int, dst: int):
    """Move the heap objects inside a checked ``value`` from ``src`` to ``dst``."""
    if isinstance(t, HeapType):
        return wrap(kernel.domain_heap, kernel.heap.move(value.handle, src, dst), t)
    if isinstance(t, OptionalType):
        return None if value is None else transfer(kernel, t.inner, value, src, dst)
    if isinstance(t, TupleType):
        return tuple(transfer(kernel, it, v, src, dst) for it, v in zip(t.items, value))
    return value


# --- the protocol steps, called by generated proxies -------------------------

class CallRuntime:
    """Per-kernel state of the Python tier's calls: one continuation stack per thread.

    The generated proxies call these steps in order. They read domain states
    through a memoryview of the kernel's ``domains`` array (the jitted tier's
    very words, read without numpy's per-element cost), and pass a lone
    ``RRef`` argument or result with one heap kernel that checks and moves.
    """

    def __init__(self, kernel):
        self.kernel = kernel
        self._tls = _Stacks()
        self._states = memoryview(kernel.heap.h.domains)
        self._heap = kernel.heap

    @property
    def stack(self) -> list[Continuation]:
        return self._tls.stack

    def current(self):
        """The domain this thread is running in (``init`` at top level)."""
        s = self._tls.stack
        return s[-1].callee if s else self.kernel.init

    def current_id(self) -> int:
        """The id of :meth:`current`: the owner of what code here allocates."""
        s = self._tls.stack
        return s[-1].callee.id if s else self.kernel.init.id

    def enter(self, callee, method: str) -> Continuation | None:
        """Step 1: the call's continuation, or None if the callee is dead
        (the caller gets RpcError). A caller that died meanwhile unwinds."""
        s = self._tls.stack
        caller = s[-1].callee if s else self.kernel.init
        if self._states[caller.slot] != caller._alive_word:
            raise DomainUnwind(caller.id)
        if self._states[callee.slot] != callee._alive_word:
            return None
        return Continuation(caller, callee, method)

    def refused(self, callee, method: str) -> RpcError:
        return RpcError(callee.name, method, f"the domain is {callee.state}")

    def check_args(self, caller, method: str, args: tuple) -> tuple:
        """Step 2: every argument checked before any moves; returns them converted."""
        seen: dict = {}  # handle -> lent (True) or moved (False)
        return tuple(check_value(self.kernel, t, v, caller.id, f"{method}: parameter '{name}'",
                                 seen) for name, t, v in args)

    def push(self, cont: Continuation) -> Continuation:
        """Step 3: record the continuation (RedLeaf's trampoline)."""
        self._tls.stack.append(cont)
        return cont

    def move_in(self, cont: Continuation, t: ExType, value):
        """Step 4: a checked by-value argument now belongs to the callee."""
        return transfer(self.kernel, t, value, cont.caller.id, cont.callee.id)

    def lend(self, cont: Continuation, t: BorrowType, value, where: str = "lend"):
        """Step 4: a borrowed argument is lent to the callee for this call
        (the kernel checks that the caller owns or borrows it)."""
        h = self._heap
        src = cont.caller.id
        prev = h.borrow(value.handle, src, cont.callee.id, where)
        if cont.lent is None:
            cont.lent = []
        cont.lent.append((value.handle, prev))
        return value

    def check_and_move(self, cont: Continuation, t: HeapType, value, where: str):
        """Steps 2 and 4 for a method whose only heap argument is this by-value
        one: the heap's move kernel checks ownership and moves in one call."""
        check_handle(t, value, where)
        new = self._heap.move(value.handle, cont.caller.id, cont.callee.id, where)
        return wrap(self.kernel.domain_heap, new, t)

    def check_and_lend(self, cont: Continuation, t: BorrowType, value, where: str):
        """Steps 2 and 4 for a method whose only heap argument is this borrowed one."""
        check_handle(t.inner, value, where)
        return self.lend(cont, t, value, where)

    def _pop(self, cont: Continuation):
        popped = self._tls.stack.pop()
        if popped is not cont:
            raise RuntimeError("continuation stack out of order")  # pragma: no cover
        if cont.lent:
            for handle, prev in reversed(cont.lent):
                hp.release(self._heap.k, handle, prev)  # stale if the owner died: fine

    def unwind(self, cont: Continuation, panic: BaseException) -> RpcError:
        """Step 5: the callee panicked: crash it, unwind here, return RpcError."""
        self._pop(cont)
        callee = cont.callee
        self.kernel.events.record("unwind", callee.name, f"{cont.method} unwound to "
                                  f"{cont.caller.name}: {panic!r}")
        if callee.alive:
            self.kernel.crash(callee, reason=f"panic in {cont.method}: {panic!r}")
        if not cont.caller.alive:
            raise DomainUnwind(cont.caller.id)
        return RpcError(callee.name, cont.method, callee.crash_reason or callee.state,
                        cause=panic if not isinstance(panic, DomainUnwind) else None)

    def _returned(self, cont: Continuation):
        """The call is over: pop it; a caller that died meanwhile gets nothing."""
        self._pop(cont)
        if self._states[cont.caller.slot] != cont.caller._alive_word:
            self.kernel.reclaim(cont.caller)
            raise DomainUnwind(cont.caller.id)

    def finish(self, cont: Continuation, t: ExType, ret):
        """Step 6: pop the continuation; the result's RRefs move to the caller.

        Every method's result is an ``RpcResult``: a callee may hand back an
        RpcError it got from a further call (a shadow reporting a request).
        """
        if not isinstance(ret, RpcError):
            try:
                ret = check_value(self.kernel, t, ret, cont.callee.id,
                                  f"{cont.method}: return value", {})
            except (TypeError, ValueError, hp.HeapError) as bad:
                return self.unwind(cont, bad)  # a badly typed result is the callee's fault
            ret = transfer(self.kernel, t, ret, cont.callee.id, cont.caller.id)
        self._returned(cont)
        return ret

    def finish_unit(self, cont: Continuation, ret):
        """Step 6 for a method that returns nothing."""
        if ret is not None and not isinstance(ret, RpcError):
            return self.unwind(cont, TypeError(f"{cont.method}: return value: expected None, "
                                               f"got {type(ret).__name__}"))
        self._returned(cont)
        return ret

    def finish_move(self, cont: Continuation, t: HeapType, ret):
        """Step 6 for a method that returns one RRef: one kernel checks and moves it."""
        if not isinstance(ret, RpcError):
            try:
                check_handle(t, ret, f"{cont.method}: return value")
                new = self._heap.move(ret.handle, cont.callee.id, cont.caller.id,
                                      f"{cont.method}: return value")
            except (TypeError, hp.HeapError) as bad:
                return self.unwind(cont, bad)
            ret = wrap(self.kernel.domain_heap, new, t)
        self._returned(cont)
        return ret


# --- the jitted tier ---------------------------------------------------------

DEPTH, CURRENT = 0, 1    # the words of the kernel's `calls` array
RPC_OK, RPC_DEAD, RPC_PANIC, RPC_BAD_ARG, RPC_TOO_DEEP = 0, 1, 2, 3, 4
RPC_STATUS = {RPC_OK: "ok", RPC_DEAD: "callee is dead", RPC_PANIC: "callee panicked",
              RPC_BAD_ARG: "bad argument (stale, foreign or lent RRef)",
              RPC_TOO_DEEP: "continuation stack full"}


@njit(cache=True, inline="always")
def _is_alive(dp, domain):
    """Is ``domain`` (an id: generation and slot) the live domain of its slot?"""
    return load(dp, domain & 0xFFFFFFFF) == (domain >> 32 << 32) | ALIVE


@njit(cache=True, inline="always")
def jit_alive(k, domain):
    return _is_alive(load(k, D_DOMAINS), domain)


@njit(cache=True, inline="always")
def jit_current(k):
    """The domain the jitted tier is running in (for heap access checks)."""
    return load(k, D_CALL_WORDS + CURRENT)


@njit(cache=True, inline="always")
def _push(dp, kp, cp, callee):
    d = load(kp, DEPTH)
    out = -RPC_DEAD
    if _is_alive(dp, callee):
        out = -RPC_TOO_DEEP
        if d < MAX_CONT:
            out = load(kp, CURRENT)
            store(cp, 2 * d, out)
            store(cp, 2 * d + 1, callee)
            store(kp, DEPTH, d + 1)
            store(kp, CURRENT, callee)
    return out


@njit(cache=True, inline="always")
def jit_push(k, callee):
    """Steps 1 and 3: the caller's id, or a negative status if we cannot enter.

    Raw words and a single exit, like the heap's hot kernels.
    """
    return _push(load(k, D_DOMAINS), load(k, D_CALLS), load(k, D_CONTS), callee)


@njit(cache=True, inline="always")
def _pop(kp, caller):
    store(kp, DEPTH, load(kp, DEPTH) - 1)
    store(kp, CURRENT, caller)


@njit(cache=True, inline="always")
def jit_pop(k, caller):
    _pop(load(k, D_CALLS), caller)


@njit(cache=True)
def jit_crash(k, callee, caller):
    """Step 5: unwind to this continuation, mark the callee crashed, reclaim it.

    Reclaims even an already-dead callee: results handed to a caller that
    died while its call was out are freed here, where its unwind lands.
    """
    jit_pop(k, caller)
    if jit_alive(k, callee):
        store(load(k, D_DOMAINS), callee & 0xFFFFFFFF, (callee >> 32 << 32) | CRASHED)
    hp.reclaim(k, callee)
