/* A poll-mode driver for the 82599 model (devices/nic.py) in C: what the DPDK analog
   (dpdk_ixgbe.c) and the applications' C sides (maglev.c, kvstore.c) share.

   No isolation, no RRefs: a packet buffer is a plain address, the mempool a stack of
   them. Per packet it does what the safe driver (redleaf_nb/drivers/ixgbe.py) does:
   RX checks DD, hands the buffer on and refills the descriptor; TX reaps DD, reads the
   frame's length from its IPv4 header and fills a descriptor; one tail doorbell per
   burst. Register indices, bits and the descriptor layout come from the header
   generated from redleaf_nb/datasheets/ixgbe_82599.py. */
#ifndef IXGBE_PMD_H
#define IXGBE_PMD_H
#include <stdint.h>

#include "poll_loop.h"
#include "redleaf_nb/datasheets/ixgbe_82599.h"

enum { PMD_OK = 0, PMD_BAD_FRAME = -1 };

/* One descriptor ring and the buffer software gave with each descriptor. */
struct queue {
    uint8_t *desc;
    int64_t *slot;   /* the buffer's address, 0: none */
    int64_t n;
    int64_t head;    /* RX: next to receive; TX: next to reap */
    int64_t tail;    /* what software last wrote to the tail register */
};

/* Free buffers: a stack, so the buffer just handed back is the next one used. */
struct mempool {
    int64_t *buf;
    int64_t free;
};

static inline uint64_t *field(const struct queue *q, int64_t i, int64_t offset) {
    return (uint64_t *)(q->desc + i * DESCRIPTOR_BYTES + offset);
}

/* Take received packets (DD set) off the ring into bufs, up to a burst; the count
   (rte_eth_rx_burst). */
static inline int64_t rx_burst(struct queue *q, int64_t *bufs, int64_t batch) {
    int64_t i = q->head, got = 0;
    while (got < batch && q->slot[i] != 0 && (*field(q, i, DESCRIPTOR_INFO_OFFSET) & RXD_DD)) {
        bufs[got++] = q->slot[i];
        q->slot[i] = 0;
        i = ring_next(i, q->n);
    }
    q->head = i;
    return got;
}

/* Give the device a buffer for every free descriptor (one stays empty: RDT == RDH means
   none), then ring the RDT doorbell. */
static inline void rx_refill(struct queue *q, struct mempool *p, int64_t *regs) {
    int64_t t = q->tail;
    while (ring_next(t, q->n) != q->head && p->free > 0) {
        int64_t buf = p->buf[--p->free];
        *field(q, t, DESCRIPTOR_ADDR_OFFSET) = (uint64_t)buf;
        *field(q, t, DESCRIPTOR_INFO_OFFSET) = 0;
        q->slot[t] = buf;
        t = ring_next(t, q->n);
    }
    q->tail = t;
    regs[RDT] = t;
}

/* Hand back buffers whose descriptors the device marked done (DD), up to a burst. */
static inline void tx_reap(struct queue *q, struct mempool *p, int64_t batch) {
    int64_t i = q->head, done = 0;
    while (i != q->tail && done < batch
           && ((*field(q, i, DESCRIPTOR_INFO_OFFSET) >> 32) & TXD_DD)) {
        p->buf[p->free++] = q->slot[i];
        q->slot[i] = 0;
        i = ring_next(i, q->n);
        done++;
    }
    q->head = i;
}

/* Whether the TX ring has a free descriptor at its tail. */
static inline int tx_room(const struct queue *q) { return ring_next(q->tail, q->n) != q->head; }

/* Fill the descriptor at the tail with buf (its length from the frame's IPv4 header)
   and advance the tail (the doorbell is the caller's); PMD_BAD_FRAME for a frame
   longer than a buffer. */
static inline int tx_put(struct queue *q, int64_t buf, int64_t buf_bytes) {
    const uint8_t *frame = (const uint8_t *)buf;
    uint64_t length = (((uint64_t)frame[16] << 8) | frame[17]) + 14;  /* IPv4 + Ethernet */
    if (length > (uint64_t)buf_bytes)
        return PMD_BAD_FRAME;
    int64_t i = q->tail;
    *field(q, i, DESCRIPTOR_ADDR_OFFSET) = (uint64_t)buf;
    *field(q, i, DESCRIPTOR_INFO_OFFSET) = (length | TXD_CMD)
                                           | ((length << TXD_PAYLEN_SHIFT) << 32);
    q->slot[i] = buf;
    q->tail = ring_next(i, q->n);
    return PMD_OK;
}

/* Queue the n buffers in bufs as far as the ring has room, then ring the TDT doorbell;
   the count queued (rte_eth_tx_burst), or PMD_BAD_FRAME. */
static inline int64_t tx_burst(struct queue *q, const int64_t *bufs, int64_t n,
                               int64_t buf_bytes, int64_t *regs) {
    int64_t queued = 0;
    while (queued < n && tx_room(q)) {
        if (tx_put(q, bufs[queued], buf_bytes) != PMD_OK)
            return PMD_BAD_FRAME;
        queued++;
    }
    regs[TDT] = q->tail;
    return queued;
}

/* The queues as the driver's set-up left them (head and tail from its registers). */
static inline struct queue rx_queue(uint8_t *desc, int64_t *slot, int64_t n, const int64_t *regs) {
    struct queue q = {.desc = desc, .slot = slot, .n = n, .head = regs[RDH], .tail = regs[RDT]};
    return q;
}

static inline struct queue tx_queue(uint8_t *desc, int64_t *slot, int64_t n, const int64_t *regs) {
    struct queue q = {.desc = desc, .slot = slot, .n = n, .head = regs[TDH], .tail = regs[TDT]};
    return q;
}

/* What an application does with one packet: 1 to send it (changed in place), 0 to drop it. */
typedef int (*packet_fn)(void *app, uint8_t *pkt);

enum { MAX_BURST = 64 };

/* The applications' benchmark loop: receive a burst, hand each packet to handle (NULL:
   send every packet back out unchanged, the bare forwarding cost), transmit what it
   keeps, reap and refill, until the device clock (as dpdk_ixgbe_run's) reaches limit.
   *tx_full counts packets kept that found no room on the TX ring. out: OUT_DONE packets
   queued for TX, OUT_CALLS bursts, OUT_STOLEN cycles. */
static inline int pmd_app_loop(step_fn step, int64_t *clock, int64_t now_word, int64_t *regs,
                               uint8_t *rx_desc, int64_t *rx_slot, uint8_t *tx_desc,
                               int64_t *tx_slot, int64_t ring, int64_t *pool, int64_t pool_free,
                               int64_t buf_bytes, packet_fn handle, void *app, int64_t batch,
                               int64_t limit, int64_t max_gap, int64_t *tx_full, int64_t *out) {
    struct queue rxq = rx_queue(rx_desc, rx_slot, ring, regs);
    struct queue txq = tx_queue(tx_desc, tx_slot, ring, regs);
    struct mempool p = {.buf = pool, .free = pool_free};
    int64_t burst[MAX_BURST], done = 0, calls = 0;
    if (batch > MAX_BURST)
        batch = MAX_BURST;
    rx_refill(&rxq, &p, regs);
    struct poll_clock c = poll_start(step, clock, now_word, limit, max_gap);
    while (poll_tick(&c)) {
        int64_t n = rx_burst(&rxq, burst, batch), keep = 0;
        for (int64_t i = 0; i < n; i++) {
            if (!handle || handle(app, (uint8_t *)burst[i]))
                burst[keep++] = burst[i];
            else
                p.buf[p.free++] = burst[i];
        }
        tx_reap(&txq, &p, batch);
        int64_t sent = tx_burst(&txq, burst, keep, buf_bytes, regs);
        if (sent < 0)
            return (int)sent;
        *tx_full += keep - sent;
        for (int64_t i = sent; i < keep; i++)
            p.buf[p.free++] = burst[i];
        rx_refill(&rxq, &p, regs);
        done += sent;
        calls++;
    }
    poll_finish(&c, done, calls, out);
    return PMD_OK;
}
#endif
