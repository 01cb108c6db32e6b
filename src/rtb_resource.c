/*
 * rtb_resource: boards, lists and tasks as the API shows them. See
 * rtb_resource.h.
 */
#include "rtb_resource.h"
#include "rtb_write.h"
#include "rtb_http.h"

#include "apr_strings.h"

json_t *rtb_res_num(const char *s)
{
    return json_integer(s ? apr_atoi64(s) : 0);
}

static json_t *res_str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *rtb_res_board_json(const char **row)
{
    return json_pack("{s:s,s:s,s:s,s:o}", "id", row[RTB_BC_ID], "name", row[RTB_BC_NAME],
                     "createdAt", row[RTB_BC_CREATED], "lastEventId", rtb_res_num(row[RTB_BC_SEQ]));
}

json_t *rtb_res_list_json(const char *board, const char **row)
{
    return json_pack("{s:o,s:s,s:s,s:o}", "id", rtb_res_num(row[0]), "boardId", board, "name",
                     row[1], "position", rtb_res_num(row[2]));
}

json_t *rtb_res_task_json(const char *board, const char **c)
{
    json_t *t = json_object();
    json_object_set_new(t, "id", rtb_res_num(c[RTB_TC_ID]));
    json_object_set_new(t, "boardId", json_string(board));
    json_object_set_new(t, "listId", rtb_res_num(c[RTB_TC_LIST]));
    json_object_set_new(t, "title", json_string(c[RTB_TC_TITLE] ? c[RTB_TC_TITLE] : ""));
    json_object_set_new(t, "description", json_string(c[RTB_TC_DESC] ? c[RTB_TC_DESC] : ""));
    json_object_set_new(t, "assignee", res_str_or_null(c[RTB_TC_ASSIGNEE]));
    json_object_set_new(t, "position", rtb_res_num(c[RTB_TC_POS]));
    json_object_set_new(t, "version", rtb_res_num(c[RTB_TC_VERSION]));
    json_object_set_new(t, "createdAt", res_str_or_null(c[RTB_TC_CREATED]));
    json_object_set_new(t, "updatedAt", res_str_or_null(c[RTB_TC_UPDATED]));
    json_object_set_new(t, "createdBy", res_str_or_null(c[RTB_TC_CREATED_BY]));
    json_object_set_new(t, "updatedBy", res_str_or_null(c[RTB_TC_UPDATED_BY]));
    return t;
}

const char **rtb_res_one_row(rtb_rest_ctx_t *x, const char *label, int nargs, const char **args)
{
    apr_array_header_t *rows = rtb_db_select(&x->db, label, nargs, args, NULL);
    if (!rows || rows->nelts == 0)
        return NULL;
    return APR_ARRAY_IDX(rows, 0, const char **);
}

const char **rtb_res_board_row(rtb_rest_ctx_t *x, const char *board)
{
    const char *a[1] = {board};
    return rtb_res_one_row(x, RTB_SQL_BOARD_GET, 1, a);
}

const char **rtb_res_task_row(rtb_rest_ctx_t *x, const char *board, long long task)
{
    const char *a[2] = {rtb_lltoa(x->r->pool, task), board};
    return rtb_res_one_row(x, RTB_SQL_TASK_GET, 2, a);
}

const char **rtb_res_list_row(rtb_rest_ctx_t *x, const char *board, long long list)
{
    const char *a[2] = {rtb_lltoa(x->r->pool, list), board};
    return rtb_res_one_row(x, RTB_SQL_LIST_GET, 2, a);
}

long long rtb_res_count(rtb_rest_ctx_t *x, const char *label, const char *arg)
{
    const char *a[1] = {arg};
    const char **row = rtb_res_one_row(x, label, 1, a);
    return row && row[0] ? apr_atoi64(row[0]) : -1;
}

int rtb_res_no_board(rtb_rest_ctx_t *x, rtb_answer_t *a)
{
    if (x->db.failed)
        return -1;
    rtb_answer_error(x, a, HTTP_NOT_FOUND, "board_not_found", "no such board", NULL, NULL, NULL);
    return -1;
}

int rtb_res_no_task(rtb_rest_ctx_t *x, rtb_answer_t *a)
{
    if (x->db.failed)
        return -1;
    rtb_answer_error(x, a, HTTP_NOT_FOUND, "task_not_found", "no such task", NULL, NULL, NULL);
    return -1;
}

/* A task's ETag: its version, quoted; If-Match compares against it. */
const char *rtb_res_task_etag(apr_pool_t *p, const char **task)
{
    return apr_psprintf(p, "\"%s\"", task[RTB_TC_VERSION]);
}

/* If-Match: "<version>" against the row's version; 0 when it matches or is absent. */
int rtb_res_check_if_match(rtb_rest_ctx_t *x, rtb_answer_t *a, const char **task)
{
    const char *im = apr_table_get(x->r->headers_in, "If-Match");
    const char *want;
    if (!im || !strcmp(im, "*"))
        return 0;
    want = rtb_res_task_etag(x->r->pool, task);
    if (!strcmp(im, want) || !strcmp(im, task[RTB_TC_VERSION]) ||
        !strcmp(im, apr_pstrcat(x->r->pool, "W/", want, NULL)))
        return 0;
    rtb_answer_error(x, a, HTTP_PRECONDITION_FAILED, "version_mismatch",
                     "the task was changed by someone else", NULL, "current",
                     rtb_res_task_json(x->rt.board, task));
    return -1;
}
