"""The lab notebook's forms: the fault injector's timeline is the kernel's own account
of a recovery, and the domain builder's stacks behave as the layers chosen say."""
from __future__ import annotations

import re

import pytest

from redleaf_nb.widgets import builder
from redleaf_nb.widgets.fault_lab import FaultLab, run_faults, timeline


def test_every_kth_write_panics_and_each_is_recovered_without_losing_data():
    run = run_faults(kind="panic", point="write", trigger="every k-th hit", k=25, calls=200)
    # 100 writes, a panic at every 25th: 4 deaths, each unwound, reclaimed, restarted, retried
    counts = run.events.kind.value_counts().to_dict()
    assert counts == {"armed": 1, "unwind": 4, "crash": 4, "reclaim": 4, "restart": 4, "retry": 4}
    assert run.recoveries == run.shadow_stats.restarts == 4
    assert run.calls.ok.all() and not run.calls.wrong_data.any()
    assert (run.events.t_ms.diff().dropna() >= 0).all()


def test_faults_faster_than_the_policy_allows_are_refused_and_calls_fail():
    run = run_faults(trigger="probability per hit", probability=0.2, point="any", calls=300,
                     max_restarts=2, period_s=60.0)
    assert run.recoveries == run.shadow_stats.restarts == 2
    assert (run.events.kind == "refused").sum() > 0
    assert (~run.calls.ok).sum() > 0 and not run.calls.wrong_data.any()


def test_a_fault_at_a_time_is_armed_only_then_and_a_hang_is_caught_by_the_budget():
    run = run_faults(kind="hang", point="read", trigger="at time (ms)", at_ms=1.0, calls=200)
    armed = run.events[run.events.kind == "armed"]
    assert len(armed) == 1 and armed.t_ms.item() >= 1.0
    assert (run.calls.t_ms[run.calls.t_ms < 1.0].size > 0
            and run.events.t_ms.min() >= 1.0)            # calls before it, no event before it
    assert "hang" in run.events.detail[run.events.kind == "crash"].item()
    assert run.recoveries == 1


def test_inside_the_jitted_driver_a_wrong_value_corrupts_data_and_a_corrupt_state_crashes_it():
    # bit 0 of the block number: the write lands on the neighbour block, nothing crashes,
    # and the read-back shows it: what language safety does not catch
    run = run_faults(tier="jitted", kind="wrong_value", point="block", bit=0,
                     trigger="k-th hit", k=10, calls=100)
    assert run.recoveries == 0 and run.calls.ok.all()
    assert run.calls.wrong_data.sum() == 1 and list(run.events.kind) == ["armed"]
    # bit 6 of the driver's state (nblocks 64 -> 0): the next call panics on its bounds
    # check, and the restarted driver has a fresh state
    run = run_faults(tier="jitted", kind="corrupt", bit=6, trigger="k-th hit", k=30,
                     calls=100)
    assert list(run.events.kind) == ["armed", "unwind", "crash", "reclaim", "restart", "retry"]
    assert run.recoveries == run.shadow_stats.restarts == 1 and run.calls.ok.all()
    assert not run.calls.wrong_data.any()


def test_the_lab_offers_each_tiers_own_faults():
    lab = FaultLab()
    assert "wrong_value" not in lab.controls["kind"].options
    lab.controls["tier"].value = "jitted"
    assert "wrong_value" in lab.controls["kind"].options
    assert "block" in lab.controls["point"].options
    assert FaultLab(kind="corrupt", tier="jitted").controls["kind"].value == "corrupt"
    with pytest.raises(ValueError, match="FaultLab: kind='corrupt' is refused"):
        FaultLab(kind="corrupt")                   # not a fault of the python tier


def test_a_fault_that_never_struck_says_so():
    lab = FaultLab(trigger="at time (ms)", at_ms=100.0, calls=20)
    run = lab.run()
    assert run.injected == 0 and run.recoveries == 0
    assert "the fault never struck" in lab.recoveries.value
    run = FaultLab(k=5, calls=40).run()
    assert run.injected == 4          # 20 writes, every 5th write panics


@pytest.mark.parametrize("bad, message", [
    (dict(kind="wrong_value"), r"kind 'wrong_value' is not one of panic, hang \(in the python"),
    (dict(tier="gpu"), "tier 'gpu' is not one of python, jitted"),
    (dict(trigger="sometimes"), "trigger 'sometimes' is not one of"),
    (dict(point="flush"), "point 'flush' is not one of"),
    (dict(k=0), r"k \(0\) and calls"),
])
def test_bad_choices_are_refused_with_the_valid_ones(bad, message):
    with pytest.raises(ValueError, match=message):
        run_faults(**bad)


def test_the_fault_lab_renders_the_kernels_recovery_count_and_its_timeline():
    lab = FaultLab(k=20, calls=160)
    run = lab.run()
    shown = re.search(r"class='rl-recoveries'>(\d+)<", lab.recoveries.value)
    assert int(shown.group(1)) == run.recoveries == run.shadow_stats.restarts == 4
    assert "class='rl-run'>1<" in lab.recoveries.value
    figure, table = lab.out.outputs      # the timeline; the event table: armed + 4 x 5 steps
    assert "Figure size" in figure["data"]["text/plain"] and len(run.events) == 21
    assert table["data"]["text/plain"] == repr(run.events)
    fig = timeline(run)
    top, strip = fig.axes
    assert top.get_ylabel() == "throughput (calls/ms)" and "ms" in strip.get_xlabel()
    assert any(t.get_text().startswith("restart (4)") for t in strip.get_yticklabels())
    lab.controls["trigger"].value = "k-th hit"
    lab.run()
    assert "class='rl-run'>2<" in lab.recoveries.value and lab.last.recoveries == 1
    with pytest.raises(TypeError, match="no control 'bogus'"):
        FaultLab(bogus=1)


def test_a_shadowed_stack_survives_a_driver_crash_and_an_unshadowed_one_does_not():
    stack = builder.build(builder.DRIVERS[0], shadowed=True, with_rv6=True)
    names = [d.name for d in stack.kernel.domain_list()]
    assert names == ["init", "membdev", "membdev-shadow", "rv6"]
    assert stack.call() == "call 1: read back intact"
    stack.kernel.crash("membdev")
    assert stack.call() == "call 2: read back intact"          # the shadow restarted it
    assert stack.kernel.events.count("restart") == 1
    bare = builder.build(builder.DRIVERS[0], shadowed=False, with_rv6=False)
    bare.kernel.crash("membdev")
    assert bare.call().startswith("call 1 failed: BDev.write on domain 'membdev'")
    stack.kernel.crash("rv6")
    assert "domain 'rv6'" in stack.call()
    stack.kernel.heap.check_invariants()
    with pytest.raises(ValueError, match="driver 'floppy' is not one of"):
        builder.build("floppy")


@pytest.mark.parametrize("with_rv6", [True, False])
def test_a_stacks_calls_leave_the_heap_as_it_was_and_never_fill_the_disk(with_rv6):
    stack = builder.build(builder.DRIVERS[0], shadowed=True, with_rv6=with_rv6)
    live = stack.kernel.heap.live_objects
    said = [stack.call() for _ in range(3 * builder.NOTES + 40)]
    assert all(s.endswith("read back intact") for s in said), said
    assert stack.kernel.heap.live_objects == live
    assert stack.kernel.events.count("crash") == 0


def test_the_domain_builder_draws_crashes_and_shows_any_edges_proxy():
    form = builder.DomainBuilder()
    form.build()
    assert form.edge.options == ("membdev-shadow -> membdev", "rv6 -> membdev-shadow")
    assert "membdev" in form.victim.options and "init" not in form.victim.options
    form.victim.value = "membdev"
    form.crash()
    assert form.stack.kernel.lookup("membdev").domain.state == "crashed"
    assert form.call() == "call 1: read back intact"
    form.edge.value = "rv6 -> membdev-shadow"
    assert "class BDevProxy" in form.show_source()
    assert form.log.value.splitlines()[-2:] == ["crashed membdev", "call 1: read back intact"]
