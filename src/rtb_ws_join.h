/*
 * rtb_ws_join: joining a board on a WebSocket. Apache decides (a subrequest
 * to the board's URI, so its <Location> Require lines apply), on a worker
 * thread of the engine, never on the loop; the history the client missed
 * comes from rtb_replay; then the socket is subscribed, its presence lease
 * taken and the board's presence sent.
 *
 * The upgrade request is logged and freed once the socket is on the loop,
 * so a join's subrequest needs a parent built from a compact copy of it
 * (rtb_ws_origin_t), unless the request is kept (rtb_ws_keep_request).
 */
#ifndef RTB_WS_JOIN_H
#define RTB_WS_JOIN_H

#include "rtb_ws_conn.h"
#include "rtb_replay.h"

/* A join in progress. */
typedef struct {
    rtb_conn_t *cn;
    request_rec *r; /* the upgrade request, or a request like it on `pool` */
    apr_pool_t *pool;
    char board[RTB_BOARD_ID_MAX + 1];
    long long since;    /* where the client is, -1: live */
    apr_uint64_t start; /* ring position taken before the store was read */
    int status;         /* OK, 403, 404, 500, 503 */
    rtb_replay_t rp;
} rtb_ws_join_t;

/*
 * Loop thread: starts a join of `board` from `since` (-1: live). Its answer
 * (joined, a reset or the missed events, presence) comes later, on the loop.
 */
void rtb_ws_join(rtb_conn_t *cn, const char *board, long long since);

/*
 * Loop thread, or the upgrade's handler for /boards/:b/ws: the join is
 * decided (j->status, j->rp); answers it (4004, 4003, 1013, 1011 closes, or
 * joined + history + presence) and subscribes.
 */
void rtb_ws_join_finish(rtb_conn_t *cn, rtb_ws_join_t *j);

/*
 * The upgrade request's copy (handler thread, before the hand-off), one
 * malloc'd block (free() it). NULL when out of memory.
 */
rtb_ws_origin_t *rtb_ws_origin_save(request_rec *r);

/*
 * 1 when joins need the upgrade request itself (mod_auth_digest loaded:
 * its per-request state is read by Digest checks in subrequests).
 */
int rtb_ws_keep_request(void);

#endif
