#include "dataplane/protocol.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "common/rtci_error.h"
#include "dataplane/auth.h"
#include "dataplane/header.h"
#include "dataplane/wire.h"

const char *rtci_proto_type_name(unsigned type)
{
	switch (type) {
	case RTCI_PROTO_FRAGMENT: return "fragment";
	case RTCI_PROTO_RESULT: return "result";
	case RTCI_PROTO_COMMAND: return "command";
	case RTCI_PROTO_HELLO: return "hello";
	case RTCI_PROTO_HELLO_ACK: return "hello-ack";
	case RTCI_PROTO_REPORT: return "report";
	default: return "unknown";
	}
}

static int decode_result(const uint8_t *b, size_t n, struct rtci_proto_result *r)
{
	if (n < RTCI_PROTO_RESULT_LEN)
		return -RTCI_ERR_PROTO_BODY_LEN;
	r->class_id = rtci_ld16(b);
	r->status = b[2];
	r->topk_count = b[3];
	r->score = rtci_ldf32(b + 4);
	r->queue_us = rtci_ld32(b + 8);
	r->inference_us = rtci_ld32(b + 12);
	r->total_us = rtci_ld32(b + 16);
	if (r->status > RTCI_PROTO_RES_STATUS_MAX)
		return -RTCI_ERR_PROTO_BAD_STATUS;
	if (r->topk_count > RTCI_PROTO_MAX_TOPK)
		return -RTCI_ERR_PROTO_BAD_TOPK;
	if (n != RTCI_PROTO_RESULT_LEN + (size_t)r->topk_count * RTCI_PROTO_TOPK_ENTRY_LEN)
		return -RTCI_ERR_PROTO_BODY_LEN;
	for (unsigned i = 0; i < r->topk_count; i++) {
		const uint8_t *e = b + RTCI_PROTO_RESULT_LEN + i * RTCI_PROTO_TOPK_ENTRY_LEN;

		if (rtci_ld16(e + 2) != 0)
			return -RTCI_ERR_PROTO_RESERVED;
		r->topk[i].class_id = rtci_ld16(e);
		r->topk[i].score = rtci_ldf32(e + 4);
	}
	return 0;
}

static int decode_command(const uint8_t *b, size_t n, struct rtci_proto_command *c)
{
	if (n < RTCI_PROTO_COMMAND_LEN)
		return -RTCI_ERR_PROTO_BODY_LEN;
	c->kind = b[0];
	c->new_setup_id = rtci_ld16(b + 2);
	c->apply_from_seq = rtci_ld64(b + 4);
	c->plan[0] = c->new_setup_id;
	if (c->kind == RTCI_PROTO_CMD_MOVE) {
		/* bytes 2-3 port, 4-7 IPv4, 8-11 reserved */
		if (n != RTCI_PROTO_COMMAND_LEN)
			return -RTCI_ERR_PROTO_BODY_LEN;
		c->move_port = rtci_ld16(b + 2);
		c->move_ipv4 = rtci_ld32(b + 4);
		c->new_setup_id = 0;
		c->apply_from_seq = 0;
		c->plan[0] = 0;
		c->count = 0;
		if (b[1] != 0 || rtci_ld32(b + 8) != 0)
			return -RTCI_ERR_PROTO_RESERVED;
		if (c->move_ipv4 == 0 || c->move_port == 0)
			return -RTCI_ERR_PROTO_BAD_COMMAND;
		return 0;
	}
	if (c->kind == RTCI_PROTO_CMD_RATE_SWITCH) {
		if (n != RTCI_PROTO_COMMAND_LEN)
			return -RTCI_ERR_PROTO_BODY_LEN;
		if (b[1] != 0)
			return -RTCI_ERR_PROTO_RESERVED;
		c->count = 1;
		return 0;
	}
	if (c->kind != RTCI_PROTO_CMD_PLAN)
		return -RTCI_ERR_PROTO_BAD_COMMAND;
	c->count = b[1];
	if (c->count < 2 || c->count > RTCI_PROTO_MAX_PLAN)
		return -RTCI_ERR_PROTO_BAD_COMMAND;
	if (n != RTCI_PROTO_COMMAND_LEN + 2u * (c->count - 1u))
		return -RTCI_ERR_PROTO_BODY_LEN;
	for (unsigned i = 1; i < c->count; i++)
		c->plan[i] = rtci_ld16(b + RTCI_PROTO_COMMAND_LEN + 2 * (i - 1));
	return 0;
}

static int decode_hello(const uint8_t *b, size_t n, struct rtci_proto_hello *h)
{
	if (n < RTCI_PROTO_HELLO_LEN)
		return -RTCI_ERR_PROTO_BODY_LEN;
	h->model_id = rtci_ld32(b);
	h->fps_milli = rtci_ld32(b + 4);
	h->deadline_us = rtci_ld32(b + 8);
	h->max_frag_size = rtci_ld16(b + 12);
	h->n_setups = rtci_ld16(b + 14);
	if (h->n_setups > RTCI_PROTO_MAX_SETUPS)
		return -RTCI_ERR_PROTO_BAD_SETUPS;
	if (n != RTCI_PROTO_HELLO_LEN + 2u * h->n_setups)
		return -RTCI_ERR_PROTO_BODY_LEN;
	for (unsigned i = 0; i < h->n_setups; i++)
		h->setups[i] = rtci_ld16(b + RTCI_PROTO_HELLO_LEN + 2 * i);
	return 0;
}

static int decode_hello_ack(const uint8_t *b, size_t n, struct rtci_proto_hello_ack *a)
{
	if (n != RTCI_PROTO_HELLO_ACK_LEN && n != RTCI_PROTO_HELLO_ACK_EXT_LEN)
		return -RTCI_ERR_PROTO_BODY_LEN;
	a->max_frame_len = n == RTCI_PROTO_HELLO_ACK_EXT_LEN ? rtci_ld32(b + 16) : 0;
	if (n == RTCI_PROTO_HELLO_ACK_EXT_LEN && a->max_frame_len == 0)
		return -RTCI_ERR_PROTO_BODY_LEN; /* the extension exists to carry a limit */
	a->status = b[0];
	a->initial_setup_id = rtci_ld16(b + 2);
	a->max_frag_size = rtci_ld16(b + 4);
	a->retry_after_ms = rtci_ld16(b + 6);
	a->min_frame_seq = rtci_ld64(b + 8);
	a->redirect_ipv4 = 0;
	a->redirect_port = 0;
	if (a->status > RTCI_PROTO_HELLO_STATUS_MAX)
		return -RTCI_ERR_PROTO_BAD_STATUS;
	if (a->status == RTCI_PROTO_HELLO_REDIRECT) {
		/* bytes 8-11 IPv4, 12-13 port, 14-15 reserved */
		a->redirect_ipv4 = rtci_ld32(b + 8);
		a->redirect_port = rtci_ld16(b + 12);
		a->min_frame_seq = 0;
		if (rtci_ld16(b + 14) != 0)
			return -RTCI_ERR_PROTO_RESERVED;
		if (a->redirect_ipv4 == 0 || a->redirect_port == 0)
			return -RTCI_ERR_PROTO_BAD_STATUS;
	}
	/* bytes 6-7 carry retry_after_ms in a busy ack and are reserved in every other */
	if (b[1] != 0 || (a->status != RTCI_PROTO_HELLO_BUSY && a->retry_after_ms != 0))
		return -RTCI_ERR_PROTO_RESERVED;
	return 0;
}

static int decode_report(const uint8_t *b, size_t n, struct rtci_proto_report *r)
{
	if (n != RTCI_PROTO_REPORT_LEN)
		return -RTCI_ERR_PROTO_BODY_LEN;
	r->bytes_sent = rtci_ld64(b);
	r->frames_sent = rtci_ld32(b + 8);
	r->frames_dropped = rtci_ld32(b + 12);
	r->send_rate_bps = rtci_ld64(b + 16);
	r->backlog_bytes = rtci_ld32(b + 24);
	r->interval_us = rtci_ld32(b + 28);
	return 0;
}

long rtci_proto_fragment_count(size_t frame_len, uint16_t frag_size)
{
	if (frag_size == 0)
		return -RTCI_ERR_PROTO_FRAG_SIZE;
	if (frame_len == 0 || frame_len > UINT32_MAX)
		return -RTCI_ERR_PROTO_FRAME_LEN;
	size_t n = (frame_len + frag_size - 1) / frag_size;
	if (n > UINT16_MAX)
		return -RTCI_ERR_PROTO_FRAME_LEN;
	return (long)n;
}

/* Checks that frag_count fragments of frag_size bytes give exactly frame_len bytes. */
static int frag_geometry_ok(uint32_t frame_len, uint16_t frag_count, uint16_t frag_size)
{
	long n = rtci_proto_fragment_count(frame_len, frag_size);

	return n >= 0 && n == frag_count;
}

int rtci_proto_decode(const uint8_t *buf, size_t len, struct rtci_proto_msg *out)
{
	struct rtci_proto_hdr *h = &out->hdr;

	if (!buf || len < RTCI_HDR_OFF_TYPE)
		return -RTCI_ERR_PROTO_TRUNCATED;
	if (rtci_ld32(buf + RTCI_HDR_OFF_MAGIC) != RTCI_PROTO_MAGIC)
		return -RTCI_ERR_PROTO_BAD_MAGIC;
	if (buf[RTCI_HDR_OFF_VERSION] != RTCI_PROTO_VERSION)
		return -RTCI_ERR_PROTO_BAD_VERSION;
	if (len < RTCI_PROTO_HDR_LEN)
		return -RTCI_ERR_PROTO_TRUNCATED;

	rtci_header_read(buf, h);

	if (h->type == 0 || h->type > RTCI_PROTO_TYPE_MAX)
		return -RTCI_ERR_PROTO_BAD_TYPE;
	if (h->hdr_len < RTCI_PROTO_HDR_LEN || (h->hdr_len & 3) != 0)
		return -RTCI_ERR_PROTO_BAD_HDR_LEN;
	if (h->hdr_len > len)
		return -RTCI_ERR_PROTO_TRUNCATED;

	int has_tag = (h->flags & RTCI_PROTO_F_TAG) != 0;
	size_t rest = len - h->hdr_len;
	if (has_tag && rest < RTCI_PROTO_TAG_LEN)
		return -RTCI_ERR_PROTO_TRUNCATED;

	out->datagram = buf;
	out->datagram_len = len;
	out->body = buf + h->hdr_len;
	out->body_len = rest - (has_tag ? RTCI_PROTO_TAG_LEN : 0);
	out->tag = has_tag ? buf + len - RTCI_PROTO_TAG_LEN : NULL;

	if (h->type == RTCI_PROTO_FRAGMENT) {
		if (h->frag_count == 0)
			return -RTCI_ERR_PROTO_FRAG_COUNT;
		if (h->frag_index >= h->frag_count)
			return -RTCI_ERR_PROTO_FRAG_INDEX;
		if (h->frag_size == 0)
			return -RTCI_ERR_PROTO_FRAG_SIZE;
		if (!frag_geometry_ok(h->frame_len, h->frag_count, h->frag_size))
			return -RTCI_ERR_PROTO_FRAME_LEN;
		int last = h->frag_index == h->frag_count - 1;
		if (last != has_tag)
			return -RTCI_ERR_PROTO_TAG_FLAG;
		size_t want = last ? h->frame_len - (size_t)(h->frag_count - 1) * h->frag_size
				   : h->frag_size;
		if (out->body_len != want)
			return -RTCI_ERR_PROTO_PAYLOAD_LEN;
		return 0;
	}

	/* Single-datagram messages: always authenticated, never fragmented. */
	if (!has_tag)
		return -RTCI_ERR_PROTO_TAG_FLAG;
	if (h->frag_count != 1)
		return -RTCI_ERR_PROTO_FRAG_COUNT;
	if (h->frag_index != 0)
		return -RTCI_ERR_PROTO_FRAG_INDEX;
	if (h->frag_size != 0)
		return -RTCI_ERR_PROTO_FRAG_SIZE;
	if (h->frame_len != out->body_len)
		return -RTCI_ERR_PROTO_FRAME_LEN;

	switch (h->type) {
	case RTCI_PROTO_RESULT: return decode_result(out->body, out->body_len, &out->u.result);
	case RTCI_PROTO_COMMAND: return decode_command(out->body, out->body_len, &out->u.command);
	case RTCI_PROTO_HELLO:
		out->u.hello.ack_ext = (h->flags & RTCI_PROTO_F_ACK_EXT) != 0;
		return decode_hello(out->body, out->body_len, &out->u.hello);
	case RTCI_PROTO_HELLO_ACK:
		return decode_hello_ack(out->body, out->body_len, &out->u.hello_ack);
	case RTCI_PROTO_REPORT: return decode_report(out->body, out->body_len, &out->u.report);
	default: return -RTCI_ERR_PROTO_BAD_TYPE;
	}
}

static void hdr_from_info(struct rtci_proto_hdr *h, const struct rtci_proto_frame_info *info,
			  uint8_t type)
{
	memset(h, 0, sizeof(*h));
	h->version = RTCI_PROTO_VERSION;
	h->type = type;
	h->hdr_len = RTCI_PROTO_HDR_LEN;
	h->tenant_id = info->tenant_id;
	h->device_id = info->device_id;
	h->seq = info->seq;
	h->setup_id = info->setup_id;
	h->backlog_bytes = info->backlog_bytes;
	h->capture_us = info->capture_us;
}

/* Frames a single-datagram message whose body is already at buf + HDR_LEN. */
static long finish_message(uint8_t *buf, size_t cap, const struct rtci_proto_frame_info *info,
			   uint8_t type, size_t body_len, const uint8_t *key)
{
	struct rtci_proto_hdr h;
	size_t total = RTCI_PROTO_HDR_LEN + body_len + RTCI_PROTO_TAG_LEN;

	if (total > cap)
		return -ENOSPC;
	hdr_from_info(&h, info, type);
	h.flags = RTCI_PROTO_F_TAG;
	h.frag_count = 1;
	h.frame_len = (uint32_t)body_len;
	rtci_header_write(buf, &h);
	rtci_auth_mac(key, &h, buf + RTCI_PROTO_HDR_LEN, body_len, buf + total - RTCI_PROTO_TAG_LEN);
	return (long)total;
}

#define NEED(n)                                                                                \
	do {                                                                                   \
		if (!buf || !info || !key || (size_t)RTCI_PROTO_HDR_LEN + (n) + RTCI_PROTO_TAG_LEN > cap) \
			return (!buf || !info || !key) ? -EINVAL : -ENOSPC;                    \
	} while (0)

long rtci_proto_encode_result(uint8_t *buf, size_t cap, const struct rtci_proto_frame_info *info,
			      const struct rtci_proto_result *res, const uint8_t key[32])
{
	if (!res || res->topk_count > RTCI_PROTO_MAX_TOPK || res->status > RTCI_PROTO_RES_STATUS_MAX)
		return -EINVAL;
	size_t n = RTCI_PROTO_RESULT_LEN + (size_t)res->topk_count * RTCI_PROTO_TOPK_ENTRY_LEN;
	NEED(n);
	uint8_t *b = buf + RTCI_PROTO_HDR_LEN;
	rtci_st16(b, res->class_id);
	b[2] = res->status;
	b[3] = res->topk_count;
	rtci_stf32(b + 4, res->score);
	rtci_st32(b + 8, res->queue_us);
	rtci_st32(b + 12, res->inference_us);
	rtci_st32(b + 16, res->total_us);
	for (unsigned i = 0; i < res->topk_count; i++) {
		uint8_t *e = b + RTCI_PROTO_RESULT_LEN + i * RTCI_PROTO_TOPK_ENTRY_LEN;

		rtci_st16(e, res->topk[i].class_id);
		rtci_st16(e + 2, 0);
		rtci_stf32(e + 4, res->topk[i].score);
	}
	return finish_message(buf, cap, info, RTCI_PROTO_RESULT, n, key);
}

long rtci_proto_encode_command(uint8_t *buf, size_t cap, const struct rtci_proto_frame_info *info,
			       const struct rtci_proto_command *cmd, const uint8_t key[32])
{
	if (!cmd)
		return -EINVAL;
	if (cmd->kind == RTCI_PROTO_CMD_MOVE) {
		if (!cmd->move_ipv4 || !cmd->move_port)
			return -EINVAL;
		NEED(RTCI_PROTO_COMMAND_LEN);
		uint8_t *b = buf + RTCI_PROTO_HDR_LEN;
		memset(b, 0, RTCI_PROTO_COMMAND_LEN);
		b[0] = cmd->kind;
		rtci_st16(b + 2, cmd->move_port);
		rtci_st32(b + 4, cmd->move_ipv4);
		return finish_message(buf, cap, info, RTCI_PROTO_COMMAND, RTCI_PROTO_COMMAND_LEN, key);
	}
	bool plan = cmd->kind == RTCI_PROTO_CMD_PLAN;
	if (!plan && cmd->kind != RTCI_PROTO_CMD_RATE_SWITCH)
		return -EINVAL;
	if (plan && (cmd->count < 2 || cmd->count > RTCI_PROTO_MAX_PLAN))
		return -EINVAL;
	size_t n = RTCI_PROTO_COMMAND_LEN + (plan ? 2u * (cmd->count - 1u) : 0);
	NEED(n);
	uint8_t *b = buf + RTCI_PROTO_HDR_LEN;
	b[0] = cmd->kind;
	b[1] = plan ? cmd->count : 0;
	rtci_st16(b + 2, plan ? cmd->plan[0] : cmd->new_setup_id);
	rtci_st64(b + 4, cmd->apply_from_seq);
	for (unsigned i = 1; plan && i < cmd->count; i++)
		rtci_st16(b + RTCI_PROTO_COMMAND_LEN + 2 * (i - 1), cmd->plan[i]);
	return finish_message(buf, cap, info, RTCI_PROTO_COMMAND, n, key);
}

long rtci_proto_encode_hello(uint8_t *buf, size_t cap, const struct rtci_proto_frame_info *info,
			     const struct rtci_proto_hello *hello, const uint8_t key[32])
{
	if (!hello || hello->n_setups > RTCI_PROTO_MAX_SETUPS)
		return -EINVAL;
	size_t n = RTCI_PROTO_HELLO_LEN + 2u * hello->n_setups;
	NEED(n);
	uint8_t *b = buf + RTCI_PROTO_HDR_LEN;
	rtci_st32(b, hello->model_id);
	rtci_st32(b + 4, hello->fps_milli);
	rtci_st32(b + 8, hello->deadline_us);
	rtci_st16(b + 12, hello->max_frag_size);
	rtci_st16(b + 14, hello->n_setups);
	for (unsigned i = 0; i < hello->n_setups; i++)
		rtci_st16(b + RTCI_PROTO_HELLO_LEN + 2 * i, hello->setups[i]);
	long len = finish_message(buf, cap, info, RTCI_PROTO_HELLO, n, key);
	if (len > 0 && hello->ack_ext)
		buf[7] |= RTCI_PROTO_F_ACK_EXT; /* flags are outside the MAC */
	return len;
}

long rtci_proto_encode_hello_ack(uint8_t *buf, size_t cap, const struct rtci_proto_frame_info *info,
				 const struct rtci_proto_hello_ack *ack, const uint8_t key[32])
{
	if (!ack || ack->status > RTCI_PROTO_HELLO_STATUS_MAX ||
	    (ack->status != RTCI_PROTO_HELLO_BUSY && ack->retry_after_ms != 0))
		return -EINVAL;
	/* the extended body only when the limit is given (and so only to peers that asked) */
	size_t n = ack->max_frame_len ? RTCI_PROTO_HELLO_ACK_EXT_LEN : RTCI_PROTO_HELLO_ACK_LEN;
	NEED(n);
	uint8_t *b = buf + RTCI_PROTO_HDR_LEN;
	if (ack->max_frame_len)
		rtci_st32(b + 16, ack->max_frame_len);
	b[0] = ack->status;
	b[1] = 0;
	rtci_st16(b + 2, ack->initial_setup_id);
	rtci_st16(b + 4, ack->max_frag_size);
	rtci_st16(b + 6, ack->retry_after_ms);
	if (ack->status == RTCI_PROTO_HELLO_REDIRECT) {
		if (!ack->redirect_ipv4 || !ack->redirect_port)
			return -EINVAL;
		rtci_st32(b + 8, ack->redirect_ipv4);
		rtci_st16(b + 12, ack->redirect_port);
		rtci_st16(b + 14, 0);
	} else {
		rtci_st64(b + 8, ack->min_frame_seq);
	}
	return finish_message(buf, cap, info, RTCI_PROTO_HELLO_ACK, n, key);
}

long rtci_proto_encode_report(uint8_t *buf, size_t cap, const struct rtci_proto_frame_info *info,
			      const struct rtci_proto_report *rep, const uint8_t key[32])
{
	if (!rep)
		return -EINVAL;
	NEED(RTCI_PROTO_REPORT_LEN);
	uint8_t *b = buf + RTCI_PROTO_HDR_LEN;
	rtci_st64(b, rep->bytes_sent);
	rtci_st32(b + 8, rep->frames_sent);
	rtci_st32(b + 12, rep->frames_dropped);
	rtci_st64(b + 16, rep->send_rate_bps);
	rtci_st32(b + 24, rep->backlog_bytes);
	rtci_st32(b + 28, rep->interval_us);
	return finish_message(buf, cap, info, RTCI_PROTO_REPORT, RTCI_PROTO_REPORT_LEN, key);
}

long rtci_proto_encode_fragment(uint8_t *buf, size_t cap, const struct rtci_proto_frame_info *info,
				uint16_t frag_index, uint16_t frag_count, uint16_t frag_size,
				uint32_t frame_len, const uint8_t *payload, size_t payload_len,
				const uint8_t *tag)
{
	struct rtci_proto_hdr h;
	int last = frag_count > 0 && frag_index == frag_count - 1;
	size_t total = RTCI_PROTO_HDR_LEN + payload_len + (last ? RTCI_PROTO_TAG_LEN : 0);

	if (!buf || !info || (payload_len && !payload) || (last && !tag))
		return -EINVAL;
	if (total > cap)
		return -ENOSPC;
	hdr_from_info(&h, info, RTCI_PROTO_FRAGMENT);
	h.flags = last ? RTCI_PROTO_F_TAG : 0;
	h.frag_index = frag_index;
	h.frag_count = frag_count;
	h.frag_size = frag_size;
	h.frame_len = frame_len;
	rtci_header_write(buf, &h);
	if (payload_len)
		memcpy(buf + RTCI_PROTO_HDR_LEN, payload, payload_len);
	if (last)
		memcpy(buf + RTCI_PROTO_HDR_LEN + payload_len, tag, RTCI_PROTO_TAG_LEN);
	return (long)total;
}

long rtci_proto_fragment(const struct rtci_proto_frame_info *info, const uint8_t *frame,
			 size_t frame_len, uint16_t frag_size, const uint8_t key[32],
			 struct rtci_proto_datagram *out, size_t n_out)
{
	if (!info || !frame || !key || !out)
		return -EINVAL;
	long n = rtci_proto_fragment_count(frame_len, frag_size);
	if (n < 0)
		return n;
	if ((size_t)n > n_out)
		return -ENOSPC;

	struct rtci_proto_hdr h;
	uint8_t tag[RTCI_PROTO_TAG_LEN];

	hdr_from_info(&h, info, RTCI_PROTO_FRAGMENT);
	h.frag_count = (uint16_t)n;
	h.frag_size = frag_size;
	h.frame_len = (uint32_t)frame_len;
	rtci_auth_mac(key, &h, frame, frame_len, tag);

	for (long i = 0; i < n; i++) {
		size_t off = (size_t)i * frag_size;
		size_t plen = i == n - 1 ? frame_len - off : frag_size;
		long r = rtci_proto_encode_fragment(out[i].buf, out[i].cap, info, (uint16_t)i,
						    (uint16_t)n, frag_size, (uint32_t)frame_len,
						    frame + off, plen, tag);
		if (r < 0)
			return r;
		out[i].len = (size_t)r;
	}
	return n;
}

int rtci_proto_set_backlog(uint8_t *buf, size_t len, uint32_t backlog_bytes)
{
	if (!buf || len < RTCI_PROTO_HDR_LEN || rtci_ld32(buf) != RTCI_PROTO_MAGIC)
		return -EINVAL;
	rtci_st32(buf + RTCI_HDR_OFF_BACKLOG, backlog_bytes);
	return 0;
}
