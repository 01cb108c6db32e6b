/*
 * rtb_blocking: the blocking fallback of the engine. See rtb_blocking.h.
 */
#include "rtb_blocking.h"

#include "http_protocol.h"
#include "apr_poll.h"
#include "apr_strings.h"

/* ------------------------------------------------------------------ */
/* hand-off                                                             */

/* The blocking path: the same callbacks, driven from the handler's thread. */
int rtb_blocking_run(rtb_conn_t *cn, const volatile apr_uint32_t *stopping)
{
    apr_uint64_t cursor = cn->start_gseq;
    apr_pool_t *p;
    apr_pollfd_t pfd;
    /*
     * An HTTP/2 stream's socket is its session's: input there is other
     * streams' frames, and the stream's own input ends with its request
     * (EOF is not the client leaving). It is left unwatched; a client that
     * goes away is found by the next write (heartbeats), which fails.
     */
    apr_socket_t *watch = cn->c->master ? NULL : cn->sock;
    cn->blocking = 1;
    cn->counted = 1;
    rtb_conn_count(cn, 1);
    apr_pool_create(&p, cn->r->pool);
    cn->scratch = p;
    memset(&pfd, 0, sizeof(pfd));
    pfd.desc_type = APR_POLL_SOCKET;
    pfd.desc.s = cn->sock;
    pfd.reqevents = APR_POLLIN;
    cn->next_timer = apr_time_now();
    while (!cn->closing && !cn->c->aborted && !*stopping) {
        apr_array_header_t *recs;
        int lapped, i;
        apr_int32_t nfd = 0;
        apr_uint32_t seen = rtb_bus_wake_value();
        apr_time_t now;
        rtb_sub_t *sub;

        apr_pool_clear(p);
        recs = rtb_conn_read_ring(p, &cursor, APR_UINT64_MAX, &lapped);
        if (lapped) {
            rtb_conn_close(cn, RTB_CLOSE_LAPPED);
            break;
        }
        /* a delivery may close the connection (through the transport) */
        // cppcheck-suppress knownConditionTrueFalse
        for (i = 0; i < recs->nelts && !cn->closing; i++) {
            rtb_rec_t *e = &APR_ARRAY_IDX(recs, i, rtb_rec_t);
            for (sub = cn->subs; sub; sub = sub->cnext) {
                if (sub->active && !strcmp(sub->board, e->board))
                    rtb_conn_deliver(sub, e);
            }
        }
        now = apr_time_now();
        if (now >= cn->next_timer && cn->vt->on_timer)
            cn->vt->on_timer(cn, now);
        rtb_conn_flush(cn);
        if (cn->closing)
            break;
        /* input, or the peer leaving; then sleep on the bus */
        if (watch && apr_poll(&pfd, 1, &nfd, 0) == APR_SUCCESS && nfd > 0)
            cn->vt->on_readable(cn);
        if (cn->closing)
            break;
        if (cn->vt->transport == RTB_T_WS) {
            /* a WebSocket also needs its socket watched: short naps */
            if (watch && apr_poll(&pfd, 1, &nfd, apr_time_from_msec(50)) == APR_SUCCESS && nfd > 0)
                cn->vt->on_readable(cn);
            if (rtb_bus_wake_value() != seen)
                continue;
        } else {
            rtb_bus_wait(seen, 250);
        }
    }
    if (!cn->closing)
        cn->close_why = cn->c->aborted ? RTB_CLOSE_PEER : RTB_CLOSE_STOPPING;
    if (cn->close_why != RTB_CLOSE_PEER && !cn->c->aborted) {
        cn->final = 1;
        cn->vt->on_close(cn, cn->close_why);
        rtb_conn_flush(cn);
    }
    rtb_conn_free_obuf(cn);
    rtb_conn_count(cn, -1);
    cn->counted = 0;
    apr_pool_destroy(p);
    if (!cn->vt->http_body) {
        cn->r->output_filters = cn->r->proto_output_filters = cn->c->output_filters;
        cn->c->keepalive = AP_CONN_CLOSE;
    }
    return OK;
}
