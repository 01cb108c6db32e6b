/*
 * rtb_limits: what one user may hold or do, server-wide (every child
 * counts in one shared table): open streams and sockets
 * (RTBoardMaxStreamsPerUser) and board creations (RTBoardBoardsPerMinute, a
 * token bucket with a burst of one minute's worth). A child that dies has
 * its streams dropped from the counts when the user is next looked at. When
 * the table is full of active users, limits are not applied to new ones
 * (logged once) rather than refusing service.
 */
#ifndef RTB_LIMITS_H
#define RTB_LIMITS_H

#include "httpd.h"

/*
 * Counts one more stream of r->user (until the connection ends: released by
 * a cleanup of the connection's pool, so call it only for connections that
 * close when the stream does). Returns OK, or HTTP_TOO_MANY_REQUESTS (the
 * user holds the limit already; nothing counted).
 */
int rtb_limits_take_stream(request_rec *r);

/*
 * Takes one board creation from r->user's budget. OK, or
 * HTTP_TOO_MANY_REQUESTS with *retry_after set (seconds).
 */
int rtb_limits_take_board(request_rec *r, int *retry_after);

#endif
