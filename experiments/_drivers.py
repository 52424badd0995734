"""Driver benchmarks shared by Figures 6, 7 and 8: one loop, five configurations.

A benchmark run wires a kernel, a device model and one configuration
(redleaf_nb.configs), primes the rings, and runs a jitted loop for a fixed
span of *device time*. Each iteration first lets the device advance (it runs
beside the CPU, as hardware does: delivering, draining, completing what its
profile allows in the time that passed), then makes one ``submit_and_poll``
call through the configuration's entry and recycles the buffers that came
back. The device model's own cycles are measured and excluded from its clock,
so they never count as host time.

Each configuration is run two ways: against the device's profile (the rate
achieved here) and against an ``unlimited`` device (the rate our code alone
sustains, the *host rate*). The achieved rate is about the smaller of the host
rate and the device's capacity; a row says which one bound it (:func:`classify`).
All the runs of a figure take turns in rounds after a warm-up run each
(:func:`sweep`), so that a slow minute of this VM hits every bar alike.

The DPDK and SPDK rows are C analogs (experiments/native/dpdk_ixgbe.c and
spdk_nvme.c; :func:`run_dpdk`, :func:`run_spdk`): no isolation, no RRefs, the
whole loop in C, one call per run, driving the same device models through the
same registers and rings. The device set-up is the safe driver's own (Python,
untimed); the model is stepped through a numba ``cfunc`` pointer, as the jitted
loop steps it through a first-class function pointer.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numba import njit
from numba import types as nbt

from devices.nic import NOW as NIC_NOW
from devices.nic import Nic82599, nic_step, udp_frame
from devices.nvme import NOW as NVME_NOW
from devices.nvme import NvmeSsd, nvme_step
from devices.profiles import nic_profile, nvme_profile
from redleaf_nb import configs
from redleaf_nb.datasheets import ixgbe_82599, kvwire
from redleaf_nb.datasheets import nvme as nvme_sheet
from redleaf_nb.drivers.ixgbe import Ixgbe
from redleaf_nb.drivers.nvme import Nvme
from redleaf_nb.interfaces.net import MAX_BATCH, PKT_BUF, Net, Packet
from redleaf_nb.interfaces.nvme import BlkReq, NvmeBDev
from redleaf_nb.kernel import heap as hp
from redleaf_nb.lowlevel.clock import rdtsc, tsc_hz
from redleaf_nb.kernel.domain import Kernel
from redleaf_nb.kernel.proxy import CURRENT, DEPTH, jit_current
from redleaf_nb.lowlevel.memory import c_function, load, ring_next, store
from redleaf_nb.measure import Estimate, interleave, summarize
from redleaf_nb.native import build_shared, datasheet_headers
from redleaf_nb.kernel.rref import RRefDeque
from redleaf_nb.kernel.types import exchangeable

PacketPool = RRefDeque[Packet, 4096]
RequestPool = RRefDeque[BlkReq, 1024]
BOUND_FRACTION = 0.95   # achieved >= 95% of the device's capacity counts as reaching it
# a step of the device clock this long (one iteration takes at most a few microseconds)
# means the core was taken away: preemption, not the cost of our code
MAX_GAP_SECONDS = 50e-6

# a clock for runs without a device (nullnet): [T0, NOW]
_T0, _NOW = 0, 1


@njit(cache=True)
def wall_clock(clock):
    """The 'device' of a run with no device: only keeps time."""
    store(clock, _NOW, np.int64(rdtsc()) - load(clock, _T0))


@njit(cache=True)
def recycle(k, me, pool, collect, q, batch):
    """Finished buffers go straight back into the next batch (as RedLeaf's benchmarks
    reuse them); what does not fit waits in the pool, which also tops the batch up."""
    hp.deque_splice(k, collect, q, me, batch)
    hp.deque_splice(k, collect, pool, me, 1 << 30)
    short = batch - hp.deque_len(k, q, me)
    if short > 0:
        hp.deque_splice(k, pool, q, me, short)


@njit(cache=True, inline="always")
def tick(step, dev, now_addr, limit, prev, stolen, max_gap):
    """Let the device advance: (whether the run goes on, the device clock, the stolen
    cycles so far). A step of the clock longer than ``max_gap`` (far longer than any
    iteration) is the VM or the OS taking the core away, not the cost of our code."""
    step(dev)
    now = load(now_addr, 0)
    if now < limit and now - prev > max_gap:
        stolen += now - prev
    return now < limit, now, stolen


def _bench_loop(entry, step, k, target, dev, now_addr, a, b, pool, flag, batch, limit,
                nblocks, next_block, max_gap):
    """Until the device clock passes ``limit``: let the device advance, make one call,
    recycle what came back. ``a``/``b`` are the call's two deques (packets and
    collect, or submit and collect); ``flag`` is tx or write. With ``nblocks`` > 0
    each finished block request goes on to the next block (sequential I/O).

    Also counts the *stolen* cycles: iterations whose device-clock step exceeds
    ``max_gap`` (far longer than any iteration) are the VM or the OS taking the
    core away; the host rate leaves them out (see :attr:`Run.host_rate`)."""
    me = jit_current(k)
    done = calls = status = stolen = 0
    now = load(now_addr, 0)
    while True:
        going, now, stolen = tick(step, dev, now_addr, limit, now, stolen, max_gap)
        if not going:
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
        recycle(k, me, pool, b, a, batch)
    return status, done, calls, a, b, stolen


_LOOPS: dict = {}


def _compiled_loop(entry_type):
    """The loop compiled for one entry signature (entry and step reached by pointer)."""
    if entry_type not in _LOOPS:
        i64 = nbt.int64
        step_t = nbt.FunctionType(nbt.none(i64))
        sig = nbt.Tuple((i64,) * 6)(entry_type, step_t, *(i64,) * 7, nbt.boolean, *(i64,) * 5)
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
    stolen: float = 0.0  # seconds of the run in gaps longer than MAX_GAP_SECONDS

    @classmethod
    def of(cls, done: int, calls: int, stolen_cycles: int, stats: dict, hz: float) -> "Run":
        """A run from the loop's counts and the device's counters (its ``stats()``)."""
        return cls(done, calls, stats["elapsed_cycles"] / hz, stats["device_cycles"], stats,
                   stolen_cycles / hz)

    @property
    def rate(self) -> float:
        """What the run achieved: done per second of device time, gaps included (the
        device ran on through them)."""
        return self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def busy(self) -> float:
        """Seconds of the run in which our code had the core (the gaps left out)."""
        return self.seconds - self.stolen

    @property
    def host_rate(self) -> float:
        """What our code sustains: done per second it had the core."""
        return self.done / self.busy if self.busy > 0 else 0.0


def alloc_pool(k, pool_t, owner, count, init):
    """A deque of ``count`` new buffers owned by ``owner``; ``init(i, value)`` fills each."""
    pool_t = exchangeable(pool_t)
    pool = k.heap.alloc(pool_t, owner)
    for i in range(count):
        h = k.heap.alloc(pool_t.child, owner)
        init(i, k.heap.view(h, owner, write=True))
        if hp.deque_push_back(k.heap.k, pool, owner, h) != 0:
            raise RuntimeError("buffer pool overflow")
    return pool


def deques(k, iface, owner):
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
    pool = alloc_pool(k, PacketPool, owner, ring + 3 * MAX_BATCH, put_frame)
    packets, collect = deques(k, Net, owner)
    if not tx:
        packets, collect = prime_rx(k, e, pool, packets, collect, ring)
    done, calls, stolen = _timed_loop(k, e, step, dev, now_addr, lambda: _start(dev_obj),
                                      packets, collect, pool, tx, batch, seconds)
    stats = dev_obj.stats() if profile is not None else {"elapsed_cycles": int(dev_obj[_NOW]),
                                                         "device_cycles": 0}
    if tx and profile is not None:
        done = stats["tx_packets"]   # what reached the wire
    return Run.of(done, calls, stolen, stats, hz)


def prime_rx(k, e, pool, packets, collect, ring: int):
    """Fill the driver's RX ring from ``pool`` (the device is not running yet): the
    two deques, back from the driver."""
    for _ in range(ring // MAX_BATCH + 2):
        hp.deque_splice(k.heap.k, pool, packets, e.runs_as, MAX_BATCH)
        status, (_, packets, collect) = e.fn(k.heap.k, e.target, packets, collect, False)
        if status != 0:
            raise RuntimeError(f"{e.config}: priming the RX ring failed ({status})")
    return packets, collect


def _timed_loop(k, e, step, dev, now_addr, start, a, b, pool, flag, batch, seconds,
                nblocks=0, first_block=0):
    """Run the benchmark loop for ``seconds`` of device time: (done, calls, stolen cycles).

    The device model and the loop are compiled first, before ``start()`` starts the
    device's clock (else compile time would count as device time): the model steps
    a blank register file, and the loop runs once against a clock already past
    its limit, so it calls nothing."""
    loop = _compiled_loop(e.type)
    head = (e.fn, step, k.heap.k, e.target)
    blank = np.zeros(64, np.int64)
    step(blank.ctypes.data)
    hz = tsc_hz()
    max_gap = int(MAX_GAP_SECONDS * hz)
    loop(*head, blank.ctypes.data, blank.ctypes.data + 8 * _NOW, a, b, pool, flag, batch, -1,
         nblocks, first_block, max_gap)
    start()
    status, done, calls, a, b, stolen = loop(*head, dev, now_addr, a, b, pool, flag, batch,
                                             int(seconds * hz), nblocks, first_block, max_gap)
    if status != 0:
        raise RuntimeError(f"{e.config}: the driver call failed (status {status})")
    k.heap.check_invariants()
    return done, calls, stolen


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
    pool = alloc_pool(k, RequestPool, owner, queue_depth, number)
    nblocks = e.driver.domain.impl.nblocks
    submit, collect = deques(k, NvmeBDev, owner)
    done, calls, stolen = _timed_loop(k, e, nvme_step, ssd.mmio, ssd.mmio + 8 * NVME_NOW,
                              ssd.start_clock, submit, collect, pool, write, batch, seconds,
                              nblocks, queue_depth)
    stats = ssd.stats()
    return Run.of(done, calls, stolen, stats, hz)


# --- the C analogs: DPDK (Figure 6) and SPDK (Figure 8) ---------------------------

NATIVE = Path(__file__).resolve().parent / "native"
NATIVE_FLAGS = ("-O3", "-march=native")   # what numba compiles with: LLVM -O3, this CPU
#: the run function each analog exports (see its source for what the arguments are)
NATIVE_CDEF = {
    "dpdk_ixgbe": """int dpdk_ixgbe_run(void (*step)(int64_t), int64_t *clock, int64_t now_word,
        int64_t *regs, uint8_t *rx_desc, int64_t *rx_slot, uint8_t *tx_desc, int64_t *tx_slot,
        int64_t ring, int64_t *pool, int64_t pool_free, int64_t buf_bytes, int tx,
        int64_t batch, int64_t limit, int64_t max_gap, int64_t *out);""",
    "spdk_nvme": """int spdk_nvme_run(void (*step)(int64_t), int64_t *clock, int64_t now_word,
        int64_t *regs, uint8_t *sq, uint8_t *cq, int64_t entries, int64_t *cid_req,
        uint8_t *data, int64_t *len, int64_t *free_req, int64_t depth, int64_t nblocks,
        int write, int64_t batch, int64_t limit, int64_t max_gap, int64_t *out);""",
    "maglev": """int maglev_run(void (*step)(int64_t), int64_t *clock, int64_t now_word,
        int64_t *regs, uint8_t *rx_desc, int64_t *rx_slot, uint8_t *tx_desc, int64_t *tx_slot,
        int64_t ring, int64_t *pool, int64_t pool_free, int64_t buf_bytes, int32_t *lookup,
        int64_t table_size, uint64_t *flows, int64_t flow_slots, uint64_t *backends,
        int64_t *counters, int app, int64_t batch, int64_t limit, int64_t max_gap,
        int64_t *out);
        int64_t maglev_steer_cycles(uint8_t *trace, int64_t count, int64_t frame_bytes,
        int64_t packets, uint8_t *bufs, int64_t stride, int64_t buf_bytes, int32_t *lookup,
        int64_t table_size, uint64_t *flows, int64_t flow_slots, uint64_t *backends,
        int64_t *counters, int64_t batch);""",
    "kvstore": """int kvstore_run(void (*step)(int64_t), int64_t *clock, int64_t now_word,
        int64_t *regs, uint8_t *rx_desc, int64_t *rx_slot, uint8_t *tx_desc, int64_t *tx_slot,
        int64_t ring, int64_t *pool, int64_t pool_free, int64_t buf_bytes, uint64_t *tags,
        uint8_t *slots, int64_t entries, int64_t key_size, int64_t value_size,
        int64_t *counters, int app, int64_t batch, int64_t limit, int64_t max_gap,
        int64_t *out);"""}
NATIVE_DATASHEET = {"dpdk_ixgbe": (ixgbe_82599,), "spdk_nvme": (nvme_sheet,),
                    "maglev": (ixgbe_82599,), "kvstore": (ixgbe_82599, kvwire)}
#: what a run's nonzero status means (ixgbe_pmd.h: PMD_BAD_FRAME)
NATIVE_ERRORS = {"dpdk_ixgbe": {-1: "a frame longer than a packet buffer (bad IPv4 length)"},
                 "spdk_nvme": {}}
NATIVE_ERRORS["maglev"] = NATIVE_ERRORS["kvstore"] = NATIVE_ERRORS["dpdk_ixgbe"]
BUF_STRIDE = 2048     # packet buffers this far apart: the heap's size class for an RRef's 1514


@functools.cache
def native(name: str):
    """(ffi, lib) of a C analog, built with its datasheet's generated header."""
    import cffi
    ffi = cffi.FFI()
    ffi.cdef(NATIVE_CDEF[name])
    so = build_shared(NATIVE / f"{name}.c", NATIVE_FLAGS,
                      datasheet_headers(*NATIVE_DATASHEET[name]))
    return ffi, ffi.dlopen(str(so))


def set_up(driver_cls, role: str, device, **create_args):
    """The safe driver's own set-up of ``device`` (reset, rings or queues, enables, all
    through its registers; Python, untimed): the driver object, whose rings the C
    analog then drives. The C side never calls into it."""
    k = Kernel(heap_bytes=1 << 20, max_objects=1 << 10)
    proxy = k.create(f"{role}-driver", driver_cls, device=k.add_device(role, device),
                     **create_args)
    device.attach_iommu(0)   # the analogs run with no IOMMU, their buffers plain memory
    return proxy.domain.impl


def c_args(ffi, *args) -> list:
    """Arguments for a C analog: numpy arrays as pointers to their memory (the arrays must
    outlive the call), anything else as it is."""
    return [ffi.cast("void *", a.ctypes.data) if isinstance(a, np.ndarray) else a
            for a in args]


def c_loop(name: str, step, dev_obj, now_word: int, seconds: float, *args):
    """Start ``dev_obj``'s clock and run analog ``name``'s loop for ``seconds`` of device
    time, the device's registers first and ``args`` after them: (done, calls, stolen)."""
    ffi, lib = native(name)
    hz = tsc_hz()
    fn = ffi.cast("void (*)(int64_t)", c_function(step).address)   # compiled before the clock
    out = np.zeros(3, np.int64)          # poll_loop.h: done, calls, stolen cycles
    regs = c_args(ffi, dev_obj.regs)[0]
    dev_obj.start_clock()
    status = getattr(lib, f"{name}_run")(fn, regs, now_word, regs, *c_args(ffi, *args),
                                         int(seconds * hz), int(MAX_GAP_SECONDS * hz),
                                         *c_args(ffi, out))
    if status != 0:
        why = NATIVE_ERRORS[name].get(status, f"failed (status {status})")
        raise RuntimeError(f"{name}: {why}")
    return tuple(int(x) for x in out)


def c_buffers(count: int, ring: int):
    """Packet buffers for a C analog of the ixgbe driver: ``count`` buffers of numpy memory
    ``BUF_STRIDE`` bytes apart, their addresses (the mempool), and the RX and TX rings'
    slot arrays (the buffer behind each descriptor)."""
    bufs = np.zeros((count, BUF_STRIDE), np.uint8)
    pool = bufs.ctypes.data + BUF_STRIDE * np.arange(count, dtype=np.int64)
    return bufs, pool, np.zeros((2, ring), np.int64)


def run_dpdk(tx: bool, batch: int, seconds: float, profile: str = "x520",
             pkt_size: int = 64, ring: int = 512) -> Run:
    """Figure 6's DPDK row (experiments/native/dpdk_ixgbe.c): as :func:`run_net`, with the
    ixgbe driver's rings driven from C. Its ``ring + 3 * MAX_BATCH`` buffers, every one
    holding the generator's frame, are numpy memory ``BUF_STRIDE`` bytes apart."""
    hz = tsc_hz()
    nic = Nic82599(nic_profile(profile), pkt_size, hz, rx_traffic=not tx)
    driver = set_up(Ixgbe, "net", nic, batch=batch, ring=ring)
    bufs, pool, slots = c_buffers(ring + 3 * MAX_BATCH, ring)
    bufs[:, :pkt_size] = udp_frame(pkt_size)
    done, calls, stolen = c_loop("dpdk_ixgbe", nic_step, nic, NIC_NOW, seconds,
                                  driver.rx_ring, slots[0], driver.tx_ring, slots[1], ring,
                                  pool, len(pool), PKT_BUF, tx, batch)
    stats = nic.stats()
    if tx:
        done = stats["tx_packets"]   # what reached the wire
    return Run.of(done, calls, stolen, stats, hz)


def run_spdk(write: bool, batch: int, seconds: float, profile: str = "p3700",
             queue_depth: int = 32, queue_entries: int = 1024) -> Run:
    """Figure 8's SPDK row (experiments/native/spdk_nvme.c): as :func:`run_blk`, with the
    nvme driver's I/O queue pair driven from C; ``queue_depth`` 4 KiB numpy buffers."""
    hz = tsc_hz()
    ssd = NvmeSsd(nvme_profile(profile), hz)
    driver = set_up(Nvme, "bdev", ssd, batch=batch, queue_entries=queue_entries)
    cid_req = np.zeros(queue_entries, np.int64)            # the request behind each command
    data = np.zeros((queue_depth, nvme_sheet.BSIZE), np.uint8)   # each request's buffer
    length, free = np.zeros((2, queue_depth), np.int64)    # what came back; requests not out
    done, calls, stolen = c_loop("spdk_nvme", nvme_step, ssd, NVME_NOW, seconds,
                                  driver.sq, driver.cq, queue_entries, cid_req, data, length,
                                  free, queue_depth, driver.nblocks, write, batch)
    stats = ssd.stats()
    return Run.of(done, calls, stolen, stats, hz)


# --- sweeps and figures shared by the three experiments -----------------------

WARM_SECONDS = 0.003   # device time of the unrecorded warm-up run of every case


def classify(achieved: Estimate, host: Estimate, capacity: float) -> str:
    """What bound a bar: ``device`` only when the achieved runs reached the device's
    capacity; ``host`` when our code alone cannot sustain it; ``stalled`` when the
    host rate is above the capacity yet the achieved runs fell short of it (a stall
    of this VM, or of the model): flagged, never labelled device-bound."""
    if not np.isfinite(capacity):
        return "host"
    if achieved.value >= BOUND_FRACTION * capacity:
        return "device"
    return "host" if host.value < capacity else "stalled"


def sweep(name: str, directions: tuple, batches: tuple, run_case, *, rounds: int,
          seconds: float, capacity, unit: str, kinds=("achieved", "host"),
          reverse: bool = False, extra=lambda typical, best: {},
          configurations=configs.CONFIGS):
    """Every (configuration, direction, batch) run in interleaved rounds, each after a
    warm-up run; a tidy DataFrame of one row per bar.

    ``run_case(config, direction, batch, kind, seconds) -> Run``: ``kind`` is
    ``achieved`` (against the device's profile) or ``host`` (against an unlimited
    device: the rate our code alone sustains); runs without a device have only
    ``host``. Estimators (:mod:`redleaf_nb.measure`): the host rate is the
    maximum over rounds of :attr:`Run.host_rate` (the gaps in which the core was
    taken away left out; ``stolen_fraction`` says how much of the best run that
    was; and what preemption still takes only lowers a rate) with a bootstrap 90%
    interval; the achieved rate is the median with its interquartile range
    (the device sets the pace). Without a device the rate *is* the host rate, and
    a row has ``cycles_per_<unit>`` in place of the host and device columns.
    ``capacity(direction)`` is the device's rate; ``extra(typical, best)`` adds
    columns from the median achieved run and the best host run."""
    import pandas as pd
    batches = tuple(dict.fromkeys(batches))
    keys = [(c, d, b, kind) for d in directions for b in batches for c in configurations
            for kind in kinds]
    cases = {key: functools.partial(run_case, *key, seconds) for key in keys}
    runs = interleave(cases, rounds, warm=lambda key: run_case(*key, WARM_SECONDS),
                      reverse=reverse, desc=name)
    hz, rows, device = tsc_hz(), [], "achieved" in kinds
    for d in directions:
        for b in batches:
            for c in configurations:
                host_runs = runs[(c, d, b, "host")]
                got_runs = runs.get((c, d, b, "achieved"), host_runs)
                host = summarize([r.host_rate for r in host_runs], "max")
                got = summarize([r.rate for r in got_runs], "median") if device else host
                best = max(host_runs, key=lambda r: r.host_rate)
                typical = sorted(got_runs, key=lambda r: r.rate)[len(got_runs) // 2]
                cap = capacity(d)
                host_cycles = best.busy * hz / max(best.done, 1)
                row = {"config": c, "direction": d, "batch": b, **got.columns("rate"),
                       "capacity": cap, "bound": classify(got, host, cap)}
                if device:
                    row.update(host.columns("host_rate"), **{
                        f"host_cycles_per_{unit}": host_cycles,
                        f"device_cycles_per_{unit}": typical.device_cycles / max(typical.done, 1),
                        "host_rate_estimator": host.rule})
                else:
                    row[f"cycles_per_{unit}"] = host_cycles
                rows.append({**row, "calls": typical.calls, "seconds": typical.seconds,
                             "stolen_fraction": best.stolen / best.seconds, "rounds": rounds,
                             "rate_estimator": got.rule, **extra(typical, best)})
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


BOUND_COLOURS = {"device": "#4c72b0", "host": "#dd8452", "stalled": "#c44e52"}
HOST_COLOUR, PAPER_COLOUR = "#c8c8c8", "#55a868"


def _bars(ax, x, rows, value, colours, label_of, width, offset, scale):
    """One slot of grouped bars with the spread (``value_lo``/``_hi``) as error bars."""
    import matplotlib.patches as mpatches
    v = rows[value].to_numpy(float) / scale
    ax.bar(x + offset, v, width, color=colours)
    if f"{value}_lo" in rows:
        lo = rows[f"{value}_lo"].to_numpy(float) / scale
        hi = rows[f"{value}_hi"].to_numpy(float) / scale
        ok = np.isfinite(lo) & np.isfinite(hi)
        ax.errorbar((x + offset)[ok], v[ok], yerr=[(v - lo)[ok], (hi - v)[ok]], fmt="none",
                    ecolor="black", capsize=2, lw=0.8)
    return {label_of(c): mpatches.Patch(color=c) for c in dict.fromkeys(colours)}


def plot_rates(ours, paper, *, unit: str, scale: float, title: str, capacity_label: str):
    """Bars per configuration: ours (achieved, coloured by what bound it), our host
    rate, and the paper's (from :func:`paper_bars`), each of ours with its spread;
    one panel per direction and batch; the device's capacity as a dashed line."""
    import matplotlib.pyplot as plt
    directions = list(dict.fromkeys(ours.direction))
    batches = list(dict.fromkeys(ours.batch))
    fig, axes = plt.subplots(len(directions), len(batches), squeeze=False, sharey="row",
                             figsize=(5.2 * len(batches), 3.4 * len(directions) + 0.6))
    order = list(dict.fromkeys(list(ours.config) + list(paper.config)))
    bound_label = {c: f"ours: {b}-bound" for b, c in BOUND_COLOURS.items()}
    legend = {}
    width = 0.27
    for i, direction in enumerate(directions):
        for j, batch in enumerate(batches):
            ax = axes[i][j]
            mine = ours[(ours.direction == direction) & (ours.batch == batch)]
            x = np.array([order.index(c) for c in mine.config], dtype=float)
            legend.update(_bars(ax, x, mine, "rate", [BOUND_COLOURS[b] for b in mine.bound],
                                bound_label.get, width, -width, scale))
            if "host_rate" in mine:
                host = mine[mine.host_rate.notna()]
                xh = np.array([order.index(c) for c in host.config], dtype=float)
                legend.update(_bars(ax, xh, host, "host_rate", [HOST_COLOUR] * len(host),
                                    lambda c: "ours: host rate (no device limit), max of "
                                              "rounds", width, 0.0, scale))
            theirs = paper[(paper.batch == batch)
                           & (paper.direction.isin([direction, "both"]))]
            if len(theirs):
                xp = np.array([order.index(c) for c in theirs.config], dtype=float)
                legend.update(_bars(ax, xp, theirs, "value", [PAPER_COLOUR] * len(theirs),
                                    lambda c: "paper (OSDI'20)", width, width, 1.0))
            ax.set_xticks(range(len(order)), order)
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
    fig.suptitle(title, fontsize=11)
    fig.legend(legend.values(), legend.keys(), loc="lower center", ncol=len(legend),
               fontsize=8, frameon=False, bbox_to_anchor=(0.5, 0.025))
    rules = [f"{what}: {ours[col].dropna().iloc[0]}" for what, col in
             (("ours", "rate_estimator"), ("host rate", "host_rate_estimator"))
             if col in ours and ours[col].notna().any()]
    fig.text(0.5, 0.005, "error bars, " + "; ".join(rules), ha="center", fontsize=7)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig
