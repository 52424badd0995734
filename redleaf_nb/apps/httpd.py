"""A static-content HTTP/1.1 server as safe domain code, on the stack of
redleaf_nb/apps/tcpip (the paper's httpd, which runs on smoltcp in the same domain).

Run to completion, as the paper's: each poll lets the stack take in what arrived,
then visits every open connection round-robin, answering whole requests from its
receive ring and continuing responses too large for its send ring, then lets the
stack send. Requests: ``GET`` and ``HEAD`` of files from a table in memory (the
paper's are compiled in; :func:`redleaf_nb.apps.rv6.files.load` takes them from an rv6
file system when the machine has one), keep-alive by default in HTTP/1.1 (``Connection: close``
ends it), and in HTTP/1.0 only when asked for. Errors: 400 (a request line that does
not parse), 404 (no such file), 405 (any other method, with ``Allow``), 431 (no end
of the headers within ``max_header`` bytes); 400, 405 and 431 close the connection.

Files and the fixed texts of responses are one byte blob with a table of rows
(:data:`FILE`); a session record per connection slot follows a response that is
still being written.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from redleaf_nb.interfaces.net import MAX_BATCH, Packets
from redleaf_nb.interfaces.service import CLOSE, GO_ON, MESSAGE_BYTES, ByteService
from redleaf_nb.kernel import heap as hp
from redleaf_nb.kernel.types import exchangeable
from redleaf_nb.kernel.views import (copy_into, deque_len, own_array, own_matrix, rref_array,
                                     span, state_type)

from .netapp import GRANT_BASE, NetApp
from .packet import HELPER, JIT
from .tcpip.stack import STACK, NetStack, stack_input, stack_output
from .tcpip.tcp import (CONN, ESTABLISHED, sock_close, sock_consume, sock_open, sock_readable, sock_room,
                        sock_write)

(G_STACK, G_CONNS, G_RXB, G_TXB, G_HTTP, G_SESS, G_BLOB, G_FTAB, G_BRIDGE_CONN, G_BRIDGE_SESS,
 G_BRIDGE_OUT) = range(GRANT_BASE, GRANT_BASE + 11)
TEXTS = ("HTTP/1.1 200 OK\r\n", "HTTP/1.1 400 Bad Request\r\n", "HTTP/1.1 404 Not Found\r\n",
         "HTTP/1.1 405 Method Not Allowed\r\n",
         "HTTP/1.1 431 Request Header Fields Too Large\r\n",
         "Server: redleaf-nb\r\nContent-Length: ", "\r\nConnection: close\r\n",
         "\r\nConnection: keep-alive\r\n", "\r\n", "Allow: GET, HEAD\r\n",
         "Content-Type: text/html\r\n", "Content-Type: application/octet-stream\r\n",
         "Content-Type: text/plain\r\n", "bad request\n", "not found\n",
         "method not allowed\n", "request header fields too large\n")
(T_200, T_400, T_404, T_405, T_431, T_LENGTH, T_CLOSE, T_KEEP, T_CRLF, T_ALLOW, T_HTML, T_BIN,
 T_PLAIN, B_400, B_404, B_405, B_431) = range(len(TEXTS))
FILE = state_type(name_at=np.int64, name_len=np.int64, at=np.int64, size=np.int64,
                  ctype=np.int64)
SESS = state_type(gen=np.int64, at=np.int64, end=np.int64, close=np.int64,
                  requests=np.int64)
COUNTERS = ("requests", "ok", "not_found", "bad_request", "not_allowed", "too_large",
            "head", "closed_by_client", "closed_by_server", "body_bytes")
HTTP = state_type(**{c: np.int64 for c in COUNTERS}, max_header=np.int64, nfiles=np.int64,
                  max_file=np.int64)
MAX_FILE = MESSAGE_BYTES - (64 << 10)   # a file and its response's head fit a bridge message
GET, HEAD, OTHER, BAD = 0, 1, 2, -1
SP, CR, LF = 32, 13, 10
HEADER_ROOM = 320   # send-ring room a response's header needs (the longest is ~150 bytes)


@njit(**HELPER)
def _text(blob, ftab, t):
    r = ftab[t]
    return span(blob, r.at, r.at + r.size)


@njit(**HELPER)
def _say(c, ring, blob, ftab, t):
    sock_write(c, ring, _text(blob, ftab, t))


@njit(**JIT)
def _say_number(c, ring, digits, n):
    """Write ``n`` >= 0 in decimal."""
    i = digits.size
    while True:
        i -= 1
        digits[i] = 48 + n % 10
        n //= 10
        if n == 0:
            break
    sock_write(c, ring, digits[i:])


@njit(**JIT)
def _header_end(req, n):
    """The length of the request's head (through the blank line), or -1."""
    for i in range(3, n):
        if req[i] == LF and req[i - 1] == CR and req[i - 2] == LF and req[i - 3] == CR:
            return i + 1
    return -1


@njit(**HELPER)
def _is(req, at, n, word, lower):
    """Whether ``req[at:at+n]`` is the ASCII of ``word`` (an int per byte in a tuple),
    compared case-blind when ``lower``."""
    if n != len(word):
        return False
    for i in range(n):
        b = req[at + i]
        if lower and 65 <= b <= 90:
            b += 32
        if b != word[i]:
            return False
    return True


@njit(**HELPER)
def _has(req, at, n, word):
    """Whether ``word`` (lower case) occurs in ``req[at:at+n]``, case-blind."""
    for s in range(n - len(word) + 1):
        if _is(req, at + s, len(word), word, True):
            return True
    return False


@njit(**JIT)
def _parse(req, n):
    """The request line and the ``Connection`` header of a head of ``n`` bytes:
    (method, path start, path length, keep-alive)."""
    i = 0
    while i < n and 65 <= req[i] <= 90:
        i += 1
    if i == 0 or i >= n or req[i] != SP:
        return BAD, 0, 0, False
    if _is(req, 0, i, (71, 69, 84), False):
        method = GET
    elif _is(req, 0, i, (72, 69, 65, 68), False):
        method = HEAD
    else:
        method = OTHER
    p = i + 1
    j = p
    while j < n and req[j] > SP:
        j += 1
    if j == p or req[p] != 47 or j + 10 > n or req[j] != SP:   # '/', ' HTTP/1.x\r\n'
        return BAD, 0, 0, False
    if not _is(req, j + 1, 7, (72, 84, 84, 80, 47, 49, 46), False) or req[j + 9] != CR:
        return BAD, 0, 0, False
    minor = req[j + 8]
    if minor != 48 and minor != 49:
        return BAD, 0, 0, False
    keep = minor == 49
    q = p
    while q < j and req[q] != 63:   # the path ends at '?'
        q += 1
    line = j + 11
    while line < n - 2:             # header lines
        e = line
        while e < n and req[e] != CR:
            e += 1
        colon = line
        while colon < e and req[colon] != 58:
            colon += 1
        if _is(req, line, colon - line, (99, 111, 110, 110, 101, 99, 116, 105, 111, 110), True):
            if _has(req, colon + 1, e - colon - 1, (99, 108, 111, 115, 101)):
                keep = False
            elif _has(req, colon + 1, e - colon - 1, (107, 101, 101, 112, 45, 97, 108, 105, 118, 101)):
                keep = True
        line = e + 2
    return method, p, q - p, keep


@njit(**JIT)
def _find_file(blob, ftab, nfiles, req, p, n):
    for r in range(len(TEXTS), len(TEXTS) + nfiles):
        f = ftab[r]
        if f.name_len == n:
            same = True
            for i in range(n):
                if blob[f.name_at + i] != req[p + i]:
                    same = False
                    break
            if same:
                return r
    return -1


@njit(**JIT)
def _respond(s, c, ring, blob, ftab, digits, status, body, keep, head):
    """Write a response's head, and queue its body (row ``body`` of the table: a file,
    or the text of an error; none for HEAD) for :func:`_continue`."""
    size = ftab[body].size
    _say(c, ring, blob, ftab, status)
    if status == T_405:
        _say(c, ring, blob, ftab, T_ALLOW)
    _say(c, ring, blob, ftab, ftab[body].ctype)
    _say(c, ring, blob, ftab, T_LENGTH)
    _say_number(c, ring, digits, size)
    _say(c, ring, blob, ftab, T_KEEP if keep else T_CLOSE)
    _say(c, ring, blob, ftab, T_CRLF)
    s.at = ftab[body].at
    s.end = s.at if head else s.at + size
    s.close = not keep
    s.requests += 1


@njit(**JIT)
def _continue(hs, s, c, ring, blob):
    """Write what fits of the body in progress: True once it is all written."""
    if s.at < s.end:
        n = sock_write(c, ring, span(blob, s.at, s.end))
        s.at += n
        hs.body_bytes += n
    if s.at < s.end:
        return False
    if s.close:
        sock_close(c)
        hs.closed_by_server += 1
        s.close = 2               # closed: no more requests on this connection
    return True


@njit(**JIT)
def _serve_request(hs, s, c, rx_ring, ring, blob, ftab, req):
    """Answer the next whole request readable on ``c``, if there is one."""
    avail = sock_readable(c)
    n = min(avail, hs.max_header)
    used = c.used % rx_ring.size
    first = min(n, rx_ring.size - used)
    copy_into(req[:first], rx_ring[used:used + first])
    copy_into(req[first:n], rx_ring[0:n - first])
    digits = req[req.size - 24:]
    end = _header_end(req, n)
    if end < 0:
        if avail >= hs.max_header:
            hs.too_large += 1
            _respond(s, c, ring, blob, ftab, digits, T_431, B_431, False, False)
            sock_consume(c, avail)
        elif c.fin_in:
            hs.closed_by_client += 1
            sock_consume(c, avail)
            sock_close(c)
            s.close = 2
        return
    hs.requests += 1
    sock_consume(c, end)
    method, p, plen, keep = _parse(req, end)
    if method == BAD:
        hs.bad_request += 1
        _respond(s, c, ring, blob, ftab, digits, T_400, B_400, False, False)
    elif method == OTHER:
        hs.not_allowed += 1
        _respond(s, c, ring, blob, ftab, digits, T_405, B_405, False, False)
    else:
        r = _find_file(blob, ftab, hs.nfiles, req, p, plen)
        head = method == HEAD
        hs.head += head
        if r < 0:
            hs.not_found += 1
            _respond(s, c, ring, blob, ftab, digits, T_404, B_404, keep, head)
        else:
            hs.ok += 1
            _respond(s, c, ring, blob, ftab, digits, T_200, r, keep, head)


@njit(**JIT)
def _serve_connection(hs, s, c, rx_ring, tx_ring, blob, ftab, req, room):
    """Continue the response in progress on ``c``, then answer its whole requests while
    its send ring has ``room`` bytes free; close it once the client has closed and
    everything is answered."""
    while s.close != 2:
        if not _continue(hs, s, c, tx_ring, blob):
            break              # the send ring is full: the rest next time
        if (sock_readable(c) == 0 and not c.fin_in) or sock_room(c, tx_ring) < room:
            break
        before = c.used
        _serve_request(hs, s, c, rx_ring, tx_ring, blob, ftab, req)
        if c.used == before and s.close != 2:
            break              # half a request: wait for the rest


@njit(**JIT)
def http_round(hs, sess, blob, ftab, conns, rxb, txb, req):
    """Visit every open connection once (round-robin, as the paper's httpd)."""
    for i in range(conns.shape[0]):
        c = conns[i]
        if not sock_open(c):
            continue
        s = sess[i]
        if s.gen != c.gen:        # a new connection in this slot
            s.gen, s.at, s.end, s.close, s.requests = c.gen, 0, 0, 0, 0
        _serve_connection(hs, s, c, rxb[i], txb[i], blob, ftab, req, HEADER_ROOM)


@njit(**JIT)
def serve(k, me, rx, tx, pool, now):
    """One poll of the server at time ``now`` (cycles): take in the frames of deque
    ``rx`` (their buffers go to ``tx`` as replies, or back to ``pool``), answer
    requests, and put the segments to send in ``tx`` (buffers from ``pool``). The
    number of frames in ``tx``."""
    st = own_array(k, G_STACK, STACK)[0]
    conns, rxb, txb = own_array(k, G_CONNS, CONN), own_matrix(k, G_RXB, np.uint8), \
        own_matrix(k, G_TXB, np.uint8)
    hs, sess = own_array(k, G_HTTP, HTTP)[0], own_array(k, G_SESS, SESS)
    blob, ftab = own_array(k, G_BLOB, np.uint8), own_array(k, G_FTAB, FILE)
    st.now = now
    stack_input(k, st, conns, rxb, rx, tx, pool)
    http_round(hs, sess, blob, ftab, conns, rxb, txb, np.empty(hs.max_header + 24, np.uint8))
    stack_output(k, st, conns, rxb, txb, tx, pool, MAX_BATCH - deque_len(k, tx))
    return deque_len(k, tx)


@njit(**JIT)
def serve_bytes(k, me, msg, length):
    """The httpd's service to the socket bridge (interfaces/service.py): answer the whole
    requests in the first ``length`` bytes of exchange-heap buffer ``msg`` (owned by
    this domain for the call) and put the replies there: (bytes consumed, bytes of
    reply, whether the connection closes). It is the same request handling as on the
    stack's connections, over a connection record of its own whose receive ring is
    ``msg`` and whose send ring holds any whole response."""
    hs, blob, ftab = own_array(k, G_HTTP, HTTP)[0], own_array(k, G_BLOB, np.uint8), \
        own_array(k, G_FTAB, FILE)
    c, s = own_array(k, G_BRIDGE_CONN, CONN)[0], own_array(k, G_BRIDGE_SESS, SESS)[0]
    out, data = own_array(k, G_BRIDGE_OUT, np.uint8), rref_array(k, msg, np.uint8, True)
    c.state, c.got, c.used, c.end, c.una, c.fin_in, c.fin_out = ESTABLISHED, min(length,
                                                                                data.size), 0, 0, 0, 0, 0
    s.at, s.end, s.close = 0, 0, 0
    _serve_connection(hs, s, c, data, out, blob, ftab, np.empty(hs.max_header + 24, np.uint8),
                      HEADER_ROOM + hs.max_file)
    copy_into(data[:c.end], out[:c.end])
    return c.used, c.end, s.close == 2


def default_files(seed: int = 0) -> dict[str, bytes]:
    """The paper's httpd files (index.html and 1K, 10K, 100K binaries) and, for byte-exact
    checks at the ends of the range, an empty file and a 1 MiB one."""
    rng = np.random.default_rng(seed)
    index = (b"<!DOCTYPE html>\n<html><head><title>redleaf-nb httpd</title></head>\n"
             b"<body><h1>redleaf-nb</h1><p>A static page served by the httpd domain on "
             b"the TCP/IP stack domain of redleaf-nb, a model of RedLeaf (OSDI 2020)."
             b"</p></body></html>\n")
    files = {"/index.html": index, "/empty.bin": b""}
    for name, size in (("1K", 1 << 10), ("10K", 10 << 10), ("100K", 100 << 10), ("1M", 1 << 20)):
        files[f"/{name}.bin"] = rng.integers(0, 256, size, np.uint8).tobytes()
    return files


def frame_bytes(data: np.ndarray) -> bytes:
    """A frame as the driver sends it: IPv4 by its total length, others (ARP) 60 bytes."""
    n = 14 + (int(data[16]) << 8 | int(data[17])) if bytes(data[12:14]) == b"\x08\x00" else 60
    return data[:n].tobytes()


class Httpd(NetApp):
    """The server, with its stack: ``files`` maps paths (``/index.html``) to contents
    (``/`` serves ``/index.html`` unless given); ``stack`` a :class:`NetStack`."""

    name = "httpd"
    functions = (serve, serve_bytes)
    forward = staticmethod(serve)
    COUNTERS = COUNTERS
    _deques = None

    def __init__(self, files: dict[str, bytes] | None = None, stack: NetStack | None = None,
                 max_header: int = 4096):
        files = dict(default_files() if files is None else files)
        if "/" not in files and "/index.html" in files:
            files["/"] = files["/index.html"]
        self.stack = stack or NetStack()
        if not 256 <= max_header <= self.stack.rxb.shape[1] // 2:
            raise ValueError(f"httpd: max_header={max_header} out of range 256.."
                             f"{self.stack.rxb.shape[1] // 2} (half the receive ring)")
        for path, data in files.items():
            if len(data) > MAX_FILE:
                raise ValueError(f"httpd: {path} has {len(data)} bytes, more than {MAX_FILE}")
            if not path.startswith("/") or len(path) > 1024 or any(ch <= " " for ch in path):
                raise ValueError(f"httpd: bad path {path!r} (starts with '/', no spaces, "
                                 "at most 1024 bytes)")
        self.files = files
        self.state = np.zeros(1, HTTP)
        self.state["max_header"], self.state["nfiles"] = max_header, len(files)
        self.state["max_file"] = max(len(data) for data in files.values()) if files else 0
        self.sessions = np.zeros(len(self.stack.conns), SESS)
        self._bridge = (np.zeros(1, CONN), np.zeros(1, SESS), np.zeros(MESSAGE_BYTES, np.uint8))
        chunks, rows, at = [], [], 0
        for i, text in enumerate(TEXTS):   # error texts are bodies: text/plain
            data = text.encode()
            rows.append((0, 0, at, len(data), T_PLAIN if i >= B_400 else 0))
            chunks.append(data)
            at += len(data)
        for path, data in files.items():
            name = path.encode()
            ctype = T_HTML if path.endswith((".html", "/")) else T_BIN
            rows.append((at, len(name), at + len(name), len(data), ctype))
            chunks += [name, data]
            at += len(name) + len(data)
        self.blob = np.frombuffer(b"".join(chunks) or b"\0", np.uint8).copy()
        self.table = np.array(rows, FILE)

    def regions(self) -> dict[int, np.ndarray]:
        return {**self.stack.regions(G_STACK), G_HTTP: self.state, G_SESS: self.sessions,
                G_BLOB: self.blob, G_FTAB: self.table, G_BRIDGE_CONN: self._bridge[0],
                G_BRIDGE_SESS: self._bridge[1], G_BRIDGE_OUT: self._bridge[2]}

    def counters(self) -> dict:
        return {**self.stack.counters(), **super().counters()}

    def poll(self, frames: list[bytes], now: int) -> list[bytes]:
        """One poll of the server (in the app's own kernel) at ``now`` cycles, with
        ``frames`` received: the frames it sends. For tests and notebooks."""
        dom = self.control()
        heap, me = self._home.heap, dom.id
        if self._deques is None:
            deque_t = exchangeable(Packets)
            self._deques = [heap.alloc(deque_t, me) for _ in range(3)]
            for _ in range(2 * MAX_BATCH):
                hp.deque_push_back(heap.k, self._deques[2], me, heap.alloc(deque_t.child, me))
        rx, tx, pool = self._deques
        out, frames, chunk = [], list(frames), MAX_BATCH // 2
        for first in range(0, max(len(frames), 1), chunk):   # as a driver's batches
            for frame in frames[first:first + chunk]:
                buf = hp.deque_pop_front(heap.k, pool, me)
                data = heap.view(buf, me, write=True)
                data[:] = 0
                data[:len(frame)] = np.frombuffer(bytes(frame), np.uint8)
                hp.deque_push_back(heap.k, rx, me, buf)
            dom.run_jitted(serve, rx, tx, pool, now)
            while hp.deque_len(heap.k, tx, me) > 0:
                buf = hp.deque_pop_front(heap.k, tx, me)
                out.append(frame_bytes(heap.view(buf, me)))
                hp.deque_push_back(heap.k, pool, me, buf)
        return out


class HttpdService(ByteService):
    """The httpd as a domain of its own behind the socket bridge, serving ``files``
    (None: :func:`default_files`; :func:`httpd_service` makes a class with others). It
    builds its memory when created, so a shadow that re-creates it after a crash
    brings it back whole."""

    files: dict | None = None

    def create_service(self, memory):
        self.app = Httpd(self.files)
        self.app.link(self.domain)

    def serve(self, msg, length):
        used, reply, close = self.domain.run_jitted(serve_bytes, msg.handle, length)
        return used, reply, CLOSE if close else GO_ON, msg


def httpd_service(kernel, files: dict[str, bytes] | None = None, name: str = "httpd"):
    """Create the httpd service domain in ``kernel`` (serving ``files``): its proxy."""
    cls = HttpdService if files is None else type("HttpdService", (HttpdService,),
                                                   {"files": dict(files)})
    return kernel.create(name, cls, memory=0)
