/*
 * rtb_json: strict JSON input and the shapes of the module's JSON output.
 * Pure over jansson: no httpd headers.
 */
#ifndef RTB_JSON_H
#define RTB_JSON_H

#include <jansson.h>
#include <stddef.h>

/* What went wrong with a request body, ready for an error answer. */
typedef struct {
    int status;        /* 400 or 422 */
    const char *code;  /* machine code, e.g. "invalid_json", "field_too_long" */
    char message[256]; /* human text */
    char field[64];    /* offending field, "" when none */
} rtb_json_err_t;

typedef enum {
    RTB_F_STRING = 1, /* min/max count Unicode code points */
    RTB_F_INT,        /* min/max bound the value */
    RTB_F_ID,         /* integer id >= 1 */
    RTB_F_ANY         /* any JSON value: the caller checks it by hand */
} rtb_field_type_t;

typedef struct {
    const char *name;
    rtb_field_type_t type;
    long long min, max;
    int required;
    int nullable;
} rtb_field_spec_t;

/*
 * Parses `buf` (len bytes) as one JSON object, rejecting duplicate keys and
 * anything after it. On success returns 0 and a new reference in *out (the
 * caller owns it). On failure returns -1, *out is NULL and `err` holds a 400
 * with the line and column, or a 422 "expected_object" when the document is
 * valid JSON but not an object. err->message and err->field are always
 * well-formed UTF-8 (also after rtb_json_validate).
 */
int rtb_json_parse_object(const char *buf, size_t len, json_t **out, rtb_json_err_t *err);

/*
 * Checks `obj` against the NULL-name-terminated `spec`: every key must be in
 * the spec (else 422 "unknown_field"), of its type (422 "invalid_type"),
 * within bounds (422 "field_empty" for an empty string below its minimum,
 * "field_too_short"/"field_too_long"/"out_of_range"), free of NUL characters
 * (422 "invalid_value"), and every required field present (422
 * "missing_field"). Returns 0 or -1 with `err` filled (err->field names the
 * field).
 */
int rtb_json_validate(const json_t *obj, const rtb_field_spec_t *spec, rtb_json_err_t *err);

/* Number of Unicode code points in a valid UTF-8 string (jansson guarantees validity). */
size_t rtb_utf8_len(const char *s);

/*
 * Serialises the error answer {"error": {status, code, message, field?}} as
 * a new compact string the caller frees with free(). `extra` (may be NULL)
 * is added under "error" as key `extra_key` and its reference is stolen
 * (dropped when extra_key is NULL). Bytes of code/message/field that are not
 * well-formed UTF-8 are sent as '?'. NULL only when out of memory.
 */
char *rtb_json_error_body(int status, const char *code, const char *message, const char *field,
                          const char *extra_key, json_t *extra);

/* Compact serialisation of `j` (no reference taken); caller free()s. */
char *rtb_json_dump(const json_t *j);

/* Wraps `d` (reference stolen) as the API's answer envelope {"data": d}. */
json_t *rtb_json_data(json_t *d);

#endif
