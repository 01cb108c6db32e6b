/*
 * rtb_presence: who is on a board. Every open socket joined to a board
 * holds a lease in the shared table (rtb_bus), tagged with its child's pid,
 * so a user is counted once across tabs and child processes; a user's first
 * lease announces user_joined, the last user_left. Leases of a child that
 * died are reaped by whichever child looks first.
 */
#ifndef RTB_PRESENCE_H
#define RTB_PRESENCE_H

#include "rtb_conn.h"

#include <jansson.h>

/* Takes a lease for the socket on `board`; announces the user's first. */
void rtb_presence_join(rtb_conn_t *cn, const char *board);

/* Gives the socket's lease on `board` back; announces the user's last. */
void rtb_presence_leave(rtb_conn_t *cn, const char *board);

/* Gives back every lease of the socket (it is closing). */
void rtb_presence_leave_all(rtb_conn_t *cn);

/* Records on the socket's lease the task it is typing on (0: none), for the reaper. */
void rtb_presence_set_typing(rtb_conn_t *cn, const char *board, apr_int64_t task);

/* The users on `board`, each once: a new array of {"userId","name"}. */
json_t *rtb_presence_list(const char *board);

/*
 * Reaps leases of children that died (kill -9, crash): user_left and the
 * end of their typing go out once.
 */
void rtb_presence_reap(server_rec *s);

#endif
