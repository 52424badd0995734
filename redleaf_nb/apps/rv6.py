"""rv6: a minimal xv6-like personality domain between programs and drivers.

Its system calls forward to the driver domains registered as ``net`` and
``bdev``, through their proxies: a program's call into rv6 is one crossing,
rv6's call into the driver (or into its shadow) a second. In the jitted tier
the forwarding is generated per driver (:func:`rv6_class`), as shadows are:
Numba binds a callee at compile time.
"""
from __future__ import annotations

import numpy as np

from redleaf_nb.interfaces.net import Net
from redleaf_nb.interfaces.nvme import NvmeBDev
from redleaf_nb.interfaces.rv6 import Rv6
from redleaf_nb.kernel.codegen import forwarder_source, load_generated

# jitted state: the net driver's (domain id, state address), then the block driver's
NET_ID, NET_STATE, BDEV_ID, BDEV_STATE = range(4)
_CALLS = {"net_submit_and_poll": (Net, "submit_and_poll", NET_ID, NET_STATE, "net"),
          "blk_submit_and_poll": (NvmeBDev, "submit_and_poll", BDEV_ID, BDEV_STATE, "bdev")}


def _syscall_source(syscall: str, impl) -> str:
    iface, method, id_word, state_word, what = _CALLS[syscall]
    return forwarder_source(f"rv6_{syscall}", f"rv6 system call {syscall}: forward to the {what} "
                            "driver; its failure fails the system call (reported as a status: "
                            "rv6 itself lives on).", iface.__name__, iface.__methods__[method],
                            impl, id_word, state_word)


def rv6_class(net_cls: type | None = None, bdev_cls: type | None = None) -> type:
    """An rv6 personality whose jitted system calls reach domains of ``net_cls`` and
    ``bdev_cls`` (their classes: a driver, or the shadow class guarding one)."""
    jit_methods = {}
    for syscall, cls in (("net_submit_and_poll", net_cls), ("blk_submit_and_poll", bdev_cls)):
        if cls is not None:
            impl = cls.jit_methods[_CALLS[syscall][1]]
            mod = load_generated(f"redleaf_rv6_{syscall}", _syscall_source(syscall, impl))
            jit_methods[syscall] = getattr(mod, f"rv6_{syscall}")
    return type("Rv6Personality", (Rv6Domain,), {"jit_methods": jit_methods})


class Rv6Domain(Rv6):
    """rv6 in the Python tier (and the base of the jitted personalities)."""

    jit_methods: dict = {}

    def create_rv6(self):
        self.state = np.zeros(4, np.int64)
        self.drivers = {}
        for name, id_word in (("net", NET_ID), ("bdev", BDEV_ID)):
            try:
                proxy = self.domain.lookup(name)
            except KeyError:
                continue
            self.drivers[name] = proxy
            self.state[id_word] = proxy.domain.id
            self.state[id_word + 1] = proxy.domain.jit_state_address

    def jit_state(self):
        return self.state

    def _driver(self, name):
        if name not in self.drivers:
            raise RuntimeError(f"rv6: no '{name}' driver was registered when rv6 booted")
        return self.drivers[name]

    def net_submit_and_poll(self, packets, collect, tx):
        return self._driver("net").submit_and_poll(packets, collect, tx)

    def blk_submit_and_poll(self, submit, collect, write):
        return self._driver("bdev").submit_and_poll(submit, collect, write)
