/* What the DPDK and SPDK analogs (dpdk_ixgbe.c, spdk_nvme.c) share: ring arithmetic and
   the benchmark clock of experiments/_drivers.py (_bench_loop), in C. Each iteration
   first lets the device model advance through its step function, then reads the
   device clock; a step of the clock longer than max_gap is the core taken away
   (preemption), counted as stolen, not as the cost of the code. */
#ifndef POLL_LOOP_H
#define POLL_LOOP_H
#include <stdint.h>

/* The index after i in a ring of n (a compare, not a division, as lowlevel/memory.py). */
static inline int64_t ring_next(int64_t i, int64_t n) { return i + 1 == n ? 0 : i + 1; }

/* A device model's step: a numba cfunc taking the address of its register file. */
typedef void (*step_fn)(int64_t);

/* What a run hands back through its out array. */
enum { OUT_DONE, OUT_CALLS, OUT_STOLEN, OUT_WORDS };

struct poll_clock {
    step_fn step;
    int64_t *dev;            /* the register file the step advances */
    int64_t now_word;        /* its word that holds the device clock (cycles) */
    int64_t limit, max_gap;  /* the run ends once the clock reaches limit */
    int64_t prev, stolen;
};

static inline struct poll_clock poll_start(step_fn step, int64_t *dev, int64_t now_word,
                                           int64_t limit, int64_t max_gap) {
    struct poll_clock c = {step, dev, now_word, limit, max_gap, dev[now_word], 0};
    return c;
}

/* Let the device advance; 0 once its clock has reached the limit. */
static inline int poll_tick(struct poll_clock *c) {
    c->step((int64_t)c->dev);
    int64_t now = c->dev[c->now_word];
    if (now >= c->limit)
        return 0;
    if (now - c->prev > c->max_gap)
        c->stolen += now - c->prev;
    c->prev = now;
    return 1;
}

static inline void poll_finish(const struct poll_clock *c, int64_t done, int64_t calls,
                               int64_t *out) {
    out[OUT_DONE] = done;
    out[OUT_CALLS] = calls;
    out[OUT_STOLEN] = c->stolen;
}
#endif
