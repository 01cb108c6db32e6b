/*
 * Unit tests for rtb_ptable: a user counted once across sockets, diffs
 * coalesced per window, the first page kept by appending joiners and
 * removing leavers, a full table refusing, reaping a dead owner, and a
 * random run whose diffs, applied by a client, always give the table's own
 * first page and count.
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
#include "../../src/rtb_ptable.c"

#define WIN 200000u

static rtb_ptable_t *table_new(uint32_t slots)
{
    size_t n = rtb_ptable_block_size(slots);
    void *b = calloc(1, n);
    assert_non_null(b);
    return rtb_ptable_format(b, n, slots);
}

/* A client's view: the first page (user ids) and the count, at a version. */
typedef struct {
    char page[64][16];
    uint32_t n, count;
    uint64_t version;
    int diffs, gaps;
} view_t;

static void view_apply(void *arg, const rtb_ptable_diff_t *d)
{
    view_t *v = arg;
    uint32_t i, j, k;
    v->diffs++;
    if (d->base != v->version) {
        v->gaps++;
        return;
    }
    for (i = 0; i < d->nleft; i++) {
        for (j = 0; j < v->n; j++) {
            if (!strcmp(v->page[j], d->left[i].user)) {
                for (k = j; k + 1 < v->n; k++)
                    memcpy(v->page[k], v->page[k + 1], sizeof(v->page[k]));
                v->n--;
                break;
            }
        }
    }
    for (i = 0; i < d->njoined; i++)
        snprintf(v->page[v->n++], sizeof(v->page[0]), "%s", d->joined[i].user);
    v->count = d->count;
    v->version = d->version;
}

static void view_check(const rtb_ptable_t *t, const char *board, const view_t *v, uint32_t page)
{
    rtb_ptable_user_t out[64];
    uint64_t version;
    uint32_t count, n = rtb_ptable_page(t, board, 0, page, out, &version, &count), i;
    assert_int_equal(v->gaps, 0);
    assert_int_equal(count, v->count);
    assert_int_equal(n, v->n);
    for (i = 0; i < n; i++)
        assert_string_equal(out[i].user, v->page[i]);
    if (count)
        assert_true(version == v->version);
}

static void test_user_counts_once_and_window_coalesces(void **state)
{
    rtb_ptable_t *t = table_new(64);
    rtb_ptable_user_t scratch[16];
    view_t v = {0};
    (void)state;
    assert_int_equal(rtb_ptable_join(t, "b", "alice", "Alice", 10, 1, 0, WIN), RTB_PT_OK);
    assert_int_equal(rtb_ptable_join(t, "b", "alice", "Alice", 11, 1, 0, WIN), RTB_PT_OK);
    assert_int_equal(rtb_ptable_join(t, "b", "alice", "Alice", 11, 1, 0, WIN), RTB_PT_EXISTS);
    assert_int_equal(rtb_ptable_join(t, "b", "bob", "bob", 10, 2, 1000, WIN), RTB_PT_OK);
    assert_int_equal(rtb_ptable_sockets(t, "b", "alice"), 2);
    /* carol comes and goes within the window: never announced */
    assert_int_equal(rtb_ptable_join(t, "b", "carol", "carol", 10, 3, 1000, WIN), RTB_PT_OK);
    assert_int_equal(rtb_ptable_leave(t, "b", 10, 3, 2000, WIN, NULL), RTB_PT_OK);
    assert_int_equal(rtb_ptable_due(t), WIN);
    assert_int_equal(rtb_ptable_flush(t, WIN - 1, 8, scratch, view_apply, &v), 0);
    assert_int_equal(rtb_ptable_flush(t, WIN, 8, scratch, view_apply, &v), 1);
    assert_int_equal(v.diffs, 1);
    view_check(t, "b", &v, 8);
    assert_int_equal(v.count, 2);
    assert_int_equal(rtb_ptable_due(t), 0);
    /* one of alice's two sockets goes: nothing to announce */
    assert_int_equal(rtb_ptable_leave(t, "b", 10, 1, WIN + 1, WIN, NULL), RTB_PT_OK);
    assert_int_equal(rtb_ptable_leave(t, "b", 10, 1, WIN + 1, WIN, NULL), RTB_PT_NOT_FOUND);
    assert_int_equal(rtb_ptable_flush(t, 3 * WIN, 8, scratch, view_apply, &v), 0);
    /* her last one goes */
    assert_int_equal(rtb_ptable_leave(t, "b", 11, 1, 3 * WIN, WIN, NULL), RTB_PT_OK);
    assert_int_equal(rtb_ptable_sockets(t, "b", "alice"), 0);
    assert_int_equal(rtb_ptable_flush(t, 4 * WIN, 8, scratch, view_apply, &v), 1);
    view_check(t, "b", &v, 8);
    assert_int_equal(v.count, 1);
    assert_string_equal(v.page[0], "bob");
    free(t);
}

static void test_first_page_diffs(void **state)
{
    rtb_ptable_t *t = table_new(64);
    rtb_ptable_user_t scratch[8];
    view_t v = {0};
    char u[16];
    int i;
    (void)state;
    for (i = 0; i < 10; i++) {
        snprintf(u, sizeof(u), "u%d", i);
        assert_int_equal(rtb_ptable_join(t, "b", u, u, 7, (uint32_t)i + 1, 0, WIN), RTB_PT_OK);
    }
    rtb_ptable_flush(t, WIN, 4, scratch, view_apply, &v);
    view_check(t, "b", &v, 4);
    assert_int_equal(v.count, 10);
    assert_string_equal(v.page[3], "u3");
    /* u1 (on the page) and u8 (off it) leave, u10 joins */
    rtb_ptable_leave(t, "b", 7, 2, WIN, WIN, NULL);
    rtb_ptable_leave(t, "b", 7, 9, WIN, WIN, NULL);
    rtb_ptable_join(t, "b", "u10", "u10", 7, 11, WIN, WIN);
    rtb_ptable_flush(t, 2 * WIN, 4, scratch, view_apply, &v);
    view_check(t, "b", &v, 4);
    assert_int_equal(v.count, 9);
    assert_string_equal(v.page[3], "u4");
    free(t);
}

static void test_full_table_refuses_and_undoes(void **state)
{
    rtb_ptable_t *t = table_new(2);
    uint32_t leases, users, boards;
    (void)state;
    assert_int_equal(rtb_ptable_join(t, "a", "x", "x", 1, 1, 0, WIN), RTB_PT_OK);
    assert_int_equal(rtb_ptable_join(t, "a", "y", "y", 1, 2, 0, WIN), RTB_PT_OK);
    assert_int_equal(rtb_ptable_join(t, "c", "z", "z", 1, 3, 0, WIN), RTB_PT_FULL);
    assert_int_equal(rtb_ptable_join(t, "a", "x", "x", 1, 4, 0, WIN), RTB_PT_FULL);
    rtb_ptable_usage(t, &leases, &users, &boards);
    assert_int_equal(leases, 2);
    assert_int_equal(users, 2);
    assert_int_equal(boards, 1);
    assert_int_equal(rtb_ptable_leave(t, "a", 1, 2, 0, WIN, NULL), RTB_PT_OK);
    assert_int_equal(rtb_ptable_join(t, "a", "x", "x", 1, 4, 0, WIN), RTB_PT_OK);
    free(t);
}

static int typing_seen;
static void on_typing(void *arg, const char *board, const char *user, const char *name,
                      int64_t task)
{
    (void)arg;
    (void)name;
    assert_string_equal(board, "b");
    assert_string_equal(user, "bob");
    assert_int_equal(task, 42);
    typing_seen++;
}

static void test_reap_of_a_dead_owner(void **state)
{
    rtb_ptable_t *t = table_new(16);
    rtb_ptable_user_t scratch[8];
    view_t v = {0};
    uint32_t pids[4];
    (void)state;
    rtb_ptable_join(t, "b", "alice", "alice", 100, 1, 0, WIN);
    rtb_ptable_join(t, "b", "bob", "bob", 200, 1, 0, WIN);
    rtb_ptable_join(t, "b", "bob", "bob", 200, 2, 0, WIN);
    rtb_ptable_set_typing(t, "b", 200, 2, 42);
    rtb_ptable_flush(t, WIN, 4, scratch, view_apply, &v);
    assert_int_equal(v.count, 2);
    assert_int_equal(rtb_ptable_owners(t, pids, 4), 2);
    assert_int_equal(rtb_ptable_reap(t, 200, WIN, WIN, on_typing, NULL), 2);
    assert_int_equal(typing_seen, 1);
    assert_int_equal(rtb_ptable_owners(t, pids, 4), 1);
    assert_int_equal(pids[0], 100);
    rtb_ptable_flush(t, 2 * WIN, 4, scratch, view_apply, &v);
    view_check(t, "b", &v, 4);
    assert_int_equal(v.count, 1);
    free(t);
}

/* Collects what rtb_ptable_each_local lists, as "board/user/name" lines. */
typedef struct {
    char rows[16][64];
    int n;
} rows_t;

static void collect(void *arg, const char *board, const char *user, const char *name)
{
    rows_t *r = arg;
    assert_true(r->n < 16);
    snprintf(r->rows[r->n++], sizeof(r->rows[0]), "%s/%s/%s", board, user, name);
}

static int rows_has(const rows_t *r, const char *row)
{
    int i;
    for (i = 0; i < r->n; i++) {
        if (!strcmp(r->rows[i], row))
            return 1;
    }
    return 0;
}

#define NODE_X (RTB_PTABLE_REMOTE | 7u)

static void count_diffs(void *arg, const rtb_ptable_diff_t *d)
{
    (void)d;
    (*(int *)arg)++;
}

/* Users of other nodes count in presence but are never listed as local. */
static void test_each_local_leaves_out_remote_users(void **state)
{
    rtb_ptable_t *t = table_new(32);
    rtb_ptable_user_t scratch[16];
    rows_t r = {0};
    uint64_t before, version;
    uint32_t count;
    int diffs = 0;
    (void)state;
    rtb_ptable_join(t, "b", "alice", "Alice", 100, 1, 0, WIN);
    rtb_ptable_join(t, "b", "alice", "Alice", 101, 1, 0, WIN); /* a second tab */
    rtb_ptable_join(t, "c", "alice", "Alice", 100, 1, 0, WIN);
    before = rtb_ptable_local_changes(t);
    /* bob only on node X; carol both here and on node X */
    rtb_ptable_join(t, "b", "bob", "bob", NODE_X, rtb_ids_hash64("bob", 3), 0, WIN);
    rtb_ptable_join(t, "b", "carol", "carol", NODE_X, rtb_ids_hash64("carol", 5), 0, WIN);
    assert_int_equal(rtb_ptable_local_changes(t), before);
    rtb_ptable_join(t, "b", "carol", "carol", 100, 2, 0, WIN);
    assert_int_equal(rtb_ptable_local_changes(t), before + 1);
    assert_int_equal(rtb_ptable_each_local(t, collect, &r), 3);
    assert_int_equal(r.n, 3);
    assert_true(rows_has(&r, "b/alice/Alice"));
    assert_true(rows_has(&r, "c/alice/Alice"));
    assert_true(rows_has(&r, "b/carol/carol"));
    rtb_ptable_flush(t, WIN, 8, scratch, count_diffs, &diffs);
    assert_int_equal(diffs, 2); /* boards b and c */
    rtb_ptable_page(t, "b", 0, 0, NULL, &version, &count);
    assert_int_equal(count, 3); /* alice, bob, carol */
    /* carol's local socket goes: she stays (node X), but is not local any more */
    rtb_ptable_leave(t, "b", 100, 2, WIN, WIN, NULL);
    assert_int_equal(rtb_ptable_each_local(t, NULL, NULL), 2);
    assert_int_equal(rtb_ptable_sockets(t, "b", "carol"), 1);
    /* a local user announced but gone is not listed while its diff is due */
    rtb_ptable_leave(t, "c", 100, 1, WIN, WIN, NULL);
    assert_int_equal(rtb_ptable_each_local(t, NULL, NULL), 1);
    free(t);
}

/* A full resend of node X replaces its previous users; typing of the gone ends. */
static void test_mark_and_sweep_replace_a_nodes_users(void **state)
{
    rtb_ptable_t *t = table_new(32);
    rtb_ptable_user_t scratch[16];
    view_t v = {0};
    int64_t typing = -1;
    uint32_t pids[4];
    (void)state;
    typing_seen = 0;
    rtb_ptable_join(t, "b", "alice", "alice", 100, 1, 0, WIN);
    rtb_ptable_join(t, "b", "bob", "bob", NODE_X, rtb_ids_hash64("bob", 3), 0, WIN);
    rtb_ptable_join(t, "b", "dan", "dan", NODE_X, rtb_ids_hash64("dan", 3), 0, WIN);
    assert_int_equal(rtb_ptable_set_typing(t, "b", NODE_X, rtb_ids_hash64("bob", 3), 42),
                     RTB_PT_OK);
    rtb_ptable_flush(t, WIN, 8, scratch, view_apply, &v);
    assert_int_equal(v.count, 3);
    assert_int_equal(v.diffs, 1);
    /* X resends: dan (again) and erin; bob is gone */
    assert_int_equal(rtb_ptable_mark(t, NODE_X), 2);
    assert_int_equal(rtb_ptable_mark(t, 100), 1);
    assert_int_equal(
        rtb_ptable_join(t, "b", "dan", "dan", NODE_X, rtb_ids_hash64("dan", 3), WIN, WIN),
        RTB_PT_EXISTS);
    assert_int_equal(
        rtb_ptable_join(t, "b", "erin", "erin", NODE_X, rtb_ids_hash64("erin", 4), WIN, WIN),
        RTB_PT_OK);
    /* another owner's marks are its own business: only X's are swept */
    assert_int_equal(rtb_ptable_sweep(t, NODE_X, WIN, WIN, on_typing, NULL), 1);
    assert_int_equal(typing_seen, 1);
    assert_int_equal(rtb_ptable_sockets(t, "b", "bob"), 0);
    assert_int_equal(rtb_ptable_sockets(t, "b", "dan"), 1);
    assert_int_equal(rtb_ptable_sockets(t, "b", "alice"), 1);
    rtb_ptable_flush(t, 2 * WIN, 8, scratch, view_apply, &v);
    view_check(t, "b", &v, 8);
    assert_int_equal(v.count, 3); /* alice, dan, erin */
    assert_int_equal(v.diffs, 2);
    /* a sweep and a join again of the same user within one window: no news */
    rtb_ptable_mark(t, NODE_X);
    rtb_ptable_sweep(t, NODE_X, 3 * WIN, WIN, NULL, NULL);
    rtb_ptable_join(t, "b", "dan", "dan", NODE_X, rtb_ids_hash64("dan", 3), 3 * WIN, WIN);
    rtb_ptable_join(t, "b", "erin", "erin", NODE_X, rtb_ids_hash64("erin", 4), 3 * WIN, WIN);
    rtb_ptable_flush(t, 4 * WIN, 8, scratch, view_apply, &v);
    assert_int_equal(v.diffs, 2);
    /* the node dies: reaped like a process */
    assert_int_equal(rtb_ptable_owners(t, pids, 4), 2);
    assert_int_equal(rtb_ptable_owner_leases(t, NODE_X), 2);
    assert_int_equal(rtb_ptable_owner_leases(t, 100), 1);
    assert_int_equal(rtb_ptable_reap(t, NODE_X, 5 * WIN, WIN, NULL, NULL), 2);
    assert_int_equal(rtb_ptable_owners(t, pids, 4), 1);
    assert_int_equal(pids[0], 100);
    assert_int_equal(rtb_ptable_owner_leases(t, NODE_X), 0);
    rtb_ptable_flush(t, 6 * WIN, 8, scratch, view_apply, &v);
    view_check(t, "b", &v, 8);
    assert_int_equal(v.count, 1);
    /* alice's own mark did not hurt her lease */
    assert_int_equal(rtb_ptable_leave(t, "b", 100, 1, 7 * WIN, WIN, &typing), RTB_PT_OK);
    assert_int_equal(typing, 0);
    free(t);
}

/* Lease keys are 64 bits: keys equal in their low 32 bits are distinct leases. */
static void test_lease_keys_are_64_bits(void **state)
{
    rtb_ptable_t *t = table_new(16);
    uint64_t k1 = UINT64_C(0x100000005), k2 = UINT64_C(0x200000005);
    int64_t typing = 0;
    (void)state;
    assert_int_equal(rtb_ptable_join(t, "b", "u1", "u1", NODE_X, k1, 0, WIN), RTB_PT_OK);
    assert_int_equal(rtb_ptable_join(t, "b", "u2", "u2", NODE_X, k2, 0, WIN), RTB_PT_OK);
    assert_int_equal(rtb_ptable_set_typing(t, "b", NODE_X, k2, 9), RTB_PT_OK);
    assert_int_equal(rtb_ptable_leave(t, "b", NODE_X, 5, 0, WIN, NULL), RTB_PT_NOT_FOUND);
    assert_int_equal(rtb_ptable_leave(t, "b", NODE_X, k1, 0, WIN, &typing), RTB_PT_OK);
    assert_int_equal(typing, 0);
    assert_int_equal(rtb_ptable_sockets(t, "b", "u2"), 1);
    assert_int_equal(rtb_ptable_leave(t, "b", NODE_X, k2, 0, WIN, &typing), RTB_PT_OK);
    assert_int_equal(typing, 9);
    assert_true(rtb_ids_hash64("bob", 3) != rtb_ids_hash64("bib", 3));
    free(t);
}

/* Routes a diff to the view of its board ("b0".."b2"). */
static void route(void *arg, const rtb_ptable_diff_t *d)
{
    view_t *vs = arg;
    view_apply(&vs[d->board[1] - '0'], d);
}

/* Random joins and leaves on 3 boards; a client per board applies the diffs. */
static void test_random_run_matches_the_table(void **state)
{
    rtb_ptable_t *t = table_new(300);
    rtb_ptable_user_t scratch[16];
    view_t v[3];
    char held[3][40]; /* which sockets hold a lease on which board */
    const char *boards[3] = {"b0", "b1", "b2"};
    uint64_t now = 0;
    uint32_t leases, users, nboards;
    int step, b, k, flushes = 0;
    (void)state;
    memset(v, 0, sizeof(v));
    memset(held, 0, sizeof(held));
    srand(7);
    for (step = 0; step < 20000; step++) {
        char u[16];
        k = rand() % 40;
        b = rand() % 3;
        snprintf(u, sizeof(u), "user%d", k % 13);
        now += (uint64_t)(rand() % 50000);
        if (!held[b][k]) {
            assert_int_equal(
                rtb_ptable_join(t, boards[b], u, u, 1 + (uint32_t)(k % 2), (uint32_t)k, now, WIN),
                RTB_PT_OK);
            held[b][k] = 1;
        } else {
            assert_int_equal(
                rtb_ptable_leave(t, boards[b], 1 + (uint32_t)(k % 2), (uint32_t)k, now, WIN, NULL),
                RTB_PT_OK);
            held[b][k] = 0;
        }
        flushes += rtb_ptable_flush(t, now, 4, scratch, route, v);
        if (!rtb_ptable_due(t)) {
            /* nothing pending: every view is the table's first page and count */
            for (b = 0; b < 3; b++)
                view_check(t, boards[b], &v[b], 4);
        }
    }
    assert_true(flushes > 100);
    /* everyone leaves: the table is empty again */
    for (b = 0; b < 3; b++)
        for (k = 0; k < 40; k++)
            if (held[b][k])
                rtb_ptable_leave(t, boards[b], 1 + (uint32_t)(k % 2), (uint32_t)k, now, WIN, NULL);
    rtb_ptable_flush(t, now + WIN, 4, scratch, route, v);
    for (b = 0; b < 3; b++) {
        view_check(t, boards[b], &v[b], 4);
        assert_int_equal(v[b].count, 0);
    }
    rtb_ptable_usage(t, &leases, &users, &nboards);
    assert_int_equal(leases + users + nboards, 0);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_counts_once_and_window_coalesces),
        cmocka_unit_test(test_first_page_diffs),
        cmocka_unit_test(test_full_table_refuses_and_undoes),
        cmocka_unit_test(test_reap_of_a_dead_owner),
        cmocka_unit_test(test_each_local_leaves_out_remote_users),
        cmocka_unit_test(test_mark_and_sweep_replace_a_nodes_users),
        cmocka_unit_test(test_lease_keys_are_64_bits),
        cmocka_unit_test(test_random_run_matches_the_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
