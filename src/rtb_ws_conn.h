/*
 * rtb_ws_conn: a WebSocket's state on the connection engine and what the
 * server sends on it: frames (through the codec, rtb_ws_codec), JSON
 * messages, errors, and the closing handshake.
 */
#ifndef RTB_WS_CONN_H
#define RTB_WS_CONN_H

#include "rtb_conn.h"
#include "rtb_ws_codec.h"

#include <jansson.h>

#define RTB_WS_MAX_JOINS 16 /* boards one socket may be joined to */

/* The upgrade request's copy that joins need (rtb_ws_join.c). */
typedef struct rtb_ws_origin_t rtb_ws_origin_t;

/* A WebSocket's own state (malloc'd: see rtb_ws_origin_t), in cn->tdata. */
typedef struct {
    rtb_ws_parser_t parser;
    rtb_ws_origin_t *origin;
    char *msg; /* the text message being assembled (malloc) */
    apr_size_t mlen;
    apr_time_t next_ping, ping_sent_at;
    int awaiting_pong;
    double tokens; /* rate limit */
    apr_time_t tokens_at;
    int njoined;
    char typing_board[RTB_BOARD_ID_MAX + 1];
    long long typing_task;
    apr_time_t typing_until, typing_sent;
    int cursor_pending;
    char cursor_board[RTB_BOARD_ID_MAX + 1];
    double cx, cy;
    apr_time_t cursor_sent;
    char ticket_board[RTB_BOARD_ID_MAX + 1]; /* opened with a ticket: the only board it may join */
    int close_code;                          /* what to send on close */
    const char *close_reason;
} rtb_ws_state_t;

/* Queues one frame (opcode, payload) whole, or not at all. */
void rtb_ws_frame(rtb_conn_t *cn, int opcode, const void *data, apr_size_t len);

/* A text message; `j` (stolen) as a compact JSON text message. */
void rtb_ws_text(rtb_conn_t *cn, const char *s);
void rtb_ws_json(rtb_conn_t *cn, json_t *j);

/* {"type":"error","code":...,"message":...}: the socket stays open. */
void rtb_ws_error(rtb_conn_t *cn, const char *code, const char *msg);

/* Ends the socket with a close frame carrying `code` and `reason`. */
void rtb_ws_fail(rtb_conn_t *cn, int code, const char *reason);

/* The socket's live subscription to `board`, or NULL. */
rtb_sub_t *rtb_ws_find_sub(rtb_conn_t *cn, const char *board);

/*
 * Writes the close frame for a connection ending for `why` (RTB_CLOSE_*):
 * 1001 on a restart, 1013 for a slow or lapped client, else the code the
 * socket chose (1000 by default).
 */
void rtb_ws_close_frame(rtb_conn_t *cn, int why);

#endif
