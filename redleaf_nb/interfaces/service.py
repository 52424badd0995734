"""A request-reply service over a byte stream, for the socket bridge
(redleaf_nb/bridge.py): the httpd answering HTTP/1.1, the key-value store answering
memcached's text protocol. The bridge owns one message buffer and moves it into the
domain with the bytes a client sent; the domain takes whole requests from its
start, writes its replies there, and hands it back, as rv6's system calls move
buffers in and return them.
"""
from __future__ import annotations

from redleaf_nb.kernel.idl import Interface, create
from redleaf_nb.kernel.rref import RRef
from redleaf_nb.kernel.types import u8, u64

MESSAGE_BYTES = 2 << 20     # room for a 1 MiB value or file and its protocol around it
Message = u8[MESSAGE_BYTES]
GO_ON, CLOSE = 0, 1         # what the bridge does next; SWALLOW + n: drop the next n bytes
SWALLOW = 2


class ByteService(Interface):
    """A protocol server that answers whole requests found in a byte stream."""

    def serve(self, msg: RRef[Message], length: u64) -> tuple[u64, u64, u64, RRef[Message]]:
        """Answer the whole requests in the first ``length`` bytes of ``msg`` (moved in):
        (bytes of them consumed, bytes of reply now at the start of ``msg``, what next:
        GO_ON, CLOSE the connection, or SWALLOW + n: drop the client's next n bytes,
        the data of a request refused; ``msg`` back)."""

    @create
    def create_service(self, memory: u64) -> ByteService:
        """Start the service with ``memory`` bytes for what it stores (0: its default)."""
