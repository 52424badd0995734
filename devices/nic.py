"""An Intel 82599-style 10 GbE NIC: register file, descriptor rings, the wire.

What the model keeps from the datasheet (only what a driver uses):

* registers CTRL (RST), STATUS (LU), RXCTRL (RXEN), RDBAL/RDBAH/RDLEN/RDH/RDT/
  RXDCTL, TDBAL/TDBAH/TDLEN/TDH/TDT/TXDCTL, and the statistics GPRC/GPTC/
  GORC/GOTC and MPC (missed packets: arrived with no free RX descriptor);
* 16-byte *advanced* descriptors in host memory. RX read format {pkt_addr,
  hdr_addr}; RX write-back {pkt_info, status_error (DD, EOP) | length << 32}.
  TX read format {buffer_addr, cmd_type_len | olinfo_status << 32}; TX
  write-back sets DD in the status field (bit 32 of the second word);
* the ring protocol: the device owns RX descriptors RDH..RDT-1 and TX
  descriptors TDH..TDT-1; software moves the tail, the device the head;
* the wire: a packet generator offers RX frames at line rate, TX drains at
  line rate, each frame taking (size + 20) bytes of wire time (preamble and
  inter-frame gap): 14.88 Mpps for 64-byte frames at 10 Gb/s. Or a
  :class:`devices.wire.Wire` to another machine (a simulated client, a TAP
  device): RX takes the frames the peer put on it, each with its own length, TX
  puts every frame sent on it; the line rate still bounds TX.

Register indices, bits and the descriptor layout come from the datasheet module
the driver shares (``redleaf_nb/datasheets/ixgbe_82599.py``): int64 word indices
into :attr:`Nic82599.regs`, not the datasheet's byte offsets. Words from
``_INTERNAL`` on are the model's own state (its clock, counters it needs),
never granted to a driver.

DMA goes through the IOMMU (``redleaf_nb/lowlevel/iommu.py``): a ring, or a
buffer a descriptor points at, that is not memory the owning driver holds is
refused, and the queue stops (its enable bit cleared, ``DMA_HALTS`` counted), as
a device whose DMA faulted does; nothing is written. The driver's reset brings
it back.
"""
from __future__ import annotations

import numpy as np
from numba import carray, njit

from redleaf_nb.datasheets.ixgbe_82599 import (CTRL, CTRL_RST, DCTL_ENABLE, DESC_BYTES, GORC,
                                               GOTC, GPRC, GPTC, MPC, NREGS, RDBAH, RDBAL, RDH,
                                               RDLEN, RDT, RXCTRL, RXCTRL_RXEN, RXD_DD, RXD_EOP,
                                               RXDCTL, STATUS, STATUS_LU, TDBAH, TDBAL, TDH,
                                               TDLEN, TDT, TXD_DD, TXD_DEXT, TXD_EOP, TXDCTL,
                                               TXERR)
from redleaf_nb.lowlevel.clock import rdtsc, tsc_hz
from redleaf_nb.lowlevel.iommu import dma_allowed
from redleaf_nb.lowlevel.memory import load, move_bytes, pointer, ring_next, store

from .profiles import ETH_MAX_FRAME, ETH_MIN_FRAME, NicProfile, nic_profile
from .wire import FROM_HOST, LENGTHS, TO_HOST, Wire, wire_put, wire_take

# the model's own state, after the registers a driver sees (datasheet: NREGS)
_INTERNAL = 32
(T0, DEV_CYCLES, NOW, CPP_FP, RX_OFFERED_FP, TX_NEXT_FP, LAST_NOW, PKT_SIZE, FRAME_ADDR,
 STEPS, RX_TRAFFIC, IOMMU_CTX, DMA_HALTS, FRAME_COUNT, FRAME_NEXT, WIRE_META, WIRE_FRAMES,
 WIRE_CAP, PEER_CYCLES) = range(_INTERNAL, _INTERNAL + 19)
NWORDS = _INTERNAL + 19
assert NREGS <= _INTERNAL
MIN_FRAME = ETH_MIN_FRAME - 4   # bytes a frame holds here: the FCS is the wire's
FP = 16  # fixed-point bits of the wire clock (cycles per packet << FP)


def udp_frame(pkt_size: int) -> np.ndarray:
    """The generator's frame: Ethernet + IPv4 + UDP, ``pkt_size`` bytes (without FCS)."""
    if not MIN_FRAME <= pkt_size <= ETH_MAX_FRAME:
        raise ValueError(f"packet size {pkt_size} out of range {MIN_FRAME}..{ETH_MAX_FRAME}")
    f = np.zeros(pkt_size, np.uint8)
    f[0:6] = (0x90, 0xE2, 0xBA, 0x00, 0x00, 0x01)      # dst MAC
    f[6:12] = (0x90, 0xE2, 0xBA, 0x00, 0x00, 0x02)     # src MAC
    f[12:14] = (0x08, 0x00)                            # IPv4
    ip_len = pkt_size - 14
    f[14:34] = (0x45, 0, ip_len >> 8, ip_len & 0xFF, 0, 0, 0x40, 0, 64, 17, 0, 0,
                10, 0, 0, 1, 10, 0, 0, 2)
    words = f[14:34].view(">u2").astype(np.uint32)
    csum = int(words.sum())
    csum = (csum & 0xFFFF) + (csum >> 16)
    csum = ~((csum & 0xFFFF) + (csum >> 16)) & 0xFFFF
    f[24:26] = (csum >> 8, csum & 0xFF)
    udp_len = pkt_size - 34
    f[34:42] = (0x13, 0x88, 0x13, 0x89, udp_len >> 8, udp_len & 0xFF, 0, 0)
    f[42:] = np.arange(pkt_size - 42) & 0xFF
    return f


class Nic82599:
    """The device: its register file (the MMIO region) and its wire."""

    def __init__(self, profile: NicProfile | str = "x520", pkt_size: int = ETH_MIN_FRAME,
                 hz: float | None = None, rx_traffic: bool = True,
                 traffic: np.ndarray | None = None, wire: Wire | None = None):
        """``rx_traffic``: whether the packet generator on the wire sends to us.
        ``traffic``: the frames it sends, in turn and over again (a ``(count, size)``
        uint8 array: e.g. packets of many flows, or key-value requests); by default
        one UDP frame of ``pkt_size`` bytes, sent over and over. ``wire``: a link to
        another machine instead of the generator (``traffic`` is then unused)."""
        self.profile = nic_profile(profile) if isinstance(profile, str) else profile
        if traffic is None:
            traffic = udp_frame(pkt_size)[None, :]
        if not (isinstance(traffic, np.ndarray) and traffic.dtype == np.uint8
                and traffic.ndim == 2 and len(traffic) > 0 and traffic.flags.c_contiguous):
            raise TypeError("traffic: expected a contiguous (count, size) uint8 array of frames")
        pkt_size = traffic.shape[1]
        if not MIN_FRAME <= pkt_size <= ETH_MAX_FRAME:
            raise ValueError(f"traffic: frames of {pkt_size} bytes, out of range "
                             f"{MIN_FRAME}..{ETH_MAX_FRAME}")
        self.pkt_size = pkt_size
        self.traffic = traffic
        self.frame = traffic[0]
        self.regs = np.zeros(NWORDS, np.int64)
        pps = self.profile.packets_per_second(pkt_size)
        self.hz = hz or tsc_hz()
        self.regs[CPP_FP] = 0 if np.isinf(pps) else int(self.hz / pps * (1 << FP))
        self.regs[PKT_SIZE] = pkt_size
        self.regs[RX_TRAFFIC] = rx_traffic
        self.regs[FRAME_ADDR] = traffic.ctypes.data
        self.regs[FRAME_COUNT] = len(traffic)
        self.regs[STATUS] = STATUS_LU
        self.wire = wire
        if wire is not None:
            self.regs[WIRE_META], self.regs[WIRE_FRAMES], self.regs[WIRE_CAP] = wire.addresses()

    @property
    def mmio(self) -> int:
        """The MMIO base a driver is given: the address of the register file."""
        return int(self.regs.ctypes.data)

    def write_reg(self, reg: int, value: int) -> None:
        """An MMIO write from the Python tier (a reset takes effect at once)."""
        self.regs[reg] = value
        if reg == CTRL and value & CTRL_RST:
            self.reset()

    def read_reg(self, reg: int) -> int:
        return int(self.regs[reg])

    def attach_iommu(self, ctx: int) -> None:
        """The kernel's IOMMU context for this device (0: none, every transfer passes)."""
        self.regs[IOMMU_CTX] = ctx

    def reset(self) -> None:
        """CTRL.RST: rings and statistics cleared, link up, wire clock kept."""
        self.regs[:_INTERNAL] = 0
        self.regs[STATUS] = STATUS_LU

    def quiesce(self) -> None:
        """Stop all DMA (the kernel does this when the owning driver dies)."""
        self.regs[RXDCTL] &= ~DCTL_ENABLE
        self.regs[TXDCTL] &= ~DCTL_ENABLE
        self.regs[RXCTRL] &= ~RXCTRL_RXEN

    def start_clock(self) -> None:
        """Start the wire: the generator offers frames from now on; the statistics
        registers start from zero (they are clear-on-read on the 82599)."""
        self.regs[[GPRC, GPTC, GORC, GOTC, MPC, TXERR]] = 0
        self.regs[[DEV_CYCLES, NOW, RX_OFFERED_FP, TX_NEXT_FP, LAST_NOW, STEPS, FRAME_NEXT,
                   PEER_CYCLES]] = 0
        self.regs[T0] = rdtsc()

    def stats(self) -> dict:
        """Counters and the model's own cost, for a run's record."""
        r = self.regs
        return {"rx_packets": int(r[GPRC]), "tx_packets": int(r[GPTC]),
                "rx_missed": int(r[MPC]), "tx_errors": int(r[TXERR]),
                "rx_bytes": int(r[GORC]), "tx_bytes": int(r[GOTC]),
                "dma_halts": int(r[DMA_HALTS]),
                "device_cycles": int(r[DEV_CYCLES]), "device_steps": int(r[STEPS]),
                "peer_cycles": int(r[PEER_CYCLES]),
                "elapsed_cycles": int(r[NOW])}


@njit(cache=True, inline="always")
def _ring(dev, bal, bah):
    return load(dev, bal) | (load(dev, bah) << 32)


@njit(cache=True)
def _halt(dev, dctl):
    """A refused transfer: stop the queue (clear its enable bit); nothing was moved."""
    store(dev, dctl, load(dev, dctl) & ~DCTL_ENABLE)
    store(dev, DMA_HALTS, load(dev, DMA_HALTS) + 1)


@njit(cache=True, inline="always")
def _wire(dev):
    """The wire's queues as arrays (devices/wire.py)."""
    cap = load(dev, WIRE_CAP)
    return (carray(pointer(load(dev, WIRE_META), np.int64), (2, LENGTHS + cap)),
            carray(pointer(load(dev, WIRE_FRAMES), np.uint8), (2, cap, ETH_MAX_FRAME)))


@njit(cache=True)
def _receive_wire(dev):
    """Deliver the frames the peer put on the wire, each into a free descriptor."""
    n = load(dev, RDLEN) // DESC_BYTES
    if (load(dev, RXDCTL) & DCTL_ENABLE) == 0 or (load(dev, RXCTRL) & RXCTRL_RXEN) == 0:
        return
    ring, iommu = _ring(dev, RDBAL, RDBAH), load(dev, IOMMU_CTX)
    if not dma_allowed(iommu, ring, n * DESC_BYTES):
        _halt(dev, RXDCTL)
        return
    meta, frames = _wire(dev)
    head, tail = load(dev, RDH), load(dev, RDT)
    delivered = nbytes = 0
    while head != tail:
        addr = load(ring, 2 * head)
        if not dma_allowed(iommu, addr, ETH_MAX_FRAME):
            _halt(dev, RXDCTL)
            break
        size = wire_take(meta, frames, TO_HOST, carray(pointer(addr, np.uint8), ETH_MAX_FRAME))
        if size < 0:
            break
        store(ring, 2 * head, 0)
        store(ring, 2 * head + 1, RXD_DD | RXD_EOP | (size << 32))
        head = ring_next(head, n)
        delivered += 1
        nbytes += size
    store(dev, RDH, head)
    store(dev, GPRC, load(dev, GPRC) + delivered)
    store(dev, GORC, load(dev, GORC) + nbytes)


@njit(cache=True)
def _receive(dev, now):
    """Offer the frames the wire brought since the last step; drop what finds no descriptor."""
    n = load(dev, RDLEN) // DESC_BYTES
    cpp = load(dev, CPP_FP)
    enabled = (load(dev, RXDCTL) & DCTL_ENABLE) != 0 and (load(dev, RXCTRL) & RXCTRL_RXEN) != 0
    head, tail = load(dev, RDH), load(dev, RDT)
    if cpp == 0:   # unlimited wire: a frame for every free descriptor
        arriving = (tail - head) % n if enabled and n > 0 else 0
    else:
        due = (now << FP) // cpp
        arriving = due - load(dev, RX_OFFERED_FP)
        store(dev, RX_OFFERED_FP, due)
    size, frames, count = load(dev, PKT_SIZE), load(dev, FRAME_ADDR), load(dev, FRAME_COUNT)
    seq = load(dev, FRAME_NEXT)
    ring, iommu = _ring(dev, RDBAL, RDBAH), load(dev, IOMMU_CTX)
    if enabled and not dma_allowed(iommu, ring, n * DESC_BYTES):
        _halt(dev, RXDCTL)
        enabled = False
    delivered = 0
    while delivered < arriving and enabled and head != tail:
        if not dma_allowed(iommu, load(ring, 2 * head), size):
            _halt(dev, RXDCTL)
            break
        move_bytes(load(ring, 2 * head), frames + seq * size, size)
        seq = ring_next(seq, count)
        store(ring, 2 * head, 0)
        store(ring, 2 * head + 1, RXD_DD | RXD_EOP | (size << 32))
        head = ring_next(head, n)
        delivered += 1
    store(dev, FRAME_NEXT, seq)
    store(dev, RDH, head)
    store(dev, GPRC, load(dev, GPRC) + delivered)
    store(dev, GORC, load(dev, GORC) + delivered * size)
    store(dev, MPC, load(dev, MPC) + arriving - delivered)


@njit(cache=True)
def _transmit(dev, now):
    """Put the frames software queued on the wire, no faster than line rate."""
    if (load(dev, TXDCTL) & DCTL_ENABLE) == 0:
        return
    n = load(dev, TDLEN) // DESC_BYTES
    cpp = load(dev, CPP_FP)
    ring, iommu = _ring(dev, TDBAL, TDBAH), load(dev, IOMMU_CTX)
    if not dma_allowed(iommu, ring, n * DESC_BYTES):
        _halt(dev, TXDCTL)
        return
    head, tail = load(dev, TDH), load(dev, TDT)
    # the wire idles when nothing is queued: no credit is banked across idle time
    start = max(load(dev, TX_NEXT_FP), load(dev, LAST_NOW) << FP)
    sent = nbytes = 0
    while head != tail and start <= (now << FP):
        cmd = load(ring, 2 * head + 1) & 0xFFFFFFFF
        if not dma_allowed(iommu, load(ring, 2 * head), cmd & 0xFFFF):   # the frame's read
            _halt(dev, TXDCTL)
            break
        if (cmd & TXD_EOP) == 0 or (cmd & TXD_DEXT) == 0:
            store(dev, TXERR, load(dev, TXERR) + 1)
        else:
            sent += 1
            nbytes += cmd & 0xFFFF
            if load(dev, WIRE_CAP) > 0:
                meta, frames = _wire(dev)
                size = min(cmd & 0xFFFF, ETH_MAX_FRAME)
                wire_put(meta, frames, FROM_HOST,
                         carray(pointer(load(ring, 2 * head), np.uint8), size), size)
        store(ring, 2 * head + 1, load(ring, 2 * head + 1) | (TXD_DD << 32))
        head = ring_next(head, n)
        start += cpp
    store(dev, TX_NEXT_FP, start)
    store(dev, TDH, head)
    store(dev, GPTC, load(dev, GPTC) + sent)
    store(dev, GOTC, load(dev, GOTC) + nbytes)


@njit(cache=True)
def nic_step(dev):
    """Advance the device to the present: deliver RX, drain TX. Its own cycles are
    counted (DEV_CYCLES) and excluded from its clock, so the model's cost never
    eats into what the host is measured to sustain."""
    t0 = rdtsc()
    now = np.int64(t0 - load(dev, T0)) - load(dev, DEV_CYCLES)
    if load(dev, RDLEN) > 0 and load(dev, WIRE_CAP) > 0:
        _receive_wire(dev)
    elif load(dev, RDLEN) > 0 and load(dev, RX_TRAFFIC):
        _receive(dev, now)
    if load(dev, TDLEN) > 0:
        _transmit(dev, now)
    store(dev, LAST_NOW, now)
    store(dev, NOW, now)
    store(dev, STEPS, load(dev, STEPS) + 1)
    store(dev, DEV_CYCLES, load(dev, DEV_CYCLES) + np.int64(rdtsc() - t0))


@njit(cache=True)
def nic_exclude(dev, cycles):
    """Leave ``cycles`` spent on the other machine (the peer on the wire, which the
    paper ran on its own host) out of the device clock, as the model's own are."""
    store(dev, PEER_CYCLES, load(dev, PEER_CYCLES) + cycles)
    store(dev, DEV_CYCLES, load(dev, DEV_CYCLES) + cycles)
