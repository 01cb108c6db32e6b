/*
 * rtb_json: strict parsing and validation of request bodies, and error
 * bodies. jansson does the parsing; this file decides what is acceptable.
 */
#include "rtb_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t rtb_utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    }
    return n;
}

/*
 * Length of the well-formed UTF-8 sequence at s (1..4 bytes), or 0 when the
 * bytes there are not one (stray continuation, overlong form, surrogate,
 * above U+10FFFF, or cut short by the NUL).
 */
static size_t json_utf8_seq(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        if (s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80)
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        if (s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        return 4;
    }
    return 0;
}

/*
 * Replaces, in place, every byte of `s` that is not part of well-formed UTF-8
 * with '?'. Error texts are cut to fixed buffers (which can split a character)
 * and quote client bytes (jansson's "near '...'", unknown keys); jansson
 * refuses to build a string from invalid UTF-8, so the text must be clean
 * before it reaches an error body.
 */
static void json_clean_utf8(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = json_utf8_seq(p);
        if (n == 0) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

/*
 * After snprintf() reported `wrote` bytes for a buffer of `cap`: when the text
 * was cut, drops a character the cut left incomplete, so that a long quoted
 * key ends on a whole character rather than on a '?'.
 */
static void json_trim_cut(char *s, size_t cap, int wrote)
{
    size_t len, i;
    unsigned char c;
    if (wrote < 0 || (size_t)wrote < cap)
        return;
    len = strlen(s);
    for (i = len; i > 0 && len - i < 3 && ((unsigned char)s[i - 1] & 0xC0) == 0x80; i--)
        ;
    if (i == 0)
        return;
    c = (unsigned char)s[i - 1];
    if (c >= 0xC0 && len - (i - 1) < (size_t)(c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2))
        s[i - 1] = '\0';
}

/* json_string(s), or a copy with invalid UTF-8 replaced when jansson refuses s as it is. */
static json_t *json_text(const char *s)
{
    json_t *j = json_string(s);
    char *copy;
    if (j)
        return j;
    copy = strdup(s);
    if (!copy)
        return NULL;
    json_clean_utf8(copy);
    j = json_string(copy);
    free(copy);
    return j;
}

static void json_set_err(rtb_json_err_t *err, int status, const char *code, const char *field,
                         const char *fmt, const char *arg)
{
    err->status = status;
    err->code = code;
    json_trim_cut(err->message, sizeof(err->message),
                  snprintf(err->message, sizeof(err->message), fmt, arg ? arg : ""));
    json_trim_cut(err->field, sizeof(err->field),
                  snprintf(err->field, sizeof(err->field), "%s", field ? field : ""));
    json_clean_utf8(err->message);
    json_clean_utf8(err->field);
}

int rtb_json_parse_object(const char *buf, size_t len, json_t **out, rtb_json_err_t *err)
{
    json_error_t je;
    json_t *j;

    *out = NULL;
    memset(err, 0, sizeof(*err));
    if (!buf) {
        buf = "";
        len = 0;
    }
    /*
     * JSON_DECODE_ANY: a scalar document is valid JSON, so it gets the 422
     * below rather than jansson's "'[' or '{' expected" 400. Trailing bytes
     * are still rejected (no JSON_DISABLE_EOF_CHECK).
     */
    /* \u0000 is valid JSON: it is let through here and refused with a 422
     * by the string checks, which name the field */
    j = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!j) {
        err->status = 400;
        err->code = "invalid_json";
        json_trim_cut(err->message, sizeof(err->message),
                      snprintf(err->message, sizeof(err->message),
                               "malformed JSON at line %d, column %d: %s", je.line, je.column,
                               je.text));
        json_clean_utf8(err->message);
        return -1;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        json_set_err(err, 422, "expected_object", NULL, "the body must be a JSON object%s", NULL);
        return -1;
    }
    *out = j;
    return 0;
}

static const rtb_field_spec_t *json_find_spec(const rtb_field_spec_t *spec, const char *key)
{
    for (; spec->name; spec++) {
        if (!strcmp(spec->name, key))
            return spec;
    }
    return NULL;
}

static int json_check_field(const rtb_field_spec_t *f, const json_t *v, rtb_json_err_t *err)
{
    if (json_is_null(v)) {
        if (f->nullable)
            return 0;
        json_set_err(err, 422, "invalid_type", f->name, "field '%s' may not be null", f->name);
        return -1;
    }
    switch (f->type) {
    case RTB_F_STRING: {
        size_t n;
        if (!json_is_string(v)) {
            json_set_err(err, 422, "invalid_type", f->name, "field '%s' must be a string", f->name);
            return -1;
        }
        if (memchr(json_string_value(v), '\0', json_string_length(v))) {
            json_set_err(err, 422, "invalid_value", f->name,
                         "field '%s' may not contain NUL characters", f->name);
            return -1;
        }
        n = rtb_utf8_len(json_string_value(v));
        if ((long long)n < f->min) {
            json_set_err(err, 422, n == 0 ? "field_empty" : "field_too_short", f->name,
                         "field '%s' is too short", f->name);
            return -1;
        }
        if ((long long)n > f->max) {
            json_set_err(err, 422, "field_too_long", f->name, "field '%s' is too long", f->name);
            return -1;
        }
        return 0;
    }
    case RTB_F_ANY:
        return 0;
    case RTB_F_INT:
    case RTB_F_ID: {
        long long x;
        if (!json_is_integer(v)) {
            json_set_err(err, 422, "invalid_type", f->name, "field '%s' must be an integer",
                         f->name);
            return -1;
        }
        x = json_integer_value(v);
        if ((f->type == RTB_F_ID && x < 1) || x < f->min || x > f->max) {
            json_set_err(err, 422, "out_of_range", f->name, "field '%s' is out of range", f->name);
            return -1;
        }
        return 0;
    }
    }
    return 0;
}

int rtb_json_validate(const json_t *obj, const rtb_field_spec_t *spec, rtb_json_err_t *err)
{
    const char *key;
    json_t *v;
    const rtb_field_spec_t *f;

    memset(err, 0, sizeof(*err));
    json_object_foreach((json_t *)obj, key, v)
    {
        f = json_find_spec(spec, key);
        if (!f) {
            json_set_err(err, 422, "unknown_field", key, "unknown field '%s'", key);
            return -1;
        }
        if (json_check_field(f, v, err) < 0)
            return -1;
    }
    for (f = spec; f->name; f++) {
        if (f->required && !json_object_get(obj, f->name)) {
            json_set_err(err, 422, "missing_field", f->name, "field '%s' is required", f->name);
            return -1;
        }
    }
    return 0;
}

char *rtb_json_dump(const json_t *j)
{
    return json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
}

char *rtb_json_error_body(int status, const char *code, const char *message, const char *field,
                          const char *extra_key, json_t *extra)
{
    json_t *e = json_object();
    json_t *root;
    char *s;

    json_object_set_new(e, "status", json_integer(status));
    json_object_set_new(e, "code", json_text(code ? code : "error"));
    json_object_set_new(e, "message", json_text(message ? message : ""));
    if (field && *field)
        json_object_set_new(e, "field", json_text(field));
    if (extra_key && extra)
        json_object_set_new(e, extra_key, extra);
    else if (extra)
        json_decref(extra);
    root = json_pack("{s:o}", "error", e);
    s = rtb_json_dump(root);
    json_decref(root);
    return s;
}

json_t *rtb_json_data(json_t *d)
{
    return json_pack("{s:o}", "data", d);
}
