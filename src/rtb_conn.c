/*
 * rtb_conn: a long-lived connection's record, its output queue and the
 * delivery of ring records to its subscriptions. See rtb_conn.h.
 */
#include "rtb_conn.h"
#include "rtb_config.h"

#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_connection.h"
#include "apr_strings.h"
#include "apr_atomic.h"

#include <errno.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>

APLOG_USE_MODULE(rtboard);

#define CONN_MAX_RECORDS 20000         /* ring records copied out in one read */
#define CONN_DIRECT_SNDBUF (64 * 1024) /* SO_SNDBUF of a stream written directly */

static volatile apr_uint32_t conn_next_id;
static const rtb_conn_loop_t *conn_loop;
static ap_filter_rec_t *conn_head_filter_handle;

void rtb_conn_set_loop(const rtb_conn_loop_t *loop)
{
    conn_loop = loop;
}

/* ------------------------------------------------------------------ */
/* counters                                                             */

void rtb_conn_count(rtb_conn_t *cn, int delta)
{
    rtb_child_slot_t *sl = rtb_bus_my_slot();
    int t = cn->blocking ? RTB_T_BLOCKING : cn->vt->transport;
    if (sl)
        apr_atomic_add32(&sl->conns[t], (apr_uint32_t)delta);
}

void rtb_conn_count_delivered(apr_uint64_t n)
{
    rtb_child_slot_t *sl = rtb_bus_my_slot();
    if (sl)
        apr_atomic_add64(&sl->delivered, n);
}

rtb_conn_t *rtb_conn_create(request_rec *r, const rtb_transport_t *vt, apr_uint64_t start_gseq)
{
    conn_rec *c = r->connection;
    rtb_conn_t *cn = apr_pcalloc(c->pool, sizeof(*cn));
    apr_os_sock_t fd = -1;
    cn->r = r;
    cn->c = c;
    cn->vt = vt;
    cn->sock = ap_get_conn_socket(c);
    if (cn->sock)
        apr_os_sock_get(&fd, cn->sock);
    cn->fd = fd;
    cn->out = vt->http_body ? r->output_filters : c->output_filters;
    cn->bb = apr_brigade_create(c->pool, c->bucket_alloc);
    cn->ibb = apr_brigade_create(c->pool, c->bucket_alloc);
    cn->scratch = r->pool;
    cn->start_gseq = start_gseq;
    cn->id = apr_atomic_inc32(&conn_next_id) + 1;
    cn->user = r->user ? apr_pstrdup(c->pool, r->user) : "anonymous";
    cn->name = cn->user;
    {
        rtb_cfg_t *cfg = rtb_cfg(r->server);
        const char *n = cfg->name_var ? apr_table_get(r->subprocess_env, cfg->name_var) : NULL;
        if (n && *n)
            cn->name = apr_pstrdup(c->pool, n);
    }
    return cn;
}

void rtb_conn_write(rtb_conn_t *cn, const char *buf, apr_size_t len)
{
    rtb_cfg_t *cfg;
    /* once closing, only the transport's last words (on_close) go out */
    if (cn->closing && (!cn->final || cn->close_why == RTB_CLOSE_PEER))
        return;
    cfg = rtb_cfg(cn->c->base_server);
    if (cn->olen + len > cfg->out_cap && !cn->closing) {
        rtb_child_slot_t *sl = rtb_bus_my_slot();
        if (sl)
            apr_atomic_inc64(&sl->dropped);
        ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, cn->c,
                      "RTB0040: client too slow (%" APR_SIZE_T_FMT " bytes queued); cut, it "
                      "resumes by event id",
                      cn->olen);
        rtb_conn_close(cn, RTB_CLOSE_SLOW);
        return;
    }
    if (cn->olen + len > cn->ocap) {
        apr_size_t nc = cn->ocap ? cn->ocap * 2 : 1024;
        char *nb;
        while (nc < cn->olen + len)
            nc *= 2;
        nb = realloc(cn->obuf, nc);
        if (!nb) {
            rtb_conn_close(cn, RTB_CLOSE_SLOW);
            return;
        }
        cn->obuf = nb;
        cn->ocap = nc;
    }
    memcpy(cn->obuf + cn->olen, buf, len);
    cn->olen += len;
    if (conn_loop && !cn->blocking && cn->in_pollset)
        conn_loop->mark_dirty(cn);
}

void rtb_conn_free_obuf(rtb_conn_t *cn)
{
    free(cn->obuf);
    cn->obuf = NULL;
    cn->olen = cn->ocap = 0;
}

/* Room in the socket's send buffer, so a write with FLUSH will not block. */
static int conn_socket_room(rtb_conn_t *cn, apr_size_t len)
{
    int outq = 0, sndbuf = 0;
    socklen_t sl = sizeof(sndbuf);
    /* only the loop must never block: a handler or the blocking path may wait */
    if (cn->fd < 0 || cn->blocking || !cn->in_pollset)
        return 1;
    if (ioctl(cn->fd, SIOCOUTQ, &outq) < 0 ||
        getsockopt(cn->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &sl) < 0)
        return 1;
    /* the kernel doubles SO_SNDBUF for bookkeeping: use half, conservatively */
    return (apr_size_t)outq + len <= (apr_size_t)sndbuf / 2 || outq == 0;
}

/*
 * Whether the loop may write straight to the socket: nothing but Apache's
 * core writes the connection (mod_reqtimeout's output filter only watches
 * for the end of a request), and the core holds no byte set aside. TLS,
 * HTTP/2 and any other connection filter keep the filter path.
 */
static int conn_direct_ok(const rtb_conn_t *cn)
{
    const ap_filter_t *f;
    if (cn->fd < 0 || cn->blocking || !cn->in_pollset || cn->closing ||
        cn->c->data_in_output_filters)
        return 0;
    if (cn->direct)
        return 1; /* written directly before: nothing adds a filter to a held connection */
    for (f = cn->out; f; f = f->next) {
        if (f->frec == ap_core_output_filter_handle)
            return f->next == NULL;
        if (strcasecmp(f->frec->name, "reqtimeout") != 0)
            return 0;
    }
    return 0;
}

/*
 * One non-blocking send of the queue: what the socket does not take stays
 * queued, and the loop waits for room. One system call per flush, where the
 * filter path takes three (room check, send buffer size, send) and a bucket
 * for each piece.
 */
static int conn_flush_direct(rtb_conn_t *cn)
{
    ssize_t n;
    if (!cn->direct) {
        /* a fixed send buffer: what a slow reader leaves unread waits in
         * the queue, where RTBoardOutputCap counts it, not in a kernel
         * buffer autotuned up to megabytes */
        int sndbuf = CONN_DIRECT_SNDBUF;
        setsockopt(cn->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
        cn->direct = 1;
    }
    do
        n = send(cn->fd, cn->obuf, cn->olen, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        ap_log_cerror(APLOG_MARK, APLOG_DEBUG, APR_FROM_OS_ERROR(errno), cn->c,
                      "RTB0041: write failed; closing");
        cn->c->aborted = 1;
        rtb_conn_close(cn, RTB_CLOSE_PEER);
        return -1;
    }
    if (n < 0)
        n = 0;
    if ((apr_size_t)n < cn->olen) {
        memmove(cn->obuf, cn->obuf + n, cn->olen - (apr_size_t)n);
        cn->olen -= (apr_size_t)n;
        if (conn_loop)
            conn_loop->set_pollout(cn, 1);
        return 0;
    }
    /* an idle stream holds no output buffer */
    rtb_conn_free_obuf(cn);
    if (conn_loop)
        conn_loop->set_pollout(cn, 0);
    return 0;
}

int rtb_conn_flush(rtb_conn_t *cn)
{
    apr_status_t rv;
    if (!cn->olen)
        return 0;
    if (cn->c->aborted)
        return -1;
    if (conn_direct_ok(cn))
        return conn_flush_direct(cn);
    if (!cn->closing && !conn_socket_room(cn, cn->olen)) {
        if (conn_loop)
            conn_loop->set_pollout(cn, 1);
        return 0;
    }
    /* the bucket takes the buffer as it is (free() when written): no copy,
     * and no allocation from the connection's pool on every event */
    APR_BRIGADE_INSERT_TAIL(cn->bb,
                            apr_bucket_heap_create(cn->obuf, cn->olen, free, cn->c->bucket_alloc));
    cn->obuf = NULL;
    cn->olen = cn->ocap = 0;
    APR_BRIGADE_INSERT_TAIL(cn->bb, apr_bucket_flush_create(cn->c->bucket_alloc));
    rv = ap_pass_brigade(cn->out, cn->bb);
    apr_brigade_cleanup(cn->bb);
    if (conn_loop && !cn->blocking && cn->in_pollset)
        conn_loop->set_pollout(cn, 0);
    if (rv != APR_SUCCESS || cn->c->aborted) {
        ap_log_cerror(APLOG_MARK, APLOG_DEBUG, rv, cn->c, "RTB0041: write failed; closing");
        cn->c->aborted = 1;
        rtb_conn_close(cn, RTB_CLOSE_PEER);
        return -1;
    }
    return 0;
}

void rtb_conn_close(rtb_conn_t *cn, int why)
{
    if (cn->closing)
        return;
    ap_log_cerror(APLOG_MARK, APLOG_TRACE1, 0, cn->c, "RTB0047: %s connection ends (%d)",
                  cn->vt->name, why);
    cn->closing = 1;
    cn->close_why = why;
    if (conn_loop && !cn->blocking && cn->in_pollset)
        conn_loop->queue_close(cn);
}

/* ------------------------------------------------------------------ */
/* delivery                                                             */

/* Hands one ring record to a subscription: events in id order, once. */
void rtb_conn_deliver(rtb_sub_t *sub, const rtb_rec_t *rec)
{
    rtb_conn_t *cn = sub->cn;
    if (cn->closing || !sub->active)
        return;
    if (rec->kind == RTB_KIND_EPHEMERAL && rec->gseq < sub->ephemeral_from)
        return; /* already reflected in the presence list the client was sent */
    if (rec->kind != RTB_KIND_EPHEMERAL) {
        if (rec->id <= sub->last_id)
            return; /* already sent (replayed by the handler) */
        if (rec->id != sub->last_id + 1) {
            /* a gap: some record never reached us; the client resumes by id */
            ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, cn->c,
                          "RTB0042: gap on %s (%" APR_UINT64_T_FMT " after %" APR_UINT64_T_FMT
                          "); closing so the client resumes",
                          sub->board, rec->id, sub->last_id);
            rtb_conn_close(cn, RTB_CLOSE_LAPPED);
            return;
        }
        sub->last_id = rec->id;
    }
    cn->vt->on_record(cn, sub, rec->kind, rec->id, rec->json, rec->len);
}

/* Copies records [*cursor, min(next, limit)) out of the ring, under the lock. */
apr_array_header_t *rtb_conn_read_ring(apr_pool_t *p, apr_uint64_t *cursor, apr_uint64_t limit,
                                       int *lapped)
{
    rtb_ring_t *ring = rtb_bus_ring();
    apr_array_header_t *out = apr_array_make(p, 16, sizeof(rtb_rec_t));
    rtb_ring_rec_t rr;
    int n = 0;
    *lapped = 0;
    if (!ring || rtb_bus_lock() != APR_SUCCESS)
        return out;
    if (*cursor < rtb_ring_oldest(ring)) {
        *lapped = 1;
        *cursor = rtb_ring_oldest(ring);
    }
    while (*cursor < rtb_ring_next(ring) && *cursor < limit && n < CONN_MAX_RECORDS) {
        if (rtb_ring_get(ring, *cursor, &rr) == RTB_RING_OK) {
            rtb_rec_t *e = apr_array_push(out);
            e->board = apr_pstrmemdup(p, rr.board, rr.board_len);
            e->id = rr.event_id;
            e->kind = (int)rr.kind;
            e->gseq = rr.gseq;
            e->json = apr_pstrmemdup(p, rr.payload, rr.len);
            e->len = rr.len;
            n++;
        }
        (*cursor)++;
    }
    rtb_bus_unlock();
    return out;
}

/*
 * Holds the response head until the first bytes of the body come with a
 * FLUSH, and passes both at once. HTTP_HEADER passes the head on its own,
 * which the core output filter would set aside in a "deferred write" pool
 * of the connection: a page that a stream then keeps for its whole life.
 */
static apr_status_t conn_head_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    apr_bucket_brigade *held = f->ctx;
    apr_bucket *e, *next;
    int flush = 0;
    if (f->r->header_only) {
        /* no body will come: nothing to wait for */
        ap_remove_output_filter(f);
        return ap_pass_brigade(f->next, bb);
    }
    if (!held)
        held = f->ctx = apr_brigade_create(f->r->pool, f->c->bucket_alloc);
    for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb); e = next) {
        next = APR_BUCKET_NEXT(e);
        if (APR_BUCKET_IS_FLUSH(e) || APR_BUCKET_IS_EOS(e)) {
            flush = 1;
            break;
        }
        /* the caller may reuse its brigade's memory: keep our own copy */
        if (apr_bucket_setaside(e, f->r->pool) != APR_SUCCESS) {
            flush = 1;
            break;
        }
    }
    if (!flush) {
        APR_BRIGADE_CONCAT(held, bb);
        return APR_SUCCESS;
    }
    APR_BRIGADE_PREPEND(bb, held);
    ap_remove_output_filter(f);
    return ap_pass_brigade(f->next, bb);
}

void rtb_conn_hold_head(request_rec *r)
{
    ap_add_output_filter_handle(conn_head_filter_handle, NULL, r, r->connection);
}

/*
 * Whether the socket can be read directly: nothing but Apache's core (and
 * mod_logio's byte count) reads the connection, and the core's filter holds
 * nothing read ahead (its brigade has the socket's bucket or nothing).
 *
 * Right after the request the core's filter still holds the empty remainder
 * of the request's last read (with its 8 KB buffer). With `drop` it is
 * dropped here; otherwise the first read goes through the filters, which
 * drop it, and take their read buffer from the connection's allocator: the
 * block an SSE response's head was written in, which the allocator kept
 * free, and which is unmapped after that read. An SSE stream that dropped
 * its remainder here kept that block: 12.3 KiB per stream instead of 8.3
 * (`bench/fanout`). A WebSocket's 101 is written from the connection's own
 * buffer, so there is no such block, and the read is saved.
 */
static int conn_direct_read_ok(const conn_rec *c, int drop)
{
    const ap_filter_t *f;
    const core_net_rec *net = NULL;
    apr_bucket *e, *next;
    for (f = c->input_filters; f; f = f->next) {
        if (f->frec == ap_core_input_filter_handle)
            net = f->ctx;
        else if (strcasecmp(f->frec->name, "log_input_output") != 0)
            return 0;
    }
    if (!net)
        return 0;
    if (!net->in_ctx || !net->in_ctx->b)
        return 1;
    for (e = APR_BRIGADE_FIRST(net->in_ctx->b); e != APR_BRIGADE_SENTINEL(net->in_ctx->b);
         e = next) {
        next = APR_BUCKET_NEXT(e);
        if (APR_BUCKET_IS_SOCKET(e))
            continue;
        if (!drop || e->length != 0 || APR_BUCKET_IS_METADATA(e))
            return 0;
        apr_bucket_delete(e);
    }
    return 1;
}

/*
 * The filters' read takes a fresh 8 KB block from the connection's
 * allocator each time, and a stream's allocator keeps no free block
 * (rtb_engine_hand_off): every read through them maps a block and unmaps it
 * again, and each unmapping stops every core running the child.
 */
apr_status_t rtb_conn_read(rtb_conn_t *cn, void *buf, apr_size_t *len)
{
    apr_bucket_brigade *bb = cn->ibb;
    apr_status_t rv;
    if (!cn->direct_read && cn->fd >= 0 && conn_direct_read_ok(cn->c, cn->drop_remainder))
        cn->direct_read = 1;
    if (cn->direct_read) {
        ssize_t n;
        do
            n = recv(cn->fd, buf, *len, MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        if (n > 0) {
            *len = (apr_size_t)n;
            return APR_SUCCESS;
        }
        if (n == 0)
            return APR_EOF;
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? APR_EAGAIN : APR_FROM_OS_ERROR(errno);
    }
    rv = ap_get_brigade(cn->c->input_filters, bb, AP_MODE_READBYTES, APR_NONBLOCK_READ, *len);
    if (rv == APR_SUCCESS && APR_BRIGADE_EMPTY(bb))
        rv = APR_EAGAIN; /* a non-blocking read with nothing to give */
    if (rv == APR_SUCCESS)
        rv = apr_brigade_flatten(bb, (char *)buf, len);
    apr_brigade_cleanup(bb);
    return rv;
}

/* A stream's client sends nothing: readable means it went away. */
void rtb_conn_drain_input(rtb_conn_t *cn)
{
    char buf[4096];
    apr_status_t rv;
    int rounds = 0;
    do {
        apr_size_t len = sizeof(buf);
        rv = rtb_conn_read(cn, buf, &len);
    } while (rv == APR_SUCCESS && ++rounds < 8);
    if (rv != APR_SUCCESS && !APR_STATUS_IS_EAGAIN(rv)) {
        cn->c->aborted = 1;
        rtb_conn_close(cn, RTB_CLOSE_PEER);
    }
}

void rtb_conn_register_hooks(apr_pool_t *p)
{
    (void)p;
    conn_head_filter_handle = ap_register_output_filter("RTBOARD_HEAD", conn_head_filter, NULL,
                                                        (ap_filter_type)(AP_FTYPE_PROTOCOL + 5));
}
