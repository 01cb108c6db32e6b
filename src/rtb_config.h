/*
 * rtb_config: the module's configuration record and the shared declarations
 * of its httpd-side files (glue, store, REST, bus, engine).
 */
#ifndef RTB_CONFIG_H
#define RTB_CONFIG_H

#include "httpd.h"
#include "http_config.h"
#include "apr_dbd.h"
#include "mod_dbd.h"
#include "apr_global_mutex.h"

#include <jansson.h>

extern module AP_MODULE_DECLARE_DATA rtboard_module;

/* Next free log tag: RTB0060. Every ap_log_* call site carries its own tag. */

typedef struct {
    const char *base;            /* RTBoardBase: where the API is mounted ("/") */
    apr_off_t max_body;          /* RTBoardMaxBody */
    int history;                 /* RTBoardHistory: events kept per board, 0 = all */
    int poll_max_timeout;        /* RTBoardPollMaxTimeout, seconds */
    int heartbeat;               /* RTBoardHeartbeat, seconds (SSE comment) */
    int retry_ms;                /* RTBoardRetry: SSE retry: field */
    apr_size_t ring_bytes;       /* RTBoardRingSize */
    int ring_slots;              /* RTBoardRingSlots */
    int ws_ping;                 /* RTBoardWSPing, seconds */
    apr_size_t out_cap;          /* RTBoardOutputCap: bytes queued per connection */
    apr_size_t ws_max_message;   /* RTBoardWSMaxMessage */
    int idle_timeout;            /* RTBoardIdleTimeout, seconds without a pong (WS) */
    apr_array_header_t *origins; /* RTBoardAllowOrigin, empty = same origin */
    const char *name_var;        /* RTBoardUserNameVar */
    int typing_ttl;              /* seconds a typing indicator lives */
    int cursor_rate;             /* cursor messages per second per connection */
    int max_streams;             /* RTBoardMaxStreams per child */
    int set_flags;
} rtb_cfg_t;

rtb_cfg_t *rtb_cfg(server_rec *s);

/* Optional functions of mod_dbd, fetched once in post_config. */
extern ap_dbd_t *(*rtb_dbd_acquire)(request_rec *);
extern ap_dbd_t *(*rtb_dbd_open)(apr_pool_t *, server_rec *);
extern void (*rtb_dbd_close)(server_rec *, ap_dbd_t *);

/* ---- store (rtb_store.c) ---- */

/* One database session of a request or a worker: the handle and a pool. */
typedef struct {
    request_rec *r;
    apr_pool_t *pool;
    ap_dbd_t *dbd;
    int failed;          /* a statement failed inside the transaction */
    const char *errmsg;  /* driver message of the last failure */
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
apr_array_header_t *rtb_db_select(rtb_db_t *db, const char *label, int nargs,
                                  const char **args, int *ncols);
int rtb_db_exec(rtb_db_t *db, const char *label, int nargs, const char **args, int *nrows);

/*
 * Plain SQL on the connection (transaction control, savepoints): 0, or -1
 * with db->failed set and the error logged.
 */
int rtb_db_query(rtb_db_t *db, const char *sql);

/* Starts a write transaction (SQLite: BEGIN IMMEDIATE); checked: -1 when busy. */
int rtb_db_write_begin(rtb_db_t *db);


/*
 * A read-only transaction, so several SELECTs see one snapshot (SQLite:
 * deferred BEGIN, which under WAL blocks no writer; PostgreSQL: REPEATABLE
 * READ). Always pair begin with end.
 */
int rtb_db_read_begin(rtb_db_t *db);
void rtb_db_read_end(rtb_db_t *db);

/* ---- bus (rtb_bus.c) ---- */

/* Serialises writers of this server (node): id order == commit order == publish order. */
apr_status_t rtb_write_lock(server_rec *s);
void rtb_write_unlock(server_rec *s);

/* Appends a committed event to the shared ring and wakes every child. */
void rtb_bus_publish(server_rec *s, const char *board, apr_uint64_t id, int kind,
                     const char *json, apr_size_t len);

/* ---- REST (rtb_rest.c) ---- */
int rtb_rest_handle(request_rec *r);

/* Current time as ISO-8601 UTC with milliseconds. */
const char *rtb_now_iso(apr_pool_t *p);

#endif
