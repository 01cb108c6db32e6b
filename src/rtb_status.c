/*
 * rtb_status: the module's status: GET /rtboard-status (JSON, every child's
 * connections and counters, the ring) and a section in mod_status's page.
 */
#include "rtb_status.h"
#include "rtb_bus.h"
#include "rtb_http.h"
#include "rtb_listen.h"

#include "http_protocol.h"
#include "mod_status.h"
#include "apr_strings.h"

#include <errno.h>
#include <signal.h>

static const char *const status_tnames[RTB_TRANSPORTS] = {"sse", "longpoll", "ws", "blocking"};

static json_t *status_json(void)
{
    rtb_child_slot_t *slots = rtb_bus_slots();
    json_t *children = json_array(), *totals = json_object(), *boards = json_object();
    apr_uint32_t tot[RTB_TRANSPORTS] = {0};
    apr_uint64_t delivered = 0, dropped = 0;
    rtb_ring_stats_t st;
    rtb_bus_totals_t bt;
    json_t *j;
    int i, t, b;

    memset(&st, 0, sizeof(st));
    for (i = 0; slots && i < RTB_MAX_CHILD_SLOTS; i++) {
        rtb_child_slot_t *sl = &slots[i];
        json_t *ch, *conns, *cb;
        if (!sl->pid || (kill((pid_t)sl->pid, 0) < 0 && errno == ESRCH))
            continue;
        conns = json_object();
        for (t = 0; t < RTB_TRANSPORTS; t++) {
            json_object_set_new(conns, status_tnames[t], json_integer(sl->conns[t]));
            tot[t] += sl->conns[t];
        }
        cb = json_object();
        for (b = 0; b < RTB_SLOT_BOARDS; b++) {
            json_t *cur;
            if (!sl->boards[b].board[0] || !sl->boards[b].conns)
                continue;
            json_object_set_new(cb, sl->boards[b].board, json_integer(sl->boards[b].conns));
            cur = json_object_get(boards, sl->boards[b].board);
            json_object_set_new(
                boards, sl->boards[b].board,
                json_integer((cur ? json_integer_value(cur) : 0) + sl->boards[b].conns));
        }
        ch = json_pack("{s:i,s:i,s:o,s:o,s:I,s:I}", "pid", (int)sl->pid, "generation",
                       (int)sl->generation, "connections", conns, "boards", cb, "delivered",
                       (json_int_t)sl->delivered, "dropped", (json_int_t)sl->dropped);
        json_array_append_new(children, ch);
        delivered += sl->delivered;
        dropped += sl->dropped;
    }
    for (t = 0; t < RTB_TRANSPORTS; t++)
        json_object_set_new(totals, status_tnames[t], json_integer(tot[t]));
    if (rtb_bus_ring() && rtb_bus_lock() == APR_SUCCESS) {
        rtb_ring_stats(rtb_bus_ring(), &st);
        rtb_bus_unlock();
    }
    j = json_pack("{s:{s:o,s:o,s:o,s:I,s:I,s:I,s:{s:I,s:I,s:I,s:i,s:I,s:I,s:I}}}", "data",
                  "connections", totals, "boards", boards, "children", children, "published",
                  (json_int_t)rtb_bus_published(), "delivered", (json_int_t)delivered, "dropped",
                  (json_int_t)dropped, "ring", "records", (json_int_t)st.records, "bytesUsed",
                  (json_int_t)st.bytes_used, "bytesCapacity", (json_int_t)st.bytes_capacity,
                  "slots", (int)st.index_slots, "oldest", (json_int_t)st.oldest, "next",
                  (json_int_t)st.next, "evicted", (json_int_t)st.evicted);
    /* counters kept across exited children (rtb_bus_totals), as in /rtboard-metrics */
    if (j && rtb_bus_totals(&bt) == 0) {
        json_t *d = json_object_get(j, "data");
        /* exited children's deliveries and cuts too, so these never go backwards */
        json_object_set_new(d, "delivered", json_integer((json_int_t)bt.delivered));
        json_object_set_new(d, "dropped", json_integer((json_int_t)bt.dropped));
        json_object_set_new(d, "writeBatches", json_integer((json_int_t)bt.counters.batches));
        json_object_set_new(d, "databaseErrors", json_integer((json_int_t)bt.counters.db_errors));
        json_object_set_new(d, "presenceLeases", json_integer(bt.presence_leases));
        json_object_set_new(d, "presence",
                            json_pack("{s:I,s:I,s:I,s:I}", "leases", (json_int_t)bt.presence_leases,
                                      "users", (json_int_t)bt.presence_users, "boards",
                                      (json_int_t)bt.presence_boards, "slots",
                                      (json_int_t)bt.presence_slots));
    }
    return j;
}

int rtb_status_handler(request_rec *r)
{
    if (r->method_number != M_GET) {
        apr_table_setn(r->headers_out, "Allow", "GET");
        return rtb_send_error(r, HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                              "only GET is allowed here", NULL);
    }
    json_t *j = status_json();
    json_object_set_new(json_object_get(j, "data"), "bus", rtb_listen_status_json(r->server));
    return rtb_send_json(r, HTTP_OK, j);
}

/* A section in mod_status's page. */
static int status_mod_status(request_rec *r, int flags)
{
    json_t *j = status_json();
    json_t *d = json_object_get(j, "data");
    json_t *c = json_object_get(d, "connections");
    if (flags & AP_STATUS_SHORT) {
        ap_rprintf(r,
                   "RTBoardSSE: %d\nRTBoardLongPoll: %d\nRTBoardWebSocket: %d\n"
                   "RTBoardBlocking: %d\nRTBoardPublished: %" APR_INT64_T_FMT "\n",
                   (int)json_integer_value(json_object_get(c, "sse")),
                   (int)json_integer_value(json_object_get(c, "longpoll")),
                   (int)json_integer_value(json_object_get(c, "ws")),
                   (int)json_integer_value(json_object_get(c, "blocking")),
                   (apr_int64_t)json_integer_value(json_object_get(d, "published")));
    } else {
        ap_rprintf(r,
                   "<hr />\n<h2>mod_rtboard</h2>\n<dl><dt>streams: %d SSE, %d long polls, "
                   "%d WebSockets, %d blocking</dt><dt>events published: %" APR_INT64_T_FMT
                   ", delivered: %" APR_INT64_T_FMT "</dt></dl>\n",
                   (int)json_integer_value(json_object_get(c, "sse")),
                   (int)json_integer_value(json_object_get(c, "longpoll")),
                   (int)json_integer_value(json_object_get(c, "ws")),
                   (int)json_integer_value(json_object_get(c, "blocking")),
                   (apr_int64_t)json_integer_value(json_object_get(d, "published")),
                   (apr_int64_t)json_integer_value(json_object_get(d, "delivered")));
    }
    json_decref(j);
    return OK;
}

void rtb_status_register_hooks(apr_pool_t *p)
{
    (void)p;
    APR_OPTIONAL_HOOK(ap, status_hook, status_mod_status, NULL, NULL, APR_HOOK_MIDDLE);
}
