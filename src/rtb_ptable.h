/*
 * rtb_ptable: the presence table, in one block of shared memory.
 *
 * Three kinds of entries, each found through its own hash index, so a join,
 * a leave, a typing change or "is this user still here" costs a constant
 * time on average, whatever the number of sockets:
 *   - a lease: one open socket (owner pid + connection id) on one board, or
 *     one user of another node on one board (a pseudo owner standing for
 *     that node, RTB_PTABLE_REMOTE, + a key of the user);
 *   - a user on a board, with the number of its live leases (a user counts
 *     once however many tabs and child processes they use);
 *   - a board, with its version and the users announced on it, in the order
 *     they were announced (the "first page" is the head of that list).
 *
 * Changes are not announced one by one: a board whose users come or go is
 * marked dirty and, once its window has passed, rtb_ptable_flush turns
 * everything that changed into one diff (who entered the first page, who
 * left it, the new count) and bumps the board's version. A user who came and
 * went within one window is never announced. The announced state of a board
 * at a version is all a snapshot needs (rtb_ptable_page). Versions come from
 * one clock for the whole table, so they only grow, also when a board was
 * emptied and comes back; each diff names the version it applies to (its
 * base), so a client holding version V applies the diff whose base is V and
 * can always tell a gap.
 *
 * The block may be mapped at different addresses in different processes: it
 * holds indices, never pointers. It must be zero-filled before
 * rtb_ptable_format (a fresh anonymous mapping is), and only the entries in
 * use are ever written, so untouched pages cost no memory.
 *
 * Locking: none. The caller serializes every call on one table with one
 * process-shared lock; only rtb_ptable_due may be read without it.
 *
 * Pure: libc only, no httpd/APR headers; nothing is allocated.
 */
#ifndef RTB_PTABLE_H
#define RTB_PTABLE_H

#include <stddef.h>
#include <stdint.h>

#define RTB_PTABLE_BOARD_MAX 64 /* longest board id, bytes */
#define RTB_PTABLE_USER_MAX 255 /* longest user id or name, bytes */
#define RTB_PTABLE_OWNERS 256   /* processes (and other nodes) that may hold leases at once */

/*
 * Owner ids with this bit set are pseudo owners, each standing for another
 * node of the cluster; they are never process ids (Linux pids stay below
 * 2^22), so a liveness check by pid must pass over them. Their leases are
 * "remote": rtb_ptable_each_local leaves out users held by them alone.
 */
#define RTB_PTABLE_REMOTE 0x80000000u

typedef struct rtb_ptable rtb_ptable_t;

/* Return codes. */
enum {
    RTB_PT_OK = 0,
    RTB_PT_EXISTS = 1,    /* join: the socket already holds this lease */
    RTB_PT_FULL = -1,     /* no free lease, user, board or owner entry */
    RTB_PT_NOT_FOUND = -2 /* leave, typing: no such lease */
};

/* Bytes of a block for `slots` leases (0: slots out of range). */
size_t rtb_ptable_block_size(uint32_t slots);

/* Formats a zero-filled block of `size` bytes; NULL when it is too small. */
rtb_ptable_t *rtb_ptable_format(void *block, size_t size, uint32_t slots);

/* This process's view of a formatted block; NULL when it is not one. */
rtb_ptable_t *rtb_ptable_attach(void *block);

/* The number of leases the table holds at most. */
uint32_t rtb_ptable_slots(const rtb_ptable_t *t);

/*
 * Takes the lease of socket (pid, conn) on `board` for `user` (`name`: its
 * display name). A user's first lease marks the board dirty; its window ends
 * at `now` + `window` (microseconds; a board already dirty keeps its own).
 * RTB_PT_OK, RTB_PT_EXISTS (the lease's mark, if any, is cleared: see
 * rtb_ptable_mark), or RTB_PT_FULL (nothing changed).
 */
int rtb_ptable_join(rtb_ptable_t *t, const char *board, const char *user, const char *name,
                    uint32_t pid, uint64_t conn, uint64_t now, uint64_t window);

/*
 * Gives the lease back; the user's last one marks the board dirty. The
 * lease's typing task (0: none) goes to *typing when not NULL.
 * RTB_PT_OK or RTB_PT_NOT_FOUND.
 */
int rtb_ptable_leave(rtb_ptable_t *t, const char *board, uint32_t pid, uint64_t conn, uint64_t now,
                     uint64_t window, int64_t *typing);

/* Records on the lease the task its socket types on (0: none). */
int rtb_ptable_set_typing(rtb_ptable_t *t, const char *board, uint32_t pid, uint64_t conn,
                          int64_t task);

/* Live leases of `user` on `board` (0: not here). */
uint32_t rtb_ptable_sockets(const rtb_ptable_t *t, const char *board, const char *user);

/*
 * Processes holding leases now: up to `max` pids into `pids`; returns how
 * many. The caller checks which are gone and reaps them.
 */
int rtb_ptable_owners(const rtb_ptable_t *t, uint32_t *pids, int max);

/* The leases owner `pid` holds now (0: none). */
uint32_t rtb_ptable_owner_leases(const rtb_ptable_t *t, uint32_t pid);

/*
 * Gives back every lease of process `pid` (it died). For each lease that
 * was typing, `on_typing(arg, board, user, name, task)` is called (under the
 * caller's lock: copy what is kept). Returns the leases given back.
 */
typedef void (*rtb_ptable_typing_fn)(void *arg, const char *board, const char *user,
                                     const char *name, int64_t task);
uint32_t rtb_ptable_reap(rtb_ptable_t *t, uint32_t pid, uint64_t now, uint64_t window,
                         rtb_ptable_typing_fn on_typing, void *arg);

/*
 * Replacing an owner's leases by a new full list (another node resending
 * its users): rtb_ptable_mark marks every lease of `pid` (returns how many);
 * each lease joined again (RTB_PT_EXISTS) loses its mark; rtb_ptable_sweep
 * then gives back the leases still marked, calling `on_typing` like
 * rtb_ptable_reap, and returns how many. A user given back and joined
 * again within one window is never announced as gone.
 */
uint32_t rtb_ptable_mark(rtb_ptable_t *t, uint32_t pid);
uint32_t rtb_ptable_sweep(rtb_ptable_t *t, uint32_t pid, uint64_t now, uint64_t window,
                          rtb_ptable_typing_fn on_typing, void *arg);

/*
 * Every user of every board holding at least one lease of a real process
 * (an owner without RTB_PTABLE_REMOTE): `fn(arg, board, user, name)` once
 * per (board, user), under the caller's lock (copy what is kept); `fn` may
 * be NULL to count. Users announced but with no lease left are not listed.
 * Returns how many were listed.
 */
typedef void (*rtb_ptable_each_fn)(void *arg, const char *board, const char *user,
                                   const char *name);
uint32_t rtb_ptable_each_local(const rtb_ptable_t *t, rtb_ptable_each_fn fn, void *arg);

/*
 * A counter moved by every lease of a real process taken or given back: a
 * caller that saw the same value before knows rtb_ptable_each_local would
 * list the same users. May be read without the lock (a hint).
 */
uint64_t rtb_ptable_local_changes(const rtb_ptable_t *t);

/* The earliest end of a dirty board's window (0: none dirty). May be read without the lock. */
uint64_t rtb_ptable_due(const rtb_ptable_t *t);

/* One user as rtb_ptable_flush and rtb_ptable_page report it. */
typedef struct {
    const char *user;
    const char *name;
} rtb_ptable_user_t;

/*
 * One board's diff: its new version and count (users announced), who
 * entered the first page (in page order: append them) and who left it.
 * The arrays point into the table: valid while the lock is held.
 */
typedef struct {
    const char *board;
    uint64_t base;    /* the version this diff applies to (0: the board was empty) */
    uint64_t version; /* the version after it */
    uint32_t count;
    const rtb_ptable_user_t *joined;
    uint32_t njoined;
    const rtb_ptable_user_t *left;
    uint32_t nleft;
} rtb_ptable_diff_t;

typedef void (*rtb_ptable_diff_fn)(void *arg, const rtb_ptable_diff_t *d);

/*
 * Every dirty board whose window ended by `now`: applies its changes,
 * gives it a new version when what it announces changed and calls `emit(arg,
 * diff)` (under the caller's lock). `page` is the first page's size;
 * `scratch` holds 2 * page entries. Boards that came and went unseen emit
 * nothing. Returns the number of diffs emitted.
 */
int rtb_ptable_flush(rtb_ptable_t *t, uint64_t now, uint32_t page, rtb_ptable_user_t *scratch,
                     rtb_ptable_diff_fn emit, void *arg);

/*
 * The announced users of `board` from position `offset`, at most `limit`
 * of them into `out`; *version and *count get the board's version and
 * count (0 and 0 for a board nobody is on). Returns how many were written.
 */
uint32_t rtb_ptable_page(const rtb_ptable_t *t, const char *board, uint32_t offset, uint32_t limit,
                         rtb_ptable_user_t *out, uint64_t *version, uint32_t *count);

/* Counters for status pages: leases, users and boards in use. */
void rtb_ptable_usage(const rtb_ptable_t *t, uint32_t *leases, uint32_t *users, uint32_t *boards);

#endif
