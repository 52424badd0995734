"""The domains of a kernel as a graph: domains as nodes (coloured by state), and an
edge wherever one domain holds a proxy to another (a create argument: rv6 over its
disk driver), or a shadow guards a driver. Read from the kernel each time it is
drawn, so a crash or a restart shows at once."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from redleaf_nb.kernel.proxy import Proxy

STATE_COLOURS = {"alive": "#55a868", "crashed": "#c44e52", "terminated": "#8c8c8c"}


def edges(kernel) -> pd.DataFrame:
    """caller, callee, what the caller holds (a create argument, or ``guards``), the
    interface the edge speaks."""
    rows = []
    for d in kernel.domain_list():
        for arg, value in d.create_args.items():
            if isinstance(value, Proxy):
                callee = value.domain
                rows.append((d.name, callee.name, arg, callee.iface.__name__))
        target = getattr(d.impl, "target", None)
        if isinstance(target, str) and d.iface is not None:
            rows.append((d.name, target, "guards", d.iface.__name__))
    return pd.DataFrame(rows, columns=["caller", "callee", "via", "interface"])


def _depths(nodes: list[str], e: pd.DataFrame) -> dict[str, int]:
    """Each node's column: callers left of what they call (longest path from a root)."""
    depth = dict.fromkeys(nodes, 0)
    for _ in nodes:                      # at most len(nodes) rounds settle a DAG
        for caller, callee in zip(e.caller, e.callee):
            if callee in depth and depth.get(caller, 0) + 1 > depth[callee]:
                depth[callee] = depth[caller] + 1
    return depth


def draw(kernel, ax=None):
    """The graph, callers on the left: each node says its name, interface and state;
    each edge its interface and how the caller holds it."""
    doms = kernel.domains()
    doms = doms[doms.name != "init"]
    e = edges(kernel)
    depth = _depths(list(doms.name), e)
    column: dict[int, int] = {}
    pos = {}
    for name in doms.name:
        d = depth[name]
        pos[name] = (d, -column.get(d, 0))
        column[d] = column.get(d, 0) + 1
    if ax is None:
        _, ax = plt.subplots(figsize=(2.8 * (max(depth.values(), default=0) + 1) + 1, 1.6
                                      * max(column.values(), default=1) + 1))
    for caller, callee, via, iface in e.itertuples(index=False):
        if caller in pos and callee in pos:
            (x0, y0), (x1, y1) = pos[caller], pos[callee]
            ax.annotate("", (x1 - 0.28, y1), (x0 + 0.28, y0),
                        arrowprops=dict(arrowstyle="->", color="#444"))
            ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.12, f"{iface}\n({via})", ha="center",
                    fontsize=7, color="#444")
    for row in doms.itertuples():
        x, y = pos[row.name]
        ax.text(x, y, f"{row.name}\n{row.interface}\n{row.state}", ha="center", va="center",
                fontsize=8, bbox=dict(boxstyle="round", fc=STATE_COLOURS.get(row.state, "#ddd"),
                                      alpha=0.8))
    ax.set_xlim(-0.6, max(depth.values(), default=0) + 0.6)
    ax.set_ylim(-max(column.values(), default=1) + 0.4, 0.6)
    ax.axis("off")
    ax.set_title("Domains (state) and the proxies between them", fontsize=9)
    return ax.figure


def proxy_source(kernel, caller: str, callee: str, jit: bool = False) -> str:
    """The generated proxy the edge ``caller -> callee`` calls through."""
    row = edges(kernel).query("caller == @caller and callee == @callee")
    if row.empty:
        raise KeyError(f"no edge {caller} -> {callee} (edges: "
                       f"{', '.join(f'{a}->{b}' for a, b in zip(*[edges(kernel)[c] for c in ('caller', 'callee')]))})")
    return kernel.lookup(callee).domain.iface.proxy_source(jit=jit)
