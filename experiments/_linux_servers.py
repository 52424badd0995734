"""Real Linux servers and clients beside our domains: nginx and memcached started and
stopped by the experiment that measures them, and wrk, ab and memcaslap runs
parsed into numbers. Each is a Debian package (scripts/system-deps.sh installs it);
:func:`missing` says which are absent so that an experiment can say so and leave
their rows out. Servers listen on 127.0.0.1 only, are pinned to a core with
``taskset`` when asked, and every client run is bounded in time.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

COMMANDS = {"nginx": "/usr/sbin/nginx", "wrk": "wrk", "ab": "ab", "memcached": "memcached",
            "memcaslap": "memcaslap", "curl": "curl"}


def missing(*names: str) -> list[str]:
    """Which of the commands ``names`` (keys of :data:`COMMANDS`) are not installed."""
    return [n for n in names if shutil.which(COMMANDS[n]) is None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), 0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout} s")


def _pinned(core: int | None) -> list[str]:
    return [] if core is None else ["taskset", "-c", str(core)]


@contextlib.contextmanager
def _server(cmd: list[str], port: int, name: str):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        try:
            wait_for_port(port)
        except TimeoutError:
            proc.kill()
            raise RuntimeError(f"{name} did not start: {proc.communicate()[1].decode()[-500:]}")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def nginx(files: dict[str, bytes], core: int | None = 0):
    """nginx serving ``files`` (path -> bytes) on a free port of 127.0.0.1, configured as
    the issue measures it: one worker, no access log, sendfile, keep-alive for a
    million requests. Yields the port."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="redleaf-nginx-") as tmp:
        os.chmod(tmp, 0o755)   # nginx's worker (another user) reads the files
        root = Path(tmp) / "root"
        for path, data in files.items():
            if path.endswith("/"):
                continue
            target = root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(f"""worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    keepalive_requests 1000000;
    keepalive_timeout 65;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        index index.html;
    }}
}}
""")
        with _server(_pinned(core) + [COMMANDS["nginx"], "-p", tmp, "-c", str(conf)], port,
                     "nginx"):
            yield port


@contextlib.contextmanager
def memcached(core: int | None = 0, memory_mb: int = 256):
    """memcached on a free port of 127.0.0.1, one worker thread. Yields the port."""
    port = free_port()
    cmd = _pinned(core) + [COMMANDS["memcached"], "-l", "127.0.0.1", "-p", str(port), "-U",
                           "0", "-t", "1", "-m", str(memory_mb), "-u", "root"]
    with _server(cmd, port, "memcached"):
        yield port


def _run(cmd: list[str], timeout: float) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed ({out.returncode}): "
                           f"{(out.stderr or out.stdout)[-500:]}")
    return out.stdout


def _whole_seconds(seconds: float) -> int:
    """What wrk runs for: it counts whole seconds, at least one."""
    return max(1, int(round(seconds)))


def wrk_argv(url: str, seconds: int = 1, connections: int = 20, threads: int = 1) -> list[str]:
    """wrk's command line (the paper's: 1 thread, 20 connections)."""
    return [COMMANDS["wrk"], "-t", str(threads), "-c", str(connections), "-d",
            f"{_whole_seconds(seconds)}s", url]


def parse_wrk(text: str) -> dict:
    """wrk's report: requests/s, requests, socket errors of every kind, non-2xx."""
    found = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not found:
        raise RuntimeError(f"wrk: no rate in its output: {text[-300:]}")
    rps = float(found.group(1))
    total = int(re.search(r"(\d+) requests in", text).group(1))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {"requests_per_s": rps, "requests": total, "seconds": total / rps if rps else 0.0,
            "socket_errors": sum(int(g) for g in errors.groups()) if errors else 0,
            "non_2xx": int(non2xx.group(1)) if non2xx else 0}


def wrk(url: str, seconds: int = 1, connections: int = 20, core: int | None = 1) -> dict:
    """A wrk run against ``url`` from this namespace, pinned to ``core``."""
    return parse_wrk(_run([*_pinned(core), *wrk_argv(url, seconds, connections)],
                          timeout=_whole_seconds(seconds) + 30))


def ab_argv(url: str, requests: int = 10000, concurrency: int = 20) -> list[str]:
    """ApacheBench's command line: keep-alive, ``concurrency`` connections."""
    return [COMMANDS["ab"], "-q", "-k", "-n", str(requests), "-c", str(concurrency), "-s", "10",
            url]


def parse_ab(text: str) -> dict:
    """ab's report: requests/s, completed and failed requests, non-2xx."""
    def number(pattern):
        found = re.search(pattern, text)
        if not found:
            raise RuntimeError(f"ab: no '{pattern}' in its output: {text[-300:]}")
        return float(found.group(1))
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", text)
    return {"requests_per_s": number(r"Requests per second:\s+([\d.]+)"),
            "requests": int(number(r"Complete requests:\s+(\d+)")),
            "failed": int(number(r"Failed requests:\s+(\d+)")),
            "non_2xx": int(non2xx.group(1)) if non2xx else 0}


def memcaslap(port: int, seconds: int = 1, concurrency: int = 4, core: int | None = 1) -> dict:
    """A memcaslap run (libmemcached-tools; 90% get, 10% set by default): operations/s."""
    text = _run([*_pinned(core), COMMANDS["memcaslap"], "-s", f"127.0.0.1:{port}", "-t",
                 f"{max(1, int(seconds))}s", "-c", str(concurrency), "-T", "1"],
                timeout=seconds + 30)
    m = re.findall(r"Run time: [\d.]+s Ops: (\d+) TPS: (\d+)", text)
    if not m:
        raise RuntimeError(f"memcaslap: no totals in its output: {text[-300:]}")
    ops, tps = m[-1]
    return {"operations": int(ops), "operations_per_s": float(tps)}
