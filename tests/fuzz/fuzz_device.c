/* libFuzzer: the edge device state machine (edge/device.c) on arbitrary datagrams from the
 * gateway. The input is a sequence of records [flags u8][len u16 LE][len bytes]:
 *   flags bit 0: re-sign the datagram with the device key first, so the fuzzer reaches the
 *                logic behind authentication (results, commands, hello-acks);
 *   flags bit 1: capture and send a frame before it;  bit 2: advance the clock by 1.5 s.
 * Each run starts with a fresh device in session (seq base 1000). Checks invariants after every
 * record: queue bounds, the current setup is one the device announced, counters consistent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/auth.h"
#include "dataplane/protocol.h"
#include "edge/device.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct rtci_dev dev;
static const uint8_t payload[3000] = { 1, 2, 3 };

static void check(const struct rtci_dev *d)
{
	int ok = 0;
	for (unsigned i = 0; i < d->cfg.n_setups; i++)
		ok |= d->cfg.setups[i] == d->setup;
	if (!ok || d->q_len > RTCI_DEV_QUEUE || d->st.results > d->st.frames_sent ||
	    d->st.results_ok + d->st.results_gw_dropped != d->st.results ||
	    d->cfg.frag_size == 0 || d->cfg.frag_size > RTCI_PROTO_MAX_FRAG)
		abort();
	/* a pending plan holds supported setups only; a rate switch never names a frame already
	 * captured (the fuzzed device starts at frame 1000) */
	if (d->plan.n > RTCI_PROTO_MAX_PLAN || (d->plan.n == 1 && d->plan.from < 1000))
		abort();
	for (unsigned k = 0; k < d->plan.n; k++) {
		int known = 0;
		for (unsigned i = 0; i < d->cfg.n_setups; i++)
			known |= d->cfg.setups[i] == d->plan.setup[k];
		if (!known)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rtci_dev_config cfg;
	static uint8_t out[2048], buf[70000];
	if (rtci_auth_init())
		abort();
	memset(&cfg, 0, sizeof(cfg));
	const uint8_t tenant_key[32] = { 7 };
	cfg.tenant_id = 7;
	cfg.device_id = 42;
	rtci_auth_derive_device_key(tenant_key, 7, 42, cfg.key);
	cfg.fps_milli = 10000;
	cfg.deadline_ns = 100000000;
	cfg.reserve_ns = 5000000;
	cfg.frag_size = 1400;
	cfg.n_setups = 3;
	cfg.setups[0] = 0;
	cfg.setups[1] = 5;
	cfg.setups[2] = 9;
	if (rtci_dev_init(&dev, &cfg, 0, 1000, NULL, 0))
		abort();
	/* session: answer the device's hello */
	long n = rtci_dev_hello(&dev, 0, out, sizeof(out));
	struct rtci_proto_msg m;
	if (n <= 0 || rtci_proto_decode(out, (size_t)n, &m))
		abort();
	struct rtci_proto_frame_info info = { .tenant_id = 7, .device_id = 42, .seq = m.hdr.seq };
	struct rtci_proto_hello_ack ack = { .initial_setup_id = 0, .max_frag_size = 1400,
					    .min_frame_seq = 1000, .max_frame_len = 60000 };
	n = rtci_proto_encode_hello_ack(out, sizeof(out), &info, &ack, cfg.key);
	struct rtci_dev_event ev;
	if (rtci_dev_handle(&dev, out, (size_t)n, 0, &ev) != RTCI_DEV_EV_HELLO_ACK)
		abort();

	int64_t now = 1000000;
	size_t off = 0;
	while (off + 3 <= size) {
		uint8_t flags = data[off];
		size_t len = (size_t)data[off + 1] | (size_t)data[off + 2] << 8;
		off += 3;
		if (len > size - off)
			len = size - off;
		memcpy(buf, data + off, len);
		off += len;
		if (flags & 4)
			now += 1500000000;
		if (flags & 2) {
			uint64_t seq;
			int setup = rtci_dev_frame_begin(&dev, now, &seq);
			if (setup >= 0)
				rtci_dev_frame_queue(&dev, now, seq, (uint16_t)setup, now, payload,
						     100 + (uint32_t)(seq % 2800), 0);
			while (rtci_dev_next_datagram(&dev, now, out, sizeof(out)) > 0)
				;
		}
		if (rtci_dev_hello_due(&dev, now))
			rtci_dev_hello(&dev, now, out, sizeof(out));
		if ((flags & 1) && rtci_proto_decode(buf, len, &m) == 0 && m.tag &&
		    m.hdr.type != RTCI_PROTO_FRAGMENT) {
			uint8_t tag[RTCI_PROTO_TAG_LEN];
			rtci_auth_mac(cfg.key, &m.hdr, m.body, m.body_len, tag);
			memcpy(buf + (size_t)(m.tag - buf), tag, sizeof(tag));
		}
		int kind = rtci_dev_handle(&dev, buf, len, now, &ev);
		if (kind == RTCI_DEV_EV_RESULT && ev.latency_ns < 0)
			abort();
		now += 1000;
		check(&dev);
	}
	return 0;
}
