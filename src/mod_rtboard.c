/*
 * mod_rtboard: a live collaborative task board for Apache httpd 2.4.
 *
 * This file holds only the module's glue: configuration directives, hook
 * registration and handler dispatch. REST lives in rtb_rest.c, the store in
 * rtb_store.c, the cross-process bus in rtb_bus.c, long-lived connections in
 * rtb_engine.c and the transports in rtb_stream.c and rtb_ws.c.
 */
#include "rtb_config.h"
#include "rtb_bus.h"
#include "rtb_engine.h"
#include "rtb_rest.h"
#include "rtb_router.h"
#include "rtb_ws.h"

#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "mpm_common.h"
#include "ap_mpm.h"
#include "apr_strings.h"


ap_dbd_t *(*rtb_dbd_acquire)(request_rec *);
ap_dbd_t *(*rtb_dbd_open)(apr_pool_t *, server_rec *);
void (*rtb_dbd_close)(server_rec *, ap_dbd_t *);

#define CFG_UNSET -1

rtb_cfg_t *rtb_cfg(server_rec *s)
{
    return ap_get_module_config(s->module_config, &rtboard_module);
}

static void *rtboard_create_srv(apr_pool_t *p, server_rec *s)
{
    rtb_cfg_t *c = apr_pcalloc(p, sizeof(*c));
    (void)s;
    c->base = NULL;
    c->max_body = CFG_UNSET;
    c->history = CFG_UNSET;
    c->poll_max_timeout = CFG_UNSET;
    c->heartbeat = CFG_UNSET;
    c->retry_ms = CFG_UNSET;
    c->ring_bytes = 0;
    c->ring_slots = CFG_UNSET;
    c->ws_ping = CFG_UNSET;
    c->out_cap = 0;
    c->ws_max_message = 0;
    c->idle_timeout = CFG_UNSET;
    c->origins = apr_array_make(p, 2, sizeof(const char *));
    c->typing_ttl = CFG_UNSET;
    c->cursor_rate = CFG_UNSET;
    c->max_streams = CFG_UNSET;
    return c;
}

/* Fills what neither the virtual host nor the main server set. */
static void rtboard_defaults(rtb_cfg_t *c)
{
    if (!c->base)
        c->base = "/";
    if (c->max_body == CFG_UNSET)
        c->max_body = 1024 * 1024;
    if (c->history == CFG_UNSET)
        c->history = 10000;
    if (c->poll_max_timeout == CFG_UNSET)
        c->poll_max_timeout = 120;
    if (c->heartbeat == CFG_UNSET)
        c->heartbeat = 15;
    if (c->retry_ms == CFG_UNSET)
        c->retry_ms = 2000;
    if (!c->ring_bytes)
        c->ring_bytes = 16 * 1024 * 1024;
    if (c->ring_slots == CFG_UNSET)
        c->ring_slots = 16384;
    if (c->ws_ping == CFG_UNSET)
        c->ws_ping = 30;
    if (!c->out_cap)
        c->out_cap = 1024 * 1024;
    if (!c->ws_max_message)
        c->ws_max_message = 64 * 1024;
    if (c->idle_timeout == CFG_UNSET)
        c->idle_timeout = 0;
    if (c->typing_ttl == CFG_UNSET)
        c->typing_ttl = 5;
    if (c->cursor_rate == CFG_UNSET)
        c->cursor_rate = 20;
    if (c->max_streams == CFG_UNSET)
        c->max_streams = 20000;
}

#define MERGE(f, unset) c->f = (add->f != (unset)) ? add->f : base->f
static void *rtboard_merge_srv(apr_pool_t *p, void *basev, void *addv)
{
    rtb_cfg_t *base = basev, *add = addv;
    rtb_cfg_t *c = apr_pcalloc(p, sizeof(*c));
    c->base = add->base ? add->base : base->base;
    MERGE(max_body, CFG_UNSET);
    MERGE(history, CFG_UNSET);
    MERGE(poll_max_timeout, CFG_UNSET);
    MERGE(heartbeat, CFG_UNSET);
    MERGE(retry_ms, CFG_UNSET);
    MERGE(ring_bytes, 0);
    MERGE(ring_slots, CFG_UNSET);
    MERGE(ws_ping, CFG_UNSET);
    MERGE(out_cap, 0);
    MERGE(ws_max_message, 0);
    MERGE(idle_timeout, CFG_UNSET);
    MERGE(typing_ttl, CFG_UNSET);
    MERGE(cursor_rate, CFG_UNSET);
    MERGE(max_streams, CFG_UNSET);
    c->origins = apr_array_append(p, base->origins, add->origins);
    c->name_var = add->name_var ? add->name_var : base->name_var;
    return c;
}
#undef MERGE

/* ---- directives ---- */

static const char *cmd_int(cmd_parms *cmd, void *dummy, const char *arg)
{
    rtb_cfg_t *c = rtb_cfg(cmd->server);
    char *end;
    apr_int64_t v = apr_strtoi64(arg, &end, 10);
    apr_size_t off = (apr_size_t)(apr_uintptr_t)cmd->info;
    (void)dummy;
    if (*end || v < 0 || v > 1000000000)
        return apr_pstrcat(cmd->pool, cmd->cmd->name, " takes a non-negative integer", NULL);
    *(int *)((char *)c + off) = (int)v;
    return NULL;
}

/* Sizes accept a K, M or G suffix. */
static const char *cmd_size(cmd_parms *cmd, void *dummy, const char *arg)
{
    rtb_cfg_t *c = rtb_cfg(cmd->server);
    char *end;
    apr_int64_t v = apr_strtoi64(arg, &end, 10);
    apr_size_t off = (apr_size_t)(apr_uintptr_t)cmd->info;
    (void)dummy;
    if (*end == 'K' || *end == 'k')
        v *= 1024, end++;
    else if (*end == 'M' || *end == 'm')
        v *= 1024 * 1024, end++;
    else if (*end == 'G' || *end == 'g')
        v *= 1024 * 1024 * 1024, end++;
    if (*end || v <= 0)
        return apr_pstrcat(cmd->pool, cmd->cmd->name, " takes a size such as 64K or 16M", NULL);
    if (off == APR_OFFSETOF(rtb_cfg_t, max_body))
        c->max_body = (apr_off_t)v;
    else
        *(apr_size_t *)((char *)c + off) = (apr_size_t)v;
    return NULL;
}

static const char *cmd_base(cmd_parms *cmd, void *dummy, const char *arg)
{
    rtb_cfg_t *c = rtb_cfg(cmd->server);
    (void)dummy;
    if (arg[0] != '/')
        return "RTBoardBase must start with /";
    c->base = arg[strlen(arg) - 1] == '/' ? arg : apr_pstrcat(cmd->pool, arg, "/", NULL);
    return NULL;
}

static const char *cmd_origin(cmd_parms *cmd, void *dummy, const char *arg)
{
    rtb_cfg_t *c = rtb_cfg(cmd->server);
    (void)dummy;
    APR_ARRAY_PUSH(c->origins, const char *) = arg;
    return NULL;
}

static const char *cmd_name_var(cmd_parms *cmd, void *dummy, const char *arg)
{
    (void)dummy;
    rtb_cfg(cmd->server)->name_var = arg;
    return NULL;
}

#define INT_DIRECTIVE(name, field, help)                                                       \
    AP_INIT_TAKE1(name, cmd_int, (void *)APR_OFFSETOF(rtb_cfg_t, field), RSRC_CONF, help)
#define SIZE_DIRECTIVE(name, field, help)                                                      \
    AP_INIT_TAKE1(name, cmd_size, (void *)APR_OFFSETOF(rtb_cfg_t, field), RSRC_CONF, help)

static const command_rec rtboard_cmds[] = {
    AP_INIT_TAKE1("RTBoardBase", cmd_base, NULL, RSRC_CONF,
                  "URL path where SetHandler rtboard is mounted (default /)"),
    SIZE_DIRECTIVE("RTBoardMaxBody", max_body, "largest request body (default 1M)"),
    INT_DIRECTIVE("RTBoardHistory", history, "events kept per board, 0 = all (default 10000)"),
    INT_DIRECTIVE("RTBoardPollMaxTimeout", poll_max_timeout,
                  "longest long-poll wait in seconds (default 120)"),
    INT_DIRECTIVE("RTBoardHeartbeat", heartbeat, "SSE heartbeat seconds (default 15)"),
    INT_DIRECTIVE("RTBoardRetry", retry_ms, "SSE retry: milliseconds (default 2000)"),
    SIZE_DIRECTIVE("RTBoardRingSize", ring_bytes, "bytes of the shared event ring (default 16M)"),
    INT_DIRECTIVE("RTBoardRingSlots", ring_slots, "events the ring indexes (default 16384)"),
    INT_DIRECTIVE("RTBoardWSPing", ws_ping, "WebSocket ping interval seconds (default 30)"),
    SIZE_DIRECTIVE("RTBoardOutputCap", out_cap,
                   "bytes queued for one slow client before it is cut (default 1M)"),
    SIZE_DIRECTIVE("RTBoardWSMaxMessage", ws_max_message,
                   "largest WebSocket message from a client (default 64K)"),
    INT_DIRECTIVE("RTBoardTypingTTL", typing_ttl, "seconds a typing indicator lives (default 5)"),
    INT_DIRECTIVE("RTBoardCursorRate", cursor_rate,
                  "cursor messages per second per connection (default 20)"),
    INT_DIRECTIVE("RTBoardMaxStreams", max_streams,
                  "long-lived connections one child holds (default 20000)"),
    AP_INIT_ITERATE("RTBoardAllowOrigin", cmd_origin, NULL, RSRC_CONF,
                    "Origins allowed to open WebSockets besides the server's own"),
    AP_INIT_TAKE1("RTBoardUserNameVar", cmd_name_var, NULL, RSRC_CONF,
                  "request variable holding the user's display name"),
    {NULL}};

/* ---- hooks ---- */

static int rtboard_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)plog;
    (void)ptemp;
    rtb_bus_register(pconf);
    return OK;
}

/* Fills defaults and finds mod_dbd's functions. */
static int rtboard_find_dbd(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                      server_rec *s)
{
    server_rec *v;
    (void)pconf;
    (void)plog;
    (void)ptemp;
    for (v = s; v; v = v->next)
        rtboard_defaults(rtb_cfg(v));
    rtb_dbd_acquire = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire);
    rtb_dbd_open = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_open);
    rtb_dbd_close = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_close);
    if (!rtb_dbd_acquire) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                     "RTB0020: mod_dbd is not loaded; mod_rtboard needs it");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
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
    rtb_rest_child_init(pchild);
    rtb_engine_child_init(pchild, s);
}

static int rtboard_handler(request_rec *r)
{
    rtb_cfg_t *cfg;
    rtb_route_t rt;
    const char *path;
    size_t bl;
    int rc;
    char allow[64];

    if (!r->handler)
        return DECLINED;
    if (!strcmp(r->handler, "rtboard-status"))
        return rtb_engine_status(r);
    if (strcmp(r->handler, "rtboard") != 0)
        return DECLINED;
    cfg = rtb_cfg(r->server);
    bl = strlen(cfg->base);
    path = r->uri;
    if (strncmp(path, cfg->base, bl) != 0)
        return DECLINED;
    path = apr_pstrcat(r->pool, "/", path + bl, NULL);

    rc = rtb_route(path, rtb_method_bit(r->method), &rt);
    switch (rc) {
    case RTB_ROUTE_NOT_FOUND:
        return rtb_send_error(r, HTTP_NOT_FOUND, "not_found", "no such resource", NULL);
    case RTB_ROUTE_BAD_ID:
        return rtb_send_error(r, HTTP_NOT_FOUND, "invalid_id",
                              "the path holds a malformed id", NULL);
    case RTB_ROUTE_BAD_METHOD:
        apr_table_set(r->headers_out, "Allow", rtb_allow_header(rt.allowed, allow, sizeof(allow)));
        return rtb_send_error(r, HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                              apr_psprintf(r->pool, "%s is not allowed here", r->method), NULL);
    default:
        break;
    }
    switch (rt.id) {
    case RTB_R_STATUS:
        return rtb_engine_status(r);
    case RTB_R_EVENTS:
    case RTB_R_MULTI_EVENTS:
    case RTB_R_POLL:
    case RTB_R_BOARD_WS:
    case RTB_R_WS:
    case RTB_R_WS_TICKET:
        return rtb_engine_dispatch(r, &rt);
    default:
        return rtb_rest_dispatch(r, &rt);
    }
}

static void rtboard_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_pre_config(rtboard_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(rtboard_find_dbd, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_post_config(rtboard_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(rtboard_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(rtboard_handler, NULL, NULL, APR_HOOK_MIDDLE);
    rtb_engine_register_hooks(p);
    rtb_ws_register_hooks(p);
}

AP_DECLARE_MODULE(rtboard) = {
    STANDARD20_MODULE_STUFF,
    NULL,               /* per-directory config */
    NULL,               /* merge per-directory */
    rtboard_create_srv, /* per-server config */
    rtboard_merge_srv,  /* merge per-server */
    rtboard_cmds,
    rtboard_register_hooks,
#if defined(AP_MODULE_FLAG_ALWAYS_MERGE)
    AP_MODULE_FLAG_NONE
#endif
};
