/*
 * rtb_ids: the syntax of the ids in URLs, cursors and bodies.
 *
 * Board ids are slugs, [a-z0-9][a-z0-9_-]{0,63}, so one can name a
 * <Location /boards/ID>. Task and list ids are decimal integers 1..2^53-1
 * (the largest integer a JSON number keeps exactly in a browser), written
 * without sign, spaces or leading zeros.
 *
 * Pure: libc only, no httpd/APR headers; nothing is allocated.
 */
#ifndef RTB_IDS_H
#define RTB_IDS_H

#include <stddef.h>
#include <stdint.h>

/* Longest board id, in bytes (without the NUL). */
#ifndef RTB_BOARD_ID_MAX
#define RTB_BOARD_ID_MAX 64
#endif

/* Largest numeric id: 2^53 - 1. */
#define RTB_ID_MAX UINT64_C(9007199254740991)

/* Return codes of rtb_ids_parse_num. */
typedef enum {
    RTB_IDS_OK = 0,
    RTB_IDS_EEMPTY = -1,  /* no characters */
    RTB_IDS_ESYNTAX = -2, /* a non-digit, or a leading zero */
    RTB_IDS_ERANGE = -3   /* 0, or above RTB_ID_MAX */
} rtb_ids_status_t;

/*
 * Returns 1 when s[0..n) is a board id ([a-z0-9][a-z0-9_-]{0,63}), else 0.
 * s need not be NUL-terminated; a NUL inside the n bytes makes it invalid.
 * s may be NULL only when n is 0 (invalid).
 */
int rtb_board_id_valid(const char *s, size_t n);

/*
 * Parses s[0..n) as a numeric id: decimal digits only, no leading zero, value
 * 1..RTB_ID_MAX. Returns RTB_IDS_OK and stores the value in *out (when out is
 * not NULL), or a negative rtb_ids_status_t and leaves *out alone.
 */
int rtb_ids_parse_num(const char *s, size_t n, uint64_t *out);

/* Returns 1 when s[0..n) is a task id (see rtb_ids_parse_num), else 0. */
int rtb_task_id_valid(const char *s, size_t n);

/* Returns 1 when s[0..n) is a list id (see rtb_ids_parse_num), else 0. */
int rtb_list_id_valid(const char *s, size_t n);

/* The seed of rtb_ids_hash. */
#define RTB_IDS_HASH_SEED UINT32_C(2166136261)

/*
 * FNV-1a of s[0..n), continuing from `h` (RTB_IDS_HASH_SEED to start): the
 * hash the shared tables (ring, presence, per-user limits, the bus's boards)
 * index board and user ids by. Cheap; a filter before comparing the bytes.
 */
uint32_t rtb_ids_hash(uint32_t h, const char *s, size_t n);

/*
 * 64-bit FNV-1a of s[0..n): a key standing for a user id where a 32-bit
 * one would collide too easily (the presence lease of another node's user).
 */
uint64_t rtb_ids_hash64(const char *s, size_t n);

#endif
