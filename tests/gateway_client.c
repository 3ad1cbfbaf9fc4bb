/* Device-side driver of the gateway integration test (tests/gateway_it.sh), run in the device
 * namespace against rtci-gateway in the gateway namespace. Each device has an io_uring uplink of
 * its own; frames are made the way a camera makes them (head -> codec -> fragments) and every
 * result is checked against the same head -> codec -> tail run here with the same model.
 *
 *   gateway_client phase1 <gw-ip> <port> <model> <tenant1-key> <tenant2-key> <device100-key>
 *     results for devices of two tenants (mixed setups), each kind of bad traffic (never
 *     answered), and a slow device that must receive a rate-switch command;
 *   gateway_client phase2 <gw-ip> <port> <model> <tenant1-key> <tenant2-key> <device100-key>
 *     after the tenants file was reloaded: device 200 added, device 2 removed, device 1 kept
 *     its replay window;
 *   gateway_client phase3 ...
 *     frames at ~50/s for 3 s while the gateway is stopped (drain).
 *
 * Exit status 0 on success, 1 on failure. */
#include "common/clock.h"
#include "common/rtci_error.h"
#include "dataplane/auth.h"
#include "dataplane/protocol.h"
#include "dataplane/uplink.h"
#include "inference/codec.h"
#include "inference/engine.h"
#include "inference/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "it_check.h"
static const char *gw_ip;
static uint16_t gw_port;
static struct rtci_model *model;
static struct rtci_head *head;
static struct rtci_tail *tail;
static struct rtci_codec *codec;
static int ph, pw, pc;
static uint8_t tkey[3][32]; /* tenant 1, tenant 2, device 100 of tenant 1 */

static int hex_key(const char *s, uint8_t k[32])
{
	if (strlen(s) != 64)
		return -1;
	for (int i = 0; i < 32; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		k[i] = (uint8_t)v;
	}
	return 0;
}

#define MAX_FRAMES 64

struct expect {
	uint64_t seq;
	uint16_t class_id;
	float score;
	int got;       /* results received for it */
	uint8_t status;
	uint16_t got_class;
	float got_score;
};

struct device {
	uint32_t tenant, id;
	uint8_t key[32];
	struct rtci_uplink *u;
	uint64_t nonce;
	int acked;
	struct rtci_proto_hello_ack ack;
	uint64_t next_seq;
	struct expect ex[MAX_FRAMES];
	int nex;
	int commands;
	struct rtci_proto_command cmd;
	uint64_t cmd_seq;
	int unexpected;  /* datagrams that failed to decode or authenticate */
	int received;
	/* the datagrams of the last frame sent, for the replay case */
	uint8_t last[16][RTCI_PROTO_MAX_DATAGRAM];
	uint32_t last_len[16];
	uint32_t last_n;
};

static void on_dgram(void *user, const uint8_t *data, size_t len)
{
	struct device *d = user;
	struct rtci_proto_msg m;
	d->received++;
	if (rtci_proto_decode(data, len, &m) < 0 || rtci_auth_verify_msg(d->key, &m) < 0 ||
	    m.hdr.tenant_id != d->tenant || m.hdr.device_id != d->id) {
		d->unexpected++;
		return;
	}
	switch (m.hdr.type) {
	case RTCI_PROTO_HELLO_ACK:
		if (m.hdr.seq == d->nonce) {
			d->acked = 1;
			d->ack = m.u.hello_ack;
		} else {
			d->unexpected++;
		}
		break;
	case RTCI_PROTO_RESULT:
		for (int i = 0; i < d->nex; i++)
			if (d->ex[i].seq == m.hdr.seq) {
				d->ex[i].got++;
				d->ex[i].status = m.u.result.status;
				d->ex[i].got_class = m.u.result.class_id;
				d->ex[i].got_score = m.u.result.score;
				return;
			}
		d->unexpected++;
		break;
	case RTCI_PROTO_COMMAND:
		if (m.hdr.seq > d->cmd_seq) {
			d->cmd_seq = m.hdr.seq;
			d->cmd = m.u.command;
			d->commands++;
		}
		break;
	default:
		d->unexpected++;
	}
}

static int dev_open(struct device *d, uint32_t tenant, uint32_t id, const uint8_t *own_key)
{
	memset(d, 0, sizeof(*d));
	d->tenant = tenant;
	d->id = id;
	if (own_key)
		memcpy(d->key, own_key, 32);
	else
		rtci_auth_derive_device_key(tkey[tenant - 1], tenant, id, d->key);
	struct rtci_uplink_config c = { .peer_ip = gw_ip, .peer_port = gw_port, .slots = 32,
					.slot_size = RTCI_PROTO_MAX_DATAGRAM, .recv_buffers = 256,
					.recv_buffer_size = 2048, .rcvbuf = 1 << 20 };
	int rc = rtci_uplink_create(&c, &d->u);
	if (rc < 0)
		FAIL("uplink: %s", rtci_strerror(rc));
	return rc;
}

static void dev_close(struct device *d)
{
	rtci_uplink_destroy(d->u);
	d->u = NULL;
}

static void pump(struct device *d, int ms)
{
	uint64_t until = rtci_mono_us() + (uint64_t)ms * 1000;
	while (rtci_mono_us() < until)
		if (rtci_uplink_recv(d->u, on_dgram, d, 50) < 0)
			break;
}

static int hello(struct device *d, int wait_ms)
{
	uint8_t buf[256];
	randombytes_buf(&d->nonce, sizeof(d->nonce));
	d->acked = 0;
	struct rtci_proto_frame_info info = { .tenant_id = d->tenant, .device_id = d->id,
					      .seq = d->nonce, .capture_us = rtci_mono_us() };
	struct rtci_proto_hello h = { .model_id = 0, .fps_milli = 10000, .deadline_us = 1000000,
				      .max_frag_size = RTCI_PROTO_DEFAULT_FRAG, .n_setups = 0 };
	long n = rtci_proto_encode_hello(buf, sizeof(buf), &info, &h, d->key);
	struct iovec iov = { buf, (size_t)n };
	/* the first datagram may wait for ARP: send until acknowledged */
	uint64_t until = rtci_mono_us() + (uint64_t)wait_ms * 1000;
	while (!d->acked && rtci_mono_us() < until) {
		rtci_uplink_send(d->u, &iov, 1, 1000);
		uint64_t step = rtci_mono_us() + 300000;
		while (!d->acked && rtci_mono_us() < step)
			rtci_uplink_recv(d->u, on_dgram, d, 50);
	}
	if (d->acked && d->next_seq < d->ack.min_frame_seq)
		d->next_seq = d->ack.min_frame_seq;
	return d->acked;
}

/* Adversarial knobs of send_frame(): a capture time instead of now (0: now), and how many of
 * the frame's datagrams to send (0: all). */
static uint64_t capture_override;
static uint32_t send_only;

/* Head -> codec -> fragments for one image; records the expected result from a local tail. */
static int send_frame(struct device *d, int setup, uint32_t image_seed, uint32_t backlog)
{
	const struct rtci_geometry *g = rtci_model_geometry(model);
	const struct rtci_setup *st = rtci_model_setup(model, setup);
	static float img[4 * 64 * 64], part[32 * 32 * 32], dec[32 * 32 * 32];
	static uint8_t frame[65536];
	size_t npix = (size_t)g->in_c * g->in_h * g->in_w;
	uint32_t x = image_seed * 2654435761u + 12345;
	for (size_t i = 0; i < npix; i++) {
		x = x * 1664525u + 1013904223u;
		img[i] = (float)(x >> 8) / 16777216.0f;
	}
	if (rtci_head_run(head, setup, 1, img, part) < 0) {
		FAIL("head run");
		return -1;
	}
	struct rtci_codec_desc desc = { .c = (uint32_t)st->c, .levels = (uint32_t)st->L,
					.channels = (uint32_t)pc, .height = (uint32_t)ph,
					.width = (uint32_t)pw };
	ssize_t len = rtci_codec_encode(codec, &desc, part, frame, sizeof(frame));
	if (len < 0) {
		FAIL("encode: %s", rtci_strerror((int)len));
		return -1;
	}
	/* what the gateway should answer: decode (zero-filled) -> tail -> softmax */
	float logits[64];
	int sid = setup;
	if (rtci_codec_decode(codec, frame, (size_t)len, dec, sizeof(dec) / sizeof(float),
			      (uint32_t)pc, NULL) < 0 ||
	    rtci_tail_run(tail, 1, dec, &sid, logits) < 0) {
		FAIL("local tail");
		return -1;
	}
	float mx = logits[0], sum = 0;
	for (int c = 1; c < g->classes; c++)
		mx = logits[c] > mx ? logits[c] : mx;
	for (int c = 0; c < g->classes; c++)
		sum += expf(logits[c] - mx);
	int best = 0;
	for (int c = 1; c < g->classes; c++)
		if (logits[c] > logits[best])
			best = c;
	struct expect *e = &d->ex[d->nex++ % MAX_FRAMES];
	memset(e, 0, sizeof(*e));
	e->seq = d->next_seq++;
	e->class_id = (uint16_t)best;
	e->score = 1.0f / sum;

	struct rtci_proto_frame_info info = { .tenant_id = d->tenant, .device_id = d->id,
					      .seq = e->seq, .setup_id = (uint16_t)setup,
					      .backlog_bytes = backlog,
					      .capture_us = capture_override ? capture_override : rtci_mono_us() };
	struct rtci_proto_datagram out[16];
	for (int i = 0; i < 16; i++)
		out[i] = (struct rtci_proto_datagram){ d->last[i], sizeof(d->last[i]), 0 };
	long n = rtci_proto_fragment(&info, frame, (size_t)len, RTCI_PROTO_DEFAULT_FRAG, d->key,
				     out, 16);
	if (n < 0) {
		FAIL("fragment: %s", rtci_strerror((int)n));
		return -1;
	}
	struct iovec iov[16];
	for (long i = 0; i < n; i++) {
		iov[i] = (struct iovec){ d->last[i], out[i].len };
		d->last_len[i] = (uint32_t)out[i].len;
	}
	d->last_n = (uint32_t)n;
	if (send_only && send_only < n)
		n = send_only;
	int rc = rtci_uplink_send(d->u, iov, (uint32_t)n, 10000);
	if (rc != n)
		FAIL("send: %d", rc);
	return 0;
}

static int check_results(struct device *d, const char *who)
{
	int ok = 0;
	for (int i = 0; i < d->nex && i < MAX_FRAMES; i++) {
		struct expect *e = &d->ex[i];
		if (e->got != 1 || e->status != RTCI_PROTO_RES_OK) {
			FAIL("%s frame %llu: %d results, status %u", who, (unsigned long long)e->seq,
			     e->got, e->status);
			continue;
		}
		if (e->got_class != e->class_id || fabsf(e->got_score - e->score) > 1e-3f) {
			FAIL("%s frame %llu: class %u score %.6f, local class %u score %.6f", who,
			     (unsigned long long)e->seq, e->got_class, e->got_score, e->class_id,
			     e->score);
			continue;
		}
		ok++;
	}
	printf("client: %s: %d of %d results match the local tail\n", who, ok, d->nex);
	return ok;
}

static void wait_results(struct device *d, int ms)
{
	uint64_t until = rtci_mono_us() + (uint64_t)ms * 1000;
	for (;;) {
		int missing = 0;
		for (int i = 0; i < d->nex && i < MAX_FRAMES; i++)
			missing += d->ex[i].got == 0;
		if (!missing || rtci_mono_us() >= until)
			return;
		rtci_uplink_recv(d->u, on_dgram, d, 50);
	}
}

static int phase1(void)
{
	int nsetups = rtci_model_setup_count(model);
	struct device devs[4];
	const uint32_t who[4][2] = { { 1, 1 }, { 1, 2 }, { 2, 1 }, { 1, 100 } };
	for (int i = 0; i < 4; i++) {
		if (dev_open(&devs[i], who[i][0], who[i][1], who[i][1] == 100 ? tkey[2] : NULL) < 0)
			return 1;
		if (!hello(&devs[i], 8000)) {
			FAIL("device %u/%u: no hello-ack", who[i][0], who[i][1]);
			return 1;
		}
		if (devs[i].ack.status != RTCI_PROTO_HELLO_ACCEPTED ||
		    devs[i].ack.initial_setup_id >= nsetups)
			FAIL("device %u/%u: ack status %u setup %u", who[i][0], who[i][1],
			     devs[i].ack.status, devs[i].ack.initial_setup_id);
	}
	/* frames of every device, interleaved, with several setups so batches mix them */
	for (int k = 0; k < 6; k++)
		for (int i = 0; i < 4; i++) {
			int setup = k % 3 == 0 ? devs[i].ack.initial_setup_id
						: (k * 7 + i * 13) % nsetups;
			send_frame(&devs[i], setup, (uint32_t)(i * 100 + k), 0);
		}
	for (int i = 0; i < 4; i++)
		wait_results(&devs[i], 5000);
	char name[32];
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "tenant %u device %u", who[i][0], who[i][1]);
		if (check_results(&devs[i], name) != 6)
			FAIL("%s: not every result matched", name);
		if (devs[i].unexpected)
			FAIL("%s: %d unexpected datagrams", name, devs[i].unexpected);
	}

	/* bad traffic from a socket of its own: none of it may be answered */
	struct device bad;
	dev_open(&bad, 1, 3, NULL);
	uint8_t buf[256];
	struct rtci_proto_frame_info info = { .tenant_id = 99, .device_id = 1, .seq = 7,
					      .capture_us = rtci_mono_us() };
	struct rtci_proto_hello h = { .max_frag_size = 1400 };
	long n = rtci_proto_encode_hello(buf, sizeof(buf), &info, &h, bad.key);
	struct iovec iov = { buf, (size_t)n };
	rtci_uplink_send(bad.u, &iov, 1, 1000);                        /* unknown tenant */
	info.tenant_id = 1;
	info.device_id = 999999;
	n = rtci_proto_encode_hello(buf, sizeof(buf), &info, &h, bad.key);
	iov.iov_len = (size_t)n;
	rtci_uplink_send(bad.u, &iov, 1, 1000);                        /* unknown device */
	/* bad MAC: device 3 of tenant 1 with the tag of another key */
	bad.next_seq = 1000;
	uint8_t wrong[32];
	memcpy(wrong, bad.key, 32);
	bad.key[0] ^= 1;
	send_frame(&bad, 0, 5, 0);
	memcpy(bad.key, wrong, 32);
	/* replayed: device 1's last frame again, byte for byte */
	struct iovec rp[16];
	for (uint32_t i = 0; i < devs[0].last_n; i++)
		rp[i] = (struct iovec){ devs[0].last[i], devs[0].last_len[i] };
	rtci_uplink_send(bad.u, rp, devs[0].last_n, 1000);
	/* malformed: garbage, and a header cut short */
	struct iovec junk[2] = { { "not a datagram of the protocol", 30 }, { devs[0].last[0], 20 } };
	rtci_uplink_send(bad.u, junk, 2, 1000);
	pump(&bad, 700);
	if (bad.received)
		FAIL("bad traffic was answered (%d datagrams)", bad.received);
	dev_close(&bad);
	for (int i = 0; i < 4; i++)
		pump(&devs[i], 10);

	/* bandwidth drop: device 5 sends the largest setup through a 30 kB/s uplink and reports
	 * a growing backlog; the controller must ask for a smaller setup */
	struct device slow;
	dev_open(&slow, 1, 5, NULL);
	if (!hello(&slow, 5000))
		FAIL("device 1/5: no hello-ack");
	int big = 0; /* the setup with the largest payload */
	ssize_t bigsz = 0;
	for (int s = 0; s < nsetups; s++) {
		const struct rtci_setup *st = rtci_model_setup(model, s);
		ssize_t sz = rtci_codec_raw_size((uint32_t)st->c, (uint32_t)st->L, (uint32_t)ph,
						 (uint32_t)pw);
		if (sz > bigsz) {
			bigsz = sz;
			big = s;
		}
	}
	rtci_uplink_set_rate(slow.u, 30000, RTCI_PROTO_MAX_DATAGRAM);
	for (int k = 0; k < 12 && !slow.commands; k++) {
		send_frame(&slow, big, (uint32_t)(500 + k), 20000u * (uint32_t)(k + 1));
		pump(&slow, 20);
	}
	pump(&slow, 1000);
	if (!slow.commands) {
		FAIL("no rate-switch command for the slow device");
	} else {
		const struct rtci_setup *a = rtci_model_setup(model, slow.cmd.new_setup_id);
		const struct rtci_setup *b = rtci_model_setup(model, big);
		ssize_t sa = a ? rtci_codec_raw_size((uint32_t)a->c, (uint32_t)a->L, (uint32_t)ph,
						     (uint32_t)pw)
			       : -1;
		ssize_t sb = rtci_codec_raw_size((uint32_t)b->c, (uint32_t)b->L, (uint32_t)ph,
						 (uint32_t)pw);
		printf("client: command seq %llu: setup %u (%zd bytes raw) from frame %llu, was %d "
		       "(%zd bytes)\n",
		       (unsigned long long)slow.cmd_seq, slow.cmd.new_setup_id, sa,
		       (unsigned long long)slow.cmd.apply_from_seq, big, sb);
		if ((slow.cmd.kind != RTCI_PROTO_CMD_RATE_SWITCH &&
		     slow.cmd.kind != RTCI_PROTO_CMD_PLAN) || sa < 0 || sa >= sb)
			FAIL("command does not ask for a smaller setup");
	}
	dev_close(&slow);
	for (int i = 0; i < 4; i++)
		dev_close(&devs[i]);
	return failed;
}

static int phase2(void)
{
	/* device 200 was added to tenant 1 */
	struct device d200, d2, d1;
	dev_open(&d200, 1, 200, NULL);
	if (!hello(&d200, 5000)) {
		FAIL("added device 200: no hello-ack");
	} else {
		send_frame(&d200, d200.ack.initial_setup_id, 7, 0);
		wait_results(&d200, 5000);
		if (check_results(&d200, "added device 200") != 1)
			FAIL("added device 200: no result");
	}
	/* device 2 was removed: never answered */
	dev_open(&d2, 1, 2, NULL);
	if (hello(&d2, 1000))
		FAIL("removed device 2 still answered");
	/* device 1 stayed: its replay window survived the reload */
	dev_open(&d1, 1, 1, NULL);
	if (!hello(&d1, 5000))
		FAIL("device 1 after reload: no hello-ack");
	else if (d1.ack.min_frame_seq == 0)
		FAIL("device 1 lost its state in the reload (min_frame_seq 0)");
	else
		printf("client: device 1 kept its replay window (min_frame_seq %llu)\n",
		       (unsigned long long)d1.ack.min_frame_seq);
	dev_close(&d200);
	dev_close(&d2);
	dev_close(&d1);
	return failed;
}

/* Capture times far off the device's clock are answered as late, never inferred; a frame left
 * unfinished expires (the script checks both are counted for tenant 1). */
static int hardening(void)
{
	struct device d;
	dev_open(&d, 1, 6, NULL);
	if (!hello(&d, 5000)) {
		FAIL("device 1/6: no hello-ack");
		dev_close(&d);
		return failed;
	}
	send_frame(&d, d.ack.initial_setup_id, 11, 0);
	wait_results(&d, 5000);
	const uint64_t absurd[2] = { 123456789, UINT64_MAX };
	for (int k = 0; k < 2; k++) {
		capture_override = absurd[k];
		send_frame(&d, d.ack.initial_setup_id, 12 + (uint32_t)k, 0);
		capture_override = 0;
		wait_results(&d, 3000);
		struct expect *e = &d.ex[d.nex - 1];
		if (e->got != 1 || e->status != RTCI_PROTO_RES_DROPPED_DEADLINE)
			FAIL("capture_us %llu: %d results, status %u (expected 1: late)",
			     (unsigned long long)absurd[k], e->got, e->status);
	}
	send_frame(&d, d.ack.initial_setup_id, 14, 0);
	wait_results(&d, 5000);
	if (d.ex[d.nex - 1].status != RTCI_PROTO_RES_OK)
		FAIL("a frame on the device's clock after the absurd ones: status %u",
		     d.ex[d.nex - 1].status);
	/* the first fragment of a two-fragment frame only: it expires after the 1 s TTL */
	int big = -1;
	for (int s = 0; s < rtci_model_setup_count(model) && big < 0; s++) {
		const struct rtci_setup *st = rtci_model_setup(model, s);
		if (rtci_codec_raw_size((uint32_t)st->c, (uint32_t)st->L, (uint32_t)ph, (uint32_t)pw) >
		    4 * RTCI_PROTO_DEFAULT_FRAG)
			big = s;
	}
	send_only = 1;
	send_frame(&d, big, 15, 0);
	send_only = 0;
	d.nex--; /* no answer expected */
	pump(&d, 1500);
	printf("client: hardening done\n");
	dev_close(&d);
	return failed;
}

/* Frames for 3 s at about 50 frames/s while the gateway is told to stop: whatever it had taken in
 * must still be answered or counted (the script checks the final counters). */
static int phase3(void)
{
	struct device d;
	dev_open(&d, 1, 6, NULL);
	if (!hello(&d, 5000)) {
		FAIL("device 1/6: no hello-ack");
		return failed;
	}
	uint64_t until = rtci_mono_us() + 3000000;
	int sent = 0;
	while (rtci_mono_us() < until) {
		d.nex = 0; /* results are not checked here */
		send_frame(&d, d.ack.initial_setup_id, (uint32_t)sent, 0);
		sent++;
		pump(&d, 20);
	}
	printf("client: phase3 sent %d frames\n", sent);
	dev_close(&d);
	return failed;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 8) {
		fprintf(stderr, "usage: %s phase1|phase2 <gw-ip> <port> <model> <tenant1-key> "
				"<tenant2-key> <device100-key>\n", argv[0]);
		return 2;
	}
	gw_ip = argv[2];
	gw_port = (uint16_t)atoi(argv[3]);
	for (int i = 0; i < 3; i++)
		if (hex_key(argv[5 + i], tkey[i]) < 0) {
			fprintf(stderr, "bad key %s\n", argv[5 + i]);
			return 2;
		}
	char err[512];
	struct rtci_engine_config ec = { .threads = 1, .max_batch = 8 };
	if (rtci_auth_init() < 0 || rtci_model_load(argv[4], &model, err, sizeof(err)) < 0 ||
	    rtci_head_create(model, &ec, &head) < 0 || rtci_tail_create(model, &ec, &tail) < 0 ||
	    rtci_codec_create(NULL, &codec) < 0) {
		fprintf(stderr, "set-up failed: %s\n", err);
		return 1;
	}
	const struct rtci_geometry *g = rtci_model_geometry(model);
	pc = g->stem_out;
	rtci_geometry_partition_size(g, &ph, &pw);
	int rc = 2;
	if (strcmp(argv[1], "phase1") == 0)
		rc = phase1();
	else if (strcmp(argv[1], "phase2") == 0)
		rc = phase2();
	else if (strcmp(argv[1], "hardening") == 0)
		rc = hardening();
	else if (strcmp(argv[1], "phase3") == 0)
		rc = phase3();
	rtci_codec_destroy(codec);
	rtci_tail_destroy(tail);
	rtci_head_destroy(head);
	rtci_model_destroy(model);
	printf("client: %s %s\n", argv[1], rc ? "FAILED" : "ok");
	return rc;
}
