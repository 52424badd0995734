"""Code generation: the one room where source text is built.

The IDL compiler (idl.py), the shadows (shadow.py) and rv6's system calls
(apps/rv6.py) all generate code, and all of it is made here, from one set of
helpers: the import header of a jitted module (:data:`JIT_HEADER`), the
binding of a callee implementation (:func:`callee_binding`), the ``null``
result of a failed call (:func:`null_result`), and the handling of a callee
that reports a status (:func:`reports_status`). The generated text stays
readable on purpose: ``show_proxy`` prints it, because reading a proxy is how
one learns what a cross-domain call does.

Methods are read through their attributes only (``name``, ``qualname``,
``params`` with ``name``/``type``/``mode``, ``ret``, ``signature()``), so this
module needs nothing of the IDL compiler but its output.

Generated jitted modules are written to a cache folder and imported from
there (:func:`load_generated`), so that numba can cache what it compiles.
"""
from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path

from .types import BorrowType, ExType, HeapType, OptionalType, TupleType, UnitType


class JitUnsupported(TypeError):
    """A method whose types the jitted tier does not carry (use the Python tier)."""


def has_heap(t: ExType) -> bool:
    """Does a value of type ``t`` carry heap objects whose ownership moves?"""
    if isinstance(t, HeapType):
        return True
    if isinstance(t, OptionalType):
        return has_heap(t.inner)
    if isinstance(t, TupleType):
        return any(has_heap(i) for i in t.items)
    return False


# --- the shared pieces -------------------------------------------------------

JIT_HEADER = """\
from numba import njit
from redleaf_nb.kernel.heap import check_read, check_write, give, lend, move, release
from redleaf_nb.kernel.proxy import (RPC_OK, RPC_PANIC, RPC_BAD_ARG, jit_alive, jit_push,
                                     jit_pop, jit_crash)
"""


def null_result(ret: ExType) -> str:
    """What a failed call returns beside its status: zeros of the result's shape."""
    return "(" + ", ".join("0" for _ in ret.items) + ",)" if isinstance(ret, TupleType) else "0"


def reports_status(impl) -> bool:
    """Whether a jitted implementation returns (status, result) rather than a result:
    shadows and personalities do, to report a failure behind them that they survive."""
    return getattr(impl, "reports_status", False)


def callee_binding(impl, where: str, alias: str = "impl") -> str:
    """The import line that binds ``impl`` as ``alias`` in a generated module (plus
    its source hash, so that editing the callee regenerates, and recompiles, it)."""
    py = getattr(impl, "py_func", None)
    if py is None:
        raise JitUnsupported(f"{where}: the jitted implementation must be an @njit function")
    module, name = py.__module__, py.__qualname__
    if getattr(sys.modules.get(module), name, None) is not impl:
        raise JitUnsupported(f"{where}: the jitted implementation {name} must be a module-level "
                             "function (the generated proxy imports it)")
    digest = hashlib.sha1(inspect.getsource(py).encode()).hexdigest()[:12]
    return f"from {module} import {name} as {alias}  # callee source sha1 {digest}\n"


def _args(m) -> str:
    return "".join(", " + p.name for p in m.params)


def _module(doc: str, *parts: str) -> str:
    return f'"""{doc}"""\n' + "".join(parts)


# --- the Python tier's proxy class -------------------------------------------

def _lone_heap_param(m):
    """The index of a method's only non-plain parameter when it is a plain
    ``RRef``-like one (by value or borrowed), else None: such a method passes
    it with one heap kernel that checks and moves (the fast path)."""
    heap = [i for i, p in enumerate(m.params) if not p.type.plain]
    if len(heap) != 1:
        return None
    t = m.params[heap[0]].type
    return heap[0] if isinstance(t.inner if isinstance(t, BorrowType) else t, HeapType) else None


def _pass_args_lines(m) -> list[str]:
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


def _finish_line(m) -> str:
    if isinstance(m.ret, UnitType):
        return "        return rt.finish_unit(cont, ret)"
    if isinstance(m.ret, HeapType):
        return f"        return rt.finish_move(cont, R_{m.name}, ret)"
    return f"        return rt.finish(cont, R_{m.name}, ret)"


def python_proxy_source(iface: str, methods: dict) -> str:
    """The Python tier's proxy class of an interface (executed with ``Proxy``,
    ``DomainUnwind``, ``P_<method>`` and ``R_<method>`` in its namespace)."""
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


# --- the jitted tier's proxies -----------------------------------------------

def jit_method_source(iface: str, m, status: bool = False) -> str:
    """The jitted proxy of one method; ``impl`` is the callee's @njit function
    (returning (status, result) if ``status``, see :func:`reports_status`).

    Returns (status, result); status 0 is success (see proxy.RPC_STATUS).
    The caller reaches the proxy through a function pointer, as RedLeaf
    callers reach a proxy through a ``Box<dyn Trait>``.
    """
    owned = [p.name for p in m.params if p.mode == "move"]
    lent = [p.name for p in m.params if p.mode == "borrow"]
    null, args = null_result(m.ret), _args(m)
    lines = [f"def {iface}_{m.name}(k, callee{args}):",
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
              f"        {'status, ret' if status else 'ret'} = impl(k, callee{args})",
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


def jit_proxy_source(iface: str, methods: dict) -> str:
    """All jitted proxies of an interface, as shown to users (``impl`` unbound)."""
    return _module(f"Jitted proxies generated by the redleaf-nb IDL compiler from {iface}.\n\n"
                   "Each is generated per callee: `impl` is bound to the callee domain's @njit\n"
                   "implementation (imported at the top of the generated module). Do not edit.",
                   JIT_HEADER, *("\n\n" + jit_method_source(iface, m) for m in methods.values()))


def bound_proxy_source(iface: str, m, impl) -> str:
    """A module with the jitted proxy of ``m`` bound to ``impl``."""
    return _module(f"Generated by the redleaf-nb IDL compiler: jitted proxy of {m.qualname}.",
                   JIT_HEADER, callee_binding(impl, m.qualname), "\n\n",
                   jit_method_source(iface, m, reports_status(impl)))


def callee_source(iface: str, m, impl) -> str:
    """A module binding ``driver_call`` to the compiled proxy of ``m`` into ``impl``:
    how a jitted domain (a shadow, a personality) calls another domain. It is a
    generated proxy (trusted); the domain that imports it is checked like any other."""
    return _module(f"Generated by the redleaf-nb IDL compiler: the proxy of {m.qualname}, "
                   "for a domain that calls it.",
                   JIT_HEADER, callee_binding(impl, m.qualname), "\n\n",
                   jit_method_source(iface, m, reports_status(impl)),
                   f"\n\ndriver_call = njit(cache=True)({iface}_{m.name})\n")


def direct_source(iface: str, m, impl) -> str:
    """A call of ``impl`` behind the proxy's signature but with no crossing: what a
    benchmark that links the callee in (the paper's ``redleaf-driver``) runs."""
    args, null = _args(m), null_result(m.ret)
    ret = "0" if isinstance(m.ret, UnitType) else "ret"
    return _module(f"Generated by redleaf-nb: {m.qualname} linked in (no proxy).",
                   "from redleaf_nb.kernel.proxy import RPC_OK, RPC_PANIC\n",
                   callee_binding(impl, m.qualname), "\n\n",
                   f"def {iface}_{m.name}(k, callee{args}):\n",
                   "    try:\n",
                   (f"        return impl(k, callee{args})\n" if reports_status(impl) else
                    f"        ret = impl(k, callee{args})\n"),
                   "    except Exception:\n",
                   f"        return RPC_PANIC, {null}\n",
                   "" if reports_status(impl) else f"    return RPC_OK, {ret}\n")


# --- domains that forward: shadows and rv6 ------------------------------------

DOMAIN_HEADER = """\
from numba import njit
from redleaf_nb.kernel.proxy import RPC_OK, RPC_PANIC
from redleaf_nb.kernel.views import domain_alive, own_state, rref_free
"""


def shadow_source(m, proxy_module: str, refilled: tuple = (), method_index: int = 0) -> str:
    """The jitted shadow of one method, a domain like any other: a fast path that
    only forwards, and the recovery kept in a function of its own (restart, retry or
    report), so that the fast path stays as cheap as a plain forwarding call. Its
    state (``shadow.SHADOW_STATE``) holds the driver's domain id; ``proxy_module``
    is the generated module holding the driver's proxy (:func:`callee_source`).

    ``refilled`` names by-value RRef parameters the driver only fills (a read buffer):
    when the request entered the driver and they went down with it, the shadow gets
    fresh ones from the kernel (``refill``, RedLeaf's bdev shadow re-allocates its
    buffer too) and retries; a request with any other by-value RRef is reported."""
    args = _args(m)
    moved = [p.name for p in m.params if p.mode == "move"]
    kept = [n for n in moved if n not in refilled]
    call = f"driver_call(k, own_state(k, state, SHADOW_STATE).driver{args})"
    entered = (["        if status == RPC_PANIC:   # the request entered the driver: "
                "its RRefs are gone",
                *(["            break   # and cannot be rebuilt: reported"] if kept else
                  [f"            {p.name} = refill(k, {method_index}, {i})   # a fresh one, "
                   "the shadow's" for i, p in enumerate(m.params) if p.name in refilled])]
               if moved else [])
    recover = ["@njit(cache=True, boundscheck=True)",
               f"def recover_{m.name}(k, state, status, ret{args}):",
               f'    """The driver failed {m.qualname}: recover it and retry while it is dead',
               "    and the policy allows"
               + (", unless the request entered it (its by-value RRefs went down\n"
                  "    with it: reported); what the shadow still holds of them is freed"
                  if kept else "") + '."""',
               "    deaths = 0",
               "    while status != RPC_OK and not domain_alive(k, own_state(k, state, SHADOW_STATE)"
               ".driver):",
               "        deaths += 1",
               "        if not restart_driver(k, status, deaths):",
               "            break   # the policy gave up, or reports in-flight requests",
               *entered,
               f"        status, ret = {call}"]
    if moved:
        recover += ["    if status != RPC_OK:",
                    *[f"        rref_free(k, {n})   # fails harmlessly if {n} moved on"
                      for n in moved]]
    recover.append("    return status, ret")
    fast = ["@njit(cache=True, boundscheck=True)",
            f"def shadow_{m.name}(k, state{args}):",
            f'    """Shadow of {m.signature()}: forward; recover the driver on failure.',
            "",
            "    Returns (status, result): a failure the shadow could not hide is reported",
            '    to the caller, and the shadow lives on for the next request."""',
            f"    status, ret = {call}",
            "    if status != RPC_OK:",
            f"        status, ret = recover_{m.name}(k, state, status, ret{args})",
            "    return status, ret",
            "",
            "",
            f"shadow_{m.name}.reports_status = True"]
    return _module(f"Generated by redleaf-nb: jitted shadow of {m.qualname}.",
                   DOMAIN_HEADER,
                   "from redleaf_nb.kernel.shadow import SHADOW_STATE, refill, restart_driver\n",
                   f"from {proxy_module} import driver_call\n\n\n",
                   "\n".join(recover), "\n\n\n", "\n".join(fast), "\n")


def forwarder_source(name: str, doc: str, m, proxy_module: str, state: tuple[str, str],
                     field: str) -> str:
    """A jitted domain function ``name(k, state, *args)`` that forwards ``m`` to the
    domain whose id its state record holds in ``field`` (``state``: the module and
    name of its dtype), passing the callee's status on (it reports, and lives on)."""
    args = _args(m)
    return _module(f"Generated by redleaf-nb: {doc}",
                   DOMAIN_HEADER,
                   f"from {state[0]} import {state[1]}\n",
                   f"from {proxy_module} import driver_call\n\n\n",
                   "@njit(cache=True, boundscheck=True)\n",
                   f"def {name}(k, state{args}):\n",
                   f'    """{doc}"""\n',
                   f"    return driver_call(k, own_state(k, state, {state[1]}).{field}{args})\n",
                   "\n\n",
                   f"{name}.reports_status = True\n")


BOUND_PER_COPY = "# bound per copy"


def bound_copy_source(module, callees: dict[str, str]) -> str:
    """The source of ``module``, a template of domain code, with the names of its line
    ``a = b = None  # bound per copy`` bound to generated proxies (``callees``: name ->
    the module of a proxy, :func:`callee_module`). Code written once (rv6's file system)
    reaches a domain chosen at run time this way, as Numba needs the callee at compile
    time; each copy is compiled, and cached, on its own."""
    src = inspect.getsource(module)
    lines = src.splitlines(keepends=True)
    marked = [i for i, line in enumerate(lines) if line.rstrip().split(BOUND_PER_COPY)[0].rstrip()
              .endswith("= None") and BOUND_PER_COPY in line]
    if len(marked) != 1:
        raise ValueError(f"{module.__name__}: a template needs one line "
                         f"'name = ... = None  {BOUND_PER_COPY}'")
    names = [n.strip() for n in lines[marked[0]].split("#")[0].split("=")[:-1]]
    if sorted(names) != sorted(callees):
        raise ValueError(f"{module.__name__}: the template binds {names}, not {sorted(callees)}")
    lines[marked[0]] = "".join(f"from {callees[n]} import driver_call as {n}  # {BOUND_PER_COPY}\n"
                               for n in names)
    return (f"# Generated by redleaf-nb: a copy of {module.__name__} with its callees bound.\n"
            + "".join(lines))


# --- loading what was generated ----------------------------------------------

def callee_module(iface: str, m, impl) -> str:
    """Generate and load the module of :func:`callee_source` (the proxy through which
    a shadow or rv6 calls ``impl``); its name, for the caller's generated import."""
    return load_generated(f"redleaf_proxy_{iface}_{m.name}_callee",
                          callee_source(iface, m, impl)).__name__


def generated_dir() -> Path:
    """Where generated jitted modules live (so numba can cache them)."""
    d = Path(os.environ.get("REDLEAF_NB_CACHE", Path.home() / ".cache" / "redleaf_nb"))
    d = d / "generated"
    d.mkdir(parents=True, exist_ok=True)
    return d


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
