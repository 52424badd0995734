"""rv6's file system: files of every size class, directories, a full disk, and crashes
in the middle of a write (the log makes them all-or-nothing; fsck judges the disk)."""
from __future__ import annotations

import numpy as np
import pytest

from redleaf_nb import Kernel, RpcError
from redleaf_nb.apps.rv6 import rv6_class
from redleaf_nb.apps.rv6.layout import (BSIZE, E_BADF, E_EXIST, E_FBIG, E_INVAL, E_ISDIR,
                                        E_NAMETOOLONG, E_NOENT, E_NOSPC, E_NOTDIR, E_NOTEMPTY,
                                        MAXFILE, NDIRECT, NINDIRECT, O_CREATE, O_RDONLY, O_RDWR,
                                        O_TRUNC, SEEK_END, SEEK_SET, T_DIR, T_FILE, path_bytes)
from redleaf_nb.apps.rv6.tools import fsck, mkfs
from redleaf_nb.drivers.membdev import MemBDev, MemDisk
from redleaf_nb.interfaces.bdev import Block
from redleaf_nb.kernel.faults import Fault
from redleaf_nb.kernel.shadow import shadow_class


def boot(nblocks=2048, ninodes=64, shadowed=False):
    k = Kernel(heap_bytes=32 << 20)
    disk = MemDisk(nblocks)
    mkfs(disk.blocks, ninodes)
    drv = k.create("membdev", MemBDev, device=k.add_device("memdisk", disk), nblocks=nblocks)
    cls = MemBDev
    if shadowed:
        drv = k.create_shadow("membdev-shadow", "membdev")
        cls = shadow_class(MemBDev.declared(), MemBDev)
    rv6 = k.create("rv6", rv6_class(disk_cls=cls), net=None, bdev=None, disk=drv)
    return k, disk, rv6


def pattern(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8)


def write_all(k, rv6, fd, data):
    buf = k.new(Block)
    for off in range(0, len(data), BSIZE):
        chunk = data[off:off + BSIZE]
        block = np.zeros(BSIZE, np.uint8)
        block[:len(chunk)] = chunk
        buf.set(block)
        assert rv6.write(fd, buf, len(chunk)) == len(chunk)


def read_all(k, rv6, fd):
    out, buf = [], k.new(Block)
    while True:
        n, buf = rv6.read(fd, buf, BSIZE)
        assert n >= 0
        if n == 0:
            return np.concatenate(out) if out else np.zeros(0, np.uint8)
        out.append(buf.get()[:n].copy())


def create_file(k, rv6, path, data):
    fd = rv6.open(path_bytes(path), O_CREATE | O_RDWR)
    assert fd >= 0
    write_all(k, rv6, fd, data)
    assert rv6.close(fd) == 0


def read_file(k, rv6, path):
    fd = rv6.open(path_bytes(path), O_RDONLY)
    assert fd >= 0, fd
    data = read_all(k, rv6, fd)
    assert rv6.close(fd) == 0
    return data


@pytest.mark.parametrize("size", [0, 1, BSIZE, BSIZE + 1, NDIRECT * BSIZE + 1,
                                  (NDIRECT + NINDIRECT) * BSIZE + 5000])
def test_files_of_every_size_class_read_back_exactly(size):
    k, disk, rv6 = boot()
    data = pattern(size, size)
    create_file(k, rv6, "/f", data)
    fd = rv6.open(path_bytes("/f"), O_RDONLY)
    kind, inum, nlink, got_size = rv6.fstat(fd)
    assert (kind, nlink, got_size) == (T_FILE, 1, size)
    assert np.array_equal(read_all(k, rv6, fd), data)
    report = fsck(disk.blocks)
    assert report.ok, report
    blocks = -(-size // BSIZE)
    indirect = (blocks > NDIRECT) + (blocks > NDIRECT + NINDIRECT) * 2   # + top and one mid
    assert report.used_blocks == 1 + blocks + indirect   # the root's block too


def test_the_largest_file_ends_at_maxfile_and_holes_read_as_zeros():
    k, disk, rv6 = boot()
    fd = rv6.open(path_bytes("/big"), O_CREATE | O_RDWR)
    last = MAXFILE * BSIZE - 1
    assert rv6.lseek(fd, last, SEEK_SET) == last
    buf = k.new(Block, np.full(BSIZE, 7, np.uint8))
    assert rv6.write(fd, buf, 1) == 1
    assert rv6.fstat(fd)[3] == MAXFILE * BSIZE
    assert rv6.write(fd, buf, 1) == E_FBIG
    assert rv6.lseek(fd, -BSIZE, SEEK_END) == MAXFILE * BSIZE - BSIZE
    n, buf = rv6.read(fd, buf, BSIZE)
    expect = np.zeros(BSIZE, np.uint8)
    expect[-1] = 7
    assert n == BSIZE and np.array_equal(buf.get(), expect)
    assert fsck(disk.blocks).ok
    assert rv6.close(fd) == 0
    assert rv6.unlink(path_bytes("/big")) == 0
    assert fsck(disk.blocks).used_blocks == 1


def test_directories_and_their_errors():
    k, disk, rv6 = boot()
    assert rv6.mkdir(path_bytes("/a")) == 0
    assert rv6.mkdir(path_bytes("/a/b")) == 0
    create_file(k, rv6, "/a/b/f", pattern(10))
    assert rv6.mkdir(path_bytes("/a")) == E_EXIST
    assert rv6.open(path_bytes("/a/nope"), O_RDONLY) == E_NOENT
    assert rv6.open(path_bytes("/a"), O_RDWR) == E_ISDIR
    assert rv6.open(path_bytes("/a/b/f/x"), O_RDONLY) == E_NOTDIR
    assert rv6.open(path_bytes("/" + "x" * 29), O_CREATE | O_RDWR) == E_NAMETOOLONG
    assert rv6.unlink(path_bytes("/a/b")) == E_NOTEMPTY
    assert rv6.unlink(path_bytes("/a/.")) == E_INVAL
    assert rv6.mkdir(path_bytes("/")) == E_INVAL
    assert rv6.close(5) == E_BADF
    fd = rv6.open(path_bytes("/a"), O_RDONLY)
    assert rv6.fstat(fd)[::2] == (T_DIR, 2)   # its entry in /, and b's ".."
    assert rv6.close(fd) == 0
    report = fsck(disk.blocks)
    assert report.ok and (report.files, report.dirs) == (1, 3), report
    assert np.array_equal(read_file(k, rv6, "/a/b/f"), pattern(10))
    assert rv6.unlink(path_bytes("/a/b/f")) == 0 and rv6.unlink(path_bytes("/a/b")) == 0
    report = fsck(disk.blocks)
    assert report.ok and (report.files, report.dirs) == (0, 2), report


def test_unlinked_space_and_inodes_are_reused():
    k, disk, rv6 = boot()
    create_file(k, rv6, "/f", pattern(20 * BSIZE))
    fd = rv6.open(path_bytes("/f"), O_RDONLY)
    inum = rv6.fstat(fd)[1]
    assert rv6.unlink(path_bytes("/f")) == 0
    assert np.array_equal(read_all(k, rv6, fd), pattern(20 * BSIZE))   # open: still there
    assert rv6.close(fd) == 0
    assert fsck(disk.blocks).used_blocks == 1
    create_file(k, rv6, "/g", pattern(5))
    fd = rv6.open(path_bytes("/g"), O_RDWR | O_TRUNC)
    assert rv6.fstat(fd)[1] == inum and rv6.fstat(fd)[3] == 0
    assert rv6.close(fd) == 0
    assert fsck(disk.blocks).ok


def test_a_full_disk_is_a_clear_error_and_corrupts_nothing():
    k, disk, rv6 = boot(nblocks=120, ninodes=32)
    fd = rv6.open(path_bytes("/fill"), O_CREATE | O_RDWR)
    buf = k.new(Block, np.full(BSIZE, 3, np.uint8))
    written = 0
    while (n := rv6.write(fd, buf, BSIZE)) == BSIZE:
        written += n
    assert n == E_NOSPC and written > 0
    assert rv6.fstat(fd)[3] == written
    assert rv6.close(fd) == 0
    report = fsck(disk.blocks)
    assert report.ok and report.free_blocks == 0, report
    assert rv6.open(path_bytes("/more"), O_CREATE | O_RDWR) >= 0   # an inode, no blocks
    assert rv6.unlink(path_bytes("/fill")) == 0
    assert fsck(disk.blocks).ok


def test_the_jitted_tier_and_the_python_tier_see_one_file_system():
    k, disk, rv6 = boot()
    fd = rv6.open(path_bytes("/t"), O_CREATE | O_RDWR)
    buf = k.new(Block, pattern(BSIZE, 1))
    assert k.jit_call(rv6, "write", fd, buf, BSIZE) == (0, BSIZE)
    assert k.jit_call(rv6, "lseek", fd, 0, SEEK_SET) == (0, 0)
    n, out = rv6.read(fd, k.new(Block), BSIZE)
    assert n == BSIZE and np.array_equal(out.get(), pattern(BSIZE, 1))
    assert rv6.lseek(fd, 0, SEEK_SET) == 0
    status, (n, handle) = k.jit_call(rv6, "read", fd, k.new(Block), BSIZE)
    assert (status, n) == (0, BSIZE)
    assert np.array_equal(k.wrap(handle, Block).get(), pattern(BSIZE, 1))
    assert k.jit_call(rv6, "fstat", fd) == (0, (T_FILE, rv6.fstat(fd)[1], 1, BSIZE))


def _rewrite_under_a_crash(k, disk, rv6, victim, point):
    old, new = pattern(3 * BSIZE, 1), pattern(3 * BSIZE, 2)
    create_file(k, rv6, "/f", old)
    fd = rv6.open(path_bytes("/f"), O_RDWR)
    k.inject(victim, Fault("panic", point=point))
    buf = k.new(Block, new[:BSIZE])
    assert isinstance(rv6.write(fd, buf, BSIZE), RpcError)
    assert not rv6.domain.alive
    return old, new


@pytest.mark.parametrize("point, lands", [("fs_write", False), ("log_written", False),
                                          ("log_committed", True), ("log_installed", True)])
def test_a_crash_of_the_file_system_mid_write_is_all_or_nothing(point, lands):
    k, disk, rv6 = boot()
    old, new = _rewrite_under_a_crash(k, disk, rv6, "rv6", point)
    # committed: the log header names the block until the next mount installs it
    assert fsck(disk.blocks).ok != lands
    rv6 = k.recreate("rv6")
    assert rv6.domain.impl.recovered == (1 if lands else 0)   # the one data block rewritten
    report = fsck(disk.blocks)
    assert report.ok, report
    want = np.concatenate([new[:BSIZE], old[BSIZE:]]) if lands else old
    assert np.array_equal(read_file(k, rv6, "/f"), want)
    k.heap.check_invariants()


def test_a_crash_of_the_disk_driver_mid_write_is_all_or_nothing():
    k, disk, rv6 = boot()
    old, _ = _rewrite_under_a_crash(k, disk, rv6, "membdev", "write")
    disk_driver = k.recreate("membdev")   # rv6 held the dead one: it boots over the new one
    rv6 = k.create("rv6", rv6.domain.impl_cls, net=None, bdev=None, disk=disk_driver)
    assert fsck(disk.blocks).ok
    assert np.array_equal(read_file(k, rv6, "/f"), old)
    owners = set(k.heap.objects().owner_name)
    assert owners <= {"init", "rv6"}     # the dead domains' buffers were reclaimed
    k.heap.check_invariants()


@pytest.mark.parametrize("point", ["read", "write"])
def test_a_shadowed_disk_hides_driver_crashes_from_the_file_system(point):
    k, disk, rv6 = boot(shadowed=True)
    data = pattern(300 * BSIZE, 3)                 # more than the 256-block cache
    create_file(k, rv6, "/f", data[:100 * BSIZE])
    k.inject("membdev", Fault("panic", point=point, after=20, every=50, times=3))
    fd = rv6.open(path_bytes("/f"), O_RDWR)
    assert rv6.lseek(fd, 0, SEEK_END) == 100 * BSIZE
    write_all(k, rv6, fd, data[100 * BSIZE:])
    assert rv6.close(fd) == 0
    assert np.array_equal(read_file(k, rv6, "/f"), data)
    stats = k.lookup("membdev-shadow").domain.impl.stats
    assert (stats.restarts, stats.reported) == (3, 0)
    assert rv6.domain.alive and k.lookup("membdev").domain.alive
    assert fsck(disk.blocks).ok
    assert set(k.heap.objects().owner_name) <= {"init", "rv6"}
    k.heap.check_invariants()
