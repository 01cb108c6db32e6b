/*
 * libFuzzer driver for the resume cursors of src/rtb_sse.c and the numeric
 * ids of src/rtb_ids.c.
 *
 * Input layout: TEXT [NUL MAX [ITEMS]]. TEXT (up to the first NUL) goes to
 * rtb_sse_parse_id, rtb_sse_parse_cursor and rtb_ids_parse_num; MAX, when
 * present, is the max_items of a second cursor parse (else 64); ITEMS is a
 * list of cursor items for rtb_sse_format_cursor, each a length byte L, then
 * L % 72 board bytes (65 or more leave the board without its NUL), then an
 * id byte (below 250 the id itself, above it one of the edge values).
 *
 * Checked: a single id parses exactly when rtb_ids_parse_num agrees (but for
 * "0", allowed only here) and its decimal spelling is the input; a cursor
 * that parses has valid, distinct items and formats back to the very input,
 * which parses back to the same items; a smaller max_items gives
 * RTB_SSE_ETOOMANY or the same answer; formatting any items succeeds exactly
 * when they are valid, never writes past or into a short buffer, and what it
 * writes parses back to the same items.
 */
#include "fuzz.h"

#include "../../src/rtb_ids.c"
#include "../../src/rtb_sse.c"

#define FUZZ_SSE_MAX_ITEMS 80

static volatile uint64_t fuzz_sse_sink;

static const uint64_t fuzz_sse_edge_ids[6] = {RTB_ID_MAX - 1,
                                              RTB_ID_MAX,
                                              RTB_ID_MAX + 1,
                                              UINT64_C(1000000000000000),
                                              UINT64_C(9999999999999999),
                                              UINT64_MAX};

static int fuzz_sse_all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }
    return 1;
}

/* Whether the digits s[0..n) (no leading zero) are a value above RTB_ID_MAX. */
static int fuzz_sse_above_max(const char *s, size_t n)
{
    return n > 16 || (n == 16 && memcmp(s, "9007199254740991", 16) > 0);
}

/* rtb_ids_parse_num over s[0..n), in a block of exactly n bytes, against the id syntax. */
static void fuzz_sse_ids_num(const char *s, size_t n)
{
    char *copy = fuzz_copy(s, n, 0);
    uint64_t v = 12345;
    int rc = rtb_ids_parse_num(copy, n, &v);

    FUZZ_CHECK(rc == rtb_ids_parse_num(copy, n, NULL));
    FUZZ_CHECK((rc == RTB_IDS_OK) == rtb_task_id_valid(copy, n));
    FUZZ_CHECK((rc == RTB_IDS_OK) == rtb_list_id_valid(copy, n));
    if (n == 0) {
        FUZZ_CHECK(rc == RTB_IDS_EEMPTY);
    } else if (!fuzz_sse_all_digits(s, n) || (s[0] == '0' && n > 1)) {
        FUZZ_CHECK(rc == RTB_IDS_ESYNTAX);
    } else if ((s[0] == '0' && n == 1) || fuzz_sse_above_max(s, n)) {
        FUZZ_CHECK(rc == RTB_IDS_ERANGE);
    } else {
        char num[32];

        FUZZ_CHECK(rc == RTB_IDS_OK);
        FUZZ_CHECK(v >= 1 && v <= RTB_ID_MAX);
        snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
        FUZZ_CHECK(strlen(num) == n && memcmp(num, s, n) == 0);
    }
    if (rc != RTB_IDS_OK) {
        FUZZ_CHECK(v == 12345);
    }
    fuzz_sse_sink += v + (uint64_t)-rc;
    free(copy);
}

/* rtb_sse_parse_id on the NUL-terminated text, checked against rtb_ids_parse_num. */
static void fuzz_sse_single(const char *text)
{
    size_t n = strlen(text);
    uint64_t v = 777, w = 777;
    int rc = rtb_sse_parse_id(text, &v);
    int ids = rtb_ids_parse_num(text, n, &w);

    FUZZ_CHECK(rtb_sse_parse_id(text, NULL) == RTB_SSE_EINVAL);
    if (n == 1 && text[0] == '0') {
        FUZZ_CHECK(rc == RTB_SSE_OK && v == 0 && ids == RTB_IDS_ERANGE);
        return;
    }
    switch (ids) {
    case RTB_IDS_OK:
        FUZZ_CHECK(rc == RTB_SSE_OK && v == w);
        break;
    case RTB_IDS_EEMPTY:
        FUZZ_CHECK(rc == RTB_SSE_EEMPTY);
        break;
    case RTB_IDS_ESYNTAX:
        FUZZ_CHECK(rc == RTB_SSE_ESYNTAX);
        break;
    case RTB_IDS_ERANGE:
        FUZZ_CHECK(rc == RTB_SSE_ERANGE);
        break;
    default:
        FUZZ_CHECK(0);
    }
    if (rc != RTB_SSE_OK) {
        FUZZ_CHECK(v == 777);
    }
    fuzz_sse_sink += v;
}

/* Whether items[0..n) are what rtb_sse_format_cursor accepts. */
static int fuzz_sse_items_valid(const rtb_cursor_item_t *items, int n)
{
    if (n < 1) {
        return 0;
    }
    for (int i = 0; i < n; i++) {
        const char *nul = memchr(items[i].board, '\0', sizeof(items[i].board));

        if (!nul || !rtb_board_id_valid(items[i].board, (size_t)(nul - items[i].board)) ||
            items[i].id > RTB_ID_MAX) {
            return 0;
        }
        for (int j = 0; j < i; j++) {
            if (strcmp(items[i].board, items[j].board) == 0) {
                return 0;
            }
        }
    }
    return 1;
}

static void fuzz_sse_same_items(const rtb_cursor_item_t *a, const rtb_cursor_item_t *b, int n)
{
    for (int i = 0; i < n; i++) {
        FUZZ_CHECK(strcmp(a[i].board, b[i].board) == 0);
        FUZZ_CHECK(a[i].id == b[i].id);
    }
}

/*
 * Formats items[0..n) and checks the result: it exists exactly when the
 * items are valid, equals `expect` when that is not NULL, and parses back to
 * the same items.
 */
static void fuzz_sse_format(const rtb_cursor_item_t *items, int n, const char *expect)
{
    size_t len = rtb_sse_format_cursor(NULL, 0, items, n);
    rtb_cursor_item_t back[FUZZ_SSE_MAX_ITEMS];
    char *out, *shorter;
    int k = -1;

    FUZZ_CHECK((len > 0) == fuzz_sse_items_valid(items, n));
    if (len == 0) {
        char none[4] = "xyz";

        FUZZ_CHECK(rtb_sse_format_cursor(none, sizeof(none), items, n) == 0);
        FUZZ_CHECK(memcmp(none, "xyz", 4) == 0);
        return;
    }

    /* One byte short of the NUL: nothing written. */
    shorter = malloc(len);
    FUZZ_CHECK(shorter != NULL);
    memset(shorter, '#', len);
    FUZZ_CHECK(rtb_sse_format_cursor(shorter, len, items, n) == len);
    for (size_t i = 0; i < len; i++) {
        FUZZ_CHECK(shorter[i] == '#');
    }
    free(shorter);

    out = malloc(len + 1);
    FUZZ_CHECK(out != NULL);
    FUZZ_CHECK(rtb_sse_format_cursor(out, len + 1, items, n) == len);
    FUZZ_CHECK(out[len] == '\0' && strlen(out) == len);
    if (expect) {
        FUZZ_CHECK(strcmp(out, expect) == 0);
    }
    FUZZ_CHECK(rtb_sse_parse_cursor(out, back, n, &k) == RTB_SSE_OK);
    FUZZ_CHECK(k == n);
    fuzz_sse_same_items(items, back, n);
    fuzz_sse_sink = fuzz_hash(fuzz_sse_sink, out, len);
    free(out);
}

/* The number of comma-separated pieces of s: the most items it can hold. */
static int fuzz_sse_pieces(const char *s)
{
    int n = 1;

    for (; *s; s++) {
        n += *s == ',';
    }
    return n;
}

/* rtb_sse_parse_cursor on the text with room for every item, then with max_items. */
static void fuzz_sse_cursor(const char *text, int max_items)
{
    int room = fuzz_sse_pieces(text);
    rtb_cursor_item_t *all = malloc(sizeof(*all) * (size_t)room);
    rtb_cursor_item_t *few = max_items ? malloc(sizeof(*few) * (size_t)max_items) : NULL;
    int n = -1, m = -1;
    int rc, rc2;

    FUZZ_CHECK(all != NULL && (max_items == 0 || few != NULL));
    rc = rtb_sse_parse_cursor(text, all, room, &n);
    FUZZ_CHECK(rc <= 0 && rc >= RTB_SSE_EDUP);
    FUZZ_CHECK(rtb_sse_parse_cursor(text, all, room, NULL) == RTB_SSE_EINVAL);
    FUZZ_CHECK(rtb_sse_parse_cursor(text, all, -1, &m) == RTB_SSE_EINVAL);
    if (rc == RTB_SSE_OK) {
        FUZZ_CHECK(n == room);
        /* Canonical: formatting gives back the very input. */
        fuzz_sse_format(all, n, text);
    } else {
        FUZZ_CHECK(n == 0);
        FUZZ_CHECK(rc != RTB_SSE_EEMPTY || text[0] == '\0');
    }

    rc2 = rtb_sse_parse_cursor(text, few, max_items, &m);
    if (rc == RTB_SSE_OK && n > max_items) {
        FUZZ_CHECK(rc2 == RTB_SSE_ETOOMANY && m == 0);
    } else if (rc == RTB_SSE_OK) {
        FUZZ_CHECK(rc2 == RTB_SSE_OK && m == n);
        fuzz_sse_same_items(all, few, n);
    } else {
        FUZZ_CHECK(rc2 == rc || rc2 == RTB_SSE_ETOOMANY);
        FUZZ_CHECK(m == 0);
    }
    fuzz_sse_sink += (uint64_t)(n + m) + (uint64_t)-rc;
    free(all);
    free(few);
}

/* Builds cursor items from the ITEMS part of the input and formats them. */
static void fuzz_sse_raw_items(const uint8_t *p, size_t size)
{
    rtb_cursor_item_t items[FUZZ_SSE_MAX_ITEMS];
    int n = 0;
    size_t at = 0;

    while (at < size && n < FUZZ_SSE_MAX_ITEMS) {
        size_t blen = p[at++] % 72, copy;
        uint8_t idb;

        if (size - at < blen + 1) {
            break;
        }
        copy = blen < sizeof(items[n].board) ? blen : sizeof(items[n].board);
        memset(items[n].board, 0x5a, sizeof(items[n].board));
        memcpy(items[n].board, p + at, copy);
        if (blen < sizeof(items[n].board)) {
            items[n].board[blen] = '\0';
        }
        at += blen;
        idb = p[at++];
        items[n].id = idb < 250 ? idb : fuzz_sse_edge_ids[idb - 250];
        n++;
    }
    FUZZ_CHECK(rtb_sse_format_cursor(NULL, 0, NULL, n) == 0);
    fuzz_sse_format(items, n, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t tlen = nul ? (size_t)(nul - data) : size;
    char *text = fuzz_copy(data, tlen, 1);
    int max_items = 64;

    fuzz_sse_ids_num(text, tlen);
    fuzz_sse_single(text);
    if (nul && tlen + 1 < size) {
        max_items = data[tlen + 1];
    }
    fuzz_sse_cursor(text, max_items);
    if (nul && tlen + 2 < size) {
        fuzz_sse_raw_items(data + tlen + 2, size - tlen - 2);
    }
    free(text);
    return 0;
}
