"""The kernel's side of the IOMMU (lowlevel/iommu.py): one context per device.

The kernel writes, for each device, where the tables the IOMMU reads are (the
grant table, the heap arena, its chunk -> object map, the object metadata) and
which domain owns the device: the one that claimed it, or none (0), in which
case the device may not move a byte. A device learns its context's address once,
when it is plugged in (``attach_iommu``); the owner changes under it.
"""
from __future__ import annotations

import numpy as np

from ..lowlevel import iommu
from . import heap as hp
from .state import MAX_RES, MIN_CHUNK, RES_WORDS, StateArrays


def new_context(state: StateArrays) -> np.ndarray:
    """A context over this kernel's tables, owned by no domain yet."""
    ctx = np.zeros(iommu.CTX_WORDS, np.int64)
    ctx[iommu.NGRANTS], ctx[iommu.GRANT_WORDS] = MAX_RES, RES_WORDS
    ctx[iommu.ARENA], ctx[iommu.ARENA_BYTES] = state.arena.ctypes.data, state.arena.shape[0]
    ctx[iommu.CHUNK_MAP], ctx[iommu.CHUNK] = state.chunk_slots.ctypes.data, MIN_CHUNK
    ctx[iommu.META], ctx[iommu.META_WORDS] = state.meta.ctypes.data, state.meta.shape[1]
    ctx[[iommu.COL_STATE, iommu.COL_OWNER, iommu.COL_OFFSET, iommu.COL_SIZE]] = (
        hp.STATE, hp.OWNER, hp.OFFSET, hp.SIZE)
    ctx[iommu.LIVE] = hp.LIVE
    return ctx


def set_owner(ctx: np.ndarray, state: StateArrays, domain_id: int) -> None:
    """Let the device DMA for ``domain_id`` (0: for no one)."""
    ctx[iommu.OWNER] = domain_id
    slot = domain_id & hp.SLOT_MASK
    ctx[iommu.GRANTS] = state.grants[slot].ctypes.data if domain_id else 0


def faults(ctx: np.ndarray) -> dict:
    """The transfers the IOMMU refused, and the address of the last one."""
    return {"dma_faults": int(ctx[iommu.FAULTS]), "last_fault_address": int(ctx[iommu.FAULT_ADDR])}
