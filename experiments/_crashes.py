"""The crash runs of the real_clients experiment: a domain panics during a run of real
clients, and we count what the clients saw. Each is a run of its own, apart from the
clean run: the key-value store without a shadow (the bridge reports the failure to
the client of the request in flight and of every later one), the key-value store
behind a shadow (the shadow re-creates it and retries the request: the clients see
no error, but the items are lost with the domain), the httpd behind a shadow (wrk
through the bridge), and the NIC driver behind its shadow on the TAP path (frames in
flight are lost with it; TCP sends them again).
"""
from __future__ import annotations

import subprocess

from devices import tap as taps
from experiments import _linux_servers as linux
from experiments._machine import HttpdMachine, run_in_tap
from redleaf_nb.apps.httpd import httpd_service
from redleaf_nb.apps.memcached import MemcachedService
from redleaf_nb.bridge import SocketBridge
from redleaf_nb.kernel.domain import Kernel
from redleaf_nb.kernel.faults import Fault

CLIENT_CORE = 1
HTTP_503 = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
KV_FAILED = b"SERVER_ERROR the key-value domain failed\r\n"


def _kv_crash(ops: int, shadow: bool) -> dict:
    from pymemcache.client.base import Client
    k = Kernel(heap_bytes=256 << 20, max_objects=1 << 16)
    proxy = k.create("memcached", MemcachedService, memory=0)
    if shadow:
        proxy = k.create_shadow("memcached-shadow", "memcached")
    k.inject_crash("memcached", on_call="serve", after=ops // 2)
    errors = lost = 0
    with SocketBridge(k, proxy, failure=KV_FAILED) as b:
        client = Client(("127.0.0.1", b.port), connect_timeout=5, timeout=10)
        client.set(b"before", b"x" * 64, noreply=False)
        for i in range(ops):
            try:
                if i % 2 == 0:
                    client.set(b"key:%d" % (i % 100), b"v" * 64, noreply=False)
                elif client.get(b"before") is None:
                    lost += 1          # an item the crash took with it
            except Exception:
                errors += 1
        after_ok = _answers(client)
        client.close()
        failures = b.counters["failures"]
    return {"part": "crash", "client": "pymemcache", "server": "ours via bridge",
            "what": f"memcached domain panics at call {ops // 2}" +
                    (", behind a shadow" if shadow else ", no shadow"),
            "requests": ops, "errors": errors, "wrong": lost, "bridge_failures": failures,
            "recovered": after_ok}


def _answers(client) -> bool:
    try:
        return client.set(b"after", b"ok", noreply=False) and client.get(b"after") == b"ok"
    except Exception:
        return False


def _httpd_crash(seconds: int, connections: int) -> dict:
    k = Kernel(heap_bytes=256 << 20, max_objects=1 << 16)
    httpd_service(k)
    proxy = k.create_shadow("httpd-shadow", "httpd")
    k.inject_crash("httpd", on_call="serve", after=2000)
    with SocketBridge(k, proxy, failure=HTTP_503) as b:
        url = f"http://127.0.0.1:{b.port}/index.html"
        got = linux.wrk(url, seconds, connections, core=CLIENT_CORE)
        after = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url],
                               capture_output=True, text=True, timeout=30).stdout
        failures = b.counters["failures"]
    return {"part": "crash", "client": "wrk", "server": "ours via bridge",
            "what": "httpd domain panics at call 2000, behind a shadow", **got,
            "bridge_failures": failures, "recovered": after == "200"}


def _driver_crash(seconds: int, connections: int) -> dict:
    machine = HttpdMachine("redleaf-shadow")
    driver = machine.entry.driver.domain.name
    machine.kernel.inject(driver, Fault("panic", point="mid_batch", after=20_000))
    with taps.Tap() as tap:
        got = linux.parse_wrk(run_in_tap(machine, tap, [
            "taskset", "-c", str(CLIENT_CORE),
            *linux.wrk_argv("http://10.0.0.2/index.html", seconds, connections)], seconds + 60))
        fired = machine.kernel.fault_counts(driver)["injected"]
        after = run_in_tap(machine, tap, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                          "--max-time", "10", "http://10.0.0.2/index.html"], 20)
    machine.check()
    return {"part": "crash", "client": "wrk", "server": "ours via TAP",
            "what": f"ixgbe driver panics ({fired}x), behind its shadow (redleaf-shadow)",
            **got, "retransmits": machine.app.counters()["tcp_retransmits"],
            "batches_lost": machine.reported,
            "recovered": after == "200"}


def crash_rows(params: dict, tap: bool, clients: bool) -> list[dict]:
    rows = [_kv_crash(params["kv_ops"] // 5, shadow=False),
            _kv_crash(params["kv_ops"] // 5, shadow=True)]
    if clients:
        rows.append(_httpd_crash(params["seconds"], params["connections"]))
        if tap:
            rows.append(_driver_crash(params["seconds"], params["connections"]))
    return rows
