/*
 * Unit tests for rtb_ring: format/attach, append/get, eviction by bytes and by
 * index slots, a long random run checked against an independent model, and
 * the ring shared between two mappings and between two processes.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../src/rtb_ids.c"
#include "../../src/rtb_ring.c"

/* Size of a record with a board id of blen bytes and len payload bytes. */
static uint64_t rec_bytes(size_t blen, uint32_t len)
{
    return (32u + blen + 1u + len + 1u + 7u) & ~(uint64_t)7u;
}

/* Physical offset of a record in the byte area, from what rtb_ring_get returned. */
static uint64_t rec_offset(const rtb_ring_t *r, const rtb_ring_rec_t *rec)
{
    const unsigned char *start = (const unsigned char *)rec->board - sizeof(ring_rec_hdr_t);
    return (uint64_t)(start - ((const unsigned char *)r + r->data_off));
}

static void *block_new(size_t data_bytes, uint32_t slots, size_t *size)
{
    *size = rtb_ring_block_size(data_bytes, slots);
    assert_true(*size > 0);
    void *b = malloc(*size);
    assert_non_null(b);
    /* Garbage, so nothing relies on a zeroed block. */
    memset(b, 0xA5, *size);
    return b;
}

/* Appends a record whose payload is `fill` repeated len times. */
static uint64_t append_fill(rtb_ring_t *r, const char *board, uint64_t id, uint32_t len, int fill)
{
    unsigned char buf[8192];
    assert_true(len <= sizeof(buf));
    memset(buf, fill, len);
    return rtb_ring_append(r, board, id, 7, buf, len);
}

static void test_block_size(void **state)
{
    (void)state;
    assert_int_equal(rtb_ring_block_size(0, 16), 0);
    assert_int_equal(rtb_ring_block_size(127, 16), 0);
    assert_int_equal(rtb_ring_block_size(128, 0), 0);
    assert_int_equal(rtb_ring_block_size(128, (1u << 30) + 1), 0);
    assert_int_equal(rtb_ring_block_size(SIZE_MAX, 16), 0);
    assert_int_equal(rtb_ring_block_size(SIZE_MAX - 100, 1u << 30), 0);

    size_t a = rtb_ring_block_size(1000, 16);
    assert_true(a >= 1000 + 16 * sizeof(ring_slot_t) + sizeof(struct rtb_ring));
    /* data_bytes is rounded up to a multiple of 8 */
    assert_int_equal(rtb_ring_block_size(1001, 16), a + 8);
    assert_int_equal(rtb_ring_block_size(1008, 16), a + 8);
    assert_int_equal(rtb_ring_block_size(1000, 17), a + sizeof(ring_slot_t));
}

static void test_format_attach(void **state)
{
    (void)state;
    size_t sz;
    unsigned char *b = block_new(1000, 16, &sz);

    assert_null(rtb_ring_format(NULL, sz, 1000, 16));
    assert_null(rtb_ring_format(b, sz - 1, 1000, 16));
    assert_null(rtb_ring_format(b, sz, 100, 16));
    assert_null(rtb_ring_format(b, sz, 1000, 0));
    assert_null(rtb_ring_format(b + 4, sz - 4, 1000, 16));
    /* garbage is not a ring */
    assert_null(rtb_ring_attach(b, sz));

    rtb_ring_t *r = rtb_ring_format(b, sz, 1000, 16);
    assert_ptr_equal(r, b);
    assert_int_equal(rtb_ring_next(r), 1);
    assert_int_equal(rtb_ring_oldest(r), 1);
    assert_int_equal(rtb_ring_max_payload(r), 1000 - 32 - 64 - 2);
    assert_int_equal(*rtb_ring_wake_word(r), 0);

    rtb_ring_stats_t st;
    rtb_ring_stats(r, &st);
    assert_int_equal(st.records, 0);
    assert_int_equal(st.bytes_used, 0);
    assert_int_equal(st.bytes_capacity, 1000);
    assert_int_equal(st.index_slots, 16);
    assert_int_equal(st.appended, 0);
    assert_int_equal(st.evicted, 0);
    assert_int_equal(st.refused, 0);

    assert_ptr_equal(rtb_ring_attach(b, sz), r);
    assert_null(rtb_ring_attach(b, sz - 1)); /* the mapping is smaller than the ring */
    assert_null(rtb_ring_attach(NULL, sz));
    assert_null(rtb_ring_attach(b + 8, sz - 8));
    assert_null(rtb_ring_attach(b, 16));

    /* Each damaged field is caught. */
    struct rtb_ring saved = *r;
    r->magic ^= 1;
    assert_null(rtb_ring_attach(b, sz));
    *r = saved;
    r->version++;
    assert_null(rtb_ring_attach(b, sz));
    *r = saved;
    r->index_slots = 17;
    assert_null(rtb_ring_attach(b, sz));
    *r = saved;
    r->data_bytes = 1004;
    assert_null(rtb_ring_attach(b, sz));
    *r = saved;
    r->oldest = 5; /* after next */
    assert_null(rtb_ring_attach(b, sz));
    *r = saved;
    r->oldest = 0;
    assert_null(rtb_ring_attach(b, sz));
    *r = saved;
    assert_ptr_equal(rtb_ring_attach(b, sz), r);

    /* Formatting again empties the ring. */
    assert_int_equal(append_fill(r, "a", 1, 10, 'x'), 1);
    assert_ptr_equal(rtb_ring_format(b, sz, 1000, 16), r);
    assert_int_equal(rtb_ring_next(r), 1);
    assert_int_equal(rtb_ring_get(r, 1, &(rtb_ring_rec_t){0}), RTB_RING_NOT_YET);
    free(b);
}

static void test_append_get(void **state)
{
    (void)state;
    size_t sz;
    void *b = block_new(4096, 16, &sz);
    rtb_ring_t *r = rtb_ring_format(b, sz, 4096, 16);
    rtb_ring_rec_t rec;
    static const char j1[] = "{\"id\":1,\"type\":\"task_created\"}";
    static const char j2[] = "{\"id\":1,\"type\":\"list_created\"}";
    char board64[65];

    memset(board64, 'z', 64);
    board64[64] = '\0';

    assert_int_equal(rtb_ring_append(r, "alpha", 1, 0x11, j1, sizeof(j1) - 1), 1);
    assert_int_equal(rtb_ring_append(r, "beta", 1, 0x22, j2, sizeof(j2) - 1), 2);
    assert_int_equal(rtb_ring_append(r, "alpha", 2, 0x33, NULL, 0), 3);
    assert_int_equal(rtb_ring_append(r, board64, 9, 0x44, "x", 1), 4);
    assert_int_equal(rtb_ring_next(r), 5);
    assert_int_equal(rtb_ring_oldest(r), 1);
    assert_int_equal(*rtb_ring_wake_word(r), 4);

    assert_int_equal(rtb_ring_get(r, 1, &rec), RTB_RING_OK);
    assert_int_equal(rec.gseq, 1);
    assert_int_equal(rec.event_id, 1);
    assert_int_equal(rec.kind, 0x11);
    assert_string_equal(rec.board, "alpha");
    assert_int_equal(rec.board_len, 5);
    assert_int_equal(rec.len, sizeof(j1) - 1);
    assert_string_equal((const char *)rec.payload, j1); /* NUL-terminated */

    assert_int_equal(rtb_ring_get(r, 2, &rec), RTB_RING_OK);
    assert_string_equal(rec.board, "beta");
    assert_int_equal(rec.kind, 0x22);
    assert_memory_equal(rec.payload, j2, sizeof(j2) - 1);

    assert_int_equal(rtb_ring_get(r, 3, &rec), RTB_RING_OK);
    assert_int_equal(rec.len, 0);
    assert_int_equal(rec.event_id, 2);
    assert_string_equal((const char *)rec.payload, "");

    assert_int_equal(rtb_ring_get(r, 4, &rec), RTB_RING_OK);
    assert_string_equal(rec.board, board64);
    assert_int_equal(rec.board_len, 64);

    assert_int_equal(rtb_ring_get(r, 5, &rec), RTB_RING_NOT_YET);
    assert_int_equal(rtb_ring_get(r, UINT64_MAX, &rec), RTB_RING_NOT_YET);
    assert_int_equal(rtb_ring_get(r, 0, &rec), RTB_RING_GONE);

    /* Refusals change nothing but the refused counter. */
    char board65[66];
    memset(board65, 'z', 65);
    board65[65] = '\0';
    assert_int_equal(rtb_ring_append(r, NULL, 1, 0, "x", 1), 0);
    assert_int_equal(rtb_ring_append(r, "", 1, 0, "x", 1), 0);
    assert_int_equal(rtb_ring_append(r, board65, 1, 0, "x", 1), 0);
    assert_int_equal(rtb_ring_append(r, "alpha", 1, 0, NULL, 3), 0);
    assert_int_equal(rtb_ring_append(NULL, "alpha", 1, 0, "x", 1), 0);
    assert_int_equal(rtb_ring_next(r), 5);
    assert_int_equal(*rtb_ring_wake_word(r), 4);

    rtb_ring_stats_t st;
    rtb_ring_stats(r, &st);
    assert_int_equal(st.records, 4);
    assert_int_equal(st.appended, 4);
    assert_int_equal(st.refused, 4);
    assert_int_equal(st.evicted, 0);
    assert_int_equal(st.bytes_used, rec_bytes(5, sizeof(j1) - 1) + rec_bytes(4, sizeof(j2) - 1) +
                                        rec_bytes(5, 0) + rec_bytes(64, 1));
    free(b);
}

static void test_evict_by_bytes(void **state)
{
    (void)state;
    size_t sz;
    void *b = block_new(1024, 64, &sz);
    rtb_ring_t *r = rtb_ring_format(b, sz, 1024, 64);
    rtb_ring_rec_t rec;
    rtb_ring_stats_t st;

    assert_int_equal(rec_bytes(1, 93), 128);
    for (int i = 1; i <= 8; i++)
        assert_int_equal(append_fill(r, "b", (uint64_t)i, 93, i), (uint64_t)i);
    rtb_ring_stats(r, &st);
    assert_int_equal(st.records, 8);
    assert_int_equal(st.bytes_used, 1024);
    assert_int_equal(st.evicted, 0);

    /* The ninth record takes the first one's place. */
    assert_int_equal(append_fill(r, "b", 9, 93, 9), 9);
    assert_int_equal(rtb_ring_oldest(r), 2);
    assert_int_equal(rtb_ring_get(r, 1, &rec), RTB_RING_GONE);
    for (uint64_t g = 2; g <= 9; g++) {
        assert_int_equal(rtb_ring_get(r, g, &rec), RTB_RING_OK);
        assert_int_equal(rec.event_id, g);
        assert_int_equal(((const unsigned char *)rec.payload)[92], (unsigned char)g);
    }
    assert_int_equal(rtb_ring_get(r, 9, &rec), RTB_RING_OK);
    assert_int_equal(rec_offset(r, &rec), 0);

    /* A 256-byte record at offset 128 displaces two. */
    assert_int_equal(rec_bytes(1, 221), 256);
    assert_int_equal(append_fill(r, "b", 10, 221, 10), 10);
    assert_int_equal(rtb_ring_oldest(r), 4);
    assert_int_equal(rtb_ring_get(r, 3, &rec), RTB_RING_GONE);
    assert_int_equal(rtb_ring_get(r, 10, &rec), RTB_RING_OK);
    assert_int_equal(rec_offset(r, &rec), 128);
    rtb_ring_stats(r, &st);
    assert_int_equal(st.records, 7);
    assert_int_equal(st.evicted, 3);
    assert_int_equal(st.bytes_used, 6 * 128 + 256);
    free(b);
}

static void test_evict_by_slots(void **state)
{
    (void)state;
    size_t sz;
    void *b = block_new(65536, 4, &sz);
    rtb_ring_t *r = rtb_ring_format(b, sz, 65536, 4);
    rtb_ring_rec_t rec;
    rtb_ring_stats_t st;

    for (uint64_t i = 1; i <= 10; i++)
        assert_int_equal(append_fill(r, "s", i, 20, (int)i), i);
    assert_int_equal(rtb_ring_oldest(r), 7);
    assert_int_equal(rtb_ring_next(r), 11);
    for (uint64_t g = 1; g < 7; g++)
        assert_int_equal(rtb_ring_get(r, g, &rec), RTB_RING_GONE);
    for (uint64_t g = 7; g <= 10; g++) {
        assert_int_equal(rtb_ring_get(r, g, &rec), RTB_RING_OK);
        assert_int_equal(rec.gseq, g);
        assert_int_equal(rec.event_id, g);
    }
    rtb_ring_stats(r, &st);
    assert_int_equal(st.records, 4);
    assert_int_equal(st.evicted, 6);
    assert_int_equal(st.bytes_used, 4 * rec_bytes(1, 20));
    free(b);
}

static void test_exact_fill_to_end(void **state)
{
    (void)state;
    size_t sz;
    void *b = block_new(1024, 64, &sz);
    rtb_ring_t *r = rtb_ring_format(b, sz, 1024, 64);
    rtb_ring_rec_t rec;
    rtb_ring_stats_t st;

    for (uint64_t i = 1; i <= 7; i++)
        append_fill(r, "e", i, 93, 'a');
    /* 896 bytes used: a 128-byte record ends exactly at the end of the area. */
    assert_int_equal(append_fill(r, "e", 8, 93, 'b'), 8);
    assert_int_equal(rtb_ring_oldest(r), 1);
    assert_int_equal(rtb_ring_get(r, 8, &rec), RTB_RING_OK);
    assert_int_equal(rec_offset(r, &rec), 896);
    assert_int_equal(((const unsigned char *)rec.payload)[92], 'b');
    rtb_ring_stats(r, &st);
    assert_int_equal(st.bytes_used, 1024);

    /* The next one starts at 0 and takes exactly one record's place. */
    assert_int_equal(append_fill(r, "e", 9, 93, 'c'), 9);
    assert_int_equal(rtb_ring_oldest(r), 2);
    assert_int_equal(rtb_ring_get(r, 9, &rec), RTB_RING_OK);
    assert_int_equal(rec_offset(r, &rec), 0);

    /* Now at 128; fill to 896 again, then one 8 bytes too big for the tail. */
    for (uint64_t i = 10; i <= 15; i++)
        append_fill(r, "e", i, 93, 'd');
    assert_int_equal(rtb_ring_oldest(r), 8);
    assert_int_equal(rec_bytes(1, 101), 136);
    assert_int_equal(append_fill(r, "e", 16, 101, 'f'), 16);
    assert_int_equal(rtb_ring_get(r, 16, &rec), RTB_RING_OK);
    assert_int_equal(rec_offset(r, &rec), 0);
    /* It skipped the tail (where record 8 lived) and covered 9 and part of 10. */
    assert_int_equal(rtb_ring_oldest(r), 11);
    rtb_ring_stats(r, &st);
    assert_int_equal(st.records, 6);
    assert_int_equal(st.bytes_used, 1024 + 136 - 256);

    /* A record as large as the whole area evicts everything else. */
    char board64[65];
    memset(board64, 'q', 64);
    board64[64] = '\0';
    uint32_t max = rtb_ring_max_payload(r);
    assert_int_equal(rec_bytes(64, max), 1024);
    assert_int_equal(append_fill(r, board64, 1, max, 'm'), 17);
    assert_int_equal(rtb_ring_oldest(r), 17);
    assert_int_equal(rtb_ring_get(r, 17, &rec), RTB_RING_OK);
    assert_int_equal(rec_offset(r, &rec), 0);
    assert_int_equal(rec.len, max);
    assert_int_equal(((const unsigned char *)rec.payload)[max - 1], 'm');
    assert_int_equal(((const unsigned char *)rec.payload)[max], 0);
    /* And the next one, even tiny, evicts it. */
    assert_int_equal(append_fill(r, "e", 17, 0, 0), 18);
    assert_int_equal(rtb_ring_oldest(r), 18);
    assert_int_equal(rtb_ring_get(r, 18, &rec), RTB_RING_OK);
    assert_int_equal(rec_offset(r, &rec), 0);
    free(b);
}

static void test_too_large(void **state)
{
    (void)state;
    size_t sz;
    void *b = block_new(1024, 64, &sz);
    rtb_ring_t *r = rtb_ring_format(b, sz, 1024, 64);
    char board64[65];
    memset(board64, 'q', 64);
    board64[64] = '\0';
    uint32_t max = rtb_ring_max_payload(r);

    assert_int_equal(append_fill(r, "a", 1, 50, 'a'), 1);
    assert_int_equal(append_fill(r, board64, 1, max + 1, 'x'), 0);
    /* A one-byte board id leaves 63 more bytes for the payload, not 64. */
    assert_int_equal(append_fill(r, "a", 2, max + 64, 'x'), 0);
    assert_int_equal(rtb_ring_append(r, "a", 2, 0, "x", UINT32_MAX), 0);
    /* Nothing was evicted by the refusals. */
    assert_int_equal(rtb_ring_oldest(r), 1);
    assert_int_equal(rtb_ring_next(r), 2);
    assert_int_equal(*rtb_ring_wake_word(r), 1);
    assert_int_equal(append_fill(r, "a", 2, max + 63, 'x'), 2);
    assert_int_equal(rtb_ring_oldest(r), 2);

    rtb_ring_stats_t st;
    rtb_ring_stats(r, &st);
    assert_int_equal(st.refused, 3);
    assert_int_equal(st.bytes_used, 1024);
    free(b);
}

static void test_find_last_id(void **state)
{
    (void)state;
    size_t sz;
    void *b = block_new(65536, 8, &sz);
    rtb_ring_t *r = rtb_ring_format(b, sz, 65536, 8);

    assert_int_equal(rtb_ring_find(r, "a", 1), 0);
    assert_int_equal(rtb_ring_last_id(r, "a"), 0);

    /* gseq: 1 a1, 2 b1, 3 a2, 4 ab1, 5 a3, 6 ba1 */
    append_fill(r, "a", 1, 4, 'x');
    append_fill(r, "b", 1, 4, 'x');
    append_fill(r, "a", 2, 4, 'x');
    append_fill(r, "ab", 1, 4, 'x');
    append_fill(r, "a", 3, 4, 'x');
    append_fill(r, "ba", 1, 4, 'x');

    assert_int_equal(rtb_ring_find(r, "a", 1), 1);
    assert_int_equal(rtb_ring_find(r, "a", 2), 3);
    assert_int_equal(rtb_ring_find(r, "a", 3), 5);
    assert_int_equal(rtb_ring_find(r, "a", 4), 0);
    assert_int_equal(rtb_ring_find(r, "b", 1), 2);
    assert_int_equal(rtb_ring_find(r, "ab", 1), 4);
    assert_int_equal(rtb_ring_find(r, "ba", 1), 6);
    assert_int_equal(rtb_ring_find(r, "c", 1), 0);
    assert_int_equal(rtb_ring_find(r, NULL, 1), 0);
    assert_int_equal(rtb_ring_last_id(r, "a"), 3);
    assert_int_equal(rtb_ring_last_id(r, "b"), 1);
    assert_int_equal(rtb_ring_last_id(r, "ab"), 1);
    assert_int_equal(rtb_ring_last_id(r, "abc"), 0);
    assert_int_equal(rtb_ring_last_id(r, NULL), 0);

    /* 8 slots: five more records evict gseq 1, 2 and 3. */
    append_fill(r, "c", 1, 4, 'x');
    append_fill(r, "c", 2, 4, 'x');
    append_fill(r, "c", 3, 4, 'x');
    append_fill(r, "c", 4, 4, 'x');
    append_fill(r, "c", 5, 4, 'x');
    assert_int_equal(rtb_ring_oldest(r), 4);
    assert_int_equal(rtb_ring_find(r, "a", 1), 0);
    assert_int_equal(rtb_ring_find(r, "a", 2), 0);
    assert_int_equal(rtb_ring_find(r, "a", 3), 5);
    assert_int_equal(rtb_ring_find(r, "b", 1), 0);
    assert_int_equal(rtb_ring_last_id(r, "b"), 0);
    assert_int_equal(rtb_ring_last_id(r, "a"), 3);
    assert_int_equal(rtb_ring_last_id(r, "c"), 5);
    free(b);
}

static void test_iter(void **state)
{
    (void)state;
    size_t sz;
    void *b = block_new(65536, 4, &sz);
    rtb_ring_t *r = rtb_ring_format(b, sz, 65536, 4);
    rtb_ring_rec_t rec;
    uint64_t cur = 0;

    assert_int_equal(rtb_ring_iter(r, &cur, NULL, &rec), RTB_RING_NOT_YET);
    assert_int_equal(cur, 1);

    append_fill(r, "a", 1, 1, 'x'); /* 1 */
    append_fill(r, "b", 1, 1, 'x'); /* 2 */
    append_fill(r, "a", 2, 1, 'x'); /* 3 */
    cur = 0;
    assert_int_equal(rtb_ring_iter(r, &cur, NULL, &rec), RTB_RING_OK);
    assert_int_equal(rec.gseq, 1);
    assert_int_equal(cur, 2);
    assert_int_equal(rtb_ring_iter(r, &cur, "a", &rec), RTB_RING_OK);
    assert_int_equal(rec.gseq, 3);
    assert_int_equal(rec.event_id, 2);
    assert_int_equal(cur, 4);
    assert_int_equal(rtb_ring_iter(r, &cur, "a", &rec), RTB_RING_NOT_YET);
    assert_int_equal(cur, 4);

    cur = 1;
    assert_int_equal(rtb_ring_iter(r, &cur, "zz", &rec), RTB_RING_NOT_YET);
    assert_int_equal(cur, 4); /* moved past the other boards' records */

    append_fill(r, "b", 2, 1, 'x'); /* 4 */
    append_fill(r, "b", 3, 1, 'x'); /* 5: evicts 1 */
    cur = 1;
    assert_int_equal(rtb_ring_iter(r, &cur, "b", &rec), RTB_RING_GONE);
    assert_int_equal(cur, 1);
    cur = rtb_ring_oldest(r);
    int seen = 0;
    while (rtb_ring_iter(r, &cur, "b", &rec) == RTB_RING_OK) {
        assert_string_equal(rec.board, "b");
        seen++;
    }
    assert_int_equal(seen, 3);
    assert_int_equal(cur, 6);
    free(b);
}

/* xorshift64*: a fixed-seed generator, so a failure replays exactly. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static unsigned char model_byte(uint64_t gseq, uint32_t i)
{
    return (unsigned char)(gseq * 131u + i * 7u + (i >> 8));
}

#define M_DATA 4096u
#define M_SLOTS 48u
#define M_OPS 30000u
#define M_BOARDS 5

/*
 * An independent model of the ring: it tracks which byte of the area each
 * live record occupies, places a record at the tail (or at 0 when the tail is
 * too short), and evicts the oldest while the target bytes are occupied or
 * the index is full.
 */
typedef struct {
    uint64_t oldest, next;
    uint32_t tail;
    uint32_t owner[M_DATA]; /* gseq owning each byte, 0 when free */
    uint32_t place[M_OPS + 2];
    uint32_t size[M_OPS + 2];
    uint32_t len[M_OPS + 2];
    uint8_t board[M_OPS + 2];
    uint64_t event_id[M_OPS + 2];
    uint64_t board_next[M_BOARDS];
} model_t;

static const char *const model_boards[M_BOARDS] = {"b0", "board-one", "b2", "x",
                                                   "a-very-long-board-name_0123456789"};

static void model_evict(model_t *m)
{
    uint64_t g = m->oldest++;
    for (uint32_t i = 0; i < m->size[g]; i++)
        m->owner[m->place[g] + i] = 0;
}

static int model_occupied(const model_t *m, uint32_t place, uint32_t size)
{
    for (uint32_t i = 0; i < size; i++)
        if (m->owner[place + i])
            return 1;
    return 0;
}

static void model_check_record(const rtb_ring_t *r, const model_t *m, uint64_t g)
{
    rtb_ring_rec_t rec;
    assert_int_equal(rtb_ring_get(r, g, &rec), RTB_RING_OK);
    assert_int_equal(rec.gseq, g);
    assert_int_equal(rec.event_id, m->event_id[g]);
    assert_int_equal(rec.kind, (uint32_t)(g ^ 0x5a5a));
    assert_int_equal(rec.len, m->len[g]);
    assert_string_equal(rec.board, model_boards[m->board[g]]);
    assert_int_equal(rec_offset(r, &rec), m->place[g]);
    const unsigned char *p = rec.payload;
    for (uint32_t i = 0; i < rec.len; i++)
        if (p[i] != model_byte(g, i))
            fail_msg("gseq %llu byte %u differs", (unsigned long long)g, i);
    assert_int_equal(p[rec.len], 0);
}

static void model_check_all(const rtb_ring_t *r, const model_t *m)
{
    rtb_ring_rec_t rec;
    assert_int_equal(rtb_ring_oldest(r), m->oldest);
    assert_int_equal(rtb_ring_next(r), m->next);
    for (uint64_t g = m->oldest; g < m->next; g++)
        model_check_record(r, m, g);
    if (m->oldest > 1)
        assert_int_equal(rtb_ring_get(r, m->oldest - 1, &rec), RTB_RING_GONE);
    assert_int_equal(rtb_ring_get(r, m->next, &rec), RTB_RING_NOT_YET);

    for (int bi = 0; bi < M_BOARDS; bi++) {
        uint64_t last = 0, first = 0, cnt = 0;
        for (uint64_t g = m->oldest; g < m->next; g++) {
            if (m->board[g] != bi)
                continue;
            if (!first)
                first = g;
            last = g;
            cnt++;
        }
        assert_int_equal(rtb_ring_last_id(r, model_boards[bi]), last ? m->event_id[last] : 0);
        if (first)
            assert_int_equal(rtb_ring_find(r, model_boards[bi], m->event_id[first]), first);
        /* The id just before the oldest held one is gone (or never existed). */
        if (first)
            assert_int_equal(rtb_ring_find(r, model_boards[bi], m->event_id[first] - 1), 0);
        uint64_t cur = m->oldest, n = 0;
        while (rtb_ring_iter(r, &cur, model_boards[bi], &rec) == RTB_RING_OK) {
            assert_int_equal(m->board[rec.gseq], bi);
            n++;
        }
        assert_int_equal(n, cnt);
    }
}

static void test_random_wrap_model(void **state)
{
    (void)state;
    size_t sz;
    void *b = block_new(M_DATA, M_SLOTS, &sz);
    rtb_ring_t *r = rtb_ring_format(b, sz, M_DATA, M_SLOTS);
    model_t *m = calloc(1, sizeof(*m));
    unsigned char *buf = malloc(M_DATA + 200);
    uint64_t total_bytes = 0, refused = 0, by_slots = 0;
    assert_non_null(m);
    assert_non_null(buf);
    m->oldest = m->next = 1;

    for (uint32_t op = 0; op < M_OPS; op++) {
        uint32_t len;
        uint64_t pick = rng() % 100;
        /* Phases of small records, where the index fills before the byte area. */
        if ((op / 1000) % 3 == 1)
            len = (uint32_t)(rng() % 40);
        else if (pick < 60)
            len = (uint32_t)(rng() % 120);
        else if (pick < 95)
            len = (uint32_t)(rng() % 900);
        else if (pick < 97)
            len = (uint32_t)(rng() % M_DATA);
        else /* around the largest record that fits: some fit, some are refused */
            len = (uint32_t)(M_DATA - 170 + rng() % 200);
        int bi = (int)(rng() % M_BOARDS);
        const char *board = model_boards[bi];
        uint64_t g = m->next;
        for (uint32_t i = 0; i < len; i++)
            buf[i] = model_byte(g, i);
        uint32_t size = (uint32_t)rec_bytes(strlen(board), len);
        uint64_t event_id = m->board_next[bi] + 1;

        uint64_t got = rtb_ring_append(r, board, event_id, (uint32_t)(g ^ 0x5a5a), buf, len);
        if (size > M_DATA) {
            assert_int_equal(got, 0);
            refused++;
            continue;
        }
        assert_int_equal(got, g);
        m->board_next[bi] = event_id;

        uint32_t place = m->tail + size <= M_DATA ? m->tail : 0;
        while (m->next - m->oldest >= M_SLOTS) {
            model_evict(m);
            by_slots++;
        }
        while (m->oldest < m->next && model_occupied(m, place, size))
            model_evict(m);
        for (uint32_t i = 0; i < size; i++)
            m->owner[place + i] = (uint32_t)g;
        m->place[g] = place;
        m->size[g] = size;
        m->len[g] = len;
        m->board[g] = (uint8_t)bi;
        m->event_id[g] = event_id;
        m->next = g + 1;
        m->tail = place + size;
        total_bytes += size;

        assert_int_equal(rtb_ring_oldest(r), m->oldest);
        model_check_record(r, m, g);
        if (op % 61 == 0 || op + 1 == M_OPS)
            model_check_all(r, m);
    }

    rtb_ring_stats_t st;
    rtb_ring_stats(r, &st);
    assert_int_equal(st.appended, m->next - 1);
    assert_int_equal(st.evicted, m->oldest - 1);
    assert_int_equal(st.refused, refused);
    assert_int_equal(*rtb_ring_wake_word(r), (uint32_t)(m->next - 1));
    print_message("model: %llu records, %llu area wraps, %llu refused, %llu slot evictions\n",
                  (unsigned long long)(m->next - 1), (unsigned long long)(total_bytes / M_DATA),
                  (unsigned long long)refused, (unsigned long long)by_slots);
    /* The run must really exercise what it claims. */
    assert_true(total_bytes / M_DATA > 1000);
    assert_true(refused > 50);
    assert_true(by_slots > 100);
    free(buf);
    free(m);
    free(b);
}

static void test_two_mappings(void **state)
{
    (void)state;
    size_t sz = rtb_ring_block_size(8192, 32);
    int fd = memfd_create("rtb_ring_test", 0);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)sz), 0);
    unsigned char *m1 = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    unsigned char *m2 = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(m1 != MAP_FAILED && m2 != MAP_FAILED);
    assert_ptr_not_equal(m1, m2);
    close(fd);

    rtb_ring_t *r1 = rtb_ring_format(m1, sz, 8192, 32);
    assert_non_null(r1);
    for (uint64_t i = 1; i <= 100; i++) {
        char js[64];
        int n = snprintf(js, sizeof(js), "{\"id\":%llu}", (unsigned long long)i);
        assert_int_equal(rtb_ring_append(r1, i % 2 ? "odd" : "even", i, 1, js, (uint32_t)n), i);
    }

    rtb_ring_t *r2 = rtb_ring_attach(m2, sz);
    assert_ptr_equal(r2, m2);
    assert_int_equal(rtb_ring_next(r2), 101);
    assert_int_equal(rtb_ring_oldest(r2), rtb_ring_oldest(r1));
    rtb_ring_rec_t a, c;
    for (uint64_t g = rtb_ring_oldest(r2); g < rtb_ring_next(r2); g++) {
        assert_int_equal(rtb_ring_get(r1, g, &a), RTB_RING_OK);
        assert_int_equal(rtb_ring_get(r2, g, &c), RTB_RING_OK);
        /* Same record, read through each mapping's own address. */
        assert_true((const unsigned char *)c.payload >= m2 &&
                    (const unsigned char *)c.payload < m2 + sz);
        assert_int_equal((const unsigned char *)a.payload - m1,
                         (const unsigned char *)c.payload - m2);
        assert_string_equal(a.payload, c.payload);
        assert_string_equal(c.board, g % 2 ? "odd" : "even");
    }

    /* Writes through the second mapping are seen through the first. */
    assert_int_equal(rtb_ring_append(r2, "even", 102, 1, "two", 3), 101);
    assert_int_equal(rtb_ring_get(r1, 101, &a), RTB_RING_OK);
    assert_string_equal(a.payload, "two");
    assert_int_equal(*rtb_ring_wake_word(r1), 101);
    assert_int_equal(rtb_ring_last_id(r1, "even"), 102);

    /* A byte copy of the block is a ring too. */
    unsigned char *copy = malloc(sz);
    assert_non_null(copy);
    memcpy(copy, m1, sz);
    rtb_ring_t *r3 = rtb_ring_attach(copy, sz);
    assert_ptr_equal(r3, copy);
    assert_int_equal(rtb_ring_get(r3, 101, &c), RTB_RING_OK);
    assert_string_equal(c.payload, "two");
    assert_int_equal(rtb_ring_find(r3, "odd", 99), 99);

    free(copy);
    munmap(m1, sz);
    munmap(m2, sz);
}

#define F_PER_PROC 2000
#define F_SLACK 4

typedef struct {
    pthread_mutex_t mu;
    pthread_barrier_t start;
    uint32_t progress[2]; /* records appended by each side, read with atomics */
} fork_shared_t;

/*
 * Appends F_PER_PROC records of board under the shared mutex; 0 on success.
 * Neither side runs more than F_SLACK records ahead of the other, so the two
 * writers really interleave instead of one finishing inside its time slice.
 */
static int fork_append(fork_shared_t *sh, rtb_ring_t *r, int me, const char *board)
{
    struct timespec t0, t;
    int rc = 0;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_barrier_wait(&sh->start);
    for (uint32_t i = 1; i <= F_PER_PROC && rc == 0; i++) {
        char js[64];
        int n = snprintf(js, sizeof(js), "{\"b\":\"%s\",\"id\":%u}", board, i);
        if (pthread_mutex_lock(&sh->mu) != 0) {
            rc = 1;
            break;
        }
        uint64_t before = rtb_ring_next(r);
        uint64_t g = rtb_ring_append(r, board, i, 3, js, (uint32_t)n);
        pthread_mutex_unlock(&sh->mu);
        if (g == 0 || g != before)
            rc = 2;
        __atomic_store_n(&sh->progress[me], i, __ATOMIC_RELEASE);
        while (rc == 0 && __atomic_load_n(&sh->progress[!me], __ATOMIC_ACQUIRE) + F_SLACK < i) {
            clock_gettime(CLOCK_MONOTONIC, &t);
            if (t.tv_sec - t0.tv_sec > 30)
                rc = 3; /* the other side is gone */
            sched_yield();
        }
    }
    /* Never leave the other side waiting on a writer that stopped. */
    __atomic_store_n(&sh->progress[me], F_PER_PROC + F_SLACK, __ATOMIC_RELEASE);
    return rc;
}

static void test_fork(void **state)
{
    (void)state;
    size_t hdr = (sizeof(fork_shared_t) + 63u) & ~(size_t)63u;
    size_t rsz = rtb_ring_block_size(256 * 1024, 8192);
    unsigned char *map =
        mmap(NULL, hdr + rsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(map != MAP_FAILED);
    fork_shared_t *sh = (fork_shared_t *)map;

    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    assert_int_equal(pthread_mutex_init(&sh->mu, &ma), 0);
    pthread_mutexattr_destroy(&ma);
    pthread_barrierattr_t ba;
    pthread_barrierattr_init(&ba);
    pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
    assert_int_equal(pthread_barrier_init(&sh->start, &ba, 2), 0);
    pthread_barrierattr_destroy(&ba);

    rtb_ring_t *r = rtb_ring_format(map + hdr, rsz, 256 * 1024, 8192);
    assert_non_null(r);

    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The child attaches through its inherited mapping, as a child process would. */
        rtb_ring_t *cr = rtb_ring_attach(map + hdr, rsz);
        _exit(cr ? fork_append(sh, cr, 1, "child") : 9);
    }
    assert_int_equal(fork_append(sh, r, 0, "parent"), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    assert_int_equal(rtb_ring_oldest(r), 1);
    assert_int_equal(rtb_ring_next(r), 2 * F_PER_PROC + 1);
    assert_int_equal(*rtb_ring_wake_word(r), 2 * F_PER_PROC);

    /* Every record once, gseq strictly increasing, each board's ids in order. */
    uint64_t next_id[2] = {1, 1}, prev = 0, cur = 0;
    int switches = 0, last_b = -1;
    rtb_ring_rec_t rec;
    while (rtb_ring_iter(r, &cur, NULL, &rec) == RTB_RING_OK) {
        assert_true(rec.gseq > prev);
        prev = rec.gseq;
        int bi = strcmp(rec.board, "child") == 0;
        if (!bi)
            assert_string_equal(rec.board, "parent");
        assert_int_equal(rec.event_id, next_id[bi]);
        char js[64];
        snprintf(js, sizeof(js), "{\"b\":\"%s\",\"id\":%llu}", rec.board,
                 (unsigned long long)rec.event_id);
        assert_string_equal(rec.payload, js);
        next_id[bi]++;
        switches += last_b >= 0 && last_b != bi;
        last_b = bi;
    }
    assert_int_equal(prev, 2 * F_PER_PROC);
    assert_int_equal(next_id[0], F_PER_PROC + 1);
    assert_int_equal(next_id[1], F_PER_PROC + 1);
    assert_int_equal(rtb_ring_last_id(r, "child"), F_PER_PROC);
    assert_int_equal(rtb_ring_last_id(r, "parent"), F_PER_PROC);
    /* A run of one writer is at most 2 * F_SLACK + 2 records long. */
    assert_true(switches >= F_PER_PROC / (F_SLACK + 1) - 1);

    pthread_barrier_destroy(&sh->start);
    pthread_mutex_destroy(&sh->mu);
    munmap(map, hdr + rsz);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_size),     cmocka_unit_test(test_format_attach),
        cmocka_unit_test(test_append_get),     cmocka_unit_test(test_evict_by_bytes),
        cmocka_unit_test(test_evict_by_slots), cmocka_unit_test(test_exact_fill_to_end),
        cmocka_unit_test(test_too_large),      cmocka_unit_test(test_find_last_id),
        cmocka_unit_test(test_iter),           cmocka_unit_test(test_random_wrap_model),
        cmocka_unit_test(test_two_mappings),   cmocka_unit_test(test_fork),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
