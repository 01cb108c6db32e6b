/*
 * rtb_ws: WebSocket collaboration on the connection engine: the upgrade,
 * rooms (join/leave), board events, presence, typing, cursors, tickets.
 */
#ifndef RTB_WS_H
#define RTB_WS_H

#include "rtb_engine.h"

/* The ticket authentication hook. */
void rtb_ws_register_hooks(apr_pool_t *p);

/* GET /ws, GET /boards/:b/ws and POST /boards/:b/ws-ticket. */
int rtb_ws_dispatch(request_rec *r, const rtb_route_t *rt);

/* The event's type from its JSON envelope (pool string). */
const char *rtb_event_type(apr_pool_t *p, const char *json);

#endif
