/*
 * rtb_metrics: GET /rtboard-metrics (SetHandler rtboard-metrics), the
 * server's counters in the Prometheus text exposition format 0.0.4, and
 * the calls that count what the write path and the store do.
 *
 * Where the numbers live: each child counts in its own slot of the shared
 * segment (rtb_bus.h, rtb_child_slot_t); a scrape, answered by any child,
 * sums every slot under the bus lock (rtb_bus_totals). Counters stay
 * monotonic when children exit: an exited child's slot keeps its counts and
 * is still summed until a new child reclaims the slot, and the reclaiming
 * child first adds them to the segment's retired totals, under the same
 * lock, so a scrape sees each count exactly once, before and after. The
 * segment lives as long as the server (kept across graceful restarts), so
 * counters start at zero only after a full stop and start, which
 * Prometheus treats as a counter reset. Gauges (connections) count live
 * children only.
 *
 * Families (all prefixed rtboard_):
 *   connections{transport}            gauge: streams held now (sse, longpoll, ws, blocking)
 *   children                          gauge: child processes holding a status slot
 *   events_published_total            counter: events appended to the shared ring
 *   events_delivered_total            counter: events written to clients
 *   slow_clients_cut_total            counter: clients cut for falling RTBoardOutputCap behind
 *   ring_records                      gauge: records the ring holds
 *   ring_used_bytes, ring_capacity_bytes  gauge: the ring's byte area
 *   ring_evictions_total              counter: records evicted to make room
 *   write_batches_total               counter: write transactions (group commits) run
 *   commit_duration_seconds           histogram: a batch's transaction, BEGIN to COMMIT done
 *   presence_leases                   gauge: presence entries in use (open sockets on boards)
 *   database_errors_total             counter: database operations that failed
 */
#ifndef RTB_METRICS_H
#define RTB_METRICS_H

#include "httpd.h"

/* Answers the exposition (GET and HEAD; other methods 405). Returns OK. */
int rtb_metrics_handler(request_rec *r);

/* Counts a failed database operation (no connection, prepare, statement, transaction). */
void rtb_metrics_count_db_error(void);

/*
 * Counts a write batch that began a transaction; `commit` is the time from
 * its BEGIN to the end of its COMMIT, or negative when it did not commit
 * (then only the batch is counted, not the histogram).
 */
void rtb_metrics_count_batch(apr_interval_time_t commit);

#endif
