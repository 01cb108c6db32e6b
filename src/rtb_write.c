/*
 * rtb_write: the path every change takes. See rtb_write.h.
 */
#include "rtb_write.h"
#include "rtb_bus.h"
#include "rtb_http.h"
#include "rtb_metrics.h"

#include "http_protocol.h"
#include "apr_strings.h"
#include "apr_sha1.h"
#include "apr_thread_mutex.h"
#include "apr_thread_cond.h"

/* ------------------------------------------------------------------ */
/* answers                                                              */

void rtb_answer_error(rtb_rest_ctx_t *x, rtb_answer_t *a, int status, const char *code,
                      const char *msg, const char *field, const char *extra_key, json_t *extra)
{
    char *s = rtb_json_error_body(status, code, msg, field, extra_key, extra);
    a->status = status;
    a->location = NULL;
    a->body = apr_pstrdup(x->r->pool, s);
    free(s);
}

void rtb_answer_json(rtb_rest_ctx_t *x, rtb_answer_t *a, int status, json_t *root)
{
    char *s = rtb_json_dump(root);
    json_decref(root);
    a->status = status;
    a->body = apr_pstrdup(x->r->pool, s ? s : "{}");
    free(s);
}

int rtb_answer_send(rtb_rest_ctx_t *x, const rtb_answer_t *a)
{
    if (a->location)
        apr_table_set(x->r->headers_out, "Location", a->location);
    return rtb_send_body(x->r, a->status, a->body, a->body ? strlen(a->body) : 0);
}

/* ------------------------------------------------------------------ */
/* events                                                               */

/*
 * Stores one event whose JSON, after its id, is `rest` (`"type":...}`):
 * bumps the board's sequence and inserts the event row built around the new
 * id. PostgreSQL does both, and the NOTIFY of every node, in one statement
 * (one round trip; the write path is serialised, so each one saved counts);
 * SQLite, in the process, in two. Returns the id and the event's JSON in
 * *json, or 0 (x->db.failed set).
 */
static apr_uint64_t write_store_event(rtb_rest_ctx_t *x, const char *board, const char *type,
                                      const char *at, const char *rest, const char **json)
{
    apr_pool_t *p = x->r->pool;
    const char *args[5] = {board, type, at, x->user, rest};
    apr_array_header_t *rows;
    const char **row;

    if (rtb_db_is_pgsql(&x->db)) {
        rows = rtb_db_select(&x->db, RTB_SQL_EVENT_EMIT, 5, args, NULL);
        if (!rows || rows->nelts != 1)
            goto fail;
        row = APR_ARRAY_IDX(rows, 0, const char **);
        *json = row[1];
        return (apr_uint64_t)apr_atoi64(row[0]);
    }
    rows = rtb_db_select(&x->db, RTB_SQL_BOARD_SEQ, 1, args, NULL);
    if (!rows || rows->nelts != 1)
        goto fail;
    row = APR_ARRAY_IDX(rows, 0, const char **);
    {
        const char *ins[6] = {
            board, row[0],  type,
            at,    x->user, apr_pstrcat(p, RTB_EVENT_ID_PREFIX, row[0], ",", rest, NULL)};
        if (rtb_db_exec(&x->db, RTB_SQL_EVENT_INS, 6, ins, NULL) < 0)
            return 0;
        *json = ins[5];
    }
    return (apr_uint64_t)apr_atoi64(row[0]);
fail:
    x->db.failed = 1;
    return 0;
}

/*
 * Records one event of the current transaction: bumps the board's sequence,
 * inserts the event row, trims history. Returns the event id, 0 on failure.
 * `data` is stolen.
 */
apr_uint64_t rtb_write_emit(rtb_rest_ctx_t *x, const char *board, const char *type, json_t *data)
{
    apr_pool_t *p = x->r->pool;
    apr_uint64_t id;
    const char *at = rtb_now_iso(p), *json = NULL, *rest;
    json_t *ev;
    char *s;
    rtb_write_event_t *pe;

    /* the event without its id, which only the store knows: {"type":...} */
    ev = json_pack("{s:s,s:s,s:s,s:s,s:o}", "type", type, "boardId", board, "at", at, "actor",
                   x->user, "data", data);
    s = ev ? rtb_json_dump(ev) : NULL;
    json_decref(ev);
    if (!s) {
        x->db.failed = 1;
        return 0;
    }
    rest = apr_pstrdup(p, s + 1);
    free(s);
    id = write_store_event(x, board, type, at, rest, &json);
    if (!id)
        return 0;
    pe = apr_array_push(x->events);
    pe->board = board;
    pe->id = id;
    pe->json = json;
    if (x->cfg->history > 0 && id > (apr_uint64_t)x->cfg->history &&
        id % 64 == 0) { /* trim now and then, not on every write */
        const char *pa[2] = {board, rtb_lltoa(p, (long long)(id - x->cfg->history))};
        if (rtb_db_exec(&x->db, RTB_SQL_EVENT_PRUNE, 2, pa, NULL) < 0)
            return 0;
    }
    return id;
}

/*
 * Records event `type` carrying the resource `obj` under `key`, and makes
 * `obj` the answer, with `status`. Steals `obj`. Returns 0, or -1 when the
 * event could not be stored (nothing is answered then).
 */
int rtb_write_emit_resource(rtb_rest_ctx_t *x, rtb_answer_t *a, const char *type, const char *key,
                            json_t *obj, int status)
{
    if (!rtb_write_emit(x, x->rt.board, type, json_pack("{s:O}", key, obj))) {
        json_decref(obj);
        return -1;
    }
    rtb_answer_json(x, a, status, rtb_json_data(obj));
    return 0;
}

static const char *write_fingerprint(rtb_rest_ctx_t *x)
{
    apr_sha1_ctx_t c;
    unsigned char d[APR_SHA1_DIGESTSIZE];
    char hex[APR_SHA1_DIGESTSIZE * 2 + 1];
    int i;
    apr_sha1_init(&c);
    apr_sha1_update(&c, x->r->method, (unsigned)strlen(x->r->method));
    apr_sha1_update(&c, " ", 1);
    apr_sha1_update(&c, x->r->uri, (unsigned)strlen(x->r->uri));
    apr_sha1_update(&c, "\n", 1);
    apr_sha1_update_binary(&c, (const unsigned char *)(x->raw_body ? x->raw_body : ""),
                           (unsigned)x->raw_len);
    apr_sha1_final(d, &c);
    for (i = 0; i < APR_SHA1_DIGESTSIZE; i++)
        apr_snprintf(hex + 2 * i, 3, "%02x", d[i]);
    return apr_pstrdup(x->r->pool, hex);
}

/*
 * Group commit. Every change of a child goes through one queue; whichever
 * waiting request finds no leader becomes it, takes the writers' lock once,
 * runs every queued change in one transaction (each inside its own
 * savepoint, so a change that fails leaves nothing behind), commits once,
 * publishes the events in id order, and wakes the others to send their
 * answers. Ids still follow commit order; a batch costs one lock hand-over
 * and one commit instead of one per request.
 */
enum {
    WRITE_PENDING = 0,
    WRITE_COMMITTED,  /* changed and committed: send the answer */
    WRITE_REFUSED,    /* the change answered an error: nothing written */
    WRITE_REPLAYED,   /* an Idempotency-Key seen before: the first answer */
    WRITE_KEY_REUSED, /* an Idempotency-Key used for another request */
    WRITE_DB_ERROR,   /* a statement failed: 500 */
    WRITE_BUSY        /* the database could not start or commit: 503 */
};

#define WRITE_BATCH_MAX 128

typedef struct write_item_t {
    rtb_rest_ctx_t *x;
    rtb_write_fn fn;
    const char *idem, *fp;
    rtb_answer_t a;
    int outcome;
    int done; /* set by the leader, under write_gc.lock, once the batch is over */
    struct write_item_t *next;
} write_item_t;

static struct {
    apr_thread_mutex_t *lock;
    apr_thread_cond_t *done;
    write_item_t *head, *tail;
    int leader; /* a request is running a batch */
} write_gc;

void rtb_write_child_init(apr_pool_t *pchild)
{
    apr_thread_mutex_create(&write_gc.lock, APR_THREAD_MUTEX_DEFAULT, pchild);
    apr_thread_cond_create(&write_gc.done, pchild);
}

/*
 * The leader's session during a batch. On PostgreSQL a batch first runs
 * without savepoints ("plain"): two round trips fewer per change. A change
 * that fails there (a failed statement aborts the whole transaction), or
 * that refuses after it wrote, sends the batch back: rolled back, then run
 * again with a savepoint per change. Savepoint statements are never sent on
 * their own: the end of one change goes out with the start of the next, and
 * the last with COMMIT; PostgreSQL runs the statements of one plain query in
 * one round trip ("RELEASE ...; SAVEPOINT ...") and skips the rest of them
 * when one fails. SQLite, in the process, always uses savepoints (a failed
 * statement there aborts nothing) and gets them one by one.
 */
typedef struct {
    ap_dbd_t *dbd;       /* the leader's connection */
    const char *pending; /* to run just before the next statement */
    int plain;           /* no savepoints (PostgreSQL's first try) */
    int again;           /* the plain try failed: run the batch again with savepoints */
    int open;            /* the next change's savepoint is already set */
    int broken;          /* a savepoint statement failed: the batch commits nothing */
} write_batch_t;

/* Runs b->pending (if any), then `sql`, on db's session: 0, or -1 (b->broken). */
static int write_sql(rtb_db_t *db, write_batch_t *b, const char *sql)
{
    const char *before = b->pending;
    int rc;
    b->pending = NULL;
    if (before && rtb_db_is_pgsql(db))
        rc = rtb_db_query(db, apr_pstrcat(db->pool, before, "; ", sql, NULL));
    else
        rc = (before && rtb_db_query(db, before) < 0) ? -1 : rtb_db_query(db, sql);
    if (rc < 0)
        b->broken = 1;
    return rc;
}

/* One change of the batch, on the leader's connection (inside a savepoint unless plain). */
static void write_batch_one(write_batch_t *b, write_item_t *it)
{
    rtb_rest_ctx_t *x = it->x;
    rtb_db_t own = x->db;
    int rc;

    if (b->again) /* the batch runs again anyway */
        return;
    x->db.dbd = b->dbd;
    x->db.failed = 0;
    x->db.writes = 0;
    apr_array_clear(x->events);
    if (b->broken) { /* the transaction is lost: the batch answers 503 */
        it->outcome = WRITE_BUSY;
        goto out;
    }
    if (!b->plain && !b->open && write_sql(&x->db, b, "SAVEPOINT rtb_change") < 0) {
        it->outcome = WRITE_DB_ERROR;
        goto out;
    }
    b->open = 0;
    if (it->idem) {
        const char *args[2] = {x->user, it->idem};
        apr_array_header_t *rows = rtb_db_select(&x->db, RTB_SQL_IDEM_GET, 2, args, NULL);
        if (rows && rows->nelts) {
            const char **row = APR_ARRAY_IDX(rows, 0, const char **);
            if (strcmp(row[0], it->fp) != 0) {
                it->outcome = WRITE_KEY_REUSED;
            } else {
                it->outcome = WRITE_REPLAYED;
                it->a.status = atoi(row[1]);
                it->a.location = row[2];
                it->a.body = (char *)row[3];
            }
            if (!b->plain)
                b->pending = "RELEASE rtb_change";
            goto out;
        }
        if (!rows) {
            it->outcome = WRITE_DB_ERROR;
            goto undo;
        }
    }
    rc = it->fn(x, &it->a);
    if (rc != 0 || x->db.failed) {
        it->outcome = x->db.failed ? WRITE_DB_ERROR : WRITE_REFUSED;
        goto undo;
    }
    if (it->idem) {
        const char *args[7] = {x->user,
                               it->idem,
                               it->fp,
                               rtb_lltoa(x->r->pool, it->a.status),
                               it->a.location,
                               it->a.body,
                               rtb_now_iso(x->r->pool)};
        if (rtb_db_exec(&x->db, RTB_SQL_IDEM_INS, 7, args, NULL) < 0) {
            it->outcome = WRITE_DB_ERROR;
            goto undo;
        }
    }
    /* released with the next statement: should that fail, so does COMMIT,
     * and the whole batch answers 503 having written nothing */
    if (!b->plain)
        b->pending = "RELEASE rtb_change";
    it->outcome = WRITE_COMMITTED; /* once the batch commits */
    goto out;
undo:
    apr_array_clear(x->events);
    if (b->plain) {
        /* a refusal before any write leaves nothing to undo */
        if (x->db.failed || x->db.writes)
            b->again = 1;
        goto out;
    }
    write_sql(&x->db, b, "ROLLBACK TO rtb_change");
    b->pending = "RELEASE rtb_change";
out:
    x->db.dbd = own.dbd;
}

/*
 * Starts the batch's transaction: plain on PostgreSQL's first try, else with
 * the first change's savepoint in the same round trip; SQLite's BEGIN
 * IMMEDIATE. Returns 0, or -1 when the database is busy or gone (nothing
 * started).
 */
static int write_batch_begin(rtb_db_t *db, write_batch_t *b)
{
    if (!rtb_db_is_pgsql(db))
        return rtb_db_write_begin(db);
    if (rtb_db_query(db, b->plain ? "BEGIN" : "BEGIN; SAVEPOINT rtb_change") < 0) {
        rtb_db_query(db, "ROLLBACK");
        return -1;
    }
    b->open = !b->plain;
    return 0;
}

/* Runs the batch's changes in one transaction, left open for its COMMIT: 0, or -1 (busy). */
static int write_batch_changes(rtb_rest_ctx_t *leader, write_item_t *batch, write_batch_t *b)
{
    write_item_t *it;

    memset(b, 0, sizeof(*b));
    b->dbd = leader->db.dbd;
    b->plain = rtb_db_is_pgsql(&leader->db);
    if (write_batch_begin(&leader->db, b) < 0)
        return -1;
    for (it = batch; it; it = it->next)
        write_batch_one(b, it);
    if (!b->again)
        return 0;
    /* undo the plain try, then every change again, each in its savepoint */
    if (rtb_db_query(&leader->db, "ROLLBACK") < 0)
        return -1;
    for (it = batch; it; it = it->next) {
        it->outcome = WRITE_PENDING;
        memset(&it->a, 0, sizeof(it->a));
    }
    memset(b, 0, sizeof(*b));
    b->dbd = leader->db.dbd;
    if (write_batch_begin(&leader->db, b) < 0)
        return -1;
    for (it = batch; it; it = it->next)
        write_batch_one(b, it);
    return 0;
}

/* The leader's work: one lock, one transaction, one commit for the batch. */
static void write_batch_run(rtb_rest_ctx_t *leader, write_item_t *batch)
{
    request_rec *r = leader->r;
    write_item_t *it;
    write_batch_t b;
    int i, ok;
    apr_time_t began;

    if (rtb_bus_write_lock(r->server) != APR_SUCCESS) {
        for (it = batch; it; it = it->next)
            it->outcome = WRITE_BUSY;
        return;
    }
    began = apr_time_now();
    if (write_batch_changes(leader, batch, &b) < 0) {
        rtb_bus_write_unlock(r->server);
        for (it = batch; it; it = it->next)
            it->outcome = WRITE_BUSY;
        return;
    }
    /* PostgreSQL answers COMMIT of a failed transaction with a ROLLBACK, not
     * an error: never take that for a commit */
    ok = !b.broken && !rtb_db_tx_failed(&leader->db) && write_sql(&leader->db, &b, "COMMIT") == 0;
    rtb_metrics_count_batch(ok ? apr_time_now() - began : -1);
    if (!ok)
        rtb_db_query(&leader->db, "ROLLBACK");
    for (it = batch; it; it = it->next) {
        if (it->outcome != WRITE_COMMITTED)
            continue;
        if (!ok) {
            it->outcome = WRITE_BUSY;
            continue;
        }
        for (i = 0; i < it->x->events->nelts; i++) {
            rtb_write_event_t *e = &APR_ARRAY_IDX(it->x->events, i, rtb_write_event_t);
            if (it->x->cfg->bus) /* several nodes: unless another path brought it first */
                rtb_bus_publish_event(r->server, e->board, e->id, e->json, strlen(e->json), 0);
            else
                rtb_bus_publish(r->server, e->board, e->id, RTB_KIND_EVENT, e->json,
                                strlen(e->json));
        }
    }
    rtb_bus_write_unlock(r->server);
}

/*
 * Runs `fn` as one change: queued, run by this request or by another one
 * leading a batch, then answered. On any error nothing is written and
 * nothing published.
 */
int rtb_write_run(rtb_rest_ctx_t *x, rtb_write_fn fn)
{
    request_rec *r = x->r;
    const char *idem = apr_table_get(r->headers_in, "Idempotency-Key");
    write_item_t it;

    if (idem && (!*idem || strlen(idem) > 200))
        return rtb_send_error(r, HTTP_BAD_REQUEST, "invalid_idempotency_key",
                              "Idempotency-Key must be 1..200 characters", NULL);
    if (idem && strcmp(r->method, "POST") != 0)
        idem = NULL;
    memset(&it, 0, sizeof(it));
    it.x = x;
    it.fn = fn;
    it.idem = idem;
    it.fp = idem ? write_fingerprint(x) : NULL;
    x->db.r = r;
    x->db.pool = r->pool;
    x->events = apr_array_make(r->pool, 2, sizeof(rtb_write_event_t));

    apr_thread_mutex_lock(write_gc.lock);
    if (write_gc.tail)
        write_gc.tail->next = &it;
    else
        write_gc.head = &it;
    write_gc.tail = &it;
    while (!it.done) {
        write_item_t *batch, *last;
        int n;
        if (write_gc.leader) {
            apr_thread_cond_wait(write_gc.done, write_gc.lock);
            continue;
        }
        /* lead: take up to WRITE_BATCH_MAX queued changes (ours among them) */
        write_gc.leader = 1;
        batch = last = write_gc.head;
        for (n = 1; n < WRITE_BATCH_MAX && last->next; n++)
            last = last->next;
        write_gc.head = last->next;
        if (!write_gc.head)
            write_gc.tail = NULL;
        last->next = NULL;
        apr_thread_mutex_unlock(write_gc.lock);
        if (!x->db.dbd && rtb_db_acquire(&x->db, r) < 0) {
            write_item_t *b;
            for (b = batch; b; b = b->next)
                b->outcome = WRITE_BUSY;
        } else {
            write_batch_run(x, batch);
        }
        apr_thread_mutex_lock(write_gc.lock);
        {
            /* only now may the batch's requests answer (and their items go away) */
            write_item_t *b, *nb;
            for (b = batch; b; b = nb) {
                nb = b->next;
                b->done = 1;
            }
        }
        write_gc.leader = 0;
        apr_thread_cond_broadcast(write_gc.done);
    }
    apr_thread_mutex_unlock(write_gc.lock);

    switch (it.outcome) {
    case WRITE_REPLAYED:
        apr_table_setn(r->headers_out, "Idempotent-Replayed", "true");
        /* fall through */
    case WRITE_COMMITTED:
    case WRITE_REFUSED:
        return rtb_answer_send(x, &it.a);
    case WRITE_KEY_REUSED:
        return rtb_send_error(r, HTTP_UNPROCESSABLE_ENTITY, "idempotency_key_reused",
                              "this Idempotency-Key was used for another request", NULL);
    case WRITE_DB_ERROR:
        return rtb_send_error(r, HTTP_INTERNAL_SERVER_ERROR, "database_error",
                              "the change could not be stored", NULL);
    default:
        apr_table_setn(r->headers_out, "Retry-After", "1");
        return rtb_send_error(r, HTTP_SERVICE_UNAVAILABLE, "database_busy",
                              "the database is busy, try again", NULL);
    }
}
