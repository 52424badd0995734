"""Shadow domains: transparent recovery of a crashed driver domain.

A shadow implements the same interface as the driver it guards and forwards
every call to it through an ordinary proxy. When the driver crashes (the
call returns ``RpcError``), the shadow re-creates it with its original
create arguments (replaying its setup, as RedLeaf's ``recreate_domain_*``)
and re-issues the failed call, so the caller sees no error.

An in-flight request is retried, never silently dropped: by-value ``RRef[T]``
arguments moved into the dead driver were reclaimed with it, so the shadow
keeps a copy of each before forwarding (RedLeaf's bdev shadow re-allocates
the lost buffer the same way). Borrowed arguments still belong to the caller
and are simply lent again, and a request that never entered the driver (it
was already dead) still has all its arguments. Requests whose by-value
arguments went down with the driver and cannot be copied (containers,
optionals; in the jitted tier, every by-value RRef but those the interface
declares the driver only fills, ``__refilled__``, which the shadow replaces with
fresh ones) are *reported* with ``RpcError`` after the restart. A reported request leaves nothing behind:
what the shadow still holds of its arguments is freed.

Restarts follow an Erlang/OTP-style intensity limit: at most
``max_restarts`` within ``period`` seconds, after which errors are reported
until the period has passed. A restart whose ``@create`` panics counts as an
attempt and is tried again while the policy allows; the shadow itself never
crashes for it. Both tiers restart through :meth:`ShadowBase._recover` (the
jitted tier calls it through ``objmode``: re-creating a domain is the Python
tier's job), so they share one policy, one clock and one set of statistics.
"""
from __future__ import annotations

import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from numba import njit, objmode

from . import heap as hp
from .codegen import callee_module, load_generated, shadow_source
from .idl import Method
from .proxy import RPC_PANIC, RpcError, jit_current
from .types import HeapType, OptionalType, RRefType, TupleType
from .views import state_type


@dataclass
class RestartPolicy:
    """How often a shadow may restart its driver (OTP: intensity and period).

    ``clock`` gives the time in seconds; tests pass one they set by hand."""

    max_restarts: int = 5
    period: float = 1.0
    clock: Callable[[], float] = time.monotonic
    #: the request under which the driver died: "retry" it on the new driver (the paper's
    #: shadows), or "report" it to the caller as RpcError (the driver is restarted either way)
    in_flight: str = "retry"
    #: a request under which the driver dies this many times is reported, not retried
    #: again: a request that crashes every driver it meets (a poison request) must not
    #: keep the shadow restarting forever
    max_retries: int = 3

    def __post_init__(self):
        if self.max_restarts < 0 or self.period <= 0:
            raise ValueError("RestartPolicy: max_restarts must be >= 0 and period > 0 seconds")
        if self.max_retries < 0:
            raise ValueError("RestartPolicy: max_retries must be >= 0")
        if self.in_flight not in ("retry", "report"):
            raise ValueError(f"RestartPolicy.in_flight: {self.in_flight!r} is not 'retry' or "
                             "'report'")


@dataclass
class ShadowStats:
    calls: int = 0
    restarts: int = 0          # attempts, each counted by the policy
    failed_restarts: int = 0   # attempts whose @create panicked
    retried: int = 0
    reported: int = 0
    in_flight: int = 0         # crashes that struck while a request was inside the driver
    restart_ns: list = field(default_factory=list)


def _free_owned(k: int, t, value, owner: int) -> None:
    """Free the heap objects in ``value`` that ``owner`` still owns (moved ones are stale)."""
    if isinstance(t, HeapType):
        hp.free(k, value.handle, owner)   # an error status means: not ours any more
    elif isinstance(t, OptionalType) and value is not None:
        _free_owned(k, t.inner, value, owner)
    elif isinstance(t, TupleType):
        for it, v in zip(t.items, value):
            _free_owned(k, it, v, owner)


class ShadowBase:
    """Forwarding, restart and retry, shared by every generated shadow class."""

    target: str
    policy: RestartPolicy
    stats: ShadowStats

    def _setup(self, target: str, policy: RestartPolicy):
        self.target, self.policy, self.stats = target, policy, ShadowStats()
        self._recent: deque[float] = deque()   # times of the restarts in the period
        kernel, driver = self.domain.kernel, self.domain.kernel.lookup(target).domain
        _KERNELS[kernel.heap.k] = kernel
        state = np.zeros(1, SHADOW_STATE)
        state["driver"] = driver.id
        self.domain.set_jit_state(state)

    def _may_restart(self) -> bool:
        now = self.policy.clock()
        while self._recent and now - self._recent[0] >= self.policy.period:
            self._recent.popleft()
        if len(self._recent) >= self.policy.max_restarts:
            self.domain.kernel.events.record(
                "refused", self.target, f"{self.domain.name}: already {len(self._recent)} "
                f"restarts within {self.policy.period} s (max_restarts)")
            return False
        self._recent.append(now)
        return True

    def _recover(self) -> bool:
        """Bring the driver back, restarting it while the policy allows (a restart
        whose @create panics is one attempt); False once the policy gives up.
        Both tiers recover here; the jitted state follows the driver's new id."""
        kernel = self.domain.kernel
        from .domain import DomainCreateError  # domain.py imports this module
        driver = kernel.lookup(self.target).domain
        while not driver.alive:
            if not self._may_restart():
                return False
            self.stats.restarts += 1
            t0 = time.perf_counter_ns()
            try:
                driver = kernel.recreate(self.target).domain
            except DomainCreateError:
                self.stats.failed_restarts += 1
            self.stats.restart_ns.append(time.perf_counter_ns() - t0)
        state = self.domain.jit_state
        state["driver"], state["restarts"] = driver.id, self.stats.restarts
        return True

    def _snapshot(self, m: Method, args: tuple):
        """The values of a request's by-value ``RRef[T]`` args, copied before it
        enters the driver (None if some by-value arg is not an ``RRef[T]``)."""
        out = []
        for p, a in zip(m.params, args):
            if p.mode != "move":
                out.append(None)
            elif type(p.type) is RRefType:
                out.append(a.get())
            else:
                return None
        return out

    def _reallocate(self, m: Method, args: tuple, values):
        """The request's args again, each by-value RRef the driver took down
        re-allocated from its snapshot (RedLeaf's bdev shadow does the same);
        None if there is no snapshot."""
        if values is None:
            return None
        new = self.domain.heap.new
        return tuple(new(p.type, v) if p.mode == "move" else a
                     for p, a, v in zip(m.params, args, values))

    def _drop(self, m: Method, args) -> None:
        """Free what the shadow still owns of a request's by-value arguments."""
        if args is not None:
            k, me = self.domain.kernel.heap.k, self.domain.id
            for p, a in zip(m.params, args):
                if p.mode == "move":
                    _free_owned(k, p.type, a, me)

    def _forward(self, m: Method, moves: bool, args: tuple):
        """One request: forward it; if the driver died under it, recover the driver
        and retry (its by-value RRefs re-allocated), or report ``RpcError``.
        ``moves``: does the method take anything by value?"""
        self.stats.calls += 1
        kernel = self.domain.kernel
        deaths = 0
        while True:
            driver = kernel.lookup(self.target)
            entered = moves and driver.domain.alive  # a dead driver is refused: args stay ours
            values = self._snapshot(m, args) if entered else None
            r = getattr(driver, m.name)(*args)
            if not isinstance(r, RpcError) or driver.domain.alive:
                return r   # done, or a failure behind the driver, which it survived
            self.stats.in_flight += 1    # it died under this request
            deaths += 1
            if entered:   # the by-value args went down with the driver
                args = self._reallocate(m, args, values)
            if (not self._recover() or args is None or self.policy.in_flight == "report"
                    or deaths > self.policy.max_retries):
                self.stats.reported += 1
                self._drop(m, args)
                return r
            self.stats.retried += 1
            kernel.events.record("retry", self.target, f"{self.domain.name} retries "
                                 f"{m.name} (death {deaths} under this request)")


# --- the jitted tier -----------------------------------------------------------
#
# A jitted shadow is an ordinary domain: @njit(boundscheck=True) functions, one
# per method, generated for the driver implementation it guards and checked like
# any domain's. Its state is a record holding the driver's current domain id and
# the restarts so far (no addresses). It calls the driver through the driver's
# generated proxy and, when the driver died, asks the kernel to recover it:
# ``restart_driver`` is the shadow's capability, honoured only for a domain the
# kernel created as a shadow (``Kernel.create_shadow``) and only for its own
# driver. Requests with by-value RRef arguments that entered the driver cannot be
# retried (the arguments went down with it): after the restart they are reported
# as RPC_PANIC, unless each such argument is one the driver only fills (the
# interface's ``__refilled__``): then ``refill`` hands the shadow a fresh one. A shadow's methods return (status, result) (``reports_status``),
# so the proxy in front of it passes the status on without crashing the shadow,
# which lives on for the next request.

SHADOW_STATE = state_type(driver=np.int64, restarts=np.int64)
_KERNELS: "weakref.WeakValueDictionary[int, object]" = weakref.WeakValueDictionary()


def _restart_for(k: int, shadow_id: int, status: int, deaths: int) -> int:
    """The kernel side of :func:`restart_driver`: finish the crash the shadow's call
    saw (``status``: RPC_PANIC if the request was inside the driver; ``deaths``: how many
    times the driver died under this request) and bring its driver back; 1 if the driver
    is alive and the request is to be retried, 2 if it is alive and the policy reports
    the request, 0 if the policy gave up, -1 if the caller is not a shadow (it has no
    such right)."""
    kernel = _KERNELS.get(k)     # a kernel with no shadow has no entry
    if kernel is None:
        return -1
    kernel._settle_jitted_deaths("panic in a jitted call through a shadow")
    dom = kernel._domains.get(shadow_id & hp.SLOT_MASK)
    if dom is None or dom.id != shadow_id or not isinstance(dom.impl, ShadowBase):
        return -1
    dom.impl.stats.in_flight += status == RPC_PANIC
    if not dom.impl._recover():
        return 0
    if dom.impl.policy.in_flight == "report" or deaths > dom.impl.policy.max_retries:
        dom.impl.stats.reported += 1
        return 2
    dom.impl.stats.retried += 1
    kernel.events.record("retry", dom.impl.target, f"{dom.name} retries the request in its "
                         f"jitted code (death {deaths} under it)")
    return 1


def _refill_for(k: int, shadow_id: int, method_index: int, param_index: int) -> int:
    """The kernel side of :func:`refill`: a fresh, zeroed object of the parameter's
    type, owned by the shadow; -1 if the caller is not a shadow."""
    kernel = _KERNELS.get(k)
    dom = kernel._domains.get(shadow_id & hp.SLOT_MASK) if kernel is not None else None
    if dom is None or dom.id != shadow_id or not isinstance(dom.impl, ShadowBase):
        return -1
    m = list(dom.iface.__methods__.values())[method_index]
    return kernel.heap.alloc(m.params[param_index].type, shadow_id)


@njit(cache=True)
def _not_a_shadow():
    raise PermissionError("restart_driver: the calling domain is not a shadow")


@njit(cache=True)
def restart_driver(k, status, deaths):
    """For a jitted shadow: its driver died (``status``: what the call under which it died
    returned; ``deaths``: how many times it died under this request); recover it (the
    restart policy decides). Whether to retry the request: the driver is alive again and
    the policy retries this request.
    Runs as the calling domain, which must be a shadow (the kernel's capability check;
    anyone else panics)."""
    me = jit_current(k)
    with objmode(up="int64"):
        up = _restart_for(k, me, status, deaths)
    if up < 0:
        _not_a_shadow()
    return up == 1


@njit(cache=True)
def refill(k, method_index, param_index):
    """For a jitted shadow whose request went down with its driver: a fresh object for
    a by-value parameter the driver only fills (the interface's ``__refilled__``), owned
    by the shadow. Runs as the calling domain, which must be a shadow."""
    me = jit_current(k)
    with objmode(h="int64"):
        h = _refill_for(k, me, method_index, param_index)
    if h < 0:
        _not_a_shadow()
    return h


#: what a generated shadow may call beyond the domain API (kernel/views.py)
SHADOW_API = (restart_driver, refill)


def _jit_shadow_sources(iface: type, driver_cls: type) -> dict[str, str]:
    """The generated jitted shadow module of every method the driver implements jitted
    (each imports the driver's generated proxy, from a module of its own)."""
    iface = iface.declared()
    refilled = getattr(iface, "__refilled__", {})
    order = list(iface.__methods__)
    out = {}
    for name, impl in getattr(driver_cls, "jit_methods", {}).items():
        m = iface.__methods__[name]
        out[name] = shadow_source(m, callee_module(iface.__name__, m, impl),
                                  tuple(refilled.get(name, ())), order.index(name))
    return out


def jit_shadow_source(iface: type, driver_cls: type) -> str:
    """What the shadow generator wrote for ``driver_cls``'s jitted methods (to read)."""
    return "\n\n".join(_jit_shadow_sources(iface, driver_cls).values())


def jit_shadow_methods(iface: type, driver_cls: type) -> dict:
    """The jitted shadow function of every method the driver implements in the jitted tier."""
    return {name: getattr(load_generated(f"redleaf_shadow_{iface.__name__}_{name}", src),
                          f"shadow_{name}")
            for name, src in _jit_shadow_sources(iface, driver_cls).items()}


def shadow_class(iface: type, driver_cls: type) -> type:
    """A shadow implementation of ``iface`` guarding domains of ``driver_cls``."""
    iface = iface.declared()
    cache = iface.__dict__.get("_shadow_classes")
    if cache is None:
        cache = iface._shadow_classes = {}
    if driver_cls in cache:
        return cache[driver_cls]

    def forwarder(m):
        moves = any(p.mode == "move" for p in m.params)

        def method(self, *args):
            return self._forward(m, moves, args)
        method.__name__ = m.name
        method.__doc__ = f"Forward {m.signature()} to the guarded driver, recovering it."
        return method

    def no_create(self, *args):
        raise TypeError("a shadow is started with Kernel.create_shadow, not a @create method")

    ns = {m.name: forwarder(m) for m in iface.__methods__.values()}
    ns.update({name: no_create for name in iface.__creates__})
    ns["jit_methods"] = jit_shadow_methods(iface, driver_cls)
    cls = type(f"{iface.__name__}Shadow", (ShadowBase, iface), ns)
    cache[driver_cls] = cls
    return cls


__all__ = ["RestartPolicy", "ShadowStats", "shadow_class", "restart_driver"]
