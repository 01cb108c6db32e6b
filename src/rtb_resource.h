/*
 * rtb_resource: store rows as the API's JSON (boards, lists, tasks), the
 * lookups every handler makes, and task ETags.
 */
#ifndef RTB_RESOURCE_H
#define RTB_RESOURCE_H

#include "rtb_body.h"

/* A number column as a JSON integer (NULL: 0). */
json_t *rtb_res_num(const char *s);

/* A RTB_SQL_BOARD_GET row, a list row of `board`, a task row (RTB_TC_*) of `board`. */
json_t *rtb_res_board_json(const char **row);
json_t *rtb_res_list_json(const char *board, const char **row);
json_t *rtb_res_task_json(const char *board, const char **c);

/* The first row of a select on x->db, or NULL (none, or a failure: x->db.failed). */
const char **rtb_res_one_row(rtb_rest_ctx_t *x, const char *label, int nargs, const char **args);
const char **rtb_res_board_row(rtb_rest_ctx_t *x, const char *board);
const char **rtb_res_task_row(rtb_rest_ctx_t *x, const char *board, long long task);
const char **rtb_res_list_row(rtb_rest_ctx_t *x, const char *board, long long list);

/* The first column of a one-argument select as a number, -1 when none. */
long long rtb_res_count(rtb_rest_ctx_t *x, const char *label, const char *arg);

/* Inside a change: answer 404 board_not_found / task_not_found (unless the store failed). -1. */
int rtb_res_no_board(rtb_rest_ctx_t *x, rtb_answer_t *a);
int rtb_res_no_task(rtb_rest_ctx_t *x, rtb_answer_t *a);

/* A task's ETag: its version, quoted. */
const char *rtb_res_task_etag(apr_pool_t *p, const char **task);

/*
 * If-Match against the task's version: 0 when it matches or is absent; -1
 * with a 412 answer carrying the current task otherwise.
 */
int rtb_res_check_if_match(rtb_rest_ctx_t *x, rtb_answer_t *a, const char **task);

#endif
