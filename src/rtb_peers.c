/*
 * rtb_peers: presence, typing and cursors across nodes. See rtb_peers.h.
 */
#include "rtb_peers.h"
#include "rtb_bus.h"
#include "rtb_ids.h"
#include "rtb_listen.h"
#include "rtb_presence.h"

#include "http_log.h"
#include "apr_hash.h"
#include "apr_strings.h"

#include <stdlib.h>

APLOG_USE_MODULE(rtboard);

#define PEERS_BEAT apr_time_from_sec(2) /* a message at least this often */
#define PEERS_DEAD apr_time_from_sec(RTB_PEERS_DEAD_SECONDS)
#define PEERS_LIST_EVERY apr_time_from_msec(100) /* this node's users listed at most this often */
#define PEERS_HELLO_EVERY apr_time_from_sec(5)   /* asking everyone for their list, at most */
#define PEERS_FORWARD_MAX 1000                   /* ring records forwarded per pass */
#define PEERS_HEAD 128                           /* bytes of a message beside its records */
#define PEERS_BODY (RTB_LISTEN_MAX_PAYLOAD - PEERS_HEAD)

/* One (board, user) of this node, as the other nodes were told. */
typedef struct {
    const char *board, *user, *name;
} peers_user_t;

/* A typing or cursor message of this node's sockets, to forward. */
typedef struct peers_fwd_t {
    const char *board, *json;
    struct peers_fwd_t *next;
} peers_fwd_t;

/* The listener thread's own state: only that thread touches it. */
static struct {
    server_rec *s;
    apr_pool_t *root;      /* unmanaged: the listener thread's alone */
    apr_pool_t *sent_pool; /* holds `sent` */
    apr_hash_t *sent;      /* "board\nuser" -> peers_user_t: what the others know of us */
    int full;              /* the next pass sends the whole list (someone said hello) */
    apr_uint64_t changes;  /* rtb_ptable_local_changes when last listed */
    apr_time_t listed_at, sent_at, hello_at;
    char node[17];
    int logged_nodes, logged_big;
} peers;

/* A message being filled with records, sent when the next would not fit. */
typedef struct {
    PGconn *pg;
    int full; /* the first message of a whole list, not sent yet */
    int failed;
    int n;
    apr_size_t len;
    char body[PEERS_BODY + 1];
} peers_msg_t;

static void peers_node_hex(char *buf, apr_uint64_t id)
{
    apr_snprintf(buf, 17, "%016" APR_UINT64_T_HEX_FMT, id);
}

static apr_status_t peers_cleanup(void *data)
{
    (void)data;
    if (peers.root)
        apr_pool_destroy(peers.root);
    peers.root = NULL;
    return APR_SUCCESS;
}

void rtb_peers_child_init(apr_pool_t *pchild, server_rec *s)
{
    rtb_bus_state_t *st = rtb_bus_state();
    memset(&peers, 0, sizeof(peers));
    peers.s = s;
    if (!st)
        return;
    peers_node_hex(peers.node, st->node);
    /* its own allocator: the listener thread allocates here while the
     * child's other threads use pchild */
    if (apr_pool_create_unmanaged_ex(&peers.root, NULL, NULL) != APR_SUCCESS) {
        peers.root = NULL;
        return;
    }
    apr_pool_create(&peers.sent_pool, peers.root);
    peers.sent = apr_hash_make(peers.sent_pool);
    apr_pool_cleanup_register(pchild, NULL, peers_cleanup, apr_pool_cleanup_null);
}

/* ------------------------------------------------------------------ */
/* sending                                                              */

static int peers_notify(PGconn *pg, const char *payload)
{
    const char *params[1];
    PGresult *res;
    int ok;
    params[0] = payload;
    res = PQexecParams(pg, "SELECT pg_notify('" RTB_PEERS_CHANNEL "', $1)", 1, NULL, params, NULL,
                       NULL, 0);
    ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    if (ok)
        peers.sent_at = apr_time_now();
    return ok ? 0 : -1;
}

/* Sends the records gathered (`end`: the last message of a whole list). */
static void peers_flush(peers_msg_t *m, const char *op, int end)
{
    char payload[RTB_LISTEN_MAX_PAYLOAD + 1];
    if (m->failed)
        return;
    apr_snprintf(payload, sizeof(payload),
                 "{\"node\":\"%s\",\"op\":\"%s\",\"full\":%d,\"end\":%d,\"r\":[%s]}", peers.node,
                 op, m->full, end, m->body);
    m->full = 0;
    m->n = 0;
    m->len = 0;
    m->body[0] = '\0';
    if (peers_notify(m->pg, payload) < 0)
        m->failed = 1;
}

/* Adds a record (a JSON array, whose reference is taken). */
static void peers_add(peers_msg_t *m, json_t *rec)
{
    char *js = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    apr_size_t n;
    json_decref(rec);
    if (!js)
        return; /* a string jansson refuses (not UTF-8): nothing to say of it */
    n = strlen(js);
    if (n + 1 > PEERS_BODY) {
        if (!peers.logged_big++)
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, peers.s,
                         "RTB0216: a presence record of %" APR_SIZE_T_FMT
                         " bytes is too large for NOTIFY; not sent to the other nodes",
                         n);
    } else {
        if (m->len + n + 1 > PEERS_BODY)
            peers_flush(m, "diff", 0);
        if (m->len)
            m->body[m->len++] = ',';
        memcpy(m->body + m->len, js, n + 1);
        m->len += n;
        m->n++;
    }
    free(js);
}

/* Whether an ephemeral record of this node's sockets goes to the other nodes. */
static int peers_forwardable(const char *json)
{
    static const char *const types[] = {
        "{\"type\":\"user_typing\"", "{\"type\":\"user_stopped_typing\"", "{\"type\":\"cursor\""};
    apr_size_t i;
    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (!strncmp(json, types[i], strlen(types[i])))
            return 1;
    }
    return 0;
}

/*
 * The typing and cursor messages appended to this node's ring by its own
 * sockets since the last pass (where the previous listener stopped, after a
 * takeover), in ring order, copied into `p`.
 */
static peers_fwd_t *peers_tail_ring(apr_pool_t *p)
{
    rtb_bus_state_t *st = rtb_bus_state();
    rtb_ring_t *ring = rtb_bus_ring();
    peers_fwd_t *head = NULL, **tail = &head;
    rtb_ring_rec_t rr;
    apr_uint64_t g;
    int n = 0;
    if (!ring || rtb_bus_lock() != APR_SUCCESS)
        return NULL;
    g = st->forwarded ? st->forwarded : rtb_ring_next(ring);
    if (g < rtb_ring_oldest(ring))
        g = rtb_ring_oldest(ring);
    for (; g < rtb_ring_next(ring) && n < PEERS_FORWARD_MAX; g++) {
        peers_fwd_t *f;
        if (rtb_ring_get(ring, g, &rr) != RTB_RING_OK || rr.kind != RTB_KIND_EPHEMERAL ||
            rr.event_id != 0 || !peers_forwardable(rr.payload))
            continue;
        f = apr_palloc(p, sizeof(*f));
        f->board = apr_pstrmemdup(p, rr.board, rr.board_len);
        f->json = apr_pstrmemdup(p, rr.payload, rr.len);
        f->next = NULL;
        *tail = f;
        tail = &f->next;
        n++;
    }
    st->forwarded = g;
    rtb_bus_unlock();
    return head;
}

/* rtb_presence_local_users' callback: one user into the hash of a pool. */
typedef struct {
    apr_pool_t *p;
    apr_hash_t *h;
} peers_list_t;

static void peers_collect(void *arg, const char *board, const char *user, const char *name)
{
    peers_list_t *l = arg;
    peers_user_t *u = apr_palloc(l->p, sizeof(*u));
    u->board = apr_pstrdup(l->p, board);
    u->user = apr_pstrdup(l->p, user);
    u->name = apr_pstrdup(l->p, name);
    apr_hash_set(l->h, apr_pstrcat(l->p, board, "\n", user, NULL), APR_HASH_KEY_STRING, u);
}

static json_t *peers_user_rec(const char *op, const peers_user_t *u)
{
    return json_pack("[s,s,s,s]", op, u->board, u->user, u->name);
}

/*
 * Sends this node's news: the users who came (all of them in a whole
 * list), then the forwarded messages, then the users who left, so that a
 * typing message follows its user's arrival and a user's typing ends before
 * the user leaves. 0 or -1.
 */
static int peers_send_news(PGconn *pg, apr_time_t now, apr_pool_t *p)
{
    peers_msg_t *m = apr_pcalloc(p, sizeof(*m));
    peers_list_t l = {NULL, NULL};
    peers_fwd_t *f;
    apr_hash_index_t *hi;
    int full = peers.full;

    m->pg = pg;
    /* first the list (a leave seen here has its typing's end in the ring already) */
    if (full || (rtb_presence_local_changes() != peers.changes &&
                 now - peers.listed_at >= PEERS_LIST_EVERY)) {
        apr_pool_create(&l.p, peers.root);
        l.h = apr_hash_make(l.p);
        peers.listed_at = now;
        if (rtb_presence_local_users(peers.s, peers_collect, &l, &peers.changes) < 0) {
            apr_pool_destroy(l.p);
            l.p = NULL;
            full = 0;
        }
    }
    m->full = full;
    for (hi = l.p ? apr_hash_first(p, l.h) : NULL; hi; hi = apr_hash_next(hi)) {
        const void *key;
        void *val;
        const peers_user_t *was;
        apr_hash_this(hi, &key, NULL, &val);
        was = apr_hash_get(peers.sent, key, APR_HASH_KEY_STRING);
        if (full || !was || strcmp(was->name, ((peers_user_t *)val)->name))
            peers_add(m, peers_user_rec("+", val));
    }
    for (f = peers_tail_ring(p); f; f = f->next)
        peers_add(m, json_pack("[s,s,s]", "m", f->board, f->json));
    for (hi = l.p && !full ? apr_hash_first(p, peers.sent) : NULL; hi; hi = apr_hash_next(hi)) {
        const void *key;
        void *val;
        apr_hash_this(hi, &key, NULL, &val);
        if (!apr_hash_get(l.h, key, APR_HASH_KEY_STRING))
            peers_add(m, peers_user_rec("-", val));
    }
    if (m->n || full) /* a whole list ends with a message of its own, maybe empty */
        peers_flush(m, "diff", full);
    if (m->failed) {
        if (l.p)
            apr_pool_destroy(l.p);
        return -1;
    }
    if (l.p) {
        apr_pool_destroy(peers.sent_pool);
        peers.sent_pool = l.p;
        peers.sent = l.h;
        peers.full = 0;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* other nodes                                                          */

/* The entry of node `id`, made when new (*fresh set); NULL when the table is full. */
static rtb_bus_node_t *peers_node(apr_uint64_t id, int *fresh)
{
    rtb_bus_state_t *st = rtb_bus_state();
    rtb_bus_node_t *free_at = NULL;
    apr_uint32_t owner;
    int i, clash;
    *fresh = 0;
    for (i = 0; i < RTB_BUS_NODES; i++) {
        if (st->nodes[i].id == id)
            return &st->nodes[i];
        if (!st->nodes[i].id && !free_at)
            free_at = &st->nodes[i];
    }
    if (!free_at) {
        if (!peers.logged_nodes++)
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, peers.s,
                         "RTB0217: more than %d other nodes; the users of the others are not "
                         "shown here",
                         RTB_BUS_NODES);
        return NULL;
    }
    /* a pseudo owner of its own, derived from its id, never one in use */
    owner = (apr_uint32_t)id;
    do {
        owner = RTB_PTABLE_REMOTE | (owner & ~RTB_PTABLE_REMOTE);
        if (owner == RTB_PTABLE_REMOTE)
            owner++;
        clash = 0;
        for (i = 0; i < RTB_BUS_NODES; i++)
            clash |= st->nodes[i].id && st->nodes[i].owner == owner;
        if (clash)
            owner++;
    } while (clash);
    free_at->owner = owner;
    free_at->synced = 0;
    free_at->heard = apr_time_now();
    free_at->id = id;
    *fresh = 1;
    return free_at;
}

/* Forgets node n: its users here leave, its typing ends. Returns how many users; hex: its id. */
static apr_uint32_t peers_forget(rtb_bus_node_t *n, char hex[17])
{
    apr_uint32_t gone = rtb_presence_remote_drop(peers.s, n->owner, 1);
    peers_node_hex(hex, n->id);
    n->id = 0;
    return gone;
}

/* Reaps the nodes not heard for PEERS_DEAD. */
static void peers_reap(apr_time_t now)
{
    rtb_bus_state_t *st = rtb_bus_state();
    int i;
    for (i = 0; i < RTB_BUS_NODES; i++) {
        rtb_bus_node_t *n = &st->nodes[i];
        apr_uint32_t gone;
        char hex[17];
        if (!n->id || now - n->heard <= PEERS_DEAD)
            continue;
        gone = peers_forget(n, hex);
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, peers.s,
                     "RTB0215: node %s not heard for %d s: its %u users here leave", hex,
                     RTB_PEERS_DEAD_SECONDS, (unsigned)gone);
    }
}

/* One record of another node (its pseudo owner `owner`). */
static void peers_apply(apr_uint32_t owner, json_t *rec)
{
    const char *op = json_string_value(json_array_get(rec, 0));
    const char *board = json_string_value(json_array_get(rec, 1));
    const char *a = json_string_value(json_array_get(rec, 2));
    const char *b = json_string_value(json_array_get(rec, 3));
    if (!op || !board || !a || !rtb_board_id_valid(board, strlen(board)))
        return;
    if (op[0] == 'm') {
        json_t *j = json_loads(a, 0, NULL);
        const char *type = json_string_value(json_object_get(j, "type"));
        const char *user = json_string_value(json_object_get(j, "userId"));
        json_t *task = json_object_get(j, "taskId");
        /* the typing is recorded on the user's lease, so it ends if the node dies */
        if (type && user && json_is_integer(task) && strcmp(type, "cursor"))
            rtb_presence_remote_typing(peers.s, owner, board, user,
                                       strcmp(type, "user_typing") ? 0 : json_integer_value(task));
        json_decref(j);
        if (type)
            rtb_bus_publish(peers.s, board, RTB_EPHEMERAL_REMOTE, RTB_KIND_EPHEMERAL, a, strlen(a));
        return;
    }
    if (!b || strlen(a) > RTB_USER_MAX || strlen(b) > RTB_USER_MAX)
        return;
    if (op[0] == '+')
        rtb_presence_remote_join(peers.s, owner, board, a, b);
    else if (op[0] == '-')
        rtb_presence_remote_leave(peers.s, owner, board, a, b);
}

void rtb_peers_handle(const char *payload)
{
    rtb_bus_state_t *st = rtb_bus_state();
    json_t *j = json_loads(payload, 0, NULL), *recs;
    const char *node = json_string_value(json_object_get(j, "node"));
    const char *op = json_string_value(json_object_get(j, "op"));
    apr_uint64_t id = node ? (apr_uint64_t)strtoull(node, NULL, 16) : 0;
    rtb_bus_node_t *n;
    size_t i;
    int fresh, full;

    if (!st || !op || !id || id == st->node || !(n = peers_node(id, &fresh)))
        goto done;
    n->heard = apr_time_now();
    if (!strcmp(op, "bye")) {
        char hex[17];
        apr_uint32_t gone = peers_forget(n, hex);
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, peers.s,
                     "RTB0218: node %s stopped listening: its %u users here leave", hex,
                     (unsigned)gone);
        goto done;
    }
    if (!strcmp(op, "hello")) {
        peers.full = 1; /* it gets our whole list; its own follows */
        goto done;
    }
    if (strcmp(op, "diff"))
        goto done; /* a heartbeat */
    full = json_integer_value(json_object_get(j, "full")) == 1;
    if (full) {
        rtb_presence_remote_mark(peers.s, n->owner);
        n->synced = 1;
    }
    recs = json_object_get(j, "r");
    for (i = 0; i < json_array_size(recs); i++)
        peers_apply(n->owner, json_array_get(recs, i));
    if (json_integer_value(json_object_get(j, "end")) == 1)
        rtb_presence_remote_drop(peers.s, n->owner, 0);
done:
    json_decref(j);
}

/* Asks every node for its whole list (and sends ours): "hello". 0 or -1. */
static int peers_hello(PGconn *pg, apr_time_t now)
{
    char payload[PEERS_HEAD];
    apr_snprintf(payload, sizeof(payload), "{\"node\":\"%s\",\"op\":\"hello\"}", peers.node);
    peers.hello_at = now;
    peers.full = 1;
    return peers_notify(pg, payload);
}

int rtb_peers_open(PGconn *pg)
{
    rtb_bus_state_t *st = rtb_bus_state();
    PGresult *res;
    apr_time_t now = apr_time_now();
    int i, ok;
    if (!peers.root)
        return 0;
    res = PQexec(pg, "LISTEN " RTB_PEERS_CHANNEL);
    ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok)
        return -1;
    /* nobody was heard while the connection was away: a fresh delay for all */
    for (i = 0; i < RTB_BUS_NODES; i++) {
        st->nodes[i].heard = now;
        st->nodes[i].synced = 0;
    }
    return peers_hello(pg, now);
}

int rtb_peers_tick(PGconn *pg)
{
    rtb_bus_state_t *st = rtb_bus_state();
    apr_time_t now = apr_time_now();
    apr_pool_t *p;
    int i, rv, unsynced = 0;
    if (!peers.root)
        return 0;
    peers_reap(now);
    /* a node heard without its whole list (we reaped it while it was alive) */
    for (i = 0; i < RTB_BUS_NODES; i++)
        unsynced |= st->nodes[i].id && !st->nodes[i].synced;
    if (unsynced && now - peers.hello_at >= PEERS_HELLO_EVERY && peers_hello(pg, now) < 0)
        return -1;
    apr_pool_create(&p, peers.root);
    rv = peers_send_news(pg, now, p);
    apr_pool_destroy(p);
    if (rv == 0 && now - peers.sent_at >= PEERS_BEAT) {
        char payload[PEERS_HEAD];
        apr_snprintf(payload, sizeof(payload), "{\"node\":\"%s\",\"op\":\"beat\"}", peers.node);
        rv = peers_notify(pg, payload);
    }
    return rv;
}

void rtb_peers_bye(PGconn *pg)
{
    char payload[PEERS_HEAD];
    if (!peers.root)
        return;
    apr_snprintf(payload, sizeof(payload), "{\"node\":\"%s\",\"op\":\"bye\"}", peers.node);
    peers_notify(pg, payload);
}

void rtb_peers_status(server_rec *s, json_t *bus)
{
    rtb_bus_state_t *st = rtb_bus_state();
    json_t *a = json_array();
    apr_time_t now = apr_time_now();
    json_int_t total = 0;
    char hex[17];
    int i;
    peers_node_hex(hex, st->node);
    json_object_set_new(bus, "node", json_string(hex));
    for (i = 0; i < RTB_BUS_NODES; i++) {
        rtb_bus_node_t n = st->nodes[i];
        apr_uint32_t users;
        if (!n.id)
            continue;
        users = rtb_presence_remote_users(s, n.owner);
        total += users;
        peers_node_hex(hex, n.id);
        json_array_append_new(a, json_pack("{s:s,s:I,s:I}", "node", hex, "users", (json_int_t)users,
                                           "secondsSinceHeard",
                                           (json_int_t)apr_time_sec(now - n.heard)));
    }
    json_object_set_new(bus, "nodes", a);
    json_object_set_new(bus, "remoteUsers", json_integer(total));
}
