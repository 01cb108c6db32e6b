/*
 * rtb_engine: one event loop per child process holding every long-lived
 * connection (see rtb_engine.h for the life of a stream).
 *
 * Threads of a child: the MPM's workers (handlers), the loop thread (owns
 * suspended connections), and a wake thread that sleeps on the ring's futex
 * word and wakes the loop's pollset when any child publishes.
 */
#include "rtb_engine.h"
#include "rtb_blocking.h"
#include "rtb_config.h"
#include "rtb_presence.h"
#include "rtb_ring.h"

#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_connection.h"
#include "mpm_common.h"
#include "ap_mpm.h"
#include "scoreboard.h"
#include "apr_strings.h"
#include "apr_poll.h"
#include "apr_thread_proc.h"
#include "apr_thread_mutex.h"
#include "apr_atomic.h"
#include "apr_thread_pool.h"

#include <sys/wait.h>

APLOG_USE_MODULE(rtboard);

#define ENGINE_TIMER_INTERVAL apr_time_from_msec(500)
#define ENGINE_DESTROY_GRACE apr_time_from_msec(100)
#define ENGINE_SOCKET_TIMEOUT apr_time_from_msec(500)
#define ENGINE_OLD_GENERATION_WAIT apr_time_from_msec(300)
/*
 * While connections keep arriving, the loop looks for hand-offs this often
 * instead of being woken for each: a worker has already written a new
 * stream's first messages, and what is published meanwhile is caught up
 * from the ring at adoption, so only the stream's later traffic waits.
 */
#define ENGINE_ADOPT_TICK apr_time_from_msec(2)

typedef struct engine_board_t {
    const char *name;
    rtb_sub_t *subs;
    apr_uint32_t count;
} engine_board_t;

/*
 * Boards' heads: the last event id of each board the loop has read a record
 * of (or a stream starting live has learned from the store), so that a live
 * start need not read the store. The table is the loop's and the workers'
 * (heads.lock); `cursor` is the loop's ring position for the whole table.
 * Emptied when full or when the loop falls behind the ring (its records
 * were not all read), which bumps `gen` so no learning from before lands.
 */
#define ENGINE_HEADS_MAX 4096

typedef struct {
    apr_uint64_t last;
    apr_uint64_t seen; /* gseq of the last record the loop read of the board, 0 if none */
    int deleted;       /* the last record was board_deleted: the board is gone or new */
} engine_head_t;

static struct {
    apr_thread_mutex_t *lock;
    apr_pool_t *pool; /* the entries; cleared when emptied */
    apr_hash_t *table;
    apr_uint64_t cursor;
    apr_uint32_t gen;
    int on;
} heads;

typedef struct engine_job_t {
    rtb_conn_t *cn;
    void (*fn)(void *);
    void (*done)(void *);
    void *data;
    struct engine_job_t *next;
} engine_job_t;

static struct {
    server_rec *s;
    apr_thread_pool_t *workers; /* blocking work for the loop: join checks, replays */
    engine_job_t *done_jobs;    /* guarded by qlock */
    apr_pool_t *pool;
    apr_pollset_t *ps;
    apr_thread_mutex_t *qlock;
    rtb_conn_t *queue; /* handed off, not yet adopted (guarded by qlock) */
    int adopting;      /* the loop looks at the queue every ENGINE_ADOPT_TICK (qlock) */
    apr_thread_t *loop_thread, *wake_thread;
    volatile apr_uint32_t stopping;
    int running;
    apr_hash_t *boards;
    rtb_conn_t *all;
    rtb_conn_t *dirty;
    rtb_conn_t *closing;
    apr_uint64_t cursor;
    apr_uint64_t pass;
    apr_time_t next_timer;
    apr_uint32_t nconns;
    apr_pool_t *pass_pool; /* cleared at every pass */
} eng;

static void engine_catch_up(rtb_conn_t *cn, apr_pool_t *p, apr_uint64_t upto);
static void engine_run_done_jobs(void);
static void engine_mark_dirty(rtb_conn_t *cn);
static void engine_set_pollout(rtb_conn_t *cn, int on);
static void engine_queue_close(rtb_conn_t *cn);

static const rtb_conn_loop_t engine_loop_ops = {
    .mark_dirty = engine_mark_dirty,
    .set_pollout = engine_set_pollout,
    .queue_close = engine_queue_close,
};

static engine_board_t *engine_board(const char *name, int create)
{
    engine_board_t *b = apr_hash_get(eng.boards, name, APR_HASH_KEY_STRING);
    if (!b && create) {
        b = apr_pcalloc(eng.pool, sizeof(*b));
        b->name = apr_pstrdup(eng.pool, name);
        apr_hash_set(eng.boards, b->name, APR_HASH_KEY_STRING, b);
    }
    return b;
}

static void engine_link_sub(rtb_sub_t *sub)
{
    engine_board_t *b = engine_board(sub->board, 1);
    sub->bprev = NULL;
    sub->bnext = b->subs;
    if (b->subs)
        b->subs->bprev = sub;
    b->subs = sub;
    b->count++;
    sub->active = 1;
}

static void engine_unlink_sub(rtb_sub_t *sub)
{
    engine_board_t *b;
    if (!sub->active)
        return;
    sub->active = 0;
    if (sub->cn->blocking || !sub->cn->in_pollset)
        return;
    b = engine_board(sub->board, 0);
    if (!b)
        return;
    if (sub->bprev)
        sub->bprev->bnext = sub->bnext;
    else
        b->subs = sub->bnext;
    if (sub->bnext)
        sub->bnext->bprev = sub->bprev;
    sub->bnext = sub->bprev = NULL;
    b->count--;
}

rtb_sub_t *rtb_engine_subscribe(rtb_conn_t *cn, const char *board, apr_uint64_t last_id)
{
    rtb_sub_t *sub = apr_pcalloc(cn->c->pool, sizeof(*sub));
    sub->cn = cn;
    apr_cpystrn(sub->board, board, sizeof(sub->board));
    sub->last_id = last_id;
    sub->cnext = cn->subs;
    cn->subs = sub;
    sub->active = 1;
    if (cn->in_pollset) {
        sub->active = 0;
        engine_link_sub(sub);
    }
    return sub;
}

void rtb_engine_catch_up(rtb_conn_t *cn, apr_uint64_t from)
{
    apr_pool_t *p;
    apr_uint64_t save = cn->start_gseq;
    if (cn->blocking || !cn->in_pollset)
        return; /* the blocking loop reads the ring itself; adoption catches up */
    apr_pool_create(&p, eng.pool);
    cn->start_gseq = from;
    engine_catch_up(cn, p, eng.cursor);
    cn->start_gseq = save;
    apr_pool_destroy(p);
}

void rtb_engine_unsubscribe(rtb_conn_t *cn, rtb_sub_t *sub)
{
    (void)cn;
    engine_unlink_sub(sub);
}

static void engine_mark_dirty(rtb_conn_t *cn)
{
    if (cn->dirty || cn->blocking || !cn->in_pollset)
        return;
    cn->dirty = 1;
    cn->dnext = eng.dirty;
    eng.dirty = cn;
}

static void engine_set_pollout(rtb_conn_t *cn, int on)
{
    if (!cn->in_pollset || cn->want_out == on)
        return;
    apr_pollset_remove(eng.ps, &cn->pfd);
    cn->pfd.reqevents = APR_POLLIN | (on ? APR_POLLOUT : 0);
    apr_pollset_add(eng.ps, &cn->pfd);
    cn->want_out = on;
}

/* Puts a connection on the closing list once; only adopted ones belong there. */
static void engine_queue_close(rtb_conn_t *cn)
{
    if (cn->blocking || !cn->in_pollset || cn->on_closing)
        return;
    cn->on_closing = 1;
    cn->qnext = eng.closing;
    eng.closing = cn;
}

static void engine_dispatch(const rtb_rec_t *rec)
{
    engine_board_t *b = engine_board(rec->board, 0);
    rtb_sub_t *sub, *next;
    if (!b)
        return;
    for (sub = b->subs; sub; sub = next) {
        next = sub->bnext;
        rtb_conn_deliver(sub, rec);
    }
}

/* Delivers the records one connection missed between its handler and its adoption. */
static void engine_catch_up(rtb_conn_t *cn, apr_pool_t *p, apr_uint64_t upto)
{
    apr_uint64_t cur = cn->start_gseq;
    apr_array_header_t *recs;
    int lapped, i;
    rtb_sub_t *sub;
    if (cur >= upto)
        return;
    recs = rtb_conn_read_ring(p, &cur, upto, &lapped);
    if (lapped) {
        rtb_conn_close(cn, RTB_CLOSE_LAPPED);
        return;
    }
    for (i = 0; i < recs->nelts; i++) {
        rtb_rec_t *e = &APR_ARRAY_IDX(recs, i, rtb_rec_t);
        for (sub = cn->subs; sub; sub = sub->cnext) {
            if (!strcmp(sub->board, e->board))
                rtb_conn_deliver(sub, e);
        }
    }
}

/* ------------------------------------------------------------------ */
/* finishing connections                                                */

static void engine_finish(rtb_conn_t *cn)
{
    conn_rec *c = cn->c;
    request_rec *r = cn->r;
    rtb_sub_t *sub;

    for (sub = cn->subs; sub; sub = sub->cnext)
        engine_unlink_sub(sub);
    if (cn->close_why != RTB_CLOSE_PEER && !c->aborted) {
        cn->final = 1;
        cn->vt->on_close(cn, cn->close_why);
        rtb_conn_flush(cn);
    }
    rtb_conn_free_obuf(cn);
    c->keepalive = AP_CONN_CLOSE;
    if (r) {
        if (cn->vt->http_body && !c->aborted) {
            ap_finalize_request_protocol(r);
        } else {
            r->output_filters = r->proto_output_filters = c->output_filters;
            r->input_filters = r->proto_input_filters = c->input_filters;
        }
        ap_process_request_after_handler(r); /* logs it; destroys r->pool */
        cn->r = NULL;
    }
    if (cn->counted) {
        rtb_conn_count(cn, -1);
        cn->counted = 0;
    }
}

/* Takes a finished connection out of the loop and destroys it when safe. */
static void engine_retire(rtb_conn_t *cn)
{
    if (cn->in_pollset) {
        apr_pollset_remove(eng.ps, &cn->pfd);
        cn->in_pollset = 0;
    }
    if (cn->prev)
        cn->prev->next = cn->next;
    else if (eng.all == cn)
        eng.all = cn->next;
    if (cn->next)
        cn->next->prev = cn->prev;
    cn->next = cn->prev = NULL;
    eng.nconns--;
}

static void engine_destroy(rtb_conn_t *cn)
{
    conn_rec *c = cn->c;
    /* the MPM's connection counters key off the state at destruction */
    if (c->cs)
        c->cs->state = CONN_STATE_SUSPENDED;
    apr_pool_destroy(c->pool);
}

/* ------------------------------------------------------------------ */
/* the loop                                                             */

/* Puts a connection on the loop's list of all connections. */
static void engine_link(rtb_conn_t *cn)
{
    cn->prev = NULL;
    cn->next = eng.all;
    if (eng.all)
        eng.all->prev = cn;
    eng.all = cn;
    eng.nconns++;
}

static void engine_adopt(rtb_conn_t *cn, apr_pool_t *p, apr_uint64_t ring_next)
{
    rtb_sub_t *sub;
    apr_time_t now = apr_time_now();
    cn->adopted = now;
    cn->passes = eng.pass;
    cn->next_timer = now;
    cn->scratch = eng.pass_pool;
    if (cn->sock)
        apr_socket_timeout_set(cn->sock, ENGINE_SOCKET_TIMEOUT);
    cn->pfd.desc_type = APR_POLL_SOCKET;
    cn->pfd.desc.s = cn->sock;
    cn->pfd.reqevents = APR_POLLIN;
    cn->pfd.client_data = cn;
    if (!cn->sock || apr_pollset_add(eng.ps, &cn->pfd) != APR_SUCCESS) {
        cn->c->aborted = 1;
        cn->closing = 1;
        cn->close_why = RTB_CLOSE_PEER;
        engine_finish(cn);
        /* destroyed in a later pass, through the closing list */
        cn->in_pollset = 0;
        cn->close_at = now + ENGINE_DESTROY_GRACE;
        engine_link(cn);
        cn->on_closing = 1;
        cn->qnext = eng.closing;
        eng.closing = cn;
        return;
    }
    cn->in_pollset = 1;
    engine_link(cn);
    for (sub = cn->subs; sub; sub = sub->cnext) {
        sub->active = 0;
        engine_link_sub(sub);
    }
    if (cn->olen)
        engine_mark_dirty(cn);
    engine_catch_up(cn, p, ring_next);
    if (cn->closing)
        engine_queue_close(cn); /* closed before (or while) it reached the loop */
}

/*
 * Logs and frees the request of a stream that no longer needs it (unless its
 * transport keeps it), once; not in the pass that adopted it, as the worker
 * that suspended it may still be finishing its own bookkeeping on the
 * connection.
 */
static void engine_release_request(rtb_conn_t *cn, apr_time_t now)
{
    if (!cn->vt->release_request || cn->settled || !cn->r || cn->closing || cn->c->aborted ||
        cn->jobs || cn->passes == eng.pass || now < cn->adopted + ENGINE_DESTROY_GRACE)
        return;
    cn->settled = 1;
    if (!cn->keep_request) {
        cn->out = cn->c->output_filters;
        if (!cn->vt->http_body) {
            cn->r->output_filters = cn->r->proto_output_filters = cn->c->output_filters;
            cn->r->input_filters = cn->r->proto_input_filters = cn->c->input_filters;
        }
        ap_process_request_after_handler(cn->r); /* logs it; destroys r->pool */
        cn->r = NULL;
    }
    /*
     * The core input filter keeps the request's 8 KB read buffer (an empty
     * remainder of it) until its next read: read once now, without blocking,
     * so an idle connection does not hold it.
     */
    cn->vt->on_readable(cn);
}

static void engine_timers(apr_time_t now)
{
    rtb_conn_t *cn, *next;
    for (cn = eng.all; cn; cn = next) {
        next = cn->next;
        engine_release_request(cn, now);
        if (!cn->closing && cn->in_pollset && now >= cn->next_timer && cn->vt->on_timer)
            cn->vt->on_timer(cn, now);
    }
}

/* Publishes this child's busiest boards to its status slot. */
static void engine_publish_status(void)
{
    rtb_child_slot_t *sl = rtb_bus_my_slot();
    apr_hash_index_t *hi;
    int n = 0, i;
    if (!sl)
        return;
    memset(sl->boards, 0, sizeof(sl->boards));
    for (hi = apr_hash_first(NULL, eng.boards); hi; hi = apr_hash_next(hi)) {
        engine_board_t *b = apr_hash_this_val(hi);
        int slot = -1;
        if (!b->count)
            continue;
        if (n < RTB_SLOT_BOARDS) {
            slot = n++;
        } else {
            for (i = 0; i < RTB_SLOT_BOARDS; i++) {
                if (sl->boards[i].conns < b->count &&
                    (slot < 0 || sl->boards[i].conns < sl->boards[slot].conns))
                    slot = i;
            }
        }
        if (slot >= 0) {
            apr_cpystrn(sl->boards[slot].board, b->name, sizeof(sl->boards[slot].board));
            sl->boards[slot].conns = b->count;
        }
    }
}

/* Input and writability reported by the pollset. */
static void engine_on_poll(const apr_pollfd_t *fds, apr_int32_t n)
{
    apr_int32_t i;
    for (i = 0; i < n; i++) {
        rtb_conn_t *cn = fds[i].client_data;
        if (!cn || cn->closing)
            continue;
        if (fds[i].rtnevents & APR_POLLOUT)
            rtb_conn_flush(cn);
        if (fds[i].rtnevents & (APR_POLLIN | APR_POLLHUP | APR_POLLERR))
            cn->vt->on_readable(cn);
    }
}

/* heads.lock held */
static void engine_heads_empty(void)
{
    apr_pool_clear(heads.pool);
    heads.table = apr_hash_make(heads.pool);
    heads.gen++;
}

/* heads.lock held: the board's entry, created (emptying a full table) when absent. */
static engine_head_t *engine_head(const char *board)
{
    engine_head_t *e = apr_hash_get(heads.table, board, APR_HASH_KEY_STRING);
    if (e)
        return e;
    if (apr_hash_count(heads.table) >= ENGINE_HEADS_MAX)
        engine_heads_empty();
    e = apr_pcalloc(heads.pool, sizeof(*e));
    apr_hash_set(heads.table, apr_pstrdup(heads.pool, board), APR_HASH_KEY_STRING, e);
    return e;
}

/* Loop thread, after each read of the ring: the boards' heads up to eng.cursor. */
static void engine_heads_update(const apr_array_header_t *recs, int lapped)
{
    int i;
    apr_thread_mutex_lock(heads.lock);
    if (lapped)
        engine_heads_empty();
    for (i = 0; i < recs->nelts; i++) {
        const rtb_rec_t *rec = &APR_ARRAY_IDX(recs, i, rtb_rec_t);
        engine_head_t *e;
        if (rec->kind != RTB_KIND_EVENT)
            continue;
        e = engine_head(rec->board);
        e->last = rec->id;
        e->seen = rec->gseq;
        e->deleted = strstr(rec->json, "\"type\":\"board_deleted\"") != NULL;
    }
    heads.cursor = eng.cursor;
    apr_thread_mutex_unlock(heads.lock);
}

void rtb_engine_board_head(const char *board, rtb_board_head_t *h)
{
    engine_head_t *e;
    memset(h, 0, sizeof(*h));
    h->known = -1;
    if (!heads.on)
        return;
    apr_thread_mutex_lock(heads.lock);
    e = apr_hash_get(heads.table, board, APR_HASH_KEY_STRING);
    h->known = e && !e->deleted;
    h->last = e ? e->last : 0;
    h->from = heads.cursor;
    h->gen = heads.gen;
    apr_thread_mutex_unlock(heads.lock);
}

void rtb_engine_board_learn(const char *board, apr_uint64_t last, const rtb_board_head_t *h)
{
    engine_head_t *e;
    if (!heads.on || h->known != 0)
        return;
    apr_thread_mutex_lock(heads.lock);
    e = apr_hash_get(heads.table, board, APR_HASH_KEY_STRING);
    /*
     * Records of the board before h->from were committed before the store
     * was read, so `last` covers them; one read since would make it stale.
     */
    if (heads.gen == h->gen && (!e || e->seen < h->from)) {
        e = engine_head(board);
        e->last = last;
        e->deleted = 0;
    }
    apr_thread_mutex_unlock(heads.lock);
}

/*
 * Connections handed over by the workers since the last pass. A pass that
 * found some makes the loop come back within ENGINE_ADOPT_TICK, and the
 * workers do not wake it meanwhile; the first pass that finds none lets them
 * wake it again.
 */
static void engine_adopt_queued(apr_pool_t *p, apr_uint64_t ring_next)
{
    rtb_conn_t *q, *cn;
    apr_thread_mutex_lock(eng.qlock);
    q = eng.queue;
    eng.queue = NULL;
    eng.adopting = q != NULL && !eng.stopping;
    apr_thread_mutex_unlock(eng.qlock);
    while (q) {
        cn = q;
        q = q->qnext;
        cn->qnext = NULL;
        engine_adopt(cn, p, ring_next);
    }
}

/* Writes what the pass queued, one write per connection. */
static void engine_flush_dirty(void)
{
    while (eng.dirty) {
        rtb_conn_t *cn = eng.dirty;
        eng.dirty = cn->dnext;
        cn->dirty = 0;
        cn->dnext = NULL;
        if (!cn->closing)
            rtb_conn_flush(cn);
    }
}

/* Finishes connections that ended; destroys them a little later. */
static void engine_reap_closing(apr_time_t now)
{
    rtb_conn_t *cn, *next, *keep = NULL;
    for (cn = eng.closing; cn; cn = next) {
        next = cn->qnext;
        if (cn->jobs > 0) {
            cn->qnext = keep; /* a worker still uses it */
            keep = cn;
            continue;
        }
        if (cn->in_pollset) {
            engine_finish(cn);
            engine_retire(cn);
            cn->close_at = cn->adopted + ENGINE_DESTROY_GRACE;
            if (cn->passes == eng.pass && cn->close_at <= now)
                cn->close_at = now + 1;
            cn->qnext = keep;
            keep = cn;
            continue;
        }
        if (now >= cn->close_at && cn->passes != eng.pass) {
            if (cn->next || cn->prev || eng.all == cn)
                engine_retire(cn);
            engine_destroy(cn);
            continue;
        }
        cn->qnext = keep;
        keep = cn;
    }
    eng.closing = keep;
}

/* Stopping, and nothing left to finish or adopt. */
static int engine_drained(void)
{
    rtb_conn_t *q;
    if (!eng.stopping || eng.all || eng.closing)
        return 0;
    apr_thread_mutex_lock(eng.qlock);
    q = eng.queue;
    apr_thread_mutex_unlock(eng.qlock);
    return q == NULL;
}

static void *APR_THREAD_FUNC engine_loop(apr_thread_t *thd, void *data)
{
    apr_pool_t *pass_pool;
    (void)data;
    apr_pool_create(&pass_pool, eng.pool);
    eng.pass_pool = pass_pool;
    do {
        apr_int32_t n = 0, i;
        const apr_pollfd_t *fds = NULL;
        apr_array_header_t *recs;
        apr_uint64_t ring_next;
        apr_time_t now;
        rtb_conn_t *cn;
        int lapped;

        if (apr_pollset_poll(eng.ps, eng.adopting ? ENGINE_ADOPT_TICK : apr_time_from_msec(250), &n,
                             &fds) != APR_SUCCESS)
            n = 0;
        eng.pass++;
        apr_pool_clear(pass_pool);
        engine_on_poll(fds, n);

        /* records published by any child since the last pass; a connection
         * adopted below catches up only to where this batch starts, since the
         * batch itself is dispatched to every subscriber, it included */
        ring_next = eng.cursor;
        recs = rtb_conn_read_ring(pass_pool, &eng.cursor, APR_UINT64_MAX, &lapped);
        engine_heads_update(recs, lapped);
        if (lapped) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, eng.s,
                         "RTB0043: this child fell behind the ring; its streams resume by id");
            for (cn = eng.all; cn; cn = cn->next)
                rtb_conn_close(cn, RTB_CLOSE_LAPPED);
        }
        engine_adopt_queued(pass_pool, ring_next);
        for (i = 0; i < recs->nelts; i++)
            engine_dispatch(&APR_ARRAY_IDX(recs, i, rtb_rec_t));
        engine_run_done_jobs();

        now = apr_time_now();
        rtb_presence_tick(eng.s, now); /* presence diffs whose window ended, reaping */
        if (now >= eng.next_timer) {
            engine_timers(now);
            engine_publish_status();
            eng.next_timer = now + ENGINE_TIMER_INTERVAL;
        }
        if (eng.stopping) {
            for (cn = eng.all; cn; cn = cn->next)
                rtb_conn_close(cn, RTB_CLOSE_STOPPING);
        }
        engine_flush_dirty();
        engine_reap_closing(now);
    } while (!engine_drained());
    apr_pool_destroy(pass_pool);
    apr_thread_exit(thd, APR_SUCCESS);
    return NULL;
}

/* Sleeps on the ring's futex word; wakes the loop when anyone publishes. */
static void *APR_THREAD_FUNC engine_wake_loop(apr_thread_t *thd, void *data)
{
    apr_uint32_t seen = rtb_bus_wake_value();
    (void)data;
    while (!eng.stopping) {
        apr_uint32_t now;
        rtb_bus_wait(seen, 500);
        now = rtb_bus_wake_value();
        if (now != seen) {
            seen = now;
            apr_pollset_wakeup(eng.ps);
        }
    }
    apr_thread_exit(thd, APR_SUCCESS);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* deferred work                                                        */

static void *APR_THREAD_FUNC engine_job_run(apr_thread_t *t, void *data)
{
    engine_job_t *job = data;
    (void)t;
    job->fn(job->data);
    apr_thread_mutex_lock(eng.qlock);
    job->next = eng.done_jobs;
    eng.done_jobs = job;
    apr_thread_mutex_unlock(eng.qlock);
    apr_pollset_wakeup(eng.ps);
    return NULL;
}

int rtb_engine_defer(rtb_conn_t *cn, void (*fn)(void *), void (*done)(void *), void *data)
{
    engine_job_t *job;
    if (cn->blocking || !eng.workers) {
        fn(data);
        done(data);
        return 0;
    }
    job = calloc(1, sizeof(*job));
    if (!job)
        return -1;
    job->cn = cn;
    job->fn = fn;
    job->done = done;
    job->data = data;
    cn->jobs++;
    if (apr_thread_pool_push(eng.workers, engine_job_run, job, 0, NULL) != APR_SUCCESS) {
        cn->jobs--;
        free(job);
        return -1;
    }
    return 0;
}

/* Loop thread: completions of deferred jobs, in no particular order. */
static void engine_run_done_jobs(void)
{
    engine_job_t *job, *next;
    apr_thread_mutex_lock(eng.qlock);
    job = eng.done_jobs;
    eng.done_jobs = NULL;
    apr_thread_mutex_unlock(eng.qlock);
    for (; job; job = next) {
        next = job->next;
        job->cn->jobs--;
        job->done(job->data);
        free(job);
    }
}

int rtb_engine_hand_off(rtb_conn_t *cn)
{
    conn_rec *c = cn->c;
    int async = 0;
    ap_mpm_query(AP_MPMQ_IS_ASYNC, &async);
    if (!eng.running || !async || !c->cs || c->master || c->clogging_input_filters || eng.stopping)
        return rtb_blocking_run(cn, &eng.stopping);
    /* the reqtimeout filter would cut an idle stream */
    ap_remove_input_filter_byhandle(c->input_filters, "reqtimeout");
    c->keepalive = AP_CONN_CLOSE;
    ap_set_module_config(c->conn_config, &rtboard_module, cn);
    cn->counted = 1;
    rtb_conn_count(cn, 1);
    /*
     * From here on, memory the connection frees (its request, at release)
     * goes back to the system instead of staying in its allocator's free
     * list for the stream's whole life. Only for streams: on a keep-alive
     * connection this would unmap and map a block on every request. The
     * engine destroys the connection's pool itself, so the allocator never
     * returns to the MPM's recycled pools with this setting.
     */
    apr_allocator_max_free_set(apr_pool_allocator_get(c->pool), 1);
    return SUSPENDED;
}

/* Runs in the worker after the handler returned SUSPENDED: queue to the loop. */
static void engine_suspend_hook(conn_rec *c, request_rec *r)
{
    rtb_conn_t *cn;
    int wake;
    (void)r;
    if (!c->cs || c->cs->state != CONN_STATE_SUSPENDED)
        return;
    cn = ap_get_module_config(c->conn_config, &rtboard_module);
    if (!cn)
        return;
    ap_set_module_config(c->conn_config, &rtboard_module, NULL);
    apr_thread_mutex_lock(eng.qlock);
    /* a queue that was not empty already has its wake-up on the way (the
     * loop takes the whole queue at once), and a loop adopting comes back by
     * itself */
    wake = eng.queue == NULL && !eng.adopting;
    cn->qnext = eng.queue;
    eng.queue = cn;
    apr_thread_mutex_unlock(eng.qlock);
    if (wake)
        apr_pollset_wakeup(eng.ps);
}

/* Graceful restart or stop: end every stream so the child can exit. */
static void engine_child_stopping(apr_pool_t *pchild, int graceful)
{
    (void)pchild;
    (void)graceful;
    if (!eng.running)
        return;
    apr_atomic_set32(&eng.stopping, 1);
    apr_pollset_wakeup(eng.ps);
    /* the wake thread sleeps on the bus for up to 500 ms: a child whose exit
     * waits for it misses the parent's first look for exited children after
     * a graceful restart, and the new generation starts a second or two late */
    rtb_bus_wake_sleepers();
}

static apr_status_t engine_cleanup(void *data)
{
    apr_status_t rv;
    (void)data;
    if (!eng.running)
        return APR_SUCCESS;
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, eng.s, "RTB0048: stopping the loop");
    heads.on = 0;
    apr_atomic_set32(&eng.stopping, 1);
    apr_pollset_wakeup(eng.ps);
    rtb_bus_wake_sleepers();
    apr_thread_join(&rv, eng.loop_thread);
    apr_thread_join(&rv, eng.wake_thread);
    if (eng.workers)
        apr_thread_pool_destroy(eng.workers);
    eng.running = 0;
    return APR_SUCCESS;
}

void rtb_engine_child_init(apr_pool_t *pchild, server_rec *s)
{
    rtb_cfg_t *cfg = rtb_cfg(s);
    apr_status_t rv;
    int async = 0;

    memset(&eng, 0, sizeof(eng));
    eng.s = s;
    rtb_conn_set_loop(&engine_loop_ops);
    if (!rtb_bus_ring())
        return;
    ap_mpm_query(AP_MPMQ_IS_ASYNC, &async);
    apr_pool_create(&eng.pool, pchild);
    eng.boards = apr_hash_make(eng.pool);
    eng.cursor = rtb_bus_ring_position();
    apr_thread_mutex_create(&eng.qlock, APR_THREAD_MUTEX_DEFAULT, eng.pool);
    memset(&heads, 0, sizeof(heads));
    apr_thread_mutex_create(&heads.lock, APR_THREAD_MUTEX_DEFAULT, eng.pool);
    apr_pool_create(&heads.pool, eng.pool);
    heads.table = apr_hash_make(heads.pool);
    heads.cursor = eng.cursor;
    if (!async)
        return;
    rv = apr_pollset_create_ex(&eng.ps, (apr_uint32_t)cfg->max_streams + 16, eng.pool,
                               APR_POLLSET_WAKEABLE | APR_POLLSET_NOCOPY, APR_POLLSET_EPOLL);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     "RTB0044: cannot create the pollset; streams will block threads");
        return;
    }
    rv = apr_thread_pool_create(&eng.workers, 1, 4, eng.pool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "RTB0046: cannot create the worker pool");
        eng.workers = NULL;
    }
    rv = ap_thread_create(&eng.loop_thread, NULL, engine_loop, NULL, pchild);
    if (rv == APR_SUCCESS)
        rv = ap_thread_create(&eng.wake_thread, NULL, engine_wake_loop, NULL, pchild);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "RTB0045: cannot start the loop thread");
        return;
    }
    eng.running = 1;
    heads.on = 1;
    apr_pool_pre_cleanup_register(pchild, NULL, engine_cleanup);
}

void rtb_engine_publish_ephemeral(server_rec *s, const char *board, const char *json)
{
    rtb_bus_publish(s, board, 0, RTB_KIND_EPHEMERAL, json, strlen(json));
}

/*
 * Graceful restart, in the parent, once it has read the new configuration:
 * waits until the children of the previous generation have exited (at most
 * ENGINE_OLD_GENERATION_WAIT). The event MPM replaces a child at once only
 * when it finds it exited on its first look, right after this hook; one
 * that exits later is replaced one or two seconds later, and until then no
 * child accepts connections. An idle child exits within milliseconds; one
 * that was serving a writer took up to about 70 ms here, while reading the
 * configuration took 30 to 100. waitid(WNOWAIT) leaves the children to the
 * MPM to reap.
 */
static int engine_await_old_generation(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                       server_rec *s)
{
    apr_time_t start = apr_time_now(), deadline = start + ENGINE_OLD_GENERATION_WAIT;
    int gen = 0, i, left;
    (void)pconf;
    (void)plog;
    (void)ptemp;
    if (!ap_scoreboard_image || ap_state_query(AP_SQ_CONFIG_GEN) == 0)
        return OK; /* the first start: no children yet */
    ap_mpm_query(AP_MPMQ_GENERATION, &gen);
    do {
        left = 0;
        for (i = 0; i < ap_scoreboard_image->global->server_limit; i++) {
            process_score *ps = ap_get_scoreboard_process(i);
            siginfo_t si;
            if (!ps->pid || ps->generation == gen)
                continue;
            memset(&si, 0, sizeof(si));
            if (waitid(P_PID, (id_t)ps->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && !si.si_pid)
                left++; /* still running (a process not ours answers ECHILD) */
        }
        if (left)
            apr_sleep(apr_time_from_msec(2));
    } while (left && apr_time_now() < deadline);
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s,
                 "RTB0052: %d ms for the previous generation to exit; %d child(ren) still running",
                 (int)apr_time_as_msec(apr_time_now() - start), left);
    return OK;
}

void rtb_engine_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_suspend_connection(engine_suspend_hook, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_stopping(engine_child_stopping, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(engine_await_old_generation, NULL, NULL, APR_HOOK_REALLY_LAST);
}
