"""Figure 5's C reference: experiments/native/hashtable.c, built by redleaf_nb.native.

The library is built once per source text and flags (``gcc -O3 -march=native`` by
default, Numba's own level) into
the toolkit's one native build cache and loaded with cffi's ABI mode. The timed
loops (``bench_set``/``bench_get``) run inside C and read the time-stamp counter
there, so the cost of calling through cffi is outside the cycles measured.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from redleaf_nb.experiments import ParamError
from redleaf_nb.native import build_shared

SOURCE = Path(__file__).resolve().parents[1] / "native" / "hashtable.c"

#: the functions hashtable.c exports
CDEF = """
uint64_t bench_set(uint64_t *table, uint64_t cap, uint64_t n);
uint64_t bench_get(uint64_t *table, uint64_t cap, uint64_t n, uint64_t *checksum);
void set_many(uint64_t *table, uint64_t cap, uint64_t *keys, uint64_t *values, uint64_t m);
void get_many(uint64_t *table, uint64_t cap, uint64_t *keys, uint64_t m,
              uint64_t *values, uint8_t *found);
"""

#: optimisation settings offered for the C reference. The paper's setting is not stated.
#: The default is what Numba itself compiles at (LLVM -O3 for the host CPU), so that
#: neither side has the better compiler settings; -O2 (the ordinary choice) is kept.
C_OPT_CHOICES = ("-O3 -march=native", "-O2", "-O3")
FAIR_C_OPT = C_OPT_CHOICES[0]


@lru_cache(maxsize=None)
def native(c_opt: str = FAIR_C_OPT):
    """(ffi, lib) of the C reference built with ``gcc c_opt``."""
    import cffi

    if c_opt not in C_OPT_CHOICES:
        raise ParamError(f"hashtable: parameter c_opt={c_opt!r} is not one of "
                         f"{', '.join(C_OPT_CHOICES)}")
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    return ffi, ffi.dlopen(str(build_shared(SOURCE, tuple(c_opt.split()))))
