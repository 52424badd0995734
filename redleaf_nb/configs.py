"""The paper's five ways to put a benchmark in front of a driver (Figures 6-8).

* ``redleaf-driver`` — the benchmark is linked with the driver: no crossing;
* ``redleaf-domain`` — the benchmark calls the driver domain through its proxy;
* ``redleaf-shadow`` — ... through a shadow domain that guards the driver;
* ``rv6-domain``     — the benchmark is an rv6 program: a system call into rv6,
  then rv6's call into the driver (two crossings);
* ``rv6-shadow``     — as rv6-domain, with rv6 calling the driver's shadow.

:func:`build` wires one of them in a kernel and returns an :class:`Entry`:
one compiled function with the proxy's signature ``fn(k, target, a, b,
flag) -> (status, (n, a, b))``, so one benchmark loop runs every configuration
and only the path behind the function pointer differs.
"""
from __future__ import annotations

from dataclasses import dataclass

from .apps.rv6 import rv6_class
from .interfaces.net import Net
from .interfaces.nvme import NvmeBDev
from .interfaces.rv6 import Rv6
from .kernel.domain import Kernel
from .kernel.idl import jit_direct, jit_proxy
from .kernel.shadow import shadow_class

CONFIGS = ("redleaf-driver", "redleaf-domain", "redleaf-shadow", "rv6-domain", "rv6-shadow")
CROSSINGS = {"redleaf-driver": 0, "redleaf-domain": 1, "redleaf-shadow": 2,
             "rv6-domain": 2, "rv6-shadow": 3}
# what a driver is registered as, its interface, and rv6's system call for it
ROLES = {"net": (Net, "net_submit_and_poll"), "bdev": (NvmeBDev, "blk_submit_and_poll")}


@dataclass
class Entry:
    """How a benchmark reaches the driver in one configuration."""

    config: str
    fn: object        # compiled, proxy signature
    type: object      # its Numba function type (to pass ``fn`` as a pointer)
    target: int       # the domain id ``fn`` is called with
    runs_as: int      # the domain the benchmark runs as (owner of its buffers)
    driver: object    # the driver domain's proxy


def build(kernel: Kernel, config: str, driver_cls: type, role: str, **create_args) -> Entry:
    """Create the driver (as ``<role>-driver``) and whatever ``config`` puts before it."""
    if config not in CONFIGS:
        raise ValueError(f"unknown configuration '{config}' (known: {', '.join(CONFIGS)})")
    if role not in ROLES:
        raise ValueError(f"unknown driver role '{role}' (known: {', '.join(ROLES)})")
    iface, syscall = ROLES[role]
    driver = kernel.create(f"{role}-driver", driver_cls, **create_args)
    d = driver.domain
    if config == "redleaf-driver":
        f = jit_direct(iface, "submit_and_poll", driver_cls.jit_methods["submit_and_poll"])
        return Entry(config, f.fn, f.type, d.id, d.id, driver)
    front, front_cls = driver, driver_cls
    if config.endswith("shadow"):
        front = kernel.create_shadow(f"{role}-shadow", f"{role}-driver")
        front_cls = shadow_class(iface, driver_cls)
    if config.startswith("rv6"):
        drivers = {"net": None, "bdev": None, "disk": None, role: front}   # rv6 gets its driver
        rv6 = kernel.create("rv6", rv6_class(**{f"{role}_cls": front_cls}), **drivers)
        f = jit_proxy(Rv6, syscall, rv6.domain.impl_cls.jit_methods[syscall])
        return Entry(config, f.fn, f.type, rv6.domain.id,
                     kernel.init.id, driver)
    f = jit_proxy(iface, "submit_and_poll", front_cls.jit_methods["submit_and_poll"])
    return Entry(config, f.fn, f.type, front.domain.id,
                 kernel.init.id, driver)
