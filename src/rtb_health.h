/*
 * rtb_health: GET /rtboard-health (SetHandler rtboard-health), whether this
 * node can serve: its database answers a query and, with RTBoardBus, its
 * LISTEN connection is up. For a front's health checks (mod_proxy_hcheck
 * hcmethod=GET) and for monitoring.
 */
#ifndef RTB_HEALTH_H
#define RTB_HEALTH_H

#include "httpd.h"

/*
 * Answers 200 {"data": {"status": "ok", "database": "ok", "bus": ...}} when
 * the node can serve; 503 {"error": ...} (code database_unavailable or
 * bus_disconnected, with Retry-After) when it cannot; 405 for other methods
 * than GET and HEAD. Never cached. Returns OK (answered).
 */
int rtb_health_handler(request_rec *r);

#endif
