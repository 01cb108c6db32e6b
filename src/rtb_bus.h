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

/* One child process's counters; written by that child only, read by all. */
typedef struct {
    volatile apr_uint32_t pid; /* 0 = free */
    volatile apr_uint32_t generation;
    volatile apr_uint32_t conns[RTB_TRANSPORTS];
    volatile apr_uint64_t delivered; /* events written to clients */
    volatile apr_uint64_t dropped;   /* slow or lapped clients cut */
    volatile apr_uint32_t threads;
    rtb_slot_board_t boards[RTB_SLOT_BOARDS];
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

/* Kinds of ring records (the ring's opaque kind word). */
enum { RTB_KIND_EVENT = 0, RTB_KIND_EPHEMERAL = 1 };

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

/* Status slots: this child's own slot (claimed in child_init), and all of them. */
rtb_child_slot_t *rtb_bus_my_slot(void);
rtb_child_slot_t *rtb_bus_slots(void);
apr_uint64_t rtb_bus_published(void);

#endif
