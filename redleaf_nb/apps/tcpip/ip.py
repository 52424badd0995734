"""The stateless layers of the stack: Internet checksums, and the frames answered in
place (ARP requests for our address, ICMP echo, UDP echo), as safe domain code.

Every check a header fails is counted by the caller under the name returned here,
never trusted: lengths are read from the packet and checked against what it can
hold before any byte past them is read.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from redleaf_nb.datasheets.tcpip import (ARP_HLEN_F, ARP_HTYPE, ARP_OP, ARP_PLEN, ARP_PTYPE,
                                         ARP_REPLY, ARP_REQUEST, ARP_SHA, ARP_SPA, ARP_THA,
                                         ARP_TPA, ETH_DST, ETH_HLEN, ETH_SRC, ICMP_CSUM,
                                         ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, ICMP_TYPE,
                                         IP_CSUM, IP_DST, IP_FRAG, IP_HLEN, IP_MF,
                                         IP_OFFSET_MASK, IP_SRC, IP_TOTAL_LEN, IP_TTL,
                                         IP_VER_IHL, MTU, TYPE_IPV4, UDP_CSUM, UDP_DPORT,
                                         UDP_ECHO_PORT, UDP_HLEN, UDP_LEN, UDP_SPORT, fold,
                                         ones_sum)

from ..packet import HELPER, JIT, put16, put32, u16, u32

# what an IPv4 header check finds (>= 0: the header length)
BAD_IP, BAD_IP_CSUM, FRAGMENT, NOT_MINE = -1, -2, -3, -4
TTL = 64


@njit(**HELPER)
def pseudo_sum(pkt, proto, length):
    """The sum of the IPv4 pseudo-header of a TCP or UDP segment of ``length`` bytes."""
    return ones_sum(pkt, IP_SRC, 8) + proto + length


@njit(**JIT)
def check_ipv4(pkt, my_ip):
    """The IPv4 header's length if it is well formed, addressed to us and whole
    (not a fragment); else BAD_IP, BAD_IP_CSUM, FRAGMENT or NOT_MINE."""
    vi = pkt[IP_VER_IHL]
    ihl = np.int64(vi & 0x0F) * 4
    total = np.int64(u16(pkt, IP_TOTAL_LEN))
    if vi >> 4 != 4 or ihl < IP_HLEN or total < ihl or total > MTU:
        return BAD_IP
    if fold(ones_sum(pkt, ETH_HLEN, ihl)) != 0xFFFF:
        return BAD_IP_CSUM
    if np.int64(u32(pkt, IP_DST)) != my_ip:
        return NOT_MINE
    if u16(pkt, IP_FRAG) & (IP_MF | IP_OFFSET_MASK):
        return FRAGMENT
    return ihl


@njit(**HELPER)
def _swap(pkt, a, b, n):
    for i in range(n):
        pkt[a + i], pkt[b + i] = pkt[b + i], pkt[a + i]


@njit(**JIT)
def ip_header(pkt, ident, proto, total, src, dst):
    """Write a 20-byte IPv4 header (no options, don't fragment) with its checksum."""
    pkt[IP_VER_IHL], pkt[IP_VER_IHL + 1] = 0x45, 0
    put16(pkt, IP_TOTAL_LEN, np.uint64(total))
    put16(pkt, IP_TOTAL_LEN + 2, np.uint64(ident & 0xFFFF))
    put16(pkt, IP_FRAG, np.uint64(0x4000))
    pkt[IP_TTL], pkt[IP_TTL + 1] = TTL, proto
    put16(pkt, IP_CSUM, np.uint64(0))
    put32(pkt, IP_SRC, np.uint64(src))
    put32(pkt, IP_DST, np.uint64(dst))
    put16(pkt, IP_CSUM, np.uint64(~fold(ones_sum(pkt, ETH_HLEN, IP_HLEN)) & 0xFFFF))


@njit(**HELPER)
def put_mac(pkt, at, mac):
    for i in range(6):
        pkt[at + i] = (mac >> (8 * (5 - i))) & 0xFF


@njit(**HELPER)
def get_mac(pkt, at):
    m = np.int64(0)
    for i in range(6):
        m = (m << 8) | np.int64(pkt[at + i])
    return m


@njit(**JIT)
def reply_ip(pkt, ihl, my_mac, ident, proto, total):
    """Turn a received IPv4 packet in place into one back to its sender from us (its
    options dropped: the payload at ``ihl`` moves up behind a 20-byte header)."""
    put_mac(pkt, ETH_DST, get_mac(pkt, ETH_SRC))
    put_mac(pkt, ETH_SRC, my_mac)
    src, dst = np.int64(u32(pkt, IP_SRC)), np.int64(u32(pkt, IP_DST))
    if ihl > IP_HLEN:
        for i in range(total - IP_HLEN):
            pkt[ETH_HLEN + IP_HLEN + i] = pkt[ETH_HLEN + ihl + i]
    ip_header(pkt, ident, proto, total, dst, src)


@njit(**JIT)
def arp_reply(pkt, my_ip, my_mac):
    """Answer an ARP request for ``my_ip`` in place: True if it was one."""
    if (u16(pkt, ARP_HTYPE) != 1 or u16(pkt, ARP_PTYPE) != TYPE_IPV4 or pkt[ARP_HLEN_F] != 6
            or pkt[ARP_PLEN] != 4 or u16(pkt, ARP_OP) != ARP_REQUEST
            or np.int64(u32(pkt, ARP_TPA)) != my_ip):
        return False
    sender_mac, sender_ip = get_mac(pkt, ARP_SHA), np.int64(u32(pkt, ARP_SPA))
    put16(pkt, ARP_OP, np.uint64(ARP_REPLY))
    put_mac(pkt, ARP_THA, sender_mac)
    put32(pkt, ARP_TPA, np.uint64(sender_ip))
    put_mac(pkt, ARP_SHA, my_mac)
    put32(pkt, ARP_SPA, np.uint64(my_ip))
    put_mac(pkt, ETH_DST, sender_mac)
    put_mac(pkt, ETH_SRC, my_mac)
    return True


@njit(**JIT)
def icmp_echo(pkt, ihl, total, my_mac, ident):
    """Answer an ICMP echo request in place: 1 if answered, 0 if not an echo request,
    -1 if its checksum is bad."""
    t = ETH_HLEN + ihl
    n = total - ihl
    if n < 8 or pkt[t + ICMP_TYPE] != ICMP_ECHO_REQUEST:
        return 0
    if fold(ones_sum(pkt, t, n)) != 0xFFFF:
        return -1
    reply_ip(pkt, ihl, my_mac, ident, 1, IP_HLEN + n)
    t = ETH_HLEN + IP_HLEN
    pkt[t + ICMP_TYPE] = ICMP_ECHO_REPLY
    put16(pkt, t + ICMP_CSUM, np.uint64(0))
    put16(pkt, t + ICMP_CSUM, np.uint64(~fold(ones_sum(pkt, t, n)) & 0xFFFF))
    return 1


@njit(**JIT)
def udp_echo(pkt, ihl, total, my_mac, ident):
    """Answer a datagram to the echo port in place: 1 if answered, 0 if it is to another
    port, -1 if malformed (length or checksum)."""
    t = ETH_HLEN + ihl
    n = np.int64(u16(pkt, t + UDP_LEN))
    if n < UDP_HLEN or n > total - ihl:
        return -1
    if u16(pkt, t + UDP_CSUM) != 0 and fold(pseudo_sum(pkt, 17, n) + ones_sum(pkt, t, n)) != 0xFFFF:
        return -1
    if u16(pkt, t + UDP_DPORT) != UDP_ECHO_PORT:
        return 0
    reply_ip(pkt, ihl, my_mac, ident, 17, IP_HLEN + n)
    t = ETH_HLEN + IP_HLEN
    _swap(pkt, t + UDP_SPORT, t + UDP_DPORT, 2)
    put16(pkt, t + UDP_CSUM, np.uint64(0))
    csum = ~fold(pseudo_sum(pkt, 17, n) + ones_sum(pkt, t, n)) & 0xFFFF
    put16(pkt, t + UDP_CSUM, np.uint64(csum if csum else 0xFFFF))   # 0 means "none"
    return 1
