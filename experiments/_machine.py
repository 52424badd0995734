"""The server machine of the httpd experiments: a kernel with the ixgbe driver over
the NIC model in one of the paper's configurations, our httpd (and its stack)
linked into the domain that runs the benchmark, and the NIC's wire to a peer: the
simulated wrk (devices/http_load.py), or a TAP device that real clients reach
(devices/tap.py). :meth:`HttpdMachine.run` serves for a span of device time and
can be called again: the rings, connections and clock carry on.
"""
from __future__ import annotations

import subprocess
import time

import numpy as np
from numba import njit, typeof
from numba import types as nbt

from devices.http_load import HttpLoad, load_step
from devices.nic import NOW as NIC_NOW
from devices.nic import Nic82599, nic_exclude, nic_step
from devices.profiles import nic_profile
from devices.wire import FROM_HOST, TO_HOST, Wire
from experiments._apps import receive, send_and_recycle, set_up_app
from experiments._drivers import MAX_GAP_SECONDS, Run, deques, prime_rx, tick
from redleaf_nb.apps.httpd import Httpd
from redleaf_nb.apps.tcpip.stack import NetStack
from redleaf_nb.interfaces.net import Net
from redleaf_nb.kernel import heap as hp
from redleaf_nb.kernel.proxy import RPC_PANIC, RPC_STATUS, jit_current
from redleaf_nb.lowlevel.clock import rdtsc, tsc_hz
from redleaf_nb.lowlevel.memory import load


def _serve_loop(entry, step, app, k, target, dev, now_addr, rx, got, tx, sent, pool, batch,
                span, max_gap, with_client, ld, clients, req, meta, frames, pkt, out):
    """As experiments/_apps.py's loop, for ``span`` cycles of device time from now, with
    the client machine's turn after each device step (``with_client``; its cycles are
    left out of the device clock) and the time handed to the server."""
    me = jit_current(k)
    calls = status = stolen = done = 0
    step(dev)
    now = load(now_addr, 0)
    limit = now + span
    while True:
        going, now, stolen = tick(step, dev, now_addr, limit, now, stolen, max_gap)
        if not going:
            break
        if with_client:
            t0 = rdtsc()
            done += load_step(ld[0], clients, req, meta, frames, pkt, out, now)
            nic_exclude(dev, np.int64(rdtsc() - t0))
        status, rx, got = receive(entry, k, target, rx, got)
        if status != 0:
            break
        app(k, me, got, tx, pool, now)
        status, tx, sent = send_and_recycle(entry, k, target, me, tx, sent, pool, rx, batch)
        if status != 0:
            break
        calls += 1
    return status, done, calls, stolen, rx, got, tx, sent


_LOOPS: dict = {}
SERVE_TYPE = nbt.FunctionType(nbt.int64(*(nbt.int64,) * 6))   # serve(k, me, rx, tx, pool, now)


def _compiled_loop(entry_type, load_args):
    key = (entry_type, tuple(typeof(a) for a in load_args))
    if key not in _LOOPS:
        i64 = nbt.int64
        step_t = nbt.FunctionType(nbt.none(i64))
        sig = nbt.Tuple((i64,) * 8)(entry_type, step_t, SERVE_TYPE, *(i64,) * 12,
                                    nbt.boolean, *key[1])
        _LOOPS[key] = njit(sig, cache=True)(_serve_loop)
    return _LOOPS[key]


class HttpdMachine:
    """The server in ``config`` (a name of :data:`redleaf_nb.configs.CONFIGS`) with
    ``app`` (default: an :class:`Httpd` with the default files) on a NIC whose wire
    (``self.wire``) leads to the peer."""

    def __init__(self, config: str = "redleaf-driver", app: Httpd | None = None,
                 batch: int = 32, ring: int = 512, profile: str = "unlimited",
                 wire_capacity: int = 4096):
        self.hz = tsc_hz()
        self.config = config
        self.wire = Wire(capacity=wire_capacity)
        self.nic = Nic82599(nic_profile(profile), hz=self.hz, wire=self.wire)
        self.app = app or Httpd(stack=NetStack(hz=self.hz))
        self.kernel, self.entry, deques = set_up_app(self.app, config, self.nic, batch, ring)
        self.pool, *self._deques = deques
        self.batch, self.ring = batch, ring
        self.reported = 0   # driver calls that failed behind a shadow (a batch lost)
        self._idle = HttpLoad(Wire(1), 1)   # the loop's client arguments when there is none
        # compiled now, before the clock starts and before any peer waits on the wire (a
        # real client's ARP gives up after 3 s)
        blank = np.zeros(64, np.int64)
        nic_step(blank.ctypes.data)
        self._loop(blank.ctypes.data, blank.ctypes.data, -1 << 40, None)
        self.nic.start_clock()

    def _loop(self, dev, now_addr, span, client):
        peer = client or self._idle
        load_args = (peer.state, *peer.args())
        e = self.entry
        loop = _compiled_loop(e.type, load_args)
        status, done, calls, stolen, *self._deques = loop(
            e.fn, nic_step, self.app.forward, self.kernel.heap.k, e.target, dev, now_addr,
            *self._deques, self.pool, self.batch, span, int(MAX_GAP_SECONDS * self.hz),
            client is not None, *load_args)
        return status, done, calls, stolen

    def _renew_deques(self) -> None:
        """New deques for those lost with a crashed driver; the new driver's RX ring
        filled from the pool."""
        heap, owner = self.kernel.heap, self.entry.runs_as
        live = [hp.slot_of(heap.k, h) >= 0 for h in self._deques]
        rx, got, tx, sent = self._deques
        if not (live[0] and live[1]):
            rx, got = deques(self.kernel, Net, owner)
            rx, got = prime_rx(self.kernel, self.entry, self.pool, rx, got, self.ring)
        if not (live[2] and live[3]):
            tx, sent = deques(self.kernel, Net, owner)
        self._deques = [rx, got, tx, sent]

    @property
    def now(self) -> int:
        """The device clock, in cycles."""
        return int(self.nic.regs[NIC_NOW])

    def run(self, seconds: float, client: HttpLoad | None = None) -> Run:
        """Serve for ``seconds`` more of device time, with the simulated ``client`` on
        the wire or not (the wire's other end is then whoever puts frames on it).

        A driver call that fails behind a shadow (which restarted the driver, but reports
        a batch whose deques were lost with it) is counted in :attr:`reported`; the
        lost deques are replaced, the new driver's RX ring filled, and serving goes on."""
        before = self.nic.stats()
        span, start = int(seconds * self.hz), self.now
        done = calls = stolen = 0
        while True:
            status, d, c, st = self._loop(self.nic.mmio, self.nic.mmio + 8 * NIC_NOW,
                                          span - (self.now - start), client)
            done, calls, stolen = done + d, calls + c, stolen + st
            if status == 0:
                break
            if "shadow" not in self.config or status != RPC_PANIC:
                raise RuntimeError(f"httpd in {self.config}: the driver call failed "
                                   f"(status {status}: {RPC_STATUS.get(status, '?')})")
            self.reported += 1
            self._renew_deques()
        stats = {key: value - before.get(key, 0) if key != "dma_halts" else value
                 for key, value in self.nic.stats().items()}
        return Run.of(done, calls, stolen, stats, self.hz)

    def check(self) -> None:
        """The exchange heap's invariants (after a run)."""
        self.kernel.heap.check_invariants()


def serve_tap(machine: HttpdMachine, tap, client: subprocess.Popen, timeout: float,
              slice_seconds: float = 0.0002) -> bool:
    """Carry frames between ``tap`` and the machine's wire, serving in slices of
    ``slice_seconds``, until the ``client`` process (running in the TAP's namespace)
    exits or ``timeout`` seconds pass (then it is killed): whether it exited by itself."""
    deadline = time.monotonic() + timeout
    wire = machine.wire
    while client.poll() is None:
        if time.monotonic() > deadline:
            client.kill()
            client.wait()
            return False
        while (frame := tap.read()) is not None:
            wire.put(TO_HOST, frame)
        machine.run(slice_seconds)
        while (frame := wire.take(FROM_HOST)) is not None:
            tap.write(frame)
    return True


def run_in_tap(machine: HttpdMachine, tap, argv: list[str], timeout: float) -> str:
    """Run the client ``argv`` inside the TAP's namespace while :func:`serve_tap` carries
    its frames: what it printed (stdout and stderr; keep it short: a full pipe would
    stall the client). A client still running after ``timeout`` seconds is killed, and
    that is a TimeoutError."""
    proc = subprocess.Popen(tap.command(*argv), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    if not serve_tap(machine, tap, proc, timeout):
        raise TimeoutError(f"{argv[0]} through the TAP did not finish in {timeout} s")
    return proc.stdout.read()
