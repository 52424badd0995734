"""The exchange heap as a picture that moves: a snapshot of who owns what after each
step a notebook takes (a call that moves an RRef in and back, a borrow, a crash and
its reclaim), read from the kernel's own accounting, never kept on the side."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd


class HeapTimeline:
    """Snapshots of ``kernel``'s exchange heap: per step, each domain's state and the
    objects and bytes it owns, and the borrows outstanding."""

    def __init__(self, kernel):
        self.kernel = kernel
        self.rows: list[dict] = []
        self.steps: list[str] = []

    def snap(self, label: str) -> pd.DataFrame:
        """Record the heap now, after the step ``label``: this step's rows."""
        heap = self.kernel.heap
        borrows = int(heap.objects().borrows.sum())
        step = len(self.steps)
        self.steps.append(label)
        rows = [{"step": step, "label": label, "domain": d.name, "state": d.state,
                 "objects": int(d.objects), "bytes": int(d.bytes), "borrows": borrows}
                for d in self.kernel.domains().itertuples()]
        self.rows += rows
        return pd.DataFrame(rows)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    def figure(self):
        """Objects per owner at each step (stacked bars), the borrows outstanding, and
        each domain's state where it changed."""
        df = self.table()
        fig, (ax, states) = plt.subplots(2, 1, figsize=(9, 5), sharex=True,
                                         gridspec_kw={"height_ratios": [3, 1]})
        counts = df.pivot_table(index="step", columns="domain", values="objects",
                                aggfunc="sum", fill_value=0)
        bottom = None
        for domain in counts.columns:
            ax.bar(counts.index, counts[domain], bottom=bottom, label=domain)
            bottom = counts[domain] if bottom is None else bottom + counts[domain]
        borrows = df.groupby("step").borrows.first()
        ax.plot(borrows.index, borrows.values, "k--", marker="o", label="borrows outstanding")
        ax.set_ylabel("exchange-heap objects")
        ax.legend(fontsize=8, ncol=3)
        ax.set_title("Who owns the exchange heap, step by step")
        for i, (domain, g) in enumerate(df.groupby("domain", sort=False)):
            states.scatter(g.step, [i] * len(g), c=["#c44e52" if s != "alive" else "#55a868"
                                                   for s in g.state], s=30)
        states.set_yticks(range(df.domain.nunique()), list(df.domain.unique()), fontsize=8)
        states.set_ylabel("alive (green)\nor not (red)", fontsize=8)
        states.set_xticks(range(len(self.steps)), self.steps, rotation=30, ha="right",
                          fontsize=8)
        fig.tight_layout()
        return fig
