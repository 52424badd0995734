"""membdev: RedLeaf's in-memory block device driver, in both tiers.

The blocks live in a :class:`MemDisk` *device* that the kernel owns and the
domain claims at create time, so they survive a crash of the driver (as
RedLeaf's memdisk survives a membdev restart): a shadow can re-create the
driver and no acknowledged write is lost.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from redleaf_nb.interfaces.bdev import BSIZE, BDev
from redleaf_nb.kernel.views import (copy_into, fault_point, fault_value, own_matrix, own_state,
                                     rref_array, state_type)


class MemDisk:
    """A RAM disk device: ``nblocks`` blocks of 4 KiB."""

    def __init__(self, nblocks: int):
        self.blocks = np.zeros((nblocks, BSIZE), np.uint8)


STATE = state_type(nblocks=np.int64)   # the blocks this driver serves (<= the disk's)
DISK = 1                                 # the grant that holds the disk's blocks
FAULT_POINTS = ("read", "write", "block")   # where an injected fault may strike (kernel/faults.py)
P_READ, P_WRITE, P_BLOCK = range(3)


@njit(cache=True, boundscheck=True)
def jit_read(k, state, block, data):
    """Jitted ``BDev.read``: copy block ``block`` into ``data`` and return it."""
    if block >= own_state(k, state, STATE).nblocks:
        raise IndexError("block out of range")
    fault_point(k, P_READ)          # the request is inside the driver: its buffer moved in
    copy_into(rref_array(k, data, np.uint8, True), own_matrix(k, DISK, np.uint8)[block])
    return data


@njit(cache=True, boundscheck=True)
def jit_write(k, state, block, data):
    """Jitted ``BDev.write`` of a borrowed block."""
    if block >= own_state(k, state, STATE).nblocks:
        raise IndexError("block out of range")
    fault_point(k, P_WRITE)
    block = fault_value(k, P_BLOCK, block)   # the device is told a block number
    copy_into(own_matrix(k, DISK, np.uint8)[block], rref_array(k, data, np.uint8, False))


@njit(cache=True, boundscheck=True)
def jit_nblocks(k, state):
    return np.uint32(own_state(k, state, STATE).nblocks)


class MemBDev(BDev):
    """A block device over the kernel's ``memdisk`` device."""

    jit_methods = {"read": jit_read, "write": jit_write, "nblocks": jit_nblocks}
    fault_points = FAULT_POINTS

    def create_bdev(self, device, nblocks):
        self.disk = self.domain.claim(device)
        if self.disk.blocks.shape[0] < nblocks:
            raise ValueError(f"memdisk has {self.disk.blocks.shape[0]} blocks, "
                             f"not {nblocks}")
        self.nblk = int(nblocks)
        self.domain.grant(DISK, self.disk.blocks)

    def create_over_nvme(self, nvme, nblocks):
        raise TypeError("membdev is a RAM disk: create it with create_bdev (over a MemDisk); "
                        "the block device over NVMe is apps/nvme_disk.py")

    def jit_state(self):
        state = np.zeros(1, STATE)
        state["nblocks"] = self.nblk
        return state

    def _check(self, block):
        if block >= self.nblk:
            raise IndexError(f"block {block} out of range (device has {self.nblk})")

    def read(self, block, data):
        self._check(block)
        data.set(self.disk.blocks[block])
        return data

    def write(self, block, data):
        self._check(block)
        self.disk.blocks[block] = data.get()

    def nblocks(self):
        return self.nblk
