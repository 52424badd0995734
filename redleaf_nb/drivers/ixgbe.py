"""ixgbe: the Intel 82599 driver domain (RedLeaf ``domains/sys/driver/ixgbe``).

The driver owns the device's descriptor rings (its DMA memory) and, for each
ring slot, the packet buffer (an ``RRef<[u8; 1514]>``) whose address it gave
the device: zero-copy, as RedLeaf writes the RRef's value address into the
descriptor. It speaks to the NIC only through its registers and those rings, which
reach its jitted code as grants (typed, bounds-checked arrays the kernel hands
it); the register map and descriptor layout come from the datasheet module the
device model shares (``redleaf_nb/datasheets/ixgbe_82599.py``).

The hot path (``submit_and_poll``) is jitted; set-up and reset are Python.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from redleaf_nb.datasheets.ixgbe_82599 import (CTRL, CTRL_RST, DCTL_ENABLE, DESC_BYTES, DESCRIPTOR,
                                               NREGS, RDBAH, RDBAL, RDH, RDLEN, RDT, RXCTRL,
                                               RXCTRL_RXEN, RXD_DD, RXDCTL, STATUS, STATUS_LU,
                                               TDBAH, TDBAL, TDH, TDLEN, TDT, TXD_CMD, TXD_DD,
                                               TXD_PAYLEN_SHIFT, TXDCTL)
from redleaf_nb.interfaces.net import PKT_BUF, Net
from redleaf_nb.kernel.views import (deque_pop_dma, deque_push_back, fault_point, fault_value,
                                     own_array, own_state, ring_next, state_type)



STATE = state_type(rx_next=np.int64, rx_tail=np.int64, tx_next=np.int64, tx_clean=np.int64,
                   batch=np.int64, rx_count=np.int64, tx_count=np.int64)
# the regions granted to the jitted code: the registers, the rings, the RRef in each slot
REGS, RX_RING, TX_RING, RX_BUFS, TX_BUFS = 1, 2, 3, 4, 5
# where an injected fault may strike (kernel/faults.py): once per call each, so that a
# disarmed point costs nothing per packet
MIN_TX_FRAME = 60   # bytes, without the FCS
FAULT_POINTS = ("mid_batch", "doorbell", "after_doorbell")
P_MID_BATCH, P_DOORBELL, P_AFTER_DOORBELL = range(3)

@njit(cache=True, boundscheck=True)
def _bad_frame():
    """A panic kept out of line: a ``raise`` inside the hot loop slows every call."""
    raise ValueError("ixgbe: frame longer than a packet buffer (bad IPv4 total length)")


# Each direction is one function that takes its views once per call: an array handed to
# a function costs reference-count calls on the way in and out, a view made here none,
# and each view is a lookup in the kernel's grant table.

@njit(cache=True, boundscheck=True)
def _send(k, st, packets, collect):
    """TX: hand back buffers whose descriptors the device marked done (DD), then queue
    buffers from ``packets`` on free descriptors; the count queued."""
    ring, bufs = own_array(k, TX_RING, DESCRIPTOR), own_array(k, TX_BUFS, np.int64)
    n, i, end, done = ring.shape[0], st.tx_clean, st.tx_next, 0
    while i != end and done < st.batch and (ring[i].info >> 32) & TXD_DD:
        if deque_push_back(k, collect, bufs[i]) != 0:
            break  # collect is full: leave the rest for the next call
        bufs[i] = 0
        i = ring_next(i, n)
        done += 1
    st.tx_clean = i
    fault_point(k, P_MID_BATCH)   # sent buffers reaped, new ones not yet queued
    i, queued = st.tx_next, 0
    while queued < st.batch and ring_next(i, n) != st.tx_clean:
        buf, address, hdr = deque_pop_dma(k, packets, np.uint8)
        if buf <= 0:
            break
        # the Net interface carries no length: an IPv4 frame's is its total length plus
        # the Ethernet header, any other (ARP) is sent as a minimum-size frame
        if hdr[12] == 0x08 and hdr[13] == 0x00:
            length = ((np.int64(hdr[16]) << 8) | hdr[17]) + 14
        else:
            length = MIN_TX_FRAME
        if length > PKT_BUF:
            _bad_frame()
        ring[i].addr = address
        ring[i].info = (length | TXD_CMD) | ((length << TXD_PAYLEN_SHIFT) << 32)
        bufs[i] = buf
        i = ring_next(i, n)
        queued += 1
    st.tx_next = i
    return queued


@njit(cache=True, boundscheck=True)
def _receive(k, st, packets, collect):
    """RX: hand over received packets (DD set), up to the batch, then give the device
    every buffer in ``packets`` the ring has room for; the count received."""
    ring, bufs = own_array(k, RX_RING, DESCRIPTOR), own_array(k, RX_BUFS, np.int64)
    n, i, got = ring.shape[0], st.rx_next, 0
    while got < st.batch and bufs[i] != 0 and ring[i].info & RXD_DD:
        if deque_push_back(k, collect, bufs[i]) != 0:
            break
        bufs[i] = 0
        i = ring_next(i, n)
        got += 1
    st.rx_next = i
    fault_point(k, P_MID_BATCH)   # packets handed over, the ring not yet refilled
    t = st.rx_tail
    while ring_next(t, n) != st.rx_next:   # one slot stays empty: RDT == RDH means none
        buf, address, _ = deque_pop_dma(k, packets, np.uint8)
        if buf <= 0:
            break
        ring[t].addr = address
        ring[t].info = 0
        bufs[t] = buf
        t = ring_next(t, n)
    st.rx_tail = t
    return got


@njit(cache=True, boundscheck=True)
def jit_submit_and_poll(k, state, packets, collect, tx):
    """Jitted ``Net.submit_and_poll``: TX queues ``packets`` and returns sent buffers in
    ``collect``; RX returns received packets in ``collect`` and refills from ``packets``."""
    st = own_state(k, state, STATE)
    if tx:
        n = _send(k, st, packets, collect)
        own_array(k, REGS, np.int64)[TDT] = fault_value(k, P_DOORBELL, st.tx_next)  # per batch
        st.tx_count += n
    else:
        n = _receive(k, st, packets, collect)
        own_array(k, REGS, np.int64)[RDT] = fault_value(k, P_DOORBELL, st.rx_tail)
        st.rx_count += n
    fault_point(k, P_AFTER_DOORBELL)   # the device has the batch; its completion is to come
    return n, packets, collect


class Ixgbe(Net):
    """The 82599 driver: claims the ``nic`` device, resets it, sets up one RX and
    one TX ring (``NUM_RX_DESCS = NUM_TX_DESCS = 512`` as RedLeaf)."""

    jit_methods = {"submit_and_poll": jit_submit_and_poll}
    fault_points = FAULT_POINTS

    def create_net(self, device, batch, ring):
        batch, ring = int(batch), int(ring)
        if device is None:
            raise ValueError("ixgbe: needs a NIC (a Device capability), got None")
        self.nic = self.domain.claim(device)
        self.nic.write_reg(CTRL, CTRL_RST)
        if self.nic.read_reg(CTRL) & CTRL_RST:
            raise RuntimeError("ixgbe: the NIC did not come out of reset")
        if not self.nic.read_reg(STATUS) & STATUS_LU:
            raise RuntimeError("ixgbe: no link")
        self.rx_ring = np.zeros(ring, DESCRIPTOR)      # DMA memory for the descriptors
        self.tx_ring = np.zeros(ring, DESCRIPTOR)
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
        self.state = np.zeros(1, STATE)
        self.state["batch"] = batch
        for index, region in ((REGS, self.nic.regs[:NREGS]), (RX_RING, self.rx_ring),
                              (TX_RING, self.tx_ring), (RX_BUFS, self.rx_bufs),
                              (TX_BUFS, self.tx_bufs)):
            self.domain.grant(index, region)

    def jit_state(self):
        return self.state

    def submit_and_poll(self, packets, collect, tx):
        n, _, _ = self.domain.run_jitted(jit_submit_and_poll, packets.handle, collect.handle, tx)
        return n, packets, collect

    def buffers_in_rings(self) -> int:
        """How many packet buffers the driver holds in its ring slots."""
        return int((self.rx_bufs != 0).sum() + (self.tx_bufs != 0).sum())
