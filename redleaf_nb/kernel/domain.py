"""Domains and the kernel that creates, names, crashes and reclaims them.

A domain is an instance of a class that implements an interface, plus its
private state. The kernel creates it through the interface's ``@create``
method (run inside the new domain), registers its proxy in a name service,
and on a crash or termination marks it dead, reclaims everything it owned
(exchange-heap objects, claimed devices) and lets its private state go.
Threads still inside a dead domain are unwound at their next proxy
boundary, to the continuation of the call that entered it.

A domain's id is a handle like an RRef's, ``(generation << 32) | slot``: the
slot indexes the kernel's ``domains`` array, whose word holds the slot's
current generation and state. A dead domain's slot is recycled (once it is
reclaimed) with the next generation, so a kernel survives any number of
restarts, and whatever still names the dead incarnation (a proxy, a jitted
state word, an owner or borrower word in the heap) no longer matches.
"""
from __future__ import annotations

import numba
import numpy as np
import pandas as pd

from . import dma
from . import faults as ft
from . import heap as hp
from . import proxy as px
from .events import EventLog
from .idl import Interface, JitUnsupported, jit_proxy
from .shadow import RestartPolicy, shadow_class
from .rref import DomainHeap, Handle, wrap
from .types import BorrowType, Device, RRefType, Scalar, exchangeable
from .state import MAX_RES
from .views import STATE
from ..lowlevel.clock import tsc_hz
from ..lowlevel.memory import c_function


class InjectedFault(RuntimeError):
    """The panic an injected fault raises inside a domain's Python tier
    (:meth:`Kernel.inject`, :meth:`Kernel.inject_crash`)."""


class DomainCreateError(RuntimeError):
    """A domain's ``@create`` method panicked; the half-made domain was reclaimed."""


def domain_word(domain_id: int, state: int) -> int:
    """The ``domains`` word of a domain in ``state``: its generation, and the state."""
    return (domain_id >> 32 << 32) | state


class Domain:
    """One domain: identity, implementation instance, lifecycle state."""

    def __init__(self, kernel: "Kernel", id: int, name: str, impl_cls=None,
                 factory=None, create_args: dict | None = None):
        self.kernel = kernel
        self.id = id
        self.slot = id & hp.SLOT_MASK
        self._alive_word = domain_word(id, px.ALIVE)
        self._final_state: str | None = None   # kept when the slot is recycled
        self.name = name
        self.impl_cls = impl_cls
        self.iface = impl_cls.declared() if impl_cls else None
        self.factory = factory
        self.create_args = create_args or {}
        self.impl = None
        self.jit_state = None
        self._granted: dict[int, np.ndarray] = {}   # kept alive while jitted code may see them
        self.crash_reason: str | None = None
        self.devices: set[str] = set()
        self._armed = False   # a fault may be armed (the table says whether it still is)
        names = tuple(getattr(impl_cls, "fault_points", ())) if impl_cls else ()
        methods = tuple(m for m in (self.iface.__methods__ if self.iface else ()) if m not in names)
        #: where a fault may strike: the class's named points, then its methods
        self.fault_points = names + methods

    def set_jit_state(self, state: np.ndarray) -> None:
        """Keep the domain's jitted state (the grant table holds its address, so it
        stays alive, even after a crash) and grant it as the domain's state: a
        record array of one element (``views.state_type``). Named, typed fields
        only: a bare array of words would bring back hand-kept index layouts."""
        if not (isinstance(state, np.ndarray) and state.dtype.names is not None
                and state.shape == (1,) and state.flags.c_contiguous):
            raise TypeError(f"{self.name}: jit_state() must return its state as a record "
                            "array of one element: np.zeros(1, views.state_type(field=type, "
                            f"...)), not {type(state).__name__} "
                            f"{getattr(state, 'dtype', '')}{getattr(state, 'shape', '')}")
        self.jit_state = state
        self._grant(STATE, state)

    def grant(self, index: int, array: np.ndarray) -> None:
        """Let this domain's jitted code see ``array`` as its region ``index``
        (``views.own_array``/``own_matrix``). The view is exactly the array, which
        the kernel keeps alive with the domain: nothing outside it is reachable. The
        devices the domain claims may DMA into its granted regions too (their IOMMU
        reads the same table: lowlevel/iommu.py)."""
        if not (isinstance(index, int) and 1 <= index < MAX_RES):
            raise ValueError(f"{self.name}: grant index must be an int in [1, {MAX_RES - 1}] "
                             f"(0 is the domain's state), got {index!r}")
        if not (isinstance(array, np.ndarray) and array.ndim in (1, 2)
                and array.flags.c_contiguous and array.flags.writeable):
            raise TypeError(f"{self.name}: grant {index}: expected a writeable, contiguous "
                            "one- or two-dimensional numpy array")
        self._grant(index, array)

    def _grant(self, index: int, array: np.ndarray) -> None:
        self._granted[index] = array
        rows, cols = (array.shape[0], 0) if array.ndim == 1 else array.shape
        self.kernel.heap.h.grants[self.slot, index] = (array.ctypes.data, rows, cols,
                                                       array.itemsize)

    @property
    def state(self) -> str:
        word = int(self.kernel.heap.h.domains[self.slot])
        if word >> 32 != self.id >> 32:
            return self._final_state  # the slot holds a later incarnation
        return px.STATE_NAMES[word & hp.SLOT_MASK]

    @property
    def alive(self) -> bool:
        return self.kernel.heap.h.domains[self.slot] == self._alive_word

    @property
    def heap(self) -> DomainHeap:
        """The exchange heap, allocating for the domain that runs the code."""
        return self.kernel.domain_heap

    def lookup(self, name: str):
        raise PermissionError(f"{self.name}: a domain has no name service; it receives the "
                              "domains it may call as create arguments (declare a parameter of "
                              "their interface in its @create method) or through calls")

    def claim_device(self, name: str):
        raise PermissionError(f"{self.name}: a domain cannot claim a device by name; declare a "
                              "Device parameter in its @create method, and claim the capability "
                              "it is handed with self.domain.claim(device)")

    def claim(self, device: Device):
        """Take the device a :class:`Device` capability names (handed to this domain as
        a create argument); the device model, for the driver to program."""
        if not isinstance(device, Device) or device.kernel is not self.kernel:
            raise PermissionError(f"{self.name}: claim() takes a Device capability of this "
                                  f"kernel, handed to the domain; got {device!r}")
        return self.kernel.claim_device(self, device.name)

    def run_jitted(self, fn, *args):
        """Run one of this domain's jitted kernels ``fn(k, state, *args)`` from its
        Python tier, as this domain (so the heap checks see the right owner); ``state``
        is the domain's id, as its proxy hands it."""
        calls = self.kernel.heap.h.calls
        prev = calls[px.CURRENT]
        calls[px.CURRENT] = self.id
        try:
            return fn(self.kernel.heap.k, self.id, *args)
        finally:
            calls[px.CURRENT] = prev

    def fault_point(self, method: str) -> None:
        """Called by proxies inside the callee, at a method's entry: where an armed
        fault strikes in the Python tier (kernel/faults.py)."""
        if not self._armed:
            return
        k, h = self.kernel.heap.k, self.kernel.heap.h
        kind = ft.fault_due(k, self.id, self.fault_points.index(method))
        self._armed = bool(h.faults[self.slot, ft.F_ARMED])
        if kind == ft.PANIC:
            raise InjectedFault(f"injected panic in {self.name}.{method}")
        if kind:
            ft.perform(k, self.id, kind)

    def __repr__(self):
        return f"<Domain {self.id} '{self.name}' {self.state}>"


_HZ: list[float] = []


def _tsc_hz() -> float:
    """The cycle counter's frequency, measured once (a hang's budget is in cycles)."""
    if not _HZ:
        _HZ.append(tsc_hz(0.05))
    return _HZ[0]


class Kernel:
    """The trusted core: exchange heap, domains, name service, devices.

    Code run directly (a notebook cell) runs as the built-in ``init`` domain.
    """

    def __init__(self, heap_bytes: int = 64 << 20, max_objects: int = 1 << 16,
                 max_domains: int = 256):
        self.heap = hp.ExchangeHeap(heap_bytes, max_objects, max_domains)
        self.calls = px.CallRuntime(self)
        self.domain_heap = DomainHeap(self.heap, self.calls.current_id)
        self._domains: dict[int, Domain] = {}   # slot -> its latest incarnation
        self._free_slots: list[int] = []        # slots of dead, reclaimed domains
        self._names: dict[str, px.Proxy] = {}
        self._devices: dict[str, list] = {}  # name -> [device, owner domain id or None]
        self._iommu: dict[str, np.ndarray] = {}  # name -> its IOMMU context (kernel/dma.py)
        self.events = EventLog()     # deaths and recoveries, in order (kernel/events.py)
        self.init = self._new_domain("init")

    # -- creation --
    def _new_domain(self, name: str, impl_cls=None, factory=None, args=None) -> Domain:
        words = self.heap.h.domains
        if not self._free_slots:
            self._settle_jitted_deaths("panic in a jitted call")  # their slots become free
        if self._free_slots:
            slot = self._free_slots.pop()
            old = self._domains[slot]
            old._final_state = old.state
            self.heap.names.pop(old.id, None)
        elif len(self._domains) + 1 < len(words):
            slot = len(self._domains) + 1  # slot 0 means "in a container"
        else:
            raise RuntimeError(f"no more domain ids: this kernel allows {len(words) - 1} "
                               "live domains at once (max_domains)")
        gen = (int(words[slot]) >> 32) % ((1 << 31) - 1) + 1   # 1, 2, ..., 2**31 - 1, 1, ...
        d = Domain(self, (gen << 32) | slot, name, impl_cls, factory, args)
        self.heap.h.grants[slot] = 0    # nothing of the slot's last incarnation stays visible
        self.heap.h.faults[slot] = 0    # nor armed in it
        self._domains[slot] = d
        words[slot] = d._alive_word
        self.heap.names[d.id] = name
        return d

    def create(self, name: str, impl_cls: type, *, factory: str | None = None, **args):
        """Create a domain from an implementation class; returns its proxy.

        ``args`` are the parameters of the interface's ``@create`` method;
        they are checked like any cross-domain call's arguments.
        """
        if not (isinstance(impl_cls, type) and issubclass(impl_cls, Interface)
                and Interface not in impl_cls.__bases__ and impl_cls is not Interface):
            raise TypeError(f"create '{name}': {impl_cls!r} is not a class implementing an "
                            "interface (class MyDomain(SomeInterface): ...)")
        if numba.config.BOUNDSCHECK == 0:
            raise RuntimeError(f"create '{name}': numba's bounds checking is forced off "
                               "(NUMBA_BOUNDSCHECK=0), and domain code is safe only with it; "
                               "unset NUMBA_BOUNDSCHECK")
        if name in self._names and self._names[name].domain.alive:
            raise ValueError(f"create '{name}': a live domain already has that name")
        iface = impl_cls.declared()
        method = self._factory(iface, factory, args)
        return self._start(name, impl_cls, method, args)

    def _factory(self, iface, factory, args=()):
        creates = iface.__creates__
        if factory is None:
            if len(creates) > 1:   # the one whose parameters the arguments name (best)
                overlap = {name: len({p.name for p in m.params} & set(args))
                           - len({p.name for p in m.params} ^ set(args))
                           for name, m in creates.items()}
                best = max(overlap.values())
                fits = [name for name, score in overlap.items() if score == best]
                if len(fits) == 1:
                    return creates[fits[0]]   # its own errors name what is missing or extra
                raise TypeError(f"{iface.__name__} has several @create methods "
                                f"({', '.join(creates)}) and the arguments "
                                f"({', '.join(args) or 'none'}) fit more than one: "
                                "pass factory=")
            return next(iter(creates.values()), None)
        if factory not in creates:
            raise TypeError(f"{iface.__name__} has no @create method '{factory}' "
                            f"(it has: {', '.join(creates) or 'none'})")
        return creates[factory]

    def _start(self, name, impl_cls, method, args):
        iface = impl_cls.declared()
        params = method.params if method else ()
        where = method.qualname if method else f"create {iface.__name__}"
        missing = [p.name for p in params if p.name not in args]
        extra = sorted(set(args) - {p.name for p in params})
        if missing or extra:
            raise TypeError(f"{where}: " + "; ".join(
                ([f"missing argument(s) {', '.join(map(repr, missing))}"] if missing else []) +
                ([f"unexpected argument(s) {', '.join(map(repr, extra))}"] if extra else [])))
        caller = self.calls.current()
        checked = self.calls.check_args(caller, where, tuple((p.name, p.type, args[p.name])
                                                             for p in params))
        dom = self._new_domain(name, impl_cls, method.name if method else None, dict(args))
        cont = px.Continuation(caller, dom, where)
        moved = [self.calls.lend(cont, p.type, v) if isinstance(p.type, BorrowType)
                 else self.calls.move_in(cont, p.type, v) for p, v in zip(params, checked)]
        self.calls.push(cont)
        try:
            impl = impl_cls.__new__(impl_cls)
            impl.domain = dom
            dom.impl = impl
            impl.__init__()
            if method:
                getattr(impl, method.name)(*moved)
            if hasattr(impl, "jit_state"):
                dom.set_jit_state(impl.jit_state())
        except (Exception, px.DomainUnwind) as panic:
            err = self.calls.unwind(cont, panic)
            raise DomainCreateError(f"{where} panicked while creating '{name}': {panic!r}; "
                                    "the domain was reclaimed") from err
        self.calls.finish_unit(cont, None)
        proxy = iface.__proxy_class__(self, dom)
        self._names[name] = proxy
        return proxy

    def recreate(self, name: str):
        """Create a fresh instance of a dead domain with its original arguments
        (a shadow's restart: the same setup replayed)."""
        old = self._domain(name)
        if old.alive:
            raise ValueError(f"recreate '{name}': the domain is alive")
        if any(isinstance(v, Handle) for v in old.create_args.values()):
            raise ValueError(f"recreate '{name}': its create arguments included RRefs, which "
                             "moved into the dead domain and were reclaimed")
        iface = old.impl_cls.declared()
        method = iface.__creates__.get(old.factory) if old.factory else None
        fault = self.heap.h.faults[old.slot].copy() if old._armed else None
        proxy = self._start(name, old.impl_cls, method, old.create_args)
        self.events.record("restart", name, f"a fresh instance (id {proxy.domain.id:#x}) from "
                           "the original create arguments")
        if fault is not None:   # a fault in the code strikes again; its counts go on
            self.heap.h.faults[proxy.domain.slot] = fault
            proxy.domain._armed = bool(fault[ft.F_ARMED])
        return proxy

    def create_shadow(self, name: str, target: str, policy=None):
        """Start a shadow domain that guards (and recovers) domain ``target``."""
        guarded = self._domain(target)
        cls = shadow_class(guarded.iface, guarded.impl_cls)
        proxy = self._start(name, cls, None, {})
        proxy.domain.impl._setup(guarded.name, policy or RestartPolicy())
        return proxy

    # -- the name service --
    def register(self, name: str, proxy: px.Proxy) -> None:
        if not isinstance(proxy, px.Proxy):
            raise TypeError(f"register '{name}': only proxies can be registered")
        self._names[name] = proxy

    def lookup(self, name: str) -> px.Proxy:
        try:
            return self._names[name]
        except KeyError:
            raise KeyError(f"no domain named '{name}' (known: {', '.join(self._names)})") from None

    def _domain(self, name_or_proxy) -> Domain:
        if isinstance(name_or_proxy, px.Proxy):
            return name_or_proxy.domain
        if isinstance(name_or_proxy, Domain):
            return name_or_proxy
        return self.lookup(name_or_proxy).domain

    # -- failure --
    def crash(self, name, reason: str = "crashed on request") -> None:
        """Crash a domain now: mark it, reclaim all it owned. Idempotent."""
        self._kill(self._domain(name), px.CRASHED, reason)

    def terminate(self, name) -> None:
        """Terminate a domain cleanly: the same reclamation as a crash."""
        self._kill(self._domain(name), px.TERMINATED, "terminated")

    def _kill(self, dom: Domain, state: int, reason: str) -> None:
        if dom is self.init:
            raise ValueError("the init domain cannot be crashed or terminated")
        if not dom.alive:
            return
        self.heap.h.domains[dom.slot] = domain_word(dom.id, state)
        dom.crash_reason = reason
        self.events.record("crash" if state == px.CRASHED else "terminated", dom.name, reason)
        self._bury(dom)

    def _bury(self, dom: Domain, jitted: bool = False) -> None:
        """The last of a death: reclaim, drop the private heap, free the slot for reuse
        (only now: nothing of the dead incarnation is left under its id). ``jitted``: the
        jitted kernel already freed its heap objects where it died."""
        self.reclaim(dom, jitted)
        dom.impl = None  # the private heap goes with the domain
        self._free_slots.append(dom.slot)

    def reclaim(self, dom: Domain, jitted: bool = False) -> int:
        """Free every heap object and device a (dead) domain owns; objects freed."""
        n = hp.reclaim(self.heap.k, dom.id)
        if n or dom.devices or dom.impl is not None:   # not a buried domain's empty re-sweep
            freed = (f"heap objects freed by the jitted kernel where it died (+{n} now)"
                     if jitted else f"{n} heap objects freed")
            self.events.record("reclaim", dom.name, f"{freed}, devices released: "
                               f"{', '.join(dom.devices) or 'none'}")
        for dev in list(dom.devices):
            # a device must not DMA into buffers that were just freed
            quiesce = getattr(self._devices[dev][0], "quiesce", None)
            if quiesce is not None:
                quiesce()
            self._devices[dev][1] = None
            dma.set_owner(self._iommu[dev], self.heap.h, 0)
        dom.devices.clear()
        return n

    def inject(self, name, fault: ft.Fault) -> None:
        """Arm ``fault`` (:class:`~redleaf_nb.kernel.faults.Fault`) in a domain, replacing
        what was armed there; it strikes in both tiers, at the fault point it names."""
        dom = self._domain(name)
        if not isinstance(fault, ft.Fault):
            raise TypeError(f"inject '{dom.name}': expected a Fault, got {type(fault).__name__}")
        point = ft.ANY_POINT
        if fault.point is not None:
            if fault.point not in dom.fault_points:
                raise ValueError(f"inject '{dom.name}': {dom.iface.__name__} domain "
                                 f"{dom.impl_cls.__name__} has no fault point or method "
                                 f"'{fault.point}' (it has: {', '.join(dom.fault_points)})")
            point = dom.fault_points.index(fault.point)
        bits = 8 * dom.jit_state.dtype.itemsize if dom.jit_state is not None else 0
        self.heap.h.faults[dom.slot] = fault.row(point, _tsc_hz(), bits)
        dom._armed = True
        self.events.record("armed", dom.name, repr(fault))

    def disarm(self, name) -> None:
        """Disarm whatever fault is armed in a domain (its counts stay readable)."""
        dom = self._domain(name)
        self.heap.h.faults[dom.slot, ft.F_ARMED] = 0
        dom._armed = False

    def fault_counts(self, name) -> dict:
        """The fault armed in a domain: whether it still is, hits of its point, injections."""
        row = self.heap.h.faults[self._domain(name).slot]
        return {"armed": bool(row[ft.F_ARMED]), "hits": int(row[ft.F_HITS]),
                "injected": int(row[ft.F_FIRED])}

    def inject_crash(self, name, on_call: str, after: int = 0) -> None:
        """Make a domain panic inside its next call (after ``after`` calls) of a method."""
        dom = self._domain(name)
        if on_call not in dom.iface.__methods__:
            raise ValueError(f"inject_crash: {dom.iface.__name__} has no method '{on_call}' "
                             f"(methods: {', '.join(dom.iface.__methods__)})")
        if not isinstance(after, int) or after < 0:
            raise ValueError(f"inject_crash: after must be an int >= 0, got {after!r}")
        self.inject(name, ft.Fault("panic", point=on_call, after=after))

    # -- devices --
    def add_device(self, name: str, device, step=None) -> Device:
        """Plug a device (hardware model) in; the capability to drive it, which only
        ``init`` holds until it hands it to a driver as a create argument. ``step``: the
        model's ``@njit step(mmio)``, to let it run beside the CPU whenever a domain
        waits for it (``views.device_wait``); without it, only a benchmark loop runs it."""
        if name in self._devices:
            raise ValueError(f"device '{name}' already exists")
        self._devices[name] = [device, None]
        self._iommu[name] = ctx = dma.new_context(self.heap.h)   # kept alive with the kernel
        attach = getattr(device, "attach_iommu", None)
        if attach is not None:
            attach(int(ctx.ctypes.data))
        if step is not None:      # a device that runs beside the CPU (views.device_wait)
            free = np.flatnonzero(self.heap.h.ticks[:, 0] == 0)
            if not len(free):
                raise RuntimeError(f"add_device '{name}': at most {len(self.heap.h.ticks)} "
                                   "devices that run beside the CPU")
            self.heap.h.ticks[free[0]] = (c_function(step).address, device.mmio)
        return Device(self, name)

    def dma_faults(self, name: str) -> dict:
        """What the IOMMU refused device ``name`` (lowlevel/iommu.py)."""
        return dma.faults(self._iommu[name])

    def claim_device(self, dom: Domain, name: str):
        """``dom`` takes the device (through its capability: :meth:`Domain.claim`)."""
        if name not in self._devices:
            raise KeyError(f"no device named '{name}'")
        dev, owner = self._devices[name]
        if owner is not None and owner != dom.id:
            raise PermissionError(f"device '{name}' is claimed by domain "
                                  f"'{self._domains[owner & hp.SLOT_MASK].name}'")
        self._devices[name][1] = dom.id
        dma.set_owner(self._iommu[name], self.heap.h, dom.id)
        dom.devices.add(name)
        return dev

    # -- the jitted tier --
    def jit_call(self, proxy: px.Proxy, method: str, *args):
        """Call ``method`` through its jitted proxy; returns (status, result).

        RRef arguments may be given as handle objects or raw handles. The
        callee's class supplies ``jit_methods`` (name -> ``@njit`` function
        ``impl(k, state, *args)``, ``state`` being the domain's id) and
        ``jit_state()``, its state record (``views.state_type``).
        """
        dom = proxy.domain
        iface, where = dom.iface, f"jit_call {dom.iface.__name__}.{method}"
        m = iface.__methods__.get(method)
        if m is None:
            raise ValueError(f"{where}: {iface.__name__} has no method '{method}' "
                             f"(methods: {', '.join(iface.__methods__)})")
        jitted = getattr(dom.impl_cls, "jit_methods", None)
        if jitted is None:
            raise JitUnsupported(f"{where}: domain '{dom.name}' ({dom.impl_cls.__name__}) has "
                                 "no jitted tier (its class defines no jit_methods); call it "
                                 "through its Python-tier proxy")
        if method not in jitted:
            raise JitUnsupported(f"{where}: domain '{dom.name}' ({dom.impl_cls.__name__}) has "
                                 f"no jitted implementation of '{method}' (jitted: "
                                 f"{', '.join(jitted) or 'none'})")
        fn = jit_proxy(iface, method, jitted[method]).fn
        if len(args) != len(m.params):
            raise TypeError(f"{m.qualname} takes {len(m.params)} argument(s), got {len(args)}")
        raw = [a.handle if isinstance(a, Handle) else
               p.type.coerce(a, f"{m.qualname}: parameter '{p.name}'")
               if isinstance(p.type, Scalar) else a for p, a in zip(m.params, args)]
        self.heap.h.calls[px.CURRENT] = self.calls.current().id
        self.heap.h.calls[px.DEPTH] = 0
        try:
            return fn(self.heap.k, dom.id, *raw)
        finally:
            self._settle_jitted_deaths(f"panic in jitted {dom.iface.__name__}.{method}")

    def _settle_jitted_deaths(self, reason: str) -> None:
        """Finish the Python-side part of crashes the jitted tier recorded
        (its kernels already marked the domain and reclaimed its heap objects)."""
        for d in self._domains.values():
            if not d.alive and d.impl is not None:
                d.crash_reason = reason
                self.events.record("unwind", d.name, "the jitted call unwound to its caller; "
                                   "the jitted kernel marked the domain and freed its objects")
                self.events.record("crash", d.name, reason)
                self._bury(d, jitted=True)

    # -- inspection --
    def new(self, t, value=None) -> Handle:
        """Allocate in the exchange heap as the running domain (init at top level)."""
        return self.domain_heap.new(t, value)

    def wrap(self, handle: int, t) -> Handle:
        """A Python-tier handle object for a raw handle (e.g. from the jitted tier)."""
        t = exchangeable(t)
        return wrap(self.domain_heap, handle, RRefType(t) if t.plain else t)

    def domain_list(self) -> list[Domain]:
        """Every domain (the latest incarnation of each slot), init first."""
        return list(self._domains.values())

    def domains(self) -> pd.DataFrame:
        """Every domain with its state and what it owns in the exchange heap."""
        return pd.DataFrame([(d.id, d.name, d.iface.__name__ if d.iface else "-", d.state,
                              *self.heap.owned(d.id),
                              ", ".join(sorted(d.devices)), d.crash_reason or "")
                             for d in self._domains.values()],
                            columns=["id", "name", "interface", "state", "objects", "bytes",
                                     "devices", "reason"])
