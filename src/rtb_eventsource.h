/*
 * rtb_eventsource: Server-Sent Events on the connection engine, for one
 * board (GET /boards/:b/events) or several (GET /events?boards=a,b, with a
 * compound cursor "a:12,b:7" as the event id).
 */
#ifndef RTB_EVENTSOURCE_H
#define RTB_EVENTSOURCE_H

#include "httpd.h"
#include "rtb_router.h"

/*
 * Validates the cursor (Last-Event-ID, else ?lastEventId=) and the boards,
 * authorizes every board like GET /boards/:b, replays what the client
 * missed (rtb_replay: events, or a reset), then hands the stream to the
 * engine. Refusals are JSON errors. Returns OK or SUSPENDED.
 */
int rtb_eventsource_handle(request_rec *r, const rtb_route_t *rt);

#endif
