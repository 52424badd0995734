"""An NVMe SSD modelled on the Intel P3700: queues, doorbells, phase tags, real blocks.

What the model keeps from the NVMe 1.x specification (only what a driver uses):

* controller registers CAP, CC (EN), CSTS (RDY), AQA, ASQ, ACQ and the
  doorbells SQ0TDBL, CQ0HDBL (admin queue) and SQ1TDBL, CQ1HDBL (one I/O queue
  pair, as RedLeaf's driver uses);
* 64-byte submission entries (CDW0 = opcode | command id << 16, NSID, PRP1,
  CDW10-12 = starting LBA and number of LBAs - 1) and 16-byte completion
  entries (DW2 = SQ head | SQ id << 16, DW3 = command id | phase << 16 |
  status << 17) in host memory; the phase tag flips each time the
  completion queue wraps, so the host tells new entries from old ones;
* admin commands Create I/O CQ (0x05), Create I/O SQ (0x01) and Identify
  Namespace (0x06); I/O commands Read (0x02) and Write (0x01) of 4 KiB
  blocks (8 LBAs of 512 bytes), with the data moved by DMA to and from PRP1;
* the drive's capacity: commands are served no faster than the profile's
  IOPS (one service slot every 1/IOPS seconds), each completing a fixed
  latency after its service. The stored blocks are real: what is written
  reads back.

Register indices, bits and entry layouts come from the datasheet module the
driver shares (``redleaf_nb/datasheets/nvme.py``): int64 word indices into
:attr:`NvmeSsd.regs`, not the specification's byte offsets; words from
``_INTERNAL`` on are the model's own, never granted to a driver.

DMA goes through the IOMMU (``redleaf_nb/lowlevel/iommu.py``): a command whose
data buffer (PRP1) is not memory the owning driver holds completes with *Data
Transfer Error* and moves nothing; a queue entry the drive may not read or
write is a controller fatal error (CSTS.CFS): the drive stops until reset.
"""
from __future__ import annotations

import numpy as np
from numba import carray, njit

from redleaf_nb.datasheets.nvme import (ACQ, ADMIN_CREATE_CQ, ADMIN_CREATE_SQ, ADMIN_IDENTIFY,
                                        AQA, ASQ, BSIZE, CAP, CC, CC_EN, CQ0HDBL, CQ1HDBL, CSTS,
                                        CSTS_CFS, CSTS_RDY, LBAS_PER_BLOCK, NREGS, OP_READ,
                                        OP_WRITE, SC_DATA_TRANSFER_ERROR, SC_INVALID_OPCODE,
                                        SC_LBA_RANGE, SC_SUCCESS, SQ0TDBL, SQ1TDBL, VS)
from redleaf_nb.lowlevel.clock import rdtsc, tsc_hz
from redleaf_nb.lowlevel.iommu import dma_allowed
from redleaf_nb.lowlevel.memory import load, pointer, ring_next, store

from .profiles import NvmeProfile, nvme_profile

_INTERNAL = 16       # the model's own words follow the registers a driver sees
# the model's own state: per queue pair q (0 admin, 1 I/O) base, entries, heads, phase
(T0, DEV_CYCLES, NOW, RD_SVC, WR_SVC, RD_LAT, WR_LAT, SVC_END, NBLOCKS, DISK_ADDR,
 INFLIGHT_ADDR, INFLIGHT_CAP, IN_HEAD, IN_COUNT, READS, WRITES, ERRORS, STEPS,
 IOMMU_CTX, SQ_BASE, SQ_SIZE, SQ_HEAD, CQ_BASE, CQ_SIZE, CQ_TAIL,
 CQ_PHASE) = range(_INTERNAL, _INTERNAL + 26)
QSTRIDE = 7          # SQ_BASE..CQ_PHASE, repeated for queue pair 1
NWORDS = _INTERNAL + 26 + QSTRIDE

assert NREGS <= _INTERNAL


class NvmeSsd:
    """The drive: its register file (the MMIO region) and its stored blocks."""

    def __init__(self, profile: NvmeProfile | str = "p3700", hz: float | None = None):
        self.profile = nvme_profile(profile) if isinstance(profile, str) else profile
        p = self.profile
        self.blocks = np.zeros((p.nblocks, BSIZE), np.uint8)
        # commands being served: (complete-at cycle, cid, status, queue entry) per entry
        self.inflight = np.zeros((p.max_queue_entries, 4), np.int64)
        self.regs = np.zeros(NWORDS, np.int64)
        self.hz = hz or tsc_hz()
        r = self.regs
        r[RD_SVC] = 0 if np.isinf(p.read_iops) else int(self.hz / p.read_iops)
        r[WR_SVC] = 0 if np.isinf(p.write_iops) else int(self.hz / p.write_iops)
        r[RD_LAT] = int(p.read_latency_us * 1e-6 * self.hz)
        r[WR_LAT] = int(p.write_latency_us * 1e-6 * self.hz)
        r[NBLOCKS] = p.nblocks
        r[DISK_ADDR] = self.blocks.ctypes.data
        r[INFLIGHT_ADDR] = self.inflight.ctypes.data
        r[INFLIGHT_CAP] = p.max_queue_entries
        r[CAP] = p.max_queue_entries - 1      # CAP.MQES: entries per queue - 1
        r[VS] = 0x010200                        # NVMe 1.2

    @property
    def mmio(self) -> int:
        return int(self.regs.ctypes.data)

    def write_reg(self, reg: int, value: int) -> None:
        """An MMIO write from the Python tier (CC.EN = 0 resets the controller)."""
        self.regs[reg] = value
        if reg == CC and not value & CC_EN:
            self.reset()
        elif reg == CC:
            self._enable()
        elif reg == SQ0TDBL and self.regs[CSTS] & CSTS_RDY:
            _admin(self.mmio)   # admin commands run when their doorbell is written

    def attach_iommu(self, ctx: int) -> None:
        """The kernel's IOMMU context for this drive (0: none, every transfer passes)."""
        self.regs[IOMMU_CTX] = ctx

    def read_reg(self, reg: int) -> int:
        return int(self.regs[reg])

    def reset(self) -> None:
        """Controller reset: queues gone, nothing in flight; stored blocks kept."""
        r = self.regs
        r[CSTS] = 0
        r[SQ0TDBL:CQ1HDBL + 1] = 0
        r[IN_HEAD] = r[IN_COUNT] = 0
        r[SQ_BASE:] = 0

    def _enable(self) -> None:
        """CC.EN = 1: the admin queues come from AQA/ASQ/ACQ; the drive is ready."""
        r = self.regs
        _set_queue(r, 0, r[ASQ], (r[AQA] & 0xFFF) + 1, r[ACQ], ((r[AQA] >> 16) & 0xFFF) + 1)
        r[CSTS] = CSTS_RDY

    def quiesce(self) -> None:
        """Stop all DMA (the kernel does this when the owning driver dies)."""
        self.regs[CC] = 0
        self.reset()

    def start_clock(self) -> None:
        self.regs[[DEV_CYCLES, NOW, SVC_END, READS, WRITES, ERRORS, STEPS]] = 0
        self.regs[T0] = rdtsc()

    def stats(self) -> dict:
        r = self.regs
        return {"reads": int(r[READS]), "writes": int(r[WRITES]), "errors": int(r[ERRORS]),
                "in_flight": int(r[IN_COUNT]), "device_cycles": int(r[DEV_CYCLES]),
                "device_steps": int(r[STEPS]), "elapsed_cycles": int(r[NOW])}


def _set_queue(r, q, sq_base, sq_size, cq_base, cq_size):
    o = q * QSTRIDE
    r[SQ_BASE + o], r[SQ_SIZE + o], r[SQ_HEAD + o] = sq_base, sq_size, 0
    r[CQ_BASE + o], r[CQ_SIZE + o], r[CQ_TAIL + o], r[CQ_PHASE + o] = cq_base, cq_size, 0, 1


@njit(cache=True, inline="always")
def _cq_full(dev, q):
    o = q * QSTRIDE
    return ring_next(load(dev, CQ_TAIL + o), load(dev, CQ_SIZE + o)) == load(dev, CQ0HDBL + 2 * q)


@njit(cache=True)
def _fatal(dev):
    """A queue the drive may not reach: controller fatal status, nothing more is done."""
    store(dev, CSTS, (load(dev, CSTS) | CSTS_CFS) & ~CSTS_RDY)


@njit(cache=True)
def _entry(dev, address, nbytes):
    """May the drive read or write this queue entry? If not, it stops (CSTS.CFS)."""
    if dma_allowed(load(dev, IOMMU_CTX), address, nbytes):
        return True
    _fatal(dev)
    return False


@njit(cache=True)
def _post(dev, q, cid, status, sq_head):
    """Write a completion entry with the current phase; False if the CQ is full (or
    the drive may not write it: then it stops)."""
    if _cq_full(dev, q):
        return False
    o = q * QSTRIDE
    size, tail = load(dev, CQ_SIZE + o), load(dev, CQ_TAIL + o)
    cqe = load(dev, CQ_BASE + o) + tail * 16
    if not _entry(dev, cqe, 16):
        return False
    store(cqe, 0, 0)
    store(cqe, 1, (sq_head | (q << 16)) | ((cid | (load(dev, CQ_PHASE + o) << 16)
                                            | (status << 17)) << 32))
    tail += 1
    if tail == size:
        tail = 0
        store(dev, CQ_PHASE + o, 1 - load(dev, CQ_PHASE + o))
    store(dev, CQ_TAIL + o, tail)
    return True


@njit(cache=True, inline="always")
def _dw(sqe, i):
    """Command dword ``i`` of a 64-byte submission entry."""
    return (load(sqe, i >> 1) >> (32 * (i & 1))) & 0xFFFFFFFF


@njit(cache=True)
def _admin(dev):
    """Execute the admin commands the host queued (instantly: they are not timed)."""
    size, head, tail = load(dev, SQ_SIZE), load(dev, SQ_HEAD), load(dev, SQ0TDBL)
    while head != tail:
        sqe = load(dev, SQ_BASE) + head * 64
        if not _entry(dev, sqe, 64):
            return
        op, cid = _dw(sqe, 0) & 0xFF, _dw(sqe, 0) >> 16
        prp1 = load(sqe, 3)
        qid, entries = _dw(sqe, 10) & 0xFFFF, (_dw(sqe, 10) >> 16) + 1
        status = SC_SUCCESS
        o = QSTRIDE
        if op == ADMIN_CREATE_CQ and qid == 1:
            store(dev, CQ_BASE + o, prp1)
            store(dev, CQ_SIZE + o, entries)
            store(dev, CQ_TAIL + o, 0)
            store(dev, CQ_PHASE + o, 1)
        elif op == ADMIN_CREATE_SQ and qid == 1:
            store(dev, SQ_BASE + o, prp1)
            store(dev, SQ_SIZE + o, entries)
            store(dev, SQ_HEAD + o, 0)
        elif op == ADMIN_IDENTIFY and not dma_allowed(load(dev, IOMMU_CTX), prp1, BSIZE):
            status = SC_DATA_TRANSFER_ERROR
        elif op == ADMIN_IDENTIFY:
            page = carray(pointer(prp1, np.int64), BSIZE // 8)
            page[:] = 0
            page[0] = load(dev, NBLOCKS) * LBAS_PER_BLOCK   # NSZE
            page[1] = page[0]                                # NCAP
        else:
            status = SC_INVALID_OPCODE
        head = ring_next(head, size)
        if not _post(dev, 0, cid, status, head):
            break
    store(dev, SQ_HEAD, head)


@njit(cache=True)
def _fetch_io(dev, now):
    """Take new I/O commands from the SQ; give each its service slot and completion time."""
    o = QSTRIDE
    size, head, tail = load(dev, SQ_SIZE + o), load(dev, SQ_HEAD + o), load(dev, SQ1TDBL)
    cap = load(dev, INFLIGHT_CAP)
    inflight = carray(pointer(load(dev, INFLIGHT_ADDR), np.int64), (cap, 4))
    svc_end = max(load(dev, SVC_END), now)   # an idle drive banks no service time
    while head != tail and load(dev, IN_COUNT) < cap:
        sqe = load(dev, SQ_BASE + o) + head * 64
        if not _entry(dev, sqe, 64):
            break
        op = _dw(sqe, 0) & 0xFF
        write = op == OP_WRITE
        svc_end += load(dev, WR_SVC) if write else load(dev, RD_SVC)
        i = (load(dev, IN_HEAD) + load(dev, IN_COUNT)) % cap
        inflight[i, 0] = svc_end + (load(dev, WR_LAT) if write else load(dev, RD_LAT))
        inflight[i, 1] = _dw(sqe, 0) >> 16
        inflight[i, 2] = sqe
        store(dev, IN_COUNT, load(dev, IN_COUNT) + 1)
        head = ring_next(head, size)
    store(dev, SQ_HEAD + o, head)
    store(dev, SVC_END, svc_end)


@njit(cache=True)
def _execute(dev, sqe):
    """Move the data of one I/O command by DMA; its status code."""
    op = _dw(sqe, 0) & 0xFF
    lba, nlb = load(sqe, 5), (_dw(sqe, 12) & 0xFFFF) + 1
    block = lba // LBAS_PER_BLOCK
    if op != OP_READ and op != OP_WRITE:
        return SC_INVALID_OPCODE
    if lba % LBAS_PER_BLOCK != 0 or nlb != LBAS_PER_BLOCK or block >= load(dev, NBLOCKS):
        return SC_LBA_RANGE
    if not dma_allowed(load(dev, IOMMU_CTX), load(sqe, 3), BSIZE):
        return SC_DATA_TRANSFER_ERROR
    disk = carray(pointer(load(dev, DISK_ADDR), np.uint8), (load(dev, NBLOCKS), BSIZE))
    data = carray(pointer(load(sqe, 3), np.uint8), BSIZE)
    if op == OP_READ:
        data[:] = disk[block]
        store(dev, READS, load(dev, READS) + 1)
    else:
        disk[block] = data
        store(dev, WRITES, load(dev, WRITES) + 1)
    return SC_SUCCESS


@njit(cache=True)
def _complete_io(dev, now):
    """Complete, in order, the commands whose time has come (while the CQ has room)."""
    cap = load(dev, INFLIGHT_CAP)
    inflight = carray(pointer(load(dev, INFLIGHT_ADDR), np.int64), (cap, 4))
    while load(dev, IN_COUNT) > 0:
        i = load(dev, IN_HEAD)
        if inflight[i, 0] > now or _cq_full(dev, 1):
            break   # not done yet, or no room to report it: the data is not moved either
        status = _execute(dev, inflight[i, 2])
        if not _post(dev, 1, inflight[i, 1], status, load(dev, SQ_HEAD + QSTRIDE)):
            break   # the drive stopped (CSTS.CFS)
        if status != SC_SUCCESS:
            store(dev, ERRORS, load(dev, ERRORS) + 1)
        store(dev, IN_HEAD, ring_next(i, cap))
        store(dev, IN_COUNT, load(dev, IN_COUNT) - 1)


@njit(cache=True)
def nvme_step(dev):
    """Advance the drive to the present (admin, fetch, complete); its own cycles are
    counted (DEV_CYCLES) and kept out of its clock."""
    t0 = rdtsc()
    now = np.int64(t0 - load(dev, T0)) - load(dev, DEV_CYCLES)
    if load(dev, CSTS) & CSTS_RDY:
        _admin(dev)
        if load(dev, SQ_SIZE + QSTRIDE) > 0 and load(dev, CQ_SIZE + QSTRIDE) > 0:
            _fetch_io(dev, now)
            _complete_io(dev, now)
    store(dev, NOW, now)
    store(dev, STEPS, load(dev, STEPS) + 1)
    store(dev, DEV_CYCLES, load(dev, DEV_CYCLES) + np.int64(rdtsc() - t0))
