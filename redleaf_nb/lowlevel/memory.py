"""Raw memory access for the jitted tier: 64-bit loads and stores, and pointers.

The jitted tier reaches the kernel's arrays through their data addresses
(see state.py): Numba reference-counts every array a function is handed or
views, with atomic runtime calls that cost more than a cross-domain call's
own work; addresses and ``numba.carray`` views of them cost nothing.
"""
from __future__ import annotations

import functools

import numba
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
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


def _element(dtype):
    """The numba type of the values a ``dtype`` argument names: a scalar class
    (``np.uint8``) or a dtype object (a structured ``np.dtype`` for records)."""
    return dtype.dtype if isinstance(dtype, types.DType) else dtype.instance_type


@intrinsic
def pointer(typingctx, address, dtype):
    """A pointer to ``dtype`` values (``np.uint8``, or a structured ``np.dtype``) at
    an address, for ``numba.carray`` views."""
    sig = types.CPointer(_element(dtype))(types.int64, dtype)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))
    return sig, codegen


@intrinsic
def itemsize(typingctx, dtype):
    """The size in bytes of one ``dtype`` value, a compile-time constant."""
    def codegen(context, builder, signature, args):
        size = context.get_abi_sizeof(context.get_data_type(_element(signature.args[0])))
        return context.get_constant(types.int64, size)
    return types.int64(dtype), codegen


@intrinsic
def compare_bytes(typingctx, a, b, nbytes):
    """libc ``memcmp`` of ``nbytes`` at addresses ``a`` and ``b``: 0 when they are equal.
    A byte loop with bounds checks compares 64 bytes in about 100 cycles; this in a few."""
    def codegen(context, builder, signature, args):
        i8p = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.IntType(32), [i8p, i8p, _I64])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "memcmp")
        r = builder.call(fn, [builder.inttoptr(args[0], i8p), builder.inttoptr(args[1], i8p),
                              args[2]])
        return builder.sext(r, _I64)
    return types.int64(types.int64, types.int64, types.int64), codegen


@intrinsic
def move_bytes(typingctx, dst, src, nbytes):
    """Copy ``nbytes`` from address ``src`` to address ``dst`` (LLVM's memmove: the
    regions may overlap). Numba copies array slices element by element: 4 KiB of
    bytes took about 1.9 us, this about 0.1 us."""
    def codegen(context, builder, signature, args):
        i8p = ir.IntType(8).as_pointer()
        d, s = builder.inttoptr(args[0], i8p), builder.inttoptr(args[1], i8p)
        fn = builder.module.declare_intrinsic("llvm.memmove", [i8p, i8p, _I64])
        builder.call(fn, [d, s, args[2], ir.Constant(ir.IntType(1), 0)])
        return context.get_dummy_value()
    return types.none(types.int64, types.int64, types.int64), codegen


@intrinsic
def call_void(typingctx, fn, arg):
    """Call the C function at address ``fn`` (``void f(int64_t)``) with ``arg``: how the
    kernel lets a device model run (its step, compiled as a ``cfunc``)."""
    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.VoidType(), [_I64])
        builder.call(builder.inttoptr(args[0], fnty.as_pointer()), [args[1]])
        return context.get_dummy_value()
    return types.none(types.int64, types.int64), codegen


@functools.cache
def c_function(step):
    """``step`` (an ``@njit`` function of one int64, e.g. a device model's step) as a C
    function ``void f(int64_t)``: its ``.address`` is what :func:`call_void` and C code
    call. Compiled once per process, not cached on disk: numba stamps a cfunc's cache by
    this file alone, so an edit to the model could load stale code."""
    def run(arg):
        step(arg)
    return numba.cfunc(types.void(types.int64))(run)


@njit(cache=True, inline="always")
def ring_next(i, n):
    """The index after ``i`` in a ring of ``n`` (a compare: ``% n`` by a variable is an
    integer division, tens of cycles on every step of a hot ring loop)."""
    i += 1
    return 0 if i == n else i
