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
from dataclasses import dataclass, field

from .idl import Method
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


def shadow_class(iface: type) -> type:
    """A shadow implementation of ``iface`` (generated once per interface)."""
    iface = iface.declared()
    cached = getattr(iface, "_shadow_class", None)
    if cached is not None and cached.__dict__.get("__shadows__") is iface:
        return cached

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
    ns["__shadows__"] = iface
    cls = type(f"{iface.__name__}Shadow", (ShadowBase, iface), ns)
    iface._shadow_class = cls
    return cls


__all__ = ["RestartPolicy", "ShadowStats", "shadow_class"]
