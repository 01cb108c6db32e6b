/*
 * rtb_sse: Server-Sent Events encoding and resume cursors.
 *
 * Encoding follows the WHATWG HTML "Server-sent events" section: a message is
 * a block of "field: value" lines ended by a blank line. The encoders write
 * into the caller's buffer; each returns the number of bytes the whole
 * encoding needs and writes only when that fits in cap (so out may be NULL
 * with cap 0 to measure). They write no NUL. A return of 0 means the
 * arguments were refused: no valid encoding is 0 bytes long.
 *
 * Cursors: a stream over one board uses the board's event id ("12") as the
 * SSE id; a stream over several boards uses a compound cursor
 * "a:12,b:7" (board id, colon, event id, comma-separated).
 *
 * Pure: libc only, no httpd/APR headers; nothing is allocated.
 */
#ifndef RTB_SSE_H
#define RTB_SSE_H

#include <stddef.h>
#include <stdint.h>

#include "rtb_ids.h"

/* Return codes of the parsers. */
typedef enum {
    RTB_SSE_OK = 0,
    RTB_SSE_EEMPTY = -1,   /* the input is empty (or NULL) */
    RTB_SSE_ESYNTAX = -2,  /* a non-digit, a leading zero, an empty item, a missing ':' */
    RTB_SSE_ERANGE = -3,   /* a number above RTB_ID_MAX */
    RTB_SSE_EBOARD = -4,   /* a board id that is not [a-z0-9][a-z0-9_-]{0,63} */
    RTB_SSE_EDUP = -5,     /* the same board twice */
    RTB_SSE_ETOOMANY = -6, /* more items than max_items */
    RTB_SSE_EINVAL = -7    /* bad arguments (NULL out pointers, negative max_items) */
} rtb_sse_status_t;

/* One board's position in a compound cursor. */
typedef struct {
    char board[RTB_BOARD_ID_MAX + 1]; /* NUL-terminated board id */
    uint64_t id;                      /* last event id seen, 0..RTB_ID_MAX */
} rtb_cursor_item_t;

/*
 * Encodes one message:
 *   "id: <id>\n"         when id is not NULL (an empty id resets the client's
 *                        last event id),
 *   "event: <event>\n"   when event is not NULL,
 *   "data: <line>\n"     for each line of data[0..data_len), split on CR, LF
 *                        and CRLF (a CRLF is one break; a trailing break
 *                        yields a last, empty line, so the client gets the
 *                        data back with only each break turned into LF),
 *   "\n".
 * data_len 0 with data not NULL gives one empty "data: " line: the client
 * dispatches a message whose data is "". data NULL (data_len 0) gives no data
 * line: the client dispatches nothing but still records the id, which moves a
 * resume cursor on without a message. Every data line has the space after
 * the colon, so a line starting with a space survives (the client strips
 * exactly one). Other bytes, NUL included, are copied as they are.
 * Returns the bytes needed (written only if <= cap), or 0 when id or event
 * contains CR or LF, when data is NULL with data_len > 0, when id, event and
 * data are all NULL, or when the size would overflow size_t.
 */
size_t rtb_sse_encode(char *out, size_t cap, const char *id, const char *event, const char *data,
                      size_t data_len);

/*
 * Encodes a comment, such as a heartbeat: ": <line>\n" for each line of text
 * (split like data; NULL counts as ""), then a blank line so the write is a
 * complete block for clients and proxies that work per message. Clients
 * ignore it. Returns the bytes needed (written only if <= cap); never 0.
 */
size_t rtb_sse_comment(char *out, size_t cap, const char *text);

/*
 * Encodes "retry: <ms>\n\n": the client's reconnection delay. Returns the
 * bytes needed (written only if <= cap); never 0.
 */
size_t rtb_sse_retry(char *out, size_t cap, unsigned ms);

/*
 * Parses a single-board cursor (a Last-Event-ID header or lastEventId
 * parameter value): decimal digits only, no sign, space or leading zero
 * ("0" itself is allowed: nothing seen yet), at most RTB_ID_MAX. Returns
 * RTB_SSE_OK and stores the value in *out, or RTB_SSE_EEMPTY,
 * RTB_SSE_ESYNTAX, RTB_SSE_ERANGE (then *out is left alone), or
 * RTB_SSE_EINVAL when out is NULL.
 */
int rtb_sse_parse_id(const char *s, uint64_t *out);

/*
 * Parses a compound cursor "a:12,b:7" into items[0..*n), in the order given.
 * Each item is a board id, ':', and an event id as for rtb_sse_parse_id. No
 * spaces, no empty items (",,", a leading or trailing comma), no board twice.
 * Returns RTB_SSE_OK, or a negative rtb_sse_status_t and *n = 0 (items may
 * then hold partial results). Duplicate detection compares each item with
 * the earlier ones: O(n^2) for the few dozen boards a stream carries.
 */
int rtb_sse_parse_cursor(const char *s, rtb_cursor_item_t *items, int max_items, int *n);

/*
 * Formats items[0..n) as a compound cursor "a:12,b:7", NUL-terminated.
 * Returns its length without the NUL; writes it (and the NUL) only when
 * length + 1 <= cap. Returns 0, writing nothing, when n < 1, items is NULL,
 * or an item has a bad board id, an id above RTB_ID_MAX, or a board already
 * used by an earlier item, so the output always parses back to items.
 */
size_t rtb_sse_format_cursor(char *out, size_t cap, const rtb_cursor_item_t *items, int n);

#endif
