/* Frame reassembly: one table per RX queue, single-threaded (like DPDK's ip_frag tables).
 *
 * Fragments are keyed by (tenant, device, frame seq) and may arrive in any order. Each
 * fragment's payload is copied once, to offset frag_index x frag_size of a contiguous frame
 * buffer taken from a preallocated arena; a completed frame is handed to the caller, who
 * releases it. Given the device key, the table verifies the frame's MAC when the frame
 * completes and hands out only frames that authenticated. Without a key, the caller
 * verifies (rtci_auth_verify on frame->hdr, data, len, tag).
 *
 * Everything is bounded: frames in flight (total, per tenant, per device — newest wins),
 * buffer bytes (total, per tenant), tenants. Time is passed in by the caller in any unit
 * (the TTL uses the same unit); nothing here reads a clock. Every rejected fragment and
 * every discarded frame is counted by reason. No allocation after create. */
#ifndef RTCI_DATAPLANE_REASSEMBLY_H
#define RTCI_DATAPLANE_REASSEMBLY_H

#include <stddef.h>
#include <stdint.h>

#include "dataplane/protocol.h"

struct rtci_reasm;

/* Per-tenant limits. Buffer bytes count what a frame really reserves in the arena
 * (header + bitmap + data, rounded up to the arena's block size) and stay charged until the
 * caller releases the completed frame. */
struct rtci_reasm_quota {
	uint32_t max_frames; /* frames in flight */
	uint64_t max_bytes;  /* arena bytes held */
};

/* Fills *q for a tenant; returns 0, or a negative value to refuse the tenant's traffic.
 * Called once per new frame, so quotas may change at run time. */
typedef int (*rtci_reasm_quota_fn)(void *ctx, uint32_t tenant_id, struct rtci_reasm_quota *q);

/* Why an unfinished frame was discarded. */
enum rtci_reasm_discard {
	RTCI_REASM_EXPIRED = 0, /* its TTL ran out before all fragments arrived */
	RTCI_REASM_EVICTED,     /* a newer frame of the same device took its place */
};

/* Told of every unfinished frame discarded, with its tenant and device, so that the caller can
 * count it per tenant (the table's own stats count it for all tenants together). */
typedef void (*rtci_reasm_discard_fn)(void *ctx, uint32_t tenant_id, uint32_t device_id,
				      enum rtci_reasm_discard why);

struct rtci_reasm_config {
	uint32_t max_frames;          /* frames in flight, all tenants (>= 1) */
	size_t arena_bytes;           /* buffer space for frames in flight and held by the caller */
	uint32_t max_frame_len;       /* largest frame accepted, bytes */
	uint16_t max_inflight_per_device; /* >= 1; the oldest frame is evicted for a newer one */
	uint32_t max_tenants;         /* tenants with frames in flight or held (>= 1) */
	uint64_t ttl;                 /* > 0: a frame expires ttl after its first fragment arrived */
	rtci_reasm_quota_fn quota;    /* NULL: no per-tenant limits */
	void *quota_ctx;
	rtci_reasm_discard_fn on_discard; /* NULL: not told */
	void *discard_ctx;
};

/* Why a fragment was rejected (one counter each). */
enum rtci_reasm_drop {
	RTCI_REASM_DROP_DUPLICATE,       /* same fragment again (identical bytes) */
	RTCI_REASM_DROP_CONFLICT,        /* same index, different bytes */
	RTCI_REASM_DROP_MISMATCH,        /* frame fields differ from the frame's first fragment */
	RTCI_REASM_DROP_TOO_BIG,
	RTCI_REASM_DROP_TABLE_FULL,
	RTCI_REASM_DROP_ARENA_FULL,
	RTCI_REASM_DROP_TENANT_FRAMES,
	RTCI_REASM_DROP_TENANT_BYTES,
	RTCI_REASM_DROP_UNKNOWN_TENANT,
	RTCI_REASM_DROP_TENANT_TABLE_FULL,
	RTCI_REASM_DROP_OLDER_THAN_INFLIGHT,
	RTCI_REASM_DROP_NOT_FRAGMENT,
	RTCI_REASM_DROP_MAX
};

struct rtci_reasm_stats {
	uint64_t fragments;          /* offered to rtci_reasm_insert */
	uint64_t fragments_accepted; /* copied into a frame */
	uint64_t drops[RTCI_REASM_DROP_MAX]; /* rejected fragments by reason */
	uint64_t frames_started;
	uint64_t frames_completed;
	uint64_t frames_expired;     /* TTL ran out before all fragments arrived */
	uint64_t frames_evicted;     /* replaced by a newer frame of the same device */
	uint64_t fragments_discarded; /* accepted fragments of expired or evicted frames */
	uint64_t frames_released;
	uint64_t frames_bad_mac;     /* completed, failed verification, discarded */
	/* gauges */
	uint64_t frames_in_flight;
	uint64_t frames_held;        /* completed, not yet released */
	uint64_t arena_bytes_used;
};

/* A completed frame. Read-only for the caller; valid until rtci_reasm_release(). */
struct rtci_reasm_frame {
	struct rtci_proto_hdr hdr; /* frame fields; frag_index 0, flags 0, backlog_bytes from the
				      fragment received last */
	uint8_t tag[RTCI_PROTO_TAG_LEN];
	uint64_t first_time;       /* arrival of the first fragment (caller's time) */
	uint64_t complete_time;    /* arrival of the completing fragment */
	uint8_t *data;             /* hdr.frame_len contiguous bytes */
	uint32_t len;
	uint8_t verified;          /* 1: the table verified the tag with the device key */
	/* internal */
	uint32_t priv_tenant;
	uint32_t priv_block;
	uint8_t priv_order;
};

/* Creates a table. Returns 0, -EINVAL, -ENOMEM or -RTCI_ERR_AUTH_INIT; *out is set on success. */
int rtci_reasm_create(const struct rtci_reasm_config *cfg, struct rtci_reasm **out);
/* Frees the table and its arena; frames not yet released become invalid. */
void rtci_reasm_destroy(struct rtci_reasm *t);

/* Offers one decoded fragment (msg from rtci_proto_decode) at time now. device_key (32
 * bytes, may be NULL) is the sending device's key; the one given with the fragment that
 * completes a frame authenticates the frame (NULL: frame->verified = 0). Returns 1 and sets *out when this fragment completed a frame
 * (authenticated if a key was given), 0 when it was stored, -RTCI_ERR_AUTH_BAD_MAC when it
 * completed a frame whose MAC failed (frame discarded, counted), or a negated RTCI_ERR_REASM_*
 * code when it was rejected (and counted). Expires frames older than the TTL first. */
int rtci_reasm_insert(struct rtci_reasm *t, const struct rtci_proto_msg *msg,
		      const uint8_t *device_key, uint64_t now, struct rtci_reasm_frame **out);

/* Expires frames whose TTL ran out at time now; returns how many. */
unsigned rtci_reasm_expire(struct rtci_reasm *t, uint64_t now);

/* Gives a completed frame's buffer back to the arena. */
void rtci_reasm_release(struct rtci_reasm *t, struct rtci_reasm_frame *frame);

void rtci_reasm_stats(const struct rtci_reasm *t, struct rtci_reasm_stats *out);

/* Current usage of one tenant (frames in flight, arena bytes held); 0s if none. */
void rtci_reasm_tenant_usage(const struct rtci_reasm *t, uint32_t tenant_id, uint32_t *frames,
			     uint64_t *bytes);

/* Arena bytes a frame of frame_len bytes and frag_count fragments reserves (for quotas). */
size_t rtci_reasm_frame_cost(uint32_t frame_len, uint16_t frag_count);

/* Name of a drop reason, for metrics ("duplicate", ...). */
const char *rtci_reasm_drop_name(enum rtci_reasm_drop reason);

#endif
