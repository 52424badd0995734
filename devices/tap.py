"""A Linux TAP device as the far end of the NIC model's wire, inside a network
namespace of its own, so that real programs (curl, wrk, ab) talk to our TCP/IP stack
frame by frame.

The namespace's only interfaces are ``lo`` and the TAP (no route out): the clients
run in it (``ip netns exec``), with the address ``client_ip``; our stack is
``server_ip`` on the same /24. Python cannot join a namespace, so this process keeps
the TAP's file descriptor and moves the device into the namespace: frames the
clients send are read from the descriptor, and frames our NIC sends are written to it.
IPv6 is off on the TAP (its router solicitations would only be noise).

Needs root and ``/dev/net/tun``: :func:`unavailable` says why not, if not. Everything
is torn down on :meth:`Tap.close` (also at exit, and as a context manager): the
namespace, and with the descriptor the device.
"""
from __future__ import annotations

import atexit
import errno
import fcntl
import os
import struct
import subprocess

TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000
PREFIX = "rlnb"


def unavailable() -> str | None:
    """Why a TAP in a namespace cannot be made here, or None if it can."""
    if os.geteuid() != 0:
        return "not root (TAP devices and network namespaces need CAP_NET_ADMIN)"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun"
    if subprocess.run(["ip", "-V"], capture_output=True).returncode != 0:
        return "no ip(8) (iproute2)"
    return None


def _ip(*args: str) -> None:
    out = subprocess.run(["ip", *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {out.stderr.strip()}")


def leftovers() -> dict:
    """Namespaces and links of ours still present (a test asserts there are none)."""
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return {"namespaces": [line.split()[0] for line in ns.splitlines()
                           if line.startswith(PREFIX)],
            "links": [line.split(":")[1].strip() for line in links.splitlines()
                      if line.split(":")[1].strip().startswith(PREFIX)]}


class Tap:
    """A TAP named ``rlnb<id>`` in namespace ``rlnb<id>``, the clients' end at
    ``client_ip``/24 with Ethernet address ``client_mac``."""

    _count = 0

    def __init__(self, client_ip: str = "10.0.0.1", client_mac: str = "02:00:00:00:00:01"):
        why = unavailable()
        if why:
            raise RuntimeError(f"TAP: {why}")
        Tap._count += 1
        self.name = f"{PREFIX}{os.getpid() % 100000}x{Tap._count}"
        self.namespace = self.name
        self.client_ip = client_ip
        self.fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        try:
            fcntl.ioctl(self.fd, TUNSETIFF, struct.pack("16sH", self.name.encode(),
                                                        IFF_TAP | IFF_NO_PI))
            _ip("netns", "add", self.namespace)
            _ip("link", "set", self.name, "netns", self.namespace)
            inside = ("netns", "exec", self.namespace, "ip")
            _ip(*inside, "link", "set", "dev", self.name, "address", client_mac)
            subprocess.run(["ip", "netns", "exec", self.namespace, "sysctl", "-qw",
                            f"net.ipv6.conf.{self.name}.disable_ipv6=1"], capture_output=True)
            _ip(*inside, "addr", "add", f"{client_ip}/24", "dev", self.name)
            _ip(*inside, "link", "set", "lo", "up")
            _ip(*inside, "link", "set", self.name, "up")
        except Exception:
            self.close()
            raise
        atexit.register(self.close)

    def command(self, *argv: str) -> list[str]:
        """``argv`` run inside the namespace."""
        return ["ip", "netns", "exec", self.namespace, *argv]

    def read(self) -> bytes | None:
        """The next frame the clients sent, or None if there is none now."""
        try:
            return os.read(self.fd, 2048)
        except BlockingIOError:
            return None

    def write(self, frame: bytes) -> None:
        try:
            os.write(self.fd, frame)
        except OSError as e:   # the device is down or its queue full: the frame is lost
            if e.errno not in (errno.EIO, errno.EAGAIN, errno.ENOBUFS):
                raise

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        subprocess.run(["ip", "netns", "delete", self.namespace], capture_output=True)
        atexit.unregister(self.close)

    def __enter__(self) -> "Tap":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
