/*
 * Unit tests for src/rtb_ws_codec.c.
 *
 * The codec source is included so static functions can be tested too. Every
 * input that goes through the parser is fed in several ways (whole, one byte
 * at a time, fixed chunks, and split in two at every point for short inputs),
 * each piece in its own exactly-sized heap block so ASan catches any read past
 * what the parser was given, and all ways must give the same transcript:
 * assembled messages, control frames, final error and where it happened.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../src/rtb_ws_codec.c"

#define DEFAULT_MAX ((uint64_t)1 << 20)
#define MAX_RECORDS 32

static const unsigned char KEY[4] = {0x37, 0xfa, 0x21, 0x3d};

/* ---- growable byte buffer ---------------------------------------------- */

typedef struct {
    unsigned char *p;
    size_t n;
    size_t cap;
} buf_t;

static void buf_put(buf_t *b, const void *data, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;

        while (cap < b->n + n) {
            cap *= 2;
        }
        b->p = realloc(b->p, cap);
        assert_non_null(b->p);
        b->cap = cap;
    }
    if (n > 0) {
        memcpy(b->p + b->n, data, n);
    }
    b->n += n;
}

static void buf_free(buf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* Length encodings a test frame may be given. */
enum { LEN_MINIMAL, LEN_16, LEN_64 };

/*
 * Append one client frame with first byte b0. masked: apply KEY (else send
 * unmasked). lenform forces an extended length encoding.
 */
static void put_frame_ex(buf_t *b, unsigned int b0, int masked, int lenform, const void *payload,
                         size_t n)
{
    unsigned char hdr[14];
    size_t h = 0;
    const unsigned char *src = payload;

    hdr[h++] = (unsigned char)b0;
    if (lenform == LEN_MINIMAL && n < 126) {
        hdr[h++] = (unsigned char)((masked ? 0x80 : 0) | n);
    } else if (lenform != LEN_64 && n <= 0xFFFF) {
        hdr[h++] = (unsigned char)((masked ? 0x80 : 0) | 126);
        hdr[h++] = (unsigned char)(n >> 8);
        hdr[h++] = (unsigned char)n;
    } else {
        hdr[h++] = (unsigned char)((masked ? 0x80 : 0) | 127);
        for (int i = 0; i < 8; i++) {
            hdr[h++] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
        }
    }
    if (masked) {
        memcpy(hdr + h, KEY, 4);
        h += 4;
    }
    buf_put(b, hdr, h);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)(src[i] ^ (masked ? KEY[i & 3] : 0));

        buf_put(b, &c, 1);
    }
}

static void put_frame(buf_t *b, unsigned int b0, const void *payload, size_t n)
{
    put_frame_ex(b, b0, 1, LEN_MINIMAL, payload, n);
}

static void put_str(buf_t *b, unsigned int b0, const char *s)
{
    put_frame(b, b0, s, strlen(s));
}

/* ---- transcript of a parse run ------------------------------------------ */

typedef struct {
    int op;        /* TEXT/BINARY for a complete message, else the control opcode */
    uint16_t code; /* close code */
    size_t len;
    unsigned char *data; /* message bytes, or the control payload */
} rec_t;

typedef struct {
    int err;           /* 0, or the error that ended the run */
    size_t err_offset; /* stream offset just after the byte that failed */
    size_t nrec;
    rec_t rec[MAX_RECORDS];
    size_t data_events;
    unsigned int flag_log[64]; /* flags of the first data events, whole feed only */
    int open;                  /* a message is being assembled */
    buf_t assembling;
    int assembling_op;
} run_t;

static void run_free(run_t *r)
{
    for (size_t i = 0; i < r->nrec; i++) {
        free(r->rec[i].data);
    }
    buf_free(&r->assembling);
    memset(r, 0, sizeof(*r));
}

static void run_push(run_t *r, int op, uint16_t code, const unsigned char *data, size_t len)
{
    rec_t *rec;

    assert_true(r->nrec < MAX_RECORDS);
    rec = &r->rec[r->nrec++];
    rec->op = op;
    rec->code = code;
    rec->len = len;
    rec->data = malloc(len + 1);
    assert_non_null(rec->data);
    if (len > 0) {
        memcpy(rec->data, data, len);
    }
}

/* Check one event's invariants and add it to the transcript. */
static void run_event(run_t *r, const rtb_ws_event_t *ev, const rtb_ws_parser_t *p,
                      const unsigned char *piece, size_t plen)
{
    if (ev->type == RTB_WS_EV_DATA) {
        assert_true(ev->opcode == RTB_WS_OP_TEXT || ev->opcode == RTB_WS_OP_BINARY);
        assert_true(ev->data >= piece && ev->data + ev->len <= piece + plen);
        assert_int_equal(ev->close_code, 0);
        if (r->data_events < 64) {
            r->flag_log[r->data_events] = ev->flags;
        }
        r->data_events++;
        /* FIRST exactly when no message is open; the opcode stays the same. */
        assert_int_equal(!!(ev->flags & RTB_WS_FLAG_FIRST), !r->open);
        if (!r->open) {
            r->open = 1;
            r->assembling.n = 0;
            r->assembling_op = ev->opcode;
        }
        assert_int_equal(ev->opcode, r->assembling_op);
        assert_true(ev->len > 0 || ev->flags != 0);
        buf_put(&r->assembling, ev->data, ev->len);
        if (ev->flags & RTB_WS_FLAG_LAST) {
            run_push(r, r->assembling_op, 0, r->assembling.p, r->assembling.n);
            r->open = 0;
        }
        return;
    }

    assert_true(ev->len <= RTB_WS_MAX_CONTROL_PAYLOAD);
    assert_ptr_equal(ev->data, p->control);
    assert_int_equal(ev->flags, 0);
    switch (ev->type) {
    case RTB_WS_EV_PING:
        assert_int_equal(ev->opcode, RTB_WS_OP_PING);
        break;
    case RTB_WS_EV_PONG:
        assert_int_equal(ev->opcode, RTB_WS_OP_PONG);
        break;
    case RTB_WS_EV_CLOSE:
        assert_int_equal(ev->opcode, RTB_WS_OP_CLOSE);
        if (ev->len == 0) {
            assert_int_equal(ev->close_code, 0);
            assert_int_equal(ev->reason_len, 0);
        } else {
            assert_true(ev->len >= 2);
            assert_true(rtb_ws_close_code_valid(ev->close_code));
            assert_ptr_equal(ev->reason, p->control + 2);
            assert_int_equal(ev->reason_len, ev->len - 2);
            assert_true(rtb_ws_utf8_valid(ev->reason, ev->reason_len));
        }
        break;
    default:
        fail_msg("unexpected event type %d", ev->type);
    }
    run_push(r, ev->opcode, ev->close_code, ev->data, ev->len);
}

/*
 * Parse in[0..n): the first piece has `first` bytes, the rest come `chunk`
 * bytes at a time. Each piece is copied into its own heap block of exactly
 * its size, because the parser writes to it and must not read beyond it.
 */
static void run_feed(run_t *r, const unsigned char *in, size_t n, size_t first, size_t chunk,
                     uint64_t max)
{
    rtb_ws_parser_t p;
    size_t at = 0;

    memset(r, 0, sizeof(*r));
    rtb_ws_parser_init(&p, max);
    assert_true(chunk > 0 || n == 0);
    /* The first piece may be empty: the parser must accept len 0. */
    for (size_t piece_no = 0; at < n; piece_no++) {
        size_t plen = piece_no == 0 ? first : chunk;
        size_t off = 0;
        unsigned char *piece;

        if (plen > n - at) {
            plen = n - at;
        }
        piece = malloc(plen ? plen : 1);
        assert_non_null(piece);
        memcpy(piece, in + at, plen);
        for (;;) {
            rtb_ws_event_t ev;
            size_t used = 12345;
            int rc = rtb_ws_parse(&p, piece + off, plen - off, &used, &ev);

            assert_true(used <= plen - off);
            off += used;
            if (rc < 0) {
                size_t again = 12345;

                r->err = rc;
                r->err_offset = at + off;
                /* The error is sticky and consumes nothing further. */
                assert_int_equal(rtb_ws_parse(&p, piece + off, plen - off, &again, &ev), rc);
                assert_int_equal(again, 0);
                free(piece);
                return;
            }
            if (rc == 0) {
                assert_int_equal(off, plen);
                break;
            }
            assert_int_equal(rc, ev.type);
            run_event(r, &ev, &p, piece, plen);
        }
        free(piece);
        at += plen;
    }
}

static void run_assert_same(const run_t *a, const run_t *b, const char *how)
{
    if (a->err != b->err || a->err_offset != b->err_offset || a->nrec != b->nrec) {
        fail_msg("%s: err %d/%d at %zu/%zu, records %zu/%zu", how, a->err, b->err, a->err_offset,
                 b->err_offset, a->nrec, b->nrec);
    }
    /* After an error, how much of the failing message was already handed
     * out depends on the split; without one it must not. */
    if (a->err == 0) {
        assert_int_equal(a->open, b->open);
    }
    for (size_t i = 0; i < a->nrec; i++) {
        assert_int_equal(a->rec[i].op, b->rec[i].op);
        assert_int_equal(a->rec[i].code, b->rec[i].code);
        assert_int_equal(a->rec[i].len, b->rec[i].len);
        if (a->rec[i].len > 0) {
            assert_memory_equal(a->rec[i].data, b->rec[i].data, a->rec[i].len);
        }
    }
}

/*
 * Parse `in` every way and require identical transcripts; leaves the
 * whole-buffer run in *out for the caller to check (run_free it).
 */
static void parse_all_ways(run_t *out, const unsigned char *in, size_t n, uint64_t max)
{
    static const size_t chunks[] = {1, 2, 3, 7, 64, 1000};
    run_t other;
    char how[64];

    run_feed(out, in, n, n, n, max);
    for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        snprintf(how, sizeof(how), "chunks of %zu", chunks[i]);
        run_feed(&other, in, n, chunks[i], chunks[i], max);
        run_assert_same(out, &other, how);
        run_free(&other);
    }
    if (n <= 600) {
        for (size_t i = 0; i < n; i++) {
            snprintf(how, sizeof(how), "split at %zu", i);
            run_feed(&other, in, n, i, n, max);
            run_assert_same(out, &other, how);
            run_free(&other);
        }
    }
}

static void assert_rec(const run_t *r, size_t i, int op, const void *data, size_t len)
{
    assert_true(i < r->nrec);
    assert_int_equal(r->rec[i].op, op);
    assert_int_equal(r->rec[i].len, len);
    if (len > 0) {
        assert_memory_equal(r->rec[i].data, data, len);
    }
}

/* ---- RFC 6455 section 5.7 examples -------------------------------------- */

typedef struct {
    const char *name;
    const unsigned char *bytes;
    size_t n;
} rfc_unmasked_t;

#define BYTES(...)                                                                                 \
    (const unsigned char[]){__VA_ARGS__}, sizeof((const unsigned char[]){__VA_ARGS__})

/* The unmasked examples are client-to-server frames only in the RFC's
 * illustration; a server must refuse them (section 5.1). */
static void test_rfc_unmasked_examples_rejected(void **state)
{
    const rfc_unmasked_t cases[] = {
        {"single-frame unmasked text", BYTES(0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f)},
        {"fragmented unmasked text", BYTES(0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f)},
        {"unmasked ping", BYTES(0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f)},
        {"unmasked 256-byte binary header", BYTES(0x82, 0x7E, 0x01, 0x00)},
        {"unmasked 64KiB binary header",
         BYTES(0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00)},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run_t r;

        parse_all_ways(&r, cases[i].bytes, cases[i].n, DEFAULT_MAX);
        if (r.err != RTB_WS_ERR_UNMASKED) {
            fail_msg("%s: got %d", cases[i].name, r.err);
        }
        assert_int_equal(r.err_offset, 2);
        assert_int_equal(rtb_ws_error_close_code(r.err), 1002);
        assert_int_equal(r.nrec, 0);
        run_free(&r);
    }
}

static void test_rfc_masked_hello(void **state)
{
    static const unsigned char in[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                       0x7f, 0x9f, 0x4d, 0x51, 0x58};
    run_t r;
    (void)state;

    parse_all_ways(&r, in, sizeof(in), DEFAULT_MAX);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.nrec, 1);
    assert_rec(&r, 0, RTB_WS_OP_TEXT, "Hello", 5);
    assert_int_equal(r.data_events, 1);
    assert_int_equal(r.flag_log[0], RTB_WS_FLAG_FIRST | RTB_WS_FLAG_LAST);
    run_free(&r);
}

/* The RFC's masked pong example ("Hello", same key as the text example). */
static void test_rfc_masked_pong(void **state)
{
    static const unsigned char in[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                       0x7f, 0x9f, 0x4d, 0x51, 0x58};
    run_t r;
    (void)state;

    parse_all_ways(&r, in, sizeof(in), DEFAULT_MAX);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.nrec, 1);
    assert_rec(&r, 0, RTB_WS_OP_PONG, "Hello", 5);
    run_free(&r);
}

/* The RFC's fragmented "Hel" + "lo" and ping "Hello", masked as a client must. */
static void test_rfc_fragmented_and_ping_masked(void **state)
{
    buf_t b = {0};
    run_t r;
    (void)state;

    put_str(&b, 0x01, "Hel");
    put_str(&b, 0x80, "lo");
    put_str(&b, 0x89, "Hello");
    parse_all_ways(&r, b.p, b.n, DEFAULT_MAX);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.nrec, 2);
    assert_rec(&r, 0, RTB_WS_OP_TEXT, "Hello", 5);
    assert_rec(&r, 1, RTB_WS_OP_PING, "Hello", 5);
    assert_int_equal(r.data_events, 2);
    assert_int_equal(r.flag_log[0], RTB_WS_FLAG_FIRST);
    assert_int_equal(r.flag_log[1], RTB_WS_FLAG_LAST);
    run_free(&r);
    buf_free(&b);
}

/* 126 (16-bit) and 127 (64-bit) length forms, as in the RFC's 256-byte and
 * 64KiB binary examples, masked. */
static void test_extended_lengths(void **state)
{
    static const size_t sizes[] = {125, 126, 256, 65535, 65536};
    (void)state;

    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t n = sizes[s];
        unsigned char *payload = malloc(n);
        buf_t b = {0};
        run_t r;

        assert_non_null(payload);
        for (size_t i = 0; i < n; i++) {
            payload[i] = (unsigned char)(i * 7 + s);
        }
        put_frame(&b, 0x82, payload, n);
        if (n == 256) {
            static const unsigned char hdr[] = {0x82, 0xFE, 0x01, 0x00};

            assert_memory_equal(b.p, hdr, sizeof(hdr));
        } else if (n == 65536) {
            static const unsigned char hdr[] = {0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0};

            assert_memory_equal(b.p, hdr, sizeof(hdr));
        }
        parse_all_ways(&r, b.p, b.n, DEFAULT_MAX);
        assert_int_equal(r.err, 0);
        assert_int_equal(r.nrec, 1);
        assert_rec(&r, 0, RTB_WS_OP_BINARY, payload, n);
        run_free(&r);
        buf_free(&b);
        free(payload);
    }
}

/* Non-minimal length encodings are accepted (only the 64-bit top bit is not). */
static void test_nonminimal_lengths_accepted(void **state)
{
    buf_t b = {0};
    run_t r;
    (void)state;

    put_frame_ex(&b, 0x81, 1, LEN_16, "abc", 3);
    put_frame_ex(&b, 0x82, 1, LEN_64, "defg", 4);
    put_frame_ex(&b, 0x81, 1, LEN_64, "", 0);
    parse_all_ways(&r, b.p, b.n, DEFAULT_MAX);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.nrec, 3);
    assert_rec(&r, 0, RTB_WS_OP_TEXT, "abc", 3);
    assert_rec(&r, 1, RTB_WS_OP_BINARY, "defg", 4);
    assert_rec(&r, 2, RTB_WS_OP_TEXT, "", 0);
    run_free(&r);
    buf_free(&b);
}

/* ---- strictness ---------------------------------------------------------- */

typedef struct {
    const char *name;
    const unsigned char *bytes;
    size_t n;
    int err;
    size_t offset; /* stream offset just after the failing byte */
    int close_code;
} strict_case_t;

#define K 0x00, 0x00, 0x00, 0x00 /* an all-zero mask key: payload bytes read as written */

static void test_strictness_table(void **state)
{
    const strict_case_t cases[] = {
        {"unmasked text", BYTES(0x81, 0x01, 'a'), RTB_WS_ERR_UNMASKED, 2, 1002},
        {"unmasked close", BYTES(0x88, 0x00), RTB_WS_ERR_UNMASKED, 2, 1002},
        {"rsv1", BYTES(0xC1, 0x80, K), RTB_WS_ERR_RSV, 1, 1002},
        {"rsv2", BYTES(0xA1, 0x80, K), RTB_WS_ERR_RSV, 1, 1002},
        {"rsv3", BYTES(0x91, 0x80, K), RTB_WS_ERR_RSV, 1, 1002},
        {"rsv1 on ping", BYTES(0xC9, 0x80, K), RTB_WS_ERR_RSV, 1, 1002},
        {"opcode 3", BYTES(0x83, 0x80, K), RTB_WS_ERR_OPCODE, 1, 1002},
        {"opcode 4", BYTES(0x84, 0x80, K), RTB_WS_ERR_OPCODE, 1, 1002},
        {"opcode 5", BYTES(0x85, 0x80, K), RTB_WS_ERR_OPCODE, 1, 1002},
        {"opcode 6", BYTES(0x86, 0x80, K), RTB_WS_ERR_OPCODE, 1, 1002},
        {"opcode 7", BYTES(0x87, 0x80, K), RTB_WS_ERR_OPCODE, 1, 1002},
        {"opcode B", BYTES(0x8B, 0x80, K), RTB_WS_ERR_OPCODE, 1, 1002},
        {"opcode C", BYTES(0x8C, 0x80, K), RTB_WS_ERR_OPCODE, 1, 1002},
        {"opcode D", BYTES(0x8D, 0x80, K), RTB_WS_ERR_OPCODE, 1, 1002},
        {"opcode E", BYTES(0x8E, 0x80, K), RTB_WS_ERR_OPCODE, 1, 1002},
        {"opcode F", BYTES(0x8F, 0x80, K), RTB_WS_ERR_OPCODE, 1, 1002},
        {"opcode 3 inside a message", BYTES(0x01, 0x81, K, 'a', 0x03, 0x80, K), RTB_WS_ERR_OPCODE,
         8, 1002},
        {"ping 126 bytes (16-bit form)", BYTES(0x89, 0xFE, 0x00, 0x7E), RTB_WS_ERR_CONTROL_TOO_LONG,
         2, 1002},
        {"close 64-bit form", BYTES(0x88, 0xFF, 0, 0, 0, 0, 0, 0, 0, 1),
         RTB_WS_ERR_CONTROL_TOO_LONG, 2, 1002},
        {"pong 126", BYTES(0x8A, 0xFE, 0x00, 0x7E), RTB_WS_ERR_CONTROL_TOO_LONG, 2, 1002},
        {"ping FIN=0", BYTES(0x09, 0x80, K), RTB_WS_ERR_CONTROL_FRAGMENTED, 1, 1002},
        {"pong FIN=0", BYTES(0x0A, 0x80, K), RTB_WS_ERR_CONTROL_FRAGMENTED, 1, 1002},
        {"close FIN=0", BYTES(0x08, 0x80, K), RTB_WS_ERR_CONTROL_FRAGMENTED, 1, 1002},
        {"continuation first", BYTES(0x80, 0x81, K, 'a'), RTB_WS_ERR_UNEXPECTED_CONT, 1, 1002},
        {"non-final continuation first", BYTES(0x00, 0x81, K, 'a'), RTB_WS_ERR_UNEXPECTED_CONT, 1,
         1002},
        {"continuation after complete message", BYTES(0x81, 0x81, K, 'a', 0x80, 0x80, K),
         RTB_WS_ERR_UNEXPECTED_CONT, 8, 1002},
        {"text inside fragmented text", BYTES(0x01, 0x81, K, 'a', 0x81, 0x81, K, 'b'),
         RTB_WS_ERR_EXPECTED_CONT, 8, 1002},
        {"binary inside fragmented text", BYTES(0x01, 0x81, K, 'a', 0x02, 0x80, K),
         RTB_WS_ERR_EXPECTED_CONT, 8, 1002},
        {"text after ping inside fragmented binary",
         BYTES(0x02, 0x81, K, 'a', 0x89, 0x80, K, 0x81, 0x80, K), RTB_WS_ERR_EXPECTED_CONT, 14,
         1002},
        {"64-bit length top bit", BYTES(0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0),
         RTB_WS_ERR_LENGTH_TOP_BIT, 3, 1002},
        {"64-bit length all ones",
         BYTES(0x82, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF),
         RTB_WS_ERR_LENGTH_TOP_BIT, 3, 1002},
        {"close payload of 1 byte", BYTES(0x88, 0x81, K, 0x03), RTB_WS_ERR_CLOSE_PAYLOAD_1, 7,
         1002},
        {"close code 999", BYTES(0x88, 0x82, K, 0x03, 0xE7), RTB_WS_ERR_CLOSE_CODE, 8, 1002},
        {"close code 1005", BYTES(0x88, 0x82, K, 0x03, 0xED), RTB_WS_ERR_CLOSE_CODE, 8, 1002},
        {"close reason bad UTF-8", BYTES(0x88, 0x84, K, 0x03, 0xE8, 'a', 0xFF),
         RTB_WS_ERR_CLOSE_REASON_UTF8, 10, 1007},
        {"close reason truncated UTF-8", BYTES(0x88, 0x83, K, 0x03, 0xE8, 0xC3),
         RTB_WS_ERR_CLOSE_REASON_UTF8, 9, 1007},
        {"text 0xFF", BYTES(0x81, 0x83, K, 'a', 0xFF, 'b'), RTB_WS_ERR_INVALID_UTF8, 8, 1007},
        {"text truncated at end", BYTES(0x81, 0x83, K, 'a', 0xE2, 0x82), RTB_WS_ERR_INVALID_UTF8, 9,
         1007},
        {"text bad in second fragment", BYTES(0x01, 0x81, K, 'a', 0x80, 0x82, K, 'b', 0xC0),
         RTB_WS_ERR_INVALID_UTF8, 15, 1007},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const strict_case_t *c = &cases[i];
        run_t r;

        parse_all_ways(&r, c->bytes, c->n, DEFAULT_MAX);
        if (r.err != c->err || r.err_offset != c->offset) {
            fail_msg("%s: got %d at %zu, want %d at %zu", c->name, r.err, r.err_offset, c->err,
                     c->offset);
        }
        assert_int_equal(rtb_ws_error_close_code(r.err), c->close_code);
        run_free(&r);
    }
}

/* A control frame of exactly 125 bytes is fine. */
static void test_control_125(void **state)
{
    unsigned char ping[125], close[125];
    buf_t b = {0};
    run_t r;
    (void)state;

    memset(ping, 'p', sizeof(ping));
    memset(close, 'c', sizeof(close));
    close[0] = 0x03;
    close[1] = 0xE8;
    put_frame(&b, 0x89, ping, sizeof(ping));
    put_frame(&b, 0x8A, ping, sizeof(ping));
    put_frame(&b, 0x88, close, sizeof(close));
    parse_all_ways(&r, b.p, b.n, DEFAULT_MAX);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.nrec, 3);
    assert_rec(&r, 0, RTB_WS_OP_PING, ping, sizeof(ping));
    assert_rec(&r, 1, RTB_WS_OP_PONG, ping, sizeof(ping));
    assert_rec(&r, 2, RTB_WS_OP_CLOSE, close, sizeof(close));
    assert_int_equal(r.rec[2].code, 1000);
    run_free(&r);
    buf_free(&b);
}

/* Control frames may sit between the fragments of a message. */
static void test_interleaved_control(void **state)
{
    buf_t b = {0};
    run_t r;
    unsigned char close[] = {0x03, 0xE8, 'o', 'k'};
    (void)state;

    put_str(&b, 0x01, "He");
    put_str(&b, 0x89, "p1");
    put_str(&b, 0x00, "l");
    put_str(&b, 0x8A, "");
    put_str(&b, 0x89, "p2");
    put_str(&b, 0x00, "");
    put_str(&b, 0x80, "lo");
    put_frame(&b, 0x88, close, sizeof(close));
    parse_all_ways(&r, b.p, b.n, DEFAULT_MAX);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.nrec, 5);
    assert_rec(&r, 0, RTB_WS_OP_PING, "p1", 2);
    assert_rec(&r, 1, RTB_WS_OP_PONG, "", 0);
    assert_rec(&r, 2, RTB_WS_OP_PING, "p2", 2);
    assert_rec(&r, 3, RTB_WS_OP_TEXT, "Hello", 5);
    assert_rec(&r, 4, RTB_WS_OP_CLOSE, close, sizeof(close));
    assert_int_equal(r.rec[4].code, 1000);
    /* "He" FIRST, "l" middle, empty middle fragment skipped, "lo" LAST. */
    assert_int_equal(r.data_events, 3);
    assert_int_equal(r.flag_log[0], RTB_WS_FLAG_FIRST);
    assert_int_equal(r.flag_log[1], 0);
    assert_int_equal(r.flag_log[2], RTB_WS_FLAG_LAST);
    run_free(&r);
    buf_free(&b);
}

/* Empty messages and empty fragments still report start and end. */
static void test_empty_messages(void **state)
{
    buf_t b = {0};
    run_t r;
    (void)state;

    put_str(&b, 0x81, "");
    put_str(&b, 0x02, "");
    put_str(&b, 0x00, "");
    put_str(&b, 0x80, "");
    put_str(&b, 0x01, "x");
    put_str(&b, 0x80, "");
    put_str(&b, 0x88, "");
    parse_all_ways(&r, b.p, b.n, DEFAULT_MAX);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.nrec, 4);
    assert_rec(&r, 0, RTB_WS_OP_TEXT, "", 0);
    assert_rec(&r, 1, RTB_WS_OP_BINARY, "", 0);
    assert_rec(&r, 2, RTB_WS_OP_TEXT, "x", 1);
    assert_rec(&r, 3, RTB_WS_OP_CLOSE, "", 0);
    assert_int_equal(r.rec[3].code, 0);
    assert_int_equal(r.data_events, 5);
    assert_int_equal(r.flag_log[0], RTB_WS_FLAG_FIRST | RTB_WS_FLAG_LAST);
    assert_int_equal(r.flag_log[1], RTB_WS_FLAG_FIRST);
    assert_int_equal(r.flag_log[2], RTB_WS_FLAG_LAST);
    assert_int_equal(r.flag_log[3], RTB_WS_FLAG_FIRST);
    assert_int_equal(r.flag_log[4], RTB_WS_FLAG_LAST);
    run_free(&r);
    buf_free(&b);
}

/* ---- message size limit -------------------------------------------------- */

typedef struct {
    const char *name;
    uint64_t max;
    size_t frag[3]; /* fragment sizes; 0-terminated unless all three are used */
    int lenform;
    int err;
    size_t fail_frag; /* index of the fragment whose header fails */
} limit_case_t;

static void test_message_size_limit(void **state)
{
    static const limit_case_t cases[] = {
        {"single at limit", 10, {10}, LEN_MINIMAL, 0, 0},
        {"single over limit", 10, {11}, LEN_MINIMAL, RTB_WS_ERR_MESSAGE_TOO_BIG, 0},
        {"fragments at limit", 10, {6, 4}, LEN_MINIMAL, 0, 0},
        {"fragments over limit", 10, {6, 5}, LEN_MINIMAL, RTB_WS_ERR_MESSAGE_TOO_BIG, 1},
        {"three fragments over limit", 10, {4, 4, 3}, LEN_MINIMAL, RTB_WS_ERR_MESSAGE_TOO_BIG, 2},
        {"16-bit length over limit", 300, {301}, LEN_MINIMAL, RTB_WS_ERR_MESSAGE_TOO_BIG, 0},
        {"16-bit at limit", 300, {200, 100}, LEN_MINIMAL, 0, 0},
        {"64-bit length over limit", 70000, {70001}, LEN_MINIMAL, RTB_WS_ERR_MESSAGE_TOO_BIG, 0},
        {"64-bit form, small, over", 5, {6}, LEN_64, RTB_WS_ERR_MESSAGE_TOO_BIG, 0},
        {"no limit", 0, {70000, 1}, LEN_MINIMAL, 0, 0},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const limit_case_t *c = &cases[i];
        buf_t b = {0};
        size_t nfrag = 0, total = 0, fail_at = 0;
        unsigned char *payload;
        run_t r;

        while (nfrag < 3 && c->frag[nfrag] > 0) {
            total += c->frag[nfrag++];
        }
        payload = calloc(total, 1);
        assert_non_null(payload);
        for (size_t f = 0, off = 0; f < nfrag; off += c->frag[f], f++) {
            unsigned int b0 = (f == 0 ? RTB_WS_OP_BINARY : 0) | (f == nfrag - 1 ? 0x80u : 0);

            if (f == c->fail_frag) {
                /* The header's length is known after 2, 4 or 10 bytes. */
                size_t hl = (c->lenform == LEN_64 || c->frag[f] > 0xFFFF) ? 10
                            : c->frag[f] >= 126                           ? 4
                                                                          : 2;
                fail_at = b.n + hl;
            }
            put_frame_ex(&b, b0, 1, c->lenform, payload + off, c->frag[f]);
        }
        /* A second message of the same shape must be allowed afresh. */
        if (c->err == 0) {
            buf_t copy = {0};

            buf_put(&copy, b.p, b.n);
            buf_put(&b, copy.p, copy.n);
            buf_free(&copy);
        }
        parse_all_ways(&r, b.p, b.n, c->max);
        if (r.err != c->err) {
            fail_msg("%s: got %d, want %d", c->name, r.err, c->err);
        }
        if (c->err != 0) {
            assert_int_equal(r.err_offset, fail_at);
            assert_int_equal(rtb_ws_error_close_code(r.err), 1009);
        } else {
            assert_int_equal(r.nrec, 2);
            assert_rec(&r, 0, RTB_WS_OP_BINARY, payload, total);
            assert_rec(&r, 1, RTB_WS_OP_BINARY, payload, total);
        }
        run_free(&r);
        buf_free(&b);
        free(payload);
    }
}

/* Control frames do not count against the message limit. */
static void test_limit_ignores_control(void **state)
{
    unsigned char payload[125] = {0};
    buf_t b = {0};
    run_t r;
    (void)state;

    put_frame(&b, 0x02, payload, 3);
    put_frame(&b, 0x89, payload, sizeof(payload));
    put_frame(&b, 0x80, payload, 1);
    parse_all_ways(&r, b.p, b.n, 4);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.nrec, 2);
    assert_int_equal(r.rec[0].op, RTB_WS_OP_PING);
    assert_rec(&r, 1, RTB_WS_OP_BINARY, payload, 4);
    run_free(&r);
    buf_free(&b);
}

/* ---- UTF-8 --------------------------------------------------------------- */

typedef struct {
    const char *name;
    const unsigned char *bytes;
    size_t n;
    int valid;
} utf8_case_t;

static const utf8_case_t utf8_cases[] = {
    {"ascii", BYTES('h', 'i'), 1},
    {"U+00E9", BYTES(0xC3, 0xA9), 1},
    {"U+0080", BYTES(0xC2, 0x80), 1},
    {"U+07FF", BYTES(0xDF, 0xBF), 1},
    {"U+0800", BYTES(0xE0, 0xA0, 0x80), 1},
    {"U+20AC", BYTES(0xE2, 0x82, 0xAC), 1},
    {"U+D7FF", BYTES(0xED, 0x9F, 0xBF), 1},
    {"U+E000", BYTES(0xEE, 0x80, 0x80), 1},
    {"U+FFFF", BYTES(0xEF, 0xBF, 0xBF), 1},
    {"U+10000", BYTES(0xF0, 0x90, 0x80, 0x80), 1},
    {"U+1D11E", BYTES(0xF0, 0x9D, 0x84, 0x9E), 1},
    {"U+10FFFF", BYTES(0xF4, 0x8F, 0xBF, 0xBF), 1},
    {"mixed", BYTES('a', 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9D, 0x84, 0x9E, 'z'), 1},
    {"overlong C0 80", BYTES(0xC0, 0x80), 0},
    {"overlong C1 BF", BYTES(0xC1, 0xBF), 0},
    {"overlong E0 80 80", BYTES(0xE0, 0x80, 0x80), 0},
    {"overlong E0 9F BF", BYTES(0xE0, 0x9F, 0xBF), 0},
    {"overlong F0 8F BF BF", BYTES(0xF0, 0x8F, 0xBF, 0xBF), 0},
    {"surrogate ED A0 80", BYTES(0xED, 0xA0, 0x80), 0},
    {"surrogate ED BF BF", BYTES(0xED, 0xBF, 0xBF), 0},
    {"surrogate pair", BYTES(0xED, 0xA0, 0xBD, 0xED, 0xB2, 0xA9), 0},
    {"above U+10FFFF F4 90 80 80", BYTES(0xF4, 0x90, 0x80, 0x80), 0},
    {"F5", BYTES(0xF5, 0x80, 0x80, 0x80), 0},
    {"FE", BYTES(0xFE), 0},
    {"FF", BYTES(0xFF), 0},
    {"lone continuation", BYTES(0x80), 0},
    {"continuation after ascii", BYTES('a', 0xBF), 0},
    {"lead then ascii", BYTES(0xC3, 0x41), 0},
    {"truncated 2", BYTES(0xC3), 0},
    {"truncated 3", BYTES(0xE2, 0x82), 0},
    {"truncated 4", BYTES(0xF0, 0x9D, 0x84), 0},
    {"valid then truncated", BYTES('o', 'k', 0xE2), 0},
};

static void test_utf8_valid_table(void **state)
{
    (void)state;

    for (size_t i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
        const utf8_case_t *c = &utf8_cases[i];

        if (rtb_ws_utf8_valid(c->bytes, c->n) != c->valid) {
            fail_msg("%s: want %d", c->name, c->valid);
        }
    }
    assert_true(rtb_ws_utf8_valid(NULL, 0));
    assert_true(rtb_ws_utf8_valid((const unsigned char *)"", 0));
}

/* Every UTF-8 case as a text message split into two fragments at every
 * point (and each fragment then fed every way): validity must not depend on
 * where sequences are cut. */
static void test_utf8_across_fragments(void **state)
{
    (void)state;

    for (size_t i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
        const utf8_case_t *c = &utf8_cases[i];

        for (size_t cut = 0; cut <= c->n; cut++) {
            buf_t b = {0};
            run_t r;

            put_frame(&b, 0x01, c->bytes, cut);
            put_str(&b, 0x89, "x");
            put_frame(&b, 0x80, c->bytes + cut, c->n - cut);
            parse_all_ways(&r, b.p, b.n, DEFAULT_MAX);
            if (c->valid) {
                if (r.err != 0) {
                    fail_msg("%s cut at %zu: error %d", c->name, cut, r.err);
                }
                assert_int_equal(r.nrec, 2);
                assert_rec(&r, 1, RTB_WS_OP_TEXT, c->bytes, c->n);
            } else if (r.err != RTB_WS_ERR_INVALID_UTF8) {
                fail_msg("%s cut at %zu: got %d", c->name, cut, r.err);
            }
            run_free(&r);
            buf_free(&b);

            /* The same bytes in a binary message are not checked. */
            put_frame(&b, 0x02, c->bytes, cut);
            put_frame(&b, 0x80, c->bytes + cut, c->n - cut);
            parse_all_ways(&r, b.p, b.n, DEFAULT_MAX);
            assert_int_equal(r.err, 0);
            assert_rec(&r, 0, RTB_WS_OP_BINARY, c->bytes, c->n);
            run_free(&r);
            buf_free(&b);
        }
    }
}

/* A sequence may stay open at the end of a non-final fragment, not the last. */
static void test_utf8_truncated_only_at_end(void **state)
{
    static const unsigned char euro[] = {0xE2, 0x82, 0xAC};
    buf_t b = {0};
    run_t r;
    (void)state;

    put_frame(&b, 0x01, euro, 1);
    put_frame(&b, 0x00, euro + 1, 1);
    put_frame(&b, 0x80, euro + 2, 1);
    parse_all_ways(&r, b.p, b.n, DEFAULT_MAX);
    assert_int_equal(r.err, 0);
    assert_rec(&r, 0, RTB_WS_OP_TEXT, euro, 3);
    run_free(&r);
    buf_free(&b);

    put_frame(&b, 0x01, euro, 1);
    put_frame(&b, 0x80, euro + 1, 1);
    parse_all_ways(&r, b.p, b.n, DEFAULT_MAX);
    assert_int_equal(r.err, RTB_WS_ERR_INVALID_UTF8);
    assert_int_equal(r.err_offset, b.n);
    assert_int_equal(rtb_ws_error_close_code(r.err), 1007);
    run_free(&r);
    buf_free(&b);

    /* A finished message resets the validator: a new message starts clean. */
    put_frame(&b, 0x81, euro, 3);
    put_frame(&b, 0x81, "ok", 2);
    parse_all_ways(&r, b.p, b.n, DEFAULT_MAX);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.nrec, 2);
    run_free(&r);
    buf_free(&b);
}

/* The static incremental validator: state carries over between calls, and
 * the return value points at the failing byte. */
static void test_utf8_feed_incremental(void **state)
{
    static const unsigned char four[] = {0xF0, 0x9D, 0x84, 0x9E};
    static const unsigned char bad[] = {'a', 'b', 0xED, 0xA0, 0x80};
    rtb_ws_utf8_t u;
    (void)state;

    ws_codec_utf8_reset(&u);
    for (size_t i = 0; i < sizeof(four); i++) {
        assert_int_equal(ws_codec_utf8_feed(&u, four + i, 1), 1);
        assert_int_equal(u.need, 3 - i);
    }
    ws_codec_utf8_reset(&u);
    assert_int_equal(ws_codec_utf8_feed(&u, bad, sizeof(bad)), 3);
    ws_codec_utf8_reset(&u);
    assert_int_equal(ws_codec_utf8_feed(&u, bad, 3), 3);
    assert_int_equal(ws_codec_utf8_feed(&u, bad + 3, 2), 0);
}

/* ---- close frames ------------------------------------------------------- */

typedef struct {
    uint16_t code;
    int valid;
} close_code_case_t;

static void test_close_codes(void **state)
{
    static const close_code_case_t cases[] = {
        {0, 0},    {1, 0},    {999, 0},  {1000, 1}, {1001, 1}, {1002, 1},  {1003, 1}, {1004, 0},
        {1005, 0}, {1006, 0}, {1007, 1}, {1008, 1}, {1009, 1}, {1010, 1},  {1011, 1}, {1012, 1},
        {1013, 1}, {1014, 1}, {1015, 0}, {1016, 0}, {1100, 0}, {2000, 0},  {2999, 0}, {3000, 1},
        {3999, 1}, {4000, 1}, {4001, 1}, {4999, 1}, {5000, 0}, {65535, 0},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned char payload[5] = {(unsigned char)(cases[i].code >> 8),
                                    (unsigned char)cases[i].code, 'b', 'y', 'e'};
        buf_t b = {0};
        run_t r;

        if (rtb_ws_close_code_valid(cases[i].code) != cases[i].valid) {
            fail_msg("code %u: want %d", cases[i].code, cases[i].valid);
        }
        put_frame(&b, 0x88, payload, sizeof(payload));
        parse_all_ways(&r, b.p, b.n, DEFAULT_MAX);
        if (cases[i].valid) {
            assert_int_equal(r.err, 0);
            assert_int_equal(r.nrec, 1);
            assert_rec(&r, 0, RTB_WS_OP_CLOSE, payload, sizeof(payload));
            assert_int_equal(r.rec[0].code, cases[i].code);
        } else {
            assert_int_equal(r.err, RTB_WS_ERR_CLOSE_CODE);
            assert_int_equal(rtb_ws_error_close_code(r.err), 1002);
        }
        run_free(&r);
        buf_free(&b);
    }
}

/* The close event exposes code and reason pointing into the parser. */
static void test_close_event_fields(void **state)
{
    static const unsigned char in[] = {0x88, 0x86, 0, 0, 0, 0, 0x0F, 0xA1, 'g', 'o', 0xC3, 0xA9};
    unsigned char buf[sizeof(in)];
    rtb_ws_parser_t p;
    rtb_ws_event_t ev;
    size_t used;
    (void)state;

    memcpy(buf, in, sizeof(in));
    rtb_ws_parser_init(&p, 0);
    assert_int_equal(rtb_ws_parse(&p, buf, sizeof(buf), &used, &ev), RTB_WS_EV_CLOSE);
    assert_int_equal(used, sizeof(buf));
    assert_int_equal(ev.close_code, 4001);
    assert_int_equal(ev.reason_len, 4);
    assert_memory_equal(ev.reason, "go\xC3\xA9", 4);
    assert_ptr_equal(ev.reason, p.control + 2);
    assert_int_equal(ev.len, 6);
    assert_int_equal(rtb_ws_parse(&p, buf + used, 0, &used, &ev), 0);
    assert_int_equal(used, 0);
}

/* ---- streaming behaviour -------------------------------------------------- */

/* Payload is delivered as it arrives, unmasked in the caller's buffer. */
static void test_streaming_chunks_in_place(void **state)
{
    unsigned char payload[256];
    buf_t b = {0};
    rtb_ws_parser_t p;
    rtb_ws_event_t ev;
    size_t used;
    (void)state;

    for (size_t i = 0; i < sizeof(payload); i++) {
        payload[i] = (unsigned char)i;
    }
    put_frame(&b, 0x82, payload, sizeof(payload)); /* 4 header + 4 key + 256 */
    rtb_ws_parser_init(&p, DEFAULT_MAX);

    assert_int_equal(rtb_ws_parse(&p, b.p, 5, &used, &ev), 0);
    assert_int_equal(used, 5);
    assert_int_equal(rtb_ws_parse(&p, b.p + 5, 3, &used, &ev), 0);
    assert_int_equal(used, 3);

    assert_int_equal(rtb_ws_parse(&p, b.p + 8, 100, &used, &ev), RTB_WS_EV_DATA);
    assert_int_equal(used, 100);
    assert_ptr_equal(ev.data, b.p + 8);
    assert_int_equal(ev.len, 100);
    assert_int_equal(ev.flags, RTB_WS_FLAG_FIRST);
    assert_int_equal(ev.opcode, RTB_WS_OP_BINARY);
    assert_memory_equal(b.p + 8, payload, 100);

    /* More than the frame holds: the event stops at the frame's end. */
    put_str(&b, 0x81, "next");
    assert_int_equal(rtb_ws_parse(&p, b.p + 108, b.n - 108, &used, &ev), RTB_WS_EV_DATA);
    assert_int_equal(used, 156);
    assert_ptr_equal(ev.data, b.p + 108);
    assert_int_equal(ev.len, 156);
    assert_int_equal(ev.flags, RTB_WS_FLAG_LAST);
    assert_memory_equal(ev.data, payload + 100, 156);

    assert_int_equal(rtb_ws_parse(&p, b.p + 264, b.n - 264, &used, &ev), RTB_WS_EV_DATA);
    assert_int_equal(used, b.n - 264);
    assert_int_equal(ev.flags, RTB_WS_FLAG_FIRST | RTB_WS_FLAG_LAST);
    assert_memory_equal(ev.data, "next", 4);
    assert_int_equal(rtb_ws_parse(&p, b.p + b.n, 0, &used, &ev), 0);
    buf_free(&b);
}

/* An empty-payload frame is reported by the call that reads its last header
 * byte, even if no further byte ever comes. */
static void test_empty_frame_reported_at_once(void **state)
{
    unsigned char in[] = {0x89, 0x80, 1, 2, 3, 4};
    rtb_ws_parser_t p;
    rtb_ws_event_t ev;
    size_t used;
    (void)state;

    rtb_ws_parser_init(&p, 0);
    assert_int_equal(rtb_ws_parse(&p, in, sizeof(in), &used, &ev), RTB_WS_EV_PING);
    assert_int_equal(used, sizeof(in));
    assert_int_equal(ev.len, 0);
}

static void test_bad_arguments_and_sticky_error(void **state)
{
    unsigned char in[] = {0x81, 0x01, 'a'};
    rtb_ws_parser_t p;
    rtb_ws_event_t ev;
    size_t used = 99;
    (void)state;

    rtb_ws_parser_init(&p, 0);
    assert_int_equal(rtb_ws_parse(NULL, in, 1, &used, &ev), RTB_WS_ERR_ARGS);
    assert_int_equal(used, 0);
    assert_int_equal(rtb_ws_parse(&p, in, 1, NULL, &ev), RTB_WS_ERR_ARGS);
    assert_int_equal(rtb_ws_parse(&p, in, 1, &used, NULL), RTB_WS_ERR_ARGS);
    assert_int_equal(rtb_ws_parse(&p, NULL, 1, &used, &ev), RTB_WS_ERR_ARGS);
    assert_int_equal(rtb_ws_parse(&p, NULL, 0, &used, &ev), 0);
    assert_int_equal(used, 0);

    assert_int_equal(rtb_ws_parse(&p, in, sizeof(in), &used, &ev), RTB_WS_ERR_UNMASKED);
    assert_int_equal(used, 2);
    assert_int_equal(rtb_ws_parse(&p, in + 2, 1, &used, &ev), RTB_WS_ERR_UNMASKED);
    assert_int_equal(used, 0);

    /* Re-initialising clears it. */
    rtb_ws_parser_init(&p, 0);
    assert_int_equal(p.error, 0);
}

/* ---- error mapping -------------------------------------------------------- */

typedef struct {
    int err;
    int close_code;
} err_map_case_t;

static void test_error_close_code_map(void **state)
{
    static const err_map_case_t cases[] = {
        {RTB_WS_ERR_ARGS, 1011},
        {RTB_WS_ERR_UNMASKED, 1002},
        {RTB_WS_ERR_RSV, 1002},
        {RTB_WS_ERR_OPCODE, 1002},
        {RTB_WS_ERR_CONTROL_TOO_LONG, 1002},
        {RTB_WS_ERR_CONTROL_FRAGMENTED, 1002},
        {RTB_WS_ERR_UNEXPECTED_CONT, 1002},
        {RTB_WS_ERR_EXPECTED_CONT, 1002},
        {RTB_WS_ERR_LENGTH_TOP_BIT, 1002},
        {RTB_WS_ERR_MESSAGE_TOO_BIG, 1009},
        {RTB_WS_ERR_INVALID_UTF8, 1007},
        {RTB_WS_ERR_CLOSE_PAYLOAD_1, 1002},
        {RTB_WS_ERR_CLOSE_CODE, 1002},
        {RTB_WS_ERR_CLOSE_REASON_UTF8, 1007},
        {-1000, 1011},
        {0, 0},
        {RTB_WS_EV_DATA, 0},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *msg = rtb_ws_strerror(cases[i].err);

        assert_int_equal(rtb_ws_error_close_code(cases[i].err), cases[i].close_code);
        assert_non_null(msg);
        if (cases[i].err < 0 && cases[i].err > -1000) {
            assert_string_not_equal(msg, "unknown error");
        }
        if (cases[i].close_code != 0) {
            assert_true(rtb_ws_close_code_valid((uint16_t)cases[i].close_code));
        }
    }
    /* Every error has its own message. */
    for (int a = RTB_WS_ERR_CLOSE_REASON_UTF8; a <= RTB_WS_ERR_ARGS; a++) {
        for (int b = a + 1; b <= RTB_WS_ERR_ARGS; b++) {
            assert_string_not_equal(rtb_ws_strerror(a), rtb_ws_strerror(b));
        }
    }
}

/* ---- encoder -------------------------------------------------------------- */

typedef struct {
    int opcode;
    int fin;
    uint64_t len;
    const unsigned char *want;
    size_t want_n; /* 0: the call must refuse */
} header_case_t;

#define NONE NULL, 0

static void test_frame_header_table(void **state)
{
    const header_case_t cases[] = {
        {RTB_WS_OP_TEXT, 1, 5, BYTES(0x81, 0x05)},
        {RTB_WS_OP_TEXT, 0, 3, BYTES(0x01, 0x03)},
        {RTB_WS_OP_CONTINUATION, 1, 2, BYTES(0x80, 0x02)},
        {RTB_WS_OP_BINARY, 1, 0, BYTES(0x82, 0x00)},
        {RTB_WS_OP_BINARY, 1, 125, BYTES(0x82, 0x7D)},
        {RTB_WS_OP_BINARY, 1, 126, BYTES(0x82, 0x7E, 0x00, 0x7E)},
        {RTB_WS_OP_BINARY, 1, 256, BYTES(0x82, 0x7E, 0x01, 0x00)},
        {RTB_WS_OP_BINARY, 1, 65535, BYTES(0x82, 0x7E, 0xFF, 0xFF)},
        {RTB_WS_OP_BINARY, 1, 65536, BYTES(0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0)},
        {RTB_WS_OP_BINARY, 1, UINT64_C(0x7FFFFFFFFFFFFFFF),
         BYTES(0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF)},
        {RTB_WS_OP_PING, 1, 5, BYTES(0x89, 0x05)},
        {RTB_WS_OP_PONG, 1, 125, BYTES(0x8A, 0x7D)},
        {RTB_WS_OP_CLOSE, 1, 0, BYTES(0x88, 0x00)},
        {RTB_WS_OP_BINARY, 1, UINT64_C(0x8000000000000000), NONE},
        {RTB_WS_OP_PING, 1, 126, NONE},
        {RTB_WS_OP_CLOSE, 0, 2, NONE},
        {3, 1, 0, NONE},
        {0xB, 1, 0, NONE},
        {-1, 1, 0, NONE},
        {0x11, 1, 0, NONE},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned char out[RTB_WS_MAX_HEADER + 1];
        size_t n;

        memset(out, 0xEE, sizeof(out));
        n = rtb_ws_frame_header(out, cases[i].opcode, cases[i].fin, cases[i].len);
        assert_int_equal(n, cases[i].want_n);
        if (n > 0) {
            assert_memory_equal(out, cases[i].want, n);
        } else {
            assert_int_equal(out[0], 0xEE);
        }
        assert_int_equal(out[RTB_WS_MAX_HEADER], 0xEE);
    }
}

/*
 * Turn a server frame (header from rtb_ws_frame_header + payload) into the
 * client frame the parser expects, by setting MASK and inserting KEY.
 */
static void client_from_server(buf_t *out, const unsigned char *hdr, size_t hl,
                               const unsigned char *payload, size_t n)
{
    unsigned char h[RTB_WS_MAX_HEADER];

    memcpy(h, hdr, hl);
    h[1] |= 0x80;
    buf_put(out, h, hl);
    buf_put(out, KEY, 4);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = payload[i] ^ KEY[i & 3];

        buf_put(out, &c, 1);
    }
}

static void test_encoder_round_trip(void **state)
{
    static const size_t sizes[] = {0, 1, 125, 126, 127, 1000, 65535, 65536, 70000};
    (void)state;

    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t n = sizes[s];
        unsigned char *payload = malloc(n + 1);
        unsigned char hdr[RTB_WS_MAX_HEADER];
        size_t hl, half = n / 2;
        buf_t b = {0};
        run_t r;

        assert_non_null(payload);
        for (size_t i = 0; i < n; i++) {
            payload[i] = (unsigned char)('a' + i % 26);
        }
        /* One whole text message, then the same as two fragments. */
        hl = rtb_ws_frame_header(hdr, RTB_WS_OP_TEXT, 1, n);
        assert_true(hl == 2 || hl == 4 || hl == 10);
        client_from_server(&b, hdr, hl, payload, n);
        hl = rtb_ws_frame_header(hdr, RTB_WS_OP_BINARY, 0, half);
        client_from_server(&b, hdr, hl, payload, half);
        hl = rtb_ws_frame_header(hdr, RTB_WS_OP_CONTINUATION, 1, n - half);
        client_from_server(&b, hdr, hl, payload + half, n - half);
        parse_all_ways(&r, b.p, b.n, DEFAULT_MAX);
        assert_int_equal(r.err, 0);
        assert_int_equal(r.nrec, 2);
        assert_rec(&r, 0, RTB_WS_OP_TEXT, payload, n);
        assert_rec(&r, 1, RTB_WS_OP_BINARY, payload, n);
        run_free(&r);
        buf_free(&b);
        free(payload);
    }
}

typedef struct {
    const char *name;
    uint16_t code;
    const char *reason;
    size_t want_len;
} close_payload_case_t;

static void test_close_payload(void **state)
{
    static char ascii200[201], e_acute70[141], euro50[151], a_euro50[152];
    close_payload_case_t cases[] = {
        {"no status", 0, "ignored", 0},
        {"code only", 1000, NULL, 2},
        {"empty reason", 1001, "", 2},
        {"short reason", 4003, "board forbidden", 17},
        {"ascii cut at 123", 1011, ascii200, 125},
        {"2-byte chars cut before straddling one", 1000, e_acute70, 124},
        {"3-byte chars fit exactly", 1000, euro50, 125},
        {"3-byte chars after 1 byte", 1000, a_euro50, 123},
        {"invalid reason dropped", 1002, "bad\xFF", 2},
    };
    (void)state;

    memset(ascii200, 'x', 200);
    for (int i = 0; i < 70; i++) {
        memcpy(e_acute70 + 2 * i, "\xC3\xA9", 2);
    }
    for (int i = 0; i < 50; i++) {
        memcpy(euro50 + 3 * i, "\xE2\x82\xAC", 3);
        memcpy(a_euro50 + 1 + 3 * i, "\xE2\x82\xAC", 3);
    }
    a_euro50[0] = 'a';

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const close_payload_case_t *c = &cases[i];
        unsigned char out[RTB_WS_MAX_CONTROL_PAYLOAD];
        unsigned char hdr[RTB_WS_MAX_HEADER];
        size_t n, hl;
        buf_t b = {0};
        run_t r;

        n = rtb_ws_close_payload(out, c->code, c->reason);
        if (n != c->want_len) {
            fail_msg("%s: length %zu, want %zu", c->name, n, c->want_len);
        }
        if (n >= 2) {
            assert_int_equal((out[0] << 8) | out[1], c->code);
            assert_memory_equal(out + 2, c->reason, n - 2);
        }
        /* What the server would send parses back to the same close. */
        hl = rtb_ws_frame_header(hdr, RTB_WS_OP_CLOSE, 1, n);
        assert_int_equal(hl, 2);
        client_from_server(&b, hdr, hl, out, n);
        parse_all_ways(&r, b.p, b.n, DEFAULT_MAX);
        assert_int_equal(r.err, 0);
        assert_rec(&r, 0, RTB_WS_OP_CLOSE, out, n);
        assert_int_equal(r.rec[0].code, c->code);
        run_free(&r);
        buf_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_unmasked_examples_rejected),
        cmocka_unit_test(test_rfc_masked_hello),
        cmocka_unit_test(test_rfc_masked_pong),
        cmocka_unit_test(test_rfc_fragmented_and_ping_masked),
        cmocka_unit_test(test_extended_lengths),
        cmocka_unit_test(test_nonminimal_lengths_accepted),
        cmocka_unit_test(test_strictness_table),
        cmocka_unit_test(test_control_125),
        cmocka_unit_test(test_interleaved_control),
        cmocka_unit_test(test_empty_messages),
        cmocka_unit_test(test_message_size_limit),
        cmocka_unit_test(test_limit_ignores_control),
        cmocka_unit_test(test_utf8_valid_table),
        cmocka_unit_test(test_utf8_across_fragments),
        cmocka_unit_test(test_utf8_truncated_only_at_end),
        cmocka_unit_test(test_utf8_feed_incremental),
        cmocka_unit_test(test_close_codes),
        cmocka_unit_test(test_close_event_fields),
        cmocka_unit_test(test_streaming_chunks_in_place),
        cmocka_unit_test(test_empty_frame_reported_at_once),
        cmocka_unit_test(test_bad_arguments_and_sticky_error),
        cmocka_unit_test(test_error_close_code_map),
        cmocka_unit_test(test_frame_header_table),
        cmocka_unit_test(test_encoder_round_trip),
        cmocka_unit_test(test_close_payload),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
