"""A forwarder: the application that sends every packet back out unchanged.

Linked in front of a driver it measures what the driver path alone costs a packet
(RX, TX and the moves of each buffer), the share of an application's cost that is
not the application's: the safe side of the C sides' ``app=0`` mode.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from redleaf_nb.kernel.views import deque_len, deque_splice, own_array, state_type

from .netapp import GRANT_BASE, NetApp
from .packet import JIT

G_STATE = GRANT_BASE
COUNTERS = ("forwarded",)
STATE = state_type(forwarded=np.int64)


@njit(**JIT)
def forward(k, me, rx, tx, spare):
    """Move every packet of ``rx`` to ``tx`` (what does not fit to ``spare``)."""
    sent = deque_splice(k, rx, tx, deque_len(k, rx))
    deque_splice(k, rx, spare, deque_len(k, rx))
    own_array(k, G_STATE, STATE)[0].forwarded += sent
    return sent


class Forwarder(NetApp):
    name = "forwarder"
    functions = (forward,)   # what the checker checks
    forward = staticmethod(forward)
    COUNTERS = COUNTERS

    def __init__(self):
        self.state = np.zeros(1, STATE)

    def regions(self) -> dict[int, np.ndarray]:
        return {G_STATE: self.state}
