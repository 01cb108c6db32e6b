/*
 * rtb_replay: a board's history from an event id, the one rule every
 * transport follows (REST /updates, long polling, SSE, WebSocket joins).
 *
 * - The board's lastEventId is read from the store: that is where the
 *   client will be once it has what the replay returns.
 * - A client ahead of the board (since > lastEventId), or further behind
 *   than RTBoardHistory, or whose next event (since + 1) is no longer kept,
 *   gets a reset: it must reload the snapshot named in the reset body.
 * - Otherwise the events after `since` come from the shared ring when it
 *   still holds since + 1 and everything up to lastEventId, else from the
 *   event log, read in pages of RTB_REPLAY_PAGE.
 */
#ifndef RTB_REPLAY_H
#define RTB_REPLAY_H

#include "rtb_store.h"

/* Rows the store is asked for at once, and the most one /updates answer holds. */
#define RTB_REPLAY_PAGE 1000

/* One event of a replay: its id and its JSON envelope. */
typedef struct {
    apr_uint64_t id;
    const char *json;
} rtb_replay_event_t;

typedef struct {
    const char *board;
    apr_uint64_t last;          /* the board's lastEventId when read */
    apr_uint64_t since;         /* where the client is (last, when it starts live) */
    int reset;                  /* the client must reload the snapshot */
    int more;                   /* stopped at `max` events: ask again from the last one */
    apr_array_header_t *events; /* rtb_replay_event_t after `since`, in id order */
} rtb_replay_t;

/*
 * Fills `rp` for `board` from the client's position `since` (-1: none,
 * start live at the board's lastEventId). At most `max` events (0: every
 * event up to lastEventId). Allocates from `p`; `s` gives RTBoardHistory.
 * Returns OK, HTTP_NOT_FOUND (no such board) or HTTP_INTERNAL_SERVER_ERROR
 * (the store failed; logged by the store).
 */
int rtb_replay_read(rtb_replay_t *rp, rtb_db_t *db, apr_pool_t *p, server_rec *s, const char *board,
                    long long since, int max);

/*
 * The start of a stream (or a long poll) on `board`: as rtb_replay_read,
 * with the store opened on the first need (`*opened` then 1; the caller
 * closes it), except for a live start (since < 0) of a board whose head this
 * child's loop knows (rtb_engine_board_head): then the store is not read and
 * *start, the ring position the stream follows from, is lowered to the
 * loop's. A live start read from the store teaches the loop the board's
 * head. Returns as rtb_replay_read, or HTTP_SERVICE_UNAVAILABLE when the
 * store could not be opened.
 */
int rtb_replay_start(rtb_replay_t *rp, rtb_db_t *db, int *opened, request_rec *r, apr_pool_t *p,
                     const char *board, long long since, int max, apr_uint64_t *start);

/*
 * The event after which a client is once it has the replay: lastEventId for
 * a reset, else the id of the last event returned (or `since`).
 */
apr_uint64_t rtb_replay_position(const rtb_replay_t *rp);

/*
 * The reset message every transport sends:
 * {"type":"reset","boardId":B,"lastEventId":N,"snapshot":"<base>boards/B"}.
 */
const char *rtb_replay_reset_json(apr_pool_t *p, server_rec *s, const rtb_replay_t *rp);

/*
 * The answer of GET /boards/:b/updates and of a long poll that has news:
 * {"data":[events],"lastEventId":N,"more":bool} ({"data":[],"lastEventId":N}
 * when there is nothing new), or for a reset
 * {"data":[reset],"lastEventId":N,"reset":true}.
 */
const char *rtb_replay_updates_json(apr_pool_t *p, server_rec *s, const rtb_replay_t *rp);

#endif
