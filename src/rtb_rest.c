/*
 * rtb_rest: the REST side of the API (boards, lists, tasks, updates) and the
 * write path every change takes: one transaction holding the change, the
 * board's sequence bump and the event row; then publication in id order.
 */
#include "rtb_config.h"
#include "rtb_rest.h"
#include "rtb_store.h"
#include "rtb_json.h"
#include "rtb_router.h"

#include "http_log.h"

APLOG_USE_MODULE(rtboard);
#include "http_protocol.h"
#include "http_request.h"
#include "apr_strings.h"
#include "apr_sha1.h"
#include "apr_lib.h"
#include "apr_hash.h"
#include "apr_thread_mutex.h"
#include "apr_thread_cond.h"

#define REST_MAX_EVENTS 1000

/* ------------------------------------------------------------------ */
/* answers                                                              */

const char *rtb_now_iso(apr_pool_t *p)
{
    apr_time_exp_t t;
    apr_time_t now = apr_time_now();
    apr_time_exp_gmt(&t, now);
    return apr_psprintf(p, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900,
                        t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                        t.tm_usec / 1000);
}

/* Why: every API answer names who Apache authenticated, for clients. */
static void rest_common_headers(request_rec *r)
{
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (r->user)
        apr_table_set(r->headers_out, "X-RTBoard-User", r->user);
}

int rtb_send_body(request_rec *r, int status, const char *body, apr_size_t len)
{
    r->status = status;
    rest_common_headers(r);
    if (status == HTTP_NO_CONTENT || status == HTTP_NOT_MODIFIED || !body)
        return OK;
    ap_set_content_type(r, "application/json; charset=utf-8");
    ap_set_content_length(r, len);
    if (!r->header_only)
        ap_rwrite(body, (int)len, r);
    return OK;
}

/* Sends `root` (reference stolen) as the answer with `status`. */
int rtb_send_json(request_rec *r, int status, json_t *root)
{
    char *s = rtb_json_dump(root);
    char *copy;
    json_decref(root);
    if (!s)
        return HTTP_INTERNAL_SERVER_ERROR;
    copy = apr_pstrdup(r->pool, s);
    free(s);
    return rtb_send_body(r, status, copy, strlen(copy));
}

int rtb_send_error(request_rec *r, int status, const char *code, const char *message,
                   const char *field)
{
    char *s = rtb_json_error_body(status, code, message, field, NULL, NULL);
    char *copy = apr_pstrdup(r->pool, s);
    free(s);
    return rtb_send_body(r, status, copy, strlen(copy));
}

/* ------------------------------------------------------------------ */
/* rows to JSON                                                         */

static json_t *rest_num(const char *s)
{
    return json_integer(s ? apr_atoi64(s) : 0);
}

static json_t *rest_str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *rest_board_json(const char **row)
{
    return json_pack("{s:s,s:s,s:s,s:o}", "id", row[0], "name", row[1], "createdAt", row[2],
                     "lastEventId", rest_num(row[3]));
}

static json_t *rest_list_json(const char *board, const char **row)
{
    return json_pack("{s:o,s:s,s:s,s:o}", "id", rest_num(row[0]), "boardId", board, "name",
                     row[1], "position", rest_num(row[2]));
}

static json_t *rest_task_json(const char *board, const char **c)
{
    json_t *t = json_object();
    json_object_set_new(t, "id", rest_num(c[RTB_TC_ID]));
    json_object_set_new(t, "boardId", json_string(board));
    json_object_set_new(t, "listId", rest_num(c[RTB_TC_LIST]));
    json_object_set_new(t, "title", json_string(c[RTB_TC_TITLE] ? c[RTB_TC_TITLE] : ""));
    json_object_set_new(t, "description", json_string(c[RTB_TC_DESC] ? c[RTB_TC_DESC] : ""));
    json_object_set_new(t, "assignee", rest_str_or_null(c[RTB_TC_ASSIGNEE]));
    json_object_set_new(t, "position", rest_num(c[RTB_TC_POS]));
    json_object_set_new(t, "version", rest_num(c[RTB_TC_VERSION]));
    json_object_set_new(t, "createdAt", rest_str_or_null(c[RTB_TC_CREATED]));
    json_object_set_new(t, "updatedAt", rest_str_or_null(c[RTB_TC_UPDATED]));
    json_object_set_new(t, "createdBy", rest_str_or_null(c[RTB_TC_CREATED_BY]));
    json_object_set_new(t, "updatedBy", rest_str_or_null(c[RTB_TC_UPDATED_BY]));
    return t;
}

static json_t *rest_data(json_t *d)
{
    return json_pack("{s:o}", "data", d);
}

/* ------------------------------------------------------------------ */
/* request context                                                      */

typedef struct {
    const char *board;
    apr_uint64_t id;
    const char *json;
} rest_event_t;

typedef struct {
    int status;
    const char *location;
    char *body; /* pool string, NULL for no body */
} rest_answer_t;

typedef struct rest_ctx_t {
    request_rec *r;
    rtb_cfg_t *cfg;
    rtb_route_t rt;
    const char *user;
    rtb_db_t db;
    json_t *body;
    const char *raw_body;
    apr_size_t raw_len;
    int locked;
    apr_array_header_t *events; /* rest_event_t, published after commit */
} rest_ctx_t;

static apr_status_t rest_json_cleanup(void *j)
{
    json_decref((json_t *)j);
    return APR_SUCCESS;
}

/* Ties a json_t to the request pool: released when the request ends. */
static json_t *rest_keep(request_rec *r, json_t *j)
{
    if (j)
        apr_pool_cleanup_register(r->pool, j, rest_json_cleanup, apr_pool_cleanup_null);
    return j;
}

static void rest_answer_error(rest_ctx_t *x, rest_answer_t *a, int status, const char *code,
                              const char *msg, const char *field, const char *extra_key,
                              json_t *extra)
{
    char *s = rtb_json_error_body(status, code, msg, field, extra_key, extra);
    a->status = status;
    a->location = NULL;
    a->body = apr_pstrdup(x->r->pool, s);
    free(s);
}

static void rest_answer_json(rest_ctx_t *x, rest_answer_t *a, int status, json_t *root)
{
    char *s = rtb_json_dump(root);
    json_decref(root);
    a->status = status;
    a->body = apr_pstrdup(x->r->pool, s ? s : "{}");
    free(s);
}

static int rest_send_answer(rest_ctx_t *x, const rest_answer_t *a)
{
    if (a->location)
        apr_table_set(x->r->headers_out, "Location", a->location);
    return rtb_send_body(x->r, a->status, a->body, a->body ? strlen(a->body) : 0);
}

/* ------------------------------------------------------------------ */
/* request bodies                                                       */

static int rest_is_json_type(const char *ct)
{
    const char *semi;
    apr_size_t n;
    if (!ct)
        return 0;
    semi = strchr(ct, ';');
    n = semi ? (apr_size_t)(semi - ct) : strlen(ct);
    while (n && apr_isspace(ct[n - 1]))
        n--;
    if (n == 16 && !strncasecmp(ct, "application/json", 16))
        return 1;
    /* application/<anything>+json */
    return n > 17 && !strncasecmp(ct, "application/", 12) && !strncasecmp(ct + n - 5, "+json", 5);
}

/*
 * Reads the whole body into the pool, refusing more than the configured limit
 * (413) and non-JSON types (415). Returns OK or an HTTP status already sent.
 */
static int rest_read_body(rest_ctx_t *x)
{
    request_rec *r = x->r;
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    apr_off_t limit = x->cfg->max_body;
    char *buf;
    apr_size_t used = 0, cap;
    long got;
    int rc;

    if (cl) {
        char *end;
        apr_off_t n;
        if (apr_strtoff(&n, cl, &end, 10) != APR_SUCCESS || *end || n < 0) {
            return rtb_send_error(r, HTTP_BAD_REQUEST, "invalid_content_length",
                                  "Content-Length is not a number", NULL);
        }
        if (n > limit) {
            r->connection->keepalive = AP_CONN_CLOSE;
            return rtb_send_error(r, HTTP_REQUEST_ENTITY_TOO_LARGE, "body_too_large",
                                  apr_psprintf(r->pool, "the body is over %" APR_OFF_T_FMT
                                               " bytes", limit), NULL);
        }
    }
    if (!rest_is_json_type(apr_table_get(r->headers_in, "Content-Type"))) {
        r->connection->keepalive = AP_CONN_CLOSE;
        return rtb_send_error(r, HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                              "the body must be application/json", NULL);
    }
    if ((rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK)) != OK)
        return rc;
    cap = 4096;
    buf = apr_palloc(r->pool, cap + 1);
    if (ap_should_client_block(r)) {
        for (;;) {
            if (used == cap) {
                char *nb;
                if ((apr_off_t)cap >= limit + 1)
                    break;
                cap *= 2;
                if ((apr_off_t)cap > limit + 1)
                    cap = (apr_size_t)limit + 1;
                nb = apr_palloc(r->pool, cap + 1);
                memcpy(nb, buf, used);
                buf = nb;
            }
            got = ap_get_client_block(r, buf + used, cap - used);
            if (got < 0)
                return rtb_send_error(r, HTTP_BAD_REQUEST, "body_read_failed",
                                      "the body could not be read", NULL);
            if (got == 0)
                break;
            used += (apr_size_t)got;
            if ((apr_off_t)used > limit) {
                r->connection->keepalive = AP_CONN_CLOSE;
                return rtb_send_error(r, HTTP_REQUEST_ENTITY_TOO_LARGE, "body_too_large",
                                      "the body is over the limit", NULL);
            }
        }
    }
    buf[used] = '\0';
    x->raw_body = buf;
    x->raw_len = used;
    return OK;
}

/* Reads, parses and validates a JSON object body against `spec`. */
static int rest_body(rest_ctx_t *x, const rtb_field_spec_t *spec)
{
    rtb_json_err_t err;
    json_t *j;
    int rc = rest_read_body(x);
    if (rc != OK || x->r->status != HTTP_OK)
        return rc == OK ? DONE : rc;
    if (rtb_json_parse_object(x->raw_body, x->raw_len, &j, &err) < 0 ||
        (spec && rtb_json_validate(j, spec, &err) < 0)) {
        if (j)
            json_decref(j);
        rtb_send_error(x->r, err.status, err.code, err.message, err.field[0] ? err.field : NULL);
        return DONE;
    }
    x->body = rest_keep(x->r, j);
    return OK;
}

static const char *rest_bstr(rest_ctx_t *x, const char *key)
{
    json_t *v = json_object_get(x->body, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int rest_bhas(rest_ctx_t *x, const char *key)
{
    return json_object_get(x->body, key) != NULL;
}

static long long rest_bint(rest_ctx_t *x, const char *key, long long dflt)
{
    json_t *v = json_object_get(x->body, key);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

static const char *rest_i(apr_pool_t *p, long long v)
{
    return apr_psprintf(p, "%" APR_INT64_T_FMT, (apr_int64_t)v);
}

/* ------------------------------------------------------------------ */
/* the write path                                                       */

/*
 * Records one event of the current transaction: bumps the board's sequence,
 * inserts the event row, trims history. Returns the event id, 0 on failure.
 * `data` is stolen.
 */
static apr_uint64_t rest_emit(rest_ctx_t *x, const char *board, const char *type, json_t *data)
{
    apr_pool_t *p = x->r->pool;
    const char *a1[1] = {board};
    apr_array_header_t *rows = rtb_db_select(&x->db, RTB_SQL_BOARD_SEQ, 1, a1, NULL);
    apr_uint64_t id;
    const char *at = rtb_now_iso(p);
    json_t *ev;
    char *s;
    rest_event_t *pe;

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
        const char *args[6] = {board, rest_i(p, (long long)id), type, at, x->user,
                               apr_pstrdup(p, s)};
        free(s);
        if (rtb_db_exec(&x->db, RTB_SQL_EVENT_INS, 6, args, NULL) < 0)
            return 0;
        pe = apr_array_push(x->events);
        pe->board = board;
        pe->id = id;
        pe->json = args[5];
    }
    if (x->cfg->history > 0 && id > (apr_uint64_t)x->cfg->history &&
        id % 64 == 0) { /* trim now and then, not on every write */
        const char *pa[2] = {board, rest_i(p, (long long)(id - x->cfg->history))};
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
static int rest_emit_resource(rest_ctx_t *x, rest_answer_t *a, const char *type, const char *key,
                              json_t *obj, int status)
{
    if (!rest_emit(x, x->rt.board, type, json_pack("{s:O}", key, obj))) {
        json_decref(obj);
        return -1;
    }
    rest_answer_json(x, a, status, rest_data(obj));
    return 0;
}

typedef int (*rest_write_fn)(rest_ctx_t *x, rest_answer_t *a);

static const char *rest_fingerprint(rest_ctx_t *x)
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
    REST_PENDING = 0,
    REST_COMMITTED,   /* changed and committed: send the answer */
    REST_REFUSED,     /* the change answered an error: nothing written */
    REST_REPLAYED,    /* an Idempotency-Key seen before: the first answer */
    REST_KEY_REUSED,  /* an Idempotency-Key used for another request */
    REST_DB_ERROR,    /* a statement failed: 500 */
    REST_BUSY         /* the database could not start or commit: 503 */
};

#define REST_BATCH_MAX 128

typedef struct rest_item_t {
    rest_ctx_t *x;
    rest_write_fn fn;
    const char *idem, *fp;
    rest_answer_t a;
    int outcome;
    int done; /* set by the leader, under rest_gc.lock, once the batch is over */
    struct rest_item_t *next;
} rest_item_t;

static struct {
    apr_thread_mutex_t *lock;
    apr_thread_cond_t *done;
    rest_item_t *head, *tail;
    int leader; /* a request is running a batch */
} rest_gc;

void rtb_rest_child_init(apr_pool_t *pchild)
{
    apr_thread_mutex_create(&rest_gc.lock, APR_THREAD_MUTEX_DEFAULT, pchild);
    apr_thread_cond_create(&rest_gc.done, pchild);
}

/* One change of the batch, on the leader's connection, inside a savepoint. */
static void rest_batch_one(rtb_db_t *db, rest_item_t *it)
{
    rest_ctx_t *x = it->x;
    rtb_db_t own = x->db;
    int rc;

    x->db.dbd = db->dbd;
    x->db.failed = 0;
    apr_array_clear(x->events);
    if (rtb_db_query(&x->db, "SAVEPOINT rtb_change") < 0) {
        it->outcome = REST_DB_ERROR;
        goto out;
    }
    if (it->idem) {
        const char *args[2] = {x->user, it->idem};
        apr_array_header_t *rows = rtb_db_select(&x->db, RTB_SQL_IDEM_GET, 2, args, NULL);
        if (rows && rows->nelts) {
            const char **row = APR_ARRAY_IDX(rows, 0, const char **);
            if (strcmp(row[0], it->fp) != 0) {
                it->outcome = REST_KEY_REUSED;
            }
            else {
                it->outcome = REST_REPLAYED;
                it->a.status = atoi(row[1]);
                it->a.location = row[2];
                it->a.body = (char *)row[3];
            }
            rtb_db_query(&x->db, "RELEASE rtb_change");
            goto out;
        }
        if (!rows) {
            it->outcome = REST_DB_ERROR;
            goto undo;
        }
    }
    rc = it->fn(x, &it->a);
    if (rc != 0 || x->db.failed) {
        it->outcome = x->db.failed ? REST_DB_ERROR : REST_REFUSED;
        goto undo;
    }
    if (it->idem) {
        const char *args[7] = {x->user,     it->idem,   it->fp, rest_i(x->r->pool, it->a.status),
                               it->a.location, it->a.body, rtb_now_iso(x->r->pool)};
        if (rtb_db_exec(&x->db, RTB_SQL_IDEM_INS, 7, args, NULL) < 0) {
            it->outcome = REST_DB_ERROR;
            goto undo;
        }
    }
    if (rtb_db_query(&x->db, "RELEASE rtb_change") < 0) {
        it->outcome = REST_DB_ERROR;
        goto undo;
    }
    it->outcome = REST_COMMITTED; /* once the batch commits */
    goto out;
undo:
    apr_array_clear(x->events);
    rtb_db_query(&x->db, "ROLLBACK TO rtb_change");
    rtb_db_query(&x->db, "RELEASE rtb_change");
out:
    x->db.dbd = own.dbd;
}

/* The leader's work: one lock, one transaction, one commit for the batch. */
static void rest_batch_run(rest_ctx_t *leader, rest_item_t *batch)
{
    request_rec *r = leader->r;
    rest_item_t *it;
    int i, ok;

    if (rtb_write_lock(r->server) != APR_SUCCESS) {
        for (it = batch; it; it = it->next)
            it->outcome = REST_BUSY;
        return;
    }
    if (rtb_db_write_begin(&leader->db) < 0) {
        rtb_write_unlock(r->server);
        for (it = batch; it; it = it->next)
            it->outcome = REST_BUSY;
        return;
    }
    for (it = batch; it; it = it->next)
        rest_batch_one(&leader->db, it);
    ok = rtb_db_query(&leader->db, "COMMIT") == 0;
    if (!ok)
        rtb_db_query(&leader->db, "ROLLBACK");
    for (it = batch; it; it = it->next) {
        if (it->outcome != REST_COMMITTED)
            continue;
        if (!ok) {
            it->outcome = REST_BUSY;
            continue;
        }
        for (i = 0; i < it->x->events->nelts; i++) {
            rest_event_t *e = &APR_ARRAY_IDX(it->x->events, i, rest_event_t);
            rtb_bus_publish(r->server, e->board, e->id, 0, e->json, strlen(e->json));
        }
    }
    rtb_write_unlock(r->server);
}

/*
 * Runs `fn` as one change: queued, run by this request or by another one
 * leading a batch, then answered. On any error nothing is written and
 * nothing published.
 */
static int rest_run_write(rest_ctx_t *x, rest_write_fn fn)
{
    request_rec *r = x->r;
    const char *idem = apr_table_get(r->headers_in, "Idempotency-Key");
    rest_item_t it;

    if (idem && (!*idem || strlen(idem) > 200))
        return rtb_send_error(r, HTTP_BAD_REQUEST, "invalid_idempotency_key",
                              "Idempotency-Key must be 1..200 characters", NULL);
    if (idem && strcmp(r->method, "POST") != 0)
        idem = NULL;
    memset(&it, 0, sizeof(it));
    it.x = x;
    it.fn = fn;
    it.idem = idem;
    it.fp = idem ? rest_fingerprint(x) : NULL;
    x->db.r = r;
    x->db.pool = r->pool;
    x->events = apr_array_make(r->pool, 2, sizeof(rest_event_t));

    apr_thread_mutex_lock(rest_gc.lock);
    if (rest_gc.tail)
        rest_gc.tail->next = &it;
    else
        rest_gc.head = &it;
    rest_gc.tail = &it;
    while (!it.done) {
        rest_item_t *batch, *last;
        int n;
        if (rest_gc.leader) {
            apr_thread_cond_wait(rest_gc.done, rest_gc.lock);
            continue;
        }
        /* lead: take up to REST_BATCH_MAX queued changes (ours among them) */
        rest_gc.leader = 1;
        batch = last = rest_gc.head;
        for (n = 1; n < REST_BATCH_MAX && last->next; n++)
            last = last->next;
        rest_gc.head = last->next;
        if (!rest_gc.head)
            rest_gc.tail = NULL;
        last->next = NULL;
        apr_thread_mutex_unlock(rest_gc.lock);
        if (!x->db.dbd && rtb_db_acquire(&x->db, r) < 0) {
            rest_item_t *b;
            for (b = batch; b; b = b->next)
                b->outcome = REST_BUSY;
        }
        else {
            rest_batch_run(x, batch);
        }
        apr_thread_mutex_lock(rest_gc.lock);
        {
            /* only now may the batch's requests answer (and their items go away) */
            rest_item_t *b, *nb;
            for (b = batch; b; b = nb) {
                nb = b->next;
                b->done = 1;
            }
        }
        rest_gc.leader = 0;
        apr_thread_cond_broadcast(rest_gc.done);
    }
    apr_thread_mutex_unlock(rest_gc.lock);

    switch (it.outcome) {
    case REST_REPLAYED:
        apr_table_setn(r->headers_out, "Idempotent-Replayed", "true");
        /* fall through */
    case REST_COMMITTED:
    case REST_REFUSED:
        return rest_send_answer(x, &it.a);
    case REST_KEY_REUSED:
        return rtb_send_error(r, HTTP_UNPROCESSABLE_ENTITY, "idempotency_key_reused",
                              "this Idempotency-Key was used for another request", NULL);
    case REST_DB_ERROR:
        return rtb_send_error(r, HTTP_INTERNAL_SERVER_ERROR, "database_error",
                              "the change could not be stored", NULL);
    default:
        apr_table_setn(r->headers_out, "Retry-After", "1");
        return rtb_send_error(r, HTTP_SERVICE_UNAVAILABLE, "database_busy",
                              "the database is busy, try again", NULL);
    }
}

/* ------------------------------------------------------------------ */
/* lookups                                                              */

static const char **rest_one_row(rest_ctx_t *x, const char *label, int nargs, const char **args)
{
    apr_array_header_t *rows = rtb_db_select(&x->db, label, nargs, args, NULL);
    if (!rows || rows->nelts == 0)
        return NULL;
    return APR_ARRAY_IDX(rows, 0, const char **);
}

static const char **rest_board_row(rest_ctx_t *x, const char *board)
{
    const char *a[1] = {board};
    return rest_one_row(x, RTB_SQL_BOARD_GET, 1, a);
}

static const char **rest_task_row(rest_ctx_t *x, const char *board, long long task)
{
    const char *a[2] = {rest_i(x->r->pool, task), board};
    return rest_one_row(x, RTB_SQL_TASK_GET, 2, a);
}

static const char **rest_list_row(rest_ctx_t *x, const char *board, long long list)
{
    const char *a[2] = {rest_i(x->r->pool, list), board};
    return rest_one_row(x, RTB_SQL_LIST_GET, 2, a);
}

static long long rest_count(rest_ctx_t *x, const char *label, const char *arg)
{
    const char *a[1] = {arg};
    const char **row = rest_one_row(x, label, 1, a);
    return row && row[0] ? apr_atoi64(row[0]) : -1;
}

static int rest_no_board(rest_ctx_t *x, rest_answer_t *a)
{
    if (x->db.failed)
        return -1;
    rest_answer_error(x, a, HTTP_NOT_FOUND, "board_not_found", "no such board", NULL, NULL,
                      NULL);
    return -1;
}

static int rest_no_task(rest_ctx_t *x, rest_answer_t *a)
{
    if (x->db.failed)
        return -1;
    rest_answer_error(x, a, HTTP_NOT_FOUND, "task_not_found", "no such task", NULL, NULL, NULL);
    return -1;
}

/* A task's ETag: its version, quoted; If-Match compares against it. */
static const char *rest_task_etag(apr_pool_t *p, const char **task)
{
    return apr_psprintf(p, "\"%s\"", task[RTB_TC_VERSION]);
}

/* If-Match: "<version>" against the row's version; 0 when it matches or is absent. */
static int rest_check_if_match(rest_ctx_t *x, rest_answer_t *a, const char **task)
{
    const char *im = apr_table_get(x->r->headers_in, "If-Match");
    const char *want;
    if (!im || !strcmp(im, "*"))
        return 0;
    want = rest_task_etag(x->r->pool, task);
    if (!strcmp(im, want) || !strcmp(im, task[RTB_TC_VERSION]) ||
        !strcmp(im, apr_pstrcat(x->r->pool, "W/", want, NULL)))
        return 0;
    rest_answer_error(x, a, HTTP_PRECONDITION_FAILED, "version_mismatch",
                      "the task was changed by someone else", NULL, "current",
                      rest_task_json(x->rt.board, task));
    return -1;
}

/* ------------------------------------------------------------------ */
/* boards                                                               */

static const rtb_field_spec_t spec_board_create[] = {
    {"id", RTB_F_STRING, 1, 64, 0, 0},
    {"name", RTB_F_STRING, 1, 200, 1, 0},
    {"lists", RTB_F_ANY, 0, 0, 0, 0}, /* checked by hand: an array of names */
    {NULL, 0, 0, 0, 0, 0}};

static const rtb_field_spec_t spec_board_patch[] = {{"name", RTB_F_STRING, 1, 200, 1, 0},
                                                    {NULL, 0, 0, 0, 0, 0}};

/* A readable id from a name: lower-case letters and digits, '-' between words. */
static char *rest_slugify(apr_pool_t *p, const char *name)
{
    char *out = apr_palloc(p, 49);
    apr_size_t n = 0;
    int dash = 0;
    for (; *name && n < 40; name++) {
        unsigned char c = (unsigned char)*name;
        if (apr_isalnum(c) && c < 128) {
            if (dash && n)
                out[n++] = '-';
            out[n++] = (char)apr_tolower(c);
            dash = 0;
        } else {
            dash = 1;
        }
    }
    out[n] = '\0';
    return n ? out : apr_pstrdup(p, "board");
}

static int rest_board_create(rest_ctx_t *x, rest_answer_t *a)
{
    apr_pool_t *p = x->r->pool;
    const char *id = rest_bstr(x, "id");
    const char *name = rest_bstr(x, "name");
    json_t *lists = json_object_get(x->body, "lists");
    json_t *out, *jl;
    const char *now = rtb_now_iso(p);
    size_t i, nl;
    static const char *const defaults[] = {"To Do", "In Progress", "Done"};

    if (!id) {
        char *base = rest_slugify(p, name);
        id = base;
        for (i = 2; rest_board_row(x, id) && i < 1000; i++)
            id = apr_psprintf(p, "%s-%d", base, (int)i);
    }
    if (x->db.failed)
        return -1;
    if (rest_board_row(x, id)) {
        rest_answer_error(x, a, HTTP_CONFLICT, "board_exists", "a board with this id exists",
                          "id", NULL, NULL);
        return -1;
    }
    {
        const char *args[3] = {id, name, now};
        if (rtb_db_exec(&x->db, RTB_SQL_BOARD_INS, 3, args, NULL) < 0)
            return -1;
    }
    nl = lists ? json_array_size(lists) : 3;
    jl = json_array();
    for (i = 0; i < nl; i++) {
        const char *ln = lists ? json_string_value(json_array_get(lists, i)) : defaults[i];
        const char *args[3] = {id, ln, rest_i(p, (long long)i)};
        const char **row = rest_one_row(x, RTB_SQL_LIST_INS, 3, args);
        if (!row)
            return -1;
        json_array_append_new(jl, json_pack("{s:o,s:s,s:s,s:I}", "id", rest_num(row[0]),
                                            "boardId", id, "name", ln, "position",
                                            (json_int_t)i));
    }
    out = json_pack("{s:s,s:s,s:s,s:i,s:o}", "id", id, "name", name, "createdAt", now,
                    "lastEventId", 0, "lists", jl);
    a->location = apr_pstrcat(p, x->cfg->base, "boards/", id, NULL);
    rest_answer_json(x, a, HTTP_CREATED, rest_data(out));
    return 0;
}

/* Checks the hand-typed parts of POST /boards: the id slug and the lists array. */
static int rest_board_body_extra(rest_ctx_t *x)
{
    const char *id = rest_bstr(x, "id");
    json_t *lists = json_object_get(x->body, "lists");
    size_t i;
    if (id && !rtb_board_slug_valid(id, strlen(id)))
        return rtb_send_error(x->r, HTTP_UNPROCESSABLE_ENTITY, "invalid_id",
                              "id must match [a-z0-9][a-z0-9_-]{0,63}", "id");
    if (lists) {
        if (!json_is_array(lists) || json_array_size(lists) > 50)
            return rtb_send_error(x->r, HTTP_UNPROCESSABLE_ENTITY, "invalid_type",
                                  "lists must be an array of at most 50 names", "lists");
        for (i = 0; i < json_array_size(lists); i++) {
            json_t *v = json_array_get(lists, i);
            size_t n;
            if (!json_is_string(v))
                return rtb_send_error(x->r, HTTP_UNPROCESSABLE_ENTITY, "invalid_type",
                                      "every list name must be a string", "lists");
            n = rtb_utf8_len(json_string_value(v));
            if (n < 1 || n > 100 || strlen(json_string_value(v)) != json_string_length(v))
                return rtb_send_error(x->r, HTTP_UNPROCESSABLE_ENTITY, "invalid_value",
                                      "list names are 1..100 characters, without NUL",
                                      "lists");
        }
    }
    return OK;
}

/* Asks Apache whether this user may read board `b` (its <Location> Require lines). */
int rtb_board_allowed(request_rec *r, const char *board, const char *method, const char *uri)
{
    rtb_cfg_t *cfg = rtb_cfg(r->server);
    request_rec *rr;
    int st;
    if (!uri)
        uri = apr_pstrcat(r->pool, cfg->base, "boards/", board, NULL);
    rr = ap_sub_req_method_uri(method ? method : "GET", uri, r, NULL);
    st = rr->status;
    ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, "RTB0030: %s %s for %s: %d", rr->method,
                  uri, r->user ? r->user : "-", st);
    ap_destroy_sub_req(rr);
    return st == HTTP_OK ? OK : st;
}

static int rest_boards_list(rest_ctx_t *x)
{
    apr_array_header_t *rows;
    json_t *arr = json_array();
    int i;
    if (rtb_db_acquire(&x->db, x->r) < 0) {
        json_decref(arr);
        return rtb_send_error(x->r, HTTP_SERVICE_UNAVAILABLE, "database_unavailable",
                              "the database is not available", NULL);
    }
    rows = rtb_db_select(&x->db, RTB_SQL_BOARDS_ALL, 0, NULL, NULL);
    if (!rows) {
        json_decref(arr);
        return rtb_send_error(x->r, HTTP_INTERNAL_SERVER_ERROR, "database_error",
                              "could not read boards", NULL);
    }
    for (i = 0; i < rows->nelts; i++) {
        const char **row = APR_ARRAY_IDX(rows, i, const char **);
        if (rtb_board_allowed(x->r, row[0], "GET", NULL) == OK)
            json_array_append_new(arr, rest_board_json(row));
    }
    return rtb_send_json(x->r, HTTP_OK, rest_data(arr));
}

/* A strong ETag for a board state: its sequence, and its creation time so a
 * re-created board never matches the old one's tags. */
static const char *rest_board_etag(apr_pool_t *p, const char **b)
{
    apr_ssize_t klen = APR_HASH_KEY_STRING;
    return apr_psprintf(p, "\"s%s-%08x\"", b[3], (unsigned)apr_hashfunc_default(b[2], &klen));
}

/*
 * The board snapshot: board, lists and tasks read in one read transaction,
 * so the snapshot and its lastEventId always agree and a client can
 * subscribe from that id with no gap.
 */
static int rest_board_get(rest_ctx_t *x)
{
    request_rec *r = x->r;
    const char *a1[1] = {x->rt.board};
    const char **b, *etag, *inm;
    apr_array_header_t *lists = NULL, *tasks = NULL;
    json_t *jl, *jt, *root;
    int i;

    if (rtb_db_acquire(&x->db, r) < 0)
        return rtb_send_error(r, HTTP_SERVICE_UNAVAILABLE, "database_unavailable",
                              "the database is not available", NULL);
    if (rtb_db_read_begin(&x->db) < 0)
        return rtb_send_error(r, HTTP_SERVICE_UNAVAILABLE, "database_busy",
                              "could not read the board, try again", NULL);
    b = rest_board_row(x, x->rt.board);
    etag = b ? rest_board_etag(r->pool, b) : NULL;
    inm = apr_table_get(r->headers_in, "If-None-Match");
    if (b && !(inm && !strcmp(inm, etag))) {
        lists = rtb_db_select(&x->db, RTB_SQL_LISTS_OF, 1, a1, NULL);
        tasks = rtb_db_select(&x->db, RTB_SQL_TASKS_OF, 1, a1, NULL);
    }
    rtb_db_read_end(&x->db);
    if (x->db.failed)
        return rtb_send_error(r, HTTP_INTERNAL_SERVER_ERROR, "database_error",
                              "could not read the board", NULL);
    if (!b)
        return rtb_send_error(r, HTTP_NOT_FOUND, "board_not_found", "no such board", NULL);
    apr_table_setn(r->headers_out, "ETag", etag);
    if (!lists)
        return rtb_send_body(r, HTTP_NOT_MODIFIED, NULL, 0);
    jl = json_array();
    for (i = 0; i < lists->nelts; i++)
        json_array_append_new(jl, rest_list_json(x->rt.board, APR_ARRAY_IDX(lists, i, const char **)));
    jt = json_array();
    for (i = 0; i < tasks->nelts; i++)
        json_array_append_new(jt, rest_task_json(x->rt.board, APR_ARRAY_IDX(tasks, i, const char **)));
    root = json_pack("{s:{s:o,s:o,s:o},s:o}", "data", "board", rest_board_json(b), "lists", jl,
                     "tasks", jt, "lastEventId", rest_num(b[3]));
    return rtb_send_json(r, HTTP_OK, root);
}

static int rest_board_patch(rest_ctx_t *x, rest_answer_t *a)
{
    const char *name = rest_bstr(x, "name");
    const char **b = rest_board_row(x, x->rt.board);
    json_t *bj;
    if (!b)
        return rest_no_board(x, a);
    {
        const char *args[2] = {name, x->rt.board};
        if (rtb_db_exec(&x->db, RTB_SQL_BOARD_RENAME, 2, args, NULL) < 0)
            return -1;
    }
    b = rest_board_row(x, x->rt.board);
    if (!b)
        return -1;
    bj = rest_board_json(b);
    /* the board as of this very change: writers are serialised, so its id is seq + 1 */
    json_object_set_new(bj, "lastEventId", json_integer((json_int_t)apr_atoi64(b[3]) + 1));
    return rest_emit_resource(x, a, "board_updated", "board", bj, HTTP_OK);
}

static int rest_board_delete(rest_ctx_t *x, rest_answer_t *a)
{
    const char *args[1] = {x->rt.board};
    if (!rest_board_row(x, x->rt.board))
        return rest_no_board(x, a);
    if (!rest_emit(x, x->rt.board, "board_deleted", json_pack("{s:s}", "boardId", x->rt.board)))
        return -1;
    if (rtb_db_exec(&x->db, RTB_SQL_BOARD_DEL, 1, args, NULL) < 0)
        return -1;
    a->status = HTTP_NO_CONTENT;
    a->body = NULL;
    return 0;
}

/* ------------------------------------------------------------------ */
/* lists                                                                */

static const rtb_field_spec_t spec_list_create[] = {{"name", RTB_F_STRING, 1, 100, 1, 0},
                                                    {"position", RTB_F_INT, 0, 100000, 0, 0},
                                                    {NULL, 0, 0, 0, 0, 0}};
static const rtb_field_spec_t spec_list_patch[] = {{"name", RTB_F_STRING, 1, 100, 1, 0},
                                                   {NULL, 0, 0, 0, 0, 0}};

static int rest_list_create(rest_ctx_t *x, rest_answer_t *a)
{
    apr_pool_t *p = x->r->pool;
    long long next, pos;
    const char **row;
    json_t *lj;
    if (!rest_board_row(x, x->rt.board))
        return rest_no_board(x, a);
    next = rest_count(x, RTB_SQL_LIST_NEXT_POS, x->rt.board);
    if (next < 0)
        return -1;
    pos = rest_bint(x, "position", next);
    if (pos > next)
        pos = next;
    if (pos < next) {
        const char *args[3] = {"1", x->rt.board, rest_i(p, pos)};
        if (rtb_db_exec(&x->db, RTB_SQL_LIST_SHIFT, 3, args, NULL) < 0)
            return -1;
    }
    {
        const char *args[3] = {x->rt.board, rest_bstr(x, "name"), rest_i(p, pos)};
        row = rest_one_row(x, RTB_SQL_LIST_INS, 3, args);
        if (!row)
            return -1;
    }
    lj = json_pack("{s:o,s:s,s:s,s:I}", "id", rest_num(row[0]), "boardId", x->rt.board, "name",
                   rest_bstr(x, "name"), "position", (json_int_t)pos);
    a->location = apr_psprintf(p, "%sboards/%s/lists/%s", x->cfg->base, x->rt.board, row[0]);
    return rest_emit_resource(x, a, "list_created", "list", lj, HTTP_CREATED);
}

static int rest_list_missing(rest_ctx_t *x, rest_answer_t *a)
{
    if (!rest_board_row(x, x->rt.board))
        return rest_no_board(x, a);
    if (x->db.failed)
        return -1;
    rest_answer_error(x, a, HTTP_NOT_FOUND, "list_not_found", "no such list", NULL, NULL, NULL);
    return -1;
}

static int rest_list_patch(rest_ctx_t *x, rest_answer_t *a)
{
    apr_pool_t *p = x->r->pool;
    const char **row = rest_list_row(x, x->rt.board, x->rt.list);
    json_t *lj;
    if (!row)
        return rest_list_missing(x, a);
    {
        const char *args[2] = {rest_bstr(x, "name"), rest_i(p, x->rt.list)};
        if (rtb_db_exec(&x->db, RTB_SQL_LIST_RENAME, 2, args, NULL) < 0)
            return -1;
    }
    row = rest_list_row(x, x->rt.board, x->rt.list);
    if (!row)
        return -1;
    lj = rest_list_json(x->rt.board, row);
    return rest_emit_resource(x, a, "list_updated", "list", lj, HTTP_OK);
}

static int rest_list_delete(rest_ctx_t *x, rest_answer_t *a)
{
    apr_pool_t *p = x->r->pool;
    const char **row = rest_list_row(x, x->rt.board, x->rt.list);
    const char *lid = rest_i(p, x->rt.list);
    const char *cv = rtb_query_arg(x->r, "cascade");
    int cascade = cv && !strcmp(cv, "1");
    long long ntasks;
    if (!row)
        return rest_list_missing(x, a);
    ntasks = rest_count(x, RTB_SQL_LIST_TASKS, lid);
    if (ntasks < 0)
        return -1;
    if (ntasks > 0 && !cascade) {
        rest_answer_error(x, a, HTTP_CONFLICT, "list_not_empty",
                          "the list holds tasks; delete them or use ?cascade=1", NULL, NULL,
                          NULL);
        return -1;
    }
    {
        const char *args[1] = {lid};
        const char *shift[3] = {"-1", x->rt.board, rest_i(p, apr_atoi64(row[2]) + 1)};
        if (rtb_db_exec(&x->db, RTB_SQL_TASK_DEL_LIST, 1, args, NULL) < 0 ||
            rtb_db_exec(&x->db, RTB_SQL_LIST_DEL, 1, args, NULL) < 0 ||
            rtb_db_exec(&x->db, RTB_SQL_LIST_SHIFT, 3, shift, NULL) < 0)
            return -1;
    }
    if (!rest_emit(x, x->rt.board, "list_deleted",
                   json_pack("{s:I,s:I}", "listId", (json_int_t)x->rt.list, "tasksDeleted",
                             (json_int_t)ntasks)))
        return -1;
    a->status = HTTP_NO_CONTENT;
    a->body = NULL;
    return 0;
}

/* ------------------------------------------------------------------ */
/* tasks                                                                */

static const rtb_field_spec_t spec_task_create[] = {
    {"listId", RTB_F_ID, 1, 9007199254740991LL, 1, 0},
    {"title", RTB_F_STRING, 1, 200, 1, 0},
    {"description", RTB_F_STRING, 0, 10000, 0, 0},
    {"assignee", RTB_F_STRING, 1, 64, 0, 1},
    {"position", RTB_F_INT, 0, 1000000, 0, 0},
    {NULL, 0, 0, 0, 0, 0}};

static const rtb_field_spec_t spec_alias_create[] = {
    {"boardId", RTB_F_STRING, 1, 64, 1, 0},
    {"listId", RTB_F_ID, 1, 9007199254740991LL, 1, 0},
    {"title", RTB_F_STRING, 1, 200, 1, 0},
    {"description", RTB_F_STRING, 0, 10000, 0, 0},
    {"assignee", RTB_F_STRING, 1, 64, 0, 1},
    {"position", RTB_F_INT, 0, 1000000, 0, 0},
    {NULL, 0, 0, 0, 0, 0}};

static const rtb_field_spec_t spec_task_patch[] = {{"title", RTB_F_STRING, 1, 200, 0, 0},
                                                   {"description", RTB_F_STRING, 0, 10000, 0, 0},
                                                   {"assignee", RTB_F_STRING, 1, 64, 0, 1},
                                                   {NULL, 0, 0, 0, 0, 0}};

static const rtb_field_spec_t spec_task_move[] = {
    {"listId", RTB_F_ID, 1, 9007199254740991LL, 1, 0},
    {"position", RTB_F_INT, 0, 1000000, 1, 0},
    {NULL, 0, 0, 0, 0, 0}};

static int rest_bad_list(rest_ctx_t *x, rest_answer_t *a)
{
    if (x->db.failed)
        return -1;
    rest_answer_error(x, a, HTTP_UNPROCESSABLE_ENTITY, "list_not_found",
                      "listId does not name a list of this board", "listId", NULL, NULL);
    return -1;
}

static int rest_task_create(rest_ctx_t *x, rest_answer_t *a)
{
    apr_pool_t *p = x->r->pool;
    long long list = rest_bint(x, "listId", 0), count, pos;
    const char *lid = rest_i(p, list);
    const char *now = rtb_now_iso(p);
    const char **row;
    json_t *tj;
    {
        /* the list, of this board, and its size in one statement; the write
         * path is serialised, so every statement saved counts */
        const char *args[2] = {lid, x->rt.board};
        row = rest_one_row(x, RTB_SQL_LIST_COUNT, 2, args);
        if (!row) {
            if (!x->db.failed && !rest_board_row(x, x->rt.board))
                return rest_no_board(x, a);
            return rest_bad_list(x, a);
        }
        count = apr_atoi64(row[0]);
    }
    pos = rest_bint(x, "position", count);
    if (pos > count)
        pos = count;
    if (pos < count) {
        const char *args[3] = {"1", lid, rest_i(p, pos)};
        if (rtb_db_exec(&x->db, RTB_SQL_TASK_SHIFT, 3, args, NULL) < 0)
            return -1;
    }
    {
        const char *desc = rest_bstr(x, "description");
        const char *args[11] = {x->rt.board, lid,       rest_bstr(x, "title"),
                                desc ? desc : "", rest_bstr(x, "assignee"),
                                rest_i(p, pos), now, now, x->user, x->user};
        row = rest_one_row(x, RTB_SQL_TASK_INS, 10, args); /* RETURNING the task's columns */
        if (!row)
            return -1;
    }
    tj = rest_task_json(x->rt.board, row);
    a->location = apr_psprintf(p, "%sboards/%s/tasks/%s", x->cfg->base, x->rt.board,
                               row[RTB_TC_ID]);
    return rest_emit_resource(x, a, "task_created", "task", tj, HTTP_CREATED);
}

static int rest_tasks_list(rest_ctx_t *x)
{
    const char *a1[1] = {x->rt.board};
    apr_array_header_t *rows;
    json_t *arr;
    int i;
    if (rtb_db_acquire(&x->db, x->r) < 0)
        return rtb_send_error(x->r, HTTP_SERVICE_UNAVAILABLE, "database_unavailable",
                              "the database is not available", NULL);
    if (!rest_board_row(x, x->rt.board))
        return x->db.failed ? HTTP_INTERNAL_SERVER_ERROR
                            : rtb_send_error(x->r, HTTP_NOT_FOUND, "board_not_found",
                                             "no such board", NULL);
    rows = rtb_db_select(&x->db, RTB_SQL_TASKS_OF, 1, a1, NULL);
    if (!rows)
        return HTTP_INTERNAL_SERVER_ERROR;
    arr = json_array();
    for (i = 0; i < rows->nelts; i++)
        json_array_append_new(arr,
                              rest_task_json(x->rt.board, APR_ARRAY_IDX(rows, i, const char **)));
    return rtb_send_json(x->r, HTTP_OK, rest_data(arr));
}

static int rest_task_get(rest_ctx_t *x)
{
    const char **row;
    if (rtb_db_acquire(&x->db, x->r) < 0)
        return rtb_send_error(x->r, HTTP_SERVICE_UNAVAILABLE, "database_unavailable",
                              "the database is not available", NULL);
    row = rest_task_row(x, x->rt.board, x->rt.task);
    if (!row) {
        if (x->db.failed)
            return HTTP_INTERNAL_SERVER_ERROR;
        if (!rest_board_row(x, x->rt.board))
            return rtb_send_error(x->r, HTTP_NOT_FOUND, "board_not_found", "no such board",
                                  NULL);
        return rtb_send_error(x->r, HTTP_NOT_FOUND, "task_not_found", "no such task", NULL);
    }
    apr_table_setn(x->r->headers_out, "ETag",
                   rest_task_etag(x->r->pool, row));
    return rtb_send_json(x->r, HTTP_OK, rest_data(rest_task_json(x->rt.board, row)));
}

static int rest_task_lookup(rest_ctx_t *x, rest_answer_t *a, const char ***row)
{
    *row = rest_task_row(x, x->rt.board, x->rt.task);
    if (!*row) {
        if (!x->db.failed && !rest_board_row(x, x->rt.board))
            return rest_no_board(x, a);
        return rest_no_task(x, a);
    }
    return rest_check_if_match(x, a, *row);
}

static int rest_task_patch(rest_ctx_t *x, rest_answer_t *a)
{
    apr_pool_t *p = x->r->pool;
    const char **row;
    json_t *tj;
    if (rest_task_lookup(x, a, &row) < 0)
        return -1;
    if (json_object_size(x->body) == 0) {
        rest_answer_error(x, a, HTTP_UNPROCESSABLE_ENTITY, "empty_patch",
                          "give at least one of title, description, assignee", NULL, NULL,
                          NULL);
        return -1;
    }
    {
        const char *args[6] = {
            rest_bhas(x, "title") ? rest_bstr(x, "title") : row[RTB_TC_TITLE],
            rest_bhas(x, "description") ? rest_bstr(x, "description") : row[RTB_TC_DESC],
            rest_bhas(x, "assignee") ? rest_bstr(x, "assignee") : row[RTB_TC_ASSIGNEE],
            rtb_now_iso(p), x->user, rest_i(p, x->rt.task)};
        if (rtb_db_exec(&x->db, RTB_SQL_TASK_UPDATE, 6, args, NULL) < 0)
            return -1;
    }
    row = rest_task_row(x, x->rt.board, x->rt.task);
    if (!row)
        return -1;
    tj = rest_task_json(x->rt.board, row);
    apr_table_setn(x->r->headers_out, "ETag", rest_task_etag(p, row));
    return rest_emit_resource(x, a, "task_updated", "task", tj, HTTP_OK);
}

static int rest_task_delete(rest_ctx_t *x, rest_answer_t *a)
{
    apr_pool_t *p = x->r->pool;
    const char **row;
    if (rest_task_lookup(x, a, &row) < 0)
        return -1;
    {
        const char *del[1] = {rest_i(p, x->rt.task)};
        const char *shift[3] = {"-1", row[RTB_TC_LIST],
                                rest_i(p, apr_atoi64(row[RTB_TC_POS]) + 1)};
        if (rtb_db_exec(&x->db, RTB_SQL_TASK_DEL, 1, del, NULL) < 0 ||
            rtb_db_exec(&x->db, RTB_SQL_TASK_SHIFT, 3, shift, NULL) < 0)
            return -1;
    }
    if (!rest_emit(x, x->rt.board, "task_deleted",
                   json_pack("{s:I,s:o}", "taskId", (json_int_t)x->rt.task, "listId",
                             rest_num(row[RTB_TC_LIST]))))
        return -1;
    a->status = HTTP_NO_CONTENT;
    a->body = NULL;
    return 0;
}

static int rest_task_move(rest_ctx_t *x, rest_answer_t *a)
{
    apr_pool_t *p = x->r->pool;
    const char **row;
    long long to_list = rest_bint(x, "listId", 0), pos = rest_bint(x, "position", 0), count;
    const char *tid = rest_i(p, x->rt.task);
    const char *from_list, *from_pos;
    json_t *tj;
    if (rest_task_lookup(x, a, &row) < 0)
        return -1;
    if (!rest_list_row(x, x->rt.board, to_list))
        return rest_bad_list(x, a);
    from_list = row[RTB_TC_LIST];
    from_pos = row[RTB_TC_POS];
    {
        /* take the task out of its list, close the gap, then open one at the target */
        const char *park[1] = {tid};
        const char *close_gap[3] = {"-1", from_list, rest_i(p, apr_atoi64(from_pos) + 1)};
        if (rtb_db_exec(&x->db, RTB_SQL_TASK_PARK, 1, park, NULL) < 0 ||
            rtb_db_exec(&x->db, RTB_SQL_TASK_SHIFT, 3, close_gap, NULL) < 0)
            return -1;
    }
    count = rest_count(x, RTB_SQL_LIST_TASKS, rest_i(p, to_list));
    if (count < 0)
        return -1;
    /* the parked task (position -1) is not counted: MAX(position) + 1 of the others */
    if (pos > count)
        pos = count;
    {
        const char *open_gap[3] = {"1", rest_i(p, to_list), rest_i(p, pos)};
        const char *mv[5] = {rest_i(p, to_list), rest_i(p, pos), rtb_now_iso(p), x->user, tid};
        if (rtb_db_exec(&x->db, RTB_SQL_TASK_SHIFT, 3, open_gap, NULL) < 0 ||
            rtb_db_exec(&x->db, RTB_SQL_TASK_MOVE, 5, mv, NULL) < 0)
            return -1;
    }
    row = rest_task_row(x, x->rt.board, x->rt.task);
    if (!row)
        return -1;
    tj = rest_task_json(x->rt.board, row);
    if (!rest_emit(x, x->rt.board, "task_moved",
                   json_pack("{s:O,s:{s:o,s:o}}", "task", tj, "from", "listId",
                             rest_num(from_list), "position", rest_num(from_pos)))) {
        json_decref(tj);
        return -1;
    }
    apr_table_setn(x->r->headers_out, "ETag", rest_task_etag(p, row));
    rest_answer_json(x, a, HTTP_OK, rest_data(tj));
    return 0;
}

/* ------------------------------------------------------------------ */
/* updates                                                              */

int rtb_history_gone(request_rec *r, apr_uint64_t since, apr_uint64_t last)
{
    rtb_cfg_t *cfg = rtb_cfg(r->server);
    if (since > last)
        return 1;
    return cfg->history > 0 && last - since > (apr_uint64_t)cfg->history;
}

/*
 * Builds {"data":[events with id > since],"lastEventId":N} from the event
 * log, or a reset when `since` is older than the retained history or ahead
 * of the board. Returns a pool string, or NULL with *status set.
 */
const char *rtb_updates_body(request_rec *r, rtb_db_t *db, const char *board, apr_uint64_t since,
                             int *status, int *nevents)
{
    apr_pool_t *p = r->pool;
    const char *a1[1] = {board};
    apr_array_header_t *b, *rows;
    apr_uint64_t last, min;
    struct iovec *iov;
    int i, n;

    *nevents = 0;
    b = rtb_db_select(db, RTB_SQL_BOARD_GET, 1, a1, NULL);
    if (!b) {
        *status = HTTP_INTERNAL_SERVER_ERROR;
        return NULL;
    }
    if (b->nelts == 0) {
        *status = HTTP_NOT_FOUND;
        return NULL;
    }
    last = (apr_uint64_t)apr_atoi64(APR_ARRAY_IDX(b, 0, const char **)[3]);
    *status = HTTP_OK;
    if (since == last)
        return apr_psprintf(p, "{\"data\":[],\"lastEventId\":%" APR_UINT64_T_FMT "}", last);
    {
        const char **m = NULL;
        apr_array_header_t *mr = rtb_db_select(db, RTB_SQL_EVENT_MIN, 1, a1, NULL);
        if (!mr) {
            *status = HTTP_INTERNAL_SERVER_ERROR;
            return NULL;
        }
        if (mr->nelts)
            m = APR_ARRAY_IDX(mr, 0, const char **);
        min = m && m[0] ? (apr_uint64_t)apr_atoi64(m[0]) : 0;
    }
    if (rtb_history_gone(r, since, last) || (min > 0 && since + 1 < min) ||
        (min == 0 && last > 0)) {
        *nevents = -1;
        return apr_psprintf(p,
                            "{\"data\":[{\"type\":\"reset\",\"boardId\":\"%s\",\"lastEventId\":"
                            "%" APR_UINT64_T_FMT ",\"snapshot\":\"%sboards/%s\"}],"
                            "\"lastEventId\":%" APR_UINT64_T_FMT ",\"reset\":true}",
                            board, last, rtb_cfg(r->server)->base, board, last);
    }
    {
        const char *args[3] = {board, apr_psprintf(p, "%" APR_UINT64_T_FMT, since),
                               apr_itoa(p, REST_MAX_EVENTS)};
        rows = rtb_db_select(db, RTB_SQL_EVENTS_SINCE, 3, args, NULL);
    }
    if (!rows) {
        *status = HTTP_INTERNAL_SERVER_ERROR;
        return NULL;
    }
    n = rows->nelts;
    iov = apr_palloc(p, sizeof(struct iovec) * (2 * n + 2));
    iov[0].iov_base = "{\"data\":[";
    iov[0].iov_len = 9;
    for (i = 0; i < n; i++) {
        const char **row = APR_ARRAY_IDX(rows, i, const char **);
        iov[1 + 2 * i].iov_base = (void *)(i ? "," : "");
        iov[1 + 2 * i].iov_len = i ? 1 : 0;
        iov[2 + 2 * i].iov_base = (void *)row[1];
        iov[2 + 2 * i].iov_len = strlen(row[1]);
        last = (apr_uint64_t)apr_atoi64(row[0]);
    }
    iov[1 + 2 * n].iov_base =
        apr_psprintf(p, "],\"lastEventId\":%" APR_UINT64_T_FMT ",\"more\":%s}", last,
                     n == REST_MAX_EVENTS ? "true" : "false");
    iov[1 + 2 * n].iov_len = strlen(iov[1 + 2 * n].iov_base);
    *nevents = n;
    return apr_pstrcatv(p, iov, 2 * n + 2, NULL);
}

const char *rtb_query_arg(request_rec *r, const char *name)
{
    const char *q = r->args;
    apr_size_t nl = strlen(name);
    while (q && *q) {
        const char *amp = strchr(q, '&');
        apr_size_t len = amp ? (apr_size_t)(amp - q) : strlen(q);
        if (len >= nl && !strncmp(q, name, nl) && (len == nl || q[nl] == '=')) {
            char *v = len == nl ? "" : apr_pstrmemdup(r->pool, q + nl + 1, len - nl - 1);
            ap_unescape_url(v);
            return v;
        }
        q = amp ? amp + 1 : NULL;
    }
    return NULL;
}

/* Parses the `name` query argument as an event id; -1 when absent, -2 when malformed. */
long long rtb_query_id(request_rec *r, const char *name)
{
    const char *q = r->args;
    size_t nl = strlen(name);
    while (q && *q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        if (len > nl && !strncmp(q, name, nl) && q[nl] == '=') {
            const char *v = q + nl + 1;
            size_t vl = len - nl - 1;
            long long n = 0;
            size_t i;
            if (vl == 0 || vl > 16)
                return -2;
            for (i = 0; i < vl; i++) {
                if (v[i] < '0' || v[i] > '9')
                    return -2;
                n = n * 10 + (v[i] - '0');
            }
            return n;
        }
        q = amp ? amp + 1 : NULL;
    }
    return -1;
}

static int rest_updates(rest_ctx_t *x)
{
    long long since = rtb_query_id(x->r, "since");
    const char *body;
    int status, n;
    if (since == -2)
        return rtb_send_error(x->r, HTTP_BAD_REQUEST, "invalid_since",
                              "since must be a non-negative integer", "since");
    if (rtb_db_acquire(&x->db, x->r) < 0)
        return rtb_send_error(x->r, HTTP_SERVICE_UNAVAILABLE, "database_unavailable",
                              "the database is not available", NULL);
    if (since == -1) {
        const char **b = rest_board_row(x, x->rt.board);
        if (!b)
            return x->db.failed ? HTTP_INTERNAL_SERVER_ERROR
                                : rtb_send_error(x->r, HTTP_NOT_FOUND, "board_not_found",
                                                 "no such board", NULL);
        body = apr_psprintf(x->r->pool, "{\"data\":[],\"lastEventId\":%s}", b[3]);
        return rtb_send_body(x->r, HTTP_OK, body, strlen(body));
    }
    body = rtb_updates_body(x->r, &x->db, x->rt.board, (apr_uint64_t)since, &status, &n);
    if (!body) {
        if (status == HTTP_NOT_FOUND)
            return rtb_send_error(x->r, HTTP_NOT_FOUND, "board_not_found", "no such board",
                                  NULL);
        return status;
    }
    return rtb_send_body(x->r, status, body, strlen(body));
}

/* ------------------------------------------------------------------ */
/* aliases                                                              */

/*
 * The course routes carry no board in their path: find the board, then ask
 * Apache to authorize the board route they stand for, so the board's
 * <Location> Require lines apply to them too.
 */
static int rest_alias(rest_ctx_t *x)
{
    request_rec *r = x->r;
    const char *uri;
    int rc;
    if (x->rt.id == RTB_R_ALIAS_TASKS) {
        const char *b;
        if ((rc = rest_body(x, spec_alias_create)) != OK)
            return rc == DONE ? OK : rc;
        b = rest_bstr(x, "boardId");
        if (!rtb_board_slug_valid(b, strlen(b)))
            return rtb_send_error(r, HTTP_UNPROCESSABLE_ENTITY, "invalid_id",
                                  "boardId is not a board id", "boardId");
        apr_cpystrn(x->rt.board, b, sizeof(x->rt.board));
        json_object_del(x->body, "boardId");
        uri = apr_pstrcat(r->pool, x->cfg->base, "boards/", x->rt.board, "/tasks", NULL);
    } else {
        const char *a[1] = {rest_i(r->pool, x->rt.task)};
        const char **row;
        if (rtb_db_acquire(&x->db, r) < 0)
            return HTTP_SERVICE_UNAVAILABLE;
        row = rest_one_row(x, RTB_SQL_TASK_BOARD, 1, a);
        if (!row)
            return x->db.failed ? HTTP_INTERNAL_SERVER_ERROR
                                : rtb_send_error(r, HTTP_NOT_FOUND, "task_not_found",
                                                 "no such task", NULL);
        apr_cpystrn(x->rt.board, row[0], sizeof(x->rt.board));
        uri = apr_psprintf(r->pool, "%sboards/%s/tasks/%" APR_INT64_T_FMT "%s", x->cfg->base, x->rt.board,
                           (apr_int64_t)x->rt.task, x->rt.id == RTB_R_ALIAS_MOVE ? "/move" : "");
    }
    rc = rtb_board_allowed(r, x->rt.board, r->method, uri);
    if (rc != OK) {
        /* Apache answers 401 to a known user that fails Require: that is a 403 here */
        if (rc == HTTP_UNAUTHORIZED && !r->user)
            return rtb_send_error(r, rc, "not_authenticated", "authentication required", NULL);
        return rtb_send_error(r, HTTP_FORBIDDEN, "board_forbidden",
                              "you may not use this board", NULL);
    }
    switch (x->rt.id) {
    case RTB_R_ALIAS_TASKS:
        return rest_run_write(x, rest_task_create);
    case RTB_R_ALIAS_MOVE:
        if ((rc = rest_body(x, spec_task_move)) != OK)
            return rc == DONE ? OK : rc;
        return rest_run_write(x, rest_task_move);
    default:
        return rest_run_write(x, rest_task_delete);
    }
}

/* ------------------------------------------------------------------ */
/* dispatch                                                             */

/* Every change: its route, method, body rules (NULL: no body) and writer. */
static const struct {
    rtb_route_id_t route;
    int method;
    const rtb_field_spec_t *spec;
    rest_write_fn fn;
} rest_writes[] = {
    {RTB_R_BOARDS, RTB_M_POST, spec_board_create, rest_board_create},
    {RTB_R_BOARD, RTB_M_PATCH, spec_board_patch, rest_board_patch},
    {RTB_R_BOARD, RTB_M_DELETE, NULL, rest_board_delete},
    {RTB_R_LISTS, RTB_M_POST, spec_list_create, rest_list_create},
    {RTB_R_LIST, RTB_M_PATCH, spec_list_patch, rest_list_patch},
    {RTB_R_LIST, RTB_M_DELETE, NULL, rest_list_delete},
    {RTB_R_TASKS, RTB_M_POST, spec_task_create, rest_task_create},
    {RTB_R_TASK, RTB_M_PATCH, spec_task_patch, rest_task_patch},
    {RTB_R_TASK, RTB_M_DELETE, NULL, rest_task_delete},
    {RTB_R_TASK_MOVE, RTB_M_PATCH, spec_task_move, rest_task_move},
};

int rtb_rest_dispatch(request_rec *r, const rtb_route_t *rt)
{
    rest_ctx_t x;
    int m = rtb_method_bit(r->method), rc;
    size_t i;

    memset(&x, 0, sizeof(x));
    x.r = r;
    x.cfg = rtb_cfg(r->server);
    x.rt = *rt;
    x.user = r->user ? r->user : "anonymous";

    for (i = 0; i < sizeof(rest_writes) / sizeof(rest_writes[0]); i++) {
        if (rest_writes[i].route != rt->id || rest_writes[i].method != m)
            continue;
        if (rest_writes[i].spec && (rc = rest_body(&x, rest_writes[i].spec)) != OK)
            return rc == DONE ? OK : rc;
        if (rt->id == RTB_R_BOARDS && (rest_board_body_extra(&x) != OK || r->status != HTTP_OK))
            return OK;
        return rest_run_write(&x, rest_writes[i].fn);
    }
    switch (rt->id) {
    case RTB_R_BOARDS:
        return rest_boards_list(&x);
    case RTB_R_BOARD:
        return rest_board_get(&x);
    case RTB_R_TASKS:
        return rest_tasks_list(&x);
    case RTB_R_TASK:
        return rest_task_get(&x);
    case RTB_R_UPDATES:
        return rest_updates(&x);
    case RTB_R_ALIAS_TASKS:
    case RTB_R_ALIAS_TASK:
    case RTB_R_ALIAS_MOVE:
        return rest_alias(&x);
    default:
        return DECLINED;
    }
}
