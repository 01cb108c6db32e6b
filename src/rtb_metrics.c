/*
 * rtb_metrics: the Prometheus exposition and its counters. See rtb_metrics.h.
 */
#include "rtb_metrics.h"
#include "rtb_bus.h"
#include "rtb_http.h"

#include "http_protocol.h"
#include "apr_atomic.h"
#include "apr_strings.h"

/* Upper bounds of the commit-latency buckets, in microseconds and as labels. */
static const apr_uint64_t metrics_bucket_us[RTB_COMMIT_BUCKETS] = {
    500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000};
static const char *const metrics_bucket_le[RTB_COMMIT_BUCKETS] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
    "0.05",   "0.1",   "0.25",   "0.5",   "1",    "2.5"};
static const char *const metrics_tnames[RTB_TRANSPORTS] = {"sse", "longpoll", "ws", "blocking"};

void rtb_metrics_count_db_error(void)
{
    rtb_child_slot_t *sl = rtb_bus_my_slot();
    if (sl)
        apr_atomic_inc64(&sl->counters.db_errors);
}

void rtb_metrics_count_batch(apr_interval_time_t commit)
{
    rtb_child_slot_t *sl = rtb_bus_my_slot();
    int b = 0;
    if (!sl)
        return;
    apr_atomic_inc64(&sl->counters.batches);
    if (commit < 0)
        return;
    while (b < RTB_COMMIT_BUCKETS && (apr_uint64_t)commit > metrics_bucket_us[b])
        b++;
    apr_atomic_add64(&sl->counters.commit_us, (apr_uint64_t)commit);
    apr_atomic_inc64(&sl->counters.commit_buckets[b]);
}

/* One family's HELP and TYPE lines. */
static void metrics_head(request_rec *r, const char *name, const char *type, const char *help)
{
    ap_rprintf(r, "# HELP rtboard_%s %s\n# TYPE rtboard_%s %s\n", name, help, name, type);
}

/* A family of one sample without labels. */
static void metrics_one(request_rec *r, const char *name, const char *type, const char *help,
                        apr_uint64_t v)
{
    metrics_head(r, name, type, help);
    ap_rprintf(r, "rtboard_%s %" APR_UINT64_T_FMT "\n", name, v);
}

/* The commit-latency histogram: cumulative buckets, +Inf, sum and count. */
static void metrics_histogram(request_rec *r, const rtb_slot_counters_t *c)
{
    apr_uint64_t cum = 0;
    int b;
    metrics_head(r, "commit_duration_seconds", "histogram",
                 "Time from a write batch's BEGIN to the end of its COMMIT.");
    for (b = 0; b < RTB_COMMIT_BUCKETS; b++) {
        cum += c->commit_buckets[b];
        ap_rprintf(r, "rtboard_commit_duration_seconds_bucket{le=\"%s\"} %" APR_UINT64_T_FMT "\n",
                   metrics_bucket_le[b], cum);
    }
    cum += c->commit_buckets[RTB_COMMIT_BUCKETS];
    ap_rprintf(r,
               "rtboard_commit_duration_seconds_bucket{le=\"+Inf\"} %" APR_UINT64_T_FMT "\n"
               "rtboard_commit_duration_seconds_sum %" APR_UINT64_T_FMT ".%06" APR_UINT64_T_FMT
               "\nrtboard_commit_duration_seconds_count %" APR_UINT64_T_FMT "\n",
               cum, c->commit_us / 1000000, c->commit_us % 1000000, cum);
}

int rtb_metrics_handler(request_rec *r)
{
    rtb_bus_totals_t t;
    int k;

    if (r->method_number != M_GET) {
        apr_table_setn(r->headers_out, "Allow", "GET");
        return rtb_send_error(r, HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                              "only GET is allowed here", NULL);
    }
    if (rtb_bus_totals(&t) != 0)
        return rtb_send_error(r, HTTP_SERVICE_UNAVAILABLE, "metrics_unavailable",
                              "the shared counters cannot be read", NULL);
    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (r->header_only)
        return OK;

    metrics_head(r, "connections", "gauge", "Long-lived connections held now, by transport.");
    for (k = 0; k < RTB_TRANSPORTS; k++)
        ap_rprintf(r, "rtboard_connections{transport=\"%s\"} %u\n", metrics_tnames[k],
                   (unsigned)t.conns[k]);
    metrics_one(r, "children", "gauge", "Child processes holding a status slot.", t.children);
    metrics_one(r, "events_published_total", "counter",
                "Events appended to the shared ring (committed changes and ephemeral messages).",
                t.published);
    metrics_one(r, "events_delivered_total", "counter", "Events written to clients.", t.delivered);
    metrics_one(r, "slow_clients_cut_total", "counter",
                "Clients cut for falling RTBoardOutputCap bytes behind (they resume by id).",
                t.dropped);
    metrics_one(r, "ring_records", "gauge", "Records the shared event ring holds.", t.ring.records);
    metrics_one(r, "ring_used_bytes", "gauge", "Bytes of the ring's byte area in use.",
                t.ring.bytes_used);
    metrics_one(r, "ring_capacity_bytes", "gauge",
                "Size of the ring's byte area (RTBoardRingSize).", t.ring.bytes_capacity);
    metrics_one(r, "ring_evictions_total", "counter", "Records evicted from the ring to make room.",
                t.ring.evicted);
    metrics_one(r, "write_batches_total", "counter",
                "Write transactions run (each commits a batch of changes).", t.counters.batches);
    metrics_histogram(r, &t.counters);
    metrics_one(r, "presence_leases", "gauge",
                "Presence entries in use (a user's open WebSocket on a board, or a user "
                "of another node on a board).",
                t.presence_leases);
    metrics_one(r, "database_errors_total", "counter",
                "Database operations that failed (no connection, statement, transaction).",
                t.counters.db_errors);
    return OK;
}
