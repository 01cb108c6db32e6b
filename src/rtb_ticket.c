/*
 * rtb_ticket: single-use WebSocket tickets. See rtb_ticket.h.
 */
#include "rtb_ticket.h"
#include "rtb_bus.h"
#include "rtb_config.h"
#include "rtb_http.h"
#include "rtb_store.h"

#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_strings.h"

APLOG_USE_MODULE(rtboard);

#define TICKET_TTL 30 /* seconds a ticket may wait to be redeemed */

/* ------------------------------------------------------------------ */
/* tickets                                                              */

static const char *ticket_issue(request_rec *r, const char *board)
{
    rtb_ticket_t *t = rtb_bus_tickets();
    unsigned char raw[16];
    char *tok = apr_palloc(r->pool, 33);
    apr_time_t now = apr_time_now();
    int i, slot = -1;
    if (!t || apr_generate_random_bytes(raw, sizeof(raw)) != APR_SUCCESS)
        return NULL;
    for (i = 0; i < 16; i++)
        apr_snprintf(tok + 2 * i, 3, "%02x", raw[i]);
    if (rtb_bus_lock() != APR_SUCCESS)
        return NULL;
    for (i = 0; i < RTB_TICKETS_MAX; i++) {
        if (!t[i].token[0] || t[i].expires < now) {
            slot = i;
            break;
        }
    }
    if (slot >= 0) {
        apr_cpystrn(t[slot].token, tok, sizeof(t[slot].token));
        apr_cpystrn(t[slot].user, r->user ? r->user : "anonymous", sizeof(t[slot].user));
        apr_cpystrn(t[slot].board, board, sizeof(t[slot].board));
        t[slot].expires = now + apr_time_from_sec(TICKET_TTL);
    }
    rtb_bus_unlock();
    return slot >= 0 ? tok : NULL;
}

/* Redeems a ticket once: the user it was issued to, or NULL. */
static const char *ticket_redeem(request_rec *r, const char *tok, const char *board)
{
    rtb_ticket_t *t = rtb_bus_tickets();
    const char *user = NULL;
    apr_time_t now = apr_time_now();
    int i;
    if (!t || strlen(tok) != 32 || rtb_bus_lock() != APR_SUCCESS)
        return NULL;
    for (i = 0; i < RTB_TICKETS_MAX; i++) {
        if (t[i].token[0] && !strcmp(t[i].token, tok)) {
            if (t[i].expires >= now && (!board || !strcmp(board, t[i].board)))
                user = apr_pstrdup(r->pool, t[i].user);
            t[i].token[0] = '\0'; /* single use, even when refused */
            break;
        }
    }
    rtb_bus_unlock();
    return user;
}

/*
 * Authentication by ticket, before any other provider: for clients that
 * cannot send cookies or Basic credentials on a WebSocket upgrade.
 */
static int ticket_check_authn(request_rec *r)
{
    const char *tok, *q, *board = NULL;
    const char *user;
    if (r->main) {
        const char *u = apr_table_get(r->main->notes, "rtb-ticket-user");
        if (u) {
            r->user = apr_pstrdup(r->pool, u);
            r->ap_auth_type = "RTBoard-Ticket";
            return OK;
        }
        return DECLINED;
    }
    if (!r->args || !(q = strstr(r->args, "ticket=")) || (q != r->args && q[-1] != '&'))
        return DECLINED;
    tok = apr_pstrndup(r->pool, q + 7, strcspn(q + 7, "&"));
    {
        rtb_route_t rt;
        rtb_cfg_t *cfg = rtb_cfg(r->server);
        size_t bl = strlen(cfg->base);
        if (strncmp(r->uri, cfg->base, bl) != 0)
            return DECLINED;
        if (rtb_route(apr_pstrcat(r->pool, "/", r->uri + bl, NULL), RTB_M_GET, &rt) !=
                RTB_ROUTE_OK ||
            (rt.id != RTB_R_WS && rt.id != RTB_R_BOARD_WS))
            return DECLINED;
        if (rt.id == RTB_R_BOARD_WS)
            board = apr_pstrdup(r->pool, rt.board);
    }
    user = ticket_redeem(r, tok, board);
    if (!user) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "RTB0050: unknown, used or expired ticket");
        return DECLINED;
    }
    r->user = (char *)user;
    r->ap_auth_type = "RTBoard-Ticket";
    apr_table_setn(r->notes, "rtb-ticket-user", user);
    return OK;
}

int rtb_ticket_handle(request_rec *r, const rtb_route_t *rt)
{
    rtb_db_t db;
    const char *a1[1] = {rt->board};
    apr_array_header_t *rows;
    const char *tok;
    if (rtb_db_acquire(&db, r) < 0)
        return rtb_send_db_unavailable(r);
    rows = rtb_db_select(&db, RTB_SQL_BOARD_GET, 1, a1, NULL);
    if (!rows)
        return rtb_send_db_error(r);
    if (!rows->nelts)
        return rtb_send_error(r, HTTP_NOT_FOUND, "board_not_found", "no such board", NULL);
    if (r->user && strlen(r->user) > RTB_USER_MAX)
        return rtb_send_error(r, HTTP_UNPROCESSABLE_ENTITY, "user_id_too_long",
                              "WebSockets take user ids of up to 255 bytes", NULL);
    tok = ticket_issue(r, rt->board);
    if (!tok)
        return rtb_send_error(r, HTTP_SERVICE_UNAVAILABLE, "tickets_exhausted",
                              "no ticket could be issued, try again", NULL);
    return rtb_send_json(r, HTTP_CREATED,
                         json_pack("{s:{s:s,s:s,s:i}}", "data", "ticket", tok, "boardId", rt->board,
                                   "expiresIn", TICKET_TTL));
}

void rtb_ticket_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_check_authn(ticket_check_authn, NULL, NULL, APR_HOOK_FIRST, AP_AUTH_INTERNAL_PER_CONF);
}
