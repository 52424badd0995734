"""membdev: RedLeaf's in-memory block device driver, in both tiers.

The blocks live in a :class:`MemDisk` *device* that the kernel owns and the
domain claims at create time, so they survive a crash of the driver (as
RedLeaf's memdisk survives a membdev restart): a shadow can re-create the
driver and no acknowledged write is lost.
"""
from __future__ import annotations

import numpy as np
from numba import carray, njit

from redleaf_nb.interfaces.bdev import BSIZE, BDev
from redleaf_nb.kernel import heap as hp
from redleaf_nb.kernel.proxy import jit_current
from redleaf_nb.lowlevel.memory import load, pointer


class MemDisk:
    """A RAM disk device: ``nblocks`` blocks of 4 KiB."""

    def __init__(self, nblocks: int):
        self.blocks = np.zeros((nblocks, BSIZE), np.uint8)


# The jitted state is a descriptor: [address of the disk's blocks, number of blocks].

@njit(cache=True, inline="always")
def _disk(state):
    return carray(pointer(load(state, 0), np.uint8), (load(state, 1), BSIZE))


@njit(cache=True)
def jit_read(k, state, block, data):
    """Jitted ``BDev.read``: copy block ``block`` into ``data`` and return it."""
    disk = _disk(state)
    if block >= disk.shape[0]:
        raise IndexError("block out of range")
    hp.data_view(k, data, jit_current(k), True)[:] = disk[block]
    return data


@njit(cache=True)
def jit_write(k, state, block, data):
    """Jitted ``BDev.write`` of a borrowed block."""
    disk = _disk(state)
    if block >= disk.shape[0]:
        raise IndexError("block out of range")
    disk[block] = hp.data_view(k, data, jit_current(k), False)


@njit(cache=True)
def jit_nblocks(k, state):
    return np.uint32(load(state, 1))


class MemBDev(BDev):
    """A block device over the kernel's ``memdisk`` device."""

    jit_methods = {"read": jit_read, "write": jit_write, "nblocks": jit_nblocks}

    def create_bdev(self, nblocks):
        self.disk = self.domain.claim_device("memdisk")
        if self.disk.blocks.shape[0] < nblocks:
            raise ValueError(f"memdisk has {self.disk.blocks.shape[0]} blocks, "
                             f"not {nblocks}")
        self.nblk = int(nblocks)

    def jit_state(self):
        return np.array([self.disk.blocks.ctypes.data, self.nblk], np.int64)

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
