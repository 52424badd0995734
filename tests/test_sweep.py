"""Sweeps on Dask: the same outcomes on any backend, failures reported, finished points
cached and an interrupted sweep resumed, timing points one at a time, a cold numba cache
filled by two workers at once without harm, and clear errors."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from redleaf_nb import cli
from redleaf_nb import experiments as ex
from redleaf_nb import sweep as sw

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGN = {"faults": [20, 40], "workers": [1]}     # a fault campaign point: about 0.5 s
TINY_HASHTABLE = {"min_log2+max_log2": [10, 11], "repeats": [1], "py_max_log2": [10]}
WHERE = ["worker", "core", "point_started", "point_seconds", "peak_rss_mb"]


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    """Sweep results go to the test's folder, never to data/results/."""
    monkeypatch.setattr(sw, "cache_dir", lambda name: tmp_path / "sweeps" / name / "points")


def outcomes(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """What must not depend on the backend: all but the measured and where-it-ran columns."""
    return table.drop(columns=list(ex.get(name).measured) + WHERE)


def test_a_points_seed_follows_from_the_root_seed_and_its_parameters_alone():
    exp = ex.get("fault_campaign")
    seeds = {(p.params["faults"], p.replicate): p.seed
             for p in sw.points(exp, {"faults": [20, 40]}, replicates=2)}
    again = {(p.params["faults"], p.replicate): p.seed
             for p in sw.points(exp, {"faults": [60, 40, 20]}, replicates=2)}
    assert all(again[k] == v for k, v in seeds.items())     # order and neighbours: no matter
    assert len(set(seeds.values())) == 4                    # each point its own
    other_root = sw.points(exp, {"faults": [20]}, root_seed=7)[0]
    assert other_root.seed != seeds[(20, 0)]
    assert all(p.params["seed"] == p.seed for p in sw.points(exp, {"faults": [20]}))
    fixed = sw.points(exp, {"faults": [20], "seed": [5]})[0]
    assert fixed.params["seed"] == 5                         # the grid's own seed stands


def test_a_bad_grid_is_refused_naming_what_is_valid():
    exp = ex.get("hashtable")
    with pytest.raises(sw.SweepError, match=r"no parameter size \(valid: min_log2, max_log2, "
                                            r"load, repeats, py_max_log2, c_opt\)"):
        sw.points(exp, {"size": [12]})
    with pytest.raises(sw.SweepError, match=r"parameter load=95 is out of range: must be"):
        sw.points(exp, {"load": [50, 95]})
    with pytest.raises(sw.SweepError, match="is not KEY=V1,V2"):
        sw.parse_grid(["load"])
    both = sw.points(exp, sw.parse_grid(["min_log2+max_log2=12..14"]))
    assert [(p.params["min_log2"], p.params["max_log2"]) for p in both] == [
        (12, 12), (13, 13), (14, 14)]


def test_a_local_cluster_gives_the_serial_outcomes_and_records_where_each_point_ran():
    serial = sw.sweep("fault_campaign", CAMPAIGN, backend="serial", replicates=2,
                      progress=False, cache=False)
    local = sw.sweep("fault_campaign", CAMPAIGN, backend="local", workers=2, replicates=2,
                     progress=False, cache=False)
    assert local.attrs["computed"] == 4 and not local.attrs["failures"]
    pd.testing.assert_frame_equal(outcomes(serial, "fault_campaign"),
                                  outcomes(local, "fault_campaign"))
    assert local.worker.str.startswith("tcp://").all() and local.worker.nunique() >= 1
    assert serial.worker.str.startswith("serial").all()
    assert set(local.core) <= set(os.sched_getaffinity(0))
    assert (local.faults == local.groupby(["faults", "replicate"]).index.transform("size")).all()


def test_a_point_that_raises_is_reported_and_the_others_complete():
    # min_log2 > max_log2 passes each parameter's range but the experiment refuses it
    grid = {"min_log2": [10, 12], "max_log2": [11], "repeats": [1], "py_max_log2": [10]}
    table = sw.sweep("hashtable", grid, backend="local", workers=2, progress=False)
    (failure,) = table.attrs["failures"]
    assert failure["min_log2"] == 12 and failure["max_log2"] == 11
    assert failure["error"] == "ParamError: hashtable: min_log2=12 is larger than max_log2=11"
    assert "Traceback" in failure["traceback"]
    assert table.attrs["computed"] == 1 and set(table.min_log2) == {10}


def test_the_cache_skips_finished_points_and_a_changed_parameter_reruns_only_its_own():
    first = sw.sweep("fault_campaign", CAMPAIGN, progress=False)
    assert (first.attrs["computed"], first.attrs["cached"]) == (2, 0)
    again = sw.sweep("fault_campaign", CAMPAIGN, progress=False)
    assert (again.attrs["computed"], again.attrs["cached"]) == (0, 2)
    pd.testing.assert_frame_equal(first, again)               # the cached ones, as they were
    changed = sw.sweep("fault_campaign", {"faults": [20, 60], "workers": [1]}, progress=False)
    assert (changed.attrs["computed"], changed.attrs["cached"]) == (1, 1)


def test_a_sweep_killed_midway_resumes_where_it_stopped(tmp_path):
    store = tmp_path / "sweeps" / "fault_campaign" / "points"
    script = (f"import redleaf_nb.sweep as sw\n"
              f"from pathlib import Path\n"
              f"sw.cache_dir = lambda name: Path({str(store)!r})\n"
              f"sw.sweep('fault_campaign', {{'faults': [20], 'workers': [1]}}, replicates=8,"
              f" backend='serial', progress=False)\n")
    # a session of its own: the kill takes the campaign's forked trial process down too
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + 300
    while len(list(store.glob("*.csv"))) < 2 and time.monotonic() < deadline:
        assert proc.poll() is None, "the sweep ended before it could be killed"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(list(store.glob("*.csv")))
    assert 2 <= finished < 8 and not list(store.glob(".*.tmp"))
    resumed = sw.sweep("fault_campaign", {"faults": [20], "workers": [1]}, replicates=8,
                       backend="serial", progress=False)
    assert (resumed.attrs["cached"], resumed.attrs["computed"]) == (finished, 8 - finished)
    assert sorted(resumed.replicate.unique()) == list(range(8))


def test_timing_sensitive_points_run_one_at_a_time_each_on_one_core():
    grid = {"min_log2+max_log2": [14, 15], "repeats": [3], "py_max_log2": [10],
            "load": [25, 50, 75]}        # six points of about a second
    table = sw.sweep("hashtable", grid, backend="local", workers=2, progress=False)
    runs = table.groupby(["min_log2", "load"])[["point_started", "point_seconds", "core"]].first()
    runs = runs.sort_values("point_started")
    ends = runs.point_started + runs.point_seconds
    assert (runs.point_started.iloc[1:].values >= ends.iloc[:-1].values).all(), runs
    assert set(runs.core) == {max(os.sched_getaffinity(0))}


def test_two_workers_fill_a_cold_numba_cache_at_once_without_harm(tmp_path, monkeypatch):
    monkeypatch.setenv("REDLEAF_NB_CACHE", str(tmp_path / "cold"))   # the workers inherit it
    table = sw.sweep("hashtable", TINY_HASHTABLE, backend="local", workers=2, progress=False,
                     exclusive=False, warm=False, cache=False)
    assert table.attrs["computed"] == 2 and table.worker.nunique() == 2   # both compiled
    probe = ("from redleaf_nb import experiments as ex\n"
             "from experiments.hashtable import kernels\n"
             "e = ex.get('hashtable')\n"
             "e.run(e.resolve(min_log2=10, max_log2=10, repeats=1, py_max_log2=10))\n"
             "d = [f for f in vars(kernels).values() if hasattr(f, 'stats') and f.signatures]\n"
             "print(sum(sum(f.stats.cache_hits.values()) for f in d),"
             " sum(sum(f.stats.cache_misses.values()) for f in d))\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                         text=True, env={**os.environ, "REDLEAF_NB_CACHE": str(tmp_path / "cold")})
    hits, misses = (int(v) for v in out.stdout.split()[-2:])
    assert hits > 0 and misses == 0, out.stdout + out.stderr     # loaded, none recompiled


def test_an_unreachable_scheduler_is_a_clear_error_within_5_seconds():
    start = time.monotonic()
    with pytest.raises(sw.SweepError, match=r"no Dask scheduler answered at "
                                            r"'tcp://127.0.0.1:9' within 3 s"):
        sw.sweep("fault_campaign", CAMPAIGN, backend="tcp://127.0.0.1:9", progress=False)
    assert time.monotonic() - start < 5


def test_the_command_line_sweeps_and_names_a_bad_grid(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(sw, "save", lambda table, name: tmp_path / "sweep.csv")
    assert cli.main(["sweep", "fault_campaign", "--grid", "faults=20", "--grid",
                     "workers=1"]) == 0
    assert "sweep fault_campaign on serial: 1 points, 1 run, 0 from the cache" in \
        capsys.readouterr().out
    assert cli.main(["sweep", "fault_campaign", "--grid", "fault=20"]) == 2
    assert "no parameter fault (valid: faults, workers, seed)" in capsys.readouterr().err
