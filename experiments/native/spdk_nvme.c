/* Figure 8's SPDK row: a polled NVMe driver for the P3700 model (devices/nvme.py) in C.

   No isolation, no RRefs: a request is an index into arrays of 4 KiB data buffers and
   result lengths, and the whole benchmark loop runs here, one call from Python
   (run_spdk in experiments/_drivers.py, which brings the controller up, creates the
   I/O queue pair and allocates every queue and buffer). Per request it does what the
   safe driver (redleaf_nb/drivers/nvme.py) does: a 64-byte command (command id = SQ
   slot, PRP1 = the request's buffer), one SQ tail doorbell per burst; completions
   reaped by their phase tag, the result recorded, one CQ head doorbell. Each finished
   request goes on to the next block (sequential I/O). Register indices and entry
   layouts come from the header generated from redleaf_nb/datasheets/nvme.py. */
#include <stdint.h>

#include "poll_loop.h"
#include "redleaf_nb/datasheets/nvme.h"

#define NSID 1ULL   /* the one namespace */

/* The I/O queue pair and the requests behind its commands. */
struct qpair {
    uint8_t *sq, *cq;
    int64_t n;                  /* entries of each queue */
    int64_t sq_tail, cq_head, phase, inflight;
    int64_t *cid_req;           /* the request behind each command id */
    uint8_t *data;              /* request r's buffer: data + r * BSIZE */
    int64_t *len;               /* bytes request r got back: BSIZE, 0 on error */
    int64_t *free_req, nfree;   /* a stack of requests not in flight */
    int64_t next_block, nblocks;
};

static inline void put(uint8_t *entry, int64_t offset, uint64_t value) {
    *(uint64_t *)(entry + offset) = value;
}

/* Write a command for each free request, up to a burst, while the SQ has room; then ring
   the SQ tail doorbell if any went. */
static void submit(struct qpair *q, uint64_t opcode, int64_t batch, int64_t *regs) {
    int64_t tail = q->sq_tail, queued = 0;
    while (queued < batch && q->inflight < q->n - 1 && q->nfree > 0) {
        int64_t r = q->free_req[--q->nfree];
        uint8_t *sqe = q->sq + tail * SQE_BYTES;
        put(sqe, SQE_CDW0_NSID_OFFSET, opcode | ((uint64_t)tail << 16) | (NSID << 32));
        put(sqe, SQE_CDW2_3_OFFSET, 0);
        put(sqe, SQE_MPTR_OFFSET, 0);
        put(sqe, SQE_PRP1_OFFSET, (uint64_t)(q->data + r * BSIZE));
        put(sqe, SQE_PRP2_OFFSET, 0);
        put(sqe, SQE_CDW10_11_OFFSET, (uint64_t)q->next_block * LBAS_PER_BLOCK);  /* SLBA */
        put(sqe, SQE_CDW12_13_OFFSET, LBAS_PER_BLOCK - 1);                       /* NLB - 1 */
        put(sqe, SQE_CDW14_15_OFFSET, 0);
        q->cid_req[tail] = r;
        q->next_block = ring_next(q->next_block, q->nblocks);
        tail = ring_next(tail, q->n);
        q->inflight++;
        queued++;
    }
    q->sq_tail = tail;
    if (queued)
        regs[SQ1TDBL] = tail;
}

/* Reap up to a burst of completions (those with the current phase tag), then ring the CQ
   head doorbell if any came; the count. */
static int64_t reap(struct qpair *q, int64_t batch, int64_t *regs) {
    int64_t head = q->cq_head, got = 0;
    while (got < batch) {
        uint64_t dw3 = *(uint64_t *)(q->cq + head * CQE_BYTES + CQE_DW2_3_OFFSET) >> 32;
        if ((int64_t)((dw3 >> PHASE_SHIFT) & 1) != q->phase)
            break;
        int64_t r = q->cid_req[dw3 & 0xFFFF];
        q->len[r] = (dw3 >> STATUS_SHIFT) == 0 ? BSIZE : 0;
        q->free_req[q->nfree++] = r;
        if (++head == q->n) {
            head = 0;
            q->phase ^= 1;
        }
        q->inflight--;
        got++;
    }
    q->cq_head = head;
    if (got)
        regs[CQ1HDBL] = head;
    return got;
}

/* Run bursts of `batch` sequential 4 KiB reads or writes, keeping `depth` requests in
   flight, until the device clock (word now_word of the register file `clock`, advanced
   by `step`) reaches `limit`. The controller's registers are `regs`; `sq` and `cq` the
   I/O queue pair (`entries` each, just created: empty, phase tag 1); `cid_req` (entries)
   scratch; `data` (depth * BSIZE bytes), `len` and `free_req` (depth each) the requests;
   blocks 0, 1, 2, ... of `nblocks` are read or written in turn. out: OUT_DONE
   completions reaped, OUT_CALLS bursts, OUT_STOLEN cycles. */
int spdk_nvme_run(step_fn step, int64_t *clock, int64_t now_word, int64_t *regs,
                  uint8_t *sq, uint8_t *cq, int64_t entries, int64_t *cid_req,
                  uint8_t *data, int64_t *len, int64_t *free_req, int64_t depth,
                  int64_t nblocks, int write, int64_t batch, int64_t limit, int64_t max_gap,
                  int64_t *out) {
    struct qpair q = {.sq = sq, .cq = cq, .n = entries, .phase = 1, .cid_req = cid_req,
                      .data = data, .len = len, .free_req = free_req, .nfree = depth,
                      .nblocks = nblocks};
    uint64_t opcode = write ? OP_WRITE : OP_READ;
    for (int64_t r = 0; r < depth; r++)
        free_req[r] = depth - 1 - r;   /* request 0 goes first */
    int64_t done = 0, calls = 0;
    struct poll_clock c = poll_start(step, clock, now_word, limit, max_gap);
    while (poll_tick(&c)) {
        submit(&q, opcode, batch, regs);
        done += reap(&q, batch, regs);
        calls++;
    }
    poll_finish(&c, done, calls, out);
    return 0;
}
