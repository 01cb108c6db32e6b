/*
 * rtb_body: the context of a REST request and its JSON body: read whole
 * (RTBoardMaxBody, 413), typed (415), parsed strictly and validated against
 * a field spec (rtb_json), with every refusal answered as a JSON error.
 */
#ifndef RTB_BODY_H
#define RTB_BODY_H

#include "rtb_config.h"
#include "rtb_json.h"
#include "rtb_router.h"
#include "rtb_store.h"

/* An event of a change, published once its transaction commits. */
typedef struct {
    const char *board;
    apr_uint64_t id;
    const char *json;
} rtb_write_event_t;

/* The answer of a change, kept so an Idempotency-Key replay returns it. */
typedef struct {
    int status;
    const char *location;
    char *body; /* pool string, NULL for no body */
} rtb_answer_t;

/* A REST request: its route, who asks, its store session and its body. */
typedef struct rtb_rest_ctx_t {
    request_rec *r;
    rtb_cfg_t *cfg;
    rtb_route_t rt;
    const char *user;
    rtb_db_t db;
    json_t *body;
    const char *raw_body;
    apr_size_t raw_len;
    apr_array_header_t *events; /* rtb_write_event_t, published after commit */
} rtb_rest_ctx_t;

/*
 * Reads, parses and validates the request's JSON object body against
 * `spec` (NULL: any object) into x->body. Returns OK, or DONE when the
 * request was refused and already answered (400, 413, 415, 422).
 */
int rtb_body_read(rtb_rest_ctx_t *x, const rtb_field_spec_t *spec);

/* Members of x->body: a string (NULL if absent or not a string), presence, an integer. */
const char *rtb_body_str(rtb_rest_ctx_t *x, const char *key);
int rtb_body_has(rtb_rest_ctx_t *x, const char *key);
long long rtb_body_int(rtb_rest_ctx_t *x, const char *key, long long dflt);

#endif
