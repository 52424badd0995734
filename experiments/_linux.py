""""Linux" reference rows for paper Figures 6 and 8, measured on this machine.

* :func:`udp_loopback` (Figure 6, packets): UDP datagrams through the Linux
  kernel network stack over the loopback device, sender and receiver each a
  process pinned to its own CPU. It IS the kernel's socket, UDP and IP path
  with its system calls; it is NOT a NIC, a driver or a wire (the paper's
  Linux rows drive an Intel 82599 10 GbE card).
* :func:`fio_iops` (Figure 8, block): fio, 4 KiB sequential reads or writes
  with libaio and ``O_DIRECT`` on a file, bypassing the page cache. It IS the
  kernel's block path to whatever disk backs the directory of this VM (through
  its filesystem); it is NOT an Intel P3700 NVMe SSD driven raw.

The module's name starts with an underscore so that experiment discovery does
not load it as an experiment.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from redleaf_nb.native import build_executable

HERE = Path(__file__).resolve().parent

#: Why :func:`ensure_fio` found no fio (None while it has not failed).
FIO_MISSING_REASON: str | None = None
_apt_updated = False


def udp_loopback(pkt_size: int = 64, batch: int = 1, seconds: float = 1.0) -> dict:
    """Send ``pkt_size``-byte packets (as on the wire: UDP payload pkt_size - 42)
    over UDP on 127.0.0.1 for ``seconds``; ``batch`` packets per system call
    (1: sendto/recv, more: sendmmsg/recvmmsg). The kernel stack over loopback,
    not a NIC. Rates in millions of packets per second."""
    if not 64 <= pkt_size <= 1514:
        raise ValueError(f"pkt_size must be in 64..1514, got {pkt_size}")
    if not 1 <= batch <= 64:
        raise ValueError(f"batch must be in 1..64, got {batch}")
    if not seconds > 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    exe = build_executable(HERE / "native" / "udp_loopback.c")
    out = subprocess.run([str(exe), str(pkt_size), str(batch), repr(float(seconds))],
                         capture_output=True, text=True, check=True, timeout=seconds + 60)
    r = {k: int(v) for k, v in (kv.split("=") for kv in out.stdout.split())}
    return dict(tx_mpps=r["sent"] / r["ns"] * 1e3,
                rx_mpps=r["received"] / r["rx_ns"] * 1e3 if r["rx_ns"] else 0.0,
                sent=r["sent"], received=r["received"], dropped=r["sent"] - r["received"],
                tx_calls=r["tx_calls"], rx_calls=r["rx_calls"],
                seconds=r["ns"] / 1e9, pkt_size=pkt_size, batch=batch)


def ensure_fio() -> str | None:
    """The path of ``fio``, installed with apt-get when missing (as root only).
    Returns None, with the reason in ``FIO_MISSING_REASON``, when it cannot."""
    global FIO_MISSING_REASON, _apt_updated
    if path := shutil.which("fio"):
        return path
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        FIO_MISSING_REASON = "fio is not installed (install it as root: apt-get install fio)"
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    steps = ([] if _apt_updated else [["apt-get", "update", "-qq"]]) + \
        [["apt-get", "install", "-y", "-qq", "fio"]]
    for cmd in steps:
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        except subprocess.TimeoutExpired:
            FIO_MISSING_REASON = f"{' '.join(cmd)} timed out"
            return None
        if p.returncode != 0:
            FIO_MISSING_REASON = f"{' '.join(cmd)} failed: {p.stderr.strip()[-500:]}"
            return None
        _apt_updated |= cmd[1] == "update"
    path = shutil.which("fio")
    FIO_MISSING_REASON = None if path else "apt-get installed fio but it is not on PATH"
    return path


def _backing_device(directory: str) -> str | None:
    """The filesystem source and type holding ``directory``, e.g. '/dev/vda (ext4)'."""
    if shutil.which("findmnt") is None:
        return None
    p = subprocess.run(["findmnt", "-n", "-o", "SOURCE,FSTYPE", "--target", directory],
                       capture_output=True, text=True)
    lines = p.stdout.splitlines()  # stacked mounts: the last one is visible
    fields = lines[-1].split() if p.returncode == 0 and lines else []
    return f"{fields[0]} ({fields[1]})" if len(fields) == 2 else None


def fio_iops(rw: str, iodepth: int, seconds: float = 2.0, size_mb: int = 256,
             directory: str | None = None) -> dict:
    """fio: sequential 4 KiB ``read`` or ``write`` at ``iodepth`` with libaio and
    O_DIRECT on a ``size_mb`` file in ``directory`` (default: a new directory
    under /var/tmp), for ``seconds``. The disk behind this VM's filesystem, not
    a P3700. fio lays the file out with data before a read test; the file is
    removed afterwards. Raises RuntimeError with fio's message if fio fails
    (e.g. on a filesystem without O_DIRECT, such as tmpfs before Linux 6.6;
    on later kernels tmpfs takes O_DIRECT and measures memory: see ``device``)."""
    if rw not in ("read", "write"):
        raise ValueError(f"rw must be 'read' or 'write', got {rw!r}")
    if not 1 <= iodepth <= 1024:
        raise ValueError(f"iodepth must be in 1..1024, got {iodepth}")
    if not seconds > 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    if size_mb < 1:
        raise ValueError(f"size_mb must be >= 1, got {size_mb}")
    fio = ensure_fio()
    if fio is None:
        raise RuntimeError(FIO_MISSING_REASON)
    workdir = tempfile.mkdtemp(prefix="redleaf-nb-fio-", dir=directory or "/var/tmp")
    try:
        p = subprocess.run(
            [fio, "--name=redleaf-nb", f"--filename={workdir}/fio.dat", f"--rw={rw}",
             "--ioengine=libaio", "--direct=1", "--bs=4k", f"--iodepth={iodepth}",
             "--numjobs=1", "--time_based", f"--runtime={max(1, round(seconds * 1000))}ms",
             f"--size={size_mb}M", "--output-format=json"],
            capture_output=True, text=True, timeout=seconds + 600)
        device = _backing_device(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if p.returncode != 0 or "{" not in p.stdout:
        raise RuntimeError(f"fio failed in {directory or '/var/tmp'} (does its filesystem "
                           f"support O_DIRECT?): {(p.stderr or p.stdout).strip()}")
    report = json.loads(p.stdout[p.stdout.index("{"):])
    job = report["jobs"][0]
    if job["error"]:
        raise RuntimeError(f"fio job failed with error {job['error']}: {p.stderr.strip()}")
    stats = job[rw]
    return dict(iops=stats["iops"], bw_mib_s=stats["bw"] / 1024,
                lat_mean_us=stats["lat_ns"]["mean"] / 1e3, rw=rw, iodepth=iodepth,
                seconds=stats["runtime"] / 1e3,
                fio_version=report["fio version"], device=device)
