/*
 * mod_rtboard: a live collaborative task board for Apache httpd 2.4.
 *
 * This file holds only the module's glue: hook registration and handler
 * dispatch. It includes every part and is included by none:
 *
 *   configuration   rtb_config        store (mod_dbd)  rtb_store
 *   HTTP helpers    rtb_http          history          rtb_replay
 *   REST            rtb_rest, rtb_body, rtb_resource, rtb_write
 *   bus (shm)       rtb_bus           engine           rtb_engine, rtb_conn,
 *   status          rtb_status, rtb_metrics            rtb_blocking
 *   health          rtb_health
 *   SSE             rtb_eventsource   long polling     rtb_longpoll
 *   WebSocket       rtb_ws_upgrade, rtb_ws, rtb_ws_join, rtb_ws_conn,
 *                   rtb_presence, rtb_ticket
 *   limits          rtb_limits        bus between nodes rtb_listen,
 *                                                      rtb_peers
 *   pure            rtb_router, rtb_json, rtb_ids, rtb_sse, rtb_ring,
 *                   rtb_ptable, rtb_ws_codec
 */
#include "rtb_bus.h"
#include "rtb_config.h"
#include "rtb_conn.h"
#include "rtb_engine.h"
#include "rtb_eventsource.h"
#include "rtb_http.h"
#include "rtb_listen.h"
#include "rtb_longpoll.h"
#include "rtb_metrics.h"
#include "rtb_health.h"
#include "rtb_rest.h"
#include "rtb_router.h"
#include "rtb_status.h"
#include "rtb_store.h"
#include "rtb_ticket.h"
#include "rtb_write.h"
#include "rtb_ws_upgrade.h"

#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "ap_mpm.h"
#include "apr_strings.h"

static int rtboard_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)plog;
    (void)ptemp;
    rtb_bus_register(pconf);
    return OK;
}

/* Fills configuration defaults and finds mod_dbd, on every pass. */
static int rtboard_prepare(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    (void)pconf;
    (void)plog;
    (void)ptemp;
    rtb_config_fill(s);
    return rtb_store_post_config(s);
}

static int rtboard_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                               server_rec *s)
{
    int async = 0;
    (void)plog;
    (void)ptemp;
    /* the first, configuration-test pass creates nothing lasting */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return OK;
    ap_mpm_query(AP_MPMQ_IS_ASYNC, &async);
    if (!async)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "RTB0021: the MPM is not asynchronous (use event): every stream will "
                     "hold a worker thread");
    return rtb_bus_post_config(pconf, s);
}

static void rtboard_child_init(apr_pool_t *pchild, server_rec *s)
{
    rtb_bus_child_init(pchild, s);
    rtb_write_child_init(pchild);
    rtb_http_child_init(pchild);
    rtb_engine_child_init(pchild, s);
    rtb_listen_child_init(pchild, s);
}

/* Routes an API request; every refusal is a JSON error. */
static int rtboard_dispatch(request_rec *r, const char *path)
{
    rtb_route_t rt;
    char allow[64];
    switch (rtb_route(path, rtb_method_bit(r->method), &rt)) {
    case RTB_ROUTE_NOT_FOUND:
        return rtb_send_error(r, HTTP_NOT_FOUND, "not_found", "no such resource", NULL);
    case RTB_ROUTE_BAD_ID:
        return rtb_send_error(r, HTTP_NOT_FOUND, "invalid_id", "the path holds a malformed id",
                              NULL);
    case RTB_ROUTE_BAD_METHOD:
        apr_table_set(r->headers_out, "Allow", rtb_allow_header(rt.allowed, allow, sizeof(allow)));
        return rtb_send_error(r, HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                              apr_psprintf(r->pool, "%s is not allowed here", r->method), NULL);
    default:
        break;
    }
    if (r->method_number != M_GET && r->method_number != M_OPTIONS && rtb_cross_site(r))
        return rtb_send_error(r, HTTP_FORBIDDEN, "cross_site_request",
                              "changes are not accepted from another site's pages", NULL);
    switch (rt.id) {
    case RTB_R_EVENTS:
    case RTB_R_MULTI_EVENTS:
        return rtb_eventsource_handle(r, &rt);
    case RTB_R_POLL:
        return rtb_longpoll_handle(r, &rt);
    case RTB_R_BOARD_WS:
    case RTB_R_WS:
        return rtb_ws_upgrade(r, &rt);
    case RTB_R_WS_TICKET:
        return rtb_ticket_handle(r, &rt);
    default:
        return rtb_rest_dispatch(r, &rt);
    }
}

static int rtboard_handler(request_rec *r)
{
    rtb_cfg_t *cfg;
    size_t bl;

    if (!r->handler)
        return DECLINED;
    if (!strcmp(r->handler, "rtboard-status"))
        return rtb_status_handler(r);
    if (!strcmp(r->handler, "rtboard-metrics"))
        return rtb_metrics_handler(r);
    if (!strcmp(r->handler, "rtboard-health"))
        return rtb_health_handler(r);
    if (strcmp(r->handler, "rtboard") != 0)
        return DECLINED;
    cfg = rtb_cfg(r->server);
    bl = strlen(cfg->base);
    if (strncmp(r->uri, cfg->base, bl) != 0)
        return DECLINED;
    return rtboard_dispatch(r, apr_pstrcat(r->pool, "/", r->uri + bl, NULL));
}

static void rtboard_register_hooks(apr_pool_t *p)
{
    ap_hook_pre_config(rtboard_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(rtboard_prepare, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_post_config(rtboard_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(rtboard_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(rtboard_handler, NULL, NULL, APR_HOOK_MIDDLE);
    rtb_conn_register_hooks(p);
    rtb_engine_register_hooks(p);
    rtb_status_register_hooks(p);
    rtb_ticket_register_hooks(p);
}

AP_DECLARE_MODULE(rtboard) = {STANDARD20_MODULE_STUFF,
                              NULL,              /* per-directory config */
                              NULL,              /* merge per-directory */
                              rtb_config_create, /* per-server config */
                              rtb_config_merge,  /* merge per-server */
                              rtb_config_cmds,
                              rtboard_register_hooks,
#if defined(AP_MODULE_FLAG_ALWAYS_MERGE)
                              AP_MODULE_FLAG_NONE
#endif
};
