/*
 * Helpers shared by the libFuzzer drivers: an invariant check that aborts
 * (libFuzzer then saves the input as a crash), exact-size heap copies of the
 * input so ASan sees any read past it, and a hash to feed a sink the
 * optimiser cannot drop.
 */
#ifndef RTB_FUZZ_H
#define RTB_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A heap copy of s[0..n) in a block of exactly n bytes (n + 1 with a NUL added). */
static inline char *fuzz_copy(const void *s, size_t n, int add_nul)
{
    char *p = malloc(n + (add_nul ? 1 : 0) + (n == 0 && !add_nul));

    FUZZ_CHECK(p != NULL);
    if (n > 0) {
        memcpy(p, s, n);
    }
    if (add_nul) {
        p[n] = '\0';
    }
    return p;
}

/* FNV-1a over s[0..n), continuing from h. */
static inline uint64_t fuzz_hash(uint64_t h, const void *s, size_t n)
{
    const unsigned char *b = s;

    for (size_t i = 0; i < n; i++) {
        h = (h ^ b[i]) * UINT64_C(0x100000001b3);
    }
    return h;
}

#endif
