"""The claims registry on synthetic results: every claim reaches every verdict, and
the interval rules decide as documented (redleaf_nb/claims.py)."""
import json

import numpy as np
import pandas as pd
import pytest

from redleaf_nb import claims as C
from redleaf_nb.experiments import repo_root

PAPER = C.load_paper(repo_root() / "data" / "paper")
SPREAD = 0.01          # a tight spread: +-1% around each value


def span_cols(col, value, spread=SPREAD):
    return {col: value, f"{col}_lo": value * (1 - spread), f"{col}_hi": value * (1 + spread)}


def comm_cost(null=10.0, rref=20.0, shadow=20.0, spin=300.0, pipe=5000.0, spread=SPREAD):
    rows = {C.NULL: null, C.RREF: rref, C.SHADOW_NULL: shadow, C.SPIN: spin, C.PIPE: pipe}
    return pd.DataFrame([{"row": r, **span_cols("cycles", v, spread)} for r, v in rows.items()])


def hashtable(idiom=1.25, cstyle=1.0, spread=SPREAD, sizes=(12, 14, 16)):
    rows = []
    for size in sizes:
        for op in ("get", "set"):
            for impl, f in (("C", 1.0), ("jit C-style", cstyle), ("jit idiomatic", idiom)):
                rows.append({"implementation": impl, "size_log2": size, "op": op,
                             **span_cols("cycles_per_op", 40.0 * f, spread)})
    return pd.DataFrame(rows)


def rates(experiment, host, achieved=None, capacity=14.88e6, batches=(1, 32),
          directions=("RX", "TX"), spread=SPREAD, extra=None):
    """``host``: batch -> {config: host rate}; achieved defaults to min(host, capacity)."""
    rows = []
    for batch in batches:
        for direction in directions:
            for config, h in {**host[batch], **(extra or {})}.items():
                got = (achieved or {}).get(batch, {}).get(config, min(h, capacity))
                rows.append({"config": config, "direction": direction, "batch": batch,
                             "capacity": capacity, **span_cols("rate", got, spread),
                             **span_cols("host_rate", h, spread)})
    return pd.DataFrame(rows)


def ordered(top, step=0.8, tie=1.0):
    """Host rates falling by ``step`` per crossing; shadow/rv6-domain in ratio ``tie``."""
    d = {"redleaf-driver": top, "redleaf-domain": top * step}
    d["redleaf-shadow"] = d["redleaf-domain"] * step
    d["rv6-domain"] = d["redleaf-shadow"] / tie
    d["rv6-shadow"] = d["rv6-domain"] * step
    return d


def recovery(plain=(5000, 5100, 4900), crash=(4990, 5080, 4890), wplain=(3000,) * 3,
             wcrash=(2990,) * 3, restart_us=250.0, content_ok=True, in_flight=1):
    """Slices of the recovery experiment: two slices per window, a crash in the first."""
    rows = []
    for phase, calm, crashing in (("read", plain, crash), ("write", wplain, wcrash)):
        for rnd, (a, b) in enumerate(zip(calm, crashing)):
            for crashes, rate in (("none", a), ("one a second", b)):
                hit = crashes != "none"
                for sl in range(2):
                    rows.append({"round": rnd, "phase": phase, "crashes": crashes, "slice": sl,
                                 "bytes": rate * 0.5e6, "seconds": 0.5,
                                 "restarts": int(hit and sl == 0),
                                 "restart_us": restart_us if hit and sl == 0 else np.nan,
                                 "window_restarts": int(hit), "window_in_flight": in_flight
                                 if hit else 0, "window_driver_calls": 1000,
                                 "content_ok": content_ok, "fsck_ok": True})
    return pd.DataFrame(rows)


def campaign(activated=1.0, dropped=0, kinds=("panic", "corrupt", "hang", "wrong_value")):
    rows = []
    for i in range(400):
        kind = kinds[i % len(kinds)]
        rows.append({"kind": kind, "activated": int((i // len(kinds)) % 100 < activated * 100),
                     "heap broken": 0, "outside changed": 0, "process crashed": 0,
                     "silently dropped": dropped if i == 0 else 0, "lost acked writes": 0,
                     "fsck failed": 0})
    return pd.DataFrame(rows)


def maglev(driver=7e6, rv6=(6.9e6, 6.8e6), c=9e6, spread=SPREAD):
    host = {"redleaf-driver": driver, "rv6-domain": rv6[0], "rv6-shadow": rv6[1], "C": c}
    return pd.DataFrame([{"config": k, **span_cols("host_rate", v, spread)}
                         for k, v in host.items()])


def kvstore(ratio=0.7, spread=SPREAD):
    rows = []
    for entries in (1 << 20, 1 << 24):
        for kv in ("<8B,8B>", "<16B,64B>"):
            for config, v in (("redleaf-driver", ratio * 1e6), ("C", 1e6)):
                rows.append({"config": config, "entries": entries, "kv": kv,
                             **span_cols("host_rate", v, spread)})
    return pd.DataFrame(rows)


def httpd(driver=1e6, rv6=(0.9e6, 0.85e6), nginx=80e3, spread=SPREAD):
    rate = {"redleaf-driver": driver, "rv6-domain": rv6[0], "rv6-shadow": rv6[1],
            C.NGINX_HERE: nginx}
    return pd.DataFrame([{"config": k, **span_cols("rate", v, spread)} for k, v in rate.items()])


def verdict(number, **results):
    claim = next(c for c in C.CLAIMS if c.number == number)
    return claim.verdict(results, PAPER)


# --- each claim reaches holds, does not hold and inconclusive -----------------------

CASES = [
    (1, dict(comm_cost=comm_cost(null=10, spin=100)), C.HOLDS),
    (1, dict(comm_cost=comm_cost(null=10, spin=20)), C.FAILS),
    (1, dict(comm_cost=comm_cost(null=10, spin=30, spread=0.1)), C.INCONCLUSIVE),
    (2, dict(comm_cost=comm_cost(null=10, rref=30)), C.HOLDS),
    (2, dict(comm_cost=comm_cost(null=10, rref=60)), C.FAILS),
    (2, dict(comm_cost=comm_cost(null=100, rref=134, spread=0.02)), C.INCONCLUSIVE),
    (3, dict(comm_cost=comm_cost(null=10, shadow=20)), C.HOLDS),
    (3, dict(comm_cost=comm_cost(null=10, shadow=12)), C.FAILS),
    (3, dict(comm_cost=comm_cost(null=10, shadow=30, spread=0.05)), C.INCONCLUSIVE),
    (4, dict(hashtable=hashtable(idiom=1.25, cstyle=0.95)), C.HOLDS),
    (4, dict(hashtable=hashtable(idiom=2.0, cstyle=0.95)), C.FAILS),
    (4, dict(hashtable=hashtable(idiom=1.25, cstyle=1.05, spread=0.03)), C.INCONCLUSIVE),
    (5, dict(ixgbe=rates("ixgbe", {1: ordered(10e6), 32: ordered(20e6)},
                         extra={"DPDK": 10e6})), C.HOLDS),
    (5, dict(ixgbe=rates("ixgbe", {1: ordered(10e6, step=1.0), 32: ordered(20e6)},
                         extra={"DPDK": 10e6})), C.FAILS),
    (5, dict(ixgbe=rates("ixgbe", {1: ordered(10e6), 32: ordered(20e6)})), C.INCONCLUSIVE),
    (6, dict(ixgbe=rates("ixgbe", {1: ordered(10e6), 32: ordered(40e6)})), C.HOLDS),
    (6, dict(ixgbe=rates("ixgbe", {1: ordered(10e6), 32: ordered(20e6)})), C.FAILS),
    (6, dict(ixgbe=rates("ixgbe", {1: ordered(10e6), 32: ordered(40e6, step=0.95)},
                         spread=0.1)), C.INCONCLUSIVE),
    (7, dict(nullnet=rates("nullnet", {1: ordered(30e6), 32: ordered(90e6, step=0.95)},
                           capacity=float("inf"), directions=("packets",))), C.HOLDS),
    (7, dict(nullnet=rates("nullnet", {1: ordered(30e6), 32: ordered(90e6)},
                           capacity=float("inf"), directions=("packets",))), C.FAILS),
    (7, dict(nullnet=rates("nullnet", {1: ordered(30e6, step=0.95), 32: ordered(90e6, 1.0)},
                           capacity=float("inf"), directions=("packets",), spread=0.03)),
     C.INCONCLUSIVE),
    (8, dict(nvme=rates("nvme", {b: ordered(2e6) for b in (1, 32)}, capacity=460e3,
                        directions=("read", "write"), extra={"SPDK": 3e6})), C.HOLDS),
    (8, dict(nvme=rates("nvme", {b: ordered(2e6) for b in (1, 32)}, capacity=460e3,
                        directions=("read", "write"), extra={"SPDK": 3e6},
                        achieved={1: {"rv6-shadow": 300e3}})), C.FAILS),
    (8, dict(nvme=rates("nvme", {b: ordered(2e6) for b in (1, 32)}, capacity=460e3,
                        directions=("read", "write"))), C.INCONCLUSIVE),
    (9, dict(recovery=recovery()), C.HOLDS),
    (9, dict(recovery=recovery(content_ok=False)), C.FAILS),
    (9, dict(recovery=recovery(restart_us=9000.0)), C.FAILS),
    (9, dict(recovery=recovery(in_flight=0)), C.FAILS),
    (10, dict(recovery=recovery()), C.HOLDS),
    (10, dict(recovery=recovery(crash=(4000, 4100, 3900))), C.FAILS),
    (10, dict(recovery=recovery(crash=(4990, 4500, 4890))), C.INCONCLUSIVE),
    (11, dict(fault_campaign=campaign()), C.HOLDS),
    (11, dict(fault_campaign=campaign(dropped=3)), C.FAILS),
    (11, dict(fault_campaign=campaign(activated=0.3)), C.INCONCLUSIVE),
    (12, dict(maglev=maglev(driver=7e6)), C.HOLDS),
    (12, dict(maglev=maglev(driver=4e6)), C.FAILS),
    (12, dict(maglev=maglev(driver=6.75e6, spread=0.05)), C.INCONCLUSIVE),
    (13, dict(maglev=maglev(rv6=(6e6, 5.8e6))), C.HOLDS),
    (13, dict(maglev=maglev(rv6=(7.5e6, 5.8e6))), C.FAILS),
    (13, dict(maglev=maglev(rv6=(7.2e6, 7.0e6), spread=0.03)), C.INCONCLUSIVE),
    (14, dict(kvstore=kvstore(0.7)), C.HOLDS),
    (14, dict(kvstore=kvstore(0.4)), C.FAILS),
    (14, dict(kvstore=kvstore(0.61, spread=0.05)), C.INCONCLUSIVE),
    (15, dict(httpd=httpd(driver=400e3)), C.HOLDS),
    (15, dict(httpd=httpd(driver=200e3, rv6=(190e3, 180e3))), C.FAILS),
    (15, dict(httpd=httpd(driver=240e3, rv6=(230e3, 220e3), spread=0.05)), C.INCONCLUSIVE),
    (16, dict(httpd=httpd()), C.HOLDS),
    (16, dict(httpd=httpd(rv6=(1.2e6, 0.85e6))), C.FAILS),
    (16, dict(httpd=httpd(rv6=(0.98e6, 0.97e6), spread=0.03)), C.INCONCLUSIVE),
]


@pytest.mark.parametrize("number, results, expected", CASES,
                         ids=[f"claim{n}-{v.replace(' ', '_')}" for n, _, v in CASES])
def test_every_claim_reaches_every_verdict(number, results, expected):
    v = verdict(number, **results)
    assert v.verdict == expected, v.reason
    assert v.reason and v.threshold and v.paper and "missing" not in v.paper
    assert v.inputs


def test_every_claim_has_three_verdict_cases():
    reached = {(n, v) for n, _, v in CASES}
    assert {c.number for c in C.CLAIMS} == set(range(1, 17))
    assert reached == {(c.number, v) for c in C.CLAIMS
                       for v in (C.HOLDS, C.FAILS, C.INCONCLUSIVE)} - {(9, C.INCONCLUSIVE)}


def test_a_claim_without_its_results_is_not_run_and_says_what_to_run():
    v = verdict(1)
    assert v.verdict == C.NOT_RUN and "redleaf-nb run comm_cost" in v.reason


def test_results_missing_a_row_the_claim_needs_are_not_run_not_a_crash():
    v = verdict(3, comm_cost=comm_cost().query("row != @C.SHADOW_NULL"))
    assert v.verdict == C.NOT_RUN and "re-run comm_cost" in v.reason


# --- the interval rules -------------------------------------------------------------

def test_spans_combine_conservatively():
    a, b = C.Span(10, 9, 11), C.Span(5, 4, 6)
    assert (a / b) == C.Span(2, 9 / 6, 11 / 4)
    assert (a - b) == C.Span(5, 3, 7)
    assert C.Span(1, -2, 3).scaled(-1) == C.Span(-1, -3, 2)


@pytest.mark.parametrize("span, low, high, expected", [
    (C.Span(2, 1.9, 2.1), 1.5, 3, C.HOLDS), (C.Span(1, 0.9, 1.1), 1.5, 3, C.FAILS),
    (C.Span(4, 3.5, 4.5), 1.5, 3, C.FAILS), (C.Span(1.5, 1.4, 1.6), 1.5, 3, C.INCONCLUSIVE)])
def test_within(span, low, high, expected):
    assert C.within(span, low, high) == expected


def test_at_least_and_at_most_decide_only_outside_the_spread():
    s = C.Span(1.0, 0.95, 1.05)
    assert [C.at_least(s, t) for t in (0.9, 1.0, 1.1)] == [C.HOLDS, C.INCONCLUSIVE, C.FAILS]
    assert [C.at_most(s, t) for t in (1.1, 1.0, 0.9)] == [C.HOLDS, C.INCONCLUSIVE, C.FAILS]


def test_combine_and_share():
    assert C.combine([C.HOLDS, C.HOLDS]) == C.HOLDS
    assert C.combine([C.HOLDS, C.INCONCLUSIVE]) == C.INCONCLUSIVE
    assert C.combine([C.INCONCLUSIVE, C.FAILS]) == C.FAILS
    assert C.share([C.HOLDS, C.HOLDS, C.FAILS], 2 / 3) == C.HOLDS
    assert C.share([C.HOLDS, C.FAILS, C.FAILS], 2 / 3) == C.FAILS
    assert C.share([C.HOLDS, C.INCONCLUSIVE, C.FAILS], 2 / 3) == C.INCONCLUSIVE


def test_verdicts_are_written_with_their_inputs(tmp_path):
    verdicts = C.judge_all({"comm_cost": comm_cost()}, PAPER)
    path = C.write(verdicts, tmp_path / "claims.json", {"code_version": "abc"})
    doc = json.loads(path.read_text())
    assert doc["code_version"] == "abc" and len(doc["claims"]) == len(C.CLAIMS)
    first = doc["claims"][0]
    assert first["verdict"] == C.HOLDS and first["inputs"] and first["threshold"]
    assert [c["verdict"] for c in doc["claims"]][3:] == [C.NOT_RUN] * (len(C.CLAIMS) - 3)


def test_a_notebook_sees_the_verdicts_of_its_experiments_claims():
    got = C.of_experiment("comm_cost", comm_cost())
    assert list(got.index) == [1, 2, 3] and (got.verdict == C.HOLDS).all()
    assert got.loc[3, "paper"].startswith("279 / 124")


def test_a_stalled_run_short_of_capacity_is_inconclusive_not_a_failure():
    """The host rate is above the drive's maximum, the achieved rate is not: the VM held
    the run back, which says nothing against the claim."""
    host = {b: ordered(2e6) for b in (1, 32)}
    df = rates("nvme", host, capacity=460e3, directions=("read", "write"),
               extra={"SPDK": 3e6}, achieved={1: {"rv6-shadow": 300e3}})
    short = (df.config == "rv6-shadow") & (df.batch == 1)
    assert verdict(8, nvme=df).verdict == C.FAILS                 # host-bound? unlabelled: fails
    v = verdict(8, nvme=df.assign(bound=np.where(short, "stalled", "device")))
    assert v.verdict == C.INCONCLUSIVE and "stalled" in v.reason
