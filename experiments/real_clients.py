"""Real, unmodified clients against our domains, beside real servers, in one run on
this machine: wrk and ab against our httpd and TCP/IP stack through a TAP device (in a
namespace of the experiment's own) and through the socket bridge, and against nginx
serving the same files; memcaslap (libmemcached-tools) and pymemcache against our
key-value store through the bridge and against memcached.

Correctness comes first: curl fetches every file (0 bytes to 1 MiB) byte-exact from
each server; pymemcache reads back what it set (values of 0 bytes to 1 MiB). Then
the rates, each run bounded in count and time, clients pinned to core 1 and the
servers (ours: this process) to core 0. Then, separately, crashes during real-client
runs: the key-value store without and with a shadow, the httpd behind a shadow (the
bridge), and the NIC driver behind its shadow (the TAP path), counting what the
clients saw.

A row per measurement: ``part`` (correctness, rate, crash), ``client``, ``server``
(``ours via TAP``, ``ours via bridge``, ``nginx``, ``memcached``), ``path``/``what``, the
rate, and the client's own error counts.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from devices import tap as taps
from experiments import _linux_servers as linux
from experiments._crashes import CLIENT_CORE, HTTP_503, KV_FAILED, crash_rows
from experiments._machine import HttpdMachine, run_in_tap
from redleaf_nb.apps.httpd import default_files, httpd_service
from redleaf_nb.apps.memcached import MemcachedService
from redleaf_nb.bridge import SocketBridge
from redleaf_nb.experiments import Experiment, Param
from redleaf_nb.kernel.domain import Kernel

TAP, BRIDGE, NGINX, MEMCACHED = "ours via TAP", "ours via bridge", "nginx", "memcached"
SERVER_IP = "10.0.0.2"


class Servers:
    """Our servers and the real ones, started for one experiment and stopped after."""

    def __init__(self, stack: contextlib.ExitStack, tap: bool, real: bool, config: str):
        files = {p: d for p, d in default_files().items() if p != "/"}
        self.files = files
        self.kernel = Kernel(heap_bytes=512 << 20, max_objects=1 << 16)
        self.httpd = stack.enter_context(SocketBridge(
            self.kernel, httpd_service(self.kernel), failure=HTTP_503))
        self.kv = stack.enter_context(SocketBridge(
            self.kernel, self.kernel.create("memcached", MemcachedService, memory=0),
            failure=KV_FAILED))
        self.tap = self.machine = None
        if tap:
            self.machine = HttpdMachine(config)
            self.tap = stack.enter_context(taps.Tap())
        self.nginx = stack.enter_context(linux.nginx(files, core=0)) if real else None
        self.memcached = stack.enter_context(linux.memcached(core=0)) if real else None

    def url(self, server: str, path: str) -> str:
        port = {BRIDGE: self.httpd.port, NGINX: self.nginx}.get(server)
        return f"http://{SERVER_IP}{path}" if server == TAP else f"http://127.0.0.1:{port}{path}"

    def client(self, server: str, argv: list[str], timeout: float) -> str:
        """Run a client program against ``server`` (in the TAP's namespace for ours via
        TAP, with frames carried meanwhile): its output."""
        argv = ["taskset", "-c", str(CLIENT_CORE), *argv]
        if server != TAP:
            return subprocess.run(argv, capture_output=True, text=True, timeout=timeout).stdout
        return run_in_tap(self.machine, self.tap, argv, timeout)


def _http_servers(s: Servers) -> list[str]:
    return [x for x, up in ((TAP, s.tap), (BRIDGE, True), (NGINX, s.nginx)) if up]


def _curl(s: Servers, server: str, path: str) -> bytes:
    """The body curl fetches from ``server`` (through the TAP, frames carried meanwhile),
    by way of a file: a pipe would fill and stall curl while we wait for it to exit."""
    with tempfile.NamedTemporaryFile(prefix="redleaf-curl-") as body:
        s.client(server, ["curl", "-s", "--max-time", "20", "-o", body.name,
                          s.url(server, path)], 30)
        return Path(body.name).read_bytes()


def _fetches(s: Servers) -> list[dict]:
    return [{"part": "correctness", "client": "curl", "server": server,
             "what": f"GET {path} ({len(data)} bytes)", "ok": _curl(s, server, path) == data}
            for server in _http_servers(s) for path, data in s.files.items()]


def _kv_roundtrip(port: int) -> bool:
    """Set values of 0 bytes to 1 MiB under keys of 1 to 250 bytes, read them back."""
    from pymemcache.client.base import Client
    rng = np.random.default_rng(1)
    client = Client(("127.0.0.1", port), connect_timeout=5, timeout=10)
    try:
        want = {}
        for i, size in enumerate((0, 1, 100, 1000, 10_000, 100_000, 1_000_000)):
            key = (b"k%d-" % i) * (1 + i * 8)
            want[key[:250]] = rng.integers(0, 256, size, np.uint8).tobytes()
        for key, value in want.items():
            client.set(key, value, noreply=False)
        return all(client.get(key) == value for key, value in want.items()) and \
            client.get_many(list(want)) == want
    finally:
        client.close()


def _kv_load(port: int, ops: int, value_size: int = 64) -> dict:
    """A closed loop of ``ops`` memcached operations (90% get, 10% set) from pymemcache:
    operations/s, errors and wrong reads."""
    from pymemcache.client.base import Client
    client = Client(("127.0.0.1", port), connect_timeout=5, timeout=10)
    keys = [b"key:%d" % i for i in range(1000)]
    value = b"v" * value_size
    for key in keys:
        client.set(key, value)
    errors = wrong = 0
    t0 = time.perf_counter()
    for i in range(ops):
        key = keys[i % len(keys)]
        try:
            if i % 10 == 0:
                client.set(key, value, noreply=False)
            elif client.get(key) != value:
                wrong += 1
        except Exception:
            errors += 1
    seconds = time.perf_counter() - t0
    client.close()
    return {"requests_per_s": ops / seconds, "requests": ops, "errors": errors, "wrong": wrong}


def _rates(s: Servers, params: dict) -> list[dict]:
    rows, path = [], params["path"]
    for server in _http_servers(s):
        got = linux.parse_wrk(s.client(server, linux.wrk_argv(
            s.url(server, path), params["seconds"], params["connections"]), params["seconds"] + 60))
        rows.append({"part": "rate", "client": "wrk", "server": server, "what": f"GET {path}",
                     **got})
        got = linux.parse_ab(s.client(server, linux.ab_argv(
            s.url(server, path), params["ab_requests"], params["connections"]), 120))
        rows.append({"part": "rate", "client": "ab -k", "server": server, "what": f"GET {path}",
                     **got})
    for server, port in ((BRIDGE, s.kv.port), (MEMCACHED, s.memcached)):
        if port is None:
            continue
        got = linux.memcaslap(port, params["seconds"], core=CLIENT_CORE)
        rows.append({"part": "rate", "client": "memcaslap", "server": server,
                     "what": "90% get, 10% set, 1 KiB values",
                     "requests_per_s": got["operations_per_s"], "requests": got["operations"]})
        got = _kv_load(port, params["kv_ops"])
        rows.append({"part": "rate", "client": "pymemcache", "server": server,
                     "what": "90% get, 10% set, 64-byte values", **got})
    return rows


def run(params: dict) -> pd.DataFrame:
    missing = linux.missing("nginx", "wrk", "ab", "memcached", "memcaslap", "curl")
    tap_why = taps.unavailable()
    if missing:
        print(f"real_clients: {', '.join(missing)} not installed (scripts/system-deps.sh "
              "installs them as root): the real servers and clients are left out")
    if tap_why:
        print(f"real_clients: no TAP path here ({tap_why}); the bridge only")
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {0})           # our servers on core 0, as nginx and memcached
    rows = []
    try:
        with contextlib.ExitStack() as stack:
            s = Servers(stack, tap=not tap_why, real=not missing, config=params["config"])
            rows += _fetches(s)
            for server, port in ((BRIDGE, s.kv.port), (MEMCACHED, s.memcached)):
                if port is not None:
                    rows.append({"part": "correctness", "client": "pymemcache", "server": server,
                                 "what": "set then get, values of 0 B..1 MiB",
                                 "ok": _kv_roundtrip(port)})
            if not missing:
                rows += _rates(s, params)
        rows.append(_leftovers())
        if params["crash"]:
            rows += crash_rows(params, tap=not tap_why, clients=not missing)
    finally:
        os.sched_setaffinity(0, affinity)
    df = pd.DataFrame(rows)
    df["tap"] = "available" if not tap_why else tap_why
    return df


def _leftovers() -> dict:
    left = taps.leftovers()
    return {"part": "correctness", "client": "teardown", "server": "namespaces and links",
            "what": "none of ours left", "ok": not left["namespaces"] and not left["links"]}


def plot(ours: pd.DataFrame, paper: pd.DataFrame):
    import matplotlib.pyplot as plt
    rates = ours[ours.part == "rate"]
    fig, ax = plt.subplots(figsize=(10.5, 4.4))
    labels = [f"{c}\n{s.replace(' via ', chr(10) + 'via ')}" for c, s in
              zip(rates.client, rates.server)]
    colours = ["#4C72B0" if s.startswith("ours") else "#999999" for s in rates.server]
    ax.bar(np.arange(len(rates)), rates.requests_per_s / 1e3, color=colours)
    ax.set_xticks(np.arange(len(rates)), labels, fontsize=7)
    ax.axhline(10, ls=":", c="k", lw=1)
    ax.axhline(20, ls="--", c="k", lw=1)
    ax.text(len(rates) - 0.5, 10.3, "target via TAP (10K)", ha="right", fontsize=7)
    ax.text(len(rates) - 0.5, 20.3, "target via bridge (20K)", ha="right", fontsize=7)
    ax.set_ylabel("thousand requests (operations)/s")
    ax.set_title("Real clients against our domains (blue) and real servers (grey), one run; "
                 "clients on core 1, servers on core 0", fontsize=9)
    fig.tight_layout()
    return fig


def targets(ours: pd.DataFrame) -> dict:
    """Our numbers against the issue's targets (reported, never asserted)."""
    ok = ours[ours.part == "correctness"]
    rates = ours[ours.part == "rate"]
    out = {"byte-exact fetches and read-backs (all)": f"{int(ok.ok.sum())} of {len(ok)}"}
    for col in ("socket_errors", "non_2xx", "failed", "errors", "wrong"):
        if col in rates:
            out[f"{col} in the clean run (target 0)"] = int(rates[col].fillna(0).sum())
    for server, low in ((TAP, 10e3), (BRIDGE, 20e3)):
        mine = rates[rates.server == server]
        for client, rate in zip(mine.client, mine.requests_per_s):
            out[f"{client} -> {server} requests/s (target >= {low / 1e3:g}K)"] = round(rate)
    return out


def summary(ours: pd.DataFrame) -> pd.DataFrame:
    cols = ["part", "client", "server", "what", "ok", "requests_per_s", "requests",
            "socket_errors", "non_2xx", "failed", "errors", "wrong", "recovered"]
    return ours[[c for c in cols if c in ours]].round(1)


EXPERIMENT = Experiment(
    name="real_clients",
    figure="beyond the paper",
    title="Real clients (curl, wrk, ab, memcaslap, pymemcache) against our domains beside "
          "nginx and memcached",
    paper_csv=None,
    params=(
        Param("seconds", int, 1, 3, "seconds of each wrk and memcaslap run", low=1, high=60),
        Param("ab_requests", int, 5000, 50000, "requests of each ab run", low=100,
              high=1_000_000),
        Param("kv_ops", int, 5000, 50000, "operations of each pymemcache load", low=100,
              high=1_000_000),
        Param("connections", int, 20, 20, "wrk and ab connections", low=1, high=1000),
        Param("path", str, "/index.html", "/index.html", "the file wrk and ab ask for",
              choices=tuple(f for f in default_files() if f != "/")),
        Param("config", str, "redleaf-driver", "redleaf-driver",
              "configuration of the server behind the TAP",
              choices=("redleaf-driver", "redleaf-domain", "rv6-domain")),
        Param("crash", bool, True, True, "also the runs with a crash"),
    ),
    run=run,
    plot=plot,
    bound=("Host-bound on both sides: one core for our servers (this Python process: the "
           "TAP's frames and the bridge's sockets are carried by Python, the domains run "
           "jitted), one for the clients."),
    notes=("Through the TAP every frame crosses into and out of Linux by a read or write on "
           "the TAP's descriptor in Python; through the bridge every request is a proxied "
           "call into the domain. Both are far from the in-simulation rate of the httpd "
           "experiment, which has no Linux on the path."),
    targets=targets,
    summary=summary,
)
