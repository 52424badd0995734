"""Build small C programs and libraries with the system compiler: one build cache.

Everything C the toolkit runs (the Linux analogs' executables, the hashtable's C
reference and the DPDK/SPDK analogs as shared libraries for cffi) is built here,
once, into ``$REDLEAF_NB_CACHE/native/`` under a name keyed by the source's code
version (:mod:`redleaf_nb.codeversion`) and that of the headers beside it that it
includes, the compiler, the flags, what is built and the text of any generated
header.

C that drives a device model takes the register map from the same datasheet
module as the model and its Python driver (:func:`datasheet_headers`): a header
generated from the module at build time, so no constant is copied by hand and a
datasheet change rebuilds the library.
"""
from __future__ import annotations

import hashlib
import numbers
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

import numpy as np

from .codeversion import code_version


def cache_dir() -> Path:
    d = Path(os.environ.get("REDLEAF_NB_CACHE", Path.home() / ".cache" / "redleaf_nb")) / "native"
    d.mkdir(parents=True, exist_ok=True)
    return d


_LOCAL_INCLUDE = re.compile(rb'^[ \t]*#[ \t]*include[ \t]*"([^"]+)"', re.M)
_INT64 = (-(1 << 63), (1 << 63) - 1)


def datasheet_header(module: ModuleType) -> str:
    """The C header of a datasheet module: each public int constant as ``#define NAME
    value``; each public record dtype ``T`` as ``T_BYTES`` (its size) and ``T_FIELD_OFFSET``
    (each field's byte offset, the field name upper-cased)."""
    defines: dict[str, int] = {}

    def define(name: str, value: int) -> None:
        if name in defines and defines[name] != value:
            raise ValueError(f"{module.__name__}: {name} would be both {defines[name]} and "
                             f"{value} (a constant clashes with a dtype's size or offset)")
        defines[name] = value
    for name, value in vars(module).items():
        if name.startswith("_"):
            continue
        if isinstance(value, numbers.Integral):
            define(name, int(value))
        elif isinstance(value, np.dtype) and value.names:
            define(f"{name}_BYTES", value.itemsize)
            for field in value.names:
                define(f"{name}_{field.upper()}_OFFSET", value.fields[field][1])
    guard = module.__name__.upper().replace(".", "_") + "_H"
    lines = [f"/* Generated from {module.__name__} by redleaf_nb.native.datasheet_header: "
             "do not edit. */", f"#ifndef {guard}", f"#define {guard}"]
    for name, value in defines.items():
        if not _INT64[0] <= value <= _INT64[1]:
            raise ValueError(f"{module.__name__}.{name} = {value} does not fit in int64")
        lines.append(f"#define {name} {_c_literal(value)}")
    return "\n".join([*lines, "#endif", ""])


def _c_literal(value: int) -> str:
    """``value`` as a C integer literal of the type it needs (an int, else a long long)."""
    text = str(value) if -(1 << 31) < value < (1 << 31) else f"{value}LL"
    return f"({text})" if value < 0 else text


def datasheet_headers(*modules: ModuleType) -> dict[str, str]:
    """Generated headers for ``build_shared(headers=...)``, each named after its module:
    ``redleaf_nb.datasheets.nvme`` is ``#include "redleaf_nb/datasheets/nvme.h"``."""
    return {module.__name__.replace(".", "/") + ".h": datasheet_header(module)
            for module in modules}


def _local_headers(source: Path) -> list[Path]:
    """The headers beside ``source`` that it includes with quotes: their code is its own."""
    names = (n.decode() for n in _LOCAL_INCLUDE.findall(source.read_bytes()))
    return [source.parent / n for n in names if (source.parent / n).is_file()]


def _build(source: Path, flags: tuple[str, ...], kind: tuple[str, ...], suffix: str,
           headers: Mapping[str, str] | None = None) -> Path:
    """Compile ``source`` with gcc and ``flags`` plus the ``kind`` flags (what is built),
    ``headers`` (include name -> text) written to a directory on the include path; cached
    by a hash of all of them and the code version of the source and its local headers."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise RuntimeError(f"no C compiler found (gcc): install gcc to build {source.name}")
    headers = dict(headers or {})
    generated = tuple(f"{name}\0{text}" for name, text in sorted(headers.items()))
    key = b"\0".join(x.encode() for x in (code_version(source, *_local_headers(source)), cc,
                                           *flags, *kind, *generated))
    out = cache_dir() / f"{source.stem}-{hashlib.sha1(key).hexdigest()[:12]}{suffix}"
    if not out.exists():
        tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
        with tempfile.TemporaryDirectory(dir=cache_dir()) as include:
            for name, text in headers.items():
                path = Path(include, name)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            subprocess.run([cc, *flags, *kind, "-I", include, "-o", str(tmp), str(source)],
                           check=True)
        tmp.replace(out)   # atomic: concurrent builders never see half a file
    return out


def build_executable(source: Path, flags: tuple[str, ...] = ("-O2",)) -> Path:
    """An executable built from ``source`` (cached)."""
    return _build(source, flags, (), "")


def build_shared(source: Path, flags: tuple[str, ...] = ("-O2",),
                 headers: Mapping[str, str] | None = None) -> Path:
    """A shared library built from ``source`` (cached), for ``cffi.FFI().dlopen``;
    ``headers`` (e.g. :func:`datasheet_headers`) are generated on its include path."""
    return _build(source, flags, ("-shared", "-fPIC"), ".so", headers)
