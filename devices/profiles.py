"""Device profiles: the rates, ring sizes and latencies of the modelled hardware.

One place, with sources, so that a user can model another card or drive by
adding a profile (or passing their own to the device constructor).
"""
from __future__ import annotations

from dataclasses import dataclass

ETH_WIRE_OVERHEAD = 20   # bytes on the wire per frame beyond the frame: preamble 8 + gap 12
ETH_MIN_FRAME = 64       # bytes, including the 4-byte FCS
ETH_MAX_FRAME = 1514     # bytes, without FCS (the paper's largest packet buffer)


@dataclass(frozen=True)
class NicProfile:
    """An Ethernet NIC: line rate and descriptor rings."""

    name: str
    line_rate_gbps: float
    rx_ring: int
    tx_ring: int
    source: str

    def packets_per_second(self, pkt_size: int) -> float:
        """Line rate in frames/s for ``pkt_size``-byte frames (64 B at 10 Gb/s: 14.88 M)."""
        frame = max(pkt_size, ETH_MIN_FRAME) + ETH_WIRE_OVERHEAD
        return self.line_rate_gbps * 1e9 / (8 * frame)


@dataclass(frozen=True)
class NvmeProfile:
    """An NVMe SSD: 4 KiB IOPS capacity, per-command latency, queue limits."""

    name: str
    read_iops: float
    write_iops: float
    read_latency_us: float
    write_latency_us: float
    max_queue_entries: int
    nblocks: int           # 4 KiB blocks the model stores (real data, in RAM)
    source: str


NICS = {
    "x520": NicProfile(
        "Intel 82599 (X520), 10 GbE", 10.0, 512, 512,
        "82599 datasheet; RedLeaf ixgbe driver NUM_RX_DESCS = NUM_TX_DESCS = 512; "
        "paper §6.3: 14.2 Mpps line rate for 64 B (14.88 Mpps theoretical)"),
    "xl710": NicProfile(
        "Intel XL710, 40 GbE (what-if)", 40.0, 512, 512,
        "40 Gb/s line rate; same ring sizes as the x520 profile, for exploration"),
    "unlimited": NicProfile(
        "no wire limit (measures host cost)", float("inf"), 512, 512,
        "a device that is never the bottleneck: its rate is what the host sustains"),
}

NVMES = {
    "p3700": NvmeProfile(
        "Intel DC P3700 400 GB", 460_000, 256_000, 20.0, 20.0, 1024, 1 << 16,
        "paper §6.3: maxima measured 457K read / 256K write IOPS (4 KiB); Intel spec "
        "latency 20 us; RedLeaf QUEUE_DEPTH = 1024"),
    "optane-p4800x": NvmeProfile(
        "Intel Optane P4800X (what-if)", 550_000, 500_000, 10.0, 10.0, 1024, 1 << 16,
        "Intel spec sheet: 550K/500K IOPS 4 KiB random, ~10 us latency"),
    "unlimited": NvmeProfile(
        "no IOPS limit (measures host cost)", float("inf"), float("inf"), 0.0, 0.0, 1024,
        1 << 16, "a drive that is never the bottleneck: its rate is what the host sustains"),
}


def nic_profile(name: str) -> NicProfile:
    if name not in NICS:
        raise KeyError(f"no NIC profile '{name}' (known: {', '.join(NICS)})")
    return NICS[name]


def nvme_profile(name: str) -> NvmeProfile:
    if name not in NVMES:
        raise KeyError(f"no NVMe profile '{name}' (known: {', '.join(NVMES)})")
    return NVMES[name]
