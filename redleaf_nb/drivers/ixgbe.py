"""ixgbe: the Intel 82599 driver domain (RedLeaf ``domains/sys/driver/ixgbe``).

The driver owns the device's descriptor rings (its DMA memory) and, for each
ring slot, the packet buffer (an ``RRef<[u8; 1514]>``) whose address it gave
the device: zero-copy, as RedLeaf writes the RRef's value address into the
descriptor. It speaks to the NIC only through its registers (the MMIO base it
is given when it claims the device) and those rings. Its register map and
descriptor bits below are the datasheet's, as a real driver carries them.

The hot path (``submit_and_poll``) is jitted; set-up and reset are Python.
"""
from __future__ import annotations

import numpy as np
from numba import carray, njit

from redleaf_nb.interfaces.net import PKT_BUF, Net
from redleaf_nb.kernel import heap as hp
from redleaf_nb.kernel.proxy import jit_current
from redleaf_nb.lowlevel.memory import load, pointer, ring_next, store

# 82599 registers (as int64 word indices of the MMIO region) and bits
(CTRL, STATUS, RXCTRL, RDBAL, RDBAH, RDLEN, RDH, RDT, RXDCTL,
 TDBAL, TDBAH, TDLEN, TDH, TDT, TXDCTL) = range(15)
CTRL_RST = 1 << 26
STATUS_LU = 1 << 1
RXCTRL_RXEN = 1
DCTL_ENABLE = 1 << 25
RXD_DD = 1
TXD_DD = 1
TXD_CMD = (1 << 24) | (1 << 25) | (1 << 27) | (1 << 29) | (3 << 20)  # EOP IFCS RS DEXT DATA
TXD_PAYLEN_SHIFT = 14
DESC_BYTES = 16

# the jitted state: addresses of the rings and slot arrays, ring indices, counters
(MMIO, RX_RING, TX_RING, RX_BUFS, TX_BUFS, NRX, NTX, RX_NEXT, RX_TAIL, TX_NEXT, TX_CLEAN,
 BATCH, RX_COUNT, TX_COUNT) = range(14)


@njit(cache=True)
def _bad_frame():
    """A panic kept out of line: a ``raise`` inside the hot loop slows every call."""
    raise ValueError("ixgbe: frame longer than a packet buffer (bad IPv4 total length)")


@njit(cache=True)
def _reap_tx(k, state, me, collect):
    """Hand back buffers whose descriptors the device marked done (DD)."""
    ring, bufs, n = load(state, TX_RING), load(state, TX_BUFS), load(state, NTX)
    i, end, done = load(state, TX_CLEAN), load(state, TX_NEXT), 0
    while i != end and done < load(state, BATCH) and (load(ring, 2 * i + 1) >> 32) & TXD_DD:
        if hp.deque_push_back(k, collect, me, load(bufs, i)) != 0:
            break  # collect is full: leave the rest for the next call
        store(bufs, i, 0)
        i = ring_next(i, n)
        done += 1
    store(state, TX_CLEAN, i)


@njit(cache=True)
def _transmit(k, state, me, packets):
    """Queue buffers from ``packets`` on free TX descriptors; the count queued."""
    ring, bufs, n = load(state, TX_RING), load(state, TX_BUFS), load(state, NTX)
    i, queued = load(state, TX_NEXT), 0
    while queued < load(state, BATCH) and ring_next(i, n) != load(state, TX_CLEAN):
        buf = hp.deque_pop_front(k, packets, me)
        if buf <= 0:
            break
        addr = hp.word_address(k, buf, me, False)
        hdr = carray(pointer(addr, np.uint8), 18)
        length = ((np.int64(hdr[16]) << 8) | hdr[17]) + 14   # IPv4 total length + Ethernet
        if length > PKT_BUF:
            _bad_frame()
        store(ring, 2 * i, addr)
        store(ring, 2 * i + 1, (length | TXD_CMD) | ((length << TXD_PAYLEN_SHIFT) << 32))
        store(bufs, i, buf)
        i = ring_next(i, n)
        queued += 1
    store(state, TX_NEXT, i)
    store(load(state, MMIO), TDT, i)    # one doorbell per batch
    return queued


@njit(cache=True)
def _receive(k, state, me, collect):
    """Hand over received packets (DD set), up to the batch; the count."""
    ring, bufs, n = load(state, RX_RING), load(state, RX_BUFS), load(state, NRX)
    i, got = load(state, RX_NEXT), 0
    while got < load(state, BATCH) and load(bufs, i) != 0 and load(ring, 2 * i + 1) & RXD_DD:
        if hp.deque_push_back(k, collect, me, load(bufs, i)) != 0:
            break
        store(bufs, i, 0)
        i = ring_next(i, n)
        got += 1
    store(state, RX_NEXT, i)
    return got


@njit(cache=True)
def _refill(k, state, me, packets):
    """Give the device every buffer in ``packets`` the RX ring has room for."""
    ring, bufs, n = load(state, RX_RING), load(state, RX_BUFS), load(state, NRX)
    t = load(state, RX_TAIL)
    while ring_next(t, n) != load(state, RX_NEXT):   # one slot stays empty: RDT == RDH means none
        buf = hp.deque_pop_front(k, packets, me)
        if buf <= 0:
            break
        store(ring, 2 * t, hp.word_address(k, buf, me, True))
        store(ring, 2 * t + 1, 0)
        store(bufs, t, buf)
        t = ring_next(t, n)
    store(state, RX_TAIL, t)
    store(load(state, MMIO), RDT, t)


@njit(cache=True)
def jit_submit_and_poll(k, state, packets, collect, tx):
    """Jitted ``Net.submit_and_poll``: TX queues ``packets`` and returns sent buffers in
    ``collect``; RX returns received packets in ``collect`` and refills from ``packets``."""
    me = jit_current(k)
    if tx:
        _reap_tx(k, state, me, collect)
        n = _transmit(k, state, me, packets)
        store(state, TX_COUNT, load(state, TX_COUNT) + n)
    else:
        n = _receive(k, state, me, collect)
        _refill(k, state, me, packets)
        store(state, RX_COUNT, load(state, RX_COUNT) + n)
    return n, packets, collect


class Ixgbe(Net):
    """The 82599 driver: claims the ``nic`` device, resets it, sets up one RX and
    one TX ring (``NUM_RX_DESCS = NUM_TX_DESCS = 512`` as RedLeaf)."""

    jit_methods = {"submit_and_poll": jit_submit_and_poll}
    device = "nic"

    def create_net(self, batch, ring):
        batch, ring = int(batch), int(ring)
        self.nic = self.domain.claim_device(self.device)
        self.nic.write_reg(CTRL, CTRL_RST)
        if self.nic.read_reg(CTRL) & CTRL_RST:
            raise RuntimeError("ixgbe: the NIC did not come out of reset")
        if not self.nic.read_reg(STATUS) & STATUS_LU:
            raise RuntimeError("ixgbe: no link")
        self.rx_ring = np.zeros(2 * ring, np.uint64)   # DMA memory for the descriptors
        self.tx_ring = np.zeros(2 * ring, np.uint64)
        self.rx_bufs = np.zeros(ring, np.int64)        # the RRef in each slot (0: none)
        self.tx_bufs = np.zeros(ring, np.int64)
        for (bal, bah, dlen, head, tail), r in [((RDBAL, RDBAH, RDLEN, RDH, RDT), self.rx_ring),
                                                ((TDBAL, TDBAH, TDLEN, TDH, TDT), self.tx_ring)]:
            addr = r.ctypes.data
            self.nic.write_reg(bal, addr & 0xFFFFFFFF)
            self.nic.write_reg(bah, addr >> 32)
            self.nic.write_reg(dlen, ring * DESC_BYTES)
            self.nic.write_reg(head, 0)
            self.nic.write_reg(tail, 0)
        self.nic.write_reg(RXDCTL, DCTL_ENABLE)
        self.nic.write_reg(TXDCTL, DCTL_ENABLE)
        self.nic.write_reg(RXCTRL, RXCTRL_RXEN)
        self.state = np.zeros(14, np.int64)
        self.state[[MMIO, RX_RING, TX_RING, RX_BUFS, TX_BUFS, NRX, NTX, BATCH]] = (
            self.nic.mmio, self.rx_ring.ctypes.data, self.tx_ring.ctypes.data,
            self.rx_bufs.ctypes.data, self.tx_bufs.ctypes.data, ring, ring, batch)

    def jit_state(self):
        return self.state

    def submit_and_poll(self, packets, collect, tx):
        n, _, _ = self.domain.run_jitted(jit_submit_and_poll, packets.handle, collect.handle, tx)
        return n, packets, collect

    def buffers_in_rings(self) -> int:
        """How many packet buffers the driver holds in its ring slots."""
        return int((self.rx_bufs != 0).sum() + (self.tx_bufs != 0).sum())
