/*
 * rtb_store: prepared statements over mod_dbd, and the small helpers that
 * run them and turn their rows into arrays. Every transaction start is
 * checked: SQLite can answer busy, and an unchecked start runs in autocommit.
 */
#include "rtb_config.h"
#include "rtb_store.h"
#include "rtb_metrics.h"
#include "rtb_listen.h"

#include "http_log.h"
#include "apr_strings.h"

#include <libpq-fe.h>

APLOG_USE_MODULE(rtboard);

/* mod_dbd's optional functions, found once in post_config. */
static ap_dbd_t *(*store_dbd_acquire)(request_rec *);
static ap_dbd_t *(*store_dbd_open)(apr_pool_t *, server_rec *);
static void (*store_dbd_close)(server_rec *, ap_dbd_t *);

int rtb_store_post_config(server_rec *s)
{
    store_dbd_acquire = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire);
    store_dbd_open = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_open);
    store_dbd_close = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_close);
    if (!store_dbd_acquire || !store_dbd_open || !store_dbd_close) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                     "RTB0020: mod_dbd is not loaded; mod_rtboard needs it");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

typedef struct {
    const char *label;
    const char *sql;
} store_stmt_t;

/* A number of a macro as a string literal, to build SQL text with it. */
#define STORE_STR_(n) #n
#define STORE_STR(n) STORE_STR_(n)

#define TASK_COLS                                                                                  \
    "t.id, t.list_id, t.title, t.description, t.assignee, t.position, t.version, "                 \
    "t.created_at, t.updated_at, t.created_by, t.updated_by"

static const store_stmt_t store_stmts[] = {
    {RTB_SQL_BOARD_GET, "SELECT id, name, created_at, seq FROM boards WHERE id = %s"},
    /* the boards after a (created_at, id) cursor, in listing order */
    {RTB_SQL_BOARDS_PAGE, "SELECT id, name, created_at, seq FROM boards WHERE (created_at, id) > "
                          "(%s, %s) ORDER BY created_at, id LIMIT %d"},
    {RTB_SQL_BOARD_INS, "INSERT INTO boards (id, name, created_at, seq) VALUES (%s, %s, %s, 0)"},
    {RTB_SQL_BOARD_SEQ, "UPDATE boards SET seq = seq + 1 WHERE id = %s RETURNING seq"},
    {RTB_SQL_BOARD_RENAME, "UPDATE boards SET name = %s WHERE id = %s"},
    {RTB_SQL_BOARD_DEL, "DELETE FROM boards WHERE id = %s"},
    {RTB_SQL_LISTS_OF, "SELECT id, name, position FROM lists WHERE board_id = %s "
                       "ORDER BY position, id"},
    {RTB_SQL_LIST_GET, "SELECT id, name, position FROM lists WHERE id = %d AND board_id = %s"},
    {RTB_SQL_LIST_INS,
     "INSERT INTO lists (board_id, name, position) VALUES (%s, %s, %d) RETURNING id"},
    {RTB_SQL_LIST_NEXT_POS, "SELECT COALESCE(MAX(position) + 1, 0) FROM lists WHERE board_id = %s"},
    {RTB_SQL_LIST_SHIFT,
     "UPDATE lists SET position = position + %d WHERE board_id = %s AND position >= %d"},
    {RTB_SQL_LIST_RENAME, "UPDATE lists SET name = %s WHERE id = %d"},
    {RTB_SQL_LIST_DEL, "DELETE FROM lists WHERE id = %d"},
    {RTB_SQL_LIST_TASKS, "SELECT COALESCE(MAX(position) + 1, 0) FROM tasks WHERE list_id = %d"},
    /* positions in a list run 0..n-1, so the size is MAX + 1: an index seek, not a count */
    {RTB_SQL_LIST_COUNT,
     "SELECT (SELECT COALESCE(MAX(t.position) + 1, 0) FROM tasks t "
     "WHERE t.list_id = l.id) FROM lists l WHERE l.id = %d AND l.board_id = %s"},
    {RTB_SQL_TASKS_OF, "SELECT " TASK_COLS " FROM tasks t JOIN lists l ON l.id = t.list_id "
                       "WHERE t.board_id = %s ORDER BY l.position, l.id, t.position, t.id"},
    {RTB_SQL_TASK_GET, "SELECT " TASK_COLS " FROM tasks t WHERE t.id = %d AND t.board_id = %s"},
    {RTB_SQL_TASK_BOARD, "SELECT board_id FROM tasks WHERE id = %d"},
    {RTB_SQL_TASK_INS,
     "INSERT INTO tasks (board_id, list_id, title, description, assignee, position, version, "
     "created_at, updated_at, created_by, updated_by) "
     "VALUES (%s, %d, %s, %s, %s, %d, 1, %s, %s, %s, %s) RETURNING id, list_id, title, "
     "description, assignee, position, version, created_at, updated_at, created_by, updated_by"},
    {RTB_SQL_TASK_SHIFT,
     "UPDATE tasks SET position = position + %d WHERE list_id = %d AND position >= %d"},
    {RTB_SQL_TASK_UPDATE,
     "UPDATE tasks SET title = %s, description = %s, assignee = %s, version = version + 1, "
     "updated_at = %s, updated_by = %s WHERE id = %d"},
    {RTB_SQL_TASK_MOVE,
     "UPDATE tasks SET list_id = %d, position = %d, version = version + 1, updated_at = %s, "
     "updated_by = %s WHERE id = %d"},
    {RTB_SQL_TASK_DEL, "DELETE FROM tasks WHERE id = %d"},
    {RTB_SQL_TASK_PARK, "UPDATE tasks SET position = -1 WHERE id = %d"},
    {RTB_SQL_TASK_DEL_LIST, "DELETE FROM tasks WHERE list_id = %d"},
    {RTB_SQL_EVENT_INS, "INSERT INTO events (board_id, id, type, at, actor, body) "
                        "VALUES (%s, %d, %s, %s, %s, %s)"},
    {RTB_SQL_EVENTS_SINCE, "SELECT id, body FROM events WHERE board_id = %s AND id > %d "
                           "ORDER BY id LIMIT %d"},
    {RTB_SQL_EVENT_PRUNE, "DELETE FROM events WHERE board_id = %s AND id <= %d"},
    {RTB_SQL_IDEM_GET, "SELECT fingerprint, status, location, body FROM idempotency "
                       "WHERE user_id = %s AND idem_key = %s"},
    {RTB_SQL_IDEM_INS, "INSERT INTO idempotency (user_id, idem_key, fingerprint, status, "
                       "location, body, created_at) VALUES (%s, %s, %s, %d, %s, %s, %s)"},
    /* PostgreSQL: the board's next id (its row stays locked to commit, so ids
     * follow commit order on every node), the event row built around that id
     * from the rest of its JSON, and its notification, in one round trip. The
     * notification, delivered at commit in commit order to every node's LISTEN
     * connection, carries the event unless it is too large for NOTIFY. */
    {RTB_SQL_EVENT_EMIT,
     "WITH s AS (UPDATE boards SET seq = seq + 1 WHERE id = %s RETURNING id, seq), "
     "e AS (INSERT INTO events (board_id, id, type, at, actor, body) "
     "SELECT s.id, s.seq, %s, %s, %s, '" RTB_EVENT_ID_PREFIX
     "' || CAST(s.seq AS TEXT) || ',' || %s "
     "FROM s RETURNING board_id, id, body) "
     "SELECT e.id, e.body, pg_notify('rtboard', CAST(e.id AS TEXT) || ' ' || e.board_id || "
     "CASE WHEN octet_length(e.body) + octet_length(e.board_id) + 24 <= " STORE_STR(
         RTB_LISTEN_MAX_PAYLOAD) " THEN ' ' || e.body ELSE '' END) FROM e"},
    /* a task at the end of a list of the board (its size is MAX + 1): no row
     * when the list is not the board's */
    {RTB_SQL_TASK_APPEND,
     "INSERT INTO tasks (board_id, list_id, title, description, assignee, position, version, "
     "created_at, updated_at, created_by, updated_by) "
     "SELECT l.board_id, l.id, %s, %s, %s, (SELECT COALESCE(MAX(t.position) + 1, 0) FROM tasks t "
     "WHERE t.list_id = l.id), 1, %s, %s, %s, %s FROM lists l WHERE l.id = %d AND l.board_id = %s "
     "RETURNING id, list_id, title, description, assignee, position, version, created_at, "
     "updated_at, created_by, updated_by"},
};

/*
 * Statements are prepared on each mod_dbd connection at first use, after
 * mod_dbd has run DBDInitSQL on it: with SQLite, a PRAGMA such as
 * foreign_keys run after a statement was prepared expires that statement.
 * The prepared set lives in the connection's own pool.
 */
#define STORE_KEY "rtb_store_stmts"

int rtb_db_acquire(rtb_db_t *db, request_rec *r)
{
    memset(db, 0, sizeof(*db));
    db->r = r;
    db->pool = r->pool;
    db->dbd = store_dbd_acquire ? store_dbd_acquire(r) : NULL;
    if (!db->dbd) {
        rtb_metrics_count_db_error();
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "RTB0001: no database connection (is mod_dbd configured?)");
        return -1;
    }
    return 0;
}

/*
 * Integer parameters are bound as text by apr_dbd; SQLite does not convert a
 * text parameter compared with a rowid, so every %d is cast explicitly.
 */
static const char *store_sql(apr_pool_t *p, const char *sql)
{
    const char *d;
    char *out = "";
    while ((d = strstr(sql, "%d")) != NULL) {
        out = apr_pstrcat(p, out, apr_pstrndup(p, sql, (apr_size_t)(d - sql)), "CAST(%d AS BIGINT)",
                          NULL);
        sql = d + 2;
    }
    return apr_pstrcat(p, out, sql, NULL);
}

/*
 * Once per connection, before its first statement. SQLite: read the file
 * through a memory map. Every commit by one connection makes the others
 * re-read the pages it changed; through the map that is a memory access, not
 * a pread per page, which matters with dozens of connections per server.
 * A row-returning PRAGMA cannot go in DBDInitSQL, so it is here.
 */
static void store_connection_setup(rtb_db_t *db)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    if (strcmp(apr_dbd_name(db->dbd->driver), "sqlite3") != 0)
        return;
    if (apr_dbd_select(db->dbd->driver, db->dbd->pool, db->dbd->handle, &res,
                       "PRAGMA mmap_size = 1073741824", 0) == 0) {
        while (apr_dbd_get_row(db->dbd->driver, db->dbd->pool, res, &row, -1) == 0)
            ;
    }
}

int rtb_db_is_pgsql(const rtb_db_t *db)
{
    return db->dbd && strcmp(apr_dbd_name(db->dbd->driver), "pgsql") == 0;
}

/*
 * PostgreSQL: the session's backend pid. mod_dbd's check of a pooled
 * connection resets a broken one in place (PQreset: same handle, same pool,
 * a new session without our prepared statements), so the prepared set is
 * keyed by the session too.
 */
static int store_session(rtb_db_t *db)
{
    PGconn *pg;
    if (!rtb_db_is_pgsql(db))
        return 0;
    pg = apr_dbd_native_handle(db->dbd->driver, db->dbd->handle);
    return pg ? PQbackendPID(pg) : 0;
}

int rtb_db_tx_failed(const rtb_db_t *db)
{
    PGconn *pg;
    if (!rtb_db_is_pgsql(db))
        return 0;
    pg = apr_dbd_native_handle(db->dbd->driver, db->dbd->handle);
    return pg && PQtransactionStatus(pg) == PQTRANS_INERROR;
}

static apr_dbd_prepared_t *store_stmt(rtb_db_t *db, const char *label)
{
    apr_hash_t *h = NULL;
    apr_dbd_prepared_t *st;
    size_t i;
    int rv, session = store_session(db);

    apr_pool_userdata_get((void **)&h, STORE_KEY, db->dbd->pool);
    if (h && apr_hash_get(h, "", 0) != (void *)(apr_uintptr_t)(unsigned)session) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, db->r,
                      "RTB0200: the database session was reset; preparing statements again");
        h = NULL;
    }
    if (!h) {
        h = apr_hash_make(db->dbd->pool);
        apr_hash_set(h, "", 0, (void *)(apr_uintptr_t)(unsigned)session);
        apr_pool_userdata_set(h, STORE_KEY, NULL, db->dbd->pool);
        store_connection_setup(db);
    }
    st = apr_hash_get(h, label, APR_HASH_KEY_STRING);
    if (st)
        return st;
    for (i = 0; i < sizeof(store_stmts) / sizeof(store_stmts[0]); i++) {
        if (strcmp(store_stmts[i].label, label) != 0)
            continue;
        st = NULL;
        rv = apr_dbd_prepare(db->dbd->driver, db->dbd->pool, db->dbd->handle,
                             store_sql(db->dbd->pool, store_stmts[i].sql), label, &st);
        if (rv || !st) {
            rtb_metrics_count_db_error();
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, db->r, "RTB0002: cannot prepare %s: %s", label,
                          apr_dbd_error(db->dbd->driver, db->dbd->handle, rv));
            return NULL;
        }
        apr_hash_set(h, label, APR_HASH_KEY_STRING, st);
        return st;
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, db->r, "RTB0006: unknown statement %s", label);
    return NULL;
}

/* 1 when the statement `label` writes: its SQL is not a plain SELECT. */
static int store_writes(const char *label)
{
    size_t i;
    for (i = 0; i < sizeof(store_stmts) / sizeof(store_stmts[0]); i++)
        if (strcmp(store_stmts[i].label, label) == 0)
            return strncmp(store_stmts[i].sql, "SELECT", 6) != 0;
    return 1;
}

static void store_fail(rtb_db_t *db, const char *label, int rv)
{
    db->failed = 1;
    db->errmsg = apr_dbd_error(db->dbd->driver, db->dbd->handle, rv);
    rtb_metrics_count_db_error();
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, db->r, "RTB0003: statement %s failed (%d): %s", label,
                  rv, db->errmsg ? db->errmsg : "?");
}

apr_array_header_t *rtb_db_select(rtb_db_t *db, const char *label, int nargs, const char **args,
                                  int *ncols)
{
    apr_dbd_prepared_t *st = store_stmt(db, label);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    apr_array_header_t *rows;
    int rv, n, i, pg = rtb_db_is_pgsql(db);

    if (!st) {
        db->failed = 1; /* could not even prepare it: the database is broken */
        return NULL;
    }
    db->writes += store_writes(label);
    if (APLOGrtrace2(db->r)) {
        for (i = 0; i < nargs; i++)
            ap_log_rerror(APLOG_MARK, APLOG_TRACE2, 0, db->r, "RTB0007: %s arg %d = %s", label, i,
                          args[i] ? args[i] : "NULL");
    }
    /* pgsql: a random-access result, whose column count is known before the first row */
    rv = apr_dbd_pselect(db->dbd->driver, db->pool, db->dbd->handle, &res, st, pg, nargs, args);
    if (rv) {
        store_fail(db, label, rv);
        return NULL;
    }
    n = apr_dbd_num_cols(db->dbd->driver, res);
    if (ncols)
        *ncols = n;
    rows = apr_array_make(db->pool, 8, sizeof(const char **));
    while ((rv = apr_dbd_get_row(db->dbd->driver, db->pool, res, &row, -1)) == 0) {
        const char **vals = apr_palloc(db->pool, sizeof(char *) * (n ? n : 1));
        for (i = 0; i < n; i++) {
            const char *v = apr_dbd_get_entry(db->dbd->driver, row, i);
            char *sv = NULL;
            /* pgsql's entries are "" for SQL NULL: ask its datum reader, which tells */
            if (pg &&
                apr_dbd_datum_get(db->dbd->driver, row, i, APR_DBD_TYPE_STRING, &sv) == APR_ENOENT)
                v = NULL;
            vals[i] = v ? apr_pstrdup(db->pool, v) : NULL;
        }
        APR_ARRAY_PUSH(rows, const char **) = vals;
    }
    if (rv != -1) {
        store_fail(db, label, rv);
        return NULL;
    }
    return rows;
}

int rtb_db_exec(rtb_db_t *db, const char *label, int nargs, const char **args, int *nrows)
{
    apr_dbd_prepared_t *st = store_stmt(db, label);
    int n = 0, rv;
    if (!st) {
        db->failed = 1;
        return -1;
    }
    db->writes++;
    rv = apr_dbd_pquery(db->dbd->driver, db->pool, db->dbd->handle, &n, st, nargs, args);
    if (rv) {
        store_fail(db, label, rv);
        return -1;
    }
    if (nrows)
        *nrows = n;
    return 0;
}

int rtb_db_read_begin(rtb_db_t *db)
{
    int n = 0, rv;
    const char *sql = strcmp(apr_dbd_name(db->dbd->driver), "pgsql") == 0
                          ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                          : "BEGIN";
    rv = apr_dbd_query(db->dbd->driver, db->dbd->handle, &n, sql);
    if (rv) {
        db->errmsg = apr_dbd_error(db->dbd->driver, db->dbd->handle, rv);
        rtb_metrics_count_db_error();
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, db->r, "RTB0008: read transaction failed: %s",
                      db->errmsg ? db->errmsg : "?");
        return -1;
    }
    return 0;
}

void rtb_db_read_end(rtb_db_t *db)
{
    int n = 0;
    apr_dbd_query(db->dbd->driver, db->dbd->handle, &n, "COMMIT");
}

int rtb_db_open(rtb_db_t *db, request_rec *r)
{
    memset(db, 0, sizeof(*db));
    db->r = r;
    db->pool = r->pool;
    db->dbd = store_dbd_open ? store_dbd_open(r->pool, r->server) : NULL;
    if (!db->dbd) {
        rtb_metrics_count_db_error();
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "RTB0009: no database connection");
        return -1;
    }
    return 0;
}

void rtb_db_close(rtb_db_t *db)
{
    if (db->dbd && store_dbd_close)
        store_dbd_close(db->r->server, db->dbd);
    db->dbd = NULL;
}

int rtb_db_query(rtb_db_t *db, const char *sql)
{
    int n = 0, rv = apr_dbd_query(db->dbd->driver, db->dbd->handle, &n, sql);
    if (rv) {
        db->failed = 1;
        db->errmsg = apr_dbd_error(db->dbd->driver, db->dbd->handle, rv);
        rtb_metrics_count_db_error();
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, db->r, "RTB0023: %s failed: %s", sql,
                      db->errmsg ? db->errmsg : "?");
        return -1;
    }
    return 0;
}

int rtb_db_ping(rtb_db_t *db)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int rv = apr_dbd_select(db->dbd->driver, db->pool, db->dbd->handle, &res, "SELECT 1", 0);
    if (rv) {
        db->errmsg = apr_dbd_error(db->dbd->driver, db->dbd->handle, rv);
        return -1;
    }
    while (apr_dbd_get_row(db->dbd->driver, db->pool, res, &row, -1) == 0)
        ;
    return 0;
}

int rtb_db_write_begin(rtb_db_t *db)
{
    /* SQLite: take the write lock now, not at the first write (no upgrade deadlock) */
    const char *sql =
        strcmp(apr_dbd_name(db->dbd->driver), "sqlite3") == 0 ? "BEGIN IMMEDIATE" : "BEGIN";
    return rtb_db_query(db, sql);
}
