/*
 * rtb_presence: who is on a board, as shared leases. See rtb_presence.h.
 */
#include "rtb_presence.h"
#include "rtb_engine.h"
#include "rtb_ws_conn.h"

#include "apr_strings.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* presence: shared leases, one per open socket and board               */

static apr_uint32_t presence_hash(const char *s)
{
    apr_uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static int presence_pid_alive(apr_uint32_t pid)
{
    return !(kill((pid_t)pid, 0) < 0 && errno == ESRCH);
}

/* Counts live leases of `user` on `board` (ring lock held). */
static int presence_count(rtb_presence_t *t, apr_uint32_t bh, const char *board, const char *user)
{
    int i, n = 0;
    for (i = 0; i < RTB_PRESENCE_MAX; i++) {
        if (t[i].pid && t[i].bhash == bh && !strcmp(t[i].board, board) && !strcmp(t[i].user, user))
            n++;
    }
    return n;
}

static void presence_publish(server_rec *s, const char *type, const char *board, const char *user,
                             const char *name)
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
void rtb_presence_join(rtb_conn_t *cn, const char *board)
{
    rtb_presence_t *t = rtb_bus_presence();
    apr_uint32_t bh = presence_hash(board), me = (apr_uint32_t)getpid();
    int i, first = 0, placed = 0;
    if (!t || rtb_bus_lock() != APR_SUCCESS)
        return;
    first = presence_count(t, bh, board, cn->user) == 0;
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
    rtb_bus_unlock();
    if (first && placed)
        presence_publish(cn->c->base_server, "user_joined", board, cn->user, cn->name);
}

/* Gives the lease back; announces the user's leaving with their last socket. */
void rtb_presence_leave(rtb_conn_t *cn, const char *board)
{
    rtb_presence_t *t = rtb_bus_presence();
    apr_uint32_t bh = presence_hash(board), me = (apr_uint32_t)getpid();
    int i, last = 0, found = 0;
    if (!t || rtb_bus_lock() != APR_SUCCESS)
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
        last = presence_count(t, bh, board, cn->user) == 0;
    rtb_bus_unlock();
    if (last)
        presence_publish(cn->c->base_server, "user_left", board, cn->user, cn->name);
}

/* Records on this socket's lease what it is typing on, for the reaper. */
void rtb_presence_set_typing(rtb_conn_t *cn, const char *board, apr_int64_t task)
{
    rtb_presence_t *t = rtb_bus_presence();
    apr_uint32_t bh = presence_hash(board), me = (apr_uint32_t)getpid();
    int i;
    if (!t || rtb_bus_lock() != APR_SUCCESS)
        return;
    for (i = 0; i < RTB_PRESENCE_MAX; i++) {
        if (t[i].pid == me && t[i].connid == cn->id && t[i].bhash == bh &&
            !strcmp(t[i].board, board))
            t[i].typing_task = task;
    }
    rtb_bus_unlock();
}

/* The users on a board, each once. */
json_t *rtb_presence_list(const char *board)
{
    rtb_presence_t *t = rtb_bus_presence();
    apr_uint32_t bh = presence_hash(board);
    json_t *users = json_array(), *seen = json_object();
    int i;
    if (!t || rtb_bus_lock() != APR_SUCCESS) {
        json_decref(seen);
        return users;
    }
    for (i = 0; i < RTB_PRESENCE_MAX; i++) {
        if (t[i].pid && t[i].bhash == bh && !strcmp(t[i].board, board) &&
            !json_object_get(seen, t[i].user)) {
            json_object_set_new(seen, t[i].user, json_true());
            json_array_append_new(users,
                                  json_pack("{s:s,s:s}", "userId", t[i].user, "name", t[i].name));
        }
    }
    rtb_bus_unlock();
    json_decref(seen);
    return users;
}

/*
 * Leases of children that died (kill -9, crash) are reaped by whichever child
 * looks first; the user_left goes out once, from under the lock.
 */
void rtb_presence_reap(server_rec *s)
{
    rtb_presence_t *t = rtb_bus_presence();
    struct {
        char board[65], user[RTB_USER_MAX + 1], name[RTB_USER_MAX + 1];
        apr_int64_t typing_task;
        int left;
    } gone[32];
    int i, n = 0, k;
    if (!t || rtb_bus_lock() != APR_SUCCESS)
        return;
    for (i = 0; i < RTB_PRESENCE_MAX && n < 32; i++) {
        if (t[i].pid && !presence_pid_alive(t[i].pid)) {
            apr_uint32_t bh = t[i].bhash;
            int left;
            t[i].pid = 0;
            left = presence_count(t, bh, t[i].board, t[i].user) == 0;
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
    rtb_bus_unlock();
    for (k = 0; k < n; k++) {
        if (gone[k].typing_task) {
            /* the dead socket's typing indicator ends with it */
            json_t *j = json_pack("{s:s,s:s,s:I,s:s,s:s}", "type", "user_stopped_typing", "boardId",
                                  gone[k].board, "taskId", (json_int_t)gone[k].typing_task,
                                  "userId", gone[k].user, "name", gone[k].name);
            char *js = json_dumps(j, JSON_COMPACT);
            json_decref(j);
            if (js) {
                rtb_engine_publish_ephemeral(s, gone[k].board, js);
                free(js);
            }
        }
        if (gone[k].left)
            presence_publish(s, "user_left", gone[k].board, gone[k].user, gone[k].name);
    }
}

void rtb_presence_leave_all(rtb_conn_t *cn)
{
    rtb_presence_t *t = rtb_bus_presence();
    apr_uint32_t me = (apr_uint32_t)getpid();
    char boards[RTB_WS_MAX_JOINS][RTB_BOARD_ID_MAX + 1];
    int i, n = 0;
    if (t && rtb_bus_lock() == APR_SUCCESS) {
        for (i = 0; i < RTB_PRESENCE_MAX && n < RTB_WS_MAX_JOINS; i++) {
            if (t[i].pid == me && t[i].connid == cn->id)
                apr_cpystrn(boards[n++], t[i].board, sizeof(boards[0]));
        }
        rtb_bus_unlock();
    }
    for (i = 0; i < n; i++)
        rtb_presence_leave(cn, boards[i]);
}
