/* Figure 10's C side: the key-value store (redleaf_nb/apps/kvstore.py) on the poll-mode
   driver of ixgbe_pmd.h, with no isolation: the DPDK analog of the paper's C store.

   The same layers, function for function: the table (fnv1a, table_find, table_set),
   the wire format (request, reply; constants from the header generated from
   redleaf_nb/datasheets/kvwire.py) and serve_one joining them, on the same numpy
   tables the safe version is granted. The benchmark loop runs here, one call from
   Python (experiments/_apps.py: run_c_app). */
#include <stdint.h>
#include <string.h>

#include "ixgbe_pmd.h"
#include "packet.h"
#include "redleaf_nb/datasheets/kvwire.h"

enum { MAX_PROBE = 64, NOT_KV = -1, BAD = -2 };
/* the counters, in kvstore.py's COUNTERS order */
enum { REQUESTS, GETS, SETS, HITS, MISSES, STORED, FULL, BAD_REQUESTS, NOT_KV_PACKETS,
       DROPPED_TX_FULL };

struct table {
    uint64_t *tags;     /* entries: the hash with its low bit set; 0: empty */
    uint8_t *slots;     /* entries rows of key_size + value_size bytes */
    int64_t entries;    /* a power of two */
    int64_t key_size, value_size;
    int64_t *counters;
};

static inline uint64_t fnv1a(const uint8_t *key, int64_t n) {
    uint64_t h = UINT64_C(0xCBF29CE484222325);
    for (int64_t i = 0; i < n; i++)
        h = (h ^ key[i]) * UINT64_C(0x100000001B3);
    return h;
}

static inline uint8_t *slot(const struct table *t, int64_t row) {
    return t->slots + row * (t->key_size + t->value_size);
}

/* The row holding key (or -1); *free: the first free row on its probe path (or -1). */
static inline int64_t table_find(const struct table *t, const uint8_t *key, uint64_t h,
                                 int64_t *free) {
    uint64_t mask = (uint64_t)t->entries - 1, tag = h | 1;
    *free = -1;
    for (uint64_t probe = 0; probe < MAX_PROBE; probe++) {
        int64_t j = (int64_t)((h + probe) & mask);
        if (t->tags[j] == 0) {
            *free = j;
            return -1;
        }
        if (t->tags[j] == tag && memcmp(slot(t, j), key, t->key_size) == 0)
            return j;
    }
    return -1;
}

static inline int64_t table_set(struct table *t, const uint8_t *key, const uint8_t *value,
                                uint64_t h) {
    int64_t free, row = table_find(t, key, h, &free);
    if (row < 0) {
        if (free < 0)
            return -1;
        row = free;
        t->tags[row] = h | 1;
        memcpy(slot(t, row), key, t->key_size);
    }
    memcpy(slot(t, row) + t->key_size, value, t->value_size);
    return row;
}

static inline int64_t request(const uint8_t *pkt, int64_t key_size, int64_t value_size) {
    if (u16(pkt, 12) != 0x0800 || pkt[ETH] != 0x45 || pkt[ETH + 9] != 17
        || u16(pkt, 36) != KV_PORT)
        return NOT_KV;
    int64_t op = pkt[KV_OP], klen = (int64_t)u16(pkt, KV_KLEN), vlen = (int64_t)u16(pkt, KV_VLEN);
    int64_t payload = (int64_t)u16(pkt, ETH + 2) - 28;
    if (klen != key_size || payload < KV_HEADER_BYTES + klen + vlen)
        return BAD;
    if ((op == OP_GET && vlen == 0) || (op == OP_SET && vlen == value_size))
        return op;
    return BAD;
}

static inline void swap(uint8_t *pkt, int64_t a, int64_t b, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint8_t x = pkt[a + i];
        pkt[a + i] = pkt[b + i];
        pkt[b + i] = x;
    }
}

static inline void reply(uint8_t *pkt, int status, int64_t key_size, int64_t value_size) {
    swap(pkt, 0, 6, 6);
    swap(pkt, ETH + 12, ETH + 16, 4);
    swap(pkt, 34, 36, 2);
    pkt[KV_STATUS] = status;
    put16(pkt, KV_VLEN, value_size);
    uint64_t payload = KV_HEADER_BYTES + key_size + value_size, old = u32(pkt, ETH);
    put16(pkt, ETH + 2, payload + 28);
    csum_replace(pkt, old, u32(pkt, ETH));
    put16(pkt, UDP_LEN, payload + 8);
    pkt[UDP_LEN + 2] = pkt[UDP_LEN + 3] = 0;
}

/* Answer one request in place; 0 if the packet is not a request to the store. */
static inline int serve_one(struct table *t, uint8_t *pkt) {
    int64_t ks = t->key_size, vs = t->value_size, op = request(pkt, ks, vs);
    int64_t *c = t->counters;
    if (op == NOT_KV) {
        c[NOT_KV_PACKETS]++;
        return 0;
    }
    c[REQUESTS]++;
    if (op == BAD) {
        c[BAD_REQUESTS]++;
        reply(pkt, ST_BAD, ks, 0);
        return 1;
    }
    const uint8_t *key = pkt + KV_KEY;
    uint64_t h = fnv1a(key, ks);
    if (op == OP_GET) {
        c[GETS]++;
        int64_t free, row = table_find(t, key, h, &free);
        if (row < 0) {
            c[MISSES]++;
            reply(pkt, ST_MISS, ks, 0);
        } else {
            c[HITS]++;
            memcpy(pkt + KV_KEY + ks, slot(t, row) + ks, vs);
            reply(pkt, ST_OK, ks, vs);
        }
        return 1;
    }
    c[SETS]++;
    if (table_set(t, key, pkt + KV_KEY + ks, h) < 0) {
        c[FULL]++;
        reply(pkt, ST_FULL, ks, 0);
    } else {
        c[STORED]++;
        reply(pkt, ST_OK, ks, 0);
    }
    return 1;
}

static int serve_packet(void *t, uint8_t *pkt) { return serve_one(t, pkt); }

/* The benchmark loop of ixgbe_pmd.h with the store answering each request in place (app
   != 0; else packets go back unchanged); rings and pool as dpdk_ixgbe_run's. */
int kvstore_run(step_fn step, int64_t *clock, int64_t now_word, int64_t *regs,
                uint8_t *rx_desc, int64_t *rx_slot, uint8_t *tx_desc, int64_t *tx_slot,
                int64_t ring, int64_t *pool, int64_t pool_free, int64_t buf_bytes,
                uint64_t *tags, uint8_t *slots, int64_t entries, int64_t key_size,
                int64_t value_size, int64_t *counters, int app,
                int64_t batch, int64_t limit, int64_t max_gap, int64_t *out) {
    struct table t = {tags, slots, entries, key_size, value_size, counters};
    return pmd_app_loop(step, clock, now_word, regs, rx_desc, rx_slot, tx_desc, tx_slot, ring,
                        pool, pool_free, buf_bytes, app ? serve_packet : 0, &t, batch, limit,
                        max_gap, &counters[DROPPED_TX_FULL], out);
}
