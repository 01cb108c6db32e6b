/*
 * rtb_ids: the syntax of board, task and list ids. See rtb_ids.h.
 */
#include "rtb_ids.h"

/* Classifies by hand: <ctype.h> depends on the locale, the id syntax does not. */
static int ids_is_lower_digit(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int rtb_board_id_valid(const char *s, size_t n)
{
    if (!s || n == 0 || n > RTB_BOARD_ID_MAX || !ids_is_lower_digit(s[0]))
        return 0;
    for (size_t i = 1; i < n; i++) {
        if (!ids_is_lower_digit(s[i]) && s[i] != '_' && s[i] != '-')
            return 0;
    }
    return 1;
}

int rtb_ids_parse_num(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;

    if (!s || n == 0)
        return RTB_IDS_EEMPTY;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return RTB_IDS_ESYNTAX;
    }
    if (s[0] == '0')
        return n == 1 ? RTB_IDS_ERANGE : RTB_IDS_ESYNTAX;
    /* RTB_ID_MAX has 16 digits; anything longer is out of range (and could overflow). */
    if (n > 16)
        return RTB_IDS_ERANGE;
    for (size_t i = 0; i < n; i++)
        v = v * 10u + (uint64_t)(s[i] - '0');
    if (v > RTB_ID_MAX)
        return RTB_IDS_ERANGE;
    if (out)
        *out = v;
    return RTB_IDS_OK;
}

int rtb_task_id_valid(const char *s, size_t n)
{
    return rtb_ids_parse_num(s, n, NULL) == RTB_IDS_OK;
}

int rtb_list_id_valid(const char *s, size_t n)
{
    return rtb_ids_parse_num(s, n, NULL) == RTB_IDS_OK;
}

uint32_t rtb_ids_hash(uint32_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * UINT32_C(16777619);
    return h;
}

uint64_t rtb_ids_hash64(const char *s, size_t n)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * UINT64_C(1099511628211);
    return h;
}
