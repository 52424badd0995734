"""The paper's batched block interface (RedLeaf ``NvmeBDev``, RRef path).

Requests travel in ``RRefDeque`` s of :class:`BlkReq`, moved into the driver
and handed back with the finished requests in ``collect``. The request's
``data`` is where the device reads from or writes to (zero-copy, as RedLeaf
puts the RRef's data address in the command's PRP1).
"""
from __future__ import annotations

from redleaf_nb.kernel.idl import Interface, create
from redleaf_nb.kernel.rref import RRefDeque
from redleaf_nb.kernel.types import Device, Record, bool_, u8, u32, u64

BSIZE = 4096
MAX_REQUESTS = 128   # RRefDeque<BlkReq, 128> in RedLeaf


class BlkReq(Record):
    """One 4 KiB block request: which block, how many bytes were moved, the data.

    (RedLeaf's field order is data first; ours puts the header first.)"""

    block: u64
    data_len: u64
    data: u8[BSIZE]


Requests = RRefDeque[BlkReq, MAX_REQUESTS]


class NvmeBDev(Interface):
    """An NVMe block device: batched, zero-copy submit-and-poll of block requests."""

    def submit_and_poll(self, submit: Requests, collect: Requests,
                        write: bool_) -> tuple[u64, Requests, Requests]:
        """Queue the requests in ``submit`` (reads, or writes if ``write``) and collect
        up to a batch of finished ones; returns (finished, submit, collect)."""

    @create
    def create_nvme(self, device: Device, batch: u64, queue_entries: u32) -> NvmeBDev:
        """Start an NVMe driver over ``device``: one I/O queue pair of ``queue_entries`` entries,
        collecting up to ``batch`` completions a call."""
