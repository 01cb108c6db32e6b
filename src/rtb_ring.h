/*
 * rtb_ring: the cross-process event ring.
 *
 * One block of shared memory holds a header, a circular index of fixed slots
 * and a circular byte area of variable-length records. Every record carries a
 * global sequence number (gseq: 1, 2, 3, ... never reused), the board id, the
 * board's own event id, an opaque 32-bit kind word and a payload (the event's
 * JSON). When a new record does not fit (byte area or index full), the oldest
 * records are evicted first.
 *
 * The block may be mapped at different addresses in different processes: it
 * holds offsets only, never pointers, and an rtb_ring_t pointer is simply the
 * start of the caller's own mapping of the block.
 *
 * Locking: the ring does none. The caller serializes every call on the same
 * ring (including the read-only ones) with one global mutex. The only
 * exception is the wake word (rtb_ring_wake_word), which is updated atomically
 * and may be read, and futex-waited on, without the lock.
 *
 * Pure: libc only, no httpd/APR headers; nothing is allocated.
 */
#ifndef RTB_RING_H
#define RTB_RING_H

#include <stddef.h>
#include <stdint.h>

/* Longest board id a record can carry, in bytes (without the NUL). */
#define RTB_RING_BOARD_MAX 64

/* Return codes of rtb_ring_get and rtb_ring_iter. */
typedef enum {
    RTB_RING_OK = 0,
    RTB_RING_GONE = -1,    /* the record was evicted (or gseq is 0) */
    RTB_RING_NOT_YET = -2, /* the record has not been appended yet */
    RTB_RING_CORRUPT = -3  /* the block's contents are inconsistent */
} rtb_ring_status_t;

/* A ring; it is the start of the caller's mapping of the block. */
typedef struct rtb_ring rtb_ring_t;

/*
 * One record as read by rtb_ring_get. The pointers point into the block: they
 * stay valid only while the caller holds the lock (a later append may
 * overwrite the bytes). board and payload are both NUL-terminated (the NUL is
 * not counted in board_len/len), so a JSON payload can be used as a C string.
 */
typedef struct {
    uint64_t gseq;
    uint64_t event_id;
    uint32_t kind;
    uint32_t len; /* payload bytes */
    const char *board;
    size_t board_len;
    const void *payload;
} rtb_ring_rec_t;

/* Counters for status pages. */
typedef struct {
    uint64_t records;        /* records held now (next - oldest) */
    uint64_t bytes_used;     /* byte-area bytes held by them, with padding */
    uint64_t bytes_capacity; /* size of the byte area */
    uint32_t index_slots;    /* size of the index (most records ever held) */
    uint64_t oldest;         /* as rtb_ring_oldest */
    uint64_t next;           /* as rtb_ring_next */
    uint64_t appended;       /* records appended since format */
    uint64_t evicted;        /* records evicted since format */
    uint64_t refused;        /* appends refused since format */
} rtb_ring_stats_t;

/*
 * Returns the number of bytes the caller must map for a ring whose byte area
 * holds data_bytes (rounded up to a multiple of 8) and whose index holds
 * index_slots records. Returns 0 when the arguments are unusable: data_bytes
 * below 128, index_slots 0 or above 2^30, or a size that overflows size_t.
 */
size_t rtb_ring_block_size(size_t data_bytes, uint32_t index_slots);

/*
 * Formats an empty ring in block (block_size bytes, 8-byte aligned), with the
 * same data_bytes/index_slots rounding as rtb_ring_block_size; any previous
 * contents are discarded. The first append gets gseq 1. Returns the ring (the
 * same address as block), or NULL when the block is NULL, misaligned, or
 * smaller than rtb_ring_block_size(data_bytes, index_slots), or the arguments
 * are unusable. Call it once, before any other process attaches.
 */
rtb_ring_t *rtb_ring_format(void *block, size_t block_size, size_t data_bytes,
                            uint32_t index_slots);

/*
 * Attaches to a ring formatted earlier in block, possibly by another process
 * and at another address. block_size is the size of this mapping: the ring is
 * refused if it claims to be larger. Returns the ring (the same address as
 * block) or NULL when there is no valid ring there (NULL or misaligned block,
 * wrong magic or version, or inconsistent header fields).
 */
rtb_ring_t *rtb_ring_attach(void *block, size_t block_size);

/*
 * Appends one record: board (a NUL-terminated id of 1..RTB_RING_BOARD_MAX
 * bytes), the board's event id, an opaque kind word, and len bytes of payload
 * (copied; payload may be NULL only when len is 0). Evicts the oldest records
 * as needed, then bumps the wake word. Returns the record's gseq, or 0 when
 * refused (bad board, NULL payload with len > 0, or a record larger than the
 * byte area: see rtb_ring_max_payload); a refused append changes nothing but
 * the refused counter. O(1) plus O(1) per evicted record.
 */
uint64_t rtb_ring_append(rtb_ring_t *r, const char *board, uint64_t event_id, uint32_t kind,
                         const void *payload, uint32_t len);

/*
 * Largest payload rtb_ring_append accepts for a board id of
 * RTB_RING_BOARD_MAX bytes (shorter board ids may fit a few more bytes).
 * Such a record fills the whole byte area and evicts everything else.
 */
uint32_t rtb_ring_max_payload(const rtb_ring_t *r);

/* Returns the gseq the next append will get (the last gseq + 1; 1 at first). */
uint64_t rtb_ring_next(const rtb_ring_t *r);

/* Returns the oldest gseq still readable; equal to rtb_ring_next when empty. */
uint64_t rtb_ring_oldest(const rtb_ring_t *r);

/*
 * Reads record gseq into *out. Returns RTB_RING_OK, RTB_RING_GONE when gseq is
 * older than rtb_ring_oldest (0 included), RTB_RING_NOT_YET when gseq >=
 * rtb_ring_next, or RTB_RING_CORRUPT. *out is written only on RTB_RING_OK and
 * points into the block: see rtb_ring_rec_t. O(1).
 */
int rtb_ring_get(const rtb_ring_t *r, uint64_t gseq, rtb_ring_rec_t *out);

/*
 * Iteration helper. *cursor is the next gseq the caller wants. Reads the
 * first record with gseq >= *cursor, of board `board` only when board is not
 * NULL, into *out and sets *cursor to its gseq + 1: returns RTB_RING_OK.
 * Returns RTB_RING_NOT_YET when no such record exists yet (with a board
 * filter, *cursor is then moved to rtb_ring_next, past the records of other
 * boards), and RTB_RING_GONE, leaving *cursor alone, when *cursor is older
 * than rtb_ring_oldest: records were evicted before the caller read them, and
 * it must decide (reset its client, or jump to rtb_ring_oldest). A *cursor of
 * 0 counts as 1. With a board filter the cost is one slot look-up per record
 * skipped.
 */
int rtb_ring_iter(const rtb_ring_t *r, uint64_t *cursor, const char *board, rtb_ring_rec_t *out);

/*
 * Returns the gseq of board's record whose event id is event_id (the newest
 * such record if several), or 0 when none is in the ring. Scans the index
 * from newest to oldest: O(records held), a 32-bit hash compare per slot and a
 * string compare only on a hash match; a few thousand slots take microseconds.
 */
uint64_t rtb_ring_find(const rtb_ring_t *r, const char *board, uint64_t event_id);

/*
 * Returns the highest event id of board among the records held, or 0 when the
 * ring holds none of that board. Same O(records held) scan as rtb_ring_find.
 */
uint64_t rtb_ring_last_id(const rtb_ring_t *r, const char *board);

/*
 * Returns the address of a 32-bit word, 4-byte aligned, inside the block,
 * that every successful append increments atomically (wrapping). Waiters read
 * it without the lock and futex-wait on it (FUTEX_WAIT, not the private
 * variant, as the block is shared between processes); the appender calls
 * FUTEX_WAKE on it after appending.
 */
volatile uint32_t *rtb_ring_wake_word(rtb_ring_t *r);

/* Fills *st with the ring's counters (see rtb_ring_stats_t). */
void rtb_ring_stats(const rtb_ring_t *r, rtb_ring_stats_t *st);

#endif
