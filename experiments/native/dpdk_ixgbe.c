/* Figure 6's DPDK row: the poll-mode driver of ixgbe_pmd.h running a benchmark loop.

   The whole loop runs here, one call from Python (run_dpdk in experiments/_drivers.py,
   which sets the device up and allocates every ring and buffer). RX hands received
   buffers straight back to the pool and refills; TX sends pool buffers, each holding
   the generator's frame. */
#include <stdint.h>

#include "ixgbe_pmd.h"

/* Queue up to a burst of pool buffers on free descriptors, then ring the TDT doorbell;
   the count, or PMD_BAD_FRAME for a frame longer than a packet buffer. */
static int64_t tx_send(struct queue *q, struct mempool *p, int64_t batch, int64_t buf_bytes,
                       int64_t *regs) {
    int64_t queued = 0;
    while (queued < batch && tx_room(q) && p->free > 0) {
        if (tx_put(q, p->buf[--p->free], buf_bytes) != PMD_OK)
            return PMD_BAD_FRAME;
        queued++;
    }
    regs[TDT] = q->tail;
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
    struct queue rxq = rx_queue(rx_desc, rx_slot, ring, regs);
    struct queue txq = tx_queue(tx_desc, tx_slot, ring, regs);
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
        } else {   /* received buffers go straight back to the pool */
            int64_t n = rx_burst(&rxq, p.buf + p.free, batch);
            p.free += n;
            done += n;
            rx_refill(&rxq, &p, regs);
        }
        calls++;
    }
    poll_finish(&c, done, calls, out);
    return PMD_OK;
}
