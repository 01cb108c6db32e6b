/*
 * rtb_ticket: single-use WebSocket tickets, for clients that cannot send
 * credentials on an upgrade. POST /boards/:b/ws-ticket (authenticated like
 * the board) issues one for 30 s; a `?ticket=` on the upgrade of that
 * board's socket (or /ws) authenticates as its user, once, in any child. A
 * user holds at most 8 unused tickets (429 beyond); a socket opened on /ws
 * with a ticket may join only the ticket's board; a request with credentials
 * of its own is never authenticated by a ticket.
 */
#ifndef RTB_TICKET_H
#define RTB_TICKET_H

#include "httpd.h"
#include "rtb_router.h"

/* The request note naming the board of the ticket a request was authenticated by. */
#define RTB_TICKET_BOARD_NOTE "rtb-ticket-board"

/* POST /boards/:b/ws-ticket. Returns OK (answered). */
int rtb_ticket_handle(request_rec *r, const rtb_route_t *rt);

/* The authentication hook that redeems tickets, before any other provider. */
void rtb_ticket_register_hooks(apr_pool_t *p);

#endif
