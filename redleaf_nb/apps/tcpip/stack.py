"""The network stack's per-poll work, joined from its layers: every received frame
goes to ARP, ICMP, UDP or TCP (answered in place, or consumed); then TCP's timers
run; then (after the application had its turn) each connection that has something
to say gets a fresh buffer from the pool for its next segment.

The stack lives in the domain of the application that uses it (httpd), as the
paper's smoltcp does: its memory is a state record (counters and configuration),
the connection table and the connections' rings, granted from
:data:`STACK_GRANTS` on. Addresses: IPv4 ``ip`` and Ethernet ``mac`` as integers.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from redleaf_nb.datasheets.tcpip import (ETH_TYPE, IP_PROTO, PROTO_ICMP,
                                         PROTO_TCP, PROTO_UDP, TYPE_ARP, TYPE_IPV4)
from redleaf_nb.kernel.views import (deque_item, deque_len, deque_pop_front, deque_push_back,
                                     rref_array, state_type)

from ..packet import JIT, u16
from .ip import (BAD_IP, BAD_IP_CSUM, FRAGMENT, arp_reply, check_ipv4, icmp_echo,
                 udp_echo)
from .tcp import CONN, REPLY, TCP_COUNTERS, tcp_input, tcp_segment, tcp_timers, tcp_wants

COUNTERS = ("frames_in", "frames_out", "not_ip", "arp_replies", "arp_ignored", "ip_bad",
            "ip_bad_checksum", "ip_fragments", "ip_not_mine", "icmp_echoes", "icmp_bad",
            "udp_echoes", "udp_bad", "udp_no_port", "other_protocol",
            "tx_no_buffer") + TCP_COUNTERS
STACK = state_type(**{c: np.int64 for c in COUNTERS}, ip=np.int64, mac=np.int64,
                   listen_port=np.int64, now=np.int64, ip_id=np.int64, iss_seed=np.int64,
                   half_open_max=np.int64, rto_initial=np.int64, rto_max=np.int64,
                   ack_delay=np.int64, time_wait=np.int64, next_conn=np.int64)


@njit(**JIT)
def stack_frame(st, conns, rxb, pkt):
    """One received frame: True if ``pkt`` now holds a reply to send back."""
    st.frames_in += 1
    kind = u16(pkt, ETH_TYPE)
    if kind == TYPE_ARP:
        if arp_reply(pkt, st.ip, st.mac):
            st.arp_replies += 1
            return True
        st.arp_ignored += 1
        return False
    if kind != TYPE_IPV4:
        st.not_ip += 1
        return False
    ihl = check_ipv4(pkt, st.ip)
    if ihl < 0:
        if ihl == BAD_IP:
            st.ip_bad += 1
        elif ihl == BAD_IP_CSUM:
            st.ip_bad_checksum += 1
        elif ihl == FRAGMENT:
            st.ip_fragments += 1
        else:
            st.ip_not_mine += 1
        return False
    total = np.int64(u16(pkt, 16))
    proto = pkt[IP_PROTO]
    if proto == PROTO_TCP:
        return tcp_input(st, conns, rxb, pkt, ihl, total) == REPLY
    if proto == PROTO_ICMP:
        st.ip_id += 1
        r = icmp_echo(pkt, ihl, total, st.mac, st.ip_id)
        st.icmp_echoes += r == 1
        st.icmp_bad += r < 0
        return r == 1
    if proto == PROTO_UDP:
        st.ip_id += 1
        r = udp_echo(pkt, ihl, total, st.mac, st.ip_id)
        st.udp_echoes += r == 1
        st.udp_bad += r < 0
        st.udp_no_port += r == 0
        return r == 1
    st.other_protocol += 1
    return False


@njit(**JIT)
def stack_input(k, st, conns, rxb, rx, tx, pool):
    """Every frame of deque ``rx``: replies to ``tx``, the rest back to ``pool``."""
    for _ in range(deque_len(k, rx)):
        reply = stack_frame(st, conns, rxb, deque_item(k, rx, 0))
        buf = deque_pop_front(k, rx)
        if reply and deque_push_back(k, tx, buf) == 0:
            st.frames_out += 1
        else:
            deque_push_back(k, pool, buf)
    tcp_timers(st, conns)


@njit(**JIT)
def stack_output(k, st, conns, rxb, txb, tx, pool, room):
    """Let connections send, round-robin from where the last poll stopped, while ``tx``
    has room (at most ``room`` frames) and the pool has buffers: frames sent."""
    n = conns.shape[0]
    sent = 0
    for j in range(n):
        i = (st.next_conn + j) % n
        c = conns[i]
        while sent < room and tcp_wants(c, st.now, rxb.shape[1]):
            buf = deque_pop_front(k, pool)
            if buf <= 0:
                st.tx_no_buffer += 1
                return sent
            pkt = rref_array(k, buf, np.uint8, True)
            tcp_segment(st, c, txb[i], rxb.shape[1], pkt, st.now)
            deque_push_back(k, tx, buf)
            st.frames_out += 1
            sent += 1
        if sent >= room:
            st.next_conn = i
            return sent
    return sent


class NetStack:
    """The stack's memory and configuration: ``ip`` (dotted), ``mac`` (colon hex),
    ``connections`` (table size), ``rx_ring``/``tx_ring`` (bytes per connection, powers
    of two) and timing in microseconds, as cycles of a ``hz`` clock."""

    def __init__(self, ip: str = "10.0.0.2", mac: str = "02:00:00:00:00:02",
                 listen_port: int = 80, connections: int = 64, rx_ring: int = 8192,
                 tx_ring: int = 32768, hz: float = 2.6e9, rto_us: int = 200_000,
                 rto_max_us: int = 10_000_000, ack_delay_us: int = 40_000,
                 time_wait_us: int = 1_000_000, half_open_max: int | None = None,
                 seed: int = 1):
        for name, size in (("rx_ring", rx_ring), ("tx_ring", tx_ring)):
            if size < 2048 or size & (size - 1) or size > 1 << 24:
                raise ValueError(f"NetStack: {name}={size} must be a power of two in 2048..2**24")
        if not 1 <= connections <= 4096:
            raise ValueError(f"NetStack: connections={connections} out of range 1..4096")
        if not 1 <= listen_port <= 65535:
            raise ValueError(f"NetStack: listen_port={listen_port} out of range 1..65535")
        self.ip_text, self.mac_text = ip, mac
        self.state = np.zeros(1, STACK)
        st = self.state[0]
        st["ip"], st["mac"] = ip_number(ip), mac_number(mac)
        st["listen_port"] = listen_port
        us = hz / 1e6
        st["rto_initial"], st["rto_max"] = int(rto_us * us), int(rto_max_us * us)
        st["ack_delay"], st["time_wait"] = int(ack_delay_us * us), int(time_wait_us * us)
        st["half_open_max"] = half_open_max or max(1, connections // 2)
        st["iss_seed"] = seed
        self.conns = np.zeros(connections, CONN)
        self.rxb = np.zeros((connections, rx_ring), np.uint8)
        self.txb = np.zeros((connections, tx_ring), np.uint8)

    def regions(self, base: int) -> dict[int, np.ndarray]:
        return {base: self.state, base + 1: self.conns, base + 2: self.rxb, base + 3: self.txb}

    def counters(self) -> dict:
        return {c: int(self.state[c][0]) for c in COUNTERS}

    def connections(self) -> list[dict]:
        """The open connections: state and stream positions, for notebooks and tests."""
        from .tcp import STATE_NAMES
        return [{"slot": i, "state": STATE_NAMES[c["state"]], "peer": f"{ip_text(c['peer_ip'])}:"
                 f"{c['peer_port']}", "sent": int(c["nxt"]), "acked": int(c["una"]),
                 "received": int(c["got"]), "retries": int(c["retries"])}
                for i, c in enumerate(self.conns) if c["state"]]


def ip_number(text: str) -> int:
    parts = text.split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise ValueError(f"not an IPv4 address: {text!r}")
    return int.from_bytes(bytes(int(p) for p in parts), "big")


def ip_text(number: int) -> str:
    return ".".join(str(b) for b in int(number).to_bytes(4, "big"))


def mac_number(text: str) -> int:
    parts = text.split(":")
    if len(parts) != 6:
        raise ValueError(f"not an Ethernet address: {text!r}")
    try:
        return int.from_bytes(bytes(int(p, 16) for p in parts), "big")
    except ValueError:
        raise ValueError(f"not an Ethernet address: {text!r}") from None
