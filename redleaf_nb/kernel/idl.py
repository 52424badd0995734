"""Interfaces and the IDL compiler.

An interface is a Python class of annotated method signatures, like a
RedLeaf ``#[interface]`` trait. The compiler runs when the class is created:
it checks every parameter and return type (rejecting non-exchangeable ones
with an error naming interface, method, parameter and type) and generates

1. a Python-tier proxy class (:class:`proxy.Proxy` subclass), and
2. the source of jitted proxy functions for the jitted tier.

Both sources are kept readable on purpose: ``show_proxy(BDev)`` prints them,
because reading a proxy is how one learns what a cross-domain call does.

``@create`` marks a factory method, like RedLeaf's ``#[create]``: its
parameters are what :meth:`Kernel.create` needs to instantiate a domain,
and the implementation's version of it runs inside the new domain.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import inspect
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numba
from numba import njit, types as nbt

from . import proxy as px
from .types import (UNIT, BorrowType, ExType, HeapType, InterfaceType, NotExchangeable,
                    OptionalType, RRefType, Scalar, TupleType, UnitType, check_type_name,
                    exchangeable, resolve_annotations, u32)


class IDLError(TypeError):
    """An interface declaration the compiler rejects."""


def create(fn):
    """Mark an interface method as the domain's factory (RedLeaf's ``#[create]``)."""
    fn.__redleaf_create__ = True
    return fn


@dataclass(frozen=True)
class Param:
    name: str
    type: ExType

    @property
    def mode(self) -> str:
        """How the argument crosses: copy, move, borrow or proxy."""
        if isinstance(self.type, BorrowType):
            return "borrow"
        if has_heap(self.type):
            return "move"
        return "proxy" if isinstance(self.type, InterfaceType) else "copy"


@dataclass(frozen=True)
class Method:
    interface: str
    name: str
    params: tuple[Param, ...]
    ret: ExType
    is_create: bool = False

    @property
    def qualname(self) -> str:
        return f"{self.interface}.{self.name}"

    def signature(self) -> str:
        args = ", ".join(f"{p.name}: {p.type.name}" for p in self.params)
        return f"{self.qualname}({args}) -> {self.ret.name}"


def has_heap(t: ExType) -> bool:
    """Does a value of type ``t`` carry heap objects whose ownership moves?"""
    if isinstance(t, HeapType):
        return True
    if isinstance(t, OptionalType):
        return has_heap(t.inner)
    if isinstance(t, TupleType):
        return any(has_heap(i) for i in t.items)
    return False


def compile_method(iface: type, fn) -> Method:
    """Check one method's signature; raise IDLError naming the exact place."""
    where = f"{iface.__name__}.{fn.__name__}"
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    if not params or params[0].name != "self":
        raise IDLError(f"{where}: the first parameter must be 'self'")
    globalns = vars(sys.modules[iface.__module__])
    localns = {iface.__name__: iface}
    out = []
    for p in params[1:]:
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            raise IDLError(f"{where}: parameter '{p.name}': *args, **kwargs and keyword-only "
                           "parameters cannot cross a domain boundary")
        if p.annotation is p.empty:
            raise IDLError(f"{where}: parameter '{p.name}' has no type annotation")
        try:
            ann = resolve_annotations({p.name: p.annotation}, globalns, localns)[p.name]
            t = exchangeable(ann)
        except NotExchangeable as e:
            raise IDLError(f"{where}: parameter '{p.name}': {e}") from None
        if isinstance(t, UnitType):
            raise IDLError(f"{where}: parameter '{p.name}': None is not a parameter type")
        names, prefixes = reserved_param_names()
        if p.name in names or p.name.startswith(prefixes):
            raise IDLError(f"{where}: parameter '{p.name}': the generated proxies use this name "
                           "themselves (their variables, imports and helpers); rename it")
        out.append(Param(p.name, t))
    if sig.return_annotation is sig.empty:
        raise IDLError(f"{where}: no return annotation (write '-> None' if it returns nothing)")
    try:
        ret = exchangeable(resolve_annotations({"return": sig.return_annotation},
                                               globalns, localns)["return"])
    except NotExchangeable as e:
        raise IDLError(f"{where}: return type: {e}") from None
    if isinstance(ret, BorrowType):
        raise IDLError(f"{where}: return type: Borrow is an argument mode, not a result")
    is_create = getattr(fn, "__redleaf_create__", False)
    if is_create and not (isinstance(ret, InterfaceType) and ret.iface is iface):
        raise IDLError(f"{where}: a @create method must return the interface it creates "
                       f"('{iface.__name__}'), not {ret.name}")
    return Method(iface.__name__, fn.__name__, tuple(out), ret, is_create)


class Interface:
    """Base class of interface declarations (and, one level down, implementations).

    ``class BDev(Interface)`` declares an interface: it is compiled at once.
    ``class MemBDev(BDev)`` implements it: every method must be defined.
    """

    __interface__ = True
    __methods__: dict[str, Method] = {}
    __creates__: dict[str, Method] = {}
    __proxy_class__: type
    __proxy_source__: str
    __jit_source__: str
    _jit_cache: dict
    _shadow_classes: dict
    domain = None  # set by the kernel on implementation instances
    # what an implementation may define for the jitted tier (read by the kernel):
    jit_methods: dict   # method name -> @njit function impl(k, state, *args)
    jit_state: object   # () -> int64 array: the domain's jitted state

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if Interface in cls.__bases__:
            _compile_interface(cls)
        else:
            _check_implementation(cls)

    @classmethod
    def declared(cls) -> type:
        """The interface this class declares or implements."""
        for c in cls.__mro__:
            if Interface in c.__bases__:
                return c
        raise TypeError(f"{cls.__name__} is not an interface")

    @classmethod
    def proxy_source(cls, jit: bool = False) -> str:
        """The code the IDL compiler generated for this interface."""
        iface = cls.declared()
        return iface.__jit_source__ if jit else iface.__proxy_source__


@functools.cache
def reserved_method_names() -> dict[str, str]:
    """Names an interface method may not take, each with the reason.

    Derived from the classes a method would shadow: the proxy (whose generated
    subclass gets one attribute per method), interface and implementation
    classes (whose attributes the kernel and this compiler read), and the
    shadow domains generated for every interface.
    """
    from .shadow import ShadowBase  # shadow.py imports this module

    out = {}
    for cls, why in ((ShadowBase, "which shadow domains use to forward calls and restart "
                                  "their driver"),
                     (Interface, "which the kernel and the IDL compiler read on interfaces "
                                 "and implementations"),
                     (px.Proxy, "which every proxy has (the kernel reads it, e.g. in "
                                "k.crash(proxy))")):
        for name in {*dir(cls), *vars(cls).get("__annotations__", {})}:
            out[name] = f"it would shadow {cls.__name__}.{name}, {why}"
    return out


@functools.cache
def reserved_param_names() -> tuple[frozenset[str], tuple[str, ...]]:
    """(names, prefixes) a parameter may not take: those the generated code uses.

    Found by generating every proxy and shadow of a probe method (a copied, a
    moved and a borrowed parameter, a moved result) and collecting the names in
    them; a name made from a parameter's or the method's (``slot_<param>``,
    ``P_<method>``) gives a prefix.
    """
    from . import heap
    from .shadow import _jit_shadow_source  # shadow.py imports this module

    iface = type("ProbeIface", (), {"__name__": "ProbeIface"})
    params = tuple(Param(f"probe_arg{i}", t) for i, t in
                   enumerate((u32, RRefType(u32), BorrowType(RRefType(u32)))))
    m = Method(iface.__name__, "probe_meth", params, RRefType(u32))
    text = "\n".join([python_proxy_source(iface.__name__, {m.name: m}), JIT_HEADER,
                      jit_method_source(iface.__name__, m, status=True),
                      _jit_shadow_source(iface, m, heap.slot_of)])  # any module-level @njit
    found = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.arg):
            found.add(node.arg)
        elif isinstance(node, ast.alias):
            found.add(node.asname or node.name.split(".")[0])
    derived = [p.name for p in params] + [m.name]
    names, prefixes = set(), set()
    for name in found:
        if iface.__name__ in name:
            continue  # a generated function or class, named after the interface
        stem = next((name[:-len(d)] for d in derived if name.endswith(d)), None)
        if stem is None:
            names.add(name)
        elif stem:
            prefixes.add(stem)
    return frozenset(names), tuple(sorted(prefixes))


def _check_method_name(cls, name: str) -> None:
    reason = reserved_method_names().get(name)
    if reason is None and name.startswith("_"):
        reason = ("names starting with '_' do not cross a domain boundary (the proxy and "
                  "the kernel use such names); an interface declares only methods that cross")
    if reason is not None:
        raise IDLError(f"{cls.__name__}.{name}: a method may not be named '{name}': {reason}")


def _compile_interface(cls):
    try:
        check_type_name(cls.__name__, "an Interface")
    except NotExchangeable as e:
        raise IDLError(f"{cls.__name__}: {e.reason}") from None
    methods, creates = {}, {}
    for name, fn in vars(cls).items():
        if not inspect.isfunction(fn):
            continue
        _check_method_name(cls, name)
        m = compile_method(cls, fn)
        (creates if m.is_create else methods)[name] = m
    if not methods:
        raise IDLError(f"{cls.__name__}: an interface needs at least one method")
    cls.__methods__, cls.__creates__ = methods, creates
    cls.__proxy_source__ = python_proxy_source(cls.__name__, methods)
    cls.__jit_source__ = jit_proxy_source(cls.__name__, methods)
    ns = {"Proxy": px.Proxy, "DomainUnwind": px.DomainUnwind,
          **{f"P_{m.name}": tuple(p.type for p in m.params) for m in methods.values()},
          **{f"R_{m.name}": m.ret for m in methods.values()}}
    exec(compile(cls.__proxy_source__, f"<proxy {cls.__name__}>", "exec"), ns)  # noqa: S102
    proxy_cls = ns[f"{cls.__name__}Proxy"]
    proxy_cls.__interface__ = cls
    cls.__proxy_class__ = proxy_cls
    cls._jit_cache = {}


def _check_implementation(cls):
    iface = cls.declared()
    missing = [n for n in list(iface.__methods__) + list(iface.__creates__)
               if getattr(cls, n) is getattr(iface, n)]
    if missing:
        raise TypeError(f"{cls.__name__} implements {iface.__name__} but does not define: "
                        f"{', '.join(missing)}")


# --- code generation: Python tier --------------------------------------------

def _lone_heap_param(m: Method):
    """The index of a method's only non-plain parameter when it is a plain
    ``RRef``-like one (by value or borrowed), else None: such a method passes
    it with one heap kernel that checks and moves (the fast path)."""
    heap = [i for i, p in enumerate(m.params) if not p.type.plain]
    if len(heap) != 1:
        return None
    t = m.params[heap[0]].type
    return heap[0] if isinstance(t.inner if isinstance(t, BorrowType) else t, HeapType) else None


def _pass_args_lines(m: Method) -> list[str]:
    """Steps 2 and 3 of the generated method: check, then move or lend."""
    names = [p.name for p in m.params]
    where = {p.name: f"{m.qualname}: parameter '{p.name}'" for p in m.params}
    lone = _lone_heap_param(m)
    if lone is not None or all(p.type.plain for p in m.params):
        plain = [f"        {p.name} = P_{m.name}[{i}].coerce({p.name}, {where[p.name]!r})"
                 for i, p in enumerate(m.params) if p.type.plain]
        lines = ["        # 2. check every argument before anything moves", *plain] if plain else []
        if lone is not None:
            p = m.params[lone]
            fn, what = (("check_and_lend", "lent") if p.mode == "borrow"
                        else ("check_and_move", "moved"))
            lines += [f"        # {'3' if plain else '2-3'}. ownership: the RRef is checked and "
                      f"{what} to the callee by one heap kernel",
                      f"        {p.name} = rt.{fn}(cont, P_{m.name}[{lone}], {p.name}, "
                      f"{where[p.name]!r})"]
        return lines
    argspec = ", ".join(f"({n!r}, P_{m.name}[{i}], {n})" for i, n in enumerate(names))
    lines = ["        # 2. check every argument before anything moves",
             f"        {', '.join(names)}, = rt.check_args(cont.caller, {m.qualname!r}, "
             f"({argspec},))",
             "        # 3. ownership: by-value RRefs move to the callee, borrowed ones are lent"]
    for i, p in enumerate(m.params):
        if p.mode in ("move", "borrow"):
            fn = "lend" if p.mode == "borrow" else "move_in"
            lines.append(f"        {p.name} = rt.{fn}(cont, P_{m.name}[{i}], {p.name})")
    return lines


def _finish_line(m: Method) -> str:
    if isinstance(m.ret, UnitType):
        return "        return rt.finish_unit(cont, ret)"
    if isinstance(m.ret, HeapType):
        return f"        return rt.finish_move(cont, R_{m.name}, ret)"
    return f"        return rt.finish(cont, R_{m.name}, ret)"


def python_proxy_source(iface: str, methods: dict[str, Method]) -> str:
    lines = [f"class {iface}Proxy(Proxy):",
             f'    """Generated by the redleaf-nb IDL compiler from {iface}. Do not edit."""',
             "", "    __slots__ = ()", ""]
    for m in methods.values():
        names = [p.name for p in m.params]
        lines += [f"    def {m.name}(self{''.join(', ' + n for n in names)}):",
                  f'        """{m.signature()}"""',
                  "        rt, callee = self._kernel.calls, self._domain",
                  "        # 1. is the callee alive? A dead callee is never entered.",
                  f"        cont = rt.enter(callee, {m.qualname!r})",
                  "        if cont is None:",
                  f"            return rt.refused(callee, {m.qualname!r})"]
        if names:
            lines += _pass_args_lines(m)
        lines += ["        # 4. record the continuation that a panic unwinds to",
                  "        rt.push(cont)",
                  "        # 5. run the callee; any exception in it is its panic",
                  "        try:",
                  f"            callee.fault_point({m.name!r})",
                  f"            ret = callee.impl.{m.name}({', '.join(names)})",
                  "        except (Exception, DomainUnwind) as panic:",
                  "            return rt.unwind(cont, panic)",
                  "        # 6. pop the continuation"
                  + ("" if isinstance(m.ret, UnitType) else "; returned RRefs move to the caller"),
                  _finish_line(m), ""]
    return "\n".join(lines)


# --- code generation: jitted tier --------------------------------------------

class JitUnsupported(TypeError):
    """A method whose types the jitted tier does not carry (use the Python tier)."""


def _jit_arg_type(t: ExType, where: str):
    if isinstance(t, Scalar):
        return numba.from_dtype(t.dtype)
    if isinstance(t, (HeapType, BorrowType)) or (isinstance(t, OptionalType)
                                                and isinstance(t.inner, HeapType)):
        return nbt.int64  # a handle; 0 is None
    raise JitUnsupported(f"{where}: {t.name} is not carried by the jitted tier "
                         "(scalars, RRef handles, Optional RRefs and tuples of those are)")


def _jit_ret_type(t: ExType, where: str):
    if isinstance(t, UnitType):
        return nbt.none
    if isinstance(t, TupleType):
        return nbt.Tuple(tuple(_jit_arg_type(i, where) for i in t.items))
    return _jit_arg_type(t, where)


JIT_HEADER = """\
from redleaf_nb.kernel.heap import check_read, check_write, give, lend, move, release
from redleaf_nb.kernel.proxy import (RPC_OK, RPC_PANIC, RPC_BAD_ARG, jit_alive, jit_push,
                                     jit_pop, jit_crash)
"""


def reports_status(impl) -> bool:
    """Whether a jitted implementation returns (status, result) rather than a result:
    shadows and personalities do, to report a failure behind them that they survive."""
    return getattr(impl, "reports_status", False)


def jit_method_source(iface: str, m: Method, status: bool = False) -> str:
    """The jitted proxy of one method; ``impl`` is the callee's @njit function
    (returning (status, result) if ``status``, see :func:`reports_status`).

    Returns (status, result); status 0 is success (see proxy.RPC_STATUS).
    The caller reaches the proxy through a function pointer, as RedLeaf
    callers reach a proxy through a ``Box<dyn Trait>``.
    """
    names = [p.name for p in m.params]
    owned = [p.name for p in m.params if p.mode == "move"]
    lent = [p.name for p in m.params if p.mode == "borrow"]
    null = ("(" + ", ".join("0" for _ in m.ret.items) + ",)"
            if isinstance(m.ret, TupleType) else "0")
    args = "".join(", " + n for n in names)
    lines = [f"def {iface}_{m.name}(k, callee, state{args}):",
             f'    """{m.signature()}"""',
             "    # 1+3. is the callee alive? record the continuation (caller, callee)",
             "    caller = jit_push(k, callee)",
             "    if caller < 0:",
             f"        return -caller, {null}"]
    checked = owned + lent
    if checked:
        lines.append("    # 2. check every RRef argument before anything moves")
        lines += [f"    slot_{n} = check_write(k, {n}, caller)" for n in owned]
        lines += [f"    slot_{n} = check_read(k, {n}, caller)" for n in lent]
        checks = [f"slot_{n} < 0" for n in checked]
        # one RRef may be lent any number of times, but never moved and passed again
        checks += [f"{a} == {b}" for i, a in enumerate(owned) for b in checked[i + 1:]]
        lines += [f"    if {' or '.join(checks)}:",
                  "        jit_pop(k, caller)",
                  f"        return RPC_BAD_ARG, {null}",
                  "    # 4. by-value RRefs move to the callee; borrowed ones are lent"]
        lines += [f"    {n} = give(k, slot_{n}, callee)" for n in owned]
        lines += [f"    lent_{n} = lend(k, slot_{n}, callee)" for n in lent]
    releases = [f"release(k, {n}, lent_{n})" for n in lent]
    unwind = ["    # a caller that died while the call was out unwinds to its own entry",
              "    if not jit_alive(k, caller):",
              '        raise RuntimeError("unwinding out of a dead domain")']
    lines += ["    # 5. run the callee; a panic unwinds here: crash and reclaim it",
              "    try:",
              f"        {'status, ret' if status else 'ret'} = impl(k, state{args})",
              "    except Exception:",
              *[f"        {r}" for r in releases],
              "        jit_crash(k, callee, caller)",
              *["    " + u for u in unwind],
              f"        return RPC_PANIC, {null}",
              "    # 6. pop the continuation; returned RRefs move to the caller",
              "    jit_pop(k, caller)",
              *[f"    {r}" for r in releases]]
    if status:
        lines += ["    if status != RPC_OK:  # a failure behind the callee, which it survived",
                  f"        return status, {null}"]
    if isinstance(m.ret, TupleType) and has_heap(m.ret):
        moved = [f"move(k, ret[{i}], callee, caller) if ret[{i}] != 0 else 0"
                 if has_heap(it) else f"ret[{i}]" for i, it in enumerate(m.ret.items)]
        lines.append(f"    ret = ({', '.join(moved)},)")
    elif has_heap(m.ret):
        lines.append("    ret = move(k, ret, callee, caller) if ret != 0 else 0")
    lines += [*unwind, f"    return RPC_OK, {'0' if isinstance(m.ret, UnitType) else 'ret'}"]
    return "\n".join(lines) + "\n"


def jit_proxy_source(iface: str, methods: dict[str, Method]) -> str:
    """All jitted proxies of an interface, as shown to users (``impl`` unbound)."""
    head = (f'"""Jitted proxies generated by the redleaf-nb IDL compiler from {iface}.\n\n'
            "Each is generated per callee: `impl` is bound to the callee domain's @njit\n"
            'implementation (imported at the top of the generated module). Do not edit."""\n')
    return head + JIT_HEADER + "".join("\n\n" + jit_method_source(iface, m)
                                       for m in methods.values())


def generated_dir() -> Path:
    """Where generated jitted proxy modules live (so numba can cache them)."""
    d = Path(os.environ.get("REDLEAF_NB_CACHE", Path.home() / ".cache" / "redleaf_nb"))
    d = d / "generated"
    d.mkdir(parents=True, exist_ok=True)
    return d


def impl_import(impl, where: str) -> str:
    """The import line that binds ``impl`` in a generated module (plus its source hash,
    so that editing the callee regenerates, and recompiles, its proxy)."""
    py = getattr(impl, "py_func", None)
    if py is None:
        raise JitUnsupported(f"{where}: the jitted implementation must be an @njit function")
    module, name = py.__module__, py.__qualname__
    if getattr(sys.modules.get(module), name, None) is not impl:
        raise JitUnsupported(f"{where}: the jitted implementation {name} must be a module-level "
                             "function (the generated proxy imports it)")
    digest = hashlib.sha1(inspect.getsource(py).encode()).hexdigest()[:12]
    return f"from {module} import {name} as impl  # callee source sha1 {digest}\n"


def load_generated(prefix: str, src: str):
    """Write generated source to the cache folder (once) and import it, so that
    numba can cache what it compiles from it."""
    name = f"{prefix}_{hashlib.sha1(src.encode()).hexdigest()[:12]}"
    if name in sys.modules:
        return sys.modules[name]
    path = generated_dir() / f"{name}.py"
    if not path.exists() or path.read_text() != src:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(src)
        tmp.replace(path)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def bound_proxy_source(iface: type, method: str, impl) -> str:
    """A module with the jitted proxy of ``iface.method`` bound to ``impl``."""
    m = iface.__methods__[method]
    return (f'"""Generated by the redleaf-nb IDL compiler: jitted proxy of {m.qualname}."""\n'
            + JIT_HEADER + impl_import(impl, m.qualname) + "\n\n"
            + jit_method_source(iface.__name__, m, reports_status(impl)))


def callee_source(iface: type, m: Method, impl, alias: str) -> str:
    """Module text that binds ``alias`` to the compiled proxy of ``m`` into ``impl``:
    how a jitted domain (a shadow, a personality) calls another domain."""
    return (JIT_HEADER + impl_import(impl, m.qualname) + "\n\n"
            + jit_method_source(iface.__name__, m, reports_status(impl))
            + f"\n\n{alias} = njit(cache=True)({iface.__name__}_{m.name})\n")


def direct_source(iface: type, method: str, impl) -> str:
    """A call of ``impl`` behind the proxy's signature but with no crossing: what a
    benchmark that links the callee in (the paper's ``redleaf-driver``) runs."""
    m = iface.__methods__[method]
    args = "".join(", " + p.name for p in m.params)
    null = ("(" + ", ".join("0" for _ in m.ret.items) + ",)"
            if isinstance(m.ret, TupleType) else "0")
    ret = "0" if isinstance(m.ret, UnitType) else "ret"
    return (f'"""Generated by redleaf-nb: {m.qualname} linked in (no proxy)."""\n'
            "from redleaf_nb.kernel.proxy import RPC_OK, RPC_PANIC\n"
            + impl_import(impl, m.qualname) + "\n\n"
            + f"def {iface.__name__}_{method}(k, callee, state{args}):\n"
            + "    try:\n"
            + (f"        return impl(k, state{args})\n" if reports_status(impl) else
               f"        ret = impl(k, state{args})\n")
            + "    except Exception:\n"
            + f"        return RPC_PANIC, {null}\n"
            + ("" if reports_status(impl) else f"    return RPC_OK, {ret}\n"))


class JitProxy(NamedTuple):
    """A compiled jitted proxy and its function type (to call it through a pointer)."""

    fn: object
    type: object


def _compiled(iface: type, method: str, impl, kind: str) -> JitProxy:
    iface = iface.declared()
    key = (method, impl, kind)
    if key not in iface._jit_cache:
        m = iface.__methods__[method]
        args = [_jit_arg_type(p.type, f"{m.qualname}: parameter '{p.name}'") for p in m.params]
        ret = _jit_ret_type(m.ret, f"{m.qualname}: return type")
        result = nbt.int64 if ret is nbt.none else ret
        sig = nbt.Tuple((nbt.int64, result))(nbt.int64, nbt.int64, nbt.int64, *args)
        source = (bound_proxy_source if kind == "proxy" else direct_source)(iface, method, impl)
        mod = load_generated(f"redleaf_{kind}_{iface.__name__}_{method}", source)
        fn = getattr(mod, f"{iface.__name__}_{method}")
        iface._jit_cache[key] = JitProxy(njit(sig, cache=True)(fn), nbt.FunctionType(sig))
    return iface._jit_cache[key]


def jit_proxy(iface: type, method: str, impl) -> JitProxy:
    """The compiled jitted proxy of ``iface.method`` bound to the callee ``impl``.

    ``impl(k, state, *args)`` is the callee domain's @njit implementation;
    the proxy is ``fn(k, callee_id, state, *args) -> (status, result)``.
    ``k`` is the kernel (state.py) and ``state`` the address of the callee's
    jitted private state: both plain integers, so that a call hands Numba
    nothing to reference-count.
    """
    return _compiled(iface, method, impl, "proxy")


def jit_direct(iface: type, method: str, impl) -> JitProxy:
    """``impl`` called with no crossing, with the same signature as :func:`jit_proxy`
    (so that one benchmark loop can run linked-in and proxied configurations)."""
    return _compiled(iface, method, impl, "direct")


def show_proxy(iface: type, jit: bool = False) -> None:
    """Print the generated proxy of an interface (Python tier, or jitted)."""
    print(iface.proxy_source(jit=jit))


__all__ = ["Interface", "IDLError", "create", "show_proxy", "jit_proxy", "Method", "Param",
           "JitUnsupported"]
