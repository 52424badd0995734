"""Reading and patching packet headers in safe domain code: network byte order and the
IPv4 header checksum. Shared by the packet-processing applications (maglev, kvstore)."""
from __future__ import annotations

import numpy as np
from numba import njit

JIT = dict(cache=True, boundscheck=True)
ETH = 14                  # the IPv4 header follows the Ethernet header
IP_CSUM = ETH + 10        # where the IPv4 header checksum is
FFFF = np.uint64(0xFFFF)


@njit(**JIT)
def u16(pkt, i):
    """The big-endian 16-bit word at byte ``i``."""
    return (np.uint64(pkt[i]) << np.uint64(8)) | np.uint64(pkt[i + 1])


@njit(**JIT)
def u32(pkt, i):
    """The big-endian 32-bit word at byte ``i``."""
    return (u16(pkt, i) << np.uint64(16)) | u16(pkt, i + 2)


@njit(**JIT)
def put16(pkt, i, v):
    pkt[i], pkt[i + 1] = (v >> np.uint64(8)) & np.uint64(0xFF), v & np.uint64(0xFF)


@njit(**JIT)
def put32(pkt, i, v):
    put16(pkt, i, v >> np.uint64(16))
    put16(pkt, i + 2, v & FFFF)


@njit(**JIT)
def csum_replace(pkt, old, new):
    """Update the IPv4 header checksum for a 32-bit field of the header changed from
    ``old`` to ``new`` (RFC 1624: HC' = ~(~HC + ~m + m'), per 16-bit half)."""
    s = ((~u16(pkt, IP_CSUM) & FFFF) + (~(old >> np.uint64(16)) & FFFF) + (~old & FFFF)
         + (new >> np.uint64(16)) + (new & FFFF))
    s = (s & FFFF) + (s >> np.uint64(16))
    s = (s & FFFF) + (s >> np.uint64(16))
    put16(pkt, IP_CSUM, ~s & FFFF)
