/*
 * rtb_write: the write path every change takes, apart from what the change
 * does. A change is a function run inside a transaction; this file queues
 * it (group commit), runs it in its own savepoint, applies Idempotency-Key,
 * records its events (the board's sequence bump and the event row, in the
 * same transaction), commits, and publishes the events in id order.
 */
#ifndef RTB_WRITE_H
#define RTB_WRITE_H

#include "rtb_body.h"

/*
 * A change: runs its statements on x->db, records its events with
 * rtb_write_emit*, and fills the answer `a`. Returns 0 to commit, -1 to
 * undo (with `a` holding the error answer, or x->db.failed set).
 */
typedef int (*rtb_write_fn)(rtb_rest_ctx_t *x, rtb_answer_t *a);

/* The child's queue of changes (child_init). */
void rtb_write_child_init(apr_pool_t *pchild);

/*
 * Runs `fn` as one change: queued, run by this request or by another one
 * leading a batch, committed, published, then answered (201/200, the error
 * `fn` chose, 422 for a reused Idempotency-Key, 500 when a statement failed,
 * 503 with Retry-After when the database is busy or unavailable). On any
 * error nothing is written and nothing published. Returns OK (answered).
 */
int rtb_write_run(rtb_rest_ctx_t *x, rtb_write_fn fn);

/*
 * Records event `type` on `board` in the current transaction: bumps the
 * board's sequence, inserts the event row (envelope id, type, boardId, at,
 * actor, data), trims history now and then. `data` is stolen. Returns the
 * event id, 0 on failure (x->db.failed set).
 */
apr_uint64_t rtb_write_emit(rtb_rest_ctx_t *x, const char *board, const char *type, json_t *data);

/*
 * Records event `type` on x->rt.board carrying `obj` under `key`, and makes
 * {"data": obj} the answer with `status`. Steals `obj`. Returns 0, or -1
 * when the event could not be stored.
 */
int rtb_write_emit_resource(rtb_rest_ctx_t *x, rtb_answer_t *a, const char *type, const char *key,
                            json_t *obj, int status);

/* Answer builders for changes: an error body, or `root` (stolen) as JSON. */
void rtb_answer_error(rtb_rest_ctx_t *x, rtb_answer_t *a, int status, const char *code,
                      const char *msg, const char *field, const char *extra_key, json_t *extra);
void rtb_answer_json(rtb_rest_ctx_t *x, rtb_answer_t *a, int status, json_t *root);

/* Sends an answer built by the above (with its Location). Returns OK. */
int rtb_answer_send(rtb_rest_ctx_t *x, const rtb_answer_t *a);

#endif
