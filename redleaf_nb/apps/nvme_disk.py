"""nvme_disk: a block device (``BDev``) over the NVMe driver's batched queue interface.

rv6's file system reads and writes one block at a time and waits for it; the NVMe
driver takes batches of requests and hands back whichever have completed. This
adapter domain bridges the two: it keeps a few ``BlkReq`` objects of its own, sends
one per call through the NVMe driver (or its shadow), and polls for its completion,
letting the drive run while it waits (``views.device_wait``: in a machine the drive
works beside the CPU; the model works when the CPU lets it). Reads copy the block
out of the request into the caller's buffer; writes copy it in first.

Numba binds a callee at compile time, so, like rv6's file system, this module is a
template: :func:`nvme_disk_class` loads a copy with the NVMe driver's proxy bound.
"""
from __future__ import annotations

import sys

import numpy as np
from numba import njit

from redleaf_nb.interfaces.bdev import BSIZE, BDev
from redleaf_nb.interfaces.nvme import NvmeBDev, Requests
from redleaf_nb.kernel import heap as hp
from redleaf_nb.kernel.codegen import bound_copy_source, callee_module, load_generated
from redleaf_nb.kernel.types import exchangeable
from redleaf_nb.kernel.views import (copy_into, deque_len, deque_pop_front, deque_push_back,
                                     device_wait, own_state, rref_array, state_type)

JIT = dict(cache=True, boundscheck=True)
STATE = state_type(nvme=np.int64, nblocks=np.int64, pool=np.int64, submit=np.int64,
                   collect=np.int64, reads=np.int64, writes=np.int64, waits=np.int64)
REQUESTS = 4            # BlkReq objects the adapter keeps
DATA = 16               # BlkReq.data's offset (after block and data_len)
WAIT_LIMIT = 1 << 24    # polls before a request that never completes is a hang
nvme_call = None  # bound per copy: the NVMe driver's submit_and_poll proxy


@njit(**JIT)
def _request(k, st, block):
    """A request for ``block``, out of the pool until the caller puts it back."""
    if block >= st.nblocks:
        raise IndexError("nvme_disk: block out of range")
    req = deque_pop_front(k, st.pool)
    rref_array(k, req, np.uint64, True)[0] = block
    return req


@njit(**JIT)
def _send(k, st, req, write):
    """Send one request through the NVMe driver and wait for it: the finished request
    (for a read, its data holds the block)."""
    deque_push_back(k, st.submit, req)
    polls = 0
    while True:
        status, ret = nvme_call(k, st.nvme, st.submit, st.collect, write)
        if status != 0:
            raise IOError("nvme_disk: the NVMe driver failed the request")
        _, st.submit, st.collect = ret
        if deque_len(k, st.collect) > 0:
            break
        device_wait(k)
        polls += 1
        st.waits += 1
        if polls >= WAIT_LIMIT:
            raise TimeoutError("nvme_disk: the request never completed")
    done = deque_pop_front(k, st.collect)
    if rref_array(k, done, np.uint64, False)[1] != BSIZE:
        deque_push_back(k, st.pool, done)
        raise IOError("nvme_disk: the drive reported an error")
    return done


@njit(**JIT)
def jit_read(k, state, block, data):
    """Jitted ``BDev.read``: the block, through the NVMe driver, into ``data``."""
    st = own_state(k, state, STATE)
    req = _send(k, st, _request(k, st, block), False)
    copy_into(rref_array(k, data, np.uint8, True), rref_array(k, req, np.uint8, False)[
        DATA:DATA + BSIZE])
    deque_push_back(k, st.pool, req)
    st.reads += 1
    return data


@njit(**JIT)
def jit_write(k, state, block, data):
    """Jitted ``BDev.write`` of a borrowed block."""
    st = own_state(k, state, STATE)
    req = _request(k, st, block)
    copy_into(rref_array(k, req, np.uint8, True)[DATA:DATA + BSIZE],
              rref_array(k, data, np.uint8, False))
    deque_push_back(k, st.pool, _send(k, st, req, True))
    st.writes += 1


@njit(**JIT)
def jit_nblocks(k, state):
    return np.uint32(own_state(k, state, STATE).nblocks)


def nvme_disk_class(nvme_cls: type) -> type:
    """A block device over domains of ``nvme_cls`` (the NVMe driver, or its shadow)."""
    m = NvmeBDev.declared().__methods__["submit_and_poll"]
    proxy = callee_module("NvmeBDev", m, nvme_cls.jit_methods["submit_and_poll"])
    copy = load_generated("redleaf_nvme_disk",
                          bound_copy_source(sys.modules[__name__], {"nvme_call": proxy}))
    return type("NvmeDiskOver" + nvme_cls.__name__, (NvmeDisk,),
                {"jit_methods": {name: getattr(copy, f"jit_{name}")
                                 for name in ("read", "write", "nblocks")}})


class NvmeDisk(BDev):
    """The adapter in the Python tier (it enters its jitted code: one implementation)."""

    jit_methods: dict = {}

    def create_bdev(self, device, nblocks):
        raise TypeError("nvme_disk runs over an NVMe driver: create it with create_over_nvme")

    def create_over_nvme(self, nvme, nblocks):
        if not self.jit_methods:
            raise TypeError("nvme_disk: use nvme_disk_class(driver class) to bind the driver")
        kernel, me = self.domain.kernel, self.domain.id
        requests = exchangeable(Requests)
        self.state = np.zeros(1, STATE)
        self.state["nvme"], self.state["nblocks"] = nvme.domain.id, nblocks
        pool = kernel.heap.alloc(requests, me)
        self.state["submit"] = kernel.heap.alloc(requests, me)
        self.state["collect"] = kernel.heap.alloc(requests, me)
        for _ in range(REQUESTS):
            req = kernel.heap.alloc(requests.child, me)
            kernel.heap.check(hp.deque_push_back(kernel.heap.k, pool, me, req), req, me,
                              "nvme_disk: its request pool")
        self.state["pool"] = pool

    def jit_state(self):
        return self.state

    def _run(self, name, *args):
        try:
            return self.domain.run_jitted(self.jit_methods[name], *args)
        finally:
            self.domain.kernel._settle_jitted_deaths(f"panic in nvme_disk.{name}")

    def read(self, block, data):
        self._run("read", block, data.handle)
        return data

    def write(self, block, data):
        self._run("write", block, data.handle)

    def nblocks(self):
        return int(self.state["nblocks"][0])
