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
 *
 * Several nodes (RTBoardBus): the users of other nodes hold leases too, one
 * per (node, board, user), under a pseudo owner standing for their node
 * (RTB_PTABLE_REMOTE), taken and given back by rtb_peers; diffs, snapshots
 * and GET /boards/:b/presence count them like local users.
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

/*
 * Users of other nodes (rtb_peers, on the listener thread). `owner` is the
 * node's pseudo owner (RTB_PTABLE_REMOTE set); a user holds one lease per
 * node and board whatever its sockets there.
 *
 * rtb_presence_remote_join: RTB_PRESENCE_OK (also when already held) or
 * RTB_PRESENCE_FULL (logged like a local refusal).
 * rtb_presence_remote_leave: gives the lease back; a typing indicator still
 * on it ends (user_stopped_typing).
 * rtb_presence_remote_typing: records the task the user types on (0: none),
 * so that its end is announced if the node goes away.
 * rtb_presence_remote_mark, then joins, then rtb_presence_remote_drop(all =
 * 0): the node's users are replaced by those joined since the mark (a full
 * resend); drop(all = 1): every lease of the node goes (it died). Typing
 * of the leases given back ends. Returns the leases given back.
 * Typing ends published here are marked RTB_EPHEMERAL_REMOTE: never
 * forwarded to other nodes, which decide for themselves.
 */
int rtb_presence_remote_join(server_rec *s, apr_uint32_t owner, const char *board, const char *user,
                             const char *name);
void rtb_presence_remote_leave(server_rec *s, apr_uint32_t owner, const char *board,
                               const char *user, const char *name);
void rtb_presence_remote_typing(server_rec *s, apr_uint32_t owner, const char *board,
                                const char *user, apr_int64_t task);
void rtb_presence_remote_mark(server_rec *s, apr_uint32_t owner);
apr_uint32_t rtb_presence_remote_drop(server_rec *s, apr_uint32_t owner, int all);

/* The (board, user) leases a node's pseudo owner holds: its users here. */
apr_uint32_t rtb_presence_remote_users(server_rec *s, apr_uint32_t owner);

/*
 * This node's own users: fn(arg, board, user, name) for each (board, user)
 * holding a lease of a local process, under the presence lock (fn copies);
 * *changes gets rtb_ptable_local_changes at that moment. 0, or -1 without a
 * table or the lock. rtb_presence_local_changes: the counter alone, without
 * the lock (a hint that the list may have changed).
 */
int rtb_presence_local_users(server_rec *s, rtb_ptable_each_fn fn, void *arg,
                             apr_uint64_t *changes);
apr_uint64_t rtb_presence_local_changes(void);

#endif
