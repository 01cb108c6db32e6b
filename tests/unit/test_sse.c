/*
 * Unit tests for rtb_sse: table-driven encoding cases checked byte for byte
 * and through a reference parser written from the WHATWG "Server-sent events"
 * processing model; exact-size buffers so ASan sees any overflow; cursor
 * parsing and formatting.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/rtb_ids.c"
#include "../../src/rtb_sse.c"

/* ---- a reference client: the WHATWG event stream interpretation ---- */

#define REF_MAX_MSGS 8
#define REF_MAX 4096

typedef struct {
    char data[REF_MAX];
    size_t data_len;
    char event[128];
    char last_id[128];
} ref_msg_t;

typedef struct {
    ref_msg_t msgs[REF_MAX_MSGS];
    int count;
    char last_id[128]; /* the last event id buffer, also when nothing was dispatched */
    long retry;        /* -1 when never set */
    char data[REF_MAX];
    size_t data_len;
    char event[128];
} ref_t;

static void ref_line(ref_t *r, const char *line, size_t n)
{
    const char *colon;
    size_t flen;
    const char *val;
    size_t vlen;

    if (n == 0) { /* dispatch */
        if (r->data_len == 0) {
            r->event[0] = '\0';
            return;
        }
        assert_true(r->count < REF_MAX_MSGS);
        ref_msg_t *m = &r->msgs[r->count++];
        memcpy(m->data, r->data, r->data_len - 1); /* drop the last LF */
        m->data_len = r->data_len - 1;
        strcpy(m->event, r->event[0] ? r->event : "message");
        strcpy(m->last_id, r->last_id);
        r->data_len = 0;
        r->event[0] = '\0';
        return;
    }
    if (line[0] == ':')
        return;
    colon = memchr(line, ':', n);
    if (colon) {
        flen = (size_t)(colon - line);
        val = colon + 1;
        vlen = n - flen - 1;
        if (vlen > 0 && val[0] == ' ') {
            val++;
            vlen--;
        }
    } else {
        flen = n;
        val = "";
        vlen = 0;
    }
    if (flen == 4 && memcmp(line, "data", 4) == 0) {
        assert_true(r->data_len + vlen + 1 <= REF_MAX);
        memcpy(r->data + r->data_len, val, vlen);
        r->data_len += vlen;
        r->data[r->data_len++] = '\n';
    } else if (flen == 5 && memcmp(line, "event", 5) == 0) {
        assert_true(vlen < sizeof(r->event));
        memcpy(r->event, val, vlen);
        r->event[vlen] = '\0';
    } else if (flen == 2 && memcmp(line, "id", 2) == 0) {
        if (!memchr(val, '\0', vlen)) {
            assert_true(vlen < sizeof(r->last_id));
            memcpy(r->last_id, val, vlen);
            r->last_id[vlen] = '\0';
        }
    } else if (flen == 5 && memcmp(line, "retry", 5) == 0) {
        long v = 0;
        size_t i;
        for (i = 0; i < vlen && val[i] >= '0' && val[i] <= '9'; i++)
            v = v * 10 + (val[i] - '0');
        if (vlen > 0 && i == vlen)
            r->retry = v;
    }
}

/* Feeds a whole stream; lines end at CRLF, LF or CR. An unfinished line is an error here. */
static void ref_parse(ref_t *r, const char *s, size_t n)
{
    size_t start = 0;
    memset(r, 0, sizeof(*r));
    r->retry = -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\r' && s[i] != '\n')
            continue;
        ref_line(r, s + start, i - start);
        if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
            i++;
        start = i + 1;
    }
    assert_int_equal(start, n);
}

/* The data a client sees: each CR, LF or CRLF becomes one LF. */
static size_t normalize_breaks(const char *s, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r') {
            out[k++] = '\n';
            if (i + 1 < n && s[i + 1] == '\n')
                i++;
        } else {
            out[k++] = s[i];
        }
    }
    return k;
}

/* ---- encoding ---- */

typedef struct {
    const char *id;
    const char *event;
    const char *data;
    size_t len; /* (size_t)-1: strlen(data) */
    const char *want;
    size_t want_len; /* 0: strlen(want) */
} enc_case_t;

#define L ((size_t)-1)

static const enc_case_t enc_cases[] = {
    {"1", "task_created", "{\"id\":1}", L, "id: 1\nevent: task_created\ndata: {\"id\":1}\n\n", 0},
    {NULL, NULL, "one line", L, "data: one line\n\n", 0},
    {NULL, NULL, "a\nb", L, "data: a\ndata: b\n\n", 0},
    {NULL, NULL, "a\rb", L, "data: a\ndata: b\n\n", 0},
    {NULL, NULL, "a\r\nb", L, "data: a\ndata: b\n\n", 0},
    {NULL, NULL, "a\n\rb", L, "data: a\ndata: \ndata: b\n\n", 0},
    {NULL, NULL, "a\r\n\rb\n\nc\r", L, "data: a\ndata: \ndata: b\ndata: \ndata: c\ndata: \n\n", 0},
    {NULL, NULL, "a\n", L, "data: a\ndata: \n\n", 0},
    {NULL, NULL, "a\r\n", L, "data: a\ndata: \n\n", 0},
    {NULL, NULL, "\r\n", L, "data: \ndata: \n\n", 0},
    {NULL, NULL, "\n", L, "data: \ndata: \n\n", 0},
    {NULL, NULL, "\r\r", L, "data: \ndata: \ndata: \n\n", 0},
    {NULL, NULL, "", 0, "data: \n\n", 0},
    {NULL, NULL, " lead", L, "data:  lead\n\n", 0},
    {NULL, NULL, "a: b", L, "data: a: b\n\n", 0},
    {NULL, NULL, ": not a comment", L, "data: : not a comment\n\n", 0},
    {NULL, NULL, "a\0b", 3, "data: a\0b\n\n", 11},
    {NULL, NULL, "abc", 2, "data: ab\n\n", 0},
    {"7", NULL, NULL, 0, "id: 7\n\n", 0},
    {"", NULL, "x", L, "id: \ndata: x\n\n", 0},
    {NULL, "ping", "x", L, "event: ping\ndata: x\n\n", 0},
    {NULL, "", "x", L, "event: \ndata: x\n\n", 0},
    {"a:12,b:7", "task_moved", "{}", L, "id: a:12,b:7\nevent: task_moved\ndata: {}\n\n", 0},
    {"\xc3\xa9", NULL, "\xe2\x9c\x93", L, "id: \xc3\xa9\ndata: \xe2\x9c\x93\n\n", 0},
};

static void check_encode_case(size_t i, const enc_case_t *c)
{
    size_t len = c->len == L ? strlen(c->data) : c->len;
    size_t want_len = c->want_len ? c->want_len : strlen(c->want);

    /* Measuring writes nothing. */
    size_t need = rtb_sse_encode(NULL, 0, c->id, c->event, c->data, len);
    if (need != want_len)
        fail_msg("case %zu: needs %zu, expected %zu", i, need, want_len);

    /* Exact size: ASan flags any byte past the end. */
    char *buf = malloc(need);
    assert_non_null(buf);
    assert_int_equal(rtb_sse_encode(buf, need, c->id, c->event, c->data, len), need);
    if (memcmp(buf, c->want, need) != 0)
        fail_msg("case %zu: output differs", i);

    /* The reference client gets the data back, breaks turned into LF. */
    ref_t *ref = malloc(sizeof(*ref));
    assert_non_null(ref);
    ref_parse(ref, buf, need);
    if (c->data) {
        char norm[256];
        assert_true(len < sizeof(norm));
        size_t nl = normalize_breaks(c->data, len, norm);
        assert_int_equal(ref->count, 1);
        assert_int_equal(ref->msgs[0].data_len, nl);
        assert_memory_equal(ref->msgs[0].data, norm, nl);
        assert_string_equal(ref->msgs[0].event, c->event && *c->event ? c->event : "message");
        assert_string_equal(ref->msgs[0].last_id, c->id ? c->id : "");
    } else {
        assert_int_equal(ref->count, 0);
    }
    assert_string_equal(ref->last_id, c->id ? c->id : "");
    free(ref);
    free(buf);

    /* One byte short: the size comes back and nothing is written. */
    if (need > 0) {
        buf = malloc(need - 1 + 1); /* +1: the sentinel stays inside the allocation */
        assert_non_null(buf);
        memset(buf, '#', need);
        assert_int_equal(rtb_sse_encode(buf, need - 1, c->id, c->event, c->data, len), need);
        for (size_t k = 0; k < need; k++)
            assert_int_equal(buf[k], '#');
        free(buf);
    }
}

static void test_encode_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(enc_cases) / sizeof(enc_cases[0]); i++)
        check_encode_case(i, &enc_cases[i]);
}

static void test_encode_refused(void **state)
{
    (void)state;
    char buf[64];
    memset(buf, '#', sizeof(buf));
    assert_int_equal(rtb_sse_encode(buf, sizeof(buf), "1\n2", NULL, "x", 1), 0);
    assert_int_equal(rtb_sse_encode(buf, sizeof(buf), "1\r", NULL, "x", 1), 0);
    assert_int_equal(rtb_sse_encode(buf, sizeof(buf), "1", "a\nb", "x", 1), 0);
    assert_int_equal(rtb_sse_encode(buf, sizeof(buf), "1", "\r", "x", 1), 0);
    assert_int_equal(rtb_sse_encode(buf, sizeof(buf), "1", NULL, NULL, 3), 0);
    assert_int_equal(rtb_sse_encode(buf, sizeof(buf), NULL, NULL, NULL, 0), 0);
    for (size_t k = 0; k < sizeof(buf); k++)
        assert_int_equal(buf[k], '#');
}

/* xorshift64*: fixed seed, so a failure replays. */
static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

/* Random data rich in breaks, colons, spaces and NULs survives the round trip. */
static void test_encode_random_round_trip(void **state)
{
    (void)state;
    static const char alphabet[] = {'a', 'b', ' ', ':', '\r', '\n', '\0', '\xc3', '\xa9', '{'};
    char data[200], norm[200], id[16];

    for (int iter = 0; iter < 3000; iter++) {
        size_t len = (size_t)(rng() % sizeof(data));
        for (size_t i = 0; i < len; i++)
            data[i] = alphabet[rng() % sizeof(alphabet)];
        snprintf(id, sizeof(id), "%d", iter);

        size_t need = rtb_sse_encode(NULL, 0, id, "ev", data, len);
        assert_true(need > 0);
        char *buf = malloc(need);
        assert_non_null(buf);
        assert_int_equal(rtb_sse_encode(buf, need, id, "ev", data, len), need);

        ref_t *ref = malloc(sizeof(*ref));
        assert_non_null(ref);
        ref_parse(ref, buf, need);
        size_t nl = normalize_breaks(data, len, norm);
        assert_int_equal(ref->count, 1);
        assert_int_equal(ref->msgs[0].data_len, nl);
        assert_memory_equal(ref->msgs[0].data, norm, nl);
        assert_string_equal(ref->msgs[0].last_id, id);
        assert_string_equal(ref->msgs[0].event, "ev");
        free(ref);
        free(buf);
    }
}

/* Messages concatenated in one stream stay separate. */
static void test_encode_stream(void **state)
{
    (void)state;
    char buf[512];
    size_t pos = 0;
    pos += rtb_sse_retry(buf + pos, sizeof(buf) - pos, 2500);
    static const char connected[] = "{\"type\":\"connected\",\"lastEventId\":4}";
    pos +=
        rtb_sse_encode(buf + pos, sizeof(buf) - pos, NULL, NULL, connected, sizeof(connected) - 1);
    pos += rtb_sse_comment(buf + pos, sizeof(buf) - pos, "heartbeat");
    pos += rtb_sse_encode(buf + pos, sizeof(buf) - pos, "5", "task_created", "{\"id\":5}", 8);
    pos += rtb_sse_encode(buf + pos, sizeof(buf) - pos, "6", NULL, NULL, 0);
    pos += rtb_sse_encode(buf + pos, sizeof(buf) - pos, "7", "task_deleted", "", 0);
    assert_true(pos < sizeof(buf));

    ref_t *ref = malloc(sizeof(*ref));
    assert_non_null(ref);
    ref_parse(ref, buf, pos);
    assert_int_equal(ref->retry, 2500);
    assert_int_equal(ref->count, 3);
    assert_string_equal(ref->msgs[0].event, "message");
    assert_string_equal(ref->msgs[0].last_id, "");
    assert_int_equal(ref->msgs[0].data_len, sizeof(connected) - 1);
    assert_memory_equal(ref->msgs[0].data, connected, sizeof(connected) - 1);
    assert_string_equal(ref->msgs[1].event, "task_created");
    assert_string_equal(ref->msgs[1].last_id, "5");
    /* The data-less block moved the id on without a message. */
    assert_string_equal(ref->msgs[2].last_id, "7");
    assert_string_equal(ref->msgs[2].event, "task_deleted");
    assert_int_equal(ref->msgs[2].data_len, 0);
    assert_string_equal(ref->last_id, "7");
    free(ref);
}

/* ---- comments and retry ---- */

typedef struct {
    const char *text;
    const char *want;
} comment_case_t;

static const comment_case_t comment_cases[] = {
    {"heartbeat", ": heartbeat\n\n"}, {"", ": \n\n"}, {NULL, ": \n\n"}, {"a\nb", ": a\n: b\n\n"},
    {"a\r\nb\r", ": a\n: b\n: \n\n"},
};

/* Checks an encoder's output against want, with exact and short buffers. */
static void check_exact(size_t need, const char *want, size_t (*enc)(char *, size_t, const void *),
                        const void *arg)
{
    size_t want_len = strlen(want);
    assert_int_equal(need, want_len);
    char *buf = malloc(need);
    assert_non_null(buf);
    assert_int_equal(enc(buf, need, arg), need);
    assert_memory_equal(buf, want, need);
    memset(buf, '#', need);
    assert_int_equal(enc(buf, need - 1, arg), need);
    for (size_t k = 0; k < need; k++)
        assert_int_equal(buf[k], '#');
    free(buf);
}

static size_t enc_comment(char *out, size_t cap, const void *arg)
{
    return rtb_sse_comment(out, cap, arg);
}

static size_t enc_retry(char *out, size_t cap, const void *arg)
{
    return rtb_sse_retry(out, cap, *(const unsigned *)arg);
}

static void test_comment(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(comment_cases) / sizeof(comment_cases[0]); i++) {
        const comment_case_t *c = &comment_cases[i];
        check_exact(rtb_sse_comment(NULL, 0, c->text), c->want, enc_comment, c->text);
        ref_t *ref = malloc(sizeof(*ref));
        assert_non_null(ref);
        ref_parse(ref, c->want, strlen(c->want));
        assert_int_equal(ref->count, 0);
        free(ref);
    }
}

static void test_retry(void **state)
{
    (void)state;
    static const struct {
        unsigned ms;
        const char *want;
    } cases[] = {
        {0, "retry: 0\n\n"},
        {7, "retry: 7\n\n"},
        {3000, "retry: 3000\n\n"},
        {UINT_MAX, "retry: 4294967295\n\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        check_exact(rtb_sse_retry(NULL, 0, cases[i].ms), cases[i].want, enc_retry, &cases[i].ms);
        ref_t *ref = malloc(sizeof(*ref));
        assert_non_null(ref);
        ref_parse(ref, cases[i].want, strlen(cases[i].want));
        assert_int_equal(ref->retry, (long)cases[i].ms);
        assert_int_equal(ref->count, 0);
        free(ref);
    }
}

/* ---- cursors ---- */

typedef struct {
    const char *s;
    int rc;
    uint64_t v;
} id_case_t;

static const id_case_t id_cases[] = {
    {"0", RTB_SSE_OK, 0},
    {"1", RTB_SSE_OK, 1},
    {"12", RTB_SSE_OK, 12},
    {"9007199254740991", RTB_SSE_OK, 9007199254740991ull},
    {"9007199254740992", RTB_SSE_ERANGE, 0},
    {"10000000000000000", RTB_SSE_ERANGE, 0},
    {"18446744073709551616", RTB_SSE_ERANGE, 0},
    {"", RTB_SSE_EEMPTY, 0},
    {"00", RTB_SSE_ESYNTAX, 0},
    {"012", RTB_SSE_ESYNTAX, 0},
    {"+1", RTB_SSE_ESYNTAX, 0},
    {"-1", RTB_SSE_ESYNTAX, 0},
    {" 1", RTB_SSE_ESYNTAX, 0},
    {"1 ", RTB_SSE_ESYNTAX, 0},
    {"1\t", RTB_SSE_ESYNTAX, 0},
    {"1.5", RTB_SSE_ESYNTAX, 0},
    {"1e3", RTB_SSE_ESYNTAX, 0},
    {"0x10", RTB_SSE_ESYNTAX, 0},
    {"a:1", RTB_SSE_ESYNTAX, 0},
    {"\xef\xbc\x91", RTB_SSE_ESYNTAX, 0}, /* FULLWIDTH DIGIT ONE */
};

static void test_parse_id(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(id_cases) / sizeof(id_cases[0]); i++) {
        uint64_t v = 777;
        int rc = rtb_sse_parse_id(id_cases[i].s, &v);
        if (rc != id_cases[i].rc)
            fail_msg("case %zu \"%s\": rc %d, expected %d", i, id_cases[i].s, rc, id_cases[i].rc);
        assert_int_equal(v, rc == RTB_SSE_OK ? id_cases[i].v : 777);
    }
    uint64_t v;
    assert_int_equal(rtb_sse_parse_id(NULL, &v), RTB_SSE_EEMPTY);
    assert_int_equal(rtb_sse_parse_id("1", NULL), RTB_SSE_EINVAL);
}

#define B64 "b123456789012345678901234567890123456789012345678901234567890123"

typedef struct {
    const char *s;
    int rc;
    int n;
    const char *boards[3];
    uint64_t ids[3];
} cursor_case_t;

static const cursor_case_t cursor_cases[] = {
    {"a:12,b:7", RTB_SSE_OK, 2, {"a", "b"}, {12, 7}},
    {"a:0", RTB_SSE_OK, 1, {"a"}, {0}},
    {"b:7,a:12", RTB_SSE_OK, 2, {"b", "a"}, {7, 12}},
    {"team-1:3,team_2:9007199254740991,x:1",
     RTB_SSE_OK,
     3,
     {"team-1", "team_2", "x"},
     {3, 9007199254740991ull, 1}},
    {B64 ":5", RTB_SSE_OK, 1, {B64}, {5}},
    {"", RTB_SSE_EEMPTY, 0, {0}, {0}},
    {"a", RTB_SSE_ESYNTAX, 0, {0}, {0}},
    {"12", RTB_SSE_ESYNTAX, 0, {0}, {0}},
    {"a:", RTB_SSE_ESYNTAX, 0, {0}, {0}},
    {"a:1,", RTB_SSE_ESYNTAX, 0, {0}, {0}},
    {",a:1", RTB_SSE_ESYNTAX, 0, {0}, {0}},
    {"a:1,,b:2", RTB_SSE_ESYNTAX, 0, {0}, {0}},
    {",", RTB_SSE_ESYNTAX, 0, {0}, {0}},
    {"a:1:2", RTB_SSE_ESYNTAX, 0, {0}, {0}},
    {"a:1;b:2", RTB_SSE_ESYNTAX, 0, {0}, {0}},
    {"a: 1", RTB_SSE_ESYNTAX, 0, {0}, {0}},
    {"a:1 ", RTB_SSE_ESYNTAX, 0, {0}, {0}},
    {"a:01", RTB_SSE_ESYNTAX, 0, {0}, {0}},
    {"a:-1", RTB_SSE_ESYNTAX, 0, {0}, {0}},
    {"a:+1", RTB_SSE_ESYNTAX, 0, {0}, {0}},
    {"a:9007199254740992", RTB_SSE_ERANGE, 0, {0}, {0}},
    {"a:1,b:99999999999999999999", RTB_SSE_ERANGE, 0, {0}, {0}},
    {":1", RTB_SSE_EBOARD, 0, {0}, {0}},
    {"A:1", RTB_SSE_EBOARD, 0, {0}, {0}},
    {"a :1", RTB_SSE_EBOARD, 0, {0}, {0}},
    {" a:1", RTB_SSE_EBOARD, 0, {0}, {0}},
    {"-a:1", RTB_SSE_EBOARD, 0, {0}, {0}},
    {"a.b:1", RTB_SSE_EBOARD, 0, {0}, {0}},
    {B64 "4:1", RTB_SSE_EBOARD, 0, {0}, {0}},
    {"a:1,b:2,a:3", RTB_SSE_EDUP, 0, {0}, {0}},
    {"a:1,a:1", RTB_SSE_EDUP, 0, {0}, {0}},
    {"a:1,b:2,c:3,d:4", RTB_SSE_ETOOMANY, 0, {0}, {0}},
};

static void test_parse_cursor(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cursor_cases) / sizeof(cursor_cases[0]); i++) {
        const cursor_case_t *c = &cursor_cases[i];
        rtb_cursor_item_t *items = malloc(3 * sizeof(*items));
        assert_non_null(items);
        int n = -1;
        int rc = rtb_sse_parse_cursor(c->s, items, 3, &n);
        if (rc != c->rc)
            fail_msg("case %zu \"%s\": rc %d, expected %d", i, c->s, rc, c->rc);
        assert_int_equal(n, c->n);
        for (int k = 0; k < n; k++) {
            assert_string_equal(items[k].board, c->boards[k]);
            assert_int_equal(items[k].id, c->ids[k]);
        }
        /* What parses formats back to the same text. */
        if (rc == RTB_SSE_OK) {
            size_t len = strlen(c->s);
            char *out = malloc(len + 1);
            assert_non_null(out);
            assert_int_equal(rtb_sse_format_cursor(out, len + 1, items, n), len);
            assert_string_equal(out, c->s);
            free(out);
        }
        free(items);
    }
}

static void test_parse_cursor_args(void **state)
{
    (void)state;
    rtb_cursor_item_t items[2];
    int n = 5;
    assert_int_equal(rtb_sse_parse_cursor(NULL, items, 2, &n), RTB_SSE_EEMPTY);
    assert_int_equal(n, 0);
    assert_int_equal(rtb_sse_parse_cursor("a:1", items, 2, NULL), RTB_SSE_EINVAL);
    assert_int_equal(rtb_sse_parse_cursor("a:1", items, -1, &n), RTB_SSE_EINVAL);
    assert_int_equal(rtb_sse_parse_cursor("a:1", NULL, 2, &n), RTB_SSE_EINVAL);
    assert_int_equal(rtb_sse_parse_cursor("a:1", NULL, 0, &n), RTB_SSE_ETOOMANY);
    /* Exactly max_items fits; one more does not, even with a later error. */
    assert_int_equal(rtb_sse_parse_cursor("a:1,b:2", items, 2, &n), RTB_SSE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(rtb_sse_parse_cursor("a:1,b:2,c:3", items, 2, &n), RTB_SSE_ETOOMANY);
    assert_int_equal(n, 0);
    assert_int_equal(rtb_sse_parse_cursor("a:1,b:2,", items, 2, &n), RTB_SSE_ESYNTAX);
    assert_int_equal(rtb_sse_parse_cursor("a:1,b:2,a:3", items, 2, &n), RTB_SSE_EDUP);
}

static void test_format_cursor(void **state)
{
    (void)state;
    rtb_cursor_item_t items[3] = {{"a", 12}, {"b", 7}, {"team-x_1", RTB_ID_MAX}};
    const char *want = "a:12,b:7,team-x_1:9007199254740991";
    size_t len = strlen(want);

    assert_int_equal(rtb_sse_format_cursor(NULL, 0, items, 3), len);
    char *out = malloc(len + 1);
    assert_non_null(out);
    assert_int_equal(rtb_sse_format_cursor(out, len + 1, items, 3), len);
    assert_string_equal(out, want);
    /* No room for the NUL: nothing written. */
    memset(out, '#', len + 1);
    assert_int_equal(rtb_sse_format_cursor(out, len, items, 3), len);
    for (size_t k = 0; k <= len; k++)
        assert_int_equal(out[k], '#');
    free(out);

    char buf[16];
    assert_int_equal(rtb_sse_format_cursor(buf, sizeof(buf), items, 1), 4);
    assert_string_equal(buf, "a:12");
    rtb_cursor_item_t zero = {"z", 0};
    assert_int_equal(rtb_sse_format_cursor(buf, sizeof(buf), &zero, 1), 3);
    assert_string_equal(buf, "z:0");

    /* Refused: nothing to format, bad ids, duplicates. */
    assert_int_equal(rtb_sse_format_cursor(buf, sizeof(buf), items, 0), 0);
    assert_int_equal(rtb_sse_format_cursor(buf, sizeof(buf), NULL, 1), 0);
    rtb_cursor_item_t bad[2] = {{"a", 1}, {"B", 2}};
    assert_int_equal(rtb_sse_format_cursor(buf, sizeof(buf), bad, 2), 0);
    rtb_cursor_item_t big = {"a", RTB_ID_MAX + 1};
    assert_int_equal(rtb_sse_format_cursor(buf, sizeof(buf), &big, 1), 0);
    rtb_cursor_item_t dup[2] = {{"a", 1}, {"a", 2}};
    assert_int_equal(rtb_sse_format_cursor(buf, sizeof(buf), dup, 2), 0);
    rtb_cursor_item_t empty = {"", 1};
    assert_int_equal(rtb_sse_format_cursor(buf, sizeof(buf), &empty, 1), 0);
    rtb_cursor_item_t unterminated;
    memset(unterminated.board, 'a', sizeof(unterminated.board));
    unterminated.id = 1;
    assert_int_equal(rtb_sse_format_cursor(buf, sizeof(buf), &unterminated, 1), 0);

    /* The longest board id works, and the cursor is usable as an SSE id. */
    rtb_cursor_item_t longest = {B64, 3};
    char big_out[80];
    size_t n = rtb_sse_format_cursor(big_out, sizeof(big_out), &longest, 1);
    assert_int_equal(n, 66);
    char ev[128];
    assert_int_equal(rtb_sse_encode(ev, sizeof(ev), big_out, NULL, "x", 1),
                     strlen("id: \n") + 66 + strlen("data: x\n\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_table),
        cmocka_unit_test(test_encode_refused),
        cmocka_unit_test(test_encode_random_round_trip),
        cmocka_unit_test(test_encode_stream),
        cmocka_unit_test(test_comment),
        cmocka_unit_test(test_retry),
        cmocka_unit_test(test_parse_id),
        cmocka_unit_test(test_parse_cursor),
        cmocka_unit_test(test_parse_cursor_args),
        cmocka_unit_test(test_format_cursor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
