"""Raw 64-bit word loads and stores, for the jitted tier's hottest paths.

Jitted code that reads a numpy array held in the kernel's StructRef pays
for Numba's reference counting of that array (an ``NRT_incref`` and
``NRT_decref`` call around uses it cannot prove redundant: tens of cycles).
The proxy path instead reads the kernel's metadata through the arrays' base
addresses, which the StructRef also holds as plain integers. The arrays stay
alive because the Python side owns them for as long as the kernel lives.
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

_I64 = ir.IntType(64)


@intrinsic
def load(typingctx, base, index):
    """The int64 word ``index`` of the array whose data starts at address ``base``."""
    def codegen(context, builder, signature, args):
        ptr = builder.inttoptr(args[0], _I64.as_pointer())
        return builder.load(builder.gep(ptr, [args[1]]))
    return types.int64(types.int64, types.int64), codegen


@intrinsic
def store(typingctx, base, index, value):
    """Write int64 word ``index`` of the array at address ``base``."""
    def codegen(context, builder, signature, args):
        ptr = builder.inttoptr(args[0], _I64.as_pointer())
        builder.store(args[2], builder.gep(ptr, [args[1]]))
        return context.get_dummy_value()
    return types.none(types.int64, types.int64, types.int64), codegen
