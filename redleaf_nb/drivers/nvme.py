"""nvme: the NVMe driver domain (RedLeaf ``domains/sys/driver/nvme``).

It brings the controller up through its registers and admin queue (reset,
admin queues, Identify, Create I/O CQ and SQ) and then runs one I/O queue
pair: ``submit_and_poll`` writes a 64-byte command per request (command id =
submission slot, PRP1 = the request's data address: zero-copy), rings the
SQ tail doorbell once, then reaps completions by their phase tag and rings
the CQ head doorbell once. Register and command layouts are the
specification's, as a real driver carries them.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from redleaf_nb.interfaces.nvme import BSIZE, NvmeBDev
from redleaf_nb.kernel import heap as hp
from redleaf_nb.kernel.proxy import jit_current
from redleaf_nb.lowlevel.memory import load, ring_next, store

# NVMe controller registers (as int64 word indices of the MMIO region) and bits
(CAP, VS, CC, CSTS, AQA, ASQ, ACQ, SQ0TDBL, CQ0HDBL, SQ1TDBL, CQ1HDBL) = range(11)
CC_EN, CSTS_RDY = 1, 1
OP_WRITE, OP_READ = 0x01, 0x02
ADMIN_CREATE_SQ, ADMIN_CREATE_CQ, ADMIN_IDENTIFY = 0x01, 0x05, 0x06
SQE_WORDS, CQE_WORDS = 8, 2
LBAS_PER_BLOCK = BSIZE // 512
ADMIN_ENTRIES = 16
DATA_OFFSET = 16     # BlkReq.data follows block and data_len

# the jitted state
(MMIO, SQ, CQ, REQS, NQ, SQ_TAIL, CQ_HEAD, PHASE, INFLIGHT, BATCH, SUBMITTED, COMPLETED,
 ERRORS) = range(13)


@njit(cache=True)
def _submit(k, state, me, submit, write):
    """Write a command for each request in ``submit`` the queue has room for."""
    sq, reqs, n = load(state, SQ), load(state, REQS), load(state, NQ)
    tail, queued = load(state, SQ_TAIL), 0
    opcode = OP_WRITE if write else OP_READ
    while load(state, INFLIGHT) < n - 1:
        req = hp.deque_pop_front(k, submit, me)
        if req <= 0:
            break
        addr = hp.word_address(k, req, me, True)
        sqe = sq + tail * 64
        store(sqe, 0, opcode | (tail << 16) | (1 << 32))     # CDW0 (opcode, cid), NSID 1
        store(sqe, 1, 0)
        store(sqe, 2, 0)
        store(sqe, 3, addr + DATA_OFFSET)                    # PRP1
        store(sqe, 4, 0)
        store(sqe, 5, load(addr, 0) * LBAS_PER_BLOCK)       # SLBA
        store(sqe, 6, LBAS_PER_BLOCK - 1)                    # NLB - 1
        store(sqe, 7, 0)
        store(reqs, tail, req)
        tail = ring_next(tail, n)
        store(state, INFLIGHT, load(state, INFLIGHT) + 1)
        queued += 1
    if queued:
        store(state, SQ_TAIL, tail)
        store(load(state, MMIO), SQ1TDBL, tail)   # one doorbell per batch
    return queued


@njit(cache=True)
def _reap(k, state, me, collect):
    """Collect up to a batch of completions (those with the current phase tag)."""
    cq, reqs, n = load(state, CQ), load(state, REQS), load(state, NQ)
    head, phase, got = load(state, CQ_HEAD), load(state, PHASE), 0
    while got < load(state, BATCH):
        dw3 = load(cq + head * 16, 1) >> 32
        if (dw3 >> 16) & 1 != phase:
            break
        cid = dw3 & 0xFFFF
        req = load(reqs, cid)
        ok = (dw3 >> 17) == 0
        store(hp.word_address(k, req, me, True), 1, BSIZE if ok else 0)   # data_len
        if hp.deque_push_back(k, collect, me, req) != 0:
            break   # collect is full: this completion is taken next call
        store(reqs, cid, 0)
        store(state, ERRORS, load(state, ERRORS) + (0 if ok else 1))
        head += 1
        if head == n:
            head, phase = 0, 1 - phase
        store(state, INFLIGHT, load(state, INFLIGHT) - 1)
        got += 1
    if got:
        store(state, CQ_HEAD, head)
        store(state, PHASE, phase)
        store(load(state, MMIO), CQ1HDBL, head)
    return got


@njit(cache=True)
def jit_submit_and_poll(k, state, submit, collect, write):
    """Jitted ``NvmeBDev.submit_and_poll``."""
    me = jit_current(k)
    store(state, SUBMITTED, load(state, SUBMITTED) + _submit(k, state, me, submit, write))
    got = _reap(k, state, me, collect)
    store(state, COMPLETED, load(state, COMPLETED) + got)
    return got, submit, collect


class Nvme(NvmeBDev):
    """The NVMe driver: claims the ``nvme`` device and brings it up."""

    jit_methods = {"submit_and_poll": jit_submit_and_poll}
    device = "nvme"

    def create_nvme(self, batch, queue_entries):
        batch, queue_entries = int(batch), int(queue_entries)
        self.ssd = self.domain.claim_device(self.device)
        mqes = self.ssd.read_reg(CAP) & 0xFFFF
        if not 2 <= queue_entries <= mqes + 1:
            raise ValueError(f"nvme: queue_entries must be 2..{mqes + 1} (CAP.MQES), "
                             f"not {queue_entries}")
        self.ssd.write_reg(CC, 0)                       # reset
        self.asq = np.zeros(ADMIN_ENTRIES * SQE_WORDS, np.uint64)
        self.acq = np.zeros(ADMIN_ENTRIES * CQE_WORDS, np.uint64)
        self.admin_tail = self.admin_head = 0
        self.admin_phase = 1
        self.ssd.write_reg(AQA, (ADMIN_ENTRIES - 1) | ((ADMIN_ENTRIES - 1) << 16))
        self.ssd.write_reg(ASQ, self.asq.ctypes.data)
        self.ssd.write_reg(ACQ, self.acq.ctypes.data)
        self.ssd.write_reg(CC, CC_EN)
        if not self.ssd.read_reg(CSTS) & CSTS_RDY:
            raise RuntimeError("nvme: the controller did not become ready")
        self.identify = np.zeros(BSIZE // 8, np.int64)
        self._admin(ADMIN_IDENTIFY, self.identify.ctypes.data, 0, 0)
        self.nblocks = int(self.identify[0]) // LBAS_PER_BLOCK
        self.sq = np.zeros(queue_entries * SQE_WORDS, np.uint64)
        self.cq = np.zeros(queue_entries * CQE_WORDS, np.uint64)
        self.reqs = np.zeros(queue_entries, np.int64)   # the request behind each command id
        self._admin(ADMIN_CREATE_CQ, self.cq.ctypes.data, 1 | ((queue_entries - 1) << 16), 0)
        self._admin(ADMIN_CREATE_SQ, self.sq.ctypes.data, 1 | ((queue_entries - 1) << 16),
                    1 << 16)
        self.state = np.zeros(13, np.int64)
        self.state[[MMIO, SQ, CQ, REQS, NQ, PHASE, BATCH]] = (
            self.ssd.mmio, self.sq.ctypes.data, self.cq.ctypes.data, self.reqs.ctypes.data,
            queue_entries, 1, batch)

    def _admin(self, opcode, prp1, cdw10, cdw11):
        """Run one admin command and wait for its completion; raise if it failed."""
        sqe = self.asq[self.admin_tail * SQE_WORDS:(self.admin_tail + 1) * SQE_WORDS]
        sqe[:] = 0
        sqe[0] = opcode | (self.admin_tail << 16)
        sqe[3] = prp1
        sqe[5] = cdw10 | (cdw11 << 32)
        self.admin_tail = (self.admin_tail + 1) % ADMIN_ENTRIES
        self.ssd.write_reg(SQ0TDBL, self.admin_tail)
        dw3 = int(self.acq[self.admin_head * CQE_WORDS + 1]) >> 32
        if (dw3 >> 16) & 1 != self.admin_phase:
            raise RuntimeError(f"nvme: admin command {opcode:#x} did not complete")
        self.admin_head = (self.admin_head + 1) % ADMIN_ENTRIES
        self.admin_phase ^= self.admin_head == 0
        self.ssd.write_reg(CQ0HDBL, self.admin_head)
        if dw3 >> 17:
            raise RuntimeError(f"nvme: admin command {opcode:#x} failed, status {dw3 >> 17:#x}")

    def jit_state(self):
        return self.state

    def submit_and_poll(self, submit, collect, write):
        n, _, _ = self.domain.run_jitted(jit_submit_and_poll, submit.handle, collect.handle,
                                         write)
        return n, submit, collect

    def requests_in_flight(self) -> int:
        return int((self.reqs != 0).sum())
