"""The arrows between the project's rooms go one way (docs/ARCHITECTURE.md)."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def project_imports(path: Path) -> set[str]:
    """The project modules a file imports (absolute names; relative ones resolved)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            out |= {base} | {f"{base}.{a.name}" for a in node.names}
    return {m for m in out if m.split(".")[0] in ("redleaf_nb", "devices", "experiments")}


def files(room: str):
    return sorted((ROOT / room).rglob("*.py"))


@pytest.mark.parametrize("room, allowed", [
    ("redleaf_nb/lowlevel", ("redleaf_nb.lowlevel",)),
    ("redleaf_nb/datasheets", ("redleaf_nb.datasheets",)),
    ("devices", ("devices", "redleaf_nb.lowlevel", "redleaf_nb.datasheets")),
    ("redleaf_nb/drivers", ("redleaf_nb.drivers", "redleaf_nb.interfaces", "redleaf_nb.datasheets",
                            "redleaf_nb.kernel.views")),
    ("redleaf_nb/kernel", ("redleaf_nb.kernel", "redleaf_nb.lowlevel", "redleaf_nb._numba_cache",
                           "redleaf_nb.codeversion")),
])
def test_a_room_imports_only_what_is_below_it(room, allowed):
    bad = {f"{p.relative_to(ROOT)}: {m}" for p in files(room) for m in project_imports(p)
           if not m.startswith(allowed)}
    assert not bad, f"{room} imports above itself: {sorted(bad)}"


def test_the_import_reader_sees_relative_and_absolute_imports(tmp_path):
    """The reader above must be able to find an offending import, or the test proves nothing."""
    probe = ROOT / "devices" / "_probe_for_test.py"
    probe.write_text("from redleaf_nb.kernel import heap\nfrom .nic import NIC\n")
    try:
        assert project_imports(probe) >= {"redleaf_nb.kernel.heap", "devices.nic.NIC"}
    finally:
        probe.unlink()
