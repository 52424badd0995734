"""Software nobody here wrote against our domains: curl through the TAP device into our
TCP/IP stack, curl and wrk through the socket bridge into the httpd, pymemcache (and
its own integration test suite) and memcaslap into the key-value store; crashes seen
by real clients; and the httpd and real_clients experiments end to end, small."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from devices import tap as taps
from experiments import _linux_servers as linux
from experiments._machine import HttpdMachine, serve_tap
from redleaf_nb import claims as C
from redleaf_nb import experiments as ex
from redleaf_nb.apps.httpd import default_files, httpd_service
from redleaf_nb.apps.memcached import MemcachedService, Protocol
from redleaf_nb.apps.kvdata import KvData
from redleaf_nb.bridge import SocketBridge
from redleaf_nb.kernel.domain import Kernel

FILES = {p: d for p, d in default_files().items() if p != "/"}
PAPER = C.load_paper(ex.repo_root() / "data" / "paper")
needs_tap = pytest.mark.skipif(taps.unavailable() is not None,
                               reason=f"no TAP here: {taps.unavailable()}")


def needs(*commands):
    gone = linux.missing(*commands)
    return pytest.mark.skipif(bool(gone), reason=f"not installed: {', '.join(gone)} "
                              "(scripts/system-deps.sh installs them as root)")


@pytest.fixture(scope="module")
def kernel():
    return Kernel(heap_bytes=256 << 20, max_objects=1 << 16)


@pytest.fixture(scope="module")
def http_bridge(kernel):
    with SocketBridge(kernel, httpd_service(kernel), failure=b"HTTP/1.1 503 x\r\n\r\n") as b:
        yield b


@pytest.fixture(scope="module")
def kv_bridge(kernel):
    with SocketBridge(kernel, kernel.create("memcached", MemcachedService, memory=0)) as b:
        yield b


# --- through the TAP: real Linux TCP against our stack ------------------------------

@needs_tap
@needs("curl")
def test_curl_through_the_tap_fetches_every_file_byte_exact_and_nothing_is_left(tmp_path):
    machine = HttpdMachine("redleaf-driver")
    with taps.Tap() as tap:
        for path, data in FILES.items():
            out = tmp_path / "body"
            proc = subprocess.Popen(tap.command("curl", "-s", "--max-time", "20", "-o",
                                                str(out), f"http://10.0.0.2{path}"))
            assert serve_tap(machine, tap, proc, 30) and proc.returncode == 0, path
            assert out.read_bytes() == data, path
    counters = machine.app.counters()
    assert counters["ok"] == len(FILES) and counters["tcp_bad_checksum"] == 0
    assert taps.leftovers() == {"namespaces": [], "links": []}
    machine.check()


@needs_tap
@needs("curl")
def test_curl_through_a_lossy_reordering_tap_path_still_gets_every_byte(tmp_path):
    """Real Linux TCP against ours over a wire that loses every 40th frame and swaps
    every 25th with the one before it, both ways: retransmissions carry the file."""
    from devices.wire import FROM_HOST, TO_HOST
    machine = HttpdMachine("redleaf-driver")
    for direction in (TO_HOST, FROM_HOST):
        machine.wire.impair(direction, drop_every=40, reorder_every=25)
    out = tmp_path / "body"
    with taps.Tap() as tap:
        proc = subprocess.Popen(tap.command("curl", "-s", "--max-time", "60", "-o", str(out),
                                            "http://10.0.0.2/1M.bin"))
        assert serve_tap(machine, tap, proc, 90) and proc.returncode == 0
    assert out.read_bytes() == FILES["/1M.bin"]
    counters = machine.app.counters()
    assert machine.wire.lost(FROM_HOST) > 0 and machine.wire.lost(TO_HOST) > 0
    assert counters["tcp_retransmits"] + counters["tcp_fast_retransmits"] > 0


@needs_tap
def test_the_namespace_reaches_nothing_but_our_stack():
    with taps.Tap() as tap:
        routes = subprocess.run(tap.command("ip", "route"), capture_output=True,
                                text=True).stdout
        links = subprocess.run(tap.command("ip", "-o", "link"), capture_output=True,
                               text=True).stdout
    assert "default" not in routes and routes.startswith("10.0.0.0/24")
    assert {line.split(":")[1].strip() for line in links.splitlines()} == {"lo", tap.name}
    assert taps.leftovers() == {"namespaces": [], "links": []}


# --- through the bridge ---------------------------------------------------------------

@needs("curl")
def test_curl_through_the_bridge_fetches_every_file_byte_exact(http_bridge, tmp_path):
    for path, data in FILES.items():
        out = tmp_path / "body"
        subprocess.run(["curl", "-s", "-o", str(out), f"http://127.0.0.1:{http_bridge.port}"
                        f"{path}"], check=True, timeout=30)
        assert out.read_bytes() == data, path
    head = subprocess.run(["curl", "-s", "-I", f"http://127.0.0.1:{http_bridge.port}/nope"],
                          capture_output=True, text=True, timeout=30).stdout
    assert head.startswith("HTTP/1.1 404 Not Found")


@needs("wrk")
def test_wrk_through_the_bridge_sees_no_errors(http_bridge):
    got = linux.wrk(f"http://127.0.0.1:{http_bridge.port}/index.html", 1, 20, core=None)
    assert got["requests"] > 100 and got["socket_errors"] == 0 and got["non_2xx"] == 0


def test_pymemcache_reads_back_what_it_set(kv_bridge):
    from pymemcache.client.base import Client
    client = Client(("127.0.0.1", kv_bridge.port), timeout=10)
    values = {b"k%d" % n: bytes(range(256)) * (n // 256) + b"x" * (n % 256)
              for n in (0, 1, 1000, 100_000, 1_000_000)}
    client.set_many(values, noreply=False)
    assert client.get_many(list(values)) == values
    assert client.cas(b"k1", b"new", client.gets(b"k1")[1], noreply=False)
    assert client.incr(b"n", 1) is None and client.set(b"n", b"41") and client.incr(b"n", 1) == 42
    client.close()


def test_pymemcaches_own_integration_tests_pass_against_the_bridge(kv_bridge):
    """pymemcache's test suite, unmodified, pointed at our key-value domain; nothing of
    it is skipped but what it skips itself (its TLS test)."""
    import pymemcache
    suite = Path(pymemcache.__file__).parent / "test" / "test_integration.py"
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-m", "integration", "--server", "127.0.0.1", "--port",
                          str(kv_bridge.port), str(suite)], capture_output=True, text=True,
                         timeout=300, cwd=suite.parent)
    assert out.returncode == 0, out.stdout[-3000:]
    assert " passed" in out.stdout and "failed" not in out.stdout


@needs("memcaslap")
def test_memcaslap_runs_against_the_bridge(kv_bridge):
    got = linux.memcaslap(kv_bridge.port, 1, concurrency=2, core=None)
    assert got["operations"] > 100


# --- the memcached text protocol: memcached's exact replies -------------------------

BAD_OR_SIMPLE = [b"bogus\r\n", b"\r\n", b"set k 0 0\r\n", b"set k x 0 1\r\nv\r\n",
                 b"set k 0 0 1\r\nvv\r\n", b"set " + b"k" * 251 + b" 0 0 1\r\nv\r\n",
                 b"get\r\n", b"incr k x\r\n", b"delete a b c\r\n", b"touch k\r\n",
                 b"verbosity\r\n", b"get nope\r\n", b"delete nope\r\n", b"stats items\r\n",
                 b"set k 0 0 2\r\nab\r\nincr k 1\r\n", b"set n 0 0 1\r\n7\r\ndecr n 9\r\n",
                 b"gat\r\n", b"gat 0\r\n", b"touch k x\r\n", b"flush_all x\r\n", b"incr k\r\n",
                 b"set k 0 0 1 noreply\r\nvv\r\n", b"gets\r\n", b"incr k -1\r\n",
                 b"touch nope 10\r\n", b"decr nope 1\r\n", b"get a\nget b\n"]


def _ask(port: int, request: bytes) -> bytes:
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        sock.settimeout(0.3)
        got = b""
        try:
            while chunk := sock.recv(65536):
                got += chunk
        except TimeoutError:
            pass
    return got


@needs("memcached")
@pytest.mark.parametrize("request_bytes", BAD_OR_SIMPLE)
def test_every_bad_or_simple_request_gets_the_reply_real_memcached_gives(request_bytes):
    ours = Protocol(KvData()).handle(request_bytes)
    with linux.memcached(core=None) as port:
        theirs = _ask(port, request_bytes)
    assert ours == (len(request_bytes), theirs, 0)


def test_storage_commands_and_their_answers():
    p = Protocol(KvData())
    script = [(b"add k 5 0 2\r\nhi\r\n", b"STORED\r\n"), (b"add k 0 0 1\r\nx\r\n", b"NOT_STORED\r\n"),
              (b"replace nope 0 0 1\r\nx\r\n", b"NOT_STORED\r\n"),
              (b"append k 0 0 1\r\n!\r\n", b"STORED\r\n"), (b"prepend k 0 0 1\r\n<\r\n", b"STORED\r\n"),
              (b"gets k\r\n", b"VALUE k 5 4 3\r\n<hi!\r\nEND\r\n"),
              (b"cas k 0 0 1 2\r\nz\r\n", b"EXISTS\r\n"), (b"cas k 0 0 1 3\r\nz\r\n", b"STORED\r\n"),
              (b"cas nope 0 0 1 3\r\nz\r\n", b"NOT_FOUND\r\n"),
              (b"set n 0 0 20\r\n18446744073709551615\r\n", b"STORED\r\n"),
              (b"incr n 1\r\n", b"0\r\n"), (b"decr n 5\r\n", b"0\r\n"),
              (b"incr k 1\r\n", b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"),
              (b"set q 0 0 1 noreply\r\nq\r\n", b""), (b"touch q 100\r\n", b"TOUCHED\r\n"),
              (b"gat 0 q k\r\n", b"VALUE q 0 1\r\nq\r\nVALUE k 0 1\r\nz\r\nEND\r\n"),
              (b"flush_all\r\n", b"OK\r\n"), (b"get q\r\n", b"END\r\n")]
    for request, reply in script:
        assert p.handle(request) == (len(request), reply, 0), request


def test_half_a_request_waits_and_a_too_large_value_is_swallowed():
    p = Protocol(KvData())
    assert p.handle(b"set k 0 0 5\r\nhel") == (0, b"", 0)
    assert p.handle(b"get k") == (0, b"", 0)
    used, reply, then = p.handle(b"set k 0 0 2000000\r\nabc")
    assert reply == b"SERVER_ERROR object too large for cache\r\n"
    assert then - 2 == 2_000_002 - 3 and used == len(b"set k 0 0 2000000\r\nabc")
    assert p.handle(b"x" * 3000)[1:] == (b"CLIENT_ERROR line too long\r\n", 1)
    assert p.handle(b"quit\r\n") == (6, b"", 1)


# --- crashes seen by real clients -----------------------------------------------------

def test_a_crashed_kv_domain_is_reported_to_the_client_and_a_shadow_brings_it_back():
    from pymemcache.client.base import Client
    from pymemcache.exceptions import MemcacheServerError
    for shadow in (False, True):
        k = Kernel(heap_bytes=64 << 20, max_objects=1 << 12)
        proxy = k.create("memcached", MemcachedService, memory=0)
        if shadow:
            proxy = k.create_shadow("memcached-shadow", "memcached")
        with SocketBridge(k, proxy, failure=b"SERVER_ERROR the domain failed\r\n") as b:
            client = Client(("127.0.0.1", b.port), timeout=10)
            client.set(b"a", b"1", noreply=False)
            k.inject_crash("memcached", on_call="serve")
            if shadow:
                assert client.set(b"b", b"2", noreply=False)      # retried after the restart
                assert client.get(b"a") is None and client.get(b"b") == b"2"
                assert b.counters["failures"] == 0
            else:
                with pytest.raises(MemcacheServerError, match="the domain failed"):
                    client.set(b"b", b"2", noreply=False)
                assert b.counters["failures"] == 1
            client.close()
        k.heap.check_invariants()


# --- the experiments end to end, small --------------------------------------------------

def test_httpd_experiment_serves_the_simulated_client_in_every_configuration():
    exp = ex.get("httpd")
    df = exp.run(exp.resolve(seconds=0.01, repeats=1, wrk_seconds=1))
    ours = df.set_index("config")
    for config in ("redleaf-driver", "rv6-domain", "rv6-shadow"):
        assert ours.client_completed[config] > 100 and ours.client_non_2xx[config] == 0
        assert ours.cycles_per_req[config] > ours.peer_cycles_per_req[config] * 0 + 100
    targets = exp.targets(df)
    assert any("redleaf-driver / nginx" in t for t in targets) == (not linux.missing("nginx",
                                                                                       "wrk"))
    v = next(c for c in C.CLAIMS if c.number == 15).verdict({"httpd": df}, PAPER)
    assert v.verdict != C.NOT_RUN or linux.missing("nginx", "wrk")
    exp.plot(df, ex.paper(exp))


@needs("nginx", "wrk", "ab", "memcached", "memcaslap", "curl")
def test_real_clients_experiment_is_correct_first_and_counts_crashes():
    exp = ex.get("real_clients")
    df = exp.run(exp.resolve(seconds=1, ab_requests=500, kv_ops=500))
    correct = df[df.part == "correctness"]
    assert correct.ok.all(), correct[~correct.ok.astype(bool)]
    rates = df[df.part == "rate"]
    assert (rates.requests_per_s > 0).all()
    assert rates.socket_errors.fillna(0).sum() == 0 and rates.non_2xx.fillna(0).sum() == 0
    crash = df[df.part == "crash"].set_index("what")
    no_shadow = crash.filter(like="no shadow", axis=0).iloc[0]
    with_shadow = crash.filter(like="memcached domain panics at call 50, behind", axis=0).iloc[0]
    assert no_shadow.errors > 0 and not no_shadow.recovered
    assert with_shadow.errors == 0 and with_shadow.recovered
    assert crash.recovered.iloc[2:].all()
    exp.plot(df, ex.paper(exp))


def test_a_bug_in_the_httpd_domain_is_a_panic_that_the_bridge_reports_and_nothing_else():
    """Corrupt the httpd's file table (a bug's worth of a wrong offset): the bounds-checked
    domain code panics, the call fails, the client gets a 503, and the heap is whole."""
    from redleaf_nb.kernel.checker import check_function
    from redleaf_nb.apps.httpd import Httpd
    for fn in Httpd.functions:
        check_function(fn)        # the stack and httpd are checked domain code
    k = Kernel(heap_bytes=64 << 20, max_objects=1 << 12)
    proxy = httpd_service(k)
    app = proxy.domain.impl.app
    row = list(app.files).index("/1K.bin") + len(app.table) - len(app.files)
    app.table[row]["at"] = 1 << 40
    with SocketBridge(k, proxy, failure=b"HTTP/1.1 503 Service Unavailable\r\n\r\n") as b:
        got = subprocess.run(["curl", "-s", "-i", f"http://127.0.0.1:{b.port}/1K.bin"],
                             capture_output=True, timeout=30).stdout
        assert got.startswith(b"HTTP/1.1 503") and b.counters["failures"] == 1
    assert not proxy.domain.alive
    k.heap.check_invariants()


def test_the_httpd_serves_files_it_took_from_an_rv6_file_system(tmp_path):
    from redleaf_nb.apps.rv6 import files as rv6_files
    from redleaf_nb.apps.rv6 import rv6_class
    from redleaf_nb.apps.rv6.tools import mkfs
    from redleaf_nb.drivers.membdev import MemBDev, MemDisk
    k = Kernel(heap_bytes=64 << 20)
    disk = MemDisk(2048)
    mkfs(disk.blocks, 64)
    drv = k.create("membdev", MemBDev, device=k.add_device("memdisk", disk), nblocks=2048)
    rv6 = k.create("rv6", rv6_class(disk_cls=MemBDev), net=None, bdev=None, disk=drv)
    small = {p: d for p, d in FILES.items() if len(d) <= 200_000}
    rv6_files.store(k, rv6, small)
    served = rv6_files.load(k, rv6, small)
    assert served == small
    with pytest.raises(OSError, match="open /nope"):
        rv6_files.load(k, rv6, ["/nope"])
    with SocketBridge(k, httpd_service(k, served)) as b:
        for path, data in small.items():
            out = tmp_path / "body"
            subprocess.run(["curl", "-s", "-o", str(out), f"http://127.0.0.1:{b.port}{path}"],
                           check=True, timeout=30)
            assert out.read_bytes() == data, path
