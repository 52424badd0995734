"""The fault injector: arm a fault in a RAM-disk driver (``membdev``) behind a shadow,
run a workload of block writes and read-backs through the shadow, and watch on one
timeline the fault, the unwind, the reclaim, the restart and the retry, the policy's
refusals and the workload's throughput.

The timeline's events are the kernel's own (:class:`~redleaf_nb.kernel.events.EventLog`),
not the widget's guesses; the workload only adds what a client sees (each call's
latency, whether it failed, whether the data read back was what it wrote).
:func:`run_faults` is the plain function; :class:`FaultLab` is the form that calls it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from redleaf_nb.drivers.membdev import MemBDev, MemDisk
from redleaf_nb.interfaces.bdev import Block
from redleaf_nb.kernel.domain import Kernel
from redleaf_nb.kernel.faults import Fault
from redleaf_nb.kernel.proxy import RpcError
from redleaf_nb.kernel.shadow import RestartPolicy

TRIGGERS = ("k-th call", "every k-th call", "probability per call", "at time (ms)")
KINDS = ("panic", "hang")   # what a fault does in the Python tier (kernel/faults.py)
POINTS = ("write", "read", "any")          # where: a method's entry, or any point
EVENT_STYLE = {"armed": ("#8172b2", "v"), "unwind": ("#dd8452", "<"), "crash": ("#c44e52", "X"),
               "reclaim": ("#937860", "s"), "restart": ("#55a868", "o"),
               "retry": ("#4c72b0", ">"), "refused": ("k", "x")}
NBLOCKS = 64


@dataclass
class FaultRun:
    """What one run saw: the workload's calls, the kernel's events during it (times in
    ms from the workload's start), and the shadow's own counters."""
    calls: pd.DataFrame
    events: pd.DataFrame
    shadow_stats: object
    kernel: Kernel

    @property
    def recoveries(self) -> int:
        """Restarts of the driver, as the kernel's event log recorded them."""
        return int((self.events.kind == "restart").sum())


def _fault(kind, point, trigger, k, probability) -> Fault:
    where = None if point == "any" else point
    if trigger == "k-th call":
        return Fault(kind, point=where, after=k - 1, times=1)
    if trigger == "every k-th call":
        return Fault(kind, point=where, after=k - 1, every=k, times=0)
    if trigger == "probability per call":
        return Fault(kind, point=where, probability=probability, times=0)
    return Fault(kind, point=where, times=1)       # at a time: armed then, fires at once


def run_faults(kind="panic", point="write", trigger="every k-th call", k=50,
               probability=0.01, at_ms=5.0, calls=400, max_restarts=5,
               period_s=1.0) -> FaultRun:
    """A fresh kernel with ``membdev`` behind a shadow (``RestartPolicy(max_restarts,
    period_s)``), a fault armed in the driver as the trigger says, and ``calls`` calls
    through the shadow: even calls write block i with a pattern, odd calls read it back."""
    if trigger not in TRIGGERS:
        raise ValueError(f"run_faults: trigger {trigger!r} is not one of {', '.join(TRIGGERS)}")
    if point not in POINTS:
        raise ValueError(f"run_faults: point {point!r} is not one of {', '.join(POINTS)}")
    if k < 1 or calls < 1:
        raise ValueError(f"run_faults: k ({k}) and calls ({calls}) must be >= 1")
    kernel = Kernel(heap_bytes=8 << 20)
    kernel.create("membdev", MemBDev, device=kernel.add_device("memdisk", MemDisk(NBLOCKS)),
                  nblocks=NBLOCKS)
    shadow = kernel.create_shadow("membdev-shadow", "membdev",
                                  RestartPolicy(max_restarts=max_restarts, period=period_s))
    fault = _fault(kind, point, trigger, k, probability)
    first_event = kernel.events.next_seq
    armed = trigger != "at time (ms)"
    if armed:
        kernel.inject("membdev", fault)
    block, rows = kernel.new(Block), []
    start = time.perf_counter_ns()
    for i in range(calls):
        t0 = time.perf_counter_ns()
        if not armed and (t0 - start) / 1e6 >= at_ms:
            kernel.inject("membdev", fault)
            armed = True
        n, pattern = (i // 2) % NBLOCKS, (i // 2) % 251
        if i % 2 == 0:
            block.set(np.full(len(block.get()), pattern, np.uint8))
            got = shadow.write(n, block)      # borrowed: None, or an RpcError
        else:
            got = shadow.read(n, block)       # moved in and back, or an RpcError
        ok = not isinstance(got, RpcError)
        if i % 2 and ok:
            block = got
        if not block.is_live:                 # it went down with the driver
            block = kernel.new(Block)
        wrong = bool(i % 2 and ok and (block.get() != pattern).any())
        rows.append({"call": i, "op": "read" if i % 2 else "write", "t_ms": (t0 - start) / 1e6,
                     "us": (time.perf_counter_ns() - t0) / 1e3, "ok": ok, "wrong_data": wrong})
    kernel.heap.check_invariants()
    events = kernel.events.since(first_event)
    events.insert(2, "t_ms", (events.t_ns - start) / 1e6)
    return FaultRun(pd.DataFrame(rows), events.drop(columns="t_ns"),
                    shadow.domain.impl.stats, kernel)


def timeline(run: FaultRun, title: str = ""):
    """Throughput (calls per ms, in bins) and failed calls above; the kernel's events
    below, one row per kind, on the same time axis."""
    calls, events = run.calls, run.events
    fig, (top, strip) = plt.subplots(2, 1, figsize=(9, 4.6), sharex=True,
                                     gridspec_kw={"height_ratios": [2, 1.4]})
    end = max(calls.t_ms.max() + calls.us.iloc[-1] / 1e3, 1e-3)
    edges = np.linspace(0, end, 41)
    counts, _ = np.histogram(calls.t_ms[calls.ok], edges)
    top.stairs(counts / np.diff(edges), edges, label="calls completed per ms")
    failed = calls[~calls.ok]
    top.scatter(failed.t_ms, np.zeros(len(failed)), c="k", marker="x", s=25, zorder=3,
                label=f"failed calls ({len(failed)})")
    top.set_ylabel("throughput (calls/ms)")
    top.legend(fontsize=8, loc="upper right")
    top.set_title(title or f"{run.recoveries} recoveries; {len(failed)} failed calls", fontsize=10)
    kinds = list(EVENT_STYLE)
    for row, kind in enumerate(kinds):
        t = events.t_ms[events.kind == kind]
        colour, marker = EVENT_STYLE[kind]
        strip.scatter(t, np.full(len(t), row), c=colour, marker=marker, s=30)
    strip.set_yticks(range(len(kinds)), [f"{k} ({(events.kind == k).sum()})" for k in kinds],
                     fontsize=8)
    strip.set_ylim(len(kinds) - 0.5, -0.5)
    strip.set_xlabel("time since the workload started (ms)")
    strip.set_title("the kernel's event log", fontsize=9)
    fig.tight_layout()
    return fig


class FaultLab:
    """The form: what fault, where, when, and the shadow's policy; Run shows the
    timeline, the recovery count (:attr:`recoveries`, an HTML widget) and the events.
    :attr:`last` is the last :class:`FaultRun` (its kernel, its shadow's stats)."""

    def __init__(self, **values):
        style = {"description_width": "initial"}
        self.controls = {
            "kind": widgets.Dropdown(options=KINDS, description="fault"),
            "point": widgets.Dropdown(options=POINTS, description="in membdev at"),
            "trigger": widgets.Dropdown(options=TRIGGERS, value="every k-th call",
                                        description="when"),
            "k": widgets.IntSlider(50, 1, 500, description="k (calls)", continuous_update=False),
            "probability": widgets.FloatSlider(0.01, min=0.0, max=0.2, step=0.005,
                                               description="probability",
                                               continuous_update=False),
            "at_ms": widgets.FloatSlider(5.0, min=0.0, max=100.0, step=0.5,
                                         description="at time (ms)", continuous_update=False),
            "calls": widgets.IntSlider(400, 20, 4000, step=20, description="workload calls",
                                       continuous_update=False),
            "max_restarts": widgets.IntSlider(5, 0, 50, description="policy: max restarts",
                                              continuous_update=False),
            "period_s": widgets.FloatSlider(1.0, min=0.1, max=5.0, step=0.1,
                                            description="per period (s)",
                                            continuous_update=False)}
        for name, value in values.items():
            if name not in self.controls:
                raise TypeError(f"FaultLab: no control {name!r} (have: {', '.join(self.controls)})")
            self.controls[name].value = value
        for c in self.controls.values():
            c.style = style
        self.button = widgets.Button(description="Inject and run", button_style="danger")
        self.button.on_click(self.run)
        self.recoveries = widgets.HTML()
        self.out = widgets.Output()
        self.last: FaultRun | None = None
        self.runs = 0
        grid = widgets.GridBox(list(self.controls.values()),
                               layout=widgets.Layout(grid_template_columns="repeat(3, 1fr)"))
        self.widget = widgets.VBox([grid, self.button, self.recoveries, self.out])

    def run(self, _=None) -> FaultRun | None:
        """Run with the form's values; the run (None if a value was refused: the
        reason is shown)."""
        self.out.outputs = ()
        self.button.disabled = True
        try:
            run = run_faults(**{name: c.value for name, c in self.controls.items()})
        except ValueError as e:
            self.out.append_stdout(f"{e}\n")
            return None
        finally:
            self.button.disabled = False
        self.last, self.runs = run, self.runs + 1
        ok, wrong = int(run.calls.ok.sum()), int(run.calls.wrong_data.sum())
        self.recoveries.value = (
            f"run <span class='rl-run'>{self.runs}</span>: <b>recoveries</b> (driver "
            f"restarts in the kernel's log): "
            f"<span class='rl-recoveries'>{run.recoveries}</span> · calls ok {ok} of "
            f"{len(run.calls)} · wrong data read back: {wrong} · heap invariants hold")
        fig = timeline(run)
        plt.close(fig)     # shown in the form's output only
        self.out.append_display_data(fig)
        self.out.append_display_data(run.events)
        return run
