"""Numba's on-disk cache, keyed by everything that decides the machine code.

Numba keys a cached function by its signature, the CPU and its bytecode, under a
stamp of its own file's text. That misses what this module adds:

* **compile flags.** A function's options (``boundscheck``, ``fastmath``,
  ``error_model``, its ``locals``...) and numba's global settings
  (``NUMBA_BOUNDSCHECK``, ``NUMBA_OPT``, the target CPU...) are in the key, so a
  checked function never loads unchecked code. The global settings, with numba's
  version, also name the cache folder, so runs with other settings keep apart.
* **other files.** Numba compiles a function's callees into it, but its own file's
  stamp does not change when a callee in another file does. Here the stamp is the
  code version of the function's file (:mod:`redleaf_nb.codeversion`): its code and
  the code of every local module it imports, comments and docstrings excluded. An
  edit to a callee recompiles its callers; an edit to prose recompiles nothing.
* **line numbers.** Numba names a function's cache file after its first line, so a
  line added above recompiled it; here the function's own code is in the key instead.
* **data files of two code versions.** numba numbers data files, the same numbers for
  every version of a function's code, and writes the index before the data: two
  processes on different code saving at once could pair the new index with the old
  data. Here a data file's name carries the stamp of the code in it.
* **entries naming code that is gone.** A function that takes another jitted
  function as an argument (a benchmark loop handed a generated proxy) has index
  entries that name that function's module; once the module is regenerated under
  another name, numba's index no longer unpickles and the call fails. Here such
  an index is a miss: the function compiles again and the index is rewritten.

The cache lives in ``$REDLEAF_NB_CACHE/numba/<numba version>-<settings digest>/``
(``NUMBA_CACHE_DIR``, if set, is used as is). Each process holds a shared lock on
its folder; other folders are pruned, keeping the most recently used few, and only
under an exclusive lock, so a folder a running process uses is never deleted.

This subclasses numba's non-public caching classes: pyproject.toml pins the numba
versions it is tested with, and tests/test_numba_cache.py fails if they move.
"""
from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import pickle
import shutil
from pathlib import Path
from types import CodeType

import llvmlite.binding as llvm
import numba
from numba.core import caching, config
from numba.core.dispatcher import Dispatcher

from .codeversion import code_version

KEEP = 3            # cache folders kept when pruning (the one in use always is)
LOCK = "in-use.lock"
#: numba settings that change the code it generates
SETTINGS = ("BOUNDSCHECK", "OPT", "CPU_NAME", "CPU_FEATURES", "ENABLE_AVX", "LOOP_VECTORIZE",
            "SLP_VECTORIZE", "DISABLE_INTEL_SVML", "DEBUGINFO_DEFAULT", "ENABLE_PROFILING",
            "EXTEND_VARIABLE_LIFETIMES", "DEBUG_NRT", "NRT_STATS")

_folder: Path | None = None
_held: int | None = None     # the descriptor of the lock held on _folder


def settings() -> str:
    """numba's version, its code-changing settings as they are now, and the host CPU."""
    return repr((numba.__version__, [(name, str(getattr(config, name))) for name in SETTINGS],
                 _host_cpu()))


@functools.cache
def _host_cpu() -> tuple[str, str]:
    return llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()


def folder() -> Path:
    """The folder numba's cache uses in this process."""
    if _folder is None:
        raise RuntimeError("redleaf_nb._numba_cache.configure() has not run")
    return _folder


def configure() -> None:
    """Choose and lock this process's cache folder, prune others, key numba's cache.
    Run once, before anything is jitted (``redleaf_nb`` does, on import)."""
    global _folder, _held
    if _folder is not None:
        return
    base = Path(os.environ.get("REDLEAF_NB_CACHE", Path.home() / ".cache" / "redleaf_nb"))
    digest = hashlib.sha1(settings().encode()).hexdigest()[:12]
    _folder = Path(config.CACHE_DIR or base / "numba" / f"{numba.__version__}-{digest}")
    _held = hold(_folder)
    if not config.CACHE_DIR:     # prune our folders only, never near one the user chose
        prune(_folder.parent)
    Dispatcher.enable_caching = _enable_caching


# ---- numba's cache, keyed ------------------------------------------------------------

try:
    _LocatorBase = (caching._SourceFileBackedLocatorMixin, caching._CacheLocator)
    _FALLBACK_LOCATORS = caching.CompileResultCacheImpl._locator_classes
    _index_key = caching.FunctionCache._index_key
except AttributeError as e:   # numba moved its non-public cache API
    raise ImportError(f"redleaf_nb keys numba's cache through numba.core.caching, whose "
                      f"non-public API differs in numba {numba.__version__} ({e}); use the "
                      "numba versions pyproject.toml names") from e


class Locator(*_LocatorBase):
    """Where a function's cache files live (this process's folder), and their stamp:
    the code version of the function's file."""

    def __init__(self, py_func, py_file):
        self._py_file = py_file
        self._cache_path = str(folder() / self.get_suitable_cache_subpath(py_file))

    def get_cache_path(self):
        return self._cache_path

    def get_source_stamp(self):
        return code_version(self._py_file)

    def get_disambiguator(self):
        return "code"    # not the line number: the index key holds the function's code


class _Impl(caching.CompileResultCacheImpl):
    # a function with no file (a notebook cell) is left to numba's own locators
    _locator_classes = [Locator, *_FALLBACK_LOCATORS]


class _Index(caching.IndexDataCacheFile):
    """numba's index file, where an index that names code no longer importable is empty,
    and whose data files are named by the stamp of the code they hold.

    numba names data files by number alone and writes the index before the data, so two
    processes of different code saving one function at once could leave the index of the
    new code pointing at a data file of the old (found when a test run still on old code
    overlapped a run on new code: every later process loaded the stale proxy)."""

    def _data_name(self, number):
        tag = hashlib.sha1(repr(self._source_stamp).encode()).hexdigest()[:12]
        return self._data_name_pattern.format(number=number)[:-len(".nbc")] + f".{tag}.nbc"

    def _load_index(self):
        try:
            return super()._load_index()
        except (ImportError, AttributeError, pickle.UnpicklingError, EOFError):
            return {}


class KeyedCache(caching.FunctionCache):
    """numba's function cache, with the function's code and every compile flag in the key."""

    _impl_class = _Impl

    def __init__(self, dispatcher):
        self._options = _stable((dispatcher.targetoptions, dispatcher.locals))
        super().__init__(dispatcher.py_func)
        self._cache_file.__class__ = _Index

    def _index_key(self, sig, codegen):
        return (_index_key(self, sig, codegen), _function_code(self._py_func), self._options,
                settings())


def _enable_caching(self):
    self._cache = KeyedCache(self)


def _function_code(py_func) -> str:
    """A digest of a function's code object (constants and names too, not only the
    bytecode as numba keys; not its docstring or line numbers)."""
    code = py_func.__code__
    consts = code.co_consts
    if py_func.__doc__ is not None and consts[:1] == (py_func.__doc__,):
        consts = consts[1:]
    return hashlib.sha1(repr(_code_parts(code, consts)).encode()).hexdigest()


def _code_parts(code: CodeType, consts: tuple) -> tuple:
    return (code.co_code, tuple(_stable(c) for c in consts), code.co_names, code.co_varnames,
            code.co_freevars, code.co_cellvars, code.co_argcount, code.co_posonlyargcount,
            code.co_kwonlyargcount, code.co_flags)


def _stable(value):
    """``value`` in a form whose repr is the same in every process (sets sorted)."""
    if isinstance(value, CodeType):
        return _code_parts(value, value.co_consts)
    if isinstance(value, dict):
        return tuple(sorted((repr(k), _stable(v)) for k, v in value.items()))
    if isinstance(value, (set, frozenset)):
        return tuple(sorted(repr(_stable(v)) for v in value))
    if isinstance(value, (tuple, list)):
        return tuple(_stable(v) for v in value)
    return repr(value)


# ---- folders: held while in use, pruned when stale -----------------------------------

def hold(path: Path) -> int:
    """Take a shared lock on a cache folder for as long as the returned descriptor is
    open (this process's life), and mark the folder used now."""
    while True:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_SH)
        try:
            if os.fstat(fd).st_ino == os.stat(path / LOCK).st_ino:
                os.utime(path)
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)     # a pruner deleted the folder while we waited: make it again


def prune(base: Path, keep: int = KEEP) -> list[Path]:
    """Delete the cache folders under ``base`` but the ``keep`` most recently used,
    skipping any a process holds. Returns the folders deleted."""
    for trash in base.glob(".*.deleting"):      # left by a pruner that was killed
        shutil.rmtree(trash, ignore_errors=True)
    folders = sorted((d for d in base.iterdir() if d.is_dir() and not d.name.startswith(".")),
                     key=lambda d: d.stat().st_mtime, reverse=True)
    deleted = []
    for d in folders[keep:]:
        try:
            fd = os.open(d / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            continue    # gone already
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue    # in use
        try:
            trash = d.with_name(f".{d.name}.{os.getpid()}.deleting")
            d.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
            deleted.append(d)
        finally:
            os.close(fd)
    return deleted
