"""The experiments harness and the Table 1 experiment, on tiny parameters."""
import html
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from experiments import comm_cost
from redleaf_nb import experiments as ex
from redleaf_nb.cli import main
from redleaf_nb.lowlevel.clock import machine, rdtsc, tsc_hz

TINY = dict(jit_calls=2000, py_calls=200, ipc_round_trips=200, repeats=2)


def test_cycle_counter_ticks_and_is_calibrated():
    a, b = rdtsc(), rdtsc()
    assert b >= a
    assert 0.2e9 < tsc_hz() < 10e9
    m = machine()
    assert {"cpu_model", "cores", "tsc_ghz", "numba", "git_commit"} <= set(m)


def test_bad_parameters_are_refused_with_the_valid_range():
    exp = ex.get("comm_cost")
    with pytest.raises(ex.ParamError, match=r"comm_cost: parameter repeats=0 is out of range: "
                                            r"must be an int in \[1, 101\]"):
        exp.resolve(repeats=0)
    with pytest.raises(ex.ParamError, match="is not an int"):
        exp.resolve(jit_calls="many")
    with pytest.raises(ex.ParamError, match="unknown parameter"):
        exp.resolve(bogus=1)
    assert exp.resolve(full=True)["jit_calls"] == 10_000_000


def test_cli_refuses_bad_parameters(capsys):
    assert main(["run", "comm_cost", "--param", "repeats=0"]) == 2
    assert "out of range: must be an int in [1, 101]" in capsys.readouterr().err
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
    assert list(table.columns) == ["row", "tier", "cycles", "cycles_lo", "cycles_hi", "ns",
                                   "ns_lo", "ns_hi", "calls", "rounds", "estimator"]
    assert len(table) == 12 and set(table.tier) == {"jitted", "python", "processes"}
    assert (table.cycles > 0).all() and (table.ns > 0).all()
    assert (table.cycles_lo <= table.cycles).all() and (table.cycles <= table.cycles_hi).all()
    assert table.estimator.str.startswith("minimum of 2 rounds").all()
    ghz = (table.cycles / table.ns).to_numpy()
    assert np.allclose(ghz, tsc_hz() / 1e9, rtol=1e-6)  # one clock converts both
    ratios = comm_cost.ratios(table)
    ns = table.set_index("row").ns
    assert ratios["Python proxy null / method call"] == pytest.approx(
        ns["Python proxy: null call"] / ns["Python method call (no isolation)"])
    assert ratios["shadow / plain, Python tier, RRef"] == pytest.approx(
        ns["Python proxy via shadow: passing RRef<u64>"] / ns["Python proxy: passing RRef<u64>"])
    assert all(np.isfinite(v) and v > 0 for k, v in ratios.items() if k != "RRef adds (cycles)")


def test_a_run_records_csv_png_and_metadata(comm_cost_run):
    _, out = comm_cost_run
    meta = json.loads((out / "comm_cost.json").read_text())
    assert meta["params"] == {**TINY, "reverse": False} and meta["setting"] == "quick"
    assert meta["machine"]["cpu_model"] and meta["figure"] == "Table 1"
    assert (out / "comm_cost.png").stat().st_size > 10_000
    assert (out / "comm_cost.csv").read_text().startswith("row,tier,cycles,cycles_lo,cycles_hi,ns")


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


def test_the_report_opens_with_every_claims_verdict_and_records_them(tmp_path):
    from redleaf_nb.claims import CLAIMS, VERDICTS
    page = ex.report(out=tmp_path / "report.html").read_text()
    assert page.index("The paper's claims, judged here") < page.index("<h2 id=")
    for c in CLAIMS:
        assert html.escape(c.title) in page and html.escape(c.threshold) in page
    doc = json.loads((tmp_path / "claims.json").read_text())
    assert doc["code_version"] and doc["machine"]["cpu_model"]
    assert [c["number"] for c in doc["claims"]] == [c.number for c in CLAIMS]
    assert all(c["verdict"] in VERDICTS for c in doc["claims"])


def test_cli_claims_prints_the_verdict_table(capsys, tmp_path):
    from redleaf_nb import cli
    assert cli.main(["claims", "--out", str(tmp_path / "claims.json")]) == 0
    printed = capsys.readouterr().out
    assert "verdict" in printed and "A cross-domain call is far cheaper" in printed
    assert json.loads((tmp_path / "claims.json").read_text())["claims"]


# ---- typed parameters ------------------------------------------------------------------

@pytest.mark.parametrize("given, value", [
    ("False", False), ("false", False), ("0", False), ("no", False), ("NO", False),
    ("True", True), ("true", True), ("1", True), ("yes", True), (" Yes ", True),
    (False, False), (True, True), (0, False), (1, True)])
def test_bool_parameters_read_true_false_1_0_yes_no(given, value):
    assert ex.get("ixgbe").resolve(linux=given)["linux"] is value


@pytest.mark.parametrize("bad", ["maybe", "2", "", "off", 2, 0.0, None])
def test_bool_parameters_refuse_anything_else_listing_the_valid_values(bad):
    with pytest.raises(ex.ParamError, match=r"ixgbe: parameter linux=.* is not a bool: "
                                            r"true/false, yes/no or 1/0 \(any case\)"):
        ex.get("ixgbe").resolve(linux=bad)


def test_cli_reads_linux_false_as_false():
    from redleaf_nb.cli import _overrides
    for word in ("False", "0", "no"):
        assert ex.get("nvme").resolve(**_overrides([f"linux={word}"]))["linux"] is False


@pytest.mark.parametrize("bad", [1.5, "1.5", 2.0, True, "ten", None])
def test_int_parameters_refuse_non_integers(bad):
    with pytest.raises(ex.ParamError, match=r"comm_cost: parameter repeats=.* is not an int "
                                            r"in \[1, 101\]"):
        ex.get("comm_cost").resolve(repeats=bad)


def test_int_and_float_parameters_convert_text():
    assert ex.get("comm_cost").resolve(repeats="7")["repeats"] == 7
    assert ex.get("nullnet").resolve(seconds="0.25")["seconds"] == 0.25
    assert ex.get("nullnet").resolve(seconds=1)["seconds"] == 1.0
    for bad in ("nan", "inf", float("nan"), "fast"):
        with pytest.raises(ex.ParamError, match=r"nullnet: parameter seconds=.* is not a float "
                                                r"in \[0.001, 60.0\]"):
            ex.get("nullnet").resolve(seconds=bad)


def test_every_parameter_is_typed_and_its_settings_valid():
    for exp in ex.discover().values():
        for p in exp.params:
            assert p.type in (bool, int, float, str), (exp.name, p.name)
            for setting in (p.quick, p.full):
                assert type(setting) is p.type, (exp.name, p.name, setting)
                assert p.check(setting, exp.name) == setting


def test_bad_declarations_are_refused():
    with pytest.raises(ex.ParamError, match=r"Param n \(quick setting\): parameter n=0 is out "
                                            r"of range: must be an int in \[1, 5\]"):
        ex.Param("n", int, 0, 1, "a count", low=1, high=5)
    with pytest.raises(TypeError, match="type must be one of bool, int, float, str"):
        ex.Param("n", list, [], [], "a list")
    with pytest.raises(TypeError, match="a str parameter needs its choices"):
        ex.Param("s", str, "a", "a", "free text")
    with pytest.raises(TypeError, match="low/high apply to int and float only"):
        ex.Param("b", bool, True, True, "a flag", low=0)


# ---- which checkout runs ---------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]

PROBE = '''
from redleaf_nb.experiments import Experiment, Param
EXPERIMENT = Experiment(name="probe", figure="Figure 0", title="a copy's own experiment",
                        paper_csv="none.csv", params=(Param("n", int, 1, 2, "n", low=1, high=9),),
                        run=None, plot=None)
'''


@pytest.fixture
def copy(tmp_path):
    """Another redleaf-nb checkout (its pyproject.toml), with one experiment of its own."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "__init__.py").write_text("")
    (tmp_path / "experiments" / "probe.py").write_text(PROBE)
    (tmp_path / "notebooks").mkdir()
    return tmp_path


def _list(cwd, root=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("REDLEAF_NB_ROOT", None)
    if root is not None:
        env["REDLEAF_NB_ROOT"] = str(root)
    return subprocess.run([sys.executable, "-m", "redleaf_nb.cli", "list"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_the_command_runs_the_checkout_it_is_run_from(copy):
    for cwd in (copy, copy / "notebooks"):
        out = _list(cwd)
        assert out.returncode == 0, out.stderr
        assert "probe" in out.stdout and "comm_cost" not in out.stdout, out.stdout


def test_redleaf_nb_root_comes_first(copy, tmp_path_factory):
    out = _list(copy, root=ROOT)
    assert out.returncode == 0, out.stderr
    assert "comm_cost" in out.stdout and "probe" not in out.stdout
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    out = _list(copy, root=elsewhere)
    assert out.returncode == 2
    assert f"REDLEAF_NB_ROOT={elsewhere} is not a redleaf-nb checkout" in out.stderr


def test_outside_any_checkout_the_package_checkout_is_used(tmp_path, monkeypatch):
    monkeypatch.delenv("REDLEAF_NB_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    assert ex.repo_root() == ROOT


def test_what_counts_as_a_checkout(copy, tmp_path_factory):
    assert ex.is_checkout(copy) and ex.is_checkout(ROOT)
    other = tmp_path_factory.mktemp("other")
    (other / "experiments").mkdir()
    (other / "experiments" / "__init__.py").write_text("")
    (other / "pyproject.toml").write_text('[project]\nname = "something-else"\n')
    assert not ex.is_checkout(other)                       # another project
    (copy / "experiments" / "__init__.py").unlink()
    assert not ex.is_checkout(copy)                        # no experiments package


def test_a_public_module_without_experiment_is_named(copy):
    (copy / "experiments" / "helper.py").write_text("X = 1\n")
    out = _list(copy)
    assert out.returncode == 2
    assert "experiments.helper defines no EXPERIMENT" in out.stderr


def test_one_process_runs_one_checkout(copy, monkeypatch):
    ex.discover()                                 # this checkout's experiments are imported
    monkeypatch.setenv("REDLEAF_NB_ROOT", str(copy))
    with pytest.raises(ex.HarnessError, match=f"not from {copy / 'experiments'}"):
        ex.discover()


def test_the_report_is_one_file_with_each_figure_of_its_run_in_the_papers_order(
        tmp_path, monkeypatch):
    """Figures are embedded (nothing but data: URIs), with alt text, Table 1 first and
    the figures by number; rewriting a figure later leaves a written report as it was."""
    import base64
    import re
    ex.run("hashtable", out=tmp_path / "hashtable", min_log2=10, max_log2=10, repeats=1,
           py_max_log2=10)
    ex.run("comm_cost", out=tmp_path / "comm_cost", **TINY)
    monkeypatch.setattr(ex, "results_dir", lambda name: tmp_path / name)
    page = ex.report(out=tmp_path / "report.html").read_text()
    sources = re.findall(r"<img alt='([^']+)' src='([^']+)'>", page)
    assert len(sources) == 2 and all(src.startswith("data:image/png;base64,")
                                     for _, src in sources)
    assert "src='" not in page.replace("src='data:", "")
    assert sources[0][0].startswith("Table 1") and sources[1][0].startswith("Figure 5")
    png = (tmp_path / "hashtable" / "hashtable.png").read_bytes()
    assert base64.b64decode(sources[1][1].split(",", 1)[1]) == png
    order = [page.index(f"<h2 id='{e.name}'>") for e in
             sorted(ex.discover().values(), key=ex._paper_order)]
    assert order == sorted(order)


def test_the_lab_starts_as_root_too_and_opens_on_the_tour():
    """`make lab` (redleaf-nb lab): JupyterLab answers on the notebooks, the tour is its
    landing page, whoever runs it (as root it needs --allow-root)."""
    import subprocess
    import time
    import urllib.request
    from redleaf_nb import cli
    from experiments._linux_servers import free_port
    port, token = free_port(), "redleaf-test"
    proc = subprocess.Popen(cli.lab_command(port, token, open_browser=False),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline, body = time.monotonic() + 90, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents/"
                                            f"{cli.TOUR}?token={token}&content=0", timeout=2) as r:
                    body = json.loads(r.read())
                break
            except OSError:
                time.sleep(0.5)
        assert body is not None, proc.stderr.read1().decode()[-2000:] if proc.poll() else "timeout"
        assert body["name"] == cli.TOUR and body["type"] == "notebook"
    finally:
        proc.terminate()
        proc.wait(20)


def test_every_experiment_has_a_notebook_and_the_report_links_it(tmp_path, monkeypatch):
    found = {name: ex.notebook_of(exp) for name, exp in ex.discover().items()}
    assert all(found.values()), f"no notebook runs: {[n for n, nb in found.items() if not nb]}"
    assert found["hashtable"] == "notebooks/fig5_hashtable.ipynb"
    ex.run("hashtable", out=tmp_path / "hashtable", min_log2=10, max_log2=10, repeats=1,
           py_max_log2=10)
    monkeypatch.setattr(ex, "results_dir", lambda name: tmp_path / name)
    page = ex.report(out=tmp_path / "report.html").read_text()
    assert "Explore it: <a href='../../notebooks/fig5_hashtable.ipynb'>" in page
    # the link is relative to where `make reproduce` writes the report: data/results/
    report_dir = ex.repo_root() / "data" / "results"
    assert (report_dir / "../../notebooks/fig5_hashtable.ipynb").resolve().is_file()
