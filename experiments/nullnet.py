"""Figure 7: nullnet — a network driver with no device, so only software counts.

nullnet takes each batch and hands it straight back; the packets/s it reaches
in each configuration is the cost of the benchmark loop, the RRefDeque moves
and the crossings alone. The per-call difference to ``redleaf-driver`` is
what the crossings add (one proxy; proxy + shadow; two proxies via rv6 ...).
"""
from __future__ import annotations

import pandas as pd

from experiments._drivers import paper_bars, plot_rates, run_net, sweep
from redleaf_nb.configs import CROSSINGS
from redleaf_nb.drivers.nullnet import NullNet
from redleaf_nb.experiments import Experiment, Param
from redleaf_nb.lowlevel.clock import tsc_hz


def run(params: dict) -> pd.DataFrame:
    """Host rates only (there is no device): the maximum over interleaved rounds."""
    hz = tsc_hz()

    def run_case(config, direction, batch, kind, seconds):
        return run_net(NullNet, config, True, batch, seconds, profile=None)

    df = sweep("nullnet", ("packets",), (params["small_batch"], params["large_batch"]),
               run_case, rounds=params["repeats"], seconds=params["seconds"],
               capacity=lambda d: float("inf"), unit="pkt", kinds=("host",),
               reverse=params["reverse"],
               extra=lambda got, best: {
                   "cycles_per_call": best.busy * hz / max(best.calls, 1),
                   "packets": best.done})
    df["crossings"] = df.config.map(CROSSINGS)
    base = df[df.config == "redleaf-driver"].set_index("batch").cycles_per_call
    df["crossing_cycles_per_call"] = df.cycles_per_call - df.batch.map(base)
    df["mpps"] = df.rate / 1e6
    return df


def plot(ours: pd.DataFrame, paper: pd.DataFrame):
    return plot_rates(ours, paper_bars(paper, "fig7", tuple(dict.fromkeys(ours.batch)),
                                       lambda metric: "packets", scale=1.0),
                      unit="Mpps", scale=1e6,
                      title="Figure 7: nullnet (no device): packets/s bound by software alone",
                      capacity_label="")


def targets(ours: pd.DataFrame) -> dict:
    large = ours[ours.batch == ours.batch.max()].set_index("config")
    small = ours[ours.batch == ours.batch.min()].set_index("config")
    out = {"large batch: redleaf-driver Mpps (target >= 50; paper 94)":
           round(large.rate["redleaf-driver"] / 1e6, 1)}
    for config in large.index.drop("redleaf-driver"):
        out[f"{config}: cycles added per call, small batch / large batch"] = (
            f"{small.crossing_cycles_per_call[config]:.0f} / "
            f"{large.crossing_cycles_per_call[config]:.0f}")
    return out


EXPERIMENT = Experiment(
    name="nullnet",
    figure="Figure 7",
    title="nullnet (software-only driver): packets/s in five configurations",
    paper_csv="ixgbe.csv",
    params=(
        Param("seconds", float, 0.03, 0.5, "time per run", low=0.001, high=60.0),
        Param("repeats", int, 9, 11, "interleaved rounds; the maximum rate is shown (a fixed "
              "software loop: preemption only takes rate away)", low=1, high=51),
        Param("reverse", bool, False, False, "run the bars in reverse order (to check that "
              "the order does not matter)"),
        Param("small_batch", int, 1, 1, "packets per call, small", low=1, high=64),
        Param("large_batch", int, 32, 32, "packets per call, large (RedLeaf: 32)", low=1, high=64),
    ),
    run=run,
    plot=plot,
    bound="Host cost only: there is no device, so every bar is bound by our software.",
    notes=("Each call moves two RRefDeques into the driver and back; the driver splices the "
           "batch from one to the other. crossing_cycles_per_call is what a configuration "
           "adds to redleaf-driver per call: the proxies' work (alive check, continuation, "
           "moving two deques in and back, the panic guard), once per crossing — so it is "
           "the same at batch 1 and 32, and batching divides it among more packets."),
    targets=targets,
)
