#include "dataplane/header.h"

#include "dataplane/wire.h"

void rtci_header_write(uint8_t p[RTCI_PROTO_HDR_LEN], const struct rtci_proto_hdr *h)
{
	rtci_st32(p + RTCI_HDR_OFF_MAGIC, RTCI_PROTO_MAGIC);
	p[RTCI_HDR_OFF_VERSION] = h->version;
	p[RTCI_HDR_OFF_TYPE] = h->type;
	p[RTCI_HDR_OFF_HDR_LEN] = h->hdr_len;
	p[RTCI_HDR_OFF_FLAGS] = h->flags;
	rtci_st32(p + RTCI_HDR_OFF_TENANT, h->tenant_id);
	rtci_st32(p + RTCI_HDR_OFF_DEVICE, h->device_id);
	rtci_st64(p + RTCI_HDR_OFF_SEQ, h->seq);
	rtci_st16(p + RTCI_HDR_OFF_SETUP, h->setup_id);
	rtci_st16(p + RTCI_HDR_OFF_FRAG_INDEX, h->frag_index);
	rtci_st16(p + RTCI_HDR_OFF_FRAG_COUNT, h->frag_count);
	rtci_st16(p + RTCI_HDR_OFF_FRAG_SIZE, h->frag_size);
	rtci_st32(p + RTCI_HDR_OFF_FRAME_LEN, h->frame_len);
	rtci_st32(p + RTCI_HDR_OFF_BACKLOG, h->backlog_bytes);
	rtci_st64(p + RTCI_HDR_OFF_CAPTURE, h->capture_us);
}

void rtci_header_read(const uint8_t p[RTCI_PROTO_HDR_LEN], struct rtci_proto_hdr *h)
{
	h->version = p[RTCI_HDR_OFF_VERSION];
	h->type = p[RTCI_HDR_OFF_TYPE];
	h->hdr_len = p[RTCI_HDR_OFF_HDR_LEN];
	h->flags = p[RTCI_HDR_OFF_FLAGS];
	h->tenant_id = rtci_ld32(p + RTCI_HDR_OFF_TENANT);
	h->device_id = rtci_ld32(p + RTCI_HDR_OFF_DEVICE);
	h->seq = rtci_ld64(p + RTCI_HDR_OFF_SEQ);
	h->setup_id = rtci_ld16(p + RTCI_HDR_OFF_SETUP);
	h->frag_index = rtci_ld16(p + RTCI_HDR_OFF_FRAG_INDEX);
	h->frag_count = rtci_ld16(p + RTCI_HDR_OFF_FRAG_COUNT);
	h->frag_size = rtci_ld16(p + RTCI_HDR_OFF_FRAG_SIZE);
	h->frame_len = rtci_ld32(p + RTCI_HDR_OFF_FRAME_LEN);
	h->backlog_bytes = rtci_ld32(p + RTCI_HDR_OFF_BACKLOG);
	h->capture_us = rtci_ld64(p + RTCI_HDR_OFF_CAPTURE);
}

bool rtci_header_peek_ids(const uint8_t *p, size_t len, uint32_t *tenant_id, uint32_t *device_id)
{
	if (!p || len < RTCI_PROTO_HDR_LEN)
		return false;
	*tenant_id = rtci_ld32(p + RTCI_HDR_OFF_TENANT);
	*device_id = rtci_ld32(p + RTCI_HDR_OFF_DEVICE);
	return true;
}

void rtci_header_mac(const struct rtci_proto_hdr *hdr, uint8_t out[RTCI_PROTO_HDR_LEN])
{
	struct rtci_proto_hdr h = *hdr;

	/* Per-datagram fields are excluded so one tag covers every fragment of a frame. */
	h.version = RTCI_PROTO_VERSION;
	h.hdr_len = RTCI_PROTO_HDR_LEN;
	h.flags = 0;
	h.frag_index = 0;
	h.backlog_bytes = 0;
	rtci_header_write(out, &h);
}
