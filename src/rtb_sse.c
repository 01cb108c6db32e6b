/*
 * rtb_sse: Server-Sent Events encoding and resume cursors. See rtb_sse.h.
 *
 * Every encoder runs the same builder twice: once to measure, and once to
 * write when the result fits, so a short buffer is never partly written.
 */
#include "rtb_sse.h"

#include <string.h>

/* An output cursor; with out NULL it only counts. */
typedef struct {
    char *out;
    size_t pos;
    int overflow;
} sse_buf_t;

static void sse_put(sse_buf_t *b, const char *s, size_t n)
{
    if (n > SIZE_MAX - b->pos) {
        b->overflow = 1;
        return;
    }
    if (b->out && n > 0)
        memcpy(b->out + b->pos, s, n);
    b->pos += n;
}

/*
 * Writes prefix + line + "\n" for each line of s[0..n). CR, LF and CRLF each
 * end a line, as the client's parser splits them; the text after the last
 * break is a line too, even when empty.
 */
static void sse_put_lines(sse_buf_t *b, const char *prefix, const char *s, size_t n)
{
    size_t plen = strlen(prefix);
    size_t start = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\r' && s[i] != '\n')
            continue;
        sse_put(b, prefix, plen);
        sse_put(b, s + start, i - start);
        sse_put(b, "\n", 1);
        if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
            i++;
        start = i + 1;
    }
    sse_put(b, prefix, plen);
    sse_put(b, s + start, n - start);
    sse_put(b, "\n", 1);
}

/* Whether a field value would break the line structure. */
static int sse_has_break(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

static void sse_build_event(sse_buf_t *b, const char *id, const char *event, const char *data,
                            size_t data_len)
{
    if (id) {
        sse_put(b, "id: ", 4);
        sse_put(b, id, strlen(id));
        sse_put(b, "\n", 1);
    }
    if (event) {
        sse_put(b, "event: ", 7);
        sse_put(b, event, strlen(event));
        sse_put(b, "\n", 1);
    }
    if (data)
        sse_put_lines(b, "data: ", data, data_len);
    sse_put(b, "\n", 1);
}

size_t rtb_sse_encode(char *out, size_t cap, const char *id, const char *event, const char *data,
                      size_t data_len)
{
    sse_buf_t b = {NULL, 0, 0};

    if ((!data && data_len > 0) || (!id && !event && !data))
        return 0;
    if ((id && sse_has_break(id)) || (event && sse_has_break(event)))
        return 0;
    sse_build_event(&b, id, event, data, data_len);
    if (b.overflow)
        return 0;
    if (out && b.pos <= cap) {
        sse_buf_t w = {out, 0, 0};
        sse_build_event(&w, id, event, data, data_len);
    }
    return b.pos;
}

size_t rtb_sse_comment(char *out, size_t cap, const char *text)
{
    size_t n = text ? strlen(text) : 0;
    sse_buf_t b = {NULL, 0, 0};

    if (!text)
        text = "";
    sse_put_lines(&b, ": ", text, n);
    sse_put(&b, "\n", 1);
    if (out && b.pos <= cap) {
        sse_buf_t w = {out, 0, 0};
        sse_put_lines(&w, ": ", text, n);
        sse_put(&w, "\n", 1);
    }
    return b.pos;
}

/* Formats v in decimal into buf (at least 20 bytes); returns the digit count. */
static size_t sse_format_u64(char *buf, uint64_t v)
{
    char tmp[20];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

size_t rtb_sse_retry(char *out, size_t cap, unsigned ms)
{
    char num[20];
    size_t n = sse_format_u64(num, ms);
    size_t need = 7 + n + 2;

    if (out && need <= cap) {
        memcpy(out, "retry: ", 7);
        memcpy(out + 7, num, n);
        memcpy(out + 7 + n, "\n\n", 2);
    }
    return need;
}

/*
 * Parses s[0..n) as an event id: digits only, no leading zero unless it is
 * "0", at most RTB_ID_MAX.
 */
static int sse_parse_num(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;

    if (n == 0)
        return RTB_SSE_EEMPTY;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return RTB_SSE_ESYNTAX;
    }
    if (s[0] == '0' && n > 1)
        return RTB_SSE_ESYNTAX;
    /* RTB_ID_MAX has 16 digits; longer cannot fit (and could overflow v). */
    if (n > 16)
        return RTB_SSE_ERANGE;
    for (size_t i = 0; i < n; i++)
        v = v * 10u + (uint64_t)(s[i] - '0');
    if (v > RTB_ID_MAX)
        return RTB_SSE_ERANGE;
    *out = v;
    return RTB_SSE_OK;
}

int rtb_sse_parse_id(const char *s, uint64_t *out)
{
    if (!out)
        return RTB_SSE_EINVAL;
    if (!s)
        return RTB_SSE_EEMPTY;
    return sse_parse_num(s, strlen(s), out);
}

/* Parses one "board:id" item, s[0..n), into *it. */
static int sse_parse_item(const char *s, size_t n, rtb_cursor_item_t *it)
{
    const char *colon = memchr(s, ':', n);
    size_t blen;
    int rc;

    if (n == 0 || !colon)
        return RTB_SSE_ESYNTAX;
    blen = (size_t)(colon - s);
    if (!rtb_board_id_valid(s, blen))
        return RTB_SSE_EBOARD;
    rc = sse_parse_num(colon + 1, n - blen - 1, &it->id);
    if (rc != RTB_SSE_OK)
        return rc == RTB_SSE_EEMPTY ? RTB_SSE_ESYNTAX : rc;
    memcpy(it->board, s, blen);
    it->board[blen] = '\0';
    return RTB_SSE_OK;
}

/* Whether items[0..k) already hold board. */
static int sse_board_seen(const rtb_cursor_item_t *items, int k, const char *board)
{
    for (int i = 0; i < k; i++) {
        if (strcmp(items[i].board, board) == 0)
            return 1;
    }
    return 0;
}

int rtb_sse_parse_cursor(const char *s, rtb_cursor_item_t *items, int max_items, int *n)
{
    int k = 0;

    if (!n || max_items < 0 || (!items && max_items > 0))
        return RTB_SSE_EINVAL;
    *n = 0;
    if (!s || !*s)
        return RTB_SSE_EEMPTY;
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);

        rtb_cursor_item_t it;
        int rc = sse_parse_item(s, len, &it);

        if (rc != RTB_SSE_OK)
            return rc;
        if (sse_board_seen(items, k, it.board))
            return RTB_SSE_EDUP;
        if (k == max_items)
            return RTB_SSE_ETOOMANY;
        items[k++] = it;
        if (!comma)
            break;
        s = comma + 1;
    }
    *n = k;
    return RTB_SSE_OK;
}

size_t rtb_sse_format_cursor(char *out, size_t cap, const rtb_cursor_item_t *items, int n)
{
    size_t need = 0, pos = 0;
    char num[20];

    if (!items || n < 1)
        return 0;
    for (int i = 0; i < n; i++) {
        const char *nul = memchr(items[i].board, '\0', sizeof(items[i].board));
        size_t blen = nul ? (size_t)(nul - items[i].board) : 0;

        if (!rtb_board_id_valid(items[i].board, blen) || items[i].id > RTB_ID_MAX ||
            sse_board_seen(items, i, items[i].board))
            return 0;
        need += (i > 0) + blen + 1 + sse_format_u64(num, items[i].id);
    }
    if (!out || need >= cap)
        return need;
    for (int i = 0; i < n; i++) {
        size_t blen = strlen(items[i].board);
        if (i > 0)
            out[pos++] = ',';
        memcpy(out + pos, items[i].board, blen);
        pos += blen;
        out[pos++] = ':';
        pos += sse_format_u64(out + pos, items[i].id);
    }
    out[pos] = '\0';
    return need;
}
