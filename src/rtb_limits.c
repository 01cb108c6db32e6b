/*
 * rtb_limits: per-user caps in the shared table of rtb_bus. See rtb_limits.h.
 *
 * The table is open-addressed on a hash of the user id, probed linearly.
 * Entries are never emptied (so no probe chain is ever broken); an idle one
 * (no stream, a full creation budget) met while probing for a new user is
 * taken over by it, which keeps the table to the users active at once.
 */
#include "rtb_limits.h"
#include "rtb_bus.h"
#include "rtb_config.h"
#include "rtb_ids.h"

#include "http_log.h"
#include "apr_strings.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

APLOG_USE_MODULE(rtboard);

static int limits_full_logged;

/* The user's hash; 0 marks an entry never used. */
static apr_uint32_t limits_hash(const char *user)
{
    apr_uint32_t h = rtb_ids_hash(RTB_IDS_HASH_SEED, user, strlen(user));
    return h ? h : 1;
}

/* Drops the streams of children that are gone. */
static void limits_reap(rtb_user_limit_t *e)
{
    int k;
    for (k = 0; k < RTB_LIMIT_PIDS; k++) {
        if (e->by[k].pid && kill((pid_t)e->by[k].pid, 0) < 0 && errno == ESRCH) {
            e->streams -= e->by[k].n;
            e->by[k].pid = e->by[k].n = 0;
        }
    }
}

/* Refills the creation budget up to one minute's worth. */
static void limits_refill(rtb_user_limit_t *e, int rate, apr_time_t now)
{
    if (rate <= 0)
        return;
    e->tokens += (double)(now - e->tokens_at) / apr_time_from_sec(60) * rate;
    if (e->tokens > rate)
        e->tokens = rate;
    e->tokens_at = now;
}

/*
 * The user's entry (lock held); with `create`, made (or an idle one taken
 * over) when missing. NULL when missing, or when the table is full.
 */
static rtb_user_limit_t *limits_entry(const char *user, int create, int rate)
{
    rtb_user_limit_t *t = rtb_bus_limits();
    apr_uint32_t h = limits_hash(user);
    rtb_user_limit_t *idle = NULL;
    apr_time_t now = apr_time_now();
    int i;
    if (!t)
        return NULL;
    for (i = 0; i < RTB_LIMIT_USERS; i++) {
        rtb_user_limit_t *e = &t[(h + (apr_uint32_t)i) % RTB_LIMIT_USERS];
        if (!e->hash) {
            if (!idle)
                idle = e;
            break;
        }
        if (e->hash == h && !strcmp(e->user, user))
            return e;
        if (create && !idle) {
            limits_reap(e);
            limits_refill(e, rate, now);
            if (!e->streams && (rate <= 0 || e->tokens >= rate))
                idle = e;
        }
    }
    if (!create || !idle)
        return NULL;
    memset(idle, 0, sizeof(*idle));
    idle->hash = h;
    apr_cpystrn(idle->user, user, sizeof(idle->user));
    idle->tokens = rate;
    idle->tokens_at = now;
    return idle;
}

static void limits_log_full(server_rec *s)
{
    if (!limits_full_logged) {
        limits_full_logged = 1;
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "RTB0061: the per-user table is full (%d active users); new users are "
                     "not limited until some go idle",
                     RTB_LIMIT_USERS);
    }
}

/*
 * Locks the table and finds r->user's entry (made when missing). NULL, with
 * the table unlocked, when the user is not to be limited now (the table is
 * full of active users, or could not be locked).
 */
static rtb_user_limit_t *limits_open(request_rec *r, const rtb_cfg_t *cfg)
{
    rtb_user_limit_t *e;
    if (rtb_bus_limits_lock() != 0)
        return NULL;
    e = limits_entry(r->user ? r->user : "anonymous", 1, cfg->board_rate);
    if (!e) {
        rtb_bus_limits_unlock();
        limits_log_full(r->server);
    }
    return e;
}

typedef struct {
    char *user;
} limits_hold_t;

/* Connection pool cleanup: the stream is over. */
static apr_status_t limits_release(void *data)
{
    limits_hold_t *hold = data;
    apr_uint32_t me = (apr_uint32_t)getpid();
    rtb_user_limit_t *e;
    int k;
    if (rtb_bus_limits_lock() != 0)
        return APR_SUCCESS;
    e = limits_entry(hold->user, 0, 0);
    for (k = 0; e && k < RTB_LIMIT_PIDS; k++) {
        if (e->by[k].pid == me && e->by[k].n) {
            e->by[k].n--;
            e->streams--;
            if (!e->by[k].n)
                e->by[k].pid = 0;
            break;
        }
    }
    rtb_bus_limits_unlock();
    return APR_SUCCESS;
}

int rtb_limits_take_stream(request_rec *r)
{
    rtb_cfg_t *cfg = rtb_cfg(r->server);
    const char *user = r->user ? r->user : "anonymous";
    apr_uint32_t me = (apr_uint32_t)getpid();
    rtb_user_limit_t *e;
    limits_hold_t *hold;
    int k, slot = -1;
    if (cfg->user_streams <= 0 || !(e = limits_open(r, cfg)))
        return OK;
    limits_reap(e);
    if (e->streams >= (apr_uint32_t)cfg->user_streams) {
        rtb_bus_limits_unlock();
        return HTTP_TOO_MANY_REQUESTS;
    }
    for (k = 0; k < RTB_LIMIT_PIDS; k++) {
        if (e->by[k].pid == me) {
            slot = k;
            break;
        }
        if (!e->by[k].pid && slot < 0)
            slot = k;
    }
    if (slot >= 0) {
        e->by[slot].pid = me;
        e->by[slot].n++;
        e->streams++;
    }
    rtb_bus_limits_unlock();
    if (slot < 0)
        return OK; /* in more children than the entry follows: not counted */
    hold = apr_palloc(r->connection->pool, sizeof(*hold));
    hold->user = apr_pstrdup(r->connection->pool, user);
    apr_pool_cleanup_register(r->connection->pool, hold, limits_release, apr_pool_cleanup_null);
    return OK;
}

int rtb_limits_take_board(request_rec *r, int *retry_after)
{
    rtb_cfg_t *cfg = rtb_cfg(r->server);
    rtb_user_limit_t *e;
    int rc = OK;
    *retry_after = 0;
    if (cfg->board_rate <= 0 || !(e = limits_open(r, cfg)))
        return OK;
    limits_refill(e, cfg->board_rate, apr_time_now());
    if (e->tokens >= 1) {
        e->tokens -= 1;
    } else {
        rc = HTTP_TOO_MANY_REQUESTS;
        *retry_after = (int)((1 - e->tokens) * 60 / cfg->board_rate) + 1;
    }
    rtb_bus_limits_unlock();
    return rc;
}
