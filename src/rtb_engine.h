/*
 * rtb_engine: the per-child connection engine. Long-lived requests (SSE,
 * long polls, WebSockets) are handed to one event-loop thread per child
 * process, so the number of threads does not grow with connections.
 */
#ifndef RTB_ENGINE_H
#define RTB_ENGINE_H

#include "rtb_config.h"
#include "rtb_router.h"

void rtb_engine_register_hooks(apr_pool_t *p);
void rtb_engine_child_init(apr_pool_t *pchild, server_rec *s);

/* Handles the streaming routes: events, poll, ws, ws-ticket. */
int rtb_engine_dispatch(request_rec *r, const rtb_route_t *rt);

/* GET /rtboard-status and SetHandler rtboard-status. */
int rtb_engine_status(request_rec *r);

#endif
