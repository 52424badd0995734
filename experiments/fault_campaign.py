"""Fault campaign (beyond the paper): thousands of injected faults, and isolation checked
after every one.

MINIX 3 injected 3.4 million faults into its Ethernet drivers and none broke
isolation (Herder et al., DSN 2009). Here each *trial* arms one seeded fault in
one driver stack, runs a short workload through it, and then checks what must
never happen:

* the exchange heap is broken, or holds an object of a dead domain (a leak) or a
  dangling borrow (``kernel/audit.py``, jitted);
* anything outside the faulty stack changed: a *witness* domain (its state, its
  heap objects, its own disk) and every other stack (driver state, device
  registers and memory, rv6's state) are hashed before and after;
* a request silently dropped: a request that went into a driver and was never seen
  again while every call answered without error. (Requests inside a batched driver
  when it dies are lost with it; the call under which it died returns an error, which
  tells the program so: those are counted as "lost, reported".)
* the process crashing (a dead worker that no hang explains).

Targets: ``membdev`` (through its shadow), ``rv6`` (its file system, over a
shadowed membdev), ``nvme`` and ``ixgbe`` (through their shadows). Fault kinds
(``kernel/faults.py``): panic, corrupt (a bit of the domain's own state), hang,
wrong_value (a bit of a value written to the device). Each trial's outcome is one
of: not activated (the point was never reached), no effect, recovered
transparently, reported to the caller, hang detected and recovered, worker killed
(a hang no check caught). Data damage inside the faulty driver's own device (a
wrong block number in a well-formed write) is counted per fault type, not as an
isolation failure: acknowledged writes lost, and ``fsck`` failures.

Trials run in persistent worker processes (many trials each, every worker with a
kernel of its own), supervised so that a dead worker is counted and replaced.
"""
from __future__ import annotations

import dataclasses
import multiprocessing as mp
import multiprocessing.connection
import time

import numba.types as nbt
import numpy as np
import pandas as pd
from numba import njit

from devices.nic import Nic82599, nic_step, udp_frame
from devices.nvme import NvmeSsd, nvme_step
from devices.profiles import nic_profile, nvme_profile
from experiments._drivers import PacketPool, RequestPool, alloc_pool, deques, recycle
from redleaf_nb import configs
from redleaf_nb.apps.rv6 import rv6_class
from redleaf_nb.apps.rv6.layout import BSIZE, O_CREATE, O_RDWR, SEEK_SET, path_bytes
from redleaf_nb.apps.rv6.tools import fsck, mkfs
from redleaf_nb.drivers.ixgbe import Ixgbe
from redleaf_nb.drivers.membdev import MemBDev, MemDisk
from redleaf_nb.drivers.nvme import Nvme
from redleaf_nb.experiments import Experiment, Param
from redleaf_nb.interfaces.bdev import BDev, Block
from redleaf_nb.interfaces.rv6 import Rv6
from redleaf_nb.kernel import heap as hp
from redleaf_nb.kernel.audit import problem
from redleaf_nb.kernel.domain import Kernel
from redleaf_nb.kernel.faults import Fault
from redleaf_nb.kernel.idl import jit_proxy
from redleaf_nb.kernel.proxy import CURRENT, jit_current
from redleaf_nb.kernel.shadow import RestartPolicy, shadow_class
from redleaf_nb.kernel.types import RRefType, exchangeable
from redleaf_nb.lowlevel.clock import tsc_hz
from redleaf_nb.lowlevel.memory import load, store

TARGETS = ("membdev", "rv6", "nvme", "ixgbe")
KINDS = ("panic", "corrupt", "hang", "wrong_value")
#: where each kind may strike in each target: (fault points, the bits a wrong value flips)
POINTS = {
    "membdev": ({"panic": ("read", "write"), "corrupt": ("read", "write"),
                 "hang": ("read", "write"), "wrong_value": ("block",)}, 6),
    "rv6": ({"panic": ("fs_write", "log_written", "log_committed", "log_installed"),
             "corrupt": ("fs_write", "log_written", "log_committed"),
             "hang": ("fs_write", "log_committed"), "wrong_value": ("blockno",)}, 8),
    "nvme": ({"panic": ("mid_batch", "after_doorbell"), "corrupt": ("mid_batch", "after_doorbell"),
              "hang": ("mid_batch", "after_doorbell"), "wrong_value": ("prp", "doorbell")}, 12),
    "ixgbe": ({"panic": ("mid_batch", "after_doorbell"),
               "corrupt": ("mid_batch", "after_doorbell"),
               "hang": ("mid_batch", "after_doorbell"), "wrong_value": ("doorbell",)}, 6),
}
DRIVER = {"membdev": "membdev", "rv6": "rv6", "nvme": "bdev-driver", "ixgbe": "net-driver"}
FAIL_STOP = ("panic", "hang")
OUTCOMES = ("not activated", "no effect", "recovered transparently", "reported",
            "hang detected and recovered", "worker killed")
FORBIDDEN = ("heap broken", "outside changed", "silently dropped", "process crashed")
HANG_BUDGET_US = 20.0
WORKER_SILENCE_S = 3.0       # a worker silent this long (a trial takes milliseconds) is stuck in a
#                               hang no check catches


@njit(cache=True)
def digest(a):
    """A 64-bit FNV-1a-style hash of an array's bytes, 8 at a time (the tail by byte)."""
    b = a.reshape(-1).view(np.uint8)
    w = b[:b.size // 8 * 8].view(np.uint64)
    h = np.uint64(0xCBF29CE484222325)
    for x in w:
        h = (h ^ x) * np.uint64(0x100000001B3)
    for x in b[w.size * 8:]:
        h = (h ^ np.uint64(x)) * np.uint64(0x100000001B3)
    return h


@njit(cache=True)
def _owned_digest(k, owners):
    """A hash of every live heap object the domains ``owners`` own (owner, slot, size,
    bytes), in one scan of the metadata."""
    m, arena = hp.meta_of(k), hp.arena_of(k)
    h = np.uint64(0)
    for s in range(m.shape[0]):
        if m[s, hp.STATE] != hp.LIVE:
            continue
        o = m[s, hp.OWNER]
        for x in owners:
            if o == x:
                off = m[s, hp.OFFSET]
                h = (h ^ np.uint64(o + s * 1000003 + m[s, hp.SIZE])) * np.uint64(0x100000001B3)
                h ^= digest(arena[off:off + m[s, hp.SIZE]])
                break
    return h


@njit(cache=True)
def _count_type(k, type_id):
    """Live objects of one heap type (buffers, requests), wherever they are."""
    m = hp.meta_of(k)
    n = 0
    for s in range(m.shape[0]):
        n += m[s, hp.STATE] == hp.LIVE and m[s, hp.TYPE] == type_id
    return n


def _bdev_loop(read, write, k, disk, buf, nblocks, start, stamp, n, acked, seen):
    """``n`` times: write a stamped block, read it back. ``acked[i]`` is the stamp the
    write of block i was acknowledged with; ``seen[i]`` what its read returned."""
    me = jit_current(k)
    for i in range(n):
        block = (start + i) % nblocks
        store(hp.word_address(k, buf, me, True), 0, stamp + i)
        status, _ = write(k, disk, np.uint32(block), buf)
        if status != 0:
            return status, i, buf
        acked[block] = stamp + i
        status, buf = read(k, disk, np.uint32(block), buf)
        if status != 0:
            return status, i, 0
        seen[block] = load(hp.word_address(k, buf, me, False), 0)
    return 0, n, buf


def _rv6_loop(write, lseek, k, rv6, fd, buf, nblocks, stamp, n, acked):
    """``n`` stamped one-block writes to the file through rv6's system calls."""
    me = jit_current(k)
    for i in range(n):
        block = i % nblocks
        status, _ = lseek(k, rv6, fd, block * 4096, 0)
        if status != 0:
            return status, i
        store(hp.word_address(k, buf, me, True), 0, stamp + i)
        status, got = write(k, rv6, fd, buf, 4096)
        if status != 0 or got != 4096:
            return (status if status != 0 else 1000), i
        acked[block] = stamp + i
    return 0, n


def _batched_loop(entry, step, k, target, dev, a, b, pool, flag, batch, calls):
    """``calls`` calls of a batched driver (the device stepped before each), the finished
    buffers recycled into the next batch; (status of a failed call or 0, calls, a, b)."""
    me = jit_current(k)
    for i in range(calls):
        step(dev)
        status, ret = entry(k, target, a, b, flag)
        if status != 0:
            return status, i, a, b
        n, a, b = ret
        recycle(k, me, pool, b, a, batch)
    return 0, calls, a, b


_LOOPS: dict = {}


def _loop(fn, *types):
    """``fn`` compiled for the function types of the proxies it calls (cached)."""
    key = (fn.__name__, *types)
    if key not in _LOOPS:
        i64 = nbt.int64
        arr = nbt.int64[::1]
        if fn is _bdev_loop:
            sig = nbt.Tuple((i64, i64, i64))(*types, *(i64,) * 7, arr, arr)
        elif fn is _batched_loop:
            step_t = nbt.FunctionType(nbt.none(i64))
            sig = nbt.Tuple((i64,) * 4)(*types, step_t, *(i64,) * 6, nbt.boolean, i64, i64)
        else:
            sig = nbt.Tuple((i64, i64))(*types, *(i64,) * 7, arr)
        _LOOPS[key] = njit(sig, cache=True)(fn)
    return _LOOPS[key]


class Rig:
    """One kernel with every target stack and a witness, reused trial after trial."""

    def __init__(self):
        self.hz = tsc_hz()
        self.k = k = Kernel(heap_bytes=24 << 20, max_objects=4096)
        policy = RestartPolicy(max_restarts=1 << 30, period=1.0)
        self.bdev_cls = shadow_class(MemBDev.declared(), MemBDev)
        # the witness: a domain with state, heap objects and a disk of its own
        self.witness_disk = MemDisk(8)
        self.witness_disk.blocks[:] = np.arange(8 * BSIZE, dtype=np.uint64).astype(np.uint8) \
            .reshape(8, BSIZE)
        self.witness = k.create("witness", MemBDev, device=k.add_device("witness-disk",
                                                                         self.witness_disk),
                                nblocks=8)
        for i in range(4):
            h = k.heap.alloc(RRefType(Block), self.witness.domain.id)
            k.heap.view(h, self.witness.domain.id, write=True)[:] = i + 1
        # membdev, through its shadow
        self.md_disk = MemDisk(64)
        k.create("membdev", MemBDev, device=k.add_device("md-disk", self.md_disk), nblocks=64)
        self.md = k.create_shadow("membdev-shadow", "membdev", policy)
        self.md_proxies = [jit_proxy(BDev, m, self.bdev_cls.jit_methods[m]).fn
                           for m in ("read", "write")]
        types = [jit_proxy(BDev, m, self.bdev_cls.jit_methods[m]).type for m in ("read", "write")]
        self.md_loop = _loop(_bdev_loop, *types)
        self.md_buf = k.new(Block).handle
        self.md_acked = np.zeros(64, np.int64)
        # rv6 over a second shadowed membdev
        self.fs_disk = MemDisk(64)
        mkfs(self.fs_disk.blocks, ninodes=16)
        k.create("fs-membdev", MemBDev, device=k.add_device("fs-disk", self.fs_disk), nblocks=64)
        self.fs_shadow = k.create_shadow("fs-shadow", "fs-membdev", policy)
        self.rv6_cls = rv6_class(disk_cls=self.bdev_cls)
        self.rv6_proxies = [jit_proxy(Rv6, m, self.rv6_cls.jit_methods[m])
                            for m in ("write", "lseek")]
        self.rv6_loop = _loop(_rv6_loop, *(p.type for p in self.rv6_proxies))
        self.rv6_buf = k.new(Block).handle
        self.rv6_acked = np.zeros(8, np.int64)
        self._boot_rv6()
        # NVMe and ixgbe, through their shadows (configs.py), small devices
        prof = dataclasses.replace(nvme_profile("p3700"), nblocks=64)
        self.ssd = NvmeSsd(prof, self.hz)
        self.nvme = configs.build(k, "redleaf-shadow", Nvme, "bdev",
                                  device=k.add_device("nvme", self.ssd), batch=8,
                                  queue_entries=64)
        self.nic = Nic82599(nic_profile("x520"), 64, self.hz, rx_traffic=False)
        self.net = configs.build(k, "redleaf-shadow", Ixgbe, "net",
                                 device=k.add_device("nic", self.nic), batch=8, ring=64)
        for name in ("bdev-shadow", "net-shadow"):     # restart as often as faults strike
            k.lookup(name).domain.impl.policy = policy
        frame = udp_frame(64)

        def put_frame(i, buf):
            buf[:64] = frame

        def number(i, req):
            req["block"] = i
        self.batched = {"nvme": Batched(k, self.nvme, RequestPool, 16, number, nvme_step,
                                        self.ssd, "bdev"),
                        "ixgbe": Batched(k, self.net, PacketPool, 96, put_frame, nic_step,
                                         self.nic, "net")}
        self.ssd.start_clock()
        self.nic.start_clock()
        self.stacks = {   # what belongs to each target's stack (left out of its outside)
            "membdev": {"membdev", "membdev-shadow"},
            "rv6": {"rv6", "fs-membdev", "fs-shadow"},
            "nvme": {"bdev-driver", "bdev-shadow"},
            "ixgbe": {"net-driver", "net-shadow"}}
        self.devices = {"membdev": [self.md_disk.blocks], "rv6": [self.fs_disk.blocks],
                        "nvme": [self.ssd.blocks, self.ssd.regs],
                        "ixgbe": [self.nic.regs]}

    def _boot_rv6(self):
        k = self.k
        k.heap.h.calls[CURRENT] = k.init.id
        self.rv6 = k.create("rv6", self.rv6_cls, net=None, bdev=None, disk=self.fs_shadow)
        self.fd = int(self.rv6.open(path_bytes("/f"), O_CREATE | O_RDWR))

    # -- what must not change ------------------------------------------------------
    def outside(self, target: str) -> tuple:
        """Hashes of everything outside ``target``'s stack: the witness (state, objects,
        disk) and every other stack's domains' states, objects and devices."""
        k = self.k
        doms = [self.witness.domain] + [k.lookup(name).domain for other, names in
                                        self.stacks.items() if other != target
                                        for name in sorted(names)]
        out = [_owned_digest(k.heap.k, np.array([d.id for d in doms], np.int64))]
        out += [digest(d.jit_state) for d in doms if d.jit_state is not None]
        out += [digest(self.witness_disk.blocks)]
        out += [digest(a) for other in self.stacks if other != target
                for a in self.devices[other]]
        return tuple(int(x) for x in out)

    # -- workloads -----------------------------------------------------------------
    def run_membdev(self, stamp: int, calls: int) -> dict:
        k = self.k
        k.heap.h.calls[:] = (0, k.init.id)
        seen = np.zeros(64, np.int64)
        self.md_acked[:] = 0      # this trial's writes (the blocks keep what they hold)
        start = int(stamp % 64)
        status, done, buf = self.md_loop(*self.md_proxies, k.heap.k, self.md.domain.id,
                                         self.md_buf, 64, start, stamp, calls, self.md_acked,
                                         seen)
        if buf == 0 or not hp.slot_of(k.heap.k, buf) >= 0:
            buf = k.new(Block).handle       # it went down with the call that failed
        self.md_buf = buf
        disk_words = self.md_disk.blocks[:, :8].view(np.int64)[:, 0]
        lost = int(((self.md_acked != 0) & (disk_words != self.md_acked)).sum())
        return {"status": int(status), "lost_acked": lost, "dropped": 0}

    def run_rv6(self, stamp: int, calls: int) -> dict:
        k = self.k
        k.heap.h.calls[:] = (0, k.init.id)
        self.rv6_acked[:] = 0
        (w, ls) = (p.fn for p in self.rv6_proxies)
        status, done = self.rv6_loop(w, ls, k.heap.k, self.rv6.domain.id, self.fd,
                                     self.rv6_buf, 8, stamp, calls, self.rv6_acked)
        k._settle_jitted_deaths("panic in the campaign's rv6 program")
        fired = k.fault_counts("rv6")["injected"]
        crashed = not self.rv6.domain.alive
        if hp.slot_of(k.heap.k, self.rv6_buf) < 0:
            self.rv6_buf = k.new(Block).handle
        lost, fs_ok = 0, True
        try:
            if crashed:   # rv6 itself crashed (reported): boot it again; mount recovers the log
                self._boot_rv6()
            fs_ok = fsck(self.fs_disk.blocks).ok
        except Exception:      # the disk is damaged past mounting (a wrong block number)
            fs_ok = False
        if fs_ok:
            assert self.rv6.lseek(self.fd, 0, SEEK_SET) == 0
            buf = k.new(Block)
            for block in range(8):
                n, buf = self.rv6.read(self.fd, buf, BSIZE)
                got = int(buf.get()[:8].view(np.int64)[0]) if n == BSIZE else 0
                lost += bool(self.rv6_acked[block]) and got != self.rv6_acked[block]
            buf.free()
        else:             # data damage inside rv6's own disk: counted, then a fresh disk
            if self.rv6.domain.alive:
                k.terminate("rv6")
            mkfs(self.fs_disk.blocks, ninodes=16)
            self._boot_rv6()
        return {"status": int(status), "lost_acked": lost, "fsck_failed": not fs_ok,
                "dropped": 0, "fired": fired, "crashed": crashed}

    def run_nvme(self, stamp: int, calls: int) -> dict:
        return self.batched["nvme"].run(calls)

    def run_ixgbe(self, stamp: int, calls: int) -> dict:
        return self.batched["ixgbe"].run(calls)


class Batched:
    """A program that keeps a batched driver busy (the driver benchmarks' loop), and
    counts its requests: every one is in the program's hands, in the driver's, or was
    carried by a call that failed (reported); any other that is gone was dropped."""

    BATCH = 8

    def __init__(self, k, entry, pool_t, count, init, step, device, role):
        self.k, self.e, self.count, self.init = k, entry, count, init
        self.step, self.device = step, device
        self.pool_t = exchangeable(pool_t)
        self.child = k.heap.type_id(self.pool_t.child)
        self.iface = configs.ROLES[role][0]
        k.heap.h.calls[CURRENT] = entry.runs_as
        self.pool = alloc_pool(k, pool_t, entry.runs_as, count, init)
        self.a, self.b = deques(k, self.iface, entry.runs_as)
        self.loop = _loop(_batched_loop, entry.type)

    def run(self, calls: int) -> dict:
        k, e = self.k, self.e
        before = _count_type(k.heap.k, self.child)
        k.heap.h.calls[:] = (0, e.runs_as)
        status, _, self.a, self.b = self.loop(e.fn, self.step, k.heap.k, e.target,
                                              self.device.mmio, self.a, self.b, self.pool, True,
                                              self.BATCH, calls)
        k._settle_jitted_deaths("panic in the campaign's batched program")
        carried = 0
        if status != 0:   # the call's deques and what they held went down with it: reported
            carried = self.BATCH
            self.a, self.b = deques(k, self.iface, e.runs_as)
        after = _count_type(k.heap.k, self.child)
        gone = max(0, before - after - carried)
        # gone with no error to the program: silently dropped; gone when a call failed:
        # the error told the program that the driver died with what it held (reported)
        dropped, reported_lost = (gone, 0) if status == 0 else (0, gone)
        owner = e.runs_as
        k.heap.h.calls[CURRENT] = owner
        for i in range(self.count - after):   # the same load every trial
            h = k.heap.alloc(self.pool_t.child, owner)
            self.init(i, k.heap.view(h, owner, write=True))
            hp.deque_push_back(k.heap.k, self.pool, owner, h)
        return {"status": int(status), "dropped": dropped, "reported_lost": reported_lost,
                "lost_acked": 0}


def trial(rig: Rig, target: str, index: int, seed: int) -> dict:
    """One fault: armed, a workload run through it, every check made; its record."""
    rng = np.random.default_rng([seed, TARGETS.index(target), index])
    points, bits = POINTS[target]
    kind = KINDS[index // len(TARGETS) % len(KINDS)]
    point = str(rng.choice(points[kind]))
    k = rig.k
    driver = DRIVER[target]
    state_bits = 8 * k.lookup(driver).domain.jit_state.dtype.itemsize
    bit = int(rng.integers(0, bits if kind == "wrong_value" else state_bits))
    fault = Fault(kind, point=point, after=int(rng.integers(0, 4)), bit=bit,
                  budget_us=HANG_BUDGET_US, seed=int(rng.integers(1, 1 << 30)))
    outside = rig.outside(target)
    shadow = {"membdev": rig.md, "rv6": None, "nvme": k.lookup("bdev-shadow"),
              "ixgbe": k.lookup("net-shadow")}[target]
    restarts = shadow.domain.impl.stats.restarts if shadow is not None else 0
    t0 = time.perf_counter()
    k.inject(driver, fault)
    out = getattr(rig, f"run_{target}")(stamp=(index + 1) << 20, calls=12)
    dom = k.lookup(driver).domain
    fired = k.fault_counts(driver)["injected"] if target != "rv6" else out.pop("fired", 0)
    k.disarm(driver)
    restarted = (shadow.domain.impl.stats.restarts - restarts) if shadow is not None else 0
    crashed = restarted > 0 or out.get("crashed", False)
    if not fired:
        outcome = "not activated"
    elif out["status"] != 0:
        outcome = "reported"
    elif crashed:
        outcome = "hang detected and recovered" if kind == "hang" else "recovered transparently"
    else:
        outcome = "no effect"
    heap = problem(k.heap.k)
    changed = rig.outside(target) != outside
    return _record(index, outcome, point=point, activated=int(bool(fired)), restarts=restarted,
                   **{"heap broken": int(heap is not None), "outside changed": int(changed),
                      "silently dropped": int(out.get("dropped", 0)),
                      "lost, reported": int(out.get("reported_lost", 0)),
                      "lost acked writes": int(out.get("lost_acked", 0)),
                      "fsck failed": int(out.get("fsck_failed", False)),
                      "heap problem": heap or "", "ms": (time.perf_counter() - t0) * 1e3,
                      "driver alive": dom.alive})


# --- the supervisor: persistent workers, a dead one counted and replaced ---------------

def _worker(conn, seed: int) -> None:
    """A worker process: one rig, then trials as they are asked for, each answered."""
    rig = Rig()
    conn.send(("ready", None))
    while True:
        job = conn.recv()
        if job is None:
            return
        for index in job:
            conn.send(("trial", trial(rig, TARGETS[index % len(TARGETS)], index, seed)))


def _record(index: int, outcome: str, **seen) -> dict:
    """A trial's row: what its checks saw (``seen``), zeros for what they did not."""
    return {"target": TARGETS[index % len(TARGETS)],
            "kind": KINDS[index // len(TARGETS) % len(KINDS)], "point": "", "index": index,
            "injected": 1, "activated": 1, "outcome": outcome, "restarts": 0,
            **{what: 0 for what in FORBIDDEN}, "lost, reported": 0, "lost acked writes": 0,
            "fsck failed": 0, "heap problem": "", "ms": 0.0, "driver alive": False, **seen}


@dataclasses.dataclass
class _Worker:
    proc: object
    conn: object
    pending: list            # its trials not answered yet, in order
    last: float              # when it last answered
    answered: bool = False   # whether it has answered a trial yet


class Pool:
    """``workers`` forked processes, each with its rig; trials go out in chunks. A worker
    silent for ``silence`` seconds is stuck in a hang that no check catches: it is killed,
    its trial counted as "worker killed", and a new worker takes its place. One that dies
    on its own is a crashed process: a forbidden outcome."""

    def __init__(self, workers: int, seed: int, silence: float = WORKER_SILENCE_S):
        self.ctx = mp.get_context("fork")
        self.seed, self.silence = seed, silence
        self.workers = [self._start() for _ in range(workers)]
        self.replaced = 0

    def _start(self) -> _Worker:
        parent, child = self.ctx.Pipe()
        p = self.ctx.Process(target=_worker, args=(child, self.seed), daemon=True)
        p.start()
        child.close()
        if not parent.poll(300) or parent.recv()[0] != "ready":
            raise RuntimeError("fault campaign: a worker did not start")
        return _Worker(p, parent, [], time.monotonic())

    def run(self, indices, chunk: int = 64, progress=None) -> list[dict]:
        """Every trial of ``indices``, each answered by a worker or by its death."""
        todo, records = list(indices)[::-1], []
        while todo or any(w.pending for w in self.workers):
            for w in self.workers:
                if not w.pending:
                    self._give(w, todo, chunk)
            ready = mp.connection.wait([w.conn for w in self.workers if w.pending], 0.5)
            for w in self.workers:
                if w.conn not in ready:
                    continue
                try:
                    what, rec = w.conn.recv()
                except EOFError:
                    continue        # it died: found below
                w.last, w.answered = time.monotonic(), True
                if what == "trial":
                    records.append(rec)
                    w.pending.remove(rec["index"])
                    if progress is not None:
                        progress(1)
            for i, w in enumerate(self.workers):
                alive = w.proc.is_alive()
                # the first trial may compile what the parent never ran: a longer grace
                silence = self.silence if w.answered else max(self.silence, 120.0)
                if not w.pending or (alive and time.monotonic() - w.last < silence):
                    continue
                w.proc.kill()        # silent too long (a hang no check caught), or dead
                w.proc.join()
                records.append(_record(w.pending[0], "worker killed",
                                       **{"process crashed": int(not alive)}))
                if progress is not None:
                    progress(1)
                todo.extend(w.pending[1:][::-1])
                self.replaced += 1
                self.workers[i] = self._start()
        return records

    @staticmethod
    def _give(w: _Worker, todo: list, chunk: int) -> None:
        job = [todo.pop() for _ in range(min(chunk, len(todo)))]
        if job:
            w.pending.extend(job)
            w.conn.send(job)

    def close(self) -> None:
        for w in self.workers:
            try:
                w.conn.send(None)
            except OSError:
                pass
            w.proc.join(5)
            if w.proc.is_alive():
                w.proc.kill()


def run(params: dict) -> pd.DataFrame:
    """``faults`` trials, round-robin over the targets and fault kinds, in worker
    processes; one row per trial."""
    from tqdm.auto import tqdm

    Rig()    # compile (or load) everything once, before the workers fork
    pool = Pool(params["workers"], params["seed"])
    t0 = time.perf_counter()
    try:
        with tqdm(total=params["faults"], desc="fault campaign", unit="fault",
                  disable=None) as bar:
            records = pool.run(range(params["faults"]), progress=bar.update)
    finally:
        pool.close()
    seconds = time.perf_counter() - t0
    df = pd.DataFrame(records).sort_values("index").reset_index(drop=True)
    df["campaign_seconds"] = seconds
    df["workers_replaced"] = pool.replaced
    return df


def outcomes(ours: pd.DataFrame) -> pd.DataFrame:
    """Faults injected, activated, and each outcome, per target and fault kind."""
    table = ours.pivot_table(index=["target", "kind"], columns="outcome", values="index",
                             aggfunc="count", fill_value=0)
    table = table.reindex(columns=[o for o in OUTCOMES if o in table.columns])
    table.insert(0, "activated", ours.groupby(["target", "kind"]).activated.sum())
    table.insert(0, "injected", ours.groupby(["target", "kind"]).injected.sum())
    return table


def forbidden(ours: pd.DataFrame) -> pd.DataFrame:
    """The forbidden outcomes (must all be zero), and the data damage counted per kind."""
    cols = [*FORBIDDEN, "lost, reported", "lost acked writes", "fsck failed"]
    return ours.groupby(["target", "kind"])[cols].sum()


def plot(ours: pd.DataFrame, paper: pd.DataFrame):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 5), gridspec_kw={"width_ratios": [1.5, 1, 1]})
    t = outcomes(ours).drop(columns=["injected", "activated"])
    share = t.div(t.sum(axis=1), axis=0)
    share.index = [f"{a} / {b}" for a, b in share.index]
    share.plot.barh(stacked=True, ax=axes[0], width=0.8, legend=False,
                    color=["#cccccc", "#8fbf8f", "#2e8b57", "#e0a040", "#4682b4", "#b22222"][
                        :len(share.columns)])
    axes[0].set(xlabel="share of the faults injected", title="What each fault led to")
    axes[0].invert_yaxis()
    axes[0].legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3)
    by_target = forbidden(ours).groupby(level="target").sum()
    bad = by_target[list(FORBIDDEN)]
    bad.plot.bar(ax=axes[1], legend=False)
    axes[1].set_ylim(0, max(1, bad.to_numpy().max()) * 1.2)
    for i, (target, row) in enumerate(bad.iterrows()):
        text = "none" if row.sum() == 0 else "\n".join(f"{w}: {int(v)}" for w, v in row.items()
                                                          if v)
        axes[1].text(i, axes[1].get_ylim()[1] * 0.5, text, ha="center", va="center")
    axes[1].set(ylabel="count (each must be 0)", title="Forbidden outcomes")
    axes[1].legend(fontsize=7, loc="upper right")
    kept = by_target[["lost, reported", "lost acked writes", "fsck failed"]]
    kept.plot.bar(ax=axes[2], logy=True)
    axes[2].set(ylabel="count (log)", title="Reported losses; own-device damage")
    axes[2].legend(fontsize=7)
    seconds = ours.campaign_seconds.iloc[0]
    fig.suptitle(f"Fault campaign: {len(ours):,} faults in {seconds:.1f} s "
                 f"({len(ours) / seconds:,.0f} faults/s, {ours.workers_replaced.iloc[0]} "
                 "workers replaced); host-bound")
    fig.tight_layout()
    return fig


def targets(ours: pd.DataFrame) -> dict:
    seconds = ours.campaign_seconds.iloc[0]
    kinds = ours.groupby("kind")
    out = {"faults injected (target >= 10,000 quick, 1,000,000 full)": len(ours),
           "faults per second (target >= 1,000)": round(len(ours) / seconds)}
    for kind, g in kinds:
        out[f"{kind}: share of injections / activated (targets >= 15% / >= 50%)"] = (
            f"{len(g) / len(ours):.0%} / {g.activated.mean():.0%}")
    for what in FORBIDDEN:
        out[f"forbidden: {what} (target 0)"] = int(ours[what].sum())
    stop = ours[ours.kind.isin(FAIL_STOP)]
    out["fail-stop faults: lost acknowledged writes / fsck failures (target 0 / 0)"] = (
        f"{int(stop['lost acked writes'].sum())} / {int(stop['fsck failed'].sum())}")
    out["workers killed (hangs no check caught)"] = int((ours.outcome == "worker killed").sum())
    return out


EXPERIMENT = Experiment(
    name="fault_campaign",
    figure="beyond the paper",
    title="Fault campaign: seeded faults of every kind in every driver stack, isolation "
          "checked after each",
    paper_csv=None,
    params=(
        Param("faults", int, 10_000, 1_000_000, "faults injected (one per trial)",
              low=1, high=100_000_000),
        Param("workers", int, 2, 2, "worker processes (each with its own kernel)", low=1,
              high=256),
        Param("seed", int, 1, 1, "the campaign's seed (each trial's fault follows from it)",
              low=0, high=2**31),
    ),
    run=run,
    plot=plot,
    bound="Host cost only: the devices are models.",
    notes=("A trial arms one fault (kernel/faults.py) in one stack, runs a dozen requests "
           "through it, and checks: the heap (kernel/audit.py), hashes of everything outside "
           "the stack, requests accounted for, the process alive; for the file system also "
           "fsck and every acknowledged write."),
    targets=targets,
    summary=lambda ours: outcomes(ours).join(forbidden(ours)),
    timing_sensitive=False,     # it counts outcomes; its times are only reported
    # times, and how many requests in flight a death took down: how far the device
    # model had got, which depends on time
    measured=("ms", "campaign_seconds", "workers_replaced", "lost, reported"),
)
