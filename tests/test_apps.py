"""The packet-processing applications (redleaf_nb/apps/maglev.py, kvstore.py): the Maglev
paper's table properties, flow affinity, drops counted; the store's GET/SET semantics,
full table and malformed requests; the C sides agree with the safe ones."""
import numpy as np
import pytest

from devices.traffic import flow_frames, kv_requests
from experiments._apps import run_app, run_c_app
from redleaf_nb.apps import kvstore as kv
from redleaf_nb.apps import maglev as mg
from redleaf_nb.datasheets import kvwire as kw


def ip_checksum_ok(frame) -> bool:
    words = frame[14:34].reshape(10, 2).astype(np.uint32)
    s = int((words[:, 0] << 8 | words[:, 1]).sum())
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s == 0xFFFF


# --- Maglev --------------------------------------------------------------------------

@pytest.mark.parametrize("n", [3, 100, 1000])
def test_the_lookup_table_is_full_and_balanced(n):
    m = mg.Maglev(n, flows=16)
    assert (m.lookup >= 0).all()
    shares = m.shares()
    assert shares.sum() == mg.TABLE_SIZE
    assert set(shares) <= {mg.TABLE_SIZE // n, -(-mg.TABLE_SIZE // n)}


@pytest.mark.parametrize("n", [3, 100, 1000])
def test_a_leaving_backend_moves_far_less_than_hash_mod_n(n):
    d = mg.disruption(n)
    assert d["maglev"] >= d["leaver_share"]          # its own entries must move
    assert d["maglev"] <= max(8 * d["leaver_share"], d["leaver_share"] + 0.01)
    assert d["hash_mod_n"] > 0.6 and d["maglev"] < d["hash_mod_n"] - 0.3


def test_packets_go_to_the_tables_backend_with_a_valid_checksum():
    m = mg.Maglev(5, flows=64)
    frames = flow_frames(64, 200, seed=3)
    out = m.process(list(frames))
    ips = {int(ip) for ip in m.backends[:, mg.IP]}
    for f, o in zip(frames, out):
        dst = int.from_bytes(bytes(o[30:34]), "big")
        assert dst in ips and ip_checksum_ok(o)
        b = dst - mg.backend_ip(0)
        assert int.from_bytes(bytes(o[0:6]), "big") == int(m.backends[b, mg.MAC])
        assert (o[6:24] == f[6:24]).all() and (o[26:30] == f[26:30]).all()
        assert (o[34:] == f[34:len(o)]).all()
    c = m.counters()
    assert c["received"] == c["forwarded"] == 200 and c["flows_new"] + c["flow_hits"] == 200


def test_established_flows_keep_their_backend_through_a_rebuild():
    m = mg.Maglev(10, flows=256)
    frames = list(flow_frames(256, 256, seed=1))
    before = [bytes(o[30:34]) for o in m.process(frames)]
    m.set_alive(9, False)
    m.set_alive(9, True)      # the table is rebuilt twice; the flows are tracked
    m.backends[:, mg.ALIVE] = 1
    m.backends[3, mg.ALIVE] = 1
    after = [bytes(o[30:34]) for o in m.process(frames)]
    assert before == after
    m.set_alive(2, False)     # flows on a backend that left move; the others stay
    moved = [bytes(o[30:34]) for o in m.process(frames)]
    gone = mg.backend_ip(2).to_bytes(4, "big")
    assert all((a == b) != (a == gone) for a, b in zip(before, moved))
    assert gone not in moved and m.counters()["flows_moved"] > 0


@pytest.mark.parametrize("patch, counter", [
    ({12: 0x86}, "dropped_not_ip"), ({14: 0x44}, "dropped_bad_ihl"),
    ({14: 0x65}, "dropped_bad_ihl"), ({16: 0, 17: 10}, "dropped_short"),
    ({16: 0x10, 17: 0}, "dropped_short"), ({23: 1}, "dropped_not_l4")])
def test_malformed_packets_are_dropped_and_counted(patch, counter):
    m = mg.Maglev(3, flows=16)
    bad = flow_frames(4, 1)[0].copy()
    for i, v in patch.items():
        bad[i] = v
    good = flow_frames(4, 1, seed=9)[0]
    assert m.process([bad, good])[0] is None
    c = m.counters()
    assert c[counter] == 1 and c["forwarded"] == 1 and c["received"] == 2


def test_maglev_rejects_bad_parameters_by_name():
    with pytest.raises(ValueError, match="table_size=65536 must be a prime"):
        mg.Maglev(3, table_size=65536)
    with pytest.raises(ValueError, match="backends=0"):
        mg.Maglev(0)


# --- the key-value store -------------------------------------------------------------

def request(op, key, value=b"", key_size=None, vlen=None):
    f = kv_requests(len(key), max(len(value), 1), 1, 1)[0].copy()
    f[kw.KV_OP] = op
    f[kw.KV_KLEN:kw.KV_KLEN + 2] = divmod(key_size or len(key), 256)
    f[kw.KV_VLEN:kw.KV_VLEN + 2] = divmod(len(value) if vlen is None else vlen, 256)
    f[kw.KV_KEY:kw.KV_KEY + len(key)] = np.frombuffer(key, np.uint8)
    f[kw.KV_KEY + len(key):kw.KV_KEY + len(key) + len(value)] = np.frombuffer(value, np.uint8)
    ip_len = 28 + kw.KV_HEADER_BYTES + len(key) + len(value)
    f[16:18] = divmod(ip_len, 256)
    return f


def reply_of(out, key_size):
    status = int(out[kw.KV_STATUS])
    vlen = int(out[kw.KV_VLEN]) << 8 | int(out[kw.KV_VLEN + 1])
    return status, bytes(out[kw.KV_KEY + key_size:kw.KV_KEY + key_size + vlen])


@pytest.mark.parametrize("ks, vs", kv.KEY_VALUE_SIZES)
def test_get_after_set_overwrite_and_miss_for_every_size(ks, vs):
    s = kv.KvStore(1 << 10, ks, vs)
    key, other = bytes(range(1, ks + 1)), bytes(range(2, ks + 2))
    v1, v2 = bytes([7] * vs), bytes((i * 3) & 0xFF for i in range(vs))
    outs = s.process([request(kw.OP_GET, key), request(kw.OP_SET, key, v1),
                      request(kw.OP_GET, key), request(kw.OP_SET, key, v2),
                      request(kw.OP_GET, key), request(kw.OP_GET, other)])
    got = [reply_of(o, ks) for o in outs]
    assert got == [(kw.ST_MISS, b""), (kw.ST_OK, b""), (kw.ST_OK, v1), (kw.ST_OK, b""),
                   (kw.ST_OK, v2), (kw.ST_MISS, b"")]
    for f, o in zip([request(kw.OP_GET, key)], outs):   # a reply goes back to the sender
        assert (o[0:6] == f[6:12]).all() and (o[26:30] == f[30:34]).all()
        assert (o[34:36] == f[36:38]).all() and ip_checksum_ok(o)
    c = s.counters()
    assert (c["gets"], c["sets"], c["hits"], c["misses"], c["stored"]) == (4, 2, 2, 2, 2)


def test_a_full_table_answers_full_and_keeps_what_it_had():
    s = kv.KvStore(16, 8, 8)
    assert s.load(16) == 16               # every slot taken
    before = (s.tags.copy(), s.slots.copy())
    new = (1 << 40).to_bytes(8, "little")
    status, _ = reply_of(s.process([request(kw.OP_SET, new, bytes(8))])[0], 8)
    assert status == kw.ST_FULL and s.counters()["full"] == 1
    assert (s.tags == before[0]).all() and (s.slots == before[1]).all()
    key5 = (5).to_bytes(8, "little")
    assert reply_of(s.process([request(kw.OP_GET, key5)])[0], 8) == (
        kw.ST_OK, bytes((5 + j) & 0xFF for j in range(8)))


@pytest.mark.parametrize("change", ["op", "klen", "vlen", "short"])
def test_malformed_requests_are_refused_and_counted_and_the_store_unharmed(change):
    s = kv.KvStore(1 << 8, 16, 64)
    s.load(50)
    before = s.slots.copy()
    key = (3).to_bytes(8, "little") + bytes(range(8, 16))
    f = request(kw.OP_SET, key, bytes(64))
    if change == "op":
        f[kw.KV_OP] = 9
    elif change == "klen":
        f[kw.KV_KLEN + 1] = 15
    elif change == "vlen":
        f[kw.KV_VLEN + 1] = 63
    else:
        f[16:18] = divmod(28 + 8 + 16, 256)       # says it ends before its value
    status, _ = reply_of(s.process([f])[0], 16)
    assert status == kw.ST_BAD and s.counters()["bad_requests"] == 1
    assert (s.slots == before).all()
    not_kv = f.copy()
    not_kv[36:38] = (0, 53)
    assert s.process([not_kv]) == [None] and s.counters()["not_kv"] == 1


def test_the_load_generator_and_the_store_agree_on_benchmark_keys():
    s = kv.KvStore(1 << 12, 16, 64)
    s.load(1000)
    out = s.process(list(kv_requests(16, 64, 1000, 300, get_fraction=1.0, seed=2)))
    assert all(reply_of(o, 16)[0] == kw.ST_OK for o in out)


def test_kvstore_rejects_bad_parameters_by_name():
    with pytest.raises(ValueError, match="entries=1000 must be a power of two"):
        kv.KvStore(1000)
    with pytest.raises(ValueError, match="key_size=4 out of range"):
        kv.KvStore(1 << 10, 4, 8)


# --- the C sides do what the safe sides do -------------------------------------------

def test_c_and_safe_maglev_pick_the_same_backends_for_the_same_flows():
    traffic = flow_frames(5000, 1 << 12, seed=4)
    safe, c = mg.Maglev(7, flows=5000), mg.Maglev(7, flows=5000)
    counters = np.zeros(len(mg.COUNTERS), np.int64)
    run_app(safe, "redleaf-domain", 32, 0.002, traffic, profile="x520")
    run_c_app("maglev", c.c_tables(counters), 32, 0.002, traffic, profile="x520")
    assert safe.counters()["forwarded"] > 100 and counters[mg.COUNTERS.index("forwarded")] > 100
    both = (safe.flows[:, 1] != 0) & (c.flows[:, 1] != 0)
    assert both.sum() > 100
    assert (safe.flows[both] == c.flows[both]).all()   # same slots, same tuples, same backends


def test_c_and_safe_stores_leave_the_same_table_after_the_same_requests():
    traffic = kv_requests(16, 64, 2000, 1 << 12, get_fraction=0.5, seed=5)
    safe, c = kv.KvStore(1 << 12, 16, 64), kv.KvStore(1 << 12, 16, 64)
    counters = np.zeros(len(kv.COUNTERS), np.int64)
    run_app(safe, "redleaf-driver", 32, 0.002, traffic, profile="x520")
    run_c_app("kvstore", c.c_tables(counters), 32, 0.002, traffic, profile="x520")
    assert safe.counters()["sets"] > 100 and counters[kv.COUNTERS.index("sets")] > 100
    keys = lambda s: {bytes(r[:16]): bytes(r[16:]) for t, r in zip(s.tags, s.slots) if t}
    a, b = keys(safe), keys(c)
    common = a.keys() & b.keys()
    assert len(common) > 100 and all(a[k] == b[k] for k in common)


@pytest.mark.parametrize("config", ["redleaf-driver", "redleaf-shadow", "rv6-shadow"])
def test_an_app_runs_in_every_configuration_and_leaks_nothing(config):
    m = mg.Maglev(3, flows=1024)
    r = run_app(m, config, 32, 0.002, flow_frames(1024, 2048), profile="x520")
    assert r.done > 100 and m.counters()["forwarded"] >= r.done


# --- the general data model (kvdata) -------------------------------------------------

from redleaf_nb.apps import kvdata as kd   # noqa: E402
from redleaf_nb.kernel.domain import Kernel   # noqa: E402
from redleaf_nb.kernel.heap import HeapExhausted   # noqa: E402


@pytest.fixture
def store():
    now = [1.7e9]   # a Unix time: exptimes over 30 days are absolute
    s = kd.KvData(clock=lambda: now[0])
    s.now = now
    return s


def test_set_get_flags_and_unique_cas_ids(store):
    assert store.set(b"k", b"v1", flags=7) == kd.STORED
    v, flags, cas1 = store.get(b"k")
    assert (v, flags) == (b"v1", 7)
    store.set(b"k", b"v2")
    assert store.get(b"k")[2] > cas1 and store.get(b"missing") is None


def test_add_replace_and_cas_follow_memcached(store):
    assert store.replace(b"k", b"x") == kd.NOT_STORED and store.add(b"k", b"a") == kd.STORED
    assert store.add(b"k", b"b") == kd.NOT_STORED and store.replace(b"k", b"c") == kd.STORED
    _, _, cas = store.get(b"k")
    assert store.cas(b"k", b"d", cas) == kd.STORED
    assert store.cas(b"k", b"e", cas) == kd.EXISTS and store.get(b"k")[0] == b"d"
    assert store.cas(b"nope", b"e", 1) == kd.NOT_FOUND


def test_expiry_relative_absolute_and_negative(store):
    store.set(b"rel", b"1", exptime=10)
    store.set(b"abs", b"2", exptime=int(store.now[0]) + 100)
    store.set(b"never", b"3")
    store.set(b"gone", b"4", exptime=-1)
    assert store.get(b"gone") is None
    store.now[0] += 11
    assert store.get(b"rel") is None and store.get(b"abs")[0] == b"2"
    store.now[0] += 100
    assert store.sweep() == 1 and store.get(b"never")[0] == b"3" and len(store) == 1


def test_append_and_prepend_grow_across_size_classes_and_free_what_they_leave(store):
    heap = store.kernel.heap
    store.set(b"k", b"m" * 60)
    expect = b"m" * 60
    for i in range(12):          # 60 bytes -> past 64, 128 ... 64 KiB
        chunk = bytes([65 + i]) * (1 << i) * 20
        store.append(b"k", chunk) if i % 2 else store.prepend(b"k", chunk)
        expect = expect + chunk if i % 2 else chunk + expect
        assert store.get(b"k")[0] == expect
        assert heap.live_bytes == store.heap_bytes   # the old objects were freed
    assert store.append(b"missing", b"x") == kd.NOT_STORED


def test_the_limits_are_clear_errors(store):
    assert store.set(b"k" * 250, b"v") == kd.STORED
    with pytest.raises(ValueError, match="key of 251 bytes, must be 1..250"):
        store.set(b"k" * 251, b"v")
    with pytest.raises(ValueError, match="holds a space"):
        store.set(b"a key", b"v")
    assert store.set(b"\x10binary-key\x01", b"v") == kd.STORED   # as memcached (memaslap's keys)
    assert store.set(b"big", bytes(kd.MAX_VALUE)) == kd.STORED
    with pytest.raises(ValueError, match="larger than the item limit"):
        store.set(b"k", bytes(kd.MAX_VALUE + 1))
    with pytest.raises(ValueError, match="would grow to"):
        store.append(b"big", b"x")


def test_a_full_heap_refuses_the_change_and_keeps_the_old_value():
    s = kd.KvData(Kernel(heap_bytes=1 << 20, max_objects=64))
    s.set(b"k", b"old")
    with pytest.raises(HeapExhausted):
        s.set(b"k", bytes(kd.MAX_VALUE))
    assert s.get(b"k")[0] == b"old"
    s.kernel.heap.check_invariants()
    s.flush_all()
    assert s.kernel.heap.live_bytes == 0 and len(s) == 0
