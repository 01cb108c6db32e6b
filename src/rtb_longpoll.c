/*
 * rtb_longpoll: long polling on the connection engine. See rtb_longpoll.h.
 */
#include "rtb_longpoll.h"
#include "rtb_config.h"
#include "rtb_engine.h"
#include "rtb_http.h"
#include "rtb_limits.h"
#include "rtb_replay.h"

#include "http_protocol.h"
#include "apr_strings.h"

#define LP_DEFAULT_TIMEOUT 30 /* seconds, when ?timeout= is not given */

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
    rtb_conn_count_delivered(1);
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
        n = apr_snprintf(head, sizeof(head),
                         "],\"lastEventId\":%" APR_UINT64_T_FMT ",\"timeout\":false}", st->last);
    } else {
        n = apr_snprintf(head, sizeof(head),
                         "{\"data\":[],\"lastEventId\":%" APR_UINT64_T_FMT ",\"timeout\":%s}",
                         st->since,
                         why == RTB_CLOSE_TIMEOUT || why == RTB_CLOSE_STOPPING ? "true" : "false");
    }
    rtb_conn_write(cn, head, (apr_size_t)n);
    free(st->events);
    st->events = NULL;
    st->len = 0;
}

static const rtb_transport_t lp_transport = {
    .name = "longpoll",
    .transport = RTB_T_LONGPOLL,
    .on_record = lp_on_record,
    .on_readable = rtb_conn_drain_input,
    .on_timer = lp_on_timer,
    .on_close = lp_on_close,
    .http_body = 1,
    .release_request = 0,
};

int rtb_longpoll_handle(request_rec *r, const rtb_route_t *rt)
{
    rtb_cfg_t *cfg = rtb_cfg(r->server);
    long long since = rtb_query_id(r, "since"), timeout = rtb_query_id(r, "timeout");
    rtb_replay_t rp;
    apr_uint64_t start;
    rtb_db_t db;
    rtb_conn_t *cn;
    lp_state_t *st;
    int rc, opened = 0;
    const char *body;

    if (since == -2)
        return rtb_send_error(r, HTTP_BAD_REQUEST, "invalid_since",
                              "since must be an event id (a non-negative integer)", "since");
    if (timeout == -2)
        return rtb_send_error(r, HTTP_BAD_REQUEST, "invalid_timeout",
                              "timeout must be a number of seconds", "timeout");
    if (timeout < 0)
        timeout = LP_DEFAULT_TIMEOUT;
    if (timeout > cfg->poll_max_timeout)
        timeout = cfg->poll_max_timeout;

    start = rtb_bus_ring_position();
    rc = rtb_replay_start(&rp, &db, &opened, r, r->pool, rt->board, since, RTB_REPLAY_PAGE, &start);
    if (opened)
        rtb_db_close(&db);
    if (rc == HTTP_SERVICE_UNAVAILABLE)
        return rtb_send_db_unavailable(r);
    if (rc != OK)
        return rtb_send_board_error(r, rc, rt->board);
    if (rp.reset || rp.events->nelts) {
        /* something to say at once: the same answer as /updates */
        body = rtb_replay_updates_json(r->pool, r->server, &rp);
        return rtb_send_body(r, HTTP_OK, body, strlen(body));
    }
    if (timeout == 0) {
        body = apr_psprintf(r->pool,
                            "{\"data\":[],\"lastEventId\":%" APR_UINT64_T_FMT ",\"timeout\":true}",
                            rp.since);
        return rtb_send_body(r, HTTP_OK, body, strlen(body));
    }

    if (rtb_limits_take_stream(r) != OK)
        return rtb_send_too_many_streams(r);
    r->status = HTTP_OK;
    ap_set_content_type(r, "application/json; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (r->user)
        apr_table_set(r->headers_out, "X-RTBoard-User", r->user);
    r->connection->keepalive = AP_CONN_CLOSE;
    cn = rtb_conn_create(r, &lp_transport, start);
    st = apr_pcalloc(r->connection->pool, sizeof(*st));
    st->since = rp.since;
    st->deadline = apr_time_now() + apr_time_from_sec(timeout);
    cn->tdata = st;
    rtb_engine_subscribe(cn, rt->board, rp.since);
    return rtb_engine_hand_off(cn);
}
