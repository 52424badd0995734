"""Application benchmarks (Figures 9 and 10): an application between the ixgbe driver's
RX and TX, in the five configurations of the driver figures, and its C side.

Each iteration of the jitted loop lets the NIC model advance, receives a batch
through the configuration's entry (the driver directly, its proxy, its shadow, or
rv6's system call), hands it to the application's function (safe domain code linked
into the domain the benchmark runs as: the driver's own in ``redleaf-driver``, the
app's domain otherwise), transmits what the app passed on through the same entry,
and recycles the sent buffers into the RX ring. The rate is what reached the wire
(the NIC's transmit counter), per second of device time; against an unlimited NIC it
is the host rate (experiments/_drivers.py explains the clocks and estimators).

The C side (experiments/native/<app>.c) runs the same application on the same
rings with the poll-mode driver of ``ixgbe_pmd.h``, the whole loop in C, one call
from Python, on the same tables (numpy memory the app owns, built once).
"""
from __future__ import annotations

import numpy as np
from numba import njit
from numba import types as nbt

from devices.nic import NOW as NIC_NOW
from devices.nic import Nic82599, nic_step
from devices.profiles import NICS, nic_profile
from experiments._drivers import (MAX_GAP_SECONDS, PacketPool, Run, alloc_pool, c_buffers,
                                  c_loop, deques, native, prime_rx, recycle, set_up,
                                  tick)
from redleaf_nb import configs
from redleaf_nb.drivers.ixgbe import Ixgbe
from redleaf_nb.experiments import Param
from redleaf_nb.interfaces.net import MAX_BATCH, PKT_BUF, Net
from redleaf_nb.kernel.domain import Kernel
from redleaf_nb.kernel.proxy import CURRENT, DEPTH, jit_current
from redleaf_nb.lowlevel.clock import tsc_hz
from redleaf_nb.lowlevel.memory import load


@njit(cache=True, inline="always")
def receive(entry, k, target, rx, got):
    """The configuration's RX call: (status, the two deques back)."""
    status, ret = entry(k, target, rx, got, False)
    if status != 0:
        return status, rx, got
    _, rx, got = ret
    return status, rx, got


@njit(cache=True, inline="always")
def send_and_recycle(entry, k, target, me, tx, sent, pool, rx, batch):
    """The configuration's TX call, then the sent buffers back into the next RX batch:
    (status, the TX call's two deques back)."""
    status, ret = entry(k, target, tx, sent, True)
    if status != 0:
        return status, tx, sent
    _, tx, sent = ret
    recycle(k, me, pool, sent, rx, batch)
    return status, tx, sent


def _app_loop(entry, step, app, k, target, dev, now_addr, rx, got, tx, sent, pool, batch,
              limit, max_gap):
    """Until the device clock passes ``limit``: let the device advance, receive a batch,
    let the app pass packets on (to ``tx``; what it drops to ``pool``), transmit, and
    recycle sent buffers into the RX ring. Counts stolen cycles as _drivers._bench_loop."""
    me = jit_current(k)
    calls = status = stolen = 0
    now = load(now_addr, 0)
    while True:
        going, now, stolen = tick(step, dev, now_addr, limit, now, stolen, max_gap)
        if not going:
            break
        status, rx, got = receive(entry, k, target, rx, got)
        if status != 0:
            break
        app(k, me, got, tx, pool)
        status, tx, sent = send_and_recycle(entry, k, target, me, tx, sent, pool, rx, batch)
        if status != 0:
            break
        calls += 1
    return status, calls, rx, got, tx, sent, stolen


_LOOPS: dict = {}
APP_TYPE = nbt.FunctionType(nbt.int64(*(nbt.int64,) * 5))   # fn(k, me, rx, tx, spare) -> n


def _compiled_loop(entry_type):
    if entry_type not in _LOOPS:
        i64 = nbt.int64
        step_t = nbt.FunctionType(nbt.none(i64))
        sig = nbt.Tuple((i64,) * 7)(entry_type, step_t, APP_TYPE, *(i64,) * 12)
        _LOOPS[entry_type] = njit(sig, cache=True)(_app_loop)
    return _LOOPS[entry_type]


def set_up_app(app, config: str, nic: Nic82599, batch: int, ring: int):
    """A kernel with the ixgbe driver over ``nic`` in ``config`` and ``app`` linked into
    the domain the benchmark runs as: (kernel, entry, (buffer pool, the RX call's two
    deques with the RX ring primed, the TX call's two deques))."""
    k = Kernel(heap_bytes=32 << 20, max_objects=1 << 14)
    e = configs.build(k, config, Ixgbe, "net", device=k.add_device("nic", nic), batch=batch,
                      ring=ring)
    k.heap.h.calls[CURRENT], k.heap.h.calls[DEPTH] = e.runs_as, 0
    home = e.driver.domain if e.runs_as == e.driver.domain.id else k.init
    app.link(home)
    pool = alloc_pool(k, PacketPool, e.runs_as, 2 * ring + 4 * MAX_BATCH, lambda i, buf: None)
    rx, got = deques(k, Net, e.runs_as)
    tx, sent = deques(k, Net, e.runs_as)
    rx, got = prime_rx(k, e, pool, rx, got, ring)
    return k, e, (pool, rx, got, tx, sent)


def run_app(app, config: str, batch: int, seconds: float, traffic: np.ndarray,
            profile: str = "x520", ring: int = 512) -> Run:
    """One run of ``app`` (it has ``link(domain)`` and a jitted ``forward`` function)
    in ``config`` against a NIC offering ``traffic`` (frames, in turn)."""
    hz = tsc_hz()
    nic = Nic82599(nic_profile(profile), hz=hz, traffic=traffic)
    k, e, (pool, rx, got, tx, sent) = set_up_app(app, config, nic, batch, ring)
    loop = _compiled_loop(e.type)
    head = (e.fn, nic_step, app.forward, k.heap.k, e.target)
    blank = np.zeros(64, np.int64)   # compile the model and the loop before the clock starts
    nic_step(blank.ctypes.data)
    max_gap = int(MAX_GAP_SECONDS * hz)
    loop(*head, blank.ctypes.data, blank.ctypes.data, rx, got, tx, sent, pool, batch, -1,
         max_gap)
    nic.start_clock()
    status, calls, *_, stolen = loop(*head, nic.mmio, nic.mmio + 8 * NIC_NOW, rx, got, tx,
                                     sent, pool, batch, int(seconds * hz), max_gap)
    if status != 0:
        raise RuntimeError(f"{app.name} in {config}: the driver call failed (status {status})")
    k.heap.check_invariants()
    stats = nic.stats()
    return Run.of(stats["tx_packets"], calls, stolen, stats, hz)


def run_c_app(name: str, tables: tuple, batch: int, seconds: float, traffic: np.ndarray,
              profile: str = "x520", ring: int = 512, app: bool = True) -> Run:
    """One run of the C side ``name`` (experiments/native/<name>.c: ``<name>_run``) on the
    ixgbe driver's rings; ``tables`` are its arguments after the pool's (the app's
    numpy tables and sizes); ``app=False`` forwards packets unchanged (the bare
    forwarding cost)."""
    hz = tsc_hz()
    nic = Nic82599(nic_profile(profile), hz=hz, traffic=traffic)
    driver = set_up(Ixgbe, "net", nic, batch=batch, ring=ring)
    bufs, pool, slots = c_buffers(2 * ring + 4 * MAX_BATCH, ring)   # bufs: the memory behind pool
    native(name)   # built before the clock starts
    done, calls, stolen = c_loop(name, nic_step, nic, NIC_NOW, seconds, driver.rx_ring,
                                 slots[0], driver.tx_ring, slots[1], ring, pool, len(pool),
                                 PKT_BUF, *tables, app, batch)
    stats = nic.stats()
    return Run.of(stats["tx_packets"], calls, stolen, stats, hz)


def nic_params(what: str) -> tuple:
    """The parameters every application experiment takes for its NIC and its traffic."""
    return (Param("ring", int, 512, 512, "descriptors per ring", low=16, high=2048),
            Param("profile", str, "x520", "x520", "NIC profile (devices/profiles.py)",
                  choices=tuple(k for k in NICS if k != "unlimited")),
            Param("seed", int, 0, 0, f"seed of the {what}", low=0, high=2**31))
