/*
 * rtb_ws_conn: a WebSocket's state and what is sent on it. See rtb_ws_conn.h.
 */
#include "rtb_ws_conn.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* output                                                               */

void rtb_ws_frame(rtb_conn_t *cn, int opcode, const void *data, apr_size_t len)
{
    char small[1024];
    char *buf = small;
    apr_size_t hl = rtb_ws_frame_header((unsigned char *)small, opcode, 1, len);
    if (!hl)
        return;
    /* one write per frame: a frame is queued whole or not at all */
    if (hl + len > sizeof(small)) {
        buf = malloc(hl + len);
        if (!buf)
            return;
        memcpy(buf, small, hl);
    }
    if (len)
        memcpy(buf + hl, data, len);
    rtb_conn_write(cn, buf, hl + len);
    if (buf != small)
        free(buf);
}

void rtb_ws_text(rtb_conn_t *cn, const char *s)
{
    rtb_ws_frame(cn, RTB_WS_OP_TEXT, s, strlen(s));
}

void rtb_ws_json(rtb_conn_t *cn, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (s) {
        rtb_ws_text(cn, s);
        free(s);
    }
}

void rtb_ws_error(rtb_conn_t *cn, const char *code, const char *msg)
{
    rtb_ws_json(cn, json_pack("{s:s,s:s,s:s}", "type", "error", "code", code, "message", msg));
}

/* Ends the socket with a close frame carrying `code`. */
void rtb_ws_fail(rtb_conn_t *cn, int code, const char *reason)
{
    rtb_ws_state_t *st = cn->tdata;
    if (cn->closing)
        return;
    st->close_code = code;
    st->close_reason = reason;
    rtb_conn_close(cn, RTB_CLOSE_PROTOCOL);
}

rtb_sub_t *rtb_ws_find_sub(rtb_conn_t *cn, const char *board)
{
    rtb_sub_t *sub;
    for (sub = cn->subs; sub; sub = sub->cnext)
        if (sub->active && !strcmp(sub->board, board))
            return sub;
    return NULL;
}

void rtb_ws_close_frame(rtb_conn_t *cn, int why)
{
    rtb_ws_state_t *st = cn->tdata;
    unsigned char payload[RTB_WS_MAX_CONTROL_PAYLOAD];
    apr_size_t n;
    int code = st->close_code;
    const char *reason = st->close_reason;
    if (why == RTB_CLOSE_STOPPING) {
        code = 1001;
        reason = "server restarting";
    } else if (why == RTB_CLOSE_SLOW || why == RTB_CLOSE_LAPPED) {
        code = 1013;
        reason = "too far behind; reconnect and resume";
    } else if (!code) {
        code = 1000;
    }
    n = rtb_ws_close_payload(payload, (apr_uint16_t)code, reason);
    rtb_ws_frame(cn, RTB_WS_OP_CLOSE, payload, n);
}
