"""The code version: one digest of the code that decides what the toolkit computes.

Every cache the toolkit keeps (numba's compiled functions, and results later) is
keyed by it, so that what a cache holds is thrown away exactly when the code it came
from changes, and not when only prose does. The code of a Python file is its syntax
tree without docstrings: comments, blank lines, docstrings and line numbers are not
code. Other files (C sources) count byte for byte.

A Python file's version also covers every module it imports that is not installed
(this checkout, generated proxies, a user's own modules), transitively: numba
compiles a function's callees into it, so a function is stale when code it reaches
in another file changes. Installed packages (numpy, numba) are versioned by their
version numbers, which the caches key on themselves.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import os
import site
import subprocess
import sys
import sysconfig
from importlib.machinery import PathFinder
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLKIT = ("redleaf_nb", "devices", "experiments")   # top-level packages of a checkout
SUFFIXES = (".py", ".c", ".h")                       # the files that hold code
_INSTALLED = tuple({str(Path(p).resolve()) for k, p in sysconfig.get_paths().items()
                    if k in ("stdlib", "platstdlib", "purelib", "platlib")}
                   | {str(Path(site.getusersitepackages()).resolve())})


def code_version(*paths: str | os.PathLike) -> str:
    """The digest of the code of ``paths`` and of every module they import,
    transitively; of every toolkit source (see :func:`toolkit_files`) when none is given."""
    todo = [str(Path(p).resolve()) for p in paths or toolkit_files()]
    digests: dict[str, str] = {}
    while todo:
        path = todo.pop()
        if path not in digests:
            st = os.stat(path)
            digests[path], imported = _read(path, (st.st_ino, st.st_size, st.st_mtime_ns,
                                                   st.st_ctime_ns))
            todo.extend(imported)
    h = hashlib.sha1()
    for label, digest in sorted((_label(p), d) for p, d in digests.items()):
        h.update(f"{label}\0{digest}\0".encode())
    return h.hexdigest()[:16]


def toolkit_files(root: Path = ROOT) -> list[Path]:
    """The sources of a checkout whose code decides results: the library, the device
    models and the experiments (with their C sources); not tests, notebooks or docs."""
    return sorted(p for top in TOOLKIT if (root / top).is_dir()
                  for p in (root / top).rglob("*") if p.suffix in SUFFIXES and p.is_file())


def uncommitted_changes(root: Path = ROOT) -> list[str] | None:
    """Toolkit files whose code differs from the commit checked out (a comment-only
    edit is no change); ``None`` when ``root`` is not a git checkout."""
    try:
        status = subprocess.run(["git", "status", "--porcelain", "-z", "--untracked-files=all",
                                 "--", *TOOLKIT], cwd=root, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    entries, changed = iter(status.decode().split("\0")), []
    for entry in entries:
        code, rel = entry[:2], entry[3:]
        if "R" in code or "C" in code:
            next(entries)                         # the name it was renamed or copied from
        if not rel.endswith(SUFFIXES):
            continue
        path = root / rel
        head = subprocess.run(["git", "show", f"HEAD:{rel}"], cwd=root, capture_output=True)
        if (head.returncode != 0 or not path.exists()
                or _digest(head.stdout, path.suffix) != _digest(path.read_bytes(), path.suffix)):
            changed.append(rel)
    return changed


def source_digest(text: str) -> str:
    """The digest of Python source text's code (a function's, say)."""
    return _digest(text.encode(), ".py")


def _digest(data: bytes, suffix: str) -> str:
    return hashlib.sha1(_python_code(data)[0] if suffix == ".py" else data).hexdigest()


def _python_code(data: bytes) -> tuple[bytes, list[ast.AST]]:
    """(the syntax tree without docstrings, dumped; the import statements), in one walk."""
    tree, imports = ast.parse(data), []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(node)
        elif isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                node.body = node.body[1:]
    return ast.dump(tree).encode(), imports


@functools.lru_cache(maxsize=None)
def _read(path: str, stat: tuple) -> tuple[str, tuple[str, ...]]:
    """(digest, files of the local modules it imports) of one file, read again
    whenever it changes on disk (``stat``: its inode, size and times, for the memo)."""
    data = Path(path).read_bytes()
    if not path.endswith(".py"):
        return _digest(data, ""), ()
    code, imports = _python_code(data)
    files = {f for name in _imported(imports, _package(Path(path))) if (f := _local_source(name))}
    files.discard(path)
    return hashlib.sha1(code).hexdigest(), tuple(sorted(files))


def _package(path: Path) -> str:
    """The dotted package a file lives in (its directories that hold ``__init__.py``)."""
    parts, d = [], path.parent
    while (d / "__init__.py").exists():
        parts.append(d.name)
        d = d.parent
    return ".".join(reversed(parts))


def _imported(imports: list[ast.AST], package: str):
    """Every module name these imports may bind (``from m import x``: m and m.x)."""
    for node in imports:
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*up, *([base] if base else [])])
            if base:
                yield base
                yield from (f"{base}.{a.name}" for a in node.names if a.name != "*")


def _local_source(name: str) -> str | None:
    """The source file of module ``name`` if it is a toolkit module or not installed
    (found as imported, or on the import path, without importing anything)."""
    spec, search = None, None
    for i, part in enumerate(parts := name.split(".")):
        sub = ".".join(parts[:i + 1])
        module = sys.modules.get(sub)
        spec = (getattr(module, "__spec__", None) if module is not None
                else PathFinder.find_spec(sub, search))
        if spec is None:
            return None
        search = spec.submodule_search_locations
        if search is None and i + 1 < len(parts):
            return None
    origin = spec.origin if spec.has_location else None
    if not origin or not origin.endswith(".py"):
        return None
    origin = str(Path(origin).resolve())
    if parts[0] in TOOLKIT or not origin.startswith(_INSTALLED):
        return origin
    return None


def _label(path: str) -> str:
    """A file's name in a digest: relative to the checkout, so equal checkouts agree."""
    p = Path(path)
    return p.relative_to(ROOT).as_posix() if p.is_relative_to(ROOT) else path
