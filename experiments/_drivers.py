"""Driver benchmarks shared by Figures 6, 7 and 8: one loop, five configurations.

A benchmark run wires a kernel, a device model and one configuration
(redleaf_nb.configs), primes the rings, and runs a jitted loop for a fixed
span of *device time*. Each iteration first lets the device advance (it runs
beside the CPU, as hardware does: delivering, draining, completing what its
profile allows in the time that passed), then makes one ``submit_and_poll``
call through the configuration's entry and recycles the buffers that came
back. The device model's own cycles are measured and excluded from its clock,
so they never count as host time.

Each configuration is run twice: against the device's profile (the rate
achieved here) and against an ``unlimited`` device (the rate our code alone
sustains, the *host rate*). The achieved rate is about the smaller of the host
rate and the device's capacity; a row says which one bound it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit
from numba import types as nbt

from devices.nic import NOW as NIC_NOW
from devices.nic import Nic82599, nic_step, udp_frame
from devices.nvme import NOW as NVME_NOW
from devices.nvme import NvmeSsd, nvme_step
from devices.profiles import nic_profile, nvme_profile
from redleaf_nb import configs
from redleaf_nb.interfaces.net import MAX_BATCH, Net, Packet
from redleaf_nb.interfaces.nvme import BlkReq, NvmeBDev
from redleaf_nb.kernel import heap as hp
from redleaf_nb.lowlevel.clock import rdtsc, tsc_hz
from redleaf_nb.kernel.domain import Kernel
from redleaf_nb.kernel.proxy import CURRENT, DEPTH, jit_current
from redleaf_nb.lowlevel.memory import load, ring_next, store
from redleaf_nb.kernel.rref import RRefDeque
from redleaf_nb.kernel.types import exchangeable

PacketPool = RRefDeque[Packet, 4096]
RequestPool = RRefDeque[BlkReq, 1024]
BOUND_FRACTION = 0.95   # achieved >= 95% of the device's capacity counts as reaching it

# a clock for runs without a device (nullnet): [T0, NOW]
_T0, _NOW = 0, 1


@njit(cache=True)
def wall_clock(clock):
    """The 'device' of a run with no device: only keeps time."""
    store(clock, _NOW, np.int64(rdtsc()) - load(clock, _T0))


@njit(cache=True)
def _recycle(k, me, pool, collect, q, batch):
    """Finished buffers go straight back into the next batch (as RedLeaf's benchmarks
    reuse them); what does not fit waits in the pool, which also tops the batch up."""
    hp.deque_splice(k, collect, q, me, batch)
    hp.deque_splice(k, collect, pool, me, 1 << 30)
    short = batch - hp.deque_len(k, q, me)
    if short > 0:
        hp.deque_splice(k, pool, q, me, short)


def _bench_loop(entry, step, k, target, dev, now_addr, a, b, pool, flag, batch, limit,
                nblocks, next_block):
    """Until the device clock passes ``limit``: let the device advance, make one call,
    recycle what came back. ``a``/``b`` are the call's two deques (packets and
    collect, or submit and collect); ``flag`` is tx or write. With ``nblocks`` > 0
    each finished block request goes on to the next block (sequential I/O)."""
    me = jit_current(k)
    done = calls = status = 0
    while True:
        step(dev)
        if load(now_addr, 0) >= limit:
            break
        status, ret = entry(k, target, a, b, flag)
        if status != 0:
            break
        n, a, b = ret
        done += n
        calls += 1
        for _ in range(n if nblocks > 0 else 0):
            req = hp.deque_pop_front(k, b, me)
            store(hp.word_address(k, req, me, True), 0, next_block)
            next_block = ring_next(next_block, nblocks)
            hp.deque_push_back(k, b, me, req)
        _recycle(k, me, pool, b, a, batch)
    return status, done, calls, a, b


_LOOPS: dict = {}


def _compiled_loop(entry_type):
    """The loop compiled for one entry signature (entry and step reached by pointer)."""
    if entry_type not in _LOOPS:
        i64 = nbt.int64
        step_t = nbt.FunctionType(nbt.none(i64))
        sig = nbt.Tuple((i64,) * 5)(entry_type, step_t, *(i64,) * 7, nbt.boolean, *(i64,) * 4)
        _LOOPS[entry_type] = njit(sig, cache=True)(_bench_loop)
    return _LOOPS[entry_type]


@dataclass
class Run:
    """One timed run: what the host counted and what the device saw."""

    done: int            # packets or requests the benchmark got back
    calls: int
    seconds: float       # device time (the run's span, model cycles excluded)
    device_cycles: int   # cycles spent in the device model
    device: dict         # the device's counters

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0


def _alloc_pool(k, pool_t, owner, count, init):
    """A deque of ``count`` new buffers owned by ``owner``; ``init(i, value)`` fills each."""
    pool_t = exchangeable(pool_t)
    pool = k.heap.alloc(pool_t, owner)
    for i in range(count):
        h = k.heap.alloc(pool_t.child, owner)
        init(i, k.heap.view(h, owner, write=True))
        if hp.deque_push_back(k.heap.k, pool, owner, h) != 0:
            raise RuntimeError("buffer pool overflow")
    return pool


def _deques(k, iface, owner):
    """The two deques a ``submit_and_poll`` call passes, empty, owned by ``owner``."""
    t = iface.__methods__["submit_and_poll"].params[0].type
    return k.heap.alloc(t, owner), k.heap.alloc(t, owner)


def run_net(driver_cls, config: str, tx: bool, batch: int, seconds: float,
            profile: str | None = "x520", pkt_size: int = 64, ring: int = 512) -> Run:
    """One network run; ``profile=None`` runs without a device (nullnet)."""
    hz = tsc_hz()
    k = Kernel(heap_bytes=32 << 20, max_objects=1 << 14)
    if profile is not None:
        dev_obj = Nic82599(nic_profile(profile), pkt_size, hz, rx_traffic=not tx)
        nic = k.add_device("nic", dev_obj)
        dev, step, now_addr = dev_obj.mmio, nic_step, dev_obj.mmio + 8 * NIC_NOW
    else:
        nic, dev_obj = None, np.zeros(2, np.int64)     # the clock: [T0, NOW]
        dev, step, now_addr = dev_obj.ctypes.data, wall_clock, dev_obj.ctypes.data + 8 * _NOW
    e = configs.build(k, config, driver_cls, "net", device=nic, batch=batch, ring=ring)
    k.heap.h.calls[CURRENT], k.heap.h.calls[DEPTH] = e.runs_as, 0
    owner = e.runs_as
    frame = udp_frame(pkt_size)

    def put_frame(i, buf):
        buf[:pkt_size] = frame
    pool = _alloc_pool(k, PacketPool, owner, ring + 3 * MAX_BATCH, put_frame)
    packets, collect = _deques(k, Net, owner)
    if not tx:   # prime the RX ring (the device is not running yet)
        for _ in range(ring // MAX_BATCH + 2):
            hp.deque_splice(k.heap.k, pool, packets, owner, MAX_BATCH)
            status, (_, packets, collect) = e.fn(k.heap.k, e.target, packets, collect,
                                                 False)
            if status != 0:
                raise RuntimeError(f"{config}: priming the RX ring failed ({status})")
    done, calls = _timed_loop(k, e, step, dev, now_addr, lambda: _start(dev_obj), packets,
                              collect, pool, tx, batch, seconds)
    stats = dev_obj.stats() if profile is not None else {"elapsed_cycles": int(dev_obj[_NOW]),
                                                         "device_cycles": 0}
    if tx and profile is not None:
        done = stats["tx_packets"]   # what reached the wire
    return Run(done, calls, stats["elapsed_cycles"] / hz, stats["device_cycles"], stats)


def _timed_loop(k, e, step, dev, now_addr, start, a, b, pool, flag, batch, seconds,
                nblocks=0, first_block=0):
    """Run the benchmark loop for ``seconds`` of device time: (done, calls).

    The device model and the loop are compiled first, before ``start()`` starts the
    device's clock (else compile time would count as device time): the model steps
    a blank register file, and the loop runs once against a clock already past
    its limit, so it calls nothing."""
    loop = _compiled_loop(e.type)
    head = (e.fn, step, k.heap.k, e.target)
    blank = np.zeros(64, np.int64)
    step(blank.ctypes.data)
    loop(*head, blank.ctypes.data, blank.ctypes.data + 8 * _NOW, a, b, pool, flag, batch, -1,
         nblocks, first_block)
    start()
    status, done, calls, a, b = loop(*head, dev, now_addr, a, b, pool, flag, batch,
                                     int(seconds * tsc_hz()), nblocks, first_block)
    if status != 0:
        raise RuntimeError(f"{e.config}: the driver call failed (status {status})")
    k.heap.check_invariants()
    return done, calls


def _start(dev_obj) -> None:
    if isinstance(dev_obj, np.ndarray):
        dev_obj[:] = 0
        dev_obj[_T0] = rdtsc()
    else:
        dev_obj.start_clock()


def run_blk(driver_cls, config: str, write: bool, batch: int, seconds: float,
            profile: str = "p3700", queue_depth: int = 32, queue_entries: int = 1024) -> Run:
    """One NVMe run: ``queue_depth`` requests kept in flight, sequential 4 KiB blocks."""
    hz = tsc_hz()
    k = Kernel(heap_bytes=(queue_depth + 2 * 128) * 8192 + (1 << 20), max_objects=1 << 12)
    ssd = NvmeSsd(nvme_profile(profile), hz)
    e = configs.build(k, config, driver_cls, "bdev", device=k.add_device("nvme", ssd),
                      batch=batch, queue_entries=queue_entries)
    k.heap.h.calls[CURRENT], k.heap.h.calls[DEPTH] = e.runs_as, 0
    owner = e.runs_as

    def number(i, req):
        req["block"] = i   # the requests first go out for blocks 0, 1, 2, ...
    pool = _alloc_pool(k, RequestPool, owner, queue_depth, number)
    nblocks = e.driver.domain.impl.nblocks
    submit, collect = _deques(k, NvmeBDev, owner)
    done, calls = _timed_loop(k, e, nvme_step, ssd.mmio, ssd.mmio + 8 * NVME_NOW,
                              ssd.start_clock, submit, collect, pool, write, batch, seconds,
                              nblocks, queue_depth)
    stats = ssd.stats()
    return Run(done, calls, stats["elapsed_cycles"] / hz, stats["device_cycles"], stats)


# --- sweeps and figures shared by the three experiments -----------------------

def median_run(fn, repeats: int, **kw) -> Run:
    """The run with the median rate of ``repeats`` runs (this VM is noisy)."""
    runs = sorted((fn(**kw) for _ in range(repeats)), key=lambda r: r.rate)
    return runs[len(runs) // 2]


def classify(host_rate: float, capacity: float) -> str:
    """Which limit bound a run: the device (when our code alone sustains at least its
    capacity) or the host. Judged from the host rate, not from the achieved rate,
    so a short run that hit a stall of this VM is not mislabelled."""
    return "device" if np.isfinite(capacity) and host_rate >= capacity else "host"


def against_device(run, repeats: int, profile: str, capacity: float, unit: str,
                   **args) -> tuple[dict, Run]:
    """Run ``run(**args)`` against the device ``profile`` (the achieved rate) and against
    an unlimited device (the host rate): the columns every driver figure shares, and
    the achieved run (for its device counters)."""
    got = median_run(run, repeats, profile=profile, **args)
    host = median_run(run, repeats, profile="unlimited", **args)
    hz = tsc_hz()
    return {"rate": got.rate, "host_rate": host.rate, "capacity": capacity,
            "bound": classify(host.rate, capacity),
            f"host_cycles_per_{unit}": host.seconds * hz / max(host.done, 1),
            f"device_cycles_per_{unit}": got.device_cycles / max(got.done, 1),
            "calls": got.calls, "seconds": got.seconds}, got


def sweep(name: str, directions: tuple, batches: tuple, measure, configurations=configs.CONFIGS):
    """Run ``measure(config, direction, batch) -> dict`` over every combination, with a
    progress bar; a tidy DataFrame of the rows (a batch size given twice runs once)."""
    import pandas as pd
    from tqdm.auto import tqdm
    batches = tuple(dict.fromkeys(batches))
    cases = [(c, d, b) for d in directions for b in batches for c in configurations]
    rows = []
    for config, direction, batch in tqdm(cases, desc=name, unit="run"):
        rows.append({"config": config, "direction": direction, "batch": batch,
                     **measure(config, direction, batch)})
    return pd.DataFrame(rows)


def paper_bars(paper, figure: str, batches, direction_of, scale: float = 1.0):
    """The paper's rows of ``figure`` as bars: config, batch, direction, value.

    The paper's "n/a" batch (Linux) applies to every batch; DPDK, SPDK and
    Linux are named by system; ``direction_of(metric)`` says which panel a row
    belongs to ("both" for rows the paper reports for RX and TX together).
    """
    import pandas as pd
    rows = []
    for r in paper[(paper.figure == figure) & (paper.param_name == "batch")].itertuples():
        if r.unit not in ("Mpps", "IOPS"):
            continue
        config = r.config if r.system.startswith("RedLeaf") else r.system
        config = config.split(" (")[0]
        given = [] if pd.isna(r.param_value) else [float(x) for x in
                                                   str(r.param_value).split(" and ")]
        for b in batches:
            if not given or float(b) in given:   # no batch given ("n/a"): every batch
                rows.append({"config": config, "batch": b, "direction": direction_of(r.metric),
                             "value": r.value / scale})
    return pd.DataFrame(rows, columns=["config", "batch", "direction", "value"])


def plot_rates(ours, paper, *, unit: str, scale: float, title: str, capacity_label: str):
    """Bars per configuration: ours (achieved, coloured by what bound it), our host
    rate, and the paper's (from :func:`paper_bars`); one panel per direction and
    batch; the device's capacity as a dashed line."""
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns
    directions = list(dict.fromkeys(ours.direction))
    batches = list(dict.fromkeys(ours.batch))
    fig, axes = plt.subplots(len(directions), len(batches), squeeze=False, sharey="row",
                             figsize=(5.2 * len(batches), 3.4 * len(directions) + 0.6))
    order = list(dict.fromkeys(list(ours.config) + list(paper.config)))
    legend = {}
    palette = {"ours: device-bound": "#4c72b0", "ours: host-bound": "#dd8452",
               "ours: host rate (no device limit)": "#c8c8c8", "paper (OSDI'20)": "#55a868"}
    for i, direction in enumerate(directions):
        for j, batch in enumerate(batches):
            ax = axes[i][j]
            mine = ours[(ours.direction == direction) & (ours.batch == batch)]
            bars = [pd.DataFrame({"config": mine.config, "rate": mine.rate / scale,
                                  "source": "ours: " + mine.bound + "-bound"})]
            if "host_rate" in mine:
                bars.append(pd.DataFrame({"config": mine.config,
                                          "rate": mine.host_rate / scale,
                                          "source": "ours: host rate (no device limit)"}))
            theirs = paper[(paper.batch == batch)
                           & (paper.direction.isin([direction, "both"]))]
            if len(theirs):
                bars.append(pd.DataFrame({"config": theirs.config, "rate": theirs.value,
                                          "source": "paper (OSDI'20)"}))
            data = pd.concat(bars, ignore_index=True)
            sns.barplot(data, x="config", y="rate", hue="source", order=order,
                        palette=palette, ax=ax, errorbar=None)
            cap = mine.capacity.iloc[0] / scale if "capacity" in mine and len(mine) else np.nan
            if np.isfinite(cap):
                ax.axhline(cap, ls="--", color="k", lw=1)
                ax.annotate(capacity_label, (0.01, cap), xycoords=("axes fraction", "data"),
                            va="bottom", fontsize=7)
            ax.set_yscale("log")   # host rates, device limits and Linux differ 100-fold
            ax.set_title(f"{direction}, batch {batch}", fontsize=10)
            ax.set_xlabel("")
            ax.set_ylabel(f"{unit}, log scale")
            ax.tick_params(axis="x", rotation=30, labelsize=8)
            for h, lab in zip(*ax.get_legend_handles_labels()):
                legend.setdefault(lab, h)
            ax.get_legend().remove()
    fig.suptitle(title, fontsize=11)
    fig.legend(legend.values(), legend.keys(), loc="lower center", ncol=len(legend),
               fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig
