/*
 * rtb_bus: the cross-process event bus. One shared-memory segment per server
 * lifetime (kept across graceful restarts) holds the event ring and the
 * per-child status slots; a global mutex guards them, and a futex on the
 * ring's wake word wakes every child without polling.
 */
#ifndef RTB_BUS_H
#define RTB_BUS_H

#include "httpd.h"
#include "rtb_ring.h"
#include "rtb_ptable.h"

#define RTB_MAX_CHILD_SLOTS 256
#define RTB_TRANSPORTS 4 /* sse, longpoll, ws, blocking */

enum { RTB_T_SSE = 0, RTB_T_LONGPOLL, RTB_T_WS, RTB_T_BLOCKING };

#define RTB_SLOT_BOARDS 16

/* Per-board connection count of one child (its busiest boards). */
typedef struct {
    char board[65];
    apr_uint32_t conns;
} rtb_slot_board_t;

/*
 * Buckets of the commit-latency histogram: upper bounds in microseconds
 * (rtb_metrics.c names them), and one more bucket for the rest (+Inf).
 */
#define RTB_COMMIT_BUCKETS 12

/*
 * Counters of one child that only grow (added atomically by its threads).
 * When a dead child's slot is reclaimed they are added to the server's
 * retired totals first, so sums over the server never go backwards.
 */
typedef struct {
    apr_uint64_t batches;                                /* write transactions run */
    apr_uint64_t db_errors;                              /* database operations that failed */
    apr_uint64_t commit_us;                              /* sum of commit latencies (us) */
    apr_uint64_t commit_buckets[RTB_COMMIT_BUCKETS + 1]; /* commits per bucket (not cumulative) */
} rtb_slot_counters_t;

/* One child process's counters; written by that child only, read by all. */
typedef struct {
    volatile apr_uint32_t pid; /* 0 = free */
    volatile apr_uint32_t generation;
    volatile apr_uint32_t conns[RTB_TRANSPORTS];
    volatile apr_uint64_t delivered; /* events written to clients */
    volatile apr_uint64_t dropped;   /* slow or lapped clients cut */
    volatile apr_uint32_t threads;
    rtb_slot_board_t boards[RTB_SLOT_BOARDS];
    rtb_slot_counters_t counters;
} rtb_child_slot_t;

#define RTB_USER_MAX 255 /* longest user id (bytes) a WebSocket may have */
#define RTB_TICKETS_MAX 1024

/* A single-use WebSocket ticket. */
typedef struct {
    char token[33]; /* "" = free */
    char user[RTB_USER_MAX + 1];
    char board[65];
    apr_time_t expires;
} rtb_ticket_t;

#define RTB_LIMIT_USERS 4096 /* users with streams or recent board creations at once */
#define RTB_LIMIT_PIDS 16    /* children one user's streams are counted in */

/* One user's streams (per child, so a dead child's are dropped) and board-creation budget. */
typedef struct {
    apr_uint32_t hash; /* 0 = never used */
    apr_uint32_t streams;
    struct {
        apr_uint32_t pid, n;
    } by[RTB_LIMIT_PIDS];
    double tokens; /* boards the user may still create now */
    apr_time_t tokens_at;
    char user[RTB_USER_MAX + 1];
} rtb_user_limit_t;

/* Kinds of ring records (the ring's opaque kind word). */
enum { RTB_KIND_EVENT = 0, RTB_KIND_EPHEMERAL = 1 };

/*
 * The id of an ephemeral record (which has no event id): 0 when it was made
 * on this node (a socket's typing or cursor, a dead child's typing ended),
 * RTB_EPHEMERAL_REMOTE when it came from another node or speaks for one
 * (rtb_peers): only the first kind is forwarded to other nodes.
 */
#define RTB_EPHEMERAL_REMOTE 1

/*
 * The per-user table (rtb_limits), under a lock of its own (not the bus
 * lock, so ring appends never wait behind it): 0, or an errno.
 */
rtb_user_limit_t *rtb_bus_limits(void);
int rtb_bus_limits_lock(void);
void rtb_bus_limits_unlock(void);

/* Shared tables, guarded by the bus lock (rtb_bus_lock). */
rtb_ticket_t *rtb_bus_tickets(void);

/*
 * The presence table (rtb_ptable), in its own part of the segment, sized by
 * RTBoardPresenceSlots; NULL before post_config. Guarded by its own lock,
 * not the bus lock, so appends to the ring never wait behind presence:
 * process-shared and robust (a holder killed mid-change does not wedge the
 * others). The presence lock may be held while taking the bus lock, never
 * the other way round.
 */
rtb_ptable_t *rtb_bus_ptable(void);
apr_status_t rtb_bus_presence_lock(server_rec *s);
void rtb_bus_presence_unlock(void);

/* Registers the mutex types (pre_config), so the Mutex directive knows them. */
void rtb_bus_register(apr_pool_t *pconf);

/* Creates or finds the segment and mutexes (post_config). */
int rtb_bus_post_config(apr_pool_t *pconf, server_rec *s);

/* Per-child attach of the mutexes (child_init). */
void rtb_bus_child_init(apr_pool_t *pchild, server_rec *s);

/*
 * The ring, and the bus lock: the global mutex (`Mutex rtboard-ring`) that
 * guards the ring, the presence table and the tickets. Hold it while
 * reading records; never while writing to a client or the database.
 */
rtb_ring_t *rtb_bus_ring(void);
apr_status_t rtb_bus_lock(void);
void rtb_bus_unlock(void);

/*
 * The ring's next gseq. A handler takes it BEFORE reading the store, so
 * whatever is published while it reads is caught up from the ring later.
 */
apr_uint64_t rtb_bus_ring_position(void);

/*
 * Serialises the writers of this server (node), so that event ids follow
 * commit order and are published in id order. A writer killed while holding
 * it does not wedge the others (robust mutex).
 */
apr_status_t rtb_bus_write_lock(server_rec *s);
void rtb_bus_write_unlock(server_rec *s);

/*
 * Appends a committed event (kind RTB_KIND_EVENT, per-board `id`) or an
 * ephemeral message (RTB_KIND_EPHEMERAL, id 0) to the ring and wakes every
 * child. A record too large for the ring is logged; streams of that board
 * then resume from the database.
 */
void rtb_bus_publish(server_rec *s, const char *board, apr_uint64_t id, int kind, const char *json,
                     apr_size_t len);

/* Waits until the wake word differs from `seen` or `timeout_ms` pass. */
void rtb_bus_wait(apr_uint32_t seen, int timeout_ms);
apr_uint32_t rtb_bus_wake_value(void);
/*
 * Wakes every thread sleeping in rtb_bus_wait, in every child, without
 * moving the wake word: a child that is stopping calls it so its own
 * sleepers see the stop at once instead of at their timeout (the others
 * find the word unchanged and sleep again).
 */
void rtb_bus_wake_sleepers(void);

/*
 * Several nodes: another node this one hears on the presence channel
 * (rtb_peers), kept with the bus state so that a child taking the LISTEN
 * connection over, or a graceful restart, finds it.
 */
#define RTB_BUS_NODES 64
typedef struct {
    volatile apr_uint64_t id;     /* its node id, 0 = free */
    volatile apr_uint32_t owner;  /* its pseudo owner in the presence table (RTB_PTABLE_REMOTE) */
    volatile apr_uint32_t synced; /* its whole list was heard since it was (re)found */
    volatile apr_time_t heard;    /* its last message */
} rtb_bus_node_t;

/*
 * Several nodes (RTBoardBus): the state of this node's LISTEN connection,
 * written by the child that runs it (rtb_listen), read by status pages.
 */
typedef struct {
    volatile apr_uint64_t node;          /* this node's id: random, made once per server start */
    volatile apr_uint64_t forwarded;     /* the next ring record rtb_peers looks at (0: none yet) */
    rtb_bus_node_t nodes[RTB_BUS_NODES]; /* the other nodes heard (rtb_peers) */
    volatile apr_uint32_t pid;           /* the child holding the LISTEN connection, 0 = none */
    volatile apr_uint32_t up;            /* 1 while it is connected and caught up */
    volatile apr_uint32_t primed;        /* every board's last id is known (first connection) */
    volatile apr_uint32_t pad;
    volatile apr_uint64_t notifications; /* events heard */
    volatile apr_uint64_t healed;        /* events read from the table instead */
    volatile apr_uint64_t reconnects;    /* connections lost and made again */
    volatile apr_time_t since;           /* when `up` last changed */
    char error[200];                     /* why it is down (last error) */
} rtb_bus_state_t;

rtb_bus_state_t *rtb_bus_state(void);

/* What rtb_bus_publish_event did. */
enum {
    RTB_PUB_APPENDED = 0, /* the next id of its board: now in the ring */
    RTB_PUB_DUPLICATE,    /* this node's ring already holds it */
    RTB_PUB_GAP           /* earlier ids of its board are missing: read them first */
};

/* Flags of rtb_bus_publish_event. */
#define RTB_PUB_HEAL 1     /* the ids before it are gone from the event log: jump over */
#define RTB_PUB_LISTENER 2 /* from the LISTEN connection (the one in-order source) */

/*
 * Several nodes: appends committed event `id` of `board` to this node's ring
 * only if it is the board's next id in this ring (a shared table of each
 * board's last id, checked and updated under the bus lock), so every event
 * enters the ring once, in id order per board, whether it comes from a local
 * writer or from the LISTEN connection. A board_deleted event starts the
 * board's ids again at 1 (a board of the same id may be created later).
 * Returns RTB_PUB_*.
 */
int rtb_bus_publish_event(server_rec *s, const char *board, apr_uint64_t id, const char *json,
                          apr_size_t len, int flags);

/*
 * The board's last id in this node's ring, 0 when none. Returns -1 when the
 * board is not tracked (the table is full).
 */
int rtb_bus_board_last(const char *board, apr_uint64_t *last);

/*
 * Sets the board's last id to `last` (the first connection of a node: ids
 * committed before it need not enter the ring). Marks the table primed when
 * `done` is set.
 */
void rtb_bus_board_prime(const char *board, apr_uint64_t last, int done);

/* Status slots: this child's own slot (claimed in child_init), and all of them. */
rtb_child_slot_t *rtb_bus_my_slot(void);
rtb_child_slot_t *rtb_bus_slots(void);
apr_uint64_t rtb_bus_published(void);

/* The server's sums, as rtb_bus_totals finds them. */
typedef struct {
    apr_uint32_t children;              /* live children holding a slot */
    apr_uint32_t conns[RTB_TRANSPORTS]; /* connections of live children */
    apr_uint64_t published;             /* events appended to the ring */
    apr_uint64_t delivered;             /* every child's, exited ones included */
    apr_uint64_t dropped;               /* likewise */
    rtb_slot_counters_t counters;       /* likewise */
    apr_uint32_t presence_leases;       /* presence table entries in use */
    apr_uint32_t presence_users;        /* users present, counted once per board */
    apr_uint32_t presence_boards;       /* boards somebody is on */
    apr_uint32_t presence_slots;        /* leases the table holds at most */
    rtb_ring_stats_t ring;
} rtb_bus_totals_t;

/*
 * Sums the children's slots under the bus lock. Gauges (connections) count
 * live children only; counters add the retired totals (children whose slot
 * was reclaimed) and every slot still held, its process alive or not, so
 * they never go backwards within the segment's lifetime (a full stop and
 * start begins at zero). Returns 0, or -1 (all zero) without a segment or
 * the lock.
 */
int rtb_bus_totals(rtb_bus_totals_t *t);

#endif
