/*
 * rtb_rest: REST routes and the JSON answers shared with the streaming side.
 */
#ifndef RTB_REST_H
#define RTB_REST_H

#include "rtb_config.h"
#include "rtb_router.h"

/* The child's queue of changes (group commit). */
void rtb_rest_child_init(apr_pool_t *pchild);

/* Handles a REST route (not streams). Returns OK, DECLINED or an HTTP status. */
int rtb_rest_dispatch(request_rec *r, const rtb_route_t *rt);

/* Answer helpers: set status, JSON type, X-RTBoard-User; return OK. */
int rtb_send_body(request_rec *r, int status, const char *body, apr_size_t len);
int rtb_send_json(request_rec *r, int status, json_t *root);
int rtb_send_error(request_rec *r, int status, const char *code, const char *message,
                   const char *field);

/*
 * Asks Apache (a subrequest) whether the caller may use `uri` (default: the
 * board's own URI) with `method`: OK, or the status the subrequest got
 * (401, 403, ...).
 */
int rtb_board_allowed(request_rec *r, const char *board, const char *method, const char *uri);

/*
 * The body of GET /boards/:b/updates?since=N: events after `since` from the
 * event log, or a reset. NULL with *status 404/500 on failure; *nevents is
 * the number of events, -1 for a reset.
 */
const char *rtb_updates_body(request_rec *r, rtb_db_t *db, const char *board, apr_uint64_t since,
                             int *status, int *nevents);

/*
 * 1 when a client at `since` cannot be brought up to `last` from the kept
 * history (RTBoardHistory) or is ahead of it: it must reload (a reset).
 */
int rtb_history_gone(request_rec *r, apr_uint64_t since, apr_uint64_t last);

/* Query argument `name`, unescaped ("" when it has no value); NULL when absent. */
const char *rtb_query_arg(request_rec *r, const char *name);

/* Query argument `name` as a decimal id: -1 absent, -2 malformed. */
long long rtb_query_id(request_rec *r, const char *name);

#endif
