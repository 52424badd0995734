"""Where the fields of Ethernet, ARP, IPv4, ICMP, UDP and TCP headers are (RFC 826,
791, 792, 768, 793/9293, 7323), as byte offsets into a frame: shared by the network
stack domain (redleaf_nb/apps/tcpip), the simulated HTTP client on the wire
(devices/http_load.py) and the tests that craft packets; and the Internet checksum
they all compute."""
from __future__ import annotations

import numpy as np
from numba import njit

# Ethernet II
ETH_DST, ETH_SRC, ETH_TYPE, ETH_HLEN = 0, 6, 12, 14
TYPE_IPV4, TYPE_ARP = 0x0800, 0x0806
MTU = 1500
MIN_FRAME = 60                     # without the FCS: shorter frames are padded

# ARP over Ethernet/IPv4 (after the Ethernet header)
ARP_HTYPE, ARP_PTYPE, ARP_HLEN_F, ARP_PLEN, ARP_OP = 14, 16, 18, 19, 20
ARP_SHA, ARP_SPA, ARP_THA, ARP_TPA = 22, 28, 32, 38
ARP_REQUEST, ARP_REPLY = 1, 2
ARP_FRAME = 42

# IPv4 (no options in what we send)
IP = ETH_HLEN
IP_VER_IHL, IP_TOTAL_LEN, IP_ID, IP_FRAG, IP_TTL, IP_PROTO, IP_CSUM = (
    IP, IP + 2, IP + 4, IP + 6, IP + 8, IP + 9, IP + 10)
IP_SRC, IP_DST = IP + 12, IP + 16
IP_HLEN = 20
IP_DF, IP_MF, IP_OFFSET_MASK = 0x4000, 0x2000, 0x1FFF
PROTO_ICMP, PROTO_TCP, PROTO_UDP = 1, 6, 17

# after an IPv4 header of ``ihl`` bytes: offsets relative to the transport header
ICMP_TYPE, ICMP_CODE, ICMP_CSUM = 0, 1, 2
ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST = 0, 8
UDP_SPORT, UDP_DPORT, UDP_LEN, UDP_CSUM, UDP_HLEN = 0, 2, 4, 6, 8
UDP_ECHO_PORT = 7
TCP_SPORT, TCP_DPORT, TCP_SEQ, TCP_ACK, TCP_OFF, TCP_FLAGS, TCP_WIN, TCP_CSUM, TCP_URG = (
    0, 2, 4, 8, 12, 13, 14, 16, 18)
TCP_HLEN = 20
FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
OPT_END, OPT_NOP, OPT_MSS, OPT_WSCALE, OPT_SACK_OK, OPT_SACK, OPT_TIMESTAMP = 0, 1, 2, 3, 4, 5, 8
MSS = MTU - IP_HLEN - TCP_HLEN     # 1460
MAX_WSCALE = 14
HTTP_PORT = 80


# the Internet checksum (RFC 1071), for every side of the wire: the stack's domain
# (compiled with bounds checks, as domain code is), the simulated client, the tests

@njit(cache=True, boundscheck=True, inline="always")
def ones_sum(b, start, n):
    """The ones'-complement sum (unfolded) of ``n`` bytes from ``start`` as big-endian
    16-bit words, an odd last byte padded with zero."""
    s = np.int64(0)
    end = start + n
    i = start
    while i + 1 < end:
        s += (np.int64(b[i]) << 8) | np.int64(b[i + 1])
        i += 2
    if i < end:
        s += np.int64(b[i]) << 8
    return s


@njit(cache=True, boundscheck=True, inline="always")
def fold(s):
    """Fold a ones'-complement sum to 16 bits."""
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s
