"""Figure 11: transparent recovery of the block driver under a file read and write.

An rv6 program reads, then writes, a file sequentially in 4 KiB blocks on rv6's
file system, which sits on ``membdev`` through its shadow. Once a second the
driver panics inside a request (an injected fault at its ``read`` or ``write``
point, after the request's buffer moved in); the shadow restarts it, replays its
set-up and retries the request, and the program never sees an error.

The program is a jitted loop (it runs as ``init``) that calls rv6's system calls
through their proxies. It runs in slices of ``slice_ms``; windows of one second
with and without a crash are interleaved (round by round, in alternating order,
each phase warmed by an unrecorded 0.3 s before its two windows: the first read
after a stretch of writes runs slow), so that the VM's drift falls on both alike. Each block written carries a stamp
(round, block number) in its first word, and after the run every block of the
file is checked: an acknowledged write that a crash lost would show an old stamp.
"""
from __future__ import annotations

import time

import numba.types as nbt
import numpy as np
import pandas as pd
from numba import njit

from redleaf_nb.apps.rv6 import rv6_class
from redleaf_nb.apps.rv6.layout import BSIZE, O_CREATE, O_RDWR, SEEK_SET, path_bytes
from redleaf_nb.apps.rv6.state import NBUF
from redleaf_nb.apps.rv6.tools import fsck, mkfs
from redleaf_nb.claims import recovery_ratios, recovery_windows
from redleaf_nb.drivers.membdev import MemBDev, MemDisk
from redleaf_nb.experiments import Experiment, Param
from redleaf_nb.interfaces.bdev import Block
from redleaf_nb.interfaces.rv6 import Rv6
from redleaf_nb.kernel import heap as hp
from redleaf_nb.kernel.domain import Kernel
from redleaf_nb.kernel.faults import Fault
from redleaf_nb.kernel.idl import jit_proxy
from redleaf_nb.kernel.proxy import jit_current
from redleaf_nb.kernel.shadow import RestartPolicy, shadow_class
from redleaf_nb.lowlevel.clock import rdtsc, tsc_hz
from redleaf_nb.lowlevel.memory import store
from redleaf_nb.measure import summarize


def _io_loop(read, write, lseek, k, rv6, fd, buf, file_blocks, block, writing, stamp, cycles):
    """Read or write the file block after block from block ``block`` (from the start
    again at its end) for ``cycles``; each written block carries ``stamp`` + its number
    in its first word. Returns (status of a failed call or 0, bytes moved, system calls,
    the block reached, the buffer)."""
    me = jit_current(k)
    done = calls = 0
    end = rdtsc() + cycles
    while rdtsc() < end:
        if writing:
            store(hp.word_address(k, buf, me, True), 0, stamp + block)
            status, n = write(k, rv6, fd, buf, BSIZE)
        else:
            status, ret = read(k, rv6, fd, buf, BSIZE)
            n, buf = ret
        calls += 1
        if status != 0 or n != BSIZE:
            return (status if status != 0 else 1000 - n), done, calls, block, buf
        done += n
        block += 1
        if block == file_blocks:
            block = 0
            status, _ = lseek(k, rv6, fd, 0, SEEK_SET)
    return 0, done, calls, block, buf


_LOOPS: dict = {}


def _compiled_loop(read_t, write_t, lseek_t):
    key = (read_t, write_t, lseek_t)
    if key not in _LOOPS:
        i64 = nbt.int64
        sig = nbt.Tuple((i64,) * 5)(read_t, write_t, lseek_t, *(i64,) * 6, nbt.boolean, i64, i64)
        _LOOPS[key] = njit(sig, cache=True)(_io_loop)
    return _LOOPS[key]


class Setup:
    """membdev, its shadow and rv6 over it, with one file of ``file_mib`` MiB."""

    def __init__(self, file_mib: int, policy: RestartPolicy):
        self.file_blocks = file_mib * (1 << 20) // BSIZE
        nblocks = self.file_blocks + self.file_blocks // 512 + 200
        self.k = k = Kernel(heap_bytes=64 << 20)
        self.disk = MemDisk(nblocks)
        mkfs(self.disk.blocks, ninodes=64)
        k.create("membdev", MemBDev, device=k.add_device("memdisk", self.disk), nblocks=nblocks)
        self.shadow = k.create_shadow("membdev-shadow", "membdev", policy)
        cls = rv6_class(disk_cls=shadow_class(MemBDev.declared(), MemBDev))
        self.rv6 = k.create("rv6", cls, net=None, bdev=None, disk=self.shadow)
        self.fd = int(self.rv6.open(path_bytes("/data"), O_CREATE | O_RDWR))
        self.block = 0     # where the program is in the file
        self.expected = np.zeros(self.file_blocks, np.uint64)   # each block's first word
        self.buf = k.new(Block).handle
        self.proxies = [jit_proxy(Rv6, m, cls.jit_methods[m]) for m in ("read", "write", "lseek")]
        self.loop = _compiled_loop(*(p.type for p in self.proxies))
        self.hz = tsc_hz()

    def run(self, writing: bool, seconds: float, stamp: int = 0):
        """One slice, from where the last one stopped: (bytes, system calls, seconds);
        the program seeing any error is a failure of recovery."""
        k = self.k
        k.heap.h.calls[:] = (0, k.init.id)
        start = self.block
        t0 = time.perf_counter_ns()
        status, done, calls, self.block, self.buf = self.loop(
            *(p.fn for p in self.proxies), k.heap.k, self.rv6.domain.id, self.fd, self.buf,
            self.file_blocks, self.block, writing, stamp, int(seconds * self.hz))
        seconds = (time.perf_counter_ns() - t0) * 1e-9
        k._settle_jitted_deaths("panic in the recovery benchmark")
        if status != 0:
            raise RuntimeError(f"recovery: the program saw an error (status {status}) "
                               f"after {calls} system calls: recovery was not transparent")
        if writing:   # what each block must hold now
            blocks = np.arange(start, start + done // BSIZE) % self.file_blocks
            self.expected[blocks] = np.uint64(stamp) + blocks.astype(np.uint64)
        return done, calls, seconds

    def disk_calls(self) -> int:
        st = self.rv6.domain.jit_state
        return int(st["disk_reads"][0] + st["disk_writes"][0])

    def stamps(self) -> np.ndarray:
        """The first word of every block of the file, read back through rv6."""
        assert self.rv6.lseek(self.fd, 0, SEEK_SET) == 0
        self.block = 0
        out, buf = np.empty(self.file_blocks, np.uint64), self.k.new(Block)
        for i in range(self.file_blocks):
            n, buf = self.rv6.read(self.fd, buf, BSIZE)
            out[i] = buf.get()[:8].view(np.uint64)[0]
        return out


def _window(s: Setup, writing: bool, crash: bool, params, rng, stamp: int, per_second: float):
    """One second in slices; with ``crash``, the driver panics inside it (once, or
    ``crashes_per_second`` times), each at a random request of a random slice. The fault is armed only just before (an armed fault counts
    the hits of its point in a slow path: armed for the whole second, that cost about 10%
    of the reads). The slices' rows (with the restarts in each and their mean time, µs)
    and the window's counts (restarts, crashes under a request, driver calls)."""
    point = "write" if writing else "read"
    nslices = int(round(1000 / params["slice_ms"]))
    strikes = set(rng.choice(nslices, min(params["crashes_per_second"], nslices),
                             replace=False).tolist()) if crash else set()
    per_slice = per_second * params["slice_ms"] / 1000
    stats = s.shadow.domain.impl.stats
    restarts, in_flight, calls = stats.restarts, stats.in_flight, s.disk_calls()
    rows = []
    for i in range(nslices):
        if i in strikes:
            s.k.inject("membdev", Fault("panic", point=point,
                                        after=int(rng.integers(0, max(1, per_slice // 10)))))
        r0 = len(stats.restart_ns)
        done, _, secs = s.run(writing, params["slice_ms"] / 1000, stamp)
        times = stats.restart_ns[r0:]
        rows.append({"slice": i, "mb_per_s": done / secs / 1e6, "seconds": secs, "bytes": done,
                     "restarts": len(times),
                     "restart_us": np.mean(times) / 1e3 if times else np.nan})
    s.k.disarm("membdev")
    return rows, {"window_restarts": stats.restarts - restarts,
                  "window_in_flight": stats.in_flight - in_flight,
                  "window_driver_calls": s.disk_calls() - calls}


def run(params: dict) -> pd.DataFrame:
    """Interleaved one-second windows with and without a crash, reading then writing."""
    s = Setup(params["file_mib"], RestartPolicy(max_restarts=params["max_restarts"],
                                                period=1.0))
    rng = np.random.default_rng(params["seed"])
    while s.expected[-1] == 0:                     # write the whole file once
        s.run(True, 0.1, 1 << 40)
    per_second = {}
    for writing in (False, True):                  # warm-up, and the driver calls a second
        c0 = s.disk_calls()
        secs = s.run(writing, 0.3, 1 << 40)[2]
        per_second[writing] = (s.disk_calls() - c0) / secs
    rows = []
    for rnd in range(params["rounds"]):
        order = (False, True) if rnd % 2 == 0 else (True, False)
        for writing in (False, True):
            s.run(writing, 0.3, (rnd + 2) << 40)   # unrecorded: the phase warm for both windows
            for crash in order:
                slices, counts = _window(s, writing, crash, params, rng, (rnd + 2) << 40,
                                         per_second[writing])
                rows += [{"round": rnd, "phase": "write" if writing else "read",
                          "crashes": "one a second" if crash else "none", **sl, **counts}
                         for sl in slices]
    df = pd.DataFrame(rows)
    df["content_ok"] = bool((s.stamps() == s.expected).all())
    df["fsck_ok"] = fsck(s.disk.blocks).ok
    df["file_mib"] = params["file_mib"]
    df["cache_mib"] = NBUF * BSIZE / (1 << 20)
    return df


def summary(ours: pd.DataFrame) -> pd.DataFrame:
    """Per phase and crash setting: MB/s of the one-second windows (median and IQR over
    rounds), restarts, crashes under a request, driver calls per MB."""
    out = []
    for (phase, crashes), g in recovery_windows(ours).groupby(["phase", "crashes"]):
        est = summarize(g.mb_per_s.to_numpy(), "median")
        out.append({"phase": phase, "crashes": crashes, "mb_per_s": est.value,
                    "mb_per_s_lo": est.lo, "mb_per_s_hi": est.hi, "windows": len(g),
                    "restarts": int(g.restarts.sum()), "in_flight": int(g.in_flight.sum()),
                    "driver_calls_per_mb": g.driver_calls.sum() / (g.bytes.sum() / 1e6)})
    return pd.DataFrame(out)


def restart_times(ours: pd.DataFrame) -> np.ndarray:
    """The restart time of the recoveries, µs (per slice with any: almost always one)."""
    return ours.restart_us.dropna().to_numpy(float)


def plot(ours: pd.DataFrame, paper: pd.DataFrame):
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), gridspec_kw={"width_ratios": [2.2, 1, 1]})
    ax = axes[0]
    last = ours[ours["round"] == ours["round"].max()].copy()
    last["t"] = last.groupby(["phase", "crashes"]).cumcount() * last.seconds.mean()
    for (phase, crashes), g in last.groupby(["phase", "crashes"]):
        ax.plot(g.t, g.mb_per_s, marker=".", label=f"{phase}, crashes: {crashes}",
                ls="-" if crashes == "none" else "--")
        for t in g.t[g.restarts > 0]:
            ax.axvline(t, color="red", alpha=0.3, lw=1)
    ax.set_ylim(bottom=0)
    ax.set(xlabel="time in the window (s)", ylabel="MB/s per slice",
           title="Throughput over one second (last round); red: a restart")
    ax.legend(fontsize=8)
    s = summary(ours)
    ax = axes[1]
    x = np.arange(2)
    for i, crashes in enumerate(("none", "one a second")):
        g = s[s.crashes == crashes].set_index("phase").loc[["read", "write"]]
        ax.bar(x + (i - 0.5) * 0.35, g.mb_per_s, 0.35, label=f"ours, crashes: {crashes}",
               yerr=[g.mb_per_s - g.mb_per_s_lo, g.mb_per_s_hi - g.mb_per_s], capsize=3)
    ref = paper.set_index(["config", "metric"]).value
    for j, metric in enumerate(("sequential read throughput (average)",
                                "sequential write throughput (average)")):
        for i, config in enumerate(("no restarts", "with restarts (crash every 1s)")):
            key = (config, metric)
            if key in ref.index:
                ax.plot(j + (i - 0.5) * 0.35, ref[key], "k_", ms=18, mew=2,
                        label="paper" if (i, j) == (0, 0) else None)
    ax.set_xticks(x, ["read", "write"])
    ax.set(ylabel="MB/s (median of windows, IQR)", title="Average throughput")
    ax.legend(fontsize=7)
    ax = axes[2]
    times = restart_times(ours)
    if len(times):
        sns.histplot(times, ax=ax, bins=20)
        ax.axvline(np.percentile(times, 99), color="red", ls="--", label="p99")
        ax.legend()
    ax.set(xlabel="restart time (µs)", title=f"{len(times)} restarts")
    fig.suptitle("Figure 11: rv6 file system over membdev via its shadow, driver crashed once "
                 "a second (host-bound: no device)")
    fig.tight_layout()
    return fig


def targets(ours: pd.DataFrame) -> dict:
    s = summary(ours).set_index(["phase", "crashes"])
    best, paired = recovery_ratios(ours, "max"), recovery_ratios(ours)
    times = restart_times(ours)
    out = {}
    for phase, paper_rate, limit in (("read", 2164, 5), ("write", 423, 16)):
        plain, crash = s.loc[(phase, "none")], s.loc[(phase, "one a second")]
        out[f"{phase}: MB/s without crashes (target >= {paper_rate})"] = round(plain.mb_per_s)
        for how, r in (("best windows", best[phase]), ("mean of paired rounds", paired[phase])):
            out[f"{phase}: drop with a crash a second, % (target <= {limit}; {how}, "
                "[90% interval])"] = (f"{100 * (1 - r.value):.1f} [{100 * (1 - r.hi):.1f}, "
                                      f"{100 * (1 - r.lo):.1f}]")
        out[f"{phase}: crashes that hit a request in flight"] = (
            f"{crash.in_flight} of {crash.restarts}")
        out[f"{phase}: driver calls per MB"] = round(crash.driver_calls_per_mb)
    if len(times):
        out["restart time p50 / p99, µs (target p99 <= 5000)"] = (
            f"{np.percentile(times, 50):.0f} / {np.percentile(times, 99):.0f}")
    out["file content exact after the run"] = bool(ours.content_ok.all())
    out["fsck clean after the run"] = bool(ours.fsck_ok.all())
    return out


EXPERIMENT = Experiment(
    name="recovery",
    figure="Figure 11",
    title="Transparent recovery: rv6 file read and write with the block driver crashed every "
          "second",
    paper_csv="recovery.csv",
    params=(
        Param("rounds", int, 15, 25, "interleaved rounds of four one-second windows (read and "
              "write, with and without a crash)", low=1, high=100),
        Param("file_mib", int, 16, 64, "file size, MiB (the buffer cache is 1 MiB: at least 8)",
              low=8, high=1024),
        Param("slice_ms", int, 100, 100, "throughput is recorded per slice of this many ms",
              low=10, high=1000),
        Param("crashes_per_second", int, 1, 1, "crashes in a window with crashes (the paper: "
              "1; at most one per slice)", low=1, high=100),
        Param("max_restarts", int, 5, 5, "the shadow's restart intensity (per second)",
              low=1, high=1000),
        Param("seed", int, 11, 11, "where in each window the crash strikes (a random slice, "
              "then a random request in its first tenth)", low=0,
              high=2**31),
    ),
    run=run,
    plot=plot,
    bound="Host cost only: membdev is memory, so every rate is bound by our software.",
    notes=("Each crash is an injected panic inside membdev's read or write, after the "
           "request's buffer moved in (kernel/faults.py); the jitted shadow restarts the "
           "driver (its restart time is measured around Kernel.recreate) and retries the "
           "request, refilling a read buffer that went down with the driver."),
    targets=targets,
    summary=summary,
)
