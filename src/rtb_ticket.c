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

#define TICKET_TTL 30     /* seconds a ticket may wait to be redeemed */
#define TICKET_PER_USER 8 /* unused tickets one user may hold */

/* ------------------------------------------------------------------ */
/* tickets                                                              */

/* Outcomes of ticket_issue. */
enum { TICKET_ISSUED = 0, TICKET_USER_FULL = -1, TICKET_TABLE_FULL = -2, TICKET_FAILED = -3 };

/*
 * Takes a slot for a new ticket of r->user on `board` into *tok, unless the
 * user already holds TICKET_PER_USER unexpired ones (one user can never take
 * the whole table). Returns a TICKET_* outcome.
 */
static int ticket_issue(request_rec *r, const char *board, const char **tok)
{
    rtb_ticket_t *t = rtb_bus_tickets();
    const char *user = r->user ? r->user : "anonymous";
    unsigned char raw[16];
    char *out = apr_palloc(r->pool, 33);
    apr_time_t now = apr_time_now();
    int i, slot = -1, mine = 0;
    if (!t || apr_generate_random_bytes(raw, sizeof(raw)) != APR_SUCCESS)
        return TICKET_FAILED;
    for (i = 0; i < 16; i++)
        apr_snprintf(out + 2 * i, 3, "%02x", raw[i]);
    if (rtb_bus_lock() != APR_SUCCESS)
        return TICKET_FAILED;
    for (i = 0; i < RTB_TICKETS_MAX; i++) {
        if (!t[i].token[0] || t[i].expires < now) {
            if (slot < 0)
                slot = i;
        } else if (!strcmp(t[i].user, user)) {
            mine++;
        }
    }
    if (mine < TICKET_PER_USER && slot >= 0) {
        apr_cpystrn(t[slot].token, out, sizeof(t[slot].token));
        apr_cpystrn(t[slot].user, user, sizeof(t[slot].user));
        apr_cpystrn(t[slot].board, board, sizeof(t[slot].board));
        t[slot].expires = now + apr_time_from_sec(TICKET_TTL);
    }
    rtb_bus_unlock();
    if (mine >= TICKET_PER_USER)
        return TICKET_USER_FULL;
    if (slot < 0)
        return TICKET_TABLE_FULL;
    *tok = out;
    return TICKET_ISSUED;
}

/*
 * Redeems a ticket once: the user it was issued to (and in *tboard its
 * board), or NULL. At /boards/:b/ws (`board` given) only a ticket of that
 * board is taken; at /ws any, and the socket is then bound to its board.
 */
static const char *ticket_redeem(request_rec *r, const char *tok, const char *board,
                                 const char **tboard)
{
    rtb_ticket_t *t = rtb_bus_tickets();
    const char *user = NULL;
    apr_time_t now = apr_time_now();
    int i;
    if (!t || strlen(tok) != 32 || rtb_bus_lock() != APR_SUCCESS)
        return NULL;
    for (i = 0; i < RTB_TICKETS_MAX; i++) {
        if (t[i].token[0] && !strcmp(t[i].token, tok)) {
            if (t[i].expires >= now && (!board || !strcmp(board, t[i].board))) {
                user = apr_pstrdup(r->pool, t[i].user);
                *tboard = apr_pstrdup(r->pool, t[i].board);
            }
            t[i].token[0] = '\0'; /* single use, even when refused */
            break;
        }
    }
    rtb_bus_unlock();
    return user;
}

/*
 * The request line of a redeemed upgrade no longer shows the ticket (the
 * access log, mod_status): a request line never carries a credential.
 */
static void ticket_mask(request_rec *r)
{
    char *line = r->the_request ? strstr(r->the_request, "ticket=") : NULL;
    if (!line)
        return;
    line = r->the_request = apr_pstrdup(r->pool, r->the_request);
    line = strstr(line, "ticket=") + 7;
    for (; *line && *line != '&' && *line != ' '; line++)
        *line = 'x';
}

/*
 * Authentication by ticket, before any other provider: for clients that
 * cannot send cookies or Basic credentials on a WebSocket upgrade. A request
 * that carries credentials of its own is left to them: a ticket never
 * replaces who the request says it is.
 */
static int ticket_check_authn(request_rec *r)
{
    const char *tok, *q, *board = NULL, *tboard = NULL;
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
    if (apr_table_get(r->headers_in, "Authorization"))
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
    user = ticket_redeem(r, tok, board, &tboard);
    ticket_mask(r);
    if (!user) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "RTB0050: unknown, used or expired ticket");
        return DECLINED;
    }
    r->user = (char *)user;
    r->ap_auth_type = "RTBoard-Ticket";
    apr_table_setn(r->notes, "rtb-ticket-user", user);
    apr_table_setn(r->notes, RTB_TICKET_BOARD_NOTE, tboard);
    return OK;
}

int rtb_ticket_handle(request_rec *r, const rtb_route_t *rt)
{
    rtb_db_t db;
    const char *a1[1] = {rt->board};
    apr_array_header_t *rows;
    const char *tok = NULL;
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
    switch (ticket_issue(r, rt->board, &tok)) {
    case TICKET_ISSUED:
        break;
    case TICKET_USER_FULL:
        apr_table_setn(r->headers_out, "Retry-After", apr_itoa(r->pool, TICKET_TTL));
        return rtb_send_error(r, HTTP_TOO_MANY_REQUESTS, "too_many_tickets",
                              apr_psprintf(r->pool,
                                           "at most %d unused tickets per user; use one, or "
                                           "wait for one to expire",
                                           TICKET_PER_USER),
                              NULL);
    default:
        apr_table_setn(r->headers_out, "Retry-After", "1");
        return rtb_send_error(r, HTTP_SERVICE_UNAVAILABLE, "tickets_exhausted",
                              "no ticket could be issued, try again", NULL);
    }
    return rtb_send_json(r, HTTP_CREATED,
                         json_pack("{s:{s:s,s:s,s:i}}", "data", "ticket", tok, "boardId", rt->board,
                                   "expiresIn", TICKET_TTL));
}

void rtb_ticket_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_check_authn(ticket_check_authn, NULL, NULL, APR_HOOK_FIRST, AP_AUTH_INTERNAL_PER_CONF);
}
