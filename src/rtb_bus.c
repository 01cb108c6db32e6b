/*
 * rtb_bus: shared memory, global mutexes and futex wake-ups. See rtb_bus.h.
 */
#include "rtb_bus.h"
#include "rtb_config.h"
#include "rtb_ids.h"

#include "http_log.h"
#include "http_main.h"
#include "util_mutex.h"
#include "ap_mpm.h"
#include "apr_shm.h"
#include "apr_atomic.h"
#include "apr_strings.h"
#include "apr_general.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <limits.h>
#include <errno.h>
#include <time.h>
#include <pthread.h>
#include <sched.h>

APLOG_USE_MODULE(rtboard);

#define BUS_RETAINED_KEY "mod_rtboard-bus"
#define BUS_MAGIC 0x52544233u /* "RTB3" */
#define BUS_RING_MUTEX "rtboard-ring"

/* A board's last event id in this node's ring (several nodes). */
#define BUS_BOARDS 16384 /* open addressing, linear probing; never removed */
typedef struct {
    char board[RTB_RING_BOARD_MAX + 1]; /* "" = free */
    apr_uint64_t last;
} bus_board_t;

typedef struct {
    apr_uint32_t magic;
    apr_uint32_t layout; /* sizeof(bus_hdr_t) of the build that made it (0 before it was kept) */
    /*
     * The writers' lock: process-shared and robust (a writer killed while
     * holding it does not wedge the others), but not priority-inheriting
     * like APR's, so a running thread can take it at once on release instead
     * of the kernel handing it to a sleeping waiter: no lock convoy.
     */
    pthread_mutex_t write_lock;
    pthread_mutex_t limits_lock;   /* the per-user table: robust, like the writers' lock */
    pthread_mutex_t presence_lock; /* the presence table's (robust, like write_lock) */
    volatile apr_uint64_t published;
    rtb_child_slot_t slots[RTB_MAX_CHILD_SLOTS];
    rtb_ticket_t tickets[RTB_TICKETS_MAX];
    rtb_user_limit_t limits[RTB_LIMIT_USERS];
    /* the counters of children whose slot was reclaimed (bus lock) */
    struct {
        apr_uint64_t delivered, dropped;
        rtb_slot_counters_t counters;
    } retired;
    rtb_bus_state_t bus;
    bus_board_t boards[BUS_BOARDS];
} bus_hdr_t;

/* What survives a graceful restart: kept with ap_retained_data_*. */
typedef struct {
    apr_shm_t *shm;
    apr_size_t ring_bytes;
    int ring_slots;
    apr_uint32_t presence_slots;
    apr_size_t presence_off; /* where the presence table starts in the segment */
    apr_global_mutex_t *ring_mutex;
    const char *ring_lockfile;
} bus_retained_t;

static bus_retained_t *bus_ret;
static bus_hdr_t *bus_hdr;
static rtb_ring_t *bus_ring;
static rtb_ptable_t *bus_ptable;
static rtb_child_slot_t *bus_my_slot;
/* Writers of one child queue here first, so at most one thread per child
 * waits on the (priority-inheriting, kernel-arbitrated) global mutex. */
static apr_thread_mutex_t *bus_local_write;

void rtb_bus_register(apr_pool_t *pconf)
{
    ap_mutex_register(pconf, BUS_RING_MUTEX, NULL, APR_LOCK_DEFAULT, 0);
}

static apr_size_t bus_ring_offset(void)
{
    return APR_ALIGN(sizeof(bus_hdr_t), 64);
}

/*
 * Presence leases the server holds: RTBoardPresenceSlots, or by default one
 * per stream a child's engine holds times the most children the MPM runs
 * (a board and user per lease at most), twice that with RTBoardBus (the
 * other nodes' users), within what the table allows.
 */
static apr_uint32_t bus_presence_slots(const rtb_cfg_t *cfg)
{
    int daemons = 0;
    apr_uint64_t n = (apr_uint64_t)cfg->presence_slots, most = 1u << 20;
    if (!n) {
        if (ap_mpm_query(AP_MPMQ_MAX_DAEMONS, &daemons) != APR_SUCCESS || daemons < 1)
            daemons = 16;
        n = (apr_uint64_t)cfg->max_streams * (apr_uint64_t)daemons;
        if (cfg->bus) {
            /* as many again for the users of the other nodes (a lease per node and user) */
            n *= 2;
            most *= 2;
        }
        if (n > most)
            n = most;
    }
    if (n < 1)
        n = 1;
    while (n > 1 && !rtb_ptable_block_size((apr_uint32_t)n))
        n >>= 1;
    return (apr_uint32_t)n;
}

int rtb_bus_post_config(apr_pool_t *pconf, server_rec *s)
{
    rtb_cfg_t *cfg = rtb_cfg(s);
    apr_status_t rv;
    apr_size_t ring_size, total;
    apr_uint32_t pslots = bus_presence_slots(cfg);
    void *base;

    (void)pconf;
    bus_ret = ap_retained_data_get(BUS_RETAINED_KEY);
    if (!bus_ret)
        bus_ret = ap_retained_data_create(BUS_RETAINED_KEY, sizeof(*bus_ret));
    if (bus_ret->shm &&
        (bus_ret->ring_bytes != cfg->ring_bytes || bus_ret->ring_slots != cfg->ring_slots ||
         bus_ret->presence_slots != pslots)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "RTB0010: RTBoardRingSize/RTBoardRingSlots/RTBoardPresenceSlots changed; the "
                     "new size takes effect after a full stop and start");
    }
    if (!bus_ret->shm) {
        ring_size = rtb_ring_block_size(cfg->ring_bytes, (uint32_t)cfg->ring_slots);
        if (!ring_size) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "RTB0011: unusable ring size");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        /* the presence table's pages are untouched (zero) until used */
        bus_ret->presence_off = APR_ALIGN(bus_ring_offset() + ring_size, 4096);
        total = bus_ret->presence_off + rtb_ptable_block_size(pslots);
        rv = apr_shm_create(&bus_ret->shm, total, NULL, s->process->pool);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         "RTB0012: could not create %" APR_SIZE_T_FMT " bytes of shared memory",
                         total);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        base = apr_shm_baseaddr_get(bus_ret->shm);
        memset(base, 0, bus_ring_offset());
        bus_hdr = base;
        bus_hdr->magic = BUS_MAGIC;
        bus_hdr->layout = (apr_uint32_t)sizeof(bus_hdr_t);
        /* the node's id for its lifetime (graceful restarts keep the segment) */
        if (apr_generate_random_bytes((unsigned char *)&bus_hdr->bus.node,
                                      sizeof(bus_hdr->bus.node)) != APR_SUCCESS ||
            !bus_hdr->bus.node)
            bus_hdr->bus.node = ((apr_uint64_t)apr_time_now() << 20) ^ (apr_uint64_t)getpid() ^ 1;
        if (!rtb_ring_format((char *)base + bus_ring_offset(), ring_size, cfg->ring_bytes,
                             (uint32_t)cfg->ring_slots)) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "RTB0013: could not format the ring");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        if (!rtb_ptable_format((char *)base + bus_ret->presence_off, total - bus_ret->presence_off,
                               pslots)) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                         "RTB0074: could not format the presence table");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        bus_ret->ring_bytes = cfg->ring_bytes;
        bus_ret->ring_slots = cfg->ring_slots;
        bus_ret->presence_slots = pslots;
        /* The mutexes live as long as the segment: children of an old
         * generation and of the new one must share them. */
        rv = ap_global_mutex_create(&bus_ret->ring_mutex, &bus_ret->ring_lockfile, BUS_RING_MUTEX,
                                    NULL, s, s->process->pool, 0);
        if (rv == APR_SUCCESS) {
            pthread_mutexattr_t ma;
            pthread_mutexattr_init(&ma);
            pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
            pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
            if (pthread_mutex_init(&bus_hdr->write_lock, &ma) != 0 ||
                pthread_mutex_init(&bus_hdr->limits_lock, &ma) != 0 ||
                pthread_mutex_init(&bus_hdr->presence_lock, &ma) != 0)
                rv = APR_EGENERAL;
            pthread_mutexattr_destroy(&ma);
        }
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "RTB0014: could not create mutexes");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    base = apr_shm_baseaddr_get(bus_ret->shm);
    bus_hdr = base;
    if (bus_hdr->magic == BUS_MAGIC && bus_hdr->layout != sizeof(bus_hdr_t)) {
        /* a graceful restart loaded a build whose segment differs from the
         * kept one: reading it would be reading the wrong bytes */
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                     "RTB0070: the kept shared segment was made by another build of "
                     "mod_rtboard (layout %u, this build %u); a new build needs a full stop "
                     "and start, not a graceful restart",
                     (unsigned)bus_hdr->layout, (unsigned)sizeof(bus_hdr_t));
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    bus_ring = rtb_ring_attach((char *)base + bus_ring_offset(),
                               bus_ret->presence_off - bus_ring_offset());
    bus_ptable = rtb_ptable_attach((char *)base + bus_ret->presence_off);
    if (!bus_ring || !bus_ptable || bus_hdr->magic != BUS_MAGIC) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "RTB0015: shared segment is not valid");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

/* Adds a slot's counters to the sums of a set of counters. */
static void bus_add_counters(rtb_slot_counters_t *to, const rtb_slot_counters_t *from)
{
    int b;
    to->batches += from->batches;
    to->db_errors += from->db_errors;
    to->commit_us += from->commit_us;
    for (b = 0; b <= RTB_COMMIT_BUCKETS; b++)
        to->commit_buckets[b] += from->commit_buckets[b];
}

/* Keeps the counters of an exited child's slot in the retired totals. */
static void bus_retire(const rtb_child_slot_t *sl)
{
    bus_hdr->retired.delivered += sl->delivered;
    bus_hdr->retired.dropped += sl->dropped;
    bus_add_counters(&bus_hdr->retired.counters, &sl->counters);
}

void rtb_bus_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv;
    int i, gen = 0, locked;
    apr_uint32_t me = (apr_uint32_t)getpid();

    if (!bus_ret || !bus_ret->shm)
        return;
    rv = apr_global_mutex_child_init(&bus_ret->ring_mutex, bus_ret->ring_lockfile, pchild);
    if (rv != APR_SUCCESS)
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "RTB0016: mutex child init failed");
    apr_thread_mutex_create(&bus_local_write, APR_THREAD_MUTEX_DEFAULT, pchild);
    ap_mpm_query(AP_MPMQ_GENERATION, &gen);
    /* claim a status slot: a free one, or one whose process is gone (its
     * counters retired first, under the bus lock, as rtb_bus_totals reads) */
    locked = rtb_bus_lock() == APR_SUCCESS;
    for (i = 0; i < RTB_MAX_CHILD_SLOTS && !bus_my_slot; i++) {
        rtb_child_slot_t *sl = &bus_hdr->slots[i];
        apr_uint32_t pid = sl->pid;
        if (pid == 0 || (kill((pid_t)pid, 0) < 0 && errno == ESRCH)) {
            if (apr_atomic_cas32(&sl->pid, me, pid) == pid) {
                if (pid)
                    bus_retire(sl);
                memset((char *)sl + sizeof(sl->pid), 0, sizeof(*sl) - sizeof(sl->pid));
                sl->generation = (apr_uint32_t)gen;
                bus_my_slot = sl;
            }
        }
    }
    if (locked)
        rtb_bus_unlock();
}

int rtb_bus_totals(rtb_bus_totals_t *t)
{
    int i, k;
    memset(t, 0, sizeof(*t));
    if (!bus_hdr || !bus_ring)
        return -1;
    /* the presence lock is taken before the bus lock everywhere (a diff is
     * appended to the ring under it), never inside it */
    if (bus_ptable && rtb_bus_presence_lock(NULL) == APR_SUCCESS) {
        rtb_ptable_usage(bus_ptable, &t->presence_leases, &t->presence_users, &t->presence_boards);
        t->presence_slots = rtb_ptable_slots(bus_ptable);
        rtb_bus_presence_unlock();
    }
    if (rtb_bus_lock() != APR_SUCCESS)
        return -1;
    t->published = bus_hdr->published;
    t->delivered = bus_hdr->retired.delivered;
    t->dropped = bus_hdr->retired.dropped;
    t->counters = bus_hdr->retired.counters;
    for (i = 0; i < RTB_MAX_CHILD_SLOTS; i++) {
        const rtb_child_slot_t *sl = &bus_hdr->slots[i];
        if (!sl->pid)
            continue;
        t->delivered += sl->delivered;
        t->dropped += sl->dropped;
        bus_add_counters(&t->counters, &sl->counters);
        if (kill((pid_t)sl->pid, 0) < 0 && errno == ESRCH)
            continue;
        t->children++;
        for (k = 0; k < RTB_TRANSPORTS; k++)
            t->conns[k] += sl->conns[k];
    }
    rtb_ring_stats(bus_ring, &t->ring);
    rtb_bus_unlock();
    return 0;
}

rtb_ptable_t *rtb_bus_ptable(void)
{
    return bus_ptable;
}

apr_status_t rtb_bus_presence_lock(server_rec *s)
{
    int rv = pthread_mutex_lock(&bus_hdr->presence_lock);
    if (rv == EOWNERDEAD) {
        /* a child died in the middle of a change; its leases are reaped anyway */
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "RTB0075: a process died holding the presence lock; recovered");
        pthread_mutex_consistent(&bus_hdr->presence_lock);
        rv = 0;
    }
    return rv ? APR_FROM_OS_ERROR(rv) : APR_SUCCESS;
}

void rtb_bus_presence_unlock(void)
{
    pthread_mutex_unlock(&bus_hdr->presence_lock);
}

rtb_ticket_t *rtb_bus_tickets(void)
{
    return bus_hdr ? bus_hdr->tickets : NULL;
}

rtb_user_limit_t *rtb_bus_limits(void)
{
    return bus_hdr ? bus_hdr->limits : NULL;
}

int rtb_bus_limits_lock(void)
{
    int rv = pthread_mutex_lock(&bus_hdr->limits_lock);
    if (rv == EOWNERDEAD) {
        /* its holder died; the table holds counts, which stay usable */
        pthread_mutex_consistent(&bus_hdr->limits_lock);
        rv = 0;
    }
    return rv;
}

void rtb_bus_limits_unlock(void)
{
    pthread_mutex_unlock(&bus_hdr->limits_lock);
}

rtb_ring_t *rtb_bus_ring(void)
{
    return bus_ring;
}

rtb_child_slot_t *rtb_bus_my_slot(void)
{
    return bus_my_slot;
}

rtb_child_slot_t *rtb_bus_slots(void)
{
    return bus_hdr ? bus_hdr->slots : NULL;
}

apr_uint64_t rtb_bus_published(void)
{
    return bus_hdr ? bus_hdr->published : 0;
}

apr_uint64_t rtb_bus_ring_position(void)
{
    apr_uint64_t g;
    if (!bus_ring || rtb_bus_lock() != APR_SUCCESS)
        return 0;
    g = rtb_ring_next(bus_ring);
    rtb_bus_unlock();
    return g;
}

apr_status_t rtb_bus_lock(void)
{
    return apr_global_mutex_lock(bus_ret->ring_mutex);
}

void rtb_bus_unlock(void)
{
    apr_global_mutex_unlock(bus_ret->ring_mutex);
}

apr_status_t rtb_bus_write_lock(server_rec *s)
{
    apr_status_t rv;
    int spin;
    if (bus_local_write)
        apr_thread_mutex_lock(bus_local_write);
    /* a write holds the lock for well under a millisecond: a short spin
     * usually gets it without sleeping, and sleeping waiters cost a wake-up
     * and a context switch on every hand-over */
    for (spin = 0; spin < 200; spin++) {
        rv = pthread_mutex_trylock(&bus_hdr->write_lock);
        if (rv != EBUSY)
            break;
        if (spin % 20 == 19)
            sched_yield();
        else
            __asm__ __volatile__("pause");
    }
    if (rv == EBUSY)
        rv = pthread_mutex_lock(&bus_hdr->write_lock);
    if (rv == EOWNERDEAD) {
        /* its holder died mid-transaction; SQLite/PostgreSQL rolled that back */
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "RTB0022: a writer died holding the write lock; recovered");
        pthread_mutex_consistent(&bus_hdr->write_lock);
        rv = APR_SUCCESS;
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, "RTB0017: write lock failed");
        if (bus_local_write)
            apr_thread_mutex_unlock(bus_local_write);
    }
    return rv;
}

void rtb_bus_write_unlock(server_rec *s)
{
    (void)s;
    pthread_mutex_unlock(&bus_hdr->write_lock);
    if (bus_local_write)
        apr_thread_mutex_unlock(bus_local_write);
}

static void bus_futex_wake(volatile apr_uint32_t *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void rtb_bus_wake_sleepers(void)
{
    if (bus_ring)
        bus_futex_wake(rtb_ring_wake_word(bus_ring));
}

apr_uint32_t rtb_bus_wake_value(void)
{
    return *rtb_ring_wake_word(bus_ring);
}

void rtb_bus_wait(apr_uint32_t seen, int timeout_ms)
{
    struct timespec ts;
    ts.tv_sec = timeout_ms / 1000;
    ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
    /* returns at once when the word already moved on (EAGAIN) */
    syscall(SYS_futex, rtb_ring_wake_word(bus_ring), FUTEX_WAIT, seen, &ts, NULL, 0);
}

/* After an append (gseq `g`, 0 when refused), lock released: say so, wake every child. */
static void bus_appended(server_rec *s, apr_uint64_t g, const char *board, apr_uint64_t id)
{
    if (!g)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "RTB0019: event %s/%" APR_UINT64_T_FMT " too large for the ring; "
                     "streams of that board will resume from the database",
                     board, id);
    bus_futex_wake(rtb_ring_wake_word(bus_ring));
}

void rtb_bus_publish(server_rec *s, const char *board, apr_uint64_t id, int kind, const char *json,
                     apr_size_t len)
{
    apr_uint64_t g;
    if (!bus_ring)
        return;
    if (rtb_bus_lock() != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     "RTB0018: ring lock failed; event %s/%" APR_UINT64_T_FMT
                     " reaches streams by resume only",
                     board, id);
        return;
    }
    g = rtb_ring_append(bus_ring, board, id, (uint32_t)kind, json, (uint32_t)len);
    if (g)
        bus_hdr->published++;
    rtb_bus_unlock();
    bus_appended(s, g, board, id);
}

/* ------------------------------------------------------------------ */
/* several nodes: each event once per node, in id order per board        */

rtb_bus_state_t *rtb_bus_state(void)
{
    return bus_hdr ? &bus_hdr->bus : NULL;
}

/* The board's entry (created when `create`), NULL when absent or full. Bus lock held. */
static bus_board_t *bus_board(const char *board, int create)
{
    apr_uint32_t h = rtb_ids_hash(RTB_IDS_HASH_SEED, board, strlen(board)), i;
    for (i = 0; i < BUS_BOARDS; i++) {
        bus_board_t *e = &bus_hdr->boards[(h + i) % BUS_BOARDS];
        if (!e->board[0]) {
            if (!create)
                return NULL;
            apr_cpystrn(e->board, board, sizeof(e->board));
            e->last = 0;
            return e;
        }
        if (!strcmp(e->board, board))
            return e;
    }
    return NULL;
}

int rtb_bus_board_last(const char *board, apr_uint64_t *last)
{
    bus_board_t *e;
    int rv = 0;
    *last = 0;
    if (!bus_hdr || rtb_bus_lock() != APR_SUCCESS)
        return -1;
    e = bus_board(board, 1);
    if (e)
        *last = e->last;
    else
        rv = -1;
    rtb_bus_unlock();
    return rv;
}

void rtb_bus_board_prime(const char *board, apr_uint64_t last, int done)
{
    bus_board_t *e;
    if (!bus_hdr || rtb_bus_lock() != APR_SUCCESS)
        return;
    if (board && (e = bus_board(board, 1)) != NULL && e->last < last)
        e->last = last;
    if (done)
        bus_hdr->bus.primed = 1;
    rtb_bus_unlock();
}

int rtb_bus_publish_event(server_rec *s, const char *board, apr_uint64_t id, const char *json,
                          apr_size_t len, int flags)
{
    bus_board_t *e;
    apr_uint64_t g = 0;
    int rv = RTB_PUB_APPENDED;
    if (!bus_ring || rtb_bus_lock() != APR_SUCCESS)
        return RTB_PUB_GAP;
    /* before the LISTEN connection primed the table, a board's last id is unknown */
    e = bus_hdr->bus.primed ? bus_board(board, 1) : NULL;
    if (!e && !(flags & RTB_PUB_LISTENER)) {
        rv = RTB_PUB_GAP; /* the LISTEN connection will bring it */
    } else if (e && id <= e->last) {
        rv = RTB_PUB_DUPLICATE;
    } else if (e && id != e->last + 1 && !(flags & RTB_PUB_HEAL)) {
        rv = RTB_PUB_GAP;
    } else {
        g = rtb_ring_append(bus_ring, board, id, RTB_KIND_EVENT, json, (uint32_t)len);
        if (g)
            bus_hdr->published++;
        if (e) /* the board's next incarnation starts at 1 */
            e->last = strstr(json, "\"type\":\"board_deleted\"") ? 0 : id;
    }
    rtb_bus_unlock();
    if (rv == RTB_PUB_APPENDED)
        bus_appended(s, g, board, id);
    return rv;
}
