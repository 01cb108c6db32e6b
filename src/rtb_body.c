/*
 * rtb_body: reading and validating REST request bodies. See rtb_body.h.
 */
#include "rtb_body.h"
#include "rtb_http.h"

#include "http_protocol.h"
#include "apr_strings.h"
#include "apr_lib.h"

static int body_is_json_type(const char *ct)
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

/* Answers a refused body; returns DONE (answered). */
static int body_refuse(request_rec *r, int status, const char *code, const char *message,
                       const char *field)
{
    rtb_send_error(r, status, code, message, field);
    return DONE;
}

/*
 * Reads the whole body into the pool, refusing more than the configured limit
 * (413) and non-JSON types (415). Returns OK, or DONE when refused (answered).
 */
static int body_read_raw(rtb_rest_ctx_t *x)
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
            return body_refuse(r, HTTP_BAD_REQUEST, "invalid_content_length",
                               "Content-Length is not a number", NULL);
        }
        if (n > limit) {
            r->connection->keepalive = AP_CONN_CLOSE;
            return body_refuse(
                r, HTTP_REQUEST_ENTITY_TOO_LARGE, "body_too_large",
                apr_psprintf(r->pool, "the body is over %" APR_OFF_T_FMT " bytes", limit), NULL);
        }
    }
    if (!body_is_json_type(apr_table_get(r->headers_in, "Content-Type"))) {
        r->connection->keepalive = AP_CONN_CLOSE;
        return body_refuse(r, HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                           "the body must be application/json", NULL);
    }
    if ((rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK)) != OK)
        return body_refuse(r, rc, "invalid_body", "the body could not be read", NULL);
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
                return body_refuse(r, HTTP_BAD_REQUEST, "body_read_failed",
                                   "the body could not be read", NULL);
            if (got == 0)
                break;
            used += (apr_size_t)got;
            if ((apr_off_t)used > limit) {
                r->connection->keepalive = AP_CONN_CLOSE;
                return body_refuse(r, HTTP_REQUEST_ENTITY_TOO_LARGE, "body_too_large",
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
int rtb_body_read(rtb_rest_ctx_t *x, const rtb_field_spec_t *spec)
{
    rtb_json_err_t err;
    json_t *j;
    if (body_read_raw(x) != OK)
        return DONE;
    if (rtb_json_parse_object(x->raw_body, x->raw_len, &j, &err) < 0 ||
        (spec && rtb_json_validate(j, spec, &err) < 0)) {
        if (j)
            json_decref(j);
        rtb_send_error(x->r, err.status, err.code, err.message, err.field[0] ? err.field : NULL);
        return DONE;
    }
    x->body = rtb_json_keep(x->r, j);
    return OK;
}

const char *rtb_body_str(rtb_rest_ctx_t *x, const char *key)
{
    json_t *v = json_object_get(x->body, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

int rtb_body_has(rtb_rest_ctx_t *x, const char *key)
{
    return json_object_get(x->body, key) != NULL;
}

long long rtb_body_int(rtb_rest_ctx_t *x, const char *key, long long dflt)
{
    json_t *v = json_object_get(x->body, key);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}
