/*
 * rtb_replay: a board's history from an event id, ring first, then the event
 * log. See rtb_replay.h for the rule.
 */
#include "rtb_replay.h"
#include "rtb_bus.h"
#include "rtb_config.h"
#include "rtb_engine.h"

#include "apr_strings.h"

/* Events after rp->since from the ring: 1 when it covered up to rp->last. */
static int replay_from_ring(rtb_replay_t *rp, apr_pool_t *p, int max)
{
    rtb_ring_t *ring = rtb_bus_ring();
    apr_uint64_t g, expect = rp->since + 1;
    rtb_ring_rec_t rec;
    if (!ring || rtb_bus_lock() != APR_SUCCESS)
        return 0;
    g = rtb_ring_find(ring, rp->board, expect);
    while (g && rtb_ring_iter(ring, &g, rp->board, &rec) == RTB_RING_OK) {
        rtb_replay_event_t *e;
        if (rec.kind != RTB_KIND_EVENT || rec.event_id < expect)
            continue;
        if (rec.event_id != expect || (max && rp->events->nelts == max))
            break;
        e = apr_array_push(rp->events);
        e->id = rec.event_id;
        e->json = apr_pstrmemdup(p, rec.payload, rec.len);
        expect++;
    }
    rtb_bus_unlock();
    if (expect > rp->last || (max && rp->events->nelts == max))
        return 1;
    apr_array_clear(rp->events);
    return 0;
}

/* Events after rp->since from the event log; sets rp->reset on a pruned start. */
static int replay_from_store(rtb_replay_t *rp, rtb_db_t *db, apr_pool_t *p, int max)
{
    apr_uint64_t cur = rp->since;
    while (cur < rp->last && (!max || rp->events->nelts < max)) {
        int page = RTB_REPLAY_PAGE, i;
        const char *args[3];
        apr_array_header_t *rows;
        if (max && max - rp->events->nelts < page)
            page = max - rp->events->nelts;
        args[0] = rp->board;
        args[1] = apr_psprintf(p, "%" APR_UINT64_T_FMT, cur);
        args[2] = apr_itoa(p, page);
        rows = rtb_db_select(db, RTB_SQL_EVENTS_SINCE, 3, args, NULL);
        if (!rows)
            return HTTP_INTERNAL_SERVER_ERROR;
        for (i = 0; i < rows->nelts; i++) {
            const char **er = APR_ARRAY_IDX(rows, i, const char **);
            apr_uint64_t id = (apr_uint64_t)apr_atoi64(er[0]);
            rtb_replay_event_t *e;
            if (id != cur + 1) {
                /* the next event was pruned from the history: reload */
                apr_array_clear(rp->events);
                rp->reset = 1;
                return OK;
            }
            e = apr_array_push(rp->events);
            e->id = id;
            e->json = er[1];
            cur = id;
        }
        if (rows->nelts < page)
            break;
    }
    if (cur < rp->last && !rp->events->nelts)
        rp->reset = 1; /* the log holds nothing after since: pruned */
    return OK;
}

/* An empty replay of `board`: no event, nothing known yet. */
static void replay_init(rtb_replay_t *rp, apr_pool_t *p, const char *board)
{
    memset(rp, 0, sizeof(*rp));
    rp->board = board;
    rp->events = apr_array_make(p, 8, sizeof(rtb_replay_event_t));
}

int rtb_replay_read(rtb_replay_t *rp, rtb_db_t *db, apr_pool_t *p, server_rec *s, const char *board,
                    long long since, int max)
{
    rtb_cfg_t *cfg = rtb_cfg(s);
    const char *a1[1] = {board};
    apr_array_header_t *rows;

    replay_init(rp, p, board);
    rows = rtb_db_select(db, RTB_SQL_BOARD_GET, 1, a1, NULL);
    if (!rows)
        return HTTP_INTERNAL_SERVER_ERROR;
    if (!rows->nelts)
        return HTTP_NOT_FOUND;
    rp->last = (apr_uint64_t)apr_atoi64(APR_ARRAY_IDX(rows, 0, const char **)[RTB_BC_SEQ]);
    if (since < 0 || (apr_uint64_t)since == rp->last) {
        rp->since = rp->last;
        return OK;
    }
    rp->since = (apr_uint64_t)since;
    if (rp->since > rp->last ||
        (cfg->history > 0 && rp->last - rp->since > (apr_uint64_t)cfg->history)) {
        rp->reset = 1; /* from another history, or older than the kept one */
        return OK;
    }
    if (!replay_from_ring(rp, p, max) && replay_from_store(rp, db, p, max) != OK)
        return HTTP_INTERNAL_SERVER_ERROR;
    if (!rp->reset && max && rp->events->nelts == max && rtb_replay_position(rp) < rp->last)
        rp->more = 1;
    return OK;
}

int rtb_replay_start(rtb_replay_t *rp, rtb_db_t *db, int *opened, request_rec *r, apr_pool_t *p,
                     const char *board, long long since, int max, apr_uint64_t *start)
{
    rtb_board_head_t h;
    int rc;
    h.known = -1;
    if (since < 0) {
        rtb_engine_board_head(board, &h);
        if (h.known == 1) {
            replay_init(rp, p, board);
            rp->last = rp->since = h.last;
            if (h.from < *start)
                *start = h.from;
            return OK;
        }
    }
    if (!*opened) {
        if (rtb_db_open(db, r) < 0)
            return HTTP_SERVICE_UNAVAILABLE;
        *opened = 1;
    }
    rc = rtb_replay_read(rp, db, p, r->server, board, since, max);
    if (rc == OK && h.known == 0)
        rtb_engine_board_learn(board, rp->last, &h);
    return rc;
}

apr_uint64_t rtb_replay_position(const rtb_replay_t *rp)
{
    if (rp->reset)
        return rp->last;
    if (rp->events->nelts)
        return APR_ARRAY_IDX(rp->events, rp->events->nelts - 1, rtb_replay_event_t).id;
    return rp->since;
}

const char *rtb_replay_reset_json(apr_pool_t *p, server_rec *s, const rtb_replay_t *rp)
{
    return apr_psprintf(p,
                        "{\"type\":\"reset\",\"boardId\":\"%s\",\"lastEventId\":%" APR_UINT64_T_FMT
                        ",\"snapshot\":\"%sboards/%s\"}",
                        rp->board, rp->last, rtb_cfg(s)->base, rp->board);
}

const char *rtb_replay_updates_json(apr_pool_t *p, server_rec *s, const rtb_replay_t *rp)
{
    int n = rp->events->nelts, i;
    struct iovec *iov;
    if (rp->reset)
        return apr_psprintf(p,
                            "{\"data\":[%s],\"lastEventId\":%" APR_UINT64_T_FMT ",\"reset\":true}",
                            rtb_replay_reset_json(p, s, rp), rp->last);
    if (!n) /* nothing new: where the board is */
        return apr_psprintf(p, "{\"data\":[],\"lastEventId\":%" APR_UINT64_T_FMT "}",
                            rtb_replay_position(rp));
    iov = apr_palloc(p, sizeof(struct iovec) * (2 * (apr_size_t)n + 2));
    iov[0].iov_base = "{\"data\":[";
    iov[0].iov_len = 9;
    for (i = 0; i < n; i++) {
        const rtb_replay_event_t *e = &APR_ARRAY_IDX(rp->events, i, rtb_replay_event_t);
        iov[1 + 2 * i].iov_base = (void *)(i ? "," : "");
        iov[1 + 2 * i].iov_len = i ? 1 : 0;
        iov[2 + 2 * i].iov_base = (void *)e->json;
        iov[2 + 2 * i].iov_len = strlen(e->json);
    }
    iov[1 + 2 * n].iov_base =
        apr_psprintf(p, "],\"lastEventId\":%" APR_UINT64_T_FMT ",\"more\":%s}",
                     rtb_replay_position(rp), rp->more ? "true" : "false");
    iov[1 + 2 * n].iov_len = strlen(iov[1 + 2 * n].iov_base);
    return apr_pstrcatv(p, iov, 2 * (apr_size_t)n + 2, NULL);
}
