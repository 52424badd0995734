"""JupyterLab in a real browser: Playwright drives Debian's chromium (installed by the
project's set-up, scripts/system-deps.sh; Playwright may not download browsers here)
against a JupyterLab this module starts on a free loopback port with its own token.

It runs the tour, moves a slider in a figure notebook and checks that the rendered
figure's pixels change, injects faults in the fault lab and checks that the recovery
count the widget renders is the kernel's own, and opens the report with every request
but ``file:`` and ``data:`` blocked. Screenshots go to ``data/results/browser/``.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from redleaf_nb import cli
from redleaf_nb import experiments as ex

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium")
SHOTS = ROOT / "data" / "results" / "browser"
NOTEBOOK_TIMEOUT_MS = 600_000     # a fresh clone compiles the notebook's jitted code first

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium "
                                "(scripts/system-deps.sh installs it when run as root)")

# The open notebook's state, read from JupyterLab's own model: code cells not yet run,
# the errors in any output, and the kernel's status (null until the kernel is up).
NOTEBOOK_STATE = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel && panel.sessionContext && panel.sessionContext.session
                 && panel.sessionContext.session.kernel;
  if (!kernel || !panel.content.model) return null;
  const cells = panel.content.model.cells, state = {pending: 0, errors: [], status: kernel.status};
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    if (cell.type !== 'code') continue;
    if (cell.executionCount === null) state.pending++;
    for (const o of cell.outputs.toJSON())
      if (o.output_type === 'error') state.errors.push(`cell ${i}: ${o.ename}: ${o.evalue}`);
  }
  return state;
}"""

# Run code in the open notebook's kernel (as a cell would) and return what it printed.
KERNEL_PRINT = """async (code) => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const future = kernel.requestExecute({code});
  let text = '';
  future.onIOPub = (msg) => {
    if (msg.header.msg_type === 'stream') text += msg.content.text;
    if (msg.header.msg_type === 'error') text += 'ERROR ' + msg.content.evalue;
  };
  await future.done;
  return text;
}"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on the notebooks (as ``make lab`` starts it), exposing its app object to
    the page so the test can read the notebook model; its base URL and token."""
    from experiments._linux_servers import free_port
    port, token = free_port(), "redleaf-browser-test"
    workspaces = tmp_path_factory.mktemp("lab-workspaces")
    # make lab's settings, and no autosave: the test runs the committed notebooks
    settings = json.loads((ROOT / "lab-settings" / "overrides.json").read_text())
    settings["@jupyterlab/docmanager-extension:plugin"] = {"autosave": False}
    (workspaces / "overrides.json").write_text(json.dumps(settings))
    argv = cli.lab_command(port, token, open_browser=False, settings_dir=workspaces) + [
        "--LabApp.expose_app_in_browser=True", f"--LabApp.workspaces_dir={workspaces}"]
    log = (workspaces / "lab.log").open("w")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"JupyterLab did not start: {(workspaces / 'lab.log').read_text()}")
            time.sleep(0.5)
    yield url, token
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module", autouse=True)
def notebooks_untouched():
    """Running notebooks in the browser must not write them (they stay without outputs)."""
    before = {p: p.read_bytes() for p in (ROOT / "notebooks").glob("*.ipynb")}
    yield
    changed = [p.name for p, data in before.items() if p.read_bytes() != data]
    assert not changed, f"the browser test wrote {changed}"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        # chromium's sandbox needs user namespaces that root in a container does not get
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        b = p.chromium.launch(executable_path=CHROMIUM, args=args)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield context.new_page()
    context.close()


def run_notebook(page, lab, name: str) -> float:
    """Open notebook ``name`` in JupyterLab, run all its cells, wait for the last; the
    seconds it took. Fails naming the cells whose outputs hold an error."""
    url, token = lab
    start = time.monotonic()
    page.goto(f"{url}/lab/tree/{name}?token={token}&reset")
    page.wait_for_function(f"() => window.jupyterapp && ({NOTEBOOK_STATE})() !== null "
                           "&& window.jupyterapp.shell.currentWidget.sessionContext.isReady",
                           timeout=120_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(f"() => {{ const s = ({NOTEBOOK_STATE})(); return s !== null && "
                           "(s.errors.length > 0 || (s.pending === 0 && s.status === 'idle')); }",
                           timeout=NOTEBOOK_TIMEOUT_MS, polling=500)
    state = page.evaluate(NOTEBOOK_STATE)
    assert not state["errors"], f"{name}: {state['errors']}"
    assert page.get_by_text("Error displaying widget").count() == 0, f"{name}: a widget failed"
    return time.monotonic() - start


def slider(page, form, label: str):
    """The slider labelled exactly ``label`` in ``form``."""
    return form.locator(".widget-slider").filter(has=page.get_by_text(label, exact=True))


def pixels(png: bytes) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_the_tour_runs_in_the_browser_without_an_error(page, lab):
    seconds = run_notebook(page, lab, "00_tour.ipynb")
    page.screenshot(path=SHOTS / "tour.png")
    print(f"tour: opened and ran in {seconds:.1f} s")


def test_moving_a_slider_in_a_figure_notebook_changes_the_figure(page, lab):
    from playwright.sync_api import expect
    run_notebook(page, lab, "fig5_hashtable.ipynb")
    button = page.get_by_role("button", name="Run Figure 5")
    form = page.locator(".widget-vbox").filter(has=button).last
    figure = form.locator(".widget-output img").first

    def run_and_capture(path: Path, old_src: str | None) -> tuple[np.ndarray, str]:
        """Press Run; once the form shows a figure other than ``old_src``, its pixels."""
        button.click()
        figure.wait_for(timeout=NOTEBOOK_TIMEOUT_MS)
        if old_src is not None:       # the last run's figure stays until the new one comes
            expect(figure).not_to_have_attribute("src", old_src, timeout=NOTEBOOK_TIMEOUT_MS)
        figure.scroll_into_view_if_needed()
        return pixels(figure.screenshot(path=path)), figure.get_attribute("src")

    before, src_before = run_and_capture(SHOTS / "fig5_before.png", None)
    max_log2 = slider(page, form, "max_log2")
    handle = max_log2.get_by_role("slider")
    handle.focus()
    for _ in range(2):
        handle.press("ArrowLeft")            # max_log2 16 -> 14: two sizes fewer
    assert max_log2.locator(".widget-readout").inner_text() == "14"
    after, _ = run_and_capture(SHOTS / "fig5_after.png", src_before)
    changed = (before.shape != after.shape
               or (np.abs(before.astype(int) - after.astype(int)).sum(axis=2) > 30).mean() > 0.01)
    assert changed, "the figure's pixels did not change after the slider moved"
    # and the change is the slider's: the kernel's form has its value, the run used it
    printed = page.evaluate(KERNEL_PRINT, "print(form.values()['max_log2'], "
                                          "form.table.size_log2.max())")
    assert printed.split() == ["14", "14"]
    form.screenshot(path=SHOTS / "fig5_form.png")


def test_the_fault_lab_shows_the_recoveries_the_kernel_counted(page, lab):
    run_notebook(page, lab, "lab_heap_and_faults.ipynb")
    button = page.get_by_role("button", name="Inject and run")
    form = page.locator(".widget-vbox").filter(has=button).last
    runs = form.locator(".rl-run")
    assert runs.inner_text() == "1"              # the notebook's own first run
    k = slider(page, form, "k (hits)").get_by_role("slider")
    k.focus()
    for _ in range(60):
        k.press("ArrowLeft")                     # k 100 -> 40: more faults in the workload
    button.click()
    # the HTML widget redraws its content: ask the page, not the old element
    page.wait_for_function("() => [...document.querySelectorAll('.rl-run')]"
                           ".some(e => e.textContent === '2')", timeout=NOTEBOOK_TIMEOUT_MS)
    shown = int(form.locator(".rl-recoveries").inner_text())
    printed = page.evaluate(KERNEL_PRINT, "s = lab.last.shadow_stats\n"
                                          "print(lab.controls['k'].value, s.restarts, "
                                          "s.failed_restarts)")
    k_value, restarts, failed = (int(x) for x in printed.split())
    assert k_value == 40 and failed == 0
    assert shown == restarts == 200 // 40      # 200 writes, a panic at every 40th
    assert form.locator(".widget-output img").count() == 1     # the timeline
    form.screenshot(path=SHOTS / "fault_lab.png")


def open_offline(browser, report: Path):
    """A page on ``report`` where every request but ``file:`` and ``data:`` is aborted;
    the page, its context and the list of what it asked the network for."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    blocked = []

    def only_local(route):
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    page.goto(report.as_uri())
    return page, context, blocked


def figures_loaded(page) -> list:
    """Each image of the page: its alt text, and whether it decoded."""
    return page.evaluate("() => [...document.images].map(i => [i.alt, i.complete "
                         "&& i.naturalWidth > 0])")


def test_the_report_opens_offline_with_every_figure(browser, tmp_path, monkeypatch):
    ex.run("hashtable", out=tmp_path / "hashtable", min_log2=10, max_log2=10, repeats=1,
           py_max_log2=10)
    ex.run("comm_cost", out=tmp_path / "comm_cost", jit_calls=2000, py_calls=200,
           ipc_round_trips=200, repeats=2)
    monkeypatch.setattr(ex, "results_dir", lambda name: tmp_path / name)
    report = ex.report(out=tmp_path / "report.html")
    page, context, blocked = open_offline(browser, report)
    loaded = figures_loaded(page)
    assert len(loaded) == 2 and all(ok and alt for alt, ok in loaded), loaded
    assert page.locator("table").count() >= 3       # the verdicts, and each figure's numbers
    assert not blocked, f"the report asked the network for {blocked}"
    page.screenshot(path=SHOTS / "report.png", full_page=False)
    context.close()


def test_the_browser_is_the_systems_and_playwright_is_pinned():
    """Playwright drives the distribution's chromium, at the version pyproject pins."""
    import tomllib
    from importlib.metadata import version
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["test"]
    assert f"playwright=={version('playwright')}" in extras
    assert Path(CHROMIUM).resolve().is_relative_to("/usr") and sys.platform == "linux"


def test_the_report_of_every_recorded_result_opens_offline(browser, tmp_path):
    """The report of whatever `make reproduce` (or `redleaf-nb run`) recorded here, if
    anything: one figure per recorded experiment, every one of them loads offline."""
    recorded = [e for e in ex.discover() if (ex.results_dir(e) / f"{e}.json").exists()]
    if not recorded:
        pytest.skip("nothing recorded in data/results/: `make reproduce` has not run here")
    page, context, blocked = open_offline(browser, ex.report(out=tmp_path / "report.html"))
    loaded = figures_loaded(page)
    assert len(loaded) == len(recorded) and all(ok and alt for alt, ok in loaded), loaded
    assert not blocked, f"the report asked the network for {blocked}"
    context.close()
