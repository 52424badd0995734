/* UDP packets through the Linux network stack over loopback: the "Linux"
 * analog of the paper's packet benchmark (Figure 6). No NIC and no wire: each
 * packet goes sender -> kernel UDP/IP -> lo -> kernel UDP/IP -> receiver.
 *
 *   udp_loopback PKT_SIZE BATCH SECONDS
 *
 * PKT_SIZE is the size on the wire; the UDP payload is PKT_SIZE - 42
 * (14 Ethernet + 20 IPv4 + 8 UDP), as RedLeaf's benchmark builds its template.
 * BATCH 1: sendto/recv, one packet per system call; BATCH > 1: sendmmsg/recvmmsg
 * with BATCH messages per call. The sender runs on CPU 0 for SECONDS, the
 * receiver on CPU 1 (modulo the number of CPUs) with a big receive buffer,
 * counting datagrams until the sender is done and the socket is drained.
 * Prints one line:
 *   sent=N received=N ns=N rx_ns=N tx_calls=N rx_calls=N
 * ns: the sender's sending time; rx_ns: from the sender's start to the last
 * datagram received (CLOCK_MONOTONIC).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HEADERS 42       /* Ethernet + IPv4 + UDP */
#define MAX_BATCH 64
#define RX_BYTES 2048    /* > the largest payload, 1514 - 42 */
#define BUF_BYTES (64 << 20)
#define RX_TIMEOUT_US 50000

struct shared {          /* in memory shared by the three processes */
    _Atomic int ready;   /* receiver is waiting for packets */
    _Atomic int done;    /* sender has stopped */
    _Atomic int64_t t0;  /* sender's start */
    int64_t sent, tx_calls, ns;
    int64_t received, rx_calls, rx_ns;
};

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu % sysconf(_SC_NPROCESSORS_ONLN), &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) { perror("sched_setaffinity"); exit(2); }
}

static void set_buffer(int fd, int opt, int force_opt) {
    int bytes = BUF_BYTES;  /* as root, past net.core.[rw]mem_max */
    if (setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof bytes) != 0)
        setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
}

static void receiver(int fd, int batch, struct shared *sh) {
    static char bufs[MAX_BATCH][RX_BYTES];
    struct mmsghdr msgs[MAX_BATCH];
    struct iovec iov[MAX_BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < batch; i++) {
        iov[i] = (struct iovec){bufs[i], RX_BYTES};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int64_t received = 0, calls = 0, last = 0;
    atomic_store(&sh->ready, 1);
    for (;;) {
        int n = batch == 1 ? (recv(fd, bufs[0], RX_BYTES, 0) < 0 ? -1 : 1)
                           : recvmmsg(fd, msgs, batch, MSG_WAITFORONE, NULL);
        calls++;
        if (n > 0) {
            received += n;
            last = now_ns();
        } else if (errno != EINTR) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) { perror("recv"); exit(4); }
            /* the timeout: quit once the sender is done and the socket is empty */
            if (atomic_load(&sh->done)) break;
        }
    }
    sh->received = received;
    sh->rx_calls = calls;
    sh->rx_ns = received ? last - atomic_load(&sh->t0) : 0;
}

static void sender(int fd, const struct sockaddr_in *to, int payload, int batch,
                   double seconds, struct shared *sh) {
    static char buf[RX_BYTES];
    struct mmsghdr msgs[MAX_BATCH];
    struct iovec iov = {buf, (size_t)payload};
    memset(buf, 0xab, sizeof buf);
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < batch; i++) {
        msgs[i].msg_hdr.msg_name = (void *)to;
        msgs[i].msg_hdr.msg_namelen = sizeof *to;
        msgs[i].msg_hdr.msg_iov = &iov;
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    while (!atomic_load(&sh->ready)) sched_yield();
    int64_t sent = 0, calls = 0, t0 = now_ns(), t = t0;
    int64_t end = t0 + (int64_t)(seconds * 1e9);
    atomic_store(&sh->t0, t0);
    while (t < end) {
        int n = batch == 1 ? (sendto(fd, buf, payload, 0, (const struct sockaddr *)to,
                                     sizeof *to) < 0 ? -1 : 1)
                           : sendmmsg(fd, msgs, batch, 0);
        calls++;
        if (n > 0) sent += n;
        else if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR) { perror("send"); exit(5); }
        t = now_ns();
    }
    sh->sent = sent;
    sh->tx_calls = calls;
    sh->ns = t - t0;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: %s PKT_SIZE BATCH SECONDS\n", argv[0]); return 2; }
    int pkt_size = atoi(argv[1]), batch = atoi(argv[2]);
    double seconds = atof(argv[3]);
    if (pkt_size < 64 || pkt_size > 1514 || batch < 1 || batch > MAX_BATCH || !(seconds > 0)) {
        fprintf(stderr, "PKT_SIZE 64..1514, BATCH 1..%d, SECONDS > 0\n", MAX_BATCH);
        return 2;
    }
    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) { perror("mmap"); return 2; }
    memset(sh, 0, sizeof *sh);

    int rx = socket(AF_INET, SOCK_DGRAM, 0), tx = socket(AF_INET, SOCK_DGRAM, 0);
    if (rx < 0 || tx < 0) { perror("socket"); return 2; }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(rx, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        getsockname(rx, (struct sockaddr *)&addr, &len) != 0) { perror("bind"); return 2; }
    set_buffer(rx, SO_RCVBUF, SO_RCVBUFFORCE);
    set_buffer(tx, SO_SNDBUF, SO_SNDBUFFORCE);
    struct timeval timeout = {0, RX_TIMEOUT_US};
    setsockopt(rx, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);

    pid_t rpid = fork();
    if (rpid == 0) { pin(1); receiver(rx, batch, sh); _exit(0); }
    pid_t spid = fork();
    if (spid == 0) { pin(0); sender(tx, &addr, pkt_size - HEADERS, batch, seconds, sh); _exit(0); }

    int sstatus, rstatus;
    waitpid(spid, &sstatus, 0);
    atomic_store(&sh->done, 1);  /* also if the sender failed */
    waitpid(rpid, &rstatus, 0);
    if (!WIFEXITED(sstatus) || WEXITSTATUS(sstatus) || !WIFEXITED(rstatus) || WEXITSTATUS(rstatus)) {
        fprintf(stderr, "sender or receiver failed\n");
        return 3;
    }
    printf("sent=%lld received=%lld ns=%lld rx_ns=%lld tx_calls=%lld rx_calls=%lld\n",
           (long long)sh->sent, (long long)sh->received, (long long)sh->ns,
           (long long)sh->rx_ns, (long long)sh->tx_calls, (long long)sh->rx_calls);
    return 0;
}
