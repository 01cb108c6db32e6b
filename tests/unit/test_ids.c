/*
 * Unit tests for rtb_ids: the board slug rule and numeric task/list ids.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/rtb_ids.c"

typedef struct {
    const char *s;
    size_t n; /* (size_t)-1: strlen(s) */
    int valid;
} board_case_t;

#define L ((size_t)-1)

static const board_case_t board_cases[] = {
    {"a", L, 1},
    {"0", L, 1},
    {"z9", L, 1},
    {"a-b", L, 1},
    {"a_b", L, 1},
    {"a-", L, 1},
    {"0_", L, 1},
    {"team-42_q3", L, 1},
    {"0123456789012345678901234567890123456789012345678901234567890123", L, 1},  /* 64 */
    {"01234567890123456789012345678901234567890123456789012345678901234", L, 0}, /* 65 */
    {"", L, 0},
    {"-a", L, 0},
    {"_a", L, 0},
    {"A", L, 0},
    {"aB", L, 0},
    {"a b", L, 0},
    {" a", L, 0},
    {"a ", L, 0},
    {"a.b", L, 0},
    {"a/b", L, 0},
    {"a%2f", L, 0},
    {"..", L, 0},
    {"a:b", L, 0},
    {"a,b", L, 0},
    {"\xc3\xa9", L, 0}, /* e acute in UTF-8 */
    {"a\x80", L, 0},
    {"a\0b", 3, 0}, /* NUL inside */
    {"ab!", 2, 1},  /* only n bytes are looked at */
    {"ab", 0, 0},
};

static void test_board_ids(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(board_cases) / sizeof(board_cases[0]); i++) {
        const board_case_t *c = &board_cases[i];
        size_t n = c->n == L ? strlen(c->s) : c->n;
        if (rtb_board_id_valid(c->s, n) != c->valid)
            fail_msg("case %zu \"%s\": expected %d", i, c->s, c->valid);
    }
    assert_int_equal(rtb_board_id_valid(NULL, 0), 0);
    assert_int_equal(rtb_board_id_valid(NULL, 3), 0);
}

static void test_board_ids_every_byte(void **state)
{
    (void)state;
    for (int ch = 0; ch < 256; ch++) {
        char s[2] = {'a', (char)ch};
        int lower_digit = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        assert_int_equal(rtb_board_id_valid(s, 2), lower_digit || ch == '-' || ch == '_');
        assert_int_equal(rtb_board_id_valid(s + 1, 1), lower_digit);
    }
}

typedef struct {
    const char *s;
    size_t n;
    int rc;
    uint64_t v;
} num_case_t;

static const num_case_t num_cases[] = {
    {"1", L, RTB_IDS_OK, 1},
    {"9", L, RTB_IDS_OK, 9},
    {"10", L, RTB_IDS_OK, 10},
    {"1234567890", L, RTB_IDS_OK, 1234567890},
    {"9007199254740991", L, RTB_IDS_OK, 9007199254740991ull},
    {"9007199254740992", L, RTB_IDS_ERANGE, 0},
    {"9999999999999999", L, RTB_IDS_ERANGE, 0},
    {"10000000000000000", L, RTB_IDS_ERANGE, 0},
    {"18446744073709551617", L, RTB_IDS_ERANGE, 0},
    {"99999999999999999999999999", L, RTB_IDS_ERANGE, 0},
    {"0", L, RTB_IDS_ERANGE, 0},
    {"00", L, RTB_IDS_ESYNTAX, 0},
    {"01", L, RTB_IDS_ESYNTAX, 0},
    {"", L, RTB_IDS_EEMPTY, 0},
    {"+1", L, RTB_IDS_ESYNTAX, 0},
    {"-1", L, RTB_IDS_ESYNTAX, 0},
    {" 1", L, RTB_IDS_ESYNTAX, 0},
    {"1 ", L, RTB_IDS_ESYNTAX, 0},
    {"1a", L, RTB_IDS_ESYNTAX, 0},
    {"0x1", L, RTB_IDS_ESYNTAX, 0},
    {"1e3", L, RTB_IDS_ESYNTAX, 0},
    {"1.0", L, RTB_IDS_ESYNTAX, 0},
    {"\xd9\xa1", L, RTB_IDS_ESYNTAX, 0}, /* ARABIC-INDIC DIGIT ONE */
    {"1\0002", 3, RTB_IDS_ESYNTAX, 0},
    {"123x", 3, RTB_IDS_OK, 123},
    {"42", 0, RTB_IDS_EEMPTY, 0},
};

static void test_numeric_ids(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(num_cases) / sizeof(num_cases[0]); i++) {
        const num_case_t *c = &num_cases[i];
        size_t n = c->n == L ? strlen(c->s) : c->n;
        uint64_t v = 777;
        int rc = rtb_ids_parse_num(c->s, n, &v);
        if (rc != c->rc)
            fail_msg("case %zu \"%s\": rc %d, expected %d", i, c->s, rc, c->rc);
        assert_int_equal(v, c->rc == RTB_IDS_OK ? c->v : 777); /* untouched on error */
        assert_int_equal(rtb_task_id_valid(c->s, n), c->rc == RTB_IDS_OK);
        assert_int_equal(rtb_list_id_valid(c->s, n), c->rc == RTB_IDS_OK);
        assert_int_equal(rtb_ids_parse_num(c->s, n, NULL), c->rc);
    }
    assert_int_equal(rtb_ids_parse_num(NULL, 0, NULL), RTB_IDS_EEMPTY);
    assert_int_equal(rtb_task_id_valid(NULL, 0), 0);
}

/* Every value printed back parses to itself, around powers of ten and the top. */
static void test_numeric_round_trip(void **state)
{
    (void)state;
    uint64_t p = 1;
    for (int k = 0; k < 16; k++, p *= 10) {
        uint64_t vals[3] = {p - 1, p, p + 1};
        for (int j = 0; j < 3; j++) {
            char buf[32];
            uint64_t v = vals[j], got = 0;
            if (v == 0)
                continue;
            int n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
            assert_int_equal(rtb_ids_parse_num(buf, (size_t)n, &got), RTB_IDS_OK);
            assert_int_equal(got, v);
        }
    }
    for (uint64_t v = RTB_ID_MAX - 3; v <= RTB_ID_MAX + 3; v++) {
        char buf[32];
        uint64_t got = 0;
        int n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
        assert_int_equal(rtb_ids_parse_num(buf, (size_t)n, &got),
                         v <= RTB_ID_MAX ? RTB_IDS_OK : RTB_IDS_ERANGE);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_board_ids),
        cmocka_unit_test(test_board_ids_every_byte),
        cmocka_unit_test(test_numeric_ids),
        cmocka_unit_test(test_numeric_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
