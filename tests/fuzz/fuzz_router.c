/*
 * libFuzzer driver for src/rtb_router.c.
 *
 * Input layout: a request line's start, "METHOD PATH": the bytes before the
 * first space are the method, the rest the path (no space: the whole input is
 * the path, routed as GET). Both are NUL-terminated copies in exact-size heap
 * blocks, so a NUL inside the input ends them early, as it would in httpd.
 *
 * Checked: rtb_method_bit names exactly one known method or RTB_M_OTHER; the
 * status is one of rtb_route_status_t and agrees with out->allowed; a match
 * carries exactly the parameters its route has, each valid, and the path is
 * the route's canonical spelling (with an optional trailing slash), which
 * routes back to the same answer; the method changes nothing but OK versus
 * BAD_METHOD; the Allow header, at every buffer size, is a NUL-terminated
 * prefix of the full value cut between names.
 */
#include <inttypes.h>

#include "fuzz.h"

#include "../../src/rtb_ids.c"
#include "../../src/rtb_router.c"

static volatile uint64_t fuzz_router_sink;

static const struct {
    int bit;
    const char *name;
} fuzz_router_methods[] = {{RTB_M_GET, "GET"},       {RTB_M_HEAD, "HEAD"},
                           {RTB_M_POST, "POST"},     {RTB_M_PATCH, "PATCH"},
                           {RTB_M_DELETE, "DELETE"}, {RTB_M_OPTIONS, "OPTIONS"},
                           {RTB_M_OTHER, NULL}};

#define FUZZ_ROUTER_NMETHODS (sizeof(fuzz_router_methods) / sizeof(fuzz_router_methods[0]))

/* Every route's path, with :b, :l and :t where its parameters go. */
static const char *const fuzz_router_shapes[RTB_R__COUNT] = {
    [RTB_R_BOARDS] = "/boards",
    [RTB_R_BOARD] = "/boards/:b",
    [RTB_R_LISTS] = "/boards/:b/lists",
    [RTB_R_LIST] = "/boards/:b/lists/:l",
    [RTB_R_TASKS] = "/boards/:b/tasks",
    [RTB_R_TASK] = "/boards/:b/tasks/:t",
    [RTB_R_TASK_MOVE] = "/boards/:b/tasks/:t/move",
    [RTB_R_UPDATES] = "/boards/:b/updates",
    [RTB_R_POLL] = "/boards/:b/poll",
    [RTB_R_EVENTS] = "/boards/:b/events",
    [RTB_R_BOARD_WS] = "/boards/:b/ws",
    [RTB_R_WS_TICKET] = "/boards/:b/ws-ticket",
    [RTB_R_MULTI_EVENTS] = "/events",
    [RTB_R_WS] = "/ws",
    [RTB_R_ALIAS_TASKS] = "/tasks",
    [RTB_R_ALIAS_TASK] = "/tasks/:t",
    [RTB_R_ALIAS_MOVE] = "/tasks/:t/move",
    [RTB_R_PRESENCE] = "/boards/:b/presence",
};

/* The route's canonical path from its shape and r's parameters, into buf (256 bytes). */
static void fuzz_router_canonical(const rtb_route_t *r, char *buf)
{
    const char *shape = fuzz_router_shapes[r->id];
    const char *b, *l, *t;
    size_t pos = 0;

    FUZZ_CHECK(shape != NULL); /* a route this driver has no shape for */
    b = strstr(shape, ":b");
    l = strstr(shape, ":l");
    t = strstr(shape, ":t");

    /* Each parameter is present exactly when the shape has it. */
    FUZZ_CHECK(!!b == (r->board[0] != '\0'));
    FUZZ_CHECK(!!l == (r->list != 0));
    FUZZ_CHECK(!!t == (r->task != 0));
    for (const char *p = shape; *p;) {
        if (p[0] == ':') {
            if (p[1] == 'b') {
                pos += (size_t)snprintf(buf + pos, 256 - pos, "%s", r->board);
            } else {
                pos +=
                    (size_t)snprintf(buf + pos, 256 - pos, "%lld", p[1] == 'l' ? r->list : r->task);
            }
            p += 2;
        } else {
            buf[pos++] = *p++;
        }
        FUZZ_CHECK(pos < 256);
    }
    buf[pos] = '\0';
}

static int fuzz_router_same(const rtb_route_t *a, const rtb_route_t *b)
{
    return a->id == b->id && a->allowed == b->allowed && strcmp(a->board, b->board) == 0 &&
           a->list == b->list && a->task == b->task;
}

/* The Allow header at every capacity up to one past the full value. */
static void fuzz_router_allow(int allowed)
{
    char full[128];
    size_t flen, names = 0;

    rtb_allow_header(allowed, full, sizeof(full));
    flen = strlen(full);
    for (size_t i = 0; i < FUZZ_ROUTER_NMETHODS; i++) {
        const char *name = fuzz_router_methods[i].name;
        if (name && (allowed & fuzz_router_methods[i].bit)) {
            FUZZ_CHECK(strstr(full, name) != NULL);
            names++;
        }
    }
    FUZZ_CHECK(flen == 0 ? names == 0 : flen + 1 >= 3 * names);
    for (size_t cap = 0; cap <= flen + 1; cap++) {
        char *buf = malloc(cap ? cap : 1);
        size_t len;

        FUZZ_CHECK(buf != NULL);
        FUZZ_CHECK(rtb_allow_header(allowed, buf, cap) == buf);
        if (cap > 0) {
            len = strnlen(buf, cap);
            FUZZ_CHECK(len < cap);
            FUZZ_CHECK(memcmp(buf, full, len) == 0);
            /* Cut only between names: next comes ", " or the end. */
            FUZZ_CHECK(len == 0 || full[len] == '\0' || full[len] == ',');
            FUZZ_CHECK(cap <= flen || len == flen);
            fuzz_router_sink += len;
        }
        free(buf);
    }
}

/* Routes path for every method and checks the answers against each other. */
static void fuzz_router_path(const char *path, int m)
{
    rtb_route_t r, other;
    int rc = rtb_route(path, m, &r);

    FUZZ_CHECK(rc == RTB_ROUTE_OK || rc == RTB_ROUTE_NOT_FOUND || rc == RTB_ROUTE_BAD_METHOD ||
               rc == RTB_ROUTE_BAD_ID);
    FUZZ_CHECK(memchr(r.board, '\0', sizeof(r.board)) != NULL);
    if (rc == RTB_ROUTE_NOT_FOUND || rc == RTB_ROUTE_BAD_ID) {
        FUZZ_CHECK(r.id == RTB_R_NONE && r.allowed == 0);
        /* Only a board, list or task id can be malformed. */
        FUZZ_CHECK(rc == RTB_ROUTE_NOT_FOUND || strncmp(path, "/boards/", 8) == 0 ||
                   strncmp(path, "/tasks/", 7) == 0);
        fuzz_router_sink += (uint64_t)-rc;
    } else {
        char canon[256], slashed[258];
        size_t clen;

        FUZZ_CHECK(r.id > RTB_R_NONE && r.id < RTB_R__COUNT);
        FUZZ_CHECK(r.allowed != 0);
        FUZZ_CHECK((r.allowed & RTB_M_OTHER) == 0);
        FUZZ_CHECK(!(r.allowed & RTB_M_GET) == !(r.allowed & RTB_M_HEAD));
        FUZZ_CHECK((rc == RTB_ROUTE_OK) == !!(r.allowed & (m == RTB_M_HEAD ? RTB_M_GET : m)));
        if (r.board[0]) {
            FUZZ_CHECK(rtb_board_id_valid(r.board, strlen(r.board)));
        }
        FUZZ_CHECK(r.list >= 0 && (uint64_t)r.list <= RTB_ID_MAX);
        FUZZ_CHECK(r.task >= 0 && (uint64_t)r.task <= RTB_ID_MAX);

        fuzz_router_canonical(&r, canon);
        clen = strlen(canon);
        FUZZ_CHECK(strncmp(path, canon, clen) == 0);
        FUZZ_CHECK(path[clen] == '\0' || (path[clen] == '/' && path[clen + 1] == '\0'));
        snprintf(slashed, sizeof(slashed), "%s/", canon);
        FUZZ_CHECK(rtb_route(canon, m, &other) == rc && fuzz_router_same(&r, &other));
        FUZZ_CHECK(rtb_route(slashed, m, &other) == rc && fuzz_router_same(&r, &other));
        fuzz_router_allow(r.allowed);
        fuzz_router_sink += (uint64_t)r.id + (uint64_t)r.list + (uint64_t)r.task;
        fuzz_router_sink = fuzz_hash(fuzz_router_sink, r.board, strlen(r.board));
    }

    /* Another method changes nothing but OK versus BAD_METHOD. */
    for (size_t i = 0; i < FUZZ_ROUTER_NMETHODS; i++) {
        int m2 = fuzz_router_methods[i].bit;
        int rc2 = rtb_route(path, m2, &other);

        FUZZ_CHECK(fuzz_router_same(&r, &other));
        if (rc == RTB_ROUTE_OK || rc == RTB_ROUTE_BAD_METHOD) {
            FUZZ_CHECK(rc2 == RTB_ROUTE_OK || rc2 == RTB_ROUTE_BAD_METHOD);
        } else {
            FUZZ_CHECK(rc2 == rc);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *space = memchr(data, ' ', size);
    size_t mlen = space ? (size_t)(space - data) : 0;
    char *method = fuzz_copy(data, mlen, 1);
    char *path = space ? fuzz_copy(space + 1, size - mlen - 1, 1) : fuzz_copy(data, size, 1);
    int m = space ? rtb_method_bit(method) : RTB_M_GET;
    int known = 0;
    rtb_route_t r;

    for (size_t i = 0; i < FUZZ_ROUTER_NMETHODS; i++) {
        const char *name = fuzz_router_methods[i].name;

        if (name && strcmp(method, name) == 0) {
            FUZZ_CHECK(m == fuzz_router_methods[i].bit);
            known = 1;
        }
    }
    FUZZ_CHECK(known || m == (space ? RTB_M_OTHER : RTB_M_GET));

    FUZZ_CHECK(rtb_route(NULL, m, &r) == RTB_ROUTE_NOT_FOUND && r.id == RTB_R_NONE);
    fuzz_router_path(path, m);
    /* The same path seen from the mount point's other side: without its leading slash. */
    if (path[0] == '/') {
        FUZZ_CHECK(path[1] == '/' || rtb_route(path + 1, m, &r) == RTB_ROUTE_NOT_FOUND);
    }

    free(method);
    free(path);
    return 0;
}
