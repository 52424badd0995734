"""rv6: a minimal xv6-like personality domain between programs and drivers.

Its network and block system calls forward to the driver domains it was
booted with (``net``, ``bdev``); its file calls run the file system of
:mod:`.fs` over the ``disk`` (a ``BDev``: ``membdev``, its shadow, or the
NVMe adapter). Every call a program makes into rv6 is one crossing, and rv6's
call into a driver (or its shadow) a second.

In the jitted tier the calls into the drivers are generated per driver class
(:func:`rv6_class`), as shadows are: Numba binds a callee at compile time.
The file system's code is written once, as a template whose copy per disk
class has the disk's two proxies bound (:func:`fs_module`). The Python tier's
file calls enter the same jitted code (there is one file system, and its state
is the domain's record).
"""
from __future__ import annotations

import numpy as np

from redleaf_nb.interfaces.bdev import BDev, Block
from redleaf_nb.interfaces.net import Net
from redleaf_nb.interfaces.nvme import NvmeBDev
from redleaf_nb.interfaces.rv6 import Rv6
from redleaf_nb.kernel.codegen import bound_copy_source, callee_module, forwarder_source, \
    load_generated
from redleaf_nb.kernel.types import RRefType
from . import fs as fs_template
from .state import NBUF, STATE

_CALLS = {"net_submit_and_poll": (Net, "submit_and_poll", "net"),
          "blk_submit_and_poll": (NvmeBDev, "submit_and_poll", "bdev")}
# the file calls the jitted tier carries (the others take a path, an array)
JIT_FS_CALLS = ("close", "read", "write", "lseek", "fstat")
STATE_MODULE = "redleaf_nb.apps.rv6.state"


def _syscall_source(syscall: str, impl) -> str:
    iface, method, what = _CALLS[syscall]
    m = iface.__methods__[method]
    return forwarder_source(f"rv6_{syscall}", f"rv6 system call {syscall}: forward to the {what} "
                            "driver; its failure fails the system call (reported as a status: "
                            "rv6 itself lives on).", m, callee_module(iface.__name__, m, impl),
                            (STATE_MODULE, "STATE"), what)


def fs_module(disk_cls: type):
    """rv6's file system (:mod:`.fs`) compiled to reach domains of ``disk_cls`` (a driver
    or a shadow class): a copy of the module with the disk's proxies bound."""
    proxies = {f"d{name}": callee_module("BDev", BDev.__methods__[name],
                                         disk_cls.jit_methods[name]) for name in ("read", "write")}
    return load_generated("redleaf_rv6_fs", bound_copy_source(fs_template, proxies))


def rv6_class(net_cls: type | None = None, bdev_cls: type | None = None,
              disk_cls: type | None = None) -> type:
    """An rv6 personality whose jitted calls reach domains of ``net_cls``, ``bdev_cls``
    and ``disk_cls`` (their classes: a driver, or the shadow class guarding one)."""
    jit_methods, entries = {}, None
    for syscall, cls in (("net_submit_and_poll", net_cls), ("blk_submit_and_poll", bdev_cls)):
        if cls is not None:
            impl = cls.jit_methods[_CALLS[syscall][1]]
            mod = load_generated(f"redleaf_rv6_{syscall}", _syscall_source(syscall, impl))
            jit_methods[syscall] = getattr(mod, f"rv6_{syscall}")
    if disk_cls is not None:
        entries = fs_module(disk_cls)
        jit_methods.update({call: getattr(entries, f"sys_{call}") for call in JIT_FS_CALLS})
    return type("Rv6Personality", (Rv6Domain,), {"jit_methods": jit_methods, "fs": entries})


class Rv6Domain(Rv6):
    """rv6 in the Python tier (and the base of the jitted personalities)."""

    jit_methods: dict = {}
    fs = None   # the file system's module, bound to the disk (rv6_class)
    fault_points = fs_template.FAULT_POINTS

    def create_rv6(self, net, bdev, disk):
        self.state = np.zeros(1, STATE)
        self.drivers = {name: proxy for name, proxy in (("net", net), ("bdev", bdev),
                                                        ("disk", disk)) if proxy is not None}
        for name, proxy in self.drivers.items():
            self.state[name] = proxy.domain.id
        if disk is not None:
            if self.fs is None:
                raise TypeError("rv6: booted with a disk, but this personality has no file "
                                "system bound to it: use rv6_class(disk_cls=...)")
            # the buffer cache's blocks: exchange-heap objects rv6 owns
            self.state["bc_handle"][0] = self.domain.kernel.heap.alloc_many(
                RRefType(Block), self.domain.id, NBUF)
            self.domain.set_jit_state(self.state)
            self.recovered = self._fs("mount")   # logged blocks installed

    def jit_state(self):
        return self.state

    def _driver(self, name):
        if name not in self.drivers:
            raise RuntimeError(f"rv6: it was booted with no '{name}' driver")
        return self.drivers[name]

    def _fs(self, call, *args):
        """Run a file call's jitted code as this domain."""
        self._driver("disk")
        kernel = self.domain.kernel
        try:
            return self.domain.run_jitted(getattr(self.fs, call if call == "mount"
                                              else f"sys_{call}"), *args)
        finally:
            kernel._settle_jitted_deaths(f"panic in a jitted call from rv6.{call}")

    def net_submit_and_poll(self, packets, collect, tx):
        return self._driver("net").submit_and_poll(packets, collect, tx)

    def blk_submit_and_poll(self, submit, collect, write):
        return self._driver("bdev").submit_and_poll(submit, collect, write)

    def open(self, path, flags):
        return self._fs("open", path, flags)

    def close(self, fd):
        return self._fs("close", fd)

    def read(self, fd, data, n):
        got, handle = self._fs("read", fd, data.handle, n)
        return got, self.domain.kernel.wrap(handle, Block)

    def write(self, fd, data, n):
        return self._fs("write", fd, data.handle, n)

    def lseek(self, fd, offset, whence):
        return self._fs("lseek", fd, offset, whence)

    def fstat(self, fd):
        return self._fs("fstat", fd)

    def mkdir(self, path):
        return self._fs("mkdir", path)

    def unlink(self, path):
        return self._fs("unlink", path)
