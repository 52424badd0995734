"""The domain safety checker (kernel/checker.py): one test per refusal, and every
domain in the repository passes."""
import ctypes
import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest
from numba import carray, cfunc, farray, njit, objmode

import redleaf_nb.kernel.heap as heap_module
from redleaf_nb import Interface, Kernel, create, u32
from redleaf_nb.kernel import checker, views
from redleaf_nb.kernel.checker import DomainSafetyError
from redleaf_nb.kernel.proxy import jit_current
from redleaf_nb.kernel.shadow import restart_driver
from redleaf_nb.lowlevel.memory import load, pointer

ROOT = Path(__file__).resolve().parents[1]


class Probe(Interface):
    def get(self, x: u32) -> u32: ...

    @create
    def make(self) -> "Probe": ...


class PyProbe(Probe):
    def get(self, x):
        return x

    def make(self):
        pass


def domain_with(fn, name="get"):
    """Declare a domain class whose jitted ``get`` is ``fn``."""
    return type("BadProbe", (PyProbe,), {"jit_methods": {name: fn}})


def refused(fn, *words, name="get"):
    with pytest.raises(DomainSafetyError) as e:
        domain_with(fn, name)
    for w in words:
        assert w in str(e.value), str(e.value)
    return str(e.value)


@njit(boundscheck=True)
def safe_get(k, state, x):
    return x + np.uint32(1)


def test_a_safe_domain_is_accepted_and_runs():
    cls = domain_with(safe_get)
    k = Kernel(heap_bytes=1 << 12, max_objects=8)
    assert k.jit_call(k.create("p", cls), "get", 41) == (0, 42)


def test_compiled_without_bounds_checking_is_refused():
    msg = refused(njit(lambda k, state, x: x), "without bounds checking",
                  "boundscheck=True")
    assert "test_checker" in msg and "line" in msg   # names the module and line


def test_inline_always_is_refused_on_an_entry_point():
    refused(njit(boundscheck=True, inline="always")(safe_get.py_func),
            "inline='always' on a domain entry point")


@njit(boundscheck=True, inline="always")
def _inlined_get(a, i):
    return a[i]


@njit(boundscheck=False, inline="always")
def _inlined_get_unchecked(a, i):
    return a[i]


def test_an_inlined_helper_is_accepted_and_keeps_its_callers_bounds_checks():
    """A helper inlined into a domain function is compiled with the caller's bounds
    checks (even one that asks for none): an index out of range is still a panic."""
    @njit(boundscheck=True)
    def get(k, state, x):
        return np.uint32(_inlined_get(np.arange(4, dtype=np.uint32), x))
    domain_with(get, "get")                       # accepted
    with pytest.raises(IndexError):
        get(0, 0, np.uint32(10))

    @njit(boundscheck=True)
    def get_via_unchecked(k, state, x):
        return np.uint32(_inlined_get_unchecked(np.arange(4, dtype=np.uint32), x))
    with pytest.raises(IndexError):               # the caller's checks, not its own
        get_via_unchecked(0, 0, np.uint32(10))
    refused(get_via_unchecked, "without bounds checking")   # still refused: say it
    cost_model = njit(boundscheck=True, inline=lambda *a: True)(lambda a, i: a[i])

    @njit(boundscheck=True)
    def get_via_cost_model(k, state, x):
        return np.uint32(cost_model(np.arange(4, dtype=np.uint32), x))
    refused(get_via_cost_model, "a cost model decides")


def test_objmode_is_refused():
    @njit(boundscheck=True)
    def get(k, state, x):
        with objmode(y="uint32"):
            y = x
        return y
    refused(get, "objmode")


def test_cfunc_is_refused():
    @njit(boundscheck=True)
    def get(k, state, x):
        cfunc("int64(int64)")
        return x
    refused(get, "cfunc")


@pytest.mark.parametrize("maker", [carray, farray])
def test_arrays_from_raw_pointers_are_refused(maker):
    @njit(boundscheck=True)
    def get(k, state, x):
        return maker(pointer(k, np.uint32), (1,))[0]
    refused(get, "raw pointer")


def test_ctypes_is_refused():
    @njit(boundscheck=True)
    def get(k, state, x):
        ctypes.c_void_p(k)
        return x
    refused(get, "ctypes")


def test_a_numba_intrinsic_is_refused():
    @njit(boundscheck=True)
    def get(k, state, x):
        return np.uint32(load(state, 0))
    refused(get, "load", "intrinsic")


def test_the_trusted_layer_through_a_module_alias_is_refused():
    @njit(boundscheck=True)
    def get(k, state, x):
        return np.uint32(heap_module.addressed_view(k, x, jit_current(k), False, np.uint32)[0])
    refused(get, "heap_module.addressed_view", "trusted code, not the domain API")


def test_trusted_kernel_functions_are_refused():
    @njit(boundscheck=True)
    def get(k, state, x):
        return np.uint32(jit_current(k))
    refused(get, "jit_current", "trusted code")


def test_an_unsafe_helper_is_found_through_the_safe_function_that_calls_it():
    @njit  # no bounds checks
    def helper(x):
        return x

    @njit(boundscheck=True)
    def get(k, state, x):
        return helper(x)
    refused(get, "helper", "without bounds checking")


def test_a_helper_bound_in_a_closure_is_checked_too():
    def make():
        peek = load

        @njit(boundscheck=True)
        def get(k, state, x):
            return np.uint32(peek(state, 0))
        return get
    refused(make(), "peek", "intrinsic")


def test_the_domain_api_is_accepted():
    @njit(boundscheck=True)
    def get(k, state, x):
        return np.uint32(views.own_array(k, 1, np.uint32)[x])
    domain_with(get)


def test_a_jit_method_the_interface_lacks_is_refused():
    refused(safe_get, "Probe has no method 'got'", name="got")


def test_a_missing_jitted_implementation_is_refused():
    refused(safe_get.py_func, "missing", "@njit")


def test_an_arity_that_does_not_match_the_interface_is_refused():
    refused(njit(boundscheck=True)(lambda k, x: x), "takes 2 arguments", "needs 3")


def test_a_domain_defined_in_a_notebook_is_checked():
    code = ("from numba import njit\n"
            "from redleaf_nb import Interface, u32\n"
            "from redleaf_nb.kernel.checker import DomainSafetyError\n"
            "class P(Interface):\n"
            "    def get(self, x: u32) -> u32: ...\n"
            "try:\n"
            "    class Impl(P):\n"
            "        def get(self, x): return x\n"
            "        jit_methods = {'get': njit(lambda k, state, x: x)}\n"
            "except DomainSafetyError as e:\n"
            "    print('refused', '__main__' in str(e))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.stdout.strip() == "refused True", out.stderr


def test_every_domain_in_the_repository_passes():
    from redleaf_nb.apps.dom_c import DomC
    from redleaf_nb.apps.rv6 import rv6_class
    from redleaf_nb.drivers.ixgbe import Ixgbe
    from redleaf_nb.drivers.membdev import MemBDev
    from redleaf_nb.drivers.nullnet import NullNet
    from redleaf_nb.drivers.nvme import Nvme
    from redleaf_nb.kernel.shadow import shadow_class
    domains = [DomC, MemBDev, NullNet, Ixgbe, Nvme,
               *(shadow_class(c.declared(), c) for c in (MemBDev, NullNet, Ixgbe, Nvme)),
               rv6_class(Ixgbe, Nvme),
               rv6_class(shadow_class(Ixgbe.declared(), Ixgbe),
                         shadow_class(Nvme.declared(), Nvme))]
    for cls in domains:
        assert cls.jit_methods
        checker.check_domain(cls, cls.declared())


def test_the_kernel_refuses_domains_when_bounds_checks_are_forced_off(monkeypatch):
    monkeypatch.setattr(numba.config, "BOUNDSCHECK", 0)
    k = Kernel(heap_bytes=1 << 12, max_objects=8)
    with pytest.raises(RuntimeError, match="NUMBA_BOUNDSCHECK=0"):
        k.create("p", PyProbe)


@njit(cache=True, boundscheck=True)
def _restart_somebody(k, state, x):
    from_shadow_api = restart_driver(k, 2, 1)
    return np.uint32(x + from_shadow_api)


@pytest.mark.parametrize("with_shadow", [True, False])
def test_restarting_a_driver_is_a_shadows_right_only(with_shadow):
    """The checker lets any domain name ``restart_driver``; the kernel honours it only
    for a domain it created as a shadow: anyone else panics, and nothing restarts."""
    from redleaf_nb.drivers.membdev import MemBDev, MemDisk
    from redleaf_nb.kernel.proxy import RPC_PANIC
    cls = domain_with(_restart_somebody)
    k = Kernel(heap_bytes=1 << 16, max_objects=16)
    driver = k.create("membdev", MemBDev, device=k.add_device("memdisk", MemDisk(4)), nblocks=4)
    shadow = k.create_shadow("shadow", "membdev") if with_shadow else None
    k.crash(driver)
    rogue = k.create("rogue", cls)
    assert k.jit_call(rogue, "get", 1)[0] == RPC_PANIC
    assert not rogue.domain.alive
    assert not k.lookup("membdev").domain.alive
    assert shadow is None or shadow.domain.impl.stats.restarts == 0
