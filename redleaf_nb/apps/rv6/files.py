"""Whole files in and out of an rv6 file system through its system calls (a proxy to
the rv6 domain): what an rv6 program does to store files, and how the httpd takes the
files it serves from rv6 when the machine has one (``Httpd(load(...))``)."""
from __future__ import annotations

import numpy as np

from redleaf_nb.interfaces.bdev import BSIZE, Block
from redleaf_nb.kernel.proxy import RpcError

from .layout import O_CREATE, O_RDONLY, O_RDWR, O_TRUNC, path_bytes


def _checked(result, what: str, path: str) -> int:
    if isinstance(result, RpcError):      # rv6 itself (or what it called) is dead
        raise OSError(f"rv6: {what} {path}: {result}")
    if result < 0:
        raise OSError(f"rv6: {what} {path}: error {result}")
    return result


def store(kernel, rv6, files: dict[str, bytes]) -> None:
    """Write each ``path -> bytes`` of ``files`` (created or truncated), a block at a time."""
    buf = kernel.new(Block)
    block = np.zeros(BSIZE, np.uint8)
    try:
        for path, data in files.items():
            fd = _checked(rv6.open(path_bytes(path), O_CREATE | O_RDWR | O_TRUNC), "open", path)
            for at in range(0, len(data), BSIZE):
                chunk = np.frombuffer(data[at:at + BSIZE], np.uint8)
                block[:len(chunk)] = chunk
                buf.set(block)
                if _checked(rv6.write(fd, buf, len(chunk)), "write", path) != len(chunk):
                    raise OSError(f"rv6: write {path}: short write (the disk is full?)")
            _checked(rv6.close(fd), "close", path)
    finally:
        _release(buf)


def load(kernel, rv6, paths) -> dict[str, bytes]:
    """The contents of each file of ``paths``, read a block at a time."""
    out, buf = {}, kernel.new(Block)
    try:
        for path in paths:
            fd = _checked(rv6.open(path_bytes(path), O_RDONLY), "open", path)
            parts = []
            while True:
                got = rv6.read(fd, buf, BSIZE)     # (n, the buffer back), or an RpcError
                n = _checked(got if isinstance(got, RpcError) else got[0], "read", path)
                buf = got[1]
                if n == 0:
                    break
                parts.append(buf[:n].tobytes())
            _checked(rv6.close(fd), "close", path)
            out[path] = b"".join(parts)
    finally:
        _release(buf)
    return out


def _release(buf) -> None:
    """Free the caller's block buffer, unless it went down with a crashed rv6."""
    if buf.is_live:
        buf.free()
