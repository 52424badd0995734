/* Figure 6's DPDK row: a poll-mode driver for the 82599 model (devices/nic.py) in C.

   No isolation, no RRefs: a packet buffer is a plain address, the mempool a stack of
   them, and the whole benchmark loop runs here, one call from Python (run_dpdk in
   experiments/_drivers.py, which sets the device up and allocates every ring and
   buffer). Per packet it does what the safe driver (redleaf_nb/drivers/ixgbe.py)
   does: RX checks DD, hands the buffer back and refills the descriptor; TX reaps
   DD, reads the frame's length from its IPv4 header and fills a descriptor; one
   tail doorbell per burst. Register indices, bits and the descriptor layout come
   from the header generated from redleaf_nb/datasheets/ixgbe_82599.py. */
#include <stdint.h>

#include "poll_loop.h"
#include "redleaf_nb/datasheets/ixgbe_82599.h"

enum { DPDK_OK = 0, DPDK_BAD_FRAME = -1 };

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

/* Hand received packets (DD set) back to the pool, up to a burst; the count. */
static int64_t rx_receive(struct queue *q, struct mempool *p, int64_t batch) {
    int64_t i = q->head, got = 0;
    while (got < batch && q->slot[i] != 0 && (*field(q, i, DESCRIPTOR_INFO_OFFSET) & RXD_DD)) {
        p->buf[p->free++] = q->slot[i];
        q->slot[i] = 0;
        i = ring_next(i, q->n);
        got++;
    }
    q->head = i;
    return got;
}

/* Give the device a buffer for every free descriptor (one stays empty: RDT == RDH means
   none), then ring the RDT doorbell. */
static void rx_refill(struct queue *q, struct mempool *p, int64_t *regs) {
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
static void tx_reap(struct queue *q, struct mempool *p, int64_t batch) {
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

/* Queue up to a burst of pool buffers on free descriptors, then ring the TDT doorbell;
   the count, or DPDK_BAD_FRAME for a frame longer than a buffer. */
static int64_t tx_send(struct queue *q, struct mempool *p, int64_t batch, int64_t buf_bytes,
                       int64_t *regs) {
    int64_t i = q->tail, queued = 0;
    while (queued < batch && ring_next(i, q->n) != q->head && p->free > 0) {
        int64_t buf = p->buf[--p->free];
        const uint8_t *frame = (const uint8_t *)buf;
        uint64_t length = (((uint64_t)frame[16] << 8) | frame[17]) + 14;  /* IPv4 + Ethernet */
        if (length > (uint64_t)buf_bytes)
            return DPDK_BAD_FRAME;
        *field(q, i, DESCRIPTOR_ADDR_OFFSET) = (uint64_t)buf;
        *field(q, i, DESCRIPTOR_INFO_OFFSET) = (length | TXD_CMD)
                                               | ((length << TXD_PAYLEN_SHIFT) << 32);
        q->slot[i] = buf;
        i = ring_next(i, q->n);
        queued++;
    }
    q->tail = i;
    regs[TDT] = i;
    return queued;
}

/* Run bursts of `batch` packets (tx: send, else receive) until the device clock (word
   now_word of the register file `clock`, advanced by `step`) reaches `limit`. The
   driver's registers are `regs`; its rings `ring` descriptors each, starting where the
   set-up left head and tail; `slot` arrays give the buffer behind each descriptor and
   `pool` holds `pool_free` free buffers of `buf_bytes` bytes (TX: each holding a frame).
   out: OUT_DONE packets received or queued, OUT_CALLS bursts, OUT_STOLEN cycles. */
int dpdk_ixgbe_run(step_fn step, int64_t *clock, int64_t now_word, int64_t *regs,
                   uint8_t *rx_desc, int64_t *rx_slot, uint8_t *tx_desc, int64_t *tx_slot,
                   int64_t ring, int64_t *pool, int64_t pool_free, int64_t buf_bytes,
                   int tx, int64_t batch, int64_t limit, int64_t max_gap, int64_t *out) {
    struct queue rxq = {.desc = rx_desc, .slot = rx_slot, .n = ring, .head = regs[RDH],
                        .tail = regs[RDT]};
    struct queue txq = {.desc = tx_desc, .slot = tx_slot, .n = ring, .head = regs[TDH],
                        .tail = regs[TDT]};
    struct mempool p = {.buf = pool, .free = pool_free};
    int64_t done = 0, calls = 0;
    if (!tx)   /* the ring starts full, as after rte_eth_dev_start: filled before the
                  device's first step, a microsecond into its clock */
        rx_refill(&rxq, &p, regs);
    struct poll_clock c = poll_start(step, clock, now_word, limit, max_gap);
    while (poll_tick(&c)) {
        if (tx) {
            tx_reap(&txq, &p, batch);
            int64_t n = tx_send(&txq, &p, batch, buf_bytes, regs);
            if (n < 0)
                return (int)n;
            done += n;
        } else {
            done += rx_receive(&rxq, &p, batch);
            rx_refill(&rxq, &p, regs);
        }
        calls++;
    }
    poll_finish(&c, done, calls, out);
    return DPDK_OK;
}
