"""The system calls of rv6, RedLeaf's xv6-like personality.

A program calls into rv6 (one crossing) and rv6 calls the driver (a second).
The network and block calls forward batches to the drivers (the driver
benchmarks use them); the file calls run rv6's file system (``apps/rv6/fs.py``)
over the disk it was booted with. File system calls return a negative errno
(``apps/rv6/layout.ERRORS``) on failure; a crossing that fails returns
``RpcError``.
"""
from __future__ import annotations

from typing import Optional

from redleaf_nb.interfaces.bdev import BDev, Block
from redleaf_nb.interfaces.net import Net, Packets
from redleaf_nb.interfaces.nvme import NvmeBDev, Requests
from redleaf_nb.kernel.idl import Interface, create
from redleaf_nb.kernel.rref import RRef
from redleaf_nb.kernel.types import Borrow, bool_, i64, u8, u64

PATH_MAX = 128
Path = u8[PATH_MAX]   # a NUL-padded path (apps.rv6.layout.path_bytes makes one)


class Rv6(Interface):
    """rv6's network, block and file system calls."""

    def net_submit_and_poll(self, packets: Packets, collect: Packets,
                            tx: bool_) -> tuple[u64, Packets, Packets]:
        """Send or receive a batch of packets through the network driver."""

    def blk_submit_and_poll(self, submit: Requests, collect: Requests,
                            write: bool_) -> tuple[u64, Requests, Requests]:
        """Read or write a batch of blocks through the block driver."""

    def open(self, path: Path, flags: i64) -> i64:
        """Open ``path`` (flags O_RDONLY, O_WRONLY, O_RDWR, O_CREATE, O_TRUNC): a file
        descriptor."""

    def close(self, fd: i64) -> i64:
        """Close a file descriptor."""

    def read(self, fd: i64, data: RRef[Block], n: i64) -> tuple[i64, RRef[Block]]:
        """Read up to ``n`` (<= 4096) bytes at the file's offset into ``data`` (moved in
        and handed back): (bytes read, data)."""

    def write(self, fd: i64, data: Borrow[RRef[Block]], n: i64) -> i64:
        """Write the first ``n`` (<= 4096) bytes of the borrowed ``data`` at the file's
        offset, as one transaction: bytes written."""

    def lseek(self, fd: i64, offset: i64, whence: i64) -> i64:
        """Move the file's offset (SEEK_SET, SEEK_CUR, SEEK_END): the new offset."""

    def fstat(self, fd: i64) -> tuple[i64, i64, i64, i64]:
        """(type: 1 directory, 2 file; inode number; links; size in bytes)."""

    def mkdir(self, path: Path) -> i64:
        """Make a directory."""

    def unlink(self, path: Path) -> i64:
        """Remove a file or an empty directory (an open file lives until closed)."""

    @create
    def create_rv6(self, net: Optional[Net], bdev: Optional[NvmeBDev],
                   disk: Optional[BDev]) -> Rv6:
        """Boot rv6 over the drivers it is handed (any may be None: the calls that need
        it then fail); with a ``disk``, mount its file system (recovering its log)."""
