/*
 * rtb_presence: who is on a board. Every open socket joined to a board
 * holds a lease in the shared presence table (rtb_ptable, in the rtb_bus
 * segment, under its own lock), tagged with its child's pid, so a user is
 * counted once across tabs and child processes.
 *
 * News is coalesced per board: joins and leaves within RTBoardPresenceWindow
 * go out as one `presence_diff` ephemeral record {boardId, base, version,
 * count, joined: [{userId, name}], left: [userId]} describing the change of
 * the board's first page (RTBoardPresencePage users, in the order they came)
 * and its count. Whichever child's loop sees a board's window end first
 * sends its diff, under the presence lock, so diffs enter the ring in
 * version order. A snapshot (`presence`) is the announced state at a
 * version; a client applies the diff whose base is its version. Leases of a
 * child that died are reaped by whichever child looks first.
 */
#ifndef RTB_PRESENCE_H
#define RTB_PRESENCE_H

#include "rtb_conn.h"

#include <jansson.h>

/* rtb_presence_join's answers. */
enum { RTB_PRESENCE_OK = 0, RTB_PRESENCE_FULL = -1 };

/*
 * Takes a lease for the socket on `board` (a socket already holding one
 * keeps it). RTB_PRESENCE_FULL when the table has no room: the caller tells
 * the client; the first refusal of a run of them is logged.
 */
int rtb_presence_join(rtb_conn_t *cn, const char *board);

/* Gives the socket's lease on `board` back (no lease: nothing happens). */
void rtb_presence_leave(rtb_conn_t *cn, const char *board);

/* Gives back every lease of the socket (it is closing). */
void rtb_presence_leave_all(rtb_conn_t *cn);

/* Records on the socket's lease the task it is typing on (0: none), for the reaper. */
void rtb_presence_set_typing(rtb_conn_t *cn, const char *board, apr_int64_t task);

/*
 * The board's presence at its current version, as the text of a `presence`
 * message {type, boardId, version, count, offset, users: [{userId, name}],
 * complete}: at most RTBoardPresencePage users from position `offset`;
 * `complete` is true when users holds everyone. In `p`. The first page is
 * built once per board and version in each child.
 */
const char *rtb_presence_snapshot(apr_pool_t *p, server_rec *s, const char *board,
                                  apr_uint32_t offset);

/* The same snapshot, written to a WebSocket as a text message (no copy in a pool). */
void rtb_presence_send(rtb_conn_t *cn, const char *board, apr_uint32_t offset);

/*
 * Each child's loop, often (every pass; cheap when nothing is due): sends
 * the diffs of boards whose window ended, and once a second reaps the
 * leases of children that died (kill -9, crash): their users leave with the
 * next diff and their typing ends.
 */
void rtb_presence_tick(server_rec *s, apr_time_t now);

#endif
