/*
 * rtb_ws: the WebSocket protocol of the API on the connection engine: the
 * client's messages (join, leave, typing, stop_typing, cursor, ping), board
 * events and ephemeral messages to the socket, pings and pongs, typing
 * expiry and the socket's end. See docs/API.md for the messages.
 */
#include "rtb_ws.h"
#include "rtb_config.h"
#include "rtb_engine.h"
#include "rtb_presence.h"
#include "rtb_ticket.h"
#include "rtb_ws_join.h"
#include "rtb_ids.h"

#include "http_core.h"
#include "http_log.h"
#include "util_filter.h"
#include "apr_strings.h"
#include "apr_portable.h"

#include <errno.h>
#include <sys/socket.h>

APLOG_USE_MODULE(rtboard);

#define WS_READ_CHUNK 8192
#define WS_MSG_RATE 50   /* messages per second a client may send on average */
#define WS_MSG_BURST 200 /* ... and in a burst */

static int ws_rate_ok(rtb_ws_state_t *st)
{
    apr_time_t now = apr_time_now();
    st->tokens += (double)(now - st->tokens_at) / APR_USEC_PER_SEC * WS_MSG_RATE;
    st->tokens_at = now;
    if (st->tokens > WS_MSG_BURST)
        st->tokens = WS_MSG_BURST;
    if (st->tokens < 1)
        return 0;
    st->tokens -= 1;
    return 1;
}

static void ws_publish_typing(rtb_conn_t *cn, const char *type, const char *board, long long task)
{
    rtb_presence_set_typing(cn, board, strcmp(type, "user_typing") ? 0 : (apr_int64_t)task);
    json_t *j = json_pack("{s:s,s:s,s:I,s:s,s:s}", "type", type, "boardId", board, "taskId",
                          (json_int_t)task, "userId", cn->user, "name", cn->name);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (s) {
        rtb_engine_publish_ephemeral(cn->c->base_server, board, s);
        free(s);
    }
}

static void ws_leave(rtb_conn_t *cn, rtb_sub_t *sub)
{
    rtb_ws_state_t *st = cn->tdata;
    char board[RTB_BOARD_ID_MAX + 1];
    apr_cpystrn(board, sub->board, sizeof(board));
    rtb_engine_unsubscribe(cn, sub);
    st->njoined--;
    if (!strcmp(st->typing_board, board) && st->typing_until) {
        st->typing_until = 0;
        ws_publish_typing(cn, "user_stopped_typing", board, st->typing_task);
    }
    rtb_presence_leave(cn, board);
}

static void ws_send_cursor(rtb_conn_t *cn, rtb_ws_state_t *st, apr_time_t now)
{
    json_t *j =
        json_pack("{s:s,s:s,s:s,s:s,s:f,s:f}", "type", "cursor", "boardId", st->cursor_board,
                  "userId", cn->user, "name", cn->name, "x", st->cx, "y", st->cy);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (s) {
        rtb_engine_publish_ephemeral(cn->c->base_server, st->cursor_board, s);
        free(s);
    }
    st->cursor_pending = 0;
    st->cursor_sent = now;
}

/* {"type":"join","boardId":B,"lastEventId":N?} */
static void ws_msg_join(rtb_conn_t *cn, json_t *m, const char *board, const rtb_sub_t *sub)
{
    const rtb_ws_state_t *st = cn->tdata;
    json_t *le = json_object_get(m, "lastEventId");
    long long since = -1;
    if (le && !json_is_null(le)) {
        if (!json_is_integer(le) || json_integer_value(le) < 0) {
            rtb_ws_error(cn, "invalid_last_event_id", "lastEventId must be an event id");
            return;
        }
        since = json_integer_value(le);
    }
    if (sub) {
        rtb_ws_error(cn, "already_joined", "already joined to this board");
        return;
    }
    if (st->ticket_board[0] && strcmp(st->ticket_board, board) != 0) {
        /* a ticket opens a socket for its own board only, on either URL */
        rtb_ws_error(cn, "ticket_board_only", "this socket's ticket is for another board");
        return;
    }
    rtb_ws_join(cn, board, since);
}

/* {"type":"typing"|"stop_typing","boardId":B,"taskId":T} */
static void ws_msg_typing(rtb_conn_t *cn, json_t *m, const char *type, const char *board,
                          apr_time_t now)
{
    rtb_ws_state_t *st = cn->tdata;
    rtb_cfg_t *cfg = rtb_cfg(cn->c->base_server);
    json_t *t = json_object_get(m, "taskId");
    long long task;
    if (!json_is_integer(t) || json_integer_value(t) < 1) {
        rtb_ws_error(cn, "invalid_task", "taskId must be a task id");
        return;
    }
    task = json_integer_value(t);
    if (!strcmp(type, "typing")) {
        int changed =
            strcmp(st->typing_board, board) != 0 || st->typing_task != task || !st->typing_until;
        if (changed && st->typing_until)
            ws_publish_typing(cn, "user_stopped_typing", st->typing_board, st->typing_task);
        apr_cpystrn(st->typing_board, board, sizeof(st->typing_board));
        st->typing_task = task;
        st->typing_until = now + apr_time_from_sec(cfg->typing_ttl);
        /* refreshes go out at most once a second */
        if (changed || now - st->typing_sent >= apr_time_from_sec(1)) {
            ws_publish_typing(cn, "user_typing", board, st->typing_task);
            st->typing_sent = now;
        }
    } else if (st->typing_until && st->typing_task == task && !strcmp(st->typing_board, board)) {
        st->typing_until = 0;
        ws_publish_typing(cn, "user_stopped_typing", board, st->typing_task);
    }
}

/* {"type":"cursor","boardId":B,"x":X,"y":Y}: only the latest position counts. */
static void ws_msg_cursor(rtb_conn_t *cn, json_t *m, const char *board, apr_time_t now)
{
    rtb_ws_state_t *st = cn->tdata;
    rtb_cfg_t *cfg = rtb_cfg(cn->c->base_server);
    json_t *x = json_object_get(m, "x"), *y = json_object_get(m, "y");
    if (!json_is_number(x) || !json_is_number(y)) {
        rtb_ws_error(cn, "invalid_cursor", "x and y must be numbers");
        return;
    }
    st->cx = json_number_value(x);
    st->cy = json_number_value(y);
    apr_cpystrn(st->cursor_board, board, sizeof(st->cursor_board));
    st->cursor_pending = 1;
    /* at most cursor_rate per second; the timer sends the last one later */
    if (now - st->cursor_sent >= APR_USEC_PER_SEC / (cfg->cursor_rate ? cfg->cursor_rate : 1))
        ws_send_cursor(cn, st, now);
}

/* {"type":"presence","boardId":B,"offset":N?}: the board's presence now, a page from N. */
static void ws_msg_presence(rtb_conn_t *cn, json_t *m, const char *board)
{
    json_t *o = json_object_get(m, "offset");
    if (o && (!json_is_integer(o) || json_integer_value(o) < 0 ||
              json_integer_value(o) > APR_UINT32_MAX)) {
        rtb_ws_error(cn, "invalid_offset", "offset must be a non-negative integer");
        return;
    }
    rtb_presence_send(cn, board, o ? (apr_uint32_t)json_integer_value(o) : 0);
}

/* One whole text message from the client. */
static void ws_on_message(rtb_conn_t *cn, const char *text, apr_size_t len)
{
    rtb_ws_state_t *st = cn->tdata;
    json_error_t je;
    json_t *m;
    const char *type, *board;
    rtb_sub_t *sub;

    if (!ws_rate_ok(st)) {
        rtb_ws_fail(cn, 1008, "rate limit");
        return;
    }
    m = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!m || !json_is_object(m)) {
        rtb_ws_json(cn, json_pack("{s:s,s:s,s:s,s:i,s:i}", "type", "error", "code", "invalid_json",
                                  "message", m ? "a message must be a JSON object" : je.text,
                                  "line", m ? 0 : je.line, "column", m ? 0 : je.column));
        goto done;
    }
    type = json_string_value(json_object_get(m, "type"));
    board = json_string_value(json_object_get(m, "boardId"));
    if (!type) {
        rtb_ws_error(cn, "invalid_message", "a message needs a string \"type\"");
        goto done;
    }
    if (!strcmp(type, "ping")) {
        rtb_ws_text(cn, "{\"type\":\"pong\"}");
        goto done;
    }
    if (strcmp(type, "join") && strcmp(type, "leave") && strcmp(type, "typing") &&
        strcmp(type, "stop_typing") && strcmp(type, "cursor") && strcmp(type, "presence")) {
        rtb_ws_error(cn, "unknown_type", "unknown message type");
        goto done;
    }
    if (!board || !rtb_board_id_valid(board, strlen(board))) {
        rtb_ws_error(cn, "invalid_board", "boardId must be a board id");
        goto done;
    }
    sub = rtb_ws_find_sub(cn, board);
    if (!strcmp(type, "join"))
        ws_msg_join(cn, m, board, sub);
    else if (!sub)
        rtb_ws_error(cn, "not_joined", "join the board first");
    else if (!strcmp(type, "leave")) {
        ws_leave(cn, sub);
        rtb_ws_json(cn, json_pack("{s:s,s:s}", "type", "left", "boardId", board));
    } else if (!strcmp(type, "cursor"))
        ws_msg_cursor(cn, m, board, apr_time_now());
    else if (!strcmp(type, "presence"))
        ws_msg_presence(cn, m, board);
    else
        ws_msg_typing(cn, m, type, board, apr_time_now());
done:
    if (m)
        json_decref(m);
}

/* ------------------------------------------------------------------ */
/* transport callbacks                                                  */

static void ws_on_record(rtb_conn_t *cn, rtb_sub_t *sub, int kind, apr_uint64_t id,
                         const char *json, apr_size_t len)
{
    (void)id;
    if (kind == RTB_KIND_EPHEMERAL) {
        /* a user's own typing and cursors are not echoed to their sockets */
        if ((strstr(json, "\"type\":\"user_typing\"") ||
             strstr(json, "\"type\":\"user_stopped_typing\"") ||
             strstr(json, "\"type\":\"cursor\"")) &&
            strstr(json, apr_psprintf(cn->scratch, "\"userId\":\"%s\"", cn->user)))
            return;
        rtb_ws_frame(cn, RTB_WS_OP_TEXT, json, len);
        return;
    }
    rtb_ws_frame(cn, RTB_WS_OP_TEXT, json, len);
    rtb_conn_count_delivered(1);
    if (strstr(json, "\"type\":\"board_deleted\"")) {
        rtb_ws_state_t *st = cn->tdata;
        rtb_engine_unsubscribe(cn, sub);
        st->njoined--;
        rtb_presence_leave(cn, sub->board);
        /* the stream of that board is closed; a socket still in other rooms stays */
        if (st->njoined <= 0)
            rtb_ws_fail(cn, 4004, "board deleted");
    }
}

static void ws_on_readable(rtb_conn_t *cn)
{
    rtb_ws_state_t *st = cn->tdata;
    unsigned char *buf = malloc(WS_READ_CHUNK);
    rtb_cfg_t *cfg = rtb_cfg(cn->c->base_server);
    int rounds = 0;
    apr_status_t rv;

    if (!buf)
        return;
    while (!cn->closing && rounds++ < 16) {
        apr_size_t len = WS_READ_CHUNK, off = 0;
        rv = rtb_conn_read(cn, buf, &len);
        if (rv != APR_SUCCESS) {
            if (!APR_STATUS_IS_EAGAIN(rv)) {
                cn->c->aborted = 1;
                rtb_conn_close(cn, RTB_CLOSE_PEER);
            }
            break;
        }
        while (off < len && !cn->closing) {
            rtb_ws_event_t ev;
            size_t used = 0;
            int rc = rtb_ws_parse(&st->parser, buf + off, len - off, &used, &ev);
            off += used;
            if (rc < 0) {
                ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, cn->c, "RTB0051: bad frame: %s",
                              rtb_ws_strerror(rc));
                rtb_ws_fail(cn, rtb_ws_error_close_code(rc), rtb_ws_strerror(rc));
                break;
            }
            if (rc == 0)
                break;
            switch (ev.type) {
            case RTB_WS_EV_DATA:
                if (ev.opcode == RTB_WS_OP_BINARY) {
                    rtb_ws_fail(cn, 1003, "binary messages are not supported");
                    break;
                }
                if (ev.len) {
                    char *nm = realloc(st->msg, st->mlen + ev.len + 1);
                    if (!nm || st->mlen + ev.len > cfg->ws_max_message) {
                        free(nm ? nm : st->msg);
                        st->msg = NULL;
                        st->mlen = 0;
                        rtb_ws_fail(cn, 1009, "message too big");
                        break;
                    }
                    st->msg = nm;
                    memcpy(st->msg + st->mlen, ev.data, ev.len);
                    st->mlen += ev.len;
                }
                if (ev.flags & RTB_WS_FLAG_LAST) {
                    ws_on_message(cn, st->msg ? st->msg : "", st->mlen);
                    free(st->msg);
                    st->msg = NULL;
                    st->mlen = 0;
                }
                break;
            case RTB_WS_EV_PING:
                /* control frames count against the message rate too */
                if (!ws_rate_ok(st)) {
                    rtb_ws_fail(cn, 1008, "rate limit");
                    break;
                }
                rtb_ws_frame(cn, RTB_WS_OP_PONG, ev.data, ev.len);
                break;
            case RTB_WS_EV_PONG:
                st->awaiting_pong = 0;
                break;
            case RTB_WS_EV_CLOSE:
                /* echo the code, then end */
                st->close_code = ev.close_code ? ev.close_code : 1000;
                st->close_reason = "";
                rtb_conn_close(cn, RTB_CLOSE_DONE);
                break;
            }
        }
    }
    free(buf);
}

static void ws_on_timer(rtb_conn_t *cn, apr_time_t now)
{
    rtb_ws_state_t *st = cn->tdata;
    rtb_cfg_t *cfg = rtb_cfg(cn->c->base_server);
    apr_time_t next;

    /* the engine's loop does this every pass; a blocking socket's loop does it here */
    if (cn->blocking)
        rtb_presence_tick(cn->c->base_server, now);
    if (st->awaiting_pong && now - st->ping_sent_at >= apr_time_from_sec(cfg->ws_ping)) {
        rtb_ws_fail(cn, 1001, "no pong");
        return;
    }
    if (now >= st->next_ping) {
        static const char payload[] = "rtb";
        rtb_ws_frame(cn, RTB_WS_OP_PING, payload, 3);
        st->ping_sent_at = now;
        st->awaiting_pong = 1;
        st->next_ping = now + apr_time_from_sec(cfg->ws_ping);
    }
    if (st->typing_until && now >= st->typing_until) {
        st->typing_until = 0;
        ws_publish_typing(cn, "user_stopped_typing", st->typing_board, st->typing_task);
    }
    if (st->cursor_pending)
        ws_send_cursor(cn, st, now);
    next = st->next_ping;
    if (st->typing_until && st->typing_until < next)
        next = st->typing_until;
    if (next > now + apr_time_from_sec(1))
        next = now + apr_time_from_sec(1);
    cn->next_timer = next;
}

/* Leases and typing of a socket that ends, however it ends. */
static apr_status_t ws_cleanup(void *data)
{
    rtb_conn_t *cn = data;
    rtb_ws_state_t *st = cn->tdata;
    if (st->typing_until)
        ws_publish_typing(cn, "user_stopped_typing", st->typing_board, st->typing_task);
    rtb_presence_leave_all(cn);
    free(st->msg);
    free(st->origin);
    free(st);
    cn->tdata = NULL;
    return APR_SUCCESS;
}

const rtb_transport_t rtb_ws_transport = {
    .name = "ws",
    .transport = RTB_T_WS,
    .on_record = ws_on_record,
    .on_readable = ws_on_readable,
    .on_timer = ws_on_timer,
    .on_close = rtb_ws_close_frame,
    .http_body = 0,
    .release_request = 1,
};

rtb_ws_state_t *rtb_ws_state_create(rtb_conn_t *cn, request_rec *r)
{
    rtb_cfg_t *cfg = rtb_cfg(r->server);
    conn_rec *c = r->connection;
    /* malloc'd, not from the connection's pool: see rtb_ws_origin_t */
    rtb_ws_state_t *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    rtb_ws_parser_init(&st->parser, cfg->ws_max_message);
    st->tokens = WS_MSG_BURST;
    st->tokens_at = apr_time_now();
    st->next_ping = apr_time_now() + apr_time_from_sec(cfg->ws_ping);
    /* without a copy (kept request, or no memory for it) joins use the request */
    st->origin = rtb_ws_keep_request() ? NULL : rtb_ws_origin_save(r);
    cn->keep_request = st->origin == NULL;
    if (apr_table_get(r->notes, RTB_TICKET_BOARD_NOTE))
        apr_cpystrn(st->ticket_board, apr_table_get(r->notes, RTB_TICKET_BOARD_NOTE),
                    sizeof(st->ticket_board));
    /* the connection's log id now: logging from a join's worker would
     * otherwise make it in the connection's pool, which the loop uses */
    if (!c->log_id)
        ap_run_generate_log_id(c, NULL, &c->log_id);
    cn->tdata = st;
    apr_pool_cleanup_register(c->pool, cn, ws_cleanup, apr_pool_cleanup_null);
    return st;
}
