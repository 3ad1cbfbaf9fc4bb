/* Writes captures of RTCI traffic for the Wireshark dissector test (tests/wireshark_it.sh).
 *
 *   wireshark_pcap good OUT.pcap [PORT]       every message type and variant, made by the encoders
 *   wireshark_pcap malformed OUT.pcap [PORT]  one datagram per validation rule of docs/protocol.md
 *
 * PORT is the gateway's UDP port (default 47000; another one exercises the heuristic dissector).
 *
 * Packets are Ethernet / IPv4 / UDP (checksum 0) in a classic pcap file, timestamps 1 s apart
 * from a fixed epoch, so the file is byte-for-byte the same on every run. Each malformed
 * datagram is first given to rtci_proto_decode(), which must reject it with the code the test
 * expects: the capture then also shows that the C decoder and the dissector agree. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rtci_error.h"
#include "dataplane/auth.h"
#include "dataplane/protocol.h"
#include "dataplane/wire.h"

#define DEV_IP 0x0a4d0002u /* 10.77.0.2 */
#define GW_IP 0x0a4d0001u  /* 10.77.0.1 */
#define DEV_PORT 40000

static FILE *out;
static uint16_t gw_port = 47000;
static unsigned npackets;
static uint8_t key[32];

static void put32le(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void pcap_header(void)
{
	uint8_t h[24] = { 0 };
	put32le(h, 0xa1b2c3d4u); /* microsecond timestamps */
	h[4] = 2;                /* version 2.4 */
	h[6] = 4;
	put32le(h + 16, 65535); /* snaplen */
	put32le(h + 20, 1);     /* LINKTYPE_ETHERNET */
	fwrite(h, 1, sizeof(h), out);
}

/* One UDP datagram; to_gw picks the direction (device -> gateway or back). */
static void packet(const uint8_t *dgram, size_t len, int to_gw)
{
	uint8_t f[14 + 20 + 8 + 2048];
	if (len > 2048) {
		fprintf(stderr, "wireshark_pcap: datagram too long\n");
		exit(1);
	}
	static const uint8_t gw_mac[6] = { 0x02, 0, 0, 0, 0, 1 }, dev_mac[6] = { 0x02, 0, 0, 0, 0, 2 };
	memcpy(f, to_gw ? gw_mac : dev_mac, 6);
	memcpy(f + 6, to_gw ? dev_mac : gw_mac, 6);
	rtci_st16(f + 12, 0x0800);
	uint8_t *ip = f + 14;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	rtci_st16(ip + 2, (uint16_t)(20 + 8 + len));
	ip[8] = 64;
	ip[9] = 17;
	rtci_st32(ip + 12, to_gw ? DEV_IP : GW_IP);
	rtci_st32(ip + 16, to_gw ? GW_IP : DEV_IP);
	uint32_t sum = 0;
	for (int i = 0; i < 20; i += 2)
		sum += rtci_ld16(ip + i);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	rtci_st16(ip + 10, (uint16_t)~sum);
	uint8_t *udp = ip + 20;
	rtci_st16(udp, to_gw ? DEV_PORT : gw_port);
	rtci_st16(udp + 2, to_gw ? gw_port : DEV_PORT);
	rtci_st16(udp + 4, (uint16_t)(8 + len));
	rtci_st16(udp + 6, 0);
	memcpy(udp + 8, dgram, len);

	uint8_t rec[16];
	uint32_t caplen = (uint32_t)(14 + 20 + 8 + len);
	put32le(rec, 1700000000u + npackets);
	put32le(rec + 4, 0);
	put32le(rec + 8, caplen);
	put32le(rec + 12, caplen);
	fwrite(rec, 1, sizeof(rec), out);
	fwrite(f, 1, caplen, out);
	npackets++;
}

static void check(long n, const char *what)
{
	if (n < 0) {
		fprintf(stderr, "wireshark_pcap: %s: %s\n", what, rtci_strerror((int)n));
		exit(1);
	}
}

static struct rtci_proto_frame_info info(uint64_t seq, uint16_t setup)
{
	return (struct rtci_proto_frame_info){ .tenant_id = 7, .device_id = 42, .seq = seq,
					       .setup_id = setup, .backlog_bytes = 0,
					       .capture_us = 1000000 + seq };
}

static void good(void)
{
	uint8_t b[2048];
	struct rtci_proto_frame_info fi;

	struct rtci_proto_hello h = { .model_id = 0, .fps_milli = 5000, .deadline_us = 200000,
				      .max_frag_size = 1400, .n_setups = 3, .setups = { 3, 9, 47 } };
	fi = info(0x1122334455667788ull, 47);
	long n = rtci_proto_encode_hello(b, sizeof(b), &fi, &h, key);
	check(n, "hello");
	packet(b, (size_t)n, 1);

	struct rtci_proto_hello_ack a = { .status = RTCI_PROTO_HELLO_ACCEPTED,
					  .initial_setup_id = 47, .max_frag_size = 1408,
					  .min_frame_seq = 1025 };
	check(n = rtci_proto_encode_hello_ack(b, sizeof(b), &fi, &a, key), "hello-ack");
	packet(b, (size_t)n, 0);
	/* a hello that takes the extended ack, and that ack (the gateway's largest frame) */
	h.ack_ext = true;
	fi.seq++;
	check(n = rtci_proto_encode_hello(b, sizeof(b), &fi, &h, key), "hello ack_ext");
	packet(b, (size_t)n, 1);
	a.max_frame_len = 12828;
	check(n = rtci_proto_encode_hello_ack(b, sizeof(b), &fi, &a, key), "extended hello-ack");
	packet(b, (size_t)n, 0);
	fi.seq--;
	a = (struct rtci_proto_hello_ack){ .status = RTCI_PROTO_HELLO_BUSY, .max_frag_size = 1408,
					   .retry_after_ms = 2000 };
	check(n = rtci_proto_encode_hello_ack(b, sizeof(b), &fi, &a, key), "busy");
	packet(b, (size_t)n, 0);
	a = (struct rtci_proto_hello_ack){ .status = RTCI_PROTO_HELLO_REDIRECT,
					   .max_frag_size = 1408, .redirect_ipv4 = 0x0a4d0009u,
					   .redirect_port = 47001 };
	check(n = rtci_proto_encode_hello_ack(b, sizeof(b), &fi, &a, key), "redirect");
	packet(b, (size_t)n, 0);

	/* a 40-byte frame in three 16-byte fragments, sent out of order: 0, 2, 1 */
	uint8_t frame[40];
	for (unsigned i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(0xa0 + i);
	uint8_t fb[3][128];
	struct rtci_proto_datagram d[3] = { { fb[0], 128, 0 }, { fb[1], 128, 0 }, { fb[2], 128, 0 } };
	fi = info(1025, 47);
	fi.backlog_bytes = 512;
	check(rtci_proto_fragment(&fi, frame, sizeof(frame), 16, key, d, 3), "fragment");
	packet(fb[0], d[0].len, 1);
	packet(fb[2], d[2].len, 1);
	packet(fb[1], d[1].len, 1);
	/* a frame of one fragment */
	fi = info(1026, 47);
	check(rtci_proto_fragment(&fi, frame, 8, 1400, key, d, 1), "single fragment");
	packet(fb[0], d[0].len, 1);

	struct rtci_proto_result r = { .class_id = 5, .status = RTCI_PROTO_RES_OK, .topk_count = 2,
				       .score = 0.75f, .queue_us = 120, .inference_us = 900,
				       .total_us = 1500,
				       .topk = { { 5, 0.75f }, { 3, 0.125f } } };
	fi = info(1025, 47);
	check(n = rtci_proto_encode_result(b, sizeof(b), &fi, &r, key), "result");
	packet(b, (size_t)n, 0);
	r = (struct rtci_proto_result){ .status = RTCI_PROTO_RES_DROPPED_DEADLINE };
	fi = info(1026, 47);
	check(n = rtci_proto_encode_result(b, sizeof(b), &fi, &r, key), "dropped result");
	packet(b, (size_t)n, 0);

	struct rtci_proto_command c = { .kind = RTCI_PROTO_CMD_RATE_SWITCH, .new_setup_id = 9,
					.apply_from_seq = 1030 };
	fi = info(1, 47);
	check(n = rtci_proto_encode_command(b, sizeof(b), &fi, &c, key), "rate switch");
	packet(b, (size_t)n, 0);
	c = (struct rtci_proto_command){ .kind = RTCI_PROTO_CMD_PLAN, .count = 3,
					 .new_setup_id = 9, .apply_from_seq = 1031,
					 .plan = { 9, 3, 3 } };
	fi = info(2, 9);
	check(n = rtci_proto_encode_command(b, sizeof(b), &fi, &c, key), "plan");
	packet(b, (size_t)n, 0);
	c = (struct rtci_proto_command){ .kind = RTCI_PROTO_CMD_MOVE, .move_ipv4 = 0x0a4d0009u,
					 .move_port = 47001 };
	fi = info(3, 3);
	check(n = rtci_proto_encode_command(b, sizeof(b), &fi, &c, key), "move");
	packet(b, (size_t)n, 0);

	struct rtci_proto_report rep = { .bytes_sent = 123456, .frames_sent = 40,
					 .frames_dropped = 2, .send_rate_bps = 800000,
					 .backlog_bytes = 3000, .interval_us = 1000000 };
	fi = info(1027, 3);
	check(n = rtci_proto_encode_report(b, sizeof(b), &fi, &rep, key), "report");
	packet(b, (size_t)n, 1);
	/* the same report with a 52-byte header: receivers skip what v1 does not define */
	uint8_t x[2048];
	memcpy(x, b, RTCI_PROTO_HDR_LEN);
	x[6] = RTCI_PROTO_HDR_LEN + 4;
	memset(x + RTCI_PROTO_HDR_LEN, 0xee, 4);
	memcpy(x + RTCI_PROTO_HDR_LEN + 4, b + RTCI_PROTO_HDR_LEN, (size_t)n - RTCI_PROTO_HDR_LEN);
	packet(x, (size_t)n + 4, 1);
}

/* Writes a broken datagram after checking that the decoder rejects it with the expected code. */
static void bad(const uint8_t *src, size_t len, int expect, const char *what)
{
	struct rtci_proto_msg m;
	int rc = rtci_proto_decode(src, len, &m);
	if (rc != -expect) {
		fprintf(stderr, "wireshark_pcap: %s: decoder says %s, expected %s\n", what,
			rc ? rtci_strerror(rc) : "valid", rtci_strerror(-expect));
		exit(1);
	}
	packet(src, len, 1);
}

static void malformed(void)
{
	uint8_t b[256], t[256];
	struct rtci_proto_frame_info fi = info(5, 3);
	struct rtci_proto_hello h = { .fps_milli = 5000, .deadline_us = 200000,
				      .max_frag_size = 1400, .n_setups = 1, .setups = { 3 } };
	long n = rtci_proto_encode_hello(b, sizeof(b), &fi, &h, key);
	check(n, "hello");
	size_t hl = (size_t)n;
#define EDIT(stmt) (memcpy(t, b, hl), stmt)

	bad(b, 3, RTCI_ERR_PROTO_TRUNCATED, "3 bytes");
	bad(b, 30, RTCI_ERR_PROTO_TRUNCATED, "30 bytes");
	EDIT(t[0] = 'X');
	bad(t, hl, RTCI_ERR_PROTO_BAD_MAGIC, "magic");
	EDIT(t[4] = 2);
	bad(t, hl, RTCI_ERR_PROTO_BAD_VERSION, "version");
	EDIT(t[5] = 9);
	bad(t, hl, RTCI_ERR_PROTO_BAD_TYPE, "type");
	EDIT(t[6] = 50);
	bad(t, hl, RTCI_ERR_PROTO_BAD_HDR_LEN, "hdr_len");
	EDIT(t[7] = 0);
	bad(t, hl, RTCI_ERR_PROTO_TAG_FLAG, "hello without tag");
	EDIT(rtci_st16(t + 28, 2));
	bad(t, hl, RTCI_ERR_PROTO_FRAG_COUNT, "hello in 2 fragments");
	EDIT(rtci_st16(t + 30, 16));
	bad(t, hl, RTCI_ERR_PROTO_FRAG_SIZE, "hello with a fragment size");
	EDIT(rtci_st32(t + 32, 20));
	bad(t, hl, RTCI_ERR_PROTO_FRAME_LEN, "frame_len");
	EDIT(rtci_st16(t + 48 + 14, 65));
	bad(t, hl, RTCI_ERR_PROTO_BAD_SETUPS, "n_setups");
	EDIT(rtci_st16(t + 48 + 14, 2));
	bad(t, hl, RTCI_ERR_PROTO_BODY_LEN, "setups vs body");

	/* fragments: index beyond count, payload shorter than its index implies */
	uint8_t frame[40] = { 0 }, fb[3][128];
	struct rtci_proto_datagram d[3] = { { fb[0], 128, 0 }, { fb[1], 128, 0 }, { fb[2], 128, 0 } };
	check(rtci_proto_fragment(&fi, frame, sizeof(frame), 16, key, d, 3), "fragment");
	memcpy(t, fb[0], d[0].len);
	rtci_st16(t + 26, 3);
	bad(t, d[0].len, RTCI_ERR_PROTO_FRAG_INDEX, "frag_index");
	bad(fb[0], d[0].len - 1, RTCI_ERR_PROTO_PAYLOAD_LEN, "payload");
	memcpy(t, fb[0], d[0].len);
	t[7] = RTCI_PROTO_F_TAG;
	bad(t, d[0].len, RTCI_ERR_PROTO_TAG_FLAG, "tag on the first fragment");
	memcpy(t, fb[2], d[2].len);
	t[7] = 0;
	bad(t, d[2].len, RTCI_ERR_PROTO_TAG_FLAG, "last fragment without tag");

	/* bodies */
	struct rtci_proto_hello_ack a = { .status = 0, .max_frag_size = 1408 };
	check(n = rtci_proto_encode_hello_ack(b, sizeof(b), &fi, &a, key), "ack");
	hl = (size_t)n;
	EDIT(t[48] = 7);
	bad(t, hl, RTCI_ERR_PROTO_BAD_STATUS, "ack status");
	EDIT(rtci_st16(t + 48 + 6, 100));
	bad(t, hl, RTCI_ERR_PROTO_RESERVED, "retry_after in an accept");
	a.max_frame_len = 4096;
	check(n = rtci_proto_encode_hello_ack(b, sizeof(b), &fi, &a, key), "extended ack");
	hl = (size_t)n;
	EDIT(rtci_st32(t + 48 + 16, 0));
	bad(t, hl, RTCI_ERR_PROTO_BODY_LEN, "extended ack without a limit");
	struct rtci_proto_result r = { .class_id = 1, .topk_count = 1, .topk = { { 1, 1.0f } } };
	check(n = rtci_proto_encode_result(b, sizeof(b), &fi, &r, key), "result");
	hl = (size_t)n;
	EDIT(t[48 + 3] = 17);
	bad(t, hl, RTCI_ERR_PROTO_BAD_TOPK, "topk");
	EDIT(t[48 + 2] = 4);
	bad(t, hl, RTCI_ERR_PROTO_BAD_STATUS, "result status");
	struct rtci_proto_command c = { .kind = 1, .new_setup_id = 3, .apply_from_seq = 6 };
	check(n = rtci_proto_encode_command(b, sizeof(b), &fi, &c, key), "command");
	hl = (size_t)n;
	EDIT(t[48] = 9);
	bad(t, hl, RTCI_ERR_PROTO_BAD_COMMAND, "command kind");
	EDIT(t[48 + 1] = 1);
	bad(t, hl, RTCI_ERR_PROTO_RESERVED, "rate switch count");
	struct rtci_proto_report rep = { .frames_sent = 1 };
	check(n = rtci_proto_encode_report(b, sizeof(b), &fi, &rep, key), "report");
	bad(b, (size_t)n - 4, RTCI_ERR_PROTO_FRAME_LEN, "short report");
#undef EDIT
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4 || (strcmp(argv[1], "good") && strcmp(argv[1], "malformed"))) {
		fprintf(stderr, "usage: wireshark_pcap good|malformed OUT.pcap [PORT]\n");
		return 2;
	}
	if (argc == 4)
		gw_port = (uint16_t)strtoul(argv[3], NULL, 10);
	if (rtci_auth_init() < 0)
		return 1;
	uint8_t tenant_key[32];
	for (int i = 0; i < 32; i++)
		tenant_key[i] = (uint8_t)i;
	check(rtci_auth_derive_device_key(tenant_key, 7, 42, key), "key");
	if (!(out = fopen(argv[2], "wb"))) {
		perror(argv[2]);
		return 1;
	}
	pcap_header();
	if (!strcmp(argv[1], "good"))
		good();
	else
		malformed();
	if (fclose(out) != 0) {
		perror(argv[2]);
		return 1;
	}
	return 0;
}
