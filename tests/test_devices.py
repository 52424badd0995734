"""The device models: register and ring semantics, line rate, drops, phase tags, data.

The models run on the CPU's cycle counter; a test makes time pass by moving the
device's start (T0) into the past, so what it may deliver is known exactly.
"""
from __future__ import annotations

import numpy as np
import pytest

from devices import nic as N
from devices import nvme as V
from devices.profiles import NICS, NVMES, nic_profile
from redleaf_nb.datasheets import ixgbe_82599 as X
from redleaf_nb.datasheets import nvme as S
from redleaf_nb.lowlevel.clock import tsc_hz

RING = 16


class Host:
    """What a driver would set up for the NIC: one RX and one TX ring, buffers."""

    def __init__(self, nic: N.Nic82599, ring: int = RING):
        self.nic = nic
        self.rx = np.zeros(2 * ring, np.uint64)
        self.tx = np.zeros(2 * ring, np.uint64)
        self.bufs = np.zeros((2 * ring, 1514), np.uint8)
        for (bal, bah, dlen, head, tail), r in [
                ((X.RDBAL, X.RDBAH, X.RDLEN, X.RDH, X.RDT), self.rx),
                ((X.TDBAL, X.TDBAH, X.TDLEN, X.TDH, X.TDT), self.tx)]:
            nic.write_reg(bal, r.ctypes.data & 0xFFFFFFFF)
            nic.write_reg(bah, r.ctypes.data >> 32)
            nic.write_reg(dlen, ring * 16)
        nic.write_reg(X.RXDCTL, X.DCTL_ENABLE)
        nic.write_reg(X.TXDCTL, X.DCTL_ENABLE)
        nic.write_reg(X.RXCTRL, X.RXCTRL_RXEN)

    def give_rx(self, n: int):
        for i in range(n):
            self.rx[2 * i] = self.bufs[i].ctypes.data
            self.rx[2 * i + 1] = 0
        self.nic.write_reg(X.RDT, n)

    def queue_tx(self, n: int, frame: np.ndarray, eop: bool = True):
        for i in range(n):
            b = self.bufs[RING + i]
            b[:len(frame)] = frame
            cmd = len(frame) | (X.TXD_DEXT | X.TXD_DTYP_DATA | X.TXD_RS | X.TXD_IFCS)
            cmd |= X.TXD_EOP if eop else 0
            self.tx[2 * i] = b.ctypes.data
            self.tx[2 * i + 1] = cmd | ((len(frame) << X.TXD_PAYLEN_SHIFT) << 32)
        self.nic.write_reg(X.TDT, n)


def elapse(dev, cycles: int) -> None:
    """Make ``cycles`` of device time pass before the next step."""
    dev.regs[N.T0] -= int(cycles)


def test_profiles_have_sources_and_the_paper_line_rate():
    assert all(p.source for p in NICS.values()) and all(p.source for p in NVMES.values())
    assert nic_profile("x520").packets_per_second(64) == pytest.approx(14.88e6, rel=1e-3)
    with pytest.raises(KeyError, match="known: x520"):
        nic_profile("e1000")


def test_udp_frame_is_a_valid_ipv4_udp_frame():
    f = N.udp_frame(64)
    assert len(f) == 64 and f[12] == 0x08 and f[13] == 0x00 and f[23] == 17
    assert (int(f[16]) << 8 | f[17]) == 64 - 14        # IPv4 total length
    words = f[14:34].view(">u2").astype(np.uint32)
    s = int(words.sum())
    assert (s & 0xFFFF) + (s >> 16) == 0xFFFF           # header checksum verifies
    with pytest.raises(ValueError, match="out of range 60..1514"):
        N.udp_frame(2000)


def test_reset_clears_the_rings_and_keeps_the_link_up():
    nic = N.Nic82599()
    Host(nic)
    nic.write_reg(X.CTRL, X.CTRL_RST)
    assert nic.read_reg(X.CTRL) & X.CTRL_RST == 0
    assert nic.read_reg(X.RDLEN) == 0 and nic.read_reg(X.TDT) == 0
    assert nic.read_reg(X.STATUS) & X.STATUS_LU


def test_rx_fills_only_the_descriptors_software_gave_and_counts_the_rest_as_missed():
    nic = N.Nic82599("x520", 64)
    host = Host(nic)
    host.give_rx(5)
    nic.start_clock()
    cpp = nic.regs[N.CPP_FP] / (1 << N.FP)
    elapse(nic, 100 * cpp)
    N.nic_step(nic.mmio)
    offered = nic.regs[N.RX_OFFERED_FP]
    s = nic.stats()
    assert s["rx_packets"] == 5 and nic.read_reg(X.RDH) == 5
    assert s["rx_packets"] + s["rx_missed"] == offered >= 100     # every frame counted
    for i in range(5):
        status = int(host.rx[2 * i + 1])
        assert status & X.RXD_DD and status & X.RXD_EOP and status >> 32 == 64
        assert (host.bufs[i, :64] == nic.frame).all()
    assert int(host.rx[2 * 5 + 1]) == 0                           # untouched: not given


def test_rx_offers_frames_exactly_at_line_rate_of_device_time():
    nic = N.Nic82599("x520", 64)
    host = Host(nic)
    host.give_rx(RING - 1)
    nic.start_clock()
    for _ in range(3):
        N.nic_step(nic.mmio)
        now, cpp = int(nic.regs[N.NOW]), int(nic.regs[N.CPP_FP])
        offered = (now << N.FP) // cpp           # frames the wire brought by `now`
        s = nic.stats()
        assert s["rx_packets"] + s["rx_missed"] == offered
        assert s["rx_packets"] <= RING - 1


def test_tx_drains_at_line_rate_and_writes_back_dd():
    nic = N.Nic82599("x520", 64, rx_traffic=False)
    host = Host(nic)
    nic.start_clock()
    N.nic_step(nic.mmio)
    start = int(nic.regs[N.NOW])
    host.queue_tx(10, nic.frame)
    N.nic_step(nic.mmio)
    cpp = nic.regs[N.CPP_FP] / (1 << N.FP)
    frame_times = (int(nic.regs[N.NOW]) - start) / cpp
    assert nic.stats()["tx_packets"] <= min(10, frame_times + 1)
    elapse(nic, 20 * cpp)
    N.nic_step(nic.mmio)
    s = nic.stats()
    assert s["tx_packets"] == 10 and s["tx_bytes"] == 640 and nic.read_reg(X.TDH) == 10
    assert all((int(host.tx[2 * i + 1]) >> 32) & X.TXD_DD for i in range(10))
    assert s["rx_packets"] == s["rx_missed"] == 0    # no traffic offered to us


def test_tx_banks_no_credit_while_idle():
    nic = N.Nic82599("x520", 64, rx_traffic=False)
    host = Host(nic)
    nic.start_clock()
    cpp = nic.regs[N.CPP_FP] / (1 << N.FP)
    elapse(nic, 100_000 * cpp)
    N.nic_step(nic.mmio)                      # the wire idles for 100,000 frame times
    idle_end = int(nic.regs[N.NOW])
    host.queue_tx(RING - 1, nic.frame)
    N.nic_step(nic.mmio)
    busy = (int(nic.regs[N.NOW]) - idle_end) / cpp
    assert nic.stats()["tx_packets"] <= busy + 1   # a burst may not use the idle time


def test_tx_descriptor_without_eop_is_an_error_not_a_packet():
    nic = N.Nic82599("unlimited", 64, rx_traffic=False)
    host = Host(nic)
    nic.start_clock()
    host.queue_tx(3, nic.frame, eop=False)
    N.nic_step(nic.mmio)
    assert nic.stats()["tx_packets"] == 0 and nic.stats()["tx_errors"] == 3


def test_quiesce_stops_dma():
    nic = N.Nic82599("unlimited", 64)
    host = Host(nic)
    host.give_rx(4)
    nic.quiesce()
    nic.start_clock()
    N.nic_step(nic.mmio)
    assert nic.stats()["rx_packets"] == 0 and (host.rx[1::2] == 0).all()


# --- NVMe ----------------------------------------------------------------------

class NvmeHost:
    """A minimal host for the drive: admin queue, one I/O queue pair, data pages."""

    def __init__(self, ssd: V.NvmeSsd, entries: int = 4):
        self.ssd, self.n = ssd, entries
        self.asq, self.acq = np.zeros(8 * 8, np.uint64), np.zeros(8 * 2, np.uint64)
        ssd.write_reg(S.CC, 0)
        ssd.write_reg(S.AQA, 7 | (7 << 16))
        ssd.write_reg(S.ASQ, self.asq.ctypes.data)
        ssd.write_reg(S.ACQ, self.acq.ctypes.data)
        ssd.write_reg(S.CC, S.CC_EN)
        self.atail = 0
        self.sq, self.cq = np.zeros(entries * 8, np.uint64), np.zeros(entries * 2, np.uint64)
        self.admin(S.ADMIN_CREATE_CQ, self.cq.ctypes.data, 1 | ((entries - 1) << 16))
        self.admin(S.ADMIN_CREATE_SQ, self.sq.ctypes.data, 1 | ((entries - 1) << 16))
        self.tail = self.head = 0
        self.phase = 1
        self.pages = np.zeros((64, 4096), np.uint8)

    def admin(self, op, prp1, cdw10):
        sqe = self.asq[self.atail * 8:(self.atail + 1) * 8]
        sqe[:] = 0
        sqe[0], sqe[3], sqe[5] = op | (self.atail << 16), prp1, cdw10
        self.atail += 1
        self.ssd.write_reg(S.SQ0TDBL, self.atail)
        dw3 = int(self.acq[(self.atail - 1) * 2 + 1]) >> 32
        assert (dw3 >> 16) & 1 == 1 and dw3 >> 17 == 0, "admin command failed"

    def submit(self, op, block, page, nlb=8):
        sqe = self.sq[self.tail * 8:(self.tail + 1) * 8]
        sqe[:] = 0
        sqe[0] = op | (self.tail << 16) | (1 << 32)
        sqe[3], sqe[5], sqe[6] = self.pages[page].ctypes.data, block * 8, nlb - 1
        self.tail = (self.tail + 1) % self.n
        self.ssd.regs[S.SQ1TDBL] = self.tail

    def reap(self):
        """(cid, status, phase) of every new completion, ringing the CQ doorbell."""
        out = []
        while True:
            dw3 = int(self.cq[self.head * 2 + 1]) >> 32
            if (dw3 >> 16) & 1 != self.phase:
                break
            out.append((dw3 & 0xFFFF, dw3 >> 17, self.phase))
            self.head += 1
            if self.head == self.n:
                self.head, self.phase = 0, 1 - self.phase
        self.ssd.regs[S.CQ1HDBL] = self.head
        return out


def run_for(ssd, cycles):
    ssd.regs[V.T0] -= int(cycles)
    V.nvme_step(ssd.mmio)


def test_identify_reports_the_namespace_size():
    ssd = V.NvmeSsd("p3700")
    host = NvmeHost(ssd)
    page = np.zeros(512, np.int64)
    host.admin(S.ADMIN_IDENTIFY, page.ctypes.data, 0)
    assert page[0] == ssd.profile.nblocks * 8


def test_blocks_written_read_back_and_phase_tags_flip_on_wrap():
    ssd = V.NvmeSsd("unlimited")
    host = NvmeHost(ssd, entries=4)
    ssd.start_clock()
    phases = []
    for block in range(10):            # 10 commands through a 4-entry queue: it wraps
        host.pages[block] = block + 1
        host.submit(S.OP_WRITE, block, block)
        V.nvme_step(ssd.mmio)
        done = host.reap()
        assert [d[0] for d in done] == [(host.tail - 1) % 4] and done[0][1] == 0
        phases.append(done[0][2])
    assert phases == [1, 1, 1, 1, 0, 0, 0, 0, 1, 1]
    assert all((ssd.blocks[b] == b + 1).all() for b in range(10))
    host.pages[:10] = 0
    for block in range(10):
        host.submit(S.OP_READ, block, block)
        V.nvme_step(ssd.mmio)
        assert host.reap()[0][1] == 0
    assert all((host.pages[b] == b + 1).all() for b in range(10))
    assert ssd.stats()["writes"] == 10 and ssd.stats()["reads"] == 10


def test_bad_commands_complete_with_an_error_status():
    ssd = V.NvmeSsd("unlimited")
    host = NvmeHost(ssd)
    ssd.start_clock()
    host.submit(S.OP_READ, ssd.profile.nblocks + 5, 0)     # beyond the namespace
    host.submit(S.OP_READ, 0, 0, nlb=3)                    # not one 4 KiB block
    V.nvme_step(ssd.mmio)
    assert [d[1] for d in host.reap()] == [S.SC_LBA_RANGE, S.SC_LBA_RANGE]
    assert ssd.stats()["errors"] == 2


def test_a_full_completion_queue_holds_completions_back():
    ssd = V.NvmeSsd("unlimited")
    host = NvmeHost(ssd, entries=4)
    ssd.start_clock()
    for b in range(3):
        host.submit(S.OP_WRITE, b, b)
    V.nvme_step(ssd.mmio)
    assert ssd.stats()["writes"] == 3          # 3 CQ slots used: the 4-entry CQ is full
    host.submit(S.OP_WRITE, 3, 3)
    V.nvme_step(ssd.mmio)
    assert ssd.stats()["writes"] == 3 and ssd.stats()["in_flight"] == 1
    assert len(host.reap()) == 3
    V.nvme_step(ssd.mmio)
    assert ssd.stats()["writes"] == 4 and len(host.reap()) == 1


def test_commands_complete_after_the_latency_and_no_faster_than_the_iops():
    ssd = V.NvmeSsd("p3700")
    host = NvmeHost(ssd, entries=64)
    ssd.start_clock()
    for b in range(40):
        host.submit(S.OP_READ, b, b % 64)
    V.nvme_step(ssd.mmio)
    fetched = int(ssd.regs[V.NOW])
    assert ssd.stats()["reads"] == 0           # 20 us latency: nothing is done yet
    svc, lat = int(ssd.regs[V.RD_SVC]), int(ssd.regs[V.RD_LAT])
    assert svc == int(tsc_hz() / 460_000) and lat == int(20e-6 * tsc_hz())
    run_for(ssd, lat + 10 * svc)
    # the k-th command completes at fetch + k service slots + the latency
    expected = min(40, (int(ssd.regs[V.NOW]) - fetched - lat) // svc)
    assert ssd.stats()["reads"] == expected


def test_device_time_excludes_the_model_cycles():
    ssd = V.NvmeSsd("unlimited")
    NvmeHost(ssd)
    ssd.start_clock()
    for _ in range(100):
        V.nvme_step(ssd.mmio)
    s = ssd.stats()
    assert s["device_cycles"] > 0 and s["device_steps"] == 100
