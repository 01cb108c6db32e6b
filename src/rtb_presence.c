/*
 * rtb_presence: who is on a board, as shared leases. See rtb_presence.h.
 */
#include "rtb_presence.h"
#include "rtb_config.h"
#include "rtb_ws_conn.h"
#include "rtb_ids.h"

#include "http_log.h"
#include "apr_strings.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

APLOG_USE_MODULE(rtboard);

#define PRESENCE_PAGE_MAX 1000 /* the largest page a snapshot or a diff holds */
#define PRESENCE_CACHE 16      /* first pages kept per child */
#define PRESENCE_REAP_EVERY apr_time_from_sec(1)
#define PRESENCE_NO_MEMORY                                                                         \
    "{\"type\":\"error\",\"code\":\"internal\",\"message\":\"out of memory\"}"

/* A board's first page at one version, as sent to every joiner (per child). */
typedef struct {
    char board[RTB_BOARD_ID_MAX + 1];
    apr_uint64_t version;
    char *json; /* malloc */
} presence_cached_t;

static struct {
    pthread_mutex_t lock; /* the cache: the loop and handler threads join */
    presence_cached_t cache[PRESENCE_CACHE];
    int next;
    volatile int full_logged; /* a refusal was logged since the last join that worked */
    apr_time_t last_reap;
} pres = {PTHREAD_MUTEX_INITIALIZER};

static apr_uint32_t presence_page(server_rec *s)
{
    int n = rtb_cfg(s)->presence_page;
    return (apr_uint32_t)(n > PRESENCE_PAGE_MAX ? PRESENCE_PAGE_MAX : n);
}

static apr_uint64_t presence_window(server_rec *s)
{
    return (apr_uint64_t)rtb_cfg(s)->presence_window * 1000u;
}

/*
 * The window of a board that becomes dirty now (presence lock held): the
 * configured one, longer for big boards (0.1 ms per user announced, up to
 * 5 windows), so that the diffs a storm sends, each to every socket of the
 * board, cost in proportion to the users rather than to their square.
 */
static apr_uint64_t presence_window_for(server_rec *s, const rtb_ptable_t *t, const char *board)
{
    apr_uint64_t w = presence_window(s), v, big;
    apr_uint32_t count;
    rtb_ptable_page(t, board, 0, 0, NULL, &v, &count);
    big = (apr_uint64_t)count * 100u;
    if (big > 5 * w)
        big = 5 * w;
    return big > w ? big : w;
}

/* After a join: the table being full is told to the caller and logged once a run. */
static int presence_joined(server_rec *s, const rtb_ptable_t *t, int rc)
{
    if (rc == RTB_PT_FULL) {
        if (!pres.full_logged) {
            pres.full_logged = 1;
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                         "RTB0076: the presence table is full (%u leases, RTBoardPresenceSlots); "
                         "joins are refused until sockets leave",
                         (unsigned)rtb_ptable_slots(t));
        }
        return RTB_PRESENCE_FULL;
    }
    pres.full_logged = 0;
    return RTB_PRESENCE_OK;
}

/* Takes a lease; the table being full is told to the caller and logged once. */
int rtb_presence_join(rtb_conn_t *cn, const char *board)
{
    rtb_ptable_t *t = rtb_bus_ptable();
    server_rec *s = cn->c->base_server;
    int rc;
    if (!t || rtb_bus_presence_lock(s) != APR_SUCCESS)
        return RTB_PRESENCE_FULL;
    rc = rtb_ptable_join(t, board, cn->user, cn->name, (apr_uint32_t)getpid(), cn->id,
                         (apr_uint64_t)apr_time_now(), presence_window_for(s, t, board));
    rtb_bus_presence_unlock();
    return presence_joined(s, t, rc);
}

void rtb_presence_leave(rtb_conn_t *cn, const char *board)
{
    rtb_ptable_t *t = rtb_bus_ptable();
    server_rec *s = cn->c->base_server;
    if (!t || rtb_bus_presence_lock(s) != APR_SUCCESS)
        return;
    rtb_ptable_leave(t, board, (apr_uint32_t)getpid(), cn->id, (apr_uint64_t)apr_time_now(),
                     presence_window_for(s, t, board), NULL);
    rtb_bus_presence_unlock();
}

void rtb_presence_leave_all(rtb_conn_t *cn)
{
    rtb_sub_t *sub;
    /* a socket holds leases only on boards it subscribed to */
    for (sub = cn->subs; sub; sub = sub->cnext)
        rtb_presence_leave(cn, sub->board);
}

void rtb_presence_set_typing(rtb_conn_t *cn, const char *board, apr_int64_t task)
{
    rtb_ptable_t *t = rtb_bus_ptable();
    if (!t || rtb_bus_presence_lock(cn->c->base_server) != APR_SUCCESS)
        return;
    rtb_ptable_set_typing(t, board, (apr_uint32_t)getpid(), cn->id, task);
    rtb_bus_presence_unlock();
}

/* ------------------------------------------------------------------ */
/* snapshots                                                            */

static json_t *presence_users(const rtb_ptable_user_t *u, apr_uint32_t n)
{
    json_t *a = json_array();
    apr_uint32_t i;
    for (i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{s:s,s:s}", "userId", u[i].user, "name", u[i].name));
    return a;
}

/* A presence message from the table (presence lock held); malloc'd text. */
static char *presence_build(const rtb_ptable_t *t, const char *board, apr_uint32_t offset,
                            apr_uint32_t page, apr_uint64_t *version)
{
    rtb_ptable_user_t *u = malloc(sizeof(*u) * (page ? page : 1));
    apr_uint32_t count, n;
    json_t *j;
    char *js;
    if (!u)
        return NULL;
    n = rtb_ptable_page(t, board, offset, page, u, version, &count);
    j = json_pack("{s:s,s:s,s:I,s:I,s:I,s:o,s:b}", "type", "presence", "boardId", board, "version",
                  (json_int_t)*version, "count", (json_int_t)count, "offset", (json_int_t)offset,
                  "users", presence_users(u, n), "complete", offset == 0 && n == count);
    free(u);
    js = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return js;
}

/* The snapshot's text (malloc'd; NULL when out of memory): the first page from the cache. */
static char *presence_snapshot_text(server_rec *s, const char *board, apr_uint32_t offset)
{
    rtb_ptable_t *t = rtb_bus_ptable();
    apr_uint64_t version = 0;
    apr_uint32_t count;
    char *out = NULL, *js;
    int i;
    if (!t || rtb_bus_presence_lock(s) != APR_SUCCESS) {
        json_t *j = json_pack("{s:s,s:s,s:i,s:i,s:I,s:[],s:b}", "type", "presence", "boardId",
                              board, "version", 0, "count", 0, "offset", (json_int_t)offset,
                              "users", "complete", 0);
        out = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        return out;
    }
    if (offset == 0) {
        rtb_ptable_page(t, board, 0, 0, NULL, &version, &count);
        pthread_mutex_lock(&pres.lock);
        for (i = 0; i < PRESENCE_CACHE && !out; i++) {
            if (pres.cache[i].json && pres.cache[i].version == version &&
                !strcmp(pres.cache[i].board, board))
                out = strdup(pres.cache[i].json);
        }
        pthread_mutex_unlock(&pres.lock);
        if (out) {
            rtb_bus_presence_unlock();
            return out;
        }
    }
    js = presence_build(t, board, offset, presence_page(s), &version);
    rtb_bus_presence_unlock();
    if (!js || offset != 0)
        return js;
    out = strdup(js);
    /* versions only grow: an entry of an older version is never right again */
    pthread_mutex_lock(&pres.lock);
    for (i = 0; i < PRESENCE_CACHE; i++) {
        if (pres.cache[i].json && !strcmp(pres.cache[i].board, board))
            break;
    }
    if (i == PRESENCE_CACHE) {
        i = pres.next;
        pres.next = (pres.next + 1) % PRESENCE_CACHE;
    }
    if (!pres.cache[i].json || pres.cache[i].version < version ||
        strcmp(pres.cache[i].board, board)) {
        free(pres.cache[i].json);
        apr_cpystrn(pres.cache[i].board, board, sizeof(pres.cache[i].board));
        pres.cache[i].version = version;
        pres.cache[i].json = js;
        js = NULL;
    }
    pthread_mutex_unlock(&pres.lock);
    free(js);
    return out;
}

const char *rtb_presence_snapshot(apr_pool_t *p, server_rec *s, const char *board,
                                  apr_uint32_t offset)
{
    char *js = presence_snapshot_text(s, board, offset);
    const char *out = js ? apr_pstrdup(p, js) : PRESENCE_NO_MEMORY;
    free(js);
    return out;
}

void rtb_presence_send(rtb_conn_t *cn, const char *board, apr_uint32_t offset)
{
    /* straight from the heap to the socket's output: a snapshot of a busy
     * board is kilobytes, and a copy in a pool would map a block of memory
     * for every join */
    char *js = presence_snapshot_text(cn->c->base_server, board, offset);
    rtb_ws_text(cn, js ? js : PRESENCE_NO_MEMORY);
    free(js);
}

/* ------------------------------------------------------------------ */
/* diffs and reaping                                                    */

/* One board's diff into the ring (presence lock held: diffs go out in version order). */
static void presence_emit(void *arg, const rtb_ptable_diff_t *d)
{
    server_rec *s = arg;
    json_t *left = json_array(), *j;
    char *js;
    apr_uint32_t i;
    for (i = 0; i < d->nleft; i++)
        json_array_append_new(left, json_string(d->left[i].user));
    j = json_pack("{s:s,s:s,s:I,s:I,s:I,s:o,s:o}", "type", "presence_diff", "boardId", d->board,
                  "base", (json_int_t)d->base, "version", (json_int_t)d->version, "count",
                  (json_int_t)d->count, "joined", presence_users(d->joined, d->njoined), "left",
                  left);
    js = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (js) {
        rtb_bus_publish(s, d->board, 0, RTB_KIND_EPHEMERAL, js, strlen(js));
        free(js);
    }
}

/* A typing indicator of a dead socket, kept until the lock is released. */
typedef struct presence_typing_t {
    char board[RTB_BOARD_ID_MAX + 1];
    char user[RTB_USER_MAX + 1], name[RTB_USER_MAX + 1];
    apr_int64_t task;
    struct presence_typing_t *next;
} presence_typing_t;

static void presence_on_typing(void *arg, const char *board, const char *user, const char *name,
                               int64_t task)
{
    presence_typing_t **head = arg, *e = malloc(sizeof(*e));
    if (!e)
        return;
    apr_cpystrn(e->board, board, sizeof(e->board));
    apr_cpystrn(e->user, user, sizeof(e->user));
    apr_cpystrn(e->name, name, sizeof(e->name));
    e->task = task;
    e->next = *head;
    *head = e;
}

/*
 * Publishes user_stopped_typing for each typing indicator of `list` (freed),
 * marked as come from another node when `origin` is RTB_EPHEMERAL_REMOTE
 * (the typing was that node's: no node forwards its end).
 */
static void presence_end_typing(server_rec *s, presence_typing_t *list, apr_uint64_t origin)
{
    presence_typing_t *e;
    while ((e = list) != NULL) {
        json_t *j =
            json_pack("{s:s,s:s,s:I,s:s,s:s}", "type", "user_stopped_typing", "boardId", e->board,
                      "taskId", (json_int_t)e->task, "userId", e->user, "name", e->name);
        char *js = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (js) {
            rtb_bus_publish(s, e->board, origin, RTB_KIND_EPHEMERAL, js, strlen(js));
            free(js);
        }
        list = e->next;
        free(e);
    }
}

/* Leases of children that died: given back; their typing ends now. */
static void presence_reap(server_rec *s, rtb_ptable_t *t, apr_time_t now)
{
    apr_uint32_t pids[RTB_PTABLE_OWNERS], me = (apr_uint32_t)getpid();
    presence_typing_t *typing = NULL;
    int n, i;
    if (rtb_bus_presence_lock(s) != APR_SUCCESS)
        return;
    n = rtb_ptable_owners(t, pids, RTB_PTABLE_OWNERS);
    rtb_bus_presence_unlock();
    for (i = 0; i < n; i++) {
        /* other nodes' pseudo owners are no processes: rtb_peers reaps them */
        if (pids[i] == me || (pids[i] & RTB_PTABLE_REMOTE) ||
            !(kill((pid_t)pids[i], 0) < 0 && errno == ESRCH))
            continue;
        if (rtb_bus_presence_lock(s) != APR_SUCCESS)
            return;
        rtb_ptable_reap(t, pids[i], (apr_uint64_t)now, presence_window(s), presence_on_typing,
                        &typing);
        rtb_bus_presence_unlock();
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                     "RTB0077: presence leases of process %u (gone) given back", (unsigned)pids[i]);
    }
    presence_end_typing(s, typing, 0);
}

void rtb_presence_tick(server_rec *s, apr_time_t now)
{
    rtb_ptable_t *t = rtb_bus_ptable();
    apr_uint64_t due;
    if (!t)
        return;
    if (now - pres.last_reap >= PRESENCE_REAP_EVERY) {
        pres.last_reap = now;
        presence_reap(s, t, now);
    }
    due = rtb_ptable_due(t); /* read without the lock: a hint, checked again under it */
    if (due && (apr_uint64_t)now >= due && rtb_bus_presence_lock(s) == APR_SUCCESS) {
        apr_uint32_t page = presence_page(s);
        rtb_ptable_user_t *scratch = malloc(sizeof(*scratch) * 2 * page);
        if (scratch)
            rtb_ptable_flush(t, (apr_uint64_t)now, page, scratch, presence_emit, s);
        rtb_bus_presence_unlock();
        free(scratch);
    }
}

/* ------------------------------------------------------------------ */
/* users of other nodes                                                 */

/* The lease key of another node's user: one lease per user and node. */
static apr_uint64_t presence_remote_key(const char *user)
{
    return rtb_ids_hash64(user, strlen(user));
}

int rtb_presence_remote_join(server_rec *s, apr_uint32_t owner, const char *board, const char *user,
                             const char *name)
{
    rtb_ptable_t *t = rtb_bus_ptable();
    int rc;
    if (!t || rtb_bus_presence_lock(s) != APR_SUCCESS)
        return RTB_PRESENCE_FULL;
    rc = rtb_ptable_join(t, board, user, name, owner, presence_remote_key(user),
                         (apr_uint64_t)apr_time_now(), presence_window_for(s, t, board));
    rtb_bus_presence_unlock();
    return presence_joined(s, t, rc);
}

void rtb_presence_remote_leave(server_rec *s, apr_uint32_t owner, const char *board,
                               const char *user, const char *name)
{
    rtb_ptable_t *t = rtb_bus_ptable();
    presence_typing_t *typing = NULL;
    apr_int64_t task = 0;
    if (!t || rtb_bus_presence_lock(s) != APR_SUCCESS)
        return;
    if (rtb_ptable_leave(t, board, owner, presence_remote_key(user), (apr_uint64_t)apr_time_now(),
                         presence_window_for(s, t, board), &task) == RTB_PT_OK &&
        task)
        presence_on_typing(&typing, board, user, name, task);
    rtb_bus_presence_unlock();
    presence_end_typing(s, typing, RTB_EPHEMERAL_REMOTE);
}

void rtb_presence_remote_typing(server_rec *s, apr_uint32_t owner, const char *board,
                                const char *user, apr_int64_t task)
{
    rtb_ptable_t *t = rtb_bus_ptable();
    if (!t || rtb_bus_presence_lock(s) != APR_SUCCESS)
        return;
    rtb_ptable_set_typing(t, board, owner, presence_remote_key(user), task);
    rtb_bus_presence_unlock();
}

void rtb_presence_remote_mark(server_rec *s, apr_uint32_t owner)
{
    rtb_ptable_t *t = rtb_bus_ptable();
    if (!t || rtb_bus_presence_lock(s) != APR_SUCCESS)
        return;
    rtb_ptable_mark(t, owner);
    rtb_bus_presence_unlock();
}

apr_uint32_t rtb_presence_remote_drop(server_rec *s, apr_uint32_t owner, int all)
{
    rtb_ptable_t *t = rtb_bus_ptable();
    presence_typing_t *typing = NULL;
    apr_uint64_t now = (apr_uint64_t)apr_time_now();
    apr_uint32_t n;
    if (!t || rtb_bus_presence_lock(s) != APR_SUCCESS)
        return 0;
    n = all ? rtb_ptable_reap(t, owner, now, presence_window(s), presence_on_typing, &typing)
            : rtb_ptable_sweep(t, owner, now, presence_window(s), presence_on_typing, &typing);
    rtb_bus_presence_unlock();
    presence_end_typing(s, typing, RTB_EPHEMERAL_REMOTE);
    return n;
}

int rtb_presence_local_users(server_rec *s, rtb_ptable_each_fn fn, void *arg, apr_uint64_t *changes)
{
    rtb_ptable_t *t = rtb_bus_ptable();
    if (!t || rtb_bus_presence_lock(s) != APR_SUCCESS)
        return -1;
    *changes = rtb_ptable_local_changes(t);
    rtb_ptable_each_local(t, fn, arg);
    rtb_bus_presence_unlock();
    return 0;
}

apr_uint64_t rtb_presence_local_changes(void)
{
    rtb_ptable_t *t = rtb_bus_ptable();
    return t ? rtb_ptable_local_changes(t) : 0;
}

apr_uint32_t rtb_presence_remote_users(server_rec *s, apr_uint32_t owner)
{
    rtb_ptable_t *t = rtb_bus_ptable();
    apr_uint32_t n;
    if (!t || rtb_bus_presence_lock(s) != APR_SUCCESS)
        return 0;
    n = rtb_ptable_owner_leases(t, owner);
    rtb_bus_presence_unlock();
    return n;
}
