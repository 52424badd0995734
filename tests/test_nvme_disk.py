"""rv6's file system on the NVMe drive, through the block-device adapter: the drive runs
beside the CPU while the adapter waits for each completion."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from devices.nvme import NvmeSsd, nvme_step
from devices.profiles import nvme_profile
from redleaf_nb import Kernel, RpcError
from redleaf_nb.apps.nvme_disk import nvme_disk_class
from redleaf_nb.apps.rv6 import rv6_class
from redleaf_nb.apps.rv6.layout import BSIZE, O_CREATE, O_RDWR, SEEK_SET, path_bytes
from redleaf_nb.apps.rv6.tools import fsck, mkfs
from redleaf_nb.drivers.nvme import Nvme
from redleaf_nb.interfaces.bdev import Block
from redleaf_nb.interfaces.nvme import NvmeBDev
from redleaf_nb.kernel.shadow import shadow_class


def nvme_stack(shadowed: bool, step=nvme_step, nblocks=512):
    k = Kernel(heap_bytes=16 << 20)
    ssd = NvmeSsd(dataclasses.replace(nvme_profile("p3700"), nblocks=nblocks))
    mkfs(ssd.blocks, ninodes=32)
    drv = k.create("nvme", Nvme, device=k.add_device("ssd", ssd, step=step), batch=8,
                   queue_entries=64)
    cls = Nvme
    if shadowed:
        drv = k.create_shadow("nvme-shadow", "nvme")
        cls = shadow_class(NvmeBDev.declared(), Nvme)
    ssd.start_clock()
    disk = k.create("nvme-disk", nvme_disk_class(cls), nvme=drv, nblocks=nblocks)
    return k, ssd, disk


@pytest.mark.parametrize("shadowed", [False, True])
def test_rv6_reads_and_writes_files_on_the_nvme_drive(shadowed):
    k, ssd, disk = nvme_stack(shadowed)
    rv6 = k.create("rv6", rv6_class(disk_cls=type(disk.domain.impl)), net=None, bdev=None,
                   disk=disk)
    data = np.random.default_rng(5).integers(0, 256, 40 * BSIZE, dtype=np.uint8)
    fd = rv6.open(path_bytes("/on-nvme"), O_CREATE | O_RDWR)
    buf = k.new(Block)
    for i in range(40):
        buf.set(data[i * BSIZE:(i + 1) * BSIZE])
        assert rv6.write(fd, buf, BSIZE) == BSIZE
    assert rv6.lseek(fd, 0, SEEK_SET) == 0
    out = []
    for _ in range(40):
        n, buf = rv6.read(fd, buf, BSIZE)
        out.append(buf.get().copy())
    assert np.array_equal(np.concatenate(out), data)
    report = fsck(ssd.blocks)      # the file system, on the drive's own media
    assert report.ok and report.files == 1, report
    st = disk.domain.jit_state
    assert st["writes"][0] > 40 and st["waits"][0] > 0   # it waited while the drive worked
    k.heap.check_invariants()


def test_the_adapter_reads_what_the_drive_holds_and_refuses_bad_blocks():
    k, ssd, disk = nvme_stack(False, nblocks=64)
    ssd.blocks[9] = 77
    assert (disk.read(9, k.new(Block)).get() == 77).all()
    assert disk.write(10, k.new(Block, np.full(BSIZE, 5, np.uint8))) is None
    assert (ssd.blocks[10] == 5).all()
    assert isinstance(disk.read(64, k.new(Block)), RpcError)    # out of range: a panic


def test_without_the_drive_running_beside_the_cpu_a_wait_is_a_detected_hang():
    k, ssd, disk = nvme_stack(False, step=None, nblocks=64)
    r = disk.read(3, k.new(Block))
    assert isinstance(r, RpcError) and not disk.domain.alive     # the adapter's budget
