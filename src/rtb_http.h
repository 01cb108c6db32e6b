/*
 * rtb_http: what every route and transport shares on the HTTP side: JSON
 * answers and error bodies, query arguments, the time format of the API, and
 * asking Apache whether a user may use a board.
 *
 * Handlers answer through these and return OK (the answer is sent) or
 * DECLINED; they never return a bare HTTP_* status, so a client always
 * gets the JSON error body docs/API.md promises, never Apache's HTML page.
 */
#ifndef RTB_HTTP_H
#define RTB_HTTP_H

#include "httpd.h"
#include <jansson.h>

/* The per-child cache of rtb_board_listable (child_init). */
void rtb_http_child_init(apr_pool_t *pchild);

/* Current time as ISO-8601 UTC with milliseconds, in pool `p`. */
const char *rtb_now_iso(apr_pool_t *p);

/*
 * Sends `body` (JSON, `len` bytes, may be NULL for no body) with `status`,
 * Cache-Control: no-store and X-RTBoard-User. Returns OK.
 */
int rtb_send_body(request_rec *r, int status, const char *body, apr_size_t len);

/* Sends `root` (reference stolen) with `status`. Returns OK. */
int rtb_send_json(request_rec *r, int status, json_t *root);

/*
 * Sends {"error": {status, code, message, field?}} with `status`. `field`
 * may be NULL. Returns OK.
 */
int rtb_send_error(request_rec *r, int status, const char *code, const char *message,
                   const char *field);

/* The answers of a database that failed: 503 when no connection, 500 when a statement failed. */
int rtb_send_db_unavailable(request_rec *r);
int rtb_send_db_error(request_rec *r);

/* Ties `j` to the request's pool (decref'd when the request ends); returns j. */
json_t *rtb_json_keep(request_rec *r, json_t *j);

/* `v` in decimal, in pool `p`. */
const char *rtb_lltoa(apr_pool_t *p, long long v);

/* Query argument `name`, unescaped ("" when it has no value); NULL when absent. */
const char *rtb_query_arg(request_rec *r, const char *name);

/*
 * Query argument `name` as an event id (decimal, no sign or leading zero,
 * "0" allowed, at most 2^53 - 1): the value, -1 when absent, -2 when
 * malformed.
 */
long long rtb_query_id(request_rec *r, const char *name);

/*
 * Asks Apache (a subrequest: the board's <Location> Require lines) whether
 * the caller may use `uri` (NULL: the board's own URI) with `method` (NULL:
 * GET). Returns OK, or the status the subrequest got (401, 403, ...).
 */
int rtb_board_allowed(request_rec *r, const char *board, const char *method, const char *uri);

/*
 * rtb_board_allowed for listings (GET /boards): the answer Apache gave for
 * the same user, client address and board within the last few seconds is
 * reused, so a long listing does not run a subrequest per board each time.
 * Not for deciding access to a board itself: that is always Apache's.
 */
int rtb_board_listable(request_rec *r, const char *board);

/*
 * Answers a refused board check (`rc` from rtb_board_allowed) as the API
 * does everywhere: 401 not_authenticated when nobody is signed in, else 403
 * board_forbidden. Returns OK.
 */
int rtb_send_board_refused(request_rec *r, int rc, const char *board);

/*
 * Answers the failure `rc` of reading or checking a board: 404
 * board_not_found, 401/403 as rtb_send_board_refused, anything else 500
 * database_error. Returns OK.
 */
int rtb_send_board_error(request_rec *r, int rc, const char *board);

/*
 * 1 when the request's Origin is this server's own (scheme://Host) or
 * listed in RTBoardAllowOrigin (or "*"), or when it has no Origin (not a
 * browser); else 0.
 */
int rtb_origin_allowed(request_rec *r);

/*
 * 1 when a browser sent the request from another site: an Origin that is
 * not allowed, or Sec-Fetch-Site cross-site/same-site without an Origin.
 * State-changing requests from another site are refused (a signed-in
 * browser would otherwise send its cached credentials with them).
 */
int rtb_cross_site(request_rec *r);

/* 429 too_many_streams: the user holds RTBoardMaxStreamsPerUser already. Returns OK. */
int rtb_send_too_many_streams(request_rec *r);

#endif
