"""The domain safety checker: the analog of RedLeaf's trusted compilation environment.

RedLeaf refuses to build a domain that uses ``unsafe`` or a crate outside its
trusted list. Here, when a domain class is created, every jitted function it
offers (``jit_methods``) and, transitively, every jitted function those call
are checked against what domain code may use:

* compiled with bounds checking (``@njit(boundscheck=True)``); an entry point
  (what a proxy, a shadow or a benchmark loop calls) never ``inline="always"``:
  inlined into that trusted, unchecked caller, its checks would be lost. A helper
  an entry point reaches may be ``inline="always"``: Numba inlines it into its
  caller's IR, which is compiled with the caller's bounds checking, and every
  caller in a domain is checked (a domain's hot path needs it: a call that passes
  arrays costs reference-count calls, tens of cycles a packet);
* no ``objmode``, ``cfunc``, ``carray``/``farray``, no ``ctypes``, ``cffi``,
  ``llvmlite`` or numba intrinsics and extension hooks;
* nothing of the trusted layer (``redleaf_nb.lowlevel``, ``redleaf_nb.kernel``,
  ``devices``) except the domain API (:data:`views.DOMAIN_API`, and for shadows
  :data:`shadow.SHADOW_API`) and generated proxies, through which a domain calls
  another.

Names are resolved, not read: ``hp.load`` through any alias of a module, or a
function bound in a closure, is what it resolves to. A refusal names the module,
function and line, the rule broken and how to fix it. Domains defined in a
notebook (``__main__``) are checked like any other.
"""
from __future__ import annotations

import dis
import inspect
import types
from types import CodeType, FunctionType, ModuleType

import numba
from numba.core.dispatcher import Dispatcher
from numba.core.extending import _Intrinsic

from . import views

TRUSTED_PACKAGES = ("redleaf_nb.kernel", "redleaf_nb.lowlevel", "devices")
GENERATED_PROXIES = "redleaf_proxy_"   # generated proxy modules (codegen.py): trusted
FORBIDDEN_PACKAGES = ("ctypes", "_ctypes", "cffi", "_cffi_backend", "llvmlite", "numba.extending",
                      "numba.core.extending", "numba.core.cgutils", "numba.core.imputils",
                      "numba.experimental")
FORBIDDEN = {numba.carray: "numba.carray makes an array from a raw pointer",
             numba.farray: "numba.farray makes an array from a raw pointer",
             numba.objmode: "objmode leaves the checked, compiled code",
             numba.cfunc: "cfunc makes a C callback (raw pointers)"}
FIX_MEMORY = ("reach memory through the domain API (redleaf_nb.kernel.views: own_state, "
              "own_array, own_matrix, rref_array, deque_* ...)")


class DomainSafetyError(TypeError):
    """Domain code that breaks a rule of safe domain code."""


def check_domain(cls: type, iface: type) -> None:
    """Check a domain class's ``jit_methods`` against ``iface`` and the safety rules."""
    jm = getattr(cls, "jit_methods", None)
    if not jm:
        return
    if not isinstance(jm, dict):
        raise DomainSafetyError(f"{cls.__qualname__}.jit_methods must be a dict: method name "
                                "-> @njit function impl(k, state, *args)")
    for name, fn in jm.items():
        where = f"{cls.__qualname__}.jit_methods[{name!r}]"
        if name not in iface.__methods__:
            raise DomainSafetyError(f"{where}: {iface.__name__} has no method {name!r} "
                                    f"(methods: {', '.join(iface.__methods__)})")
        if not isinstance(fn, Dispatcher):
            raise DomainSafetyError(f"{where}: missing: expected an @njit function, got "
                                    f"{type(fn).__name__}")
        want = 2 + len(iface.__methods__[name].params)
        got = fn.py_func.__code__.co_argcount
        if got != want:
            raise DomainSafetyError(f"{where}: {fn.py_func.__name__} takes {got} arguments; "
                                    f"{iface.__methods__[name].signature()} needs {want}: "
                                    "(k, state, *params)")
        check_function(fn)


def check_function(fn: Dispatcher, _seen: set | None = None) -> None:
    """Check one jitted domain entry point and every jitted function it reaches."""
    entry = _seen is None
    seen = set() if _seen is None else _seen
    if id(fn) in seen:
        return
    seen.add(id(fn))
    py = fn.py_func
    opts = fn.targetoptions
    if opts.get("boundscheck") is not True:
        _refuse(py, py.__code__.co_firstlineno, "compiled without bounds checking",
                "decorate it with @njit(cache=True, boundscheck=True)")
    inline = opts.get("inline", "never")
    if inline != "never" and (entry or inline != "always"):
        _refuse(py, py.__code__.co_firstlineno, f"inline={inline!r} on a domain entry point "
                "(inlined into the trusted code that calls it, its bounds checks are lost)"
                if entry else f"inline={inline!r} (a cost model decides where checks go)",
                "drop the inline option (helpers it calls may be inline='always')")
    for line, name, value in _references(py):
        rule = _forbidden(value)
        if rule:
            _refuse(py, line, f"uses {name}: {rule}", FIX_MEMORY)
        if isinstance(value, Dispatcher) and not _trusted(value.py_func.__module__):
            check_function(value, seen)


def _trusted(module: str) -> bool:
    return module.startswith(GENERATED_PROXIES) or any(
        module == p or module.startswith(p + ".") for p in TRUSTED_PACKAGES)


def _allowed() -> tuple:
    """The trusted functions domain code may call."""
    from .shadow import SHADOW_API  # shadow.py reaches this module through idl.py
    return views.DOMAIN_API + SHADOW_API


def _forbidden(value) -> str | None:
    """Why domain code may not use ``value``, or None."""
    try:
        if value in FORBIDDEN:
            return FORBIDDEN[value]
    except TypeError:    # unhashable: plain data
        return None
    if isinstance(value, _Intrinsic):
        return "a numba intrinsic emits raw LLVM (pointers, unchecked loads)"
    if isinstance(value, Dispatcher):
        module = value.py_func.__module__
        if module.startswith(GENERATED_PROXIES):
            return None      # a call into another domain, through its proxy
        if _trusted(module) and value not in _allowed():
            return f"{module}.{value.py_func.__name__} is trusted code, not the domain API"
        return None
    module = value.__name__ if isinstance(value, ModuleType) else getattr(value, "__module__", "")
    if not isinstance(module, str):
        return None
    if any(module == p or module.startswith(p + ".") for p in FORBIDDEN_PACKAGES):
        return f"{module} reaches raw memory or compiler internals"
    if _trusted(module) and isinstance(value, (FunctionType, types.BuiltinFunctionType)):
        return f"{module}.{value.__name__} is trusted code, not the domain API"
    return None


def _references(py: FunctionType):
    """(line, dotted name, value) of every global, closure variable and attribute chain
    on them that ``py`` (and the functions nested in it) reads."""
    namespace = dict(py.__globals__)
    namespace.update(zip(py.__code__.co_freevars,
                         (c.cell_contents for c in (py.__closure__ or ()))))
    builtins = namespace.get("__builtins__", {})
    builtins = vars(builtins) if isinstance(builtins, ModuleType) else builtins
    for code in _codes(py.__code__):
        chain = None   # (line, dotted name, value) being extended by attribute loads
        for ins in dis.get_instructions(code):
            line = ins.positions.lineno if ins.positions and ins.positions.lineno else \
                code.co_firstlineno
            if ins.opname in ("LOAD_GLOBAL", "LOAD_DEREF", "LOAD_CLASSDEREF", "LOAD_NAME"):
                if chain:
                    yield chain
                name = ins.argval
                if name in namespace:
                    chain = (line, name, namespace[name])
                elif name in builtins:
                    chain = (line, name, builtins[name])
                else:
                    chain = None
            elif ins.opname in ("LOAD_ATTR", "LOAD_METHOD") and chain is not None:
                _, dotted, value = chain
                if isinstance(value, (ModuleType, type)) and hasattr(value, ins.argval):
                    chain = (line, f"{dotted}.{ins.argval}", getattr(value, ins.argval))
                else:
                    yield chain
                    chain = None
            elif chain is not None:
                yield chain
                chain = None
        if chain:
            yield chain


def _codes(code: CodeType):
    yield code
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _codes(const)


def _refuse(py: FunctionType, line: int, rule: str, fix: str):
    module = py.__module__
    try:
        where = inspect.getsourcefile(py) or module
    except TypeError:
        where = module
    raise DomainSafetyError(f"unsafe domain code in {module}.{py.__qualname__} ({where}, line "
                            f"{line}): {rule}. Fix: {fix}")
