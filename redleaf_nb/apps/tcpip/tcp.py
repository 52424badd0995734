"""TCP (RFC 9293) for a server, as safe domain code: passive open, in-order data,
delayed ACKs, flow control with window scaling, retransmission (timeout, go-back-N,
and fast retransmit on three duplicate ACKs), zero-window probes, and every way a
connection ends (FIN either side first, TIME_WAIT, RST).

A connection is a record of :data:`CONN` in a table the stack's domain owns, with a
receive ring (``rxb[c]``) and a send ring (``txb[c]``). Positions in each stream are
kept as byte *offsets* from its first data byte (int64, never wrapping); only the
wire carries 32-bit sequence numbers, and :func:`seq_off` converts. On the send side
``una <= nxt <= end``: acknowledged, sent, and written by the application; the FIN, once
the application closes, sits at offset ``end``. On the receive side ``got`` bytes
arrived in order and the application consumed ``used`` of them.

Options: MSS and window scale are honoured (we answer a window-scale offer with a
shift of 0, so our own window is never scaled); SACK and timestamps are not offered
in our SYN-ACK, so a peer never uses them, and any option a segment carries is
skipped by its data offset. Segments that arrive out of order are dropped and
answered with a duplicate ACK (the peer retransmits).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from redleaf_nb.datasheets.tcpip import (ACK, ETH_DST, ETH_HLEN, ETH_SRC, ETH_TYPE, FIN,
                                         IP_HLEN, IP_SRC, MAX_WSCALE, MSS, OPT_END, OPT_MSS,
                                         OPT_NOP, OPT_WSCALE, PROTO_TCP, PSH, RST, SYN,
                                         TCP_ACK, TCP_CSUM, TCP_DPORT, TCP_FLAGS, TCP_HLEN,
                                         TCP_OFF, TCP_SEQ, TCP_SPORT, TCP_URG, TCP_WIN,
                                         TYPE_IPV4)
from redleaf_nb.kernel.views import copy_into, state_type

from ..packet import HELPER, JIT, put16, put32, u16, u32
from .ip import fold, get_mac, ip_header, ones_sum, pseudo_sum, put_mac

# connection states (CLOSED: a free slot)
(CLOSED, SYN_RCVD, ESTABLISHED, CLOSE_WAIT, LAST_ACK, FIN_WAIT_1, FIN_WAIT_2, CLOSING,
 TIME_WAIT) = range(9)
STATE_NAMES = ("CLOSED", "SYN_RCVD", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "FIN_WAIT_1",
               "FIN_WAIT_2", "CLOSING", "TIME_WAIT")
CONN = state_type(state=np.int64, gen=np.int64, peer_ip=np.int64, peer_port=np.int64,
                  port=np.int64, peer_mac=np.int64, iss=np.int64, irs=np.int64,
                  una=np.int64, nxt=np.int64, end=np.int64, wnd=np.int64, shift=np.int64,
                  mss=np.int64, ws_ok=np.int64, syn_sent=np.int64, fin_out=np.int64, fin_sent=np.int64,
                  fin_acked=np.int64, got=np.int64, used=np.int64, fin_in=np.int64,
                  rto=np.int64, rto_at=np.int64, retries=np.int64, dup_acks=np.int64,
                  ack_owed=np.int64, ack_at=np.int64, ack_now=np.int64, adv_wnd=np.int64,
                  tw_at=np.int64, opened=np.int64)
# the stack's counters of TCP (fields of its state record, stack.py)
TCP_COUNTERS = ("tcp_segments_in", "tcp_segments_out", "tcp_bad", "tcp_bad_checksum",
                "tcp_no_listener", "tcp_resets_out", "tcp_resets_in", "tcp_syn_refused",
                "tcp_out_of_window", "tcp_out_of_order", "tcp_duplicates", "tcp_retransmits",
                "tcp_fast_retransmits", "tcp_timeouts", "tcp_accepted", "tcp_closed",
                "tcp_probes", "tcp_bytes_in", "tcp_bytes_out", "tcp_time_wait_reused")
MAX_RETRIES = 8
SYN_RETRIES = 3
# segments handled: what the stack does with the buffer that carried one
CONSUMED, REPLY = 0, 1
M32 = (1 << 32) - 1


@njit(**HELPER)
def seq_off(seq, base):
    """The offset of 32-bit sequence number ``seq`` from ``base``, in -2**31..2**31-1."""
    return ((seq - base + (1 << 31)) & M32) - (1 << 31)


@njit(**HELPER)
def rcv_window(c, ring_size):
    """The receive window we can offer: free room in the ring, at most 65535 (we never
    scale our window)."""
    return min(ring_size - (c.got - c.used), 65535)


@njit(**HELPER)
def free_slot(c, st):
    c.state = CLOSED
    st.tcp_closed += 1


@njit(**JIT)
def _syn_options(pkt, t, off, c):
    """Read MSS and window scale from a SYN's options (others are skipped)."""
    c.mss, c.shift, c.ws_ok = 536, 0, 0
    i, end = t + TCP_HLEN, t + off
    while i < end:
        kind = pkt[i]
        if kind == OPT_END:
            break
        if kind == OPT_NOP:
            i += 1
            continue
        if i + 1 >= end or pkt[i + 1] < 2:
            break   # malformed: ignore the rest
        n = np.int64(pkt[i + 1])
        if i + n > end:
            break
        if kind == OPT_MSS and n == 4:
            c.mss = max(64, min(np.int64(u16(pkt, i + 2)), MSS))
        elif kind == OPT_WSCALE and n == 3:
            c.shift, c.ws_ok = min(np.int64(pkt[i + 2]), MAX_WSCALE), 1
        i += n


@njit(**JIT)
def _accept(st, conns, pkt, t, off, now):
    """A SYN to our port: a new connection in SYN_RCVD, or -1 if the table (or its
    share for half-open connections) is full."""
    half, slot, oldest_tw = 0, -1, -1
    for i in range(conns.shape[0]):
        s = conns[i].state
        if s == SYN_RCVD:
            half += 1
        elif s == CLOSED and slot < 0:
            slot = i
        elif s == TIME_WAIT and (oldest_tw < 0 or conns[i].tw_at < conns[oldest_tw].tw_at):
            oldest_tw = i
    if half >= st.half_open_max:
        return -1
    if slot < 0:
        if oldest_tw < 0:
            return -1
        slot = oldest_tw        # the oldest TIME_WAIT gives its slot up
        st.tcp_time_wait_reused += 1
    c = conns[slot]
    c.state, c.gen = SYN_RCVD, c.gen + 1
    c.peer_ip, c.peer_port = np.int64(u32(pkt, IP_SRC)), np.int64(u16(pkt, t + TCP_SPORT))
    c.port, c.peer_mac = np.int64(u16(pkt, t + TCP_DPORT)), get_mac(pkt, ETH_SRC)
    st.iss_seed = (st.iss_seed * 6364136223846793005 + 1442695040888963407) & ((1 << 62) - 1)
    c.iss, c.irs = (st.iss_seed >> 20) & M32, np.int64(u32(pkt, t + TCP_SEQ))
    c.una = c.nxt = c.end = c.got = c.used = 0
    c.syn_sent = c.fin_out = c.fin_sent = c.fin_acked = c.fin_in = 0
    c.retries = c.dup_acks = c.ack_owed = c.ack_at = c.ack_now = c.tw_at = 0
    c.wnd = np.int64(u16(pkt, t + TCP_WIN))   # a SYN's window is never scaled
    c.rto, c.rto_at, c.opened = st.rto_initial, 0, now
    _syn_options(pkt, t, off, c)
    st.tcp_accepted += 1
    return slot


@njit(**JIT)
def _find(conns, ip, port, my_port):
    for i in range(conns.shape[0]):
        c = conns[i]
        if c.state != CLOSED and c.peer_port == port and c.peer_ip == ip and c.port == my_port:
            return i
    return -1


@njit(**JIT)
def _reset_reply(pkt, t, dlen, flags, my_mac, ident):
    """Turn a segment that belongs to no connection into the RST that answers it, in place."""
    seq, ack = np.int64(u32(pkt, t + TCP_SEQ)), np.int64(u32(pkt, t + TCP_ACK))
    sport, dport = u16(pkt, t + TCP_SPORT), u16(pkt, t + TCP_DPORT)
    peer, me = np.int64(u32(pkt, IP_SRC)), np.int64(u32(pkt, IP_SRC + 4))
    put_mac(pkt, ETH_DST, get_mac(pkt, ETH_SRC))
    put_mac(pkt, ETH_SRC, my_mac)
    ip_header(pkt, ident, PROTO_TCP, IP_HLEN + TCP_HLEN, me, peer)
    t = ETH_HLEN + IP_HLEN
    put16(pkt, t + TCP_SPORT, dport)
    put16(pkt, t + TCP_DPORT, sport)
    if flags & ACK:
        put32(pkt, t + TCP_SEQ, np.uint64(ack))
        put32(pkt, t + TCP_ACK, np.uint64(0))
        out = RST
    else:
        put32(pkt, t + TCP_SEQ, np.uint64(0))
        put32(pkt, t + TCP_ACK, np.uint64((seq + dlen + (1 if flags & SYN else 0)
                                           + (1 if flags & FIN else 0)) & M32))
        out = RST | ACK
    pkt[t + TCP_OFF], pkt[t + TCP_FLAGS] = 5 << 4, out
    put16(pkt, t + TCP_WIN, np.uint64(0))
    put16(pkt, t + TCP_URG, np.uint64(0))
    _checksum(pkt, TCP_HLEN)


@njit(**JIT)
def _checksum(pkt, n):
    """Set the checksum of the TCP segment of ``n`` bytes behind a 20-byte IPv4 header."""
    t = ETH_HLEN + IP_HLEN
    put16(pkt, t + TCP_CSUM, np.uint64(0))
    s = pseudo_sum(pkt, PROTO_TCP, n) + ones_sum(pkt, t, n)
    put16(pkt, t + TCP_CSUM, np.uint64(~fold(s) & 0xFFFF))


@njit(**JIT)
def _on_ack(st, c, ack_off, win, dlen, now):
    """Process the acknowledgement and window of an acceptable segment."""
    top = c.nxt + (1 if c.fin_sent else 0)
    if ack_off > top:       # acknowledges what we never sent
        c.ack_now = 1
        st.tcp_out_of_window += 1
        return False
    if ack_off > c.una:
        data_acked = min(ack_off, c.end)
        c.una = data_acked
        if c.fin_sent and ack_off == c.end + 1:
            c.fin_acked = 1
        c.retries, c.dup_acks, c.rto = 0, 0, st.rto_initial
        c.rto_at = now + c.rto if c.una < c.nxt or (c.fin_sent and not c.fin_acked) else 0
    elif ack_off == c.una and dlen == 0 and c.una < c.nxt and (win << c.shift) == c.wnd:
        c.dup_acks += 1
        if c.dup_acks == 3:  # fast retransmit: go back to the first unacknowledged byte
            c.nxt = c.una
            st.tcp_fast_retransmits += 1
    if ack_off >= c.una:
        c.wnd = win << c.shift
    return True


@njit(**JIT)
def _on_data(st, c, ring, pkt, d, seg, dlen, fin):
    """Take a segment's data (in order only) and FIN into the receive ring."""
    if dlen == 0 and not fin:
        return
    if seg > c.got:             # a gap before it: drop, and say what we still need
        st.tcp_out_of_order += 1
        c.ack_now = 1
        return
    skip = c.got - seg
    if skip >= dlen and not (fin and skip == dlen and not c.fin_in):
        if dlen > 0 or fin:
            st.tcp_duplicates += 1
            c.ack_now = 1
        return
    room = ring.size - (c.got - c.used)
    take = min(dlen - skip, room)
    at = c.got % ring.size
    first = min(take, ring.size - at)
    copy_into(ring[at:at + first], pkt[d + skip:d + skip + first])
    copy_into(ring[0:take - first], pkt[d + skip + first:d + skip + take])
    c.got += take
    st.tcp_bytes_in += take
    if take > 0:
        c.ack_owed += 1
        if c.ack_owed == 1:
            c.ack_at = st.now + st.ack_delay
        if c.ack_owed >= 2:
            c.ack_now = 1
    if take < dlen - skip:
        st.tcp_out_of_window += 1   # beyond our window: the peer sends it again
        c.ack_now = 1
    elif fin and not c.fin_in:
        c.fin_in = 1
        c.ack_now = 1
        if c.state == ESTABLISHED:
            c.state = CLOSE_WAIT
        elif c.state == FIN_WAIT_1:
            c.state = TIME_WAIT if c.fin_acked else CLOSING
        elif c.state == FIN_WAIT_2:
            c.state = TIME_WAIT
        if c.state == TIME_WAIT:
            c.tw_at = st.now + st.time_wait


@njit(**JIT)
def tcp_input(st, conns, rxb, pkt, ihl, total):
    """Handle a TCP segment (the IPv4 header already checked): CONSUMED, or REPLY when
    ``pkt`` now holds the RST that answers it."""
    t = ETH_HLEN + ihl
    n = total - ihl
    if n < TCP_HLEN:
        st.tcp_bad += 1
        return CONSUMED
    off = np.int64(pkt[t + TCP_OFF] >> 4) * 4
    if off < TCP_HLEN or off > n:
        st.tcp_bad += 1
        return CONSUMED
    if fold(pseudo_sum(pkt, PROTO_TCP, n) + ones_sum(pkt, t, n)) != 0xFFFF:
        st.tcp_bad_checksum += 1
        return CONSUMED
    st.tcp_segments_in += 1
    flags = np.int64(pkt[t + TCP_FLAGS])
    dlen = n - off
    ip, port, my_port = np.int64(u32(pkt, IP_SRC)), np.int64(u16(pkt, t + TCP_SPORT)), \
        np.int64(u16(pkt, t + TCP_DPORT))
    i = _find(conns, ip, port, my_port)
    if i >= 0 and conns[i].state == TIME_WAIT and flags & SYN and not flags & ACK:
        free_slot(conns[i], st)          # a new connection from the same port
        i = -1
    if i < 0:
        if flags & RST:
            return CONSUMED
        if flags & SYN and not flags & (ACK | FIN) and my_port == st.listen_port:
            if _accept(st, conns, pkt, t, off, st.now) < 0:
                st.tcp_syn_refused += 1
            return CONSUMED
        st.tcp_no_listener += 1
        st.tcp_resets_out += 1
        st.ip_id += 1
        _reset_reply(pkt, t, dlen, flags, st.mac, st.ip_id)
        return REPLY
    c = conns[i]
    seq, win = np.int64(u32(pkt, t + TCP_SEQ)), np.int64(u16(pkt, t + TCP_WIN))
    seg = seq_off(seq, c.irs + 1)
    if c.state == SYN_RCVD and flags & SYN and not flags & ACK:
        c.syn_sent = 0                   # our SYN-ACK was lost: send it again
        return CONSUMED
    room = max(rxb.shape[1] - (c.got - c.used), 1)
    ahead = seg - c.got        # < 0: (partly) old data, counted as duplicates in _on_data
    if flags & RST:
        if -1 <= ahead <= room:
            free_slot(c, st)
            st.tcp_resets_in += 1
        return CONSUMED
    if ahead > room or ahead < -(1 << 30) or flags & SYN:
        st.tcp_out_of_window += 1        # answered with an ACK saying what we expect
        c.ack_now = 1
        return CONSUMED
    if not flags & ACK:
        st.tcp_bad += 1
        return CONSUMED
    ack_off = seq_off(np.int64(u32(pkt, t + TCP_ACK)), c.iss + 1)
    if c.state == SYN_RCVD:
        if ack_off != 0:
            st.tcp_out_of_window += 1
            return CONSUMED
        c.state, c.rto_at, c.retries = ESTABLISHED, 0, 0
    if not _on_ack(st, c, ack_off, win, dlen, st.now):
        return CONSUMED
    if c.fin_acked:
        if c.state == FIN_WAIT_1:
            c.state = FIN_WAIT_2
        elif c.state == CLOSING:
            c.state, c.tw_at = TIME_WAIT, st.now + st.time_wait
        elif c.state == LAST_ACK:
            free_slot(c, st)
            return CONSUMED
    if c.state in (ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2):
        _on_data(st, c, rxb[i], pkt, t + off, seg, dlen, flags & FIN)
    elif dlen > 0 or flags & FIN:
        if seg + dlen + (1 if flags & FIN else 0) > c.got + c.fin_in:
            st.tcp_out_of_window += 1   # data after the peer's FIN
        c.ack_now = 1
    return CONSUMED


@njit(**JIT)
def tcp_timers(st, conns):
    """Retransmission timeouts, zero-window probes' pacing and TIME_WAIT's end."""
    now = st.now
    for i in range(conns.shape[0]):
        c = conns[i]
        if c.state == CLOSED:
            continue
        if c.state == TIME_WAIT:
            if now >= c.tw_at:
                free_slot(c, st)
            continue
        if c.rto_at == 0 and c.wnd == 0 and c.end > c.nxt and c.una == c.nxt:
            c.rto_at = now + c.rto        # the persist timer: probe the zero window
        if c.rto_at == 0 or now < c.rto_at:
            continue
        c.retries += 1
        if c.retries > (SYN_RETRIES if c.state == SYN_RCVD else MAX_RETRIES):
            free_slot(c, st)
            st.tcp_timeouts += 1
            continue
        c.rto = min(2 * c.rto, st.rto_max)
        c.rto_at = 0                      # re-armed when the segment goes out
        if c.una == c.nxt and c.wnd == 0 and c.end > c.una:
            c.ack_now = 2                 # a window probe
            continue
        st.tcp_retransmits += 1
        c.nxt = c.una                     # go back N
        c.syn_sent = 0 if c.state == SYN_RCVD else c.syn_sent
        c.fin_sent = 0 if not c.fin_acked else c.fin_sent


@njit(**HELPER)
def tcp_wants(c, now, rx_ring_size):
    """Whether connection ``c`` has a segment to send now."""
    if c.state == CLOSED or c.state == TIME_WAIT and not c.ack_now:
        return False
    if c.state == SYN_RCVD:
        return not c.syn_sent
    if c.ack_now or (c.ack_owed > 0 and now >= c.ack_at):
        return True
    if c.nxt < min(c.end, c.una + c.wnd):
        return True
    if c.fin_out and not c.fin_sent and c.nxt == c.end:
        return True
    return rcv_window(c, rx_ring_size) >= c.adv_wnd + 2 * MSS and c.adv_wnd < MSS


@njit(**JIT)
def tcp_segment(st, c, tx_ring, rx_ring_size, pkt, now):
    """Build the next segment of connection ``c`` in ``pkt``: its frame length."""
    t = ETH_HLEN + IP_HLEN
    flags, hlen, n = ACK, TCP_HLEN, 0
    if c.state == SYN_RCVD:
        seq = c.iss
        flags = SYN | ACK
        pkt[t + 20], pkt[t + 21] = OPT_MSS, 4
        put16(pkt, t + 22, np.uint64(MSS))
        hlen = 24
        if c.ws_ok:       # a window-scale offer: we accept with a shift of 0
            pkt[t + 24], pkt[t + 25], pkt[t + 26], pkt[t + 27] = OPT_NOP, OPT_WSCALE, 3, 0
            hlen = 28
        c.syn_sent = 1
    else:
        probe = c.ack_now == 2
        limit = c.una + max(c.wnd, 1 if probe else 0)
        n = max(0, min(min(c.end, limit) - c.nxt, c.mss))
        seq = (c.iss + 1 + c.nxt + (1 if c.fin_sent and c.nxt == c.end else 0)) & M32
        if n > 0:
            size = tx_ring.size
            at = c.nxt % size
            first = min(n, size - at)
            d = t + hlen
            copy_into(pkt[d:d + first], tx_ring[at:at + first])
            copy_into(pkt[d + first:d + n], tx_ring[0:n - first])
            flags |= PSH
            st.tcp_probes += probe
            c.nxt += n
            st.tcp_bytes_out += n
        if c.fin_out and c.nxt == c.end and not c.fin_sent:
            flags |= FIN
            c.fin_sent = 1
            if c.state == ESTABLISHED:
                c.state = FIN_WAIT_1
            elif c.state == CLOSE_WAIT:
                c.state = LAST_ACK
    if (n > 0 or flags & (SYN | FIN)) and c.rto_at == 0:
        c.rto_at = now + c.rto
    put16(pkt, t + TCP_SPORT, np.uint64(c.port))
    put16(pkt, t + TCP_DPORT, np.uint64(c.peer_port))
    put32(pkt, t + TCP_SEQ, np.uint64(seq))
    put32(pkt, t + TCP_ACK, np.uint64((c.irs + 1 + c.got + c.fin_in) & M32))
    pkt[t + TCP_OFF], pkt[t + TCP_FLAGS] = (hlen // 4) << 4, flags
    c.adv_wnd = rcv_window(c, rx_ring_size)
    put16(pkt, t + TCP_WIN, np.uint64(c.adv_wnd))
    put16(pkt, t + TCP_URG, np.uint64(0))
    c.ack_now = c.ack_owed = 0
    put_mac(pkt, ETH_DST, c.peer_mac)
    put_mac(pkt, ETH_SRC, st.mac)
    put16(pkt, ETH_TYPE, np.uint64(TYPE_IPV4))
    st.ip_id += 1
    ip_header(pkt, st.ip_id, PROTO_TCP, IP_HLEN + hlen + n, st.ip, c.peer_ip)
    _checksum(pkt, hlen + n)
    st.tcp_segments_out += 1
    return ETH_HLEN + IP_HLEN + hlen + n


# --- what the application sees of a connection (its socket) -------------------------

@njit(**HELPER)
def sock_open(c):
    """Whether the application may read and write the connection."""
    return c.state == ESTABLISHED or c.state == CLOSE_WAIT


@njit(**HELPER)
def sock_readable(c):
    """Bytes received and not yet consumed."""
    return c.got - c.used


@njit(**HELPER)
def sock_byte(c, ring, i):
    """Byte ``i`` of what is readable."""
    return ring[(c.used + i) % ring.size]


@njit(**HELPER)
def sock_consume(c, n):
    c.used += n


@njit(**HELPER)
def sock_room(c, ring):
    """Bytes the application may write now."""
    return ring.size - (c.end - c.una)


@njit(**JIT)
def sock_write(c, ring, data):
    """Write as much of ``data`` as there is room for: how many bytes."""
    n = min(data.size, sock_room(c, ring))
    at = c.end % ring.size
    first = min(n, ring.size - at)
    copy_into(ring[at:at + first], data[:first])
    copy_into(ring[0:n - first], data[first:n])
    c.end += n
    return n


@njit(**HELPER)
def sock_close(c):
    """No more data from us: a FIN follows what was written."""
    c.fin_out = 1
