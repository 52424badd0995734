"""rv6's on-disk layout: xv6's, with 4 KiB blocks and a double-indirect block.

::

    [ boot | super | log header | log blocks ... | inodes ... | bitmap ... | data ... ]
       0       1        2          3 .. 2+LOGSIZE

Everything is little-endian 32-bit words (an inode's size is 64 bits: two
words), read by the jitted file system through ``uint32`` and ``uint8`` views
of a block and by :mod:`.tools` (``mkfs``, ``fsck``) through numpy views of the
disk. RedLeaf's rv6 uses xv6's parameters with ``BSIZE`` 4096 (its
``kernel/fs/src/params.rs``); the file system issue adds the double-indirect
block, so a file may grow to ``MAXFILE`` blocks (about 4 GiB) rather than
xv6's 12 + 1024.
"""
from __future__ import annotations

import numpy as np

from redleaf_nb.interfaces.bdev import BSIZE   # bytes per block
from redleaf_nb.interfaces.rv6 import PATH_MAX  # bytes of a path handed to a system call

WORDS = BSIZE // 4                 # uint32 words per block
FSMAGIC = 0x10203040
ROOTINO = 1                        # the root directory's inode number

NDIRECT = 12
NINDIRECT = WORDS                  # block numbers in an indirect block
NDINDIRECT = NINDIRECT * NINDIRECT
NADDRS = NDIRECT + 2               # direct, then the indirect, then the double-indirect
MAXFILE = NDIRECT + NINDIRECT + NDINDIRECT   # blocks

MAXOPBLOCKS = 10                   # most blocks one system call may write (xv6)
LOGSIZE = 3 * MAXOPBLOCKS          # blocks the log can hold (xv6, RedLeaf: 30)

# an inode on disk: 32 words (128 bytes)
INODE_WORDS = 32
IPB = WORDS // INODE_WORDS         # inodes per block
I_TYPE, I_NLINK, I_SIZE_LO, I_SIZE_HI, I_ADDRS = 0, 1, 2, 3, 4
T_FREE, T_DIR, T_FILE = 0, 1, 2

# a directory entry: the inode number (0: empty) and a NUL-padded name
DIRENT_BYTES = 32
DIRSIZ = DIRENT_BYTES - 4          # longest name, bytes
DPB = BSIZE // DIRENT_BYTES        # entries per block

BPB = BSIZE * 8                    # bitmap bits per block

# the superblock's words
S_MAGIC, S_SIZE, S_NBLOCKS, S_NINODES, S_NLOG, S_LOGSTART, S_INODESTART, S_BMAPSTART = range(8)

# open() flags (xv6's)
O_RDONLY, O_WRONLY, O_RDWR, O_CREATE, O_TRUNC = 0x000, 0x001, 0x002, 0x200, 0x400
# lseek's whence
SEEK_SET, SEEK_CUR, SEEK_END = 0, 1, 2

# system-call results below zero are errors (Linux's numbers, negated)
E_IO, E_NOENT, E_BADF, E_EXIST, E_NOTDIR, E_ISDIR, E_INVAL, E_NFILE, E_MFILE, E_FBIG, \
    E_NOSPC, E_NAMETOOLONG, E_NOTEMPTY = (-5, -2, -9, -17, -20, -21, -22, -23, -24, -27,
                                          -28, -36, -39)
ERRORS = {E_IO: "EIO: I/O error", E_NOENT: "ENOENT: no such file or directory",
          E_BADF: "EBADF: bad file descriptor", E_EXIST: "EEXIST: file exists",
          E_NOTDIR: "ENOTDIR: not a directory", E_ISDIR: "EISDIR: is a directory",
          E_INVAL: "EINVAL: invalid argument", E_NFILE: "ENFILE: inode table full",
          E_MFILE: "EMFILE: too many open files", E_FBIG: "EFBIG: file too large",
          E_NOSPC: "ENOSPC: no space left on device",
          E_NAMETOOLONG: "ENAMETOOLONG: file name too long",
          E_NOTEMPTY: "ENOTEMPTY: directory not empty"}


class Geometry:
    """Where each region of a disk of ``size`` blocks with ``ninodes`` inodes lies."""

    def __init__(self, size: int, ninodes: int):
        self.size, self.ninodes = int(size), int(ninodes)
        self.nlog = LOGSIZE + 1                       # the header, then the blocks
        self.logstart = 2
        self.inodestart = self.logstart + self.nlog
        self.ninodeblocks = -(-self.ninodes // IPB)
        self.bmapstart = self.inodestart + self.ninodeblocks
        self.nbitmap = -(-self.size // BPB)
        self.datastart = self.bmapstart + self.nbitmap
        self.nblocks = self.size - self.datastart     # data blocks
        if self.nblocks < 2:
            raise ValueError(f"rv6: a disk of {size} blocks is too small for {ninodes} inodes "
                             f"(metadata alone takes {self.datastart} blocks)")

    def superblock(self) -> np.ndarray:
        return np.array([FSMAGIC, self.size, self.nblocks, self.ninodes, self.nlog,
                         self.logstart, self.inodestart, self.bmapstart], np.uint32)

    @classmethod
    def of(cls, disk: np.ndarray) -> "Geometry":
        """The geometry a disk's superblock records (checked)."""
        sb = disk[1].view(np.uint32)
        if sb[S_MAGIC] != FSMAGIC:
            raise ValueError(f"rv6: block 1 is not an rv6 superblock (magic {sb[S_MAGIC]:#x})")
        g = cls(int(sb[S_SIZE]), int(sb[S_NINODES]))
        if not np.array_equal(g.superblock(), sb[:8]):
            raise ValueError("rv6: the superblock's regions do not match its size and inodes")
        return g


def path_bytes(path: str | bytes) -> np.ndarray:
    """A path as the ``u8[PATH_MAX]`` a system call takes (NUL-padded); a clear error
    if it does not fit."""
    raw = path.encode() if isinstance(path, str) else bytes(path)
    if len(raw) >= PATH_MAX or b"\0" in raw:
        raise ValueError(f"rv6: path {path!r} must be shorter than {PATH_MAX} bytes, "
                         "with no NUL byte")
    out = np.zeros(PATH_MAX, np.uint8)
    out[:len(raw)] = np.frombuffer(raw, np.uint8)
    return out
