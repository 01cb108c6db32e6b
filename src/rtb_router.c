/*
 * rtb_router: the module's route table, as a small hand-written matcher over
 * path segments. Pure C, unit-tested in tests/unit/test_router.c.
 */
#include "rtb_router.h"

#include <stdint.h>
#include <string.h>

#define ROUTER_MAX_SEGS 5

typedef struct {
    const char *p;
    size_t n;
} router_seg_t;

int rtb_method_bit(const char *method)
{
    if (!method)
        return RTB_M_OTHER;
    if (!strcmp(method, "GET"))
        return RTB_M_GET;
    if (!strcmp(method, "HEAD"))
        return RTB_M_HEAD;
    if (!strcmp(method, "POST"))
        return RTB_M_POST;
    if (!strcmp(method, "PATCH"))
        return RTB_M_PATCH;
    if (!strcmp(method, "DELETE"))
        return RTB_M_DELETE;
    if (!strcmp(method, "OPTIONS"))
        return RTB_M_OPTIONS;
    return RTB_M_OTHER;
}

/* A task or list id segment as a value 1..RTB_ID_MAX, or 0 when malformed. */
static long long router_num(const router_seg_t *seg)
{
    uint64_t v;
    if (rtb_ids_parse_num(seg->p, seg->n, &v) != RTB_IDS_OK)
        return 0;
    return (long long)v; /* RTB_ID_MAX < LLONG_MAX */
}

/*
 * Splits "/a/b/c" (or "/a/b/c/") into segments. Returns their number, 0 for
 * "/", or -1 when the path does not start with '/', holds an empty, "." or
 * ".." segment, or has more than `max` segments.
 */
static int router_split(const char *path, router_seg_t *segs, int max)
{
    int n = 0;
    const char *p = path;
    if (!p || *p != '/')
        return -1;
    p++;
    if (*p == '\0')
        return 0;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        /* A trailing slash leaves p on the NUL and ends the loop; "//" lands here. */
        if (len == 0)
            return -1;
        if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return -1;
        if (n == max)
            return -1;
        segs[n].p = p;
        segs[n].n = len;
        n++;
        if (!e)
            break;
        p = e + 1;
    }
    return n;
}

static int router_is(const router_seg_t *s, const char *lit)
{
    size_t n = strlen(lit);
    return s->n == n && memcmp(s->p, lit, n) == 0;
}

static int router_finish(rtb_route_t *out, rtb_route_id_t id, int allowed, int m)
{
    out->id = id;
    out->allowed = allowed;
    if (allowed & RTB_M_GET)
        out->allowed |= RTB_M_HEAD;
    if (m == RTB_M_HEAD)
        m = RTB_M_GET;
    if (!(allowed & m))
        return RTB_ROUTE_BAD_METHOD;
    return RTB_ROUTE_OK;
}

int rtb_route(const char *path, int m, rtb_route_t *out)
{
    router_seg_t s[ROUTER_MAX_SEGS];
    int n;

    memset(out, 0, sizeof(*out));
    n = router_split(path, s, ROUTER_MAX_SEGS);
    if (n <= 0)
        return RTB_ROUTE_NOT_FOUND;

    if (router_is(&s[0], "boards")) {
        if (n == 1)
            return router_finish(out, RTB_R_BOARDS, RTB_M_GET | RTB_M_POST, m);
        if (!rtb_board_id_valid(s[1].p, s[1].n))
            return RTB_ROUTE_BAD_ID;
        memcpy(out->board, s[1].p, s[1].n);
        out->board[s[1].n] = '\0';
        if (n == 2)
            return router_finish(out, RTB_R_BOARD, RTB_M_GET | RTB_M_PATCH | RTB_M_DELETE, m);
        if (n == 3) {
            if (router_is(&s[2], "lists"))
                return router_finish(out, RTB_R_LISTS, RTB_M_POST, m);
            if (router_is(&s[2], "tasks"))
                return router_finish(out, RTB_R_TASKS, RTB_M_GET | RTB_M_POST, m);
            if (router_is(&s[2], "updates"))
                return router_finish(out, RTB_R_UPDATES, RTB_M_GET, m);
            if (router_is(&s[2], "poll"))
                return router_finish(out, RTB_R_POLL, RTB_M_GET, m);
            if (router_is(&s[2], "events"))
                return router_finish(out, RTB_R_EVENTS, RTB_M_GET, m);
            if (router_is(&s[2], "ws"))
                return router_finish(out, RTB_R_BOARD_WS, RTB_M_GET, m);
            if (router_is(&s[2], "ws-ticket"))
                return router_finish(out, RTB_R_WS_TICKET, RTB_M_POST, m);
            if (router_is(&s[2], "presence"))
                return router_finish(out, RTB_R_PRESENCE, RTB_M_GET, m);
            return RTB_ROUTE_NOT_FOUND;
        }
        if (router_is(&s[2], "lists") && n == 4) {
            out->list = router_num(&s[3]);
            if (!out->list)
                return RTB_ROUTE_BAD_ID;
            return router_finish(out, RTB_R_LIST, RTB_M_PATCH | RTB_M_DELETE, m);
        }
        if (router_is(&s[2], "tasks") && (n == 4 || n == 5)) {
            out->task = router_num(&s[3]);
            if (!out->task)
                return RTB_ROUTE_BAD_ID;
            if (n == 4)
                return router_finish(out, RTB_R_TASK, RTB_M_GET | RTB_M_PATCH | RTB_M_DELETE, m);
            if (router_is(&s[4], "move"))
                return router_finish(out, RTB_R_TASK_MOVE, RTB_M_PATCH, m);
        }
        return RTB_ROUTE_NOT_FOUND;
    }
    if (router_is(&s[0], "tasks")) {
        if (n == 1)
            return router_finish(out, RTB_R_ALIAS_TASKS, RTB_M_POST, m);
        out->task = router_num(&s[1]);
        if (!out->task)
            return RTB_ROUTE_BAD_ID;
        if (n == 2)
            return router_finish(out, RTB_R_ALIAS_TASK, RTB_M_DELETE, m);
        if (n == 3 && router_is(&s[2], "move"))
            return router_finish(out, RTB_R_ALIAS_MOVE, RTB_M_PATCH, m);
        return RTB_ROUTE_NOT_FOUND;
    }
    if (n == 1 && router_is(&s[0], "events"))
        return router_finish(out, RTB_R_MULTI_EVENTS, RTB_M_GET, m);
    if (n == 1 && router_is(&s[0], "ws"))
        return router_finish(out, RTB_R_WS, RTB_M_GET, m);
    return RTB_ROUTE_NOT_FOUND;
}

char *rtb_allow_header(int allowed, char *buf, size_t cap)
{
    static const struct {
        int bit;
        const char *name;
    } names[] = {{RTB_M_GET, "GET"},     {RTB_M_HEAD, "HEAD"},     {RTB_M_POST, "POST"},
                 {RTB_M_PATCH, "PATCH"}, {RTB_M_DELETE, "DELETE"}, {RTB_M_OPTIONS, "OPTIONS"}};
    size_t i, used = 0;
    if (cap == 0)
        return buf;
    buf[0] = '\0';
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t len;
        if (!(allowed & names[i].bit))
            continue;
        len = strlen(names[i].name) + (used ? 2 : 0);
        if (used + len + 1 > cap)
            break;
        if (used) {
            memcpy(buf + used, ", ", 2);
            used += 2;
            len -= 2;
        }
        memcpy(buf + used, names[i].name, len);
        used += len;
        buf[used] = '\0';
    }
    return buf;
}
