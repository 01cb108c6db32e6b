/*
 * rtb_listen: the LISTEN connection of a node and its healing. See
 * rtb_listen.h.
 */
#include "rtb_listen.h"
#include "rtb_bus.h"
#include "rtb_config.h"
#include "rtb_peers.h"

#include "http_log.h"
#include "apr_strings.h"
#include "apr_atomic.h"
#include "apr_thread_proc.h"

#include <libpq-fe.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

APLOG_USE_MODULE(rtboard);

#define LISTEN_NAP_MS 250    /* a waiting child looks at the slot this often */
#define LISTEN_PASS_MS 50    /* the LISTENing child's passes (presence, typing, cursors) */
#define LISTEN_RETRY_MS 500  /* between connection attempts while PostgreSQL is away */
#define LISTEN_FILL_PAGE 500 /* events read per query while healing */

static struct {
    server_rec *s;
    const char *conninfo;
    apr_thread_t *thd;
    volatile apr_uint32_t stop;
    apr_uint32_t me;
    PGconn *pg;
    int logged_down; /* the current outage was logged */
} lis;

static void listen_nap(int ms)
{
    poll(NULL, 0, ms);
}

/* Takes the node's listener slot when it is free or its child is gone. */
static int listen_claim(rtb_bus_state_t *st)
{
    apr_uint32_t holder = st->pid;
    if (holder == lis.me)
        return 1;
    if (holder && !(kill((pid_t)holder, 0) < 0 && errno == ESRCH))
        return 0;
    if (apr_atomic_cas32(&st->pid, lis.me, holder) != holder)
        return 0;
    if (holder)
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, lis.s,
                     "RTB0202: child %u took over the LISTEN connection of child %u", lis.me,
                     holder);
    return 1;
}

/* Ends the connection; the bus is down until the next one is caught up. */
static void listen_drop(rtb_bus_state_t *st, const char *why)
{
    if (lis.pg) {
        PQfinish(lis.pg);
        lis.pg = NULL;
        st->reconnects++;
    }
    if (st->up || !lis.logged_down) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, lis.s,
                     "RTB0203: the bus is down (%s); streams stay open and catch up when it "
                     "returns",
                     why);
        lis.logged_down = 1;
    }
    if (st->up) {
        st->up = 0;
        st->since = apr_time_now();
    }
    apr_cpystrn(st->error, why, sizeof(st->error));
}

/* The libpq message of the connection, without its trailing newline. */
static const char *listen_error(void)
{
    static char buf[200];
    const char *m = lis.pg ? PQerrorMessage(lis.pg) : "no connection";
    apr_size_t n;
    apr_cpystrn(buf, m && *m ? m : "connection lost", sizeof(buf));
    n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return buf;
}

/*
 * Reads the board's events after its last id in this node's ring, up to
 * `upto`, from the table, and appends them (jumping over ids gone from the
 * log: pruned history, a deleted board). Returns 0, or -1 when the query
 * failed (the connection is then dropped by the caller).
 */
static int listen_fill(rtb_bus_state_t *st, const char *board, apr_uint64_t upto)
{
    apr_uint64_t last;
    char slast[24], supto[24];
    if (rtb_bus_board_last(board, &last) < 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, lis.s,
                     "RTB0204: board %s is not tracked (table full); its streams resume by id",
                     board);
        return 0;
    }
    while (last < upto) {
        const char *params[3];
        PGresult *res;
        int i, n;
        apr_snprintf(slast, sizeof(slast), "%" APR_UINT64_T_FMT, last);
        apr_snprintf(supto, sizeof(supto), "%" APR_UINT64_T_FMT, upto);
        params[0] = board;
        params[1] = slast;
        params[2] = supto;
        res =
            PQexecParams(lis.pg,
                         "SELECT id, body FROM events WHERE board_id = $1 AND id > $2::bigint "
                         "AND id <= $3::bigint ORDER BY id LIMIT " APR_STRINGIFY(LISTEN_FILL_PAGE),
                         3, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            PQclear(res);
            return -1;
        }
        n = PQntuples(res);
        for (i = 0; i < n; i++) {
            apr_uint64_t id = (apr_uint64_t)apr_atoi64(PQgetvalue(res, i, 0));
            rtb_bus_publish_event(lis.s, board, id, PQgetvalue(res, i, 1),
                                  (apr_size_t)PQgetlength(res, i, 1),
                                  RTB_PUB_HEAL | RTB_PUB_LISTENER);
            st->healed++;
            last = id;
        }
        PQclear(res);
        if (n < LISTEN_FILL_PAGE)
            break; /* the rest is gone from the log */
    }
    return 0;
}

/*
 * After (re)connecting and LISTENing: the first connection of the server
 * primes every board's last id; later ones read what every board committed
 * while the connection was down. Returns 0 or -1.
 */
static int listen_heal(rtb_bus_state_t *st)
{
    PGresult *res = PQexec(lis.pg, "SELECT id, seq FROM boards");
    int i, n, prime = !st->primed, rv = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        return -1;
    }
    n = PQntuples(res);
    for (i = 0; i < n && rv == 0; i++) {
        const char *board = PQgetvalue(res, i, 0);
        apr_uint64_t seq = (apr_uint64_t)apr_atoi64(PQgetvalue(res, i, 1)), last;
        if (prime)
            rtb_bus_board_prime(board, seq, 0);
        else if (rtb_bus_board_last(board, &last) == 0 && seq > last)
            rv = listen_fill(st, board, seq);
    }
    PQclear(res);
    if (prime && rv == 0)
        rtb_bus_board_prime(NULL, 0, 1);
    return rv;
}

/* One notification: "<id> <board> <json>" or "<id> <board>". Returns 0 or -1. */
static int listen_handle(rtb_bus_state_t *st, const PGnotify *nt)
{
    char board[RTB_RING_BOARD_MAX + 1];
    const char *p = nt->extra, *b, *json = NULL;
    char *end;
    apr_uint64_t id = (apr_uint64_t)strtoull(p, &end, 10);
    apr_size_t blen;

    if (end == p || *end != ' ')
        return 0; /* not ours */
    b = end + 1;
    blen = strcspn(b, " ");
    if (!blen || blen >= sizeof(board))
        return 0;
    memcpy(board, b, blen);
    board[blen] = '\0';
    if (b[blen] == ' ')
        json = b + blen + 1;
    st->notifications++;
    if (json && rtb_bus_publish_event(lis.s, board, id, json, strlen(json), RTB_PUB_LISTENER) !=
                    RTB_PUB_GAP)
        return 0;
    /* missing ids before it (or the event itself, too large for NOTIFY): the table */
    if (listen_fill(st, board, json ? id - 1 : id) < 0)
        return -1;
    if (json)
        rtb_bus_publish_event(lis.s, board, id, json, strlen(json),
                              RTB_PUB_HEAL | RTB_PUB_LISTENER);
    return 0;
}

static PGconn *listen_connect(void)
{
    /* dbname is expanded as the whole conninfo; the rest are defaults it may not set */
    static const char *const keys[] = {"dbname",
                                       "connect_timeout",
                                       "keepalives",
                                       "keepalives_idle",
                                       "keepalives_interval",
                                       "keepalives_count",
                                       "application_name",
                                       NULL};
    const char *vals[] = {lis.conninfo, "3", "1", "5", "2", "2", "rtboard-bus", NULL};
    return PQconnectdbParams(keys, vals, 1);
}

/* Connects, LISTENs and heals. Returns 0, or -1 (dropped, with the reason). */
static int listen_open(rtb_bus_state_t *st)
{
    PGresult *res;
    lis.pg = listen_connect();
    if (!lis.pg || PQstatus(lis.pg) != CONNECTION_OK) {
        listen_drop(st, listen_error());
        return -1;
    }
    res = PQexec(lis.pg, "LISTEN " RTB_LISTEN_CHANNEL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        PQclear(res);
        listen_drop(st, listen_error());
        return -1;
    }
    PQclear(res);
    if (listen_heal(st) < 0 || rtb_peers_open(lis.pg) < 0) {
        listen_drop(st, listen_error());
        return -1;
    }
    st->up = 1;
    st->since = apr_time_now();
    st->error[0] = '\0';
    lis.logged_down = 0;
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, lis.s,
                 "RTB0205: the bus is up (LISTEN in child %u, %" APR_UINT64_T_FMT
                 " events healed so far)",
                 lis.me, (apr_uint64_t)st->healed);
    return 0;
}

/*
 * Waits for notifications (LISTEN_PASS_MS at most, to see `stop` and to
 * forward this node's presence news), handles them, then makes a pass of
 * rtb_peers.
 */
static void listen_pump(rtb_bus_state_t *st)
{
    struct pollfd pfd;
    PGnotify *nt;
    pfd.fd = PQsocket(lis.pg);
    pfd.events = POLLIN;
    pfd.revents = 0;
    if (poll(&pfd, 1, LISTEN_PASS_MS) > 0 && !PQconsumeInput(lis.pg)) {
        listen_drop(st, listen_error());
        return;
    }
    while (lis.pg && (nt = PQnotifies(lis.pg)) != NULL) {
        int rv = 0;
        if (!strcmp(nt->relname, RTB_PEERS_CHANNEL))
            rtb_peers_handle(nt->extra);
        else
            rv = listen_handle(st, nt);
        PQfreemem(nt);
        if (rv < 0)
            listen_drop(st, listen_error());
    }
    if (lis.pg && rtb_peers_tick(lis.pg) < 0)
        listen_drop(st, listen_error());
}

static void *APR_THREAD_FUNC listen_thread(apr_thread_t *thd, void *data)
{
    rtb_bus_state_t *st = rtb_bus_state();
    (void)data;
    while (!lis.stop) {
        if (!listen_claim(st)) {
            listen_nap(LISTEN_NAP_MS);
            continue;
        }
        if (!lis.pg && listen_open(st) < 0) {
            listen_nap(LISTEN_RETRY_MS);
            continue;
        }
        listen_pump(st);
    }
    if (lis.pg) {
        if (st->up)
            rtb_peers_bye(lis.pg);
        PQfinish(lis.pg);
        lis.pg = NULL;
    }
    if (st->pid == lis.me) {
        st->up = 0;
        st->since = apr_time_now();
        apr_cpystrn(st->error, "the listening child stopped", sizeof(st->error));
        apr_atomic_cas32(&st->pid, 0, lis.me);
    }
    apr_thread_exit(thd, APR_SUCCESS);
    return NULL;
}

static apr_status_t listen_cleanup(void *data)
{
    apr_status_t rv;
    (void)data;
    if (!lis.thd)
        return APR_SUCCESS;
    lis.stop = 1;
    apr_thread_join(&rv, lis.thd);
    lis.thd = NULL;
    return APR_SUCCESS;
}

void rtb_listen_child_init(apr_pool_t *pchild, server_rec *s)
{
    rtb_cfg_t *cfg = rtb_cfg(s);
    apr_status_t rv;
    memset(&lis, 0, sizeof(lis));
    if (!cfg->bus || !rtb_bus_state() || !rtb_bus_ring())
        return;
    lis.s = s;
    lis.conninfo = cfg->bus;
    lis.me = (apr_uint32_t)getpid();
    rtb_peers_child_init(pchild, s);
    rv = apr_thread_create(&lis.thd, NULL, listen_thread, NULL, pchild);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "RTB0206: cannot start the listener thread");
        lis.thd = NULL;
        return;
    }
    apr_pool_pre_cleanup_register(pchild, NULL, listen_cleanup);
}

json_t *rtb_listen_status_json(server_rec *s)
{
    rtb_bus_state_t *st = rtb_bus_state();
    json_t *j;
    if (!rtb_cfg(s)->bus || !st)
        return json_pack("{s:s}", "driver", "local");
    j = json_pack("{s:s,s:b,s:i,s:I,s:I,s:I,s:I}", "driver", "pgsql", "connected", (int)st->up,
                  "listener", (int)st->pid, "secondsInState",
                  (json_int_t)(st->since ? apr_time_sec(apr_time_now() - st->since) : 0),
                  "notifications", (json_int_t)st->notifications, "healed", (json_int_t)st->healed,
                  "reconnects", (json_int_t)st->reconnects);
    if (!st->up && st->error[0])
        json_object_set_new(j, "error", json_string(st->error));
    if (j)
        rtb_peers_status(s, j);
    return j;
}
