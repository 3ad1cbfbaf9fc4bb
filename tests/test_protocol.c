/* Wire protocol: encode/decode round trips for every message type and one rejection test per
 * malformed field, each expecting its own error code. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "common/rtci_error.h"
#include "dataplane/auth.h"
#include "dataplane/header.h"
#include "dataplane/protocol.h"

static const uint8_t key[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };

static const struct rtci_proto_frame_info info = {
	.tenant_id = 0x01020304, .device_id = 0xa0b0c0d0, .seq = 0x1122334455667788ull,
	.setup_id = 17, .backlog_bytes = 12345, .capture_us = 1700000000123456ull,
};

static void check_common(const struct rtci_proto_msg *m, uint8_t type)
{
	cr_assert_eq(m->hdr.version, RTCI_PROTO_VERSION);
	cr_assert_eq(m->hdr.type, type);
	cr_assert_eq(m->hdr.hdr_len, RTCI_PROTO_HDR_LEN);
	cr_assert_eq(m->hdr.tenant_id, info.tenant_id);
	cr_assert_eq(m->hdr.device_id, info.device_id);
	cr_assert_eq(m->hdr.seq, info.seq);
	cr_assert_eq(m->hdr.setup_id, info.setup_id);
	cr_assert_eq(m->hdr.backlog_bytes, info.backlog_bytes);
	cr_assert_eq(m->hdr.capture_us, info.capture_us);
	if (type != RTCI_PROTO_FRAGMENT) {
		cr_assert_not_null(m->tag);
		cr_assert_eq(rtci_auth_verify_msg(key, m), 0);
	}
}

Test(protocol, result_roundtrip)
{
	struct rtci_proto_result r = { .class_id = 42, .status = RTCI_PROTO_RES_OK,
				       .topk_count = 3, .score = 0.875f, .queue_us = 100,
				       .inference_us = 2000, .total_us = 2500 };
	for (int i = 0; i < 3; i++)
		r.topk[i] = (struct rtci_proto_topk){ (uint16_t)(42 + i), 0.5f / (float)(i + 1) };
	uint8_t buf[RTCI_PROTO_MAX_DATAGRAM];
	long n = rtci_proto_encode_result(buf, sizeof(buf), &info, &r, key);
	cr_assert_eq(n, RTCI_PROTO_HDR_LEN + 20 + 3 * 8 + RTCI_PROTO_TAG_LEN);
	struct rtci_proto_msg m;
	cr_assert_eq(rtci_proto_decode(buf, (size_t)n, &m), 0);
	check_common(&m, RTCI_PROTO_RESULT);
	const struct rtci_proto_result *d = &m.u.result;
	cr_assert_eq(d->class_id, 42);
	cr_assert_eq(d->status, RTCI_PROTO_RES_OK);
	cr_assert_eq(d->topk_count, 3);
	cr_assert_float_eq(d->score, 0.875f, 0);
	cr_assert_eq(d->queue_us, 100);
	cr_assert_eq(d->inference_us, 2000);
	cr_assert_eq(d->total_us, 2500);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(d->topk[i].class_id, 42 + i);
		cr_assert_float_eq(d->topk[i].score, 0.5f / (float)(i + 1), 0);
	}
}

Test(protocol, result_without_topk_and_dropped_status)
{
	struct rtci_proto_result r = { .class_id = 0, .status = RTCI_PROTO_RES_DROPPED_DEADLINE };
	uint8_t buf[256];
	long n = rtci_proto_encode_result(buf, sizeof(buf), &info, &r, key);
	cr_assert_eq(n, RTCI_PROTO_HDR_LEN + 20 + RTCI_PROTO_TAG_LEN);
	struct rtci_proto_msg m;
	cr_assert_eq(rtci_proto_decode(buf, (size_t)n, &m), 0);
	cr_assert_eq(m.u.result.status, RTCI_PROTO_RES_DROPPED_DEADLINE);
	cr_assert_eq(m.u.result.topk_count, 0);
}

Test(protocol, command_roundtrip)
{
	struct rtci_proto_command c = { .kind = RTCI_PROTO_CMD_RATE_SWITCH, .new_setup_id = 33,
					.apply_from_seq = 0xdeadbeefcafeull };
	uint8_t buf[256];
	long n = rtci_proto_encode_command(buf, sizeof(buf), &info, &c, key);
	cr_assert_eq(n, RTCI_PROTO_HDR_LEN + RTCI_PROTO_COMMAND_LEN + RTCI_PROTO_TAG_LEN);
	struct rtci_proto_msg m;
	cr_assert_eq(rtci_proto_decode(buf, (size_t)n, &m), 0);
	check_common(&m, RTCI_PROTO_COMMAND);
	cr_assert_eq(m.u.command.kind, RTCI_PROTO_CMD_RATE_SWITCH);
	cr_assert_eq(m.u.command.new_setup_id, 33);
	cr_assert_eq(m.u.command.apply_from_seq, 0xdeadbeefcafeull);
	cr_assert_eq(m.u.command.count, 1);
	cr_assert_eq(m.u.command.plan[0], 33);
}

Test(protocol, plan_command_roundtrip)
{
	struct rtci_proto_command c = { .kind = RTCI_PROTO_CMD_PLAN, .count = 5,
					.apply_from_seq = 1234, .plan = { 48, 48, 17, 17, 2 } };
	uint8_t buf[256];
	long n = rtci_proto_encode_command(buf, sizeof(buf), &info, &c, key);
	cr_assert_eq(n, RTCI_PROTO_HDR_LEN + RTCI_PROTO_COMMAND_LEN + 4 * 2 + RTCI_PROTO_TAG_LEN);
	struct rtci_proto_msg m;
	cr_assert_eq(rtci_proto_decode(buf, (size_t)n, &m), 0);
	check_common(&m, RTCI_PROTO_COMMAND);
	cr_assert_eq(m.u.command.kind, RTCI_PROTO_CMD_PLAN);
	cr_assert_eq(m.u.command.count, 5);
	cr_assert_eq(m.u.command.new_setup_id, 48);
	cr_assert_eq(m.u.command.apply_from_seq, 1234);
	uint16_t want[] = { 48, 48, 17, 17, 2 };
	for (int i = 0; i < 5; i++)
		cr_assert_eq(m.u.command.plan[i], want[i], "step %d", i);
	/* a plan is 2 to RTCI_PROTO_MAX_PLAN setups */
	c.count = 1;
	cr_assert_eq(rtci_proto_encode_command(buf, sizeof(buf), &info, &c, key), -EINVAL);
	c.count = RTCI_PROTO_MAX_PLAN + 1;
	cr_assert_eq(rtci_proto_encode_command(buf, sizeof(buf), &info, &c, key), -EINVAL);
}

Test(protocol, hello_roundtrip)
{
	struct rtci_proto_hello h = { .model_id = 7, .fps_milli = 29970, .deadline_us = 100000,
				      .max_frag_size = 1400, .n_setups = 5 };
	for (int i = 0; i < 5; i++)
		h.setups[i] = (uint16_t)(i * 10);
	uint8_t buf[512];
	long n = rtci_proto_encode_hello(buf, sizeof(buf), &info, &h, key);
	cr_assert_eq(n, RTCI_PROTO_HDR_LEN + 16 + 10 + RTCI_PROTO_TAG_LEN);
	struct rtci_proto_msg m;
	cr_assert_eq(rtci_proto_decode(buf, (size_t)n, &m), 0);
	check_common(&m, RTCI_PROTO_HELLO);
	cr_assert_eq(m.u.hello.model_id, 7);
	cr_assert_eq(m.u.hello.fps_milli, 29970);
	cr_assert_eq(m.u.hello.deadline_us, 100000);
	cr_assert_eq(m.u.hello.max_frag_size, 1400);
	cr_assert_eq(m.u.hello.n_setups, 5);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(m.u.hello.setups[i], i * 10);
}

Test(protocol, hello_ack_roundtrip)
{
	struct rtci_proto_hello_ack a = { .status = RTCI_PROTO_HELLO_ACCEPTED,
					  .initial_setup_id = 9, .max_frag_size = 1400,
					  .min_frame_seq = 1ull << 40 };
	uint8_t buf[256];
	long n = rtci_proto_encode_hello_ack(buf, sizeof(buf), &info, &a, key);
	cr_assert_gt(n, 0);
	struct rtci_proto_msg m;
	cr_assert_eq(rtci_proto_decode(buf, (size_t)n, &m), 0);
	check_common(&m, RTCI_PROTO_HELLO_ACK);
	cr_assert_eq(m.u.hello_ack.status, RTCI_PROTO_HELLO_ACCEPTED);
	cr_assert_eq(m.u.hello_ack.initial_setup_id, 9);
	cr_assert_eq(m.u.hello_ack.max_frag_size, 1400);
	cr_assert_eq(m.u.hello_ack.min_frame_seq, 1ull << 40);
	cr_assert_eq(m.u.hello_ack.retry_after_ms, 0);
	/* only a busy ack carries a retry-after */
	a.retry_after_ms = 1500;
	cr_assert_eq(rtci_proto_encode_hello_ack(buf, sizeof(buf), &info, &a, key), -EINVAL);
	a.status = RTCI_PROTO_HELLO_BUSY;
	n = rtci_proto_encode_hello_ack(buf, sizeof(buf), &info, &a, key);
	cr_assert_gt(n, 0);
	cr_assert_eq(rtci_proto_decode(buf, (size_t)n, &m), 0);
	cr_assert_eq(m.u.hello_ack.status, RTCI_PROTO_HELLO_BUSY);
	cr_assert_eq(m.u.hello_ack.retry_after_ms, 1500);
}

/* v1 extension: a hello with F_ACK_EXT gets a 20-byte ack with the gateway's largest frame; a
 * 16-byte ack still decodes (limit 0: unknown), any other length does not. */
Test(protocol, extended_hello_ack_carries_the_largest_frame)
{
	uint8_t buf[256];
	struct rtci_proto_msg m;
	struct rtci_proto_hello h = { .model_id = 1, .ack_ext = true };
	long n = rtci_proto_encode_hello(buf, sizeof(buf), &info, &h, key);
	cr_assert_gt(n, 0);
	cr_assert_eq(buf[7], RTCI_PROTO_F_TAG | RTCI_PROTO_F_ACK_EXT);
	cr_assert_eq(rtci_proto_decode(buf, (size_t)n, &m), 0);
	cr_assert(m.u.hello.ack_ext);
	cr_assert_eq(rtci_auth_verify_msg(key, &m), 0);
	h.ack_ext = false;
	n = rtci_proto_encode_hello(buf, sizeof(buf), &info, &h, key);
	cr_assert_eq(rtci_proto_decode(buf, (size_t)n, &m), 0);
	cr_assert_not(m.u.hello.ack_ext);

	struct rtci_proto_hello_ack a = { .initial_setup_id = 3, .max_frag_size = 1408,
					  .min_frame_seq = 77, .max_frame_len = 33074 };
	n = rtci_proto_encode_hello_ack(buf, sizeof(buf), &info, &a, key);
	cr_assert_eq(n, RTCI_PROTO_HDR_LEN + 20 + RTCI_PROTO_TAG_LEN);
	cr_assert_eq(rtci_proto_decode(buf, (size_t)n, &m), 0);
	cr_assert_eq(rtci_auth_verify_msg(key, &m), 0);
	cr_expect_eq(m.u.hello_ack.max_frame_len, 33074);
	cr_expect_eq(m.u.hello_ack.min_frame_seq, 77);
	cr_expect_eq(buf[RTCI_PROTO_HDR_LEN + 16], 0x00);
	cr_expect_eq(buf[RTCI_PROTO_HDR_LEN + 18], 0x81);
	cr_expect_eq(buf[RTCI_PROTO_HDR_LEN + 19], 0x32);
	/* a busy ack and a redirect carry it too */
	a.status = RTCI_PROTO_HELLO_BUSY;
	a.retry_after_ms = 2000;
	n = rtci_proto_encode_hello_ack(buf, sizeof(buf), &info, &a, key);
	cr_assert_eq(rtci_proto_decode(buf, (size_t)n, &m), 0);
	cr_expect_eq(m.u.hello_ack.retry_after_ms, 2000);
	cr_expect_eq(m.u.hello_ack.max_frame_len, 33074);
	a.status = RTCI_PROTO_HELLO_ACCEPTED;
	a.retry_after_ms = 0;
	a.max_frame_len = 0;
	n = rtci_proto_encode_hello_ack(buf, sizeof(buf), &info, &a, key);
	cr_assert_eq(n, RTCI_PROTO_HDR_LEN + 16 + RTCI_PROTO_TAG_LEN);
	cr_assert_eq(rtci_proto_decode(buf, (size_t)n, &m), 0);
	cr_expect_eq(m.u.hello_ack.max_frame_len, 0);
	/* an extended body without a limit, and a 24-byte body, are not hello-acks */
	struct rtci_proto_hdr h20 = { .version = 1, .type = RTCI_PROTO_HELLO_ACK, .hdr_len = 48,
				      .flags = RTCI_PROTO_F_TAG, .tenant_id = info.tenant_id,
				      .device_id = info.device_id, .seq = info.seq, .frag_count = 1,
				      .frame_len = 20 };
	uint8_t b20[20] = { 0 };
	rtci_header_mac(&h20, buf);
	buf[6] = 48;
	buf[7] = RTCI_PROTO_F_TAG;
	memcpy(buf + 48, b20, 20);
	rtci_auth_mac(key, &h20, b20, 20, buf + 68);
	cr_assert_eq(rtci_proto_decode(buf, 84, &m), -RTCI_ERR_PROTO_BODY_LEN);
	/* a 24-byte body (hand-built, authenticated) is not a hello-ack */
	struct rtci_proto_hdr hd = { .version = 1, .type = RTCI_PROTO_HELLO_ACK, .hdr_len = 48,
				     .flags = RTCI_PROTO_F_TAG, .tenant_id = info.tenant_id,
				     .device_id = info.device_id, .seq = info.seq, .frag_count = 1,
				     .frame_len = 24 };
	uint8_t body[24] = { 0 };
	rtci_header_mac(&hd, buf);
	buf[6] = 48;
	buf[7] = RTCI_PROTO_F_TAG;
	memcpy(buf + 48, body, 24);
	rtci_auth_mac(key, &hd, body, 24, buf + 72);
	cr_assert_eq(rtci_proto_decode(buf, 88, &m), -RTCI_ERR_PROTO_BODY_LEN);
}

Test(protocol, redirect_ack_and_move_command_carry_an_address)
{
	uint8_t buf[256];
	struct rtci_proto_msg m;
	struct rtci_proto_hello_ack a = { .status = RTCI_PROTO_HELLO_REDIRECT,
					  .redirect_ipv4 = 0x0a000002, .redirect_port = 47001 };
	long n = rtci_proto_encode_hello_ack(buf, sizeof(buf), &info, &a, key);
	cr_assert_gt(n, 0);
	cr_assert_eq(rtci_proto_decode(buf, (size_t)n, &m), 0);
	cr_assert_eq(m.u.hello_ack.status, RTCI_PROTO_HELLO_REDIRECT);
	cr_assert_eq(m.u.hello_ack.redirect_ipv4, 0x0a000002);
	cr_assert_eq(m.u.hello_ack.redirect_port, 47001);
	cr_assert_eq(m.u.hello_ack.min_frame_seq, 0);
	a.redirect_port = 0; /* a redirect to nowhere is refused */
	cr_assert_eq(rtci_proto_encode_hello_ack(buf, sizeof(buf), &info, &a, key), -EINVAL);

	struct rtci_proto_command c = { .kind = RTCI_PROTO_CMD_MOVE, .move_ipv4 = 0x0a000003,
					.move_port = 47002 };
	n = rtci_proto_encode_command(buf, sizeof(buf), &info, &c, key);
	cr_assert_gt(n, 0);
	cr_assert_eq(rtci_proto_decode(buf, (size_t)n, &m), 0);
	cr_assert_eq(m.u.command.kind, RTCI_PROTO_CMD_MOVE);
	cr_assert_eq(m.u.command.move_ipv4, 0x0a000003);
	cr_assert_eq(m.u.command.move_port, 47002);
	cr_assert_eq(m.u.command.count, 0);
	c.move_ipv4 = 0;
	cr_assert_eq(rtci_proto_encode_command(buf, sizeof(buf), &info, &c, key), -EINVAL);
}

Test(protocol, report_roundtrip)
{
	struct rtci_proto_report r = { .bytes_sent = 1ull << 35, .frames_sent = 1000,
				       .frames_dropped = 3, .send_rate_bps = 25000000,
				       .backlog_bytes = 4096, .interval_us = 500000 };
	uint8_t buf[256];
	long n = rtci_proto_encode_report(buf, sizeof(buf), &info, &r, key);
	cr_assert_gt(n, 0);
	struct rtci_proto_msg m;
	cr_assert_eq(rtci_proto_decode(buf, (size_t)n, &m), 0);
	check_common(&m, RTCI_PROTO_REPORT);
	cr_assert_eq(m.u.report.bytes_sent, 1ull << 35);
	cr_assert_eq(m.u.report.frames_sent, 1000);
	cr_assert_eq(m.u.report.frames_dropped, 3);
	cr_assert_eq(m.u.report.send_rate_bps, 25000000);
	cr_assert_eq(m.u.report.backlog_bytes, 4096);
	cr_assert_eq(m.u.report.interval_us, 500000);
}

static uint8_t frame[5000];
static uint8_t dbufs[8][RTCI_PROTO_MAX_DATAGRAM];

static long fragment_frame(size_t len, uint16_t fs, struct rtci_proto_datagram *dg)
{
	for (size_t i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i * 7 + 3);
	for (int i = 0; i < 8; i++)
		dg[i] = (struct rtci_proto_datagram){ dbufs[i], sizeof(dbufs[i]), 0 };
	return rtci_proto_fragment(&info, frame, len, fs, key, dg, 8);
}

Test(protocol, fragment_roundtrip)
{
	struct rtci_proto_datagram dg[8];
	long n = fragment_frame(5000, 1400, dg);
	cr_assert_eq(n, 4);
	uint8_t re[5000];
	for (long i = 0; i < n; i++) {
		struct rtci_proto_msg m;
		cr_assert_eq(rtci_proto_decode(dg[i].buf, dg[i].len, &m), 0);
		check_common(&m, RTCI_PROTO_FRAGMENT);
		cr_assert_eq(m.hdr.frag_index, i);
		cr_assert_eq(m.hdr.frag_count, 4);
		cr_assert_eq(m.hdr.frag_size, 1400);
		cr_assert_eq(m.hdr.frame_len, 5000);
		cr_assert_eq(m.body_len, i < 3 ? 1400u : 800u);
		cr_assert_eq(m.tag != NULL, i == 3);
		memcpy(re + i * 1400, m.body, m.body_len);
		if (i == 3)
			cr_assert_eq(rtci_auth_verify(key, &m.hdr, re, 5000, m.tag), 0);
	}
	cr_assert_eq(memcmp(re, frame, 5000), 0);
	cr_assert_leq(dg[3].len, RTCI_PROTO_MAX_DATAGRAM);
}

Test(protocol, fragment_single_and_exact_multiple)
{
	struct rtci_proto_datagram dg[8];
	cr_assert_eq(fragment_frame(1, 1400, dg), 1);
	cr_assert_eq(dg[0].len, RTCI_PROTO_HDR_LEN + 1 + RTCI_PROTO_TAG_LEN);
	cr_assert_eq(fragment_frame(2800, 1400, dg), 2);
	struct rtci_proto_msg m;
	cr_assert_eq(rtci_proto_decode(dg[1].buf, dg[1].len, &m), 0);
	cr_assert_eq(m.body_len, 1400);
}

Test(protocol, fragment_errors)
{
	struct rtci_proto_datagram dg[8];
	cr_assert_eq(fragment_frame(0, 1400, dg), -RTCI_ERR_PROTO_FRAME_LEN);
	cr_assert_eq(fragment_frame(100, 0, dg), -RTCI_ERR_PROTO_FRAG_SIZE);
	cr_assert_eq(fragment_frame(5000, 100, dg), -ENOSPC); /* 50 fragments > 8 buffers */
	for (int i = 0; i < 8; i++)
		dg[i] = (struct rtci_proto_datagram){ dbufs[i], 100, 0 };
	cr_assert_eq(rtci_proto_fragment(&info, frame, 1000, 1400, key, dg, 8), -ENOSPC);
	cr_assert_eq(rtci_proto_fragment_count((size_t)UINT16_MAX * 2 + 1, 2),
		     -RTCI_ERR_PROTO_FRAME_LEN);
}

Test(protocol, encode_buffer_too_small)
{
	struct rtci_proto_report r = { 0 };
	uint8_t buf[RTCI_PROTO_HDR_LEN + RTCI_PROTO_REPORT_LEN + RTCI_PROTO_TAG_LEN];
	cr_assert_eq(rtci_proto_encode_report(buf, sizeof(buf) - 1, &info, &r, key), -ENOSPC);
	cr_assert_eq(rtci_proto_encode_report(buf, sizeof(buf), &info, &r, key), (long)sizeof(buf));
	struct rtci_proto_result res = { .topk_count = RTCI_PROTO_MAX_TOPK + 1 };
	cr_assert_eq(rtci_proto_encode_result(buf, sizeof(buf), &info, &res, key), -EINVAL);
}

Test(protocol, set_backlog_keeps_tag_valid)
{
	struct rtci_proto_datagram dg[8];
	cr_assert_eq(fragment_frame(100, 1400, dg), 1);
	cr_assert_eq(rtci_proto_set_backlog(dg[0].buf, dg[0].len, 999), 0);
	struct rtci_proto_msg m;
	cr_assert_eq(rtci_proto_decode(dg[0].buf, dg[0].len, &m), 0);
	cr_assert_eq(m.hdr.backlog_bytes, 999);
	cr_assert_eq(rtci_auth_verify(key, &m.hdr, m.body, m.body_len, m.tag), 0);
}

/* ---- malformed input: a valid datagram with one field broken ---- */

static uint8_t g[RTCI_PROTO_MAX_DATAGRAM];
static size_t glen;

/* Middle fragment (index 1 of 4, no tag) of a 5000-byte frame. */
static void mid_fragment(void)
{
	struct rtci_proto_datagram dg[8];
	cr_assert_eq(fragment_frame(5000, 1400, dg), 4);
	memcpy(g, dg[1].buf, dg[1].len);
	glen = dg[1].len;
}

static void last_fragment(void)
{
	struct rtci_proto_datagram dg[8];
	cr_assert_eq(fragment_frame(5000, 1400, dg), 4);
	memcpy(g, dg[3].buf, dg[3].len);
	glen = dg[3].len;
}

static void command_msg(void)
{
	struct rtci_proto_command c = { .kind = RTCI_PROTO_CMD_RATE_SWITCH, .new_setup_id = 1 };
	long n = rtci_proto_encode_command(g, sizeof(g), &info, &c, key);
	cr_assert_gt(n, 0);
	glen = (size_t)n;
}

static int dec(void)
{
	struct rtci_proto_msg m;
	return rtci_proto_decode(g, glen, &m);
}

static void put16(size_t off, uint16_t v)
{
	g[off] = (uint8_t)(v >> 8);
	g[off + 1] = (uint8_t)v;
}

static void put32(size_t off, uint32_t v)
{
	put16(off, (uint16_t)(v >> 16));
	put16(off + 2, (uint16_t)v);
}

Test(protocol_reject, truncated)
{
	mid_fragment();
	for (size_t n = 0; n < RTCI_PROTO_HDR_LEN; n++) {
		struct rtci_proto_msg m;
		cr_assert_eq(rtci_proto_decode(g, n, &m), -RTCI_ERR_PROTO_TRUNCATED, "len %zu", n);
	}
	cr_assert_eq(rtci_proto_decode(NULL, 100, &(struct rtci_proto_msg){ 0 }),
		     -RTCI_ERR_PROTO_TRUNCATED);
}

Test(protocol_reject, bad_magic)
{
	mid_fragment();
	g[0] ^= 1;
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_BAD_MAGIC);
}

Test(protocol_reject, bad_version)
{
	mid_fragment();
	g[4] = 2;
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_BAD_VERSION);
	g[4] = 0;
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_BAD_VERSION);
}

Test(protocol_reject, bad_type)
{
	mid_fragment();
	g[5] = 0;
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_BAD_TYPE);
	g[5] = RTCI_PROTO_TYPE_MAX + 1;
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_BAD_TYPE);
	g[5] = 255;
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_BAD_TYPE);
}

Test(protocol_reject, bad_header_length)
{
	mid_fragment();
	g[6] = 44;
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_BAD_HDR_LEN);
	g[6] = 50;
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_BAD_HDR_LEN);
	/* announces more header than the datagram has */
	g[6] = 252;
	cr_assert_eq(rtci_proto_decode(g, 100, &(struct rtci_proto_msg){ 0 }),
		     -RTCI_ERR_PROTO_TRUNCATED);
}

Test(protocol, longer_header_is_skipped)
{
	/* A future minor revision may append header fields: v1 receivers skip them. */
	mid_fragment();
	uint8_t big[RTCI_PROTO_MAX_DATAGRAM + 8];
	memcpy(big, g, RTCI_PROTO_HDR_LEN);
	memset(big + RTCI_PROTO_HDR_LEN, 0xee, 8);
	memcpy(big + RTCI_PROTO_HDR_LEN + 8, g + RTCI_PROTO_HDR_LEN, glen - RTCI_PROTO_HDR_LEN);
	big[6] = RTCI_PROTO_HDR_LEN + 8;
	struct rtci_proto_msg m;
	cr_assert_eq(rtci_proto_decode(big, glen + 8, &m), 0);
	cr_assert_eq(m.body, big + RTCI_PROTO_HDR_LEN + 8);
	cr_assert_eq(memcmp(m.body, g + RTCI_PROTO_HDR_LEN, 1400), 0);
}

Test(protocol, unknown_flags_ignored)
{
	mid_fragment();
	g[7] |= 0x80;
	cr_assert_eq(dec(), 0);
}

Test(protocol_reject, tag_flag)
{
	mid_fragment();
	g[7] |= RTCI_PROTO_F_TAG; /* a middle fragment claiming a tag */
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_TAG_FLAG);
	last_fragment();
	g[7] &= (uint8_t)~RTCI_PROTO_F_TAG; /* last fragment without its tag */
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_TAG_FLAG);
	command_msg();
	g[7] = 0; /* commands are always authenticated */
	glen -= RTCI_PROTO_TAG_LEN;
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_TAG_FLAG);
}

Test(protocol_reject, tag_truncated)
{
	command_msg();
	glen = RTCI_PROTO_HDR_LEN + 10;
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_TRUNCATED);
}

Test(protocol_reject, fragment_count_zero)
{
	mid_fragment();
	put16(28, 0);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_FRAG_COUNT);
}

Test(protocol_reject, fragment_index_out_of_range)
{
	mid_fragment();
	put16(26, 4);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_FRAG_INDEX);
	put16(26, 0xffff);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_FRAG_INDEX);
}

Test(protocol_reject, fragment_size_zero)
{
	mid_fragment();
	put16(30, 0);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_FRAG_SIZE);
}

Test(protocol_reject, frame_length_inconsistent)
{
	mid_fragment();
	put32(32, 0);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_FRAME_LEN);
	put32(32, 4200); /* needs 3 fragments, header says 4 */
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_FRAME_LEN);
	put32(32, 5601); /* needs 5 */
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_FRAME_LEN);
	put32(32, 0xffffffffu);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_FRAME_LEN);
	put32(32, 4201); /* smallest consistent length */
	cr_assert_eq(dec(), 0);
}

Test(protocol_reject, payload_length)
{
	mid_fragment();
	glen -= 1;
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_PAYLOAD_LEN);
	last_fragment();
	glen -= 1; /* tag now overlaps the payload's last byte: payload one short */
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_PAYLOAD_LEN);
}

Test(protocol_reject, non_fragment_geometry)
{
	command_msg();
	put16(28, 2);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_FRAG_COUNT);
	command_msg();
	put16(26, 1);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_FRAG_INDEX);
	command_msg();
	put16(30, 1400);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_FRAG_SIZE);
	command_msg();
	put32(32, 13);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_FRAME_LEN);
}

/* Rebuilds a message around a hand-made body (valid tag, consistent frame_len). */
static void raw_message(uint8_t type, const uint8_t *body, size_t n)
{
	command_msg();
	g[5] = type;
	memcpy(g + RTCI_PROTO_HDR_LEN, body, n);
	put32(32, (uint32_t)n);
	memset(g + RTCI_PROTO_HDR_LEN + n, 0, RTCI_PROTO_TAG_LEN);
	glen = RTCI_PROTO_HDR_LEN + n + RTCI_PROTO_TAG_LEN;
}

Test(protocol_reject, body_lengths)
{
	uint8_t body[64] = { 0 };
	body[0] = RTCI_PROTO_CMD_RATE_SWITCH;
	raw_message(RTCI_PROTO_COMMAND, body, 11);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_BODY_LEN);
	raw_message(RTCI_PROTO_COMMAND, body, 13);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_BODY_LEN);
	body[0] = RTCI_PROTO_CMD_PLAN;
	body[1] = 3; /* three setups: 12 + 2 x 2 bytes */
	raw_message(RTCI_PROTO_COMMAND, body, 15);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_BODY_LEN);
	raw_message(RTCI_PROTO_COMMAND, body, 17);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_BODY_LEN);
	raw_message(RTCI_PROTO_COMMAND, body, 16);
	cr_assert_eq(dec(), 0);
	memset(body, 0, sizeof(body));
	raw_message(RTCI_PROTO_RESULT, body, 19);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_BODY_LEN);
	body[3] = 1; /* one top-k entry announced, none present */
	raw_message(RTCI_PROTO_RESULT, body, 20);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_BODY_LEN);
	memset(body, 0, sizeof(body));
	raw_message(RTCI_PROTO_HELLO, body, 15);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_BODY_LEN);
	body[15] = 2; /* two setups announced, one present */
	raw_message(RTCI_PROTO_HELLO, body, 18);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_BODY_LEN);
	memset(body, 0, sizeof(body));
	raw_message(RTCI_PROTO_HELLO_ACK, body, 15);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_BODY_LEN);
	raw_message(RTCI_PROTO_REPORT, body, 33);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_BODY_LEN);
	raw_message(RTCI_PROTO_REPORT, body, 32);
	cr_assert_eq(dec(), 0);
}

Test(protocol_reject, body_fields)
{
	uint8_t body[64] = { 0 };
	body[2] = RTCI_PROTO_RES_STATUS_MAX + 1;
	raw_message(RTCI_PROTO_RESULT, body, 20);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_BAD_STATUS);
	memset(body, 0, sizeof(body));
	body[3] = RTCI_PROTO_MAX_TOPK + 1;
	raw_message(RTCI_PROTO_RESULT, body, 20);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_BAD_TOPK);
	memset(body, 0, sizeof(body));
	body[3] = 1;
	body[20 + 3] = 1; /* top-k entry reserved half-word */
	raw_message(RTCI_PROTO_RESULT, body, 28);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_RESERVED);
	memset(body, 0, sizeof(body));
	body[0] = 9;
	raw_message(RTCI_PROTO_COMMAND, body, 12);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_BAD_COMMAND);
	body[0] = RTCI_PROTO_CMD_RATE_SWITCH;
	body[1] = 1;
	raw_message(RTCI_PROTO_COMMAND, body, 12);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_RESERVED);
	body[0] = RTCI_PROTO_CMD_PLAN; /* a plan of one setup is a rate switch */
	raw_message(RTCI_PROTO_COMMAND, body, 12);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_BAD_COMMAND);
	body[1] = RTCI_PROTO_MAX_PLAN + 1;
	raw_message(RTCI_PROTO_COMMAND, body, 12 + 2 * RTCI_PROTO_MAX_PLAN);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_BAD_COMMAND);
	memset(body, 0, sizeof(body));
	body[14] = 0;
	body[15] = RTCI_PROTO_MAX_SETUPS + 1;
	raw_message(RTCI_PROTO_HELLO, body, 16);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_BAD_SETUPS);
	memset(body, 0, sizeof(body));
	body[0] = RTCI_PROTO_HELLO_STATUS_MAX + 1;
	raw_message(RTCI_PROTO_HELLO_ACK, body, 16);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_BAD_STATUS);
	body[0] = 0;
	body[7] = 1;
	raw_message(RTCI_PROTO_HELLO_ACK, body, 16);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_RESERVED);
	/* bytes 6-7 are the retry-after of a busy ack, reserved in the others */
	body[0] = RTCI_PROTO_HELLO_BUSY;
	raw_message(RTCI_PROTO_HELLO_ACK, body, 16);
	cr_assert_eq(dec(), 0);
	/* a redirect's address is bytes 8-13, 14-15 reserved */
	memset(body, 0, sizeof(body));
	body[0] = RTCI_PROTO_HELLO_REDIRECT;
	body[11] = 2;
	body[13] = 1;
	raw_message(RTCI_PROTO_HELLO_ACK, body, 16);
	cr_assert_eq(dec(), 0);
	body[15] = 1;
	raw_message(RTCI_PROTO_HELLO_ACK, body, 16);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_RESERVED);
	body[15] = 0;
	body[13] = 0; /* port 0 */
	raw_message(RTCI_PROTO_HELLO_ACK, body, 16);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_BAD_STATUS);
	/* a move's bytes 8-11 are reserved */
	memset(body, 0, sizeof(body));
	body[0] = RTCI_PROTO_CMD_MOVE;
	body[3] = 1;
	body[7] = 9;
	raw_message(RTCI_PROTO_COMMAND, body, 12);
	cr_assert_eq(dec(), 0);
	body[9] = 1;
	raw_message(RTCI_PROTO_COMMAND, body, 12);
	cr_assert_eq(dec(), -RTCI_ERR_PROTO_RESERVED);
}

Test(protocol, error_names)
{
	cr_assert_str_eq(rtci_strerror(-RTCI_ERR_PROTO_BAD_MAGIC), "bad magic");
	for (int c = RTCI_ERR_PROTO_TRUNCATED; c <= RTCI_ERR_PROTO_RESERVED; c++)
		cr_assert_str_neq(rtci_strerror(-c), "unknown project error", "code %d", c);
	cr_assert_str_eq(rtci_proto_type_name(RTCI_PROTO_HELLO_ACK), "hello-ack");
}

Test(protocol, header_write_read_and_peek)
{
	struct rtci_proto_hdr h = { .version = 1, .type = RTCI_PROTO_FRAGMENT, .hdr_len = 48,
				    .flags = 0, .tenant_id = 0x01020304u, .device_id = 0xa0b0c0d0u,
				    .seq = 0x1122334455667788ull, .setup_id = 7, .frag_index = 2,
				    .frag_count = 3, .frag_size = 1400, .frame_len = 4096,
				    .backlog_bytes = 99, .capture_us = 123456789 };
	uint8_t b[RTCI_PROTO_HDR_LEN];
	rtci_header_write(b, &h);
	cr_expect_eq(b[0], 'R');
	cr_expect_eq(b[8], 0x01);  /* big-endian tenant */
	cr_expect_eq(b[15], 0xd0); /* device, last byte */
	struct rtci_proto_hdr r;
	memset(&r, 0xff, sizeof(r));
	rtci_header_read(b, &r);
	cr_expect(r.version == h.version && r.type == h.type && r.hdr_len == h.hdr_len &&
		  r.flags == h.flags && r.tenant_id == h.tenant_id && r.device_id == h.device_id &&
		  r.seq == h.seq && r.setup_id == h.setup_id && r.frag_index == h.frag_index &&
		  r.frag_count == h.frag_count && r.frag_size == h.frag_size &&
		  r.frame_len == h.frame_len && r.backlog_bytes == h.backlog_bytes &&
		  r.capture_us == h.capture_us);
	uint32_t ten = 0, dev = 0;
	cr_expect(rtci_header_peek_ids(b, sizeof(b), &ten, &dev));
	cr_expect_eq(ten, h.tenant_id);
	cr_expect_eq(dev, h.device_id);
	cr_expect_not(rtci_header_peek_ids(b, sizeof(b) - 1, &ten, &dev));
	cr_expect_not(rtci_header_peek_ids(NULL, 100, &ten, &dev));
}

Test(protocol, local_setup_travels_in_rate_switches_and_plans)
{
	cr_assert_eq(RTCI_SETUP_LOCAL, 0xFFFF);
	struct rtci_proto_command c = { .kind = RTCI_PROTO_CMD_RATE_SWITCH,
					.new_setup_id = RTCI_SETUP_LOCAL, .apply_from_seq = 77 };
	uint8_t buf[256];
	long n = rtci_proto_encode_command(buf, sizeof(buf), &info, &c, key);
	cr_assert_gt(n, 0);
	/* on the wire: the setup field after kind and count, little-endian 0xFFFF */
	cr_assert_eq(buf[RTCI_PROTO_HDR_LEN + 2], 0xFF);
	cr_assert_eq(buf[RTCI_PROTO_HDR_LEN + 3], 0xFF);
	struct rtci_proto_msg m;
	cr_assert_eq(rtci_proto_decode(buf, (size_t)n, &m), 0);
	cr_assert_eq(m.u.command.new_setup_id, RTCI_SETUP_LOCAL);
	cr_assert_eq(m.u.command.plan[0], RTCI_SETUP_LOCAL);
	struct rtci_proto_command p = { .kind = RTCI_PROTO_CMD_PLAN, .count = 3, .apply_from_seq = 9,
					.plan = { 4, RTCI_SETUP_LOCAL, RTCI_SETUP_LOCAL } };
	n = rtci_proto_encode_command(buf, sizeof(buf), &info, &p, key);
	cr_assert_gt(n, 0);
	cr_assert_eq(rtci_proto_decode(buf, (size_t)n, &m), 0);
	cr_assert_eq(m.u.command.count, 3);
	cr_assert_eq(m.u.command.plan[0], 4);
	cr_assert_eq(m.u.command.plan[1], RTCI_SETUP_LOCAL);
	cr_assert_eq(m.u.command.plan[2], RTCI_SETUP_LOCAL);
}
