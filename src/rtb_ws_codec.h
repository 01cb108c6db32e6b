/*
 * rtb_ws_codec.h - RFC 6455 WebSocket frame codec (server side).
 *
 * Pure C11: no httpd or APR headers, no allocation, no I/O. The parser turns
 * bytes received from a client into events; the encoder helpers build the
 * (never masked) frames a server sends. The parser can be suspended at any
 * byte boundary: feed it whatever arrived, act on the events, feed it more.
 *
 * Typical loop:
 *
 *     size_t off = 0, used;
 *     rtb_ws_event_t ev;
 *     for (;;) {
 *         int rc = rtb_ws_parse(&p, buf + off, len - off, &used, &ev);
 *         off += used;
 *         if (rc < 0) { send close rtb_ws_error_close_code(rc); break; }
 *         if (rc == 0) break;          (all of buf used; read more)
 *         handle(&ev);                 (ev points into buf or into p)
 *     }
 */
#ifndef RTB_WS_CODEC_H
#define RTB_WS_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* Frame opcodes (RFC 6455 section 5.2). */
typedef enum {
    RTB_WS_OP_CONTINUATION = 0x0,
    RTB_WS_OP_TEXT = 0x1,
    RTB_WS_OP_BINARY = 0x2,
    RTB_WS_OP_CLOSE = 0x8,
    RTB_WS_OP_PING = 0x9,
    RTB_WS_OP_PONG = 0xA
} rtb_ws_opcode_t;

/* Errors returned by rtb_ws_parse; all negative. Each names one rule. */
typedef enum {
    RTB_WS_ERR_ARGS = -1,               /* NULL pointer where one is required */
    RTB_WS_ERR_UNMASKED = -2,           /* client frame without the MASK bit */
    RTB_WS_ERR_RSV = -3,                /* RSV1, RSV2 or RSV3 set; no extension negotiated */
    RTB_WS_ERR_OPCODE = -4,             /* reserved opcode 0x3-0x7 or 0xB-0xF */
    RTB_WS_ERR_CONTROL_TOO_LONG = -5,   /* control frame payload longer than 125 */
    RTB_WS_ERR_CONTROL_FRAGMENTED = -6, /* control frame with FIN clear */
    RTB_WS_ERR_UNEXPECTED_CONT = -7,    /* continuation frame with no message open */
    RTB_WS_ERR_EXPECTED_CONT = -8,      /* text/binary frame while a message is open */
    RTB_WS_ERR_LENGTH_TOP_BIT = -9,     /* 64-bit payload length with the top bit set */
    RTB_WS_ERR_MESSAGE_TOO_BIG = -10,   /* message would exceed max_message_bytes */
    RTB_WS_ERR_INVALID_UTF8 = -11,      /* text message is not valid UTF-8 */
    RTB_WS_ERR_CLOSE_PAYLOAD_1 = -12,   /* close frame with a 1-byte payload */
    RTB_WS_ERR_CLOSE_CODE = -13,        /* close code not allowed on the wire */
    RTB_WS_ERR_CLOSE_REASON_UTF8 = -14  /* close reason is not valid UTF-8 */
} rtb_ws_err_t;

/* What rtb_ws_parse produced; also its positive return value. */
typedef enum {
    RTB_WS_EV_DATA = 1, /* a chunk of a text or binary message */
    RTB_WS_EV_PING = 2, /* a complete ping frame */
    RTB_WS_EV_PONG = 3, /* a complete pong frame */
    RTB_WS_EV_CLOSE = 4 /* a complete, validated close frame */
} rtb_ws_event_type_t;

/* Flags of a RTB_WS_EV_DATA event. */
#define RTB_WS_FLAG_FIRST 0x1u /* first chunk of a message */
#define RTB_WS_FLAG_LAST 0x2u  /* last chunk of a message; the message is complete */

/* Largest payload of a control frame, and of the close reason inside it. */
#define RTB_WS_MAX_CONTROL_PAYLOAD 125
#define RTB_WS_MAX_CLOSE_REASON 123

/* Longest frame header rtb_ws_frame_header writes. */
#define RTB_WS_MAX_HEADER 10

typedef struct {
    int type;           /* rtb_ws_event_type_t */
    int opcode;         /* DATA: the message's opcode (TEXT or BINARY), also for the chunks of
                           continuation frames; otherwise CLOSE, PING or PONG */
    unsigned int flags; /* DATA: RTB_WS_FLAG_FIRST / RTB_WS_FLAG_LAST; otherwise 0 */
    const unsigned char *data;   /* DATA: unmasked bytes inside the caller's buffer;
                                    control: the whole payload, inside the parser */
    size_t len;                  /* bytes at data; a DATA chunk may be empty */
    uint16_t close_code;         /* CLOSE: the status code, or 0 when the payload is empty */
    const unsigned char *reason; /* CLOSE: UTF-8 reason inside the parser, not terminated */
    size_t reason_len;           /* CLOSE: bytes at reason (0 when none) */
} rtb_ws_event_t;

/* Incremental UTF-8 validation state; fields private to rtb_ws_codec.c. */
typedef struct {
    unsigned char need; /* continuation bytes the open sequence still needs */
    unsigned char lo;   /* smallest allowed next byte while need > 0 */
    unsigned char hi;   /* largest allowed next byte while need > 0 */
} rtb_ws_utf8_t;

/*
 * Parser state. Allocate it anywhere (stack, pool, struct member) and call
 * rtb_ws_parser_init; the fields are private to rtb_ws_codec.c. Do not copy a
 * parser while an event from it is being used: control events point inside it.
 */
typedef struct {
    uint64_t max_message_bytes;  /* 0: no limit */
    uint64_t message_bytes;      /* bytes announced so far by the open message's frames */
    uint64_t payload_left;       /* payload bytes of the current frame not yet seen */
    int state;                   /* where in a frame the next byte belongs */
    int error;                   /* sticky: once set, every call returns it */
    unsigned int frame_opcode;   /* opcode of the current frame */
    unsigned int frame_fin;      /* FIN bit of the current frame */
    unsigned int message_opcode; /* TEXT or BINARY while a message is open, else 0 */
    unsigned int message_first;  /* the next chunk is the first of its message */
    unsigned int hdr_need;       /* extended length or mask bytes still to read */
    unsigned int mask_pos;       /* index into mask of the next payload byte */
    unsigned char mask[4];
    rtb_ws_utf8_t utf8; /* validation state of the open text message */
    size_t control_len; /* bytes of control payload received */
    unsigned char control[RTB_WS_MAX_CONTROL_PAYLOAD];
} rtb_ws_parser_t;

/*
 * Prepare p to parse a new client-to-server stream. max_message_bytes caps the
 * total payload of one data message, summed over its fragments; 0 means no
 * limit. Cannot fail. p is owned by the caller; the codec keeps no pointer to it.
 */
void rtb_ws_parser_init(rtb_ws_parser_t *p, uint64_t max_message_bytes);

/*
 * Parse client frames from buf[0..len). Payload bytes of data frames are
 * unmasked IN PLACE in buf, which is why buf is not const.
 *
 * Returns:
 *   > 0  an event is ready in *ev (the value is ev->type). *consumed says how
 *        many bytes of buf were used; call again with buf + *consumed to go on.
 *        A DATA event's data points into buf and is valid while buf is; a
 *        control event's data and reason point into p and are valid until the
 *        next call with p.
 *   0    all of buf was used (*consumed == len) and no event is complete yet;
 *        call again when more bytes arrive. buf may be reused after this.
 *   < 0  an rtb_ws_err_t. The stream is broken: send a close frame with
 *        rtb_ws_error_close_code(rc) and stop reading. The error is sticky;
 *        later calls return it again. *consumed is the bytes used up to and
 *        including the offending byte.
 *
 * Text messages are checked as valid UTF-8 incrementally, so a chunk is only
 * delivered once it is known not to contain invalid bytes; a sequence split
 * across chunks or fragments is fine, one left open at the end of the message
 * is not. A message that would exceed max_message_bytes fails as soon as a
 * frame header announces it, before its payload arrives. Control frames may
 * arrive between the fragments of a message. On an error, chunks already
 * delivered for the message that failed must be discarded by the caller.
 */
int rtb_ws_parse(rtb_ws_parser_t *p, unsigned char *buf, size_t len, size_t *consumed,
                 rtb_ws_event_t *ev);

/*
 * Close status code to send for a parse error: 1002 protocol error, 1007
 * invalid UTF-8, 1009 message too big, 1011 for anything else negative.
 * Returns 0 for err >= 0 (not an error).
 */
int rtb_ws_error_close_code(int err);

/*
 * Short constant English description of err, for logs. Never NULL.
 */
const char *rtb_ws_strerror(int err);

/*
 * 1 if a peer may send code in a close frame (RFC 6455 section 7.4 and the
 * IANA registry): 1000-1003, 1007-1014, 3000-4999. 0 otherwise.
 */
int rtb_ws_close_code_valid(uint16_t code);

/*
 * 1 if s[0..n) is complete, valid UTF-8: no overlong forms, no surrogates
 * (U+D800-U+DFFF), nothing above U+10FFFF, no truncated sequence. 0 otherwise.
 * n == 0 is valid (s may then be NULL).
 */
int rtb_ws_utf8_valid(const unsigned char *s, size_t n);

/*
 * Write the header of an unmasked server frame into out and return its length
 * (2, 4 or 10). The payload follows it unchanged. Returns 0, writing nothing,
 * if the opcode is not one of rtb_ws_opcode_t, payload_len has its top bit
 * set, or a control frame is given FIN 0 or more than 125 bytes.
 */
size_t rtb_ws_frame_header(unsigned char out[RTB_WS_MAX_HEADER], int opcode, int fin,
                           uint64_t payload_len);

/*
 * Write a close frame payload (code in network order, then reason) into out
 * and return its length. reason may be NULL; it is cut at a UTF-8 character
 * boundary to fit in RTB_WS_MAX_CLOSE_REASON bytes, and left out if it is not
 * valid UTF-8. code 0 means "no status": the payload is empty and the reason
 * is ignored. The caller is responsible for code being valid to send.
 */
size_t rtb_ws_close_payload(unsigned char out[RTB_WS_MAX_CONTROL_PAYLOAD], uint16_t code,
                            const char *reason);

#endif /* RTB_WS_CODEC_H */
