"""The paper's network interface (RedLeaf ``interface/src/net.rs``), RRef path.

Packets travel in ``RRefDeque`` s of 1514-byte buffers, moved into the driver
and handed back: ``packets`` carries buffers to send (TX) or to receive into
(RX); ``collect`` comes back with sent buffers to reuse (TX) or received
packets (RX). RedLeaf's deques hold 32; ours hold ``MAX_BATCH`` so that a
user can try larger batches.
"""
from __future__ import annotations

from redleaf_nb.kernel.idl import Interface, create
from redleaf_nb.kernel.rref import RRefDeque
from typing import Optional

from redleaf_nb.kernel.types import Device, bool_, u8, u32, u64

PKT_BUF = 1514
MAX_BATCH = 64
Packet = u8[PKT_BUF]
Packets = RRefDeque[Packet, MAX_BATCH]


class Net(Interface):
    """A network device: batched, zero-copy submit-and-poll of packet buffers."""

    def submit_and_poll(self, packets: Packets, collect: Packets,
                        tx: bool_) -> tuple[u64, Packets, Packets]:
        """Queue ``packets`` (TX: to send; RX: buffers to fill) and collect finished
        buffers; returns (packets done, packets, collect)."""

    @create
    def create_net(self, device: Optional[Device], batch: u64, ring: u32) -> Net:
        """Start a network driver over ``device`` (None for one without a device) that
        handles up to ``batch`` packets a call, with ``ring`` descriptors per ring
        (drivers without a device ignore it)."""
