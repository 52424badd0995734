"""``mkfs`` and ``fsck`` for rv6 disks: trusted tools that read the disk directly.

Like RedLeaf's ``tools/rv6-mkfs`` they run outside the OS, on the disk's
blocks (a ``MemDisk``'s array, or an NVMe model's media); the file system
itself only ever reaches the disk through its driver. ``fsck`` is the judge of
every crash test and of the fault campaign: it checks every on-disk
structure, and an empty list of problems means the disk is consistent.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .layout import (BPB, BSIZE, DIRENT_BYTES, DIRSIZ, I_ADDRS, I_NLINK, I_SIZE_HI, I_SIZE_LO,
                     I_TYPE, INODE_WORDS, IPB, MAXFILE, NDIRECT, NINDIRECT, ROOTINO, T_DIR,
                     T_FILE, T_FREE, Geometry)


def _inode(disk: np.ndarray, g: Geometry, inum: int) -> np.ndarray:
    block = disk[g.inodestart + inum // IPB].view(np.uint32)
    return block[(inum % IPB) * INODE_WORDS:(inum % IPB + 1) * INODE_WORDS]


def _dirent(name: bytes, inum: int) -> np.ndarray:
    e = np.zeros(DIRENT_BYTES, np.uint8)
    e[:4] = np.frombuffer(np.uint32(inum).tobytes(), np.uint8)
    e[4:4 + len(name)] = np.frombuffer(name, np.uint8)
    return e


def mkfs(disk: np.ndarray, ninodes: int = 200) -> Geometry:
    """Make an empty rv6 file system (a root directory) on ``disk``, an array of
    shape (blocks, 4096) of uint8; its geometry."""
    if disk.ndim != 2 or disk.shape[1] != BSIZE or disk.dtype != np.uint8:
        raise ValueError(f"mkfs: expected a (blocks, {BSIZE}) uint8 disk, got "
                         f"{disk.dtype} {disk.shape}")
    g = Geometry(disk.shape[0], ninodes)
    disk[:] = 0
    disk[1, :32] = np.frombuffer(g.superblock().tobytes(), np.uint8)
    root_block = g.datastart
    ino = _inode(disk, g, ROOTINO)
    ino[I_TYPE], ino[I_NLINK], ino[I_SIZE_LO], ino[I_ADDRS] = T_DIR, 1, 2 * DIRENT_BYTES, root_block
    disk[root_block, :DIRENT_BYTES] = _dirent(b".", ROOTINO)
    disk[root_block, DIRENT_BYTES:2 * DIRENT_BYTES] = _dirent(b"..", ROOTINO)
    bits = np.zeros(g.nbitmap * BPB, bool)
    bits[:root_block + 1] = True
    disk[g.bmapstart:g.bmapstart + g.nbitmap] = np.packbits(bits, bitorder="little").reshape(
        g.nbitmap, BSIZE)
    return g


@dataclass
class FsckReport:
    """What ``fsck`` found: ``problems`` (empty: consistent) and what the disk holds."""

    problems: list[str] = field(default_factory=list)
    files: int = 0
    dirs: int = 0
    used_blocks: int = 0
    free_blocks: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self):
        head = (f"fsck: {self.files} files, {self.dirs} directories, {self.used_blocks} blocks "
                f"used, {self.free_blocks} free: ")
        return head + ("clean" if self.ok else f"{len(self.problems)} problem(s):\n  "
                       + "\n  ".join(self.problems[:20]))


class _Checker:
    def __init__(self, disk: np.ndarray, g: Geometry, report: FsckReport):
        self.disk, self.g, self.r = disk, g, report
        self.owner = {}          # data block -> the inode that uses it

    def problem(self, text: str):
        self.r.problems.append(text)

    def claim(self, inum: int, block: int, what: str) -> bool:
        if not self.g.datastart <= block < self.g.size:
            self.problem(f"inode {inum}: {what} block {block} outside the data region "
                         f"[{self.g.datastart}, {self.g.size})")
            return False
        if block in self.owner:
            self.problem(f"inode {inum}: {what} block {block} also used by inode "
                         f"{self.owner[block]}")
            return False
        self.owner[block] = inum
        return True

    def blocks_of(self, inum: int, ino: np.ndarray) -> list[int]:
        """The data blocks of an inode, in file order (0: a hole); claims every block
        it reaches, metadata (indirect blocks) included."""
        out = [int(b) for b in ino[I_ADDRS:I_ADDRS + NDIRECT]]
        for b in out:
            if b:
                self.claim(inum, b, "direct")
        ind, dind = int(ino[I_ADDRS + NDIRECT]), int(ino[I_ADDRS + NDIRECT + 1])
        if ind and self.claim(inum, ind, "indirect"):
            for b in self.disk[ind].view(np.uint32):
                out.append(int(b))
                if b:
                    self.claim(inum, int(b), "data (indirect)")
        elif dind:
            out += [0] * NINDIRECT
        if dind and self.claim(inum, dind, "double-indirect"):
            for mid in self.disk[dind].view(np.uint32):
                mid = int(mid)
                if mid and self.claim(inum, mid, "second-level indirect"):
                    for b in self.disk[mid].view(np.uint32):
                        out.append(int(b))
                        if b:
                            self.claim(inum, int(b), "data (double-indirect)")
                else:
                    out += [0] * NINDIRECT
        return out


def fsck(disk: np.ndarray) -> FsckReport:
    """Check every on-disk structure of an rv6 disk: superblock, log, inodes, block
    pointers (in range, used once, none past the end of a file), the bitmap (exactly
    the used blocks), directories (entries, ``.`` and ``..``, names), link counts and
    reachability from the root."""
    r = FsckReport()
    try:
        g = Geometry.of(disk)
    except ValueError as e:
        r.problems.append(str(e))
        return r
    c = _Checker(disk, g, r)
    n_log = int(disk[g.logstart].view(np.uint32)[0])
    if n_log:
        c.problem(f"log: {n_log} committed block(s) not installed (mount to recover)")
    types, blocks, sizes = {}, {}, {}
    for inum in range(1, g.ninodes):
        ino = _inode(disk, g, inum)
        t = int(ino[I_TYPE])
        if t == T_FREE:
            if ino.any():
                c.problem(f"inode {inum}: free but not zeroed")
            continue
        if t not in (T_DIR, T_FILE):
            c.problem(f"inode {inum}: unknown type {t}")
            continue
        size = int(ino[I_SIZE_LO]) | int(ino[I_SIZE_HI]) << 32
        if size > MAXFILE * BSIZE:
            c.problem(f"inode {inum}: size {size} beyond the largest file")
        types[inum], sizes[inum] = t, size
        blocks[inum] = c.blocks_of(inum, ino)
        past = [b for b in blocks[inum][-(-size // BSIZE):] if b]
        if past:
            c.problem(f"inode {inum}: {len(past)} block(s) past its size {size}")
    if types.get(ROOTINO) != T_DIR:
        c.problem("the root inode is not a directory")
        return r
    links = {inum: 0 for inum in types}
    seen, todo = {ROOTINO}, [(ROOTINO, ROOTINO)]
    while todo:
        inum, parent = todo.pop()
        size = sizes[inum]
        if size % DIRENT_BYTES:
            c.problem(f"directory inode {inum}: size {size} is not whole entries")
        raw = np.concatenate([disk[b] if b else np.zeros(BSIZE, np.uint8)
                              for b in blocks[inum][:-(-size // BSIZE)]] or
                             [np.zeros(0, np.uint8)])[:size - size % DIRENT_BYTES]
        entries = raw.reshape(-1, DIRENT_BYTES)
        names = set()
        for e in entries:
            child = int(e[:4].view(np.uint32)[0])
            if child == 0:
                continue
            name = bytes(e[4:]).split(b"\0")[0]
            if not name or bytes(e[4 + len(name):]).strip(b"\0") or len(name) > DIRSIZ:
                c.problem(f"directory inode {inum}: malformed name {bytes(e[4:])!r}")
            if name in names:
                c.problem(f"directory inode {inum}: name {name!r} twice")
            names.add(name)
            if child not in types:
                c.problem(f"directory inode {inum}: {name!r} names free inode {child}")
                continue
            if name == b".":
                if child != inum:
                    c.problem(f"directory inode {inum}: '.' is {child}")
                continue
            if name == b"..":
                if child != parent:
                    c.problem(f"directory inode {inum}: '..' is {child}, not {parent}")
                continue
            links[child] += 1
            if types[child] == T_DIR:
                links[inum] += 1          # the child's '..'
                if child in seen:
                    c.problem(f"directory inode {child} is linked twice")
                    continue
                todo.append((child, inum))
            seen.add(child)
        if b"." not in names or b".." not in names:
            c.problem(f"directory inode {inum}: missing '.' or '..'")
    links[ROOTINO] += 1                    # the root's own entry, as mkfs counts it
    for inum, t in types.items():
        nlink = int(_inode(disk, g, inum)[I_NLINK])
        if inum not in seen:
            c.problem(f"inode {inum}: allocated but not reachable from the root")
        elif nlink != links[inum]:
            c.problem(f"inode {inum}: nlink {nlink}, but {links[inum]} link(s) found")
        r.files += t == T_FILE
        r.dirs += t == T_DIR
    bits = np.unpackbits(disk[g.bmapstart:g.bmapstart + g.nbitmap].reshape(-1),
                         bitorder="little")[:g.size].astype(bool)
    want = np.zeros(g.size, bool)
    want[:g.datastart] = True
    want[list(c.owner)] = True
    for b in np.flatnonzero(bits != want)[:20]:
        c.problem(f"bitmap: block {b} is marked {'used' if bits[b] else 'free'} but is "
                  f"{'used' if want[b] else 'free'}")
    r.used_blocks = len(c.owner)
    r.free_blocks = g.nblocks - len(c.owner)
    return r
