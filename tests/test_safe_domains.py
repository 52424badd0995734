"""Safe domains, behaviourally: a domain whose own state is corrupted reaches past
nothing. Its out-of-range access is a panic inside it, the proxy crashes and
reclaims that one domain, the heap stays sound, the process lives, and a shadow
recovers the driver (kernel/views.py, kernel/checker.py)."""
import numpy as np
import pytest

from numba import njit

from redleaf_nb import Kernel, RpcError, u64
from redleaf_nb.apps.dom_c import STATE as DOMC_STATE
from redleaf_nb.apps.dom_c import DomC
from redleaf_nb.drivers.membdev import MemBDev, MemDisk
from redleaf_nb.interfaces.bdev import Block
from redleaf_nb.kernel import views
from redleaf_nb.kernel.domain import DomainCreateError
from redleaf_nb.kernel.proxy import RPC_DEAD, RPC_OK, RPC_PANIC

DISK_BLOCKS = 8


def membdev(shadowed: bool):
    k = Kernel(heap_bytes=1 << 20, max_objects=64)
    driver = k.create("membdev", MemBDev, device=k.add_device("memdisk", MemDisk(DISK_BLOCKS)),
                      nblocks=DISK_BLOCKS)
    front = k.create_shadow("shadow", "membdev") if shadowed else driver
    return k, driver, front


def corrupt_nblocks(driver, value):
    """What a domain bug could do to its own state: the block count it checks against."""
    driver.domain.jit_state["nblocks"] = value


@pytest.mark.parametrize("tier", ["jitted", "python"])
def test_membdev_with_a_corrupted_length_panics_instead_of_reading_past_its_disk(tier):
    k, driver, _ = membdev(shadowed=False)
    corrupt_nblocks(driver, 1 << 40)
    buf = k.new(Block)
    if tier == "jitted":
        status, _ = k.jit_call(driver, "read", DISK_BLOCKS + 3, buf)
        assert status == RPC_PANIC
    else:
        driver.domain.impl.nblk = 1 << 40
        assert isinstance(driver.read(DISK_BLOCKS + 3, buf), RpcError)
    assert not driver.domain.alive     # a panic: unchecked, the read would have succeeded
    if tier == "python":
        assert "IndexError" in driver.domain.crash_reason
    assert k.heap.live_objects == 0          # the moved buffer was reclaimed with it
    k.heap.check_invariants()
    assert k.jit_call(driver, "nblocks")[0] == RPC_DEAD


def test_membdev_with_a_corrupted_length_behind_a_shadow_recovers():
    k, driver, shadow = membdev(shadowed=True)
    written = k.new(Block)
    written.set(np.full(4096, 7, np.uint8))
    assert k.jit_call(shadow, "write", 2, written)[0] == RPC_OK
    corrupt_nblocks(driver, 1 << 40)
    status, _ = k.jit_call(shadow, "read", DISK_BLOCKS + 3, k.new(Block))
    assert status == RPC_PANIC                # reported: its buffer went down with the driver
    assert shadow.domain.alive and k.lookup("membdev").domain.alive   # restarted
    status, block = k.jit_call(shadow, "read", 2, k.new(Block))
    assert status == RPC_OK
    k.heap.check_invariants()


def test_a_granted_region_cannot_be_read_as_a_larger_item():
    """The kernel's grant records the item size: asking for the disk as u64 rows is refused."""
    from numba import njit

    from redleaf_nb.kernel import views

    @njit(boundscheck=True)
    def rows_as_u64(k, state):
        return views.own_matrix(k, 1, np.uint64).shape[0]

    k, driver, _ = membdev(shadowed=False)
    with pytest.raises(IndexError, match="no such grant"):
        driver.domain.run_jitted(rows_as_u64)


def test_a_domain_passing_another_domains_rref_to_the_heap_is_refused():
    """Heap accessors act as the running domain: b's object is not a's to touch."""
    from redleaf_nb.apps.dom_c import jit_one_rref
    k = Kernel(heap_bytes=1 << 16, max_objects=16)
    a, b = k.create("a", DomC), k.create("b", DomC)
    bs = k.heap.move(k.new(u64, 5).handle, k.init.id, b.domain.id)   # b owns it now
    with pytest.raises(ValueError, match="bad RRef access"):
        a.domain.run_jitted(jit_one_rref, bs)                         # a acting on it
    assert k.heap.objects().owner.tolist() == [b.domain.id]
    k.heap.check_invariants()


@njit(cache=True, boundscheck=True)
def peek_at_neighbour(k, state):
    """A domain's jitted null that asks for the next domain's state."""
    views.own_state(k, state + 1, DOMC_STATE).counter += 1


def test_a_domain_asking_for_another_domains_state_panics():
    """``own_state`` takes the id the proxy handed the domain; any other id is refused."""
    cls = type("Peeker", (DomC,), {"jit_methods": {"null": peek_at_neighbour}})
    k = Kernel(heap_bytes=1 << 16, max_objects=16)
    peeker, victim = k.create("peeker", cls), k.create("victim", DomC)
    assert victim.domain.id == peeker.domain.id + 1          # the neighbour's id, forged
    assert k.jit_call(peeker, "null")[0] == RPC_PANIC
    assert victim.domain.jit_state["counter"][0] == 0 and victim.domain.alive
    assert k.jit_call(victim, "null") == (RPC_OK, 0)
    assert victim.domain.jit_state["counter"][0] == 1


def test_a_domain_state_of_bare_words_is_refused_at_create():
    """State is named, typed fields (views.state_type), never an int64 array of words."""
    cls = type("Words", (DomC,), {"jit_state": lambda self: np.zeros(4, np.int64)})
    k = Kernel(heap_bytes=1 << 16, max_objects=16)
    with pytest.raises(DomainCreateError, match="record array of one element.*ndarray int64"):
        k.create("words", cls)
    assert k.domains().state.tolist() == ["alive", "crashed"]    # init, and words reclaimed


# --- deque items in place, and a pop with the DMA address -----------------------------

@njit(boundscheck=True)
def _write_item(k, state, dq, i, value):
    views.deque_item(k, dq, i)[0] = value
    return 0


@njit(boundscheck=True)
def _pop_dma(k, state, dq):
    h, address, data = views.deque_pop_dma(k, dq, np.uint8)
    return h, address, data.size


def _deque_of(k, owner, n):
    from redleaf_nb.interfaces.net import Packets
    from redleaf_nb.kernel import heap as hp
    from redleaf_nb.kernel.types import exchangeable
    t = exchangeable(Packets)
    dq = k.heap.alloc(t, owner)
    items = [k.heap.alloc(t.child, owner) for _ in range(n)]
    for h in items:
        assert hp.deque_push_back(k.heap.k, dq, owner, h) == 0
    return dq, items


def test_deque_item_writes_in_place_and_refuses_bad_indices_and_foreign_deques():
    from redleaf_nb.kernel import heap as hp
    k = Kernel(heap_bytes=1 << 20, max_objects=64)
    me = k.init.id
    dq, items = _deque_of(k, me, 3)
    k.init.run_jitted(_write_item, dq, 1, 77)
    assert hp.deque_pop_front(k.heap.k, dq, me) > 0
    second = hp.deque_pop_front(k.heap.k, dq, me)
    assert k.heap.view(second, me)[0] == 77
    for bad in (1, -1):                       # one item is left: index 1 and -1 are out
        with pytest.raises(IndexError, match="deque item"):
            k.init.run_jitted(_write_item, dq, bad, 1)
    other = k.create("other", DomC)
    with pytest.raises(IndexError, match="deque item"):   # not the running domain's deque
        other.domain.run_jitted(_write_item, dq, 0, 1)
    k.heap.check_invariants()


def test_deque_pop_dma_gives_the_address_rref_dma_would_and_zero_when_empty():
    k = Kernel(heap_bytes=1 << 20, max_objects=64)
    me = k.init.id
    dq, items = _deque_of(k, me, 1)
    h, address, size = k.init.run_jitted(_pop_dma, dq)
    assert h > 0 and size == 1514
    assert address == k.heap.h.arena.ctypes.data + k.heap.h.meta[h & 0xFFFFFFFF, 4]
    k.heap.view(h, me, write=True)[0] = 5     # now the caller's
    assert k.init.run_jitted(_pop_dma, dq) == (0, 0, 0)
