"""The domain builder: choose the layers of a storage stack (a block-device driver, a
shadow in front of it or not, rv6's file system on top or not), build it in a fresh
kernel, then work it: call through it, crash any domain, read the generated proxy of
any edge. The graph is drawn from the kernel after every step, so what it shows is
the kernel's state, not the form's.

:func:`build` is the plain function (layers in, a :class:`Stack` out); :meth:`Stack.call`
is the workload; :class:`DomainBuilder` is the form over both.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np

from redleaf_nb.apps.rv6 import files as rv6_files
from redleaf_nb.apps.rv6 import rv6_class
from redleaf_nb.apps.rv6.tools import mkfs
from redleaf_nb.drivers.membdev import MemBDev, MemDisk
from redleaf_nb.experiments import experiments_package
from redleaf_nb.interfaces.bdev import BDev, Block
from redleaf_nb.interfaces.nvme import NvmeBDev
from redleaf_nb.kernel.domain import Kernel
from redleaf_nb.kernel.proxy import RpcError
from redleaf_nb.kernel.shadow import RestartPolicy, shadow_class

from . import domain_graph

DRIVERS = ("membdev (RAM disk)", "nvme (simulated NVMe SSD)")
NBLOCKS = 512
NOTES = 8          # the files (or blocks) the calls take turns on, so no call fills the disk


@dataclass
class Stack:
    """A built stack: its kernel, the proxy a client calls (rv6, or the block device),
    and what was chosen."""
    kernel: Kernel
    top: object
    with_rv6: bool
    calls: int = 0

    def call(self) -> str:
        """One request through the stack, as a client makes it: with rv6, store a file
        and read it back; without, write a block and read it back (the calls take turns
        on ``NOTES`` files or blocks). What happened, in words (an ``RpcError`` or an
        ``OSError`` is reported, not raised)."""
        self.calls += 1
        payload = f"request {self.calls}: written through the stack".encode()
        try:
            if self.with_rv6:
                path = f"/note-{self.calls % NOTES}.txt"
                rv6_files.store(self.kernel, self.top, {path: payload})
                back = rv6_files.load(self.kernel, self.top, [path])[path]
            else:
                back = self._block_round_trip(self.calls % NOTES, payload)
        except (RpcError, OSError) as failed:
            return f"call {self.calls} failed: {failed}"
        return f"call {self.calls}: read back {'intact' if back == payload else 'WRONG'}"

    def _block_round_trip(self, n: int, payload: bytes) -> bytes:
        """Write ``payload`` to block ``n`` and read it back, in one buffer of the
        caller's that the read hands back (freed after; gone if the driver took it down)."""
        block = self.kernel.new(Block)
        try:
            data = np.zeros(len(block.get()), np.uint8)
            data[:len(payload)] = np.frombuffer(payload, np.uint8)
            block.set(data)
            for op in ("write", "read"):
                result = getattr(self.top, op)(n, block)
                if isinstance(result, RpcError):
                    raise result
            block = result
            return block.get()[:len(payload)].tobytes()
        finally:
            if block.is_live:
                block.free()


def _nvme_disk(kernel: Kernel, shadowed: bool, policy: RestartPolicy):
    """The NVMe driver over a simulated SSD, and the block-device adapter over it
    (or over the driver's shadow)."""
    experiments_package()        # the checkout's device models (devices/) on the path
    from devices.nvme import NvmeSsd, nvme_step     # hardware models: the experiments' side
    from devices.profiles import nvme_profile
    from redleaf_nb.apps.nvme_disk import nvme_disk_class
    from redleaf_nb.drivers.nvme import Nvme
    ssd = NvmeSsd(dataclasses.replace(nvme_profile("p3700"), nblocks=NBLOCKS))
    kernel.create("nvme", Nvme, device=kernel.add_device("ssd", ssd, step=nvme_step), batch=8,
                  queue_entries=64)
    driver, cls = kernel.lookup("nvme"), Nvme
    if shadowed:
        driver = kernel.create_shadow("nvme-shadow", "nvme", policy)
        cls = shadow_class(NvmeBDev.declared(), Nvme)
    ssd.start_clock()
    return ssd.blocks, kernel.create("nvme-disk", nvme_disk_class(cls), nvme=driver,
                                     nblocks=NBLOCKS)


def build(driver: str = DRIVERS[0], shadowed: bool = True, with_rv6: bool = True,
          max_restarts: int = 5) -> Stack:
    """A fresh kernel with the chosen layers, bottom up: the driver over its device,
    its shadow, (for NVMe) the block-device adapter, rv6 over the block device."""
    if driver not in DRIVERS:
        raise ValueError(f"build: driver {driver!r} is not one of {', '.join(DRIVERS)}")
    kernel = Kernel(heap_bytes=16 << 20)
    policy = RestartPolicy(max_restarts=max_restarts)
    if driver == DRIVERS[0]:
        ramdisk = MemDisk(NBLOCKS)
        blocks = ramdisk.blocks
        disk = kernel.create("membdev", MemBDev, device=kernel.add_device("memdisk", ramdisk),
                             nblocks=NBLOCKS)
        if shadowed:
            disk = kernel.create_shadow("membdev-shadow", "membdev", policy)
        disk_cls = shadow_class(BDev.declared(), MemBDev) if shadowed else MemBDev
    else:
        blocks, disk = _nvme_disk(kernel, shadowed, policy)
        disk_cls = type(disk.domain.impl)
    if not with_rv6:
        return Stack(kernel, disk, False)
    mkfs(blocks, 32)
    rv6 = kernel.create("rv6", rv6_class(disk_cls=disk_cls), net=None, bdev=None, disk=disk)
    return Stack(kernel, rv6, True)


class DomainBuilder:
    """The form: the layers to build; then Call, Crash (any domain) and Proxy source
    (any edge). :attr:`stack` is the stack built last."""

    def __init__(self):
        self.driver = widgets.Dropdown(options=DRIVERS, description="block driver")
        self.shadowed = widgets.Checkbox(True, description="shadow in front of the driver")
        self.with_rv6 = widgets.Checkbox(True, description="rv6 file system on top")
        self.max_restarts = widgets.IntSlider(5, 0, 20, description="shadow: max restarts",
                                              continuous_update=False,
                                              style={"description_width": "initial"})
        self.build_button = widgets.Button(description="Build", button_style="primary")
        self.call_button = widgets.Button(description="Call through it", disabled=True)
        self.victim = widgets.Dropdown(description="domain")
        self.crash_button = widgets.Button(description="Crash it", button_style="danger",
                                           disabled=True)
        self.edge = widgets.Dropdown(description="edge")
        self.source_button = widgets.Button(description="Proxy source", disabled=True)
        self.log = widgets.Textarea(layout=widgets.Layout(width="100%", height="6em"),
                                    disabled=True)
        self.out = widgets.Output()
        self.stack: Stack | None = None
        self.build_button.on_click(self.build)
        self.call_button.on_click(self.call)
        self.crash_button.on_click(self.crash)
        self.source_button.on_click(self.show_source)
        self.widget = widgets.VBox([
            widgets.HBox([self.driver, self.shadowed, self.with_rv6, self.max_restarts]),
            widgets.HBox([self.build_button, self.call_button, self.victim, self.crash_button,
                          self.edge, self.source_button]),
            self.log, self.out])

    def _say(self, line: str) -> None:
        self.log.value = (self.log.value + "\n" + line).strip()

    def _draw(self) -> None:
        """The graph as the kernel has it now, and the choices it offers."""
        kernel = self.stack.kernel
        self.out.outputs = ()
        fig = domain_graph.draw(kernel)
        plt.close(fig)
        self.out.append_display_data(fig)
        self.victim.options = [d.name for d in kernel.domain_list() if d.name != "init"]
        e = domain_graph.edges(kernel)
        self.edge.options = [f"{a} -> {b}" for a, b in zip(e.caller, e.callee)]

    def build(self, _=None) -> Stack:
        self.stack = build(self.driver.value, self.shadowed.value, self.with_rv6.value,
                           self.max_restarts.value)
        for b in (self.call_button, self.crash_button, self.source_button):
            b.disabled = False
        self.log.value = ""
        self._say(f"built: {', '.join(d.name for d in self.stack.kernel.domain_list())}")
        self._draw()
        return self.stack

    def call(self, _=None) -> str:
        said = self.stack.call()
        self._say(said)
        self._draw()
        return said

    def crash(self, _=None) -> None:
        self.stack.kernel.crash(self.victim.value, reason="crashed from the domain builder")
        self._say(f"crashed {self.victim.value}")
        self._draw()

    def show_source(self, _=None) -> str:
        caller, callee = self.edge.value.split(" -> ")
        source = domain_graph.proxy_source(self.stack.kernel, caller, callee)
        self._draw()
        self.out.append_stdout(source)
        return source
