"""Fault injection (kernel/faults.py): when a fault strikes, what each kind does, in
both tiers, and that it is reproducible from its seed."""
from __future__ import annotations

import time

import numpy as np
import pytest

from redleaf_nb import InjectedFault, Kernel, RpcError
from redleaf_nb.drivers.membdev import MemBDev, MemDisk
from redleaf_nb.interfaces.bdev import Block
from redleaf_nb.kernel.faults import Fault
from redleaf_nb.kernel.proxy import RPC_OK, RPC_PANIC


def disk(nblocks=16, **kw):
    k = Kernel(heap_bytes=1 << 20, **kw)
    proxy = k.create("membdev", MemBDev, device=k.add_device("memdisk", MemDisk(nblocks)),
                     nblocks=nblocks)
    return k, proxy


def fired_at(dom, point, hits):
    """The hits (1-based) of ``point`` at which the armed fault struck (Python tier)."""
    out = []
    for i in range(1, hits + 1):
        try:
            dom.fault_point(point)
        except InjectedFault:
            out.append(i)
    return out


def test_after_every_and_times_decide_which_hits_strike():
    k, p = disk()
    k.inject("membdev", Fault(point="read", after=2, every=3, times=0))
    assert fired_at(p.domain, "read", 12) == [3, 6, 9, 12]
    assert fired_at(p.domain, "write", 5) == []          # another point: never
    k.inject("membdev", Fault(point="read", every=1, times=2))
    assert fired_at(p.domain, "read", 5) == [1, 2]
    assert k.fault_counts("membdev") == {"armed": False, "hits": 2, "injected": 2}
    k.inject("membdev", Fault(after=1))                   # any point
    assert fired_at(p.domain, "nblocks", 3) == [2]


def test_a_probability_fault_is_reproducible_from_its_seed():
    def pattern(seed):
        k, p = disk()
        k.inject("membdev", Fault(point="read", probability=0.25, times=0, seed=seed))
        return fired_at(p.domain, "read", 2000)
    a, b, c = pattern(7), pattern(7), pattern(8)
    assert a == b and a != c
    assert 400 <= len(a) <= 600                           # 25% of 2000, +-5 sigma


def test_bad_faults_are_refused_naming_what_is_wrong():
    k, p = disk()
    with pytest.raises(ValueError, match="no fault point or method 'reed'.*read, write"):
        k.inject("membdev", Fault(point="reed"))
    with pytest.raises(ValueError, match="kind"):
        Fault("explode")
    with pytest.raises(ValueError, match="probability"):
        Fault(probability=1.5)
    with pytest.raises(ValueError, match="bit"):
        k.inject("membdev", Fault("corrupt", bit=10**6))


def test_a_panic_strikes_inside_the_jitted_driver_after_the_buffer_moved_in():
    k, p = disk()
    k.inject("membdev", Fault(point="read", after=1))
    buf = k.new(Block)
    status, buf2 = k.jit_call(p, "read", 0, buf)
    assert status == RPC_OK
    status, _ = k.jit_call(p, "read", 1, k.wrap(buf2, Block))
    assert status == RPC_PANIC and not p.domain.alive
    assert k.heap.live_objects == 0                       # its buffer went down with it
    k.heap.check_invariants()


def test_a_corrupt_fault_flips_one_bit_of_the_domains_own_state():
    k, p = disk(nblocks=16)
    bit = p.domain.jit_state.dtype.fields["nblocks"][1] * 8 + 5   # nblocks's bit 5
    k.inject("membdev", Fault("corrupt", point="read", bit=bit))
    assert k.jit_call(p, "read", 3, k.new(Block))[0] == RPC_OK     # it runs on
    assert p.domain.jit_state["nblocks"][0] == 16 ^ 32
    assert p.domain.alive


def test_a_hang_is_caught_by_its_budget_and_crashes_the_domain():
    k, p = disk()
    k.inject("membdev", Fault("hang", point="write", budget_us=3000))
    t0 = time.perf_counter()
    status, _ = k.jit_call(p, "write", 0, k.new(Block))
    took = time.perf_counter() - t0
    assert status == RPC_PANIC and not p.domain.alive
    assert took >= 0.003


def test_a_shadowed_driver_survives_every_fault_kind_transparently():
    k, _ = disk()
    sh = k.create_shadow("membdev-shadow", "membdev")
    data = k.new(Block, np.full(4096, 9, np.uint8))
    assert sh.write(2, data) is None
    for fault in (Fault(point="read"), Fault("hang", point="read", budget_us=100)):
        k.inject("membdev", fault)
        out = sh.read(2, k.new(Block))
        assert not isinstance(out, RpcError) and (out.get() == 9).all()
    assert sh.domain.impl.stats.restarts == 2


def test_a_recycled_domain_slot_starts_with_nothing_armed():
    k, p = disk(max_domains=3)
    k.inject("membdev", Fault(point="read", after=100))
    k.crash("membdev")
    p2 = k.create("other", MemBDev, device=k.add_device("memdisk2", MemDisk(4)), nblocks=4)
    assert p2.domain.slot == p.domain.slot
    assert k.fault_counts("other")["armed"] is False


def test_the_jitted_audit_finds_what_check_invariants_finds():
    from redleaf_nb.kernel import heap as hp
    from redleaf_nb.kernel.audit import problem
    k, p = disk()
    bufs = [k.new(Block) for _ in range(3)]
    assert problem(k.heap.k) is None
    k.heap.h.ctl[hp.LIVE_OBJECTS] += 1                       # a counter drifts
    assert "counter" in problem(k.heap.k)
    k.heap.h.ctl[hp.LIVE_OBJECTS] -= 1
    slot = bufs[0].handle & hp.SLOT_MASK
    k.heap.h.meta[slot, hp.OWNER] = p.domain.id
    k.crash("membdev")                                       # reclaims it: still whole
    assert problem(k.heap.k) is None and not bufs[0].is_live
    k.heap.h.meta[bufs[1].handle & hp.SLOT_MASK, hp.OWNER] = p.domain.id   # a leak
    assert "dead domain" in problem(k.heap.k)
