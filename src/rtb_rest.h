/*
 * rtb_rest: the REST routes of the API (boards, lists, tasks, updates and
 * the alias routes), as docs/API.md gives them.
 */
#ifndef RTB_REST_H
#define RTB_REST_H

#include "httpd.h"
#include "rtb_router.h"

/*
 * Handles a REST route (not streams). Every answer, error or not, is sent
 * as JSON here: returns OK, or DECLINED for a route that is not REST.
 */
int rtb_rest_dispatch(request_rec *r, const rtb_route_t *rt);

#endif
