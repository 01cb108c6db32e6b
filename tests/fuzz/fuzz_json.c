/*
 * libFuzzer driver for src/rtb_json.c.
 *
 * Input: a request body, whole, in an exact-size heap block (no NUL added).
 * rtb_json_parse_object reads it; an object it accepts is checked against
 * a field spec like the module's, one at the edges of the spec types and an
 * empty one.
 * The input is also sent through rtb_json_error_body as the message (up to
 * the first NUL) and field (after it), valid UTF-8 or not.
 *
 * Checked: an accepted body is an object that serialises and parses back to
 * an equal one; a refused one gives a 400 "invalid_json" or a 422
 * "expected_object"; rtb_json_validate accepts exactly what the rules of
 * rtb_json.h allow and otherwise names the first offending key with the
 * right code; every error text is NUL-terminated, well-formed UTF-8 (jansson,
 * which refuses anything else in a string, is the judge), and an error body
 * built from it is JSON that carries it unchanged.
 */
#include <limits.h>

#include "fuzz.h"

#include "../../src/rtb_json.c"

static volatile uint64_t fuzz_json_sink;

/* A request body like the module's: every type, required, nullable, and ids up to 2^53 - 1. */
static const rtb_field_spec_t fuzz_json_body[] = {{"name", RTB_F_STRING, 1, 200, 1, 0},
                                                  {"note", RTB_F_STRING, 0, 10000, 0, 0},
                                                  {"owner", RTB_F_STRING, 1, 64, 0, 1},
                                                  {"listId", RTB_F_ID, 1, 9007199254740991LL, 0, 0},
                                                  {"position", RTB_F_INT, 0, 1000000, 0, 0},
                                                  {"lists", RTB_F_ANY, 0, 0, 0, 0},
                                                  {NULL, 0, 0, 0, 0, 0}};
/* Edges: one-character strings, the whole integer range, an id with no lower bound of its own. */
static const rtb_field_spec_t fuzz_json_edges[] = {{"a", RTB_F_STRING, 1, 1, 0, 1},
                                                   {"b", RTB_F_INT, LLONG_MIN, LLONG_MAX, 0, 1},
                                                   {"c", RTB_F_ID, LLONG_MIN, LLONG_MAX, 0, 0},
                                                   {"d", RTB_F_STRING, 0, 0, 0, 0},
                                                   {"", RTB_F_ANY, 0, 0, 0, 1},
                                                   {NULL, 0, 0, 0, 0, 0}};
static const rtb_field_spec_t fuzz_json_none[] = {{NULL, 0, 0, 0, 0, 0}};

static const rtb_field_spec_t *const fuzz_json_specs[] = {fuzz_json_body, fuzz_json_edges,
                                                          fuzz_json_none};

/* Whether the NUL-terminated s is well-formed UTF-8: jansson builds strings of nothing else. */
static int fuzz_json_utf8_ok(const char *s)
{
    json_t *j = json_string(s);

    json_decref(j);
    return j != NULL;
}

/* An error text: NUL-terminated inside its buffer and well-formed UTF-8. */
static void fuzz_json_text_ok(const char *s, size_t cap)
{
    FUZZ_CHECK(memchr(s, '\0', cap) != NULL);
    FUZZ_CHECK(fuzz_json_utf8_ok(s));
}

/* A JSON string member of o, or NULL. */
static const char *fuzz_json_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* The error body for err must be JSON carrying err unchanged. */
static void fuzz_json_err_body(const rtb_json_err_t *err)
{
    char *body = rtb_json_error_body(err->status, err->code, err->message, err->field, NULL, NULL);
    json_t *root, *e;

    FUZZ_CHECK(body != NULL);
    root = json_loads(body, 0, NULL);
    FUZZ_CHECK(root != NULL);
    e = json_object_get(root, "error");
    FUZZ_CHECK(json_is_object(e));
    FUZZ_CHECK(json_integer_value(json_object_get(e, "status")) == err->status);
    FUZZ_CHECK(fuzz_json_str(e, "code") && strcmp(fuzz_json_str(e, "code"), err->code) == 0);
    FUZZ_CHECK(fuzz_json_str(e, "message") &&
               strcmp(fuzz_json_str(e, "message"), err->message) == 0);
    if (err->field[0]) {
        FUZZ_CHECK(fuzz_json_str(e, "field") && strcmp(fuzz_json_str(e, "field"), err->field) == 0);
    } else {
        FUZZ_CHECK(json_object_get(e, "field") == NULL);
    }
    fuzz_json_sink = fuzz_hash(fuzz_json_sink, body, strlen(body));
    json_decref(root);
    free(body);
}

/* What rtb_json_validate should say about v under field spec f: NULL when fine, else the code. */
static const char *fuzz_json_expect_field(const rtb_field_spec_t *f, const json_t *v)
{
    if (json_is_null(v)) {
        return f->nullable ? NULL : "invalid_type";
    }
    switch (f->type) {
    case RTB_F_ANY:
        return NULL;
    case RTB_F_STRING: {
        const char *s = json_string_value(v);
        size_t bytes = json_string_length(v), points = 0;

        if (!json_is_string(v)) {
            return "invalid_type";
        }
        for (size_t i = 0; i < bytes; i++) {
            if (s[i] == '\0') {
                return "invalid_value";
            }
            points += ((unsigned char)s[i] & 0xC0) != 0x80;
        }
        if ((long long)points < f->min) {
            return points == 0 ? "field_empty" : "field_too_short";
        }
        return (long long)points > f->max ? "field_too_long" : NULL;
    }
    case RTB_F_INT:
    case RTB_F_ID: {
        json_int_t x = json_integer_value(v);

        if (!json_is_integer(v)) {
            return "invalid_type";
        }
        if (x < f->min || x > f->max || (f->type == RTB_F_ID && x < 1)) {
            return "out_of_range";
        }
        return NULL;
    }
    }
    FUZZ_CHECK(0);
    return NULL;
}

/* rtb_json_validate(obj, spec) against the rules, key by key in the object's order. */
static void fuzz_json_validate(const json_t *obj, const rtb_field_spec_t *spec)
{
    rtb_json_err_t err;
    const char *code = NULL, *field = NULL, *key;
    json_t *v;
    int rc = rtb_json_validate(obj, spec, &err);

    json_object_foreach((json_t *)obj, key, v)
    {
        const rtb_field_spec_t *f = spec;

        while (f->name && strcmp(f->name, key) != 0) {
            f++;
        }
        code = f->name ? fuzz_json_expect_field(f, v) : "unknown_field";
        if (code) {
            field = key;
            break;
        }
    }
    for (const rtb_field_spec_t *f = spec; !code && f->name; f++) {
        if (f->required && !json_object_get(obj, f->name)) {
            code = "missing_field";
            field = f->name;
        }
    }

    if (!code) {
        FUZZ_CHECK(rc == 0);
        return;
    }
    FUZZ_CHECK(rc == -1);
    FUZZ_CHECK(err.status == 422);
    FUZZ_CHECK(err.code && strcmp(err.code, code) == 0);
    fuzz_json_text_ok(err.message, sizeof(err.message));
    fuzz_json_text_ok(err.field, sizeof(err.field));
    /* The field is named whole, or cut short of the buffer (never mid-character). */
    if (strlen(field) < sizeof(err.field) && fuzz_json_utf8_ok(field)) {
        FUZZ_CHECK(strcmp(err.field, field) == 0);
    } else {
        FUZZ_CHECK(strncmp(err.field, field, strlen(err.field)) == 0);
        FUZZ_CHECK(strlen(err.field) + 4 >= sizeof(err.field));
    }
    fuzz_json_err_body(&err);
}

/* An error body from arbitrary text: JSON, with bad UTF-8 bytes as '?' and the rest kept. */
static void fuzz_json_raw_error(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t mlen = nul ? (size_t)(nul - data) : size;
    char *message = fuzz_copy(data, mlen, 1);
    char *field = nul ? fuzz_copy(nul + 1, size - mlen - 1, 1) : NULL;
    json_t *extra = json_integer((json_int_t)size);
    const char *extra_key = size % 2 ? "extra" : NULL;
    char *body =
        rtb_json_error_body(size % 2 ? 400 : 422, "test_code", message, field, extra_key, extra);
    json_t *root, *e;
    const char *got;

    FUZZ_CHECK(body != NULL);
    root = json_loads(body, 0, NULL);
    FUZZ_CHECK(root != NULL);
    e = json_object_get(root, "error");
    got = fuzz_json_str(e, "message");
    FUZZ_CHECK(got != NULL && strlen(got) == mlen);
    for (size_t i = 0; i < mlen; i++) {
        FUZZ_CHECK(got[i] == message[i] || got[i] == '?');
    }
    if (fuzz_json_utf8_ok(message)) {
        FUZZ_CHECK(strcmp(got, message) == 0);
    }
    if (field && field[0]) {
        got = fuzz_json_str(e, "field");
        FUZZ_CHECK(got != NULL && strlen(got) == strlen(field));
    } else {
        FUZZ_CHECK(json_object_get(e, "field") == NULL);
    }
    FUZZ_CHECK((json_object_get(e, "extra") != NULL) == (extra_key != NULL));
    fuzz_json_sink = fuzz_hash(fuzz_json_sink, body, strlen(body));
    json_decref(root);
    free(body);
    free(message);
    free(field);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = fuzz_copy(data, size, 0);
    rtb_json_err_t err;
    json_t *obj = (json_t *)&err; /* must come back NULL on failure */
    int rc = rtb_json_parse_object(buf, size, &obj, &err);

    if (rc == 0) {
        char *dump;
        json_t *back = NULL;

        FUZZ_CHECK(json_is_object(obj));
        dump = rtb_json_dump(obj);
        FUZZ_CHECK(dump != NULL);
        FUZZ_CHECK(rtb_json_parse_object(dump, strlen(dump), &back, &err) == 0);
        FUZZ_CHECK(json_equal(obj, back));
        for (size_t i = 0; i < sizeof(fuzz_json_specs) / sizeof(fuzz_json_specs[0]); i++) {
            fuzz_json_validate(obj, fuzz_json_specs[i]);
        }
        fuzz_json_sink += json_object_size(obj) + strlen(dump);
        json_decref(back);
        json_decref(obj);
        free(dump);
    } else {
        FUZZ_CHECK(rc == -1 && obj == NULL);
        FUZZ_CHECK((err.status == 400 && strcmp(err.code, "invalid_json") == 0) ||
                   (err.status == 422 && strcmp(err.code, "expected_object") == 0));
        fuzz_json_text_ok(err.message, sizeof(err.message));
        FUZZ_CHECK(err.field[0] == '\0');
        fuzz_json_err_body(&err);
    }
    FUZZ_CHECK(rtb_json_parse_object(NULL, 0, &obj, &err) == -1 && err.status == 400);
    fuzz_json_raw_error(data, size);
    free(buf);
    return 0;
}
