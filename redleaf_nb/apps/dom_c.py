"""dom_c: the callee of RedLeaf's cross-domain call benchmark, in both tiers."""
from __future__ import annotations

import numpy as np
from numba import njit

from redleaf_nb.interfaces.bench import Bench
from redleaf_nb.kernel.views import own_state, rref_array, state_type

STATE = state_type(counter=np.int64)


@njit(cache=True, boundscheck=True)
def jit_null(k, state):
    """Jitted ``Bench.null``: touch the domain's private state (a counter), nothing else."""
    own_state(k, state, STATE).counter += 1


@njit(cache=True, boundscheck=True)
def jit_one_rref(k, state, x):
    """Jitted ``Bench.one_rref``: increment the u64 behind ``x`` and return it."""
    rref_array(k, x, np.uint64, True)[0] += 1
    return x


class DomC(Bench):
    """A callee whose methods cost next to nothing (its private state: a counter)."""

    jit_methods = {"null": jit_null, "one_rref": jit_one_rref}

    def create_bench(self):
        self.state = np.zeros(1, STATE)
        self.counter = self.state["counter"]   # the same memory, as the plain array it was

    def jit_state(self):
        return self.state

    def null(self):
        self.counter[0] += 1

    def one_rref(self, x):
        x.set(x.get() + 1)
        return x
