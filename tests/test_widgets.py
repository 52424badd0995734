"""The widget factory: every experiment's form comes from its own parameters, and the
form's values go through the experiment's own checks."""
import pandas as pd
import pytest

from redleaf_nb import experiments as ex
from redleaf_nb.experiments import Experiment, Param
from redleaf_nb.widgets import ParamForm, control


@pytest.mark.parametrize("name", sorted(ex.discover()))
def test_every_experiments_form_has_its_parameters_ranges_and_choices(name):
    exp = ex.get(name)
    form = ParamForm(exp)
    assert form.values() == exp.resolve()
    for p in exp.params:
        c = form.controls[p.name]
        if p.choices is not None:
            assert tuple(c.options) == tuple(p.choices)
        elif p.type in (int, float) and p.low is not None and p.high is not None:
            assert (c.min, c.max) == (p.low, p.high)
    assert f"Run {exp.figure}" == form.button.description


def test_controls_follow_the_type():
    cases = [(Param("b", bool, True, True, "x"), "Checkbox"),
             (Param("s", str, "a", "a", "x", choices=("a", "b")), "Dropdown"),
             (Param("i", int, 3, 3, "x", low=1, high=10), "IntSlider"),
             (Param("n", int, 3, 3, "x", low=1, high=1 << 20), "BoundedIntText"),
             (Param("f", float, 0.5, 0.5, "x", low=0.0, high=1.0), "BoundedFloatText")]
    for p, kind in cases:
        c = control(p, p.quick)
        assert type(c).__name__ == kind and c.value == p.quick and p.help in c.tooltip


def _toy(calls):
    def run(params):
        calls.append(params)
        return pd.DataFrame({"x": [params["n"]], "y": [params["scale"] * 2]})

    def plot(ours, theirs):
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots()
        ax.plot(ours.x, ours.y)
        return fig
    return Experiment(name="toy", figure="Figure 0", title="toy", paper_csv=None,
                      params=(Param("n", int, 2, 4, "points", low=1, high=9),
                              Param("scale", float, 1.0, 1.0, "scale", low=0.0, high=5.0)),
                      run=run, plot=plot)


def test_run_calls_the_experiment_with_the_forms_values_and_shows_its_results():
    calls = []
    form = ParamForm(_toy(calls), values={"n": 3})
    form.controls["scale"].value = 2.5
    table = form.run()
    assert calls == [{"n": 3, "scale": 2.5}] and table.y.iloc[0] == 5.0
    shown = [o["data"] for o in form.out.outputs]    # the table, then the figure
    assert len(shown) == 2 and "Figure" in shown[1].get("text/plain", "") + str(
        shown[1].get("image/png", "Figure"))


def test_export_writes_the_last_runs_figure_and_table_and_shows_where(tmp_path):
    form = ParamForm(_toy([]), values={"n": 3})
    assert form.export_button.disabled
    with pytest.raises(RuntimeError, match=r"ParamForm\(toy\).export: no run to export yet"):
        form.export(tmp_path)
    table = form.run()
    assert not form.export_button.disabled and form.figure is not None
    written = form.export(tmp_path)
    assert sorted(p.suffix for p in written) == [".csv", ".pdf", ".png"]
    assert all(p.parent == tmp_path and p.name.startswith("toy-") and p.stat().st_size
               for p in written)
    assert pd.read_csv(next(p for p in written if p.suffix == ".csv")).shape == table.shape
    assert all(str(p) in form.out.outputs[-1]["text"] for p in written)


def test_a_refused_value_is_shown_and_nothing_runs():
    calls = []
    form = ParamForm(_toy(calls))
    form.controls["n"].max = 100          # a widget the user (or a bug) widened
    form.controls["n"].value = 50
    assert form.run() is None and calls == []
    assert "out of range" in form.out.outputs[0]["text"]


def test_the_heap_timeline_follows_moves_borrows_and_a_crash_from_the_kernel():
    from redleaf_nb import Kernel
    from redleaf_nb.drivers.membdev import MemBDev, MemDisk
    from redleaf_nb.interfaces.bdev import Block
    from redleaf_nb.widgets import HeapTimeline
    k = Kernel(heap_bytes=8 << 20)
    disk = k.create("membdev", MemBDev, device=k.add_device("memdisk", MemDisk(64)), nblocks=64)
    timeline = HeapTimeline(k)
    buf = k.new(Block)
    before = timeline.snap("alloc")
    assert before.set_index("domain").objects["init"] == 1
    buf = disk.read(3, buf)                   # moved to membdev and back
    timeline.snap("read")
    k.inject_crash("membdev", on_call="read")
    try:
        disk.read(4, buf)
    except Exception:
        pass
    after = timeline.snap("crash").set_index("domain")
    assert after.objects["init"] == 0          # the buffer was reclaimed with membdev
    assert after.state["membdev"] != "alive"
    acc = k.heap.accounting()
    assert after.objects.sum() == acc.objects.sum()
    fig = timeline.figure()
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["alloc", "read", "crash"]


def test_the_domain_graph_has_every_proxy_edge_and_shows_a_crash():
    from redleaf_nb import Kernel
    from redleaf_nb.apps.rv6 import rv6_class
    from redleaf_nb.apps.rv6.tools import mkfs
    from redleaf_nb.drivers.membdev import MemBDev, MemDisk
    from redleaf_nb.kernel.shadow import shadow_class
    from redleaf_nb.widgets import domain_graph
    k = Kernel(heap_bytes=16 << 20)
    disk = MemDisk(512)
    mkfs(disk.blocks, 32)
    k.create("membdev", MemBDev, device=k.add_device("memdisk", disk), nblocks=512)
    shadow = k.create_shadow("membdev-shadow", "membdev")
    k.create("rv6", rv6_class(disk_cls=shadow_class(MemBDev.declared(), MemBDev)), net=None,
             bdev=None, disk=shadow)
    e = domain_graph.edges(k)
    assert set(zip(e.caller, e.callee, e.via)) == {("rv6", "membdev-shadow", "disk"),
                                                   ("membdev-shadow", "membdev", "guards")}
    assert "class BDevProxy" in domain_graph.proxy_source(k, "rv6", "membdev-shadow")
    k.crash("membdev")
    fig = domain_graph.draw(k)
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert any(t.startswith("membdev\n") and t.endswith("crashed") for t in labels)
    assert any("guards" in t for t in labels)
    with pytest.raises(KeyError, match="no edge"):
        domain_graph.proxy_source(k, "membdev", "rv6")
