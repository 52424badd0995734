"""rv6's file system in jitted, safe domain code: xv6's algorithms over a ``BDev``.

Layers, bottom up, as in xv6 (``kernel/fs/src/`` in RedLeaf's rv6):

* **buffer cache** (``bget``/``bread``): ``NBUF`` 4 KiB buffers, each an
  exchange-heap ``RRef[Block]`` that rv6 owns and moves into the disk driver to
  be filled (``BDev.read``) or lends it to be stored (``BDev.write``), found
  through a hash of block numbers and evicted least recently used;
* **log** (``begin_op``/``log_write``/``end_op``): every system call that
  changes the disk is one transaction; its blocks are written to the log,
  committed by the log header, then installed; ``mount`` installs a committed
  log left by a crash, so a change is all or nothing;
* **inodes** (an inode cache of ``NINODE`` entries), **block map** with 12
  direct, one indirect and one double-indirect block, **directories** and
  **path names**;
* **system calls** (``sys_*``), on a table of ``NOFILE`` open files.

The disk is reached only through ``dread(k, disk, block, handle) -> (status,
handle)`` and ``dwrite(k, disk, block, handle) -> (status, _)``, the generated
proxies into the disk domain (or its shadow). Numba binds a callee at compile
time, so this module is a template: :func:`redleaf_nb.apps.rv6.rv6_class`
imports a copy of it per disk class with the two names bound
(``codegen.bound_copy_source``), and the template's own functions are never
compiled. A failed disk call is a panic of the file system (xv6 panics too):
rv6 crashes, and when it is created again ``mount`` recovers the log.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from redleaf_nb.kernel.views import copy_into, fault_point, fault_value, own_state, rref_array
from redleaf_nb.apps.rv6.layout import (BSIZE, DIRENT_BYTES, DIRSIZ, E_BADF, E_EXIST, E_FBIG, E_INVAL, E_ISDIR,
                     E_MFILE, E_NAMETOOLONG, E_NFILE, E_NOENT, E_NOSPC, E_NOTDIR, E_NOTEMPTY,
                     FSMAGIC, I_ADDRS, I_NLINK, I_SIZE_HI, I_SIZE_LO, I_TYPE, INODE_WORDS, IPB,
                     LOGSIZE, MAXFILE, NADDRS, NDIRECT, NINDIRECT, O_CREATE, O_RDWR, O_TRUNC,
                     O_WRONLY, PATH_MAX, ROOTINO, S_BMAPSTART, S_INODESTART, S_LOGSTART,
                     S_MAGIC, S_NINODES, S_SIZE, SEEK_CUR, SEEK_END, SEEK_SET, T_DIR, T_FILE,
                     T_FREE, BPB)
from redleaf_nb.apps.rv6.state import LRU, NBUF, NHASH, NINODE, NOFILE, STATE

JIT = dict(cache=True, boundscheck=True)
dread = dwrite = None   # bound per copy: the disk's proxies (see the module docstring)
# the named points inside the file system where a fault may be injected
FAULT_POINTS = ("fs_write", "log_written", "log_committed", "log_installed", "blockno")
P_WRITE, P_LOG_WRITTEN, P_LOG_COMMITTED, P_LOG_INSTALLED, P_BLOCKNO = range(5)


# --- loops that follow the state's own links --------------------------------------

SPIN_LIMIT = 1 << 16   # iterations: far past any walk of a sound state (a directory of
#                       65536 entries would be refused)


@njit(**JIT)
def _spun(i):
    """Panic if a loop that follows the state's links (a hash chain, the LRU list, a
    directory) has run ``i`` times: the links are corrupt and would hang rv6. This is
    where a hang is caught in rv6 (the cooperative budget of the fault-injection issue):
    jitted code cannot be stopped from outside."""
    if i >= SPIN_LIMIT:
        raise TimeoutError("rv6: a loop ran past its bound (its state is corrupt)")


# --- buffer cache -----------------------------------------------------------------

@njit(**JIT)
def _lru_move_front(st, b):
    """Make buffer ``b`` the most recently used (the front of the LRU list)."""
    p, n = st.bc_prev[b], st.bc_next[b]
    st.bc_next[p], st.bc_prev[n] = n, p
    first = st.bc_next[LRU]
    st.bc_next[LRU], st.bc_prev[b], st.bc_next[b], st.bc_prev[first] = b, LRU, first, b


@njit(**JIT)
def _lookup(st, block):
    b, i = st.bc_hhead[block % NHASH], 0
    while b >= 0 and st.bc_block[b] != block:
        b, i = st.bc_hnext[b], i + 1
        _spun(i)
    return b


@njit(**JIT)
def _unhash(st, b):
    h = st.bc_block[b] % NHASH
    if st.bc_hhead[h] == b:
        st.bc_hhead[h] = st.bc_hnext[b]
        return
    c, i = st.bc_hhead[h], 0
    while st.bc_hnext[c] != b:
        c, i = st.bc_hnext[c], i + 1
        _spun(i)
    st.bc_hnext[c] = st.bc_hnext[b]


@njit(**JIT)
def bget(st, block):
    """The buffer holding ``block``, or the least recently used one not pinned by the
    log, given to ``block`` (its data not valid yet)."""
    b = _lookup(st, block)
    if b < 0:
        b, i = st.bc_prev[LRU], 0
        while b != LRU and st.bc_pins[b] > 0:
            b, i = st.bc_prev[b], i + 1
            _spun(i)
        if b == LRU:
            raise RuntimeError("rv6: every buffer is pinned by the log")
        if st.bc_block[b] >= 0:
            _unhash(st, b)
        st.bc_block[b], st.bc_valid[b] = block, 0
        h = block % NHASH
        st.bc_hnext[b], st.bc_hhead[h] = st.bc_hhead[h], b
    _lru_move_front(st, b)
    return b


@njit(**JIT)
def bread(k, st, block):
    """A buffer with ``block``'s data: from the cache, or read through the disk driver
    (the buffer's RRef moves there and back; a shadow may hand back a new one)."""
    b = bget(st, block)
    if st.bc_valid[b] == 0:
        status, handle = dread(k, st.disk, np.uint32(block), st.bc_handle[b])
        if status != 0:
            raise IOError("rv6: the disk failed a read")
        st.bc_handle[b], st.bc_valid[b] = handle, 1
        st.disk_reads += 1
    return b


@njit(**JIT)
def bwrite(k, st, b, block):
    """Store buffer ``b`` as disk block ``block`` (lent to the driver)."""
    status, _ = dwrite(k, st.disk, np.uint32(fault_value(k, P_BLOCKNO, block)), st.bc_handle[b])
    if status != 0:
        raise IOError("rv6: the disk failed a write")
    st.disk_writes += 1


@njit(**JIT)
def words(k, st, b):
    """Buffer ``b``'s block as 1024 uint32 words (writable)."""
    return rref_array(k, st.bc_handle[b], np.uint32, True)


@njit(**JIT)
def data(k, st, b):
    """Buffer ``b``'s block as 4096 bytes (writable)."""
    return rref_array(k, st.bc_handle[b], np.uint8, True)


# --- the log ------------------------------------------------------------------------

@njit(**JIT)
def log_write(st, b):
    """Record that buffer ``b`` belongs to the running transaction (absorbing a block
    logged already) and pin it in the cache until it is installed."""
    block = st.bc_block[b]
    for i in range(st.log_n):
        if st.log_block[i] == block:
            return
    if st.log_n >= LOGSIZE:
        raise RuntimeError("rv6: transaction too big for the log")
    st.log_block[st.log_n] = block
    st.log_n += 1
    st.bc_pins[b] += 1


@njit(**JIT)
def _write_head(k, st, n):
    """Write the log header: ``n`` committed blocks (0: the log is empty)."""
    b = bget(st, st.sb_logstart)
    w = words(k, st, b)
    w[:] = 0
    w[0] = n
    w[1:1 + n] = st.log_block[:n]
    st.bc_valid[b] = 1
    bwrite(k, st, b, st.sb_logstart)


@njit(**JIT)
def _commit(k, st):
    n = st.log_n
    if n == 0:
        return
    for i in range(n):          # the blocks into the log
        bwrite(k, st, _lookup(st, st.log_block[i]), st.sb_logstart + 1 + i)
    fault_point(k, P_LOG_WRITTEN)
    _write_head(k, st, n)      # the commit point
    fault_point(k, P_LOG_COMMITTED)
    for i in range(n):          # install them where they belong
        b = _lookup(st, st.log_block[i])
        bwrite(k, st, b, st.log_block[i])
        st.bc_pins[b] -= 1
    fault_point(k, P_LOG_INSTALLED)
    st.log_n = 0
    _write_head(k, st, 0)
    st.commits += 1


@njit(**JIT)
def begin_op(st):
    st.log_outstanding += 1


@njit(**JIT)
def end_op(k, st):
    st.log_outstanding -= 1
    if st.log_outstanding == 0:
        _commit(k, st)


@njit(**JIT)
def _recover_log(k, st):
    """Install a transaction that was committed but not installed when the system
    stopped (its header names its blocks), then empty the log."""
    hb = bread(k, st, st.sb_logstart)
    n = words(k, st, hb)[0]
    if n > LOGSIZE:
        raise RuntimeError("rv6: corrupt log header")
    homes = words(k, st, hb)[1:1 + n].copy()
    for i in range(n):
        b = bread(k, st, st.sb_logstart + 1 + i)
        bwrite(k, st, b, homes[i])
    _write_head(k, st, 0)
    _reset_cache(st)
    return n


# --- mount ----------------------------------------------------------------------------

@njit(**JIT)
def _reset_cache(st):
    """Forget every cached block (the buffers themselves are kept)."""
    st.bc_hhead[:] = -1
    for b in range(NBUF):
        st.bc_block[b], st.bc_valid[b], st.bc_pins[b], st.bc_hnext[b] = -1, 0, 0, -1
        st.bc_prev[b], st.bc_next[b] = (b - 1 if b > 0 else LRU), (b + 1 if b < NBUF - 1 else LRU)
    st.bc_next[LRU], st.bc_prev[LRU] = 0, NBUF - 1


@njit(**JIT)
def mount(k, me):
    """Read the superblock, recover the log; how many logged blocks were installed."""
    st = own_state(k, me, STATE)
    _reset_cache(st)
    st.ic_ref[:] = 0
    st.f_ip[:] = -1
    b = bread(k, st, 1)
    sb = words(k, st, b)
    if sb[S_MAGIC] != FSMAGIC:
        raise ValueError("rv6: the disk holds no rv6 file system (bad magic)")
    st.sb_size, st.sb_ninodes = sb[S_SIZE], sb[S_NINODES]
    st.sb_logstart, st.sb_inodestart, st.sb_bmapstart = sb[S_LOGSTART], sb[S_INODESTART], \
        sb[S_BMAPSTART]
    st.alloc_hint = 0
    n = _recover_log(k, st)
    st.mounted = 1
    return n


# --- blocks -----------------------------------------------------------------------------

@njit(**JIT)
def balloc(k, st):
    """A free disk block, marked used and zeroed in the log; 0 if the disk is full."""
    size = st.sb_size
    start = st.alloc_hint
    for step in range(size):
        bno = (start + step) % size
        bm = bread(k, st, st.sb_bmapstart + bno // BPB)
        bits = data(k, st, bm)
        byte, mask = (bno % BPB) // 8, np.uint8(1 << (bno % 8))
        if bits[byte] & mask == 0:
            bits[byte] |= mask
            log_write(st, bm)
            z = bget(st, bno)
            data(k, st, z)[:] = 0
            st.bc_valid[z] = 1
            log_write(st, z)
            st.alloc_hint = bno + 1
            st.allocs += 1
            return bno
    return 0


@njit(**JIT)
def bfree(k, st, bno):
    bm = bread(k, st, st.sb_bmapstart + bno // BPB)
    bits = data(k, st, bm)
    mask = np.uint8(1 << (bno % 8))
    if bits[(bno % BPB) // 8] & mask == 0:
        raise RuntimeError("rv6: freeing a free block")
    bits[(bno % BPB) // 8] &= ~mask
    log_write(st, bm)


# --- inodes -------------------------------------------------------------------------------

@njit(**JIT)
def iget(st, inum):
    """The inode cache entry of ``inum`` (a reference taken); -1 if the table is full."""
    empty = -1
    for i in range(NINODE):
        if st.ic_ref[i] > 0 and st.ic_inum[i] == inum:
            st.ic_ref[i] += 1
            return i
        if empty < 0 and st.ic_ref[i] == 0:
            empty = i
    if empty >= 0:
        st.ic_inum[empty], st.ic_ref[empty], st.ic_valid[empty] = inum, 1, 0
    return empty


@njit(**JIT)
def _inode_words(k, st, inum):
    b = bread(k, st, st.sb_inodestart + inum // IPB)
    o = (inum % IPB) * INODE_WORDS
    return b, words(k, st, b)[o:o + INODE_WORDS]


@njit(**JIT)
def ilock(k, st, ip):
    """Make sure entry ``ip`` holds its inode's fields (read from disk once)."""
    if st.ic_valid[ip] == 0:
        _, w = _inode_words(k, st, st.ic_inum[ip])
        st.ic_type[ip], st.ic_nlink[ip] = w[I_TYPE], w[I_NLINK]
        st.ic_size[ip] = np.int64(w[I_SIZE_LO]) | (np.int64(w[I_SIZE_HI]) << 32)
        st.ic_addrs[ip * NADDRS:(ip + 1) * NADDRS] = w[I_ADDRS:I_ADDRS + NADDRS]
        st.ic_valid[ip] = 1
        if st.ic_type[ip] == T_FREE:
            raise RuntimeError("rv6: an inode in use is free on disk")


@njit(**JIT)
def iupdate(k, st, ip):
    """Copy entry ``ip``'s fields to its inode on disk (in the running transaction)."""
    b, w = _inode_words(k, st, st.ic_inum[ip])
    w[I_TYPE], w[I_NLINK] = st.ic_type[ip], st.ic_nlink[ip]
    w[I_SIZE_LO], w[I_SIZE_HI] = st.ic_size[ip] & 0xFFFFFFFF, st.ic_size[ip] >> 32
    w[I_ADDRS:I_ADDRS + NADDRS] = st.ic_addrs[ip * NADDRS:(ip + 1) * NADDRS]
    log_write(st, b)


@njit(**JIT)
def ialloc(k, st, itype):
    """A free inode, given type ``itype``; its cache entry (-1: none free or no entry)."""
    for inum in range(1, st.sb_ninodes):
        b, w = _inode_words(k, st, inum)
        if w[I_TYPE] == T_FREE:
            w[:] = 0
            w[I_TYPE] = itype
            log_write(st, b)
            ip = iget(st, inum)
            if ip >= 0:
                ilock(k, st, ip)
            return ip
    return -1


@njit(**JIT)
def _fresh(k, st, alloc):
    """For a hole: a new block if ``alloc`` (-1: the disk is full), else 0 (a hole)."""
    if not alloc:
        return 0
    addr = balloc(k, st)
    return addr if addr != 0 else -1


@njit(**JIT)
def _slot(k, st, ip, bn, alloc):
    """The block number at position ``bn`` of the file of ``ip`` (0: a hole),
    allocating it (and the indirect blocks on its way) if ``alloc``; -1: disk full."""
    a = ip * NADDRS
    if bn < NDIRECT:
        top, levels = bn, 0
    elif bn < NDIRECT + NINDIRECT:
        top, levels, bn = NDIRECT, 1, bn - NDIRECT
    else:
        top, levels, bn = NDIRECT + 1, 2, bn - NDIRECT - NINDIRECT
    addr = st.ic_addrs[a + top]
    if addr == 0:
        addr = _fresh(k, st, alloc)
        if addr <= 0:
            return addr
        st.ic_addrs[a + top] = addr
    for level in range(levels, 0, -1):
        idx = bn // NINDIRECT if level == 2 else bn % NINDIRECT
        nxt = words(k, st, bread(k, st, addr))[idx]
        if nxt == 0:
            nxt = _fresh(k, st, alloc)
            if nxt <= 0:
                return nxt
            b = bread(k, st, addr)     # after balloc, which may have evicted it
            words(k, st, b)[idx] = nxt
            log_write(st, b)
        addr = nxt
    return addr


@njit(**JIT)
def _free_indirect(k, st, addr):
    """Free an indirect block and every block it names."""
    for e in words(k, st, bread(k, st, addr)).copy():
        if e != 0:
            bfree(k, st, e)
    bfree(k, st, addr)


@njit(**JIT)
def itrunc(k, st, ip):
    """Free every block of the file of ``ip``; its size becomes 0. (No recursion: a
    recursive function loaded from numba's cache crashes.)"""
    a = ip * NADDRS
    for i in range(NDIRECT):
        if st.ic_addrs[a + i] != 0:
            bfree(k, st, st.ic_addrs[a + i])
    if st.ic_addrs[a + NDIRECT] != 0:
        _free_indirect(k, st, st.ic_addrs[a + NDIRECT])
    top = st.ic_addrs[a + NDIRECT + 1]
    if top != 0:
        for mid in words(k, st, bread(k, st, top)).copy():
            if mid != 0:
                _free_indirect(k, st, mid)
        bfree(k, st, top)
    st.ic_addrs[a:a + NADDRS] = 0
    st.ic_size[ip] = 0
    iupdate(k, st, ip)


@njit(**JIT)
def iput(k, st, ip):
    """Drop a reference to ``ip``; the last one of an unlinked inode frees it."""
    if st.ic_ref[ip] == 1 and st.ic_valid[ip] and st.ic_nlink[ip] == 0:
        itrunc(k, st, ip)
        st.ic_type[ip] = T_FREE
        iupdate(k, st, ip)
        st.ic_valid[ip] = 0
    st.ic_ref[ip] -= 1


@njit(**JIT)
def readi(k, st, ip, dst, off, n):
    """Copy up to ``n`` bytes at ``off`` of the file into ``dst``; how many."""
    size = st.ic_size[ip]
    if off >= size:
        return 0
    n = min(n, size - off)
    done = 0
    while done < n:
        bn, o = (off + done) // BSIZE, (off + done) % BSIZE
        m = min(n - done, BSIZE - o)
        addr = _slot(k, st, ip, bn, False)
        if addr == 0:
            dst[done:done + m] = 0
        else:
            copy_into(dst[done:done + m], data(k, st, bread(k, st, addr))[o:o + m])
        done += m
    return done


@njit(**JIT)
def writei(k, st, ip, src, off, n):
    """Copy ``n`` bytes of ``src`` to ``off`` of the file (in the running transaction);
    how many (fewer if the disk filled up; E_NOSPC if none), E_FBIG past the largest
    file."""
    if off + n > MAXFILE * BSIZE:
        return E_FBIG
    done, changed = 0, False
    while done < n:
        bn, o = (off + done) // BSIZE, (off + done) % BSIZE
        m = min(n - done, BSIZE - o)
        before = st.allocs
        addr = _slot(k, st, ip, bn, True)
        if addr < 0:
            break
        changed |= st.allocs != before
        b = bget(st, addr) if m == BSIZE else bread(k, st, addr)
        copy_into(data(k, st, b)[o:o + m], src[done:done + m])
        st.bc_valid[b] = 1
        log_write(st, b)
        done += m
    if off + done > st.ic_size[ip]:
        st.ic_size[ip] = off + done
        changed = True
    if changed:
        iupdate(k, st, ip)
    return done if done > 0 or n == 0 else E_NOSPC


# --- directories and path names ------------------------------------------------------

@njit(**JIT)
def _inum(ent):
    """The inode number of a directory entry (0: the entry is empty)."""
    return np.int64(ent[0]) | np.int64(ent[1]) << 8 | np.int64(ent[2]) << 16 | \
        np.int64(ent[3]) << 24


@njit(**JIT)
def _name_eq(ent, name, nlen):
    """Does a directory entry's name (bytes 4..) equal ``name[:nlen]``?"""
    for i in range(DIRSIZ):
        c = name[i] if i < nlen else 0
        if ent[4 + i] != c:
            return False
    return True


@njit(**JIT)
def dirlookup(k, st, dp, name, nlen):
    """(inode number, byte offset) of ``name`` in directory ``dp``; (0, -1) if absent."""
    off = 0
    while off < st.ic_size[dp]:
        addr = _slot(k, st, dp, off // BSIZE, False)
        blk = data(k, st, bread(k, st, addr))
        o = off % BSIZE
        ent = blk[o:o + DIRENT_BYTES]
        inum = _inum(ent)
        if inum != 0 and _name_eq(ent, name, nlen):
            return inum, off
        off += DIRENT_BYTES
        _spun(off // DIRENT_BYTES)
    return 0, -1


@njit(**JIT)
def _entry(name, nlen, inum):
    e = np.zeros(DIRENT_BYTES, np.uint8)
    for i in range(4):
        e[i] = (inum >> (8 * i)) & 0xFF
    e[4:4 + nlen] = name[:nlen]
    return e


@njit(**JIT)
def dirlink(k, st, dp, name, nlen, inum):
    """Add ``name`` -> ``inum`` to directory ``dp`` (reusing an empty entry); 0 or an error."""
    e = _entry(name, nlen, inum)
    off = 0
    while off < st.ic_size[dp]:
        blk = data(k, st, bread(k, st, _slot(k, st, dp, off // BSIZE, False)))
        o = off % BSIZE
        if _inum(blk[o:o + DIRENT_BYTES]) == 0:
            break
        off += DIRENT_BYTES
        _spun(off // DIRENT_BYTES)
    n = writei(k, st, dp, e, off, DIRENT_BYTES)
    return 0 if n == DIRENT_BYTES else (n if n < 0 else E_NOSPC)


@njit(**JIT)
def _elements(path):
    """(starts, lengths, count) of the elements of a NUL-terminated path (slashes
    skipped); a length over DIRSIZ is kept, for the caller to refuse."""
    starts = np.zeros(PATH_MAX // 2, np.int64)
    lens = np.zeros(PATH_MAX // 2, np.int64)
    count, i = 0, 0
    while i < PATH_MAX and path[i] != 0:
        while i < PATH_MAX and path[i] == 47:   # '/'
            i += 1
        s = i
        while i < PATH_MAX and path[i] != 0 and path[i] != 47:
            i += 1
        if i > s:
            starts[count], lens[count] = s, i - s
            count += 1
    return starts, lens, count


@njit(**JIT)
def namex(k, st, path, parent):
    """The inode entry of ``path`` (or, if ``parent``, of its parent directory) and the
    last element (start, length); a negative error instead of the entry if none."""
    starts, lens, count = _elements(path)
    ip = iget(st, ROOTINO)
    if ip < 0:
        return E_NFILE, 0, 0
    if count == 0:
        if parent:
            iput(k, st, ip)
            return E_INVAL, 0, 0
        return ip, 0, 0
    for j in range(count):
        s, n = starts[j], lens[j]
        if n > DIRSIZ:
            iput(k, st, ip)
            return E_NAMETOOLONG, 0, 0
        ilock(k, st, ip)
        if st.ic_type[ip] != T_DIR:
            iput(k, st, ip)
            return E_NOTDIR, 0, 0
        if parent and j == count - 1:
            return ip, s, n
        inum, _ = dirlookup(k, st, ip, path[s:s + n], n)
        iput(k, st, ip)
        if inum == 0:
            return E_NOENT, 0, 0
        ip = iget(st, inum)
        if ip < 0:
            return E_NFILE, 0, 0
    return ip, 0, 0


@njit(**JIT)
def create(k, st, path, itype):
    """The inode entry of ``path``, created as ``itype`` if absent (an existing file is
    returned for T_FILE, as xv6's open(O_CREATE) does); a negative error."""
    dp, s, n = namex(k, st, path, True)
    if dp < 0:
        return dp
    name = path[s:s + n]
    inum, _ = dirlookup(k, st, dp, name, n)
    if inum != 0:
        iput(k, st, dp)
        ip = iget(st, inum)
        if ip < 0:
            return E_NFILE
        ilock(k, st, ip)
        if itype == T_FILE and st.ic_type[ip] == T_FILE:
            return ip
        iput(k, st, ip)
        return E_EXIST
    ip = ialloc(k, st, itype)
    if ip < 0:
        iput(k, st, dp)
        return E_NFILE
    st.ic_nlink[ip] = 1
    iupdate(k, st, ip)
    err = 0
    if itype == T_DIR:
        dot = np.array([46, 46], np.uint8)   # "..": "." is its first byte
        err = dirlink(k, st, ip, dot, 1, st.ic_inum[ip])
        if err == 0:
            err = dirlink(k, st, ip, dot, 2, st.ic_inum[dp])
    if err == 0:
        err = dirlink(k, st, dp, name, n, st.ic_inum[ip])
    if err != 0:                             # undo: the inode goes back, freed
        st.ic_nlink[ip] = 0
        iupdate(k, st, ip)
        iput(k, st, ip)
        iput(k, st, dp)
        return err
    if itype == T_DIR:
        st.ic_nlink[dp] += 1                 # the new directory's '..'
        iupdate(k, st, dp)
    iput(k, st, dp)
    return ip


# --- system calls -----------------------------------------------------------------------

@njit(**JIT)
def _file(st, fd):
    """The inode entry of open file ``fd``, or E_BADF."""
    if fd < 0 or fd >= NOFILE or st.f_ip[fd] < 0:
        return E_BADF
    return st.f_ip[fd]


@njit(**JIT)
def sys_open(k, me, path, flags):
    """Open (or with O_CREATE create) ``path``: a file descriptor, or an error."""
    st = own_state(k, me, STATE)
    fd = 0
    while fd < NOFILE and st.f_ip[fd] >= 0:
        fd += 1
    if fd == NOFILE:
        return E_MFILE
    begin_op(st)
    if flags & O_CREATE:
        ip = create(k, st, path, T_FILE)
    else:
        ip, _, _ = namex(k, st, path, False)
        if ip >= 0:
            ilock(k, st, ip)
    if ip >= 0 and st.ic_type[ip] == T_DIR and flags & (O_WRONLY | O_RDWR):
        iput(k, st, ip)
        ip = E_ISDIR
    if ip >= 0 and flags & O_TRUNC and st.ic_type[ip] == T_FILE:
        itrunc(k, st, ip)
    end_op(k, st)
    if ip < 0:
        return ip
    st.f_ip[fd], st.f_off[fd] = ip, 0
    st.f_readable[fd] = not flags & O_WRONLY
    st.f_writable[fd] = (flags & O_WRONLY) or (flags & O_RDWR)
    return fd


@njit(**JIT)
def sys_close(k, me, fd):
    st = own_state(k, me, STATE)
    ip = _file(st, fd)
    if ip < 0:
        return ip
    st.f_ip[fd] = -1
    begin_op(st)
    iput(k, st, ip)
    end_op(k, st)
    return 0


@njit(**JIT)
def sys_read(k, me, fd, handle, n):
    """Read up to ``n`` bytes (at most a block) at the file's offset into the RRef
    ``handle``: (bytes read or an error, the RRef)."""
    st = own_state(k, me, STATE)
    ip = _file(st, fd)
    if ip < 0 or not st.f_readable[fd]:
        return (ip if ip < 0 else E_BADF), handle
    if n < 0 or n > BSIZE:
        return E_INVAL, handle
    got = readi(k, st, ip, rref_array(k, handle, np.uint8, True), st.f_off[fd], n)
    st.f_off[fd] += got
    return got, handle


@njit(**JIT)
def sys_write(k, me, fd, handle, n):
    """Write ``n`` bytes (at most a block) of the borrowed RRef ``handle`` at the file's
    offset, as one transaction: bytes written, or an error."""
    st = own_state(k, me, STATE)
    ip = _file(st, fd)
    if ip < 0 or not st.f_writable[fd]:
        return ip if ip < 0 else E_BADF
    if n < 0 or n > BSIZE:
        return E_INVAL
    src = rref_array(k, handle, np.uint8, False)
    begin_op(st)
    fault_point(k, P_WRITE)
    got = writei(k, st, ip, src, st.f_off[fd], n)
    end_op(k, st)
    if got > 0:
        st.f_off[fd] += got
    return got


@njit(**JIT)
def sys_lseek(k, me, fd, offset, whence):
    """Move the file's offset (holes read as zeros): the new offset, or an error."""
    st = own_state(k, me, STATE)
    ip = _file(st, fd)
    if ip < 0:
        return ip
    base = 0 if whence == SEEK_SET else st.f_off[fd] if whence == SEEK_CUR else \
        st.ic_size[ip] if whence == SEEK_END else -1
    if base < 0 or base + offset < 0:
        return E_INVAL
    st.f_off[fd] = base + offset
    return st.f_off[fd]


@njit(**JIT)
def sys_fstat(k, me, fd):
    """(type or an error, inode number, links, size) of an open file."""
    st = own_state(k, me, STATE)
    ip = _file(st, fd)
    if ip < 0:
        return ip, 0, 0, 0
    return st.ic_type[ip], st.ic_inum[ip], st.ic_nlink[ip], st.ic_size[ip]


@njit(**JIT)
def sys_mkdir(k, me, path):
    st = own_state(k, me, STATE)
    begin_op(st)
    ip = create(k, st, path, T_DIR)
    if ip >= 0:
        iput(k, st, ip)
    end_op(k, st)
    return min(ip, 0)


@njit(**JIT)
def _dir_empty(k, st, dp):
    off = 2 * DIRENT_BYTES
    while off < st.ic_size[dp]:
        blk = data(k, st, bread(k, st, _slot(k, st, dp, off // BSIZE, False)))
        o = off % BSIZE
        if _inum(blk[o:o + DIRENT_BYTES]) != 0:
            return False
        off += DIRENT_BYTES
        _spun(off // DIRENT_BYTES)
    return True


@njit(**JIT)
def _unlink(k, st, path):
    dp, s, n = namex(k, st, path, True)
    if dp < 0:
        return dp
    name = path[s:s + n]
    if (n == 1 and name[0] == 46) or (n == 2 and name[0] == 46 and name[1] == 46):
        iput(k, st, dp)
        return E_INVAL
    inum, off = dirlookup(k, st, dp, name, n)
    if inum == 0:
        iput(k, st, dp)
        return E_NOENT
    ip = iget(st, inum)
    if ip < 0:
        iput(k, st, dp)
        return E_NFILE
    ilock(k, st, ip)
    if st.ic_type[ip] == T_DIR and not _dir_empty(k, st, ip):
        iput(k, st, ip)
        iput(k, st, dp)
        return E_NOTEMPTY
    writei(k, st, dp, np.zeros(DIRENT_BYTES, np.uint8), off, DIRENT_BYTES)
    if st.ic_type[ip] == T_DIR:
        st.ic_nlink[dp] -= 1                 # its '..' is gone
        iupdate(k, st, dp)
    iput(k, st, dp)
    st.ic_nlink[ip] -= 1
    iupdate(k, st, ip)
    iput(k, st, ip)
    return 0


@njit(**JIT)
def sys_unlink(k, me, path):
    """Remove a file or an empty directory; 0 or an error."""
    st = own_state(k, me, STATE)
    begin_op(st)
    err = _unlink(k, st, path)
    end_op(k, st)
    return err
