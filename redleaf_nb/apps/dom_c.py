"""dom_c: the callee of RedLeaf's cross-domain call benchmark, in both tiers."""
from __future__ import annotations

import numpy as np
from numba import njit

from redleaf_nb.interfaces.bench import Bench
from redleaf_nb.kernel import heap as hp
from redleaf_nb.kernel.proxy import jit_current
from redleaf_nb.lowlevel.memory import load, store


@njit(cache=True)
def jit_null(k, state):
    """Jitted ``Bench.null``: touch the domain's private state (a counter), nothing else."""
    store(state, 0, load(state, 0) + 1)


@njit(cache=True)
def jit_one_rref(k, state, x):
    """Jitted ``Bench.one_rref``: increment the u64 behind ``x`` and return it."""
    addr = hp.word_address(k, x, jit_current(k), True)
    store(addr, 0, load(addr, 0) + 1)
    return x


class DomC(Bench):
    """A callee whose methods cost next to nothing (its private state: a counter)."""

    jit_methods = {"null": jit_null, "one_rref": jit_one_rref}

    def create_bench(self):
        self.counter = np.zeros(1, np.int64)

    def jit_state(self):
        return self.counter

    def null(self):
        self.counter[0] += 1

    def one_rref(self, x):
        x.set(x.get() + 1)
        return x
