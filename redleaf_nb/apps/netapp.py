"""What a packet-processing application (maglev, kvstore) is to the rest of the project.

An application is safe domain code linked into a domain: its tables are numpy memory
the kernel grants that domain (indices from :data:`GRANT_BASE` on, clear of a
driver's own, as the app may be linked into the driver's domain), and its jitted
functions pass the domain checker when it is linked. Its per-batch function
``forward(k, me, rx, tx, spare)`` takes every packet out of deque ``rx``, moves
what it sends to ``tx`` and what it drops to ``spare``, and returns how many it
sent; a benchmark loop (experiments/_apps.py) calls it between the driver's RX and
TX. The C side of each app gets the same tables (``c_tables``).
"""
from __future__ import annotations

import numpy as np

from redleaf_nb.interfaces.net import Packets
from redleaf_nb.kernel import heap as hp
from redleaf_nb.kernel.checker import check_function
from redleaf_nb.kernel.domain import Kernel
from redleaf_nb.kernel.types import exchangeable

GRANT_BASE = 8   # the first grant index an app's regions take


class NetApp:
    """Base of the applications: ``name``, ``forward``, ``functions`` (every jitted
    function the app runs: the checker checks them), ``COUNTERS`` (the fields of its
    ``state`` record) and :meth:`regions` are the subclass's."""

    name: str
    forward = None
    functions: tuple = ()
    COUNTERS: tuple = ()
    state: np.ndarray
    _home = None

    def regions(self) -> dict[int, np.ndarray]:
        """Grant index -> the numpy memory granted there."""
        raise NotImplementedError

    def link(self, domain) -> None:
        """Link the app into ``domain``: its regions become the domain's grants; its
        functions pass the domain checker first."""
        for fn in self.functions:
            check_function(fn)
        for index, region in self.regions().items():
            domain.grant(index, region)

    def control(self):
        """The domain that runs the app's control plane (table builds, tests): the init
        domain of a small kernel of the app's own."""
        if self._home is None:
            self._home = Kernel(heap_bytes=1 << 20, max_objects=1 << 10)
            self.link(self._home.init)
        return self._home.init

    def counters(self) -> dict:
        return {c: int(self.state[c][0]) for c in self.COUNTERS}

    def process(self, frames: list[np.ndarray]) -> list[np.ndarray | None]:
        """Push frames one at a time through ``forward`` (in the app's own kernel): what
        each became (its bytes, as far as its IPv4 total length says), or None where it
        was dropped. For tests and notebooks."""
        dom = self.control()
        heap, me = self._home.heap, dom.id
        deque_t = exchangeable(Packets)
        rx, tx, spare = (heap.alloc(deque_t, me) for _ in range(3))
        out = []
        for frame in frames:
            buf = heap.alloc(deque_t.child, me)
            heap.view(buf, me, write=True)[:len(frame)] = frame
            hp.deque_push_back(heap.k, rx, me, buf)
            sent = dom.run_jitted(self.forward, rx, tx, spare)
            buf = hp.deque_pop_front(heap.k, tx if sent else spare, me)
            data = heap.view(buf, me)
            out.append(data[:14 + (int(data[16]) << 8 | int(data[17]))].copy() if sent else None)
            hp.free(heap.k, buf, me)
        for dq in (rx, tx, spare):
            hp.free(heap.k, dq, me)
        return out
