"""The IOMMU: a device moves data only to and from memory its owning driver holds
(lowlevel/iommu.py, kernel/dma.py, the DMA paths of devices/nic.py and devices/nvme.py).

A driver is safe code, but the addresses it writes into descriptors and commands
are only numbers. Each test writes a wrong one, as a buggy driver could, and
checks that the device refuses it, says so, and writes nothing anywhere."""
from __future__ import annotations

import numpy as np
import pytest

from devices import nic as N
from devices import nvme as V
from devices.nic import Nic82599, nic_step
from devices.nvme import NvmeSsd, nvme_step
from redleaf_nb.datasheets.ixgbe_82599 import DCTL_ENABLE, RDT, RXDCTL
from redleaf_nb.datasheets.nvme import (CSTS, CSTS_CFS, OP_READ, SC_DATA_TRANSFER_ERROR,
                                        SC_SUCCESS, SQ1TDBL)
from redleaf_nb.drivers.ixgbe import Ixgbe
from redleaf_nb.drivers.nvme import Nvme
from redleaf_nb.interfaces.net import PKT_BUF, Packet
from redleaf_nb.kernel import heap as hp
from redleaf_nb.kernel.domain import Kernel
from redleaf_nb.lowlevel.iommu import dma_allowed

RING = 16


def address(k, handle) -> int:
    """Where an object's value starts (what a driver writes into a descriptor)."""
    return int(k.heap.h.arena.ctypes.data + k.heap.h.meta[handle & hp.SLOT_MASK, hp.OFFSET])


def nic_with_driver(**nic_args):
    k = Kernel(heap_bytes=1 << 20, max_objects=256)
    nic = Nic82599("x520", 64, **nic_args)
    driver = k.create("ixgbe", Ixgbe, device=k.add_device("nic", nic), batch=8, ring=RING)
    return k, nic, driver


def owned_packet(k, owner, fill=0) -> int:
    """A new packet buffer, filled with ``fill``, moved to ``owner``."""
    h = k.new(Packet).handle
    k.heap.view(h, k.init.id, write=True)[:] = fill
    return k.heap.move(h, k.init.id, owner) if owner != k.init.id else h


def test_the_iommu_lets_a_device_reach_only_what_its_driver_holds():
    k, nic, driver = nic_with_driver()
    ctx, me = int(nic.regs[N.IOMMU_CTX]), driver.domain.id
    mine, theirs = owned_packet(k, me), owned_packet(k, k.init.id)
    ring = driver.domain.impl.rx_ring
    assert dma_allowed(ctx, address(k, mine), PKT_BUF)                # its own buffer
    assert dma_allowed(ctx, address(k, mine) + 16, 64)                # a part of it
    assert dma_allowed(ctx, ring.ctypes.data, ring.nbytes)            # its granted ring
    refused = [(address(k, theirs), 64),                              # another's buffer
               (address(k, mine) + PKT_BUF - 8, 64),                  # across its end
               (address(k, mine), PKT_BUF + 512),                     # past its end
               (ring.ctypes.data, ring.nbytes + 16),                  # past the ring
               (np.zeros(64, np.uint8).ctypes.data, 64),              # any other memory
               (address(k, mine), 0)]                                 # nothing to move
    assert not any(dma_allowed(ctx, a, n) for a, n in refused)
    assert k.dma_faults("nic") == {"dma_faults": len(refused),
                                   "last_fault_address": address(k, mine)}
    k.heap.move(mine, me, k.init.id)                                  # handed on: not its
    assert not dma_allowed(ctx, address(k, mine), 64)
    assert dma_allowed(0, 12345, 64)                                  # no IOMMU: passthrough


def test_a_crashed_drivers_device_may_reach_nothing():
    k, nic, driver = nic_with_driver()
    ctx, ring = int(nic.regs[N.IOMMU_CTX]), driver.domain.impl.rx_ring
    k.crash("ixgbe", "test")
    assert not dma_allowed(ctx, ring.ctypes.data, 16)
    assert not nic.regs[RXDCTL] & DCTL_ENABLE                           # and it was quiesced


@pytest.mark.parametrize("target", ["another domain's buffer", "across the end of its own",
                                    "memory outside the heap"])
def test_a_nic_descriptor_pointing_elsewhere_stops_rx_and_writes_nothing(target):
    k, nic, driver = nic_with_driver()
    me, impl = driver.domain.id, driver.domain.impl
    victim = np.full(PKT_BUF, 0xAB, np.uint8)
    good = [owned_packet(k, me) for _ in range(4)]
    addrs = {"another domain's buffer": address(k, owned_packet(k, k.init.id, fill=0xAB)),
             "across the end of its own": address(k, good[3]) + PKT_BUF - 32,
             "memory outside the heap": victim.ctypes.data}
    before = k.heap.h.arena.copy()
    for i, h in enumerate(good[:3]):                 # three good descriptors, then the bad one
        impl.rx_ring[i]["addr"], impl.rx_bufs[i] = address(k, h), h
    impl.rx_ring[3]["addr"] = addrs[target]
    nic.regs[RDT] = 4
    nic.start_clock()
    while nic.stats()["rx_packets"] < 3 and nic.stats()["dma_halts"] == 0:
        nic_step(nic.mmio)
    for _ in range(20):
        nic_step(nic.mmio)
    s = nic.stats()
    assert s["rx_packets"] == 3 and s["dma_halts"] == 1               # stopped at the bad one
    assert not nic.regs[RXDCTL] & DCTL_ENABLE
    assert k.dma_faults("nic")["last_fault_address"] == addrs[target]
    assert (victim == 0xAB).all()
    changed = np.flatnonzero(k.heap.h.arena != before)               # only its 3 good buffers
    base = k.heap.h.arena.ctypes.data
    inside = [(address(k, h) - base, address(k, h) - base + PKT_BUF) for h in good[:3]]
    assert len(changed) and all(any(lo <= c < hi for lo, hi in inside) for c in changed)
    k.heap.check_invariants()


def test_a_nic_tx_descriptor_pointing_elsewhere_stops_tx():
    k, nic, driver = nic_with_driver(rx_traffic=False)
    impl = driver.domain.impl
    theirs = owned_packet(k, k.init.id)
    impl.tx_ring[0]["addr"] = address(k, theirs)
    impl.tx_ring[0]["info"] = 64 | N.TXD_EOP | N.TXD_DEXT
    nic.regs[N.TDT] = 1
    nic.start_clock()
    for _ in range(20):
        nic_step(nic.mmio)
    s = nic.stats()
    assert s["tx_packets"] == 0 and s["dma_halts"] == 1
    assert not nic.regs[N.TXDCTL] & DCTL_ENABLE


def nvme_with_driver():
    k = Kernel(heap_bytes=1 << 20, max_objects=256)
    ssd = NvmeSsd("unlimited")
    driver = k.create("nvme", Nvme, device=k.add_device("nvme", ssd), batch=8,
                      queue_entries=16)
    return k, ssd, driver


def read_command(ssd, driver, prp1, cid=0):
    """Queue a 4 KiB read of block 0 into ``prp1`` and run the drive until it completes:
    the completion's status."""
    sqe = driver.domain.impl.sq[0]
    sqe["cdw0_nsid"] = OP_READ | (cid << 16)
    sqe["prp1"], sqe["cdw10_11"], sqe["cdw12_13"] = prp1, 0, 7
    ssd.regs[SQ1TDBL] = 1
    ssd.start_clock()
    for _ in range(50):
        nvme_step(ssd.mmio)
    dw3 = int(driver.domain.impl.cq[0]["dw2_3"]) >> 32
    assert (dw3 >> 16) & 1 == 1, "no completion posted"
    return dw3 >> 17


def test_an_nvme_read_into_memory_the_driver_does_not_hold_fails_and_writes_nothing():
    k, ssd, driver = nvme_with_driver()
    ssd.blocks[0] = 0x5A
    victim = np.full(4096, 0xAB, np.uint8)
    assert read_command(ssd, driver, victim.ctypes.data) == SC_DATA_TRANSFER_ERROR
    assert (victim == 0xAB).all() and ssd.stats()["errors"] == 1
    assert k.dma_faults("nvme")["last_fault_address"] == victim.ctypes.data


def test_an_nvme_read_into_the_drivers_own_buffer_succeeds():
    from redleaf_nb.interfaces.bdev import Block
    k, ssd, driver = nvme_with_driver()
    ssd.blocks[0] = 0x5A
    buf = k.heap.move(k.new(Block).handle, k.init.id, driver.domain.id)
    assert read_command(ssd, driver, address(k, buf)) == SC_SUCCESS
    assert (k.heap.view(buf, driver.domain.id) == 0x5A).all()


def test_an_nvme_queue_moved_outside_the_drivers_memory_is_a_fatal_controller_error():
    k, ssd, driver = nvme_with_driver()
    elsewhere = np.zeros(16 * 64, np.uint8)
    ssd.regs[V.SQ_BASE + V.QSTRIDE] = elsewhere.ctypes.data    # as if created there
    ssd.regs[SQ1TDBL] = 1
    ssd.start_clock()
    nvme_step(ssd.mmio)
    assert ssd.regs[CSTS] & CSTS_CFS and ssd.stats()["reads"] == 0
