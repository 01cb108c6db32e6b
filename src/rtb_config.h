/*
 * rtb_config: the module's server configuration record and the RTBoard*
 * directives (rtb_config.c). Read it with rtb_cfg(); nothing else is here.
 */
#ifndef RTB_CONFIG_H
#define RTB_CONFIG_H

#include "httpd.h"
#include "http_config.h"

extern module AP_MODULE_DECLARE_DATA rtboard_module;

/* Next free log tag: RTB0078. Every ap_log_* call site carries its own tag. */
/* RTB0200-RTB0229 belong to the store and bus on PostgreSQL (next free: RTB0219;
 * RTB0225-RTB0226: the health check, next free after them RTB0227). */

typedef struct {
    const char *base;            /* RTBoardBase: where the API is mounted ("/") */
    apr_off_t max_body;          /* RTBoardMaxBody */
    int history;                 /* RTBoardHistory: events kept per board, 0 = all */
    int poll_max_timeout;        /* RTBoardPollMaxTimeout, seconds */
    int heartbeat;               /* RTBoardHeartbeat, seconds (SSE comment) */
    int retry_ms;                /* RTBoardRetry: SSE retry: field */
    apr_size_t ring_bytes;       /* RTBoardRingSize */
    int ring_slots;              /* RTBoardRingSlots */
    int ws_ping;                 /* RTBoardWSPing, seconds */
    apr_size_t out_cap;          /* RTBoardOutputCap: bytes queued per connection */
    apr_size_t ws_max_message;   /* RTBoardWSMaxMessage */
    int idle_timeout;            /* RTBoardIdleTimeout, seconds without a pong (WS) */
    apr_array_header_t *origins; /* RTBoardAllowOrigin, empty = same origin */
    const char *name_var;        /* RTBoardUserNameVar */
    int typing_ttl;              /* seconds a typing indicator lives */
    int cursor_rate;             /* cursor messages per second per connection */
    int max_streams;             /* RTBoardMaxStreams per child */
    int user_streams;            /* RTBoardMaxStreamsPerUser, server-wide, 0 = no cap */
    int board_rate;              /* RTBoardBoardsPerMinute per user, 0 = no cap */
    const char *bus;             /* RTBoardBus: libpq conninfo of the LISTEN connection */
    int presence_slots;          /* RTBoardPresenceSlots: leases, 0 = streams x children */
    int presence_page;           /* RTBoardPresencePage: users in a presence page */
    int presence_window;         /* RTBoardPresenceWindow: ms joins and leaves coalesce */
} rtb_cfg_t;

rtb_cfg_t *rtb_cfg(server_rec *s);

/* The server configuration record of the module (filled with defaults). */

/* Per-server config: create (every field unset) and merge (a vhost over its base). */
void *rtb_config_create(apr_pool_t *p, server_rec *s);
void *rtb_config_merge(apr_pool_t *p, void *basev, void *addv);

/* Fills every unset field of every server with its default (post_config). */
void rtb_config_fill(server_rec *s);

/* The RTBoard* directives. */
extern const command_rec rtb_config_cmds[];

#endif
