"""The fault injector: arm a fault in a RAM-disk driver (``membdev``) behind a shadow,
run a workload of block writes and read-backs through the shadow, and watch on one
timeline the fault, the unwind, the reclaim, the restart and the retry, the policy's
refusals and the workload's throughput.

In the Python tier a fault strikes at a method's entry (the proxy's fault point); in
the jitted tier it strikes at points inside the driver's compiled code: ``read`` after
the caller's buffer moved in, ``write``, and ``block``, where the driver tells the
device which block to write (a ``wrong_value`` there flips a bit of the block number:
a low bit sends the data to a neighbour block, which no isolation catches and the
read-backs show; a high one points past the disk, and the driver's bounds check panics).

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
import traitlets

from redleaf_nb.drivers.membdev import MemBDev, MemDisk
from redleaf_nb.interfaces.bdev import Block
from redleaf_nb.kernel.domain import Kernel
from redleaf_nb.kernel.faults import Fault
from redleaf_nb.kernel.proxy import RPC_OK, RpcError
from redleaf_nb.kernel.shadow import RestartPolicy

# a hit: the driver reaching the chosen point (a call of that method in the Python tier;
# with "any", every point it passes)
TRIGGERS = ("k-th hit", "every k-th hit", "probability per hit", "at time (ms)")
TIERS = ("python", "jitted")
# what a fault may do, and where, in each tier (kernel/faults.py; drivers/membdev.py)
KINDS = {"python": ("panic", "hang"), "jitted": ("panic", "hang", "corrupt", "wrong_value")}
POINTS = {"python": ("write", "read", "any"), "jitted": ("write", "read", "block", "any")}
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
    injected: int          # faults that struck (the kernel's fault table)
    seconds: float         # the workload's wall time

    @property
    def recoveries(self) -> int:
        """Restarts of the driver, as the kernel's event log recorded them."""
        return int((self.events.kind == "restart").sum())


def _fault(kind, point, trigger, k, probability, bit) -> Fault:
    how = dict(point=None if point == "any" else point, bit=bit)
    if trigger == "k-th hit":
        return Fault(kind, after=k - 1, times=1, **how)
    if trigger == "every k-th hit":
        return Fault(kind, after=k - 1, every=k, times=0, **how)
    if trigger == "probability per hit":
        return Fault(kind, probability=probability, times=0, **how)
    return Fault(kind, times=1, **how)       # at a time: armed then, fires at once


def _call(kernel, shadow, tier, op, n, block):
    """One call through the shadow in ``tier``: did it succeed, and the block to use next
    (a read hands the buffer back)."""
    if tier == "python":
        got = getattr(shadow, op)(n, block)        # the result, or an RpcError
        ok = not isinstance(got, RpcError)
        return ok, got if ok and op == "read" else block
    status, got = kernel.jit_call(shadow, op, n, block)
    ok = status == RPC_OK
    return ok, kernel.wrap(got, Block) if ok and op == "read" else block


def run_faults(kind="panic", point="write", trigger="every k-th hit", k=50,
               probability=0.01, at_ms=5.0, bit=0, tier="python", calls=400,
               max_restarts=5, period_s=1.0) -> FaultRun:
    """A fresh kernel with ``membdev`` behind a shadow (``RestartPolicy(max_restarts,
    period_s)``), a fault armed in the driver as the trigger says (``bit``: which bit a
    ``corrupt`` or ``wrong_value`` flips), and ``calls`` calls through the shadow in
    ``tier``: even calls write a block with a pattern, odd calls read it back."""
    for name, value, valid in (("tier", tier, TIERS), ("trigger", trigger, TRIGGERS),
                               ("kind", kind, KINDS.get(tier, ())),
                               ("point", point, POINTS.get(tier, ()))):
        if value not in valid:
            raise ValueError(f"run_faults: {name} {value!r} is not one of {', '.join(valid)}"
                             + (f" (in the {tier} tier)" if name in ("kind", "point") else ""))
    if k < 1 or calls < 1:
        raise ValueError(f"run_faults: k ({k}) and calls ({calls}) must be >= 1")
    kernel = Kernel(heap_bytes=8 << 20)
    kernel.create("membdev", MemBDev, device=kernel.add_device("memdisk", MemDisk(NBLOCKS)),
                  nblocks=NBLOCKS)
    shadow = kernel.create_shadow("membdev-shadow", "membdev",
                                  RestartPolicy(max_restarts=max_restarts, period=period_s))
    fault = _fault(kind, point, trigger, k, probability, bit)
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
        ok, block = _call(kernel, shadow, tier, "read" if i % 2 else "write", n, block)
        if not block.is_live:                 # it went down with the driver
            block = kernel.new(Block)
        wrong = bool(i % 2 and ok and (block.get() != pattern).any())
        rows.append({"call": i, "op": "read" if i % 2 else "write", "t_ms": (t0 - start) / 1e6,
                     "us": (time.perf_counter_ns() - t0) / 1e3, "ok": ok, "wrong_data": wrong})
    seconds = (time.perf_counter_ns() - start) / 1e9
    kernel.heap.check_invariants()
    events = kernel.events.since(first_event)
    events.insert(2, "t_ms", (events.t_ns - start) / 1e6)
    return FaultRun(pd.DataFrame(rows), events.drop(columns="t_ns"), shadow.domain.impl.stats,
                    kernel, kernel.fault_counts("membdev")["injected"], seconds)


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
            "tier": widgets.Dropdown(options=TIERS, description="tier"),
            "kind": widgets.Dropdown(options=KINDS["python"], description="fault"),
            "point": widgets.Dropdown(options=POINTS["python"], description="in membdev at"),
            "trigger": widgets.Dropdown(options=TRIGGERS, value="every k-th hit",
                                        description="when"),
            "k": widgets.IntSlider(50, 1, 500, description="k (hits)", continuous_update=False),
            "probability": widgets.FloatSlider(0.01, min=0.0, max=0.2, step=0.005,
                                               description="probability",
                                               continuous_update=False),
            "at_ms": widgets.FloatSlider(5.0, min=0.0, max=100.0, step=0.5,
                                         description="at time (ms)", continuous_update=False),
            "bit": widgets.IntSlider(0, 0, 62, description="bit (corrupt, wrong_value)",
                                     continuous_update=False),
            "calls": widgets.IntSlider(400, 20, 4000, step=20, description="workload calls",
                                       continuous_update=False),
            "max_restarts": widgets.IntSlider(5, 0, 50, description="policy: max restarts",
                                              continuous_update=False),
            "period_s": widgets.FloatSlider(1.0, min=0.1, max=5.0, step=0.1,
                                            description="per period (s)",
                                            continuous_update=False)}
        self.controls["tier"].observe(self._offer, names="value")
        for name in sorted(values, key=lambda n: n != "tier"):   # the tier decides the choices
            if name not in self.controls:
                raise TypeError(f"FaultLab: no control {name!r} (have: {', '.join(self.controls)})")
            try:
                self.controls[name].value = values[name]
            except traitlets.TraitError as e:
                raise ValueError(f"FaultLab: {name}={values[name]!r} is refused: {e}") from None
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

    def _offer(self, change) -> None:
        """The kinds and points the chosen tier has."""
        for name, choices in (("kind", KINDS), ("point", POINTS)):
            self.controls[name].options = choices[change["new"]]

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
        struck = (f"faults struck: {run.injected}" if run.injected else
                  "<b>the fault never struck</b> (the workload took "
                  f"{run.seconds * 1e3:.1f} ms: a later time, a point it never reached?)")
        self.recoveries.value = (
            f"run <span class='rl-run'>{self.runs}</span>: <b>recoveries</b> (driver "
            f"restarts in the kernel's log): "
            f"<span class='rl-recoveries'>{run.recoveries}</span> · calls ok {ok} of "
            f"{len(run.calls)} · wrong data read back: {wrong} · {struck} · heap invariants hold")
        fig = timeline(run)
        plt.close(fig)     # shown in the form's output only
        self.out.append_display_data(fig)
        self.out.append_display_data(run.events)
        return run
