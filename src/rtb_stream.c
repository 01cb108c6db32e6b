/*
 * rtb_stream: the HTTP streaming transports on the connection engine:
 * Server-Sent Events (one board or several) and long polling. Both resume
 * from an event id: from the shared ring when it still holds the next
 * event, else from the event log in the database.
 */
#include "rtb_engine.h"
#include "rtb_rest.h"
#include "rtb_store.h"
#include "rtb_sse.h"
#include "rtb_ring.h"
#include "rtb_ws.h"

#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_strings.h"

APLOG_USE_MODULE(rtboard);

#define STREAM_MAX_BOARDS 16
#define STREAM_PAGE 1000
#define STREAM_REPLAY_CHUNK (64 * 1024)

/* ------------------------------------------------------------------ */
/* replay                                                               */

typedef struct {
    apr_uint64_t id;
    const char *json;
} stream_ev_t;

typedef struct {
    const char *board;
    apr_uint64_t last;  /* the board's lastEventId when read */
    apr_uint64_t since; /* what the client has */
    int reset;          /* the client must reload the snapshot */
    apr_array_header_t *events; /* stream_ev_t after `since`, in order */
} stream_replay_t;

/* The event's type, read from its envelope {"id":N,"type":"...",...}. */
const char *rtb_event_type(apr_pool_t *p, const char *json)
{
    const char *t = strstr(json, "\"type\":\"");
    const char *e;
    if (!t)
        return "message";
    t += 8;
    e = strchr(t, '"');
    return e ? apr_pstrmemdup(p, t, (apr_size_t)(e - t)) : "message";
}

/* Events of `board` after `since` from the ring, if it still holds since+1. */
static int stream_from_ring(apr_pool_t *p, stream_replay_t *rp)
{
    rtb_ring_t *ring = rtb_bus_ring();
    apr_uint64_t g, expect = rp->since + 1;
    rtb_ring_rec_t rec;
    if (!ring || rtb_ring_lock() != APR_SUCCESS)
        return 0;
    g = rtb_ring_find(ring, rp->board, expect);
    if (!g) {
        rtb_ring_unlock();
        return 0;
    }
    while (rtb_ring_iter(ring, &g, rp->board, &rec) == RTB_RING_OK) {
        stream_ev_t *e;
        if (rec.kind != RTB_KIND_EVENT || rec.event_id < expect)
            continue;
        if (rec.event_id != expect)
            break;
        e = apr_array_push(rp->events);
        e->id = rec.event_id;
        e->json = apr_pstrmemdup(p, rec.payload, rec.len);
        expect++;
    }
    rtb_ring_unlock();
    return expect > rp->last; /* covered everything the store knew of */
}

/*
 * Fills `rp` for one board: its lastEventId and the events after `since`
 * (since == -1: none, start live). Returns OK, HTTP_NOT_FOUND or a 5xx.
 */
static int stream_replay(request_rec *r, rtb_db_t *db, stream_replay_t *rp, long long since)
{
    const char *a1[1] = {rp->board};
    apr_array_header_t *rows;
    const char **row;

    rp->events = apr_array_make(r->pool, 8, sizeof(stream_ev_t));
    rows = rtb_db_select(db, RTB_SQL_BOARD_GET, 1, a1, NULL);
    if (!rows)
        return HTTP_INTERNAL_SERVER_ERROR;
    if (!rows->nelts)
        return HTTP_NOT_FOUND;
    row = APR_ARRAY_IDX(rows, 0, const char **);
    rp->last = (apr_uint64_t)apr_atoi64(row[3]);
    if (since < 0 || (apr_uint64_t)since == rp->last) {
        rp->since = rp->last;
        return OK;
    }
    rp->since = (apr_uint64_t)since;
    if (rtb_history_gone(r, rp->since, rp->last)) {
        rp->reset = 1; /* from another history, or older than the kept one */
        return OK;
    }
    if (stream_from_ring(r->pool, rp))
        return OK;
    apr_array_clear(rp->events);
    {
        apr_uint64_t cur = rp->since;
        for (;;) {
            const char *args[3] = {rp->board, apr_psprintf(r->pool, "%" APR_UINT64_T_FMT, cur),
                                   apr_itoa(r->pool, STREAM_PAGE)};
            int i;
            rows = rtb_db_select(db, RTB_SQL_EVENTS_SINCE, 3, args, NULL);
            if (!rows)
                return HTTP_INTERNAL_SERVER_ERROR;
            for (i = 0; i < rows->nelts; i++) {
                const char **er = APR_ARRAY_IDX(rows, i, const char **);
                apr_uint64_t id = (apr_uint64_t)apr_atoi64(er[0]);
                stream_ev_t *e;
                if (id != cur + 1) {
                    /* pruned from history: the client must reload */
                    apr_array_clear(rp->events);
                    rp->reset = 1;
                    return OK;
                }
                e = apr_array_push(rp->events);
                e->id = id;
                e->json = er[1];
                cur = id;
            }
            if (rows->nelts < STREAM_PAGE || cur >= rp->last)
                break;
        }
        if (cur < rp->last && rp->events->nelts == 0) {
            rp->reset = 1;
        }
    }
    return OK;
}

static const char *stream_reset_json(request_rec *r, const stream_replay_t *rp)
{
    return apr_psprintf(r->pool,
                        "{\"type\":\"reset\",\"boardId\":\"%s\",\"lastEventId\":%" APR_UINT64_T_FMT
                        ",\"snapshot\":\"%sboards/%s\"}",
                        rp->board, rp->last, rtb_cfg(r->server)->base, rp->board);
}

static int stream_error(request_rec *r, int status, const char *board)
{
    if (status == HTTP_NOT_FOUND)
        return rtb_send_error(r, HTTP_NOT_FOUND, "board_not_found",
                              apr_psprintf(r->pool, "no such board: %s", board), NULL);
    if (status == HTTP_FORBIDDEN || status == HTTP_UNAUTHORIZED)
        return rtb_send_error(r, status, "board_forbidden",
                              apr_psprintf(r->pool, "you may not read board %s", board), NULL);
    return rtb_send_error(r, status, "database_error", "could not read the event log", NULL);
}

/* ------------------------------------------------------------------ */
/* SSE                                                                  */

typedef struct {
    int multi;
    apr_time_t next_heartbeat;
    int heartbeat;
} sse_state_t;

/* The compound cursor of a multi-board stream: "a:12,b:7". */
static const char *sse_cursor(rtb_conn_t *cn, apr_pool_t *p)
{
    rtb_cursor_item_t items[STREAM_MAX_BOARDS];
    char buf[STREAM_MAX_BOARDS * (RTB_BOARD_ID_MAX + 24)];
    rtb_sub_t *sub;
    int n = 0;
    for (sub = cn->subs; sub && n < STREAM_MAX_BOARDS; sub = sub->cnext) {
        apr_cpystrn(items[n].board, sub->board, sizeof(items[n].board));
        items[n].id = sub->last_id;
        n++;
    }
    if (!rtb_sse_format_cursor(buf, sizeof(buf), items, n))
        return "";
    return apr_pstrdup(p, buf);
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
    const char *type, *idstr;
    if (kind != RTB_KIND_EVENT)
        return; /* presence and typing travel over WebSockets */
    type = rtb_event_type(p, json);
    idstr = st->multi ? sse_cursor(cn, p) : apr_psprintf(p, "%" APR_UINT64_T_FMT, id);
    sse_put(cn, p, idstr, type, json, len);
    rtb_engine_count_delivered(1);
    if (!strcmp(type, "board_deleted")) {
        rtb_conn_unsubscribe(cn, sub);
        if (!st->multi)
            rtb_conn_close(cn, RTB_CLOSE_DELETED);
    }
}

/* A stream's client sends nothing: readable means it went away. */
static void stream_on_readable(rtb_conn_t *cn)
{
    apr_bucket_brigade *bb = cn->ibb;
    apr_status_t rv;
    int rounds = 0;
    do {
        rv = ap_get_brigade(cn->c->input_filters, bb, AP_MODE_READBYTES, APR_NONBLOCK_READ,
                            4096);
        if (rv == APR_SUCCESS && APR_BRIGADE_EMPTY(bb))
            rv = APR_EAGAIN; /* a non-blocking read with nothing to give */
        apr_brigade_cleanup(bb);
    } while (rv == APR_SUCCESS && ++rounds < 8);
    if (rv != APR_SUCCESS && !APR_STATUS_IS_EAGAIN(rv)) {
        cn->c->aborted = 1;
        rtb_conn_close(cn, RTB_CLOSE_PEER);
    }
}

static void sse_on_timer(rtb_conn_t *cn, apr_time_t now)
{
    sse_state_t *st = cn->tdata;
    static const char hb[] = ": heartbeat\n\n";
    if (now >= st->next_heartbeat) {
        rtb_conn_write(cn, hb, sizeof(hb) - 1);
        st->next_heartbeat = now + apr_time_from_sec(st->heartbeat);
    }
    cn->next_timer = st->next_heartbeat;
}

static void sse_on_close(rtb_conn_t *cn, int why)
{
    static const char bye[] =
        "event: reconnect\ndata: {\"type\":\"reconnect\",\"reason\":\"server restarting\"}\n\n";
    if (why == RTB_CLOSE_STOPPING)
        rtb_conn_write(cn, bye, sizeof(bye) - 1);
}

static const rtb_transport_t sse_transport = {
    "sse", RTB_T_SSE, sse_on_record, stream_on_readable, sse_on_timer, sse_on_close, 1, 1};

/* Reads the resume cursor: Last-Event-ID, else ?lastEventId=. NULL when absent. */
static const char *stream_cursor_arg(request_rec *r)
{
    const char *h = apr_table_get(r->headers_in, "Last-Event-ID");
    return h ? h : rtb_query_arg(r, "lastEventId");
}

static int sse_handle(request_rec *r, const rtb_route_t *rt)
{
    rtb_cfg_t *cfg = rtb_cfg(r->server);
    stream_replay_t rp[STREAM_MAX_BOARDS];
    rtb_cursor_item_t items[STREAM_MAX_BOARDS];
    int nb = 0, i, j, multi = rt->id == RTB_R_MULTI_EVENTS, rc;
    const char *cur = stream_cursor_arg(r);
    apr_uint64_t start;
    rtb_db_t db;
    rtb_conn_t *cn;
    sse_state_t *st;
    apr_pool_t *p = r->pool;
    char retry[32];

    memset(rp, 0, sizeof(rp));
    if (multi) {
        const char *list = rtb_query_arg(r, "boards");
        char *tok, *last;
        if (!list || !*list)
            return rtb_send_error(r, HTTP_BAD_REQUEST, "missing_boards",
                                  "give ?boards=a,b (at most 16)", "boards");
        for (tok = apr_strtok(apr_pstrdup(p, list), ",", &last); tok;
             tok = apr_strtok(NULL, ",", &last)) {
            if (!rtb_board_slug_valid(tok, strlen(tok)) || nb == STREAM_MAX_BOARDS)
                return rtb_send_error(r, HTTP_BAD_REQUEST, "invalid_boards",
                                      "boards must be up to 16 board ids", "boards");
            for (j = 0; j < nb; j++)
                if (!strcmp(rp[j].board, tok))
                    break;
            if (j < nb)
                continue;
            rp[nb++].board = tok;
        }
    }
    else {
        rp[0].board = rt->board;
        nb = 1;
    }

    /* the cursor: one id, or a:12,b:7 for several boards */
    for (i = 0; i < nb; i++)
        rp[i].since = (apr_uint64_t)-1;
    if (cur && *cur) {
        if (!multi) {
            apr_uint64_t id;
            if (rtb_sse_parse_id(cur, &id) != 0)
                return rtb_send_error(r, HTTP_BAD_REQUEST, "invalid_last_event_id",
                                      "Last-Event-ID must be an event id (a number)",
                                      "lastEventId");
            rp[0].since = id;
        }
        else {
            int n = 0;
            if (rtb_sse_parse_cursor(cur, items, STREAM_MAX_BOARDS, &n) != 0)
                return rtb_send_error(r, HTTP_BAD_REQUEST, "invalid_last_event_id",
                                      "Last-Event-ID must look like a:12,b:7", "lastEventId");
            for (j = 0; j < n; j++)
                for (i = 0; i < nb; i++)
                    if (!strcmp(items[j].board, rp[i].board))
                        rp[i].since = items[j].id;
        }
    }

    /* every board is authorized exactly as GET /boards/:b */
    if (multi) {
        for (i = 0; i < nb; i++) {
            rc = rtb_board_allowed(r, rp[i].board, "GET", NULL);
            if (rc != OK)
                return stream_error(r, rc == HTTP_UNAUTHORIZED ? HTTP_FORBIDDEN : rc,
                                    rp[i].board);
        }
    }

    start = rtb_engine_ring_position();
    if (rtb_db_open(&db, r) < 0)
        return rtb_send_error(r, HTTP_SERVICE_UNAVAILABLE, "database_unavailable",
                              "the database is not available", NULL);
    for (i = 0; i < nb; i++) {
        long long since = rp[i].since == (apr_uint64_t)-1 ? -1 : (long long)rp[i].since;
        rc = stream_replay(r, &db, &rp[i], since);
        if (rc != OK) {
            rtb_db_close(&db);
            return stream_error(r, rc, rp[i].board);
        }
    }
    rtb_db_close(&db);

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
    r->connection->keepalive = AP_CONN_CLOSE;
    rtb_conn_hold_head(r);

    cn = rtb_conn_create(r, &sse_transport, start);
    st = apr_pcalloc(r->connection->pool, sizeof(*st));
    st->multi = multi;
    st->heartbeat = cfg->heartbeat > 0 ? cfg->heartbeat : 15;
    st->next_heartbeat = apr_time_now() + apr_time_from_sec(st->heartbeat);
    cn->tdata = st;
    /* subscriptions start where the client is: replay advances them */
    for (i = nb - 1; i >= 0; i--)
        rtb_conn_subscribe(cn, rp[i].board, rp[i].reset ? rp[i].last : rp[i].since);

    apr_snprintf(retry, sizeof(retry), "retry: %d\n\n", cfg->retry_ms);
    rtb_conn_write(cn, retry, strlen(retry));
    {
        const char *connected;
        if (multi) {
            rtb_cursor_item_t now[STREAM_MAX_BOARDS];
            char buf[STREAM_MAX_BOARDS * (RTB_BOARD_ID_MAX + 24)];
            for (i = 0; i < nb; i++) {
                apr_cpystrn(now[i].board, rp[i].board, sizeof(now[i].board));
                now[i].id = rp[i].last;
            }
            if (!rtb_sse_format_cursor(buf, sizeof(buf), now, nb))
                buf[0] = '\0';
            connected = apr_psprintf(p, "{\"type\":\"connected\",\"lastEventId\":\"%s\"}",
                                     buf);
        }
        else {
            connected = apr_psprintf(p, "{\"type\":\"connected\",\"lastEventId\":%"
                                        APR_UINT64_T_FMT "}",
                                     rp[0].last);
        }
        sse_put(cn, p, NULL, NULL, connected, strlen(connected));
    }
    for (i = 0; i < nb; i++) {
        rtb_sub_t *sub;
        for (sub = cn->subs; sub && strcmp(sub->board, rp[i].board); sub = sub->cnext)
            ;
        if (rp[i].reset) {
            const char *rj = stream_reset_json(r, &rp[i]);
            sse_put(cn, p, multi ? sse_cursor(cn, p)
                                 : apr_psprintf(p, "%" APR_UINT64_T_FMT, rp[i].last),
                    "reset", rj, strlen(rj));
            continue;
        }
        for (j = 0; j < rp[i].events->nelts; j++) {
            stream_ev_t *e = &APR_ARRAY_IDX(rp[i].events, j, stream_ev_t);
            sub->last_id = e->id;
            sse_put(cn, p,
                    multi ? sse_cursor(cn, p) : apr_psprintf(p, "%" APR_UINT64_T_FMT, e->id),
                    rtb_event_type(p, e->json), e->json, strlen(e->json));
            /* a long replay goes out as it is built, never past the output cap */
            if (cn->olen >= STREAM_REPLAY_CHUNK && rtb_conn_flush(cn) < 0)
                return OK;
        }
    }
    /* the rest of the replay goes out from this thread, before the hand-off */
    if (rtb_conn_flush(cn) < 0 || r->connection->aborted || cn->closing)
        return OK; /* the client resumes from the last event it got */
    return rtb_conn_hand_off(cn);
}

/* ------------------------------------------------------------------ */
/* long polling                                                         */

typedef struct {
    apr_time_t deadline;
    apr_uint64_t since;
    char *events; /* "ev1,ev2" (malloc) */
    apr_size_t len;
    apr_uint64_t last;
} lp_state_t;

static void lp_on_record(rtb_conn_t *cn, rtb_sub_t *sub, int kind, apr_uint64_t id,
                         const char *json, apr_size_t len)
{
    lp_state_t *st = cn->tdata;
    char *nb;
    (void)sub;
    if (kind != RTB_KIND_EVENT)
        return;
    nb = realloc(st->events, st->len + len + 2);
    if (!nb)
        return;
    st->events = nb;
    if (st->len)
        st->events[st->len++] = ',';
    memcpy(st->events + st->len, json, len);
    st->len += len;
    st->last = id;
    rtb_engine_count_delivered(1);
    /* answer at the end of this pass, with every event it brought */
    rtb_conn_close(cn, RTB_CLOSE_DONE);
}

static void lp_on_timer(rtb_conn_t *cn, apr_time_t now)
{
    lp_state_t *st = cn->tdata;
    if (now >= st->deadline)
        rtb_conn_close(cn, RTB_CLOSE_TIMEOUT);
    cn->next_timer = st->deadline;
}

static void lp_on_close(rtb_conn_t *cn, int why)
{
    lp_state_t *st = cn->tdata;
    char head[96];
    int n;
    if (st->len) {
        static const char open[] = "{\"data\":[";
        rtb_conn_write(cn, open, sizeof(open) - 1);
        rtb_conn_write(cn, st->events, st->len);
        n = apr_snprintf(head, sizeof(head), "],\"lastEventId\":%" APR_UINT64_T_FMT
                         ",\"timeout\":false}", st->last);
    }
    else {
        n = apr_snprintf(head, sizeof(head),
                         "{\"data\":[],\"lastEventId\":%" APR_UINT64_T_FMT ",\"timeout\":%s}",
                         st->since, why == RTB_CLOSE_TIMEOUT || why == RTB_CLOSE_STOPPING
                                        ? "true" : "false");
    }
    rtb_conn_write(cn, head, (apr_size_t)n);
    free(st->events);
    st->events = NULL;
    st->len = 0;
}

static const rtb_transport_t lp_transport = {
    "longpoll", RTB_T_LONGPOLL, lp_on_record, stream_on_readable, lp_on_timer, lp_on_close, 1};

static int lp_handle(request_rec *r, const rtb_route_t *rt)
{
    rtb_cfg_t *cfg = rtb_cfg(r->server);
    long long since = rtb_query_id(r, "since"), timeout = rtb_query_id(r, "timeout");
    stream_replay_t rp;
    apr_uint64_t start;
    rtb_db_t db;
    rtb_conn_t *cn;
    lp_state_t *st;
    int rc, status, n;
    const char *body;

    if (since == -2)
        return rtb_send_error(r, HTTP_BAD_REQUEST, "invalid_since",
                              "since must be a non-negative integer", "since");
    if (timeout == -2)
        return rtb_send_error(r, HTTP_BAD_REQUEST, "invalid_timeout",
                              "timeout must be a number of seconds", "timeout");
    if (timeout < 0)
        timeout = 30;
    if (timeout > cfg->poll_max_timeout)
        timeout = cfg->poll_max_timeout;

    start = rtb_engine_ring_position();
    if (rtb_db_open(&db, r) < 0)
        return rtb_send_error(r, HTTP_SERVICE_UNAVAILABLE, "database_unavailable",
                              "the database is not available", NULL);
    memset(&rp, 0, sizeof(rp));
    rp.board = rt->board;
    rc = stream_replay(r, &db, &rp, since);
    if (rc != OK) {
        rtb_db_close(&db);
        return stream_error(r, rc, rt->board);
    }
    if (since < 0)
        since = (long long)rp.last;
    if ((apr_uint64_t)since != rp.last || timeout == 0) {
        /* something to say at once: the same answer as /updates */
        body = rtb_updates_body(r, &db, rt->board, (apr_uint64_t)since, &status, &n);
        rtb_db_close(&db);
        if (!body)
            return stream_error(r, status, rt->board);
        if (n == 0) {
            body = apr_psprintf(r->pool,
                                "{\"data\":[],\"lastEventId\":%" APR_INT64_T_FMT ",\"timeout\":%s}",
                                (apr_int64_t)since, timeout == 0 ? "true" : "false");
        }
        return rtb_send_body(r, HTTP_OK, body, strlen(body));
    }
    rtb_db_close(&db);

    r->status = HTTP_OK;
    ap_set_content_type(r, "application/json; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (r->user)
        apr_table_set(r->headers_out, "X-RTBoard-User", r->user);
    r->connection->keepalive = AP_CONN_CLOSE;
    cn = rtb_conn_create(r, &lp_transport, start);
    st = apr_pcalloc(r->connection->pool, sizeof(*st));
    st->since = (apr_uint64_t)since;
    st->deadline = apr_time_now() + apr_time_from_sec(timeout);
    cn->tdata = st;
    rtb_conn_subscribe(cn, rt->board, (apr_uint64_t)since);
    return rtb_conn_hand_off(cn);
}

/* ------------------------------------------------------------------ */

int rtb_engine_dispatch(request_rec *r, const rtb_route_t *rt)
{
    switch (rt->id) {
    case RTB_R_EVENTS:
    case RTB_R_MULTI_EVENTS:
        return sse_handle(r, rt);
    case RTB_R_POLL:
        return lp_handle(r, rt);
    default:
        return rtb_ws_dispatch(r, rt);
    }
}
