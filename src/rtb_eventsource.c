/*
 * rtb_eventsource: Server-Sent Events on the connection engine. See
 * rtb_eventsource.h; the wire format is rtb_sse (pure), the history
 * rtb_replay, the connection rtb_conn/rtb_engine.
 */
#include "rtb_eventsource.h"
#include "rtb_config.h"
#include "rtb_engine.h"
#include "rtb_http.h"
#include "rtb_limits.h"
#include "rtb_ids.h"
#include "rtb_replay.h"
#include "rtb_sse.h"

#include "http_protocol.h"
#include "http_request.h"
#include "apr_strings.h"

#define SSE_MAX_BOARDS 16
#define SSE_CURSOR_MAX (SSE_MAX_BOARDS * (RTB_BOARD_ID_MAX + 24))
#define SSE_REPLAY_CHUNK (64 * 1024) /* a long replay goes out in pieces of this */

typedef struct {
    int multi;
    apr_time_t next_heartbeat;
    int heartbeat;
} sse_state_t;

/* The event's type, read from its envelope {"id":N,"type":"...",...}. */
static const char *sse_event_type(apr_pool_t *p, const char *json)
{
    const char *t = strstr(json, "\"type\":\"");
    const char *e;
    if (!t)
        return "message";
    t += 8;
    e = strchr(t, '"');
    return e ? apr_pstrmemdup(p, t, (apr_size_t)(e - t)) : "message";
}

/* The compound cursor of a multi-board stream: "a:12,b:7". */
static const char *sse_cursor(rtb_conn_t *cn, apr_pool_t *p)
{
    rtb_cursor_item_t items[SSE_MAX_BOARDS];
    char buf[SSE_CURSOR_MAX];
    rtb_sub_t *sub;
    int n = 0;
    for (sub = cn->subs; sub && n < SSE_MAX_BOARDS; sub = sub->cnext) {
        apr_cpystrn(items[n].board, sub->board, sizeof(items[n].board));
        items[n].id = sub->last_id;
        n++;
    }
    if (!rtb_sse_format_cursor(buf, sizeof(buf), items, n))
        return "";
    return apr_pstrdup(p, buf);
}

/* The id line of an event: the event id, or the whole cursor of a multi-board stream. */
static const char *sse_id(rtb_conn_t *cn, apr_pool_t *p, apr_uint64_t id)
{
    sse_state_t *st = cn->tdata;
    return st->multi ? sse_cursor(cn, p) : apr_psprintf(p, "%" APR_UINT64_T_FMT, id);
}

static void sse_put(rtb_conn_t *cn, apr_pool_t *p, const char *id, const char *event,
                    const char *data, apr_size_t len)
{
    apr_size_t need = rtb_sse_encode(NULL, 0, id, event, data, len);
    char *buf;
    if (!need)
        return;
    buf = apr_palloc(p, need);
    rtb_sse_encode(buf, need, id, event, data, len);
    rtb_conn_write(cn, buf, need);
}

static void sse_on_record(rtb_conn_t *cn, rtb_sub_t *sub, int kind, apr_uint64_t id,
                          const char *json, apr_size_t len)
{
    sse_state_t *st = cn->tdata;
    apr_pool_t *p = cn->scratch;
    const char *type;
    if (kind != RTB_KIND_EVENT)
        return; /* presence and typing travel over WebSockets */
    type = sse_event_type(p, json);
    sse_put(cn, p, sse_id(cn, p, id), type, json, len);
    rtb_conn_count_delivered(1);
    if (!strcmp(type, "board_deleted")) {
        rtb_engine_unsubscribe(cn, sub);
        if (!st->multi)
            rtb_conn_close(cn, RTB_CLOSE_DELETED);
    }
}

static void sse_on_timer(rtb_conn_t *cn, apr_time_t now)
{
    sse_state_t *st = cn->tdata;
    if (now >= st->next_heartbeat) {
        char buf[32];
        apr_size_t n = rtb_sse_comment(buf, sizeof(buf), "heartbeat");
        rtb_conn_write(cn, buf, n);
        st->next_heartbeat = now + apr_time_from_sec(st->heartbeat);
    }
    cn->next_timer = st->next_heartbeat;
}

static void sse_on_close(rtb_conn_t *cn, int why)
{
    static const char bye[] = "{\"type\":\"reconnect\",\"reason\":\"server restarting\"}";
    if (why == RTB_CLOSE_STOPPING)
        sse_put(cn, cn->scratch, NULL, "reconnect", bye, sizeof(bye) - 1);
}

static const rtb_transport_t sse_transport = {
    .name = "sse",
    .transport = RTB_T_SSE,
    .on_record = sse_on_record,
    .on_readable = rtb_conn_drain_input,
    .on_timer = sse_on_timer,
    .on_close = sse_on_close,
    .http_body = 1,
    .release_request = 1,
};

/* Reads the resume cursor: Last-Event-ID, else ?lastEventId=. NULL when absent. */
static const char *sse_cursor_arg(request_rec *r)
{
    const char *h = apr_table_get(r->headers_in, "Last-Event-ID");
    return h ? h : rtb_query_arg(r, "lastEventId");
}

/*
 * The boards of the request, deduplicated, and where the client is on each
 * (-1: start live). Returns OK, or DONE when refused (answered).
 */
static int sse_parse(request_rec *r, const rtb_route_t *rt, int multi, const char **boards,
                     long long *since, int *nb)
{
    const char *cur = sse_cursor_arg(r);
    int i, j;
    *nb = 0;
    if (multi) {
        const char *list = rtb_query_arg(r, "boards");
        char *tok, *last;
        if (!list || !*list) {
            rtb_send_error(r, HTTP_BAD_REQUEST, "missing_boards", "give ?boards=a,b (at most 16)",
                           "boards");
            return DONE;
        }
        for (tok = apr_strtok(apr_pstrdup(r->pool, list), ",", &last); tok;
             tok = apr_strtok(NULL, ",", &last)) {
            if (!rtb_board_id_valid(tok, strlen(tok)) || *nb == SSE_MAX_BOARDS) {
                rtb_send_error(r, HTTP_BAD_REQUEST, "invalid_boards",
                               "boards must be up to 16 board ids", "boards");
                return DONE;
            }
            for (j = 0; j < *nb && strcmp(boards[j], tok); j++)
                ;
            if (j == *nb)
                boards[(*nb)++] = tok;
        }
        if (!*nb) { /* only separators: a stream of nothing */
            rtb_send_error(r, HTTP_BAD_REQUEST, "missing_boards", "give ?boards=a,b (at most 16)",
                           "boards");
            return DONE;
        }
    } else {
        boards[(*nb)++] = rt->board;
    }
    for (i = 0; i < *nb; i++)
        since[i] = -1;
    if (!cur || !*cur)
        return OK;
    if (!multi) {
        apr_uint64_t id;
        if (rtb_sse_parse_id(cur, &id) != RTB_SSE_OK) {
            rtb_send_error(r, HTTP_BAD_REQUEST, "invalid_last_event_id",
                           "Last-Event-ID must be an event id (a number)", "lastEventId");
            return DONE;
        }
        since[0] = (long long)id;
    } else {
        rtb_cursor_item_t items[SSE_MAX_BOARDS];
        int n = 0;
        if (rtb_sse_parse_cursor(cur, items, SSE_MAX_BOARDS, &n) != RTB_SSE_OK) {
            rtb_send_error(r, HTTP_BAD_REQUEST, "invalid_last_event_id",
                           "Last-Event-ID must look like a:12,b:7", "lastEventId");
            return DONE;
        }
        for (j = 0; j < n; j++)
            for (i = 0; i < *nb; i++)
                if (!strcmp(items[j].board, boards[i]))
                    since[i] = (long long)items[j].id;
    }
    return OK;
}

/* The first event of a stream: where the boards are now. */
static const char *sse_connected(apr_pool_t *p, int multi, const rtb_replay_t *rp, int nb)
{
    rtb_cursor_item_t now[SSE_MAX_BOARDS];
    char buf[SSE_CURSOR_MAX];
    int i;
    if (!multi)
        return apr_psprintf(p, "{\"type\":\"connected\",\"lastEventId\":%" APR_UINT64_T_FMT "}",
                            rp[0].last);
    for (i = 0; i < nb; i++) {
        apr_cpystrn(now[i].board, rp[i].board, sizeof(now[i].board));
        now[i].id = rp[i].last;
    }
    if (!rtb_sse_format_cursor(buf, sizeof(buf), now, nb))
        buf[0] = '\0';
    return apr_psprintf(p, "{\"type\":\"connected\",\"lastEventId\":\"%s\"}", buf);
}

/*
 * Sends the replay of every board (a reset, or the events), advancing each
 * subscription as it goes. 0, or -1 when the client went away.
 */
static int sse_replay(request_rec *r, rtb_conn_t *cn, const rtb_replay_t *rp, int nb)
{
    apr_pool_t *p = r->pool;
    int i, j;
    for (i = 0; i < nb; i++) {
        rtb_sub_t *sub;
        for (sub = cn->subs; sub && strcmp(sub->board, rp[i].board); sub = sub->cnext)
            ;
        if (rp[i].reset) {
            const char *rj = rtb_replay_reset_json(p, r->server, &rp[i]);
            sse_put(cn, p, sse_id(cn, p, rp[i].last), "reset", rj, strlen(rj));
            continue;
        }
        for (j = 0; j < rp[i].events->nelts; j++) {
            rtb_replay_event_t *e = &APR_ARRAY_IDX(rp[i].events, j, rtb_replay_event_t);
            sub->last_id = e->id;
            sse_put(cn, p, sse_id(cn, p, e->id), sse_event_type(p, e->json), e->json,
                    strlen(e->json));
            /* a long replay goes out as it is built, never past the output cap */
            if (cn->olen >= SSE_REPLAY_CHUNK && rtb_conn_flush(cn) < 0)
                return -1;
        }
    }
    return 0;
}

int rtb_eventsource_handle(request_rec *r, const rtb_route_t *rt)
{
    rtb_cfg_t *cfg = rtb_cfg(r->server);
    rtb_replay_t rp[SSE_MAX_BOARDS];
    const char *boards[SSE_MAX_BOARDS];
    long long since[SSE_MAX_BOARDS];
    int nb = 0, i, multi = rt->id == RTB_R_MULTI_EVENTS, rc = OK, opened = 0;
    apr_uint64_t start;
    rtb_db_t db;
    rtb_conn_t *cn;
    sse_state_t *st;
    char retry[32];
    const char *connected;

    if (sse_parse(r, rt, multi, boards, since, &nb) != OK)
        return OK;
    /* every board is authorized exactly as GET /boards/:b (the single
     * board's own route was, by Apache, before this handler) */
    for (i = 0; multi && i < nb; i++) {
        rc = rtb_board_allowed(r, boards[i], "GET", NULL);
        if (rc != OK)
            return rtb_send_board_error(r, rc, boards[i]);
    }

    start = rtb_bus_ring_position();
    for (i = 0; i < nb; i++) {
        rc = rtb_replay_start(&rp[i], &db, &opened, r, r->pool, boards[i], since[i], 0, &start);
        if (rc != OK)
            break;
    }
    if (opened)
        rtb_db_close(&db);
    if (rc == HTTP_SERVICE_UNAVAILABLE)
        return rtb_send_db_unavailable(r);
    if (rc != OK)
        return rtb_send_board_error(r, rc, boards[i]);

    /* headers and first bytes at once */
    r->status = HTTP_OK;
    ap_set_content_type(r, "text/event-stream; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-cache, no-transform");
    apr_table_setn(r->headers_out, "X-Accel-Buffering", "no");
    if (r->user)
        apr_table_set(r->headers_out, "X-RTBoard-User", r->user);
    apr_table_setn(r->subprocess_env, "no-gzip", "1");
    if (r->header_only)
        return OK; /* HEAD: the head of a stream, and no stream */
    if (rtb_limits_take_stream(r) != OK)
        return rtb_send_too_many_streams(r);
    r->connection->keepalive = AP_CONN_CLOSE;
    rtb_conn_hold_head(r);

    cn = rtb_conn_create(r, &sse_transport, start);
    st = apr_pcalloc(r->connection->pool, sizeof(*st));
    st->multi = multi;
    st->heartbeat = cfg->heartbeat > 0 ? cfg->heartbeat : 15;
    st->next_heartbeat = apr_time_now() + apr_time_from_sec(st->heartbeat);
    cn->tdata = st;
    /* subscriptions start where the client is: the replay advances them */
    for (i = nb - 1; i >= 0; i--)
        rtb_engine_subscribe(cn, rp[i].board, rp[i].reset ? rp[i].last : rp[i].since);

    rtb_conn_write(cn, retry, rtb_sse_retry(retry, sizeof(retry), (unsigned)cfg->retry_ms));
    connected = sse_connected(r->pool, multi, rp, nb);
    sse_put(cn, r->pool, NULL, NULL, connected, strlen(connected));
    if (sse_replay(r, cn, rp, nb) < 0)
        return OK; /* the client resumes from the last event it got */
    /* the rest of the replay goes out from this thread, before the hand-off */
    if (rtb_conn_flush(cn) < 0 || r->connection->aborted || cn->closing)
        return OK;
    return rtb_engine_hand_off(cn);
}
