/* The 48-byte common header of every datagram (docs/protocol.md, "Common header"): its byte
 * layout, plain reading and writing, and the view of it that the MAC covers ("MAC
 * construction"). Validation of the fields is the protocol's (protocol.h); authentication is
 * auth.h's. Both use this module, which uses neither. */
#ifndef RTCI_DATAPLANE_HEADER_H
#define RTCI_DATAPLANE_HEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/protocol.h"

/* Byte offsets of the v1 header fields (big-endian). */
enum rtci_header_off {
	RTCI_HDR_OFF_MAGIC = 0,
	RTCI_HDR_OFF_VERSION = 4,
	RTCI_HDR_OFF_TYPE = 5,
	RTCI_HDR_OFF_HDR_LEN = 6,
	RTCI_HDR_OFF_FLAGS = 7,
	RTCI_HDR_OFF_TENANT = 8,
	RTCI_HDR_OFF_DEVICE = 12,
	RTCI_HDR_OFF_SEQ = 16,
	RTCI_HDR_OFF_SETUP = 24,
	RTCI_HDR_OFF_FRAG_INDEX = 26,
	RTCI_HDR_OFF_FRAG_COUNT = 28,
	RTCI_HDR_OFF_FRAG_SIZE = 30,
	RTCI_HDR_OFF_FRAME_LEN = 32,
	RTCI_HDR_OFF_BACKLOG = 36,
	RTCI_HDR_OFF_CAPTURE = 40,
};

/* Writes the 48 bytes of h (magic included) to p. */
void rtci_header_write(uint8_t p[RTCI_PROTO_HDR_LEN], const struct rtci_proto_hdr *h);

/* Reads the fields of the 48 bytes at p into h, without checking them. */
void rtci_header_read(const uint8_t p[RTCI_PROTO_HDR_LEN], struct rtci_proto_hdr *h);

/* Tenant and device ids of the datagram at p, unchecked: for prefetching state before the
 * datagram is decoded. false when len is shorter than a header. */
bool rtci_header_peek_ids(const uint8_t *p, size_t len, uint32_t *tenant_id, uint32_t *device_id);

/* Writes the 48-byte header that the MAC covers for this message: the v1 header with flags,
 * frag_index and backlog_bytes zeroed, so one tag covers every fragment of a frame. */
void rtci_header_mac(const struct rtci_proto_hdr *hdr, uint8_t out[RTCI_PROTO_HDR_LEN]);

#endif
