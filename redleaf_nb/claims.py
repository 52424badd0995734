"""The paper's claims, each judged from the results recorded here.

A claim is a function of recorded results (``data/results/<experiment>/*.csv``)
and the paper's numbers (``data/paper/``) that returns a :class:`Verdict`:

* **holds** — the whole spread of the measured quantity is on the claim's side
  of its threshold;
* **does not hold** — the whole spread is on the other side;
* **inconclusive** — the spread straddles the threshold: this run cannot tell
  (a longer run, or more rounds, narrows the spread);
* **not run** — an experiment it needs has no recorded results.

Every quantity is an interval (:class:`Span`): the experiment's estimate and the
spread it recorded beside it (``<col>_lo``, ``<col>_hi``: see
:mod:`redleaf_nb.measure`). Ratios and differences of spans are computed
conservatively (the extreme combinations of their ends), so a decision that
depends on a difference smaller than the spread comes out inconclusive, never
as a coin flip. The thresholds below were fixed from the paper's numbers before
any data was looked at; they are not to be tuned to what a run gives.

``judge_all`` judges every claim; ``write`` records the verdicts with their
inputs, thresholds and the code version in ``data/results/claims.json``;
``redleaf-nb claims`` prints the table; the report opens with it.
"""
from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

HOLDS, FAILS, INCONCLUSIVE, NOT_RUN = "holds", "does not hold", "inconclusive", "not run"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE, NOT_RUN)
CONFIG_ORDER = ("redleaf-driver", "redleaf-domain", "redleaf-shadow", "rv6-domain", "rv6-shadow")
# (fewer, more): pairs of configurations where the second crosses one domain more
ONE_MORE_CROSSING = (("redleaf-driver", "redleaf-domain"), ("redleaf-domain", "redleaf-shadow"),
                     ("redleaf-domain", "rv6-domain"), ("redleaf-shadow", "rv6-shadow"),
                     ("rv6-domain", "rv6-shadow"))


# --- intervals and the three-way decision -------------------------------------------

@dataclass(frozen=True)
class Span:
    """A measured value and its spread, ``lo <= value <= hi``."""

    value: float
    lo: float
    hi: float

    @classmethod
    def of(cls, row, col: str) -> "Span":
        """The span a results row records for ``col`` (no spread columns: a point)."""
        v = float(row[col])
        lo, hi = (float(row.get(f"{col}_{end}", v)) for end in ("lo", "hi"))
        return cls(v, min(lo, v), max(hi, v))

    def __truediv__(self, other: "Span") -> "Span":
        if other.lo <= 0:
            raise ValueError(f"a ratio over a span reaching {other.lo} (not positive)")
        return Span(self.value / other.value, self.lo / other.hi, self.hi / other.lo)

    def __sub__(self, other: "Span") -> "Span":
        return Span(self.value - other.value, self.lo - other.hi, self.hi - other.lo)

    def scaled(self, factor: float) -> "Span":
        ends = sorted((self.lo * factor, self.hi * factor))
        return Span(self.value * factor, *ends)

    def text(self, digits: int = 3) -> str:
        return f"{self.value:.{digits}g} [{self.lo:.{digits}g}, {self.hi:.{digits}g}]"


def at_least(s: Span, threshold: float) -> str:
    return HOLDS if s.lo >= threshold else FAILS if s.hi < threshold else INCONCLUSIVE


def at_most(s: Span, threshold: float) -> str:
    return HOLDS if s.hi <= threshold else FAILS if s.lo > threshold else INCONCLUSIVE


def within(s: Span, low: float, high: float) -> str:
    if low <= s.lo and s.hi <= high:
        return HOLDS
    return FAILS if s.hi < low or s.lo > high else INCONCLUSIVE


def combine(verdicts) -> str:
    """All hold: holds; any fails: does not hold; otherwise inconclusive."""
    verdicts = list(verdicts)
    if any(v == FAILS for v in verdicts):
        return FAILS
    return HOLDS if verdicts and all(v == HOLDS for v in verdicts) else INCONCLUSIVE


def share(verdicts, fraction: float) -> str:
    """Holds in at least ``fraction`` of the cases: holds if enough hold for sure,
    does not hold if too many fail for sure, otherwise inconclusive."""
    verdicts = list(verdicts)
    needed = math.ceil(fraction * len(verdicts) - 1e-9)
    holds = sum(v == HOLDS for v in verdicts)
    possible = sum(v != FAILS for v in verdicts)
    return HOLDS if holds >= needed else FAILS if possible < needed else INCONCLUSIVE


class Checks:
    """The sub-checks of one claim: each a verdict, a name and the span it judged."""

    def __init__(self):
        self.items: list[tuple[str, str, Span | None, str]] = []

    def add(self, name: str, verdict: str, span: Span | None = None, rule: str = "") -> str:
        self.items.append((name, verdict, span, rule))
        return verdict

    def inputs(self) -> dict:
        return {name: {"verdict": v, **({"value": s.value, "lo": s.lo, "hi": s.hi}
                                         if s is not None else {}), "rule": rule}
                for name, v, s, rule in self.items}

    def reason(self, verdict: str) -> str:
        """The first check that decided ``verdict`` (or, when it holds, a summary)."""
        if verdict == HOLDS and len(self.items) > 1:
            return f"all {len(self.items)} checks hold"
        for name, v, s, rule in self.items:
            if v == verdict:
                measured = f" = {s.text()}" if s is not None else ""
                return f"{name}{measured}, needs {rule}" if rule else f"{name}{measured}"
        return ""


# --- the registry ---------------------------------------------------------------------

@dataclass
class Verdict:
    """A claim's verdict on the recorded results, with what it used."""

    number: int
    title: str
    verdict: str
    reason: str
    threshold: str
    paper: str
    figure: str
    experiments: tuple
    notebook: str
    inputs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Claim:
    number: int
    title: str
    threshold: str
    figure: str
    experiments: tuple
    notebook: str
    judge: Callable     # (results: {experiment: DataFrame}, paper: {csv name: DataFrame},
    #                      checks: Checks) -> None
    paper: Callable     # (paper frames) -> str: the paper's numbers behind the claim

    def verdict(self, results: dict, paper: dict) -> Verdict:
        made = dict(number=self.number, title=self.title, threshold=self.threshold,
                    figure=self.figure, experiments=self.experiments, notebook=self.notebook)
        missing = [e for e in self.experiments if e not in results]
        try:
            said = self.paper(paper)
        except (KeyError, IndexError):
            said = "(the paper's numbers are missing from data/paper/)"
        if missing:
            return Verdict(verdict=NOT_RUN, paper=said, reason=f"no recorded results of "
                           f"{', '.join(missing)}: redleaf-nb run {missing[0]}", **made)
        checks = Checks()
        try:
            self.judge(results, paper, checks)
        except (KeyError, IndexError, ValueError) as err:
            return Verdict(verdict=NOT_RUN, paper=said, reason=f"the recorded results lack "
                           f"what the claim needs ({err!r}): re-run "
                           f"{' and '.join(self.experiments)}", **made)
        verdict = combine(v for _, v, _, _ in checks.items)
        return Verdict(verdict=verdict, paper=said, reason=checks.reason(verdict),
                       inputs=checks.inputs(), **made)


CLAIMS: list[Claim] = []


def claim(number: int, title: str, threshold: str, figure: str, experiments: tuple,
          notebook: str, paper: Callable):
    """Register the decorated judge as claim ``number``."""
    def register(judge):
        CLAIMS.append(Claim(number, title, threshold, figure, experiments, notebook, judge,
                            paper))
        CLAIMS.sort(key=lambda c: c.number)
        return judge
    return register


def _same(column: pd.Series, value) -> pd.Series:
    """Cells equal to ``value`` (a number matches however pandas parsed the column)."""
    if isinstance(value, (int, float)):
        return pd.to_numeric(column, errors="coerce") == value
    return column.astype(str) == value


def _paper_value(paper: dict, csv: str, **where) -> float:
    df = paper[csv]
    for col, value in where.items():
        df = df[_same(df[col], value)]
    return float(df.value.iloc[0])


def _rows(df: pd.DataFrame, key: str) -> dict:
    return {k: row for k, row in zip(df[key], df.to_dict("records"))}


# --- Table 1 --------------------------------------------------------------------------

NULL, RREF = "jitted proxy: null call", "jitted proxy: passing RRef<u64>"
SHADOW_NULL = "jitted proxy via shadow: null call"
PIPE = "two processes, pipe round trip (both on CPU 0)"
SPIN = "two processes, shared-memory spin round trip (CPUs 0 and 1)"


def _table1(paper: dict, config: str, system: str = "RedLeaf") -> float:
    return _paper_value(paper, "comm_cost.csv", system=system, config=config)


@claim(1, "A cross-domain call is far cheaper than hardware-isolated IPC",
       "the cheapest process round trip measured in the same run >= 3x the jitted null "
       "proxied call", "Table 1", ("comm_cost",), "notebooks/table1_comm_cost.ipynb",
       lambda p: (f"RedLeaf null call {_table1(p, 'cross-domain invocation (null via proxy)'):.0f}"
                  f" cycles; VMFUNC call/reply {_table1(p, 'VMFUNC-based call/reply invocation', 'LVDs'):.0f};"
                  f" seL4 {_table1(p, 'call/reply IPC', 'seL4'):.0f}"))
def _claim1(results, paper, checks):
    rows = _rows(results["comm_cost"], "row")
    null = Span.of(rows[NULL], "cycles")
    trips = {name: Span.of(rows[name], "cycles") for name in (PIPE, SPIN)}
    cheapest = min(trips, key=lambda name: trips[name].value)
    ratio = trips[cheapest] / null
    checks.add(f"{cheapest.split(',')[1].strip()} / jitted null call", at_least(ratio, 3.0),
               ratio, ">= 3")


@claim(2, "Passing an RRef adds little to a call",
       "the jitted call passing RRef<u64> minus the null call <= 34 cycles (2x the paper's +17)",
       "Table 1", ("comm_cost",), "notebooks/table1_comm_cost.ipynb",
       lambda p: f"+{_table1(p, 'passing one RRef<T> (incremental)'):.0f} cycles "
                 f"({_table1(p, 'cross-domain invocation passing RRef<T>'):.0f} against "
                 f"{_table1(p, 'cross-domain invocation (null via proxy)'):.0f})")
def _claim2(results, paper, checks):
    rows = _rows(results["comm_cost"], "row")
    added = Span.of(rows[RREF], "cycles") - Span.of(rows[NULL], "cycles")
    checks.add("RRef call - null call (cycles)", at_most(added, 34.0), added, "<= 34")


@claim(3, "A call via a shadow costs about two plain calls",
       "jitted shadow null call / plain null call in [1.5, 3.0]", "Table 1", ("comm_cost",),
       "notebooks/table1_comm_cost.ipynb",
       lambda p: f"{_table1(p, 'cross-domain invocation via shadow'):.0f} / "
                 f"{_table1(p, 'cross-domain invocation (null via proxy)'):.0f} cycles")
def _claim3(results, paper, checks):
    rows = _rows(results["comm_cost"], "row")
    ratio = Span.of(rows[SHADOW_NULL], "cycles") / Span.of(rows[NULL], "cycles")
    checks.add("shadow / plain null call", within(ratio, 1.5, 3.0), ratio, "in [1.5, 3.0]")


# --- Figure 5 -------------------------------------------------------------------------

@claim(4, "Idiomatic safe code is about 25% slower than C; C-style safe code is on par",
       "idiomatic / C in [1.10, 1.40] and C-style / C <= 1.05, each for at least two thirds "
       "of the (table size, operation) cases", "Figure 5", ("hashtable",),
       "notebooks/fig5_hashtable.ipynb",
       lambda p: "idiomatic Rust about 25% slower than C for most sizes; C-style Rust "
                 f"{_paper_value(p, 'hashtable.csv', metric='faster than C by (range low)'):.0f}"
                 f"-{_paper_value(p, 'hashtable.csv', metric='faster than C by (range high)'):.0f}"
                 " cycles faster than C")
def _claim4(results, paper, checks):
    df = results["hashtable"]
    spans = {(r["implementation"], r["size_log2"], r["op"]): Span.of(r, "cycles_per_op")
             for r in df.to_dict("records")}
    cases = sorted({(s, o) for i, s, o in spans if i == "C"})
    idiom = [within(spans[("jit idiomatic", s, o)] / spans[("C", s, o)], 1.10, 1.40)
             for s, o in cases]
    cstyle = [at_most(spans[("jit C-style", s, o)] / spans[("C", s, o)], 1.05)
              for s, o in cases]
    for name, verdicts in (("idiomatic / C in [1.10, 1.40]", idiom),
                           ("C-style / C <= 1.05", cstyle)):
        counts = {v: verdicts.count(v) for v in (HOLDS, FAILS, INCONCLUSIVE)}
        checks.add(f"{name}: cases holding / failing / undecided = {counts[HOLDS]} / "
                   f"{counts[FAILS]} / {counts[INCONCLUSIVE]} of {len(verdicts)}",
                   share(verdicts, 2 / 3), None, "at least two thirds of the cases")


# --- Figures 6 and 7 -------------------------------------------------------------------

def _fig6(p: dict, config: str, batch: int = 1) -> float:
    return _paper_value(p, "ixgbe.csv", figure="fig6", config=config, param_value=batch)


def _at(df: pd.DataFrame, batch, direction=None) -> dict:
    sel = df[(df.batch == batch) & ((df.direction == direction) if direction else True)]
    return _rows(sel, "config")


def _ordered(checks: Checks, where: str, rows: dict, col: str, pairs, margin: float):
    """Each (a, b) of ``pairs``: ``a``'s ``col`` at least ``margin`` times ``b``'s."""
    for a, b in pairs:
        ratio = Span.of(rows[a], col) / Span.of(rows[b], col)
        checks.add(f"{where}: {a} / {b}", at_least(ratio, margin), ratio, f">= {margin}")


@claim(5, "At batch 1 each crossing costs ixgbe packets, and the linked-in driver "
          "matches DPDK",
       "batch 1, RX and TX host rates: redleaf-driver > redleaf-domain > redleaf-shadow ~ "
       "rv6-domain > rv6-shadow ('>': at least 5% higher beyond the spread; '~': within "
       "10%), and redleaf-driver >= 0.93x the DPDK analog", "Figure 6", ("ixgbe",),
       "notebooks/fig6_ixgbe.ipynb",
       lambda p: " > ".join(f"{c} {_fig6(p, c):g}" for c in CONFIG_ORDER)
                 + f" Mpps; DPDK {_fig6(p, 'polling'):g} Mpps")
def _claim5(results, paper, checks):
    df = results["ixgbe"]
    small = df.batch.min()
    for direction in ("RX", "TX"):
        rows = _at(df, small, direction)
        where = f"batch {small} {direction} host rate"
        _ordered(checks, where, rows, "host_rate", ONE_MORE_CROSSING, 1.05)
        tie = Span.of(rows["redleaf-shadow"], "host_rate") / Span.of(rows["rv6-domain"],
                                                                      "host_rate")
        checks.add(f"{where}: redleaf-shadow / rv6-domain", within(tie, 1 / 1.1, 1.1), tie,
                   "in [0.91, 1.1]")
        if "DPDK" in rows:
            _ordered(checks, where, rows, "host_rate", [("redleaf-driver", "DPDK")], 0.93)
        else:
            checks.add(f"{where}: redleaf-driver / DPDK analog", INCONCLUSIVE, None,
                       "a DPDK analog measured in the same run (none recorded)")


def _reaches_capacity(checks: Checks, where: str, row: dict, what: str) -> None:
    """The achieved rate at least 95% of the device's capacity, and the host rate above
    it. A run that fell short *and* is labelled stalled (its host rate is above the
    capacity: the VM, not our code, held it back) cannot tell: inconclusive, not a
    failure of the claim."""
    cap = float(row["capacity"])
    got = Span.of(row, "rate").scaled(1 / cap)
    host = Span.of(row, "host_rate").scaled(1 / cap)
    reached = at_least(got, 0.95)
    if reached == FAILS and row.get("bound") == "stalled":
        checks.add(f"{where}: achieved / {what} (the run stalled: re-run)", INCONCLUSIVE, got,
                   ">= 0.95 in a run without stalls")
    else:
        checks.add(f"{where}: achieved / {what}", reached, got, ">= 0.95")
    checks.add(f"{where}: host rate / {what}", at_least(host, 1.0), host, ">= 1")


@claim(6, "At batch 32 every configuration reaches ixgbe's line rate",
       "batch 32, RX and TX: every configuration achieves >= 95% of line rate, with a host "
       "rate above line rate", "Figure 6", ("ixgbe",), "notebooks/fig6_ixgbe.ipynb",
       lambda p: f"redleaf-driver and DPDK {_fig6(p, 'redleaf-driver', 32):g} Mpps "
                 "(line rate) at batch 32")
def _claim6(results, paper, checks):
    df = results["ixgbe"]
    large = df.batch.max()
    for direction in ("RX", "TX"):
        rows = _at(df, large, direction)
        for config in CONFIG_ORDER:
            _reaches_capacity(checks, f"batch {large} {direction} {config}", rows[config],
                              "line rate")


@claim(7, "Crossings cost nullnet packets at batch 1, far less at batch 32",
       "batch 1: each added crossing lowers the rate by >= 5%; the relative drop from "
       "redleaf-driver to rv6-shadow at batch 32 is less than half of that at batch 1",
       "Figure 7", ("nullnet",), "notebooks/fig7_nullnet.ipynb",
       lambda p: "redleaf-driver -> rv6-shadow: "
                 f"{_paper_value(p, 'ixgbe.csv', figure='fig7', config='redleaf-driver', param_value=1):g}"
                 f" -> {_paper_value(p, 'ixgbe.csv', figure='fig7', config='rv6-shadow', param_value=1):g}"
                 " Mpps at batch 1, "
                 f"{_paper_value(p, 'ixgbe.csv', figure='fig7', config='redleaf-driver', param_value=32):g}"
                 f" -> {_paper_value(p, 'ixgbe.csv', figure='fig7', config='rv6-shadow', param_value=32):g}"
                 " at batch 32")
def _claim7(results, paper, checks):
    df = results["nullnet"]
    small, large = df.batch.min(), df.batch.max()
    rows1 = _at(df, small)
    _ordered(checks, f"batch {small} rate", rows1, "rate", ONE_MORE_CROSSING, 1.05)

    def drop(rows):   # 1 - rv6-shadow's rate / redleaf-driver's
        kept = Span.of(rows["rv6-shadow"], "rate") / Span.of(rows["redleaf-driver"], "rate")
        return Span(1 - kept.value, 1 - kept.hi, 1 - kept.lo)
    excess = drop(_at(df, large)) - drop(rows1).scaled(0.5)
    checks.add(f"relative drop at batch {large} - half the drop at batch {small}",
               at_most(excess, 0.0), excess, "< 0")


# --- Figure 8 -------------------------------------------------------------------------

@claim(8, "Every NVMe configuration runs at the device's maximum, as SPDK does",
       "batch 1 and 32, read and write: every configuration (and the SPDK analog) achieves "
       ">= 95% of the device's maximum IOPS, with a host rate above it", "Figure 8",
       ("nvme",), "notebooks/fig8_nvme.ipynb",
       lambda p: f"redleaf-driver {_paper_value(p, 'nvme.csv', system='RedLeaf', config='redleaf-driver', param_value=1) / 1e3:.0f}K"
                 f" vs SPDK {_paper_value(p, 'nvme.csv', system='SPDK', param_value=1) / 1e3:.0f}K"
                 " IOPS at batch 1")
def _claim8(results, paper, checks):
    df = results["nvme"]
    for (batch, direction), sel in df.groupby(["batch", "direction"]):
        rows = _rows(sel, "config")
        for config in (*CONFIG_ORDER, "SPDK"):
            where = f"batch {batch} {direction} {config}"
            if config not in rows:
                checks.add(f"{where}: measured in the same run", INCONCLUSIVE, None,
                           "an SPDK analog measured in the same run (none recorded)")
                continue
            _reaches_capacity(checks, where, rows[config], "device max")


# --- Figure 11 ------------------------------------------------------------------------

CRASHING, CALM = "one a second", "none"
RESTART_P99_US = 5000.0


def recovery_windows(df: pd.DataFrame) -> pd.DataFrame:
    """The recovery experiment's one-second windows (from its slices): MB/s, restarts,
    crashes under a request, driver calls, per (phase, crashes, round)."""
    w = (df.groupby(["phase", "crashes", "round"])
         .agg(bytes=("bytes", "sum"), seconds=("seconds", "sum"),
              restarts=("window_restarts", "first"), in_flight=("window_in_flight", "first"),
              driver_calls=("window_driver_calls", "first")).reset_index())
    w["mb_per_s"] = w.bytes / w.seconds / 1e6
    return w


def recovery_ratios(df: pd.DataFrame, estimator: str = "mean") -> dict:
    """Per phase: the throughput with a crash a second over the one without. ``max``: the
    best one-second window of each over the rounds (the rates are host-bound: the VM's
    preemptions only ever take rate away, as for the driver figures' host rates), a
    conservative ratio of their bootstrap 90% intervals. ``mean``: the mean over rounds of
    the ratio of the two windows of a round (they ran back to back; the paper compares
    averages), with its bootstrap 90% interval."""
    from .measure import summarize
    w = recovery_windows(df).set_index(["phase", "crashes", "round"]).mb_per_s
    out = {}
    for phase in ("read", "write"):
        if estimator == "mean":
            est = summarize((w[phase][CRASHING] / w[phase][CALM]).dropna().to_numpy(), "mean")
            out[phase] = Span(est.value, est.lo, est.hi)
            continue
        crash, calm = (summarize(w[phase][c].to_numpy(), "max") for c in (CRASHING, CALM))
        out[phase] = Span(crash.value, crash.lo, crash.hi) / Span(calm.value, calm.lo, calm.hi)
    return out


@claim(9, "A crashed driver is recovered transparently",
       "under a block driver crash every second: no error reaches the program, every crash "
       "is recovered, the file holds exactly what was written and fsck is clean; restart "
       "time p99 <= 5 ms", "Figure 11", ("recovery",), "notebooks/fig11_recovery.ipynb",
       lambda p: "the shadow restarts the crashed membdev and the rv6 program keeps going "
                 "(restart time not reported)")
def _claim9(results, paper, checks):
    df = results["recovery"]
    w = recovery_windows(df)
    crashing = w[w.crashes == CRASHING]
    restarts, in_flight = int(crashing.restarts.sum()), int(crashing.in_flight.sum())
    checks.add(f"every window with a crash restarted the driver ({restarts} restarts in "
               f"{len(crashing)} windows)",
               HOLDS if len(crashing) and (crashing.restarts >= 1).all() else FAILS)
    hit = Span(*(in_flight / max(restarts, 1),) * 3)
    checks.add("share of crashes that struck a request in flight", at_least(hit, 0.95), hit,
               ">= 0.95")
    checks.add("the file holds exactly what was written", HOLDS if df.content_ok.all() else FAILS)
    checks.add("fsck clean", HOLDS if df.fsck_ok.all() else FAILS)
    times = df.restart_us.dropna().to_numpy(float)
    p99 = float(np.percentile(times, 99)) if len(times) else math.inf
    checks.add("restart time p99 (us)", at_most(Span(p99, p99, p99), RESTART_P99_US),
               Span(p99, p99, p99), f"<= {RESTART_P99_US:.0f}")


@claim(10, "A crash a second costs little throughput",
       "throughput with a crash every second / without (the mean over rounds of the ratio of "
       "a round's two back-to-back one-second windows, bootstrap 90%): read >= 0.95 (drop "
       "<= 5%) and write >= 0.84 (drop <= 16%)", "Figure 11", ("recovery",),
       "notebooks/fig11_recovery.ipynb",
       lambda p: (f"reads {_paper_value(p, 'recovery.csv', config='with restarts (crash every 1s)', metric='sequential read throughput (average)'):.0f}"
                  f" vs {_paper_value(p, 'recovery.csv', config='no restarts', metric='sequential read throughput (average)'):.0f} MB/s; writes "
                  f"{_paper_value(p, 'recovery.csv', config='with restarts (crash every 1s)', metric='sequential write throughput (average)'):.0f}"
                  f" vs {_paper_value(p, 'recovery.csv', config='no restarts', metric='sequential write throughput (average)'):.0f} MB/s"))
def _claim10(results, paper, checks):
    ratios = recovery_ratios(results["recovery"])
    for phase, least in (("read", 0.95), ("write", 0.84)):
        checks.add(f"{phase}: with crashes / without", at_least(ratios[phase], least),
                   ratios[phase], f">= {least}")


# --- the fault campaign (beyond the paper) --------------------------------------------

CAMPAIGN_FORBIDDEN = ("heap broken", "outside changed", "process crashed", "silently dropped")


@claim(11, "Isolation holds under injected faults",
       "a fault campaign (panic, corrupt state, hang, wrong device value in membdev, rv6, "
       "NVMe and ixgbe): zero forbidden outcomes (heap broken, anything outside the faulty "
       "stack changed, a request silently dropped, the process crashed), no acknowledged "
       "write lost and fsck clean after every fail-stop fault; each fault kind >= 15% of "
       "the injections and >= 50% activated (else the campaign proves nothing: inconclusive)",
       "beyond the paper", ("fault_campaign",), "notebooks/fault_campaign.ipynb",
       lambda p: "not measured in the paper (MINIX 3: 3.4 million faults in its drivers, "
                 "no isolation failure)")
def _claim11(results, paper, checks):
    df = results["fault_campaign"]
    n = len(df)
    for kind, g in df.groupby("kind"):
        share, act = Span(*(len(g) / n,) * 3), Span(*(g.activated.mean(),) * 3)
        checks.add(f"{kind}: share of injections", HOLDS if share.value >= 0.15
                   else INCONCLUSIVE, share, ">= 0.15")
        checks.add(f"{kind}: activated", HOLDS if act.value >= 0.5 else INCONCLUSIVE, act,
                   ">= 0.5")
    for what in CAMPAIGN_FORBIDDEN:
        count = int(df[what].sum())
        checks.add(f"{what} ({count} in {n} faults)", HOLDS if count == 0 else FAILS,
                   Span(count, count, count), "0")
    stop = df[df.kind.isin(("panic", "hang"))]
    for what in ("lost acked writes", "fsck failed"):
        count = int(stop[what].sum())
        checks.add(f"fail-stop faults: {what}", HOLDS if count == 0 else FAILS,
                   Span(count, count, count), "0")


# --- the applications: Maglev (Figure 9) and the key-value store (Figure 10) ------------

def _maglev(p: dict, system: str, config: str) -> float:
    return _paper_value(p, "maglev.csv", figure="fig9", system=system, config=config)


@claim(12, "Maglev in safe code runs within about 25% of C",
       "Maglev's host rate in redleaf-driver >= 0.75x its C side's (same algorithm, tables "
       "and NIC rings, no isolation), both measured in the same rounds", "Figure 9",
       ("maglev",), "notebooks/fig9_maglev.ipynb",
       lambda p: f"redleaf-driver {_maglev(p, 'RedLeaf', 'redleaf-driver'):g} Mpps vs C on "
                 f"DPDK {_maglev(p, 'C DPDK', 'batch 32'):g} Mpps (74%)")
def _claim12(results, paper, checks):
    rows = _rows(results["maglev"], "config")
    ratio = Span.of(rows["redleaf-driver"], "host_rate") / Span.of(rows["C"], "host_rate")
    checks.add("redleaf-driver / C (host rates)", at_least(ratio, 0.75), ratio, ">= 0.75")


@claim(13, "Maglev's configurations keep the paper's order",
       "host rates: redleaf-driver >= rv6-domain >= rv6-shadow, each at least 0.97x the next "
       "beyond the spread (the paper: 7.2 > 5.3 > 5.1 Mpps)", "Figure 9", ("maglev",),
       "notebooks/fig9_maglev.ipynb",
       lambda p: " > ".join(f"{c} {_maglev(p, 'RedLeaf', c):g}"
                            for c in ("redleaf-driver", "rv6-domain", "rv6-shadow")) + " Mpps")
def _claim13(results, paper, checks):
    rows = _rows(results["maglev"], "config")
    _ordered(checks, "Maglev", rows, "host_rate",
             (("redleaf-driver", "rv6-domain"), ("rv6-domain", "rv6-shadow")), 0.97)


@claim(14, "The key-value store in safe code reaches 61-86% of C",
       "at every table size and key/value size, the safe store's host rate (redleaf-driver) "
       ">= 0.61x its C side's, both in the same rounds (the paper: 61-86%)", "Figure 10",
       ("kvstore",), "notebooks/fig10_kvstore.ipynb",
       lambda p: "61-86% of C on DPDK (85-94% with an unsafe typecast, not allowed in domains)")
def _claim14(results, paper, checks):
    df = results["kvstore"]
    for (entries, kv), g in df.groupby(["entries", "kv"]):
        rows = _rows(g, "config")
        ratio = Span.of(rows["redleaf-driver"], "host_rate") / Span.of(rows["C"], "host_rate")
        checks.add(f"{int(entries) >> 20}M {kv}: safe / C", at_least(ratio, 0.61), ratio,
                   ">= 0.61")


def _httpd(paper: dict, config: str) -> float:
    return _paper_value(paper, "httpd.csv", config=config)


NGINX_HERE = "nginx (Linux, measured here)"


@claim(15, "httpd on RedLeaf's network stack serves about 3x what nginx on Linux does",
       "our httpd in redleaf-driver >= 3.0x nginx measured in the same run (one core each; "
       "requests/s, best rounds with their spread)", "Figure 9", ("httpd",),
       "notebooks/httpd_and_real_clients.ipynb",
       lambda p: f"redleaf-driver {_httpd(p, 'redleaf-driver') / 1e3:g}K vs nginx "
                 f"{_httpd(p, 'wrk 1 thread 20 connections') / 1e3:g}K requests/s (2.99x)")
def _claim15(results, paper, checks):
    rows = _rows(results["httpd"], "config")
    ratio = Span.of(rows["redleaf-driver"], "rate") / Span.of(rows[NGINX_HERE], "rate")
    checks.add("redleaf-driver / nginx (requests/s)", at_least(ratio, 3.0), ratio, ">= 3.0")


@claim(16, "httpd's configurations keep the paper's order",
       "requests/s: redleaf-driver >= rv6-domain >= rv6-shadow, each at least 0.97x the next "
       "beyond the spread (the paper: 212K > 181.4K > 178.9K)", "Figure 9", ("httpd",),
       "notebooks/httpd_and_real_clients.ipynb",
       lambda p: " > ".join(f"{c} {_httpd(p, c) / 1e3:g}K"
                            for c in ("redleaf-driver", "rv6-domain", "rv6-shadow")))
def _claim16(results, paper, checks):
    rows = _rows(results["httpd"], "config")
    _ordered(checks, "httpd", rows, "rate",
             (("redleaf-driver", "rv6-domain"), ("rv6-domain", "rv6-shadow")), 0.97)


# --- judging, recording, showing -----------------------------------------------------

def load_results(root: Path) -> dict[str, pd.DataFrame]:
    """Every experiment's recorded table under ``root`` (data/results), by name."""
    out = {}
    for csv in sorted(Path(root).glob("*/*.csv")):
        if csv.stem == csv.parent.name:
            out[csv.stem] = pd.read_csv(csv)
    return out


def load_paper(root: Path) -> dict[str, pd.DataFrame]:
    """The paper's numbers (data/paper), by file name."""
    return {csv.name: pd.read_csv(csv) for csv in sorted(Path(root).glob("*.csv"))}


def judge_all(results: dict, paper: dict) -> list[Verdict]:
    return [c.verdict(results, paper) for c in CLAIMS]


def of_experiment(name: str, ours: pd.DataFrame, paper_root: Path | None = None) -> pd.DataFrame:
    """The verdicts of the claims that judge experiment ``name`` alone, on the table
    ``ours`` (as a notebook has it after ``exp.run``): claim, verdict, title, reason,
    threshold, and the paper's numbers."""
    from .experiments import repo_root
    paper = load_paper(paper_root or repo_root() / "data" / "paper")
    mine = [c.verdict({name: ours}, paper) for c in CLAIMS if c.experiments == (name,)]
    return pd.DataFrame([{"claim": v.number, "verdict": v.verdict, "title": v.title,
                          "reason": v.reason, "threshold": v.threshold, "paper": v.paper}
                         for v in mine]).set_index("claim")


def table(verdicts: list[Verdict]) -> pd.DataFrame:
    """One row per claim: number, verdict, title, reason."""
    return pd.DataFrame([{"claim": v.number, "verdict": v.verdict, "title": v.title,
                          "reason": v.reason} for v in verdicts])


def write(verdicts: list[Verdict], path: Path, provenance: dict) -> Path:
    """``claims.json``: every verdict with its inputs, threshold and reason, and
    where it came from (``provenance``: code version, machine, results' dates)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"generated_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           **provenance, "claims": [asdict(v) for v in verdicts]}
    path.write_text(json.dumps(doc, indent=2, default=str))
    return path
