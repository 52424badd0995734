"""The TCP/IP stack and httpd domains driven with crafted packets (scapy builds and
checks them): every layer's answers, every malformed input rejected and counted with
the stack unharmed, TCP's state machine, timers and flow control, HTTP's statuses."""
from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether

from redleaf_nb.apps.httpd import Httpd
from redleaf_nb.apps.tcpip.stack import NetStack

CLIENT_MAC, SERVER_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"
CLIENT_IP, SERVER_IP = "10.0.0.1", "10.0.0.2"
HZ = 1e9          # stack clock: 1 cycle = 1 ns, so timers read in microseconds * 1000
MS = 1_000_000
FILES = {"/index.html": b"<html>hello</html>\n", "/big.bin": bytes(range(256)) * 400,
         "/empty.bin": b""}


def eth(payload) -> bytes:
    return bytes(Ether(src=CLIENT_MAC, dst=SERVER_MAC) / payload)


def ip(**kw):
    return IP(src=CLIENT_IP, dst=SERVER_IP, **kw)


def valid(frame: bytes) -> Ether:
    """A frame the stack sent, parsed, with its checksums verified."""
    e = Ether(frame)
    if IP in e:
        for layer in (IP, TCP, UDP, ICMP):
            if layer in e:
                got = e[layer].chksum
                e2 = Ether(frame)
                del e2[layer].chksum
                assert Ether(bytes(e2))[layer].chksum == got, f"bad {layer.__name__} checksum"
    return e


class Server:
    """An httpd in its own kernel, polled with frames at times we choose."""

    def __init__(self, max_header=4096, **stack):
        self.app = Httpd(FILES, NetStack(hz=HZ, **stack), max_header=max_header)
        self.now = 0

    def send(self, *frames, advance=1000) -> list[Ether]:
        self.now += advance
        return [valid(f) for f in self.app.poll(list(frames), self.now)]

    def count(self, name: str) -> int:
        return self.app.counters()[name]


class Client:
    """One TCP connection's client side, its sequence numbers kept."""

    def __init__(self, server: Server, port: int = 40000, seq: int = 1000):
        self.server, self.port, self.seq, self.ack = server, port, seq, 0

    def segment(self, flags="A", data=b"", seq=None, window=65535, options=()):
        return eth(ip() / TCP(sport=self.port, dport=80, flags=flags,
                              seq=self.seq if seq is None else seq, ack=self.ack,
                              window=window, options=list(options)) / data)

    def mine(self, frames) -> list[Ether]:
        return [f for f in frames if TCP in f and f[TCP].dport == self.port]

    def connect(self, options=(("MSS", 1460),)) -> Ether:
        out = self.mine(self.server.send(self.segment("S", options=options)))
        assert len(out) == 1 and out[0][TCP].flags == "SA"
        self.seq += 1
        self.ack = out[0][TCP].seq + 1
        assert self.mine(self.server.send(self.segment("A"))) == []
        return out[0]

    def request(self, data: bytes, **kw) -> list[Ether]:
        out = self.mine(self.server.send(self.segment("PA", data), **kw))
        self.seq += len(data)
        return out

    def take(self, segments) -> bytes:
        """The in-order payload of ``segments`` (acknowledged from now on)."""
        data = b""
        for s in segments:
            if TCP in s and s[TCP].seq == self.ack:
                payload = bytes(s[TCP].payload)
                data += payload
                self.ack += len(payload) + (1 if "F" in s[TCP].flags else 0)
        return data

    def get(self, path="/index.html", extra=b"") -> bytes:
        return self.take(self.request(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                                      + extra + b"\r\n"))


@pytest.fixture
def server():
    return Server()


# --- Ethernet, ARP, IPv4, ICMP, UDP ----------------------------------------------

def test_arp_request_for_our_address_is_answered_and_others_are_not(server):
    req = Ether(src=CLIENT_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=CLIENT_MAC,
                                                               psrc=CLIENT_IP, pdst=SERVER_IP)
    (reply,) = server.send(bytes(req))
    assert reply[ARP].op == 2 and reply[ARP].hwsrc == SERVER_MAC and reply[ARP].psrc == SERVER_IP
    assert reply[ARP].hwdst == CLIENT_MAC and reply.dst == CLIENT_MAC
    other = req.copy()
    other[ARP].pdst = "10.0.0.9"
    assert server.send(bytes(other)) == []
    assert server.count("arp_replies") == 1 and server.count("arp_ignored") == 1


def test_icmp_echo_is_answered_with_its_payload(server):
    (reply,) = server.send(eth(ip() / ICMP(id=7, seq=3) / b"ping payload"))
    assert reply[ICMP].type == 0 and reply[ICMP].id == 7 and reply[ICMP].seq == 3
    assert bytes(reply[ICMP].payload) == b"ping payload" and reply[IP].dst == CLIENT_IP


def test_icmp_echo_with_ip_options_is_answered_without_them(server):
    (reply,) = server.send(eth(ip(options=b"\x01\x01\x01\x00") / ICMP() / b"x"))
    assert reply[IP].ihl == 5 and bytes(reply[ICMP].payload) == b"x"


def test_udp_echo_port_answers_and_other_ports_are_counted(server):
    (reply,) = server.send(eth(ip() / UDP(sport=5000, dport=7) / b"echo me"))
    assert reply[UDP].dport == 5000 and bytes(reply[UDP].payload) == b"echo me"
    assert server.send(eth(ip() / UDP(sport=5000, dport=9) / b"x")) == []
    assert server.count("udp_no_port") == 1


BAD_FRAMES = {
    "ip_bad": [eth(ip(version=6) / TCP()), eth(ip(ihl=4) / TCP()), eth(ip(len=1600) / TCP()),
               eth(ip(len=10) / TCP())],
    "ip_bad_checksum": [eth(ip(chksum=0x1234) / TCP(dport=80, flags="S"))],
    "ip_fragments": [eth(ip(flags="MF") / TCP(dport=80, flags="S")),
                     eth(ip(frag=100) / TCP(dport=80, flags="S"))],
    "ip_not_mine": [bytes(Ether(src=CLIENT_MAC, dst=SERVER_MAC) /
                          IP(src=CLIENT_IP, dst="10.0.0.77") / TCP(dport=80, flags="S"))],
    "tcp_bad_checksum": [eth(ip() / TCP(dport=80, flags="S", chksum=0xBEEF))],
    "tcp_bad": [eth(ip() / TCP(dport=80, flags="S", dataofs=3)),
                eth(ip() / TCP(dport=80, flags="S", dataofs=15)),
                eth(ip(proto=6) / b"short")],
    "icmp_bad": [eth(ip() / ICMP(chksum=0x1111) / b"x")],
    "udp_bad": [eth(ip() / UDP(dport=7, len=200) / b"x"),
                eth(ip() / UDP(dport=7, chksum=0x1111) / b"x")],
    "not_ip": [bytes(Ether(src=CLIENT_MAC, dst=SERVER_MAC, type=0x86DD) / (b"\0" * 50))],
    "other_protocol": [eth(ip(proto=47) / b"gre")],
}


@pytest.mark.parametrize("counter", sorted(BAD_FRAMES))
def test_malformed_frames_are_rejected_counted_and_the_stack_still_serves(counter):
    server = Server()
    frames = BAD_FRAMES[counter]
    assert server.send(*frames) == []
    assert server.count(counter) == len(frames)
    client = Client(server)
    client.connect()
    assert client.get().endswith(FILES["/index.html"])


# --- TCP -------------------------------------------------------------------------

def test_handshake_answers_mss_and_window_scale_and_offers_no_sack_or_timestamps(server):
    syn_ack = Client(server).connect(options=[("MSS", 1200), ("SAckOK", b""),
                                              ("Timestamp", (1, 0)), ("WScale", 7)])
    assert dict(syn_ack[TCP].options) == {"MSS": 1460, "NOP": None, "WScale": 0}
    assert Client(server, 40001).connect(options=())[TCP].options == [("MSS", 1460)]
    assert server.count("tcp_accepted") == 2


def test_segments_are_cut_to_the_peer_mss_and_its_scaled_window_is_honoured(server):
    client = Client(server)
    client.connect(options=[("MSS", 500), ("WScale", 2)])
    out = client.request(b"GET /big.bin HTTP/1.1\r\n\r\n", advance=1000)
    sizes = [len(s[TCP].payload) for s in out]
    assert max(sizes) == 500
    assert sum(sizes) <= 65535   # a window of 65535 << 2, but our send ring is 32 KiB
    client2 = Client(server, 40001)
    client2.connect(options=[("MSS", 1460), ("WScale", 2)])
    out = server.send(client2.segment("PA", b"GET /big.bin HTTP/1.1\r\n\r\n", window=500))
    assert sum(len(s[TCP].payload) for s in out) <= 2000   # 500 << 2


def test_a_segment_to_a_closed_port_is_answered_with_a_reset(server):
    (rst,) = server.send(eth(ip() / TCP(sport=1234, dport=81, flags="S", seq=5)))
    assert rst[TCP].flags == "RA" and rst[TCP].ack == 6
    (rst,) = server.send(eth(ip() / TCP(sport=1234, dport=80, flags="A", seq=5, ack=77)))
    assert rst[TCP].flags == "R" and rst[TCP].seq == 77
    assert server.count("tcp_resets_out") == 2
    assert server.send(eth(ip() / TCP(sport=1234, dport=80, flags="R", seq=5))) == []


def test_reset_in_window_ends_the_connection_and_out_of_window_does_not(server):
    client = Client(server)
    client.connect()
    assert server.send(client.segment("R", seq=client.seq + 10_000_000)) == []
    assert len(server.app.stack.connections()) == 1
    server.send(client.segment("R"))
    assert server.app.stack.connections() == [] and server.count("tcp_resets_in") == 1


def test_out_of_window_and_out_of_order_segments_get_an_ack_of_what_is_expected(server):
    client = Client(server)
    client.connect()
    (ack,) = server.send(client.segment("PA", b"x" * 10, seq=client.seq + 1_000_000))
    assert ack[TCP].ack == client.seq and server.count("tcp_out_of_window") == 1
    (dup,) = server.send(client.segment("PA", b"T HTTP/1.1\r\n\r\n", seq=client.seq + 3))
    assert dup[TCP].ack == client.seq and server.count("tcp_out_of_order") == 1
    assert server.count("requests") == 0
    assert client.get().endswith(FILES["/index.html"])   # the gap filled in order


def test_a_duplicate_segment_is_acknowledged_not_taken_twice(server):
    client = Client(server)
    client.connect()
    first = client.request(b"GET /index.html HT", advance=1000)
    assert first == []                                     # delayed ACK
    (ack,) = server.send(client.segment("PA", b"GET /index.html HT", seq=client.seq - 18))
    assert ack[TCP].ack == client.seq and server.count("tcp_duplicates") == 1


def test_delayed_ack_goes_out_when_its_timer_expires(server):
    client = Client(server)
    client.connect()
    assert client.request(b"GET /index") == []
    (ack,) = server.send(advance=41 * MS)   # the ACK delay is 40 ms
    assert ack[TCP].ack == client.seq and len(ack[TCP].payload) == 0


def test_a_lost_segment_is_retransmitted_after_the_timeout_with_backoff(server):
    client = Client(server)
    client.connect()
    (resp,) = client.request(b"GET /index.html HTTP/1.1\r\n\r\n")
    assert server.send(advance=100 * MS) == []
    (again,) = server.send(advance=150 * MS)        # RTO 200 ms passed
    assert again[TCP].seq == resp[TCP].seq and bytes(again[TCP].payload) == bytes(resp[TCP].payload)
    assert server.send(advance=300 * MS) == []       # backed off to 400 ms
    (third,) = server.send(advance=150 * MS)
    assert third[TCP].seq == resp[TCP].seq and server.count("tcp_retransmits") == 2
    assert client.take([third]) == bytes(resp[TCP].payload)
    server.send(client.segment("A"))
    assert server.send(advance=2000 * MS) == []      # acknowledged: nothing more


def test_three_duplicate_acks_trigger_a_fast_retransmit(server):
    client = Client(server)
    client.connect()
    out = client.request(b"GET /big.bin HTTP/1.1\r\n\r\n")
    assert len(out) > 4
    client.take(out[:1])                        # the first arrived, the second was lost
    server.send(client.segment("A"))
    for _ in range(2):
        assert out[1][TCP].seq not in [s[TCP].seq for s in server.send(client.segment("A"))]
    resent = client.mine(server.send(client.segment("A")))
    assert resent[0][TCP].seq == out[1][TCP].seq and server.count("tcp_fast_retransmits") == 1


def test_zero_window_stops_data_and_a_probe_follows_until_it_opens(server):
    client = Client(server)
    client.connect()
    out = server.send(client.segment("PA", b"GET /big.bin HTTP/1.1\r\n\r\n", window=0))
    client.seq += 25
    assert all(len(s[TCP].payload) == 0 for s in out)
    later = []
    for _ in range(10):
        later += server.send(advance=50 * MS)
    assert [len(s[TCP].payload) for s in later] == [0, 1]   # the delayed ACK, a probe
    assert server.count("tcp_probes") == 1
    out = server.send(client.segment("A", window=65535))
    assert sum(len(s[TCP].payload) for s in out) > 10_000


def test_our_window_closes_when_the_application_cannot_keep_up_and_reopens():
    server = Server(rx_ring=2048, max_header=512)
    client = Client(server)
    client.connect()
    out = []
    for _ in range(10):     # pipelined requests the client will not take answers to
        out += server.send(client.segment("PA", b"GET /big.bin HTTP/1.1\r\n\r\n" * 20,
                                          window=0))
        client.seq += 500
    acks = [s for s in client.mine(out) if len(s[TCP].payload) == 0]
    assert acks[-1][TCP].window == 0 and server.count("tcp_out_of_window") > 0
    client.seq = acks[-1][TCP].ack       # what did not fit is sent again later
    windows = []
    for _ in range(400):    # the client takes the answers: the ring drains
        got = client.mine(server.send(client.segment("A")))
        client.take(got)
        windows += [s[TCP].window for s in got]
        if windows and windows[-1] > 0:
            break
    assert windows[-1] > 0


def test_client_close_is_acknowledged_and_answered_with_our_fin(server):
    client = Client(server)
    client.connect()
    out = server.send(client.segment("FA"))
    client.seq += 1
    assert any("F" in s[TCP].flags for s in out)
    assert server.app.stack.connections()[0]["state"] == "LAST_ACK"
    client.take(out)
    server.send(client.segment("A"))
    assert server.app.stack.connections() == []


def test_server_close_goes_through_time_wait_and_frees_the_slot(server):
    client = Client(server)
    client.connect()
    out = client.request(b"GET /index.html HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert "F" in out[-1][TCP].flags and b"Connection: close" in client.take(out)
    server.send(client.segment("FA"))
    client.seq += 1
    assert server.app.stack.connections()[0]["state"] == "TIME_WAIT"
    server.send(advance=1100 * MS)   # TIME_WAIT is 1 s here
    assert server.app.stack.connections() == []


def test_a_syn_flood_is_refused_and_counted_while_established_connections_serve():
    server = Server(connections=16)
    client = Client(server, port=50000)
    client.connect()
    flood = [eth(ip() / TCP(sport=2000 + i, dport=80, flags="S", seq=i)) for i in range(100)]
    replies = server.send(*flood)
    assert len(replies) == 8 and server.count("tcp_syn_refused") == 92   # half of 16
    assert client.get().endswith(FILES["/index.html"])
    server.send(advance=60_000 * MS)   # the half-open ones time out
    for _ in range(6):
        server.send(advance=20_000 * MS)
    assert len(server.app.stack.connections()) == 1
    assert Client(server, 40001).connect()[TCP].flags == "SA"


# --- HTTP ------------------------------------------------------------------------

def response(raw: bytes) -> tuple[str, dict, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return lines[0], headers, body


def test_get_keeps_the_connection_alive_and_serves_each_file_byte_exact(server):
    client = Client(server)
    client.connect()
    for path, data in FILES.items():
        raw = b""
        raw = client.get(path)
        while len(raw) < len(data) + 100 and data:    # ack and take the rest
            more = client.take(server.send(client.segment("A")))
            if not more:
                break
            raw += more
        status, headers, body = response(raw)
        assert status == "HTTP/1.1 200 OK" and headers["Connection"] == "keep-alive"
        assert int(headers["Content-Length"]) == len(data) and body == data


def test_head_sends_the_length_but_no_body(server):
    client = Client(server)
    client.connect()
    status, headers, body = response(client.take(client.request(
        b"HEAD /index.html HTTP/1.1\r\n\r\n")))
    assert status.endswith("200 OK") and int(headers["Content-Length"]) == 19 and body == b""


@pytest.mark.parametrize("request_bytes, status, closes", [
    (b"GET /nope HTTP/1.1\r\n\r\n", "404 Not Found", False),
    (b"POST /index.html HTTP/1.1\r\n\r\n", "405 Method Not Allowed", True),
    (b"get /index.html HTTP/1.1\r\n\r\n", "400 Bad Request", True),
    (b"GET index.html HTTP/1.1\r\n\r\n", "400 Bad Request", True),
    (b"GET /index.html HTTP/2.0\r\n\r\n", "400 Bad Request", True),
    (b"GET /index.html\r\n\r\n", "400 Bad Request", True),
])
def test_bad_requests_get_the_right_status(server, request_bytes, status, closes):
    client = Client(server)
    client.connect()
    out = client.request(request_bytes)
    line, headers, _ = response(client.take(out))
    assert line == f"HTTP/1.1 {status}"
    assert ("F" in out[-1][TCP].flags) == closes
    assert ("Allow" in headers) == status.startswith("405")


def test_oversized_headers_get_431_and_the_connection_closes():
    server = Server()
    client = Client(server)
    client.connect()
    out = []
    for _ in range(5):
        out += client.request(b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 1000)
    line, _, _ = response(client.take(out))
    assert line == "HTTP/1.1 431 Request Header Fields Too Large"
    assert "F" in out[-1][TCP].flags and server.count("too_large") == 1


def test_http10_closes_unless_asked_to_keep_alive_and_pipelined_requests_are_answered(server):
    client = Client(server)
    client.connect()
    two = b"GET /index.html HTTP/1.1\r\n\r\nHEAD /index.html HTTP/1.1\r\n\r\n"
    raw = client.take(client.request(two))
    assert raw.count(b"HTTP/1.1 200 OK") == 2
    keep = client.take(client.request(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"))
    assert b"Connection: keep-alive" in keep
    out = client.request(b"GET / HTTP/1.0\r\n\r\n")
    assert b"Connection: close" in client.take(out) and "F" in out[-1][TCP].flags


# --- the stack under load from the simulated client, over an impaired wire -----------

@pytest.mark.parametrize("drop_every, reorder_every", [(0, 0), (7, 0), (0, 5), (11, 13)])
def test_twenty_connections_complete_every_response_over_a_lossy_reordering_wire(
        drop_every, reorder_every):
    from devices.http_load import HttpLoad
    from devices.wire import FROM_HOST, TO_HOST
    from experiments._machine import HttpdMachine
    machine = HttpdMachine("redleaf-driver")
    for direction in (TO_HOST, FROM_HOST):
        machine.wire.impair(direction, drop_every, reorder_every)
    client = HttpLoad(machine.wire, 20, "/10K.bin", hz=machine.hz, timeout_us=50_000)
    machine.run(0.4, client)
    got, server = client.counters(), machine.app.counters()
    assert got["completed"] > 20 and got["non_2xx"] == 0 and got["bad_responses"] == 0
    assert got["bytes_read"] >= got["completed"] * 10240
    if drop_every:
        assert machine.wire.lost(FROM_HOST) > 0 and server["tcp_retransmits"] \
            + server["tcp_fast_retransmits"] > 0
    if reorder_every:
        assert got["out_of_order"] + server["tcp_out_of_order"] > 0
    machine.check()
