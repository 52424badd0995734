"""The stability command on a fast subset, and measurement order not deciding verdicts."""
import json
import os

import pytest

from redleaf_nb import claims as C
from redleaf_nb import experiments as ex
from redleaf_nb.stability import claim_experiments, cpu_hog, stability, summarize_runs

FAST = {"comm_cost": dict(jit_calls=100_000, py_calls=2000, ipc_round_trips=2000, repeats=11),
        "nullnet": dict(seconds=0.02, repeats=5)}


def verdict(number, v):
    return C.Verdict(number, f"claim {number}", v, "", "", "", "", (), "",
                     {"ratio": {"verdict": v, "value": 1.0 + number, "lo": 1, "hi": 9}})


def test_the_summary_counts_verdicts_and_ranges():
    runs = [[verdict(1, C.HOLDS), verdict(2, C.HOLDS)],
            [verdict(1, C.HOLDS), verdict(2, C.INCONCLUSIVE)]]
    table = summarize_runs(runs).set_index("claim")
    assert table.loc[1, C.HOLDS] == 2 and table.loc[1, "stable"]
    assert table.loc[2, C.HOLDS] == 1 and table.loc[2, C.INCONCLUSIVE] == 1
    assert not table.loc[2, "stable"] and "ratio: 3..3" in table.loc[2, "ranges"]


def test_every_claimed_experiment_is_run():
    assert set(claim_experiments()) == {"comm_cost", "hashtable", "ixgbe", "nullnet", "nvme",
                                        "recovery", "fault_campaign", "maglev", "kvstore",
                                        "httpd"}


def test_stability_runs_and_records(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(ex, "run", lambda name, out, **kw: calls.append(name))
    stale = tmp_path / "plain" / "run0" / "nullnet"        # a former run's results
    stale.mkdir(parents=True)
    (stale / "nullnet.csv").write_text("config,batch,rate\n")
    table = stability(2, experiments=["comm_cost"], out=tmp_path / "plain")
    assert calls == ["comm_cost", "comm_cost"]
    assert list(table.claim) == [c.number for c in C.CLAIMS]
    assert (table[C.NOT_RUN] == 2).all()          # judged on this run's results only
    assert not stale.exists()
    doc = json.loads((tmp_path / "plain.json").read_text())
    assert doc["runs"] == 2 and not doc["hog"] and len(doc["verdicts"]) == 2


def test_stability_refuses_bad_arguments():
    with pytest.raises(ex.ParamError, match="runs must be at least 1"):
        stability(0)
    with pytest.raises(KeyError, match="no experiment nosuch"):
        stability(1, experiments=["nosuch"])


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_the_hog_is_pinned_time_limited_and_stopped():
    cpus = os.sched_getaffinity(0)
    with cpu_hog(30.0, 1, 0) as hog:
        assert os.sched_getaffinity(0) == {0}
        assert os.sched_getaffinity(hog.pid) == {1} and hog.poll() is None
    assert hog.poll() is not None and os.sched_getaffinity(0) == cpus


def _decisive(results):
    verdicts = C.judge_all(results, C.load_paper(ex.repo_root() / "data" / "paper"))
    return {v.number: v.verdict for v in verdicts if v.verdict in (C.HOLDS, C.FAILS)}


def test_reversing_the_measurement_order_flips_no_verdict(tmp_path):
    """Warm-up and interleaving make order irrelevant: the claims judged on Table 1 and
    nullnet measured forwards and backwards never go from holds to does not hold."""
    got = {}
    for reverse in (False, True):
        got[reverse] = {name: ex.run(name, out=tmp_path / f"{name}-{reverse}", reverse=reverse,
                                     **params) for name, params in FAST.items()}
    forward, backward = _decisive(got[False]), _decisive(got[True])
    flipped = {n for n in forward.keys() & backward.keys() if forward[n] != backward[n]}
    assert not flipped, (forward, backward)
    assert forward.keys() & backward.keys()     # not vacuous: some claim decides both ways
