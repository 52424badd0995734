"""The key-value store's wire format: what clients and the store both speak.

A request is a UDP datagram (Ethernet 14 + IPv4 20 + UDP 8 bytes of headers) whose
payload is an 8-byte header {op u8, status u8, key length u16, value length u16,
reserved u16} (big-endian), then the key, then (SET) the value. The reply reuses the
request's buffer: addresses and ports swapped, the status set, the key kept, and for
a GET that hit the value after it. Shared by the store (redleaf_nb/apps/kvstore.py),
its C side (experiments/native/kvstore.c, through the generated header) and the
load generator (devices/traffic.py).
"""
KV_PAYLOAD = 42            # where the request header starts (after Ethernet, IPv4, UDP)
KV_OP = KV_PAYLOAD         # op: OP_GET or OP_SET
KV_STATUS = KV_PAYLOAD + 1
KV_KLEN = KV_PAYLOAD + 2   # u16, big-endian
KV_VLEN = KV_PAYLOAD + 4   # u16, big-endian: a SET's value; a reply's value
KV_KEY = KV_PAYLOAD + 8    # the key starts here, the value right after it
KV_HEADER_BYTES = 8
UDP_LEN = 38               # where the UDP length is
KV_PORT = 11211            # the store's UDP port

OP_GET, OP_SET = 1, 2
ST_OK, ST_MISS, ST_FULL, ST_BAD = 0, 1, 2, 3   # a reply's status: hit/stored, no such
#   key, no room for a new key near its hash, a request the store cannot serve
