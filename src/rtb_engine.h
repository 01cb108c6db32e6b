/*
 * rtb_engine: the per-child connection engine. Long-lived requests (SSE,
 * long polls, WebSockets) are handed to one event-loop thread per child
 * process, so the number of threads does not grow with connections.
 *
 * Life of a stream: the handler (a worker thread) validates, authorizes,
 * writes its first bytes, creates an rtb_conn_t, subscribes it and calls
 * rtb_engine_hand_off(), which returns SUSPENDED. Apache's suspend hook
 * queues the connection to the loop, which from then on is the only thread
 * that touches it: it delivers ring records, runs timers, reads input and,
 * at the end, finishes the request and destroys the connection's pool.
 *
 * Where a connection cannot be suspended the same callbacks run in the
 * handler's thread instead (rtb_blocking).
 */
#ifndef RTB_ENGINE_H
#define RTB_ENGINE_H

#include "rtb_conn.h"

/* The suspend and child-stopping hooks. */
void rtb_engine_register_hooks(apr_pool_t *p);

/* Starts the child's loop, wake and worker threads (child_init). */
void rtb_engine_child_init(apr_pool_t *pchild, server_rec *s);

/*
 * Adds a board subscription with the last id the client has. Before the
 * hand-off from the handler; after it from the loop thread only.
 */
rtb_sub_t *rtb_engine_subscribe(rtb_conn_t *cn, const char *board, apr_uint64_t last_id);

/* Loop thread only: ends a subscription (WebSocket leave, a deleted board). */
void rtb_engine_unsubscribe(rtb_conn_t *cn, rtb_sub_t *sub);

/*
 * Loop thread only: delivers the ring's records from gseq `from` up to what
 * the loop has already dispatched, to the connection's subscriptions (for a
 * board joined while the connection is live; ids already sent are skipped).
 */
void rtb_engine_catch_up(rtb_conn_t *cn, apr_uint64_t from);

/*
 * Runs `fn(data)` on a worker thread of the engine, then `done(data)` on
 * the loop (in the blocking path: both at once). 0, or -1 when it could not
 * be queued. The connection is not finished while a job is in flight.
 */
int rtb_engine_defer(rtb_conn_t *cn, void (*fn)(void *), void (*done)(void *), void *data);

/*
 * Hands the connection to the loop: returns SUSPENDED. Where the connection
 * cannot be suspended, runs the blocking loop here and returns OK when done.
 */
int rtb_engine_hand_off(rtb_conn_t *cn);

/*
 * What a stream starting live (no id to resume from) needs of a board, from
 * the ring records this child's loop has read: when `known` is 1, every
 * event of the board after `last` is in the ring at `from` or later, so a
 * stream that follows the ring from `from` with `last` misses nothing and
 * the store need not be read. 0: not known (read the store, then
 * rtb_engine_board_learn); -1: no loop in this child.
 */
typedef struct {
    int known;
    apr_uint64_t last;
    apr_uint64_t from; /* the loop's ring position */
    apr_uint32_t gen;  /* the table's generation, for rtb_engine_board_learn */
} rtb_board_head_t;

void rtb_engine_board_head(const char *board, rtb_board_head_t *h);

/*
 * After a miss of rtb_engine_board_head (h, taken before the read): the
 * board's last id `last` as the store said. Kept unless the loop has read a
 * record of the board since h was taken.
 */
void rtb_engine_board_learn(const char *board, apr_uint64_t last, const rtb_board_head_t *h);

/* Publishes an ephemeral message (presence, typing, cursor) to every child. */
void rtb_engine_publish_ephemeral(server_rec *s, const char *board, const char *json);

#endif
