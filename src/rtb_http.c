/*
 * rtb_http: answers, errors, query arguments and board checks shared by
 * every route and transport. See rtb_http.h.
 */
#include "rtb_http.h"
#include "rtb_config.h"
#include "rtb_json.h"
#include "rtb_sse.h"

#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_strings.h"
#include "apr_hash.h"
#include "apr_thread_mutex.h"

APLOG_USE_MODULE(rtboard);

const char *rtb_now_iso(apr_pool_t *p)
{
    apr_time_exp_t t;
    apr_time_t now = apr_time_now();
    apr_time_exp_gmt(&t, now);
    return apr_psprintf(p, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900, t.tm_mon + 1,
                        t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, t.tm_usec / 1000);
}

/* Why: every API answer names who Apache authenticated, for clients. */
static void http_common_headers(request_rec *r)
{
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (r->user)
        apr_table_set(r->headers_out, "X-RTBoard-User", r->user);
}

int rtb_send_body(request_rec *r, int status, const char *body, apr_size_t len)
{
    r->status = status;
    http_common_headers(r);
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
        return rtb_send_error(r, HTTP_INTERNAL_SERVER_ERROR, "internal_error",
                              "the answer could not be encoded", NULL);
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
int rtb_send_db_unavailable(request_rec *r)
{
    apr_table_setn(r->headers_out, "Retry-After", "1");
    return rtb_send_error(r, HTTP_SERVICE_UNAVAILABLE, "database_unavailable",
                          "the database is not available, try again", NULL);
}

int rtb_send_db_error(request_rec *r)
{
    return rtb_send_error(r, HTTP_INTERNAL_SERVER_ERROR, "database_error",
                          "the database failed to answer", NULL);
}

static apr_status_t http_json_cleanup(void *j)
{
    json_decref((json_t *)j);
    return APR_SUCCESS;
}

json_t *rtb_json_keep(request_rec *r, json_t *j)
{
    if (j)
        apr_pool_cleanup_register(r->pool, j, http_json_cleanup, apr_pool_cleanup_null);
    return j;
}

const char *rtb_lltoa(apr_pool_t *p, long long v)
{
    return apr_psprintf(p, "%" APR_INT64_T_FMT, (apr_int64_t)v);
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

long long rtb_query_id(request_rec *r, const char *name)
{
    const char *v = rtb_query_arg(r, name);
    uint64_t id;
    if (!v)
        return -1;
    /* the same syntax as Last-Event-ID: one parser for every cursor */
    if (rtb_sse_parse_id(v, &id) != RTB_SSE_OK)
        return -2;
    return (long long)id;
}

int rtb_board_allowed(request_rec *r, const char *board, const char *method, const char *uri)
{
    rtb_cfg_t *cfg = rtb_cfg(r->server);
    request_rec *rr;
    int st;
    if (!uri)
        uri = apr_pstrcat(r->pool, cfg->base, "boards/", board, NULL);
    rr = ap_sub_req_method_uri(method ? method : "GET", uri, r, NULL);
    st = rr->status;
    ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, "RTB0030: %s %s for %s: %d", rr->method, uri,
                  r->user ? r->user : "-", st);
    ap_destroy_sub_req(rr);
    return st == HTTP_OK ? OK : st;
}

int rtb_send_board_refused(request_rec *r, int rc, const char *board)
{
    /* Apache answers 401 to a known user that fails Require: that is a 403 here */
    if (rc == HTTP_UNAUTHORIZED && !r->user)
        return rtb_send_error(r, HTTP_UNAUTHORIZED, "not_authenticated", "authentication required",
                              NULL);
    return rtb_send_error(r, HTTP_FORBIDDEN, "board_forbidden",
                          apr_psprintf(r->pool, "you may not use board %s", board), NULL);
}

int rtb_send_board_error(request_rec *r, int rc, const char *board)
{
    if (rc == HTTP_NOT_FOUND)
        return rtb_send_error(r, HTTP_NOT_FOUND, "board_not_found",
                              apr_psprintf(r->pool, "no such board: %s", board), NULL);
    if (rc == HTTP_UNAUTHORIZED || rc == HTTP_FORBIDDEN)
        return rtb_send_board_refused(r, rc, board);
    return rtb_send_db_error(r);
}

/* The Origin must be this server's own, or listed in RTBoardAllowOrigin. */
int rtb_origin_allowed(request_rec *r)
{
    rtb_cfg_t *cfg = rtb_cfg(r->server);
    const char *origin = apr_table_get(r->headers_in, "Origin");
    const char *host = apr_table_get(r->headers_in, "Host");
    int i;
    if (!origin)
        return 1; /* not a browser */
    for (i = 0; i < cfg->origins->nelts; i++) {
        const char *o = APR_ARRAY_IDX(cfg->origins, i, const char *);
        if (!strcmp(o, "*") || !strcasecmp(o, origin))
            return 1;
    }
    if (host) {
        const char *scheme = ap_http_scheme(r);
        if (!strcasecmp(origin, apr_pstrcat(r->pool, scheme, "://", host, NULL)))
            return 1;
    }
    return 0;
}

int rtb_cross_site(request_rec *r)
{
    const char *sfs = apr_table_get(r->headers_in, "Sec-Fetch-Site");
    if (apr_table_get(r->headers_in, "Origin"))
        return !rtb_origin_allowed(r);
    return sfs && (!strcasecmp(sfs, "cross-site") || !strcasecmp(sfs, "same-site"));
}

int rtb_send_too_many_streams(request_rec *r)
{
    rtb_cfg_t *cfg = rtb_cfg(r->server);
    apr_table_setn(r->headers_out, "Retry-After", "5");
    return rtb_send_error(r, HTTP_TOO_MANY_REQUESTS, "too_many_streams",
                          apr_psprintf(r->pool,
                                       "you hold %d streams and sockets already, the most one "
                                       "user may; close one",
                                       cfg->user_streams),
                          NULL);
}

#define HTTP_LIST_TTL apr_time_from_sec(5) /* how long a listing reuses Apache's answer */
#define HTTP_LIST_MAX 50000                /* answers kept per child before starting over */

/* This child's recent answers for listings: "user\0ip\0board" -> expiry | allowed. */
static struct {
    apr_thread_mutex_t *lock;
    apr_pool_t *pool;
    apr_hash_t *seen;
} http_list;

void rtb_http_child_init(apr_pool_t *pchild)
{
    apr_thread_mutex_create(&http_list.lock, APR_THREAD_MUTEX_DEFAULT, pchild);
    apr_pool_create(&http_list.pool, pchild);
    http_list.seen = apr_hash_make(http_list.pool);
}

typedef struct {
    apr_time_t until;
    int allowed;
} http_answer_t;

int rtb_board_listable(request_rec *r, const char *board)
{
    const char *user = r->user ? r->user : "";
    const char *ip = r->useragent_ip ? r->useragent_ip : "";
    apr_size_t ul = strlen(user), il = strlen(ip), bl = strlen(board);
    char *key = apr_palloc(r->pool, ul + il + bl + 3);
    apr_time_t now = apr_time_now();
    http_answer_t *a;
    int allowed;
    memcpy(key, user, ul + 1);
    memcpy(key + ul + 1, ip, il + 1);
    memcpy(key + ul + il + 2, board, bl + 1);
    if (http_list.lock) {
        apr_thread_mutex_lock(http_list.lock);
        a = apr_hash_get(http_list.seen, key, (apr_ssize_t)(ul + il + bl + 2));
        allowed = a && a->until > now ? a->allowed : -1;
        apr_thread_mutex_unlock(http_list.lock);
        if (allowed >= 0)
            return allowed ? OK : HTTP_FORBIDDEN;
    }
    allowed = rtb_board_allowed(r, board, "GET", NULL) == OK;
    if (http_list.lock) {
        apr_thread_mutex_lock(http_list.lock);
        if (apr_hash_count(http_list.seen) >= HTTP_LIST_MAX) {
            apr_pool_clear(http_list.pool);
            http_list.seen = apr_hash_make(http_list.pool);
        }
        a = apr_hash_get(http_list.seen, key, (apr_ssize_t)(ul + il + bl + 2));
        if (!a) {
            a = apr_palloc(http_list.pool, sizeof(*a));
            apr_hash_set(http_list.seen, apr_pmemdup(http_list.pool, key, ul + il + bl + 2),
                         (apr_ssize_t)(ul + il + bl + 2), a);
        }
        a->until = now + HTTP_LIST_TTL;
        a->allowed = allowed;
        apr_thread_mutex_unlock(http_list.lock);
    }
    return allowed ? OK : HTTP_FORBIDDEN;
}
