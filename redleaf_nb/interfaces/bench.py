"""The interface of the cross-domain call benchmark (RedLeaf's dom_c / dom_d test)."""
from __future__ import annotations

from redleaf_nb.kernel.idl import Interface, create
from redleaf_nb.kernel.rref import RRef
from redleaf_nb.kernel.types import u64


class Bench(Interface):
    """Calls that do (almost) nothing, so a call's cost is the crossing's."""

    def null(self) -> None:
        """An empty call: the cost of crossing into the domain and back."""

    def one_rref(self, x: RRef[u64]) -> RRef[u64]:
        """Increment the value behind ``x`` (moved in) and hand it back."""

    @create
    def create_bench(self) -> Bench:
        """Start a benchmark callee domain."""
