/*
 * rtb_store: the SQL of the module, as labels of prepared statements. The
 * same text serves SQLite and PostgreSQL (apr_dbd turns %s/%d into each
 * driver's placeholders).
 */
#ifndef RTB_STORE_H
#define RTB_STORE_H

#include "httpd.h"
#include "apr_dbd.h"
#include "mod_dbd.h"

#define RTB_SQL_BOARD_GET "rtb_board_get"
#define RTB_SQL_BOARDS_PAGE "rtb_boards_page"
#define RTB_SQL_BOARD_INS "rtb_board_ins"
#define RTB_SQL_BOARD_SEQ "rtb_board_seq"
#define RTB_SQL_BOARD_RENAME "rtb_board_rename"
#define RTB_SQL_BOARD_DEL "rtb_board_del"
#define RTB_SQL_LISTS_OF "rtb_lists_of"
#define RTB_SQL_LIST_GET "rtb_list_get"
#define RTB_SQL_LIST_INS "rtb_list_ins"
#define RTB_SQL_LIST_NEXT_POS "rtb_list_next_pos"
#define RTB_SQL_LIST_SHIFT "rtb_list_shift"
#define RTB_SQL_LIST_RENAME "rtb_list_rename"
#define RTB_SQL_LIST_DEL "rtb_list_del"
#define RTB_SQL_LIST_TASKS "rtb_list_tasks"
#define RTB_SQL_LIST_COUNT "rtb_list_count"
#define RTB_SQL_TASKS_OF "rtb_tasks_of"
#define RTB_SQL_TASK_GET "rtb_task_get"
#define RTB_SQL_TASK_BOARD "rtb_task_board"
#define RTB_SQL_TASK_INS "rtb_task_ins"
#define RTB_SQL_TASK_SHIFT "rtb_task_shift"
#define RTB_SQL_TASK_UPDATE "rtb_task_update"
#define RTB_SQL_TASK_MOVE "rtb_task_move"
#define RTB_SQL_TASK_DEL "rtb_task_del"
#define RTB_SQL_TASK_PARK "rtb_task_park"
#define RTB_SQL_TASK_DEL_LIST "rtb_task_del_list"
#define RTB_SQL_EVENT_INS "rtb_event_ins"
#define RTB_SQL_EVENTS_SINCE "rtb_events_since"
#define RTB_SQL_EVENT_PRUNE "rtb_event_prune"
#define RTB_SQL_IDEM_GET "rtb_idem_get"
#define RTB_SQL_IDEM_INS "rtb_idem_ins"
#define RTB_SQL_EVENT_EMIT "rtb_event_emit"   /* PostgreSQL: BOARD_SEQ + EVENT_INS + NOTIFY */
#define RTB_SQL_TASK_APPEND "rtb_task_append" /* LIST_COUNT + TASK_INS, at the end */

/* How an event's JSON begins: its id comes first, the rest is built apart. */
#define RTB_EVENT_ID_PREFIX "{\"id\":"

/* Column order of RTB_SQL_TASK_GET / RTB_SQL_TASKS_OF rows. */
enum {
    RTB_TC_ID,
    RTB_TC_LIST,
    RTB_TC_TITLE,
    RTB_TC_DESC,
    RTB_TC_ASSIGNEE,
    RTB_TC_POS,
    RTB_TC_VERSION,
    RTB_TC_CREATED,
    RTB_TC_UPDATED,
    RTB_TC_CREATED_BY,
    RTB_TC_UPDATED_BY,
    RTB_TC__N
};

/* Column order of RTB_SQL_BOARD_GET / RTB_SQL_BOARDS_PAGE rows. */
enum { RTB_BC_ID, RTB_BC_NAME, RTB_BC_CREATED, RTB_BC_SEQ, RTB_BC__N };

/* One database session of a request or a worker: the handle and a pool. */
typedef struct {
    request_rec *r;
    apr_pool_t *pool;
    ap_dbd_t *dbd;
    int failed;         /* a statement failed inside the transaction */
    int writes;         /* statements run that write (INSERT, UPDATE, DELETE) */
    const char *errmsg; /* driver message of the last failure */
} rtb_db_t;

/* Gets the request's connection from mod_dbd; -1 (and logs) when none. */
int rtb_db_acquire(rtb_db_t *db, request_rec *r);

/*
 * A connection held only until rtb_db_close: for streams, whose request
 * lives as long as the stream and must not keep a connection that long.
 */
int rtb_db_open(rtb_db_t *db, request_rec *r);
void rtb_db_close(rtb_db_t *db);

/*
 * Runs the prepared statement `label` with `nargs` string arguments (NULL
 * means SQL NULL). Select: returns the rows as an array of `const char **`
 * (each of ncols entries) in *rows, or NULL on failure. Exec: returns 0 and
 * the affected row count in *nrows, or -1.
 */
apr_array_header_t *rtb_db_select(rtb_db_t *db, const char *label, int nargs, const char **args,
                                  int *ncols);
int rtb_db_exec(rtb_db_t *db, const char *label, int nargs, const char **args, int *nrows);

/*
 * Plain SQL on the connection (transaction control, savepoints): 0, or -1
 * with db->failed set and the error logged.
 */
int rtb_db_query(rtb_db_t *db, const char *sql);

/*
 * The cheapest query there is ("SELECT 1"), to tell whether the database
 * answers: 0, or -1 with db->errmsg set. Logs nothing above debug (a health
 * check asks every second).
 */
int rtb_db_ping(rtb_db_t *db);

/* 1 when the connection is PostgreSQL's (DBDriver pgsql). */
int rtb_db_is_pgsql(const rtb_db_t *db);

/*
 * 1 when the session's transaction has failed and can only roll back
 * (PostgreSQL; read from the connection, no round trip). 0 otherwise.
 */
int rtb_db_tx_failed(const rtb_db_t *db);

/* Starts a write transaction (SQLite: BEGIN IMMEDIATE); checked: -1 when busy. */
int rtb_db_write_begin(rtb_db_t *db);

/*
 * A read-only transaction, so several SELECTs see one snapshot (SQLite:
 * deferred BEGIN, which under WAL blocks no writer; PostgreSQL: REPEATABLE
 * READ). Always pair begin with end.
 */
int rtb_db_read_begin(rtb_db_t *db);
void rtb_db_read_end(rtb_db_t *db);

/*
 * Finds mod_dbd's optional functions (post_config). Returns OK, or an
 * HTTP 500 (logged) when mod_dbd is not loaded.
 */
int rtb_store_post_config(server_rec *s);

#endif
