"""Shadow domains in both tiers: what a reported request leaves behind, failed
restarts, recycled domain ids, and one restart policy for both tiers."""
import threading

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from numba import njit

from redleaf_nb import Borrow, Interface, Kernel, RpcError, RRef, create, u32, u64
from redleaf_nb.drivers.membdev import MemBDev, MemDisk
from redleaf_nb.interfaces.bdev import Block
from redleaf_nb.kernel import heap as hp
from redleaf_nb.kernel.proxy import RPC_DEAD, RPC_OK
from redleaf_nb.kernel.shadow import RestartPolicy

TIERS = ["python", "jitted"]


class FakeClock:
    """The time a restart policy sees, set by the test (seconds)."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def call(k, tier, proxy, method, *args):
    """One request in either tier: (ok, result)."""
    if tier == "python":
        r = getattr(proxy, method)(*args)
        return not isinstance(r, RpcError), r
    status, r = k.jit_call(proxy, method, *args)
    return status == RPC_OK, (status, r)


# --- a minimal driver whose @create can be made to fail --------------------------------

class Ping(Interface):
    def ping(self, x: u32) -> u32: ...
    def look(self, x: Borrow[RRef[u64]]) -> u64: ...

    @create
    def create_ping(self) -> "Ping": ...


FAILING_CREATES = [0]   # how many of the next @create calls panic
SEEN = []               # (domain id, x) of every ping a PingImpl served


@njit(cache=True, boundscheck=True)
def jit_ping(k, state, x):
    return np.uint32(x + 1)


class PingImpl(Ping):
    jit_methods = {"ping": jit_ping}

    def create_ping(self):
        if FAILING_CREATES[0] > 0:
            FAILING_CREATES[0] -= 1
            raise RuntimeError("create_ping: the device did not answer")

    def ping(self, x):
        SEEN.append((self.domain.id, x))
        return x + 1

    def look(self, x):
        """While this domain borrows ``x``, another thread crashes it and creates a
        domain, which gets the recycled id: may that new domain read ``x``?"""
        k, made = self.domain.kernel, []

        def other_thread():
            k.crash(self.domain)
            made.append(k.create("other", PingImpl).domain)

        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        assert made[0].slot == self.domain.slot   # the id was recycled
        return int(hp.check_read(k.heap.k, x.handle, made[0].id) >= 0)


@pytest.fixture
def ping():
    FAILING_CREATES[0] = 0
    SEEN.clear()
    k = Kernel(heap_bytes=1 << 16, max_objects=64, max_domains=8)
    k.create("ping", PingImpl)
    yield k
    FAILING_CREATES[0] = 0


def membdev_shadow(policy):
    k = Kernel(heap_bytes=1 << 20, max_objects=128)
    k.create("membdev", MemBDev, device=k.add_device("memdisk", MemDisk(8)), nblocks=8)
    return k, k.create_shadow("shadow", "membdev", policy)


# --- 1. a reported request leaves nothing in the shadow -----------------------------

@pytest.mark.parametrize("tier", TIERS)
def test_a_reported_request_frees_the_callers_buffer(tier):
    k, sh = membdev_shadow(RestartPolicy(max_restarts=0))
    before = k.heap.owned(sh.domain.id)
    k.crash("membdev")
    for _ in range(10):
        ok, _ = call(k, tier, sh, "read", 1, k.new(Block))
        assert not ok   # the driver is dead and may not be restarted: reported
    assert k.heap.owned(sh.domain.id) == before == (0, 0)
    assert k.heap.live_objects == 0
    k.heap.check_invariants()


@pytest.mark.parametrize("tier", TIERS)
@settings(max_examples=25, deadline=None)
@given(ops=st.lists(st.sampled_from(["ok", "crash", "panic", "tick"]), max_size=12))
def test_after_any_requests_the_shadow_owns_what_it_owned(tier, ops):
    clock = FakeClock()
    k, sh = membdev_shadow(RestartPolicy(max_restarts=2, period=10, clock=clock))
    kept = k.new(Block)   # the caller's own object, which must survive everything
    for op in ops:
        if op == "crash":
            k.crash("membdev")
        elif op == "tick":
            clock.now += 6
        else:   # "panic": the driver panics on every try (block out of range)
            ok, r = call(k, tier, sh, "read", 1 if op == "ok" else 100, k.new(Block))
            if ok:  # the buffer came back to the caller
                k.wrap(r[1], Block).free() if tier == "jitted" else r.free()
        assert k.heap.owned(sh.domain.id) == (0, 0)
        assert k.heap.live_objects == 1 and kept.owner == "init"
        k.heap.check_invariants()
    assert sh.domain.alive


# --- 2. a failed restart is a restart attempt, never the shadow's death --------------

@pytest.mark.parametrize("tier", TIERS)
def test_a_failed_restart_is_retried_within_the_policy(ping, tier):
    k, clock = ping, FakeClock()
    sh = k.create_shadow("shadow", "ping", RestartPolicy(max_restarts=4, period=10, clock=clock))
    k.crash("ping")
    FAILING_CREATES[0] = 2
    assert call(k, tier, sh, "ping", 1) == (True, 2 if tier == "python" else (RPC_OK, 2))
    stats = sh.domain.impl.stats
    assert (stats.restarts, stats.failed_restarts) == (3, 2)   # two failed, the third worked
    k.crash("ping")
    FAILING_CREATES[0] = 100
    ok, _ = call(k, tier, sh, "ping", 1)   # the last attempt the policy allows fails too
    assert not ok and sh.domain.alive and (stats.restarts, stats.failed_restarts) == (4, 3)
    assert not call(k, tier, sh, "ping", 1)[0] and stats.restarts == 4   # the policy gave up
    clock.now = 11   # the period has passed: the shadow tries again, and succeeds
    FAILING_CREATES[0] = 0
    assert call(k, tier, sh, "ping", 5)[0] and k.lookup("ping").domain.alive
    assert sh.domain.alive and k.heap.live_objects == 0
    k.heap.check_invariants()


# --- 3. domain ids are recycled, with a generation -----------------------------------

@pytest.mark.parametrize("tier", TIERS)
def test_a_stale_proxy_never_reaches_the_new_incarnation(ping, tier):
    k = ping
    old = k.lookup("ping")
    k.crash(old)
    new = k.recreate("ping")
    assert new.domain.slot == old.domain.slot and new.domain.id != old.domain.id
    ok, r = call(k, tier, old, "ping", 7)
    assert not ok and (isinstance(r, RpcError) if tier == "python" else r == (RPC_DEAD, 0))
    assert SEEN == [] and new.domain.alive and old.domain.state == "crashed"
    k.crash(old)   # crashing the dead incarnation again does not touch the new one
    assert new.domain.alive and call(k, tier, new, "ping", 7)[0]
    assert k.domains().query("name == 'ping'").state.tolist() == ["alive"]


def test_a_recycled_id_does_not_inherit_the_dead_incarnations_borrows(ping):
    k = ping
    x = k.new(u64, 9)
    assert k.lookup("ping").look(x) == 0   # the new domain in the recycled id cannot read x
    assert x.owner == "init" and x.get() == 9 and k.heap.objects().borrows.max() == 0
    k.heap.check_invariants()


@pytest.mark.parametrize("tier", TIERS)
def test_a_kernel_survives_100000_driver_restarts(tier):
    clock = FakeClock()
    k = Kernel(heap_bytes=1 << 12, max_objects=8, max_domains=4)
    k.create("ping", PingImpl)
    sh = k.create_shadow("shadow", "ping", RestartPolicy(max_restarts=1, period=1, clock=clock))
    n = 100_000
    for i in range(n):
        k.crash("ping")
        clock.now += 1
        assert call(k, tier, sh, "ping", i)[0]
    assert sh.domain.impl.stats.restarts == n
    driver = k.lookup("ping").domain
    assert driver.alive and driver.id >> 32 == n + 1   # one slot, n + 1 generations
    assert len(k.domains()) == 3 and len(k.heap.names) <= 4
    SEEN.clear()


# --- 4. one restart policy for both tiers --------------------------------------------

SCRIPT = [(0, "crash"), (1, "crash"), (2, "crash"), (5, None), (10.5, None), (10.9, "crash"),
          (12, "crash"), (25, "crash")]


def run_script(tier):
    clock = FakeClock()
    k = Kernel(heap_bytes=1 << 16, max_objects=64, max_domains=8)
    k.create("ping", PingImpl)
    sh = k.create_shadow("shadow", "ping", RestartPolicy(max_restarts=2, period=10, clock=clock))
    out = []
    for t, action in SCRIPT:
        clock.now = t
        if action == "crash":
            k.crash("ping")
        out.append(call(k, tier, sh, "ping", 1)[0])
    return out


def test_both_tiers_apply_max_restarts_within_period():
    expected = [True, True,   # two restarts allowed in any 10 s
                False, False,  # the third is refused, and the driver stays dead
                True,          # at 10.5 the restart at 0 has left the window
                False,         # at 10.9 the ones at 1 and 10.5 are in it
                True,          # at 12 only the one at 10.5 is
                True]
    assert run_script("python") == expected
    assert run_script("jitted") == expected


@pytest.mark.parametrize("tier", ["python", "jitted"])
def test_a_policy_may_report_the_request_in_flight_and_still_restart(tier):
    from redleaf_nb.kernel.faults import Fault
    k, sh = membdev_shadow(RestartPolicy(in_flight="report"))
    k.inject("membdev", Fault(point="read"))
    buf = k.new(Block)
    if tier == "python":
        assert isinstance(sh.read(0, buf), RpcError)
    else:
        assert k.jit_call(sh, "read", 0, buf)[0] != 0
    assert k.lookup("membdev").domain.alive and sh.domain.alive     # restarted all the same
    assert sh.domain.impl.stats.restarts == 1 and sh.domain.impl.stats.retried == 0
    assert not isinstance(sh.read(0, k.new(Block)), RpcError)       # and serving again
    k.heap.check_invariants()
    with pytest.raises(ValueError, match="in_flight"):
        RestartPolicy(in_flight="drop")


@pytest.mark.parametrize("tier", ["python", "jitted"])
def test_a_request_that_kills_every_driver_is_reported_not_retried_forever(tier):
    from redleaf_nb.kernel.faults import Fault
    k, sh = membdev_shadow(RestartPolicy(max_restarts=100, max_retries=2))
    k.inject("membdev", Fault(point="read", every=1, times=0))    # every read panics
    buf = k.new(Block)
    r = sh.read(0, buf) if tier == "python" else k.jit_call(sh, "read", 0, buf)[0]
    assert isinstance(r, RpcError) if tier == "python" else r != 0
    stats = sh.domain.impl.stats
    assert stats.restarts == 3 and stats.in_flight == 3 and stats.reported == 1
    k.disarm("membdev")
    assert not isinstance(sh.read(0, k.new(Block)), RpcError)
    k.heap.check_invariants()


# --- 7. the kernel's event log tells a death and its recovery in order ------------------

@pytest.mark.parametrize("tier", TIERS)
def test_the_event_log_tells_a_recovered_panic_step_by_step(tier):
    from redleaf_nb.kernel.faults import Fault
    k, sh = membdev_shadow(RestartPolicy())
    first = k.events.next_seq
    k.inject("membdev", Fault(point="read"))
    ok, _ = call(k, tier, sh, "read", 0, k.new(Block))
    assert ok
    log = k.events.since(first)
    assert list(log.kind) == ["armed", "unwind", "crash", "reclaim", "restart", "retry"]
    assert set(log.domain) == {"membdev"} and log.seq.is_monotonic_increasing
    assert log.t_ns.is_monotonic_increasing
    assert "InjectedFault" in log.detail[log.kind == "crash"].item() or tier == "jitted"
    # the buffer of the read was inside the driver: the python tier's reclaim freed it;
    # the jitted kernel freed it where the driver died, before the log's reclaim
    freed = ("1 heap objects freed" if tier == "python" else
             "heap objects freed by the jitted kernel where it died (+0 now)")
    assert log.detail[log.kind == "reclaim"].item().startswith(freed)
    assert "memdisk" in log.detail[log.kind == "reclaim"].item()
    k.heap.check_invariants()


def test_the_event_log_records_the_policys_refusals_and_a_clean_termination():
    k, sh = membdev_shadow(RestartPolicy(max_restarts=0))
    first = k.events.next_seq
    k.crash("membdev")
    assert not call(k, "python", sh, "read", 0, k.new(Block))[0]
    assert list(k.events.since(first).kind) == ["crash", "reclaim", "refused"]
    assert "max_restarts" in k.events.since(first).detail.iloc[-1]
    k.terminate("shadow")
    assert k.events.since(first).kind.iloc[-2:].tolist() == ["terminated", "reclaim"]
    assert k.events.count("reclaim", since=first) == 2


def test_the_event_log_keeps_the_latest_events_and_numbers_them_all():
    from redleaf_nb.kernel.events import EventLog
    log = EventLog(limit=3)
    for i in range(5):
        log.record("crash", f"d{i}")
    assert list(log.since().domain) == ["d2", "d3", "d4"] and log.next_seq == 5
    assert list(log.since(4).seq) == [4] and log.count("crash") == 3
    with pytest.raises(ValueError, match="not one of"):
        log.record("exploded", "d0")
