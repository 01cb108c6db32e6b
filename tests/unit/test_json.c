/*
 * Unit tests for rtb_json: strict object parsing, validation against field
 * specs (lengths in code points), error bodies. LeakSanitizer checks that
 * every reference handed out or stolen is accounted for.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/rtb_json.c"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* 1 when s is well-formed UTF-8, as jansson sees it. */
static int is_utf8(const char *s)
{
    json_t *j = json_string(s);
    if (!j)
        return 0;
    json_decref(j);
    return 1;
}

/* ---- rtb_json_parse_object ---- */

static void test_parse_valid(void **state)
{
    static const char *docs[] = {
        "{}",
        " {} ",
        "{}\n",
        "\t\r\n{ \"a\" : 1 }\r\n",
        "{\"a\":1,\"b\":\"x\",\"c\":null,\"d\":[1,2],\"e\":{\"a\":1},\"f\":true,\"g\":1.5}",
        "{\"t\":\"\\u00e9\\ud83d\\ude00\"}",
        "{\"a\":{\"a\":{\"a\":1}}}",
    };
    (void)state;
    for (size_t i = 0; i < N_ELEMS(docs); i++) {
        json_t *j = (json_t *)0x1;
        rtb_json_err_t err;
        if (rtb_json_parse_object(docs[i], strlen(docs[i]), &j, &err) != 0)
            fail_msg("doc %zu %s: %s", i, docs[i], err.message);
        assert_non_null(j);
        assert_true(json_is_object(j));
        json_decref(j);
    }
}

static void test_parse_values_and_length(void **state)
{
    /* only `len` bytes are read: what follows them is not part of the body */
    static const char buf[] = "{\"a\":1,\"b\":\"x\"}garbage";
    json_t *j = NULL;
    rtb_json_err_t err;
    (void)state;
    assert_int_equal(rtb_json_parse_object(buf, 15, &j, &err), 0);
    assert_int_equal(json_object_size(j), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "a")), 1);
    assert_string_equal(json_string_value(json_object_get(j, "b")), "x");
    json_decref(j);

    assert_int_equal(rtb_json_parse_object(buf, sizeof(buf) - 1, &j, &err), -1);
    assert_null(j);
    assert_int_equal(err.status, 400);
}

typedef struct {
    const char *doc;
    int status;
    const char *code;
    int line, column; /* 0: not checked */
} parse_bad_t;

static const parse_bad_t parse_bad[] = {
    /* malformed */
    {"", 400, "invalid_json", 1, 0},
    {"   ", 400, "invalid_json", 0, 0},
    {"{", 400, "invalid_json", 0, 0},
    {"{\"a\"}", 400, "invalid_json", 0, 0},
    {"{\"a\":}", 400, "invalid_json", 0, 0},
    {"{\"a\":1,}", 400, "invalid_json", 0, 0},
    {"{'a':1}", 400, "invalid_json", 0, 0},
    {"{a:1}", 400, "invalid_json", 0, 0},
    {"{\"a\":01}", 400, "invalid_json", 0, 0},
    {"{\"a\":NaN}", 400, "invalid_json", 0, 0},
    {"{\"a\":\"\\x\"}", 400, "invalid_json", 0, 0},
    {"{\"a\":\"\\ud800\"}", 400, "invalid_json", 0, 0}, /* lone surrogate */
    {"{\"a\":\"\xff\"}", 400, "invalid_json", 0, 0},    /* invalid UTF-8 */
    {"{\"a\":\"\xc3\"}", 400, "invalid_json", 0, 0},    /* truncated sequence */
    {"{\"a\":99999999999999999999}", 400, "invalid_json", 0, 0},
    {"{\"a\":1e999}", 400, "invalid_json", 0, 0},
    {"{\n  \"a\": tru\n}", 400, "invalid_json", 2, 10},
    {"{\"a\":1,\n\"b\":2,\n\n  @}", 400, "invalid_json", 4, 3},
    /* duplicate keys, at the top or nested */
    {"{\"a\":1,\"a\":2}", 400, "invalid_json", 1, 10},
    {"{\"a\":1,\"a\":1}", 400, "invalid_json", 0, 0},
    {"{\"x\":{\"a\":1,\"b\":2,\"a\":3}}", 400, "invalid_json", 0, 0},
    {"{\"\\u0061\":1,\"a\":2}", 400, "invalid_json", 0, 0}, /* same key, escaped */
    /* trailing garbage */
    {"{}x", 400, "invalid_json", 1, 3},
    {"{} {}", 400, "invalid_json", 0, 0},
    {"{}}", 400, "invalid_json", 0, 0},
    {"{},", 400, "invalid_json", 0, 0},
    {"{}\n[]", 400, "invalid_json", 0, 0},
    {"[] {}", 400, "invalid_json", 0, 0},
    {"1 2", 400, "invalid_json", 0, 0},
    /* valid JSON, not an object */
    {"[]", 422, "expected_object", 0, 0},
    {"[1,2]", 422, "expected_object", 0, 0},
    {"[{\"a\":1}]", 422, "expected_object", 0, 0},
    {"42", 422, "expected_object", 0, 0},
    {"-1.5", 422, "expected_object", 0, 0},
    {" 0 ", 422, "expected_object", 0, 0},
    {"\"a string\"", 422, "expected_object", 0, 0},
    {"null", 422, "expected_object", 0, 0},
    {"true", 422, "expected_object", 0, 0},
};

static void test_parse_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(parse_bad); i++) {
        const parse_bad_t *c = &parse_bad[i];
        json_t *j = (json_t *)0x1;
        rtb_json_err_t err;
        int rc;

        memset(&err, 0x5A, sizeof(err));
        rc = rtb_json_parse_object(c->doc, strlen(c->doc), &j, &err);
        if (rc != -1 || err.status != c->status)
            fail_msg("case %zu %s: rc %d status %d, expected %d", i, c->doc, rc, err.status,
                     c->status);
        assert_null(j);
        assert_non_null(err.code);
        assert_string_equal(err.code, c->code);
        assert_string_equal(err.field, "");
        assert_true(err.message[0] != '\0');
        assert_true(memchr(err.message, '\0', sizeof(err.message)) != NULL);
        /* the message goes into an error body as it is */
        if (!is_utf8(err.message))
            fail_msg("case %zu: message is not UTF-8: %s", i, err.message);
        if (c->status == 400) {
            const char *at = strstr(err.message, "line ");
            int line = -1, column = -1;
            if (!at || sscanf(at, "line %d, column %d", &line, &column) != 2)
                fail_msg("case %zu: no line and column in \"%s\"", i, err.message);
            assert_true(line >= 1);
            assert_true(column >= 0);
            if (c->line && line != c->line)
                fail_msg("case %zu: line %d, expected %d (%s)", i, line, c->line, err.message);
            if (c->column && column != c->column)
                fail_msg("case %zu: column %d, expected %d (%s)", i, column, c->column,
                         err.message);
        }
    }
}

static void test_parse_null_buffer(void **state)
{
    json_t *j = (json_t *)0x1;
    rtb_json_err_t err;
    (void)state;
    assert_int_equal(rtb_json_parse_object(NULL, 0, &j, &err), -1);
    assert_null(j);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.code, "invalid_json");
    assert_non_null(strstr(err.message, "line 1, column 0"));
}

/* ---- rtb_utf8_len ---- */

static void test_utf8_len(void **state)
{
    static const struct {
        const char *s;
        size_t n;
    } cases[] = {
        {"", 0},
        {"a", 1},
        {"hello", 5},
        {"\xc3\xa9", 1},         /* U+00E9, 2 bytes */
        {"\xe2\x82\xac", 1},     /* U+20AC, 3 bytes */
        {"\xf0\x9f\x98\x80", 1}, /* U+1F600, 4 bytes */
        {"a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z", 5},
        {"\xf4\x8f\xbf\xbf", 1}, /* U+10FFFF */
        {"\xef\xbb\xbf", 1},     /* a BOM is one code point */
        {"e\xcc\x81", 2},        /* e + combining acute: two code points */
    };
    (void)state;
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        if (rtb_utf8_len(cases[i].s) != cases[i].n)
            fail_msg("case %zu: %zu, expected %zu", i, rtb_utf8_len(cases[i].s), cases[i].n);
    }
}

/* ---- rtb_json_validate ---- */

static const rtb_field_spec_t spec[] = {
    {"title", RTB_F_STRING, 1, 200, 1, 0},
    {"note", RTB_F_STRING, 0, 10, 0, 1},
    {"tag", RTB_F_STRING, 3, 5, 0, 0},
    {"count", RTB_F_INT, -5, 100, 0, 0},
    {"listId", RTB_F_ID, 1, 9007199254740991LL, 0, 0},
    {"owner", RTB_F_ID, 1, 1000, 0, 1},
    {"loose", RTB_F_ID, -10, 10, 0, 0}, /* a spec min below 1 does not admit 0 */
    {NULL, 0, 0, 0, 0, 0},
};

typedef struct {
    const char *doc;
    const char *code; /* NULL: valid */
    const char *field;
} validate_case_t;

static const validate_case_t validate_cases[] = {
    {"{\"title\":\"a\"}", NULL, NULL},
    {"{\"title\":\"a\",\"note\":\"\",\"tag\":\"abc\",\"count\":0,\"listId\":1,\"owner\":1,"
     "\"loose\":1}",
     NULL, NULL},
    /* required and unknown fields */
    {"{}", "missing_field", "title"},
    {"{\"note\":\"x\"}", "missing_field", "title"},
    {"{\"title\":\"a\",\"extra\":1}", "unknown_field", "extra"},
    {"{\"title\":\"a\",\"Title\":\"b\"}", "unknown_field", "Title"},
    {"{\"title\":\"a\",\"\":1}", "unknown_field", ""},
    {"{\"title\":\"a\",\"nul\\u00e9\":null}", "unknown_field", "nul\xc3\xa9"},
    /* wrong types */
    {"{\"title\":1}", "invalid_type", "title"},
    {"{\"title\":true}", "invalid_type", "title"},
    {"{\"title\":[\"a\"]}", "invalid_type", "title"},
    {"{\"title\":{\"a\":1}}", "invalid_type", "title"},
    {"{\"title\":\"a\",\"count\":\"3\"}", "invalid_type", "count"},
    {"{\"title\":\"a\",\"count\":1.0}", "invalid_type", "count"},
    {"{\"title\":\"a\",\"count\":1.5}", "invalid_type", "count"},
    {"{\"title\":\"a\",\"count\":false}", "invalid_type", "count"},
    {"{\"title\":\"a\",\"listId\":\"1\"}", "invalid_type", "listId"},
    {"{\"title\":\"a\",\"listId\":1e0}", "invalid_type", "listId"},
    {"{\"title\":\"a\",\"listId\":[1]}", "invalid_type", "listId"},
    /* nullable or not */
    {"{\"title\":null}", "invalid_type", "title"},
    {"{\"title\":\"a\",\"note\":null}", NULL, NULL},
    {"{\"title\":\"a\",\"owner\":null}", NULL, NULL},
    {"{\"title\":\"a\",\"count\":null}", "invalid_type", "count"},
    {"{\"title\":\"a\",\"listId\":null}", "invalid_type", "listId"},
    /* string lengths, in code points */
    {"{\"title\":\"\"}", "field_empty", "title"},
    {"{\"title\":\"a\",\"tag\":\"\"}", "field_empty", "tag"},
    {"{\"title\":\"a\",\"tag\":\"ab\"}", "field_too_short", "tag"},
    {"{\"title\":\"a\",\"tag\":\"abcdef\"}", "field_too_long", "tag"},
    {"{\"title\":\"a\",\"tag\":\"abcde\"}", NULL, NULL},
    {"{\"title\":\"a\",\"tag\":\"\xc3\xa9\xc3\xa9\xc3\xa9\"}", NULL, NULL}, /* 3 cp, 6 B */
    {"{\"title\":\"a\",\"tag\":\"\xe2\x82\xac\xe2\x82\xac\"}", "field_too_short", "tag"},
    {"{\"title\":\"a\",\"tag\":\"\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00"
     "\\ud83d\\ude00\"}",
     NULL, NULL}, /* 5 cp, 20 bytes */
    {"{\"title\":\"a\",\"tag\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}",
     "field_too_long", "tag"},
    {"{\"title\":\"a\",\"note\":\"0123456789\"}", NULL, NULL},
    {"{\"title\":\"a\",\"note\":\"01234567890\"}", "field_too_long", "note"},
    /* integer bounds */
    {"{\"title\":\"a\",\"count\":-5}", NULL, NULL},
    {"{\"title\":\"a\",\"count\":100}", NULL, NULL},
    {"{\"title\":\"a\",\"count\":-6}", "out_of_range", "count"},
    {"{\"title\":\"a\",\"count\":101}", "out_of_range", "count"},
    {"{\"title\":\"a\",\"count\":-9223372036854775808}", "out_of_range", "count"},
    {"{\"title\":\"a\",\"count\":9223372036854775807}", "out_of_range", "count"},
    /* ids */
    {"{\"title\":\"a\",\"listId\":1}", NULL, NULL},
    {"{\"title\":\"a\",\"listId\":9007199254740991}", NULL, NULL},
    {"{\"title\":\"a\",\"listId\":9007199254740992}", "out_of_range", "listId"},
    {"{\"title\":\"a\",\"listId\":0}", "out_of_range", "listId"},
    {"{\"title\":\"a\",\"listId\":-0}", "out_of_range", "listId"},
    {"{\"title\":\"a\",\"listId\":-1}", "out_of_range", "listId"},
    {"{\"title\":\"a\",\"owner\":1000}", NULL, NULL},
    {"{\"title\":\"a\",\"owner\":1001}", "out_of_range", "owner"},
    {"{\"title\":\"a\",\"owner\":0}", "out_of_range", "owner"},
    {"{\"title\":\"a\",\"loose\":10}", NULL, NULL},
    {"{\"title\":\"a\",\"loose\":0}", "out_of_range", "loose"},
    {"{\"title\":\"a\",\"loose\":-1}", "out_of_range", "loose"},
    {"{\"title\":\"a\",\"loose\":-10}", "out_of_range", "loose"},
};

static void test_validate_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(validate_cases); i++) {
        const validate_case_t *c = &validate_cases[i];
        json_t *j;
        rtb_json_err_t err;
        int rc;

        if (rtb_json_parse_object(c->doc, strlen(c->doc), &j, &err) != 0)
            fail_msg("case %zu: %s does not parse: %s", i, c->doc, err.message);
        memset(&err, 0x5A, sizeof(err));
        rc = rtb_json_validate(j, spec, &err);
        json_decref(j);
        if (!c->code) {
            if (rc != 0)
                fail_msg("case %zu %s: %s (%s)", i, c->doc, err.code, err.message);
            continue;
        }
        if (rc != -1)
            fail_msg("case %zu %s: accepted, expected %s", i, c->doc, c->code);
        assert_int_equal(err.status, 422);
        if (strcmp(err.code, c->code) != 0)
            fail_msg("case %zu %s: code %s, expected %s", i, c->doc, err.code, c->code);
        assert_string_equal(err.field, c->field);
        assert_non_null(strstr(err.message, c->field));
        assert_true(is_utf8(err.message));
    }
}

/* Builds {"title":"<n copies of the UTF-8 sequence ch>"}; the caller free()s it. */
static char *title_doc(const char *ch, size_t n)
{
    size_t cl = strlen(ch);
    char *doc = malloc(16 + n * cl);
    char *p = doc;
    assert_non_null(doc);
    p += sprintf(p, "{\"title\":\"");
    for (size_t i = 0; i < n; i++, p += cl)
        memcpy(p, ch, cl);
    strcpy(p, "\"}");
    return doc;
}

/* "title" is 1..200 code points: 200 multibyte characters pass, 201 do not. */
static void test_validate_code_points(void **state)
{
    static const char *chars[] = {"a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    (void)state;
    for (size_t k = 0; k < N_ELEMS(chars); k++) {
        for (size_t n = 199; n <= 201; n++) {
            char *doc = title_doc(chars[k], n);
            json_t *j;
            rtb_json_err_t err;
            assert_int_equal(rtb_json_parse_object(doc, strlen(doc), &j, &err), 0);
            free(doc);
            assert_int_equal(rtb_utf8_len(json_string_value(json_object_get(j, "title"))), n);
            if (n <= 200) {
                assert_int_equal(rtb_json_validate(j, spec, &err), 0);
            } else {
                assert_int_equal(rtb_json_validate(j, spec, &err), -1);
                assert_string_equal(err.code, "field_too_long");
                assert_string_equal(err.field, "title");
            }
            json_decref(j);
        }
    }
}

/* Long client-chosen keys are cut to fit err->field and err->message, never mid-character. */
static void test_validate_long_unknown_key(void **state)
{
    static const char *chars[] = {"k", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    (void)state;
    for (size_t k = 0; k < N_ELEMS(chars); k++) {
        for (size_t n = 60; n < 300; n += 7) {
            json_t *obj = json_object();
            size_t cl = strlen(chars[k]);
            char *key = malloc(n * cl + 1);
            rtb_json_err_t err;
            assert_non_null(key);
            for (size_t i = 0; i < n; i++)
                memcpy(key + i * cl, chars[k], cl);
            key[n * cl] = '\0';
            json_object_set_new(obj, "title", json_string("a"));
            json_object_set_new(obj, key, json_integer(1));
            assert_int_equal(rtb_json_validate(obj, spec, &err), -1);
            assert_string_equal(err.code, "unknown_field");
            if (!is_utf8(err.field) || !is_utf8(err.message))
                fail_msg("char %zu, %zu of them: field or message is not UTF-8", k, n);
            /* a cut keeps whole characters: the field is a non-empty prefix of the key */
            if (n * cl < sizeof(err.field))
                assert_string_equal(err.field, key);
            else
                assert_true(strlen(err.field) > sizeof(err.field) - 1 - cl);
            assert_int_equal(strncmp(err.field, key, strlen(err.field)), 0);
            assert_true(strlen(err.field) % cl == 0);
            assert_null(strchr(err.message, '?'));
            json_decref(obj);
            free(key);
        }
    }
}

static void test_validate_empty_spec(void **state)
{
    static const rtb_field_spec_t none[] = {{NULL, 0, 0, 0, 0, 0}};
    json_t *j = json_object();
    rtb_json_err_t err;
    (void)state;
    assert_int_equal(rtb_json_validate(j, none, &err), 0);
    json_object_set_new(j, "a", json_null());
    assert_int_equal(rtb_json_validate(j, none, &err), -1);
    assert_string_equal(err.code, "unknown_field");
    json_decref(j);
}

/* ---- rtb_json_error_body ---- */

/* Parses an error body back and returns its "error" object (owned by *root). */
static json_t *error_of(char *body, json_t **root)
{
    json_error_t je;
    json_t *e;
    assert_non_null(body);
    /* compact: one line, starts with the only key */
    assert_null(strchr(body, '\n'));
    assert_int_equal(strncmp(body, "{\"error\":{", 10), 0);
    *root = json_loads(body, 0, &je);
    if (!*root)
        fail_msg("error body is not JSON: %s (%s)", body, je.text);
    free(body);
    assert_true(json_is_object(*root));
    assert_int_equal(json_object_size(*root), 1);
    e = json_object_get(*root, "error");
    assert_true(json_is_object(e));
    return e;
}

static void test_error_body_shape(void **state)
{
    json_t *root, *e;
    (void)state;

    e = error_of(rtb_json_error_body(400, "invalid_json", "bad body", NULL, NULL, NULL), &root);
    assert_int_equal(json_object_size(e), 3);
    assert_int_equal(json_integer_value(json_object_get(e, "status")), 400);
    assert_string_equal(json_string_value(json_object_get(e, "code")), "invalid_json");
    assert_string_equal(json_string_value(json_object_get(e, "message")), "bad body");
    assert_null(json_object_get(e, "field"));
    json_decref(root);

    e = error_of(rtb_json_error_body(422, "field_too_long", "field 'title' is too long", "title",
                                     NULL, NULL),
                 &root);
    assert_int_equal(json_object_size(e), 4);
    assert_int_equal(json_integer_value(json_object_get(e, "status")), 422);
    assert_string_equal(json_string_value(json_object_get(e, "field")), "title");
    json_decref(root);

    /* an empty field is the same as none */
    e = error_of(rtb_json_error_body(404, "not_found", "no", "", NULL, NULL), &root);
    assert_int_equal(json_object_size(e), 3);
    json_decref(root);

    /* defaults for a missing code and message */
    e = error_of(rtb_json_error_body(500, NULL, NULL, NULL, NULL, NULL), &root);
    assert_string_equal(json_string_value(json_object_get(e, "code")), "error");
    assert_string_equal(json_string_value(json_object_get(e, "message")), "");
    json_decref(root);

    /* text that needs escaping survives the round trip */
    e = error_of(rtb_json_error_body(400, "x", "quote \" backslash \\ nl \n tab \t \xc3\xa9", NULL,
                                     NULL, NULL),
                 &root);
    assert_string_equal(json_string_value(json_object_get(e, "message")),
                        "quote \" backslash \\ nl \n tab \t \xc3\xa9");
    json_decref(root);
}

static void test_error_body_extra(void **state)
{
    json_t *root, *e, *x;
    (void)state;

    /* the extra object is added under its key; its reference is stolen */
    e = error_of(rtb_json_error_body(409, "conflict", "stale", "title", "current",
                                     json_pack("{s:i,s:s}", "version", 7, "title", "new")),
                 &root);
    assert_int_equal(json_object_size(e), 5);
    x = json_object_get(e, "current");
    assert_true(json_is_object(x));
    assert_int_equal(json_integer_value(json_object_get(x, "version")), 7);
    assert_string_equal(json_string_value(json_object_get(x, "title")), "new");
    assert_string_equal(json_string_value(json_object_get(e, "field")), "title");
    json_decref(root);

    /* an extra that is not an object, without a field */
    e = error_of(
        rtb_json_error_body(429, "slow_down", "later", NULL, "retryAfter", json_integer(3)), &root);
    assert_int_equal(json_object_size(e), 4);
    assert_int_equal(json_integer_value(json_object_get(e, "retryAfter")), 3);
    json_decref(root);

    /* no key: the extra is dropped, and released (LeakSanitizer would see it) */
    e = error_of(rtb_json_error_body(400, "x", "y", NULL, NULL, json_pack("{s:i}", "a", 1)), &root);
    assert_int_equal(json_object_size(e), 3);
    json_decref(root);

    /* a key without an extra adds nothing */
    e = error_of(rtb_json_error_body(400, "x", "y", NULL, "k", NULL), &root);
    assert_int_equal(json_object_size(e), 3);
    assert_null(json_object_get(e, "k"));
    json_decref(root);
}

/* Messages built from client bytes (a method name, a key) still give a full body. */
static void test_error_body_invalid_utf8(void **state)
{
    json_t *root, *e;
    (void)state;
    e = error_of(rtb_json_error_body(405, "method_not_allowed", "G\xff\xfeT is not allowed here",
                                     "f\xc3", NULL, NULL),
                 &root);
    assert_int_equal(json_object_size(e), 4);
    assert_string_equal(json_string_value(json_object_get(e, "message")),
                        "G??T is not allowed here");
    assert_string_equal(json_string_value(json_object_get(e, "field")), "f?");
    json_decref(root);

    /* overlong forms, surrogates and code points above U+10FFFF are not UTF-8 either */
    e = error_of(rtb_json_error_body(400, "x",
                                     "a\xc0\xaf"
                                     "b\xed\xa0\x80"
                                     "c\xf4\x90\x80\x80",
                                     NULL, NULL, NULL),
                 &root);
    assert_string_equal(json_string_value(json_object_get(e, "message")), "a??b???c????");
    json_decref(root);
}

/* Parse, validate and answer, the way a request body goes through them. */
static void test_error_body_from_err(void **state)
{
    static const char doc[] = "{\"title\":\"a\",\"count\":101}";
    json_t *j, *root, *e;
    rtb_json_err_t err;
    (void)state;
    assert_int_equal(rtb_json_parse_object(doc, strlen(doc), &j, &err), 0);
    assert_int_equal(rtb_json_validate(j, spec, &err), -1);
    json_decref(j);
    e = error_of(rtb_json_error_body(err.status, err.code, err.message,
                                     err.field[0] ? err.field : NULL, NULL, NULL),
                 &root);
    assert_int_equal(json_integer_value(json_object_get(e, "status")), 422);
    assert_string_equal(json_string_value(json_object_get(e, "code")), "out_of_range");
    assert_string_equal(json_string_value(json_object_get(e, "field")), "count");
    json_decref(root);
}

static void test_dump(void **state)
{
    json_t *j = json_pack("{s:[i,i],s:n}", "a", 1, 2, "b");
    json_t *n = json_integer(42);
    char *s;
    (void)state;
    s = rtb_json_dump(j);
    assert_string_equal(s, "{\"a\":[1,2],\"b\":null}");
    free(s);
    s = rtb_json_dump(n); /* scalars too */
    assert_string_equal(s, "42");
    free(s);
    json_decref(j);
    json_decref(n);
}

/* \u0000 is valid JSON: parsing accepts it, the string check refuses it by field. */
static void test_nul_in_string(void **state)
{
    static const rtb_field_spec_t spec[] = {{"title", RTB_F_STRING, 1, 200, 1, 0},
                                            {NULL, 0, 0, 0, 0, 0}};
    static const char doc[] = "{\"title\":\"a\\u0000b\"}";
    rtb_json_err_t err;
    json_t *j = NULL;
    (void)state;
    assert_int_equal(rtb_json_parse_object(doc, sizeof(doc) - 1, &j, &err), 0);
    assert_non_null(j);
    assert_int_equal(rtb_json_validate(j, spec, &err), -1);
    assert_int_equal(err.status, 422);
    assert_string_equal(err.code, "invalid_value");
    assert_string_equal(err.field, "title");
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_values_and_length),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_nul_in_string),
        cmocka_unit_test(test_parse_null_buffer),
        cmocka_unit_test(test_utf8_len),
        cmocka_unit_test(test_validate_table),
        cmocka_unit_test(test_validate_code_points),
        cmocka_unit_test(test_validate_long_unknown_key),
        cmocka_unit_test(test_validate_empty_spec),
        cmocka_unit_test(test_error_body_shape),
        cmocka_unit_test(test_error_body_extra),
        cmocka_unit_test(test_error_body_invalid_utf8),
        cmocka_unit_test(test_error_body_from_err),
        cmocka_unit_test(test_dump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
