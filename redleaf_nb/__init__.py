"""redleaf-nb: a notebook toolkit that models the RedLeaf OS (OSDI 2020).

The whole public API of the kernel core is listed here.
"""
from . import _numba_cache

_numba_cache.configure()   # before anything is jitted: see _numba_cache

from .kernel.domain import DomainCreateError, InjectedFault, Kernel
from .kernel.heap import (BorrowError, ContainerError, ForeignRRef, HeapCorrupted, HeapError,
                          HeapExhausted, StaleRRef)
from .kernel.idl import IDLError, Interface, JitUnsupported, create, show_proxy
from .kernel.proxy import RPC_STATUS, RpcError
from .kernel.rref import RRef, RRefArray, RRefDeque
from .kernel.types import (Borrow, NotExchangeable, Record, bool_, f32, f64, i8, i16, i32, i64,
                           u8, u16, u32, u64)

__version__ = "0.1.0"

__all__ = [
    "Kernel", "Interface", "create", "show_proxy", "RRef", "RRefArray", "RRefDeque", "Borrow",
    "Record", "RpcError", "RPC_STATUS", "IDLError", "NotExchangeable", "JitUnsupported",
    "HeapError", "HeapCorrupted", "HeapExhausted", "StaleRRef", "ForeignRRef", "BorrowError", "ContainerError",
    "DomainCreateError", "InjectedFault",
    "u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "f32", "f64", "bool_",
]
