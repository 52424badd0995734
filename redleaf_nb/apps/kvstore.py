"""A MICA-like key-value store on the NIC, as safe domain code (the paper's Figure 10).

Requests arrive as UDP packets (the wire format of ``redleaf_nb/datasheets/kvwire.py``)
and each is answered in its own buffer, sent back out. The store is an open-addressing
table with linear probing over FNV-1a hashes of the keys (as the paper's), fixed key
and value sizes per table (the fast path the figure measures): ``tags`` (the hash with
its low bit set; 0: empty) and ``slots`` (key then value, one row per entry). No
entry is ever deleted, so a probe ends at the first empty slot; a key finds no room
when the ``MAX_PROBE`` slots from its hash are all taken (a FULL reply, nothing
overwritten).

The request handling is in three layers that do not know each other's business:
the table (``table_find``/``table_get``/``table_set``: keys and values as byte
arrays, no packets), the wire format (``_request``/``_reply``: headers, no table),
and ``serve``, the per-batch function that joins them. The C side
(``experiments/native/kvstore.c``) has the same functions on the same tables.

The general data model (keys up to 250 bytes, values up to 1 MiB in the exchange
heap, flags, CAS, expiry, append/prepend) is :mod:`redleaf_nb.apps.kvdata`.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from redleaf_nb.datasheets.kvwire import (KV_HEADER_BYTES, KV_KEY, KV_KLEN, KV_OP, KV_PORT,
                                          KV_STATUS, KV_VLEN, OP_GET, OP_SET, ST_BAD, ST_FULL,
                                          ST_MISS, ST_OK, UDP_LEN)
from redleaf_nb.kernel.views import (copy_into, deque_item, deque_len, own_array, own_matrix,
                                     same_bytes, state_type)

from .netapp import GRANT_BASE, NetApp
from .packet import ETH, HELPER, JIT, csum_replace, pass_on, put16, u16, u32

MAX_PROBE = 64          # slots a key may be from its hash
KEY_VALUE_SIZES = ((8, 8), (16, 64), (64, 64))   # the paper's <key, value> sizes
G_STATE, G_TAGS, G_SLOTS = range(GRANT_BASE, GRANT_BASE + 3)
COUNTERS = ("requests", "gets", "sets", "hits", "misses", "stored", "full", "bad_requests",
            "not_kv", "dropped_tx_full")
STATE = state_type(**{c: np.int64 for c in COUNTERS}, key_size=np.int64, value_size=np.int64)
NOT_KV, BAD = -1, -2     # what _request finds wrong
FNV_OFFSET, FNV_PRIME = np.uint64(0xCBF29CE484222325), np.uint64(0x100000001B3)


@njit(**HELPER)
def fnv1a(key):
    """FNV-1a, 64-bit, of a key's bytes."""
    h = FNV_OFFSET
    for i in range(key.size):
        h = (h ^ np.uint64(key[i])) * FNV_PRIME
    return h


# --- the table: byte arrays in, rows out; nothing of packets -------------------------

@njit(**HELPER)
def table_find(tags, slots, key, h):
    """(the row holding ``key``, or -1; the first free row on its probe path, or -1)."""
    mask = np.uint64(tags.shape[0] - 1)   # a power of two (KvStore.__init__)
    tag = h | np.uint64(1)
    for probe in range(MAX_PROBE):
        j = np.int64((h + np.uint64(probe)) & mask)
        t = tags[j]
        if t == 0:
            return -1, j
        if t == tag and same_bytes(slots[j, :key.size], key):
            return j, -1
    return -1, -1


@njit(**HELPER)
def table_set(tags, slots, key, value, h):
    """Store ``value`` under ``key`` (new or overwritten): its row, or -1 if full."""
    row, free = table_find(tags, slots, key, h)
    if row < 0:
        if free < 0:
            return -1
        row = free
        tags[row] = h | np.uint64(1)
        copy_into(slots[row, :key.size], key)
    copy_into(slots[row, key.size:], value)
    return row


# --- the wire format: headers in, headers out; nothing of the table ------------------

@njit(**HELPER)
def _request(pkt, key_size, value_size):
    """The op of a well-formed request of this table's sizes; NOT_KV for a packet that is
    not a request to the store (not IPv4/UDP to KV_PORT, or IP options); BAD for one
    that is, but malformed (unknown op, wrong sizes, shorter than it says)."""
    if (u16(pkt, 12) != 0x0800 or pkt[ETH] != 0x45 or pkt[ETH + 9] != 17
            or u16(pkt, 36) != KV_PORT):
        return NOT_KV
    op, klen, vlen = pkt[KV_OP], np.int64(u16(pkt, KV_KLEN)), np.int64(u16(pkt, KV_VLEN))
    payload = np.int64(u16(pkt, ETH + 2)) - 28
    if klen != key_size or payload < KV_HEADER_BYTES + klen + vlen:
        return BAD
    if (op == OP_GET and vlen == 0) or (op == OP_SET and vlen == value_size):
        return np.int64(op)
    return BAD


@njit(**HELPER)
def _swap(pkt, a, b, n):
    for i in range(n):
        pkt[a + i], pkt[b + i] = pkt[b + i], pkt[a + i]


@njit(**HELPER)
def _reply(pkt, status, key_size, value_size):
    """Turn the request in ``pkt`` into its reply: back to the sender, ``status`` set,
    the key kept, ``value_size`` bytes of value after it (already written)."""
    _swap(pkt, 0, 6, 6)             # MAC addresses
    _swap(pkt, ETH + 12, ETH + 16, 4)   # IPv4 addresses (the checksum does not change)
    _swap(pkt, 34, 36, 2)           # UDP ports
    pkt[KV_STATUS] = status
    put16(pkt, KV_VLEN, np.uint64(value_size))
    payload = np.uint64(KV_HEADER_BYTES + key_size + value_size)
    old = u32(pkt, ETH)             # version, IHL, TOS, total length
    put16(pkt, ETH + 2, payload + np.uint64(28))
    csum_replace(pkt, old, u32(pkt, ETH))
    put16(pkt, UDP_LEN, payload + np.uint64(8))
    pkt[UDP_LEN + 2] = pkt[UDP_LEN + 3] = 0   # no UDP checksum (optional in IPv4)


# --- the two joined ----------------------------------------------------------------

@njit(**HELPER)
def _serve_one(st, tags, slots, pkt):
    """Answer one request in place; False if the packet is not a request to the store."""
    ks, vs = st.key_size, st.value_size
    op = _request(pkt, ks, vs)
    if op == NOT_KV:
        st.not_kv += 1
        return False
    st.requests += 1
    if op == BAD:
        st.bad_requests += 1
        _reply(pkt, ST_BAD, ks, 0)
        return True
    key = pkt[KV_KEY:KV_KEY + ks]
    h = fnv1a(key)
    if op == OP_GET:
        st.gets += 1
        row, _ = table_find(tags, slots, key, h)
        if row < 0:
            st.misses += 1
            _reply(pkt, ST_MISS, ks, 0)
        else:
            st.hits += 1
            copy_into(pkt[KV_KEY + ks:KV_KEY + ks + vs], slots[row, ks:])
            _reply(pkt, ST_OK, ks, vs)
        return True
    st.sets += 1
    if table_set(tags, slots, key, pkt[KV_KEY + ks:KV_KEY + ks + vs], h) < 0:
        st.full += 1
        _reply(pkt, ST_FULL, ks, 0)
    else:
        st.stored += 1
        _reply(pkt, ST_OK, ks, 0)
    return True


@njit(**JIT)
def serve(k, me, rx, tx, spare):
    """Answer every request in deque ``rx`` in place and move the replies to ``tx``;
    packets that are not requests (and replies ``tx`` has no room for) go to ``spare``.
    The count of replies."""
    st = own_array(k, G_STATE, STATE)[0]
    tags, slots = own_array(k, G_TAGS, np.uint64), own_matrix(k, G_SLOTS, np.uint8)
    keep = np.empty(deque_len(k, rx), np.bool_)
    kept = 0
    for i in range(keep.size):
        keep[i] = _serve_one(st, tags, slots, deque_item(k, rx, i))
        kept += keep[i]
    sent, full = pass_on(k, rx, tx, spare, keep, kept)
    st.dropped_tx_full += full
    return sent


@njit(**HELPER)
def bench_pair(i, key, value):
    """Benchmark pair ``i``: the key is ``i`` in 8 little-endian bytes, then bytes j & 0xFF;
    the value's byte j is (i + j) & 0xFF (devices/traffic.py builds the same)."""
    for j in range(key.size):
        key[j] = (i >> (8 * j)) & 0xFF if j < 8 else j & 0xFF
    for j in range(value.size):
        value[j] = (i + j) & 0xFF


@njit(**JIT)
def fill(k, me, first, count):
    """Store benchmark pairs ``first`` .. ``first + count - 1``; how many found room."""
    st = own_array(k, G_STATE, STATE)[0]
    tags, slots = own_array(k, G_TAGS, np.uint64), own_matrix(k, G_SLOTS, np.uint8)
    key, value = np.empty(st.key_size, np.uint8), np.empty(st.value_size, np.uint8)
    stored = 0
    for i in range(first, first + count):
        bench_pair(i, key, value)
        if table_set(tags, slots, key, value, fnv1a(key)) >= 0:
            stored += 1
    return stored


class KvStore(NetApp):
    """One table of ``entries`` slots (a power of two) for keys of ``key_size`` and values
    of ``value_size`` bytes; ``tags`` and ``slots`` take ``entries * (8 + key_size +
    value_size)`` bytes."""

    name = "kvstore"
    functions = (serve, fill)   # what the checker checks
    forward = staticmethod(serve)
    COUNTERS = COUNTERS

    def __init__(self, entries: int = 1 << 20, key_size: int = 16, value_size: int = 64):
        if entries < 2 or entries & (entries - 1) or entries > 1 << 28:
            raise ValueError(f"kvstore: entries={entries} must be a power of two in 2..2**28")
        if not 8 <= key_size <= 250:
            raise ValueError(f"kvstore: key_size={key_size} out of range 8..250")
        if not 1 <= value_size <= 1024:
            raise ValueError(f"kvstore: value_size={value_size} out of range 1..1024 (the "
                             "fast path's values fit one packet; larger values: kvdata)")
        self.key_size, self.value_size = key_size, value_size
        self.state = np.zeros(1, STATE)
        self.state["key_size"], self.state["value_size"] = key_size, value_size
        self.tags = np.zeros(entries, np.uint64)
        self.slots = np.zeros((entries, key_size + value_size), np.uint8)
        self.loaded = 0

    @property
    def nbytes(self) -> int:
        return self.tags.nbytes + self.slots.nbytes

    def regions(self) -> dict[int, np.ndarray]:
        return {G_STATE: self.state, G_TAGS: self.tags, G_SLOTS: self.slots}

    def load(self, count: int) -> int:
        """Store benchmark pairs ``loaded`` .. ``loaded + count - 1`` (keys the load
        generator asks for); how many found room."""
        if count < 0:
            raise ValueError(f"kvstore: load count={count} must be >= 0")
        stored = self.control().run_jitted(fill, self.loaded, count)
        self.loaded += count
        return stored

    def c_tables(self, counters: np.ndarray) -> tuple:
        """The C side's arguments (experiments/native/kvstore.c): the same tables, and
        ``counters`` (int64, in :data:`COUNTERS` order) of its own."""
        return (self.tags, self.slots, len(self.tags), self.key_size, self.value_size,
                counters)
