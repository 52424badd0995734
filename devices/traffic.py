"""Traffic the wire offers a NIC model (``Nic82599(traffic=...)``): frames sent in turn.

These are the peers on the wire, the load generators of the application benchmarks:
packets of many flows for the load balancer, and key-value requests in the wire
format of ``redleaf_nb/datasheets/kvwire.py`` for the key-value store.
"""
from __future__ import annotations

import numpy as np

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
    frames[:, ETH + 10:ETH + 12] = 0
    words = frames[:, ETH:ETH + 20].reshape(count, 10, 2).astype(np.uint32)
    s = (words[:, :, 0] << 8 | words[:, :, 1]).sum(axis=1)
    s = (s & 0xFFFF) + (s >> 16)
    s = ~((s & 0xFFFF) + (s >> 16)) & 0xFFFF
    frames[:, ETH + 10], frames[:, ETH + 11] = s >> 8, s & 0xFF
    return frames
