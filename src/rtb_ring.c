/*
 * rtb_ring: the cross-process event ring. See rtb_ring.h for the contract.
 *
 * Layout of the block (all offsets from its start, all 8-byte aligned):
 *
 *   [header][index: index_slots x ring_slot_t][byte area: data_bytes]
 *
 * Positions in the byte area are logical 64-bit byte counts that only grow;
 * the physical offset is pos % data_bytes. A record is always contiguous:
 * when it would straddle the end of the area, the tail is skipped (counted as
 * used until the record after it is evicted) and the record starts at offset
 * 0. The live records are exactly those with oldest <= gseq < next, and the
 * bytes they hold are [pos(oldest), wpos), never more than data_bytes.
 *
 * Record gseq lives in index slot gseq % index_slots.
 */
#include "rtb_ring.h"
#include "rtb_ids.h"

#include <stdint.h>
#include <string.h>

#define RING_MAGIC 0x52544252u /* "RTBR" */
#define RING_VERSION 1u
#define RING_MIN_DATA 128u
#define RING_MAX_SLOTS (1u << 30)
#define RING_INDEX_ALIGN 64u
/* Largest record: its size must fit the 32-bit size field of a slot. */
#define RING_MAX_REC 0xFFFFFFF8u

struct rtb_ring {
    uint32_t magic;
    uint32_t version;
    uint32_t hdr_bytes; /* sizeof(struct rtb_ring) of the formatter */
    uint32_t index_slots;
    uint64_t data_bytes;
    uint64_t index_off;
    uint64_t data_off;
    uint64_t block_bytes; /* rtb_ring_block_size() at format time */
    uint64_t next;        /* gseq of the next append */
    uint64_t oldest;      /* oldest live gseq; == next when empty */
    uint64_t wpos;        /* logical byte position of the next write */
    uint64_t appended;
    uint64_t evicted;
    uint64_t refused;
    uint32_t wake; /* bumped atomically by each append; read without the lock */
    uint32_t reserved;
};

typedef struct {
    uint64_t gseq;
    uint64_t pos; /* logical position of the record in the byte area */
    uint64_t event_id;
    uint32_t size; /* bytes the record takes, padding included */
    uint32_t hash; /* of the board id, so scans rarely touch the byte area */
} ring_slot_t;

/* Followed by the board id, a NUL, the payload, a NUL, and padding to 8. */
typedef struct {
    uint64_t gseq;
    uint64_t event_id;
    uint32_t kind;
    uint32_t len;
    uint32_t board_len;
    uint32_t reserved;
} ring_rec_hdr_t;

_Static_assert(RING_MIN_DATA >= sizeof(ring_rec_hdr_t) + RTB_RING_BOARD_MAX + 2,
               "the smallest byte area must hold a record with the longest board id");
_Static_assert(sizeof(ring_rec_hdr_t) % 8 == 0 && sizeof(ring_slot_t) % 8 == 0,
               "records and slots keep 8-byte alignment");

/* Rounds n up to a multiple of 8; the caller keeps n far below the maximum. */
static uint64_t ring_align8(uint64_t n)
{
    return (n + 7u) & ~(uint64_t)7u;
}

/* strnlen without relying on POSIX feature macros. */
static size_t ring_board_len(const char *s)
{
    size_t n = 0;
    while (n <= RTB_RING_BOARD_MAX && s[n] != '\0')
        n++;
    return n;
}

/* Bytes a record takes in the byte area. */
static uint64_t ring_rec_size(size_t board_len, uint32_t len)
{
    return ring_align8((uint64_t)sizeof(ring_rec_hdr_t) + board_len + 1u + len + 1u);
}

/* Offset of the index; the header is padded so the index starts on a cache line. */
static uint64_t ring_index_off(void)
{
    return ((uint64_t)sizeof(struct rtb_ring) + RING_INDEX_ALIGN - 1u) &
           ~(uint64_t)(RING_INDEX_ALIGN - 1u);
}

static ring_slot_t *ring_slot(rtb_ring_t *r, uint64_t gseq)
{
    ring_slot_t *slots = (ring_slot_t *)((unsigned char *)r + r->index_off);
    return &slots[gseq % r->index_slots];
}

static const ring_slot_t *ring_cslot(const rtb_ring_t *r, uint64_t gseq)
{
    const ring_slot_t *slots = (const ring_slot_t *)((const unsigned char *)r + r->index_off);
    return &slots[gseq % r->index_slots];
}

/*
 * Returns the header of the record a slot points to, or NULL when the slot
 * and the record disagree: shared memory outlives any one process, so a
 * reader checks bounds instead of trusting them.
 */
static const ring_rec_hdr_t *ring_locate(const rtb_ring_t *r, const ring_slot_t *slot,
                                         uint64_t gseq)
{
    uint64_t off = slot->pos % r->data_bytes;
    const ring_rec_hdr_t *h;

    if (slot->gseq != gseq || slot->size < sizeof(ring_rec_hdr_t) ||
        slot->size > r->data_bytes - off)
        return NULL;
    h = (const ring_rec_hdr_t *)((const unsigned char *)r + r->data_off + off);
    if (h->gseq != gseq || h->board_len == 0 || h->board_len > RTB_RING_BOARD_MAX ||
        ring_rec_size(h->board_len, h->len) != slot->size)
        return NULL;
    return h;
}

/* Whether the record behind slot belongs to board (board_len bytes, hash h). */
static int ring_board_matches(const rtb_ring_t *r, const ring_slot_t *slot, uint64_t gseq,
                              const char *board, size_t board_len, uint32_t h)
{
    const ring_rec_hdr_t *rec;

    if (slot->hash != h)
        return 0;
    rec = ring_locate(r, slot, gseq);
    return rec && rec->board_len == board_len && memcmp(rec + 1, board, board_len) == 0;
}

/* Drops the oldest record; its bytes are reclaimed by moving oldest on. */
static void ring_evict_oldest(rtb_ring_t *r)
{
    r->oldest++;
    r->evicted++;
}

size_t rtb_ring_block_size(size_t data_bytes, uint32_t index_slots)
{
    uint64_t data, total;

    if (data_bytes < RING_MIN_DATA || index_slots == 0 || index_slots > RING_MAX_SLOTS)
        return 0;
    if ((uint64_t)data_bytes > UINT64_MAX / 2)
        return 0;
    data = ring_align8(data_bytes);
    total = ring_index_off() + (uint64_t)index_slots * sizeof(ring_slot_t);
    if (data > UINT64_MAX - total)
        return 0;
    total += data;
    if (total > SIZE_MAX)
        return 0;
    return (size_t)total;
}

rtb_ring_t *rtb_ring_format(void *block, size_t block_size, size_t data_bytes, uint32_t index_slots)
{
    size_t need = rtb_ring_block_size(data_bytes, index_slots);
    rtb_ring_t *r = block;

    if (!block || need == 0 || block_size < need || ((uintptr_t)block % 8u) != 0)
        return NULL;
    /* The index is zeroed so stale slots can never pass ring_locate by chance. */
    memset(block, 0, (size_t)(ring_index_off() + (uint64_t)index_slots * sizeof(ring_slot_t)));
    r->version = RING_VERSION;
    r->hdr_bytes = (uint32_t)sizeof(struct rtb_ring);
    r->index_slots = index_slots;
    r->data_bytes = ring_align8(data_bytes);
    r->index_off = ring_index_off();
    r->data_off = r->index_off + (uint64_t)index_slots * sizeof(ring_slot_t);
    r->block_bytes = need;
    r->next = 1;
    r->oldest = 1;
    /* Magic last: a half-formatted block never attaches. */
    __atomic_store_n(&r->magic, RING_MAGIC, __ATOMIC_RELEASE);
    return r;
}

rtb_ring_t *rtb_ring_attach(void *block, size_t block_size)
{
    rtb_ring_t *r = block;
    uint64_t data_off;

    if (!block || ((uintptr_t)block % 8u) != 0 || block_size < sizeof(struct rtb_ring))
        return NULL;
    if (__atomic_load_n(&r->magic, __ATOMIC_ACQUIRE) != RING_MAGIC || r->version != RING_VERSION ||
        r->hdr_bytes != sizeof(struct rtb_ring))
        return NULL;
    if (r->index_slots == 0 || r->index_slots > RING_MAX_SLOTS || r->data_bytes < RING_MIN_DATA ||
        r->data_bytes % 8u != 0 || r->data_bytes > UINT64_MAX / 2 ||
        r->index_off != ring_index_off())
        return NULL;
    data_off = r->index_off + (uint64_t)r->index_slots * sizeof(ring_slot_t);
    if (r->data_off != data_off || r->data_bytes > UINT64_MAX - data_off ||
        r->block_bytes != data_off + r->data_bytes || r->block_bytes > block_size)
        return NULL;
    if (r->oldest == 0 || r->oldest > r->next || r->next - r->oldest > r->index_slots)
        return NULL;
    if (r->oldest < r->next) {
        const ring_slot_t *s = ring_cslot(r, r->oldest);
        if (s->gseq != r->oldest || s->pos > r->wpos || r->wpos - s->pos > r->data_bytes)
            return NULL;
    }
    return r;
}

uint64_t rtb_ring_append(rtb_ring_t *r, const char *board, uint64_t event_id, uint32_t kind,
                         const void *payload, uint32_t len)
{
    size_t blen;
    uint64_t size, off, start, gseq;
    ring_rec_hdr_t *h;
    ring_slot_t *slot;
    unsigned char *p;

    if (!r)
        return 0;
    blen = board ? ring_board_len(board) : 0;
    size = ring_rec_size(blen, len);
    if (blen == 0 || blen > RTB_RING_BOARD_MAX || (!payload && len > 0) || size > r->data_bytes ||
        size > RING_MAX_REC) {
        r->refused++;
        return 0;
    }

    while (r->next - r->oldest >= r->index_slots)
        ring_evict_oldest(r);

    off = r->wpos % r->data_bytes;
    start = r->wpos;
    if (off + size > r->data_bytes)
        start += r->data_bytes - off; /* skip the tail: records never wrap */
    while (r->oldest < r->next && start + size - ring_cslot(r, r->oldest)->pos > r->data_bytes)
        ring_evict_oldest(r);

    gseq = r->next;
    p = (unsigned char *)r + r->data_off + start % r->data_bytes;
    h = (ring_rec_hdr_t *)p;
    h->gseq = gseq;
    h->event_id = event_id;
    h->kind = kind;
    h->len = len;
    h->board_len = (uint32_t)blen;
    h->reserved = 0;
    p += sizeof(*h);
    memcpy(p, board, blen);
    p[blen] = '\0';
    p += blen + 1;
    if (len > 0)
        memcpy(p, payload, len);
    p[len] = '\0';

    slot = ring_slot(r, gseq);
    slot->gseq = gseq;
    slot->pos = start;
    slot->event_id = event_id;
    slot->size = (uint32_t)size;
    slot->hash = rtb_ids_hash(RTB_IDS_HASH_SEED, board, blen);

    r->wpos = start + size;
    r->next = gseq + 1;
    r->appended++;
    __atomic_fetch_add(&r->wake, 1u, __ATOMIC_SEQ_CST);
    return gseq;
}

uint32_t rtb_ring_max_payload(const rtb_ring_t *r)
{
    uint64_t fixed = (uint64_t)sizeof(ring_rec_hdr_t) + RTB_RING_BOARD_MAX + 2u;
    uint64_t cap;

    if (!r)
        return 0;
    /* cap is a multiple of 8, so the largest record has no padding; it is at
     * least RING_MIN_DATA, so the subtraction cannot wrap. */
    cap = r->data_bytes < RING_MAX_REC ? r->data_bytes : RING_MAX_REC;
    return (uint32_t)(cap - fixed);
}

uint64_t rtb_ring_next(const rtb_ring_t *r)
{
    return r->next;
}

uint64_t rtb_ring_oldest(const rtb_ring_t *r)
{
    return r->oldest;
}

int rtb_ring_get(const rtb_ring_t *r, uint64_t gseq, rtb_ring_rec_t *out)
{
    const ring_rec_hdr_t *h;
    const char *board;

    if (gseq < r->oldest)
        return RTB_RING_GONE;
    if (gseq >= r->next)
        return RTB_RING_NOT_YET;
    h = ring_locate(r, ring_cslot(r, gseq), gseq);
    if (!h)
        return RTB_RING_CORRUPT;
    board = (const char *)(h + 1);
    out->gseq = gseq;
    out->event_id = h->event_id;
    out->kind = h->kind;
    out->len = h->len;
    out->board = board;
    out->board_len = h->board_len;
    out->payload = board + h->board_len + 1;
    return RTB_RING_OK;
}

int rtb_ring_iter(const rtb_ring_t *r, uint64_t *cursor, const char *board, rtb_ring_rec_t *out)
{
    uint64_t g = *cursor ? *cursor : 1;
    size_t blen = 0;
    uint32_t h = 0;
    int rc;

    if (g < r->oldest)
        return RTB_RING_GONE;
    if (board) {
        blen = ring_board_len(board);
        h = rtb_ids_hash(RTB_IDS_HASH_SEED, board, blen);
    }
    for (; g < r->next; g++) {
        if (board && !ring_board_matches(r, ring_cslot(r, g), g, board, blen, h))
            continue;
        rc = rtb_ring_get(r, g, out);
        if (rc != RTB_RING_OK)
            return rc;
        *cursor = g + 1;
        return RTB_RING_OK;
    }
    *cursor = g;
    return RTB_RING_NOT_YET;
}

uint64_t rtb_ring_find(const rtb_ring_t *r, const char *board, uint64_t event_id)
{
    size_t blen;
    uint32_t h;

    if (!board)
        return 0;
    blen = ring_board_len(board);
    h = rtb_ids_hash(RTB_IDS_HASH_SEED, board, blen);
    for (uint64_t g = r->next; g > r->oldest;) {
        const ring_slot_t *s = ring_cslot(r, --g);
        if (s->event_id == event_id && ring_board_matches(r, s, g, board, blen, h))
            return g;
    }
    return 0;
}

uint64_t rtb_ring_last_id(const rtb_ring_t *r, const char *board)
{
    uint64_t best = 0;
    size_t blen;
    uint32_t h;

    if (!board)
        return 0;
    blen = ring_board_len(board);
    h = rtb_ids_hash(RTB_IDS_HASH_SEED, board, blen);
    for (uint64_t g = r->oldest; g < r->next; g++) {
        const ring_slot_t *s = ring_cslot(r, g);
        if (s->event_id > best && ring_board_matches(r, s, g, board, blen, h))
            best = s->event_id;
    }
    return best;
}

volatile uint32_t *rtb_ring_wake_word(rtb_ring_t *r)
{
    return &r->wake;
}

void rtb_ring_stats(const rtb_ring_t *r, rtb_ring_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    st->records = r->next - r->oldest;
    st->bytes_used = st->records ? r->wpos - ring_cslot(r, r->oldest)->pos : 0;
    st->bytes_capacity = r->data_bytes;
    st->index_slots = r->index_slots;
    st->oldest = r->oldest;
    st->next = r->next;
    st->appended = r->appended;
    st->evicted = r->evicted;
    st->refused = r->refused;
}
