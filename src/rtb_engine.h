/*
 * rtb_engine: the per-child connection engine. Long-lived requests (SSE,
 * long polls, WebSockets) are handed to one event-loop thread per child
 * process, so the number of threads does not grow with connections.
 *
 * Life of a stream: the handler (a worker thread) validates, authorizes,
 * writes its first bytes, creates an rtb_conn_t, subscribes it and calls
 * rtb_conn_hand_off(), which returns SUSPENDED. Apache's suspend hook queues
 * the connection to the loop, which from then on is the only thread that
 * touches it: it delivers ring records, runs timers, reads input and, at the
 * end, finishes the request and destroys the connection's pool.
 *
 * Where a connection cannot be suspended (HTTP/2 streams, connections with
 * clogging input filters such as TLS on some builds, non-async MPMs) the same
 * transport callbacks run in a blocking loop in the handler's thread.
 */
#ifndef RTB_ENGINE_H
#define RTB_ENGINE_H

#include "rtb_config.h"
#include "rtb_router.h"
#include "rtb_bus.h"
#include "util_filter.h"

/* Kinds of ring records (the ring's opaque kind word). */
enum { RTB_KIND_EVENT = 0, RTB_KIND_EPHEMERAL = 1 };

typedef struct rtb_conn_t rtb_conn_t;
typedef struct rtb_sub_t rtb_sub_t;

/* One board a connection listens to, with the last event id it was given. */
struct rtb_sub_t {
    rtb_conn_t *cn;
    char board[RTB_BOARD_ID_MAX + 1];
    apr_uint64_t last_id;
    apr_uint64_t ephemeral_from; /* ephemeral records older than this gseq are skipped */
    int active;
    rtb_sub_t *bnext, *bprev; /* the board's subscribers (loop thread) */
    rtb_sub_t *cnext;         /* the connection's subscriptions */
};

typedef struct {
    const char *name;
    int transport; /* RTB_T_* */
    /* A committed event (kind EVENT, id in order) or an ephemeral message. */
    void (*on_record)(rtb_conn_t *cn, rtb_sub_t *sub, int kind, apr_uint64_t id,
                      const char *json, apr_size_t len);
    /* Input is ready (or the peer went away): read without blocking. */
    void (*on_readable)(rtb_conn_t *cn);
    /* Once a second or so: heartbeats, deadlines. */
    void (*on_timer)(rtb_conn_t *cn, apr_time_t now);
    /* The connection ends: last words (SSE end, WebSocket close). */
    void (*on_close)(rtb_conn_t *cn, int why);
    /* Finish the HTTP request after the last words (SSE/long-poll: EOS). */
    int http_body;
    /*
     * The answer's head is out and its body needs no HTTP framing (SSE:
     * Connection: close, no chunks; a WebSocket after its 101): once adopted,
     * the request is logged and its pool freed, and writes go to the
     * connection's filters. An idle stream then keeps only its connection.
     */
    int release_request;
} rtb_transport_t;

/* Why a connection ends. */
enum {
    RTB_CLOSE_PEER = 0,   /* the client went away */
    RTB_CLOSE_DONE,       /* the transport finished (long-poll answered) */
    RTB_CLOSE_SLOW,       /* over the output cap */
    RTB_CLOSE_LAPPED,     /* missed records (ring overrun or a gap) */
    RTB_CLOSE_STOPPING,   /* graceful restart or stop */
    RTB_CLOSE_DELETED,    /* the board was deleted */
    RTB_CLOSE_PROTOCOL,   /* a protocol error (WebSocket) */
    RTB_CLOSE_TIMEOUT     /* idle, or a missed pong */
};

struct rtb_conn_t {
    request_rec *r;
    conn_rec *c;
    apr_socket_t *sock;
    int fd;
    const rtb_transport_t *vt;
    ap_filter_t *out; /* where writes go: r->output_filters or c->output_filters */
    apr_bucket_brigade *bb;  /* output */
    apr_bucket_brigade *ibb; /* input */
    apr_pool_t *scratch;     /* cleared often: the loop's per-pass pool, or r->pool */
    rtb_sub_t *subs;
    apr_uint64_t start_gseq; /* ring position taken before the handler read the store */
    char *obuf;              /* queued output (malloc), for slow sockets */
    apr_size_t olen, ocap;
    int closing, blocking, dirty, want_out, in_pollset, counted;
    int jobs; /* deferred jobs in flight: finish waits for them */
    int on_closing; /* on the loop's closing list */
    int final;      /* writing its last words: writes allowed while closing */
    int keep_request; /* the transport still needs its request: never released */
    int settled;      /* request released (unless kept) and input drained, once */
    apr_uint32_t id; /* unique within the child */
    int close_why;
    apr_time_t adopted, close_at, next_timer;
    apr_uint64_t passes; /* loop pass that adopted it */
    apr_pollfd_t pfd;
    rtb_conn_t *next, *prev; /* all connections of the loop */
    rtb_conn_t *qnext;       /* hand-off queue, dirty list, closing list */
    rtb_conn_t *dnext;
    const char *user, *name;
    void *tdata;                  /* transport's own state */
};

void rtb_engine_register_hooks(apr_pool_t *p);
void rtb_engine_child_init(apr_pool_t *pchild, server_rec *s);

/* Handles the streaming routes: events, poll, ws, ws-ticket. */
int rtb_engine_dispatch(request_rec *r, const rtb_route_t *rt);

/* GET /rtboard-status and SetHandler rtboard-status. */
int rtb_engine_status(request_rec *r);

/* The ring's next gseq: take it BEFORE reading the store, pass it to rtb_conn_create. */
apr_uint64_t rtb_engine_ring_position(void);

/* A connection record for the request (allocated in c->pool). */
rtb_conn_t *rtb_conn_create(request_rec *r, const rtb_transport_t *vt, apr_uint64_t start_gseq);

/*
 * For a streaming response: its head waits for the first bytes of the body
 * and goes out with them (call before the first write).
 */
void rtb_conn_hold_head(request_rec *r);

/* Adds a board subscription with the last id the client has. */
rtb_sub_t *rtb_conn_subscribe(rtb_conn_t *cn, const char *board, apr_uint64_t last_id);

/*
 * Loop thread only: delivers the ring's records from gseq `from` up to what
 * the loop has already dispatched, to the connection's subscriptions (for a
 * board joined while the connection is live; ids already sent are skipped).
 */
void rtb_conn_catch_up(rtb_conn_t *cn, apr_uint64_t from);

/* Runs `fn(data)` on a worker thread of the engine, then `done(data)` on the loop. */
int rtb_engine_defer(rtb_conn_t *cn, void (*fn)(void *), void (*done)(void *), void *data);

/* Loop thread only: ends a subscription (WebSocket leave). */
void rtb_conn_unsubscribe(rtb_conn_t *cn, rtb_sub_t *sub);

/*
 * Queues bytes for the client; they are written at the end of the loop pass
 * (or at once in the blocking path). Over the output cap the connection is
 * closed as slow.
 */
void rtb_conn_write(rtb_conn_t *cn, const char *buf, apr_size_t len);

/* Writes queued bytes now, through the filters, with a FLUSH. 0 or -1. */
int rtb_conn_flush(rtb_conn_t *cn);

/* Ends the connection (the loop finishes it at the end of the pass). */
void rtb_conn_close(rtb_conn_t *cn, int why);

/*
 * Hands the connection to the loop: returns SUSPENDED. Where the connection
 * cannot be suspended, runs the blocking loop here and returns OK when done.
 */
int rtb_conn_hand_off(rtb_conn_t *cn);

/* Publishes an ephemeral message (presence, typing, cursor) to every child. */
void rtb_engine_publish_ephemeral(server_rec *s, const char *board, const char *json);

/* For rtb_ws.c: the engine-wide counters. */
void rtb_engine_count_delivered(apr_uint64_t n);

#endif
