"""The experiments harness and the Table 1 experiment, on tiny parameters."""
import json

import numpy as np
import pytest

from redleaf_nb import experiments as ex
from redleaf_nb.cli import main
from redleaf_nb.kernel.clock import machine, rdtsc, tsc_hz

TINY = dict(jit_calls=2000, py_calls=200, ipc_round_trips=200, repeats=1)


def test_cycle_counter_ticks_and_is_calibrated():
    a, b = rdtsc(), rdtsc()
    assert b >= a
    assert 0.2e9 < tsc_hz() < 10e9
    m = machine()
    assert {"cpu_model", "cores", "tsc_ghz", "numba", "git_commit"} <= set(m)


def test_bad_parameters_are_refused_with_the_valid_range():
    exp = ex.get("comm_cost")
    with pytest.raises(ex.ParamError, match=r"repeats=0 is out of range: must be a int in \[1, 101\]"):
        exp.resolve(repeats=0)
    with pytest.raises(ex.ParamError, match="is not a int"):
        exp.resolve(jit_calls="many")
    with pytest.raises(ex.ParamError, match="unknown parameter"):
        exp.resolve(bogus=1)
    assert exp.resolve(full=True)["jit_calls"] == 10_000_000


def test_cli_refuses_bad_parameters(capsys):
    assert main(["run", "comm_cost", "--param", "repeats=0"]) == 2
    assert "out of range: must be a int in [1, 101]" in capsys.readouterr().err
    assert main(["run", "nosuch"]) == 2


def test_cli_lists_every_experiment_with_its_figure(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "comm_cost" in out and "Table 1" in out


@pytest.fixture(scope="module")
def comm_cost_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("comm_cost")
    return ex.run("comm_cost", out=out, **TINY), out


def test_comm_cost_measures_every_row_in_cycles_and_ns(comm_cost_run):
    table, _ = comm_cost_run
    assert list(table.columns) == ["row", "tier", "cycles", "ns", "calls", "repeats"]
    assert len(table) == 12 and set(table.tier) == {"jitted", "python", "processes"}
    assert (table.cycles > 0).all() and (table.ns > 0).all()
    ghz = (table.cycles / table.ns).to_numpy()
    assert np.allclose(ghz, tsc_hz() / 1e9, rtol=1e-6)  # one clock converts both
    ratios = ex.get("comm_cost").extra["ratios"](table)
    assert set(ratios) >= {"jitted null call (cycles)", "RRef adds (cycles)"}


def test_a_run_records_csv_png_and_metadata(comm_cost_run):
    _, out = comm_cost_run
    meta = json.loads((out / "comm_cost.json").read_text())
    assert meta["params"] == TINY and meta["setting"] == "quick"
    assert meta["machine"]["cpu_model"] and meta["figure"] == "Table 1"
    assert (out / "comm_cost.png").stat().st_size > 10_000
    assert (out / "comm_cost.csv").read_text().startswith("row,tier,cycles,ns")


def test_the_plot_puts_the_papers_rows_beside_ours(comm_cost_run):
    table, _ = comm_cost_run
    exp = ex.get("comm_cost")
    fig = exp.plot(table, ex.paper(exp))
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert any(lbl.startswith("seL4") for lbl in labels) and "jitted proxy: null call" in labels
    assert "log" in fig.axes[0].get_xscale()


def test_the_report_lists_every_experiment(tmp_path):
    page = ex.report(out=tmp_path / "report.html").read_text()
    for exp in ex.discover().values():
        assert exp.figure in page and exp.title in page
