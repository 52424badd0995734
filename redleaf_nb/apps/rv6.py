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
from redleaf_nb.kernel.codegen import callee_module, forwarder_source, load_generated
from redleaf_nb.kernel.views import state_type

# jitted state: the domain ids of the drivers rv6 forwards to (0: none)
STATE = state_type(net=np.int64, bdev=np.int64)
_CALLS = {"net_submit_and_poll": (Net, "submit_and_poll", "net"),
          "blk_submit_and_poll": (NvmeBDev, "submit_and_poll", "bdev")}


def _syscall_source(syscall: str, impl) -> str:
    iface, method, what = _CALLS[syscall]
    m = iface.__methods__[method]
    return forwarder_source(f"rv6_{syscall}", f"rv6 system call {syscall}: forward to the {what} "
                            "driver; its failure fails the system call (reported as a status: "
                            "rv6 itself lives on).", m, callee_module(iface.__name__, m, impl),
                            (__name__, "STATE"), what)


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

    def create_rv6(self, net, bdev):
        self.state = np.zeros(1, STATE)
        self.drivers = {name: proxy for name, proxy in (("net", net), ("bdev", bdev))
                        if proxy is not None}
        for name, proxy in self.drivers.items():
            self.state[name] = proxy.domain.id

    def jit_state(self):
        return self.state

    def _driver(self, name):
        if name not in self.drivers:
            raise RuntimeError(f"rv6: it was booted with no '{name}' driver")
        return self.drivers[name]

    def net_submit_and_poll(self, packets, collect, tx):
        return self._driver("net").submit_and_poll(packets, collect, tx)

    def blk_submit_and_poll(self, submit, collect, write):
        return self._driver("bdev").submit_and_poll(submit, collect, write)
