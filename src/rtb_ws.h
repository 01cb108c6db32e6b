/*
 * rtb_ws: the WebSocket protocol of the API on the connection engine (the
 * upgrade itself is rtb_ws_upgrade; joins rtb_ws_join; presence
 * rtb_presence). Frames are parsed by the pure codec (rtb_ws_codec) and
 * answered through c->output_filters, so mod_ssl works.
 */
#ifndef RTB_WS_H
#define RTB_WS_H

#include "rtb_ws_conn.h"

/* The engine callbacks of a WebSocket. */
extern const rtb_transport_t rtb_ws_transport;

/*
 * Handler thread, after the 101: the socket's state (parser, rate limit,
 * ping timer, the upgrade request's copy for joins) in cn->tdata, released
 * with the connection (its leases given back, its typing ended). NULL when
 * out of memory.
 */
rtb_ws_state_t *rtb_ws_state_create(rtb_conn_t *cn, request_rec *r);

#endif
