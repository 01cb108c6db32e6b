/*
 * rtb_conn: a long-lived connection (SSE stream, long poll, WebSocket) as
 * the engine holds it: its record, its subscriptions to boards, its output
 * queue (written through the connection's filters, so mod_ssl works) and
 * the delivery of ring records to it, in id order and once.
 *
 * Threads: a handler creates the record and may write before the hand-off;
 * from then on only the engine's loop thread (or the blocking loop of the
 * handler's thread, rtb_blocking) touches it.
 */
#ifndef RTB_CONN_H
#define RTB_CONN_H

#include "httpd.h"
#include "util_filter.h"
#include "rtb_bus.h"
#include "rtb_router.h"

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
    void (*on_record)(rtb_conn_t *cn, rtb_sub_t *sub, int kind, apr_uint64_t id, const char *json,
                      apr_size_t len);
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
    RTB_CLOSE_PEER = 0, /* the client went away */
    RTB_CLOSE_DONE,     /* the transport finished (long-poll answered) */
    RTB_CLOSE_SLOW,     /* over the output cap */
    RTB_CLOSE_LAPPED,   /* missed records (ring overrun or a gap) */
    RTB_CLOSE_STOPPING, /* graceful restart or stop */
    RTB_CLOSE_DELETED,  /* the board was deleted */
    RTB_CLOSE_PROTOCOL, /* a protocol error (WebSocket) */
    RTB_CLOSE_TIMEOUT   /* idle, or a missed pong */
};

struct rtb_conn_t {
    request_rec *r;
    conn_rec *c;
    apr_socket_t *sock;
    int fd;
    const rtb_transport_t *vt;
    ap_filter_t *out;        /* where writes go: r->output_filters or c->output_filters */
    apr_bucket_brigade *bb;  /* output */
    apr_bucket_brigade *ibb; /* input */
    apr_pool_t *scratch;     /* cleared often: the loop's per-pass pool, or r->pool */
    rtb_sub_t *subs;
    apr_uint64_t start_gseq; /* ring position taken before the handler read the store */
    char *obuf;              /* queued output (malloc), for slow sockets */
    apr_size_t olen, ocap;
    int closing, blocking, dirty, want_out, in_pollset, counted;
    int jobs;           /* deferred jobs in flight: finish waits for them */
    int on_closing;     /* on the loop's closing list */
    int final;          /* writing its last words: writes allowed while closing */
    int keep_request;   /* the transport still needs its request: never released */
    int settled;        /* request released (unless kept) and input drained, once */
    int direct;         /* written straight to the socket, with a fixed send buffer */
    int direct_read;    /* plain socket, the filters hold nothing: read straight from it */
    int drop_remainder; /* no first read through the filters needed (rtb_conn_read) */
    apr_uint32_t id;    /* unique within the child */
    int close_why;
    apr_time_t adopted, close_at, next_timer;
    apr_uint64_t passes; /* loop pass that adopted it */
    apr_pollfd_t pfd;
    rtb_conn_t *next, *prev; /* all connections of the loop */
    rtb_conn_t *qnext;       /* hand-off queue, dirty list, closing list */
    rtb_conn_t *dnext;
    const char *user, *name;
    void *tdata; /* transport's own state */
};

/* A record copied out of the ring, so the lock is not held while writing. */
typedef struct {
    const char *board;
    apr_uint64_t gseq;
    apr_uint64_t id;
    int kind;
    const char *json;
    apr_size_t len;
} rtb_rec_t;

/*
 * What the loop that holds adopted connections does for them (set once per
 * child by the engine): queue a connection's output to the end of the pass,
 * watch it for writability, put it on the list of connections to finish.
 * Called only for connections in the loop's pollset.
 */
typedef struct {
    void (*mark_dirty)(rtb_conn_t *cn);
    void (*set_pollout)(rtb_conn_t *cn, int on);
    void (*queue_close)(rtb_conn_t *cn);
} rtb_conn_loop_t;

void rtb_conn_set_loop(const rtb_conn_loop_t *loop);

/* The RTBOARD_HEAD output filter (register_hooks). */
void rtb_conn_register_hooks(apr_pool_t *p);

/*
 * A connection record for the request (allocated in c->pool). `start_gseq`
 * is the ring position taken before the handler read the store
 * (rtb_bus_ring_position): the loop catches up from there.
 */
rtb_conn_t *rtb_conn_create(request_rec *r, const rtb_transport_t *vt, apr_uint64_t start_gseq);

/*
 * For a streaming response: its head waits for the first bytes of the body
 * and goes out with them (call before the first write).
 */
void rtb_conn_hold_head(request_rec *r);

/*
 * Queues bytes for the client; they are written at the end of the loop pass
 * (or at once in the blocking path). Over RTBoardOutputCap the connection
 * is closed as slow. Once closing, only the transport's last words pass.
 */
void rtb_conn_write(rtb_conn_t *cn, const char *buf, apr_size_t len);

/* Writes queued bytes now, through the filters, with a FLUSH: 0, or -1 (closed). */
int rtb_conn_flush(rtb_conn_t *cn);

/* Drops queued output (the connection is ending). */
void rtb_conn_free_obuf(rtb_conn_t *cn);

/* Ends the connection (the loop finishes it at the end of the pass). */
void rtb_conn_close(rtb_conn_t *cn, int why);

/*
 * Hands one ring record to a subscription: ephemeral records newer than the
 * subscription's presence snapshot; events in id order, once (older ids are
 * skipped, a gap closes the connection so the client resumes by id).
 */
void rtb_conn_deliver(rtb_sub_t *sub, const rtb_rec_t *rec);

/*
 * Copies ring records [*cursor, min(next, limit)) into an array of
 * rtb_rec_t in `p`, under the bus lock; advances *cursor. *lapped is set
 * when records were overwritten before they were read.
 */
apr_array_header_t *rtb_conn_read_ring(apr_pool_t *p, apr_uint64_t *cursor, apr_uint64_t limit,
                                       int *lapped);

/*
 * For transports whose client sends nothing (SSE, long polls): reads and
 * drops input without blocking; end of input closes the connection.
 */
void rtb_conn_drain_input(rtb_conn_t *cn);

/*
 * Reads what the connection holds, up to *len bytes, into buf, without
 * blocking: APR_SUCCESS with *len > 0, APR_EAGAIN, or an error (APR_EOF when
 * the peer closed). Through the connection's filters (TLS, ...), except on a
 * plain connection whose core filter holds nothing read ahead: then straight
 * from the socket (cn->direct_read, once true for good).
 */
apr_status_t rtb_conn_read(rtb_conn_t *cn, void *buf, apr_size_t *len);

/* This child's counters: connections by transport (+1/-1), events delivered. */
void rtb_conn_count(rtb_conn_t *cn, int delta);
void rtb_conn_count_delivered(apr_uint64_t n);

#endif
