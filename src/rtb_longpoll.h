/*
 * rtb_longpoll: long polling of a board (GET /boards/:b/poll?since=N&timeout=S)
 * on the connection engine: answers at once when the client is behind (the
 * same answer as /updates), else waits for the next events or the timeout.
 */
#ifndef RTB_LONGPOLL_H
#define RTB_LONGPOLL_H

#include "httpd.h"
#include "rtb_router.h"

/* Returns OK (answered) or SUSPENDED (waiting on the engine). */
int rtb_longpoll_handle(request_rec *r, const rtb_route_t *rt);

#endif
