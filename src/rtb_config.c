/*
 * rtb_config: the module's server configuration: its record, defaults,
 * merging and the RTBoard* directives. Every other file reads it through
 * rtb_cfg().
 */
#include "rtb_config.h"

#include "apr_strings.h"

#define CFG_UNSET -1

rtb_cfg_t *rtb_cfg(server_rec *s)
{
    return ap_get_module_config(s->module_config, &rtboard_module);
}

void *rtb_config_create(apr_pool_t *p, server_rec *s)
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
    c->user_streams = CFG_UNSET;
    c->board_rate = CFG_UNSET;
    c->presence_slots = CFG_UNSET;
    c->presence_page = CFG_UNSET;
    c->presence_window = CFG_UNSET;
    return c;
}

/* Fills what neither the virtual host nor the main server set. */
static void config_defaults(rtb_cfg_t *c)
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
    if (c->user_streams == CFG_UNSET)
        c->user_streams = 100;
    if (c->board_rate == CFG_UNSET)
        c->board_rate = 60;
    if (c->presence_slots == CFG_UNSET)
        c->presence_slots = 0; /* sized by rtb_bus from max_streams and the children */
    if (c->presence_page == CFG_UNSET || c->presence_page < 1)
        c->presence_page = 100;
    if (c->presence_window == CFG_UNSET)
        c->presence_window = 200;
}

#define MERGE(f, unset) c->f = (add->f != (unset)) ? add->f : base->f
void *rtb_config_merge(apr_pool_t *p, void *basev, void *addv)
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
    MERGE(user_streams, CFG_UNSET);
    MERGE(board_rate, CFG_UNSET);
    MERGE(presence_slots, CFG_UNSET);
    MERGE(presence_page, CFG_UNSET);
    MERGE(presence_window, CFG_UNSET);
    c->origins = apr_array_append(p, base->origins, add->origins);
    c->name_var = add->name_var ? add->name_var : base->name_var;
    c->bus = add->bus ? add->bus : base->bus;
    return c;
}

#undef MERGE

/* ---- directives ---- */

static const char *config_int(cmd_parms *cmd, void *dummy, const char *arg)
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
static const char *config_size(cmd_parms *cmd, void *dummy, const char *arg)
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

static const char *config_base(cmd_parms *cmd, void *dummy, const char *arg)
{
    rtb_cfg_t *c = rtb_cfg(cmd->server);
    (void)dummy;
    if (arg[0] != '/')
        return "RTBoardBase must start with /";
    c->base = arg[strlen(arg) - 1] == '/' ? arg : apr_pstrcat(cmd->pool, arg, "/", NULL);
    return NULL;
}

static const char *config_origin(cmd_parms *cmd, void *dummy, const char *arg)
{
    rtb_cfg_t *c = rtb_cfg(cmd->server);
    (void)dummy;
    APR_ARRAY_PUSH(c->origins, const char *) = arg;
    return NULL;
}

/* RTBoardBus: the node hears every node's events on this connection. */
static const char *config_bus(cmd_parms *cmd, void *dummy, const char *arg)
{
    (void)dummy;
    rtb_cfg(cmd->server)->bus = strcmp(arg, "none") ? arg : NULL;
    return NULL;
}

static const char *config_name_var(cmd_parms *cmd, void *dummy, const char *arg)
{
    (void)dummy;
    rtb_cfg(cmd->server)->name_var = arg;
    return NULL;
}

#define INT_DIRECTIVE(name, field, help)                                                           \
    AP_INIT_TAKE1(name, config_int, (void *)APR_OFFSETOF(rtb_cfg_t, field), RSRC_CONF, help)
#define SIZE_DIRECTIVE(name, field, help)                                                          \
    AP_INIT_TAKE1(name, config_size, (void *)APR_OFFSETOF(rtb_cfg_t, field), RSRC_CONF, help)

const command_rec rtb_config_cmds[] = {
    AP_INIT_TAKE1("RTBoardBase", config_base, NULL, RSRC_CONF,
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
    INT_DIRECTIVE("RTBoardMaxStreamsPerUser", user_streams,
                  "streams and sockets one user may hold on the server, 0 = any (default 100)"),
    INT_DIRECTIVE("RTBoardBoardsPerMinute", board_rate,
                  "boards one user may create per minute, 0 = any (default 60)"),
    INT_DIRECTIVE("RTBoardMaxStreams", max_streams,
                  "long-lived connections one child holds (default 20000)"),
    INT_DIRECTIVE("RTBoardPresenceSlots", presence_slots,
                  "presence leases (one per socket and board) the server holds "
                  "(default RTBoardMaxStreams x the most children, twice that with "
                  "RTBoardBus)"),
    INT_DIRECTIVE("RTBoardPresencePage", presence_page,
                  "users in a presence page; bigger boards send a count and the first page "
                  "(default 100)"),
    INT_DIRECTIVE("RTBoardPresenceWindow", presence_window,
                  "milliseconds over which joins and leaves of a board go out as one diff "
                  "(default 200; big boards: 0.1 ms per user, up to 5 windows)"),
    AP_INIT_ITERATE("RTBoardAllowOrigin", config_origin, NULL, RSRC_CONF,
                    "Origins allowed to open WebSockets besides the server's own"),
    AP_INIT_TAKE1("RTBoardUserNameVar", config_name_var, NULL, RSRC_CONF,
                  "request variable holding the user's display name"),
    AP_INIT_TAKE1("RTBoardBus", config_bus, NULL, RSRC_CONF,
                  "libpq conninfo of the LISTEN connection that feeds this node's ring from "
                  "every node's changes (DBDriver pgsql; default none: one node)"),
    {NULL}};

/* ---- hooks ---- */
void rtb_config_fill(server_rec *s)
{
    server_rec *v;
    for (v = s; v; v = v->next)
        config_defaults(rtb_cfg(v));
}
