/* Frame authentication: key derivation, MAC construction and verification, replay window. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

#include <sodium.h>

#include "common/rtci_error.h"
#include "dataplane/auth.h"
#include "dataplane/poly1305.h"
#include "dataplane/protocol.h"

static uint8_t tenant_key[32];

static void setup(void)
{
	cr_assert_eq(rtci_auth_init(), 0);
	for (int i = 0; i < 32; i++)
		tenant_key[i] = (uint8_t)(0x40 + i);
}

TestSuite(auth, .init = setup);

Test(auth, device_key_deterministic_and_distinct)
{
	uint8_t a[32], b[32], c[32], d[32], e[32];
	cr_assert_eq(rtci_auth_derive_device_key(tenant_key, 5, 1000, a), 0);
	cr_assert_eq(rtci_auth_derive_device_key(tenant_key, 5, 1000, b), 0);
	cr_assert_eq(memcmp(a, b, 32), 0);
	cr_assert_eq(rtci_auth_derive_device_key(tenant_key, 5, 1001, c), 0);
	cr_assert_neq(memcmp(a, c, 32), 0);
	cr_assert_eq(rtci_auth_derive_device_key(tenant_key, 6, 1000, d), 0);
	cr_assert_neq(memcmp(a, d, 32), 0);
	uint8_t other[32];
	memcpy(other, tenant_key, 32);
	other[0] ^= 1;
	cr_assert_eq(rtci_auth_derive_device_key(other, 5, 1000, e), 0);
	cr_assert_neq(memcmp(a, e, 32), 0);
}

Test(auth, device_key_is_documented_kdf)
{
	/* docs/protocol.md: crypto_kdf_derive_from_key(32, tenant<<32 | device, "RTCIdev1"). */
	uint8_t a[32], want[32];
	cr_assert_eq(rtci_auth_derive_device_key(tenant_key, 0x01020304, 0x0a0b0c0d, a), 0);
	cr_assert_eq(crypto_kdf_derive_from_key(want, 32, 0x010203040a0b0c0dull, "RTCIdev1",
						tenant_key), 0);
	cr_assert_eq(memcmp(a, want, 32), 0);
}

static const struct rtci_proto_frame_info info = {
	.tenant_id = 5, .device_id = 1000, .seq = 77, .setup_id = 3, .backlog_bytes = 10,
	.capture_us = 123456,
};

static uint8_t frame[10000];
static uint8_t bufs[8][RTCI_PROTO_MAX_DATAGRAM];
static struct rtci_proto_datagram dg[8];
static struct rtci_proto_msg msgs[8];
static uint8_t dkey[32];

/* Fragments a frame, decodes it back and reassembles the payload into out. */
static long roundtrip(uint8_t *out)
{
	for (size_t i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i ^ (i >> 8));
	cr_assert_eq(rtci_auth_derive_device_key(tenant_key, 5, 1000, dkey), 0);
	for (int i = 0; i < 8; i++)
		dg[i] = (struct rtci_proto_datagram){ bufs[i], sizeof(bufs[i]), 0 };
	long n = rtci_proto_fragment(&info, frame, sizeof(frame), 1400, dkey, dg, 8);
	cr_assert_eq(n, 8);
	for (long i = 0; i < n; i++) {
		cr_assert_eq(rtci_proto_decode(dg[i].buf, dg[i].len, &msgs[i]), 0);
		memcpy(out + i * 1400, msgs[i].body, msgs[i].body_len);
	}
	return n;
}

Test(auth, frame_mac_verifies)
{
	uint8_t re[10000];
	roundtrip(re);
	cr_assert_eq(rtci_auth_verify(dkey, &msgs[7].hdr, re, sizeof(re), msgs[7].tag), 0);
	/* The MAC header ignores per-datagram fields: any fragment's header works. */
	cr_assert_eq(rtci_auth_verify(dkey, &msgs[2].hdr, re, sizeof(re), msgs[7].tag), 0);
}

Test(auth, frame_mac_bad_key)
{
	uint8_t re[10000], other[32];
	roundtrip(re);
	cr_assert_eq(rtci_auth_derive_device_key(tenant_key, 5, 1001, other), 0);
	cr_assert_eq(rtci_auth_verify(other, &msgs[7].hdr, re, sizeof(re), msgs[7].tag),
		     -RTCI_ERR_AUTH_BAD_MAC);
}

Test(auth, frame_mac_payload_bit_flips)
{
	uint8_t re[10000];
	roundtrip(re);
	const size_t spots[] = { 0, 1, 1399, 1400, 5000, 9999 };
	for (size_t s = 0; s < sizeof(spots) / sizeof(spots[0]); s++)
		for (int bit = 0; bit < 8; bit += 7) {
			re[spots[s]] ^= (uint8_t)(1u << bit);
			cr_assert_eq(rtci_auth_verify(dkey, &msgs[7].hdr, re, sizeof(re), msgs[7].tag),
				     -RTCI_ERR_AUTH_BAD_MAC, "byte %zu bit %d", spots[s], bit);
			re[spots[s]] ^= (uint8_t)(1u << bit);
		}
	uint8_t tag[16];
	memcpy(tag, msgs[7].tag, 16);
	tag[15] ^= 0x80;
	cr_assert_eq(rtci_auth_verify(dkey, &msgs[7].hdr, re, sizeof(re), tag), -RTCI_ERR_AUTH_BAD_MAC);
}

Test(auth, frame_mac_header_fields_covered)
{
	uint8_t re[10000];
	roundtrip(re);
	struct rtci_proto_hdr h;
#define FLIP(field, val)                                                                          \
	do {                                                                                      \
		h = msgs[7].hdr;                                                                  \
		h.field = (val);                                                                  \
		cr_assert_eq(rtci_auth_verify(dkey, &h, re, sizeof(re), msgs[7].tag),             \
			     -RTCI_ERR_AUTH_BAD_MAC, #field);                                     \
	} while (0)
	FLIP(type, RTCI_PROTO_REPORT);
	FLIP(tenant_id, 6);
	FLIP(device_id, 1001);
	FLIP(seq, 78);
	FLIP(seq, 77ull | (1ull << 63));
	FLIP(setup_id, 4);
	FLIP(frag_count, 9);
	FLIP(frag_size, 1401);
	FLIP(frame_len, 9999);
	FLIP(capture_us, 123457);
#undef FLIP
	/* Not covered: per-datagram fields. */
	h = msgs[7].hdr;
	h.backlog_bytes = 999;
	h.frag_index = 3;
	h.flags = 0;
	cr_assert_eq(rtci_auth_verify(dkey, &h, re, sizeof(re), msgs[7].tag), 0);
}

Test(auth, mac_matches_documented_construction)
{
	/* Recompute the tag from libsodium primitives exactly as docs/protocol.md describes. */
	uint8_t re[10000];
	roundtrip(re);
	uint8_t nonce[12] = { RTCI_PROTO_FRAGMENT, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 77 };
	uint8_t otk[32], mh[48], tag[16];
	crypto_stream_chacha20_ietf(otk, 32, nonce, dkey);
	memcpy(mh, dg[0].buf, 48);
	mh[7] = 0;                          /* flags */
	mh[26] = mh[27] = 0;                /* frag_index */
	memset(mh + 36, 0, 4);              /* backlog */
	crypto_onetimeauth_state st;
	crypto_onetimeauth_init(&st, otk);
	crypto_onetimeauth_update(&st, mh, 48);
	crypto_onetimeauth_update(&st, frame, sizeof(frame));
	crypto_onetimeauth_final(&st, tag);
	cr_assert_eq(memcmp(tag, msgs[7].tag, 16), 0);
}

Test(auth, message_verification)
{
	uint8_t key[32], other[32], buf[256];
	cr_assert_eq(rtci_auth_derive_device_key(tenant_key, 5, 1000, key), 0);
	cr_assert_eq(rtci_auth_derive_device_key(tenant_key, 5, 1002, other), 0);
	struct rtci_proto_command c = { .kind = RTCI_PROTO_CMD_RATE_SWITCH, .new_setup_id = 2,
					.apply_from_seq = 100 };
	long n = rtci_proto_encode_command(buf, sizeof(buf), &info, &c, key);
	cr_assert_gt(n, 0);
	struct rtci_proto_msg m;
	cr_assert_eq(rtci_proto_decode(buf, (size_t)n, &m), 0);
	cr_assert_eq(rtci_auth_verify_msg(key, &m), 0);
	cr_assert_eq(rtci_auth_verify_msg(other, &m), -RTCI_ERR_AUTH_BAD_MAC);
	/* flip the new setup id in the body */
	buf[RTCI_PROTO_HDR_LEN + 3] ^= 1;
	cr_assert_eq(rtci_proto_decode(buf, (size_t)n, &m), 0);
	cr_assert_eq(rtci_auth_verify_msg(key, &m), -RTCI_ERR_AUTH_BAD_MAC);
	buf[RTCI_PROTO_HDR_LEN + 3] ^= 1;
	/* flip the command seq in the header */
	buf[23] ^= 1;
	cr_assert_eq(rtci_proto_decode(buf, (size_t)n, &m), 0);
	cr_assert_eq(rtci_auth_verify_msg(key, &m), -RTCI_ERR_AUTH_BAD_MAC);
	buf[23] ^= 1;
	/* a type change with the same seq and body uses another one-time key */
	buf[5] = RTCI_PROTO_REPORT;
	cr_assert_eq(rtci_auth_verify(key, &(struct rtci_proto_hdr){ .type = RTCI_PROTO_REPORT,
			     .tenant_id = 5, .device_id = 1000, .seq = 77, .setup_id = 3,
			     .frag_count = 1, .frame_len = 12, .capture_us = 123456 },
			     buf + RTCI_PROTO_HDR_LEN, 12, buf + RTCI_PROTO_HDR_LEN + 12),
		     -RTCI_ERR_AUTH_BAD_MAC);
}

Test(auth, fragment_has_no_message_tag)
{
	uint8_t re[10000];
	roundtrip(re);
	cr_assert_eq(rtci_auth_verify_msg(dkey, &msgs[0]), -RTCI_ERR_AUTH_NO_TAG);
	cr_assert_eq(rtci_auth_verify(dkey, &msgs[0].hdr, re, sizeof(re), NULL),
		     -RTCI_ERR_AUTH_NO_TAG);
}

Test(replay, first_and_in_window)
{
	struct rtci_auth_replay w;
	rtci_auth_replay_init(&w);
	cr_assert_eq(rtci_auth_replay_accept(&w, 1000), 0);
	cr_assert_eq(rtci_auth_replay_accept(&w, 1002), 0);
	cr_assert_eq(rtci_auth_replay_accept(&w, 1001), 0); /* late but new: accepted */
	cr_assert_eq(rtci_auth_replay_accept(&w, 999), 0);  /* below the first one, in window */
	cr_assert_eq(w.top, 1002);
}

Test(replay, duplicates)
{
	struct rtci_auth_replay w;
	rtci_auth_replay_init(&w);
	cr_assert_eq(rtci_auth_replay_accept(&w, 5), 0);
	cr_assert_eq(rtci_auth_replay_accept(&w, 5), -RTCI_ERR_AUTH_REPLAYED);
	cr_assert_eq(rtci_auth_replay_accept(&w, 7), 0);
	cr_assert_eq(rtci_auth_replay_check(&w, 5), -RTCI_ERR_AUTH_REPLAYED);
	cr_assert_eq(rtci_auth_replay_check(&w, 6), 0);
	cr_assert_eq(rtci_auth_replay_check(&w, 6), 0); /* check alone records nothing */
	cr_assert_eq(rtci_auth_replay_accept(&w, 6), 0);
	cr_assert_eq(rtci_auth_replay_accept(&w, 6), -RTCI_ERR_AUTH_REPLAYED);
	cr_assert_eq(rtci_auth_replay_accept(&w, 7), -RTCI_ERR_AUTH_REPLAYED);
}

Test(replay, too_old)
{
	struct rtci_auth_replay w;
	rtci_auth_replay_init(&w);
	uint64_t top = 10000;
	cr_assert_eq(rtci_auth_replay_accept(&w, top), 0);
	cr_assert_eq(rtci_auth_replay_check(&w, top - RTCI_AUTH_REPLAY_WINDOW + 1), 0);
	cr_assert_eq(rtci_auth_replay_check(&w, top - RTCI_AUTH_REPLAY_WINDOW),
		     -RTCI_ERR_AUTH_STALE);
	cr_assert_eq(rtci_auth_replay_accept(&w, 0), -RTCI_ERR_AUTH_STALE);
	cr_assert_eq(rtci_auth_replay_accept(&w, top - RTCI_AUTH_REPLAY_WINDOW + 1), 0);
}

Test(replay, slide_clears_reused_slots)
{
	/* After the window moves by less than its width, slots of sequences that dropped out
	 * must not make the new sequences mapped onto them look replayed. */
	struct rtci_auth_replay w;
	rtci_auth_replay_init(&w);
	for (uint64_t s = 1; s <= 100; s++)
		cr_assert_eq(rtci_auth_replay_accept(&w, s), 0);
	uint64_t next = 100 + RTCI_AUTH_REPLAY_WINDOW - 10;
	cr_assert_eq(rtci_auth_replay_accept(&w, next), 0);
	/* 101 .. next-1 are new even though 1..100 shared their slots modulo the width */
	for (uint64_t s = 101; s < next; s += 37)
		cr_assert_eq(rtci_auth_replay_accept(&w, s), 0, "seq %llu", (unsigned long long)s);
	/* 1..(next-WINDOW) are stale; the rest of 1..100 are still remembered as seen */
	cr_assert_eq(rtci_auth_replay_check(&w, next - RTCI_AUTH_REPLAY_WINDOW),
		     -RTCI_ERR_AUTH_STALE);
	cr_assert_eq(rtci_auth_replay_check(&w, 100), -RTCI_ERR_AUTH_REPLAYED);
}

Test(replay, far_future_jump)
{
	struct rtci_auth_replay w;
	rtci_auth_replay_init(&w);
	for (uint64_t s = 50; s < 60; s++)
		cr_assert_eq(rtci_auth_replay_accept(&w, s), 0);
	uint64_t far = 1ull << 50;
	cr_assert_eq(rtci_auth_replay_accept(&w, far), 0);
	cr_assert_eq(w.top, far);
	cr_assert_eq(rtci_auth_replay_accept(&w, 59), -RTCI_ERR_AUTH_STALE);
	cr_assert_eq(rtci_auth_replay_accept(&w, far), -RTCI_ERR_AUTH_REPLAYED);
	/* slots of the old sequences were cleared: everything just below the jump is new */
	for (uint64_t s = far - 60; s < far; s += 3)
		cr_assert_eq(rtci_auth_replay_accept(&w, s), 0);
	cr_assert_eq(rtci_auth_replay_accept(&w, UINT64_MAX), 0);
	cr_assert_eq(rtci_auth_replay_accept(&w, UINT64_MAX), -RTCI_ERR_AUTH_REPLAYED);
}

Test(auth, worked_example_from_docs)
{
	/* docs/protocol.md, "Worked example": known answers for key derivation and the tag. */
	uint8_t tk[32], dk[32], frame[40];
	for (int i = 0; i < 32; i++)
		tk[i] = (uint8_t)i;
	for (int i = 0; i < 40; i++)
		frame[i] = (uint8_t)(0xa0 + i);
	static const uint8_t want_dk[32] = {
		0x35, 0xaf, 0xf2, 0xfe, 0xb3, 0xeb, 0x70, 0x62, 0x40, 0x26, 0xce, 0xc7, 0x59, 0x27,
		0x03, 0x0d, 0xdf, 0x53, 0x67, 0x66, 0x70, 0x24, 0xbc, 0x7b, 0xd7, 0xf2, 0x2a, 0xef,
		0xd0, 0xe8, 0x79, 0x36 };
	static const uint8_t want_tag[16] = { 0x84, 0x7a, 0xe0, 0xfd, 0x59, 0xd1, 0x5d, 0x17,
					      0x8d, 0x41, 0xce, 0xe4, 0xba, 0xa1, 0x35, 0x8d };
	cr_assert_eq(rtci_auth_derive_device_key(tk, 7, 42, dk), 0);
	cr_assert_eq(memcmp(dk, want_dk, 32), 0);
	struct rtci_proto_frame_info fi = { .tenant_id = 7, .device_id = 42, .seq = 1,
					    .setup_id = 3, .backlog_bytes = 0x200,
					    .capture_us = 1000000 };
	uint8_t b[3][128];
	struct rtci_proto_datagram d[3];
	for (int i = 0; i < 3; i++)
		d[i] = (struct rtci_proto_datagram){ b[i], sizeof(b[i]), 0 };
	cr_assert_eq(rtci_proto_fragment(&fi, frame, 40, 16, dk, d, 3), 3);
	cr_assert_eq(d[0].len, 64);
	cr_assert_eq(d[2].len, 72);
	static const uint8_t want_hdr2[48] = {
		0x52, 0x54, 0x43, 0x49, 0x01, 0x01, 0x30, 0x01, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00,
		0x00, 0x2a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x03, 0x00, 0x02,
		0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x0f, 0x42, 0x40 };
	cr_assert_eq(memcmp(b[2], want_hdr2, 48), 0);
	cr_assert_eq(memcmp(b[2] + 56, want_tag, 16), 0);
}

Test(auth, stream_equals_one_shot)
{
	uint8_t re[10000], tag[16];
	roundtrip(re);
	struct rtci_auth_stream s;
	rtci_auth_stream_init(&s, dkey, &msgs[0].hdr);
	for (size_t off = 0; off < sizeof(re); off += 999)
		rtci_auth_stream_update(&s, re + off, sizeof(re) - off < 999 ? sizeof(re) - off : 999);
	rtci_auth_stream_final(&s, tag);
	cr_assert_eq(memcmp(tag, msgs[7].tag, 16), 0);
	rtci_auth_stream_init(&s, dkey, &msgs[0].hdr);
	rtci_auth_stream_update(&s, re, 5000);
	rtci_auth_stream_update(&s, re + 5000, 5000);
	cr_assert_eq(rtci_auth_stream_verify(&s, msgs[7].tag), 0);
	rtci_auth_stream_init(&s, dkey, &msgs[0].hdr);
	rtci_auth_stream_update(&s, re, 9999);
	cr_assert_eq(rtci_auth_stream_verify(&s, msgs[7].tag), -RTCI_ERR_AUTH_BAD_MAC);
}

/* rtci_poly1305() (libcrypto when the build found it) against libsodium's Poly1305, for every
 * split of messages up to a few blocks and for longer ones, in this thread and in a new one
 * (each thread gets its own context). */
static void *poly1305_against_libsodium(void *arg)
{
	static uint8_t msg[5000];
	uint8_t key[32], want[16], got[16];
	int *bad = arg;
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 29 + 3);
	for (int k = 0; k < 32; k++)
		key[k] = (uint8_t)(k * 11 + 1);
	size_t lens[] = { 0, 1, 15, 16, 17, 48, 63, 64, 65, 255, 256, 1400, 1448, 4096, 5000 };
	for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
		size_t n = lens[li];
		key[0]++;
		crypto_onetimeauth(want, msg, n, key);
		for (size_t a = 0; a <= n; a += (n < 70 ? 1 : 97)) {
			rtci_poly1305(key, msg, a, msg + a, n - a, got);
			*bad += memcmp(want, got, 16) != 0;
		}
	}
	return NULL;
}

Test(auth, poly1305_equals_libsodium)
{
	int bad = 0;
	poly1305_against_libsodium(&bad);
	cr_expect_eq(bad, 0, "%d tags differ (%s)", bad, rtci_poly1305_backend());
	pthread_t th;
	int bad_thread = 0;
	cr_assert_eq(pthread_create(&th, NULL, poly1305_against_libsodium, &bad_thread), 0);
	pthread_join(th, NULL);
	cr_expect_eq(bad_thread, 0, "%d tags differ in a second thread", bad_thread);
}
