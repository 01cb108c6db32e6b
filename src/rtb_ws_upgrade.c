/*
 * rtb_ws_upgrade: the WebSocket opening handshake. See rtb_ws_upgrade.h.
 */
#include "rtb_ws_upgrade.h"
#include "rtb_config.h"
#include "rtb_engine.h"
#include "rtb_http.h"
#include "rtb_limits.h"
#include "rtb_ws.h"
#include "rtb_ws_join.h"

#include "http_core.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_strings.h"
#include "apr_sha1.h"
#include "apr_base64.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* ------------------------------------------------------------------ */
/* the upgrade                                                          */

static int ws_has_token(const char *h, const char *tok)
{
    const char *p = h;
    apr_size_t n = strlen(tok);
    while (p && *p) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        if (!strncasecmp(p, tok, n) && (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
            return 1;
        p = strchr(p, ',');
    }
    return 0;
}

/*
 * The request is a version-13 WebSocket upgrade over HTTP/1.1 with a key:
 * OK, or DONE when refused (answered: 426 or 400).
 */
static int upgrade_check(request_rec *r)
{
    const char *up = apr_table_get(r->headers_in, "Upgrade");
    const char *conn = apr_table_get(r->headers_in, "Connection");
    const char *key = apr_table_get(r->headers_in, "Sec-WebSocket-Key");
    const char *ver = apr_table_get(r->headers_in, "Sec-WebSocket-Version");
    if (r->proto_num < HTTP_VERSION(1, 1) || r->connection->master || !up ||
        strcasecmp(up, "websocket") != 0 || !conn || !ws_has_token(conn, "upgrade")) {
        apr_table_setn(r->headers_out, "Upgrade", "websocket");
        rtb_send_error(r, HTTP_UPGRADE_REQUIRED, "upgrade_required",
                       "this is a WebSocket endpoint (HTTP/1.1 Upgrade: websocket)", NULL);
        return DONE;
    }
    if (!ver || strcmp(ver, "13") != 0) {
        apr_table_setn(r->headers_out, "Sec-WebSocket-Version", "13");
        rtb_send_error(r, HTTP_UPGRADE_REQUIRED, "unsupported_version",
                       "Sec-WebSocket-Version must be 13", NULL);
        return DONE;
    }
    if (!key || strlen(key) != 24 || apr_base64_decode_len(key) < 16) {
        rtb_send_error(r, HTTP_BAD_REQUEST, "invalid_key",
                       "Sec-WebSocket-Key must be 16 bytes in base64", NULL);
        return DONE;
    }
    return OK;
}

/*
 * The board of /boards/:b/ws is read before the upgrade, in this thread:
 * NULL with *rc OK when there is none to join, else the join (its status
 * may be 404); NULL with *rc DONE when the store failed (answered).
 */
static rtb_ws_join_t *upgrade_first_join(request_rec *r, const rtb_route_t *rt, int *rc)
{
    long long since = rtb_query_id(r, "lastEventId");
    rtb_ws_join_t *first;
    rtb_db_t db;
    int opened = 0;
    *rc = OK;
    if (rt->id != RTB_R_BOARD_WS)
        return NULL;
    *rc = DONE;
    if (since == -2) {
        rtb_send_error(r, HTTP_BAD_REQUEST, "invalid_last_event_id",
                       "lastEventId must be an event id", "lastEventId");
        return NULL;
    }
    first = apr_pcalloc(r->pool, sizeof(*first));
    first->pool = r->pool;
    first->since = since;
    apr_cpystrn(first->board, rt->board, sizeof(first->board));
    first->start = rtb_bus_ring_position();
    first->status = rtb_replay_start(&first->rp, &db, &opened, r, r->pool, first->board, since, 0,
                                     &first->start);
    if (opened)
        rtb_db_close(&db);
    if (first->status == HTTP_SERVICE_UNAVAILABLE) {
        rtb_send_db_unavailable(r);
        return NULL;
    }
    if (first->status == HTTP_INTERNAL_SERVER_ERROR) {
        rtb_send_db_error(r);
        return NULL;
    }
    *rc = OK;
    return first;
}

/* Queues the 101 with Sec-WebSocket-Accept; the connection is a WebSocket from here. */
static void upgrade_accept(request_rec *r, rtb_conn_t *cn)
{
    const char *key = apr_table_get(r->headers_in, "Sec-WebSocket-Key");
    unsigned char digest[APR_SHA1_DIGESTSIZE];
    char accept[32];
    const char *head;
    apr_sha1_ctx_t sha;
    conn_rec *c = r->connection;
    apr_sha1_init(&sha);
    apr_sha1_update(&sha, key, (unsigned)strlen(key));
    apr_sha1_update(&sha, WS_GUID, (unsigned)strlen(WS_GUID));
    apr_sha1_final(digest, &sha);
    apr_base64_encode(accept, (const char *)digest, APR_SHA1_DIGESTSIZE);
    /* for the access log: the answer's status and headers */
    apr_table_clear(r->headers_out);
    apr_table_setn(r->headers_out, "Upgrade", "websocket");
    apr_table_setn(r->headers_out, "Connection", "Upgrade");
    apr_table_setn(r->headers_out, "Sec-WebSocket-Accept", apr_pstrdup(r->pool, accept));
    r->status = HTTP_SWITCHING_PROTOCOLS;
    r->status_line = ap_get_status_line(r->status);
    /*
     * The head goes out with the socket's first messages, in one write (as
     * ap_send_interim_response would write it: the status line and these
     * three headers, nothing else).
     */
    head = apr_pstrcat(r->pool, "HTTP/1.1 ", r->status_line, "\r\nUpgrade: websocket\r\n",
                       "Connection: Upgrade\r\nSec-WebSocket-Accept: ", accept, "\r\n\r\n", NULL);
    rtb_conn_write(cn, head, strlen(head));
    c->keepalive = AP_CONN_CLOSE;
    r->output_filters = r->proto_output_filters = c->output_filters;
    r->input_filters = r->proto_input_filters = c->input_filters;
}

/* Ends a socket just upgraded with `code`: its close frame goes out now. Returns OK. */
static int upgrade_refuse(rtb_conn_t *cn, int code, const char *reason)
{
    rtb_ws_state_t *st = cn->tdata;
    st->close_code = code;
    st->close_reason = reason;
    rtb_ws_close_frame(cn, RTB_CLOSE_PROTOCOL);
    rtb_conn_flush(cn);
    return OK;
}

int rtb_ws_upgrade(request_rec *r, const rtb_route_t *rt)
{
    conn_rec *c = r->connection;
    rtb_ws_join_t *first = NULL;
    rtb_conn_t *cn;
    int origin_ok, rc;

    if (upgrade_check(r) != OK)
        return OK;
    origin_ok = rtb_origin_allowed(r);
    if (origin_ok && r->user) {
        first = upgrade_first_join(r, rt, &rc);
        if (rc != OK)
            return OK;
    }
    if (origin_ok && r->user && rtb_limits_take_stream(r) != OK)
        return rtb_send_too_many_streams(r);
    cn = rtb_conn_create(r, &rtb_ws_transport, first ? first->start : rtb_bus_ring_position());
    cn->drop_remainder = 1; /* its 101 is written from cn's own buffer (rtb_conn_read) */
    upgrade_accept(r, cn);
    if (!rtb_ws_state_create(cn, r)) {
        rtb_conn_free_obuf(cn);
        c->aborted = 1;
        return OK;
    }
    if (!origin_ok)
        return upgrade_refuse(cn, 1008, "origin not allowed");
    if (!r->user)
        return upgrade_refuse(cn, 4001, "not authenticated");
    if (strlen(r->user) > RTB_USER_MAX) /* presence and tickets hold ids of up to this, never cut */
        return upgrade_refuse(cn, 1008, "user id too long");
    rtb_ws_json(cn, json_pack("{s:s,s:{s:s,s:s}}", "type", "connected", "user", "userId", cn->user,
                              "name", cn->name));
    if (first) {
        if (first->status == HTTP_NOT_FOUND)
            return upgrade_refuse(cn, 4004, "no such board");
        /* subscribe before the hand-off; the loop catches up from first->start */
        rtb_ws_join_finish(cn, first);
    }
    rtb_conn_flush(cn);
    if (c->aborted)
        return OK;
    return rtb_engine_hand_off(cn);
}
