"""Figure 5: the cost of the language — one hashtable in C, C-style and idiomatic code.

The paper (§5.1, "Rust overhead") measures an open-addressing hashtable with
linear probing and the FNV hash, 8-byte keys and 8-byte values, kept 75% full,
for table sizes 2^12 .. 2^26, in three implementations with the same hashing
logic: C, idiomatic Rust and C-style Rust. It reports cycles per get and per
set (Figure 5): idiomatic Rust is about 25% slower than C for most sizes;
C-style Rust is comparable to, or 3-10 cycles faster than, C.

Here the same benchmark runs with Numba standing in for Rust, each
implementation measured on this machine:

* ``C``: the reference, ``experiments/native/hashtable.c`` built once with the
  system ``gcc -O3 -march=native`` (the level Numba compiles at) by
  :mod:`redleaf_nb.native` (its one build cache, keyed by
  source and flags) and called through cffi (:mod:`.c_reference`). It
  works on numpy-allocated buffers handed over with ``ffi.from_buffer`` — in
  fact on the *same* buffer as the jitted C-style version — so page placement
  (transparent huge pages) is identical. Its cycles are read with ``__rdtsc``
  around the loop, inside C.
* ``jit C-style``: ``kernels.cstyle_get`` / ``cstyle_set``, ``@njit`` over a
  flat ``uint64`` array of {key, value} pairs (16 bytes an entry, key 0 =
  empty), an unbounded probe loop, a ``(found, value)`` result, no bounds
  checks: line for line the C code.
* ``jit idiomatic``: ``kernels.idiom_get`` / ``idiom_set``, see
  ``kernels.slots_get`` for the idioms (array of records with an ``occupied``
  flag, i.e. ``Option<(K, V)>``, 24-byte entries; ``Optional`` results; bounds-checked
  indexing; a bounded probe iteration).
* ``Python dict`` and ``Python list``: the plain-Python way and the same
  algorithm in plain Python, only for tables up to ``2^py_max_log2`` entries
  (16 by default): they are there to show scale (hundreds of times slower).

The benchmark loop is the RedLeaf source's (``benchhash``): insert keys
1..n (here value = key XOR ``kernels.VALUE_XOR``, so a value is never mistaken for
its key), then look up the same keys; n = size * load / 100. The paper's
table is 75% full (``load=75``); the RedLeaf source's benchmark loads 25%.
Cycles come from the time-stamp counter read inside the compiled code (so call
overhead is excluded); ns from ``time.perf_counter_ns`` around each call. The
table is zeroed (every page touched) before each timed insert pass, so page
faults are never timed. The implementations take turns pass by pass (see
``bench.measure_size``); a repeat is at least ``bench.MIN_OPS`` operations (small
tables: the median of several passes); the median over ``repeats`` is
reported. The process is pinned to one CPU while it measures. Every pass of
every implementation must return the same checksum (the sum of the values it
got), or the run fails.

Compilers: Numba compiles at LLVM -O3 for this CPU, and so, by default, is the
C reference (``gcc -O3 -march=native``; parameter ``c_opt``, ``-O2`` and
``-O3`` offered). Until this default, C was built at ``-O2``, which made C look
slower than it is and idiomatic code look cheaper. The difference matters here: gcc -O2 keeps FNV's 8-round byte loop as a loop with a
variable shift, LLVM (and gcc -O3) unrolls it into constant shifts, which
costs C about 10-15 cycles per operation in cache and more out of cache
(fewer lookups in flight). :func:`ablation` measures which idiom of the
idiomatic version costs what.

The package: :mod:`.kernels` (the jitted kernels and their Python twins),
:mod:`.c_reference` (the C reference), :mod:`.bench` (tables and timed passes)
and this module: the experiment (parameters, :func:`run`, :func:`plot`), with
:func:`ratios`, :func:`paper_refs` and :func:`ablation`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.hashtable import kernels as K
from experiments.hashtable.bench import (ABLATION, IMPLEMENTATIONS, PYTHON_IMPLS, Tables,
                                         measure_size, n_keys, warm_up)
from experiments.hashtable.c_reference import C_OPT_CHOICES, FAIR_C_OPT
from redleaf_nb.experiments import Experiment, Param, ParamError
from redleaf_nb.lowlevel.clock import cpu_model, tsc_hz
from redleaf_nb.measure import pinned, summarize


def page_policy() -> str:
    """How the tables' pages are allocated, for the record: every table (C's too) is a
    numpy array, which asks for transparent huge pages (madvise) from 4 MiB on, so C
    and the jitted versions get the same page sizes whatever the system's THP mode."""
    try:
        mode = open("/sys/kernel/mm/transparent_hugepage/enabled").read().split("[")[1]
        mode = mode.split("]")[0]
    except (OSError, IndexError):
        mode = "unknown"
    return f"numpy arrays for every table; THP mode {mode}"


def run(params: dict) -> pd.DataFrame:
    """Cycles and ns per set and per get, per implementation and table size (tidy).

    Columns: implementation, size_log2, op (set/get), cycles_per_op, ns_per_op, repeats,
    then keys (inserted), load (%), c_opt (the C reference's gcc flag) and mean_probes
    (slots probed per get: a property of FNV-1 on keys 1..n at this size).
    """
    from tqdm.auto import tqdm

    lo, hi, load, repeats = (params["min_log2"], params["max_log2"], params["load"],
                             params["repeats"])
    py_max, c_opt = params["py_max_log2"], params["c_opt"]
    if lo > hi:
        raise ParamError(f"hashtable: min_log2={lo} is larger than max_log2={hi}")
    sizes = list(range(lo, hi + 1))
    pages = page_policy()
    rows = []
    with pinned():
        warm_up(IMPLEMENTATIONS, c_opt)
        bar = tqdm(total=len(sizes) * repeats, desc="hashtable", unit="repeat",
                   leave=False, mininterval=0.5)
        for size in sizes:
            impls = [i for i in IMPLEMENTATIONS if i not in PYTHON_IMPLS or size <= py_max]
            tables = Tables(1 << size, impls, c_opt)
            n = n_keys(size, load)
            results = measure_size(tables, n, repeats, bar)
            # the keys' layout is the hash's, not the implementation's: count it once
            tables.reset("jit C-style")
            K.cstyle_bench_set(tables.flat, n)
            probes = float(K.cstyle_mean_probes(tables.flat, n))
            for impl in impls:
                for op in ("set", "get"):
                    per = np.array(results[(impl, op)])
                    cycles = summarize(per[:, 0], "min")
                    rows.append({
                        "implementation": impl, "size_log2": size, "op": op,
                        **cycles.columns("cycles_per_op"),
                        **summarize(per[:, 1], "min").columns("ns_per_op"),
                        "repeats": len(per), "estimator": cycles.rule,
                        "keys": n, "load": load, "c_opt": c_opt, "pages": pages,
                        "mean_probes": probes})
            del tables
        bar.close()
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------
# Which idiom costs what: the idiomatic kernels with one idiom removed at a time

def ablation(sizes=(12, 16, 20), load: int = 75, repeats: int = 5) -> pd.DataFrame:
    """Cycles/op of the idiomatic table with its idioms switched on one at a time.

    The variants (:data:`ABLATION`) are measured like :func:`run` measures (round robin,
    median). Returns a tidy table: variant, size_log2, op, cycles_per_op, ratio_to_cstyle.
    """
    impls = list(ABLATION.values())
    name = {v: k for k, v in ABLATION.items()}
    rows = []
    with pinned():
        warm_up(impls, FAIR_C_OPT)
        for size in sizes:
            n = n_keys(size, load)
            results = measure_size(Tables(1 << size, impls), n, repeats)
            for (impl, op), per in results.items():
                rows.append({"variant": name[impl], "size_log2": size, "op": op,
                             "cycles_per_op": float(np.median(np.array(per)[:, 0]))})
    df = pd.DataFrame(rows)
    base = df[df.variant == next(iter(ABLATION))].set_index(["size_log2", "op"]).cycles_per_op
    df["ratio_to_cstyle"] = [c / base[(s, o)] for c, s, o in
                             zip(df.cycles_per_op, df.size_log2, df.op)]
    return df


# --------------------------------------------------------------------------------------
# Ours beside the paper's

def ratios(ours: pd.DataFrame) -> pd.DataFrame:
    """Per size and op: C, C-style and idiomatic cycles/op, their ratios and differences to C."""
    wide = ours.pivot_table(index=["size_log2", "op"], columns="implementation",
                            values="cycles_per_op")
    out = pd.DataFrame({"C": wide["C"], "jit C-style": wide["jit C-style"],
                        "jit idiomatic": wide["jit idiomatic"]})
    out["C-style / C"] = out["jit C-style"] / out["C"]
    out["idiomatic / C"] = out["jit idiomatic"] / out["C"]
    out["C-style - C (cycles)"] = out["jit C-style"] - out["C"]
    return out.reset_index()


def paper_refs(paper: pd.DataFrame) -> dict:
    """The paper's Figure 5 statements, read from data/paper/hashtable.csv."""
    p = paper[paper.figure == "fig5"]
    refs = {}
    for _, row in p.iterrows():
        system, metric, unit = str(row.system), str(row.metric), str(row.unit)
        if system.startswith("idiomatic") and unit == "percent":
            refs["idiomatic_slowdown_pct"] = float(row.value)
            refs["idiomatic_where"] = str(row.param_value)
        elif system.startswith("C-style") and unit == "cycles" and "low" in metric:
            refs["cstyle_faster_low"] = float(row.value)
        elif system.startswith("C-style") and unit == "cycles" and "high" in metric:
            refs["cstyle_faster_high"] = float(row.value)
        elif unit == "instructions":
            refs["instr_cstyle" if "C-style" in metric else "instr_c"] = float(row.value)
    return refs


def _math(text: str) -> str:
    """'2^12..2^26' as matplotlib mathtext."""
    import re
    return re.sub(r"2\^(\d+)", r"$2^{\1}$", text)


PALETTE = {"C": "#222222", "jit C-style": "#1f77b4", "jit idiomatic": "#d62728",
           "Python dict": "#2ca02c", "Python list": "#9467bd"}


def plot(ours: pd.DataFrame, paper: pd.DataFrame):
    """Cycles/op vs table size (get, set), and our ratios to C beside the paper's."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = plt.subplots(2, 2, figsize=(13, 10.5))
    sizes = sorted(ours.size_log2.unique())
    ticks = sizes if len(sizes) <= 10 else sizes[::2]
    impls = [i for i in IMPLEMENTATIONS if i in set(ours.implementation)]
    py_sizes = ours[ours.implementation.isin(PYTHON_IMPLS)].size_log2
    for ax, op in zip(axes[0], ("get", "set")):
        d = ours[ours.op == op]
        sns.lineplot(data=d, x="size_log2", y="cycles_per_op", hue="implementation",
                     hue_order=impls, palette=PALETTE, marker="o", ax=ax)
        if "cycles_per_op_lo" in d:   # the spread: bootstrap 90% interval of the minimum
            for impl, g in d.groupby("implementation"):
                ax.fill_between(g.size_log2, g.cycles_per_op_lo, g.cycles_per_op_hi,
                                color=PALETTE[impl], alpha=0.2, lw=0)
        ax.set_yscale("log")
        probes = ""
        if "mean_probes" in d:
            pr = d.drop_duplicates("size_log2").set_index("size_log2").mean_probes
            probes = (f"\nslots probed per op (FNV-1 on keys 1..n): {pr.min():.2f}-"
                      f"{pr.max():.2f}, most at $2^{{{pr.idxmax()}}}$")
        ax.set_title(f"{op}: cycles per {op}" +
                     (f" (Python only up to $2^{{{py_sizes.max()}}}$)" if len(py_sizes) else ""))
        ax.set_ylabel(f"cycles per {op} (log scale)")
        lo, hi = d.cycles_per_op.min(), d.cycles_per_op.max()
        ax.set_ylim(lo / 1.5, hi * 30)                        # room for the legend on top
        ax.legend(fontsize=8, loc="upper center", ncol=3)
    ax = axes[1, 0]
    r = ratios(ours).melt(id_vars=["size_log2", "op"], value_vars=["C-style / C", "idiomatic / C"],
                          var_name="ratio", value_name="value")
    sns.lineplot(data=r, x="size_log2", y="value", hue="ratio", style="op", markers=True,
                 palette={"C-style / C": PALETTE["jit C-style"],
                          "idiomatic / C": PALETTE["jit idiomatic"]}, ax=ax)
    ax.axhline(1.0, color=PALETTE["C"], lw=1)
    ax.axhspan(0.9, 1.1, color=PALETTE["jit C-style"], alpha=0.08,
               label="target: C-style within 10% of C")
    refs = paper_refs(paper)
    if "idiomatic_slowdown_pct" in refs:
        ax.axhline(1 + refs["idiomatic_slowdown_pct"] / 100, color=PALETTE["jit idiomatic"],
                   ls="--", lw=1.5,
                   label=f"paper: idiomatic Rust +{refs['idiomatic_slowdown_pct']:g}% vs C "
                         f"({_math(refs['idiomatic_where'])})")
    ax.set_title("ours: ratio to C; paper's idiomatic Rust dashed")
    ax.set_ylabel("cycles/op relative to C (1 = C)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3)
    ax = axes[1, 1]
    dif = ratios(ours)
    sns.lineplot(data=dif, x="size_log2", y="C-style - C (cycles)", style="op", markers=True,
                 color=PALETTE["jit C-style"], ax=ax)
    ax.axhline(0, color=PALETTE["C"], lw=1)
    if "cstyle_faster_low" in refs and "cstyle_faster_high" in refs:
        lo, hi = refs["cstyle_faster_low"], refs["cstyle_faster_high"]
        ax.axhspan(-hi, -lo, color="orange", alpha=0.25,
                   label=f"paper: C-style Rust {lo:g}-{hi:g} cycles faster than C")
    if "instr_cstyle" in refs and "instr_c" in refs:
        ax.text(0.02, 0.04, f"paper: {refs['instr_cstyle']:g} instructions on the get/set "
                f"critical path in C-style Rust vs {refs['instr_c']:g} in C",
                transform=ax.transAxes, fontsize=8)
    ax.set_title("ours: jit C-style minus C; paper's C-style Rust minus C shaded")
    ax.set_ylabel("C-style - C (cycles/op; < 0: faster)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"$2^{{{s}}}$" for s in ticks])
        ax.set_xlabel("table size (entries)" + (probes if i < 2 else ""))
    load = int(ours["load"].iloc[0]) if "load" in ours else None
    c_opt = str(ours["c_opt"].iloc[0]) if "c_opt" in ours else "-O2"
    fig.suptitle("Figure 5, hashtable (FNV-1, linear probing, 8 B keys/values"
                 + (f", {load}% full" if load else "") + "): host cost on THIS machine, "
                 f"{cpu_model()}, TSC {tsc_hz() / 1e9:.2f} GHz\nAbsolute cycles differ from the "
                 f"paper's (Haswell 2.6 GHz, Rust): compare ratios. C = gcc {c_opt} via cffi; "
                 "jit = Numba", fontsize=11)
    fig.tight_layout()
    return fig


EXPERIMENT = Experiment(
    name="hashtable",
    figure="Figure 5",
    title="Language overhead: open-addressing hashtable in C, C-style and idiomatic jitted code",
    paper_csv="hashtable.csv",
    params=(
        Param("min_log2", int, 12, 12, "smallest table, log2 of entries", low=10, high=26),
        Param("max_log2", int, 20, 26, "largest table, log2 of entries", low=10, high=26),
        Param("load", int, 75, 75, "percent of the table filled (paper 75; RedLeaf source 25)",
              low=10, high=90),
        Param("repeats", int, 9, 9, "measurements per point, implementations taking turns "
              "(the minimum is reported)", low=1, high=100),
        Param("py_max_log2", int, 16, 16, "largest table for the pure-Python versions", low=10,
              high=20),
        Param("c_opt", str, FAIR_C_OPT, FAIR_C_OPT, "gcc optimisation of the C reference "
              "(default: Numba's own level)", choices=C_OPT_CHOICES),
    ),
    run=run,
    plot=plot,
    bound="Host cost: cycles per get/set of our code on this machine (no device involved).",
    notes="C and jit C-style share one numpy buffer; C built at gcc -O3 -march=native by "
          "default (c_opt), the level Numba compiles at for this CPU.",
    measured=tuple(f"{unit}_per_op{end}" for unit in ("cycles", "ns") for end in ("", "_lo", "_hi")),
)
