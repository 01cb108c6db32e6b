/*
 * rtb_ptable: the presence table in shared memory. See rtb_ptable.h.
 */
#include "rtb_ptable.h"
#include "rtb_ids.h"

#include <string.h>

#define PT_MAGIC 0x50544232u /* "PTB2" */
#define PT_SLOTS_MAX (1u << 22)
#define PT_ALIGN(x) (((x) + 63u) & ~(uint64_t)63u)

/* Indices are 1-based in every link: 0 is "none", so a zero-filled block is empty. */

typedef struct {
    uint32_t next; /* hash chain, or free list */
    uint32_t pid;  /* 0: free */
    uint64_t conn;
    uint32_t user;
    uint32_t mark; /* rtb_ptable_mark: given back by rtb_ptable_sweep unless joined again */
    int64_t typing;
} pt_lease_t;

typedef struct {
    uint32_t next;  /* hash chain, or free list */
    uint32_t board; /* 0: free */
    uint32_t sockets;
    uint32_t remote;      /* of them, leases of pseudo owners (other nodes) */
    uint32_t prev, lnext; /* the board's announced list */
    uint32_t dnext;       /* the board's dirty users */
    uint8_t announced, dirty, on_page, pad;
    char user[RTB_PTABLE_USER_MAX + 1];
    char name[RTB_PTABLE_USER_MAX + 1];
} pt_user_t;

typedef struct {
    uint32_t next;    /* hash chain, or free list */
    uint32_t entries; /* user entries of this board; 0 and not dirty: free */
    uint32_t count;   /* users announced */
    uint32_t head, tail;
    uint32_t dusers, dtail; /* dirty users, in the order they changed */
    uint32_t dnext;         /* the table's dirty boards */
    uint32_t used;
    uint8_t dirty, pad[7];
    uint64_t version, due;
    char name[RTB_PTABLE_BOARD_MAX + 1];
} pt_board_t;

struct rtb_ptable {
    uint32_t magic, slots, nbuckets, dirty;
    volatile uint64_t due;
    uint64_t clock; /* versions: every change of any board takes the next one */
    uint32_t lease_unused, lease_free, user_unused, user_free, board_unused, board_free;
    uint32_t nleases, nusers, nboards, pad;
    volatile uint64_t local_changes; /* leases of real processes taken or given back */
    struct {
        uint32_t pid, leases;
    } owners[RTB_PTABLE_OWNERS];
    uint64_t leases_off, users_off, boards_off, lb_off, ub_off, bb_off;
};

static uint32_t pt_buckets(uint32_t slots)
{
    uint32_t n = 64;
    while (n < slots)
        n <<= 1;
    return n;
}

size_t rtb_ptable_block_size(uint32_t slots)
{
    uint64_t n;
    if (slots < 1 || slots > PT_SLOTS_MAX)
        return 0;
    n = PT_ALIGN(sizeof(rtb_ptable_t));
    n += PT_ALIGN((uint64_t)slots * sizeof(pt_lease_t));
    n += PT_ALIGN((uint64_t)slots * sizeof(pt_user_t));
    n += PT_ALIGN((uint64_t)slots * sizeof(pt_board_t));
    n += 3 * PT_ALIGN((uint64_t)pt_buckets(slots) * sizeof(uint32_t));
    return (size_t)n;
}

rtb_ptable_t *rtb_ptable_format(void *block, size_t size, uint32_t slots)
{
    rtb_ptable_t *t = block;
    uint64_t off, nb;
    if (!block || !rtb_ptable_block_size(slots) || size < rtb_ptable_block_size(slots))
        return NULL;
    nb = pt_buckets(slots);
    t->slots = slots;
    t->nbuckets = (uint32_t)nb;
    off = PT_ALIGN(sizeof(rtb_ptable_t));
    t->leases_off = off;
    off += PT_ALIGN((uint64_t)slots * sizeof(pt_lease_t));
    t->users_off = off;
    off += PT_ALIGN((uint64_t)slots * sizeof(pt_user_t));
    t->boards_off = off;
    off += PT_ALIGN((uint64_t)slots * sizeof(pt_board_t));
    t->lb_off = off;
    off += PT_ALIGN(nb * sizeof(uint32_t));
    t->ub_off = off;
    off += PT_ALIGN(nb * sizeof(uint32_t));
    t->bb_off = off;
    t->magic = PT_MAGIC;
    return t;
}

rtb_ptable_t *rtb_ptable_attach(void *block)
{
    rtb_ptable_t *t = block;
    return t && t->magic == PT_MAGIC ? t : NULL;
}

uint32_t rtb_ptable_slots(const rtb_ptable_t *t)
{
    return t->slots;
}

uint64_t rtb_ptable_due(const rtb_ptable_t *t)
{
    return t->due;
}

/* ------------------------------------------------------------------ */
/* entries and hash chains                                              */

#define PT_LEASE(t, i) (&((pt_lease_t *)((char *)(t) + (t)->leases_off))[(i)-1])
#define PT_USER(t, i) (&((pt_user_t *)((char *)(t) + (t)->users_off))[(i)-1])
#define PT_BOARD(t, i) (&((pt_board_t *)((char *)(t) + (t)->boards_off))[(i)-1])
#define PT_LB(t) ((uint32_t *)((char *)(t) + (t)->lb_off))
#define PT_UB(t) ((uint32_t *)((char *)(t) + (t)->ub_off))
#define PT_BB(t) ((uint32_t *)((char *)(t) + (t)->bb_off))

static uint32_t pt_mix(uint32_t a, uint32_t b, uint32_t c)
{
    uint32_t h = RTB_IDS_HASH_SEED;
    h = (h ^ a) * 16777619u;
    h = (h ^ b) * 16777619u;
    h = (h ^ c) * 16777619u;
    return h ^ (h >> 15);
}

static uint32_t pt_board_slot(const rtb_ptable_t *t, const char *board)
{
    return rtb_ids_hash(RTB_IDS_HASH_SEED, board, strlen(board)) & (t->nbuckets - 1);
}

static uint32_t pt_user_slot(const rtb_ptable_t *t, uint32_t b, const char *user)
{
    return rtb_ids_hash(pt_mix(b, 0x75736572u, 0), user, strlen(user)) & (t->nbuckets - 1);
}

static uint32_t pt_lease_slot(const rtb_ptable_t *t, uint32_t b, uint32_t pid, uint64_t conn)
{
    return pt_mix(b, pid ^ (uint32_t)(conn >> 32), (uint32_t)conn) & (t->nbuckets - 1);
}

static uint32_t pt_board_find(const rtb_ptable_t *t, const char *board)
{
    uint32_t i = PT_BB(t)[pt_board_slot(t, board)];
    while (i && strcmp(PT_BOARD(t, i)->name, board))
        i = PT_BOARD(t, i)->next;
    return i;
}

static uint32_t pt_user_find(const rtb_ptable_t *t, uint32_t b, const char *user)
{
    uint32_t i = PT_UB(t)[pt_user_slot(t, b, user)];
    while (i && (PT_USER(t, i)->board != b || strcmp(PT_USER(t, i)->user, user)))
        i = PT_USER(t, i)->next;
    return i;
}

static uint32_t pt_lease_find(const rtb_ptable_t *t, uint32_t b, uint32_t pid, uint64_t conn)
{
    uint32_t i = PT_LB(t)[pt_lease_slot(t, b, pid, conn)];
    while (i) {
        const pt_lease_t *l = PT_LEASE(t, i);
        if (l->pid == pid && l->conn == conn && PT_USER(t, l->user)->board == b)
            return i;
        i = l->next;
    }
    return 0;
}

/* Takes entry `i` out of the chain starting at *head (`next` links). */
#define PT_UNCHAIN(t, GET, head, i)                                                                \
    do {                                                                                           \
        uint32_t *pp_ = (head);                                                                    \
        while (*pp_ && *pp_ != (i))                                                                \
            pp_ = &GET(t, *pp_)->next;                                                             \
        if (*pp_)                                                                                  \
            *pp_ = GET(t, i)->next;                                                                \
    } while (0)

/* An entry from the free list, or one never used; 0 when none is left. */
static uint32_t pt_alloc(uint32_t *free_head, uint32_t *unused, uint32_t slots, uint32_t next)
{
    uint32_t i = *free_head;
    if (i) {
        *free_head = next;
        return i;
    }
    if (*unused >= slots)
        return 0;
    return ++*unused;
}

static uint32_t pt_board_new(rtb_ptable_t *t, const char *board)
{
    uint32_t i = pt_alloc(&t->board_free, &t->board_unused, t->slots,
                          t->board_free ? PT_BOARD(t, t->board_free)->next : 0);
    uint32_t *head;
    pt_board_t *b;
    if (!i)
        return 0;
    b = PT_BOARD(t, i);
    memset(b, 0, sizeof(*b));
    b->used = 1;
    strncpy(b->name, board, RTB_PTABLE_BOARD_MAX);
    head = &PT_BB(t)[pt_board_slot(t, board)];
    b->next = *head;
    *head = i;
    t->nboards++;
    return i;
}

/* Frees a board nobody is on any more and that has nothing left to announce. */
static void pt_board_release(rtb_ptable_t *t, uint32_t i)
{
    pt_board_t *b = PT_BOARD(t, i);
    if (b->entries || b->dirty)
        return;
    PT_UNCHAIN(t, PT_BOARD, &PT_BB(t)[pt_board_slot(t, b->name)], i);
    b->used = 0;
    b->next = t->board_free;
    t->board_free = i;
    t->nboards--;
}

static uint32_t pt_user_new(rtb_ptable_t *t, uint32_t b, const char *user, const char *name)
{
    uint32_t i = pt_alloc(&t->user_free, &t->user_unused, t->slots,
                          t->user_free ? PT_USER(t, t->user_free)->next : 0);
    uint32_t *head;
    pt_user_t *u;
    if (!i)
        return 0;
    u = PT_USER(t, i);
    u->board = b;
    u->sockets = 0;
    u->remote = 0;
    u->prev = u->lnext = u->dnext = 0;
    u->announced = u->dirty = u->on_page = 0;
    strncpy(u->user, user, RTB_PTABLE_USER_MAX);
    u->user[RTB_PTABLE_USER_MAX] = '\0';
    strncpy(u->name, name ? name : user, RTB_PTABLE_USER_MAX);
    u->name[RTB_PTABLE_USER_MAX] = '\0';
    head = &PT_UB(t)[pt_user_slot(t, b, u->user)];
    u->next = *head;
    *head = i;
    PT_BOARD(t, b)->entries++;
    t->nusers++;
    return i;
}

/* Frees a user entry nothing refers to (no lease, not announced, not dirty). */
static void pt_user_release(rtb_ptable_t *t, uint32_t i)
{
    pt_user_t *u = PT_USER(t, i);
    uint32_t b = u->board;
    PT_UNCHAIN(t, PT_USER, &PT_UB(t)[pt_user_slot(t, b, u->user)], i);
    u->board = 0;
    u->next = t->user_free;
    t->user_free = i;
    t->nusers--;
    PT_BOARD(t, b)->entries--;
    pt_board_release(t, b);
}

/* A user whose announced state may change: its board goes on the dirty list. */
static void pt_mark_dirty(rtb_ptable_t *t, uint32_t ui, uint64_t now, uint64_t window)
{
    pt_user_t *u = PT_USER(t, ui);
    pt_board_t *b = PT_BOARD(t, u->board);
    if (!u->dirty) {
        u->dirty = 1;
        u->dnext = 0;
        if (b->dtail)
            PT_USER(t, b->dtail)->dnext = ui;
        else
            b->dusers = ui;
        b->dtail = ui;
    }
    if (!b->dirty) {
        b->dirty = 1;
        b->due = now + window;
        b->dnext = t->dirty;
        t->dirty = u->board;
        if (!t->due || b->due < t->due)
            t->due = b->due;
    }
}

static int pt_owner(rtb_ptable_t *t, uint32_t pid, int create)
{
    int i, free_at = -1;
    for (i = 0; i < RTB_PTABLE_OWNERS; i++) {
        if (t->owners[i].pid == pid && pid)
            return i;
        if (free_at < 0 && !t->owners[i].leases)
            free_at = i;
    }
    if (!create || free_at < 0)
        return -1;
    t->owners[free_at].pid = pid;
    return free_at;
}

/* ------------------------------------------------------------------ */
/* leases                                                               */

int rtb_ptable_join(rtb_ptable_t *t, const char *board, const char *user, const char *name,
                    uint32_t pid, uint64_t conn, uint64_t now, uint64_t window)
{
    uint32_t b, ui, li, *head;
    int own, new_board = 0, new_user = 0;
    pt_lease_t *l;
    if (!pid || strlen(board) > RTB_PTABLE_BOARD_MAX || strlen(user) > RTB_PTABLE_USER_MAX)
        return RTB_PT_FULL;
    b = pt_board_find(t, board);
    if (b && (li = pt_lease_find(t, b, pid, conn)) != 0) {
        PT_LEASE(t, li)->mark = 0;
        return RTB_PT_EXISTS;
    }
    own = pt_owner(t, pid, 1);
    if (own < 0)
        return RTB_PT_FULL;
    if (!b) {
        b = pt_board_new(t, board);
        if (!b)
            return RTB_PT_FULL;
        new_board = 1;
    }
    ui = pt_user_find(t, b, user);
    if (!ui) {
        ui = pt_user_new(t, b, user, name);
        if (!ui)
            goto full;
        new_user = 1;
    }
    li = pt_alloc(&t->lease_free, &t->lease_unused, t->slots,
                  t->lease_free ? PT_LEASE(t, t->lease_free)->next : 0);
    if (!li)
        goto full;
    l = PT_LEASE(t, li);
    l->pid = pid;
    l->conn = conn;
    l->user = ui;
    l->mark = 0;
    l->typing = 0;
    head = &PT_LB(t)[pt_lease_slot(t, b, pid, conn)];
    l->next = *head;
    *head = li;
    t->nleases++;
    t->owners[own].leases++;
    if (pid & RTB_PTABLE_REMOTE)
        PT_USER(t, ui)->remote++;
    else
        t->local_changes++;
    if (++PT_USER(t, ui)->sockets == 1)
        pt_mark_dirty(t, ui, now, window);
    return RTB_PT_OK;
full:
    if (new_user)
        pt_user_release(t, ui);
    else if (new_board)
        pt_board_release(t, b);
    return RTB_PT_FULL;
}

/* Gives lease `li` (of board `b`) back. */
static void pt_lease_drop(rtb_ptable_t *t, uint32_t b, uint32_t li, uint64_t now, uint64_t window)
{
    pt_lease_t *l = PT_LEASE(t, li);
    uint32_t ui = l->user;
    int own = pt_owner(t, l->pid, 0);
    PT_UNCHAIN(t, PT_LEASE, &PT_LB(t)[pt_lease_slot(t, b, l->pid, l->conn)], li);
    if (own >= 0 && t->owners[own].leases)
        t->owners[own].leases--;
    if (l->pid & RTB_PTABLE_REMOTE)
        PT_USER(t, ui)->remote--;
    else
        t->local_changes++;
    l->pid = 0;
    l->next = t->lease_free;
    t->lease_free = li;
    t->nleases--;
    if (--PT_USER(t, ui)->sockets == 0)
        pt_mark_dirty(t, ui, now, window);
}

int rtb_ptable_leave(rtb_ptable_t *t, const char *board, uint32_t pid, uint64_t conn, uint64_t now,
                     uint64_t window, int64_t *typing)
{
    uint32_t b = pt_board_find(t, board), li = b ? pt_lease_find(t, b, pid, conn) : 0;
    if (!li)
        return RTB_PT_NOT_FOUND;
    if (typing)
        *typing = PT_LEASE(t, li)->typing;
    pt_lease_drop(t, b, li, now, window);
    return RTB_PT_OK;
}

int rtb_ptable_set_typing(rtb_ptable_t *t, const char *board, uint32_t pid, uint64_t conn,
                          int64_t task)
{
    uint32_t b = pt_board_find(t, board), li = b ? pt_lease_find(t, b, pid, conn) : 0;
    if (!li)
        return RTB_PT_NOT_FOUND;
    PT_LEASE(t, li)->typing = task;
    return RTB_PT_OK;
}

uint32_t rtb_ptable_sockets(const rtb_ptable_t *t, const char *board, const char *user)
{
    uint32_t b = pt_board_find(t, board), ui = b ? pt_user_find(t, b, user) : 0;
    return ui ? PT_USER(t, ui)->sockets : 0;
}

int rtb_ptable_owners(const rtb_ptable_t *t, uint32_t *pids, int max)
{
    int i, n = 0;
    for (i = 0; i < RTB_PTABLE_OWNERS && n < max; i++) {
        if (t->owners[i].pid && t->owners[i].leases)
            pids[n++] = t->owners[i].pid;
    }
    return n;
}

uint32_t rtb_ptable_owner_leases(const rtb_ptable_t *t, uint32_t pid)
{
    int i;
    for (i = 0; i < RTB_PTABLE_OWNERS; i++) {
        if (t->owners[i].pid == pid && pid)
            return t->owners[i].leases;
    }
    return 0;
}

/* Gives back the leases of `pid` (only the marked ones when `marked`). */
static uint32_t pt_drop_owner(rtb_ptable_t *t, uint32_t pid, int marked, uint64_t now,
                              uint64_t window, rtb_ptable_typing_fn on_typing, void *arg)
{
    uint32_t i, n = 0;
    for (i = 1; i <= t->lease_unused; i++) {
        pt_lease_t *l = PT_LEASE(t, i);
        pt_user_t *u;
        if (l->pid != pid || !pid || (marked && !l->mark))
            continue;
        u = PT_USER(t, l->user);
        if (l->typing && on_typing)
            on_typing(arg, PT_BOARD(t, u->board)->name, u->user, u->name, l->typing);
        pt_lease_drop(t, u->board, i, now, window);
        n++;
    }
    return n;
}

uint32_t rtb_ptable_reap(rtb_ptable_t *t, uint32_t pid, uint64_t now, uint64_t window,
                         rtb_ptable_typing_fn on_typing, void *arg)
{
    uint32_t n = pt_drop_owner(t, pid, 0, now, window, on_typing, arg);
    int own = pt_owner(t, pid, 0);
    if (own >= 0) {
        t->owners[own].leases = 0;
        t->owners[own].pid = 0;
    }
    return n;
}

uint32_t rtb_ptable_mark(rtb_ptable_t *t, uint32_t pid)
{
    uint32_t i, n = 0;
    for (i = 1; i <= t->lease_unused; i++) {
        pt_lease_t *l = PT_LEASE(t, i);
        if (l->pid == pid && pid) {
            l->mark = 1;
            n++;
        }
    }
    return n;
}

uint32_t rtb_ptable_sweep(rtb_ptable_t *t, uint32_t pid, uint64_t now, uint64_t window,
                          rtb_ptable_typing_fn on_typing, void *arg)
{
    return pt_drop_owner(t, pid, 1, now, window, on_typing, arg);
}

uint32_t rtb_ptable_each_local(const rtb_ptable_t *t, rtb_ptable_each_fn fn, void *arg)
{
    uint32_t i, n = 0;
    for (i = 1; i <= t->user_unused; i++) {
        const pt_user_t *u = PT_USER(t, i);
        if (!u->board || u->sockets <= u->remote)
            continue;
        if (fn)
            fn(arg, PT_BOARD(t, u->board)->name, u->user, u->name);
        n++;
    }
    return n;
}

uint64_t rtb_ptable_local_changes(const rtb_ptable_t *t)
{
    return t->local_changes;
}

/* ------------------------------------------------------------------ */
/* announcing                                                           */

static void pt_list_append(rtb_ptable_t *t, pt_board_t *b, uint32_t ui)
{
    pt_user_t *u = PT_USER(t, ui);
    u->lnext = 0;
    u->prev = b->tail;
    if (b->tail)
        PT_USER(t, b->tail)->lnext = ui;
    else
        b->head = ui;
    b->tail = ui;
}

static void pt_list_remove(rtb_ptable_t *t, pt_board_t *b, uint32_t ui)
{
    pt_user_t *u = PT_USER(t, ui);
    if (u->prev)
        PT_USER(t, u->prev)->lnext = u->lnext;
    else
        b->head = u->lnext;
    if (u->lnext)
        PT_USER(t, u->lnext)->prev = u->prev;
    else
        b->tail = u->prev;
    u->prev = u->lnext = 0;
}

/* Applies one dirty board's changes; 1 when what it announces changed. */
static int pt_flush_board(rtb_ptable_t *t, uint32_t bi, uint32_t page, rtb_ptable_user_t *scratch,
                          rtb_ptable_diff_t *d)
{
    pt_board_t *b = PT_BOARD(t, bi);
    rtb_ptable_user_t *left = scratch, *joined = scratch + page;
    uint32_t ui = b->dusers, next, k;
    int changed = 0;
    b->dusers = b->dtail = 0;
    d->nleft = d->njoined = 0;
    for (; ui; ui = next) {
        pt_user_t *u = PT_USER(t, ui);
        next = u->dnext;
        u->dirty = 0;
        u->dnext = 0;
        if (u->sockets && !u->announced) {
            u->announced = 1;
            u->on_page = 0;
            pt_list_append(t, b, ui);
            b->count++;
            changed = 1;
        } else if (!u->sockets) {
            if (u->announced) {
                /* the strings stay readable until the lock is released:
                 * nothing reuses a freed entry before then */
                if (u->on_page && d->nleft < page) {
                    left[d->nleft].user = u->user;
                    left[d->nleft].name = u->name;
                    d->nleft++;
                }
                pt_list_remove(t, b, ui);
                u->announced = 0;
                u->on_page = 0;
                b->count--;
                changed = 1;
            }
            pt_user_release(t, ui);
        }
    }
    /* the page's survivors are still its first entries: who follows them enters it */
    for (ui = b->head, k = 0; ui && k < page; ui = PT_USER(t, ui)->lnext, k++) {
        pt_user_t *u = PT_USER(t, ui);
        if (!u->on_page) {
            u->on_page = 1;
            joined[d->njoined].user = u->user;
            joined[d->njoined].name = u->name;
            d->njoined++;
        }
    }
    d->board = b->name;
    d->count = b->count;
    d->joined = joined;
    d->left = left;
    return changed;
}

int rtb_ptable_flush(rtb_ptable_t *t, uint64_t now, uint32_t page, rtb_ptable_user_t *scratch,
                     rtb_ptable_diff_fn emit, void *arg)
{
    uint32_t *pp = &t->dirty, bi;
    uint64_t due = 0;
    int n = 0;
    if (!t->due || now < t->due)
        return 0;
    while ((bi = *pp) != 0) {
        pt_board_t *b = PT_BOARD(t, bi);
        rtb_ptable_diff_t d;
        if (b->due > now) {
            if (!due || b->due < due)
                due = b->due;
            pp = &b->dnext;
            continue;
        }
        *pp = b->dnext;
        b->dnext = 0;
        /* still dirty while its users are released, so the board stays */
        if (pt_flush_board(t, bi, page, scratch, &d)) {
            d.base = b->version;
            d.version = ++t->clock;
            b->version = d.version;
            emit(arg, &d);
            n++;
        }
        b->dirty = 0;
        pt_board_release(t, bi); /* when nobody is left on it */
    }
    t->due = due;
    return n;
}

uint32_t rtb_ptable_page(const rtb_ptable_t *t, const char *board, uint32_t offset, uint32_t limit,
                         rtb_ptable_user_t *out, uint64_t *version, uint32_t *count)
{
    uint32_t b = pt_board_find(t, board), ui, n = 0, k = 0;
    *version = 0;
    *count = 0;
    if (!b)
        return 0;
    *version = PT_BOARD(t, b)->version;
    *count = PT_BOARD(t, b)->count;
    for (ui = PT_BOARD(t, b)->head; ui && n < limit; ui = PT_USER(t, ui)->lnext, k++) {
        if (k < offset)
            continue;
        out[n].user = PT_USER(t, ui)->user;
        out[n].name = PT_USER(t, ui)->name;
        n++;
    }
    return n;
}

void rtb_ptable_usage(const rtb_ptable_t *t, uint32_t *leases, uint32_t *users, uint32_t *boards)
{
    *leases = t->nleases;
    *users = t->nusers;
    *boards = t->nboards;
}
