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
and are simply lent again. Requests whose by-value arguments cannot be
copied (containers, optionals) are *reported* with ``RpcError`` after the
restart. Restarts follow an Erlang/OTP-style intensity limit: at most
``max_restarts`` within ``period`` seconds, after which errors are reported.
"""
from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field

import numpy as np

from .idl import Method, callee_source, load_generated
from .proxy import RpcError
from .types import RRefType


@dataclass
class RestartPolicy:
    """How often a shadow may restart its driver (OTP: intensity and period)."""

    max_restarts: int = 5
    period: float = 1.0

    def __post_init__(self):
        if self.max_restarts < 0 or self.period <= 0:
            raise ValueError("RestartPolicy: max_restarts must be >= 0 and period > 0 seconds")


@dataclass
class ShadowStats:
    calls: int = 0
    restarts: int = 0
    retried: int = 0
    reported: int = 0
    restart_ns: list = field(default_factory=list)


class ShadowBase:
    """Forwarding, restart and retry, shared by every generated shadow class."""

    target: str
    policy: RestartPolicy
    stats: ShadowStats

    def _setup(self, target: str, policy: RestartPolicy):
        self.target, self.policy, self.stats = target, policy, ShadowStats()
        self._recent: list[float] = []
        kernel, driver = self.domain.kernel, self.domain.kernel.lookup(target).domain
        _KERNELS[id(kernel)] = kernel
        self.domain.set_jit_state(np.array([driver.id, 0, policy.max_restarts, id(kernel),
                                            driver.jit_state_address], np.int64))

    def _may_restart(self) -> bool:
        now = time.monotonic()
        self._recent = [t for t in self._recent if now - t < self.policy.period]
        if len(self._recent) >= self.policy.max_restarts:
            return False
        self._recent.append(now)
        return True

    def _copy_args(self, m: Method, args: tuple):
        """Fresh copies of by-value RRef[T] args (None if some cannot be copied)."""
        out = []
        for p, a in zip(m.params, args):
            if p.mode != "move":
                out.append(a)
            elif isinstance(p.type, RRefType):
                out.append(self.domain.heap.new(p.type, a.get()))
            else:
                return None
        return tuple(out)

    def _forward(self, m: Method, args: tuple):
        self.stats.calls += 1
        kernel = self.domain.kernel
        copies = any(p.mode == "move" for p in m.params)
        spare = self._copy_args(m, args) if copies else args
        while True:
            r = getattr(kernel.lookup(self.target), m.name)(*args)
            if not isinstance(r, RpcError):
                break
            if not self._may_restart():
                self.stats.reported += 1
                break
            t0 = time.perf_counter_ns()
            kernel.recreate(self.target)
            self.stats.restart_ns.append(time.perf_counter_ns() - t0)
            self.stats.restarts += 1
            if spare is None:
                self.stats.reported += 1
                break
            self.stats.retried += 1
            args = spare
            spare = self._copy_args(m, args) if copies else args
        if copies and spare is not None:
            for p, a in zip(m.params, spare):
                if p.mode == "move":
                    a.free()
        return r


# --- the jitted tier -----------------------------------------------------------
#
# A jitted shadow is an @njit function per method, generated for the driver
# implementation it guards: it calls the driver through the driver's bound
# proxy and, when the call fails, restarts the driver (through an objmode
# call back into the kernel: re-creating a domain is the Python tier's job)
# and retries. Its jitted state is an int64 array: the driver's domain id,
# the restarts so far, the restart limit, the kernel's key and the address of
# the driver's own jitted state. The jitted tier's limit counts restarts over
# the shadow's life (no period). Requests with by-value RRef arguments cannot
# be retried (the arguments went down with the driver): after the restart
# they are reported as RPC_PANIC. A shadow's methods return (status, result)
# (``reports_status``), so the proxy in front of it passes the status on
# without crashing the shadow, which lives on for the next request.

CTL_DRIVER, CTL_RESTARTS, CTL_LIMIT, CTL_KERNEL, CTL_STATE = range(5)
_KERNELS: "weakref.WeakValueDictionary[int, object]" = weakref.WeakValueDictionary()


def jit_restart(kernel_key: int, driver_id: int) -> tuple[int, int]:
    """Re-create a crashed driver for a jitted shadow: its new id and state address."""
    kernel = _KERNELS[kernel_key]
    kernel._settle_jitted_deaths("panic in a jitted call through a shadow")
    new = kernel.recreate(kernel._domains[int(driver_id)].name).domain
    return new.id, new.jit_state_address


def _jit_shadow_source(iface: type, m: Method, driver_impl) -> str:
    """The shadow of one method: a fast path that only forwards, and the
    recovery kept in a function of its own (restart, retry or report), so
    that the fast path stays as cheap as a plain forwarding call."""
    args = "".join(", " + p.name for p in m.params)
    retry = all(p.mode != "move" for p in m.params)
    call = (f"driver_{m.name}(k, load(state, {CTL_DRIVER}), load(state, {CTL_STATE}){args})")
    null = "(" + ", ".join("0" for _ in m.ret.items) + ",)" if hasattr(m.ret, "items") else "0"
    restart = [f"        kernel, driver = load(state, {CTL_KERNEL}), load(state, {CTL_DRIVER})",
               '        with objmode(new_id="int64", new_state="int64"):',
               "            new_id, new_state = jit_restart(kernel, driver)",
               f"        store(state, {CTL_DRIVER}, new_id)",
               f"        store(state, {CTL_STATE}, new_state)",
               f"        store(state, {CTL_RESTARTS}, load(state, {CTL_RESTARTS}) + 1)"]
    may_restart = f"load(state, {CTL_RESTARTS}) < load(state, {CTL_LIMIT})"
    recover = ["@njit(cache=True)",
               f"def recover_{m.name}(k, state{args}):",
               f'    """The driver failed {m.qualname}: restart it and '
               + ('retry."""' if retry else 'report (its by-value RRefs went down with it)."""')]
    if retry:
        recover += [f"    status, ret = RPC_PANIC, {null}",
                    f"    while status != RPC_OK and {may_restart}:", *restart,
                    f"        status, ret = {call}",
                    "    return status, ret"]
    else:
        recover += [f"    if {may_restart}:", *restart, f"    return RPC_PANIC, {null}"]
    fast = ["@njit(cache=True)",
            f"def shadow_{m.name}(k, state{args}):",
            f'    """Shadow of {m.signature()}: forward; recover the driver on failure.',
            "",
            "    Returns (status, result): a failure the shadow could not hide is reported",
            '    to the caller, and the shadow lives on for the next request."""',
            f"    status, ret = {call}",
            "    if status != RPC_OK:",
            f"        status, ret = recover_{m.name}(k, state{args})",
            "    return status, ret",
            "",
            "",
            f"shadow_{m.name}.reports_status = True"]
    return (f'"""Generated by redleaf-nb: jitted shadow of {m.qualname}."""\n'
            "from numba import njit, objmode\n"
            + "from redleaf_nb.kernel.raw import load, store\n"
            + "from redleaf_nb.kernel.shadow import jit_restart\n"
            + callee_source(iface, m, driver_impl, f"driver_{m.name}") + "\n\n"
            + "\n".join(recover) + "\n\n\n" + "\n".join(fast) + "\n")


def jit_shadow_methods(iface: type, driver_cls: type) -> dict:
    """The jitted shadow function of every method the driver implements in the jitted tier."""
    out = {}
    for name, impl in getattr(driver_cls, "jit_methods", {}).items():
        m = iface.__methods__[name]
        mod = load_generated(f"redleaf_shadow_{iface.__name__}_{name}",
                             _jit_shadow_source(iface, m, impl))
        out[name] = getattr(mod, f"shadow_{name}")
    return out


def shadow_class(iface: type, driver_cls: type) -> type:
    """A shadow implementation of ``iface`` guarding domains of ``driver_cls``."""
    iface = iface.declared()
    cache = iface.__dict__.get("_shadow_classes")
    if cache is None:
        cache = iface._shadow_classes = {}
    if driver_cls in cache:
        return cache[driver_cls]

    def forwarder(m):
        def method(self, *args):
            return self._forward(m, args)
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


__all__ = ["RestartPolicy", "ShadowStats", "shadow_class", "jit_restart"]
