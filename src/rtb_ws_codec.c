/*
 * rtb_ws_codec.c - RFC 6455 WebSocket frame codec (server side).
 *
 * A byte-at-a-time state machine over client frames. Header bytes are
 * consumed one by one into the parser struct, so a call may stop after any
 * byte; payload bytes of data frames are unmasked where they lie and handed
 * back as chunks, payload bytes of control frames are collected in the
 * parser. Nothing is allocated. See rtb_ws_codec.h for the contracts.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rtb_ws_codec.h"

/* Where the next byte of a frame belongs. */
enum {
    WS_CODEC_ST_HDR0 = 0, /* FIN, RSV1-3, opcode */
    WS_CODEC_ST_HDR1,     /* MASK, 7-bit length */
    WS_CODEC_ST_EXTLEN,   /* 16- or 64-bit extended length, hdr_need bytes left */
    WS_CODEC_ST_MASK,     /* masking key, hdr_need bytes left */
    WS_CODEC_ST_PAYLOAD   /* payload, payload_left bytes left */
};

/* Control opcodes have the high bit of the opcode nibble set (RFC 6455 5.5). */
static int ws_codec_is_control(unsigned int opcode)
{
    return (opcode & 0x8u) != 0;
}

/*
 * Start (or restart) UTF-8 validation. Kept separate so the parser and
 * rtb_ws_utf8_valid share one definition of the initial state.
 */
static void ws_codec_utf8_reset(rtb_ws_utf8_t *u)
{
    u->need = 0;
    u->lo = 0x80;
    u->hi = 0xBF;
}

/*
 * Feed n bytes to the incremental UTF-8 validator. Returns n if the bytes so
 * far are a valid prefix of UTF-8, else the index of the first byte that makes
 * that impossible (the state is then meaningless). The allowed range of the second byte is narrowed
 * after E0, ED, F0 and F4 so that overlong forms, surrogates and code points above U+10FFFF are
 * refused on the byte where they become certain (Unicode table 3-7).
 */
static size_t ws_codec_utf8_feed(rtb_ws_utf8_t *u, const unsigned char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char b = s[i];

        if (u->need > 0) {
            if (b < u->lo || b > u->hi) {
                return i;
            }
            u->need--;
            u->lo = 0x80;
            u->hi = 0xBF;
            continue;
        }
        if (b < 0x80) {
            continue;
        }
        if (b >= 0xC2 && b <= 0xDF) {
            u->need = 1;
        } else if (b == 0xE0) {
            u->need = 2;
            u->lo = 0xA0; /* below: overlong */
        } else if (b == 0xED) {
            u->need = 2;
            u->hi = 0x9F; /* above: surrogates U+D800-U+DFFF */
        } else if (b >= 0xE1 && b <= 0xEF) {
            u->need = 2;
        } else if (b == 0xF0) {
            u->need = 3;
            u->lo = 0x90; /* below: overlong */
        } else if (b >= 0xF1 && b <= 0xF3) {
            u->need = 3;
        } else if (b == 0xF4) {
            u->need = 3;
            u->hi = 0x8F; /* above: beyond U+10FFFF */
        } else {
            return i; /* 80-C1 as a lead byte, F5-FF */
        }
    }
    return n;
}

int rtb_ws_utf8_valid(const unsigned char *s, size_t n)
{
    rtb_ws_utf8_t u;

    if (n == 0) {
        return 1;
    }
    if (s == NULL) {
        return 0;
    }
    ws_codec_utf8_reset(&u);
    return ws_codec_utf8_feed(&u, s, n) == n && u.need == 0;
}

int rtb_ws_close_code_valid(uint16_t code)
{
    /* 1004 is reserved; 1005, 1006 and 1015 must never be sent; 1012-1014
     * are registered with IANA; 3000-3999 registered, 4000-4999 private. */
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

int rtb_ws_error_close_code(int err)
{
    if (err >= 0) {
        return 0;
    }
    switch (err) {
    case RTB_WS_ERR_UNMASKED:
    case RTB_WS_ERR_RSV:
    case RTB_WS_ERR_OPCODE:
    case RTB_WS_ERR_CONTROL_TOO_LONG:
    case RTB_WS_ERR_CONTROL_FRAGMENTED:
    case RTB_WS_ERR_UNEXPECTED_CONT:
    case RTB_WS_ERR_EXPECTED_CONT:
    case RTB_WS_ERR_LENGTH_TOP_BIT:
    case RTB_WS_ERR_CLOSE_PAYLOAD_1:
    case RTB_WS_ERR_CLOSE_CODE:
        return 1002;
    case RTB_WS_ERR_INVALID_UTF8:
    case RTB_WS_ERR_CLOSE_REASON_UTF8:
        return 1007;
    case RTB_WS_ERR_MESSAGE_TOO_BIG:
        return 1009;
    default:
        return 1011;
    }
}

const char *rtb_ws_strerror(int err)
{
    switch (err) {
    case RTB_WS_ERR_ARGS:
        return "invalid arguments";
    case RTB_WS_ERR_UNMASKED:
        return "client frame is not masked";
    case RTB_WS_ERR_RSV:
        return "reserved bits set";
    case RTB_WS_ERR_OPCODE:
        return "reserved opcode";
    case RTB_WS_ERR_CONTROL_TOO_LONG:
        return "control frame payload longer than 125 bytes";
    case RTB_WS_ERR_CONTROL_FRAGMENTED:
        return "fragmented control frame";
    case RTB_WS_ERR_UNEXPECTED_CONT:
        return "continuation frame without a message";
    case RTB_WS_ERR_EXPECTED_CONT:
        return "new data frame inside a fragmented message";
    case RTB_WS_ERR_LENGTH_TOP_BIT:
        return "64-bit payload length has its top bit set";
    case RTB_WS_ERR_MESSAGE_TOO_BIG:
        return "message too big";
    case RTB_WS_ERR_INVALID_UTF8:
        return "text message is not valid UTF-8";
    case RTB_WS_ERR_CLOSE_PAYLOAD_1:
        return "close frame payload of 1 byte";
    case RTB_WS_ERR_CLOSE_CODE:
        return "invalid close code";
    case RTB_WS_ERR_CLOSE_REASON_UTF8:
        return "close reason is not valid UTF-8";
    default:
        return err >= 0 ? "no error" : "unknown error";
    }
}

void rtb_ws_parser_init(rtb_ws_parser_t *p, uint64_t max_message_bytes)
{
    *p = (rtb_ws_parser_t){0};
    p->max_message_bytes = max_message_bytes;
    p->state = WS_CODEC_ST_HDR0;
    ws_codec_utf8_reset(&p->utf8);
}

/*
 * First header byte: FIN, RSV1-3 and the opcode. Checks everything that this
 * byte alone decides, including whether the opcode fits the message state,
 * and opens a new message for TEXT/BINARY. Returns 0 or an rtb_ws_err_t.
 */
static int ws_codec_header0(rtb_ws_parser_t *p, unsigned char b)
{
    unsigned int opcode = b & 0x0Fu;

    p->frame_fin = (b >> 7) & 1u;
    p->frame_opcode = opcode;
    if (b & 0x70u) {
        return RTB_WS_ERR_RSV;
    }
    switch (opcode) {
    case RTB_WS_OP_CONTINUATION:
        if (p->message_opcode == 0) {
            return RTB_WS_ERR_UNEXPECTED_CONT;
        }
        return 0;
    case RTB_WS_OP_TEXT:
    case RTB_WS_OP_BINARY:
        if (p->message_opcode != 0) {
            return RTB_WS_ERR_EXPECTED_CONT;
        }
        p->message_opcode = opcode;
        p->message_first = 1;
        p->message_bytes = 0;
        ws_codec_utf8_reset(&p->utf8);
        return 0;
    case RTB_WS_OP_CLOSE:
    case RTB_WS_OP_PING:
    case RTB_WS_OP_PONG:
        if (!p->frame_fin) {
            return RTB_WS_ERR_CONTROL_FRAGMENTED;
        }
        return 0;
    default:
        return RTB_WS_ERR_OPCODE;
    }
}

/*
 * Called once the frame's payload length is known, before any payload byte:
 * this is the earliest point a too-big message can be refused, so a client
 * cannot make the server wait for (or buffer) bytes it will reject anyway.
 */
static int ws_codec_check_size(rtb_ws_parser_t *p)
{
    uint64_t max = p->max_message_bytes;

    if (ws_codec_is_control(p->frame_opcode) || max == 0) {
        return 0;
    }
    if (p->payload_left > max - p->message_bytes) {
        return RTB_WS_ERR_MESSAGE_TOO_BIG;
    }
    p->message_bytes += p->payload_left;
    return 0;
}

/* Second header byte: MASK bit and 7-bit length. Returns 0 or an rtb_ws_err_t. */
static int ws_codec_header1(rtb_ws_parser_t *p, unsigned char b)
{
    unsigned int len7 = b & 0x7Fu;

    if (!(b & 0x80u)) {
        return RTB_WS_ERR_UNMASKED;
    }
    if (ws_codec_is_control(p->frame_opcode) && len7 > RTB_WS_MAX_CONTROL_PAYLOAD) {
        return RTB_WS_ERR_CONTROL_TOO_LONG;
    }
    p->payload_left = 0;
    if (len7 == 126) {
        p->state = WS_CODEC_ST_EXTLEN;
        p->hdr_need = 2;
        return 0;
    }
    if (len7 == 127) {
        p->state = WS_CODEC_ST_EXTLEN;
        p->hdr_need = 8;
        return 0;
    }
    p->payload_left = len7;
    p->state = WS_CODEC_ST_MASK;
    p->hdr_need = 4;
    return ws_codec_check_size(p);
}

/*
 * One byte of the extended length, most significant first. Non-minimal
 * encodings are accepted (RFC 6455 5.2 says "must" for the sender but a
 * receiver gains nothing by refusing them); the 64-bit top bit is refused on
 * its first byte. Returns 0 or an rtb_ws_err_t.
 */
static int ws_codec_extlen(rtb_ws_parser_t *p, unsigned char b)
{
    if (p->hdr_need == 8 && (b & 0x80u)) {
        return RTB_WS_ERR_LENGTH_TOP_BIT;
    }
    p->payload_left = (p->payload_left << 8) | b;
    if (--p->hdr_need > 0) {
        return 0;
    }
    p->state = WS_CODEC_ST_MASK;
    p->hdr_need = 4;
    return ws_codec_check_size(p);
}

/*
 * A control frame's payload is complete: validate it and fill ev. For close,
 * the status code and reason are checked here (RFC 6455 5.5.1, 7.4).
 * Returns the event type or an rtb_ws_err_t.
 */
static int ws_codec_finish_control(rtb_ws_parser_t *p, rtb_ws_event_t *ev)
{
    p->state = WS_CODEC_ST_HDR0;
    ev->opcode = (int)p->frame_opcode;
    ev->flags = 0;
    ev->data = p->control;
    ev->len = p->control_len;
    ev->close_code = 0;
    ev->reason = p->control;
    ev->reason_len = 0;

    switch (p->frame_opcode) {
    case RTB_WS_OP_PING:
        ev->type = RTB_WS_EV_PING;
        return ev->type;
    case RTB_WS_OP_PONG:
        ev->type = RTB_WS_EV_PONG;
        return ev->type;
    default:
        break;
    }
    if (p->control_len == 1) {
        return RTB_WS_ERR_CLOSE_PAYLOAD_1;
    }
    if (p->control_len >= 2) {
        uint16_t code = (uint16_t)((p->control[0] << 8) | p->control[1]);

        if (!rtb_ws_close_code_valid(code)) {
            return RTB_WS_ERR_CLOSE_CODE;
        }
        if (!rtb_ws_utf8_valid(p->control + 2, p->control_len - 2)) {
            return RTB_WS_ERR_CLOSE_REASON_UTF8;
        }
        ev->close_code = code;
        ev->reason = p->control + 2;
        ev->reason_len = p->control_len - 2;
    }
    ev->type = RTB_WS_EV_CLOSE;
    return ev->type;
}

/*
 * n payload bytes of a data frame are at data (n may be 0 for an empty
 * frame). Unmask them in place, validate text, and fill ev; *used is set to
 * the bytes taken, which on a UTF-8 error stops just after the bad byte so
 * the error position does not depend on how the input was split. Returns
 * RTB_WS_EV_DATA, 0 when there is nothing worth reporting (an empty frame in
 * the middle of a message), or an rtb_ws_err_t.
 */
static int ws_codec_data_chunk(rtb_ws_parser_t *p, unsigned char *data, size_t n, size_t *used,
                               rtb_ws_event_t *ev)
{
    unsigned int flags = 0;
    unsigned int m = p->mask_pos;
    size_t i;

    *used = n;
    for (i = 0; i < n; i++) {
        data[i] ^= p->mask[m];
        m = (m + 1) & 3u;
    }
    p->mask_pos = m;
    p->payload_left -= n;

    if (p->message_opcode == RTB_WS_OP_TEXT) {
        size_t ok = ws_codec_utf8_feed(&p->utf8, data, n);

        if (ok < n) {
            *used = ok + 1;
            return RTB_WS_ERR_INVALID_UTF8;
        }
    }
    if (p->message_first) {
        flags |= RTB_WS_FLAG_FIRST;
    }
    if (p->payload_left == 0) {
        p->state = WS_CODEC_ST_HDR0;
        if (p->frame_fin) {
            if (p->message_opcode == RTB_WS_OP_TEXT && p->utf8.need != 0) {
                return RTB_WS_ERR_INVALID_UTF8; /* truncated sequence at the end */
            }
            flags |= RTB_WS_FLAG_LAST;
        }
    }
    if (n == 0 && flags == 0) {
        return 0;
    }

    ev->type = RTB_WS_EV_DATA;
    ev->opcode = (int)p->message_opcode;
    ev->flags = flags;
    ev->data = data;
    ev->len = n;
    ev->close_code = 0;
    ev->reason = NULL;
    ev->reason_len = 0;

    p->message_first = 0;
    if (flags & RTB_WS_FLAG_LAST) {
        p->message_opcode = 0;
        p->message_bytes = 0;
        ws_codec_utf8_reset(&p->utf8);
    }
    return RTB_WS_EV_DATA;
}

int rtb_ws_parse(rtb_ws_parser_t *p, unsigned char *buf, size_t len, size_t *consumed,
                 rtb_ws_event_t *ev)
{
    size_t pos = 0;
    int rc = 0;

    if (consumed != NULL) {
        *consumed = 0;
    }
    if (p == NULL || consumed == NULL || ev == NULL || (buf == NULL && len > 0)) {
        return RTB_WS_ERR_ARGS;
    }
    if (p->error) {
        return p->error;
    }

    for (;;) {
        switch (p->state) {
        case WS_CODEC_ST_HDR0:
            if (pos == len) {
                goto need_more;
            }
            rc = ws_codec_header0(p, buf[pos++]);
            if (rc < 0) {
                goto fail;
            }
            p->state = WS_CODEC_ST_HDR1;
            break;

        case WS_CODEC_ST_HDR1:
            if (pos == len) {
                goto need_more;
            }
            rc = ws_codec_header1(p, buf[pos++]);
            if (rc < 0) {
                goto fail;
            }
            break;

        case WS_CODEC_ST_EXTLEN:
            if (pos == len) {
                goto need_more;
            }
            rc = ws_codec_extlen(p, buf[pos++]);
            if (rc < 0) {
                goto fail;
            }
            break;

        case WS_CODEC_ST_MASK:
            if (pos == len) {
                goto need_more;
            }
            p->mask[4 - p->hdr_need] = buf[pos++];
            if (--p->hdr_need > 0) {
                break;
            }
            p->mask_pos = 0;
            p->control_len = 0;
            p->state = WS_CODEC_ST_PAYLOAD;
            if (p->payload_left > 0) {
                break;
            }
            /* Empty payload: the frame ends here, report it now rather than
             * on the next call, which might never come. */
            if (ws_codec_is_control(p->frame_opcode)) {
                rc = ws_codec_finish_control(p, ev);
            } else {
                size_t used;

                rc = ws_codec_data_chunk(p, buf + pos, 0, &used, ev);
            }
            if (rc != 0) {
                goto done;
            }
            break;

        case WS_CODEC_ST_PAYLOAD:
            if (pos == len) {
                goto need_more;
            }
            if (ws_codec_is_control(p->frame_opcode)) {
                /* At most 125 bytes, copied so the event outlives buf. */
                while (pos < len && p->payload_left > 0) {
                    p->control[p->control_len++] = buf[pos++] ^ p->mask[p->mask_pos];
                    p->mask_pos = (p->mask_pos + 1) & 3u;
                    p->payload_left--;
                }
                if (p->payload_left > 0) {
                    goto need_more;
                }
                rc = ws_codec_finish_control(p, ev);
                goto done;
            } else {
                size_t n = len - pos;
                size_t used;

                if ((uint64_t)n > p->payload_left) {
                    n = (size_t)p->payload_left;
                }
                rc = ws_codec_data_chunk(p, buf + pos, n, &used, ev);
                pos += used;
                goto done;
            }

        default:
            rc = RTB_WS_ERR_ARGS; /* corrupted parser */
            goto fail;
        }
    }

need_more:
    *consumed = pos;
    return 0;

done:
    if (rc < 0) {
        goto fail;
    }
    *consumed = pos;
    return rc;

fail:
    p->error = rc;
    *consumed = pos;
    return rc;
}

size_t rtb_ws_frame_header(unsigned char out[RTB_WS_MAX_HEADER], int opcode, int fin,
                           uint64_t payload_len)
{
    switch (opcode) {
    case RTB_WS_OP_CONTINUATION:
    case RTB_WS_OP_TEXT:
    case RTB_WS_OP_BINARY:
        break;
    case RTB_WS_OP_CLOSE:
    case RTB_WS_OP_PING:
    case RTB_WS_OP_PONG:
        if (!fin || payload_len > RTB_WS_MAX_CONTROL_PAYLOAD) {
            return 0;
        }
        break;
    default:
        return 0;
    }
    if (payload_len >> 63) {
        return 0;
    }

    out[0] = (unsigned char)((fin ? 0x80u : 0u) | (unsigned int)opcode);
    if (payload_len < 126) {
        out[1] = (unsigned char)payload_len;
        return 2;
    }
    if (payload_len <= 0xFFFFu) {
        out[1] = 126;
        out[2] = (unsigned char)(payload_len >> 8);
        out[3] = (unsigned char)payload_len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++) {
        out[2 + i] = (unsigned char)(payload_len >> (56 - 8 * i));
    }
    return 10;
}

size_t rtb_ws_close_payload(unsigned char out[RTB_WS_MAX_CONTROL_PAYLOAD], uint16_t code,
                            const char *reason)
{
    size_t rlen = 0;

    if (code == 0) {
        return 0;
    }
    out[0] = (unsigned char)(code >> 8);
    out[1] = (unsigned char)code;
    if (reason != NULL) {
        rlen = strlen(reason);
        if (rlen > RTB_WS_MAX_CLOSE_REASON) {
            /* Back off to the start of the character that straddles the cut. */
            rlen = RTB_WS_MAX_CLOSE_REASON;
            while (rlen > 0 && ((unsigned char)reason[rlen] & 0xC0u) == 0x80u) {
                rlen--;
            }
        }
        if (!rtb_ws_utf8_valid((const unsigned char *)reason, rlen)) {
            rlen = 0;
        }
        for (size_t i = 0; i < rlen; i++) {
            out[2 + i] = (unsigned char)reason[i];
        }
    }
    return 2 + rlen;
}
