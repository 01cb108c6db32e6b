/*
 * rtb_health: the node's health for a front and for monitoring. See
 * rtb_health.h.
 */
#include "rtb_health.h"
#include "rtb_config.h"
#include "rtb_http.h"
#include "rtb_listen.h"
#include "rtb_store.h"

#include "http_log.h"
#include "http_protocol.h"
#include "apr_strings.h"

APLOG_USE_MODULE(rtboard);

/* The bus's state in one word: "local" (no RTBoardBus), "connected" or NULL (down). */
static const char *health_bus(request_rec *r, const char **why)
{
    json_t *j = rtb_listen_status_json(r->server);
    const char *state = NULL;
    if (!json_object_get(j, "connected"))
        state = "local";
    else if (json_is_true(json_object_get(j, "connected")))
        state = "connected";
    else {
        json_t *e = json_object_get(j, "error");
        *why = apr_pstrdup(r->pool, json_is_string(e) ? json_string_value(e) : "not connected");
    }
    json_decref(j);
    return state;
}

int rtb_health_handler(request_rec *r)
{
    rtb_db_t db;
    const char *bus, *why = NULL;

    if (r->method_number != M_GET) {
        apr_table_setn(r->headers_out, "Allow", "GET, HEAD");
        return rtb_send_error(r, HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                              "only GET is allowed here", NULL);
    }
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (rtb_db_acquire(&db, r) < 0 || rtb_db_ping(&db) < 0) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      "RTB0225: health: the database does not answer: %s",
                      db.errmsg ? db.errmsg : "no connection");
        apr_table_setn(r->headers_out, "Retry-After", "1");
        return rtb_send_error(r, HTTP_SERVICE_UNAVAILABLE, "database_unavailable",
                              "the database does not answer", NULL);
    }
    bus = health_bus(r, &why);
    if (!bus) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "RTB0226: health: the bus is down: %s", why);
        apr_table_setn(r->headers_out, "Retry-After", "1");
        return rtb_send_error(r, HTTP_SERVICE_UNAVAILABLE, "bus_disconnected",
                              apr_pstrcat(r->pool, "the bus between nodes is down: ", why, NULL),
                              NULL);
    }
    return rtb_send_json(
        r, HTTP_OK,
        json_pack("{s:{s:s,s:s,s:s}}", "data", "status", "ok", "database", "ok", "bus", bus));
}
