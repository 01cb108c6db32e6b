/*
 * Unit tests for rtb_router: the route table, method checks and Allow values,
 * path shapes that never match, malformed ids, and random paths.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/rtb_ids.c"
#include "../../src/rtb_router.c"

#define GH (RTB_M_GET | RTB_M_HEAD)
#define ALL_KNOWN_BITS                                                                             \
    (RTB_M_GET | RTB_M_POST | RTB_M_PATCH | RTB_M_DELETE | RTB_M_HEAD | RTB_M_OPTIONS | RTB_M_OTHER)

/* 64 and 65 characters: the longest board id, and one too long. */
#define B64 "b123456789012345678901234567890123456789012345678901234567890123"
#define B65 B64 "4"

typedef struct {
    const char *path;
    rtb_route_id_t id;
    int allowed; /* out->allowed: HEAD is added wherever GET is */
    const char *allow;
    const char *board;
    long long list, task;
} route_case_t;

static const route_case_t routes[] = {
    {"/boards", RTB_R_BOARDS, GH | RTB_M_POST, "GET, HEAD, POST", "", 0, 0},
    {"/boards/demo", RTB_R_BOARD, GH | RTB_M_PATCH | RTB_M_DELETE, "GET, HEAD, PATCH, DELETE",
     "demo", 0, 0},
    {"/boards/demo/lists", RTB_R_LISTS, RTB_M_POST, "POST", "demo", 0, 0},
    {"/boards/demo/lists/7", RTB_R_LIST, RTB_M_PATCH | RTB_M_DELETE, "PATCH, DELETE", "demo", 7, 0},
    {"/boards/demo/tasks", RTB_R_TASKS, GH | RTB_M_POST, "GET, HEAD, POST", "demo", 0, 0},
    {"/boards/demo/tasks/42", RTB_R_TASK, GH | RTB_M_PATCH | RTB_M_DELETE,
     "GET, HEAD, PATCH, DELETE", "demo", 0, 42},
    {"/boards/demo/tasks/42/move", RTB_R_TASK_MOVE, RTB_M_PATCH, "PATCH", "demo", 0, 42},
    {"/boards/demo/updates", RTB_R_UPDATES, GH, "GET, HEAD", "demo", 0, 0},
    {"/boards/demo/poll", RTB_R_POLL, GH, "GET, HEAD", "demo", 0, 0},
    {"/boards/demo/events", RTB_R_EVENTS, GH, "GET, HEAD", "demo", 0, 0},
    {"/boards/demo/ws", RTB_R_BOARD_WS, GH, "GET, HEAD", "demo", 0, 0},
    {"/boards/demo/ws-ticket", RTB_R_WS_TICKET, RTB_M_POST, "POST", "demo", 0, 0},
    {"/boards/demo/presence", RTB_R_PRESENCE, GH, "GET, HEAD", "demo", 0, 0},
    {"/events", RTB_R_MULTI_EVENTS, GH, "GET, HEAD", "", 0, 0},
    {"/ws", RTB_R_WS, GH, "GET, HEAD", "", 0, 0},
    {"/tasks", RTB_R_ALIAS_TASKS, RTB_M_POST, "POST", "", 0, 0},
    {"/tasks/9", RTB_R_ALIAS_TASK, RTB_M_DELETE, "DELETE", "", 0, 9},
    {"/tasks/9/move", RTB_R_ALIAS_MOVE, RTB_M_PATCH, "PATCH", "", 0, 9},
    /* boundaries of the id syntax that still match */
    {"/boards/" B64, RTB_R_BOARD, GH | RTB_M_PATCH | RTB_M_DELETE, "GET, HEAD, PATCH, DELETE", B64,
     0, 0},
    {"/boards/0", RTB_R_BOARD, GH | RTB_M_PATCH | RTB_M_DELETE, "GET, HEAD, PATCH, DELETE", "0", 0,
     0},
    {"/boards/a-_9/tasks/1", RTB_R_TASK, GH | RTB_M_PATCH | RTB_M_DELETE,
     "GET, HEAD, PATCH, DELETE", "a-_9", 0, 1},
    {"/boards/q/lists/9007199254740991", RTB_R_LIST, RTB_M_PATCH | RTB_M_DELETE, "PATCH, DELETE",
     "q", 9007199254740991LL, 0},
    {"/tasks/9007199254740991/move", RTB_R_ALIAS_MOVE, RTB_M_PATCH, "PATCH", "", 0,
     9007199254740991LL},
    /* segment names that are board ids too */
    {"/boards/boards/tasks", RTB_R_TASKS, GH | RTB_M_POST, "GET, HEAD, POST", "boards", 0, 0},
    {"/boards/ws/ws", RTB_R_BOARD_WS, GH, "GET, HEAD", "ws", 0, 0},
};

static const struct {
    const char *name;
    int bit;
} methods[] = {
    {"GET", RTB_M_GET},     {"HEAD", RTB_M_HEAD},     {"POST", RTB_M_POST},
    {"PATCH", RTB_M_PATCH}, {"DELETE", RTB_M_DELETE}, {"OPTIONS", RTB_M_OPTIONS},
    {"PUT", RTB_M_OTHER},   {"get", RTB_M_OTHER},     {"GETX", RTB_M_OTHER},
    {"", RTB_M_OTHER},      {"CONNECT", RTB_M_OTHER}, {"TRACE", RTB_M_OTHER},
};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static void test_method_bit(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(methods); i++) {
        if (rtb_method_bit(methods[i].name) != methods[i].bit)
            fail_msg("method \"%s\": %d, expected %d", methods[i].name,
                     rtb_method_bit(methods[i].name), methods[i].bit);
    }
    assert_int_equal(rtb_method_bit(NULL), RTB_M_OTHER);
}

/* Checks one route case for one method bit; `path` may differ from c->path (trailing slash). */
static void check_route(const route_case_t *c, const char *path, int m)
{
    rtb_route_t out;
    char allow[64];
    int want_ok = ((m == RTB_M_HEAD ? RTB_M_GET : m) & c->allowed) != 0;
    int rc;

    memset(&out, 0xA5, sizeof(out)); /* rtb_route must set every field */
    rc = rtb_route(path, m, &out);
    if (rc != (want_ok ? RTB_ROUTE_OK : RTB_ROUTE_BAD_METHOD))
        fail_msg("%s (method bit %d): rc %d, expected %s", path, m, rc,
                 want_ok ? "OK" : "BAD_METHOD");
    if (out.id != c->id)
        fail_msg("%s (method bit %d): route %d, expected %d", path, m, out.id, c->id);
    if (out.allowed != c->allowed)
        fail_msg("%s (method bit %d): allowed %#x, expected %#x", path, m, out.allowed, c->allowed);
    assert_string_equal(out.board, c->board);
    assert_int_equal(out.list, c->list);
    assert_int_equal(out.task, c->task);
    assert_string_equal(rtb_allow_header(out.allowed, allow, sizeof(allow)), c->allow);
}

static void test_routes_every_method(void **state)
{
    int seen[RTB_R__COUNT] = {0};
    (void)state;
    for (size_t i = 0; i < N_ELEMS(routes); i++) {
        const route_case_t *c = &routes[i];
        char slash[128];
        snprintf(slash, sizeof(slash), "%s/", c->path);
        seen[c->id]++;
        for (size_t k = 0; k < N_ELEMS(methods); k++) {
            check_route(c, c->path, methods[k].bit);
            check_route(c, slash, methods[k].bit);
        }
        /* a bit set that is no single method is never allowed alone */
        check_route(c, c->path, 0);
    }
    /* the table above covers every route id */
    for (int id = RTB_R_NONE + 1; id < RTB_R__COUNT; id++) {
        if (!seen[id])
            fail_msg("route id %d has no test case", id);
    }
}

static void test_head_is_get(void **state)
{
    rtb_route_t a, b;
    (void)state;
    for (size_t i = 0; i < N_ELEMS(routes); i++) {
        int ra = rtb_route(routes[i].path, RTB_M_GET, &a);
        int rb = rtb_route(routes[i].path, RTB_M_HEAD, &b);
        assert_int_equal(ra, rb);
        assert_int_equal(a.id, b.id);
        assert_int_equal(a.allowed, b.allowed);
        /* HEAD is never listed without GET, and always with it */
        assert_int_equal(!!(a.allowed & RTB_M_GET), !!(a.allowed & RTB_M_HEAD));
    }
}

typedef struct {
    const char *path;
    int rc;
} bad_case_t;

static const bad_case_t bad_paths[] = {
    /* not a path, or the root */
    {"", RTB_ROUTE_NOT_FOUND},
    {"/rtboard-status", RTB_ROUTE_NOT_FOUND}, /* only its own handler, where it is mounted */
    {"boards", RTB_ROUTE_NOT_FOUND},
    {"boards/demo", RTB_ROUTE_NOT_FOUND},
    {"/", RTB_ROUTE_NOT_FOUND},
    {"//", RTB_ROUTE_NOT_FOUND},
    {"///", RTB_ROUTE_NOT_FOUND},
    /* empty segments: only one trailing slash is tolerated */
    {"//boards", RTB_ROUTE_NOT_FOUND},
    {"/boards//", RTB_ROUTE_NOT_FOUND},
    {"/boards//demo", RTB_ROUTE_NOT_FOUND},
    {"/boards/demo//", RTB_ROUTE_NOT_FOUND},
    {"/boards/demo//tasks", RTB_ROUTE_NOT_FOUND},
    {"/boards/demo/tasks//", RTB_ROUTE_NOT_FOUND},
    {"/boards/demo/tasks//1", RTB_ROUTE_NOT_FOUND},
    {"/tasks//1", RTB_ROUTE_NOT_FOUND},
    {"/events//", RTB_ROUTE_NOT_FOUND},
    /* dot segments */
    {"/.", RTB_ROUTE_NOT_FOUND},
    {"/..", RTB_ROUTE_NOT_FOUND},
    {"/./boards", RTB_ROUTE_NOT_FOUND},
    {"/../boards", RTB_ROUTE_NOT_FOUND},
    {"/boards/.", RTB_ROUTE_NOT_FOUND},
    {"/boards/..", RTB_ROUTE_NOT_FOUND},
    {"/boards/./", RTB_ROUTE_NOT_FOUND},
    {"/boards/demo/.", RTB_ROUTE_NOT_FOUND},
    {"/boards/demo/..", RTB_ROUTE_NOT_FOUND},
    {"/boards/demo/../demo", RTB_ROUTE_NOT_FOUND},
    {"/boards/demo/./tasks", RTB_ROUTE_NOT_FOUND},
    {"/boards/demo/tasks/1/..", RTB_ROUTE_NOT_FOUND},
    {"/tasks/1/.", RTB_ROUTE_NOT_FOUND},
    /* unknown paths */
    {"/board", RTB_ROUTE_NOT_FOUND},
    {"/boardsx", RTB_ROUTE_NOT_FOUND},
    {"/Boards", RTB_ROUTE_NOT_FOUND},
    {"/BOARDS", RTB_ROUTE_NOT_FOUND},
    {"/boards.json", RTB_ROUTE_NOT_FOUND},
    {"/unknown", RTB_ROUTE_NOT_FOUND},
    {"/status", RTB_ROUTE_NOT_FOUND},
    {"/rtboard-status/x", RTB_ROUTE_NOT_FOUND},
    {"/events/demo", RTB_ROUTE_NOT_FOUND},
    {"/ws/demo", RTB_ROUTE_NOT_FOUND},
    {"/ws-ticket", RTB_ROUTE_NOT_FOUND},
    {"/lists", RTB_ROUTE_NOT_FOUND},
    {"/lists/1", RTB_ROUTE_NOT_FOUND},
    {"/boards/demo/list", RTB_ROUTE_NOT_FOUND},
    {"/boards/demo/Tasks", RTB_ROUTE_NOT_FOUND},
    {"/boards/demo/stream", RTB_ROUTE_NOT_FOUND},
    {"/boards/demo/ws-tickets", RTB_ROUTE_NOT_FOUND},
    {"/boards/demo/updates/1", RTB_ROUTE_NOT_FOUND},
    {"/boards/demo/poll/x", RTB_ROUTE_NOT_FOUND},
    {"/boards/demo/events/x", RTB_ROUTE_NOT_FOUND},
    {"/boards/demo/ws/x", RTB_ROUTE_NOT_FOUND},
    {"/boards/demo/lists/1/move", RTB_ROUTE_NOT_FOUND},
    {"/boards/demo/tasks/1/moves", RTB_ROUTE_NOT_FOUND},
    {"/boards/demo/tasks/1/Move", RTB_ROUTE_NOT_FOUND},
    {"/tasks/1/x", RTB_ROUTE_NOT_FOUND},
    {"/tasks/1/move/x", RTB_ROUTE_NOT_FOUND},
    /* too many segments */
    {"/boards/demo/tasks/1/move/x", RTB_ROUTE_NOT_FOUND},
    {"/boards/demo/tasks/1/move/x/", RTB_ROUTE_NOT_FOUND},
    {"/a/b/c/d/e/f", RTB_ROUTE_NOT_FOUND},
    {"/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p", RTB_ROUTE_NOT_FOUND},
    /* bad board slugs */
    {"/boards/Demo", RTB_ROUTE_BAD_ID},
    {"/boards/DEMO/tasks", RTB_ROUTE_BAD_ID},
    {"/boards/demO/tasks/1", RTB_ROUTE_BAD_ID},
    {"/boards/" B65, RTB_ROUTE_BAD_ID},
    {"/boards/" B65 "/tasks", RTB_ROUTE_BAD_ID},
    {"/boards/-demo", RTB_ROUTE_BAD_ID},
    {"/boards/_demo", RTB_ROUTE_BAD_ID},
    {"/boards/-", RTB_ROUTE_BAD_ID},
    {"/boards/de%6Do", RTB_ROUTE_BAD_ID},
    {"/boards/%64emo/tasks", RTB_ROUTE_BAD_ID},
    {"/boards/a%2Fb", RTB_ROUTE_BAD_ID},
    {"/boards/a.b", RTB_ROUTE_BAD_ID},
    {"/boards/a b", RTB_ROUTE_BAD_ID},
    {"/boards/a+b", RTB_ROUTE_BAD_ID},
    {"/boards/...", RTB_ROUTE_BAD_ID},
    {"/boards/\xc3\xa9t\xc3\xa9", RTB_ROUTE_BAD_ID},
    /* bad list and task ids */
    {"/boards/demo/lists/0", RTB_ROUTE_BAD_ID},
    {"/boards/demo/lists/00", RTB_ROUTE_BAD_ID},
    {"/boards/demo/lists/01", RTB_ROUTE_BAD_ID},
    {"/boards/demo/lists/-1", RTB_ROUTE_BAD_ID},
    {"/boards/demo/lists/+1", RTB_ROUTE_BAD_ID},
    {"/boards/demo/lists/1a", RTB_ROUTE_BAD_ID},
    {"/boards/demo/lists/a1", RTB_ROUTE_BAD_ID},
    {"/boards/demo/lists/1.0", RTB_ROUTE_BAD_ID},
    {"/boards/demo/lists/1e3", RTB_ROUTE_BAD_ID},
    {"/boards/demo/lists/0x10", RTB_ROUTE_BAD_ID},
    {"/boards/demo/lists/%31", RTB_ROUTE_BAD_ID},
    {"/boards/demo/lists/9007199254740992", RTB_ROUTE_BAD_ID},
    {"/boards/demo/tasks/0", RTB_ROUTE_BAD_ID},
    {"/boards/demo/tasks/007", RTB_ROUTE_BAD_ID},
    {"/boards/demo/tasks/x", RTB_ROUTE_BAD_ID},
    {"/boards/demo/tasks/9007199254740992", RTB_ROUTE_BAD_ID},
    {"/boards/demo/tasks/9999999999999999", RTB_ROUTE_BAD_ID},
    {"/boards/demo/tasks/10000000000000000", RTB_ROUTE_BAD_ID},    /* 17 digits */
    {"/boards/demo/tasks/18446744073709551617", RTB_ROUTE_BAD_ID}, /* wraps a uint64 */
    {"/boards/demo/tasks/0/move", RTB_ROUTE_BAD_ID},
    {"/boards/demo/tasks/12345678901234567/move", RTB_ROUTE_BAD_ID}, /* 17 digits */
    {"/tasks/0", RTB_ROUTE_BAD_ID},
    {"/tasks/01", RTB_ROUTE_BAD_ID},
    {"/tasks/abc", RTB_ROUTE_BAD_ID},
    {"/tasks/-5/move", RTB_ROUTE_BAD_ID},
    {"/tasks/9007199254740992/move", RTB_ROUTE_BAD_ID},
};

static void test_bad_paths(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(bad_paths); i++) {
        const bad_case_t *c = &bad_paths[i];
        static const int ms[] = {RTB_M_GET, RTB_M_POST, RTB_M_PATCH, RTB_M_DELETE, RTB_M_OTHER};
        for (size_t k = 0; k < N_ELEMS(ms); k++) {
            rtb_route_t out;
            int rc;
            memset(&out, 0xA5, sizeof(out));
            rc = rtb_route(c->path, ms[k], &out);
            if (rc != c->rc)
                fail_msg("\"%s\" (method bit %d): rc %d, expected %d", c->path, ms[k], rc, c->rc);
            /* no route was chosen, so there is nothing for an Allow header */
            assert_int_equal(out.id, RTB_R_NONE);
            assert_int_equal(out.allowed, 0);
            assert_true(memchr(out.board, '\0', sizeof(out.board)) != NULL);
        }
    }
}

static void test_null_path(void **state)
{
    rtb_route_t out;
    (void)state;
    assert_int_equal(rtb_route(NULL, RTB_M_GET, &out), RTB_ROUTE_NOT_FOUND);
    assert_int_equal(out.id, RTB_R_NONE);
}

static void test_allow_header(void **state)
{
    char buf[64];
    (void)state;
    assert_string_equal(rtb_allow_header(0, buf, sizeof(buf)), "");
    assert_string_equal(rtb_allow_header(RTB_M_OTHER, buf, sizeof(buf)), "");
    assert_string_equal(rtb_allow_header(RTB_M_DELETE, buf, sizeof(buf)), "DELETE");
    /* fixed order, whatever the order of the bits */
    assert_string_equal(rtb_allow_header(RTB_M_DELETE | RTB_M_GET, buf, sizeof(buf)),
                        "GET, DELETE");
    assert_string_equal(rtb_allow_header(ALL_KNOWN_BITS, buf, sizeof(buf)),
                        "GET, HEAD, POST, PATCH, DELETE, OPTIONS");
    /* a short buffer keeps whole names only and stays terminated */
    assert_string_equal(rtb_allow_header(GH | RTB_M_POST, buf, 10), "GET, HEAD");
    assert_string_equal(rtb_allow_header(GH | RTB_M_POST, buf, 9), "GET");
    assert_string_equal(rtb_allow_header(GH, buf, 4), "GET");
    assert_string_equal(rtb_allow_header(GH, buf, 3), "");
    assert_string_equal(rtb_allow_header(GH, buf, 1), "");
    buf[0] = 'x';
    assert_ptr_equal(rtb_allow_header(GH, buf, 0), buf);
    assert_int_equal(buf[0], 'x'); /* cap 0: nothing written */
}

/* Pieces random paths are built from, so some of them get deep into the table. */
static const char *const pieces[] = {
    "boards",
    "tasks",
    "lists",
    "move",
    "events",
    "ws",
    "ws-ticket",
    "poll",
    "updates",
    "rtboard-status",
    "demo",
    "1",
    "0",
    "01",
    "9007199254740991",
    "9007199254740992",
    ".",
    "..",
    "",
    "A",
    "-x",
    B64,
    B65,
};

static void test_random_paths(void **state)
{
    unsigned seed = 0x5eed;
    (void)state;
    for (int iter = 0; iter < 200000; iter++) {
        char path[256];
        size_t n = 0;
        int segs = (int)(rand_r(&seed) % 8);
        rtb_route_t out;
        int m = 1 << (rand_r(&seed) % 7);
        int rc;

        if (rand_r(&seed) % 16)
            path[n++] = '/';
        for (int s = 0; s < segs && n < sizeof(path) - 80; s++) {
            if (rand_r(&seed) % 2) {
                const char *p = pieces[rand_r(&seed) % N_ELEMS(pieces)];
                size_t len = strlen(p);
                memcpy(path + n, p, len);
                n += len;
            } else {
                int len = (int)(rand_r(&seed) % 12);
                for (int k = 0; k < len; k++)
                    path[n++] = (char)(' ' + rand_r(&seed) % 95); /* printable ASCII */
            }
            if (s + 1 < segs || rand_r(&seed) % 4 == 0)
                path[n++] = '/';
        }
        path[n] = '\0';

        memset(&out, 0xA5, sizeof(out));
        rc = rtb_route(path, m, &out);
        switch (rc) {
        case RTB_ROUTE_OK:
        case RTB_ROUTE_BAD_METHOD:
            if (out.id <= RTB_R_NONE || out.id >= RTB_R__COUNT)
                fail_msg("\"%s\": route id %d", path, out.id);
            assert_int_not_equal(out.allowed, 0);
            assert_int_equal(out.allowed & ~ALL_KNOWN_BITS, 0);
            assert_int_equal(rc == RTB_ROUTE_OK,
                             ((m == RTB_M_HEAD ? RTB_M_GET : m) & out.allowed) != 0);
            assert_true(memchr(out.board, '\0', sizeof(out.board)) != NULL);
            if (out.board[0])
                assert_true(rtb_board_id_valid(out.board, strlen(out.board)));
            assert_true(out.list >= 0 && out.list <= (long long)RTB_ID_MAX);
            assert_true(out.task >= 0 && out.task <= (long long)RTB_ID_MAX);
            break;
        case RTB_ROUTE_NOT_FOUND:
        case RTB_ROUTE_BAD_ID:
            assert_int_equal(out.id, RTB_R_NONE);
            break;
        default:
            fail_msg("\"%s\": rc %d is no rtb_route_status_t", path, rc);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_method_bit),   cmocka_unit_test(test_routes_every_method),
        cmocka_unit_test(test_head_is_get),  cmocka_unit_test(test_bad_paths),
        cmocka_unit_test(test_null_path),    cmocka_unit_test(test_allow_header),
        cmocka_unit_test(test_random_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
