"""How an experiment measures on a noisy machine: interleaved rounds and robust estimators.

This VM swings by 2x from one minute to the next. Measuring all repeats of one
configuration and then all of the next lets a slow minute land on one of them
and invert an ordering. So every experiment here:

* **warms** every configuration first (compiles it, pages its buffers in, primes
  its rings) with one unrecorded call each, so that the order in which they are
  measured does not matter;
* measures in **rounds** (A B C D E, A B C D E, ...), so that a slow minute hits
  every configuration alike (:func:`interleave`);
* reduces the rounds with an **estimator that suits the quantity**
  (:func:`summarize`), and keeps its **spread**:

  - ``min`` for the cost of a fixed amount of work (cycles per call): preemption
    only ever adds time, so the fastest round is the closest to the code's cost;
    its spread is a bootstrap 90% interval of the minimum;
  - ``max`` for a rate our code alone sustains (the host rate, nullnet): the
    mirror image;
  - ``median`` for a rate achieved against a device, where the device, not
    the host, sets the pace: the typical round, with the interquartile range.

Each estimate records its rule in words (``rule``), which the experiments write
into their CSVs beside the value and its interval (``<col>_lo``, ``<col>_hi``).
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Callable, Hashable

import numpy as np

ESTIMATORS = ("min", "max", "mean", "median")
BOOTSTRAP_RESAMPLES = 2000
INTERVAL = 0.90          # the bootstrap interval's coverage


@contextlib.contextmanager
def pinned():
    """Run this thread on one CPU (the highest it may use, as the paper pins its
    benchmarks), then restore its CPU set; yields the CPU (None where pinning is not
    possible)."""
    try:
        before = os.sched_getaffinity(0)
        core = max(before)
        os.sched_setaffinity(0, {core})
    except (AttributeError, OSError):
        yield None
        return
    try:
        yield core
    finally:
        os.sched_setaffinity(0, before)


@dataclass(frozen=True)
class Estimate:
    """A value with its spread: ``lo <= value <= hi``, and the rule that made them."""

    value: float
    lo: float
    hi: float
    rule: str

    def scaled(self, factor: float) -> "Estimate":
        """The same estimate in another unit (``factor`` > 0: e.g. ns to cycles)."""
        return Estimate(self.value * factor, self.lo * factor, self.hi * factor, self.rule)

    def columns(self, name: str) -> dict:
        """``{name: value, name_lo: lo, name_hi: hi}``: how a CSV row carries it."""
        return {name: self.value, f"{name}_lo": self.lo, f"{name}_hi": self.hi}


def summarize(samples, estimator: str, seed: int = 0) -> Estimate:
    """Reduce the rounds ``samples`` with ``estimator`` (``min``, ``max``, ``mean`` or
    ``median``).

    The spread: for min, max and mean, the 5th and 95th percentiles of that estimator
    over bootstrap resamples of the rounds (seeded: the same rounds give the same
    interval); for the median, the interquartile range of the rounds."""
    x = np.asarray(samples, dtype=float)
    if x.ndim != 1 or len(x) == 0 or not np.isfinite(x).all():
        raise ValueError(f"summarize: need one or more finite samples, got {samples!r}")
    n = len(x)
    if estimator == "median":
        lo, hi = np.percentile(x, [25, 75])
        return Estimate(float(np.median(x)), float(lo), float(hi),
                        f"median of {n} rounds, interquartile range")
    if estimator not in ESTIMATORS:
        raise ValueError(f"summarize: unknown estimator {estimator!r} (known: "
                         f"{', '.join(ESTIMATORS)})")
    reduce = {"min": np.min, "max": np.max, "mean": np.mean}[estimator]
    resampled = np.random.default_rng(seed).choice(x, size=(BOOTSTRAP_RESAMPLES, n))
    tail = (1 - INTERVAL) / 2 * 100
    lo, hi = np.percentile(reduce(resampled, axis=1), [tail, 100 - tail])
    word = {"min": "minimum", "max": "maximum", "mean": "mean"}[estimator]
    return Estimate(float(reduce(x)), float(lo), float(hi),
                    f"{word} of {n} rounds, bootstrap {INTERVAL:.0%} interval")


def interleave(cases: dict[Hashable, Callable[[], object]], rounds: int, *,
               warm: Callable[[Hashable], object] | None = None, reverse: bool = False,
               desc: str = "rounds") -> dict[Hashable, list]:
    """Call every case once to warm it (or ``warm(case)`` if given), then ``rounds``
    times in turn; returns each case's results, oldest first.

    ``reverse`` measures the cases in the opposite order (a test that order does
    not matter uses it)."""
    from tqdm.auto import tqdm
    if rounds < 1:
        raise ValueError(f"interleave: rounds must be at least 1, got {rounds}")
    order = list(cases)[::-1] if reverse else list(cases)
    for case in order:
        if warm is not None:
            warm(case)
        else:
            cases[case]()
    out: dict[Hashable, list] = {case: [] for case in cases}
    with tqdm(total=rounds * len(order), desc=desc, unit="run", leave=False) as bar:
        for _ in range(rounds):
            for case in order:
                out[case].append(cases[case]())
                bar.update()
    return out
