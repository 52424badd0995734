"""The kernel's log of what happened to its domains: a fault armed, a call unwound
out of a panicking domain, the crash (or a clean termination), what the reclaim freed,
a shadow's restart, its retry of the request, and its policy's refusal to restart again.

It answers "what did that crash do, and in what order" after the fact, and it is
what the notebooks' fault timelines draw. Only the rare paths write to it (a death
and what follows), never a call's fast path; it keeps the latest ``limit`` events.
"""
from __future__ import annotations

import time
from collections import deque

import pandas as pd

KINDS = ("armed", "unwind", "crash", "terminated", "reclaim", "restart", "retry", "refused")
COLUMNS = ["seq", "t_ns", "kind", "domain", "detail"]


class EventLog:
    """Events in order; ``seq`` numbers them from 0 so a reader can ask for those
    after a point (:meth:`since`) even once old ones were dropped."""

    def __init__(self, limit: int = 100_000):
        self._rows: deque[tuple] = deque(maxlen=limit)
        self.next_seq = 0

    def record(self, kind: str, domain: str, detail: str = "") -> None:
        if kind not in KINDS:
            raise ValueError(f"EventLog.record: kind {kind!r} is not one of {', '.join(KINDS)}")
        self._rows.append((self.next_seq, time.perf_counter_ns(), kind, domain, detail))
        self.next_seq += 1

    def since(self, seq: int = 0) -> pd.DataFrame:
        """The events numbered ``seq`` or later, oldest first."""
        return pd.DataFrame([r for r in self._rows if r[0] >= seq], columns=COLUMNS)

    def count(self, kind: str, since: int = 0) -> int:
        return sum(1 for r in self._rows if r[2] == kind and r[0] >= since)
