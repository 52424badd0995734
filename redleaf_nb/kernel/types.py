"""Exchangeable types: what may cross a domain boundary, and its heap layout.

RedLeaf lets only *exchangeable* data cross a proxy: plain data that is
copied bit for bit (fixed-width scalars, fixed-size arrays, records of
those) and handles into the exchange heap (``RRef``, ``RRefArray``,
``RRefDeque``) whose ownership the proxy moves or lends. Anything that could
smuggle a reference into a domain's private heap (a Python list, dict, str,
a numpy array, an arbitrary object) is rejected, with the reason.

A type here is a small descriptor object (:class:`ExType`). Annotations are
turned into descriptors by :func:`exchangeable`, which is what the IDL
compiler calls for every parameter and return type.
"""
from __future__ import annotations

import sys
import types
import typing

import numpy as np

HANDLE_BYTES = 8        # a handle is one int64 word: (generation << 32) | slot
DEQUE_HEADER_WORDS = 3  # RRefDeque header: head, tail, length


class NotExchangeable(TypeError):
    """A type that may not cross a domain boundary, with the reason why."""

    def __init__(self, type_name: str, reason: str):
        self.type_name = type_name
        self.reason = reason
        super().__init__(f"{type_name} is not exchangeable: {reason}")


class ExType:
    """An exchangeable type.

    ``plain`` types have a numpy dtype and are copied across a proxy;
    ``heap`` types live in the exchange heap behind a handle and are moved
    (or lent, with :class:`Borrow`).

    Two types are the same when they have the same structure: the same kind
    of descriptor over the same parts, a record by its class and an interface
    by its class. Never by display name: two records both named ``Point``
    are different types, in the proxy's checks and in the heap's type ids.
    """

    plain = False
    heap = False
    name = "?"
    _key: tuple
    _hash: int

    def _identify(self, *parts) -> None:
        """Fix what makes this type itself (types are immutable, so once)."""
        self._key = (type(self), *parts)
        self._hash = hash(self._key)

    def __eq__(self, other):
        return self is other or (isinstance(other, ExType) and self._key == other._key)

    def __hash__(self):
        return self._hash

    def __repr__(self):
        return self.name


# --- plain data --------------------------------------------------------------

class Scalar(ExType):
    """A fixed-width number or bool; ``u8[4096]`` makes a fixed-size array."""

    plain = True

    def __init__(self, name: str, dtype):
        self.name = name
        self.dtype = np.dtype(dtype)
        self._identify(self.dtype.str)
        if self.dtype.kind in "iu":
            info = np.iinfo(self.dtype)
            self.min, self.max = int(info.min), int(info.max)

    def __getitem__(self, shape) -> ExType:
        return deferred(Array, self, shape)

    def check(self, value, where: str):
        """Check that a Python or numpy value fits this type; return it unconverted
        (what a numpy array of this dtype may store as is)."""
        kind = self.dtype.kind
        if kind == "b":
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{where}: expected bool, got {type(value).__name__}")
            return value
        if kind in "iu":
            if type(value) is not int and (isinstance(value, (bool, np.bool_))
                                           or not isinstance(value, (int, np.integer))):
                raise TypeError(f"{where}: expected an integer for {self.name}, "
                                f"got {type(value).__name__}")
            if not self.min <= value <= self.max:
                raise ValueError(f"{where}: {value} is out of range for {self.name} "
                                 f"[{self.min}, {self.max}]")
            return value
        if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool):
            raise TypeError(f"{where}: expected a number for {self.name}, got {type(value).__name__}")
        return value

    def coerce(self, value, where: str):
        """Check that a Python value fits this type; return it as numpy."""
        return self.dtype.type(self.check(value, where))


class Array(ExType):
    """A fixed-size array of plain elements, e.g. ``u8[4096]`` (a disk block)."""

    plain = True

    def __init__(self, elem: ExType, shape):
        elem = exchangeable(elem)
        if not elem.plain:
            raise NotExchangeable(f"{elem}[...]", "array elements must be plain data "
                                  "(scalars, arrays or records), not handles")
        shape = shape if isinstance(shape, tuple) else (shape,)
        where = f"{elem.name}[{', '.join(map(repr, shape))}]"
        if not shape:
            raise NotExchangeable(where, "an array needs at least one size")
        shape = tuple(_size(n, where) for n in shape)
        try:
            self.dtype = np.dtype((elem.dtype, shape))
        except (ValueError, OverflowError) as e:
            raise NotExchangeable(where, f"numpy cannot lay it out: {e}") from None
        self.elem = elem
        self.shape = shape
        self.name = f"{elem.name}[{', '.join(map(str, shape))}]"
        self._identify(elem, shape)

    def coerce(self, value, where: str):
        arr = np.asarray(value)
        if arr.shape != self.shape:
            raise ValueError(f"{where}: expected shape {self.shape} for {self.name}, got {arr.shape}")
        if self.elem.dtype.kind in "iu" and arr.size:
            if arr.dtype.kind not in "iub" or arr.min() < self.elem.min or arr.max() > self.elem.max:
                raise ValueError(f"{where}: values do not fit {self.elem.name}")
        return arr.astype(self.elem.dtype, copy=True)


class RecordType(ExType):
    """The exchangeable type of a :class:`Record` subclass."""

    plain = True

    def __init__(self, cls: type, fields: dict[str, ExType]):
        self.cls = cls
        self.fields = fields
        self.name = cls.__name__
        self.dtype = np.dtype([(f, t.dtype) for f, t in fields.items()], align=True)
        self._identify(cls)

    def coerce(self, value, where: str):
        if isinstance(value, np.void) and value.dtype == self.dtype:
            return value.copy()
        if isinstance(value, dict):
            missing = set(self.fields) - set(value)
            extra = set(value) - set(self.fields)
            if missing or extra:
                raise ValueError(f"{where}: {self.name} needs fields {sorted(self.fields)}; "
                                 f"missing {sorted(missing)}, unknown {sorted(extra)}")
            out = np.zeros((), self.dtype)
            for f, t in self.fields.items():
                out[f] = t.coerce(value[f], f"{where}.{f}")
            return out[()]
        raise TypeError(f"{where}: expected a dict or numpy record for {self.name}, "
                        f"got {type(value).__name__}")


class Record:
    """Base class for records: typed fields of plain exchangeable data.

    >>> class Header(Record):
    ...     src: u32
    ...     mac: u8[6]
    """

    __extype__: RecordType

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        check_type_name(cls.__name__, "a Record")
        hints = resolve_annotations(cls.__dict__.get("__annotations__", {}),
                                    vars(sys.modules[cls.__module__]),
                                    {cls.__name__: cls})
        fields = {}
        for fname, ann in hints.items():
            if fname.startswith("__"):
                continue
            try:
                t = exchangeable(ann)
            except NotExchangeable as e:
                raise NotExchangeable(f"{cls.__name__}.{fname}", e.reason) from None
            if not t.plain:
                raise NotExchangeable(f"{cls.__name__}.{fname}",
                                      f"record fields must be plain data, not {t}; "
                                      "keep handles in an RRefArray or RRefDeque")
            fields[fname] = t
        if not fields:
            raise NotExchangeable(cls.__name__, "a record needs at least one typed field")
        cls.__extype__ = RecordType(cls, fields)

    def __class_getitem__(cls, shape) -> ExType:
        return deferred(Array, cls, shape)


# --- heap types --------------------------------------------------------------

class HeapType(ExType):
    """A type stored in the exchange heap; crossing a proxy moves its handle.

    ``nbytes`` is the object's size in the heap; ``child_off`` and
    ``nchild`` locate the handle words of the RRefs it holds (containers),
    so the heap can reclaim them with their parent.
    """

    heap = True
    child_off = 0
    nchild = 0
    child: "RRefType | None" = None


def _plain_target(t, what: str) -> ExType:
    t = exchangeable(t)
    if not t.plain:
        raise NotExchangeable(f"{what}[{t}]", f"the target of {what} must be plain data "
                              "(scalars, arrays or records)")
    return t


class RRefType(HeapType):
    """``RRef[T]``: an owned object of plain type T in the exchange heap."""

    def __init__(self, target):
        self.target = _plain_target(target, "RRef")
        self.name = f"RRef[{self.target.name}]"
        self.nbytes = self.target.dtype.itemsize
        self._identify(self.target)


class ContainerType(HeapType):
    """A heap object holding N optional ``RRef[T]`` handle words after a header."""

    kind = "?"
    header_words = 0

    def __init__(self, target, n: int):
        self.target = _plain_target(target, self.kind)
        n = _size(n, f"{self.kind}[{self.target}, {n!r}]")
        self.n = self.nchild = n
        self.child = RRefType(self.target)
        self.name = f"{self.kind}[{self.target.name}, {n}]"
        self.child_off = HANDLE_BYTES * self.header_words
        self.nbytes = HANDLE_BYTES * (self.header_words + n)
        self._identify(self.target, n)

    @classmethod
    def subscript(cls, params) -> ExType:
        """``RRefArray[T, N]`` / ``RRefDeque[T, N]``, kept as :class:`Rejected` if bad."""
        def make():
            if not (isinstance(params, tuple) and len(params) == 2):
                raise NotExchangeable(f"{cls.kind}[{params!r}]",
                                      "write it as [T, N]: an item type and a capacity")
            return cls(exchangeable(params[0]), params[1])
        return deferred(make)


class RRefArrayType(ContainerType):
    """``RRefArray[T, N]``: N optional ``RRef[T]`` slots in one heap object."""

    kind = "RRefArray"


class RRefDequeType(ContainerType):
    """``RRefDeque[T, N]``: a fixed-capacity ring of ``RRef[T]`` (packet batches);
    its header holds head, tail and length."""

    kind = "RRefDeque"
    header_words = DEQUE_HEADER_WORDS


# --- composites --------------------------------------------------------------

class OptionalType(ExType):
    """``Optional[T]``: T or nothing."""

    def __init__(self, inner: ExType):
        self.inner = inner
        self.name = f"Optional[{inner.name}]"
        self._identify(inner)


class TupleType(ExType):
    """``tuple[A, B, ...]`` of exchangeable items (e.g. RedLeaf's returned deques)."""

    def __init__(self, items: tuple[ExType, ...]):
        self.items = items
        self.name = f"tuple[{', '.join(t.name for t in items)}]"
        self._identify(items)


class InterfaceType(ExType):
    """A reference to another domain's interface (the declaring class): crosses as a proxy.

    A forward reference (``-> "Net"``) is resolved to the class before this is made.
    """

    def __init__(self, iface: type):
        self.iface = iface
        self.name = iface.__name__
        self._identify(iface)


class Device:
    """A capability to drive one device of one kernel, as RedLeaf's ``pci`` domain hands
    a driver its (type-guarded) BAR. Only the kernel makes one (``Kernel.add_device``);
    ``init`` hands it to a driver as a create argument, and a shadow replays it when
    it re-creates the driver. The driver claims it with ``self.domain.claim(device)``."""

    __slots__ = ("kernel", "name")

    def __init__(self, kernel, name: str):
        self.kernel, self.name = kernel, name

    def __repr__(self):
        return f"<Device '{self.name}'>"


class DeviceType(ExType):
    """The type of a :class:`Device` capability: crosses as the capability itself."""

    name = "Device"

    def __init__(self):
        self._identify()


DEVICE = DeviceType()


class UnitType(ExType):
    """``None``: no value."""

    name = "None"

    def __init__(self):
        self._identify()


UNIT = UnitType()


class BorrowType(ExType):
    """``Borrow[RRef[T]]``: lend a heap object for the duration of one call."""

    def __init__(self, inner: ExType):
        if not inner.heap:
            raise NotExchangeable(f"Borrow[{inner}]", "only heap objects (RRef, RRefArray, "
                                  "RRefDeque) can be borrowed")
        self.inner = inner
        self.name = f"Borrow[{inner.name}]"
        self._identify(inner)


class Rejected(ExType):
    """An annotation already known to be invalid (e.g. ``RRef[list]``).

    Subscripting builds types eagerly while a class body runs; keeping the
    error until :func:`exchangeable` lets the IDL compiler say where it is.
    """

    def __init__(self, error: NotExchangeable):
        self.error = error
        self.name = error.type_name
        self._identify(id(self))  # equal only to itself


def deferred(make, *args) -> ExType:
    """``make(*args)``, or a :class:`Rejected` holding its NotExchangeable.

    Every subscript of an exchangeable type (``u8[n]``, ``RRef[T]``,
    ``RRefDeque[T, N]``, ...) goes through here, so a bad one never raises
    while a ``def`` line runs, only when the IDL compiler can say where.
    """
    try:
        return make(*args)
    except NotExchangeable as e:
        return Rejected(e)


class Borrow:
    """Argument mode: ``data: Borrow[RRef[Block]]`` is RedLeaf's ``&RRef<Block>``."""

    def __class_getitem__(cls, inner):
        return deferred(lambda i: BorrowType(exchangeable(i)), inner)


# --- the scalar vocabulary ---------------------------------------------------

u8, u16, u32, u64 = (Scalar(f"u{n}", f"uint{n}") for n in (8, 16, 32, 64))
i8, i16, i32, i64 = (Scalar(f"i{n}", f"int{n}") for n in (8, 16, 32, 64))
f32, f64 = Scalar("f32", "float32"), Scalar("f64", "float64")
bool_ = Scalar("bool", "bool")

_REJECTED = {
    int: "a Python int has no fixed width; use u8..u64 or i8..i64",
    float: "use f32 or f64 (a fixed width)",
    str: "a str is a reference into the caller's private heap; use a fixed-size u8[N] array",
    bytes: "bytes live in the caller's private heap; use a fixed-size u8[N] array or RRef[u8[N]]",
    bytearray: "a bytearray lives in the caller's private heap; use RRef[u8[N]]",
    list: "a list is a reference into the caller's private heap; use a fixed-size array, "
          "RRefArray or RRefDeque",
    dict: "a dict is a reference into the caller's private heap; use a Record",
    set: "a set is a reference into the caller's private heap",
    object: "an arbitrary object may hold references into the caller's private heap",
    np.ndarray: "a numpy array is a reference into the caller's private heap; "
                "use a fixed-size array type such as u8[4096] or an RRef",
}


def resolve_annotations(annotations: dict, globalns: dict, localns: dict) -> dict:
    """Evaluate string annotations (``from __future__ import annotations``)."""
    out = {}
    for name, ann in annotations.items():
        for _ in range(2):  # twice: a quoted name under `from __future__ import annotations`
            if not isinstance(ann, str):
                break
            try:
                ann = eval(ann, globalns, localns)  # noqa: S307 - annotations are code
            except NameError as e:
                raise NotExchangeable(repr(ann), f"an unresolved name ({e})") from None
            except Exception as e:  # noqa: BLE001 - any failure is a bad annotation
                raise NotExchangeable(repr(ann), f"evaluating it failed: {e!r}") from None
        out[name] = ann
    return out


def _size(n, where: str) -> int:
    """An array size or container capacity: a positive int (a bool is not a size)."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise NotExchangeable(where, f"a size must be a positive int, not {n!r}")
    return int(n)


# Names of the built-in types (handles are defined in rref.py, Interface in idl.py).
# A Record or Interface may not take one: messages and generated proxies name types,
# and a record called ``u8`` would read as the scalar everywhere.
RESERVED_NAMES = frozenset(
    {t.name for t in (u8, u16, u32, u64, i8, i16, i32, i64, f32, f64, bool_)}
    | {"bool_", "RRef", RRefArrayType.kind, RRefDequeType.kind, Borrow.__name__,
       Record.__name__, "Interface", "Optional", "Union", "tuple", "None", Device.__name__}
    | {t.__name__ for t in _REJECTED})


def check_type_name(name: str, what: str) -> None:
    """Refuse a declared type named like a built-in one."""
    if name in RESERVED_NAMES:
        raise NotExchangeable(name, f"{what} may not be named '{name}', the name of a "
                              "built-in type; choose another name")


def _describe(ann) -> str:
    if isinstance(ann, type):
        return ann.__name__
    return getattr(ann, "__name__", None) or repr(ann)


def exchangeable(ann) -> ExType:
    """Turn a type annotation into an :class:`ExType`, or raise NotExchangeable."""
    if isinstance(ann, Rejected):
        raise ann.error
    if isinstance(ann, ExType):
        return ann
    if ann is None or ann is type(None):
        return UNIT
    if ann is bool:
        return bool_
    if ann is Device:
        return DEVICE
    if isinstance(ann, type) and issubclass(ann, Record) and hasattr(ann, "__extype__"):
        return ann.__extype__
    if getattr(ann, "__interface__", False):
        return InterfaceType(ann)
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            inner = exchangeable(rest[0])
            if isinstance(inner, BorrowType):
                raise NotExchangeable(_describe(ann), "Borrow is an argument mode, not a type")
            return OptionalType(inner)
        raise NotExchangeable(_describe(ann), "a union is not exchangeable (only Optional[T])")
    if origin is tuple:
        if not args or Ellipsis in args:
            raise NotExchangeable(_describe(ann), "a tuple needs a fixed list of item types")
        items = tuple(exchangeable(a) for a in args)
        if any(isinstance(t, (BorrowType, UnitType)) for t in items):
            raise NotExchangeable(_describe(ann), "tuple items must be values")
        return TupleType(items)
    base = origin or ann
    for rejected, reason in _REJECTED.items():
        if base is rejected:
            raise NotExchangeable(_describe(ann), reason)
    if isinstance(ann, str):
        raise NotExchangeable(repr(ann), "an unresolved name (declare the type before using it)")
    raise NotExchangeable(_describe(ann), "an arbitrary object may hold references into the "
                          "caller's private heap; use scalars, fixed-size arrays, records, "
                          "RRefs or interface references")
