"""Traffic the wire offers a NIC model (``Nic82599(traffic=...)``): frames sent in turn.

These are the peers on the wire, the load generators of the application benchmarks:
packets of many flows for the load balancer, and key-value requests in the wire
format of ``redleaf_nb/datasheets/kvwire.py`` for the key-value store.
"""
from __future__ import annotations

import numpy as np

from redleaf_nb.datasheets import kvwire as kw

from .nic import udp_frame

ETH = 14   # the IPv4 header follows the Ethernet header


def flow_frames(flows: int, count: int, pkt_size: int = 64, seed: int = 0) -> np.ndarray:
    """``count`` UDP frames of ``pkt_size`` bytes, each from one of ``flows`` flows drawn
    uniformly at random (flow f: source 172.16.0.0 + f // 65536, source port f % 65536),
    to the load balancer's virtual address: the traffic a Maglev benchmark offers
    (``Nic82599(traffic=...)``). Valid IPv4 header checksums."""
    if not 1 <= flows <= 1 << 32:
        raise ValueError(f"flow_frames: flows={flows} out of range 1..2**32")
    f = np.random.default_rng(seed).integers(0, flows, count, dtype=np.uint64)
    frames = np.tile(udp_frame(pkt_size), (count, 1))
    src = np.uint64(0xAC100000) + (f >> np.uint64(16))
    for i in range(4):
        frames[:, ETH + 12 + i] = (src >> np.uint64(8 * (3 - i))) & np.uint64(0xFF)
    port = f & np.uint64(0xFFFF)
    frames[:, ETH + 20], frames[:, ETH + 21] = port >> np.uint64(8), port & np.uint64(0xFF)
    _checksum(frames)
    return frames


def kv_requests(key_size: int, value_size: int, keys: int, count: int,
                get_fraction: float = 0.9, seed: int = 0) -> np.ndarray:
    """``count`` key-value requests (redleaf_nb/datasheets/kvwire.py) for benchmark keys
    drawn uniformly from ``0 .. keys - 1``: GETs with probability ``get_fraction``, else
    SETs of the key's benchmark value (the store's ``bench_pair``: key ``i`` is ``i`` in 8
    little-endian bytes, then bytes j & 0xFF; value byte j is (i + j) & 0xFF). Every frame
    has room for a SET (``42 + 8 + key_size + value_size`` bytes, at least 60); a GET's
    IPv4 length covers only its header and key."""
    if not 0.0 <= get_fraction <= 1.0:
        raise ValueError(f"kv_requests: get_fraction={get_fraction} out of range 0..1")
    if key_size < 8 or keys < 1:
        raise ValueError("kv_requests: key_size must be >= 8 and keys >= 1")
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, keys, count, dtype=np.uint64)
    sets = rng.random(count) >= get_fraction
    size = max(kw.KV_KEY + key_size + value_size, 60)
    frames = np.tile(udp_frame(size), (count, 1))
    frames[:, 36], frames[:, 37] = kw.KV_PORT >> 8, kw.KV_PORT & 0xFF
    frames[:, kw.KV_PAYLOAD:] = 0
    frames[:, kw.KV_OP] = np.where(sets, kw.OP_SET, kw.OP_GET)
    frames[:, kw.KV_KLEN:kw.KV_KLEN + 2] = (key_size >> 8, key_size & 0xFF)
    vlen = np.where(sets, value_size, 0)
    frames[:, kw.KV_VLEN], frames[:, kw.KV_VLEN + 1] = vlen >> 8, vlen & 0xFF
    j = np.arange(key_size, dtype=np.uint64)
    key = np.where(j < 8, (ids[:, None] >> (np.uint64(8) * np.minimum(j, 7))) & np.uint64(0xFF),
                   j & np.uint64(0xFF))
    frames[:, kw.KV_KEY:kw.KV_KEY + key_size] = key
    v = (ids[:, None] + np.arange(value_size, dtype=np.uint64)) & np.uint64(0xFF)
    frames[:, kw.KV_KEY + key_size:kw.KV_KEY + key_size + value_size] = np.where(
        sets[:, None], v, 0)
    ip_len = 28 + kw.KV_HEADER_BYTES + key_size + vlen
    _set_lengths(frames, ip_len)
    return frames


def _set_lengths(frames: np.ndarray, ip_len: np.ndarray) -> None:
    """Each frame's IPv4 total length, UDP length and IPv4 header checksum."""
    frames[:, ETH + 2], frames[:, ETH + 3] = ip_len >> 8, ip_len & 0xFF
    udp = ip_len - 20
    frames[:, 38], frames[:, 39] = udp >> 8, udp & 0xFF
    frames[:, 40:42] = 0
    _checksum(frames)


def _checksum(frames: np.ndarray) -> None:
    """Each frame's IPv4 header checksum, computed afresh."""
    count = len(frames)
    frames[:, ETH + 10:ETH + 12] = 0
    words = frames[:, ETH:ETH + 20].reshape(count, 10, 2).astype(np.uint32)
    s = (words[:, :, 0] << 8 | words[:, :, 1]).sum(axis=1)
    s = (s & 0xFFFF) + (s >> 16)
    s = ~((s & 0xFFFF) + (s >> 16)) & 0xFFFF
    frames[:, ETH + 10], frames[:, ETH + 11] = s >> 8, s & 0xFF
