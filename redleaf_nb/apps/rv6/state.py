"""rv6's jitted state: the drivers it is wired to and its file system's tables.

One record (``views.state_type``) per rv6 domain: the domain ids of its
drivers, the superblock's numbers, the buffer cache (``NBUF`` RRef handles
with their block numbers, an LRU list and a hash), the log, the inode cache
and the open-file table. No addresses: blocks are reached through their RRef
handles, checked on every access.
"""
from __future__ import annotations

import numpy as np

from redleaf_nb.kernel.views import state_type
from .layout import LOGSIZE, NADDRS

NBUF = 256      # buffers of 4 KiB: a 1 MiB cache (xv6 has 30)
NHASH = 512     # buckets of the block-number hash
LRU = NBUF      # the LRU list's sentinel: bc_next[LRU] is the most recently used
NINODE = 32     # inode cache entries
NOFILE = 16     # open files

_i8 = np.int64
STATE = state_type(
    net=_i8, bdev=_i8, disk=_i8,                   # the drivers' domain ids (0: none)
    mounted=_i8, sb_size=_i8, sb_ninodes=_i8, sb_logstart=_i8, sb_inodestart=_i8,
    sb_bmapstart=_i8,
    bc_handle=(_i8, (NBUF,)), bc_block=(_i8, (NBUF,)), bc_valid=(_i8, (NBUF,)),
    bc_pins=(_i8, (NBUF,)), bc_hnext=(_i8, (NBUF,)), bc_hhead=(_i8, (NHASH,)),
    bc_prev=(_i8, (NBUF + 1,)), bc_next=(_i8, (NBUF + 1,)),
    log_n=_i8, log_outstanding=_i8, log_block=(_i8, (LOGSIZE,)),
    ic_inum=(_i8, (NINODE,)), ic_ref=(_i8, (NINODE,)), ic_valid=(_i8, (NINODE,)),
    ic_type=(_i8, (NINODE,)), ic_nlink=(_i8, (NINODE,)), ic_size=(_i8, (NINODE,)),
    ic_addrs=(_i8, (NINODE * NADDRS,)),
    f_ip=(_i8, (NOFILE,)), f_off=(_i8, (NOFILE,)), f_readable=(_i8, (NOFILE,)),
    f_writable=(_i8, (NOFILE,)),
    alloc_hint=_i8, allocs=_i8, disk_reads=_i8, disk_writes=_i8, commits=_i8)
