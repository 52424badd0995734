"""The paper's block-device interface (RedLeaf ``interface/src/bdev.rs``)."""
from __future__ import annotations

from redleaf_nb.interfaces.nvme import NvmeBDev
from redleaf_nb.kernel.idl import Interface, create
from redleaf_nb.kernel.rref import RRef
from redleaf_nb.kernel.types import Borrow, Device, u8, u32

BSIZE = 4096
Block = u8[BSIZE]


class BDev(Interface):
    """A block device: 4 KiB blocks read into and written from exchange-heap RRefs."""

    #: by-value RRefs the driver only fills: a shadow may replace one lost in a crash
    __refilled__ = {"read": ("data",)}

    def read(self, block: u32, data: RRef[Block]) -> RRef[Block]:
        """Fill ``data`` (moved in) with block ``block`` and hand it back."""

    def write(self, block: u32, data: Borrow[RRef[Block]]) -> None:
        """Store the borrowed ``data`` as block ``block``."""

    def nblocks(self) -> u32:
        """How many blocks the device has."""

    @create
    def create_bdev(self, device: Device, nblocks: u32) -> BDev:
        """Start a block-device domain of ``nblocks`` blocks over ``device``."""

    @create
    def create_over_nvme(self, nvme: NvmeBDev, nblocks: u32) -> BDev:
        """Start a block device of ``nblocks`` blocks over an NVMe driver's queue interface
        (an adapter domain: one request at a time, waiting for its completion)."""
