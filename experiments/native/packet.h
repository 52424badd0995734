/* Reading and patching packet headers: network byte order and the IPv4 header checksum.
   The C twin of redleaf_nb/apps/packet.py, shared by maglev.c and kvstore.c. */
#ifndef PACKET_H
#define PACKET_H
#include <stdint.h>

enum { ETH = 14, IP_CSUM = ETH + 10 };   /* the IPv4 header; its checksum */

static inline uint64_t u16(const uint8_t *p, int64_t i) { return ((uint64_t)p[i] << 8) | p[i + 1]; }
static inline uint64_t u32(const uint8_t *p, int64_t i) { return (u16(p, i) << 16) | u16(p, i + 2); }

static inline void put16(uint8_t *p, int64_t i, uint64_t v) {
    p[i] = (v >> 8) & 0xFF;
    p[i + 1] = v & 0xFF;
}

static inline void put32(uint8_t *p, int64_t i, uint64_t v) {
    put16(p, i, v >> 16);
    put16(p, i + 2, v & 0xFFFF);
}

/* Update the IPv4 header checksum for a 32-bit header field changed from old to new
   (RFC 1624: HC' = ~(~HC + ~m + m'), per 16-bit half). */
static inline void csum_replace(uint8_t *pkt, uint64_t old, uint64_t new) {
    uint64_t s = (~u16(pkt, IP_CSUM) & 0xFFFF) + (~(old >> 16) & 0xFFFF) + (~old & 0xFFFF)
                 + (new >> 16) + (new & 0xFFFF);
    s = (s & 0xFFFF) + (s >> 16);
    s = (s & 0xFFFF) + (s >> 16);
    put16(pkt, IP_CSUM, ~s & 0xFFFF);
}
#endif
