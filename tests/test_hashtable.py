"""The Figure 5 hashtable experiment: shape of its output, agreement, refusals, correctness.

Every implementation is compared with a Python dict (the obviously-correct twin). No
assertion here depends on how fast anything is.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from experiments import hashtable as HT
from experiments.hashtable import bench, kernels as K
from experiments.hashtable.c_reference import native
from redleaf_nb import experiments as ex
from redleaf_nb.experiments import ParamError
from redleaf_nb.lowlevel.clock import tsc_hz

matplotlib.use("Agg")

EXP = ex.get("hashtable")
COLUMNS = ["implementation", "size_log2", "op", "cycles_per_op", "cycles_per_op_lo",
           "cycles_per_op_hi", "ns_per_op", "ns_per_op_lo", "ns_per_op_hi", "repeats",
           "estimator"]
M64 = (1 << 64) - 1


@pytest.fixture(scope="module")
def tiny() -> pd.DataFrame:
    return EXP.run(EXP.resolve(min_log2=10, max_log2=11, repeats=1))


def test_registered_as_figure_5():
    assert EXP.name == "hashtable" and EXP.figure == "Figure 5"
    assert EXP.resolve()["load"] == 75          # the paper's fill, not the source's 25%
    full = EXP.resolve(full=True)
    assert (full["min_log2"], full["max_log2"]) == (12, 26)


def test_tiny_run_shape_and_units(tiny):
    assert list(tiny.columns[:len(COLUMNS)]) == COLUMNS
    assert (tiny.cycles_per_op_lo <= tiny.cycles_per_op).all()
    assert (tiny.cycles_per_op <= tiny.cycles_per_op_hi).all()
    assert (tiny.c_opt == "-O3 -march=native").all() and tiny.pages.str.contains("THP").all()
    assert set(tiny.implementation) == set(bench.IMPLEMENTATIONS)
    assert set(tiny.op) == {"get", "set"}
    assert sorted(tiny.size_log2.unique()) == [10, 11]
    assert len(tiny) == len(bench.IMPLEMENTATIONS) * 2 * 2      # impl x size x op, tidy
    assert (tiny.repeats == 1).all()
    for col in ("cycles_per_op", "ns_per_op"):
        assert tiny[col].dtype == float
        assert np.isfinite(tiny[col]).all() and (tiny[col] > 0).all(), col
    # units, not speed: cycles and ns of one measurement agree through the TSC frequency
    # (a swapped or mis-scaled column would be off by a factor of GHz or 1000)
    clocks = tiny.ns_per_op * (tsc_hz() / 1e9) / tiny.cycles_per_op
    assert clocks.between(0.5, 2.0).all(), clocks.tolist()
    assert (tiny["keys"] == [bench.n_keys(s, 75) for s in tiny.size_log2]).all()
    assert (tiny.mean_probes >= 1).all()


def test_python_versions_capped():
    df = EXP.run(EXP.resolve(min_log2=10, max_log2=11, repeats=1, py_max_log2=10))
    py = df[df.implementation.isin(bench.PYTHON_IMPLS)]
    assert set(py.size_log2) == {10}
    assert set(df[df.size_log2 == 11].implementation) == {"C", "jit C-style", "jit idiomatic"}


@pytest.mark.parametrize("size_log2", [10, 12])
def test_all_implementations_agree_on_checksum(size_log2):
    n = bench.n_keys(size_log2, 75)
    tables = bench.Tables(1 << size_log2)
    sums = {impl: {bench.measure(tables, impl, n)["checksum"] for _ in range(2)}.pop()
            for impl in bench.IMPLEMENTATIONS}
    assert set(sums.values()) == {bench.expected_checksum(n)}, sums


def test_expected_checksum_is_the_sum_of_values():
    n = 1000
    assert bench.expected_checksum(n) == sum(k ^ int(K.VALUE_XOR) for k in range(1, n + 1)) & M64


@pytest.mark.parametrize("override, valid", [
    ({"min_log2": 5}, "[10, 26]"), ({"max_log2": 27}, "[10, 26]"),
    ({"load": 95}, "[10, 90]"), ({"load": 5}, "[10, 90]"),
    ({"repeats": 0}, "[1, 100]"), ({"c_opt": "-O9"}, "-O2"),
])
def test_bad_parameters_refused_with_range(override, valid):
    with pytest.raises(ParamError) as e:
        EXP.resolve(**override)
    assert valid in str(e.value) and next(iter(override)) in str(e.value)


def test_min_above_max_refused():
    with pytest.raises(ParamError, match="min_log2"):
        EXP.run(EXP.resolve(min_log2=14, max_log2=12))


# ---- correctness against a Python dict ---------------------------------------------------

def fnv1_64_bytes(data: bytes) -> int:
    """FNV-1 64 over any bytes: the published algorithm, for the test vector below."""
    h = 0xCBF29CE484222325
    for b in data:
        h = (h * 0x100000001B3) & M64
        h ^= b
    return h


def test_fnv1_reference_vector():
    assert fnv1_64_bytes(b"") == 0xCBF29CE484222325
    assert fnv1_64_bytes(b"a") == 0xAF63BD4C8601B7BE   # FNV-1 (not 1a) 64-bit of "a"


@given(st.integers(0, M64))
def test_hash_is_fnv1_over_the_8_key_bytes(key):
    expected = fnv1_64_bytes(key.to_bytes(8, "little"))
    assert K.py_fnv1_64(key) == expected
    assert int(K.fnv1_64(np.uint64(key))) == expected


def _capacity(m: int) -> int:
    """A power of two with room to spare (the C-style tables need an empty slot)."""
    return 1 << max(3, math.ceil(math.log2(2 * m + 1)))


def _c_query(cap, keys, values, queries):
    ffi, lib = native()
    table = np.zeros(2 * cap, np.uint64)
    buf = lambda a, t="uint64_t[]": ffi.from_buffer(t, a)  # noqa: E731
    lib.set_many(buf(table), cap, buf(keys), buf(values), keys.size)
    out, found = np.zeros(queries.size, np.uint64), np.zeros(queries.size, np.uint8)
    lib.get_many(buf(table), cap, buf(queries), queries.size, buf(out), buf(found, "uint8_t[]"))
    return found.astype(bool), out


def _cstyle_query(cap, keys, values, queries):
    table = np.zeros(2 * cap, np.uint64)
    K.cstyle_set_many(table, keys, values)
    out, found = np.zeros(queries.size, np.uint64), np.zeros(queries.size, np.bool_)
    K.cstyle_get_many(table, queries, out, found)
    return found, out


def _idiom_query(cap, keys, values, queries):
    slots = np.zeros(cap, K.SLOT)
    K.idiom_set_many(slots, keys, values)
    out, found = np.zeros(queries.size, np.uint64), np.zeros(queries.size, np.bool_)
    K.idiom_get_many(slots, queries, out, found)
    return found, out


def _pylist_query(cap, keys, values, queries):
    t = K.PyListTable(cap)
    for k, v in zip(keys.tolist(), values.tolist()):
        t.set(k, v)
    got = [t.get(q) for q in queries.tolist()]
    return (np.array([g is not None for g in got], bool),
            np.array([0 if g is None else g for g in got], np.uint64))


QUERIES = {"C": _c_query, "jit C-style": _cstyle_query, "jit idiomatic": _idiom_query,
           "Python list": _pylist_query}

# keys: nonzero (0 marks an empty slot in the flat tables); small ones collide often
KEYS = st.one_of(st.integers(1, 64), st.integers(1, M64))


@settings(max_examples=60, deadline=None)
@given(pairs=st.lists(st.tuples(KEYS, st.integers(0, M64)), max_size=200),
       absent=st.lists(KEYS, max_size=50))
@pytest.mark.parametrize("impl", sorted(QUERIES))
def test_implementation_matches_dict(impl, pairs, absent):
    reference = {}
    for k, v in pairs:            # later sets overwrite earlier ones, as in a dict
        reference[k] = v
    keys = np.array([k for k, _ in pairs], np.uint64)
    values = np.array([v for _, v in pairs], np.uint64)
    queries = np.array([k for k, _ in pairs] + absent, np.uint64)
    found, got = QUERIES[impl](_capacity(len(pairs)), keys, values, queries)
    for q, f, g in zip(queries.tolist(), found.tolist(), got.tolist()):
        assert f == (q in reference), (impl, q)
        if f:
            assert g == reference[q], (impl, q)


def test_idiomatic_stores_key_zero_and_refuses_a_full_table():
    slots, mask = np.zeros(4, K.SLOT), np.uint64(3)
    assert K.idiom_set(slots, mask, np.uint64(0), np.uint64(7)) is None  # Option tag, not key 0
    assert K.idiom_get(slots, mask, np.uint64(0)) == 7
    assert K.idiom_set(slots, mask, np.uint64(0), np.uint64(8)) == 7    # returns the old value
    for k in (1, 2, 3):
        K.idiom_set(slots, mask, np.uint64(k), np.uint64(k))
    assert K.idiom_get(slots, mask, np.uint64(99)) is None
    with pytest.raises(IndexError, match="saturated"):
        K.idiom_set(slots, mask, np.uint64(99), np.uint64(1))


# ---- checked and unchecked wrappers of one body, through numba's on-disk cache -----------

ROOT = Path(__file__).resolve().parents[1]

# A table of 8 slots seen through a mask of 15: key 1 hashes past the end (into the 8 slots
# beyond the view, which hold key 1 with value 99). The checked wrapper must refuse; the
# unchecked one reads beyond. Run twice on one fresh cache: the first run compiles and
# caches both wrappers (unchecked first), the second loads them and must still tell them apart.
WRAPPERS = """
import numpy as np
from experiments.hashtable import kernels as K
big = np.zeros(16, K.SLOT)
big[8:]["occupied"], big[8:]["key"], big[8:]["value"] = True, 1, 99
view, key = big[:8], np.uint64(1)
assert K.py_fnv1_64(1) & 15 >= 8, "key 1 no longer hashes past the view"
print("unchecked", K.unchecked_get(view, np.uint64(15), key))
try:
    print("checked", K.idiom_get(view, np.uint64(15), key))
except IndexError:
    print("checked IndexError")
print("cache hits", len(K.unchecked_get.stats.cache_hits), len(K.idiom_get.stats.cache_hits))
"""


def test_checked_wrapper_never_runs_unchecked_code_from_a_warm_cache(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REDLEAF_NB_CACHE": str(tmp_path)}
    env.pop("NUMBA_CACHE_DIR", None)
    runs = [subprocess.run([sys.executable, "-c", WRAPPERS], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=900) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
    cold, warm = (r.stdout.splitlines() for r in runs)
    assert cold == ["unchecked 99", "checked IndexError", "cache hits 0 0"]
    assert warm == ["unchecked 99", "checked IndexError", "cache hits 1 1"]


def test_idiomatic_slot_is_an_option_of_a_pair():
    assert K.SLOT.itemsize == 24 and K.SLOT_PACKED.itemsize == 17


# ---- ablation and plot -------------------------------------------------------------------

def test_ablation_tiny():
    df = HT.ablation(sizes=(10, 11), repeats=1)
    assert set(df.variant) == set(bench.ABLATION)
    assert np.isfinite(df.cycles_per_op).all() and (df.cycles_per_op > 0).all()
    # one row per variant, size and op; each ratio is to C-style at the same size and op
    assert len(df) == len(bench.ABLATION) * 2 * 2
    assert not df.duplicated(["variant", "size_log2", "op"]).any()
    cstyle = df[df.variant == next(iter(bench.ABLATION))]
    for row in df.itertuples():
        base = cstyle[(cstyle.size_log2 == row.size_log2) & (cstyle.op == row.op)]
        assert np.isclose(row.ratio_to_cstyle, row.cycles_per_op / base.cycles_per_op.item())


def test_paper_refs_come_from_the_csv():
    paper = ex.paper(EXP)
    refs = HT.paper_refs(paper)
    fig5 = paper[paper.figure == "fig5"]
    assert refs["idiomatic_slowdown_pct"] == fig5[fig5.unit == "percent"].value.iloc[0]
    assert {"cstyle_faster_low", "cstyle_faster_high", "instr_c", "instr_cstyle"} <= set(refs)


def test_plot(tiny):
    import matplotlib.pyplot as plt
    fig = EXP.plot(tiny, ex.paper(EXP))
    try:
        axes = fig.get_axes()
        assert len(axes) == 4
        assert all(ax.get_xlabel() and ax.get_ylabel() for ax in axes)
        assert "this machine" in fig._suptitle.get_text().lower()
    finally:
        plt.close(fig)
    r = HT.ratios(tiny)
    assert {"C-style / C", "idiomatic / C"} <= set(r.columns)
