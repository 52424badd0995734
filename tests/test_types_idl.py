"""Exchangeable types and the IDL compiler: what crosses, what is rejected, and where."""
from typing import Optional

import numpy as np
import pytest

from redleaf_nb import (Borrow, IDLError, Interface, NotExchangeable, Record, RRef, RRefArray,
                        RRefDeque, create, f64, i32, show_proxy, u8, u16, u32, u64)
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
                 "# 3. record the continuation", "# 4. ownership", "# 5. run the callee",
                 "# 6. pop the continuation"):
        assert step in src
    assert "rt.lend(cont" in src and "rt.move_in(cont" in src
    show_proxy(BDev, jit=True)
    jit_src = capsys.readouterr().out
    assert "def BDev_read(k, callee, state, block, data):" in jit_src
    assert "ret = impl(k, state, block, data)" in jit_src
    assert "except Exception:" in jit_src and "jit_crash" in jit_src
