"""Notebook widgets. The science never lives here: every figure is an experiment's
plain function (parameters in, a tidy DataFrame and a figure out); a widget only
calls it. :class:`~redleaf_nb.widgets.forms.ParamForm` builds an experiment's form
from its own ``Param``s."""
from .forms import ParamForm, control

__all__ = ["ParamForm", "control"]
