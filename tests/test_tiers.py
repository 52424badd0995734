"""The Python tier and the jitted tier give the same answers on the same scenarios."""
import importlib
import pkgutil

import numpy as np
import pytest
from numba.core.registry import CPUDispatcher

import redleaf_nb
from redleaf_nb import Kernel, RpcError, StaleRRef
from redleaf_nb.drivers.membdev import MemBDev, MemDisk
from redleaf_nb.interfaces.bdev import Block
from redleaf_nb.kernel.proxy import RPC_BAD_ARG, RPC_DEAD, RPC_OK, RPC_PANIC


def fresh():
    k = Kernel(heap_bytes=1 << 20, max_objects=128)
    k.add_device("memdisk", MemDisk(8))
    return k, k.create("membdev", MemBDev, nblocks=8)


# One scenario: (operation, block, fill byte). 'stale' reuses a moved handle.
SCENARIO = [("write", 1, 11), ("write", 2, 22), ("read", 1, 0), ("read", 2, 0),
            ("stale", 2, 0), ("read", 9, 0), ("read", 1, 0), ("write", 3, 33)]


def run_python(k, disk):
    out, moved = [], None
    for op, block, fill in SCENARIO:
        if op == "stale":
            try:
                disk.read(block, moved)
                out.append(("ok",))
            except StaleRRef:
                out.append(("bad-arg",))
            continue
        buf = k.new(Block, np.full(4096, fill, np.uint8))
        r = disk.write(block, buf) if op == "write" else disk.read(block, buf)
        if op == "read":
            moved = buf
        if isinstance(r, RpcError):
            out.append(("dead",) if "the domain is" in r.reason else ("panic",))
        else:
            out.append(("ok", None if r is None else int(r.get().sum())))
    return out


def run_jitted(k, disk):
    out, moved = [], None
    names = {RPC_DEAD: "dead", RPC_PANIC: "panic", RPC_BAD_ARG: "bad-arg"}
    for op, block, fill in SCENARIO:
        if op == "stale":
            status, _ = k.jit_call(disk, "read", np.uint32(block), moved)
            out.append(("ok",) if status == RPC_OK else (names[status],))
            continue
        buf = k.new(Block, np.full(4096, fill, np.uint8))
        status, r = k.jit_call(disk, op, np.uint32(block), buf)
        if op == "read":
            moved = buf
        if status != RPC_OK:
            out.append((names[status],))
        else:
            out.append(("ok", None if op == "write" else int(k.wrap(r, Block).get().sum())))
    return out


def snapshot(k):
    objs = k.heap.objects()[["owner_name", "type", "size", "borrows"]]
    return (objs.sort_values(list(objs.columns)).values.tolist(),
            k.heap.accounting().values.tolist(), k.domains().state.tolist(),
            k._devices["memdisk"][0].blocks.sum(axis=1).tolist())


def test_both_tiers_agree_on_the_bdev_scenario():
    kp, dp = fresh()
    kj, dj = fresh()
    py, jit = run_python(kp, dp), run_jitted(kj, dj)
    assert py == jit
    assert py[:4] == [("ok", None), ("ok", None), ("ok", 11 * 4096), ("ok", 22 * 4096)]
    assert py[4:] == [("bad-arg",), ("panic",), ("dead",), ("dead",)]
    assert snapshot(kp) == snapshot(kj)
    kp.heap.check_invariants(), kj.heap.check_invariants()


def test_jitted_proxy_moves_and_lends_like_the_python_one():
    k, disk = fresh()
    buf = k.new(Block, np.full(4096, 7, np.uint8))
    assert k.jit_call(disk, "write", np.uint32(0), buf) == (RPC_OK, 0)
    assert buf.is_live and buf.owner == "init" and k.heap.objects().borrows.max() == 0
    status, h = k.jit_call(disk, "read", np.uint32(0), buf)
    assert status == RPC_OK and not buf.is_live
    back = k.wrap(h, Block)
    assert back.owner == "init" and (back.get() == 7).all()
    assert k.jit_call(disk, "nblocks") == (RPC_OK, 8)


def test_jitted_panic_reclaims_and_settles_the_domain():
    k, disk = fresh()
    buf = k.new(Block)
    status, _ = k.jit_call(disk, "read", np.uint32(100), buf)
    assert status == RPC_PANIC and not buf.is_live
    assert disk.domain.state == "crashed" and "jitted BDev.read" in disk.domain.crash_reason
    assert disk.domain.devices == set() and k.heap.live_objects == 0
    assert isinstance(disk.nblocks(), RpcError)  # the Python tier sees the same death


def _dispatchers():
    for mod in pkgutil.walk_packages(redleaf_nb.__path__, "redleaf_nb."):
        m = importlib.import_module(mod.name)
        for name, obj in vars(m).items():
            if isinstance(obj, CPUDispatcher) and obj.__module__ == mod.name:
                yield f"{mod.name}.{name}", obj


@pytest.mark.parametrize("name, fn", list(_dispatchers()))
def test_every_numba_function_is_cached(name, fn):
    assert type(fn._cache).__name__ != "NullCache", f"{name} lacks cache=True"


def test_jitted_calls_check_scalar_arguments_like_the_python_tier():
    k, disk = fresh()
    with pytest.raises(ValueError, match=r"BDev.read: parameter 'block': -1 is out of range"):
        k.jit_call(disk, "read", -1, k.new(Block))
    with pytest.raises(TypeError, match="takes 2 argument"):
        k.jit_call(disk, "read", 1)
    assert k.jit_call(disk, "nblocks") == (RPC_OK, 8)


def test_a_jitted_shadow_restarts_its_driver_transparently():
    k, disk = fresh()
    sh = k.create_shadow("shadow", "membdev")
    buf = k.new(Block, np.full(4096, 4, np.uint8))
    assert k.jit_call(sh, "write", 2, buf) == (RPC_OK, 0)
    k.crash("membdev")
    assert k.jit_call(sh, "nblocks") == (RPC_OK, 8)  # restarted, no error
    status, h = k.jit_call(sh, "read", 2, k.new(Block))
    assert status == RPC_OK and (k.wrap(h, Block).get() == 4).all()  # the write survived
    assert sh.domain.jit_state[1] == 1 and k.lookup("membdev").domain.alive
    k.heap.check_invariants()


def test_a_jitted_shadow_reports_a_request_it_cannot_retry():
    k, disk = fresh()
    sh = k.create_shadow("shadow", "membdev")
    buf = k.new(Block)
    status, _ = k.jit_call(sh, "read", 100, buf)  # the driver panics on every try
    assert status == RPC_PANIC and not buf.is_live  # reported, and nothing leaked
    assert k.lookup("membdev").domain.alive  # restarted once; the moved buffer was lost
    assert sh.domain.alive  # the shadow reports the failure as a status and lives on
    status, out = k.jit_call(sh, "read", 1, k.new(Block))
    assert status == RPC_OK and out != 0  # ... and serves the next request
    k.heap.check_invariants()
