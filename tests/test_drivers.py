"""Driver domains over the device models, in every configuration.

Correctness, not speed: every packet is counted on the wire or as a drop,
every block written reads back, each buffer is owned where the heap says, and
a driver that panics in the middle of a batch loses nothing (it is reclaimed).
"""
from __future__ import annotations

import numpy as np
import pytest

from devices import nic as N
from devices.nic import Nic82599, nic_step
from devices.nvme import NvmeSsd, nvme_step
from experiments._drivers import run_blk, run_net
from redleaf_nb import configs
from redleaf_nb.drivers.ixgbe import Ixgbe
from redleaf_nb.drivers.nullnet import NullNet
from redleaf_nb.drivers.nvme import Nvme
from redleaf_nb.interfaces.net import Packet, Packets
from redleaf_nb.interfaces.nvme import BlkReq, Requests
from redleaf_nb.kernel import heap as hp
from redleaf_nb.kernel.domain import Kernel
from redleaf_nb.kernel.proxy import CURRENT, DEPTH, RPC_OK, RPC_PANIC
from redleaf_nb.kernel.types import exchangeable

RING = 64


class Bench:
    """A benchmark domain's view: deques of buffers and one configuration's entry."""

    def __init__(self, config: str, driver_cls, role: str, device, **create):
        self.k = Kernel(heap_bytes=16 << 20, max_objects=1 << 12)
        cap = self.k.add_device("device", device) if device is not None else None
        self.e = configs.build(self.k, config, driver_cls, role, device=cap, **create)
        self.k.heap.h.calls[CURRENT], self.k.heap.h.calls[DEPTH] = self.e.runs_as, 0
        self.me = self.e.runs_as
        t = exchangeable(Packets if role == "net" else Requests)
        self.a, self.b = self.k.heap.alloc(t, self.me), self.k.heap.alloc(t, self.me)
        self.item = t.child

    def new(self, value=None) -> int:
        h = self.k.heap.alloc(self.item, self.me)
        if value is not None:
            v = self.k.heap.view(h, self.me, write=True)
            if v.ndim:
                v[:len(value)] = value      # a frame at the front of a packet buffer
            else:
                v[...] = value
        return h

    def push(self, h: int) -> None:
        assert hp.deque_push_back(self.k.heap.k, self.a, self.me, h) == 0

    def call(self, flag: bool):
        status, ret = self.e.fn(self.k.heap.k, self.e.target, self.a, self.b, flag)
        if status == RPC_OK:
            n, self.a, self.b = ret
            return status, n
        return status, 0

    def collected(self) -> list[int]:
        out = []
        while (h := hp.deque_pop_front(self.k.heap.k, self.b, self.me)) > 0:
            out.append(h)
        return out

    def owned_by(self, domain_id: int) -> int:
        return self.k.heap.owned(domain_id)[0]


def frame_with_length(n: int) -> np.ndarray:
    f = N.udp_frame(64)
    f[16], f[17] = (n - 14) >> 8, (n - 14) & 0xFF
    return f


@pytest.mark.parametrize("config", configs.CONFIGS)
def test_nullnet_hands_every_packet_back_in_order(config):
    b = Bench(config, NullNet, "net", None, batch=8, ring=RING)
    sent = [b.new() for _ in range(12)]
    for h in sent:
        b.push(h)
    status, n = b.call(True)
    assert status == RPC_OK and n == 8
    got = b.collected()
    assert [h & hp.SLOT_MASK for h in got] == [h & hp.SLOT_MASK for h in sent[:8]]
    b.k.heap.check_invariants()
    assert b.owned_by(b.me) == 2 + 8    # the deques and the packets handed back ...
    assert b.k.heap.live_objects == 2 + 12   # ... and nothing lost


@pytest.mark.parametrize("config", configs.CONFIGS)
def test_ixgbe_rx_every_frame_is_received_or_counted_missed(config):
    nic = Nic82599("x520", 64)
    b = Bench(config, Ixgbe, "net", nic, batch=32, ring=RING)
    for _ in range(20):
        b.push(b.new())
    status, n = b.call(False)                  # refill: the ring takes all 20 buffers
    assert status == RPC_OK and n == 0
    driver = b.e.driver.domain
    linked = 2 if b.me == driver.id else 0     # redleaf-driver: the benchmark's deques too
    assert b.owned_by(driver.id) == 20 + linked and driver.impl.buffers_in_rings() == 20
    nic.start_clock()
    received = []
    for _ in range(50):
        nic_step(nic.mmio)
        status, n = b.call(False)
        assert status == RPC_OK
        got = b.collected()
        assert len(got) == n
        for h in got:                           # the frame the wire carried, intact
            assert (b.k.heap.view(h, b.me)[:64] == nic.frame).all()
            b.push(h)                           # and the buffer goes back for refill
        received += got
    s = nic.stats()
    pending = sum(1 for i in range(RING) if driver.impl.rx_bufs[i] and
                  int(driver.impl.rx_ring[i]["info"]) & N.RXD_DD)
    assert s["rx_packets"] == len(received) + pending
    offered = (int(nic.regs[N.NOW]) << N.FP) // int(nic.regs[N.CPP_FP])
    assert s["rx_packets"] + s["rx_missed"] == offered
    b.k.heap.check_invariants()


@pytest.mark.parametrize("config", ["redleaf-driver", "redleaf-domain", "rv6-shadow"])
def test_ixgbe_tx_every_packet_reaches_the_wire_or_is_still_queued(config):
    nic = Nic82599("x520", 64, rx_traffic=False)
    b = Bench(config, Ixgbe, "net", nic, batch=32, ring=RING)
    nic.start_clock()
    submitted = 0
    for i in range(40):
        for _ in range(8):
            b.push(b.new(N.udp_frame(64)))
        nic_step(nic.mmio)
        status, n = b.call(True)
        assert status == RPC_OK
        submitted += n
        for h in b.collected():                # sent buffers come back: drop them
            assert hp.free(b.k.heap.k, h, b.me) == 0
    impl = b.e.driver.domain.impl
    queued = (nic.read_reg(N.TDT) - nic.read_reg(N.TDH)) % RING
    assert nic.stats()["tx_packets"] + queued == submitted
    assert nic.stats()["tx_bytes"] == 64 * nic.stats()["tx_packets"]
    linked = 2 if b.me == b.e.driver.domain.id else 0
    assert b.owned_by(b.e.driver.domain.id) == impl.buffers_in_rings() + linked
    b.k.heap.check_invariants()


@pytest.mark.parametrize("config", ["redleaf-domain", "rv6-domain"])
def test_a_driver_panic_mid_batch_loses_no_buffer(config):
    nic = Nic82599("x520", 64, rx_traffic=False)
    b = Bench(config, Ixgbe, "net", nic, batch=32, ring=RING)
    for i in range(10):                        # the 6th frame is malformed: a panic mid-batch
        b.push(b.new(frame_with_length(3000) if i == 5 else N.udp_frame(64)))
    kept = b.new()                             # something the benchmark keeps
    status, _ = b.call(True)
    assert status == RPC_PANIC
    driver = b.e.driver.domain
    assert not driver.alive
    b.k._settle_jitted_deaths("test")
    b.k.heap.check_invariants()
    # the 5 buffers already in the ring and the 5 left in the deque went with the driver
    assert b.k.heap.owned(driver.id) == (0, 0)
    assert b.k.heap.live_objects == 1 and b.owned_by(b.me) == 1
    assert hp.check_read(b.k.heap.k, kept, b.me) >= 0
    assert not nic.read_reg(N.TXDCTL) & N.DCTL_ENABLE     # the NIC stopped its DMA


def test_the_shadow_restarts_a_panicked_driver_and_the_next_batch_works():
    nic = Nic82599("x520", 64, rx_traffic=False)
    b = Bench("redleaf-shadow", Ixgbe, "net", nic, batch=32, ring=RING)
    b.push(b.new(frame_with_length(3000)))
    status, _ = b.call(True)
    assert status == RPC_PANIC                 # the request's RRefs went down: reported
    b.k._settle_jitted_deaths("test")
    new = b.k.lookup("net-driver").domain
    assert new.alive and new.id != b.e.driver.domain.id
    assert nic.read_reg(N.TXDCTL) & N.DCTL_ENABLE       # the restarted driver re-set it up
    t = exchangeable(Packets)
    b.a, b.b = b.k.heap.alloc(t, b.me), b.k.heap.alloc(t, b.me)
    for _ in range(4):
        b.push(b.new(N.udp_frame(64)))
    nic.start_clock()
    status, n = b.call(True)
    assert status == RPC_OK and n == 4
    b.k.heap.check_invariants()


@pytest.mark.parametrize("config", configs.CONFIGS)
def test_nvme_every_block_written_reads_back(config):
    ssd = NvmeSsd("unlimited")
    b = Bench(config, Nvme, "bdev", ssd, batch=32, queue_entries=16)
    ssd.start_clock()

    def transfer(blocks, write, fill):
        for blk in blocks:
            v = np.zeros((), exchangeable(BlkReq).dtype)
            v["block"] = blk
            if fill:
                v["data"][:] = blk % 251 + 1
            b.push(b.new(v))
        done = []
        while len(done) < len(blocks):
            status, n = b.call(write)
            assert status == RPC_OK
            nvme_step(ssd.mmio)
            done += b.collected()
        return done

    blocks = list(range(3, 40, 3))             # 13 requests through a 16-entry queue, twice
    for h in transfer(blocks, True, True):
        assert b.k.heap.view(h, b.me)["data_len"] == 4096
        hp.free(b.k.heap.k, h, b.me)
    assert all((ssd.blocks[blk] == blk % 251 + 1).all() for blk in blocks)
    back = transfer(blocks, False, False)
    got = {int(b.k.heap.view(h, b.me)["block"]): b.k.heap.view(h, b.me)["data"] for h in back}
    assert sorted(got) == blocks
    assert all((got[blk] == blk % 251 + 1).all() for blk in blocks)
    if b.me != b.e.driver.domain.id:
        assert b.k.heap.owned(b.e.driver.domain.id) == (0, 0)   # nothing left in flight
    b.k.heap.check_invariants()


def test_python_tier_drivers_give_the_same_answers():
    """The Python tier (proxies, RRef objects) over the same jitted driver code."""
    k = Kernel(heap_bytes=16 << 20, max_objects=1 << 12)
    nic = Nic82599("unlimited", 64)
    net = k.create("ixgbe", Ixgbe, device=k.add_device("nic", nic), batch=32, ring=RING)
    p, c = k.new(Packets), k.new(Packets)
    for _ in range(10):
        p.push_back(k.new(Packet))
    n, p, c = net.submit_and_poll(p, c, False)
    assert n == 0 and len(p) == 0
    nic.start_clock()
    nic_step(nic.mmio)
    n, p, c = net.submit_and_poll(p, c, False)
    assert n == len(c) == 10
    assert (c.pop_front().get()[:64] == nic.frame).all()
    k.heap.check_invariants()


def test_bad_configurations_are_refused_by_name():
    k = Kernel()
    with pytest.raises(ValueError, match="unknown configuration 'linux'.*redleaf-driver"):
        configs.build(k, "linux", NullNet, "net", device=None, batch=1, ring=8)
    with pytest.raises(ValueError, match="unknown driver role 'gpu'"):
        configs.build(k, "redleaf-driver", NullNet, "gpu", device=None, batch=1, ring=8)


def test_nvme_driver_refuses_a_queue_the_drive_cannot_hold():
    k = Kernel()
    ssd = k.add_device("nvme", NvmeSsd("p3700"))
    with pytest.raises(Exception, match=r"queue_entries must be 2..1024"):
        k.create("nvme", Nvme, device=ssd, batch=1, queue_entries=5000)


def test_benchmark_runs_recycle_buffers_and_leak_nothing():
    r = run_net(Ixgbe, "rv6-shadow", tx=False, batch=32, seconds=0.002, profile="x520")
    assert r.done > 0 and r.device["rx_packets"] >= r.done
    r = run_blk(Nvme, "redleaf-shadow", write=True, batch=4, seconds=0.002, profile="p3700",
                queue_depth=8)
    assert r.done > 0 and r.device["errors"] == 0


# --- a corrupted ring index in a driver's typed state is a panic, never a stray access ---

CORRUPTIONS = [(Ixgbe, "rx_next", False), (Ixgbe, "rx_tail", False), (Ixgbe, "tx_next", True),
               (Ixgbe, "tx_clean", True), (Nvme, "sq_tail", False), (Nvme, "cq_head", True)]


def _driver_bench(driver_cls, config):
    if driver_cls is Ixgbe:
        b = Bench(config, Ixgbe, "net", Nic82599("x520", 64, rx_traffic=False), batch=8,
                  ring=RING)
        fill = lambda: b.new(N.udp_frame(64))          # noqa: E731
    else:
        b = Bench(config, Nvme, "bdev", NvmeSsd("unlimited"), batch=8, queue_entries=16)
        fill = lambda: b.new(np.zeros((), exchangeable(BlkReq).dtype))   # noqa: E731
    return b, fill


@pytest.mark.parametrize("config", ["redleaf-domain", "redleaf-shadow"])
@pytest.mark.parametrize("driver_cls, field, flag", CORRUPTIONS,
                         ids=[f"{c.__name__}-{f}" for c, f, _ in CORRUPTIONS])
def test_a_corrupted_ring_index_crashes_only_the_driver(driver_cls, field, flag, config):
    b, fill = _driver_bench(driver_cls, config)
    for _ in range(4):
        b.push(fill())
    driver = b.k.lookup("net-driver" if driver_cls is Ixgbe else "bdev-driver").domain
    driver.jit_state[field] = 1 << 40            # what an off-by-a-lot bug could write
    status, _ = b.call(flag)
    assert status == RPC_PANIC                   # the bounds check fired inside the driver
    assert not driver.alive
    b.k._settle_jitted_deaths("test")
    b.k.heap.check_invariants()
    assert b.k.heap.owned(driver.id) == (0, 0)   # everything it held was reclaimed
    if config == "redleaf-shadow":               # the shadow brought a fresh driver up
        fresh = b.k.lookup("net-driver" if driver_cls is Ixgbe else "bdev-driver").domain
        assert fresh.alive and fresh.id != driver.id
