/*
 * rtb_ws_upgrade: the WebSocket opening handshake (RFC 6455, version 13
 * only, HTTP/1.1 only: 426 otherwise). The upgrade goes through Apache like
 * any request, so authentication and the board's Require lines apply to
 * it; the Origin must be the server's own or listed in RTBoardAllowOrigin
 * (else close 1008 after the 101). GET /boards/:b/ws joins that board at
 * once (its history is read before the 101); GET /ws joins none.
 */
#ifndef RTB_WS_UPGRADE_H
#define RTB_WS_UPGRADE_H

#include "httpd.h"
#include "rtb_router.h"

/* Returns OK (answered or refused) or SUSPENDED (on the engine). */
int rtb_ws_upgrade(request_rec *r, const rtb_route_t *rt);

#endif
