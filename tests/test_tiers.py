"""The Python tier and the jitted tier give the same answers on the same scenarios."""
import importlib
import pkgutil

import numpy as np
import pytest
from numba import njit
from numba.core.registry import CPUDispatcher

import redleaf_nb
from redleaf_nb import (Borrow, ForeignRRef, Interface, JitUnsupported, Kernel, RpcError, RRef,
                        RRefDeque, StaleRRef, create, u8, u32, u64)
from redleaf_nb.drivers.membdev import MemBDev, MemDisk
from redleaf_nb.interfaces.bdev import Block
from redleaf_nb.kernel import heap as hp
from redleaf_nb.kernel import views
from redleaf_nb.kernel.proxy import RPC_BAD_ARG, RPC_DEAD, RPC_OK, RPC_PANIC, jit_current


def fresh():
    k = Kernel(heap_bytes=1 << 20, max_objects=128)
    return k, k.create("membdev", MemBDev, device=k.add_device("memdisk", MemDisk(8)), nblocks=8)


# One scenario: (operation, block, fill byte). 'stale' reuses a moved handle.
SCENARIO = [("write", 1, 11), ("write", 2, 22), ("read", 1, 0), ("read", 2, 0),
            ("stale", 2, 0), ("read", 9, 0), ("read", 1, 0), ("write", 3, 33)]


def run_python(k, disk):
    out, moved = [], None
    for op, block, fill in SCENARIO:
        if op == "stale":
            try:
                disk.read(block, moved)
                out.append(("ok",))
            except StaleRRef:
                out.append(("bad-arg",))
            continue
        buf = k.new(Block, np.full(4096, fill, np.uint8))
        r = disk.write(block, buf) if op == "write" else disk.read(block, buf)
        if op == "read":
            moved = buf
        if isinstance(r, RpcError):
            out.append(("dead",) if "the domain is" in r.reason else ("panic",))
        else:
            out.append(("ok", None if r is None else int(r.get().sum())))
    return out


def run_jitted(k, disk):
    out, moved = [], None
    names = {RPC_DEAD: "dead", RPC_PANIC: "panic", RPC_BAD_ARG: "bad-arg"}
    for op, block, fill in SCENARIO:
        if op == "stale":
            status, _ = k.jit_call(disk, "read", np.uint32(block), moved)
            out.append(("ok",) if status == RPC_OK else (names[status],))
            continue
        buf = k.new(Block, np.full(4096, fill, np.uint8))
        status, r = k.jit_call(disk, op, np.uint32(block), buf)
        if op == "read":
            moved = buf
        if status != RPC_OK:
            out.append((names[status],))
        else:
            out.append(("ok", None if op == "write" else int(k.wrap(r, Block).get().sum())))
    return out


def snapshot(k):
    objs = k.heap.objects()[["owner_name", "type", "size", "borrows"]]
    return (objs.sort_values(list(objs.columns)).values.tolist(),
            k.heap.accounting().values.tolist(), k.domains().state.tolist(),
            k._devices["memdisk"][0].blocks.sum(axis=1).tolist())


def test_both_tiers_agree_on_the_bdev_scenario():
    kp, dp = fresh()
    kj, dj = fresh()
    py, jit = run_python(kp, dp), run_jitted(kj, dj)
    assert py == jit
    assert py[:4] == [("ok", None), ("ok", None), ("ok", 11 * 4096), ("ok", 22 * 4096)]
    assert py[4:] == [("bad-arg",), ("panic",), ("dead",), ("dead",)]
    assert snapshot(kp) == snapshot(kj)
    kp.heap.check_invariants(), kj.heap.check_invariants()


def test_jitted_proxy_moves_and_lends_like_the_python_one():
    k, disk = fresh()
    buf = k.new(Block, np.full(4096, 7, np.uint8))
    assert k.jit_call(disk, "write", np.uint32(0), buf) == (RPC_OK, 0)
    assert buf.is_live and buf.owner == "init" and k.heap.objects().borrows.max() == 0
    status, h = k.jit_call(disk, "read", np.uint32(0), buf)
    assert status == RPC_OK and not buf.is_live
    back = k.wrap(h, Block)
    assert back.owner == "init" and (back.get() == 7).all()
    assert k.jit_call(disk, "nblocks") == (RPC_OK, 8)


def test_jitted_panic_reclaims_and_settles_the_domain():
    k, disk = fresh()
    buf = k.new(Block)
    status, _ = k.jit_call(disk, "read", np.uint32(100), buf)
    assert status == RPC_PANIC and not buf.is_live
    assert disk.domain.state == "crashed" and "jitted BDev.read" in disk.domain.crash_reason
    assert disk.domain.devices == set() and k.heap.live_objects == 0
    assert isinstance(disk.nblocks(), RpcError)  # the Python tier sees the same death


def _dispatchers():
    for mod in pkgutil.walk_packages(redleaf_nb.__path__, "redleaf_nb."):
        m = importlib.import_module(mod.name)
        for name, obj in vars(m).items():
            if isinstance(obj, CPUDispatcher) and obj.__module__ == mod.name:
                yield f"{mod.name}.{name}", obj


@pytest.mark.parametrize("name, fn", list(_dispatchers()))
def test_every_numba_function_is_cached(name, fn):
    assert type(fn._cache).__name__ != "NullCache", f"{name} lacks cache=True"


def test_jitted_calls_check_scalar_arguments_like_the_python_tier():
    k, disk = fresh()
    with pytest.raises(ValueError, match=r"BDev.read: parameter 'block': -1 is out of range"):
        k.jit_call(disk, "read", -1, k.new(Block))
    with pytest.raises(TypeError, match="takes 2 argument"):
        k.jit_call(disk, "read", 1)
    assert k.jit_call(disk, "nblocks") == (RPC_OK, 8)


def test_a_jitted_shadow_restarts_its_driver_transparently():
    k, disk = fresh()
    sh = k.create_shadow("shadow", "membdev")
    buf = k.new(Block, np.full(4096, 4, np.uint8))
    assert k.jit_call(sh, "write", 2, buf) == (RPC_OK, 0)
    k.crash("membdev")
    assert k.jit_call(sh, "nblocks") == (RPC_OK, 8)  # restarted, no error
    status, h = k.jit_call(sh, "read", 2, k.new(Block))
    assert status == RPC_OK and (k.wrap(h, Block).get() == 4).all()  # the write survived
    assert sh.domain.jit_state["restarts"][0] == 1 and k.lookup("membdev").domain.alive
    k.heap.check_invariants()


def test_a_jitted_shadow_reports_a_request_it_cannot_retry():
    k, disk = fresh()
    sh = k.create_shadow("shadow", "membdev")
    buf = k.new(Block)
    status, _ = k.jit_call(sh, "read", 100, buf)  # the driver panics on every try
    assert status == RPC_PANIC and not buf.is_live  # reported, and nothing leaked
    assert k.lookup("membdev").domain.alive  # restarted once; the moved buffer was lost
    assert sh.domain.alive  # the shadow reports the failure as a status and lives on
    status, out = k.jit_call(sh, "read", 1, k.new(Block))
    assert status == RPC_OK and out != 0  # ... and serves the next request
    k.heap.check_invariants()


# --- jit_call names what is missing --------------------------------------------

class Echo(Interface):
    def echo(self, x: u32) -> u32: ...
    def twice(self, x: u32) -> u32: ...


class PyEcho(Echo):
    def echo(self, x):
        return x

    def twice(self, x):
        return 2 * x


@njit(cache=True, boundscheck=True)
def jit_echo(k, state, x):
    return x


class HalfJitEcho(PyEcho):
    jit_methods = {"echo": jit_echo}


def test_jit_call_names_the_missing_method_or_tier():
    k, disk = fresh()
    with pytest.raises(ValueError, match=r"jit_call BDev\.reed: BDev has no method 'reed' "
                                         r"\(methods: read, write, nblocks\)"):
        k.jit_call(disk, "reed", 1, k.new(Block))
    py = k.create("py", PyEcho)
    with pytest.raises(JitUnsupported, match=r"jit_call Echo\.echo: domain 'py' \(PyEcho\) has "
                                             r"no jitted tier"):
        k.jit_call(py, "echo", 1)
    half = k.create("half", HalfJitEcho)
    with pytest.raises(JitUnsupported, match=r"domain 'half' \(HalfJitEcho\) has no jitted "
                                             r"implementation of 'twice' \(jitted: echo\)"):
        k.jit_call(half, "twice", 1)
    assert py.twice(4) == 8 and half.domain.alive


# --- RRefDeque: iteration, peek and indexing read in place, in both tiers -------

ITEM = u8[4]
DQ = RRefDeque[ITEM, 4]


class Tally(Interface):
    """Reads a lent deque's items in place: nothing moves."""

    def first_bytes(self, q: Borrow[DQ]) -> u64: ...
    def item(self, q: Borrow[DQ], i: u32) -> u64: ...

    @create
    def make(self) -> "Tally": ...


@njit(cache=True, boundscheck=True)
def jit_first_bytes(k, state, q):
    """The sum of the first byte of every item, oldest first, read through the deque."""
    total = 0
    for i in range(views.deque_len(k, q)):
        total += views.item_bytes(k, q, views.deque_peek(k, q, i))[0]
    return np.uint64(total)


@njit(cache=True, boundscheck=True)
def jit_item(k, state, q, i):
    """Item ``i`` from the newest (``-1 - i``) as one number, bytes little-endian; an
    index out of range is a panic."""
    child = views.deque_peek(k, q, -1 - np.int64(i))
    if child == views.E_INDEX:
        raise IndexError("deque index out of range")
    total = np.uint64(0)
    for b in views.item_bytes(k, q, child)[::-1]:
        total = total * np.uint64(256) + np.uint64(b)
    return total


class TallyImpl(Tally):
    jit_methods = {"first_bytes": jit_first_bytes, "item": jit_item}

    def make(self):
        pass

    def first_bytes(self, q):
        return sum(int(item[0]) for item in q)

    def item(self, q, i):
        return int(q[-1 - int(i)].get().view("<u4")[0])


def wrapped_deque(k):
    """A deque whose ring has wrapped: items 3, 4, 5, 6 (oldest first), byte j of item
    v being 10 * v + j."""
    dq = k.new(DQ)
    for v in range(1, 7):
        if v in (5, 6):
            dq.pop_front()
        assert dq.push_back(k.new(ITEM, 10 * v + np.arange(4))) is None
    return dq


def contents(dq):
    return [x.get().tolist() for x in dq]


def test_deque_items_are_read_in_place_oldest_first():
    k, _ = fresh()
    dq = wrapped_deque(k)
    before = k.heap.objects()
    assert contents(dq) == [[10 * v + j for j in range(4)] for v in (3, 4, 5, 6)]
    assert dq.peek().get().tolist() == dq[0].get().tolist() == [30, 31, 32, 33]
    assert dq[-1][0] == 60 and dq[1][2] == 42 and dq[-4][3] == 33
    assert len(dq) == 4 and k.heap.objects().equals(before)  # nothing moved or changed
    owners = k.heap.objects().set_index("slot").owner_name
    assert all(owners[x.handle & hp.SLOT_MASK] == "(in a container)" for x in dq)
    for bad in (4, -5, 99):
        with pytest.raises(IndexError, match=rf"RRefDeque\[u8\[4\], 4\] index {bad} is out of "
                                             r"range: it holds 4 item\(s\) \(valid: -4\.\.3\)"):
            dq[bad]
    for bad in ("0", 1.0, True, slice(0, 2)):
        with pytest.raises(TypeError, match="indices must be integers"):
            dq[bad]
    empty = k.new(DQ)
    assert empty.peek() is None and list(empty) == []
    k.heap.check_invariants()


def test_a_read_item_cannot_be_moved_written_or_freed_and_goes_stale_when_it_leaves():
    k, disk = fresh()
    dq = wrapped_deque(k)
    oldest, newest = dq.peek(), dq[-1]
    for misuse in (lambda: dq.push_back(oldest),
                   lambda: k.new(RRefDeque[ITEM, 2]).push_back(oldest)):
        with pytest.raises(TypeError, match="expected an RRef"):
            misuse()
    for attr in ("set", "free", "put", "__setitem__"):
        assert not hasattr(oldest, attr)
    other = k.create("other", TallyImpl)
    with pytest.raises(TypeError, match=r"Tally\.first_bytes: parameter 'q': expected"):
        other.first_bytes(oldest)
    popped = dq.pop_front()
    assert not oldest.is_live and popped.get().tolist() == [30, 31, 32, 33]
    with pytest.raises(StaleRRef, match="read in its container"):
        oldest.get()
    assert newest.is_live and newest[0] == 60
    moved = k.new(RRefDeque[ITEM, 4])
    assert hp.deque_splice(k.heap.k, dq.handle, moved.handle, k.init.id, 4) == 3
    assert not newest.is_live and moved[-1][0] == 60   # spliced away: read through its new deque
    with pytest.raises(StaleRRef):
        newest.get()
    k.heap.check_invariants()


def test_only_who_may_read_the_deque_may_read_its_items():
    k, _ = fresh()
    holder = k.create("holder", TallyImpl)
    dq = wrapped_deque(k)
    item = dq[2]
    k.crash(holder)  # (a dead domain's id, used as a foreign caller below)
    with pytest.raises(ForeignRRef):
        k.heap.view_contained(dq.handle, item.handle, holder.domain.id)
    assert hp.deque_peek(k.heap.k, dq.handle, holder.domain.id, 0) == hp.E_FOREIGN
    assert hp.contained_slot(k.heap.k, dq.handle, item.handle, holder.domain.id) == hp.E_FOREIGN
    assert item.get().tolist() == [50, 51, 52, 53]


def test_both_tiers_read_a_lent_deque_alike():
    k, _ = fresh()
    tally = k.create("tally", TallyImpl)
    dq = wrapped_deque(k)
    before = k.heap.objects()
    want = sum(10 * v for v in (3, 4, 5, 6))
    assert tally.first_bytes(dq) == want
    assert k.jit_call(tally, "first_bytes", dq) == (RPC_OK, want)
    for i in range(4):
        py = tally.item(dq, i)
        assert k.jit_call(tally, "item", dq, i) == (RPC_OK, py)
        assert py == int.from_bytes(bytes(10 * (6 - i) + j for j in range(4)), "little")
    assert k.heap.objects().equals(before) and contents(dq)[0] == [30, 31, 32, 33]
    # an index out of range is the callee's panic, in both tiers
    assert isinstance(tally.item(dq, 4), RpcError) and not tally.domain.alive
    jtally = k.create("jtally", TallyImpl)
    assert k.jit_call(jtally, "item", dq, 4)[0] == RPC_PANIC and not jtally.domain.alive
    assert k.heap.objects().equals(before)   # the lent deque is still the caller's, intact
    k.heap.check_invariants()


# --- the jitted tier cleans up a panic by itself --------------------------------
#
# jit_call settles a jitted crash in Python afterwards (Kernel._settle_jitted_deaths
# reclaims again), which would hide a jitted crash path that forgot to reclaim or to
# mark the callee. Here everything is observed inside jitted code, right after the
# panic, before any Python runs.

@njit(cache=True)
def _panic_then_look(k, proxy, callee, buf):
    """Call ``read`` with a block that panics; then, still jitted, look at the heap."""
    live_before = hp.ctl_of(k)[hp.LIVE_OBJECTS]
    status, _ = proxy(k, callee, np.uint32(100), buf)
    freed = live_before - hp.ctl_of(k)[hp.LIVE_OBJECTS]
    again, _ = proxy(k, callee, np.uint32(0), 0)
    return status, freed, again, jit_current(k)


def test_a_jitted_panic_is_cleaned_up_by_the_jitted_tier_itself():
    from redleaf_nb.interfaces.bdev import BDev
    from redleaf_nb.kernel.idl import jit_proxy
    k, disk = fresh()
    dom = disk.domain
    proxy = jit_proxy(BDev, "read", MemBDev.jit_methods["read"]).fn
    buf = k.new(Block)
    k.heap.h.calls[:] = 0                       # depth 0, running as init
    k.heap.h.calls[1] = k.init.id
    status, freed, again, current = _panic_then_look(k.heap.k, proxy, dom.id, buf.handle)
    assert status == RPC_PANIC
    assert freed == 1          # the moved buffer, owned by the dead callee, is reclaimed
    assert again == RPC_DEAD   # the callee is marked dead: never entered again
    assert current == k.init.id and k.heap.h.calls[0] == 0   # unwound to the caller


def test_a_jitted_call_past_the_deepest_nesting_is_refused_and_writes_nothing():
    """The continuation stack holds MAX_CONT calls: one more is refused (RPC_TOO_DEEP)
    and leaves the depth and the running domain as they were."""
    from redleaf_nb.kernel.proxy import RPC_TOO_DEEP, jit_push
    from redleaf_nb.kernel.state import MAX_CONT
    k, disk = fresh()
    h = k.heap.h
    h.calls[:] = (MAX_CONT - 1, k.init.id)
    assert jit_push(k.heap.k, disk.domain.id) == k.init.id      # the last entry fits
    assert h.calls[0] == MAX_CONT and tuple(h.conts[MAX_CONT - 1]) == (k.init.id,
                                                                       disk.domain.id)
    assert jit_push(k.heap.k, disk.domain.id) == -RPC_TOO_DEEP
    assert h.calls[0] == MAX_CONT and h.calls[1] == disk.domain.id   # nothing moved


# --- one RRef twice in one call: any number of shared borrows, never two moves -----

class Pair(Interface):
    """Two RRef parameters, crossing by value, by shared borrow, or one of each."""

    def moved(self, a: RRef[u64], b: RRef[u64]) -> u64: ...
    def shared(self, a: Borrow[RRef[u64]], b: Borrow[RRef[u64]]) -> u64: ...
    def mixed(self, a: RRef[u64], b: Borrow[RRef[u64]]) -> u64: ...

    @create
    def make(self) -> "Pair": ...


@njit(cache=True, boundscheck=True)
def jit_moved(k, state, a, b):
    return (views.rref_array(k, a, np.uint64, False)[0]
            + views.rref_array(k, b, np.uint64, False)[0])


@njit(cache=True, boundscheck=True)
def jit_shared(k, state, a, b):
    """1000 * the borrow count of ``a`` during the call + the two values."""
    value = views.rref_array(k, a, np.uint64, False)[0] + views.rref_array(k, b, np.uint64,
                                                                           False)[0]
    return np.uint64(1000 * views.rref_borrows(k, a) + value)


class PairImpl(Pair):
    jit_methods = {"moved": jit_moved, "shared": jit_shared, "mixed": jit_moved}

    def make(self):
        pass

    def moved(self, a, b):
        return a.get() + b.get()

    def shared(self, a, b):
        count = self.domain.kernel.heap.h.meta[a.handle & hp.SLOT_MASK, hp.BORROWS]
        return 1000 * int(count) + a.get() + b.get()

    mixed = moved


def _pair():
    k = Kernel(heap_bytes=1 << 16, max_objects=16)
    return k, k.create("pair", PairImpl)


def _untouched(k, x, value):
    """``x`` is still the caller's, unborrowed, with its value; nothing else is live."""
    assert x.is_live and x.owner == "init" and x.get() == value
    assert k.heap.objects().borrows.tolist() == [0] and k.calls.stack == []
    k.heap.check_invariants()


def test_one_rref_lent_twice_is_two_shared_borrows_in_both_tiers():
    k, pair = _pair()
    x = k.new(u64, 7)
    assert pair.shared(x, x) == 2000 + 14             # borrow count 2 during the call
    _untouched(k, x, 7)                               # ... and 0 after
    assert k.jit_call(pair, "shared", x, x) == (RPC_OK, 2014)
    _untouched(k, x, 7)


@pytest.mark.parametrize("method", ["moved", "mixed"])
def test_one_rref_moved_and_passed_again_is_refused_before_anything_moves(method):
    k, pair = _pair()
    x = k.new(u64, 7)
    with pytest.raises(ValueError, match=f"Pair.{method}: parameter 'b': the same RRef.u64. "
                                         "is passed twice in one call, and by value at least "
                                         "once"):
        getattr(pair, method)(x, x)
    _untouched(k, x, 7)
    assert k.jit_call(pair, method, x, x) == (RPC_BAD_ARG, 0)
    _untouched(k, x, 7)
    y = k.new(u64, 5)                                 # two distinct RRefs are fine
    assert getattr(pair, method)(x, y) == 12 and not x.is_live
