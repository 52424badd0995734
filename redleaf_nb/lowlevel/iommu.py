"""An IOMMU for the simulated devices: DMA only into memory the owning driver holds.

RedLeaf trusts a device only as far as an IOMMU lets it reach: a driver is safe
code, but the addresses it writes into descriptors and commands are just numbers,
and a device carries out whatever they say. Here every device model asks
:func:`dma_allowed` before each DMA and refuses (and reports) any transfer that
is not wholly inside

* a region the kernel granted the owning driver (its rings, queues, its own
  memory: the grant table), or
* one exchange-heap object the owning driver owns at that moment (a transfer
  may start inside it, as a command's data field inside a request record, but
  may not cross its end): per object, not per page, since packet buffers of
  different domains share the pages of one arena.

Like real IOMMU hardware, this reads tables in a fixed format that the kernel
keeps: the *context* below, one per device, written when a driver claims the
device (the owner, and where the grant table, the heap arena, its per-chunk map
of which slot starts where, and the object metadata are). A device with no
context (address 0) has no IOMMU: every transfer passes, as with DPDK run
without one. Trusted code: only the device models call it.
"""
from __future__ import annotations

import numpy as np
from numba import carray, njit

from .memory import load, pointer, store

# context words (the kernel fills them: kernel/domain.py, Kernel.claim_device)
(OWNER, GRANTS, NGRANTS, GRANT_WORDS, ARENA, ARENA_BYTES, CHUNK_MAP, CHUNK, META,
 META_WORDS, COL_STATE, COL_OWNER, COL_OFFSET, COL_SIZE, LIVE, FAULTS, FAULT_ADDR) = range(17)
CTX_WORDS = 17
# a grant's words: address, rows, columns (0: one-dimensional), item size
G_ADDRESS, G_ROWS, G_COLS, G_ITEMSIZE = range(4)
# how far back (in chunks) a transfer's start may lie from its object's first byte
WALK_LIMIT = 1 << 16


@njit(cache=True)
def _in_grant(ctx, addr, nbytes):
    grants, words = load(ctx, GRANTS), load(ctx, GRANT_WORDS)
    for i in range(load(ctx, NGRANTS)):
        base = load(grants, i * words + G_ADDRESS)
        if base == 0:
            continue
        size = (load(grants, i * words + G_ROWS) * max(load(grants, i * words + G_COLS), 1)
                * load(grants, i * words + G_ITEMSIZE))
        if base <= addr and addr + nbytes <= base + size:
            return True
    return False


@njit(cache=True)
def _in_owned_object(ctx, addr, nbytes):
    """Inside one live object the owner owns? Walk back from the address's chunk to
    the nearest chunk where a live object starts (stale marks of freed objects are
    passed over: a live object never starts inside another) and check that one."""
    off, chunk = addr - load(ctx, ARENA), load(ctx, CHUNK)
    if off < 0 or off + nbytes > load(ctx, ARENA_BYTES):
        return False
    starts = carray(pointer(load(ctx, CHUNK_MAP), np.int32), load(ctx, ARENA_BYTES) // chunk)
    c = off // chunk
    last = max(c - WALK_LIMIT, -1)
    while c > last:
        slot = np.int64(starts[c]) - 1
        if slot >= 0:
            row = load(ctx, META) + 8 * slot * load(ctx, META_WORDS)
            start = load(row, load(ctx, COL_OFFSET))
            if load(row, load(ctx, COL_STATE)) == load(ctx, LIVE) and start == c * chunk:
                return (off + nbytes <= start + load(row, load(ctx, COL_SIZE))
                        and load(row, load(ctx, COL_OWNER)) == load(ctx, OWNER))
        c -= 1
    return False


@njit(cache=True)
def dma_allowed(ctx, addr, nbytes):
    """May the device whose IOMMU context is at ``ctx`` move ``nbytes`` at ``addr``?
    A refusal is counted in the context (``FAULTS``, the last ``FAULT_ADDR``)."""
    if ctx == 0:
        return True
    if (nbytes > 0 and load(ctx, OWNER) != 0
            and (_in_owned_object(ctx, addr, nbytes) or _in_grant(ctx, addr, nbytes))):
        return True
    store(ctx, FAULTS, load(ctx, FAULTS) + 1)
    store(ctx, FAULT_ADDR, addr)
    return False
