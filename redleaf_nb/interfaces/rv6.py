"""The system calls of the rv6 personality that the driver benchmarks use.

rv6 is RedLeaf's xv6-like OS personality: a program calls into rv6 (one
crossing) and rv6 calls the driver (a second). Only the network and block
calls are here; the file system comes with a later issue.
"""
from __future__ import annotations

from typing import Optional

from redleaf_nb.interfaces.net import Net, Packets
from redleaf_nb.interfaces.nvme import NvmeBDev, Requests
from redleaf_nb.kernel.idl import Interface, create
from redleaf_nb.kernel.types import bool_, u64


class Rv6(Interface):
    """rv6's network and block system calls (batched, RRef-passing)."""

    def net_submit_and_poll(self, packets: Packets, collect: Packets,
                            tx: bool_) -> tuple[u64, Packets, Packets]:
        """Send or receive a batch of packets through the network driver."""

    def blk_submit_and_poll(self, submit: Requests, collect: Requests,
                            write: bool_) -> tuple[u64, Requests, Requests]:
        """Read or write a batch of blocks through the block driver."""

    @create
    def create_rv6(self, net: Optional[Net], bdev: Optional[NvmeBDev]) -> Rv6:
        """Boot rv6 over the network and block drivers it is handed (either may be
        None: its system calls then fail)."""
