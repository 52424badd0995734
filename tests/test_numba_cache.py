"""Numba's on-disk cache (redleaf_nb/_numba_cache.py): keyed by every compile flag and by
the code of what a function reaches, and its folders never deleted while in use.

Each scenario runs fresh Python processes on one cache, as runs on a machine do."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numba
from numba.core import caching

import redleaf_nb
from redleaf_nb import _numba_cache
from redleaf_nb.kernel import heap

ROOT = Path(__file__).resolve().parents[1]

# One body, compiled twice: with and without bounds checks.
WRAPPERS = '''
from numba import njit
import redleaf_nb  # keys numba's cache

def get(a, i):
    return a[i]

unchecked = njit(cache=True, boundscheck=False)(get)
checked = njit(cache=True, boundscheck=True)(get)
'''

# Calls the named wrappers on an 8-element view of a 16-element array, index 12: a
# checked read refuses, an unchecked one reads 12 (from beyond the view).
CALL = '''
import sys
import numpy as np
import wrappers
from redleaf_nb import _numba_cache
view = np.arange(16)[:8]
print(_numba_cache.folder())
for name in sys.argv[1:]:
    fn = getattr(wrappers, name)
    try:
        out = fn(view, 12)
    except IndexError:
        out = "IndexError"
    print(name, out, "hit" if fn.stats.cache_hits else "compiled")
'''


def run(tmp_path, code, *args, **env):
    """Run ``code`` in a fresh process on the cache under ``tmp_path``: (folder, lines)."""
    environ = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}",
               "REDLEAF_NB_CACHE": str(tmp_path / "cache"), **env}
    for name in {"NUMBA_CACHE_DIR", "NUMBA_BOUNDSCHECK"} - set(env):
        environ.pop(name, None)
    r = subprocess.run([sys.executable, "-c", code, *args], cwd=tmp_path, env=environ,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    folder, *lines = r.stdout.splitlines()
    return folder, lines


def test_a_checked_function_never_loads_unchecked_code_in_either_order(tmp_path):
    (tmp_path / "wrappers.py").write_text(WRAPPERS)
    _, cold = run(tmp_path, CALL, "unchecked", "checked")
    assert cold == ["unchecked 12 compiled", "checked IndexError compiled"]
    _, warm = run(tmp_path, CALL, "checked", "unchecked")
    assert warm == ["checked IndexError hit", "unchecked 12 hit"]


def test_numba_boundscheck_0_gets_its_own_cache_and_never_poisons_the_normal_one(tmp_path):
    (tmp_path / "wrappers.py").write_text(WRAPPERS)
    off, lines = run(tmp_path, CALL, "checked", NUMBA_BOUNDSCHECK="0")
    assert lines == ["checked 12 compiled"]      # the global switch overrides the function's
    normal, lines = run(tmp_path, CALL, "checked")
    assert lines == ["checked IndexError compiled"] and normal != off
    mine = tmp_path / "mine"
    assert run(tmp_path, CALL, NUMBA_CACHE_DIR=str(mine))[0] == str(mine)   # respected as set


LIB = '''
from numba import njit

@njit(cache=True)
def g():
    return 1
'''

USER = '''
from numba import njit
import redleaf_nb  # keys numba's cache
from lib import g

@njit(cache=True)
def f():
    return g()
'''

CALL_F = '''
import user
from redleaf_nb import _numba_cache
print(_numba_cache.folder())
print(user.f(), "hit" if user.f.stats.cache_hits else "compiled")
'''


def test_an_edit_to_a_callee_in_another_file_recompiles_and_prose_edits_recompile_nothing(
        tmp_path):
    lib, user = tmp_path / "lib.py", tmp_path / "user.py"
    lib.write_text(LIB)
    user.write_text(USER)
    assert run(tmp_path, CALL_F)[1] == ["1 compiled"]
    assert run(tmp_path, CALL_F)[1] == ["1 hit"]
    lib.write_text(LIB.replace("return 1", "return 2"))        # f's own file is unchanged
    assert run(tmp_path, CALL_F)[1] == ["2 compiled"]
    lib.write_text(LIB.replace("return 1", "return 2").replace(
        "def g():", 'def g():\n    """Two, now."""  # a docstring and a comment'))
    user.write_text("# lines above f move it down\n\n" + USER)
    assert run(tmp_path, CALL_F)[1] == ["2 hit"]


def test_two_code_versions_saving_at_once_never_pair_an_index_with_the_others_data(tmp_path):
    """numba writes the index, then the data: a process on old code writing its data last
    must not overwrite the data the new code's index names."""
    old, new = (_numba_cache._Index(str(tmp_path), "f-code", stamp) for stamp in ("v1", "v2"))
    new.save("key", "compiled from v2")
    old._save_data(old._data_name(1), "compiled from v1")    # the old process's late write
    assert new.load("key") == "compiled from v2"


TWINS = '''
from numba import njit
import redleaf_nb  # keys numba's cache

@njit(cache=True)
def f():
    return 1

one = f

@njit(cache=True)
def f():
    return 2

two = f
'''

CALL_TWINS = '''
import twins
from redleaf_nb import _numba_cache
print(_numba_cache.folder())
print(twins.one(), twins.two(), len(twins.one.stats.cache_hits) + len(twins.two.stats.cache_hits))
'''


def test_two_functions_of_one_name_in_one_file_keep_apart(tmp_path):
    """Their bytecode is the same (only a constant differs) and the cache files are not
    named by line: the function's code in the key tells them apart."""
    (tmp_path / "twins.py").write_text(TWINS)
    assert run(tmp_path, CALL_TWINS)[1] == ["1 2 0"]
    assert run(tmp_path, CALL_TWINS)[1] == ["1 2 2"]


# A cached loop handed a jitted function from a generated module (named by its code),
# as a benchmark loop is handed a generated proxy.
APPLY = '''
from numba import njit
import redleaf_nb  # keys numba's cache

@njit(cache=True)
def apply(fn, x):
    return fn(x)
'''

CALL_APPLY = '''
import sys
import apply
from redleaf_nb import _numba_cache
from redleaf_nb.kernel.codegen import load_generated
print(_numba_cache.folder())
from numba import njit
mod = load_generated("gen", "def f(x):\\n    return x + %s\\n" % sys.argv[1])
print(apply.apply(njit("int64(int64)", cache=True)(mod.f), 20))   # as idl.py compiles
'''


def test_an_entry_naming_a_module_that_is_gone_is_a_miss_not_a_crash(tmp_path):
    """Regenerated code gets a module of another name, and the index entries that name
    the old one no longer unpickle: the loop compiles again instead of failing."""
    (tmp_path / "apply.py").write_text(APPLY)
    assert run(tmp_path, CALL_APPLY, "1")[1] == ["21"]
    assert run(tmp_path, CALL_APPLY, "2")[1] == ["22"]
    assert run(tmp_path, CALL_APPLY, "2")[1] == ["22"]


HOLD = '''
import sys
from redleaf_nb import _numba_cache
print(_numba_cache.folder(), flush=True)
sys.stdin.read()
'''


def test_pruning_keeps_the_newest_folders_and_any_a_running_process_holds(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REDLEAF_NB_CACHE": str(tmp_path)}
    env.pop("NUMBA_CACHE_DIR", None)
    holder = subprocess.Popen([sys.executable, "-c", HOLD], env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        held = Path(holder.stdout.readline().strip())
        base = held.parent
        os.utime(held, (0, 0))                           # the least recently used folder
        others = [base / f"0.0-{i}" for i in range(3)]
        for i, d in enumerate(others):
            d.mkdir()
            os.utime(d, (10 + i, 10 + i))
        assert sorted(_numba_cache.prune(base, keep=1)) == others[:2]
        assert held.is_dir() and others[2].is_dir()
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert _numba_cache.prune(base, keep=1) == [held]   # released when the process ended


def test_numba_is_a_version_the_cache_is_tested_with_and_its_cache_api_is_the_one_used():
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    low, high = re.fullmatch(r"numba>=([\d.]+),<([\d.]+)", next(
        p for p in pins if p.startswith("numba"))).groups()
    version = tuple(int(x) for x in numba.__version__.split(".")[:2])
    assert tuple(map(int, low.split("."))) <= version < tuple(map(int, high.split("."))), (
        f"numba {numba.__version__} is outside the range redleaf_nb's cache is tested with")
    cache = heap.alloc._cache
    assert isinstance(cache, _numba_cache.KeyedCache), "numba no longer calls enable_caching"
    assert isinstance(cache._impl.locator, _numba_cache.Locator)
    assert isinstance(cache, caching.FunctionCache)
    assert cache.cache_path.startswith(str(_numba_cache.folder()))
    assert redleaf_nb.__file__.startswith(str(ROOT))
