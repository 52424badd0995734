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
import inspect
import sys
from dataclasses import dataclass
from typing import NamedTuple

import numba
from numba import njit, types as nbt

from . import proxy as px
from .codegen import (JIT_HEADER, JitUnsupported, bound_proxy_source, callee_source, direct_source,
                      forwarder_source, has_heap, jit_method_source, jit_proxy_source,
                      load_generated, python_proxy_source, shadow_source)
from .types import (BorrowType, ExType, HeapType, InterfaceType, NotExchangeable,
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

    iface = type("ProbeIface", (), {"__name__": "ProbeIface"})
    params = tuple(Param(f"probe_arg{i}", t) for i, t in
                   enumerate((u32, RRefType(u32), BorrowType(RRefType(u32)))))
    m = Method(iface.__name__, "probe_meth", params, RRefType(u32))
    text = "\n".join([python_proxy_source(iface.__name__, {m.name: m}), JIT_HEADER,
                      jit_method_source(iface.__name__, m, status=True),
                      callee_source(iface.__name__, m, heap.slot_of),   # any module-level @njit
                      shadow_source(m, "probe_proxy_module"),
                      forwarder_source("probe_forward", "", m, "probe_proxy_module",
                                       ("probe_state_module", "STATE"), "probe_field")])
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
    from .checker import check_domain  # checker.py reaches the kernel through views
    check_domain(cls, iface)


# --- the jitted tier's types and compiled proxies ----------------------------

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
        sig = nbt.Tuple((nbt.int64, result))(nbt.int64, nbt.int64, *args)
        source = (bound_proxy_source if kind == "proxy" else direct_source)(iface.__name__, m,
                                                                             impl)
        mod = load_generated(f"redleaf_{kind}_{iface.__name__}_{method}", source)
        fn = getattr(mod, f"{iface.__name__}_{method}")
        iface._jit_cache[key] = JitProxy(njit(sig, cache=True)(fn), nbt.FunctionType(sig))
    return iface._jit_cache[key]


def jit_proxy(iface: type, method: str, impl) -> JitProxy:
    """The compiled jitted proxy of ``iface.method`` bound to the callee ``impl``.

    ``impl(k, state, *args)`` is the callee domain's @njit implementation;
    the proxy is ``fn(k, callee_id, *args) -> (status, result)`` and hands
    ``impl`` the callee's id as ``state``, the key to its own state (views.own_state).
    ``k`` is the kernel (state.py): plain integers, so that a call hands Numba
    nothing to reference-count.
    """
    return _compiled(iface, method, impl, "proxy")


def jit_direct(iface: type, method: str, impl) -> JitProxy:
    """``impl`` called with no crossing, with the same signature as :func:`jit_proxy`
    (so that one benchmark loop can run linked-in and proxied configurations)."""
    return _compiled(iface, method, impl, "direct")


def show_proxy(iface: type, jit: bool = False, shadow_of: type | None = None) -> None:
    """Print the generated proxy of an interface (Python tier, or jitted), or with
    ``shadow_of=DriverClass`` the jitted shadow generated to guard that driver."""
    if shadow_of is None:
        print(iface.proxy_source(jit=jit))
    else:
        from .shadow import jit_shadow_source  # shadow.py imports this module
        print(jit_shadow_source(iface, shadow_of))


__all__ = ["Interface", "IDLError", "create", "show_proxy", "jit_proxy", "Method", "Param",
           "JitUnsupported"]
