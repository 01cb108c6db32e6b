/*
 * rtb_json: strict parsing and validation of request bodies, and error
 * bodies. jansson does the parsing; this file decides what is acceptable.
 */
#include "rtb_json.h"

#include <stdio.h>
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

static void json_set_err(rtb_json_err_t *err, int status, const char *code, const char *field,
                         const char *fmt, const char *arg)
{
    err->status = status;
    err->code = code;
    snprintf(err->message, sizeof(err->message), fmt, arg ? arg : "");
    snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
}

int rtb_json_parse_object(const char *buf, size_t len, json_t **out, rtb_json_err_t *err)
{
    json_error_t je;
    json_t *j;

    *out = NULL;
    memset(err, 0, sizeof(*err));
    j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        err->status = 400;
        err->code = "invalid_json";
        snprintf(err->message, sizeof(err->message), "malformed JSON at line %d, column %d: %s",
                 je.line, je.column, je.text);
        return -1;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        json_set_err(err, 422, "expected_object", NULL, "the body must be a JSON object%s",
                     NULL);
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
            json_set_err(err, 422, "invalid_type", f->name, "field '%s' must be a string",
                         f->name);
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
            json_set_err(err, 422, "field_too_long", f->name, "field '%s' is too long",
                         f->name);
            return -1;
        }
        return 0;
    }
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
            json_set_err(err, 422, "out_of_range", f->name, "field '%s' is out of range",
                         f->name);
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
            json_set_err(err, 422, "missing_field", f->name, "field '%s' is required",
                         f->name);
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
    json_object_set_new(e, "code", json_string(code ? code : "error"));
    json_object_set_new(e, "message", json_string(message ? message : ""));
    if (field && *field)
        json_object_set_new(e, "field", json_string(field));
    if (extra_key && extra)
        json_object_set_new(e, extra_key, extra);
    else if (extra)
        json_decref(extra);
    root = json_pack("{s:o}", "error", e);
    s = rtb_json_dump(root);
    json_decref(root);
    return s;
}
