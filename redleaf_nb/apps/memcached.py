"""memcached's text protocol as a domain: the key-value store's general data model
(:mod:`redleaf_nb.apps.kvdata`: values in the exchange heap, owned by this domain)
behind a :class:`~redleaf_nb.interfaces.service.ByteService`, so that unmodified
memcached clients reach it through the socket bridge (redleaf_nb/bridge.py).

Commands (memcached's protocol.txt): get, gets, gat, gats; set, add, replace, append,
prepend, cas (each with ``noreply``); delete, incr, decr, touch, flush_all, version,
verbosity, cache_memlimit, stats (a few general counters; ``stats <group>`` answers
an empty group) and quit, with memcached's replies and its exact error lines:
``ERROR`` for an unknown command, ``CLIENT_ERROR bad command line format``,
``CLIENT_ERROR bad data chunk``, ``SERVER_ERROR object too large for cache`` (the
data then swallowed), ``SERVER_ERROR out of memory storing object``.
"""
from __future__ import annotations

import os
import time

import numpy as np

from redleaf_nb.interfaces.service import CLOSE, GO_ON, MESSAGE_BYTES, SWALLOW, ByteService
from redleaf_nb.kernel.heap import HeapExhausted

from .kvdata import MAX_KEY, MAX_VALUE, KvData

VERSION = b"1.6.18-redleaf-nb"
MAX_LINE = 2048          # a command line longer than this is refused (memcached: 2048)
STORAGE = (b"set", b"add", b"replace", b"append", b"prepend", b"cas")
BAD_FORMAT = b"CLIENT_ERROR bad command line format\r\n"
INVALID_EXPTIME = b"CLIENT_ERROR invalid exptime argument\r\n"


class _Incomplete(Exception):
    """The request's data has not all arrived yet."""


def _number(word: bytes, bits: int = 64, signed: bool = False) -> int:
    if not (word.isdigit() or (signed and word[:1] == b"-" and word[1:].isdigit())):
        raise ValueError(word)
    n = int(word)
    if not (-(1 << (bits - 1)) if signed else 0) <= n < 1 << bits:
        raise ValueError(word)
    return n


class Protocol:
    """One parse of a buffer of requests against ``data``."""

    def __init__(self, data: KvData):
        self.data = data
        self.started = time.time()
        # command -> (handler, fewest and most words after it): memcached answers ERROR
        # to a command it does not know, or with another number of words
        many = 1 << 20
        self._commands = {
            b"get": (self._get, 1, many), b"gets": (self._get, 1, many),
            b"gat": (self._gat, 1, many), b"gats": (self._gat, 1, many),
            b"delete": (self._delete, 1, 3), b"incr": (self._incr, 2, 3),
            b"decr": (self._incr, 2, 3), b"touch": (self._touch, 2, 3),
            b"flush_all": (self._flush, 0, 2), b"version": (self._version, 0, 0),
            b"verbosity": (self._ok, 1, 2), b"cache_memlimit": (self._ok, 1, 2),
            b"stats": (self._stats, 0, many), b"quit": (self._quit, 0, 0)}

    def handle(self, buf: bytes) -> tuple[int, bytes, int]:
        """Answer the whole requests at the start of ``buf``: (bytes consumed, the
        replies, what next: GO_ON, CLOSE or SWALLOW + n)."""
        at, out = 0, []
        while at < len(buf):
            end = buf.find(b"\n", at, at + MAX_LINE + 2)   # as memcached: a \r before is dropped
            if end < 0:
                if len(buf) - at > MAX_LINE:
                    out.append(b"CLIENT_ERROR line too long\r\n")
                    return len(buf), b"".join(out), CLOSE
                break
            words = buf[at:end].rstrip(b"\r").split(b" ")
            words = [w for w in words if w]
            try:
                used, reply, then = self._command(words, buf, end + 1)
            except _Incomplete:
                break
            at = used
            out.append(reply)
            if then != GO_ON:
                return at, b"".join(out), then
        return at, b"".join(out), GO_ON

    def _command(self, words: list[bytes], buf: bytes, after: int):
        if not words:
            return after, b"ERROR\r\n", GO_ON
        cmd, args = words[0], words[1:]
        if cmd in STORAGE:
            if not (5 if cmd == b"cas" else 4) <= len(args) <= (6 if cmd == b"cas" else 5):
                return after, b"ERROR\r\n", GO_ON
            return self._store(cmd, args, buf, after)
        handler, fewest, most = self._commands.get(cmd, (None, 0, -1))
        if handler is None or not fewest <= len(args) <= most:
            return after, b"ERROR\r\n", GO_ON
        try:
            reply = handler(cmd, args)
        except ValueError:
            reply = BAD_FORMAT
        if reply is None:
            return after, b"", CLOSE
        return after, reply, GO_ON

    @staticmethod
    def _key(word: bytes) -> bytes:
        if len(word) > MAX_KEY:
            raise ValueError(word)
        return word

    def _store(self, cmd, args, buf, after):
        noreply = bool(args) and args[-1] == b"noreply"
        fields = args[:-1] if noreply else args
        try:
            if len(fields) != (5 if cmd == b"cas" else 4):
                raise ValueError(fields)
            key = self._key(fields[0])
            flags, exptime = _number(fields[1], 32), _number(fields[2], 64, signed=True)
            size = _number(fields[3], 31)
            unique = _number(fields[4]) if cmd == b"cas" else 0
        except ValueError:
            return after, BAD_FORMAT, GO_ON
        if size > MAX_VALUE:
            # memcached answers at once, then drops the data (and its CRLF) unread
            skip, have = size + 2, len(buf) - after
            then = SWALLOW + skip - have if skip > have else GO_ON
            return after + min(skip, have), b"SERVER_ERROR object too large for cache\r\n", then
        if len(buf) < after + size + 2:
            raise _Incomplete
        value = buf[after:after + size]
        used = after + size + 2
        if buf[after + size:used] != b"\r\n":
            return used, b"" if noreply else b"CLIENT_ERROR bad data chunk\r\n", GO_ON
        try:
            if cmd == b"cas":
                result = self.data.cas(key, value, unique, flags, exptime)
            elif cmd in (b"append", b"prepend"):
                result = getattr(self.data, cmd.decode())(key, value)
            else:
                result = getattr(self.data, cmd.decode())(key, value, flags, exptime)
        except HeapExhausted:
            result = "SERVER_ERROR out of memory storing object"
        except ValueError:
            return used, BAD_FORMAT, GO_ON
        return used, b"" if noreply else result.encode() + b"\r\n", GO_ON

    def _values(self, keys: list[bytes], with_cas: bool) -> bytes:
        out = []
        for key in keys:
            got = self.data.get(self._key(key))
            if got is not None:
                value, flags, unique = got
                head = b"VALUE %s %d %d" % (key, flags, len(value))
                out.append(head + (b" %d\r\n" % unique if with_cas else b"\r\n") + value + b"\r\n")
        out.append(b"END\r\n")
        reply = b"".join(out)
        if len(reply) > MESSAGE_BYTES:
            return b"SERVER_ERROR out of memory writing get response\r\n"
        return reply

    def _get(self, cmd, args):
        return self._values(args, cmd == b"gets")

    def _gat(self, cmd, args):
        try:
            exptime = _number(args[0], 64, signed=True)
        except ValueError:
            return INVALID_EXPTIME
        for key in args[1:]:
            self.data.touch(self._key(key), exptime)
        return self._values(args[1:], cmd == b"gats")

    def _delete(self, cmd, args):
        noreply = bool(args) and args[-1] == b"noreply"
        fields = args[:-1] if noreply else args
        if len(fields) == 2 and fields[1] == b"0":   # the old form with a time of 0
            fields = fields[:1]
        if len(fields) != 1:
            return b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
        result = self.data.delete(self._key(fields[0]))
        return b"" if noreply else result.encode() + b"\r\n"

    def _incr(self, cmd, args):
        noreply = len(args) == 3 and args[2] == b"noreply"
        if len(args) != (3 if noreply else 2):
            raise ValueError(args)
        try:
            delta = _number(args[1])
        except ValueError:
            return b"CLIENT_ERROR invalid numeric delta argument\r\n"
        try:
            result = self.data.incr(self._key(args[0]), delta if cmd == b"incr" else -delta)
        except ValueError:
            return b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
        return b"" if noreply else str(result).encode() + b"\r\n"

    def _touch(self, cmd, args):
        noreply = len(args) == 3 and args[2] == b"noreply"
        if len(args) != (3 if noreply else 2):
            raise ValueError(args)
        try:
            exptime = _number(args[1], 64, signed=True)
        except ValueError:
            return INVALID_EXPTIME
        result = self.data.touch(self._key(args[0]), exptime)
        return b"" if noreply else result.encode() + b"\r\n"

    def _flush(self, cmd, args):
        noreply = bool(args) and args[-1] == b"noreply"
        delay = args[:-1] if noreply else args
        if len(delay) > 1:
            raise ValueError(args)
        if delay and not delay[0].isdigit():
            return INVALID_EXPTIME
        self.data.flush_all()
        return b"" if noreply else b"OK\r\n"

    def _version(self, cmd, args):
        return b"VERSION " + VERSION + b"\r\n"

    def _ok(self, cmd, args):
        noreply = bool(args) and args[-1] == b"noreply"
        if len(args) != (2 if noreply else 1):
            raise ValueError(args)
        _number(args[0])
        return b"" if noreply else b"OK\r\n"

    def _stats(self, cmd, args):
        if args:   # a stats group we do not keep (items, slabs, cachedump ...): empty
            return b"END\r\n"
        s = self.data.stats
        lines = {b"pid": os.getpid(), b"uptime": int(time.time() - self.started),
                 b"curr_items": len(self.data), b"get_hits": s["get_hits"],
                 b"get_misses": s["get_misses"], b"cmd_set": s["sets"],
                 b"expired_unfetched": s["expired"], b"bytes": self.data.heap_bytes}
        return b"".join(b"STAT %s %d\r\n" % kv for kv in lines.items()) + b"END\r\n"

    def _quit(self, cmd, args):
        return None


class MemcachedService(ByteService):
    """The key-value store answering memcached's text protocol (a Python-tier domain:
    its items' values are exchange-heap objects it owns)."""

    def create_service(self, memory):
        self.data = KvData(self.domain.kernel, self.domain.id)
        self.protocol = Protocol(self.data)

    def serve(self, msg, length):
        if length > MESSAGE_BYTES:
            raise ValueError(f"memcached: length={length} larger than the message "
                             f"({MESSAGE_BYTES} bytes)")
        used, reply, then = self.protocol.handle(msg[:length].tobytes())
        if reply:
            msg[:len(reply)] = np.frombuffer(reply, np.uint8)
        return used, len(reply), then, msg
