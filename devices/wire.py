"""The cable between the simulated NIC and whatever is at its other end.

A :class:`Wire` is two queues of Ethernet frames, each a ring of ``capacity`` slots
of up to 1514 bytes with their lengths: ``TO_HOST`` (what the peer sends; the NIC
receives it) and ``FROM_HOST`` (what the NIC transmits; the peer takes it). The peer
is another machine: the simulated HTTP client (devices/http_load.py) or a Linux TAP
device (devices/tap.py). Like a real link it can lose and reorder frames, on
purpose: every ``drop_every``-th frame put on a queue is lost, every
``reorder_every``-th swaps places with the frame queued before it (for the tests
of retransmission and of out-of-order segments). A frame that finds its queue full
is lost too (counted), as on a congested link.

The NIC model reaches the queues by address (:meth:`Wire.addresses`); everything
else through the jitted functions here, over the arrays.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .profiles import ETH_MAX_FRAME

TO_HOST, FROM_HOST = 0, 1
# per direction, words of ``meta``: ring positions (monotonic counts), what was lost,
# the impairments, how many frames were offered; then the slots' lengths
HEAD, TAIL, LOST, DROP_EVERY, REORDER_EVERY, OFFERED = range(6)
LENGTHS = 8


@njit(cache=True)
def wire_put(meta, frames, d, frame, n):
    """Put ``n`` bytes of ``frame`` on queue ``d``: True if it was queued (not lost)."""
    m = meta[d]
    m[OFFERED] += 1
    cap = frames.shape[1]
    if (m[DROP_EVERY] > 0 and m[OFFERED] % m[DROP_EVERY] == 0) or m[TAIL] - m[HEAD] >= cap:
        m[LOST] += 1
        return False
    slot = m[TAIL] % cap
    frames[d, slot, :n] = frame[:n]
    m[LENGTHS + slot] = n
    if m[REORDER_EVERY] > 0 and m[OFFERED] % m[REORDER_EVERY] == 0 and m[TAIL] > m[HEAD]:
        prev = (m[TAIL] - 1) % cap
        for i in range(max(n, m[LENGTHS + prev])):
            frames[d, slot, i], frames[d, prev, i] = frames[d, prev, i], frames[d, slot, i]
        m[LENGTHS + slot], m[LENGTHS + prev] = m[LENGTHS + prev], n
    m[TAIL] += 1
    return True


@njit(cache=True)
def wire_take(meta, frames, d, out):
    """Take the oldest frame of queue ``d`` into ``out``: its length, or -1 if none."""
    m = meta[d]
    if m[HEAD] == m[TAIL]:
        return -1
    slot = m[HEAD] % frames.shape[1]
    n = m[LENGTHS + slot]
    out[:n] = frames[d, slot, :n]
    m[HEAD] += 1
    return n


class Wire:
    """Two frame queues of ``capacity`` slots each (see the module's docstring)."""

    def __init__(self, capacity: int = 1024):
        if capacity < 1 or capacity > 1 << 16:
            raise ValueError(f"wire: capacity={capacity} out of range 1..65536")
        self.meta = np.zeros((2, LENGTHS + capacity), np.int64)
        self.frames = np.zeros((2, capacity, ETH_MAX_FRAME), np.uint8)
        self._out = np.zeros(ETH_MAX_FRAME, np.uint8)

    def impair(self, direction: int, drop_every: int = 0, reorder_every: int = 0) -> None:
        """Lose every ``drop_every``-th and reorder every ``reorder_every``-th frame put
        on queue ``direction`` from now on (0: never)."""
        if drop_every < 0 or reorder_every < 0:
            raise ValueError("wire: drop_every and reorder_every must be >= 0")
        self.meta[direction, DROP_EVERY] = drop_every
        self.meta[direction, REORDER_EVERY] = reorder_every

    def put(self, direction: int, frame) -> bool:
        """Put a frame (bytes or a uint8 array) on queue ``direction``."""
        frame = np.frombuffer(bytes(frame), np.uint8)
        if not 14 <= len(frame) <= ETH_MAX_FRAME:
            raise ValueError(f"wire: a frame of {len(frame)} bytes, out of range 14..1514")
        return bool(wire_put(self.meta, self.frames, direction, frame, len(frame)))

    def take(self, direction: int) -> bytes | None:
        """The oldest frame on queue ``direction``, or None."""
        n = wire_take(self.meta, self.frames, direction, self._out)
        return None if n < 0 else self._out[:n].tobytes()

    def pending(self, direction: int) -> int:
        return int(self.meta[direction, TAIL] - self.meta[direction, HEAD])

    def lost(self, direction: int) -> int:
        return int(self.meta[direction, LOST])

    def addresses(self) -> tuple[int, int, int]:
        """(meta, frames, capacity): how the NIC model reaches the queues."""
        return int(self.meta.ctypes.data), int(self.frames.ctypes.data), self.frames.shape[1]
