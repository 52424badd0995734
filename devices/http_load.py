"""A wrk-like HTTP load generator on the simulated wire: the client machine of the
paper's httpd experiment (wrk, 1 thread, 20 connections).

Closed loop: each of ``connections`` TCP connections has one request outstanding;
when its response is complete (its ``Content-Length`` of body after the head), the
next request goes out carrying the ACK. It is a real, if small, TCP client: a
handshake with MSS and window-scale options, in-order receive with duplicate ACKs
for gaps, an ACK every second full segment, retransmission of a SYN or request that
went unanswered for ``timeout`` cycles, and a new connection (a fresh port) when the
server closes or resets one. It counts what wrk reports: requests completed,
non-2xx responses, socket errors (resets, timeouts) and bytes read.

It runs between device steps, and its cycles are left out of the server's time
(:func:`devices.nic.nic_exclude`), as the paper's wrk ran on another machine.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from redleaf_nb.datasheets.tcpip import (ACK, ETH_HLEN, FIN, IP_HLEN, MSS, OPT_MSS, OPT_NOP,
                                         OPT_WSCALE, PROTO_TCP, PSH, RST, SYN, TCP_HLEN, fold,
                                         ones_sum)

from .wire import FROM_HOST, TO_HOST, wire_put, wire_take

CLIENT = np.dtype([(f, np.int64) for f in ("state", "port", "gen", "seq", "rcv", "req_seq",
                                           "remaining", "unacked", "sent_at", "got_any")])
IDLE, SYN_SENT, WAITING = 0, 1, 2
COUNTERS = ("completed", "non_2xx", "resets", "timeouts", "bytes_read", "out_of_order",
            "bad_responses", "connects")
LOAD = np.dtype([(f, np.int64) for f in COUNTERS + (
    "timeout", "my_ip", "my_mac", "server_ip", "server_mac", "port", "req_len")])
T = ETH_HLEN + IP_HLEN
M32 = (1 << 32) - 1


@njit(cache=True)
def _be(b, i, n):
    v = np.int64(0)
    for j in range(n):
        v = (v << 8) | np.int64(b[i + j])
    return v


@njit(cache=True)
def _put(b, i, n, v):
    for j in range(n):
        b[i + n - 1 - j] = (v >> (8 * j)) & 0xFF


@njit(cache=True)
def _send(ld, c, out, meta, frames, flags, seq, data, n):
    """A segment from client ``c``: ``n`` bytes of ``data`` at ``seq``."""
    hlen = 28 if flags & SYN else TCP_HLEN
    _put(out, 0, 6, ld.server_mac)
    _put(out, 6, 6, ld.my_mac)
    out[12], out[13] = 8, 0
    total = IP_HLEN + hlen + n
    out[14], out[15] = 0x45, 0
    _put(out, 16, 2, total)
    _put(out, 18, 4, 0x4000)          # id 0, don't fragment
    out[22], out[23] = 64, PROTO_TCP
    _put(out, 24, 2, 0)
    _put(out, 26, 4, ld.my_ip)
    _put(out, 30, 4, ld.server_ip)
    _put(out, 24, 2, ~fold(ones_sum(out, ETH_HLEN, IP_HLEN)) & 0xFFFF)
    _put(out, T, 2, c.port)
    _put(out, T + 2, 2, ld.port)
    _put(out, T + 4, 4, seq & M32)
    _put(out, T + 8, 4, c.rcv & M32 if flags & ACK else 0)
    out[T + 12], out[T + 13] = (hlen // 4) << 4, flags
    _put(out, T + 14, 2, 65535)
    _put(out, T + 16, 4, 0)           # checksum, urgent pointer
    if flags & SYN:
        out[T + 20], out[T + 21] = OPT_MSS, 4
        _put(out, T + 22, 2, MSS)
        out[T + 24], out[T + 25], out[T + 26], out[T + 27] = OPT_NOP, OPT_WSCALE, 3, 0
    out[T + hlen:T + hlen + n] = data[:n]
    s = ones_sum(out, 26, 8) + PROTO_TCP + hlen + n + ones_sum(out, T, hlen + n)
    _put(out, T + 16, 2, ~fold(s) & 0xFFFF)
    wire_put(meta, frames, TO_HOST, out, ETH_HLEN + total)


@njit(cache=True)
def _connect(ld, c, i, n, out, meta, frames, now):
    c.gen += 1
    c.port = 10000 + (c.gen * n + i) % 50000
    c.seq = (c.port * 2654435761 + c.gen) & M32
    c.state, c.sent_at, c.unacked, c.got_any = SYN_SENT, now, 0, 0
    ld.connects += 1
    _send(ld, c, out, meta, frames, SYN, c.seq, out, 0)
    c.seq += 1


@njit(cache=True)
def _request(ld, c, out, meta, frames, req, now):
    c.state, c.remaining, c.unacked, c.sent_at, c.got_any = WAITING, -1, 0, now, 0
    c.req_seq = c.seq
    _send(ld, c, out, meta, frames, ACK | PSH, c.seq, req, ld.req_len)
    c.seq += ld.req_len


@njit(cache=True)
def _head(ld, c, pkt, d, n):
    """Parse a response's head at the start of a segment: the bytes of the response
    still to come after this segment's, or -1 if it does not parse."""
    if n < 12 or pkt[d] != 72:   # 'HTTP/1.x NNN'
        return -1
    status = (pkt[d + 9] - 48) * 100 + (pkt[d + 10] - 48) * 10 + (pkt[d + 11] - 48)
    if status < 200 or status > 299:
        ld.non_2xx += 1
    length, end = -1, -1
    for i in range(d, d + n - 3):
        if pkt[i] == 13 and pkt[i + 1] == 10:
            if pkt[i + 2] == 13 and pkt[i + 3] == 10:
                end = i + 4
                break
            j = i + 2   # a header line: Content-Length?
            if j + 16 < d + n and (pkt[j] | 32) == 99 and pkt[j + 7] == 45 and (pkt[j + 8] | 32) == 108:
                k = j + 16
                length = 0
                while k < d + n and 48 <= pkt[k] <= 57:
                    length = length * 10 + pkt[k] - 48
                    k += 1
    if end < 0 or length < 0:
        return -1
    return (end - d) + length - n


@njit(cache=True)
def load_step(ld, clients, req, meta, frames, pkt, out, now):
    """Take every frame the server sent, answer them, start what is due: the number of
    responses completed in this step."""
    done = 0
    nc = clients.shape[0]
    while True:
        size = wire_take(meta, frames, FROM_HOST, pkt)
        if size < 0:
            break
        if size < T + TCP_HLEN or pkt[12] != 8 or pkt[13] != 0 or pkt[23] != PROTO_TCP:
            continue
        port = _be(pkt, T + 2, 2)
        found = -1
        for j in range(nc):    # the client whose port it is
            if clients[j].port == port and clients[j].state != IDLE:
                found = j
                break
        if found < 0:
            continue
        c = clients[found]
        flags = pkt[T + 13]
        seq = _be(pkt, T + 4, 4)
        total = _be(pkt, 16, 2)
        d = T + (pkt[T + 12] >> 4) * 4
        n = ETH_HLEN + total - d
        if flags & RST:
            ld.resets += 1
            c.state = IDLE
            continue
        if c.state == SYN_SENT:
            if flags & SYN and flags & ACK:
                c.rcv = seq + 1
                _request(ld, c, out, meta, frames, req, now)
            continue
        if n > 0 or flags & FIN:
            if seq != (c.rcv & M32):
                ld.out_of_order += 1
                _send(ld, c, out, meta, frames, ACK, c.seq, out, 0)   # a duplicate ACK
                continue
            c.rcv += n
            c.sent_at = now          # progress: the timeout counts from here
            ld.bytes_read += n
            if n > 0:
                if c.remaining < 0:
                    c.remaining = _head(ld, c, pkt, d, n)
                    if c.remaining < 0:
                        ld.bad_responses += 1
                        c.state = IDLE
                        continue
                else:
                    c.remaining -= n
                c.got_any = 1
                c.unacked += 1
            if flags & FIN:
                c.rcv += 1
                _send(ld, c, out, meta, frames, ACK | FIN, c.seq, out, 0)
                c.state = IDLE
                if c.remaining == 0:
                    done += 1
                continue
            if c.remaining == 0:
                done += 1
                _request(ld, c, out, meta, frames, req, now)
            elif c.unacked >= 2:
                c.unacked = 0
                _send(ld, c, out, meta, frames, ACK, c.seq, out, 0)
    for i in range(nc):
        c = clients[i]
        if c.state == IDLE:
            _connect(ld, c, i, nc, out, meta, frames, now)
        elif now - c.sent_at > ld.timeout:
            ld.timeouts += 1
            c.sent_at = now
            if c.state == SYN_SENT:
                _send(ld, c, out, meta, frames, SYN, c.seq - 1, out, 0)
            elif not c.got_any:
                _send(ld, c, out, meta, frames, ACK | PSH, c.req_seq, req, ld.req_len)
            else:
                _send(ld, c, out, meta, frames, ACK, c.seq, out, 0)
    ld.completed += done
    return done


def _number(text: str, sep: str, base: int) -> int:
    return int.from_bytes(bytes(int(p, base) for p in text.split(sep)), "big")


class HttpLoad:
    """``connections`` clients at ``my_ip`` asking the server at ``server_ip`` for
    ``path`` over and over, on ``wire``; ``timeout_us`` of a ``hz`` clock before a
    SYN or request is sent again."""

    def __init__(self, wire, connections: int = 20, path: str = "/index.html",
                 hz: float = 2.6e9, timeout_us: int = 200_000, my_ip: str = "10.0.0.1",
                 my_mac: str = "02:00:00:00:00:01", server_ip: str = "10.0.0.2",
                 server_mac: str = "02:00:00:00:00:02", port: int = 80):
        if not 1 <= connections <= 10000:
            raise ValueError(f"http load: connections={connections} out of range 1..10000")
        request = f"GET {path} HTTP/1.1\r\nHost: {server_ip}\r\n\r\n".encode()
        if not path.startswith("/") or len(request) > MSS:
            raise ValueError(f"http load: path {path!r} must start with '/' and fit a segment")
        self.wire = wire
        self.state = np.zeros(1, LOAD)
        st = self.state[0]
        st["timeout"] = int(timeout_us * hz / 1e6)
        st["my_ip"], st["server_ip"] = _number(my_ip, ".", 10), _number(server_ip, ".", 10)
        st["my_mac"], st["server_mac"] = _number(my_mac, ":", 16), _number(server_mac, ":", 16)
        st["port"], st["req_len"] = port, len(request)
        self.clients = np.zeros(connections, CLIENT)
        self.request = np.frombuffer(request, np.uint8).copy()
        self._pkt, self._out = np.zeros(1514, np.uint8), np.zeros(1514, np.uint8)

    def args(self) -> tuple:
        """What :func:`load_step` takes after the state record, in order."""
        return (self.clients, self.request, self.wire.meta, self.wire.frames, self._pkt,
                self._out)

    def step(self, now: int) -> int:
        """One step at ``now`` cycles: responses completed."""
        return int(load_step(self.state[0], *self.args(), now))

    def counters(self) -> dict:
        return {c: int(self.state[c][0]) for c in COUNTERS}
