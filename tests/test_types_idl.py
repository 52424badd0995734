"""Exchangeable types and the IDL compiler: what crosses, what is rejected, and where."""
import ast
import re
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

from redleaf_nb import (Borrow, ContainerError, IDLError, Interface, Kernel, NotExchangeable,
                        Record, RRef, RRefArray, RRefDeque, create, f64, i32, show_proxy, u8, u16,
                        u32, u64)
from redleaf_nb.interfaces.bdev import BDev
from redleaf_nb.kernel.types import exchangeable


class Anything:
    pass


@pytest.mark.parametrize("bad, shown", [
    (list, "list"), (dict, "dict"), (str, "str"), (bytes, "bytes"), (set, "set"),
    (int, "int"), (float, "float"), (object, "object"), (np.ndarray, "ndarray"),
    (Anything, "Anything"), (list[u32], "list"),
])
def test_non_exchangeable_parameter_is_rejected_at_declaration(bad, shown):
    with pytest.raises(IDLError) as e:
        class Bad(Interface):
            def put(self, items: bad) -> None: ...
    msg = str(e.value)
    assert msg.startswith("Bad.put: parameter 'items': ")
    assert shown in msg and "not exchangeable" in msg


def test_non_exchangeable_return_type_is_rejected():
    with pytest.raises(IDLError, match=r"Bad\.get: return type: dict is not exchangeable"):
        class Bad(Interface):
            def get(self) -> dict: ...


def test_missing_annotations_and_varargs_are_rejected():
    with pytest.raises(IDLError, match=r"Bad\.put: parameter 'x' has no type annotation"):
        class Bad(Interface):
            def put(self, x) -> None: ...
    with pytest.raises(IDLError, match=r"Bad2\.put: no return annotation"):
        class Bad2(Interface):
            def put(self, x: u32): ...
    with pytest.raises(IDLError, match=r"Bad3\.put: parameter 'xs': \*args"):
        class Bad3(Interface):
            def put(self, *xs: u32) -> None: ...


def test_borrow_is_only_for_heap_objects_and_only_for_arguments():
    with pytest.raises(IDLError, match=r"parameter 'x': Borrow\[u32\] is not exchangeable"):
        class Bad(Interface):
            def put(self, x: Borrow[u32]) -> None: ...
    with pytest.raises(IDLError, match="Borrow is an argument mode"):
        class Bad2(Interface):
            def get(self) -> Borrow[RRef[u32]]: ...


def test_handles_must_point_at_plain_data():
    with pytest.raises(NotExchangeable, match="must be plain data"):
        exchangeable(RRef[RRef[u32]])
    with pytest.raises(NotExchangeable, match="must be plain data"):
        exchangeable(RRefDeque[RRefArray[u8, 2], 4])
    with pytest.raises(IDLError, match=r"Bad\.put: parameter 'x': list is not exchangeable"):
        class Bad(Interface):
            def put(self, x: RRef[list]) -> None: ...


def test_records_check_their_fields():
    class Inner(Record):
        a: u16
        b: u8[6]

    class Outer(Record):
        inner: Inner
        n: u64

    t = exchangeable(Outer)
    assert t.plain and t.dtype.names == ("inner", "n")
    with pytest.raises(NotExchangeable, match=r"Bad\.items is not exchangeable: a list"):
        class Bad(Record):
            items: list
    with pytest.raises(NotExchangeable, match=r"Bad2\.r is not exchangeable: record fields must be plain"):
        class Bad2(Record):
            r: RRef[u32]


def test_every_exchangeable_kind_is_accepted():
    class Pkt(Record):
        len: u16
        data: u8[64]

    class Net(Interface):
        def scalars(self, a: u8, b: i32, c: f64, d: bool) -> u64: ...
        def arrays(self, a: u32[4], p: Pkt) -> Pkt: ...
        def rrefs(self, a: RRef[Pkt], b: RRefArray[u64, 8],
                  c: RRefDeque[u8[1514], 32]) -> tuple[u64, RRefDeque[u8[1514], 32]]: ...
        def opt(self, a: Optional[RRef[u32]]) -> Optional[u32]: ...
        def iface(self, other: BDev) -> "Net": ...

    modes = {p.name: p.mode for m in Net.__methods__.values() for p in m.params}
    assert modes == {"a": "move", "b": "move", "c": "move", "d": "copy", "p": "copy",
                     "other": "proxy"}
    assert Net.__methods__["iface"].ret.name == "Net"


def test_create_must_return_its_interface():
    with pytest.raises(IDLError, match=r"Bad\.make: a @create method must return"):
        class Bad(Interface):
            def get(self) -> u32: ...

            @create
            def make(self) -> u32: ...


def test_implementation_must_define_every_method():
    with pytest.raises(TypeError, match="does not define: write, nblocks, create_bdev"):
        class Half(BDev):
            def read(self, block, data):
                return data


def test_generated_proxies_are_readable(capsys):
    src = BDev.proxy_source()
    for step in ("# 1. is the callee alive", "# 2. check every argument",
                 "# 3. ownership", "# 4. record the continuation", "# 5. run the callee",
                 "# 6. pop the continuation"):
        assert step in src
    assert "rt.check_and_lend(cont" in src and "rt.check_and_move(cont" in src
    show_proxy(BDev, jit=True)
    jit_src = capsys.readouterr().out
    assert "def BDev_read(k, callee, block, data):" in jit_src
    assert "ret = impl(k, callee, block, data)" in jit_src   # the callee is handed its id
    assert "except Exception:" in jit_src and "jit_crash" in jit_src


# --- type identity: by structure, never by display name ---------------------

def two_points():
    """Two different records that are both named Point."""
    class Point(Record):
        x: u32

    first = Point

    class Point(Record):  # noqa: F811 - the point: a second, different Point
        x: u32
        y: u32

    return first, Point


@pytest.mark.parametrize("make", [
    lambda T: RRef[T], lambda T: T[2], lambda T: RRefArray[T, 2], lambda T: RRefDeque[T, 2],
    lambda T: Optional[RRef[T]], lambda T: tuple[RRef[T], u8], lambda T: Borrow[RRef[T]],
], ids=["RRef", "array", "RRefArray", "RRefDeque", "Optional", "tuple", "Borrow"])
def test_types_with_the_same_name_but_different_records_differ(make):
    a_rec, b_rec = two_points()
    a, b = exchangeable(make(a_rec)), exchangeable(make(b_rec))
    assert a.name == b.name and a != b
    again = exchangeable(make(a_rec))
    assert a == again and hash(a) == hash(again) and len({a, b, again}) == 2


def test_heap_type_ids_follow_type_identity():
    a_rec, b_rec = two_points()
    k = Kernel(heap_bytes=1 << 16, max_objects=16)
    assert k.heap.type_id(RRef[a_rec]) != k.heap.type_id(RRef[b_rec])
    assert k.heap.type_id(RRef[a_rec]) == k.heap.type_id(RRef[a_rec])
    arr = k.new(RRefArray[b_rec, 2])
    with pytest.raises(ContainerError, match="holds children of another type"):
        arr.put(0, k.new(a_rec, {"x": 1}))


class Measure(Interface):
    def norm(self, p: RRef[two_points()[1]]) -> u32: ...

    @create
    def make(self) -> "Measure": ...


class MeasureImpl(Measure):
    def make(self):
        pass

    def norm(self, p):
        return p.get()["x"] + p.get()["y"]


def test_a_proxy_refuses_a_record_of_the_same_name_but_another_type():
    a_rec, b_rec = two_points()
    k = Kernel(heap_bytes=1 << 16, max_objects=16)
    m = k.create("measure", MeasureImpl)
    wrong = k.new(a_rec, {"x": 3})
    with pytest.raises(TypeError, match=r"Measure\.norm: parameter 'p': expected RRef\[Point\]"):
        m.norm(wrong)
    assert wrong.is_live and wrong.owner == "init" and m.domain.alive


def interface_named(name, method="get"):
    """A fresh interface class named ``name`` with one method ``method``."""
    def fn(self) -> u32: ...
    fn.__name__ = method
    return type(name, (Interface,), {method: fn, "__module__": __name__})


def test_interface_references_compare_by_class_not_name():
    first, second = interface_named("Net"), interface_named("Net")
    assert exchangeable(first) != exchangeable(second)
    assert exchangeable(first) == exchangeable(first)

    class Holder(Interface):
        def hold(self, net: first) -> None: ...

        @create
        def make(self) -> "Holder": ...

    class HolderImpl(Holder):
        def make(self):
            pass

        def hold(self, net):
            pass

    class NetImpl(second):
        def get(self):
            return 1

    k = Kernel(heap_bytes=1 << 16, max_objects=16)
    holder, other = k.create("holder", HolderImpl), k.create("net", NetImpl)
    with pytest.raises(TypeError, match=r"Holder\.hold: parameter 'net': expected a Net proxy"):
        holder.hold(other)


# --- names the compiler must refuse ------------------------------------------

BUILTIN_NAMES = ["RRef", "RRefArray", "RRefDeque", "Borrow", "Optional", "Record", "Interface",
                 "u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "f32", "f64", "bool",
                 "list", "tuple"]


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_a_record_may_not_take_a_builtin_type_name(name):
    with pytest.raises(NotExchangeable, match=rf"a Record may not be named '{name}'"):
        type(name, (Record,), {"__annotations__": {"a": u32}, "__module__": __name__})


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_an_interface_may_not_take_a_builtin_type_name(name):
    with pytest.raises(IDLError, match=rf"^{name}: an Interface may not be named '{name}'"):
        interface_named(name)


@pytest.mark.parametrize("name", ["domain", "declared", "proxy_source", "jit_methods",
                                  "jit_state", "target", "policy", "stats", "_kernel",
                                  "_domain", "__repr__", "__init__", "_forward", "_private"])
def test_a_method_may_not_shadow_what_proxies_kernels_and_shadows_use(name):
    with pytest.raises(IDLError, match=rf"^Bad\.{name}: a method may not be named '{name}': "):
        interface_named("Bad", name)


def test_reserved_method_names_come_from_the_classes_they_protect():
    from redleaf_nb.kernel.idl import reserved_method_names
    from redleaf_nb.kernel.proxy import Proxy
    from redleaf_nb.kernel.shadow import ShadowBase
    names = reserved_method_names()
    for cls in (Proxy, Interface, ShadowBase):
        assert set(dir(cls)) <= set(names), cls
    assert "Proxy.domain" in names["domain"] and "ShadowBase.stats" in names["stats"]


# --- bad sizes: refused by the compiler, naming the place ------------------------

class Pt(Record):
    x: u16


@pytest.mark.parametrize("ann", ["u8[0]", "u8[-3]", "u8[True]", "u8[2.5]", "u8[4, 0]", "Pt[0]",
                                 "Pt[2.0]", "RRef[u8[0]]", "RRefArray[u8, 0]", "RRefArray[u8]",
                                 "RRefDeque[u8, True]", "RRefDeque[u64, -1]",
                                 "Optional[RRef[u8[False]]]", "tuple[u8[0], u32]"])
@pytest.mark.parametrize("style", ["eager", "string"])
def test_bad_sizes_are_rejected_by_the_compiler_naming_the_place(ann, style):
    text = ann if style == "eager" else repr(ann)
    src = f"class Bad(Interface):\n    def put(self, x: u32, data: {text}) -> None: ...\n"
    with pytest.raises(IDLError, match=r"^Bad\.put: parameter 'data': .* is not exchangeable"):
        exec(src, dict(globals()))  # noqa: S102 - the declaration under test
    ret = f"class Bad(Interface):\n    def get(self) -> {text}: ...\n"
    with pytest.raises(IDLError, match=r"^Bad\.get: return type: .* is not exchangeable"):
        exec(ret, dict(globals()))  # noqa: S102


def test_a_bad_size_says_why():
    with pytest.raises(IDLError, match=r"u8\[True\] is not exchangeable: a size must be a "
                                       r"positive int, not True"):
        class Bad(Interface):
            def put(self, data: u8[True]) -> None: ...
    with pytest.raises(NotExchangeable, match=r"BadRec\.a is not exchangeable: a size"):
        class BadRec(Record):
            a: u8[0]
    assert exchangeable(u8[np.int64(3), 2]).shape == (3, 2)


@pytest.mark.parametrize("name", ["rt", "callee", "cont", "ret", "k", "state", "status", "move",
                                  "own_state", "driver_call", "Exception", "slot_x", "lent_data",
                                  "P_put", "STATE"])
def test_a_parameter_may_not_take_a_name_the_generated_proxies_use(name):
    # e.g. a parameter 'rt' was overwritten by the Python proxy's own 'rt' before it was
    # checked; 'k' is a duplicate argument of the jitted proxy; 'own_state' breaks the shadow
    src = f"class Bad(Interface):\n    def put(self, {name}: u32) -> None: ...\n"
    with pytest.raises(IDLError, match=rf"^Bad\.put: parameter '{name}': the generated proxies "
                                       "use this name"):
        exec(src, dict(globals()))  # noqa: S102 - the declaration under test


def test_show_proxy_prints_the_jitted_shadow_generated_for_a_driver(capsys):
    from redleaf_nb.drivers.membdev import MemBDev
    show_proxy(BDev, shadow_of=MemBDev)
    src = capsys.readouterr().out
    for name in MemBDev.jit_methods:
        assert f"def shadow_{name}(k, state" in src and f"def recover_{name}(k, state" in src
    assert "restart_driver(k, status, deaths)" in src and "refill(k, " in src


# --- one room for generated code ------------------------------------------------------

CODE_WORDS = re.compile(r"(^|\n)\s*(def |class |return |import |from \S+ import |@njit)")


def _code_strings(path):
    """String literals in a file that hold lines of code (docstrings aside)."""
    tree = ast.parse(path.read_text())
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef))
                  and n.body and isinstance(n.body[0], ast.Expr)
                  and isinstance(n.body[0].value, ast.Constant)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docstrings and CODE_WORDS.search(node.value):
            out.append(f"{path.name}:{node.lineno}: {node.value[:40]!r}")
    return out


@pytest.mark.parametrize("module", ["redleaf_nb/kernel/idl.py", "redleaf_nb/kernel/shadow.py",
                                    "redleaf_nb/apps/rv6/__init__.py"])
def test_code_is_generated_only_in_codegen(module):
    root = Path(__file__).resolve().parents[1]
    assert not _code_strings(root / module), "source text built outside kernel/codegen.py"
    assert _code_strings(root / "redleaf_nb/kernel/codegen.py")   # the check can see it
