/*
 * rtb_ws_join: joining a board on a WebSocket. See rtb_ws_join.h.
 */
#include "rtb_ws_join.h"
#include "rtb_config.h"
#include "rtb_engine.h"
#include "rtb_http.h"
#include "rtb_presence.h"

#include "http_core.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_strings.h"

#include <pthread.h>

/*
 * A join's pool has an allocator of its own (the worker that decides the
 * join must not share the connection's). Apache's allocators map every
 * block they hand out and unmap it when they are destroyed, and unmapping
 * costs a TLB flush on every core running the child's threads: a join
 * storm spent more time there than in the joins. So a finished join's pool
 * is cleared and kept for the next one (its allocator keeping a few blocks
 * free), up to JOIN_POOLS_KEPT per child.
 */
#define JOIN_POOLS_KEPT 32
#define JOIN_POOL_MAX_FREE (32 * 1024)

static struct {
    pthread_mutex_t lock;
    apr_pool_t *kept[JOIN_POOLS_KEPT];
    int n;
} join_pools = {PTHREAD_MUTEX_INITIALIZER, {NULL}, 0};

static apr_pool_t *join_pool_take(void)
{
    apr_pool_t *p = NULL;
    apr_allocator_t *alloc;
    pthread_mutex_lock(&join_pools.lock);
    if (join_pools.n)
        p = join_pools.kept[--join_pools.n];
    pthread_mutex_unlock(&join_pools.lock);
    if (p)
        return p;
    if (apr_allocator_create(&alloc) != APR_SUCCESS)
        return NULL;
    apr_allocator_max_free_set(alloc, JOIN_POOL_MAX_FREE);
    if (apr_pool_create_ex(&p, NULL, NULL, alloc) != APR_SUCCESS) {
        apr_allocator_destroy(alloc);
        return NULL;
    }
    apr_allocator_owner_set(alloc, p);
    return p;
}

/* Clears the pool (its cleanups run now) and keeps it, or destroys it. */
static void join_pool_give(apr_pool_t *p)
{
    apr_pool_clear(p);
    pthread_mutex_lock(&join_pools.lock);
    if (join_pools.n < JOIN_POOLS_KEPT) {
        join_pools.kept[join_pools.n++] = p;
        p = NULL;
    }
    pthread_mutex_unlock(&join_pools.lock);
    if (p)
        apr_pool_destroy(p);
}

/*
 * What a join's subrequest needs of the upgrade request. The request itself
 * is logged and freed once the socket is on the loop, so this copy is all
 * that is kept: one malloc'd block of the exact size (strings, then the
 * request headers and environment as "name\0value\0" pairs, each list
 * ending with an empty name), so an idle socket adds no page to its
 * connection's pool.
 */
struct rtb_ws_origin_t {
    server_rec *server;
    apr_sockaddr_t *useragent_addr;
    int proto_num;
    apr_time_t request_time;
    char data[]; /* the_request, protocol, hostname, user, auth_type,
                    ticket_user, useragent_ip ("" for none), headers, env */
};
enum {
    WS_O_REQUEST,
    WS_O_PROTOCOL,
    WS_O_HOSTNAME,
    WS_O_USER,
    WS_O_AUTH,
    WS_O_TICKET,
    WS_O_IP,
    WS_O_STRINGS
};

/* Worker thread: Apache decides (subrequest), then the history is read. */
static void join_work(void *data)
{
    rtb_ws_join_t *j = data;
    request_rec *r = j->r;
    rtb_db_t db;
    int opened = 0, rc = rtb_board_allowed(r, j->board, "GET", NULL);
    if (rc != OK) {
        j->status = HTTP_FORBIDDEN;
        return;
    }
    j->start = rtb_bus_ring_position();
    j->status =
        rtb_replay_start(&j->rp, &db, &opened, r, j->pool, j->board, j->since, 0, &j->start);
    if (opened)
        rtb_db_close(&db);
}

/* Loop thread (or handler): the join is decided; answer and subscribe. */
void rtb_ws_join_finish(rtb_conn_t *cn, rtb_ws_join_t *j)
{
    rtb_ws_state_t *st = cn->tdata;
    rtb_sub_t *sub;
    int i;
    if (cn->closing)
        return;
    if (j->status == HTTP_NOT_FOUND) {
        rtb_ws_fail(cn, 4004, "no such board");
        return;
    }
    if (j->status == HTTP_FORBIDDEN || j->status == HTTP_UNAUTHORIZED) {
        rtb_ws_fail(cn, 4003, "board forbidden");
        return;
    }
    if (j->status == HTTP_SERVICE_UNAVAILABLE) {
        rtb_ws_fail(cn, 1013, "database unavailable; try again");
        return;
    }
    if (j->status != OK) {
        rtb_ws_fail(cn, 1011, "internal error");
        return;
    }
    if (rtb_ws_find_sub(cn, j->board)) {
        rtb_ws_error(cn, "already_joined", "already joined to this board");
        return;
    }
    if (st->njoined >= RTB_WS_MAX_JOINS) {
        rtb_ws_error(cn, "too_many_boards", "leave a board first");
        return;
    }
    if (rtb_presence_join(cn, j->board) != RTB_PRESENCE_OK) {
        /* never left out silently: the client is told, the socket stays */
        rtb_ws_json(cn, json_pack("{s:s,s:s,s:s,s:s}", "type", "error", "code", "presence_full",
                                  "boardId", j->board, "message",
                                  "the server's presence table is full; try again later"));
        return;
    }
    rtb_ws_json(cn, json_pack("{s:s,s:s,s:I}", "type", "joined", "boardId", j->board, "lastEventId",
                              (json_int_t)(j->rp.reset ? j->rp.last : j->rp.since)));
    if (j->rp.reset)
        rtb_ws_text(cn, rtb_replay_reset_json(j->pool, cn->c->base_server, &j->rp));
    for (i = 0; i < j->rp.events->nelts; i++) {
        rtb_ws_text(cn, APR_ARRAY_IDX(j->rp.events, i, rtb_replay_event_t).json);
        rtb_conn_count_delivered(1);
    }
    sub = rtb_engine_subscribe(cn, j->board, rtb_replay_position(&j->rp));
    st->njoined++;
    /* diffs published before the snapshot is read are in it (a client skips
     * those whose version it has); only what comes after it is passed on */
    sub->ephemeral_from = rtb_bus_ring_position();
    rtb_presence_send(cn, j->board, 0);
    /* what went by while the store was read */
    rtb_engine_catch_up(cn, j->start);
}

static void join_done(void *data)
{
    rtb_ws_join_t *j = data;
    rtb_ws_join_finish(j->cn, j);
    join_pool_give(j->pool);
}

static apr_size_t join_table_size(const apr_table_t *t)
{
    const apr_array_header_t *a = apr_table_elts(t);
    const apr_table_entry_t *e = (const apr_table_entry_t *)a->elts;
    apr_size_t n = 1;
    int i;
    for (i = 0; i < a->nelts; i++)
        if (e[i].key && *e[i].key)
            n += strlen(e[i].key) + 1 + strlen(e[i].val ? e[i].val : "") + 1;
    return n;
}

static char *join_put(char *d, const char *v)
{
    apr_size_t n = v ? strlen(v) : 0;
    memcpy(d, v ? v : "", n + 1);
    return d + n + 1;
}

static char *join_table_put(char *d, const apr_table_t *t)
{
    const apr_array_header_t *a = apr_table_elts(t);
    const apr_table_entry_t *e = (const apr_table_entry_t *)a->elts;
    int i;
    for (i = 0; i < a->nelts; i++) {
        if (e[i].key && *e[i].key) {
            d = join_put(d, e[i].key);
            d = join_put(d, e[i].val);
        }
    }
    *d++ = '\0';
    return d;
}

/* Reads a list written by ws_table_put into a table; returns what follows. */
static const char *join_table_get(const char *d, apr_table_t *t)
{
    while (*d) {
        const char *k = d, *v = d + strlen(d) + 1;
        apr_table_addn(t, k, v);
        d = v + strlen(v) + 1;
    }
    return d + 1;
}

/* The upgrade request's copy (handler thread, before the hand-off). */
rtb_ws_origin_t *rtb_ws_origin_save(request_rec *r)
{
    conn_rec *c = r->connection;
    const char *str[WS_O_STRINGS];
    apr_size_t n = sizeof(rtb_ws_origin_t);
    rtb_ws_origin_t *o;
    char *d;
    int i;
    str[WS_O_REQUEST] = r->the_request;
    str[WS_O_PROTOCOL] = r->protocol;
    str[WS_O_HOSTNAME] = r->hostname;
    str[WS_O_USER] = r->user;
    str[WS_O_AUTH] = r->ap_auth_type;
    str[WS_O_TICKET] = apr_table_get(r->notes, "rtb-ticket-user");
    str[WS_O_IP] = r->useragent_ip;
    for (i = 0; i < WS_O_STRINGS; i++)
        n += (str[i] ? strlen(str[i]) : 0) + 1;
    n += join_table_size(r->headers_in) + join_table_size(r->subprocess_env);
    o = malloc(n);
    if (!o)
        return NULL;
    o->server = r->server;
    o->proto_num = r->proto_num;
    o->request_time = r->request_time;
    o->useragent_addr = c->client_addr;
    /* an address set by mod_remoteip lives in the request's pool */
    if (r->useragent_addr && r->useragent_addr != c->client_addr &&
        apr_sockaddr_info_copy(&o->useragent_addr, r->useragent_addr, c->pool) != APR_SUCCESS)
        o->useragent_addr = c->client_addr;
    d = o->data;
    for (i = 0; i < WS_O_STRINGS; i++)
        d = join_put(d, str[i]);
    d = join_table_put(d, r->headers_in);
    join_table_put(d, r->subprocess_env);
    return o;
}

/*
 * Whether joins need the upgrade request itself. mod_auth_digest keeps
 * per-request state (made when a request is read) that its checks in a
 * subrequest take from the top request, so a request built from the copy
 * would not do; with it loaded, sockets keep their upgrade request.
 */
int rtb_ws_keep_request(void)
{
    return ap_find_linked_module("mod_auth_digest.c") != NULL;
}

/*
 * A request like the upgrade, on its own pool, as the parent of a join's
 * subrequest (built on the loop thread, used on a worker): what Apache's own
 * request creation sets, then what the upgrade request had.
 */
static request_rec *join_origin_request(apr_pool_t *p, rtb_conn_t *cn)
{
    rtb_ws_state_t *st = cn->tdata;
    rtb_ws_origin_t *o = st->origin;
    conn_rec *c = cn->c;
    request_rec *r = apr_pcalloc(p, sizeof(*r));
    const char *str[WS_O_STRINGS];
    const char *d = o->data;
    int i;
    for (i = 0; i < WS_O_STRINGS; i++) {
        apr_size_t n = strlen(d);
        str[i] = n ? apr_pstrmemdup(p, d, n) : NULL;
        d += n + 1;
    }
    r->pool = p;
    r->connection = c;
    r->server = o->server;
    r->log = &o->server->log;
    r->allowed_methods = ap_make_method_list(p, 2);
    r->headers_in = apr_table_make(p, 12);
    r->subprocess_env = apr_table_make(p, 4);
    d = join_table_get(d, r->headers_in);
    join_table_get(d, r->subprocess_env);
    r->trailers_in = apr_table_make(p, 1);
    r->headers_out = apr_table_make(p, 1);
    r->err_headers_out = apr_table_make(p, 1);
    r->trailers_out = apr_table_make(p, 1);
    r->notes = apr_table_make(p, 2);
    if (str[WS_O_TICKET])
        apr_table_setn(r->notes, "rtb-ticket-user", str[WS_O_TICKET]);
    r->request_config = ap_create_request_config(p);
    r->proto_output_filters = r->output_filters = c->output_filters;
    r->proto_input_filters = r->input_filters = c->input_filters;
    r->per_dir_config = o->server->lookup_defaults;
    ap_run_create_request(r);
    r->read_body = REQUEST_NO_BODY;
    r->status = HTTP_OK;
    r->used_path_info = AP_REQ_DEFAULT_PATH_INFO;
    r->the_request = (char *)str[WS_O_REQUEST];
    r->protocol = (char *)str[WS_O_PROTOCOL];
    r->proto_num = o->proto_num;
    r->hostname = str[WS_O_HOSTNAME];
    r->request_time = o->request_time;
    r->method = "GET";
    r->method_number = M_GET;
    r->user = (char *)str[WS_O_USER];
    r->ap_auth_type = (char *)str[WS_O_AUTH];
    r->useragent_ip = (char *)(str[WS_O_IP] ? str[WS_O_IP] : c->client_ip);
    r->useragent_addr = o->useragent_addr;
    return r;
}

void rtb_ws_join(rtb_conn_t *cn, const char *board, long long since)
{
    apr_pool_t *p = join_pool_take();
    rtb_ws_join_t *j;
    if (!p) {
        rtb_ws_fail(cn, 1011, "internal error");
        return;
    }
    j = apr_pcalloc(p, sizeof(*j));
    j->cn = cn;
    j->pool = p;
    j->since = since;
    apr_cpystrn(j->board, board, sizeof(j->board));
    if (((rtb_ws_state_t *)cn->tdata)->origin) {
        j->r = join_origin_request(p, cn);
    } else if (cn->r) {
        /* the kept upgrade request (see ws_keep_request): a shallow copy on
         * the join's pool, sharing its per-request state */
        j->r = apr_pmemdup(p, cn->r, sizeof(request_rec));
        j->r->pool = p;
        j->r->main = NULL;
    } else {
        join_pool_give(p);
        rtb_ws_fail(cn, 1011, "internal error");
        return;
    }
    if (rtb_engine_defer(cn, join_work, join_done, j) < 0) {
        join_pool_give(p);
        rtb_ws_fail(cn, 1011, "internal error");
    }
}
