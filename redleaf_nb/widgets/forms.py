"""A parameter form built from an experiment's own ``Param`` s: each control's type,
range and choices are the parameter's (so no notebook copies a form or lets a
slider's range drift from what the experiment accepts), and a Run button calls the
experiment with the values, checked by :meth:`Experiment.resolve` as any caller's;
Export writes the last run's figure and table to files, for a paper or a colleague.

Results go into the form's ``Output`` from the kernel (``append_display_data``), not
through ``with out:``: a headless runner (nbclient, in the tests) answers each output
captured by ``with out:`` with a message back, and that race can stall a cell.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Callable

import ipywidgets as widgets
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from redleaf_nb.experiments import Experiment, Param, ParamError, paper, repo_root

SLIDER_STEPS = 4096   # an int range wider than this gets a bounded text box, not a slider


def control(p: Param, value) -> widgets.Widget:
    """The widget for one parameter, set to ``value``; its limits are the parameter's."""
    common = dict(value=value, description=p.name, tooltip=f"{p.help} ({p.valid()})",
                  style={"description_width": "initial"})
    if p.type is bool:
        return widgets.Checkbox(**common)
    if p.choices is not None:
        return widgets.Dropdown(options=list(p.choices), **common)
    bounded = p.low is not None and p.high is not None
    if p.type is int:
        if bounded and p.high - p.low <= SLIDER_STEPS:
            return widgets.IntSlider(min=p.low, max=p.high, continuous_update=False, **common)
        if bounded:
            return widgets.BoundedIntText(min=p.low, max=p.high, **common)
        return widgets.IntText(**common)
    if bounded:
        return widgets.BoundedFloatText(min=p.low, max=p.high, step=(p.high - p.low) / 1000,
                                        **common)
    return widgets.FloatText(**common)


class ParamForm:
    """A form for ``exp``: its parameters at the quick setting, with ``values`` in place
    of some; Run calls ``exp.run`` and shows ``show(table)`` (by default the
    experiment's summary, its figure and its targets). :attr:`widget` is what to
    display; :meth:`run` and :meth:`export` are what the buttons call (a notebook may
    call them too)."""

    def __init__(self, exp: Experiment, values: dict | None = None,
                 show: Callable | None = None, columns: int = 3):
        self.exp = exp
        start = exp.resolve(**(values or {}))
        self.controls = {p.name: control(p, start[p.name]) for p in exp.params}
        self.button = widgets.Button(description=f"Run {exp.figure}", button_style="primary")
        self.export_button = widgets.Button(
            description="Export", disabled=True, tooltip="the last run's figure (PNG, PDF) "
            "and table (CSV), into data/results/notebook-exports/")
        self.out = widgets.Output()
        self.table = None
        self.ran_at = None    # when the last run ended (UTC): its exports' name
        self.figure = None    # the last run's: the first Figure among what show returned
        self._show = show or self._default_show
        self.button.on_click(self.run)
        self.export_button.on_click(lambda _: self.export())
        grid = widgets.GridBox(list(self.controls.values()), layout=widgets.Layout(
            grid_template_columns=f"repeat({columns}, 1fr)"))
        self.widget = widgets.VBox([grid, widgets.HBox([self.button, self.export_button]),
                                    self.out])

    def values(self) -> dict:
        return {name: c.value for name, c in self.controls.items()}

    def _default_show(self, table) -> list:
        fig = self.exp.plot(table, paper(self.exp))
        plt.close(fig)   # shown in the form's output only
        shown = [self.exp.summary(table) if self.exp.summary else table, fig]
        if self.exp.targets is not None:
            shown.append(self.exp.targets(table))
        return shown

    def run(self, _=None):
        """Run the experiment with the form's values: its table (None if a value was
        refused: the reason is shown)."""
        self.out.outputs = ()
        try:
            params = self.exp.resolve(**self.values())
        except ParamError as e:
            self.out.append_stdout(f"{e}\n")
            return None
        self.button.disabled = True
        try:
            self.table = self.exp.run(params)
        finally:
            self.button.disabled = False
        self.ran_at = dt.datetime.now(dt.timezone.utc)
        shown = self._show(self.table)
        self.figure = next((obj for obj in shown if isinstance(obj, Figure)), None)
        self.export_button.disabled = False
        for obj in shown:
            self.out.append_display_data(obj)
        return self.table

    def export(self, directory: Path | None = None) -> list[Path]:
        """Write the last run's figure (PNG at 150 dpi, PDF) and table (CSV) into
        ``directory`` (default ``data/results/notebook-exports/<experiment>/``), named by
        the experiment and the UTC time the run ended (one run, one name); the paths
        written, also shown in the form."""
        if self.table is None:
            raise RuntimeError(f"ParamForm({self.exp.name}).export: no run to export yet "
                               "(press Run first)")
        directory = Path(directory or repo_root() / "data" / "results" / "notebook-exports"
                         / self.exp.name)
        directory.mkdir(parents=True, exist_ok=True)
        stem = directory / f"{self.exp.name}-{self.ran_at:%Y%m%dT%H%M%S%fZ}"
        written = []
        if self.figure is not None:
            for suffix, dpi in ((".png", 150), (".pdf", None)):
                self.figure.savefig(stem.with_suffix(suffix), dpi=dpi, bbox_inches="tight")
                written.append(stem.with_suffix(suffix))
        self.table.to_csv(stem.with_suffix(".csv"), index=False)
        written.append(stem.with_suffix(".csv"))
        self.out.append_stdout("exported " + ", ".join(map(str, written)) + "\n")
        return written
