/* Round trips between two OS processes: the "isolation by address spaces"
 * analog of a cross-domain call (the paper compares with seL4 IPC and VMFUNC).
 *
 *   ipc_pingpong pipe|spin ROUND_TRIPS PARENT_CPU CHILD_CPU
 *
 * pipe: one byte each way over two pipes (blocking: a wake-up per message).
 * spin: one cache line each way in shared memory, both sides spinning.
 * Prints the mean cycles (RDTSC) per round trip after a warm-up.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <x86intrin.h>

#define WARMUP 1000

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) { perror("sched_setaffinity"); exit(2); }
}

static double pipe_round_trips(long n, int cpu_parent, int cpu_child) {
    int ping[2], pong[2];
    if (pipe(ping) || pipe(pong)) { perror("pipe"); exit(2); }
    pid_t pid = fork();
    char c = 'x';
    if (pid == 0) {
        pin(cpu_child);
        for (long i = 0; i < n + WARMUP; i++)
            if (read(ping[0], &c, 1) != 1 || write(pong[1], &c, 1) != 1) _exit(1);
        _exit(0);
    }
    pin(cpu_parent);
    for (long i = 0; i < WARMUP; i++)
        if (write(ping[1], &c, 1) != 1 || read(pong[0], &c, 1) != 1) exit(3);
    uint64_t t0 = __rdtsc();
    for (long i = 0; i < n; i++)
        if (write(ping[1], &c, 1) != 1 || read(pong[0], &c, 1) != 1) exit(3);
    uint64_t t1 = __rdtsc();
    waitpid(pid, NULL, 0);
    return (double)(t1 - t0) / n;
}

static double spin_round_trips(long n, int cpu_parent, int cpu_child) {
    /* two flags on separate cache lines */
    _Atomic long *shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shm == MAP_FAILED) { perror("mmap"); exit(2); }
    _Atomic long *ping = &shm[0], *pong = &shm[16];
    atomic_store(ping, 0);
    atomic_store(pong, 0);
    pid_t pid = fork();
    if (pid == 0) {
        pin(cpu_child);
        for (long i = 1; i <= n + WARMUP; i++) {
            while (atomic_load_explicit(ping, memory_order_acquire) != i) _mm_pause();
            atomic_store_explicit(pong, i, memory_order_release);
        }
        _exit(0);
    }
    pin(cpu_parent);
    uint64_t t0 = 0;
    for (long i = 1; i <= n + WARMUP; i++) {
        if (i == WARMUP + 1) t0 = __rdtsc();
        atomic_store_explicit(ping, i, memory_order_release);
        while (atomic_load_explicit(pong, memory_order_acquire) != i) _mm_pause();
    }
    uint64_t t1 = __rdtsc();
    waitpid(pid, NULL, 0);
    return (double)(t1 - t0) / n;
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: %s pipe|spin N PARENT_CPU CHILD_CPU\n", argv[0]); return 2; }
    long n = atol(argv[2]);
    int cp = atoi(argv[3]), cc = atoi(argv[4]);
    double r = strcmp(argv[1], "pipe") == 0 ? pipe_round_trips(n, cp, cc) : spin_round_trips(n, cp, cc);
    printf("%.1f\n", r);
    return 0;
}
