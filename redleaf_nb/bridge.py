"""A socket bridge: a domain's byte service (interfaces/service.py) on 127.0.0.1, so
that unmodified clients (curl, wrk, ab; memcached client libraries and tools) reach
the httpd or the key-value store domain.

It is a thin, trusted adapter, like a NIC: a client's bytes are copied into one
exchange-heap message buffer, which is moved into the domain through its proxy (or
its shadow's) like any other call, and the replies are copied out of it. One thread
serves every connection from a ``selectors`` loop, one call at a time (a domain runs
one call at a time). When a call fails (the domain crashed), that connection gets
``failure`` (an HTTP 503, a memcached ``SERVER_ERROR``) and is closed, and the failure
is counted; the buffer, lost with the domain, is replaced, and behind a shadow the
next call finds the service restarted.
"""
from __future__ import annotations

import selectors
import socket
import threading

import numpy as np

from redleaf_nb.interfaces.service import CLOSE, MESSAGE_BYTES, SWALLOW, Message
from redleaf_nb.kernel.rref import RRef

COUNTERS = ("connections", "calls", "failures", "bytes_in", "bytes_out")


class _Client:
    __slots__ = ("sock", "pending", "swallow", "out")

    def __init__(self, sock):
        self.sock, self.pending, self.swallow, self.out = sock, bytearray(), 0, bytearray()


class SocketBridge:
    """Serve ``proxy`` (a :class:`ByteService`'s, in ``kernel``) on 127.0.0.1:``port``
    (0: a free one, then :attr:`port`); ``failure`` is what a client gets when the call
    fails. Use as a context manager, or :meth:`start` and :meth:`close`."""

    def __init__(self, kernel, proxy, port: int = 0, failure: bytes = b""):
        self.kernel, self.proxy, self.failure = kernel, proxy, failure
        self.counters = dict.fromkeys(COUNTERS, 0)
        self._msg = self._new_message()
        self._listener = socket.create_server(("127.0.0.1", port), backlog=128)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._stop = threading.Event()
        self._thread = None

    def _new_message(self):
        return self.kernel.init.heap.new(RRef[Message])

    def start(self) -> "SocketBridge":
        self._thread = threading.Thread(target=self._serve, daemon=True,
                                        name=f"bridge:{self.port}")
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving; every connection and the listening socket are closed."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()
        self._selector.close()

    def __enter__(self) -> "SocketBridge":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def exchange(self, data: bytes) -> tuple[int, bytes, int]:
        """One call into the domain with the first bytes of ``data``: (bytes consumed,
        reply, what next); a failed call raises."""
        n = min(len(data), MESSAGE_BYTES)
        heap, me = self.kernel.heap, self.kernel.init.id
        if not self._msg.is_live:          # lost with a crashed domain
            self._msg = self._new_message()
        if n:
            heap.view(self._msg.handle, me, write=True)[:n] = np.frombuffer(data, np.uint8, n)
        self.counters["calls"] += 1
        used, length, then, self._msg = self.proxy.serve(self._msg, n)
        reply = heap.view(self._msg.handle, me)[:length].tobytes() if length else b""
        return int(used), reply, int(then)

    def _serve(self) -> None:
        while not self._stop.is_set():
            for key, events in self._selector.select(timeout=0.05):
                if key.data is None:
                    self._accept()
                elif events & selectors.EVENT_READ:
                    self._readable(key.data)
                else:
                    self._flush(key.data)

    def _accept(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.counters["connections"] += 1
        self._selector.register(sock, selectors.EVENT_READ, _Client(sock))

    def _drop(self, c: _Client) -> None:
        self._selector.unregister(c.sock)
        c.sock.close()

    def _readable(self, c: _Client) -> None:
        try:
            data = c.sock.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:          # reset by the client
            data = b""
        if not data:
            self._drop(c)
            return
        self.counters["bytes_in"] += len(data)
        if c.swallow:
            drop = min(c.swallow, len(data))
            data, c.swallow = data[drop:], c.swallow - drop
        c.pending += data
        close = False
        while c.pending:
            try:
                used, reply, then = self.exchange(bytes(c.pending[:MESSAGE_BYTES]))
            except Exception:    # the domain failed the call: say so, and hang up
                self.counters["failures"] += 1
                c.out += self.failure
                close = True
                break
            c.out += reply
            del c.pending[:used]
            if then == CLOSE:
                close = True
                break
            if then >= SWALLOW:
                c.swallow = then - SWALLOW
            if used == 0:
                break            # half a request: wait for the rest
        self._flush(c, close)

    def _flush(self, c: _Client, close: bool = False) -> None:
        """Send what is queued for ``c``; what the socket does not take waits for it to
        become writable (the connection then reads no more until it is sent)."""
        try:
            sent = c.sock.send(c.out) if c.out else 0
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._drop(c)
            return
        self.counters["bytes_out"] += sent
        del c.out[:sent]
        if c.out:
            self._selector.modify(c.sock, selectors.EVENT_WRITE, c)
            if close:
                c.pending.clear()
                c.swallow = -1   # closes once sent
            return
        if close or c.swallow < 0:
            self._drop(c)
            return
        self._selector.modify(c.sock, selectors.EVENT_READ, c)
