"""Fault injection: the kernel's table of armed faults, and the point where they fire.

A domain marks the places where a fault may strike with ``fault_point(k, P)``
(jitted, the domain API) or, in the Python tier, its proxy does so at the entry
of every method (``Domain.fault_point``). Points are named by the domain class
(``fault_points = ("read", "write", "mid_batch", ...)``; ``P`` is the index
of a name), and the methods of its interface are points too.

While nothing is armed a point costs one load and one branch (word 0 of the
domain's row of the table is 0). Armed (:meth:`Kernel.inject`), a fault is
seeded and reproducible: it fires at a named point or at any, after ``after``
hits, then on every ``every``-th hit or with probability ``probability`` per
hit, at most ``times`` times. What it does, limited to what safe code can do:

* ``panic``: an exception in the domain: its proxy crashes it and reclaims it;
* ``corrupt``: one bit of the domain's own typed state flips (an index, a
  length, a flag) and the domain runs on with it;
* ``hang``: the domain stops making progress; the budget check at the point
  catches it after ``budget_us`` and crashes it (MINIX's heartbeat, made
  cooperative: jitted code cannot be interrupted from outside);
* ``wrong_value``: a value the domain is about to write to its device (a
  register, a descriptor field) has one bit flipped; such points are marked
  with ``v = fault_value(k, P, v)`` where the driver writes it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from ..lowlevel.clock import rdtsc
from ..lowlevel.memory import load, store
from .proxy import jit_current
from .state import D_FAULTS, D_GRANTS, FAULT_WORDS, MAX_RES, RES_WORDS

F_ARMED, F_POINT, F_AFTER, F_EVERY, F_PROB, F_RNG, F_KIND, F_ARG, F_HITS, F_FIRED, F_LIMIT, \
    F_LAST = range(12)
PANIC, CORRUPT, HANG, WRONG_VALUE = 1, 2, 3, 4
KINDS = {"panic": PANIC, "corrupt": CORRUPT, "hang": HANG, "wrong_value": WRONG_VALUE}
ANY_POINT = -1


@dataclass(frozen=True)
class Fault:
    """A fault to arm in one domain (see the module docstring)."""

    kind: str = "panic"
    point: str | None = None      # a name in the domain's fault points; None: any point
    after: int = 0                # hits of the point that pass before the first injection
    every: int = 0                # then every k-th hit (0: no more, unless `probability`)
    probability: float = 0.0      # per hit, after `after` (instead of `every`)
    times: int = 1                # injections before it disarms itself (0: no limit)
    seed: int = 1
    bit: int = 0                  # corrupt: which bit of the domain's state record;
    #                               wrong_value: which bit of the value
    budget_us: float = 50.0       # hang: when the budget check catches it

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Fault.kind: {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.after < 0 or self.every < 0 or self.times < 0:
            raise ValueError("Fault: after, every and times must be >= 0")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"Fault.probability: {self.probability} is not in [0, 1]")
        if self.budget_us <= 0:
            raise ValueError("Fault.budget_us must be > 0")

    def row(self, point: int, hz: float, state_bits: int) -> np.ndarray:
        """The fault table row that arms this fault."""
        if self.kind == "corrupt" and not 0 <= self.bit < state_bits:
            raise ValueError(f"Fault.bit: {self.bit} is outside the domain's state "
                             f"(bits 0..{state_bits - 1})")
        if self.kind == "wrong_value" and not 0 <= self.bit < 63:
            raise ValueError(f"Fault.bit: {self.bit} is not a bit of a value (0..62)")
        r = np.zeros(FAULT_WORDS, np.int64)
        r[F_ARMED], r[F_POINT], r[F_AFTER], r[F_EVERY] = 1, point, self.after, self.every
        r[F_PROB] = int(self.probability * (1 << 32))
        r[F_RNG] = (self.seed * 0x9E3779B97F4A7C15 + 1) & 0x7FFFFFFFFFFFFFFF or 1
        r[F_KIND], r[F_LIMIT] = KINDS[self.kind], self.times
        r[F_ARG] = self.bit if self.kind in ("corrupt", "wrong_value") else \
            int(self.budget_us * 1e-6 * hz)
        return r


@njit(cache=True, inline="always")
def _row(k, me):
    """The address of domain ``me``'s row of the fault table."""
    return load(k, D_FAULTS) + (me & 0xFFFFFFFF) * FAULT_WORDS * 8


@njit(cache=True)
def fault_due(k, me, point):
    """Count a hit of ``point`` in domain ``me``'s armed row; the kind to inject now
    (0: none). Shared by both tiers."""
    row = _row(k, me)
    if load(row, F_ARMED) == 0:
        return 0
    want = load(row, F_POINT)
    if want != ANY_POINT and want != point:
        return 0
    hits = load(row, F_HITS) + 1
    store(row, F_HITS, hits)
    after = load(row, F_AFTER)
    if hits <= after:
        return 0
    prob = load(row, F_PROB)
    if prob > 0:
        x = load(row, F_RNG)          # xorshift64
        x ^= (x << 13) & 0x7FFFFFFFFFFFFFFF
        x ^= x >> 7
        x ^= (x << 17) & 0x7FFFFFFFFFFFFFFF
        store(row, F_RNG, x)
        fire = (x & 0xFFFFFFFF) < prob
    else:
        every = load(row, F_EVERY)
        fire = hits == after + 1 or (every > 0 and (hits - after - 1) % every == 0)
    if not fire:
        return 0
    fired = load(row, F_FIRED) + 1
    store(row, F_FIRED, fired)
    store(row, F_LAST, point)
    if load(row, F_LIMIT) > 0 and fired >= load(row, F_LIMIT):
        store(row, F_ARMED, 0)
    return load(row, F_KIND)


@njit(cache=True)
def perform(k, me, kind):
    """Do what a fault of ``kind`` (0: none) does to domain ``me``."""
    if kind == PANIC:
        raise RuntimeError("injected panic")
    row = _row(k, me)
    if kind == CORRUPT:
        bit = load(row, F_ARG)
        state = load(load(k, D_GRANTS), (me & 0xFFFFFFFF) * MAX_RES * RES_WORDS)
        word = state + (bit // 64) * 8
        store(word, 0, load(word, 0) ^ (1 << (bit % 64)))
    elif kind == HANG:
        end = rdtsc() + load(row, F_ARG)
        while rdtsc() < end:      # no progress; the budget check below ends it
            pass
        raise TimeoutError("hang detected: the domain overran its budget")


@njit(cache=True)
def _inject(k, me, point):
    """The slow path of :func:`fault_point`: a fault is armed in this domain."""
    perform(k, me, fault_due(k, me, point))


@njit(cache=True, inline="always")
def fault_point(k, point):
    """A place in domain code where an injected fault may strike (``point``: the index
    of its name in the domain's ``fault_points``). One load and a branch while no fault
    is armed in the running domain."""
    me = jit_current(k)
    if load(load(k, D_FAULTS), (me & 0xFFFFFFFF) * FAULT_WORDS) != 0:
        _inject(k, me, point)


@njit(cache=True)
def _wrong_value(k, me, point, value):
    """The slow path of :func:`fault_value`."""
    kind = fault_due(k, me, point)
    if kind == WRONG_VALUE:
        row = _row(k, me)
        return value ^ (1 << load(row, F_ARG))
    perform(k, me, kind)
    return value


@njit(cache=True, inline="always")
def fault_value(k, point, value):
    """``value`` (an int the domain is about to write to its device), or, when a
    ``wrong_value`` fault strikes at ``point``, ``value`` with one bit flipped (other
    kinds strike here as at :func:`fault_point`). One load and a branch while no fault
    is armed."""
    me = jit_current(k)
    if load(load(k, D_FAULTS), (me & 0xFFFFFFFF) * FAULT_WORDS) != 0:
        return _wrong_value(k, me, point, value)
    return value


__all__ = ["Fault", "fault_point", "fault_value", "fault_due", "perform"]
