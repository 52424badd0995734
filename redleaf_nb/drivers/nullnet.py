"""nullnet: a network driver without a device (the paper's Figure 7).

It takes a batch of packets and gives it straight back, so a benchmark over
it measures only software: the crossings, the RRef moves and the deque work.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from redleaf_nb.interfaces.net import Net
from redleaf_nb.kernel.views import deque_splice, own_state, state_type

STATE = state_type(batch=np.int64, handled=np.int64)


@njit(cache=True, boundscheck=True)
def _bad_deques():
    raise ValueError("nullnet: bad packet deques")


@njit(cache=True, boundscheck=True)
def jit_submit_and_poll(k, state, packets, collect, tx):
    """Move up to ``batch`` buffers from ``packets`` to ``collect``, as if done."""
    st = own_state(k, state, STATE)
    n = deque_splice(k, packets, collect, st.batch)
    if n < 0:
        _bad_deques()
    st.handled += n
    return n, packets, collect


class NullNet(Net):
    """The software-only network driver."""

    jit_methods = {"submit_and_poll": jit_submit_and_poll}

    def create_net(self, device, batch, ring):
        self.state = np.zeros(1, STATE)
        self.state["batch"] = batch

    def jit_state(self):
        return self.state

    def submit_and_poll(self, packets, collect, tx):
        n, _, _ = self.domain.run_jitted(jit_submit_and_poll, packets.handle, collect.handle, tx)
        return n, packets, collect
