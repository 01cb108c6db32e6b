/*
 * rtb_write: the path every change takes. See rtb_write.h.
 */
#include "rtb_write.h"
#include "rtb_bus.h"
#include "rtb_http.h"
#include "rtb_metrics.h"
#include "rtb_listen.h"

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
 * PostgreSQL: inserts the event row (`row`: the six EVENT_INS arguments) and
 * tells every node's LISTEN connection about it in the same statement, in
 * the event's own transaction (delivered at commit, in commit order, dropped
 * with a savepoint that is rolled back). The payload carries the id, so two
 * events never fold into one; an event too large for NOTIFY goes by id and
 * is read from the table. Returns 0 or -1.
 */
static int write_insert_notify(rtb_rest_ctx_t *x, const char **row)
{
    const char *args[7];
    apr_array_header_t *rows;
    memcpy(args, row, sizeof(*args) * 6);
    args[6] = strlen(row[5]) + strlen(row[0]) + 24 <= RTB_LISTEN_MAX_PAYLOAD
                  ? apr_pstrcat(x->r->pool, row[1], " ", row[0], " ", row[5], NULL)
                  : apr_pstrcat(x->r->pool, row[1], " ", row[0], NULL);
    rows = rtb_db_select(&x->db, RTB_SQL_EVENT_NOTIFY, 7, args, NULL);
    if (rows && rows->nelts != 1) {
        x->db.failed = 1;
        return -1;
    }
    return rows ? 0 : -1;
}

/*
 * Records one event of the current transaction: bumps the board's sequence,
 * inserts the event row, trims history. Returns the event id, 0 on failure.
 * `data` is stolen.
 */
apr_uint64_t rtb_write_emit(rtb_rest_ctx_t *x, const char *board, const char *type, json_t *data)
{
    apr_pool_t *p = x->r->pool;
    const char *a1[1] = {board};
    apr_array_header_t *rows = rtb_db_select(&x->db, RTB_SQL_BOARD_SEQ, 1, a1, NULL);
    apr_uint64_t id;
    const char *at = rtb_now_iso(p);
    json_t *ev;
    char *s;
    rtb_write_event_t *pe;

    if (!rows || rows->nelts != 1) {
        json_decref(data);
        x->db.failed = 1;
        return 0;
    }
    id = (apr_uint64_t)apr_atoi64(APR_ARRAY_IDX(rows, 0, const char **)[0]);
    ev = json_pack("{s:I,s:s,s:s,s:s,s:s,s:o}", "id", (json_int_t)id, "type", type, "boardId",
                   board, "at", at, "actor", x->user, "data", data);
    s = rtb_json_dump(ev);
    json_decref(ev);
    {
        const char *args[6] = {
            board, rtb_lltoa(p, (long long)id), type, at, x->user, apr_pstrdup(p, s)};
        free(s);
        if (rtb_db_is_pgsql(&x->db) ? write_insert_notify(x, args) < 0
                                    : rtb_db_exec(&x->db, RTB_SQL_EVENT_INS, 6, args, NULL) < 0)
            return 0;
        pe = apr_array_push(x->events);
        pe->board = board;
        pe->id = id;
        pe->json = args[5];
    }
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

/* One change of the batch, on the leader's connection, inside a savepoint. */
static void write_batch_one(rtb_db_t *db, write_item_t *it)
{
    rtb_rest_ctx_t *x = it->x;
    rtb_db_t own = x->db;
    int rc;

    x->db.dbd = db->dbd;
    x->db.failed = 0;
    apr_array_clear(x->events);
    if (rtb_db_query(&x->db, "SAVEPOINT rtb_change") < 0) {
        it->outcome = WRITE_DB_ERROR;
        goto out;
    }
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
            rtb_db_query(&x->db, "RELEASE rtb_change");
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
    if (rtb_db_query(&x->db, "RELEASE rtb_change") < 0) {
        it->outcome = WRITE_DB_ERROR;
        goto undo;
    }
    it->outcome = WRITE_COMMITTED; /* once the batch commits */
    goto out;
undo:
    apr_array_clear(x->events);
    rtb_db_query(&x->db, "ROLLBACK TO rtb_change");
    rtb_db_query(&x->db, "RELEASE rtb_change");
out:
    x->db.dbd = own.dbd;
}

/* The leader's work: one lock, one transaction, one commit for the batch. */
static void write_batch_run(rtb_rest_ctx_t *leader, write_item_t *batch)
{
    request_rec *r = leader->r;
    write_item_t *it;
    int i, ok;
    apr_time_t began;

    if (rtb_bus_write_lock(r->server) != APR_SUCCESS) {
        for (it = batch; it; it = it->next)
            it->outcome = WRITE_BUSY;
        return;
    }
    began = apr_time_now();
    if (rtb_db_write_begin(&leader->db) < 0) {
        rtb_bus_write_unlock(r->server);
        for (it = batch; it; it = it->next)
            it->outcome = WRITE_BUSY;
        return;
    }
    for (it = batch; it; it = it->next)
        write_batch_one(&leader->db, it);
    ok = rtb_db_query(&leader->db, "COMMIT") == 0;
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
