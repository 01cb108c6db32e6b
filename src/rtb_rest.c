/*
 * rtb_rest: the REST resources of the API (boards, lists, tasks, updates,
 * the alias routes) and their dispatch. Changes run through rtb_write;
 * bodies are read by rtb_body; rows become JSON in rtb_resource.
 */
#include "rtb_rest.h"
#include "rtb_body.h"
#include "rtb_http.h"
#include "rtb_ids.h"
#include "rtb_limits.h"
#include "rtb_presence.h"
#include "rtb_replay.h"
#include "rtb_resource.h"
#include "rtb_write.h"

#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_strings.h"
#include "apr_lib.h"
#include "apr_hash.h"

APLOG_USE_MODULE(rtboard);

/* ------------------------------------------------------------------ */
/* boards                                                               */

static const rtb_field_spec_t spec_board_create[] = {
    {"id", RTB_F_STRING, 1, 64, 0, 0},
    {"name", RTB_F_STRING, 1, 200, 1, 0},
    {"lists", RTB_F_ANY, 0, 0, 0, 0}, /* checked by hand: an array of names */
    {NULL, 0, 0, 0, 0, 0}};

static const rtb_field_spec_t spec_board_patch[] = {{"name", RTB_F_STRING, 1, 200, 1, 0},
                                                    {NULL, 0, 0, 0, 0, 0}};

/* A readable id from a name: lower-case letters and digits, '-' between words. */
static char *rest_slugify(apr_pool_t *p, const char *name)
{
    char *out = apr_palloc(p, 49);
    apr_size_t n = 0;
    int dash = 0;
    for (; *name && n < 40; name++) {
        unsigned char c = (unsigned char)*name;
        if (apr_isalnum(c) && c < 128) {
            if (dash && n)
                out[n++] = '-';
            out[n++] = (char)apr_tolower(c);
            dash = 0;
        } else {
            dash = 1;
        }
    }
    out[n] = '\0';
    return n ? out : apr_pstrdup(p, "board");
}

static int rest_board_create(rtb_rest_ctx_t *x, rtb_answer_t *a)
{
    apr_pool_t *p = x->r->pool;
    const char *id = rtb_body_str(x, "id");
    const char *name = rtb_body_str(x, "name");
    json_t *lists = json_object_get(x->body, "lists");
    json_t *out, *jl;
    const char *now = rtb_now_iso(p);
    size_t i, nl;
    static const char *const defaults[] = {"To Do", "In Progress", "Done"};

    if (!id) {
        char *base = rest_slugify(p, name);
        id = base;
        for (i = 2; rtb_res_board_row(x, id) && i < 1000; i++)
            id = apr_psprintf(p, "%s-%d", base, (int)i);
    }
    if (x->db.failed)
        return -1;
    if (rtb_res_board_row(x, id)) {
        rtb_answer_error(x, a, HTTP_CONFLICT, "board_exists", "a board with this id exists", "id",
                         NULL, NULL);
        return -1;
    }
    {
        const char *args[3] = {id, name, now};
        if (rtb_db_exec(&x->db, RTB_SQL_BOARD_INS, 3, args, NULL) < 0)
            return -1;
    }
    nl = lists ? json_array_size(lists) : 3;
    jl = json_array();
    for (i = 0; i < nl; i++) {
        const char *ln = lists ? json_string_value(json_array_get(lists, i)) : defaults[i];
        const char *args[3] = {id, ln, rtb_lltoa(p, (long long)i)};
        const char **row = rtb_res_one_row(x, RTB_SQL_LIST_INS, 3, args);
        if (!row)
            return -1;
        json_array_append_new(jl, json_pack("{s:o,s:s,s:s,s:I}", "id", rtb_res_num(row[0]),
                                            "boardId", id, "name", ln, "position", (json_int_t)i));
    }
    out = json_pack("{s:s,s:s,s:s,s:i,s:o}", "id", id, "name", name, "createdAt", now,
                    "lastEventId", 0, "lists", jl);
    a->location = apr_pstrcat(p, x->cfg->base, "boards/", id, NULL);
    rtb_answer_json(x, a, HTTP_CREATED, rtb_json_data(out));
    return 0;
}

/* Answers a refused body; returns DONE (answered). */
static int rest_refuse(request_rec *r, int status, const char *code, const char *message,
                       const char *field)
{
    rtb_send_error(r, status, code, message, field);
    return DONE;
}

/*
 * Checks the hand-typed parts of POST /boards: the id slug and the lists
 * array; and that the caller could read a board of that id (else 403,
 * whether or not it exists, so the answer tells nothing of boards one may
 * not read). Returns OK, or DONE when refused (answered).
 */
static int rest_board_body_extra(rtb_rest_ctx_t *x)
{
    const char *id = rtb_body_str(x, "id");
    json_t *lists = json_object_get(x->body, "lists");
    size_t i;
    int rc;
    if (id && !rtb_board_id_valid(id, strlen(id)))
        return rest_refuse(x->r, HTTP_UNPROCESSABLE_ENTITY, "invalid_id",
                           "id must match [a-z0-9][a-z0-9_-]{0,63}", "id");
    if (id && (rc = rtb_board_allowed(x->r, id, "GET", NULL)) != OK) {
        rtb_send_board_refused(x->r, rc, id);
        return DONE;
    }
    if (lists) {
        if (!json_is_array(lists) || json_array_size(lists) > 50)
            return rest_refuse(x->r, HTTP_UNPROCESSABLE_ENTITY, "invalid_type",
                               "lists must be an array of at most 50 names", "lists");
        for (i = 0; i < json_array_size(lists); i++) {
            json_t *v = json_array_get(lists, i);
            size_t n;
            if (!json_is_string(v))
                return rest_refuse(x->r, HTTP_UNPROCESSABLE_ENTITY, "invalid_type",
                                   "every list name must be a string", "lists");
            n = rtb_utf8_len(json_string_value(v));
            if (n < 1 || n > 100 || strlen(json_string_value(v)) != json_string_length(v))
                return rest_refuse(x->r, HTTP_UNPROCESSABLE_ENTITY, "invalid_value",
                                   "list names are 1..100 characters, without NUL", "lists");
        }
    }
    return OK;
}

#define REST_LIST_DEFAULT 100 /* boards in one GET /boards answer */
#define REST_LIST_MAX 1000    /* the most ?limit= may ask */
#define REST_LIST_SCAN 5      /* rows read per board answered, at most */

/*
 * The cursor of a listing: "<createdAt>~<id>" of the last board looked at.
 * Returns 0 and the parts, or -1 when malformed.
 */
static int rest_list_cursor(apr_pool_t *p, const char *c, const char **at, const char **id)
{
    const char *t = c ? strchr(c, '~') : NULL;
    if (!t || t == c || t - c > 40 || !rtb_board_id_valid(t + 1, strlen(t + 1)))
        return -1;
    *at = apr_pstrmemdup(p, c, (apr_size_t)(t - c));
    *id = t + 1;
    return 0;
}

/*
 * GET /boards[?limit=N&after=C]: the boards the caller may read, in creation
 * order, a page at a time ("next" is the cursor of the next page, or null).
 * At most REST_LIST_SCAN rows are read per board asked for, so a caller who
 * may read few of many boards gets short pages quickly, and follows "next".
 */
static int rest_boards_list(rtb_rest_ctx_t *x)
{
    request_rec *r = x->r;
    long long limit = rtb_query_id(r, "limit");
    const char *after = rtb_query_arg(r, "after");
    const char *at = "", *id = "", *next = NULL;
    json_t *arr = json_array();
    int scanned = 0, budget;
    if (limit == -2 || limit == 0 || limit > REST_LIST_MAX) {
        json_decref(arr);
        return rtb_send_error(r, HTTP_BAD_REQUEST, "invalid_limit", "limit must be 1..1000",
                              "limit");
    }
    if (limit < 0)
        limit = REST_LIST_DEFAULT;
    if (after && rest_list_cursor(r->pool, after, &at, &id) < 0) {
        json_decref(arr);
        return rtb_send_error(r, HTTP_BAD_REQUEST, "invalid_cursor",
                              "after must be a cursor given as \"next\"", "after");
    }
    if (rtb_db_acquire(&x->db, r) < 0) {
        json_decref(arr);
        return rtb_send_db_unavailable(r);
    }
    budget = (int)limit * REST_LIST_SCAN;
    while ((long long)json_array_size(arr) < limit && scanned < budget) {
        int want = (int)limit - (int)json_array_size(arr), i;
        const char *args[3] = {at, id, apr_itoa(r->pool, want)};
        apr_array_header_t *rows = rtb_db_select(&x->db, RTB_SQL_BOARDS_PAGE, 3, args, NULL);
        if (!rows) {
            json_decref(arr);
            return rtb_send_db_error(r);
        }
        for (i = 0; i < rows->nelts; i++) {
            const char **row = APR_ARRAY_IDX(rows, i, const char **);
            at = row[RTB_BC_CREATED];
            id = row[RTB_BC_ID];
            scanned++;
            if (rtb_board_listable(r, id) == OK)
                json_array_append_new(arr, rtb_res_board_json(row));
        }
        if (rows->nelts < want) {
            at = NULL; /* the end */
            break;
        }
    }
    if (at)
        next = apr_pstrcat(r->pool, at, "~", id, NULL);
    return rtb_send_json(r, HTTP_OK, json_pack("{s:o,s:s?}", "data", arr, "next", next));
}

/* A strong ETag for a board state: its sequence, and its creation time so a
 * re-created board never matches the old one's tags. */
static const char *rest_board_etag(apr_pool_t *p, const char **b)
{
    apr_ssize_t klen = APR_HASH_KEY_STRING;
    return apr_psprintf(p, "\"s%s-%08x\"", b[RTB_BC_SEQ],
                        (unsigned)apr_hashfunc_default(b[RTB_BC_CREATED], &klen));
}

/*
 * The board snapshot: board, lists and tasks read in one read transaction,
 * so the snapshot and its lastEventId always agree and a client can
 * subscribe from that id with no gap.
 */
static int rest_board_get(rtb_rest_ctx_t *x)
{
    request_rec *r = x->r;
    const char *a1[1] = {x->rt.board};
    const char **b, *etag, *inm;
    apr_array_header_t *lists = NULL, *tasks = NULL;
    json_t *jl, *jt, *root;
    int i;

    if (rtb_db_acquire(&x->db, r) < 0)
        return rtb_send_db_unavailable(r);
    if (rtb_db_read_begin(&x->db) < 0)
        return rtb_send_error(r, HTTP_SERVICE_UNAVAILABLE, "database_busy",
                              "could not read the board, try again", NULL);
    b = rtb_res_board_row(x, x->rt.board);
    etag = b ? rest_board_etag(r->pool, b) : NULL;
    inm = apr_table_get(r->headers_in, "If-None-Match");
    if (b && !(inm && !strcmp(inm, etag))) {
        lists = rtb_db_select(&x->db, RTB_SQL_LISTS_OF, 1, a1, NULL);
        tasks = rtb_db_select(&x->db, RTB_SQL_TASKS_OF, 1, a1, NULL);
    }
    rtb_db_read_end(&x->db);
    if (x->db.failed)
        return rtb_send_error(r, HTTP_INTERNAL_SERVER_ERROR, "database_error",
                              "could not read the board", NULL);
    if (!b)
        return rtb_send_error(r, HTTP_NOT_FOUND, "board_not_found", "no such board", NULL);
    apr_table_setn(r->headers_out, "ETag", etag);
    if (!lists)
        return rtb_send_body(r, HTTP_NOT_MODIFIED, NULL, 0);
    jl = json_array();
    for (i = 0; i < lists->nelts; i++)
        json_array_append_new(
            jl, rtb_res_list_json(x->rt.board, APR_ARRAY_IDX(lists, i, const char **)));
    jt = json_array();
    for (i = 0; i < tasks->nelts; i++)
        json_array_append_new(
            jt, rtb_res_task_json(x->rt.board, APR_ARRAY_IDX(tasks, i, const char **)));
    root = json_pack("{s:{s:o,s:o,s:o},s:o}", "data", "board", rtb_res_board_json(b), "lists", jl,
                     "tasks", jt, "lastEventId", rtb_res_num(b[RTB_BC_SEQ]));
    return rtb_send_json(r, HTTP_OK, root);
}

static int rest_board_patch(rtb_rest_ctx_t *x, rtb_answer_t *a)
{
    const char *name = rtb_body_str(x, "name");
    const char **b = rtb_res_board_row(x, x->rt.board);
    json_t *bj;
    if (!b)
        return rtb_res_no_board(x, a);
    {
        const char *args[2] = {name, x->rt.board};
        if (rtb_db_exec(&x->db, RTB_SQL_BOARD_RENAME, 2, args, NULL) < 0)
            return -1;
    }
    b = rtb_res_board_row(x, x->rt.board);
    if (!b)
        return -1;
    bj = rtb_res_board_json(b);
    /* the board as of this very change: writers are serialised, so its id is seq + 1 */
    json_object_set_new(bj, "lastEventId", json_integer((json_int_t)apr_atoi64(b[RTB_BC_SEQ]) + 1));
    return rtb_write_emit_resource(x, a, "board_updated", "board", bj, HTTP_OK);
}

static int rest_board_delete(rtb_rest_ctx_t *x, rtb_answer_t *a)
{
    const char *args[1] = {x->rt.board};
    if (!rtb_res_board_row(x, x->rt.board))
        return rtb_res_no_board(x, a);
    if (!rtb_write_emit(x, x->rt.board, "board_deleted",
                        json_pack("{s:s}", "boardId", x->rt.board)))
        return -1;
    if (rtb_db_exec(&x->db, RTB_SQL_BOARD_DEL, 1, args, NULL) < 0)
        return -1;
    a->status = HTTP_NO_CONTENT;
    a->body = NULL;
    return 0;
}

/* ------------------------------------------------------------------ */
/* lists                                                                */

static const rtb_field_spec_t spec_list_create[] = {{"name", RTB_F_STRING, 1, 100, 1, 0},
                                                    {"position", RTB_F_INT, 0, 100000, 0, 0},
                                                    {NULL, 0, 0, 0, 0, 0}};
static const rtb_field_spec_t spec_list_patch[] = {{"name", RTB_F_STRING, 1, 100, 1, 0},
                                                   {NULL, 0, 0, 0, 0, 0}};

static int rest_list_create(rtb_rest_ctx_t *x, rtb_answer_t *a)
{
    apr_pool_t *p = x->r->pool;
    long long next, pos;
    const char **row;
    json_t *lj;
    if (!rtb_res_board_row(x, x->rt.board))
        return rtb_res_no_board(x, a);
    next = rtb_res_count(x, RTB_SQL_LIST_NEXT_POS, x->rt.board);
    if (next < 0)
        return -1;
    pos = rtb_body_int(x, "position", next);
    if (pos > next)
        pos = next;
    if (pos < next) {
        const char *args[3] = {"1", x->rt.board, rtb_lltoa(p, pos)};
        if (rtb_db_exec(&x->db, RTB_SQL_LIST_SHIFT, 3, args, NULL) < 0)
            return -1;
    }
    {
        const char *args[3] = {x->rt.board, rtb_body_str(x, "name"), rtb_lltoa(p, pos)};
        row = rtb_res_one_row(x, RTB_SQL_LIST_INS, 3, args);
        if (!row)
            return -1;
    }
    lj = json_pack("{s:o,s:s,s:s,s:I}", "id", rtb_res_num(row[0]), "boardId", x->rt.board, "name",
                   rtb_body_str(x, "name"), "position", (json_int_t)pos);
    a->location = apr_psprintf(p, "%sboards/%s/lists/%s", x->cfg->base, x->rt.board, row[0]);
    return rtb_write_emit_resource(x, a, "list_created", "list", lj, HTTP_CREATED);
}

static int rest_list_missing(rtb_rest_ctx_t *x, rtb_answer_t *a)
{
    if (!rtb_res_board_row(x, x->rt.board))
        return rtb_res_no_board(x, a);
    if (x->db.failed)
        return -1;
    rtb_answer_error(x, a, HTTP_NOT_FOUND, "list_not_found", "no such list", NULL, NULL, NULL);
    return -1;
}

static int rest_list_patch(rtb_rest_ctx_t *x, rtb_answer_t *a)
{
    apr_pool_t *p = x->r->pool;
    const char **row = rtb_res_list_row(x, x->rt.board, x->rt.list);
    json_t *lj;
    if (!row)
        return rest_list_missing(x, a);
    {
        const char *args[2] = {rtb_body_str(x, "name"), rtb_lltoa(p, x->rt.list)};
        if (rtb_db_exec(&x->db, RTB_SQL_LIST_RENAME, 2, args, NULL) < 0)
            return -1;
    }
    row = rtb_res_list_row(x, x->rt.board, x->rt.list);
    if (!row)
        return -1;
    lj = rtb_res_list_json(x->rt.board, row);
    return rtb_write_emit_resource(x, a, "list_updated", "list", lj, HTTP_OK);
}

static int rest_list_delete(rtb_rest_ctx_t *x, rtb_answer_t *a)
{
    apr_pool_t *p = x->r->pool;
    const char **row = rtb_res_list_row(x, x->rt.board, x->rt.list);
    const char *lid = rtb_lltoa(p, x->rt.list);
    const char *cv = rtb_query_arg(x->r, "cascade");
    int cascade = cv && !strcmp(cv, "1");
    long long ntasks;
    if (!row)
        return rest_list_missing(x, a);
    ntasks = rtb_res_count(x, RTB_SQL_LIST_TASKS, lid);
    if (ntasks < 0)
        return -1;
    if (ntasks > 0 && !cascade) {
        rtb_answer_error(x, a, HTTP_CONFLICT, "list_not_empty",
                         "the list holds tasks; delete them or use ?cascade=1", NULL, NULL, NULL);
        return -1;
    }
    {
        const char *args[1] = {lid};
        const char *shift[3] = {"-1", x->rt.board, rtb_lltoa(p, apr_atoi64(row[2]) + 1)};
        if (rtb_db_exec(&x->db, RTB_SQL_TASK_DEL_LIST, 1, args, NULL) < 0 ||
            rtb_db_exec(&x->db, RTB_SQL_LIST_DEL, 1, args, NULL) < 0 ||
            rtb_db_exec(&x->db, RTB_SQL_LIST_SHIFT, 3, shift, NULL) < 0)
            return -1;
    }
    if (!rtb_write_emit(x, x->rt.board, "list_deleted",
                        json_pack("{s:I,s:I}", "listId", (json_int_t)x->rt.list, "tasksDeleted",
                                  (json_int_t)ntasks)))
        return -1;
    a->status = HTTP_NO_CONTENT;
    a->body = NULL;
    return 0;
}

/* ------------------------------------------------------------------ */
/* tasks                                                                */

static const rtb_field_spec_t spec_task_create[] = {
    {"listId", RTB_F_ID, 1, (long long)RTB_ID_MAX, 1, 0},
    {"title", RTB_F_STRING, 1, 200, 1, 0},
    {"description", RTB_F_STRING, 0, 10000, 0, 0},
    {"assignee", RTB_F_STRING, 1, 64, 0, 1},
    {"position", RTB_F_INT, 0, 1000000, 0, 0},
    {NULL, 0, 0, 0, 0, 0}};

static const rtb_field_spec_t spec_alias_create[] = {
    {"boardId", RTB_F_STRING, 1, 64, 1, 0},
    {"listId", RTB_F_ID, 1, (long long)RTB_ID_MAX, 1, 0},
    {"title", RTB_F_STRING, 1, 200, 1, 0},
    {"description", RTB_F_STRING, 0, 10000, 0, 0},
    {"assignee", RTB_F_STRING, 1, 64, 0, 1},
    {"position", RTB_F_INT, 0, 1000000, 0, 0},
    {NULL, 0, 0, 0, 0, 0}};

static const rtb_field_spec_t spec_task_patch[] = {{"title", RTB_F_STRING, 1, 200, 0, 0},
                                                   {"description", RTB_F_STRING, 0, 10000, 0, 0},
                                                   {"assignee", RTB_F_STRING, 1, 64, 0, 1},
                                                   {NULL, 0, 0, 0, 0, 0}};

static const rtb_field_spec_t spec_task_move[] = {
    {"listId", RTB_F_ID, 1, (long long)RTB_ID_MAX, 1, 0},
    {"position", RTB_F_INT, 0, 1000000, 1, 0},
    {NULL, 0, 0, 0, 0, 0}};

static int rest_bad_list(rtb_rest_ctx_t *x, rtb_answer_t *a)
{
    if (x->db.failed)
        return -1;
    rtb_answer_error(x, a, HTTP_UNPROCESSABLE_ENTITY, "list_not_found",
                     "listId does not name a list of this board", "listId", NULL, NULL);
    return -1;
}

/* The list named is missing, or not this board's, or the board is gone. */
static int rest_task_no_list(rtb_rest_ctx_t *x, rtb_answer_t *a)
{
    if (!x->db.failed && !rtb_res_board_row(x, x->rt.board))
        return rtb_res_no_board(x, a);
    return rest_bad_list(x, a);
}

/*
 * The task's row (RETURNING its columns). At the end of its list (no
 * position, the usual case) on PostgreSQL: the list check, the position and
 * the insert in one statement, as the write path is serialised and each
 * round trip saved counts (SQLite, in the process, has no round trips to
 * save, and runs the two statements a little faster than the one).
 * Elsewhere: the list's size, the tasks after it moved down, the insert.
 * NULL with the answer set when refused, or x->db.failed.
 */
static const char **rest_task_insert(rtb_rest_ctx_t *x, rtb_answer_t *a, const char *lid,
                                     const char *now)
{
    apr_pool_t *p = x->r->pool;
    const char *desc = rtb_body_str(x, "description");
    const char **row;
    long long count, pos;

    if (!rtb_body_has(x, "position") && rtb_db_is_pgsql(&x->db)) {
        const char *args[9] = {rtb_body_str(x, "title"),
                               desc ? desc : "",
                               rtb_body_str(x, "assignee"),
                               now,
                               now,
                               x->user,
                               x->user,
                               lid,
                               x->rt.board};
        row = rtb_res_one_row(x, RTB_SQL_TASK_APPEND, 9, args);
        if (!row)
            rest_task_no_list(x, a);
        return row;
    }
    {
        /* the list, of this board, and its size in one statement */
        const char *args[2] = {lid, x->rt.board};
        row = rtb_res_one_row(x, RTB_SQL_LIST_COUNT, 2, args);
        if (!row) {
            rest_task_no_list(x, a);
            return NULL;
        }
        count = apr_atoi64(row[0]);
    }
    pos = rtb_body_int(x, "position", count);
    if (pos > count)
        pos = count;
    if (pos < count) {
        const char *args[3] = {"1", lid, rtb_lltoa(p, pos)};
        if (rtb_db_exec(&x->db, RTB_SQL_TASK_SHIFT, 3, args, NULL) < 0)
            return NULL;
    }
    {
        const char *args[10] = {x->rt.board,
                                lid,
                                rtb_body_str(x, "title"),
                                desc ? desc : "",
                                rtb_body_str(x, "assignee"),
                                rtb_lltoa(p, pos),
                                now,
                                now,
                                x->user,
                                x->user};
        return rtb_res_one_row(x, RTB_SQL_TASK_INS, 10, args);
    }
}

static int rest_task_create(rtb_rest_ctx_t *x, rtb_answer_t *a)
{
    apr_pool_t *p = x->r->pool;
    const char **row =
        rest_task_insert(x, a, rtb_lltoa(p, rtb_body_int(x, "listId", 0)), rtb_now_iso(p));
    json_t *tj;

    if (!row) {
        if (!x->db.failed && !a->body) /* the insert returned nothing */
            x->db.failed = 1;
        return -1;
    }
    tj = rtb_res_task_json(x->rt.board, row);
    a->location =
        apr_psprintf(p, "%sboards/%s/tasks/%s", x->cfg->base, x->rt.board, row[RTB_TC_ID]);
    return rtb_write_emit_resource(x, a, "task_created", "task", tj, HTTP_CREATED);
}

static int rest_tasks_list(rtb_rest_ctx_t *x)
{
    const char *a1[1] = {x->rt.board};
    apr_array_header_t *rows;
    json_t *arr;
    int i;
    if (rtb_db_acquire(&x->db, x->r) < 0)
        return rtb_send_db_unavailable(x->r);
    if (!rtb_res_board_row(x, x->rt.board))
        return x->db.failed
                   ? rtb_send_db_error(x->r)
                   : rtb_send_error(x->r, HTTP_NOT_FOUND, "board_not_found", "no such board", NULL);
    rows = rtb_db_select(&x->db, RTB_SQL_TASKS_OF, 1, a1, NULL);
    if (!rows)
        return rtb_send_db_error(x->r);
    arr = json_array();
    for (i = 0; i < rows->nelts; i++)
        json_array_append_new(
            arr, rtb_res_task_json(x->rt.board, APR_ARRAY_IDX(rows, i, const char **)));
    return rtb_send_json(x->r, HTTP_OK, rtb_json_data(arr));
}

static int rest_task_get(rtb_rest_ctx_t *x)
{
    const char **row;
    if (rtb_db_acquire(&x->db, x->r) < 0)
        return rtb_send_db_unavailable(x->r);
    row = rtb_res_task_row(x, x->rt.board, x->rt.task);
    if (!row) {
        if (x->db.failed)
            return rtb_send_db_error(x->r);
        if (!rtb_res_board_row(x, x->rt.board))
            return rtb_send_error(x->r, HTTP_NOT_FOUND, "board_not_found", "no such board", NULL);
        return rtb_send_error(x->r, HTTP_NOT_FOUND, "task_not_found", "no such task", NULL);
    }
    apr_table_setn(x->r->headers_out, "ETag", rtb_res_task_etag(x->r->pool, row));
    return rtb_send_json(x->r, HTTP_OK, rtb_json_data(rtb_res_task_json(x->rt.board, row)));
}

static int rest_task_lookup(rtb_rest_ctx_t *x, rtb_answer_t *a, const char ***row)
{
    *row = rtb_res_task_row(x, x->rt.board, x->rt.task);
    if (!*row) {
        if (!x->db.failed && !rtb_res_board_row(x, x->rt.board))
            return rtb_res_no_board(x, a);
        return rtb_res_no_task(x, a);
    }
    return rtb_res_check_if_match(x, a, *row);
}

static int rest_task_patch(rtb_rest_ctx_t *x, rtb_answer_t *a)
{
    apr_pool_t *p = x->r->pool;
    const char **row;
    json_t *tj;
    if (rest_task_lookup(x, a, &row) < 0)
        return -1;
    if (json_object_size(x->body) == 0) {
        rtb_answer_error(x, a, HTTP_UNPROCESSABLE_ENTITY, "empty_patch",
                         "give at least one of title, description, assignee", NULL, NULL, NULL);
        return -1;
    }
    {
        const char *args[6] = {
            rtb_body_has(x, "title") ? rtb_body_str(x, "title") : row[RTB_TC_TITLE],
            rtb_body_has(x, "description") ? rtb_body_str(x, "description") : row[RTB_TC_DESC],
            rtb_body_has(x, "assignee") ? rtb_body_str(x, "assignee") : row[RTB_TC_ASSIGNEE],
            rtb_now_iso(p),
            x->user,
            rtb_lltoa(p, x->rt.task)};
        if (rtb_db_exec(&x->db, RTB_SQL_TASK_UPDATE, 6, args, NULL) < 0)
            return -1;
    }
    row = rtb_res_task_row(x, x->rt.board, x->rt.task);
    if (!row)
        return -1;
    tj = rtb_res_task_json(x->rt.board, row);
    apr_table_setn(x->r->headers_out, "ETag", rtb_res_task_etag(p, row));
    return rtb_write_emit_resource(x, a, "task_updated", "task", tj, HTTP_OK);
}

static int rest_task_delete(rtb_rest_ctx_t *x, rtb_answer_t *a)
{
    apr_pool_t *p = x->r->pool;
    const char **row;
    if (rest_task_lookup(x, a, &row) < 0)
        return -1;
    {
        const char *del[1] = {rtb_lltoa(p, x->rt.task)};
        const char *shift[3] = {"-1", row[RTB_TC_LIST],
                                rtb_lltoa(p, apr_atoi64(row[RTB_TC_POS]) + 1)};
        if (rtb_db_exec(&x->db, RTB_SQL_TASK_DEL, 1, del, NULL) < 0 ||
            rtb_db_exec(&x->db, RTB_SQL_TASK_SHIFT, 3, shift, NULL) < 0)
            return -1;
    }
    if (!rtb_write_emit(x, x->rt.board, "task_deleted",
                        json_pack("{s:I,s:o}", "taskId", (json_int_t)x->rt.task, "listId",
                                  rtb_res_num(row[RTB_TC_LIST]))))
        return -1;
    a->status = HTTP_NO_CONTENT;
    a->body = NULL;
    return 0;
}

static int rest_task_move(rtb_rest_ctx_t *x, rtb_answer_t *a)
{
    apr_pool_t *p = x->r->pool;
    const char **row;
    long long to_list = rtb_body_int(x, "listId", 0), pos = rtb_body_int(x, "position", 0), count;
    const char *tid = rtb_lltoa(p, x->rt.task);
    const char *from_list, *from_pos;
    json_t *tj;
    if (rest_task_lookup(x, a, &row) < 0)
        return -1;
    if (!rtb_res_list_row(x, x->rt.board, to_list))
        return rest_bad_list(x, a);
    from_list = row[RTB_TC_LIST];
    from_pos = row[RTB_TC_POS];
    {
        /* take the task out of its list, close the gap, then open one at the target */
        const char *park[1] = {tid};
        const char *close_gap[3] = {"-1", from_list, rtb_lltoa(p, apr_atoi64(from_pos) + 1)};
        if (rtb_db_exec(&x->db, RTB_SQL_TASK_PARK, 1, park, NULL) < 0 ||
            rtb_db_exec(&x->db, RTB_SQL_TASK_SHIFT, 3, close_gap, NULL) < 0)
            return -1;
    }
    count = rtb_res_count(x, RTB_SQL_LIST_TASKS, rtb_lltoa(p, to_list));
    if (count < 0)
        return -1;
    /* the parked task (position -1) is not counted: MAX(position) + 1 of the others */
    if (pos > count)
        pos = count;
    {
        const char *open_gap[3] = {"1", rtb_lltoa(p, to_list), rtb_lltoa(p, pos)};
        const char *mv[5] = {rtb_lltoa(p, to_list), rtb_lltoa(p, pos), rtb_now_iso(p), x->user,
                             tid};
        if (rtb_db_exec(&x->db, RTB_SQL_TASK_SHIFT, 3, open_gap, NULL) < 0 ||
            rtb_db_exec(&x->db, RTB_SQL_TASK_MOVE, 5, mv, NULL) < 0)
            return -1;
    }
    row = rtb_res_task_row(x, x->rt.board, x->rt.task);
    if (!row)
        return -1;
    tj = rtb_res_task_json(x->rt.board, row);
    if (!rtb_write_emit(x, x->rt.board, "task_moved",
                        json_pack("{s:O,s:{s:o,s:o}}", "task", tj, "from", "listId",
                                  rtb_res_num(from_list), "position", rtb_res_num(from_pos)))) {
        json_decref(tj);
        return -1;
    }
    apr_table_setn(x->r->headers_out, "ETag", rtb_res_task_etag(p, row));
    rtb_answer_json(x, a, HTTP_OK, rtb_json_data(tj));
    return 0;
}

/* ------------------------------------------------------------------ */
/* updates                                                              */

/* GET /boards/:b/updates?since=N: one page of the board's history (rtb_replay). */
static int rest_updates(rtb_rest_ctx_t *x)
{
    long long since = rtb_query_id(x->r, "since");
    rtb_replay_t rp;
    const char *body;
    int rc;
    if (since == -2)
        return rtb_send_error(x->r, HTTP_BAD_REQUEST, "invalid_since",
                              "since must be an event id (a non-negative integer)", "since");
    if (rtb_db_acquire(&x->db, x->r) < 0)
        return rtb_send_db_unavailable(x->r);
    rc =
        rtb_replay_read(&rp, &x->db, x->r->pool, x->r->server, x->rt.board, since, RTB_REPLAY_PAGE);
    if (rc == HTTP_NOT_FOUND)
        return rtb_send_error(x->r, HTTP_NOT_FOUND, "board_not_found", "no such board", NULL);
    if (rc != OK)
        return rtb_send_db_error(x->r);
    body = rtb_replay_updates_json(x->r->pool, x->r->server, &rp);
    return rtb_send_body(x->r, HTTP_OK, body, strlen(body));
}

/*
 * GET /boards/:b/presence?offset=N: the count and a page of the users on
 * the board (rtb_presence), for clients without a WebSocket and for
 * monitoring. Authorized like the board: its <Location> covers this path.
 */
static int rest_presence(rtb_rest_ctx_t *x)
{
    request_rec *r = x->r;
    long long offset = rtb_query_id(x->r, "offset");
    const char **b;
    const char *body;
    if (offset == -2 || offset > APR_UINT32_MAX)
        return rtb_send_error(r, HTTP_BAD_REQUEST, "invalid_offset",
                              "offset must be a non-negative integer", "offset");
    if (rtb_db_acquire(&x->db, r) < 0)
        return rtb_send_db_unavailable(r);
    b = rtb_res_board_row(x, x->rt.board);
    if (x->db.failed)
        return rtb_send_db_error(r);
    if (!b)
        return rtb_send_error(r, HTTP_NOT_FOUND, "board_not_found", "no such board", NULL);
    body = rtb_presence_snapshot(r->pool, r->server, x->rt.board,
                                 offset < 0 ? 0 : (apr_uint32_t)offset);
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    return rtb_send_body(r, HTTP_OK, body, strlen(body));
}

/* ------------------------------------------------------------------ */
/* aliases                                                              */

/*
 * The course routes carry no board in their path: find the board, then ask
 * Apache to authorize the board route they stand for, so the board's
 * <Location> Require lines apply to them too.
 */
static int rest_alias(rtb_rest_ctx_t *x)
{
    request_rec *r = x->r;
    const char *uri;
    int rc;
    if (x->rt.id == RTB_R_ALIAS_TASKS) {
        const char *b;
        if (rtb_body_read(x, spec_alias_create) != OK)
            return OK;
        b = rtb_body_str(x, "boardId");
        if (!rtb_board_id_valid(b, strlen(b)))
            return rtb_send_error(r, HTTP_UNPROCESSABLE_ENTITY, "invalid_id",
                                  "boardId is not a board id", "boardId");
        apr_cpystrn(x->rt.board, b, sizeof(x->rt.board));
        json_object_del(x->body, "boardId");
        uri = apr_pstrcat(r->pool, x->cfg->base, "boards/", x->rt.board, "/tasks", NULL);
    } else {
        const char *a[1] = {rtb_lltoa(r->pool, x->rt.task)};
        const char **row;
        if (rtb_db_acquire(&x->db, r) < 0)
            return rtb_send_db_unavailable(r);
        row = rtb_res_one_row(x, RTB_SQL_TASK_BOARD, 1, a);
        if (!row)
            return x->db.failed
                       ? rtb_send_db_error(r)
                       : rtb_send_error(r, HTTP_NOT_FOUND, "task_not_found", "no such task", NULL);
        apr_cpystrn(x->rt.board, row[0], sizeof(x->rt.board));
        uri = apr_psprintf(r->pool, "%sboards/%s/tasks/%" APR_INT64_T_FMT "%s", x->cfg->base,
                           x->rt.board, (apr_int64_t)x->rt.task,
                           x->rt.id == RTB_R_ALIAS_MOVE ? "/move" : "");
    }
    rc = rtb_board_allowed(r, x->rt.board, r->method, uri);
    if (rc != OK && x->rt.id != RTB_R_ALIAS_TASKS && r->user)
        /* a task of a board one may not use is no task of theirs: the same
         * answer as a task that does not exist */
        return rtb_send_error(r, HTTP_NOT_FOUND, "task_not_found", "no such task", NULL);
    if (rc != OK)
        return rtb_send_board_refused(r, rc, x->rt.board);
    switch (x->rt.id) {
    case RTB_R_ALIAS_TASKS:
        return rtb_write_run(x, rest_task_create);
    case RTB_R_ALIAS_MOVE:
        if (rtb_body_read(x, spec_task_move) != OK)
            return OK;
        return rtb_write_run(x, rest_task_move);
    default:
        return rtb_write_run(x, rest_task_delete);
    }
}

/* ------------------------------------------------------------------ */
/* dispatch                                                             */

/* Every change: its route, method, body rules (NULL: no body) and writer. */
static const struct {
    rtb_route_id_t route;
    int method;
    const rtb_field_spec_t *spec;
    rtb_write_fn fn;
} rest_writes[] = {
    {RTB_R_BOARDS, RTB_M_POST, spec_board_create, rest_board_create},
    {RTB_R_BOARD, RTB_M_PATCH, spec_board_patch, rest_board_patch},
    {RTB_R_BOARD, RTB_M_DELETE, NULL, rest_board_delete},
    {RTB_R_LISTS, RTB_M_POST, spec_list_create, rest_list_create},
    {RTB_R_LIST, RTB_M_PATCH, spec_list_patch, rest_list_patch},
    {RTB_R_LIST, RTB_M_DELETE, NULL, rest_list_delete},
    {RTB_R_TASKS, RTB_M_POST, spec_task_create, rest_task_create},
    {RTB_R_TASK, RTB_M_PATCH, spec_task_patch, rest_task_patch},
    {RTB_R_TASK, RTB_M_DELETE, NULL, rest_task_delete},
    {RTB_R_TASK_MOVE, RTB_M_PATCH, spec_task_move, rest_task_move},
};

int rtb_rest_dispatch(request_rec *r, const rtb_route_t *rt)
{
    rtb_rest_ctx_t x;
    int m = rtb_method_bit(r->method), retry;
    size_t i;

    memset(&x, 0, sizeof(x));
    x.r = r;
    x.cfg = rtb_cfg(r->server);
    x.rt = *rt;
    x.user = r->user ? r->user : "anonymous";

    for (i = 0; i < sizeof(rest_writes) / sizeof(rest_writes[0]); i++) {
        if (rest_writes[i].route != rt->id || rest_writes[i].method != m)
            continue;
        if (rest_writes[i].spec && rtb_body_read(&x, rest_writes[i].spec) != OK)
            return OK; /* refused and answered */
        if (rt->id == RTB_R_BOARDS && rest_board_body_extra(&x) != OK)
            return OK;
        if (rt->id == RTB_R_BOARDS && rtb_limits_take_board(r, &retry) != OK) {
            apr_table_setn(r->headers_out, "Retry-After", apr_itoa(r->pool, retry));
            return rtb_send_error(
                r, HTTP_TOO_MANY_REQUESTS, "too_many_boards",
                apr_psprintf(r->pool, "at most %d new boards a minute", x.cfg->board_rate), NULL);
        }
        return rtb_write_run(&x, rest_writes[i].fn);
    }
    switch (rt->id) {
    case RTB_R_BOARDS:
        return rest_boards_list(&x);
    case RTB_R_BOARD:
        return rest_board_get(&x);
    case RTB_R_TASKS:
        return rest_tasks_list(&x);
    case RTB_R_TASK:
        return rest_task_get(&x);
    case RTB_R_UPDATES:
        return rest_updates(&x);
    case RTB_R_PRESENCE:
        return rest_presence(&x);
    case RTB_R_ALIAS_TASKS:
    case RTB_R_ALIAS_TASK:
    case RTB_R_ALIAS_MOVE:
        return rest_alias(&x);
    default:
        return DECLINED;
    }
}
