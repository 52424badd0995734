/* Figure 9's C side: Maglev (redleaf_nb/apps/maglev.py) on the poll-mode driver of
   ixgbe_pmd.h, with no isolation: the DPDK analog of the paper's C Maglev.

   The same algorithm, table layout and hash as the safe version, function for
   function: mix64 / flow_hash, parse, backend (the flow table, then the lookup
   table), rewrite, steer. The tables are the same numpy memory the safe version is
   granted (the experiment builds them once). The benchmark loop runs here, one call
   from Python (experiments/_apps.py: run_c). */
#include <stdint.h>
#include <string.h>
#include <x86intrin.h>

#include "ixgbe_pmd.h"
#include "packet.h"

enum { ETHERTYPE_IPV4 = 0x0800, UDP = 17, TCP = 6, MAX_PROBE = 8,
       BACKEND_BITS = 24 };
enum { IP, MAC, ALIVE, BACKEND_WORDS };
/* the counters, in maglev.py's COUNTERS order */
enum { RECEIVED, FORWARDED, DROPPED_NOT_IP, DROPPED_BAD_IHL, DROPPED_SHORT, DROPPED_NOT_L4,
       DROPPED_TX_FULL, FLOWS_NEW, FLOW_HITS, FLOWS_MOVED, FLOWS_EVICTED };
#define BACKEND_MASK ((UINT64_C(1) << BACKEND_BITS) - 1)

struct maglev {
    const int32_t *lookup;    /* table_size entries: a backend each */
    int64_t table_size;
    uint64_t *flows;          /* flow_slots x 2: addrs; ports | backend + 1 (0: empty) */
    int64_t flow_slots;       /* a power of two */
    const uint64_t *backends; /* rows of BACKEND_WORDS */
    int64_t *counters;
    int64_t buf_bytes;        /* a packet buffer's size: no frame may claim more */
};

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= UINT64_C(0xFF51AFD7ED558CCD);
    x ^= x >> 33;
    x *= UINT64_C(0xC4CEB9FE1A85EC53);
    x ^= x >> 33;
    return x;
}

static inline uint64_t flow_hash(uint64_t addrs, uint64_t ports) { return mix64(addrs ^ mix64(ports)); }


/* The 5-tuple (0), or the counter of the reason to drop the packet. */
static inline int parse(const uint8_t *pkt, int64_t buf_bytes, uint64_t *addrs, uint64_t *ports) {
    if (u16(pkt, 12) != ETHERTYPE_IPV4)
        return DROPPED_NOT_IP;
    int64_t ihl = (pkt[ETH] & 0x0F) * 4;
    if (pkt[ETH] >> 4 != 4 || ihl < 20)
        return DROPPED_BAD_IHL;
    int64_t total = (int64_t)u16(pkt, ETH + 2);
    if (total < ihl + 4 || ETH + total > buf_bytes)
        return DROPPED_SHORT;
    uint8_t proto = pkt[ETH + 9];
    if (proto != UDP && proto != TCP)
        return DROPPED_NOT_L4;
    int64_t l4 = ETH + ihl;
    *ports = (u16(pkt, l4) << 48) | (u16(pkt, l4 + 2) << 32) | ((uint64_t)proto << BACKEND_BITS);
    *addrs = (u32(pkt, ETH + 12) << 32) | u32(pkt, ETH + 16);
    return 0;
}

static inline int64_t pick(const struct maglev *m, uint64_t h) {
    return m->lookup[h % (uint64_t)m->table_size];
}

static inline int64_t backend(struct maglev *m, uint64_t addrs, uint64_t ports) {
    uint64_t h = flow_hash(addrs, ports), mask = (uint64_t)m->flow_slots - 1;
    for (uint64_t probe = 0; probe < MAX_PROBE; probe++) {
        uint64_t *slot = m->flows + 2 * ((h + probe) & mask);
        if (slot[1] == 0) {
            int64_t b = pick(m, h);
            slot[0] = addrs;
            slot[1] = ports | (uint64_t)(b + 1);
            m->counters[FLOWS_NEW]++;
            return b;
        }
        if (slot[0] == addrs && (slot[1] & ~BACKEND_MASK) == ports) {
            int64_t b = (int64_t)(slot[1] & BACKEND_MASK) - 1;
            if (m->backends[b * BACKEND_WORDS + ALIVE]) {
                m->counters[FLOW_HITS]++;
                return b;
            }
            b = pick(m, h);
            slot[1] = ports | (uint64_t)(b + 1);
            m->counters[FLOWS_MOVED]++;
            return b;
        }
    }
    int64_t b = pick(m, h);
    uint64_t *home = m->flows + 2 * (h & mask);
    home[0] = addrs;
    home[1] = ports | (uint64_t)(b + 1);
    m->counters[FLOWS_EVICTED]++;
    return b;
}

static inline void rewrite(uint8_t *pkt, const uint64_t *backend_row) {
    uint64_t mac = backend_row[MAC], ip = backend_row[IP], old = u32(pkt, ETH + 16);
    put16(pkt, 0, mac >> 32);
    put32(pkt, 2, mac & 0xFFFFFFFF);
    put32(pkt, ETH + 16, ip);
    csum_replace(pkt, old, ip);
}

/* Steer one packet to its backend (1), or count why it is dropped (0). */
static inline int steer(struct maglev *m, uint8_t *pkt, int64_t buf_bytes) {
    uint64_t addrs = 0, ports = 0;
    m->counters[RECEIVED]++;
    int why = parse(pkt, buf_bytes, &addrs, &ports);
    if (why) {
        m->counters[why]++;
        return 0;
    }
    rewrite(pkt, m->backends + BACKEND_WORDS * backend(m, addrs, ports));
    return 1;
}

static int steer_packet(void *m, uint8_t *pkt) { return steer(m, pkt, ((struct maglev *)m)->buf_bytes); }

/* The benchmark loop of ixgbe_pmd.h with Maglev steering each packet (app != 0; else
   packets pass unchanged); rings and pool as dpdk_ixgbe_run's. */
int maglev_run(step_fn step, int64_t *clock, int64_t now_word, int64_t *regs,
               uint8_t *rx_desc, int64_t *rx_slot, uint8_t *tx_desc, int64_t *tx_slot,
               int64_t ring, int64_t *pool, int64_t pool_free, int64_t buf_bytes,
               const int32_t *lookup, int64_t table_size, uint64_t *flows, int64_t flow_slots,
               const uint64_t *backends, int64_t *counters, int app,
               int64_t batch, int64_t limit, int64_t max_gap, int64_t *out) {
    struct maglev m = {lookup, table_size, flows, flow_slots, backends, counters, buf_bytes};
    int status = pmd_app_loop(step, clock, now_word, regs, rx_desc, rx_slot, tx_desc, tx_slot,
                              ring, pool, pool_free, buf_bytes, app ? steer_packet : 0, &m,
                              batch, limit, max_gap, &counters[DROPPED_TX_FULL], out);
    counters[FORWARDED] += out[OUT_DONE];
    return status;
}

/* The standalone microbenchmark: steer `count` frames of `frame_bytes` (trace rows, in
   turn, `packets` in all) in bursts of `batch`, each burst first copied into buffers
   `stride` bytes apart as the NIC would (untimed). The cycles spent steering; counters
   as above. */
int64_t maglev_steer_cycles(const uint8_t *trace, int64_t count, int64_t frame_bytes,
                            int64_t packets, uint8_t *bufs, int64_t stride, int64_t buf_bytes,
                            const int32_t *lookup, int64_t table_size, uint64_t *flows,
                            int64_t flow_slots, const uint64_t *backends, int64_t *counters,
                            int64_t batch) {
    struct maglev m = {lookup, table_size, flows, flow_slots, backends, counters, buf_bytes};
    int64_t cycles = 0, row = 0;
    for (int64_t done = 0; done < packets; done += batch) {
        for (int64_t i = 0; i < batch; i++) {
            memcpy(bufs + i * stride, trace + row * frame_bytes, frame_bytes);
            row = row + 1 == count ? 0 : row + 1;
        }
        uint64_t t0 = __rdtsc();
        for (int64_t i = 0; i < batch; i++)
            steer(&m, bufs + i * stride, buf_bytes);
        cycles += (int64_t)(__rdtsc() - t0);
    }
    return cycles;
}
