"""Build small C programs and libraries with the system compiler: one build cache.

Everything C the toolkit runs (the Linux analogs' executables, the hashtable's C
reference as a shared library for cffi) is built here, once, into
``$REDLEAF_NB_CACHE/native/`` under a name keyed by the source's code version
(:mod:`redleaf_nb.codeversion`), the compiler, the flags and what is built.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from .codeversion import code_version


def cache_dir() -> Path:
    d = Path(os.environ.get("REDLEAF_NB_CACHE", Path.home() / ".cache" / "redleaf_nb")) / "native"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _build(source: Path, flags: tuple[str, ...], kind: tuple[str, ...], suffix: str) -> Path:
    """Compile ``source`` with gcc and ``flags`` plus the ``kind`` flags (what is built),
    cached by a hash of all of them and the source's code version."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise RuntimeError(f"no C compiler found (gcc): install gcc to build {source.name}")
    key = b"\0".join(x.encode() for x in (code_version(source), cc, *flags, *kind))
    out = cache_dir() / f"{source.stem}-{hashlib.sha1(key).hexdigest()[:12]}{suffix}"
    if not out.exists():
        tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
        subprocess.run([cc, *flags, *kind, "-o", str(tmp), str(source)], check=True)
        tmp.replace(out)   # atomic: concurrent builders never see half a file
    return out


def build_executable(source: Path, flags: tuple[str, ...] = ("-O2",)) -> Path:
    """An executable built from ``source`` (cached)."""
    return _build(source, flags, (), "")


def build_shared(source: Path, flags: tuple[str, ...] = ("-O2",)) -> Path:
    """A shared library built from ``source`` (cached), for ``cffi.FFI().dlopen``."""
    return _build(source, flags, ("-shared", "-fPIC"), ".so")
