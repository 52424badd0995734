"""Reading and patching packet headers in safe domain code: network byte order and the
IPv4 header checksum. Shared by the packet-processing applications (maglev, kvstore);
their C sides share the same functions in experiments/native/packet.h."""
from __future__ import annotations

import numpy as np
from numba import njit

from redleaf_nb.kernel.views import deque_pop_front, deque_push_back, deque_splice

ETH = 14                  # the IPv4 header follows the Ethernet header
IP_CSUM = ETH + 10        # where the IPv4 header checksum is
JIT = dict(cache=True, boundscheck=True)
# helpers are inlined into the entry points (kernel/checker.py: compiled with their
# bounds checks); a call that passes arrays costs reference counting, tens of cycles
HELPER = dict(JIT, inline="always")
FFFF = np.uint64(0xFFFF)


@njit(**HELPER)
def u16(pkt, i):
    """The big-endian 16-bit word at byte ``i``."""
    return (np.uint64(pkt[i]) << np.uint64(8)) | np.uint64(pkt[i + 1])


@njit(**HELPER)
def u32(pkt, i):
    """The big-endian 32-bit word at byte ``i``."""
    return (u16(pkt, i) << np.uint64(16)) | u16(pkt, i + 2)


@njit(**HELPER)
def put16(pkt, i, v):
    pkt[i], pkt[i + 1] = (v >> np.uint64(8)) & np.uint64(0xFF), v & np.uint64(0xFF)


@njit(**HELPER)
def put32(pkt, i, v):
    put16(pkt, i, v >> np.uint64(16))
    put16(pkt, i + 2, v & FFFF)


@njit(**HELPER)
def csum_replace(pkt, old, new):
    """Update the IPv4 header checksum for a 32-bit field of the header changed from
    ``old`` to ``new`` (RFC 1624: HC' = ~(~HC + ~m + m'), per 16-bit half)."""
    s = ((~u16(pkt, IP_CSUM) & FFFF) + (~(old >> np.uint64(16)) & FFFF) + (~old & FFFF)
         + (new >> np.uint64(16)) + (new & FFFF))
    s = (s & FFFF) + (s >> np.uint64(16))
    s = (s & FFFF) + (s >> np.uint64(16))
    put16(pkt, IP_CSUM, ~s & FFFF)


@njit(**HELPER)
def pass_on(k, rx, tx, spare, keep, kept):
    """Move the packets of deque ``rx`` that ``keep`` marks (``kept`` of them) to ``tx``
    and the others to ``spare``: one splice when every packet is kept. (sent, kept
    but found no room in ``tx``)."""
    n = keep.size
    if kept == n:
        sent = deque_splice(k, rx, tx, n)
    else:
        sent = 0
        for i in range(n):
            buf = deque_pop_front(k, rx)
            if keep[i] and deque_push_back(k, tx, buf) == 0:
                sent += 1
            else:
                deque_push_back(k, spare, buf)
    deque_splice(k, rx, spare, n)   # what ``tx`` had no room for
    return sent, kept - sent
