"""nvme: the NVMe driver domain (RedLeaf ``domains/sys/driver/nvme``).

It brings the controller up through its registers and admin queue (reset,
admin queues, Identify, Create I/O CQ and SQ) and then runs one I/O queue
pair: ``submit_and_poll`` writes a 64-byte command per request (command id =
submission slot, PRP1 = the request's data address: zero-copy), rings the
SQ tail doorbell once, then reaps completions by their phase tag and rings
the CQ head doorbell once. Its registers, queues and request slots reach
its jitted code as grants (typed, bounds-checked arrays the kernel hands it);
register and entry layouts come from the datasheet module the device model
shares (``redleaf_nb/datasheets/nvme.py``).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from redleaf_nb.datasheets.nvme import (ACQ, ADMIN_CREATE_CQ, ADMIN_CREATE_SQ, ADMIN_IDENTIFY,
                                        AQA, ASQ, CAP, CC, CC_EN, CQ0HDBL, CQ1HDBL, CQE,
                                        CQE_WORDS, CSTS, CSTS_RDY, LBAS_PER_BLOCK, NREGS,
                                        OP_READ, OP_WRITE, PHASE_SHIFT, SQ0TDBL, SQ1TDBL, SQE,
                                        SQE_WORDS, STATUS_SHIFT)
from redleaf_nb.interfaces.nvme import BSIZE, NvmeBDev
from redleaf_nb.kernel.views import (deque_pop_front, deque_push_back, fault_point, fault_value,
                                     own_array, own_state, ring_next, rref_array, rref_dma,
                                     state_type)

ADMIN_ENTRIES = 16
DATA_OFFSET = 16     # BlkReq.data follows block and data_len
BLOCK, DATA_LEN = 0, 1   # BlkReq's first two words

STATE = state_type(sq_tail=np.int64, cq_head=np.int64, phase=np.int64, inflight=np.int64,
                   batch=np.int64, submitted=np.int64, completed=np.int64, errors=np.int64)
# the regions granted to the jitted code: the registers, the I/O queues, the request slots
REGS, SQ, CQ, REQS, ADMIN = 1, 2, 3, 4, 5
# where an injected fault may strike (kernel/faults.py)
FAULT_POINTS = ("mid_batch", "prp", "doorbell", "after_doorbell")
P_MID_BATCH, P_PRP, P_DOORBELL, P_AFTER_DOORBELL = range(4)


# Each helper takes its views itself rather than as arguments: an array handed to a
# function costs reference-count calls on the way in and out, a view made here none.

@njit(cache=True, boundscheck=True)
def _submit(k, st, submit, write):
    """Write a command for each request in ``submit`` the queue has room for."""
    sq, reqs = own_array(k, SQ, SQE), own_array(k, REQS, np.int64)
    n, tail, queued = sq.shape[0], st.sq_tail, 0
    opcode = OP_WRITE if write else OP_READ
    while st.inflight < n - 1:
        req = deque_pop_front(k, submit)
        if req <= 0:
            break
        address, value = rref_dma(k, req, np.uint64, True)   # BlkReq: block, data_len, data
        sqe = sq[tail]
        sqe.cdw0_nsid = opcode | (tail << 16) | (1 << 32)     # CDW0 (opcode, cid), NSID 1
        sqe.cdw2_3 = 0
        sqe.mptr = 0
        sqe.prp1 = fault_value(k, P_PRP, address + DATA_OFFSET)   # zero-copy: its data
        sqe.prp2 = 0
        sqe.cdw10_11 = value[BLOCK] * LBAS_PER_BLOCK          # SLBA
        sqe.cdw12_13 = LBAS_PER_BLOCK - 1                     # NLB - 1
        sqe.cdw14_15 = 0
        reqs[tail] = req
        tail = ring_next(tail, n)
        st.inflight += 1
        queued += 1
    st.sq_tail = tail
    return queued


@njit(cache=True, boundscheck=True)
def _reap(k, st, collect):
    """Collect up to a batch of completions (those with the current phase tag)."""
    cq, reqs = own_array(k, CQ, CQE), own_array(k, REQS, np.int64)
    n, head, phase, got = cq.shape[0], st.cq_head, st.phase, 0
    while got < st.batch:
        dw3 = np.int64(cq[head].dw2_3 >> 32)
        if (dw3 >> PHASE_SHIFT) & 1 != phase:
            break
        cid = dw3 & 0xFFFF
        req = reqs[cid]
        ok = (dw3 >> STATUS_SHIFT) == 0
        rref_array(k, req, np.uint64, True)[DATA_LEN] = BSIZE if ok else 0
        if deque_push_back(k, collect, req) != 0:
            break   # collect is full: this completion is taken next call
        reqs[cid] = 0
        st.errors += 0 if ok else 1
        head += 1
        if head == n:
            head, phase = 0, 1 - phase
        st.inflight -= 1
        got += 1
    st.cq_head, st.phase = head, phase
    return got


@njit(cache=True, boundscheck=True)
def jit_submit_and_poll(k, state, submit, collect, write):
    """Jitted ``NvmeBDev.submit_and_poll``."""
    st = own_state(k, state, STATE)
    queued = _submit(k, st, submit, write)
    fault_point(k, P_MID_BATCH)      # commands written, the doorbell not yet rung
    if queued:
        own_array(k, REGS, np.int64)[SQ1TDBL] = fault_value(k, P_DOORBELL, st.sq_tail)
    fault_point(k, P_AFTER_DOORBELL)   # between the doorbell and the completions
    st.submitted += queued
    got = _reap(k, st, collect)
    if got:
        own_array(k, REGS, np.int64)[CQ1HDBL] = st.cq_head
    st.completed += got
    return got, submit, collect


class Nvme(NvmeBDev):
    """The NVMe driver: claims the ``nvme`` device and brings it up."""

    jit_methods = {"submit_and_poll": jit_submit_and_poll}
    fault_points = FAULT_POINTS

    def create_nvme(self, device, batch, queue_entries):
        batch, queue_entries = int(batch), int(queue_entries)
        self.ssd = self.domain.claim(device)
        mqes = self.ssd.read_reg(CAP) & 0xFFFF
        if not 2 <= queue_entries <= mqes + 1:
            raise ValueError(f"nvme: queue_entries must be 2..{mqes + 1} (CAP.MQES), "
                             f"not {queue_entries}")
        self.ssd.write_reg(CC, 0)                       # reset
        # the admin queues and the Identify page: one region of DMA memory, granted before
        # the drive may touch it (its IOMMU lets it reach only what the driver holds)
        sq_words, cq_words = ADMIN_ENTRIES * SQE_WORDS, ADMIN_ENTRIES * CQE_WORDS
        admin = np.zeros(sq_words + cq_words + BSIZE // 8, np.uint64)
        self.domain.grant(ADMIN, admin)
        self.asq, self.acq = admin[:sq_words], admin[sq_words:sq_words + cq_words]
        self.identify = admin[sq_words + cq_words:].view(np.int64)
        self.admin_tail = self.admin_head = 0
        self.admin_phase = 1
        self.ssd.write_reg(AQA, (ADMIN_ENTRIES - 1) | ((ADMIN_ENTRIES - 1) << 16))
        self.ssd.write_reg(ASQ, self.asq.ctypes.data)
        self.ssd.write_reg(ACQ, self.acq.ctypes.data)
        self.ssd.write_reg(CC, CC_EN)
        if not self.ssd.read_reg(CSTS) & CSTS_RDY:
            raise RuntimeError("nvme: the controller did not become ready")
        self._admin(ADMIN_IDENTIFY, self.identify.ctypes.data, 0, 0)
        self.nblocks = int(self.identify[0]) // LBAS_PER_BLOCK
        self.sq = np.zeros(queue_entries, SQE)
        self.cq = np.zeros(queue_entries, CQE)
        self.reqs = np.zeros(queue_entries, np.int64)   # the request behind each command id
        self._admin(ADMIN_CREATE_CQ, self.cq.ctypes.data, 1 | ((queue_entries - 1) << 16), 0)
        self._admin(ADMIN_CREATE_SQ, self.sq.ctypes.data, 1 | ((queue_entries - 1) << 16),
                    1 << 16)
        self.state = np.zeros(1, STATE)
        self.state["phase"], self.state["batch"] = 1, batch
        for index, region in ((REGS, self.ssd.regs[:NREGS]), (SQ, self.sq), (CQ, self.cq),
                              (REQS, self.reqs)):
            self.domain.grant(index, region)

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
