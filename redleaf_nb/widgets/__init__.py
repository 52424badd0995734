"""Notebook widgets. The science never lives here: every figure is an experiment's
plain function (parameters in, a tidy DataFrame and a figure out); a widget only
calls it. :class:`~redleaf_nb.widgets.forms.ParamForm` builds an experiment's form
from its own ``Param``s; :class:`~redleaf_nb.widgets.heap_view.HeapTimeline` pictures
the exchange heap's ownership step by step; :mod:`.builder` (a storage stack built from
parts, then called and crashed) and :mod:`.fault_lab` (faults armed in a driver, and the
recovery on the kernel's event log) are the lab notebook's forms."""
from . import domain_graph
from .forms import ParamForm, control
from .heap_view import HeapTimeline

__all__ = ["HeapTimeline", "ParamForm", "control", "domain_graph"]
