/* Device state machine: session, frames, rate-switch commands, re-hello after silence. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "common/rtci_error.h"
#include "dataplane/reassembly.h"
#include "edge/device.h"

#define MS 1000000LL
#define S 1000000000LL

static const uint8_t tenant_key[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
static struct rtci_dev_config cfg;
static struct rtci_dev dev;
static uint8_t dg[2048];

static void setup(void)
{
	cr_assert_eq(rtci_auth_init(), 0);
	memset(&cfg, 0, sizeof(cfg));
	cfg.tenant_id = 7;
	cfg.device_id = 42;
	cr_assert_eq(rtci_auth_derive_device_key(tenant_key, 7, 42, cfg.key), 0);
	cfg.model_id = 1;
	cfg.fps_milli = 10000;
	cfg.deadline_ns = 100 * MS;
	cfg.reserve_ns = 5 * MS;
	cfg.frag_size = 100;
	cfg.n_setups = 3;
	cfg.setups[0] = 0;
	cfg.setups[1] = 5;
	cfg.setups[2] = 9;
	cfg.hello_retry_ns = 200 * MS;
	cfg.silence_ns = 1 * S;
	cr_assert_eq(rtci_dev_init(&dev, &cfg, 0, 1000, NULL, 0), 0);
}

static struct rtci_proto_frame_info info(uint64_t seq)
{
	return (struct rtci_proto_frame_info){ .tenant_id = 7, .device_id = 42, .seq = seq };
}

/* What the gateway sends, encoded with the device key. */
static size_t ack(uint64_t nonce, uint8_t status, uint16_t setup, uint64_t min_seq, const uint8_t *key)
{
	struct rtci_proto_frame_info i = info(nonce);
	struct rtci_proto_hello_ack a = { .status = status, .initial_setup_id = setup,
					  .max_frag_size = 1400, .min_frame_seq = min_seq };
	long n = rtci_proto_encode_hello_ack(dg, sizeof(dg), &i, &a, key);
	cr_assert_gt(n, 0);
	return (size_t)n;
}

static size_t command(uint64_t cseq, uint16_t setup, uint64_t from)
{
	struct rtci_proto_frame_info i = info(cseq);
	struct rtci_proto_command c = { .kind = RTCI_PROTO_CMD_RATE_SWITCH, .new_setup_id = setup,
					.apply_from_seq = from };
	long n = rtci_proto_encode_command(dg, sizeof(dg), &i, &c, cfg.key);
	cr_assert_gt(n, 0);
	return (size_t)n;
}

static size_t plan(uint64_t cseq, uint64_t from, unsigned n, const uint16_t *setups)
{
	struct rtci_proto_frame_info i = info(cseq);
	struct rtci_proto_command c = { .kind = RTCI_PROTO_CMD_PLAN, .count = (uint8_t)n,
					.apply_from_seq = from };
	memcpy(c.plan, setups, n * sizeof(*setups));
	long n2 = rtci_proto_encode_command(dg, sizeof(dg), &i, &c, cfg.key);
	cr_assert_gt(n2, 0);
	return (size_t)n2;
}

static size_t result(uint64_t seq, uint16_t cls, uint8_t status, const uint8_t *key)
{
	struct rtci_proto_frame_info i = info(seq);
	struct rtci_proto_result r = { .class_id = cls, .status = status, .score = 0.5f };
	long n = rtci_proto_encode_result(dg, sizeof(dg), &i, &r, key);
	cr_assert_gt(n, 0);
	return (size_t)n;
}

/* Sends a hello at now and answers it; returns the nonce. */
static uint64_t connect(int64_t now, uint16_t setup, uint64_t min_seq)
{
	cr_assert(rtci_dev_hello_due(&dev, now));
	long n = rtci_dev_hello(&dev, now, dg, sizeof(dg));
	cr_assert_gt(n, 0);
	struct rtci_proto_msg m;
	cr_assert_eq(rtci_proto_decode(dg, (size_t)n, &m), 0);
	cr_assert_eq(m.hdr.type, RTCI_PROTO_HELLO);
	cr_assert_eq(rtci_auth_verify_msg(cfg.key, &m), 0);
	uint64_t nonce = m.hdr.seq;
	struct rtci_dev_event ev;
	cr_assert_eq(rtci_dev_handle(&dev, dg, ack(nonce, 0, setup, min_seq, cfg.key), now, &ev),
		     RTCI_DEV_EV_HELLO_ACK);
	return nonce;
}

/* Captures, queues and sends one frame of `len` bytes at now; returns its seq. */
static uint64_t send_frame(int64_t now, const uint8_t *payload, uint32_t len, int *setup_out)
{
	uint64_t seq;
	int setup = rtci_dev_frame_begin(&dev, now, &seq);
	cr_assert_geq(setup, 0, "%d", setup);
	cr_assert_eq(rtci_dev_frame_queue(&dev, now, seq, (uint16_t)setup, now, payload, len, 77), 0);
	while (rtci_dev_next_datagram(&dev, now, dg, sizeof(dg)) > 0)
		;
	cr_assert_eq(dev.q_len, 0);
	if (setup_out)
		*setup_out = setup;
	return seq;
}

TestSuite(device, .init = setup);

Test(device, no_frames_before_the_hello_ack)
{
	uint64_t seq;
	cr_assert_eq(rtci_dev_frame_begin(&dev, 0, &seq), -ENOTCONN);
	cr_assert_eq(dev.st.skipped[RTCI_DEV_SKIP_NO_SESSION], 1);
	cr_assert(rtci_dev_hello_due(&dev, 0));
	long n = rtci_dev_hello(&dev, 0, dg, sizeof(dg));
	struct rtci_proto_msg m;
	cr_assert_eq(rtci_proto_decode(dg, (size_t)n, &m), 0);
	cr_assert_eq(m.u.hello.n_setups, 3);
	cr_assert_eq(m.u.hello.setups[2], 9);
	cr_assert_eq(m.u.hello.deadline_us, 100000);
	uint64_t nonce = m.hdr.seq;
	/* not due again before the retry time; due after it (ack lost) */
	cr_assert_not(rtci_dev_hello_due(&dev, 100 * MS));
	cr_assert(rtci_dev_hello_due(&dev, 200 * MS));

	struct rtci_dev_event ev;
	/* an ack for a nonce never sent, and one under another key, change nothing */
	cr_assert_eq(rtci_dev_handle(&dev, dg, ack(nonce + 1, 0, 5, 0, cfg.key), 0, &ev), RTCI_DEV_EV_NONE);
	uint8_t other[32] = { 9 };
	cr_assert_eq(rtci_dev_handle(&dev, dg, ack(nonce, 0, 5, 0, other), 0, &ev), RTCI_DEV_EV_NONE);
	cr_assert_eq(dev.st.rx_bad_mac, 1);
	cr_assert_eq(dev.state, RTCI_DEV_HELLO);

	cr_assert_eq(rtci_dev_handle(&dev, dg, ack(nonce, 0, 5, 5000, cfg.key), 0, &ev),
		     RTCI_DEV_EV_HELLO_ACK);
	cr_assert_eq(dev.state, RTCI_DEV_ACTIVE);
	/* the ack's setup and lowest frame sequence are used */
	cr_assert_eq(rtci_dev_frame_begin(&dev, 0, &seq), 5);
	cr_assert_eq(seq, 5000);
	/* a duplicate of the ack does not start another session */
	cr_assert_eq(rtci_dev_handle(&dev, dg, ack(nonce, 0, 9, 0, cfg.key), 0, &ev), RTCI_DEV_EV_NONE);
}

Test(device, rejected_hello_sends_no_frames)
{
	long n = rtci_dev_hello(&dev, 0, dg, sizeof(dg));
	struct rtci_proto_msg m;
	cr_assert_eq(rtci_proto_decode(dg, (size_t)n, &m), 0);
	struct rtci_dev_event ev;
	cr_assert_eq(rtci_dev_handle(&dev, dg, ack(m.hdr.seq, RTCI_PROTO_HELLO_REJECTED_QUOTA, 0, 0, cfg.key),
				     0, &ev), RTCI_DEV_EV_REJECTED);
	uint64_t seq;
	cr_assert_eq(rtci_dev_frame_begin(&dev, 0, &seq), -ENOTCONN);
	/* retried, but more slowly */
	cr_assert_not(rtci_dev_hello_due(&dev, 500 * MS));
	cr_assert(rtci_dev_hello_due(&dev, 2 * S));
}

static size_t busy_ack(uint64_t nonce, uint16_t retry_ms)
{
	struct rtci_proto_frame_info i = info(nonce);
	struct rtci_proto_hello_ack a = { .status = RTCI_PROTO_HELLO_BUSY, .retry_after_ms = retry_ms };
	long n = rtci_proto_encode_hello_ack(dg, sizeof(dg), &i, &a, cfg.key);
	cr_assert_gt(n, 0);
	return (size_t)n;
}

Test(device, busy_hello_waits_retry_after_plus_jitter_then_gets_in)
{
	int64_t earliest = INT64_MAX, latest = 0;
	for (int k = 0; k < 50; k++) {
		cr_assert_eq(rtci_dev_init(&dev, &cfg, 0, 1000, NULL, 0), 0);
		long n = rtci_dev_hello(&dev, 0, dg, sizeof(dg));
		struct rtci_proto_msg m;
		cr_assert_eq(rtci_proto_decode(dg, (size_t)n, &m), 0);
		struct rtci_dev_event ev;
		cr_assert_eq(rtci_dev_handle(&dev, dg, busy_ack(m.hdr.seq, 2000), 10 * MS, &ev),
			     RTCI_DEV_EV_BUSY);
		cr_assert_eq(dev.state, RTCI_DEV_BUSY);
		cr_assert_eq(dev.st.busy, 1);
		/* between retry-after and twice it, never before */
		cr_assert_geq(ev.retry_ns, 2 * S);
		cr_assert_lt(ev.retry_ns, 4 * S);
		cr_assert_eq(rtci_dev_next_hello(&dev), 10 * MS + ev.retry_ns);
		earliest = ev.retry_ns < earliest ? ev.retry_ns : earliest;
		latest = ev.retry_ns > latest ? ev.retry_ns : latest;
		uint64_t seq;
		cr_assert_eq(rtci_dev_frame_begin(&dev, 20 * MS, &seq), -ENOTCONN);
		cr_assert_not(rtci_dev_hello_due(&dev, 10 * MS + ev.retry_ns - 1));
		cr_assert(rtci_dev_hello_due(&dev, 10 * MS + ev.retry_ns));
		/* one hello then, and the next only after the usual retry if it goes unanswered */
		n = rtci_dev_hello(&dev, 10 * MS + ev.retry_ns, dg, sizeof(dg));
		cr_assert_not(rtci_dev_hello_due(&dev, 10 * MS + ev.retry_ns + 1));
		cr_assert_eq(rtci_dev_next_hello(&dev), 10 * MS + ev.retry_ns + cfg.hello_retry_ns);
		/* the next hello is accepted: frames flow */
		cr_assert_eq(rtci_proto_decode(dg, (size_t)n, &m), 0);
		int kind = rtci_dev_handle(&dev, dg, ack(m.hdr.seq, 0, 5, 0, cfg.key), 5 * S, &ev);
		cr_assert_eq(kind, RTCI_DEV_EV_HELLO_ACK, "k %d kind %d err %d", k, kind, ev.err);
		cr_assert_eq(rtci_dev_frame_begin(&dev, 5 * S, &seq), 5);
	}
	/* the jitter spreads devices refused together */
	cr_assert_gt(latest - earliest, 200 * MS);
}

Test(device, redirects_are_followed_a_few_times_in_a_row)
{
	for (int k = 0; k <= RTCI_DEV_MAX_REDIRECTS; k++) {
		long n = rtci_dev_hello(&dev, k * MS, dg, sizeof(dg));
		struct rtci_proto_msg m;
		cr_assert_eq(rtci_proto_decode(dg, (size_t)n, &m), 0);
		struct rtci_proto_frame_info i = info(m.hdr.seq);
		struct rtci_proto_hello_ack a = { .status = RTCI_PROTO_HELLO_REDIRECT,
						  .redirect_ipv4 = 0x0a000005, .redirect_port = 47000 };
		n = rtci_proto_encode_hello_ack(dg, sizeof(dg), &i, &a, cfg.key);
		struct rtci_dev_event ev;
		int kind = rtci_dev_handle(&dev, dg, (size_t)n, k * MS, &ev);
		if (k < RTCI_DEV_MAX_REDIRECTS) {
			cr_assert_eq(kind, RTCI_DEV_EV_REDIRECT);
			cr_assert_eq(ev.to_ipv4, 0x0a000005);
			cr_assert_eq(ev.to_port, 47000);
			/* no frames meanwhile, and the next hello goes out at once */
			uint64_t seq;
			cr_assert_eq(rtci_dev_frame_begin(&dev, k * MS, &seq), -ENOTCONN);
			cr_assert(rtci_dev_hello_due(&dev, k * MS));
		} else {
			/* gateways that keep sending it on: wait as if refused */
			cr_assert_eq(kind, RTCI_DEV_EV_REJECTED);
			cr_assert_not(rtci_dev_hello_due(&dev, k * MS + 1));
		}
	}
	cr_assert_eq(dev.st.redirects, RTCI_DEV_MAX_REDIRECTS + 1);
}

Test(device, move_command_ends_the_session_for_a_hello_elsewhere)
{
	connect(0, 0, 0);
	struct rtci_proto_frame_info i = info(1);
	struct rtci_proto_command c = { .kind = RTCI_PROTO_CMD_MOVE, .move_ipv4 = 0x0a000007,
					.move_port = 47003 };
	long n = rtci_proto_encode_command(dg, sizeof(dg), &i, &c, cfg.key);
	cr_assert_gt(n, 0);
	struct rtci_dev_event ev;
	cr_assert_eq(rtci_dev_handle(&dev, dg, (size_t)n, 10 * MS, &ev), RTCI_DEV_EV_MOVE);
	cr_assert_eq(ev.to_ipv4, 0x0a000007);
	cr_assert_eq(ev.to_port, 47003);
	cr_assert_eq(dev.state, RTCI_DEV_HELLO);
	cr_assert(rtci_dev_hello_due(&dev, 10 * MS));
	uint64_t seq;
	cr_assert_eq(rtci_dev_frame_begin(&dev, 10 * MS, &seq), -ENOTCONN);
}

Test(device, command_applies_from_the_named_frame)
{
	connect(0, 0, 0);
	uint64_t seq;
	cr_assert_eq(rtci_dev_frame_begin(&dev, 0, &seq), 0);
	cr_assert_eq(seq, 1000);
	struct rtci_dev_event ev;
	cr_assert_eq(rtci_dev_handle(&dev, dg, command(1, 9, 1003), 0, &ev), RTCI_DEV_EV_COMMAND);
	cr_assert_eq(ev.apply_from, 1003);
	/* 1001, 1002 keep the old setup (1002 skipped by a full queue still counts) */
	cr_assert_eq(rtci_dev_frame_begin(&dev, 0, &seq), 0);
	cr_assert_eq(seq, 1001);
	cr_assert_eq(rtci_dev_frame_begin(&dev, 0, &seq), 0);
	cr_assert_eq(rtci_dev_frame_begin(&dev, 0, &seq), 9);
	cr_assert_eq(seq, 1003);
	cr_assert_eq(dev.st.switches, 1);
	/* the same command again is a replay: ignored */
	cr_assert_eq(rtci_dev_handle(&dev, dg, command(1, 5, 1004), 0, &ev), RTCI_DEV_EV_NONE);
	cr_assert_eq(dev.st.commands_replayed, 1);
	cr_assert_eq(rtci_dev_frame_begin(&dev, 0, &seq), 9);
	/* a command naming a frame already captured applies from the next one */
	cr_assert_eq(rtci_dev_handle(&dev, dg, command(2, 5, 900), 0, &ev), RTCI_DEV_EV_COMMAND);
	cr_assert_eq(ev.apply_from, 1005);
	cr_assert_eq(rtci_dev_frame_begin(&dev, 0, &seq), 5);
	cr_assert_eq(seq, 1005);
	/* a setup the device did not announce is refused */
	cr_assert_eq(rtci_dev_handle(&dev, dg, command(3, 4, 0), 0, &ev), RTCI_DEV_EV_NONE);
	cr_assert_eq(rtci_dev_frame_begin(&dev, 0, &seq), 5);
}

Test(device, plan_names_a_setup_per_frame_and_holds_the_last)
{
	connect(0, 0, 0);
	uint64_t seq;
	cr_assert_eq(rtci_dev_frame_begin(&dev, 0, &seq), 0);
	cr_assert_eq(seq, 1000);
	struct rtci_dev_event ev;
	uint16_t p1[] = { 9, 5, 5, 0, 9 };
	/* frames 1002..1006; 1001 keeps its setup */
	cr_assert_eq(rtci_dev_handle(&dev, dg, plan(1, 1002, 5, p1), 0, &ev), RTCI_DEV_EV_COMMAND);
	cr_assert_eq(ev.apply_from, 1002);
	cr_assert_eq(ev.setup, 9);
	int want[] = { 0, 9, 5, 5, 0, 9, 9, 9 };
	for (int k = 0; k < 8; k++) {
		cr_assert_eq(rtci_dev_frame_begin(&dev, 0, &seq), want[k], "frame %d", 1001 + k);
		cr_assert_eq(seq, 1001u + (unsigned)k);
	}
	cr_assert_eq(dev.st.switches, 4);
	/* a plan whose first frames are already captured: frame 1009 takes its own step */
	uint16_t p2[] = { 0, 5, 0 };
	cr_assert_eq(rtci_dev_handle(&dev, dg, plan(2, 1008, 3, p2), 0, &ev), RTCI_DEV_EV_COMMAND);
	cr_assert_eq(ev.apply_from, 1009);
	cr_assert_eq(ev.setup, 5);
	cr_assert_eq(rtci_dev_frame_begin(&dev, 0, &seq), 5);
	/* a newer command replaces the rest of the plan */
	cr_assert_eq(rtci_dev_handle(&dev, dg, command(3, 9, 0), 0, &ev), RTCI_DEV_EV_COMMAND);
	cr_assert_eq(rtci_dev_frame_begin(&dev, 0, &seq), 9);
	cr_assert_eq(rtci_dev_frame_begin(&dev, 0, &seq), 9);
	/* one setup the device did not announce refuses the whole plan */
	uint16_t p3[] = { 5, 4 };
	cr_assert_eq(rtci_dev_handle(&dev, dg, plan(4, 0, 2, p3), 0, &ev), RTCI_DEV_EV_NONE);
	cr_assert_eq(rtci_dev_frame_begin(&dev, 0, &seq), 9);
}

Test(device, fragments_reassemble_and_authenticate)
{
	connect(0, 5, 0);
	uint8_t payload[450];
	for (unsigned i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7);
	struct rtci_reasm_config rc = { .max_frames = 4, .arena_bytes = 1 << 16, .max_frame_len = 4096,
					.max_inflight_per_device = 2, .max_tenants = 2, .ttl = 1000 };
	struct rtci_reasm *r = NULL;
	cr_assert_eq(rtci_reasm_create(&rc, &r), 0);
	uint64_t seq;
	int setup = rtci_dev_frame_begin(&dev, 10 * MS, &seq);
	cr_assert_eq(setup, 5);
	cr_assert_eq(rtci_dev_frame_queue(&dev, 10 * MS, seq, 5, 10 * MS, payload, sizeof(payload), 3), 0);
	int got = 0, ndg = 0;
	long n;
	struct rtci_reasm_frame *f = NULL;
	while ((n = rtci_dev_next_datagram(&dev, 10 * MS, dg, sizeof(dg))) > 0) {
		struct rtci_proto_msg m;
		cr_assert_eq(rtci_proto_decode(dg, (size_t)n, &m), 0);
		cr_assert_eq(m.hdr.capture_us, 10000);
		cr_assert_eq(m.hdr.setup_id, 5);
		ndg++;
		if (rtci_reasm_insert(r, &m, cfg.key, 1, &f) == 1)
			got = 1;
	}
	cr_assert_eq(ndg, 5);
	cr_assert(got);
	cr_assert(f->verified);
	cr_assert_eq(f->len, sizeof(payload));
	cr_assert_arr_eq(f->data, payload, sizeof(payload));
	rtci_reasm_release(r, f);
	rtci_reasm_destroy(r);
	cr_assert_eq(dev.st.frames_sent, 1);
	cr_assert_eq(dev.st.datagrams_sent, 5);
}

Test(device, results_are_matched_to_frames)
{
	connect(0, 0, 0);
	uint8_t payload[300] = { 1 };
	int setup;
	uint64_t seq = send_frame(0, payload, sizeof(payload), &setup);
	struct rtci_dev_event ev;
	/* under another key: dropped */
	uint8_t other[32] = { 3 };
	cr_assert_eq(rtci_dev_handle(&dev, dg, result(seq, 4, 0, other), 40 * MS, &ev), RTCI_DEV_EV_NONE);
	cr_assert_eq(rtci_dev_handle(&dev, dg, result(seq, 4, 0, cfg.key), 40 * MS, &ev), RTCI_DEV_EV_RESULT);
	cr_assert_eq(ev.result.class_id, 4);
	cr_assert_eq(ev.latency_ns, 40 * MS);
	cr_assert(ev.hit);
	cr_assert_eq(ev.user, 77);
	/* the same result again, and one for a frame never sent */
	cr_assert_eq(rtci_dev_handle(&dev, dg, result(seq, 4, 0, cfg.key), 41 * MS, &ev), RTCI_DEV_EV_NONE);
	cr_assert_eq(rtci_dev_handle(&dev, dg, result(seq + 1, 4, 0, cfg.key), 41 * MS, &ev), RTCI_DEV_EV_NONE);
	cr_assert_eq(dev.st.results_unknown, 2);
	/* late result: counted, not a hit */
	seq = send_frame(200 * MS, payload, sizeof(payload), NULL);
	cr_assert_eq(rtci_dev_handle(&dev, dg, result(seq, 2, 0, cfg.key), 350 * MS, &ev), RTCI_DEV_EV_RESULT);
	cr_assert_not(ev.hit);
	cr_assert_eq(dev.st.results_late, 1);
	/* a message for another device of the tenant is not ours */
	struct rtci_proto_frame_info i = { .tenant_id = 7, .device_id = 43, .seq = seq };
	struct rtci_proto_result r = { 0 };
	long n = rtci_proto_encode_result(dg, sizeof(dg), &i, &r, cfg.key);
	cr_assert_eq(rtci_dev_handle(&dev, dg, (size_t)n, 0, &ev), RTCI_DEV_EV_NONE);
	cr_assert_eq(dev.st.rx_foreign, 1);
}

Test(device, rehello_after_silence_and_frames_continue)
{
	connect(0, 0, 0);
	uint8_t payload[200] = { 0 };
	struct rtci_dev_event ev;
	cr_assert_eq(rtci_dev_handle(&dev, dg, command(1, 9, 0), 0, &ev), RTCI_DEV_EV_COMMAND);
	send_frame(100 * MS, payload, sizeof(payload), NULL);
	/* results stop: nothing due before the silence time, a hello after it */
	cr_assert_not(rtci_dev_hello_due(&dev, 900 * MS));
	cr_assert(rtci_dev_hello_due(&dev, 1100 * MS));
	cr_assert_eq(dev.state, RTCI_DEV_REHELLO);
	cr_assert_eq(dev.st.rehellos, 1);
	long n = rtci_dev_hello(&dev, 1100 * MS, dg, sizeof(dg));
	struct rtci_proto_msg m;
	cr_assert_eq(rtci_proto_decode(dg, (size_t)n, &m), 0);
	uint64_t nonce = m.hdr.seq;
	/* frames keep going while the device waits for the ack */
	int setup;
	send_frame(1200 * MS, payload, sizeof(payload), &setup);
	cr_assert_eq(setup, 9);
	/* the ack is lost: the hello is repeated with a new nonce */
	cr_assert(rtci_dev_hello_due(&dev, 1300 * MS));
	n = rtci_dev_hello(&dev, 1300 * MS, dg, sizeof(dg));
	cr_assert_eq(rtci_proto_decode(dg, (size_t)n, &m), 0);
	cr_assert_neq(m.hdr.seq, nonce);
	/* the restarted gateway answers the first hello late: still accepted */
	cr_assert_eq(rtci_dev_handle(&dev, dg, ack(nonce, 0, 5, 0, cfg.key), 1350 * MS, &ev),
		     RTCI_DEV_EV_HELLO_ACK);
	cr_assert_eq(dev.state, RTCI_DEV_ACTIVE);
	/* it numbers commands from 1 again: accepted in the new session */
	cr_assert_eq(rtci_dev_handle(&dev, dg, command(1, 0, 0), 1350 * MS, &ev), RTCI_DEV_EV_COMMAND);
	uint64_t seq;
	cr_assert_eq(rtci_dev_frame_begin(&dev, 1400 * MS, &seq), 0);
}

Test(device, frames_that_cannot_make_the_deadline_are_skipped)
{
	struct rtci_ctl_trace *t;
	cr_assert_eq(rtci_ctl_trace_constant(10000.0, 10 * S, &t), 0); /* 10 bytes per ms */
	cr_assert_eq(rtci_dev_init(&dev, &cfg, 0, 1000, t, 0), 0);
	connect(0, 0, 0);
	static uint8_t payload[2000];
	uint64_t seq;
	/* ~2.6 KB on the link: 260 ms > 95 ms of send budget */
	int setup = rtci_dev_frame_begin(&dev, 0, &seq);
	cr_assert_eq(rtci_dev_frame_queue(&dev, 0, seq, (uint16_t)setup, 0, payload, 2000, 0), -ETIME);
	cr_assert_eq(dev.st.skipped[RTCI_DEV_SKIP_LATE], 1);
	cr_assert_eq(dev.q_len, 0);
	/* 400 bytes fit (~62 ms); its datagrams leave as the link allows */
	cr_assert_eq(rtci_dev_frame_queue(&dev, 0, seq, (uint16_t)setup, 0, payload, 400, 0), 0);
	cr_assert_eq(rtci_dev_next_datagram(&dev, 0, dg, sizeof(dg)), 0);
	int64_t dep = rtci_dev_next_departure(&dev);
	cr_assert(dep > 0 && dep < 20 * MS, "%lld", (long long)dep);
	cr_assert_gt(rtci_dev_next_datagram(&dev, dep, dg, sizeof(dg)), 0);
	/* a second frame behind it would leave too late */
	int s2 = rtci_dev_frame_begin(&dev, 10 * MS, &seq);
	cr_assert_eq(rtci_dev_frame_queue(&dev, 10 * MS, seq, (uint16_t)s2, 10 * MS, payload, 400, 0), -ETIME);
	rtci_ctl_trace_destroy(t);
}

Test(device, backlog_hint_is_the_queue_a_datagram_leaves_behind)
{
	struct rtci_ctl_trace *t;
	cr_assert_eq(rtci_ctl_trace_constant(10000.0, 10 * S, &t), 0); /* 10 bytes per ms */
	cr_assert_eq(rtci_dev_init(&dev, &cfg, 0, 1000, t, 0), 0);
	connect(0, 0, 0);
	static uint8_t payload[150];
	/* frame A: 150 bytes in fragments of 100 + 50, i.e. 176 + 142 link bytes; frame B: 50
	 * bytes, 142 link bytes; both queued at once */
	uint64_t sa, sb;
	int a = rtci_dev_frame_begin(&dev, 0, &sa);
	cr_assert_eq(rtci_dev_frame_queue(&dev, 0, sa, (uint16_t)a, 0, payload, 150, 0), 0);
	int b = rtci_dev_frame_begin(&dev, 0, &sb);
	cr_assert_eq(rtci_dev_frame_queue(&dev, 0, sb, (uint16_t)b, 0, payload, 50, 0), 0);
	/* A's first fragment leaves A's second and B behind, A's last leaves B, B's leaves none:
	 * the gateway reads the hint of a frame's last fragment as the queue behind the frame */
	const uint32_t want[] = { 142 + 142, 142, 0 };
	const uint64_t seq[] = { sa, sa, sb };
	for (int i = 0; i < 3; i++) {
		int64_t dep = rtci_dev_next_departure(&dev);
		long n = rtci_dev_next_datagram(&dev, dep, dg, sizeof(dg));
		cr_assert_gt(n, 0, "datagram %d", i);
		struct rtci_proto_msg m;
		cr_assert_eq(rtci_proto_decode(dg, (size_t)n, &m), 0);
		cr_assert_eq(m.hdr.seq, seq[i]);
		cr_assert_eq(m.hdr.backlog_bytes, want[i], "datagram %d: hint %u", i,
			     m.hdr.backlog_bytes);
	}
	cr_assert_eq(dev.q_len, 0);
	rtci_ctl_trace_destroy(t);
}

Test(device, a_dropped_frame_is_reported_early)
{
	struct rtci_ctl_trace *t;
	cr_assert_eq(rtci_ctl_trace_constant(10000.0, 10 * S, &t), 0); /* 10 bytes per ms */
	cr_assert_eq(rtci_dev_init(&dev, &cfg, 0, 1000, t, 0), 0);
	uint64_t seq;
	/* skipped before the session: not news for the gateway */
	cr_assert(rtci_dev_frame_begin(&dev, 0, &seq) < 0);
	connect(0, 0, 0);
	cr_assert_eq(rtci_dev_next_report(&dev), 1 * S);
	static uint8_t payload[2000];
	int setup = rtci_dev_frame_begin(&dev, 300 * MS, &seq);
	cr_assert_eq(rtci_dev_frame_queue(&dev, 300 * MS, seq, (uint16_t)setup, 300 * MS, payload,
					  2000, 0), -ETIME);
	/* 100 ms after the previous report (device start), i.e. at once */
	cr_assert_eq(rtci_dev_next_report(&dev), 100 * MS);
	cr_assert(rtci_dev_report_due(&dev, 300 * MS));
	long n = rtci_dev_report(&dev, 300 * MS, dg, sizeof(dg));
	struct rtci_proto_msg m;
	cr_assert_eq(rtci_proto_decode(dg, (size_t)n, &m), 0);
	cr_assert_eq(m.u.report.frames_dropped, 2, "cumulative, the pre-session skip included");
	cr_assert_eq(m.hdr.setup_id, setup);
	cr_assert_eq(rtci_dev_next_report(&dev), 1300 * MS, "no new drop: the usual interval");
	/* the next drop: a report 100 ms after this one, not sooner */
	setup = rtci_dev_frame_begin(&dev, 320 * MS, &seq);
	cr_assert_eq(rtci_dev_frame_queue(&dev, 320 * MS, seq, (uint16_t)setup, 320 * MS, payload,
					  2000, 0), -ETIME);
	cr_assert_not(rtci_dev_report_due(&dev, 350 * MS));
	cr_assert(rtci_dev_report_due(&dev, 400 * MS));
	rtci_ctl_trace_destroy(t);
}

Test(device, reports_with_a_session)
{
	cr_assert_not(rtci_dev_report_due(&dev, 5 * S)); /* no session, no report */
	connect(0, 0, 0);
	uint8_t payload[300] = { 0 };
	send_frame(100 * MS, payload, sizeof(payload), NULL);
	send_frame(200 * MS, payload, sizeof(payload), NULL);
	cr_assert_not(rtci_dev_report_due(&dev, 900 * MS));
	cr_assert(rtci_dev_report_due(&dev, 1 * S));
	long n = rtci_dev_report(&dev, 1 * S, dg, sizeof(dg));
	cr_assert_gt(n, 0);
	struct rtci_proto_msg m;
	cr_assert_eq(rtci_proto_decode(dg, (size_t)n, &m), 0);
	cr_assert_eq(m.hdr.type, RTCI_PROTO_REPORT);
	cr_assert_eq(rtci_auth_verify_msg(cfg.key, &m), 0);
	cr_assert_eq(m.u.report.frames_sent, 2);
	cr_assert_eq(m.u.report.bytes_sent, dev.st.bytes_sent);
	cr_assert_eq(m.u.report.interval_us, 1000000);
	cr_assert_eq(m.u.report.send_rate_bps, dev.st.bytes_sent * 8);
	uint64_t first = m.hdr.seq;
	cr_assert_not(rtci_dev_report_due(&dev, 1500 * MS));
	n = rtci_dev_report(&dev, 2 * S, dg, sizeof(dg));
	cr_assert_eq(rtci_proto_decode(dg, (size_t)n, &m), 0);
	/* sequences only increase (one-time keys are never reused) */
	cr_assert_eq(m.hdr.seq, first + 1);
	cr_assert_eq(m.u.report.send_rate_bps, 0);
}

/* The device asks for the extended hello-ack, learns the gateway's largest frame from it and
 * refuses (counted) frames above it instead of sending what the gateway drops as too big. */
Test(device, frames_above_the_gateways_limit_are_refused)
{
	long n = rtci_dev_hello(&dev, 0, dg, sizeof(dg));
	struct rtci_proto_msg m;
	cr_assert_eq(rtci_proto_decode(dg, (size_t)n, &m), 0);
	cr_assert(m.u.hello.ack_ext);
	struct rtci_proto_frame_info i = info(m.hdr.seq);
	struct rtci_proto_hello_ack a = { .initial_setup_id = 5, .max_frag_size = 1400,
					  .max_frame_len = 3000 };
	long k = rtci_proto_encode_hello_ack(dg, sizeof(dg), &i, &a, cfg.key);
	cr_assert_eq(k, RTCI_PROTO_HDR_LEN + RTCI_PROTO_HELLO_ACK_EXT_LEN + RTCI_PROTO_TAG_LEN);
	struct rtci_dev_event ev;
	cr_assert_eq(rtci_dev_handle(&dev, dg, (size_t)k, 0, &ev), RTCI_DEV_EV_HELLO_ACK);
	static uint8_t payload[3001];
	uint64_t seq;
	cr_assert_eq(rtci_dev_frame_begin(&dev, 0, &seq), 5);
	cr_expect_eq(rtci_dev_frame_queue(&dev, 0, seq, 5, 0, payload, 3001, 1), -EMSGSIZE);
	cr_expect_eq(dev.st.skipped[RTCI_DEV_SKIP_TOO_BIG], 1);
	cr_expect_eq(rtci_dev_frame_queue(&dev, 0, seq, 5, 0, payload, 3000, 2), 0);
	cr_expect_str_eq(rtci_dev_skip_name(RTCI_DEV_SKIP_TOO_BIG), "too_big");
}

/* ---- local exit ---- */

static void enable_local(void)
{
	cfg.local_exit = 1;
	cfg.probe_setup = 9;
	cr_assert_eq(rtci_dev_init(&dev, &cfg, 0, 1000, NULL, 0), 0);
}

Test(device, a_frame_whose_result_misses_its_deadline_is_answered_locally)
{
	enable_local();
	connect(0, 5, 0);
	static const uint8_t payload[300];
	uint64_t a = send_frame(0, payload, sizeof(payload), NULL);
	uint64_t b = send_frame(10 * MS, payload, sizeof(payload), NULL);
	/* the exit answers both 3 ms after capture, after the uploads left */
	cr_assert_eq(rtci_dev_local_answer(&dev, a, 4, 3 * MS), 0);
	cr_assert_eq(rtci_dev_local_answer(&dev, b, 6, 13 * MS), 0);
	cr_assert_eq(rtci_dev_next_expiry(&dev), 100 * MS);
	struct rtci_dev_event ev;
	/* b's server result comes in time: b is the server's */
	cr_assert_eq(rtci_dev_handle(&dev, dg, result(b, 2, RTCI_PROTO_RES_OK, cfg.key), 50 * MS, &ev),
		     RTCI_DEV_EV_RESULT);
	cr_assert(ev.hit);
	/* before a's deadline nothing is due */
	cr_assert_eq(rtci_dev_expire(&dev, 99 * MS, &ev), RTCI_DEV_EV_NONE);
	cr_assert_eq(rtci_dev_expire(&dev, 100 * MS, &ev), RTCI_DEV_EV_LOCAL);
	cr_assert_eq(ev.seq, a);
	cr_assert(ev.hit);
	cr_assert_eq(ev.result.class_id, 4);
	cr_assert_eq(ev.latency_ns, 3 * MS);
	cr_assert_eq(ev.user, 77);
	cr_assert_eq(rtci_dev_expire(&dev, 200 * MS, &ev), RTCI_DEV_EV_NONE, "b was answered by the server");
	cr_assert_eq(rtci_dev_next_expiry(&dev), INT64_MAX);
	cr_assert_eq(dev.st.answered_local, 1);
	/* a's server result after that is late, and does not answer it twice */
	cr_assert_eq(rtci_dev_handle(&dev, dg, result(a, 1, RTCI_PROTO_RES_OK, cfg.key), 150 * MS, &ev),
		     RTCI_DEV_EV_RESULT);
	cr_assert_not(ev.hit);
	cr_assert_eq(dev.st.results_late, 1);
	cr_assert_eq(rtci_dev_expire(&dev, 300 * MS, &ev), RTCI_DEV_EV_NONE);
}

Test(device, a_late_or_failed_server_answer_leaves_the_frame_to_the_local_exit)
{
	enable_local();
	connect(0, 5, 0);
	static const uint8_t payload[300];
	uint64_t a = send_frame(0, payload, sizeof(payload), NULL);
	uint64_t b = send_frame(10 * MS, payload, sizeof(payload), NULL);
	cr_assert_eq(rtci_dev_local_answer(&dev, a, 4, 3 * MS), 0);
	cr_assert_eq(rtci_dev_local_answer(&dev, b, 6, 200 * MS), 0); /* too slow for its deadline */
	struct rtci_dev_event ev;
	cr_assert_eq(rtci_dev_handle(&dev, dg, result(a, 1, RTCI_PROTO_RES_DROPPED_DEADLINE, cfg.key), 20 * MS, &ev),
		     RTCI_DEV_EV_RESULT);
	cr_assert_eq(rtci_dev_expire(&dev, 150 * MS, &ev), RTCI_DEV_EV_LOCAL);
	cr_assert_eq(ev.seq, a);
	cr_assert(ev.hit);
	cr_assert_eq(rtci_dev_expire(&dev, 150 * MS, &ev), RTCI_DEV_EV_LOCAL);
	cr_assert_eq(ev.seq, b);
	cr_assert_not(ev.hit, "ready after the deadline");
	cr_assert_eq(dev.st.answered_local, 1);
	cr_assert_eq(dev.st.local_late, 1);
}

Test(device, local_mode_uploads_only_a_probe_every_500_ms)
{
	enable_local();
	connect(0, 5, 0);
	struct rtci_dev_event ev;
	cr_assert_eq(rtci_dev_handle(&dev, dg, command(1, RTCI_SETUP_LOCAL, 1000), 0, &ev),
		     RTCI_DEV_EV_COMMAND);
	cr_assert_eq(ev.setup, RTCI_SETUP_LOCAL);
	int probes = 0, local = 0;
	int64_t probe_at[8];
	for (int i = 0; i < 30; i++) { /* 10 fps for 3 s */
		uint64_t seq;
		int s = rtci_dev_frame_begin(&dev, i * 100 * MS, &seq);
		cr_assert_eq(seq, 1000u + (unsigned)i);
		if (s == RTCI_SETUP_LOCAL) {
			local++;
			cr_assert_eq(rtci_dev_local_only(&dev, i * 100 * MS, i * 100 * MS + 3 * MS), 1);
		} else {
			cr_assert_eq(s, 9, "probes use the smallest setup");
			probe_at[probes++] = i * 100 * MS;
		}
	}
	cr_assert_eq(probes, 6);
	for (int i = 0; i < probes; i++)
		cr_assert_eq(probe_at[i], i * 500 * MS);
	cr_assert_eq(local, 24);
	cr_assert_eq(dev.st.local_frames, 24);
	cr_assert_eq(dev.st.probes, 6);
	cr_assert_eq(dev.st.answered_local, 24);
	/* leaving local mode and coming back probes at once */
	cr_assert_eq(rtci_dev_handle(&dev, dg, command(2, 5, 1030), 3 * S, &ev), RTCI_DEV_EV_COMMAND);
	uint64_t seq;
	cr_assert_eq(rtci_dev_frame_begin(&dev, 3 * S, &seq), 5);
	cr_assert_eq(rtci_dev_handle(&dev, dg, command(3, RTCI_SETUP_LOCAL, 1031), 3 * S, &ev),
		     RTCI_DEV_EV_COMMAND);
	cr_assert_eq(rtci_dev_frame_begin(&dev, 3100 * MS, &seq), 9);
	cr_assert_eq(rtci_dev_frame_begin(&dev, 3200 * MS, &seq), RTCI_SETUP_LOCAL);
}

/* A probe's in-time result answers its frame, unless cfg.probe_keeps_local: then it only
 * measures the link (EV_PROBE) and the frame takes its local answer at the deadline. */
Test(device, a_probe_keeps_its_local_answer_where_the_exit_is_more_accurate)
{
	for (int keep = 0; keep < 2; keep++) {
		cfg.probe_keeps_local = (uint8_t)keep;
		enable_local();
		connect(0, 5, 0);
		struct rtci_dev_event ev;
		cr_assert_eq(rtci_dev_handle(&dev, dg, command(1, RTCI_SETUP_LOCAL, 1000), 0, &ev),
			     RTCI_DEV_EV_COMMAND);
		static const uint8_t payload[300];
		int setup;
		uint64_t p = send_frame(0, payload, sizeof(payload), &setup);
		cr_assert_eq(setup, 9, "a probe");
		cr_assert_eq(rtci_dev_local_answer(&dev, p, 4, 3 * MS), 0);
		int kind = rtci_dev_handle(&dev, dg, result(p, 2, RTCI_PROTO_RES_OK, cfg.key), 40 * MS,
					   &ev);
		if (!keep) {
			cr_assert_eq(kind, RTCI_DEV_EV_RESULT);
			cr_assert(ev.hit);
			cr_assert_eq(rtci_dev_expire(&dev, 200 * MS, &ev), RTCI_DEV_EV_NONE);
			continue;
		}
		cr_assert_eq(kind, RTCI_DEV_EV_PROBE);
		cr_assert_eq(ev.seq, p);
		cr_assert_eq(ev.latency_ns, 40 * MS);
		cr_assert_eq(dev.st.results_ok, 0);
		cr_assert_eq(dev.st.probe_results, 1);
		cr_assert_eq(rtci_dev_expire(&dev, 99 * MS, &ev), RTCI_DEV_EV_NONE);
		cr_assert_eq(rtci_dev_expire(&dev, 100 * MS, &ev), RTCI_DEV_EV_LOCAL);
		cr_assert_eq(ev.seq, p);
		cr_assert(ev.hit);
		cr_assert_eq(ev.result.class_id, 4);
		cr_assert_eq(dev.st.answered_local, 1);
	}
}

Test(device, without_a_local_exit_the_local_setup_is_refused)
{
	connect(0, 5, 0);
	struct rtci_dev_event ev;
	cr_assert_eq(rtci_dev_handle(&dev, dg, command(1, RTCI_SETUP_LOCAL, 1000), 0, &ev),
		     RTCI_DEV_EV_NONE);
	uint64_t seq;
	cr_assert_eq(rtci_dev_frame_begin(&dev, 0, &seq), 5);
}
