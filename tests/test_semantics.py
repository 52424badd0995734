"""The kernel semantics docs/ARCHITECTURE.md lists, one group of tests per rule."""
import numpy as np
import pytest

from typing import Optional

from redleaf_nb import (Borrow, BorrowError, ContainerError, DomainCreateError, ForeignRRef,
                        HeapExhausted, Interface, Kernel, RpcError, RRef, RRefArray, RRefDeque,
                        StaleRRef,
                        create, u32, u64)
from redleaf_nb.drivers.membdev import MemBDev, MemDisk
from redleaf_nb.interfaces.bdev import Block
from redleaf_nb.kernel.shadow import RestartPolicy
from redleaf_nb.kernel.types import Device


class Probe(Interface):
    """A test interface: every way an argument can cross, plus nesting."""

    def keep(self, x: RRef[u64]) -> None: ...
    def give(self) -> RRef[u64]: ...
    def look(self, x: Borrow[RRef[u64]]) -> u64: ...
    def relay(self, depth: u32) -> u32: ...
    def boom(self) -> u32: ...

    @create
    def make(self, peer: "Optional[Probe]") -> "Probe": ...


LOG = []


class ProbeImpl(Probe):
    def make(self, peer):
        self.peer = peer     # the next domain of a chain, handed over at creation
        self.kept = []

    def keep(self, x):
        LOG.append(("keep", x.owner))
        self.kept.append(x)

    def give(self):
        return self.domain.heap.new(u64, 42)

    def look(self, x):
        LOG.append(("look", x.owner, self.domain.kernel.heap.objects().borrows.max()))
        with pytest.raises(BorrowError, match="read-only"):
            x.set(0)
        return x.get()

    def relay(self, depth):
        LOG.append(("relay", self.domain.name))
        if self.peer is None:
            raise RuntimeError("end of the chain panics")
        r = self.peer.relay(depth + 1)
        if isinstance(r, RpcError):
            LOG.append(("caught", self.domain.name))
            return depth
        return r

    def boom(self):
        raise ZeroDivisionError("bug")


@pytest.fixture
def k():
    LOG.clear()
    return Kernel(heap_bytes=1 << 20, max_objects=256)


def chain(k, n):
    """p1 -> p2 -> ... -> pn (pn panics when relayed to); each is handed the next."""
    out = []
    for i in range(n, 0, -1):
        out.append(k.create(f"p{i}", ProbeImpl, peer=out[-1] if out else None))
    return out[::-1]


# --- RRef handles: stale and foreign --------------------------------------------

def test_stale_handle_after_free_and_after_move(k):
    a = k.new(u64, 7)
    a.free()
    with pytest.raises(StaleRRef, match="stale"):
        a.get()
    with pytest.raises(StaleRRef):
        a.free()
    (p,) = chain(k, 1)
    b = k.new(u64, 8)
    p.keep(b)
    with pytest.raises(StaleRRef, match=r"handle .* is stale.*caller 'init'"):
        b.set(1)
    k.heap.check_invariants()


def test_foreign_handle_is_refused_with_owner_and_caller_named(k):
    (p,) = chain(k, 1)
    p.keep(k.new(u64, 5))
    stolen = p.domain.impl.kept[0]  # a domain's RRef object leaked to init
    with pytest.raises(ForeignRRef, match=r"owner 'p1'.*not owned or borrowed.*caller 'init'"):
        stolen.get()
    with pytest.raises(ForeignRRef):
        p.keep(stolen)  # cannot pass what you do not own
    k.heap.check_invariants()


# --- ownership crossing a proxy ----------------------------------------------

def test_by_value_moves_ownership_and_result_moves_back(k):
    (p,) = chain(k, 1)
    x = k.new(u64, 1)
    p.keep(x)
    assert LOG == [("keep", "p1")]
    assert not x.is_live and p.domain.impl.kept[0].owner == "p1"
    y = p.give()
    assert y.owner == "init" and y.get() == 42
    acct = k.heap.accounting().set_index("domain").objects.to_dict()
    assert acct == {"init": 1, "p1": 1}


def test_borrow_bumps_the_count_for_the_call_only(k):
    (p,) = chain(k, 1)
    x = k.new(u64, 9)
    assert p.look(x) == 9
    assert LOG == [("look", "init", 1)]
    assert x.is_live and x.owner == "init"
    assert k.heap.objects().borrows.max() == 0
    x.set(10)  # writable again once the borrow ended


class Peer(Interface):
    """Two domains that lend to each other and call back: each is handed the other."""

    def meet(self, other: "Peer") -> None: ...
    def lend_out(self, keeper: Probe) -> u32: ...
    def look(self, x: Borrow[RRef[u64]]) -> u32: ...
    def poke(self) -> u32: ...


class LenderImpl(Peer):
    """Lends an RRef to the peer it met and, while it is lent, is called back by it."""

    def meet(self, other):
        self.other = other

    def lend_out(self, keeper):
        self.keeper = keeper
        self.x = self.domain.heap.new(u64, 5)
        refused = self.other.look(self.x)
        self.x.set(6)                     # the borrow is over: writable again
        return refused

    def look(self, x):
        raise NotImplementedError("the lender only lends")

    def poke(self):
        """How many of write, free and move the owner was refused while it lent x."""
        refused = 0
        for attempt in (lambda: self.x.set(0), self.x.free, lambda: self.keeper.keep(self.x)):
            try:
                attempt()
            except BorrowError:
                refused += 1
        return refused


class CallsBack(LenderImpl):
    """The borrower: while it holds the loan, it calls the lender back."""

    def look(self, x):
        return self.other.poke()


def test_an_owner_cannot_write_free_or_move_what_it_has_lent(k):
    (keeper,) = chain(k, 1)
    lender, borrower = k.create("lender", LenderImpl), k.create("borrower", CallsBack)
    lender.meet(borrower)
    borrower.meet(lender)
    assert lender.lend_out(keeper) == 3
    objs = k.heap.objects()
    assert objs.owner_name.tolist() == ["lender"] and objs.borrows.tolist() == [0]
    k.heap.check_invariants()


def test_a_new_object_never_shows_the_bytes_of_a_freed_one(k):
    old = k.new(u64, 0xDEAD)
    old.free()
    assert k.new(u64).get() == 0


def test_bad_arguments_raise_in_the_caller_and_nothing_moves(k):
    (p,) = chain(k, 1)
    x = k.new(u64, 3)
    before = k.heap.objects()
    with pytest.raises(TypeError, match=r"Probe.keep: parameter 'x': expected RRef\[u64\]"):
        p.keep(k.new(u32, 3))
    with pytest.raises(ValueError, match=r"Probe.relay: parameter 'depth'.*out of range"):
        p.relay(-1)
    with pytest.raises(TypeError, match="expected an integer"):
        p.relay("1")
    assert x.is_live and x.owner == "init"
    assert len(k.heap.objects()) == len(before) + 1
    assert p.domain.alive
    k.heap.check_invariants()


# --- panics, unwinding and reclamation ---------------------------------------

def test_panic_becomes_rpc_error_and_domain_is_reclaimed(k):
    (p,) = chain(k, 1)
    p.keep(k.new(u64, 1))
    p.keep(k.new(u64, 2))
    assert k.heap.live_objects == 2
    r = p.boom()
    assert isinstance(r, RpcError) and isinstance(r.cause, ZeroDivisionError)
    assert p.domain.state == "crashed"
    assert k.heap.live_objects == 0 and k.heap.accounting().empty
    k.heap.check_invariants()


def test_calls_into_a_dead_domain_return_rpc_error_without_entering(k):
    (p,) = chain(k, 1)
    k.crash("p1")
    x = k.new(u64, 2)
    r = p.keep(x)
    assert isinstance(r, RpcError) and "crashed" in str(r)
    assert LOG == [] and x.is_live and x.owner == "init"  # never entered, nothing moved


def test_nested_calls_unwind_to_the_right_continuation(k):
    p1, p2, p3 = chain(k, 3)
    assert p1.relay(0) == 1  # p3 panics; p2 catches RpcError and returns its depth
    assert LOG == [("relay", "p1"), ("relay", "p2"), ("relay", "p3"), ("caught", "p2")]
    assert [d.state for d in (p1.domain, p2.domain, p3.domain)] == ["alive", "alive", "crashed"]
    k.heap.check_invariants()


class Loop(Interface):
    def meet(self, other: "Loop") -> None: ...
    def there(self, n: u32) -> u32: ...
    def back(self, n: u32) -> u32: ...


class LoopImpl(Loop):
    def meet(self, other):
        self.other = other

    def there(self, n):  # runs in b
        try:
            r = self.other.back(n)
        except Exception:
            LOG.append("b swallowed the unwind")
        LOG.append("b ran on after its domain died")
        return r

    def back(self, n):
        if self.domain.name == "b":
            raise RuntimeError("b panics on its second entry")
        r = self.other.back(n)  # a -> b again: b panics
        LOG.append(("a got", type(r).__name__))
        return 99 if isinstance(r, RpcError) else r


def test_a_thread_inside_a_dead_domain_is_unwound_to_its_entry(k):
    """init -> b -> a -> b: the inner b panics, so the outer b frame must unwind too."""
    a, b = k.create("a", LoopImpl), k.create("b", LoopImpl)
    a.meet(b)
    b.meet(a)
    r = b.there(0)
    assert isinstance(r, RpcError) and r.domain == "b"
    assert LOG == [("a got", "RpcError")]  # b's outer frame never resumed
    assert b.domain.state == "crashed" and k.lookup("a").domain.alive
    k.heap.check_invariants()


def test_terminate_reclaims_like_a_crash(k):
    (p,) = chain(k, 1)
    p.keep(k.new(u64, 1))
    k.terminate("p1")
    assert p.domain.state == "terminated" and k.heap.live_objects == 0
    assert isinstance(p.give(), RpcError)


def test_injected_crash_fires_on_the_chosen_call(k):
    disk = k.create("membdev", MemBDev, device=k.add_device("memdisk", MemDisk(8)), nblocks=8)
    k.inject_crash("membdev", on_call="read", after=1)
    assert not isinstance(disk.read(0, k.new(Block)), RpcError)
    buf = k.new(Block)
    assert isinstance(disk.read(0, buf), RpcError)
    assert not buf.is_live  # moved into the dead domain and reclaimed with it
    with pytest.raises(ValueError, match="has no method 'reed'"):
        k.inject_crash("membdev", on_call="reed")


def test_devices_are_released_with_a_dead_domain(k):
    disk = k.add_device("memdisk", MemDisk(8))
    k.create("d1", MemBDev, device=disk, nblocks=8)
    with pytest.raises(DomainCreateError, match="claimed by domain 'd1'"):
        k.create("d2", MemBDev, device=disk, nblocks=8)
    k.crash("d1")
    assert k.create("d3", MemBDev, device=disk, nblocks=8).domain.devices == {"memdisk"}


def test_a_domain_reaches_only_what_it_was_handed(k):
    """No name service and no devices by name for domains: capabilities only."""
    class Reacher(ProbeImpl):
        def give(self):
            for reach in (lambda: self.domain.lookup("p1"),
                          lambda: self.domain.claim_device("memdisk"),
                          lambda: self.domain.claim(Device(Kernel(), "memdisk"))):
                with pytest.raises(PermissionError, match="a domain|capability"):
                    reach()
            return self.domain.heap.new(u64, 1)
    k.add_device("memdisk", MemDisk(8))
    chain(k, 1)
    r = k.create("reacher", Reacher, peer=None)
    assert r.give().get() == 1 and r.domain.alive and not r.domain.devices
    with pytest.raises(TypeError, match="Probe.make: parameter 'peer': expected a proxy"):
        k.create("bad", ProbeImpl, peer="p1")
    with pytest.raises(TypeError, match="parameter 'device': expected a Device capability"):
        k.create("membdev", MemBDev, device="memdisk", nblocks=8)


# --- domain creation ----------------------------------------------------------

@pytest.mark.parametrize("args, match", [
    ({"device": None}, "missing argument"),
    ({"device": None, "nblocks": 8, "x": 1}, "unexpected argument"),
    ({"device": "DISK", "nblocks": -1}, "out of range for u32"),
    ({"device": "DISK", "nblocks": "8"}, "expected an integer"),
])
def test_create_with_bad_arguments_is_refused_cleanly(k, args, match):
    disk = k.add_device("memdisk", MemDisk(8))
    args = {name: disk if v == "DISK" else v for name, v in args.items()}
    with pytest.raises((TypeError, ValueError), match=match):
        k.create("membdev", MemBDev, **args)
    assert len(k.domains()) == 1 and k.heap.live_objects == 0


def test_create_that_panics_is_reclaimed(k):
    with pytest.raises(DomainCreateError, match="memdisk has 8 blocks"):
        k.create("membdev", MemBDev, device=k.add_device("memdisk", MemDisk(8)), nblocks=9)
    assert k.domains().state.tolist() == ["alive", "crashed"]
    k.heap.check_invariants()


def test_create_rejects_non_implementations(k):
    with pytest.raises(TypeError, match="not a class implementing an interface"):
        k.create("x", dict)
    with pytest.raises(TypeError, match="not a class implementing an interface"):
        k.create("x", Probe)


# --- the heap's own limits -----------------------------------------------------

def test_heap_exhaustion_is_an_error_and_leaves_the_heap_intact():
    k = Kernel(heap_bytes=3 * 4096, max_objects=16)
    blocks = [k.new(Block) for _ in range(3)]
    before = k.heap.objects()
    with pytest.raises(HeapExhausted, match="exhausted"):
        k.new(Block)
    assert k.heap.objects().equals(before)
    blocks[0].free()
    k.new(Block)  # freed memory is reused
    small = Kernel(heap_bytes=1 << 16, max_objects=2)
    small.new(u64), small.new(u64)
    with pytest.raises(HeapExhausted, match="no free object slots"):
        small.new(u64)
    k.heap.check_invariants(), small.heap.check_invariants()


def test_containers_own_their_children(k):
    dq = k.new(RRefDeque[u64, 2])
    a, b, c = (k.new(u64, v) for v in (1, 2, 3))
    assert dq.push_back(a) is None and dq.push_back(b) is None
    assert dq.push_back(c) is c and c.is_live  # full: handed back, as RedLeaf does
    assert not a.is_live and len(dq) == 2
    first = dq.pop_front()
    assert first.get() == 1 and first.owner == "init"
    with pytest.raises(ContainerError, match="children of another type"):
        dq.push_back(k.new(u32, 1))
    (p,) = chain(k, 1)
    with pytest.raises(TypeError, match=r"expected RRef\[u64\], got RRefDeque"):
        p.look(dq)  # wrong type is refused before anything is lent
    assert dq.owner == "init" and k.heap.objects().borrows.max() == 0
    k.heap.check_invariants()


# --- shadows ------------------------------------------------------------------

def make_shadowed(k, policy=None):
    k.create("membdev", MemBDev, device=k.add_device("memdisk", MemDisk(16)), nblocks=16)
    return k.create_shadow("shadow", "membdev", policy)


def test_shadow_hides_a_crash_and_retries_the_request(k):
    sh = make_shadowed(k)
    buf = k.new(Block, np.full(4096, 5, np.uint8))
    assert sh.write(3, buf) is None  # acknowledged
    k.inject_crash("membdev", on_call="read")
    out = sh.read(3, k.new(Block))
    assert not isinstance(out, RpcError) and (out.get() == 5).all()
    k.inject_crash("membdev", on_call="write")
    buf.set(np.full(4096, 6, np.uint8))
    assert sh.write(4, buf) is None and buf.is_live  # borrowed: retried with the same buffer
    assert (sh.read(4, k.new(Block)).get() == 6).all()
    stats = sh.domain.impl.stats
    assert (stats.restarts, stats.retried, stats.reported) == (2, 2, 0)
    assert k.lookup("membdev").domain.alive
    owners = set(k.heap.objects().owner_name)
    assert owners == {"init"}  # nothing left in the shadow or the dead drivers
    k.heap.check_invariants()


def test_shadow_reports_when_restarts_exceed_its_intensity(k):
    sh = make_shadowed(k, RestartPolicy(max_restarts=1, period=60))
    k.inject_crash("membdev", on_call="nblocks")
    assert sh.nblocks() == 16
    k.inject_crash("membdev", on_call="nblocks")
    r = sh.nblocks()
    assert isinstance(r, RpcError)  # reported, never dropped silently
    assert sh.domain.impl.stats.reported == 1
    k.heap.check_invariants()


def test_restart_policy_validates():
    with pytest.raises(ValueError, match="period > 0"):
        RestartPolicy(period=0)


def test_rref_array_put_take_and_replace(k):
    arr = k.new(RRefArray[u64, 3])
    a, b = k.new(u64, 1), k.new(u64, 2)
    assert arr.put(0, a) is None and arr.has(0) and not arr.has(1)
    old = arr.put(0, b)  # replaced: the old child comes back to the caller
    assert old.get() == 1 and old.owner == "init" and not b.is_live
    with pytest.raises(ContainerError, match="index out of range"):
        arr.take(3)
    got = arr.take(0)
    assert got.get() == 2 and arr.take(0) is None
    arr.put(2, got)
    arr.free()  # frees the children with it
    assert k.heap.live_objects == 1  # only `old`
    k.heap.check_invariants()


def test_partial_writes_are_type_checked(k):
    b = k.new(Block)
    with pytest.raises(ValueError, match="do not fit u8"):
        b[:4] = np.array([300, 301, -1, 2])
    b[:2] = [1, 2]
    b[5] = 9
    with pytest.raises(ValueError, match="out of range for u8"):
        b[6] = 256
    assert b[:3].tolist() == [1, 2, 0] and b[5] == 9


def test_a_full_deque_still_refuses_bad_children(k):
    q = k.new(RRefDeque[u64, 1])
    q.push_back(k.new(u64, 1))
    stale = k.new(u64, 2)
    stale.free()
    with pytest.raises(StaleRRef):
        q.push_back(stale)
    with pytest.raises(ContainerError, match="another type"):
        q.push_back(k.new(Block))


def test_quoted_forward_references_resolve(tmp_path, monkeypatch):
    (tmp_path / "quoted_iface.py").write_text(
        "from __future__ import annotations\n"
        "from redleaf_nb import Interface, create, u32\n"
        "class P(Interface):\n"
        "    def ping(self, peer: 'P') -> u32: ...\n"
        "    @create\n"
        "    def make(self) -> 'P': ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import quoted_iface
    assert quoted_iface.P.__methods__["ping"].params[0].mode == "proxy"


def test_the_name_service_registers_and_looks_up_proxies(k):
    (p,) = chain(k, 1)
    k.register("probe", p)
    assert k.lookup("probe") is p and k.lookup("p1") is p
    with pytest.raises(KeyError, match="no domain named 'nope'.*known: .*probe"):
        k.lookup("nope")
    with pytest.raises(TypeError, match="only proxies"):
        k.register("x", p.domain.impl)
