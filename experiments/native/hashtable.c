/* Figure 5's C reference: open addressing, linear probing, FNV-1 64 over 8-byte keys.
   Built by redleaf_nb.native.build_shared, loaded through cffi's ABI mode
   (experiments/hashtable/c_reference.py declares the four exported functions). */
#include <stdint.h>
#include <x86intrin.h>

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME  0x100000001b3ULL
#define VALUE_XOR  0x5555555555555555ULL

/* One entry: 16 bytes, key 0 marks an empty slot. */
typedef struct { uint64_t key, value; } entry_t;

static inline uint64_t fnv1_64(uint64_t key) {
    uint64_t h = FNV_OFFSET;
    for (int i = 0; i < 8; i++) {
        h *= FNV_PRIME;
        h ^= (key >> (8 * i)) & 0xff;
    }
    return h;
}

static inline void ht_set(entry_t *t, uint64_t mask, uint64_t key, uint64_t value) {
    uint64_t i = fnv1_64(key) & mask;
    for (;;) {
        if (t[i].key == key || t[i].key == 0) {
            t[i].key = key;
            t[i].value = value;
            return;
        }
        i = (i + 1) & mask;
    }
}

static inline int ht_get(const entry_t *t, uint64_t mask, uint64_t key, uint64_t *value) {
    uint64_t i = fnv1_64(key) & mask;
    for (;;) {
        if (t[i].key == key) {
            *value = t[i].value;
            return 1;
        }
        if (t[i].key == 0)
            return 0;
        i = (i + 1) & mask;
    }
}

uint64_t bench_set(uint64_t *table, uint64_t cap, uint64_t n) {
    entry_t *t = (entry_t *)table;
    uint64_t t0 = __rdtsc();
    for (uint64_t k = 1; k <= n; k++)
        ht_set(t, cap - 1, k, k ^ VALUE_XOR);
    return __rdtsc() - t0;
}

uint64_t bench_get(uint64_t *table, uint64_t cap, uint64_t n, uint64_t *checksum) {
    const entry_t *t = (const entry_t *)table;
    uint64_t sum = 0, v;
    uint64_t t0 = __rdtsc();
    for (uint64_t k = 1; k <= n; k++)
        if (ht_get(t, cap - 1, k, &v))
            sum += v;
    uint64_t t1 = __rdtsc();
    *checksum = sum;
    return t1 - t0;
}

void set_many(uint64_t *table, uint64_t cap, uint64_t *keys, uint64_t *values, uint64_t m) {
    for (uint64_t j = 0; j < m; j++)
        ht_set((entry_t *)table, cap - 1, keys[j], values[j]);
}

void get_many(uint64_t *table, uint64_t cap, uint64_t *keys, uint64_t m,
              uint64_t *values, uint8_t *found) {
    for (uint64_t j = 0; j < m; j++) {
        uint64_t v = 0;
        found[j] = (uint8_t)ht_get((const entry_t *)table, cap - 1, keys[j], &v);
        values[j] = v;
    }
}
