/*
 * rtb_router: maps an HTTP method and a path (relative to the mount point)
 * to a route id and its parameters. Pure: no httpd headers.
 */
#ifndef RTB_ROUTER_H
#define RTB_ROUTER_H

#include <stddef.h>

#include "rtb_ids.h" /* RTB_BOARD_ID_MAX and the id syntax */

typedef enum {
    RTB_R_NONE = 0,
    RTB_R_BOARDS,       /* /boards */
    RTB_R_BOARD,        /* /boards/:b */
    RTB_R_LISTS,        /* /boards/:b/lists */
    RTB_R_LIST,         /* /boards/:b/lists/:l */
    RTB_R_TASKS,        /* /boards/:b/tasks */
    RTB_R_TASK,         /* /boards/:b/tasks/:t */
    RTB_R_TASK_MOVE,    /* /boards/:b/tasks/:t/move */
    RTB_R_UPDATES,      /* /boards/:b/updates */
    RTB_R_POLL,         /* /boards/:b/poll */
    RTB_R_EVENTS,       /* /boards/:b/events */
    RTB_R_BOARD_WS,     /* /boards/:b/ws */
    RTB_R_WS_TICKET,    /* /boards/:b/ws-ticket */
    RTB_R_MULTI_EVENTS, /* /events */
    RTB_R_WS,           /* /ws */
    RTB_R_ALIAS_TASKS,  /* /tasks */
    RTB_R_ALIAS_TASK,   /* /tasks/:t */
    RTB_R_ALIAS_MOVE,   /* /tasks/:t/move */
    RTB_R_PRESENCE,     /* /boards/:b/presence */
    RTB_R__COUNT
} rtb_route_id_t;

/* Methods as a bit set, so a route can state what it allows. */
enum {
    RTB_M_GET = 1 << 0,
    RTB_M_POST = 1 << 1,
    RTB_M_PATCH = 1 << 2,
    RTB_M_DELETE = 1 << 3,
    RTB_M_HEAD = 1 << 4,
    RTB_M_OPTIONS = 1 << 5,
    RTB_M_OTHER = 1 << 6
};

typedef struct {
    rtb_route_id_t id;
    int allowed;                      /* RTB_M_* the route answers */
    char board[RTB_BOARD_ID_MAX + 1]; /* :b, "" when absent */
    long long list;                   /* :l, 0 when absent */
    long long task;                   /* :t, 0 when absent */
} rtb_route_t;

typedef enum {
    RTB_ROUTE_OK = 0,
    RTB_ROUTE_NOT_FOUND = -1,  /* no such path */
    RTB_ROUTE_BAD_METHOD = -2, /* path known, method not in route->allowed */
    RTB_ROUTE_BAD_ID = -3      /* path shape known, but an id is malformed */
} rtb_route_status_t;

/*
 * Parses a method name ("GET", ...) into an RTB_M_* bit; RTB_M_OTHER for
 * anything else. HEAD is reported as HEAD; callers treat it as GET.
 */
int rtb_method_bit(const char *method);

/*
 * Routes `path` (the part after the mount point, starting with '/', without
 * the query string; already percent-decoded by the caller or not, it is
 * matched literally) for method bit `m`. Fills `out` in every case where the
 * path shape is known (so `out->allowed` can feed an Allow header on
 * RTB_ROUTE_BAD_METHOD). A trailing slash is tolerated; empty segments,
 * "." and ".." segments never match, nor does a NULL path. Returns an
 * rtb_route_status_t.
 */
int rtb_route(const char *path, int m, rtb_route_t *out);

/*
 * Writes the Allow header value for `allowed` into `buf` (cap bytes,
 * NUL-terminated, e.g. "GET, HEAD, PATCH, DELETE"). Returns buf.
 */
char *rtb_allow_header(int allowed, char *buf, size_t cap);

#endif
