/*
 * libFuzzer driver for src/rtb_ws_codec.c.
 *
 * Input layout: byte 0 picks where the stream is split, byte 1 the message
 * size limit (0: none, else 64 * value), the rest is the client byte stream.
 * The stream is parsed whole, split in two at the chosen point, and (when
 * short) one byte at a time; every piece lives in its own exactly-sized heap
 * block so ASan sees any read past what the parser was given. All feeds must
 * agree on the messages, control frames, error and error offset. Complete
 * text messages must be valid UTF-8 and no message may exceed the limit.
 * The encoder helpers are round-tripped through the parser as well.
 */
#include "fuzz.h"

#include "../../src/rtb_ws_codec.c"

/* Everything computed ends up here so the optimiser cannot drop the work. */
static volatile uint64_t fuzz_ws_codec_sink;

typedef struct {
    int err;
    size_t err_offset;
    uint64_t hash; /* over complete messages and control frames, in order */
    size_t records;
    /* The message being assembled. */
    int open;
    int open_op;
    unsigned char *msg;
    size_t msg_len;
    size_t msg_cap;
} fuzz_ws_codec_summary_t;

static uint64_t fuzz_ws_codec_mix_int(uint64_t h, uint64_t v)
{
    unsigned char b[8];

    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char)(v >> (8 * i));
    }
    return fuzz_hash(h, b, sizeof(b));
}

/* Check one event against the contract and fold it into the summary. */
static void fuzz_ws_codec_event(fuzz_ws_codec_summary_t *s, const rtb_ws_parser_t *p,
                                const rtb_ws_event_t *ev, const unsigned char *piece, size_t plen,
                                uint64_t max)
{
    if (ev->type == RTB_WS_EV_DATA) {
        FUZZ_CHECK(ev->opcode == RTB_WS_OP_TEXT || ev->opcode == RTB_WS_OP_BINARY);
        FUZZ_CHECK(ev->data >= piece && ev->data + ev->len <= piece + plen);
        FUZZ_CHECK(ev->len > 0 || ev->flags != 0);
        FUZZ_CHECK(!!(ev->flags & RTB_WS_FLAG_FIRST) == !s->open);
        if (!s->open) {
            s->open = 1;
            s->open_op = ev->opcode;
            s->msg_len = 0;
        }
        FUZZ_CHECK(ev->opcode == s->open_op);
        if (s->msg_len + ev->len > s->msg_cap) {
            size_t cap = s->msg_cap ? s->msg_cap : 256;

            while (cap < s->msg_len + ev->len) {
                cap *= 2;
            }
            s->msg = realloc(s->msg, cap);
            FUZZ_CHECK(s->msg != NULL);
            s->msg_cap = cap;
        }
        if (ev->len > 0) {
            memcpy(s->msg + s->msg_len, ev->data, ev->len);
        }
        s->msg_len += ev->len;
        FUZZ_CHECK(max == 0 || s->msg_len <= max);
        if (ev->flags & RTB_WS_FLAG_LAST) {
            if (s->open_op == RTB_WS_OP_TEXT) {
                FUZZ_CHECK(rtb_ws_utf8_valid(s->msg, s->msg_len));
            }
            s->hash = fuzz_ws_codec_mix_int(s->hash, (uint64_t)s->open_op);
            s->hash = fuzz_ws_codec_mix_int(s->hash, s->msg_len);
            s->hash = fuzz_hash(s->hash, s->msg, s->msg_len);
            s->records++;
            s->open = 0;
        }
        return;
    }

    FUZZ_CHECK(ev->data == p->control && ev->len <= RTB_WS_MAX_CONTROL_PAYLOAD);
    FUZZ_CHECK(ev->flags == 0);
    if (ev->type == RTB_WS_EV_CLOSE) {
        FUZZ_CHECK(ev->opcode == RTB_WS_OP_CLOSE);
        if (ev->len == 0) {
            FUZZ_CHECK(ev->close_code == 0 && ev->reason_len == 0);
        } else {
            FUZZ_CHECK(ev->len >= 2 && rtb_ws_close_code_valid(ev->close_code));
            FUZZ_CHECK(ev->reason == p->control + 2 && ev->reason_len == ev->len - 2);
            FUZZ_CHECK(rtb_ws_utf8_valid(ev->reason, ev->reason_len));
        }
    } else {
        FUZZ_CHECK((ev->type == RTB_WS_EV_PING && ev->opcode == RTB_WS_OP_PING) ||
                   (ev->type == RTB_WS_EV_PONG && ev->opcode == RTB_WS_OP_PONG));
    }
    s->hash =
        fuzz_ws_codec_mix_int(s->hash, (uint64_t)ev->opcode | ((uint64_t)ev->close_code << 8));
    s->hash = fuzz_hash(s->hash, ev->data, ev->len);
    s->records++;
}

/*
 * Parse in[0..n) with a first piece of `first` bytes and the rest in pieces
 * of `chunk` bytes, each copied to its own heap block.
 */
static void fuzz_ws_codec_run(fuzz_ws_codec_summary_t *s, const unsigned char *in, size_t n,
                              size_t first, size_t chunk, uint64_t max)
{
    rtb_ws_parser_t p;
    size_t at = 0;

    memset(s, 0, sizeof(*s));
    s->hash = UINT64_C(0xcbf29ce484222325);
    rtb_ws_parser_init(&p, max);
    FUZZ_CHECK(chunk > 0 || n == 0);
    /* The first piece may be empty: the parser must accept len 0. */
    for (size_t piece_no = 0; at < n; piece_no++) {
        size_t plen = piece_no == 0 ? first : chunk;
        size_t off = 0;
        unsigned char *piece;

        if (plen > n - at) {
            plen = n - at;
        }
        piece = malloc(plen ? plen : 1);
        FUZZ_CHECK(piece != NULL);
        memcpy(piece, in + at, plen);
        for (;;) {
            rtb_ws_event_t ev;
            size_t used = SIZE_MAX;
            int rc = rtb_ws_parse(&p, piece + off, plen - off, &used, &ev);

            FUZZ_CHECK(used <= plen - off);
            off += used;
            if (rc < 0) {
                FUZZ_CHECK(rtb_ws_error_close_code(rc) >= 1002);
                FUZZ_CHECK(rtb_ws_parse(&p, piece + off, plen - off, &used, &ev) == rc);
                FUZZ_CHECK(used == 0);
                s->err = rc;
                s->err_offset = at + off;
                free(piece);
                return;
            }
            if (rc == 0) {
                FUZZ_CHECK(off == plen);
                break;
            }
            FUZZ_CHECK(rc == ev.type);
            fuzz_ws_codec_event(s, &p, &ev, piece, plen, max);
        }
        free(piece);
        at += plen;
    }
}

static void fuzz_ws_codec_same(const fuzz_ws_codec_summary_t *a, const fuzz_ws_codec_summary_t *b)
{
    FUZZ_CHECK(a->err == b->err);
    FUZZ_CHECK(a->err_offset == b->err_offset);
    FUZZ_CHECK(a->records == b->records);
    FUZZ_CHECK(a->hash == b->hash);
    if (a->err == 0) {
        FUZZ_CHECK(a->open == b->open);
    }
}

/* Build a client frame around a server header: set MASK, insert key, mask. */
static size_t fuzz_ws_codec_client_frame(unsigned char *out, const unsigned char *hdr, size_t hl,
                                         const unsigned char key[4], const unsigned char *payload,
                                         size_t n)
{
    memcpy(out, hdr, hl);
    out[1] |= 0x80;
    memcpy(out + hl, key, 4);
    for (size_t i = 0; i < n; i++) {
        out[hl + 4 + i] = payload[i] ^ key[i & 3];
    }
    return hl + 4 + n;
}

/* Encoder round trips: a close payload and a binary frame built by the
 * helpers must parse back to what went in. */
static void fuzz_ws_codec_encoders(uint16_t code, const unsigned char *in, size_t n)
{
    static const unsigned char key[4] = {0xa5, 0x01, 0x7e, 0xc3};
    char reason[201];
    size_t rlen = n < 200 ? n : 200;
    unsigned char payload[RTB_WS_MAX_CONTROL_PAYLOAD];
    unsigned char hdr[RTB_WS_MAX_HEADER];
    unsigned char frame[RTB_WS_MAX_HEADER + 4 + RTB_WS_MAX_CONTROL_PAYLOAD];
    rtb_ws_parser_t p;
    rtb_ws_event_t ev;
    size_t plen, hl, fl, used;
    int rc;

    memcpy(reason, in, rlen);
    reason[rlen] = '\0';
    plen = rtb_ws_close_payload(payload, code, reason);
    FUZZ_CHECK(plen <= RTB_WS_MAX_CONTROL_PAYLOAD);
    FUZZ_CHECK(code == 0 ? plen == 0 : plen >= 2);
    if (plen >= 2) {
        FUZZ_CHECK(rtb_ws_utf8_valid(payload + 2, plen - 2));
        FUZZ_CHECK(memcmp(payload + 2, reason, plen - 2) == 0);
    }
    hl = rtb_ws_frame_header(hdr, RTB_WS_OP_CLOSE, 1, plen);
    FUZZ_CHECK(hl == 2);
    fl = fuzz_ws_codec_client_frame(frame, hdr, hl, key, payload, plen);
    rtb_ws_parser_init(&p, 0);
    rc = rtb_ws_parse(&p, frame, fl, &used, &ev);
    if (code == 0 || rtb_ws_close_code_valid(code)) {
        FUZZ_CHECK(rc == RTB_WS_EV_CLOSE && used == fl && ev.close_code == code);
        FUZZ_CHECK(ev.len == plen && memcmp(ev.data, payload, plen) == 0);
    } else {
        FUZZ_CHECK(rc == RTB_WS_ERR_CLOSE_CODE);
    }
    fuzz_ws_codec_sink += (uint64_t)rc + plen;

    /* The input as one binary message. */
    {
        unsigned char *buf = malloc(RTB_WS_MAX_HEADER + 4 + n);

        FUZZ_CHECK(buf != NULL);
        hl = rtb_ws_frame_header(hdr, RTB_WS_OP_BINARY, 1, n);
        FUZZ_CHECK(hl == 2 || hl == 4 || hl == 10);
        fl = fuzz_ws_codec_client_frame(buf, hdr, hl, key, in, n);
        rtb_ws_parser_init(&p, n);
        rc = rtb_ws_parse(&p, buf, fl, &used, &ev);
        FUZZ_CHECK(rc == RTB_WS_EV_DATA && used == fl && ev.len == n);
        FUZZ_CHECK(ev.flags == (RTB_WS_FLAG_FIRST | RTB_WS_FLAG_LAST));
        FUZZ_CHECK(n == 0 || memcmp(ev.data, in, n) == 0);
        fuzz_ws_codec_sink = fuzz_hash(fuzz_ws_codec_sink, ev.data, ev.len);
        free(buf);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_ws_codec_summary_t whole, other;
    const unsigned char *in;
    size_t n, split;
    uint64_t max;

    if (size < 2) {
        return 0;
    }
    in = data + 2;
    n = size - 2;
    max = (uint64_t)data[1] * 64;
    split = n * data[0] / 255;

    fuzz_ws_codec_run(&whole, in, n, n, n, max);
    fuzz_ws_codec_run(&other, in, n, split, n, max);
    fuzz_ws_codec_same(&whole, &other);
    free(other.msg);
    if (n <= 2048) {
        fuzz_ws_codec_run(&other, in, n, 1, 1, max);
        fuzz_ws_codec_same(&whole, &other);
        free(other.msg);
    }
    fuzz_ws_codec_sink ^= whole.hash + whole.records + (uint64_t)whole.err;
    free(whole.msg);

    fuzz_ws_codec_encoders((uint16_t)((data[0] << 8) | data[1]), in, n);
    return 0;
}
