"""Maglev: Google's consistent-hashing load balancer (Eisenbud et al., NSDI 2016), as
safe domain code (the paper's Figure 9).

Per packet: parse the Ethernet / IPv4 / UDP-or-TCP headers into the 5-tuple, look the
flow up in the connection-tracking table (or insert it, with the backend the Maglev
lookup table picks for its hash), rewrite the destination (MAC and IPv4 address, the
header checksum updated) to that backend's, and pass the packet on to transmit.
Malformed packets (non-IPv4, a bad IHL, shorter than their headers, not UDP/TCP) are
dropped and counted.

The lookup table (``M`` = 65537 entries, a prime) is filled from each live backend's
permutation ``(offset + j * skip) mod M`` in turns, so every backend gets ``M/N``
entries give or take one, and removing a backend moves little more than its own
share (:func:`disruption` compares it with a hash-mod-N table).

The application is linked into a domain (``apps/netapp.py``): its state, lookup
table, flow table and backends are regions the kernel grants that domain. The same algorithm, layout and hash in C (no isolation, the DPDK
analog) are in ``experiments/native/maglev.c``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from redleaf_nb.interfaces.net import PKT_BUF
from redleaf_nb.kernel.views import deque_item, deque_len, own_array, own_matrix, state_type

from .netapp import GRANT_BASE, NetApp
from .packet import ETH, HELPER, JIT, csum_replace, pass_on, put16, put32, u16, u32

TABLE_SIZE = 65537            # the Maglev paper's M (a prime)
MAX_PROBE = 8                 # flow-table slots tried before the home slot is evicted
G_STATE, G_LOOKUP, G_FLOWS, G_BACKENDS = range(GRANT_BASE, GRANT_BASE + 4)
IP, MAC, ALIVE = range(3)     # a backend's row
BACKEND_BITS = 24             # a flow slot's second word: sport, dport, proto, backend + 1
BACKEND_MASK = np.uint64((1 << BACKEND_BITS) - 1)
COUNTERS = ("received", "forwarded", "dropped_not_ip", "dropped_bad_ihl", "dropped_short",
            "dropped_not_l4", "dropped_tx_full", "flows_new", "flow_hits", "flows_moved",
            "flows_evicted")
STATE = state_type(**{c: np.int64 for c in COUNTERS})
# drop reasons (negative results of _parse)
NOT_IP, BAD_IHL, SHORT, NOT_L4 = -1, -2, -3, -4
ETHERTYPE_IPV4, UDP, TCP = 0x0800, 17, 6


@njit(**HELPER)
def mix64(x):
    """MurmurHash3's 64-bit finaliser: every input bit reaches every output bit."""
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xFF51AFD7ED558CCD)
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xC4CEB9FE1A85EC53)
    x ^= x >> np.uint64(33)
    return x


@njit(**HELPER)
def flow_hash(addrs, ports):
    """The hash of a 5-tuple packed as (src_ip << 32 | dst_ip, sport << 48 | dport << 32
    | proto << 24)."""
    return mix64(addrs ^ mix64(ports))


@njit(**HELPER)
def _parse(pkt):
    """(0, addrs, ports) for a packet's 5-tuple, or (reason < 0, 0, 0) to drop it."""
    none = np.uint64(0)
    if u16(pkt, 12) != ETHERTYPE_IPV4:
        return NOT_IP, none, none
    ihl = (np.int64(pkt[ETH]) & 0x0F) * 4
    if pkt[ETH] >> 4 != 4 or ihl < 20:
        return BAD_IHL, none, none
    total = np.int64(u16(pkt, ETH + 2))
    if total < ihl + 4 or ETH + total > PKT_BUF:   # no room for the ports, or past the buffer
        return SHORT, none, none
    proto = pkt[ETH + 9]
    if proto != UDP and proto != TCP:
        return NOT_L4, none, none
    l4 = ETH + ihl
    ports = ((u16(pkt, l4) << np.uint64(48)) | (u16(pkt, l4 + 2) << np.uint64(32))
             | (np.uint64(proto) << np.uint64(BACKEND_BITS)))
    addrs = (u32(pkt, ETH + 12) << np.uint64(32)) | u32(pkt, ETH + 16)
    return 0, addrs, ports


@njit(**HELPER)
def _pick(lookup, h):
    return np.int64(lookup[np.int64(h % np.uint64(lookup.shape[0]))])


@njit(**HELPER)
def _backend(st, lookup, flows, backends, addrs, ports):
    """The flow's backend: the one it has (if still alive), else the lookup table's."""
    h = flow_hash(addrs, ports)
    mask = np.uint64(flows.shape[0] - 1)   # a power of two (Maglev.__init__)
    home = np.int64(h & mask)
    for probe in range(MAX_PROBE):
        j = np.int64((h + np.uint64(probe)) & mask)
        tag = flows[j, 1]
        if tag == 0:
            b = _pick(lookup, h)
            flows[j, 0], flows[j, 1] = addrs, ports | np.uint64(b + 1)
            st.flows_new += 1
            return b
        if flows[j, 0] == addrs and (tag & ~BACKEND_MASK) == ports:
            b = np.int64(tag & BACKEND_MASK) - 1
            if backends[b, ALIVE] != 0:
                st.flow_hits += 1
                return b
            b = _pick(lookup, h)   # its backend left: the flow moves, and stays moved
            flows[j, 1] = ports | np.uint64(b + 1)
            st.flows_moved += 1
            return b
    b = _pick(lookup, h)   # every slot near home is taken: the oldest flow there yields
    flows[home, 0], flows[home, 1] = addrs, ports | np.uint64(b + 1)
    st.flows_evicted += 1
    return b


@njit(**HELPER)
def _rewrite(pkt, backends, b):
    """Send the packet to backend ``b``: its MAC and IPv4 address as the destination, the
    IPv4 header checksum updated for the new address."""
    mac, ip = backends[b, MAC], backends[b, IP]
    put16(pkt, 0, mac >> np.uint64(32))
    put32(pkt, 2, mac & np.uint64(0xFFFFFFFF))
    old = u32(pkt, ETH + 16)
    put32(pkt, ETH + 16, ip)
    csum_replace(pkt, old, ip)


@njit(**HELPER)
def _drop(st, reason):
    if reason == NOT_IP:
        st.dropped_not_ip += 1
    elif reason == BAD_IHL:
        st.dropped_bad_ihl += 1
    elif reason == SHORT:
        st.dropped_short += 1
    else:
        st.dropped_not_l4 += 1


@njit(**HELPER)
def _steer(st, lookup, flows, backends, pkt):
    """Steer one packet in place: True to send it on, False to drop it (counted)."""
    st.received += 1
    reason, addrs, ports = _parse(pkt)
    if reason < 0:
        _drop(st, reason)
        return False
    _rewrite(pkt, backends, _backend(st, lookup, flows, backends, addrs, ports))
    return True


@njit(**JIT)
def forward(k, me, rx, tx, spare):
    """Steer every packet in deque ``rx`` to its backend, in place, and move it to ``tx``;
    malformed ones (and any ``tx`` has no room for) go to ``spare``. The count moved to
    ``tx``. ``me``: the domain the app is linked into (unused: its regions are found
    through the running domain's grants)."""
    st = own_array(k, G_STATE, STATE)[0]
    lookup = own_array(k, G_LOOKUP, np.int32)
    flows, backends = own_matrix(k, G_FLOWS, np.uint64), own_matrix(k, G_BACKENDS, np.uint64)
    keep = np.empty(deque_len(k, rx), np.bool_)
    kept = 0
    for i in range(keep.size):
        keep[i] = _steer(st, lookup, flows, backends, deque_item(k, rx, i))
        kept += keep[i]
    sent, full = pass_on(k, rx, tx, spare, keep, kept)
    st.forwarded += sent
    st.dropped_tx_full += full
    return sent


@njit(**JIT)
def populate(k, me):
    """Fill the lookup table from the live backends' permutations, in turns (the Maglev
    paper's Algorithm 1); how many backends are live (0: the table is all -1)."""
    lookup = own_array(k, G_LOOKUP, np.int32)
    backends = own_matrix(k, G_BACKENDS, np.uint64)
    m = lookup.shape[0]
    live = np.nonzero(backends[:, ALIVE])[0]
    lookup[:] = -1
    if live.size == 0:
        return 0
    offset = np.empty(live.size, np.int64)
    skip = np.empty(live.size, np.int64)
    nxt = np.zeros(live.size, np.int64)
    for j in range(live.size):
        name = backends[live[j], IP]
        offset[j] = np.int64(mix64(name ^ np.uint64(0x5BD1E995)) % np.uint64(m))
        skip[j] = np.int64(mix64(name ^ np.uint64(0x27D4EB2F)) % np.uint64(m - 1)) + 1
    filled = 0
    while True:
        for j in range(live.size):
            c = (offset[j] + nxt[j] * skip[j]) % m
            while lookup[c] >= 0:
                nxt[j] += 1
                c = (offset[j] + nxt[j] * skip[j]) % m
            lookup[c] = live[j]
            nxt[j] += 1
            filled += 1
            if filled == m:
                return live.size


def backend_ip(i: int) -> int:
    """Backend ``i``'s address: 10.1.0.0 + i + 1."""
    return (10 << 24) | (1 << 16) | (i + 1)


class Maglev(NetApp):
    """One Maglev instance: its tables (numpy memory the kernel grants the domain it is
    linked into) and the Python-tier control plane (backends, rebuilds, counters).

    ``flows`` is the number of connections to track: the flow table has the next
    power of two at or above twice that many slots (16 bytes each)."""

    name = "maglev"
    functions = (forward, populate)   # what the checker checks
    forward = staticmethod(forward)
    COUNTERS = COUNTERS

    def __init__(self, backends: int = 3, flows: int = 1 << 20, table_size: int = TABLE_SIZE):
        if not 1 <= backends < (1 << BACKEND_BITS) - 1:
            raise ValueError(f"maglev: backends={backends} out of range 1..{(1 << 24) - 2}")
        if not 1 <= flows <= 1 << 26:
            raise ValueError(f"maglev: flows={flows} out of range 1..{1 << 26}")
        if table_size < 2 or any(table_size % p == 0 for p in range(2, int(table_size**.5) + 1)):
            raise ValueError(f"maglev: table_size={table_size} must be a prime (the Maglev "
                             "paper's M; 65537 by default)")
        self.state = np.zeros(1, STATE)
        self.lookup = np.full(table_size, -1, np.int32)
        self.flows = np.zeros((1 << int(np.ceil(np.log2(2 * flows))), 2), np.uint64)
        self.backends = np.zeros((backends, 3), np.uint64)
        ids = np.arange(backends, dtype=np.uint64)
        self.backends[:, IP] = np.uint64(backend_ip(0)) + ids
        self.backends[:, MAC] = np.uint64(0x02_00_00_00_00_00) + ids
        self.backends[:, ALIVE] = 1
        self.rebuild()

    def regions(self) -> dict[int, np.ndarray]:
        return {G_STATE: self.state, G_LOOKUP: self.lookup, G_FLOWS: self.flows,
                G_BACKENDS: self.backends}

    def rebuild(self) -> None:
        """Refill the lookup table from the live backends (established flows keep theirs)."""
        self.control().run_jitted(populate)

    def set_alive(self, backend: int, alive: bool) -> None:
        """Take a backend out (its flows move on their next packet) or bring it back;
        the lookup table is rebuilt."""
        if not 0 <= backend < len(self.backends):
            raise IndexError(f"maglev: backend {backend} out of range 0..{len(self.backends) - 1}")
        self.backends[backend, ALIVE] = int(alive)
        self.rebuild()

    def c_tables(self, counters: np.ndarray) -> tuple:
        """The C side's arguments (experiments/native/maglev.c): the same tables, and
        ``counters`` (int64, in :data:`COUNTERS` order) of its own."""
        return (self.lookup, len(self.lookup), self.flows, len(self.flows), self.backends,
                counters)

    def shares(self) -> np.ndarray:
        """Lookup-table entries per backend."""
        return np.bincount(self.lookup[self.lookup >= 0], minlength=len(self.backends))


def disruption(n: int, table_size: int = TABLE_SIZE, remove: int = 0) -> dict:
    """The fraction of lookup-table entries that change backend when backend ``remove``
    of ``n`` leaves, for Maglev and for a hash-mod-N table (entry j -> j mod N, then
    the surviving N - 1 backends); the share the leaver had is the least any scheme
    must move."""
    if n < 2:
        raise ValueError("disruption: needs at least 2 backends")
    m = Maglev(n, flows=1, table_size=table_size)
    before = m.lookup.copy()
    m.set_alive(remove, False)
    survivors = np.delete(np.arange(n), remove)
    j = np.arange(table_size)
    mod_before, mod_after = j % n, survivors[j % (n - 1)]
    return {"backends": n, "maglev": float((before != m.lookup).mean()),
            "hash_mod_n": float((mod_before != mod_after).mean()),
            "leaver_share": float((before == remove).mean())}

