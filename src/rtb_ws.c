/*
 * rtb_ws: WebSocket collaboration on the connection engine.
 *
 * The upgrade goes through Apache like any request, so authentication and
 * the board's Require lines apply to it. After the 101 the connection is
 * handed to the engine; frames are parsed by the pure codec (rtb_ws_codec)
 * and answered through c->output_filters, so mod_ssl works. Joins of other
 * boards are authorized by a subrequest to the board's URI on a worker
 * thread, never on the loop. Presence lives in shared memory as per-child
 * leases; typing and cursors are ephemeral ring records.
 */
#include "rtb_ws.h"
#include "rtb_ws_codec.h"
#include "rtb_rest.h"
#include "rtb_store.h"
#include "rtb_ring.h"

#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_strings.h"
#include "apr_sha1.h"
#include "apr_base64.h"
#include "apr_lib.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

APLOG_USE_MODULE(rtboard);

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_MAX_JOINS 16
#define WS_READ_CHUNK 8192
#define WS_MSG_RATE 50     /* messages per second a client may send on average */
#define WS_MSG_BURST 200   /* ... and in a burst */
#define WS_CLOSE_WAIT apr_time_from_sec(2)

/*
 * What a join's subrequest needs of the upgrade request. The request itself
 * is logged and freed once the socket is on the loop, so this copy is all
 * that is kept: one malloc'd block of the exact size (strings, then the
 * request headers and environment as "name\0value\0" pairs, each list
 * ending with an empty name), so an idle socket adds no page to its
 * connection's pool.
 */
typedef struct {
    server_rec *server;
    apr_sockaddr_t *useragent_addr;
    int proto_num;
    apr_time_t request_time;
    char data[]; /* the_request, protocol, hostname, user, auth_type,
                    ticket_user, useragent_ip ("" for none), headers, env */
} ws_origin_t;

typedef struct {
    rtb_ws_parser_t parser;
    ws_origin_t *origin;
    char *msg; /* the text message being assembled (malloc) */
    apr_size_t mlen;
    int mop;
    apr_time_t next_ping, ping_sent_at;
    int awaiting_pong;
    double tokens; /* rate limit */
    apr_time_t tokens_at;
    int njoined;
    char typing_board[RTB_BOARD_ID_MAX + 1];
    long long typing_task;
    apr_time_t typing_until, typing_sent;
    int cursor_pending;
    char cursor_board[RTB_BOARD_ID_MAX + 1];
    double cx, cy;
    apr_time_t cursor_sent;
    int close_code; /* what to send on close */
    const char *close_reason;
} ws_state_t;

/* ------------------------------------------------------------------ */
/* output                                                               */

static void ws_frame(rtb_conn_t *cn, int opcode, const void *data, apr_size_t len)
{
    char small[1024];
    char *buf = small;
    apr_size_t hl = rtb_ws_frame_header((unsigned char *)small, opcode, 1, len);
    if (!hl)
        return;
    /* one write per frame: a frame is queued whole or not at all */
    if (hl + len > sizeof(small)) {
        buf = malloc(hl + len);
        if (!buf)
            return;
        memcpy(buf, small, hl);
    }
    if (len)
        memcpy(buf + hl, data, len);
    rtb_conn_write(cn, buf, hl + len);
    if (buf != small)
        free(buf);
}

static void ws_text(rtb_conn_t *cn, const char *s)
{
    ws_frame(cn, RTB_WS_OP_TEXT, s, strlen(s));
}

static void ws_json(rtb_conn_t *cn, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (s) {
        ws_text(cn, s);
        free(s);
    }
}

static void ws_error(rtb_conn_t *cn, const char *code, const char *msg)
{
    ws_json(cn, json_pack("{s:s,s:s,s:s}", "type", "error", "code", code, "message", msg));
}

/* Ends the socket with a close frame carrying `code`. */
static void ws_fail(rtb_conn_t *cn, int code, const char *reason)
{
    ws_state_t *st = cn->tdata;
    if (cn->closing)
        return;
    st->close_code = code;
    st->close_reason = reason;
    rtb_conn_close(cn, RTB_CLOSE_PROTOCOL);
}

/* ------------------------------------------------------------------ */
/* presence: shared leases, one per open socket and board               */

static apr_uint32_t ws_hash(const char *s)
{
    apr_uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static int ws_pid_alive(apr_uint32_t pid)
{
    return !(kill((pid_t)pid, 0) < 0 && errno == ESRCH);
}

/* Counts live leases of `user` on `board` (ring lock held). */
static int ws_presence_count(rtb_presence_t *t, apr_uint32_t bh, const char *board,
                             const char *user)
{
    int i, n = 0;
    for (i = 0; i < RTB_PRESENCE_MAX; i++) {
        if (t[i].pid && t[i].bhash == bh && !strcmp(t[i].board, board) &&
            !strcmp(t[i].user, user))
            n++;
    }
    return n;
}

static void ws_publish_presence(server_rec *s, const char *type, const char *board,
                                const char *user, const char *name)
{
    json_t *j = json_pack("{s:s,s:s,s:s,s:s}", "type", type, "boardId", board, "userId", user,
                          "name", name);
    char *js = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (js) {
        rtb_engine_publish_ephemeral(s, board, js);
        free(js);
    }
}

/* Takes a lease; announces the user when it is their first socket on the board. */
static void ws_presence_join(rtb_conn_t *cn, const char *board)
{
    rtb_presence_t *t = rtb_bus_presence();
    apr_uint32_t bh = ws_hash(board), me = (apr_uint32_t)getpid();
    int i, first = 0, placed = 0;
    if (!t || rtb_ring_lock() != APR_SUCCESS)
        return;
    first = ws_presence_count(t, bh, board, cn->user) == 0;
    for (i = 0; i < RTB_PRESENCE_MAX && !placed; i++) {
        if (!t[i].pid) {
            t[i].pid = me;
            t[i].connid = cn->id;
            t[i].bhash = bh;
            apr_cpystrn(t[i].board, board, sizeof(t[i].board));
            apr_cpystrn(t[i].user, cn->user, sizeof(t[i].user));
            apr_cpystrn(t[i].name, cn->name, sizeof(t[i].name));
            placed = 1;
        }
    }
    rtb_ring_unlock();
    if (first && placed)
        ws_publish_presence(cn->c->base_server, "user_joined", board, cn->user, cn->name);
}

/* Gives the lease back; announces the user's leaving with their last socket. */
static void ws_presence_leave(rtb_conn_t *cn, const char *board)
{
    rtb_presence_t *t = rtb_bus_presence();
    apr_uint32_t bh = ws_hash(board), me = (apr_uint32_t)getpid();
    int i, last = 0, found = 0;
    if (!t || rtb_ring_lock() != APR_SUCCESS)
        return;
    for (i = 0; i < RTB_PRESENCE_MAX; i++) {
        if (t[i].pid == me && t[i].connid == cn->id && t[i].bhash == bh &&
            !strcmp(t[i].board, board)) {
            t[i].pid = 0;
            found = 1;
            break;
        }
    }
    if (found)
        last = ws_presence_count(t, bh, board, cn->user) == 0;
    rtb_ring_unlock();
    if (last)
        ws_publish_presence(cn->c->base_server, "user_left", board, cn->user, cn->name);
}

/* Records on this socket's lease what it is typing on, for the reaper. */
static void ws_presence_set_typing(rtb_conn_t *cn, const char *board, apr_int64_t task)
{
    rtb_presence_t *t = rtb_bus_presence();
    apr_uint32_t bh = ws_hash(board), me = (apr_uint32_t)getpid();
    int i;
    if (!t || rtb_ring_lock() != APR_SUCCESS)
        return;
    for (i = 0; i < RTB_PRESENCE_MAX; i++) {
        if (t[i].pid == me && t[i].connid == cn->id && t[i].bhash == bh &&
            !strcmp(t[i].board, board))
            t[i].typing_task = task;
    }
    rtb_ring_unlock();
}

/* The users on a board, each once. */
static json_t *ws_presence_list(const char *board)
{
    rtb_presence_t *t = rtb_bus_presence();
    apr_uint32_t bh = ws_hash(board);
    json_t *users = json_array(), *seen = json_object();
    int i;
    if (!t || rtb_ring_lock() != APR_SUCCESS) {
        json_decref(seen);
        return users;
    }
    for (i = 0; i < RTB_PRESENCE_MAX; i++) {
        if (t[i].pid && t[i].bhash == bh && !strcmp(t[i].board, board) &&
            !json_object_get(seen, t[i].user)) {
            json_object_set_new(seen, t[i].user, json_true());
            json_array_append_new(users, json_pack("{s:s,s:s}", "userId", t[i].user, "name",
                                                   t[i].name));
        }
    }
    rtb_ring_unlock();
    json_decref(seen);
    return users;
}

/*
 * Leases of children that died (kill -9, crash) are reaped by whichever child
 * looks first; the user_left goes out once, from under the lock.
 */
static void ws_presence_reap(server_rec *s)
{
    rtb_presence_t *t = rtb_bus_presence();
    struct {
        char board[65], user[RTB_USER_MAX + 1], name[RTB_USER_MAX + 1];
        apr_int64_t typing_task;
        int left;
    } gone[32];
    int i, n = 0, k;
    if (!t || rtb_ring_lock() != APR_SUCCESS)
        return;
    for (i = 0; i < RTB_PRESENCE_MAX && n < 32; i++) {
        if (t[i].pid && !ws_pid_alive(t[i].pid)) {
            apr_uint32_t bh = t[i].bhash;
            int left;
            t[i].pid = 0;
            left = ws_presence_count(t, bh, t[i].board, t[i].user) == 0;
            if (left || t[i].typing_task) {
                memcpy(gone[n].board, t[i].board, sizeof(gone[n].board));
                memcpy(gone[n].user, t[i].user, sizeof(gone[n].user));
                memcpy(gone[n].name, t[i].name, sizeof(gone[n].name));
                gone[n].typing_task = t[i].typing_task;
                gone[n].left = left;
                n++;
            }
        }
    }
    rtb_ring_unlock();
    for (k = 0; k < n; k++) {
        if (gone[k].typing_task) {
            /* the dead socket's typing indicator ends with it */
            json_t *j = json_pack("{s:s,s:s,s:I,s:s,s:s}", "type", "user_stopped_typing",
                                  "boardId", gone[k].board, "taskId",
                                  (json_int_t)gone[k].typing_task, "userId", gone[k].user,
                                  "name", gone[k].name);
            char *js = json_dumps(j, JSON_COMPACT);
            json_decref(j);
            if (js) {
                rtb_engine_publish_ephemeral(s, gone[k].board, js);
                free(js);
            }
        }
        if (gone[k].left)
            ws_publish_presence(s, "user_left", gone[k].board, gone[k].user, gone[k].name);
    }
}

/* ------------------------------------------------------------------ */
/* tickets                                                              */

static const char *ws_ticket_issue(request_rec *r, const char *board)
{
    rtb_ticket_t *t = rtb_bus_tickets();
    unsigned char raw[16];
    char *tok = apr_palloc(r->pool, 33);
    apr_time_t now = apr_time_now();
    int i, slot = -1;
    if (!t || apr_generate_random_bytes(raw, sizeof(raw)) != APR_SUCCESS)
        return NULL;
    for (i = 0; i < 16; i++)
        apr_snprintf(tok + 2 * i, 3, "%02x", raw[i]);
    if (rtb_ring_lock() != APR_SUCCESS)
        return NULL;
    for (i = 0; i < RTB_TICKETS_MAX; i++) {
        if (!t[i].token[0] || t[i].expires < now) {
            slot = i;
            break;
        }
    }
    if (slot >= 0) {
        apr_cpystrn(t[slot].token, tok, sizeof(t[slot].token));
        apr_cpystrn(t[slot].user, r->user ? r->user : "anonymous", sizeof(t[slot].user));
        apr_cpystrn(t[slot].board, board, sizeof(t[slot].board));
        t[slot].expires = now + apr_time_from_sec(30);
    }
    rtb_ring_unlock();
    return slot >= 0 ? tok : NULL;
}

/* Redeems a ticket once: the user it was issued to, or NULL. */
static const char *ws_ticket_redeem(request_rec *r, const char *tok, const char *board)
{
    rtb_ticket_t *t = rtb_bus_tickets();
    const char *user = NULL;
    apr_time_t now = apr_time_now();
    int i;
    if (!t || strlen(tok) != 32 || rtb_ring_lock() != APR_SUCCESS)
        return NULL;
    for (i = 0; i < RTB_TICKETS_MAX; i++) {
        if (t[i].token[0] && !strcmp(t[i].token, tok)) {
            if (t[i].expires >= now && (!board || !strcmp(board, t[i].board)))
                user = apr_pstrdup(r->pool, t[i].user);
            t[i].token[0] = '\0'; /* single use, even when refused */
            break;
        }
    }
    rtb_ring_unlock();
    return user;
}

/*
 * Authentication by ticket, before any other provider: for clients that
 * cannot send cookies or Basic credentials on a WebSocket upgrade.
 */
static int ws_check_authn(request_rec *r)
{
    const char *tok, *q, *board = NULL;
    const char *user;
    if (r->main) {
        const char *u = apr_table_get(r->main->notes, "rtb-ticket-user");
        if (u) {
            r->user = apr_pstrdup(r->pool, u);
            r->ap_auth_type = "RTBoard-Ticket";
            return OK;
        }
        return DECLINED;
    }
    if (!r->args || !(q = strstr(r->args, "ticket=")) || (q != r->args && q[-1] != '&'))
        return DECLINED;
    tok = apr_pstrndup(r->pool, q + 7, strcspn(q + 7, "&"));
    {
        rtb_route_t rt;
        rtb_cfg_t *cfg = rtb_cfg(r->server);
        size_t bl = strlen(cfg->base);
        if (strncmp(r->uri, cfg->base, bl) != 0)
            return DECLINED;
        if (rtb_route(apr_pstrcat(r->pool, "/", r->uri + bl, NULL), RTB_M_GET, &rt) !=
                RTB_ROUTE_OK ||
            (rt.id != RTB_R_WS && rt.id != RTB_R_BOARD_WS))
            return DECLINED;
        if (rt.id == RTB_R_BOARD_WS)
            board = apr_pstrdup(r->pool, rt.board);
    }
    user = ws_ticket_redeem(r, tok, board);
    if (!user) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "RTB0050: unknown, used or expired ticket");
        return DECLINED;
    }
    r->user = (char *)user;
    r->ap_auth_type = "RTBoard-Ticket";
    apr_table_setn(r->notes, "rtb-ticket-user", user);
    return OK;
}

/* ------------------------------------------------------------------ */
/* joins                                                                */

typedef struct {
    rtb_conn_t *cn;
    request_rec *r; /* a copy of the upgrade request, on its own pool */
    apr_pool_t *pool;
    char board[RTB_BOARD_ID_MAX + 1];
    long long since;
    apr_uint64_t start;
    int status;    /* OK, 403, 404, 500 */
    apr_uint64_t last;
    int reset;
    apr_array_header_t *events; /* const char * JSON */
} ws_join_t;

static rtb_sub_t *ws_find_sub(rtb_conn_t *cn, const char *board)
{
    rtb_sub_t *sub;
    for (sub = cn->subs; sub; sub = sub->cnext)
        if (sub->active && !strcmp(sub->board, board))
            return sub;
    return NULL;
}

/* Reads the board and the events the client missed; worker thread or handler. */
static void ws_join_read(ws_join_t *j, rtb_db_t *db)
{
    const char *a1[1] = {j->board};
    apr_array_header_t *rows;
    apr_uint64_t cur;
    j->events = apr_array_make(j->pool, 4, sizeof(const char *));
    rows = rtb_db_select(db, RTB_SQL_BOARD_GET, 1, a1, NULL);
    if (!rows) {
        j->status = HTTP_INTERNAL_SERVER_ERROR;
        return;
    }
    if (!rows->nelts) {
        j->status = HTTP_NOT_FOUND;
        return;
    }
    j->last = (apr_uint64_t)apr_atoi64(APR_ARRAY_IDX(rows, 0, const char **)[3]);
    j->status = OK;
    if (j->since < 0 || (apr_uint64_t)j->since == j->last) {
        j->since = (long long)j->last;
        return;
    }
    if (rtb_history_gone(j->r ? j->r : db->r, (apr_uint64_t)j->since, j->last)) {
        j->reset = 1;
        return;
    }
    cur = (apr_uint64_t)j->since;
    while (cur < j->last) {
        const char *args[3] = {j->board, apr_psprintf(j->pool, "%" APR_UINT64_T_FMT, cur),
                               "1000"};
        int i;
        rows = rtb_db_select(db, RTB_SQL_EVENTS_SINCE, 3, args, NULL);
        if (!rows) {
            j->status = HTTP_INTERNAL_SERVER_ERROR;
            return;
        }
        if (!rows->nelts)
            break;
        for (i = 0; i < rows->nelts; i++) {
            const char **er = APR_ARRAY_IDX(rows, i, const char **);
            apr_uint64_t id = (apr_uint64_t)apr_atoi64(er[0]);
            if (id != cur + 1) {
                apr_array_clear(j->events);
                j->reset = 1;
                return;
            }
            APR_ARRAY_PUSH(j->events, const char *) = er[1];
            cur = id;
        }
    }
    if (cur < j->last && !j->events->nelts)
        j->reset = 1;
}

/* Worker thread: Apache decides (subrequest), then the store answers. */
static void ws_join_work(void *data)
{
    ws_join_t *j = data;
    request_rec *r = j->r;
    rtb_db_t db;
    int rc = rtb_board_allowed(r, j->board, "GET", NULL);
    if (rc != OK) {
        j->status = HTTP_FORBIDDEN;
        return;
    }
    j->start = rtb_engine_ring_position();
    memset(&db, 0, sizeof(db));
    db.r = r;
    db.pool = j->pool;
    db.dbd = rtb_dbd_open ? rtb_dbd_open(j->pool, r->server) : NULL;
    if (!db.dbd) {
        j->status = HTTP_INTERNAL_SERVER_ERROR;
        return;
    }
    ws_join_read(j, &db);
    rtb_dbd_close(r->server, db.dbd);
}

/* Loop thread (or handler): the join is decided; answer and subscribe. */
static void ws_join_finish(rtb_conn_t *cn, ws_join_t *j)
{
    ws_state_t *st = cn->tdata;
    rtb_sub_t *sub;
    int i;
    if (cn->closing)
        return;
    if (j->status == HTTP_NOT_FOUND) {
        ws_fail(cn, 4004, "no such board");
        return;
    }
    if (j->status == HTTP_FORBIDDEN || j->status == HTTP_UNAUTHORIZED) {
        ws_fail(cn, 4003, "board forbidden");
        return;
    }
    if (j->status != OK) {
        ws_fail(cn, 1011, "internal error");
        return;
    }
    if (ws_find_sub(cn, j->board)) {
        ws_error(cn, "already_joined", "already joined to this board");
        return;
    }
    if (st->njoined >= WS_MAX_JOINS) {
        ws_error(cn, "too_many_boards", "leave a board first");
        return;
    }
    ws_json(cn, json_pack("{s:s,s:s,s:I}", "type", "joined", "boardId", j->board,
                          "lastEventId", (json_int_t)(j->reset ? j->last : (apr_uint64_t)j->since)));
    if (j->reset) {
        ws_json(cn, json_pack("{s:s,s:s,s:I,s:s}", "type", "reset", "boardId", j->board,
                              "lastEventId", (json_int_t)j->last, "snapshot",
                              apr_pstrcat(j->pool, rtb_cfg(cn->c->base_server)->base, "boards/",
                                          j->board, NULL)));
    }
    for (i = 0; i < j->events->nelts; i++) {
        ws_text(cn, APR_ARRAY_IDX(j->events, i, const char *));
        rtb_engine_count_delivered(1);
    }
    sub = rtb_conn_subscribe(cn, j->board,
                             j->reset ? j->last
                                      : (apr_uint64_t)j->since + (apr_uint64_t)j->events->nelts);
    st->njoined++;
    ws_presence_join(cn, j->board);
    /* presence news published before the list is read is in the list; only
     * what comes after it is passed on */
    sub->ephemeral_from = rtb_engine_ring_position();
    ws_json(cn, json_pack("{s:s,s:s,s:o}", "type", "presence", "boardId", j->board, "users",
                          ws_presence_list(j->board)));
    /* what went by while the store was read */
    rtb_conn_catch_up(cn, j->start);
}

static void ws_join_done(void *data)
{
    ws_join_t *j = data;
    ws_join_finish(j->cn, j);
    apr_pool_destroy(j->pool);
}

enum { WS_O_REQUEST, WS_O_PROTOCOL, WS_O_HOSTNAME, WS_O_USER, WS_O_AUTH, WS_O_TICKET,
       WS_O_IP, WS_O_STRINGS };

static apr_size_t ws_table_size(const apr_table_t *t)
{
    const apr_array_header_t *a = apr_table_elts(t);
    const apr_table_entry_t *e = (const apr_table_entry_t *)a->elts;
    apr_size_t n = 1;
    int i;
    for (i = 0; i < a->nelts; i++)
        if (e[i].key && *e[i].key)
            n += strlen(e[i].key) + 1 + strlen(e[i].val ? e[i].val : "") + 1;
    return n;
}

static char *ws_put(char *d, const char *v)
{
    apr_size_t n = v ? strlen(v) : 0;
    memcpy(d, v ? v : "", n + 1);
    return d + n + 1;
}

static char *ws_table_put(char *d, const apr_table_t *t)
{
    const apr_array_header_t *a = apr_table_elts(t);
    const apr_table_entry_t *e = (const apr_table_entry_t *)a->elts;
    int i;
    for (i = 0; i < a->nelts; i++) {
        if (e[i].key && *e[i].key) {
            d = ws_put(d, e[i].key);
            d = ws_put(d, e[i].val);
        }
    }
    *d++ = '\0';
    return d;
}

/* Reads a list written by ws_table_put into a table; returns what follows. */
static const char *ws_table_get(const char *d, apr_table_t *t)
{
    while (*d) {
        const char *k = d, *v = d + strlen(d) + 1;
        apr_table_addn(t, k, v);
        d = v + strlen(v) + 1;
    }
    return d + 1;
}

/* The upgrade request's copy (handler thread, before the hand-off). */
static ws_origin_t *ws_origin_save(request_rec *r)
{
    conn_rec *c = r->connection;
    const char *str[WS_O_STRINGS];
    apr_size_t n = sizeof(ws_origin_t);
    ws_origin_t *o;
    char *d;
    int i;
    str[WS_O_REQUEST] = r->the_request;
    str[WS_O_PROTOCOL] = r->protocol;
    str[WS_O_HOSTNAME] = r->hostname;
    str[WS_O_USER] = r->user;
    str[WS_O_AUTH] = r->ap_auth_type;
    str[WS_O_TICKET] = apr_table_get(r->notes, "rtb-ticket-user");
    str[WS_O_IP] = r->useragent_ip;
    for (i = 0; i < WS_O_STRINGS; i++)
        n += (str[i] ? strlen(str[i]) : 0) + 1;
    n += ws_table_size(r->headers_in) + ws_table_size(r->subprocess_env);
    o = malloc(n);
    if (!o)
        return NULL;
    o->server = r->server;
    o->proto_num = r->proto_num;
    o->request_time = r->request_time;
    o->useragent_addr = c->client_addr;
    /* an address set by mod_remoteip lives in the request's pool */
    if (r->useragent_addr && r->useragent_addr != c->client_addr &&
        apr_sockaddr_info_copy(&o->useragent_addr, r->useragent_addr, c->pool) != APR_SUCCESS)
        o->useragent_addr = c->client_addr;
    d = o->data;
    for (i = 0; i < WS_O_STRINGS; i++)
        d = ws_put(d, str[i]);
    d = ws_table_put(d, r->headers_in);
    ws_table_put(d, r->subprocess_env);
    return o;
}

/*
 * Whether joins need the upgrade request itself. mod_auth_digest keeps
 * per-request state (made when a request is read) that its checks in a
 * subrequest take from the top request, so a request built from the copy
 * would not do; with it loaded, sockets keep their upgrade request.
 */
static int ws_keep_request(void)
{
    return ap_find_linked_module("mod_auth_digest.c") != NULL;
}

/*
 * A request like the upgrade, on its own pool, as the parent of a join's
 * subrequest (built on the loop thread, used on a worker): what Apache's own
 * request creation sets, then what the upgrade request had.
 */
static request_rec *ws_origin_request(apr_pool_t *p, rtb_conn_t *cn)
{
    ws_state_t *st = cn->tdata;
    ws_origin_t *o = st->origin;
    conn_rec *c = cn->c;
    request_rec *r = apr_pcalloc(p, sizeof(*r));
    const char *str[WS_O_STRINGS];
    const char *d = o->data;
    int i;
    for (i = 0; i < WS_O_STRINGS; i++) {
        apr_size_t n = strlen(d);
        str[i] = n ? apr_pstrmemdup(p, d, n) : NULL;
        d += n + 1;
    }
    r->pool = p;
    r->connection = c;
    r->server = o->server;
    r->log = &o->server->log;
    r->allowed_methods = ap_make_method_list(p, 2);
    r->headers_in = apr_table_make(p, 12);
    r->subprocess_env = apr_table_make(p, 4);
    d = ws_table_get(d, r->headers_in);
    ws_table_get(d, r->subprocess_env);
    r->trailers_in = apr_table_make(p, 1);
    r->headers_out = apr_table_make(p, 1);
    r->err_headers_out = apr_table_make(p, 1);
    r->trailers_out = apr_table_make(p, 1);
    r->notes = apr_table_make(p, 2);
    if (str[WS_O_TICKET])
        apr_table_setn(r->notes, "rtb-ticket-user", str[WS_O_TICKET]);
    r->request_config = ap_create_request_config(p);
    r->proto_output_filters = r->output_filters = c->output_filters;
    r->proto_input_filters = r->input_filters = c->input_filters;
    r->per_dir_config = o->server->lookup_defaults;
    ap_run_create_request(r);
    r->read_body = REQUEST_NO_BODY;
    r->status = HTTP_OK;
    r->used_path_info = AP_REQ_DEFAULT_PATH_INFO;
    r->the_request = (char *)str[WS_O_REQUEST];
    r->protocol = (char *)str[WS_O_PROTOCOL];
    r->proto_num = o->proto_num;
    r->hostname = str[WS_O_HOSTNAME];
    r->request_time = o->request_time;
    r->method = "GET";
    r->method_number = M_GET;
    r->user = (char *)str[WS_O_USER];
    r->ap_auth_type = (char *)str[WS_O_AUTH];
    r->useragent_ip = (char *)(str[WS_O_IP] ? str[WS_O_IP] : c->client_ip);
    r->useragent_addr = o->useragent_addr;
    return r;
}

static void ws_join(rtb_conn_t *cn, const char *board, long long since)
{
    apr_pool_t *p;
    ws_join_t *j;
    apr_allocator_t *alloc;
    /* its own allocator: the worker must not share the connection's */
    apr_allocator_create(&alloc);
    apr_pool_create_ex(&p, NULL, NULL, alloc);
    apr_allocator_owner_set(alloc, p);
    j = apr_pcalloc(p, sizeof(*j));
    j->cn = cn;
    j->pool = p;
    j->since = since;
    apr_cpystrn(j->board, board, sizeof(j->board));
    if (((ws_state_t *)cn->tdata)->origin) {
        j->r = ws_origin_request(p, cn);
    }
    else if (cn->r) {
        /* the kept upgrade request (see ws_keep_request): a shallow copy on
         * the join's pool, sharing its per-request state */
        j->r = apr_pmemdup(p, cn->r, sizeof(request_rec));
        j->r->pool = p;
        j->r->main = NULL;
    }
    else {
        apr_pool_destroy(p);
        ws_fail(cn, 1011, "internal error");
        return;
    }
    if (rtb_engine_defer(cn, ws_join_work, ws_join_done, j) < 0) {
        apr_pool_destroy(p);
        ws_fail(cn, 1011, "internal error");
    }
}

static void ws_publish_typing(rtb_conn_t *cn, const char *type, const char *board,
                              long long task);

static void ws_leave(rtb_conn_t *cn, rtb_sub_t *sub)
{
    ws_state_t *st = cn->tdata;
    char board[RTB_BOARD_ID_MAX + 1];
    apr_cpystrn(board, sub->board, sizeof(board));
    rtb_conn_unsubscribe(cn, sub);
    st->njoined--;
    if (!strcmp(st->typing_board, board) && st->typing_until) {
        st->typing_until = 0;
        ws_publish_typing(cn, "user_stopped_typing", board, st->typing_task);
    }
    ws_presence_leave(cn, board);
}

/* ------------------------------------------------------------------ */
/* client messages                                                      */

static int ws_rate_ok(ws_state_t *st)
{
    apr_time_t now = apr_time_now();
    st->tokens += (double)(now - st->tokens_at) / APR_USEC_PER_SEC * WS_MSG_RATE;
    st->tokens_at = now;
    if (st->tokens > WS_MSG_BURST)
        st->tokens = WS_MSG_BURST;
    if (st->tokens < 1)
        return 0;
    st->tokens -= 1;
    return 1;
}

static void ws_publish_typing(rtb_conn_t *cn, const char *type, const char *board,
                              long long task)
{
    ws_presence_set_typing(cn, board, strcmp(type, "user_typing") ? 0 : (apr_int64_t)task);
    json_t *j = json_pack("{s:s,s:s,s:I,s:s,s:s}", "type", type, "boardId", board, "taskId",
                          (json_int_t)task, "userId", cn->user, "name", cn->name);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (s) {
        rtb_engine_publish_ephemeral(cn->c->base_server, board, s);
        free(s);
    }
}

static void ws_send_cursor(rtb_conn_t *cn, ws_state_t *st, apr_time_t now)
{
    json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:f,s:f}", "type", "cursor", "boardId",
                          st->cursor_board, "userId", cn->user, "name", cn->name, "x", st->cx,
                          "y", st->cy);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (s) {
        rtb_engine_publish_ephemeral(cn->c->base_server, st->cursor_board, s);
        free(s);
    }
    st->cursor_pending = 0;
    st->cursor_sent = now;
}

static void ws_on_message(rtb_conn_t *cn, const char *text, apr_size_t len)
{
    ws_state_t *st = cn->tdata;
    rtb_cfg_t *cfg = rtb_cfg(cn->c->base_server);
    json_error_t je;
    json_t *m = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    const char *type, *board;
    rtb_sub_t *sub;
    apr_time_t now = apr_time_now();

    if (!ws_rate_ok(st)) {
        ws_fail(cn, 1008, "rate limit");
        goto done;
    }
    if (!m || !json_is_object(m)) {
        ws_json(cn, json_pack("{s:s,s:s,s:s,s:i,s:i}", "type", "error", "code", "invalid_json",
                              "message", m ? "a message must be a JSON object" : je.text,
                              "line", m ? 0 : je.line, "column", m ? 0 : je.column));
        goto done;
    }
    type = json_string_value(json_object_get(m, "type"));
    board = json_string_value(json_object_get(m, "boardId"));
    if (!type) {
        ws_error(cn, "invalid_message", "a message needs a string \"type\"");
        goto done;
    }
    if (!strcmp(type, "ping")) {
        ws_text(cn, "{\"type\":\"pong\"}");
        goto done;
    }
    if (strcmp(type, "join") && strcmp(type, "leave") && strcmp(type, "typing") &&
        strcmp(type, "stop_typing") && strcmp(type, "cursor")) {
        ws_error(cn, "unknown_type", "unknown message type");
        goto done;
    }
    if (!board || !rtb_board_slug_valid(board, strlen(board))) {
        ws_error(cn, "invalid_board", "boardId must be a board id");
        goto done;
    }
    sub = ws_find_sub(cn, board);
    if (!strcmp(type, "join")) {
        json_t *le = json_object_get(m, "lastEventId");
        long long since = -1;
        if (le && !json_is_null(le)) {
            if (!json_is_integer(le) || json_integer_value(le) < 0) {
                ws_error(cn, "invalid_last_event_id", "lastEventId must be an event id");
                goto done;
            }
            since = json_integer_value(le);
        }
        if (sub) {
            ws_error(cn, "already_joined", "already joined to this board");
            goto done;
        }
        ws_join(cn, board, since);
        goto done;
    }
    if (!sub) {
        ws_error(cn, "not_joined", "join the board first");
        goto done;
    }
    if (!strcmp(type, "leave")) {
        ws_leave(cn, sub);
        ws_json(cn, json_pack("{s:s,s:s}", "type", "left", "boardId", board));
    }
    else if (!strcmp(type, "typing") || !strcmp(type, "stop_typing")) {
        json_t *t = json_object_get(m, "taskId");
        if (!json_is_integer(t) || json_integer_value(t) < 1) {
            ws_error(cn, "invalid_task", "taskId must be a task id");
            goto done;
        }
        if (!strcmp(type, "typing")) {
            int changed = strcmp(st->typing_board, board) != 0 ||
                          st->typing_task != json_integer_value(t) || !st->typing_until;
            if (changed && st->typing_until)
                ws_publish_typing(cn, "user_stopped_typing", st->typing_board, st->typing_task);
            apr_cpystrn(st->typing_board, board, sizeof(st->typing_board));
            st->typing_task = json_integer_value(t);
            st->typing_until = now + apr_time_from_sec(cfg->typing_ttl);
            /* refreshes go out at most once a second */
            if (changed || now - st->typing_sent >= apr_time_from_sec(1)) {
                ws_publish_typing(cn, "user_typing", board, st->typing_task);
                st->typing_sent = now;
            }
        }
        else if (st->typing_until && st->typing_task == json_integer_value(t) &&
                 !strcmp(st->typing_board, board)) {
            st->typing_until = 0;
            ws_publish_typing(cn, "user_stopped_typing", board, st->typing_task);
        }
    }
    else { /* cursor */
        json_t *x = json_object_get(m, "x"), *y = json_object_get(m, "y");
        if (!json_is_number(x) || !json_is_number(y)) {
            ws_error(cn, "invalid_cursor", "x and y must be numbers");
            goto done;
        }
        st->cx = json_number_value(x);
        st->cy = json_number_value(y);
        apr_cpystrn(st->cursor_board, board, sizeof(st->cursor_board));
        st->cursor_pending = 1;
        /* only the latest position counts; at most cursor_rate per second */
        if (now - st->cursor_sent >= APR_USEC_PER_SEC / (cfg->cursor_rate ? cfg->cursor_rate : 1))
            ws_send_cursor(cn, st, now);
    }
done:
    if (m)
        json_decref(m);
}

/* ------------------------------------------------------------------ */
/* transport callbacks                                                  */

static void ws_on_record(rtb_conn_t *cn, rtb_sub_t *sub, int kind, apr_uint64_t id,
                         const char *json, apr_size_t len)
{
    (void)id;
    if (kind == RTB_KIND_EPHEMERAL) {
        /* typing, cursors and one's own comings and goings are not echoed to the
         * user's sockets: while this socket lives, its user is present */
        if ((strstr(json, "\"type\":\"user_typing\"") ||
             strstr(json, "\"type\":\"user_joined\"") ||
             strstr(json, "\"type\":\"user_left\"") ||
             strstr(json, "\"type\":\"user_stopped_typing\"") ||
             strstr(json, "\"type\":\"cursor\"")) &&
            strstr(json, apr_psprintf(cn->scratch, "\"userId\":\"%s\"", cn->user)))
            return;
        ws_frame(cn, RTB_WS_OP_TEXT, json, len);
        return;
    }
    ws_frame(cn, RTB_WS_OP_TEXT, json, len);
    rtb_engine_count_delivered(1);
    if (strstr(json, "\"type\":\"board_deleted\"")) {
        ws_state_t *st = cn->tdata;
        rtb_conn_unsubscribe(cn, sub);
        st->njoined--;
        ws_presence_leave(cn, sub->board);
        /* the stream of that board is closed; a socket still in other rooms stays */
        if (st->njoined <= 0)
            ws_fail(cn, 4004, "board deleted");
    }
}

static void ws_on_readable(rtb_conn_t *cn)
{
    ws_state_t *st = cn->tdata;
    apr_bucket_brigade *bb = cn->ibb;
    unsigned char *buf = malloc(WS_READ_CHUNK);
    rtb_cfg_t *cfg = rtb_cfg(cn->c->base_server);
    int rounds = 0;
    apr_status_t rv;

    if (!buf)
        return;
    while (!cn->closing && rounds++ < 16) {
        apr_size_t len = WS_READ_CHUNK, off = 0;
        rv = ap_get_brigade(cn->c->input_filters, bb, AP_MODE_READBYTES, APR_NONBLOCK_READ,
                            WS_READ_CHUNK);
        if (rv == APR_SUCCESS && APR_BRIGADE_EMPTY(bb))
            rv = APR_EAGAIN; /* a non-blocking read with nothing to give */
        if (rv != APR_SUCCESS) {
            if (!APR_STATUS_IS_EAGAIN(rv)) {
                cn->c->aborted = 1;
                rtb_conn_close(cn, RTB_CLOSE_PEER);
            }
            break;
        }
        apr_brigade_flatten(bb, (char *)buf, &len);
        apr_brigade_cleanup(bb);
        while (off < len && !cn->closing) {
            rtb_ws_event_t ev;
            size_t used = 0;
            int rc = rtb_ws_parse(&st->parser, buf + off, len - off, &used, &ev);
            off += used;
            if (rc < 0) {
                ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, cn->c, "RTB0051: bad frame: %s",
                              rtb_ws_strerror(rc));
                ws_fail(cn, rtb_ws_error_close_code(rc), rtb_ws_strerror(rc));
                break;
            }
            if (rc == 0)
                break;
            switch (ev.type) {
            case RTB_WS_EV_DATA:
                if (ev.opcode == RTB_WS_OP_BINARY) {
                    ws_fail(cn, 1003, "binary messages are not supported");
                    break;
                }
                if (ev.len) {
                    char *nm = realloc(st->msg, st->mlen + ev.len + 1);
                    if (!nm || st->mlen + ev.len > cfg->ws_max_message) {
                        free(nm ? nm : st->msg);
                        st->msg = NULL;
                        st->mlen = 0;
                        ws_fail(cn, 1009, "message too big");
                        break;
                    }
                    st->msg = nm;
                    memcpy(st->msg + st->mlen, ev.data, ev.len);
                    st->mlen += ev.len;
                }
                if (ev.flags & RTB_WS_FLAG_LAST) {
                    ws_on_message(cn, st->msg ? st->msg : "", st->mlen);
                    free(st->msg);
                    st->msg = NULL;
                    st->mlen = 0;
                }
                break;
            case RTB_WS_EV_PING:
                ws_frame(cn, RTB_WS_OP_PONG, ev.data, ev.len);
                break;
            case RTB_WS_EV_PONG:
                st->awaiting_pong = 0;
                break;
            case RTB_WS_EV_CLOSE:
                /* echo the code, then end */
                st->close_code = ev.close_code ? ev.close_code : 1000;
                st->close_reason = "";
                rtb_conn_close(cn, RTB_CLOSE_DONE);
                break;
            }
        }
    }
    free(buf);
}

static void ws_on_timer(rtb_conn_t *cn, apr_time_t now)
{
    ws_state_t *st = cn->tdata;
    rtb_cfg_t *cfg = rtb_cfg(cn->c->base_server);
    apr_time_t next;
    static apr_time_t last_reap;

    if (now - last_reap >= apr_time_from_sec(1)) {
        last_reap = now;
        ws_presence_reap(cn->c->base_server);
    }
    if (st->awaiting_pong && now - st->ping_sent_at >= apr_time_from_sec(cfg->ws_ping)) {
        ws_fail(cn, 1001, "no pong");
        return;
    }
    if (now >= st->next_ping) {
        static const char payload[] = "rtb";
        ws_frame(cn, RTB_WS_OP_PING, payload, 3);
        st->ping_sent_at = now;
        st->awaiting_pong = 1;
        st->next_ping = now + apr_time_from_sec(cfg->ws_ping);
    }
    if (st->typing_until && now >= st->typing_until) {
        st->typing_until = 0;
        ws_publish_typing(cn, "user_stopped_typing", st->typing_board, st->typing_task);
    }
    if (st->cursor_pending)
        ws_send_cursor(cn, st, now);
    next = st->next_ping;
    if (st->typing_until && st->typing_until < next)
        next = st->typing_until;
    if (next > now + apr_time_from_sec(1))
        next = now + apr_time_from_sec(1); /* presence reaping */
    cn->next_timer = next;
}

static void ws_on_close(rtb_conn_t *cn, int why)
{
    ws_state_t *st = cn->tdata;
    unsigned char payload[RTB_WS_MAX_CONTROL_PAYLOAD];
    apr_size_t n;
    int code = st->close_code;
    const char *reason = st->close_reason;
    if (why == RTB_CLOSE_STOPPING) {
        code = 1001;
        reason = "server restarting";
    }
    else if (why == RTB_CLOSE_SLOW || why == RTB_CLOSE_LAPPED) {
        code = 1013;
        reason = "too far behind; reconnect and resume";
    }
    else if (!code) {
        code = 1000;
    }
    n = rtb_ws_close_payload(payload, (apr_uint16_t)code, reason);
    ws_frame(cn, RTB_WS_OP_CLOSE, payload, n);
}

/* Leases and typing of a socket that ends, however it ends. */
static apr_status_t ws_conn_cleanup(void *data)
{
    rtb_conn_t *cn = data;
    ws_state_t *st = cn->tdata;
    if (st->typing_until)
        ws_publish_typing(cn, "user_stopped_typing", st->typing_board, st->typing_task);
    {
        /* every lease of this socket */
        rtb_presence_t *t = rtb_bus_presence();
        apr_uint32_t me = (apr_uint32_t)getpid();
        char boards[WS_MAX_JOINS][RTB_BOARD_ID_MAX + 1];
        int i, n = 0;
        if (t && rtb_ring_lock() == APR_SUCCESS) {
            for (i = 0; i < RTB_PRESENCE_MAX && n < WS_MAX_JOINS; i++) {
                if (t[i].pid == me && t[i].connid == cn->id)
                    apr_cpystrn(boards[n++], t[i].board, sizeof(boards[0]));
            }
            rtb_ring_unlock();
        }
        for (i = 0; i < n; i++)
            ws_presence_leave(cn, boards[i]);
    }
    free(st->msg);
    free(st->origin);
    free(st);
    cn->tdata = NULL;
    return APR_SUCCESS;
}

static const rtb_transport_t ws_transport = {
    "ws", RTB_T_WS, ws_on_record, ws_on_readable, ws_on_timer, ws_on_close, 0, 1};

/* ------------------------------------------------------------------ */
/* the upgrade                                                          */

static int ws_has_token(const char *h, const char *tok)
{
    const char *p = h;
    apr_size_t n = strlen(tok);
    while (p && *p) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        if (!strncasecmp(p, tok, n) && (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
            return 1;
        p = strchr(p, ',');
    }
    return 0;
}

/* The Origin must be this server's own, or listed in RTBoardAllowOrigin. */
static int ws_origin_ok(request_rec *r)
{
    rtb_cfg_t *cfg = rtb_cfg(r->server);
    const char *origin = apr_table_get(r->headers_in, "Origin");
    const char *host = apr_table_get(r->headers_in, "Host");
    int i;
    if (!origin)
        return 1; /* not a browser */
    for (i = 0; i < cfg->origins->nelts; i++) {
        const char *o = APR_ARRAY_IDX(cfg->origins, i, const char *);
        if (!strcmp(o, "*") || !strcasecmp(o, origin))
            return 1;
    }
    if (host) {
        const char *scheme = ap_http_scheme(r);
        if (!strcasecmp(origin, apr_pstrcat(r->pool, scheme, "://", host, NULL)))
            return 1;
    }
    return 0;
}

static int ws_upgrade(request_rec *r, const rtb_route_t *rt)
{
    rtb_cfg_t *cfg = rtb_cfg(r->server);
    conn_rec *c = r->connection;
    const char *up = apr_table_get(r->headers_in, "Upgrade");
    const char *conn = apr_table_get(r->headers_in, "Connection");
    const char *key = apr_table_get(r->headers_in, "Sec-WebSocket-Key");
    const char *ver = apr_table_get(r->headers_in, "Sec-WebSocket-Version");
    unsigned char digest[APR_SHA1_DIGESTSIZE];
    char accept[32];
    apr_sha1_ctx_t sha;
    rtb_conn_t *cn;
    ws_state_t *st;
    ws_join_t *first = NULL;
    int origin_ok;

    if (r->proto_num < HTTP_VERSION(1, 1) || c->master || !up ||
        strcasecmp(up, "websocket") != 0 || !conn || !ws_has_token(conn, "upgrade")) {
        apr_table_setn(r->headers_out, "Upgrade", "websocket");
        return rtb_send_error(r, HTTP_UPGRADE_REQUIRED, "upgrade_required",
                              "this is a WebSocket endpoint (HTTP/1.1 Upgrade: websocket)",
                              NULL);
    }
    if (!ver || strcmp(ver, "13") != 0) {
        apr_table_setn(r->headers_out, "Sec-WebSocket-Version", "13");
        return rtb_send_error(r, HTTP_UPGRADE_REQUIRED, "unsupported_version",
                              "Sec-WebSocket-Version must be 13", NULL);
    }
    if (!key || strlen(key) != 24 || apr_base64_decode_len(key) < 16)
        return rtb_send_error(r, HTTP_BAD_REQUEST, "invalid_key",
                              "Sec-WebSocket-Key must be 16 bytes in base64", NULL);
    origin_ok = ws_origin_ok(r);

    /* the board of /boards/:b/ws is read before the upgrade, in this thread */
    if (rt->id == RTB_R_BOARD_WS && origin_ok && r->user) {
        rtb_db_t db;
        long long since = rtb_query_id(r, "lastEventId");
        first = apr_pcalloc(r->pool, sizeof(*first));
        first->pool = r->pool;
        first->since = since < 0 ? -1 : since;
        apr_cpystrn(first->board, rt->board, sizeof(first->board));
        first->start = rtb_engine_ring_position();
        if (rtb_db_open(&db, r) < 0)
            return rtb_send_error(r, HTTP_SERVICE_UNAVAILABLE, "database_unavailable",
                                  "the database is not available", NULL);
        ws_join_read(first, &db);
        rtb_db_close(&db);
        if (first->status == HTTP_INTERNAL_SERVER_ERROR)
            return rtb_send_error(r, HTTP_INTERNAL_SERVER_ERROR, "database_error",
                                  "could not read the board", NULL);
    }

    apr_sha1_init(&sha);
    apr_sha1_update(&sha, key, (unsigned)strlen(key));
    apr_sha1_update(&sha, WS_GUID, (unsigned)strlen(WS_GUID));
    apr_sha1_final(digest, &sha);
    apr_base64_encode(accept, (const char *)digest, APR_SHA1_DIGESTSIZE);

    apr_table_clear(r->headers_out);
    apr_table_setn(r->headers_out, "Upgrade", "websocket");
    apr_table_setn(r->headers_out, "Connection", "Upgrade");
    apr_table_setn(r->headers_out, "Sec-WebSocket-Accept", apr_pstrdup(r->pool, accept));
    r->status = HTTP_SWITCHING_PROTOCOLS;
    r->status_line = ap_get_status_line(r->status);
    ap_send_interim_response(r, 1);
    if (c->aborted)
        return OK;
    c->keepalive = AP_CONN_CLOSE;
    r->output_filters = r->proto_output_filters = c->output_filters;
    r->input_filters = r->proto_input_filters = c->input_filters;

    cn = rtb_conn_create(r, &ws_transport, first ? first->start : rtb_engine_ring_position());
    /* malloc'd, not from the connection's pool: see ws_origin_t */
    st = calloc(1, sizeof(*st));
    if (!st) {
        c->aborted = 1;
        return OK;
    }
    rtb_ws_parser_init(&st->parser, cfg->ws_max_message);
    st->tokens = WS_MSG_BURST;
    st->tokens_at = apr_time_now();
    st->next_ping = apr_time_now() + apr_time_from_sec(cfg->ws_ping);
    /* without a copy (kept request, or no memory for it) joins use the request */
    st->origin = ws_keep_request() ? NULL : ws_origin_save(r);
    cn->keep_request = st->origin == NULL;
    /* the connection's log id now: logging from a join's worker would
     * otherwise make it in the connection's pool, which the loop uses */
    if (!c->log_id)
        ap_run_generate_log_id(c, NULL, &c->log_id);
    cn->tdata = st;
    apr_pool_cleanup_register(c->pool, cn, ws_conn_cleanup, apr_pool_cleanup_null);

    if (!origin_ok) {
        st->close_code = 1008;
        st->close_reason = "origin not allowed";
        ws_on_close(cn, RTB_CLOSE_PROTOCOL);
        rtb_conn_flush(cn);
        return OK;
    }
    if (!r->user) {
        st->close_code = 4001;
        st->close_reason = "not authenticated";
        ws_on_close(cn, RTB_CLOSE_PROTOCOL);
        rtb_conn_flush(cn);
        return OK;
    }
    if (strlen(r->user) > RTB_USER_MAX) {
        /* presence and tickets hold ids of up to RTB_USER_MAX bytes, never cut */
        st->close_code = 1008;
        st->close_reason = "user id too long";
        ws_on_close(cn, RTB_CLOSE_PROTOCOL);
        rtb_conn_flush(cn);
        return OK;
    }
    ws_json(cn, json_pack("{s:s,s:{s:s,s:s}}", "type", "connected", "user", "userId", cn->user,
                          "name", cn->name));
    if (first) {
        if (first->status == HTTP_NOT_FOUND) {
            st->close_code = 4004;
            st->close_reason = "no such board";
            ws_on_close(cn, RTB_CLOSE_PROTOCOL);
            rtb_conn_flush(cn);
            return OK;
        }
        /* subscribe before the hand-off; the loop catches up from first->start */
        ws_join_finish(cn, first);
    }
    rtb_conn_flush(cn);
    if (c->aborted)
        return OK;
    return rtb_conn_hand_off(cn);
}

static int ws_ticket(request_rec *r, const rtb_route_t *rt)
{
    rtb_db_t db;
    const char *a1[1] = {rt->board};
    apr_array_header_t *rows;
    const char *tok;
    if (rtb_db_acquire(&db, r) < 0)
        return rtb_send_error(r, HTTP_SERVICE_UNAVAILABLE, "database_unavailable",
                              "the database is not available", NULL);
    rows = rtb_db_select(&db, RTB_SQL_BOARD_GET, 1, a1, NULL);
    if (!rows)
        return HTTP_INTERNAL_SERVER_ERROR;
    if (!rows->nelts)
        return rtb_send_error(r, HTTP_NOT_FOUND, "board_not_found", "no such board", NULL);
    if (r->user && strlen(r->user) > RTB_USER_MAX)
        return rtb_send_error(r, HTTP_UNPROCESSABLE_ENTITY, "user_id_too_long",
                              "WebSockets take user ids of up to 255 bytes", NULL);
    tok = ws_ticket_issue(r, rt->board);
    if (!tok)
        return rtb_send_error(r, HTTP_SERVICE_UNAVAILABLE, "tickets_exhausted",
                              "no ticket could be issued, try again", NULL);
    return rtb_send_json(r, HTTP_CREATED,
                         json_pack("{s:{s:s,s:s,s:i}}", "data", "ticket", tok, "boardId",
                                   rt->board, "expiresIn", 30));
}

int rtb_ws_dispatch(request_rec *r, const rtb_route_t *rt)
{
    if (rt->id == RTB_R_WS_TICKET)
        return ws_ticket(r, rt);
    return ws_upgrade(r, rt);
}

void rtb_ws_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_check_authn(ws_check_authn, NULL, NULL, APR_HOOK_FIRST,
                        AP_AUTH_INTERNAL_PER_CONF);
}
