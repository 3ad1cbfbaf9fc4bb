/* RTCoInfer wire protocol: UDP datagrams between edge devices and the gateway.
 *
 * Every datagram starts with a 48-byte big-endian header (struct rtci_proto_hdr); the body
 * depends on the type. Authenticated messages end with a 16-byte Poly1305 tag (see auth.h).
 * docs/protocol.md is the normative description (byte layouts, rules, worked example).
 *
 * All decoding is bounds-checked and alignment-free: any byte string given to
 * rtci_proto_decode() yields either a fully validated view or a distinct negative error code.
 * This module depends only on common/, header.h (the header's byte layout) and auth.h. */
#ifndef RTCI_DATAPLANE_PROTOCOL_H
#define RTCI_DATAPLANE_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RTCI_PROTO_MAGIC 0x52544349u /* "RTCI" */
#define RTCI_PROTO_VERSION 1
#define RTCI_PROTO_HDR_LEN 48        /* v1 header length; receivers accept longer (multiple of 4) */
#define RTCI_PROTO_TAG_LEN 16        /* Poly1305 tag */
#define RTCI_PROTO_MAX_DATAGRAM 1472 /* default largest UDP payload (1500 MTU - IPv4 - UDP) */
#define RTCI_PROTO_DEFAULT_FRAG 1400 /* default fragment payload bytes */
#define RTCI_PROTO_IPV4_UDP_LEN 28   /* IPv4 + UDP headers under every datagram */
/* Link bytes a frame takes beyond its payload: header and IPv4/UDP per fragment, one tag. */
#define RTCI_PROTO_FRAG_OVERHEAD (RTCI_PROTO_HDR_LEN + RTCI_PROTO_IPV4_UDP_LEN)
#define RTCI_PROTO_FRAME_OVERHEAD RTCI_PROTO_TAG_LEN
/* Largest fragment payload that still fits a default datagram with the tag. */
#define RTCI_PROTO_MAX_FRAG (RTCI_PROTO_MAX_DATAGRAM - RTCI_PROTO_HDR_LEN - RTCI_PROTO_TAG_LEN)
#define RTCI_PROTO_MAX_TOPK 16
#define RTCI_PROTO_MAX_SETUPS 64

/* Header flags. Unknown flags are ignored on receive and must be sent as zero. */
#define RTCI_PROTO_F_TAG 0x01u /* the datagram ends with a 16-byte tag */
/* Hello only: the device takes a hello-ack of RTCI_PROTO_HELLO_ACK_EXT_LEN bytes (v1 extension
 * that carries the gateway's largest frame). Peers without it get the 16-byte ack. */
#define RTCI_PROTO_F_ACK_EXT 0x02u

enum rtci_proto_type {
	RTCI_PROTO_FRAGMENT = 1,  /* device -> gateway: one fragment of a feature frame */
	RTCI_PROTO_RESULT = 2,    /* gateway -> device: inference result for one frame */
	RTCI_PROTO_COMMAND = 3,   /* gateway -> device: rate-switch command */
	RTCI_PROTO_HELLO = 4,     /* device -> gateway: registration */
	RTCI_PROTO_HELLO_ACK = 5, /* gateway -> device: answer to a hello */
	RTCI_PROTO_REPORT = 6,    /* device -> gateway: device-side sending statistics */
};
#define RTCI_PROTO_TYPE_MAX RTCI_PROTO_REPORT

/* Common header (host byte order once decoded). For messages other than fragments,
 * frag_index = 0, frag_count = 1, frag_size = 0 and frame_len = body length. */
struct rtci_proto_hdr {
	uint8_t version;
	uint8_t type;        /* enum rtci_proto_type */
	uint8_t hdr_len;     /* bytes before the body */
	uint8_t flags;       /* RTCI_PROTO_F_* */
	uint32_t tenant_id;
	uint32_t device_id;
	uint64_t seq;        /* frame seq; result: frame seq; command: command seq;
	                        hello / hello-ack: hello nonce; report: report seq */
	uint16_t setup_id;   /* compression setup the frame was encoded with / device's current */
	uint16_t frag_index;
	uint16_t frag_count;
	uint16_t frag_size;  /* payload bytes of every fragment but the last */
	uint32_t frame_len;  /* bytes of the whole frame */
	uint32_t backlog_bytes; /* device send-queue backlog when sent (hint, not authenticated) */
	uint64_t capture_us;    /* device clock: capture time of the frame, microseconds */
};

enum rtci_proto_result_status {
	RTCI_PROTO_RES_OK = 0,
	RTCI_PROTO_RES_DROPPED_DEADLINE = 1, /* could not meet the deadline; not run */
	RTCI_PROTO_RES_DROPPED_OVERLOAD = 2, /* queue full */
	RTCI_PROTO_RES_DECODE_ERROR = 3,     /* payload did not decode */
};
#define RTCI_PROTO_RES_STATUS_MAX RTCI_PROTO_RES_DECODE_ERROR

struct rtci_proto_topk {
	uint16_t class_id;
	float score;
};

struct rtci_proto_result {
	uint16_t class_id;
	uint8_t status;   /* enum rtci_proto_result_status */
	uint8_t topk_count; /* <= RTCI_PROTO_MAX_TOPK */
	float score;
	uint32_t queue_us;
	uint32_t inference_us;
	uint32_t total_us;
	struct rtci_proto_topk topk[RTCI_PROTO_MAX_TOPK];
};

enum rtci_proto_command_kind {
	RTCI_PROTO_CMD_RATE_SWITCH = 1, /* one setup from a frame on */
	RTCI_PROTO_CMD_PLAN = 2,        /* a setup per frame for the next frames, the last one held */
	RTCI_PROTO_CMD_MOVE = 3,        /* say hello to another gateway (the sender is draining) */
};
#define RTCI_PROTO_MAX_PLAN 8
/* Setup id of a rate-switch or plan step: answer frames on the device with the model's local
 * exit, upload nothing but a probe every 500 ms (docs/protocol.md, "Local answers"). */
#define RTCI_SETUP_LOCAL 0xFFFF

struct rtci_proto_command {
	uint8_t kind;          /* enum rtci_proto_command_kind */
	uint8_t count;         /* plan: 2..RTCI_PROTO_MAX_PLAN setups; decoded rate switch: 1 */
	uint16_t new_setup_id; /* = plan[0] */
	uint64_t apply_from_seq; /* first frame seq to encode with new_setup_id */
	/* plan: frame apply_from_seq + i is encoded with plan[i], frames after the last with
	 * plan[count - 1]; a decoded rate switch has plan[0] = new_setup_id */
	uint16_t plan[RTCI_PROTO_MAX_PLAN];
	uint32_t move_ipv4;    /* move: the gateway to say hello to (host order) ... */
	uint16_t move_port;    /* ... and its UDP port */
};

struct rtci_proto_hello {
	uint32_t model_id;
	uint32_t fps_milli;     /* frames per second x 1000 */
	uint32_t deadline_us;   /* end-to-end deadline per frame */
	uint16_t max_frag_size; /* largest fragment payload the device sends */
	uint16_t n_setups;      /* <= RTCI_PROTO_MAX_SETUPS */
	uint16_t setups[RTCI_PROTO_MAX_SETUPS];
	bool ack_ext;           /* encode: set RTCI_PROTO_F_ACK_EXT; decode: it was set */
};

enum rtci_proto_hello_status {
	RTCI_PROTO_HELLO_ACCEPTED = 0,
	RTCI_PROTO_HELLO_REJECTED_MODEL = 1,
	RTCI_PROTO_HELLO_REJECTED_QUOTA = 2,
	RTCI_PROTO_HELLO_BUSY = 3,      /* gateway at capacity: hello again after retry_after_ms */
	RTCI_PROTO_HELLO_REDIRECT = 4,  /* another gateway is the device's home: hello there */
};
#define RTCI_PROTO_HELLO_STATUS_MAX RTCI_PROTO_HELLO_REDIRECT

struct rtci_proto_hello_ack {
	uint8_t status;           /* enum rtci_proto_hello_status */
	uint16_t initial_setup_id;
	uint16_t max_frag_size;   /* largest fragment payload the gateway accepts */
	uint16_t retry_after_ms;  /* busy: wait at least this long before the next hello; else 0 */
	uint64_t min_frame_seq;   /* device must use frame seqs >= this (not in a redirect) */
	uint32_t redirect_ipv4;   /* redirect: the home gateway (host order) ... */
	uint16_t redirect_port;   /* ... and its UDP port (bytes 8-13 in place of min_frame_seq) */
	uint32_t max_frame_len;   /* extended ack (bytes 16-19): largest frame the gateway takes;
				     0: not sent (a 16-byte ack, the limit unknown) */
};

struct rtci_proto_report {
	uint64_t bytes_sent;      /* since the device started */
	uint32_t frames_sent;
	uint32_t frames_dropped;  /* dropped on the device (queue full, too late) */
	uint64_t send_rate_bps;   /* measured over the last interval */
	uint32_t backlog_bytes;
	uint32_t interval_us;
};

/* Body lengths (fixed parts). */
#define RTCI_PROTO_RESULT_LEN 20
#define RTCI_PROTO_TOPK_ENTRY_LEN 8
#define RTCI_PROTO_COMMAND_LEN 12 /* a plan adds 2 bytes per setup after the first */
#define RTCI_PROTO_HELLO_LEN 16
#define RTCI_PROTO_HELLO_ACK_LEN 16
#define RTCI_PROTO_HELLO_ACK_EXT_LEN 20 /* to a hello with RTCI_PROTO_F_ACK_EXT */
#define RTCI_PROTO_REPORT_LEN 32

/* A decoded datagram. Pointers refer into the caller's datagram (no copies). */
struct rtci_proto_msg {
	struct rtci_proto_hdr hdr;
	const uint8_t *datagram;  /* start of the datagram */
	size_t datagram_len;
	const uint8_t *body;      /* fragment payload or message body */
	size_t body_len;
	const uint8_t *tag;       /* RTCI_PROTO_TAG_LEN bytes, or NULL when the datagram has none */
	union {
		struct rtci_proto_result result;
		struct rtci_proto_command command;
		struct rtci_proto_hello hello;
		struct rtci_proto_hello_ack hello_ack;
		struct rtci_proto_report report;
	} u;
};

/* Decodes and validates one datagram. Returns 0 or a negated RTCI_ERR_PROTO_* code.
 * Fragments: the tag is present exactly on the last fragment (frag_index == frag_count - 1).
 * Other types always carry a tag. The tag itself is not verified here (see auth.h). */
int rtci_proto_decode(const uint8_t *buf, size_t len, struct rtci_proto_msg *out);

/* Header fields to encode. Encoders set version, hdr_len and flags themselves. */
struct rtci_proto_frame_info {
	uint32_t tenant_id;
	uint32_t device_id;
	uint64_t seq;
	uint16_t setup_id;
	uint32_t backlog_bytes;
	uint64_t capture_us;
};

/* Message encoders: write a complete, authenticated datagram into buf (cap bytes) using the
 * 32-byte device key, and return its length, or -ENOSPC / -EINVAL / a negated project code.
 * info->seq is the message's sequence (see struct rtci_proto_hdr). */
long rtci_proto_encode_result(uint8_t *buf, size_t cap, const struct rtci_proto_frame_info *info,
			      const struct rtci_proto_result *res, const uint8_t key[32]);
long rtci_proto_encode_command(uint8_t *buf, size_t cap, const struct rtci_proto_frame_info *info,
			       const struct rtci_proto_command *cmd, const uint8_t key[32]);
long rtci_proto_encode_hello(uint8_t *buf, size_t cap, const struct rtci_proto_frame_info *info,
			     const struct rtci_proto_hello *hello, const uint8_t key[32]);
long rtci_proto_encode_hello_ack(uint8_t *buf, size_t cap, const struct rtci_proto_frame_info *info,
				 const struct rtci_proto_hello_ack *ack, const uint8_t key[32]);
long rtci_proto_encode_report(uint8_t *buf, size_t cap, const struct rtci_proto_frame_info *info,
			      const struct rtci_proto_report *rep, const uint8_t key[32]);

/* Writes one fragment datagram without computing anything cryptographic: tag (may be NULL
 * unless this is the last fragment) is copied verbatim. Used by rtci_proto_fragment() and by
 * tests that need deliberately inconsistent fragments. Returns the datagram length or error. */
long rtci_proto_encode_fragment(uint8_t *buf, size_t cap, const struct rtci_proto_frame_info *info,
				uint16_t frag_index, uint16_t frag_count, uint16_t frag_size,
				uint32_t frame_len, const uint8_t *payload, size_t payload_len,
				const uint8_t *tag);

/* Number of fragments a frame of frame_len bytes needs with frag_size-byte fragments,
 * or a negated error if it is not representable (frame_len 0, too many fragments, ...). */
long rtci_proto_fragment_count(size_t frame_len, uint16_t frag_size);

/* One output datagram buffer for rtci_proto_fragment(). */
struct rtci_proto_datagram {
	uint8_t *buf;
	size_t cap;
	size_t len; /* set by rtci_proto_fragment */
};

/* Splits a frame into authenticated fragment datagrams: computes the frame MAC with the device
 * key, writes fragment i into out[i] (the last carries the tag). n_out is the number of
 * buffers available. Returns the number of datagrams written or a negated error
 * (-ENOSPC if n_out or a buffer is too small). */
long rtci_proto_fragment(const struct rtci_proto_frame_info *info, const uint8_t *frame,
			 size_t frame_len, uint16_t frag_size, const uint8_t key[32],
			 struct rtci_proto_datagram *out, size_t n_out);

/* Overwrites the (unauthenticated) backlog hint in an encoded datagram, e.g. just before it
 * is handed to the socket. Returns 0 or -EINVAL if buf is not a datagram header. */
int rtci_proto_set_backlog(uint8_t *buf, size_t len, uint32_t backlog_bytes);

/* Name of a message type ("fragment", ...), or "unknown". */
const char *rtci_proto_type_name(unsigned type);

#endif
