/* Reassembly table: orders, duplicates, conflicts, TTL, in-flight bound, byte and tenant
 * bounds, counters. Every completed frame is checked byte for byte and by its MAC. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/rtci_error.h"
#include "dataplane/auth.h"
#include "dataplane/protocol.h"
#include "dataplane/reassembly.h"

#define MAXF 64
#define FS 1000

static const uint8_t key[32] = { 9, 9, 9 };

struct frame {
	uint8_t data[MAXF * FS];
	size_t len;
	uint8_t dbuf[MAXF][RTCI_PROTO_MAX_DATAGRAM];
	struct rtci_proto_datagram dg[MAXF];
	struct rtci_proto_msg msg[MAXF];
	long n;
};

static struct frame *make(uint32_t tenant, uint32_t device, uint64_t seq, size_t len)
{
	struct frame *f = calloc(1, sizeof(*f));
	cr_assert_not_null(f);
	struct rtci_proto_frame_info info = { .tenant_id = tenant, .device_id = device, .seq = seq,
					      .setup_id = 4, .capture_us = seq * 33333 };
	f->len = len;
	for (size_t i = 0; i < len; i++)
		f->data[i] = (uint8_t)(i * 13 + seq + device);
	for (int i = 0; i < MAXF; i++)
		f->dg[i] = (struct rtci_proto_datagram){ f->dbuf[i], sizeof(f->dbuf[i]), 0 };
	f->n = rtci_proto_fragment(&info, f->data, len, FS, key, f->dg, MAXF);
	cr_assert_gt(f->n, 0);
	for (long i = 0; i < f->n; i++)
		cr_assert_eq(rtci_proto_decode(f->dg[i].buf, f->dg[i].len, &f->msg[i]), 0);
	return f;
}

static struct rtci_reasm_config base_cfg(void)
{
	return (struct rtci_reasm_config){ .max_frames = 64, .arena_bytes = 8u << 20,
					   .max_frame_len = MAXF * FS,
					   .max_inflight_per_device = 4, .max_tenants = 16,
					   .ttl = 1000 };
}

static struct rtci_reasm *table(const struct rtci_reasm_config *cfg)
{
	struct rtci_reasm *t = NULL;
	int err = rtci_reasm_create(cfg, &t);
	cr_assert_eq(err, 0, "create: %d", err);
	cr_assert_not_null(t);
	return t;
}

static void check_frame(const struct frame *f, const struct rtci_reasm_frame *out)
{
	cr_assert_eq(out->len, f->len);
	cr_assert_eq(out->hdr.frame_len, f->len);
	cr_assert_eq(out->hdr.tenant_id, f->msg[0].hdr.tenant_id);
	cr_assert_eq(out->hdr.device_id, f->msg[0].hdr.device_id);
	cr_assert_eq(out->hdr.seq, f->msg[0].hdr.seq);
	cr_assert_eq(memcmp(out->data, f->data, f->len), 0);
	cr_assert_eq(rtci_auth_verify(key, &out->hdr, out->data, out->len, out->tag), 0);
}

/* Feeds fragments in the given order; returns the completed frame (asserts it completes
 * exactly at the last one). */
static struct rtci_reasm_frame *feed(struct rtci_reasm *t, struct frame *f, const long *order,
				     uint64_t now)
{
	struct rtci_reasm_frame *out = NULL;
	for (long i = 0; i < f->n; i++) {
		int r = rtci_reasm_insert(t, &f->msg[order ? order[i] : i], key, now, &out);
		cr_assert_eq(r, i == f->n - 1 ? 1 : 0, "fragment %ld: %d", i, r);
	}
	cr_assert_not_null(out);
	check_frame(f, out);
	cr_assert_eq(out->verified, 1);
	return out;
}

Test(reassembly, in_order_reverse_shuffled)
{
	struct rtci_reasm_config cfg = base_cfg();
	struct rtci_reasm *t = table(&cfg);
	struct frame *f = make(1, 1, 10, 37 * FS + 123);
	long order[MAXF];

	rtci_reasm_release(t, feed(t, f, NULL, 0));
	for (long i = 0; i < f->n; i++)
		order[i] = f->n - 1 - i;
	struct frame *g = make(1, 1, 11, 37 * FS + 123);
	rtci_reasm_release(t, feed(t, g, order, 0));
	srand(7);
	for (int round = 0; round < 20; round++) {
		struct frame *h = make(1, 2, 100 + (uint64_t)round, (size_t)(1 + rand() % (MAXF * FS)));
		for (long i = 0; i < h->n; i++)
			order[i] = i;
		for (long i = h->n - 1; i > 0; i--) {
			long j = rand() % (i + 1), x = order[i];
			order[i] = order[j];
			order[j] = x;
		}
		rtci_reasm_release(t, feed(t, h, order, 0));
		free(h);
	}
	struct rtci_reasm_stats st;
	rtci_reasm_stats(t, &st);
	cr_assert_eq(st.frames_completed, 22);
	cr_assert_eq(st.frames_released, 22);
	cr_assert_eq(st.frames_in_flight, 0);
	cr_assert_eq(st.frames_held, 0);
	cr_assert_eq(st.arena_bytes_used, 0);
	cr_assert_eq(st.fragments, st.fragments_accepted);
	free(f);
	free(g);
	rtci_reasm_destroy(t);
}

Test(reassembly, interleaved_frames_and_devices)
{
	struct rtci_reasm_config cfg = base_cfg();
	struct rtci_reasm *t = table(&cfg);
	struct frame *f[6];
	for (int k = 0; k < 6; k++)
		f[k] = make((uint32_t)(k % 2), (uint32_t)(k % 3), (uint64_t)k, 20 * FS + 1 + (size_t)k);
	int done = 0;
	for (long i = 0; i < 21; i++)
		for (int k = 0; k < 6; k++) {
			struct rtci_reasm_frame *out = NULL;
			int r = rtci_reasm_insert(t, &f[k]->msg[i], key, 5, &out);
			cr_assert_eq(r, i == 20 ? 1 : 0);
			if (r == 1) {
				check_frame(f[k], out);
				rtci_reasm_release(t, out);
				done++;
			}
		}
	cr_assert_eq(done, 6);
	for (int k = 0; k < 6; k++)
		free(f[k]);
	rtci_reasm_destroy(t);
}

Test(reassembly, table_mac_rejects_forgeries)
{
	struct rtci_reasm_config cfg = base_cfg();
	struct rtci_reasm *t = table(&cfg);
	struct frame *f = make(1, 1, 1, 6 * FS + 5);
	struct rtci_reasm_frame *out = NULL;
	uint8_t evil[RTCI_PROTO_MAX_DATAGRAM];
	struct rtci_proto_msg m;

	/* a forged fragment arrives before the genuine one: the frame fails its MAC */
	memcpy(evil, f->dg[3].buf, f->dg[3].len);
	evil[RTCI_PROTO_HDR_LEN] ^= 1;
	cr_assert_eq(rtci_proto_decode(evil, f->dg[3].len, &m), 0);
	cr_assert_eq(rtci_reasm_insert(t, &m, key, 0, &out), 0);
	for (long i = 0; i < f->n; i++) {
		int r = rtci_reasm_insert(t, &f->msg[i], key, 0, &out);
		if (i == 3)
			cr_assert_eq(r, -RTCI_ERR_REASM_CONFLICT);
		else
			cr_assert_eq(r, i == f->n - 1 ? -RTCI_ERR_AUTH_BAD_MAC : 0, "i %ld r %d", i, r);
	}
	/* wrong device key, fragments out of order */
	uint8_t other[32] = { 9, 9, 8 };
	const long ord[] = { 6, 0, 2, 1, 5, 3, 4 };
	for (int i = 0; i < 7; i++)
		cr_assert_eq(rtci_reasm_insert(t, &f->msg[ord[i]], other, 0, &out),
			     i == 6 ? -RTCI_ERR_AUTH_BAD_MAC : 0);
	/* the right key, same out-of-order arrival */
	for (int i = 0; i < 7; i++)
		cr_assert_eq(rtci_reasm_insert(t, &f->msg[ord[i]], key, 0, &out), i == 6 ? 1 : 0);
	check_frame(f, out);
	cr_assert_eq(out->verified, 1);
	rtci_reasm_release(t, out);
	struct rtci_reasm_stats st;
	rtci_reasm_stats(t, &st);
	cr_assert_eq(st.frames_bad_mac, 2);
	cr_assert_eq(st.frames_completed, 1);
	cr_assert_eq(st.fragments_discarded, 14);
	cr_assert_eq(st.arena_bytes_used, 0);
	cr_assert_eq(st.frames_in_flight, 0);
	free(f);
	rtci_reasm_destroy(t);
}

Test(reassembly, duplicates_ignored_and_counted)
{
	struct rtci_reasm_config cfg = base_cfg();
	struct rtci_reasm *t = table(&cfg);
	struct frame *f = make(1, 1, 1, 5 * FS);
	struct rtci_reasm_frame *out = NULL;
	cr_assert_eq(rtci_reasm_insert(t, &f->msg[0], NULL, 0, &out), 0);
	cr_assert_eq(rtci_reasm_insert(t, &f->msg[0], NULL, 0, &out), -RTCI_ERR_REASM_DUPLICATE);
	cr_assert_eq(rtci_reasm_insert(t, &f->msg[4], NULL, 0, &out), 0);
	cr_assert_eq(rtci_reasm_insert(t, &f->msg[4], NULL, 0, &out), -RTCI_ERR_REASM_DUPLICATE);
	for (int i = 1; i < 4; i++)
		cr_assert_eq(rtci_reasm_insert(t, &f->msg[i], NULL, 0, &out), i == 3 ? 1 : 0);
	check_frame(f, out);
	struct rtci_reasm_stats st;
	rtci_reasm_stats(t, &st);
	cr_assert_eq(st.drops[RTCI_REASM_DROP_DUPLICATE], 2);
	cr_assert_eq(st.fragments, 7);
	cr_assert_eq(st.fragments_accepted, 5);
	rtci_reasm_release(t, out);
	free(f);
	rtci_reasm_destroy(t);
}

Test(reassembly, conflicting_duplicates_rejected)
{
	struct rtci_reasm_config cfg = base_cfg();
	struct rtci_reasm *t = table(&cfg);
	struct frame *f = make(1, 1, 1, 3 * FS);
	struct rtci_reasm_frame *out = NULL;
	cr_assert_eq(rtci_reasm_insert(t, &f->msg[1], NULL, 0, &out), 0);
	cr_assert_eq(rtci_reasm_insert(t, &f->msg[2], NULL, 0, &out), 0);

	/* same index, different bytes */
	uint8_t evil[RTCI_PROTO_MAX_DATAGRAM];
	memcpy(evil, f->dg[1].buf, f->dg[1].len);
	evil[RTCI_PROTO_HDR_LEN + 10] ^= 0xff;
	struct rtci_proto_msg m;
	cr_assert_eq(rtci_proto_decode(evil, f->dg[1].len, &m), 0);
	cr_assert_eq(rtci_reasm_insert(t, &m, NULL, 0, &out), -RTCI_ERR_REASM_CONFLICT);

	/* same last fragment, different tag */
	memcpy(evil, f->dg[2].buf, f->dg[2].len);
	evil[f->dg[2].len - 1] ^= 1;
	cr_assert_eq(rtci_proto_decode(evil, f->dg[2].len, &m), 0);
	cr_assert_eq(rtci_reasm_insert(t, &m, NULL, 0, &out), -RTCI_ERR_REASM_CONFLICT);

	/* same index, different length: only possible with different frame fields */
	struct rtci_proto_frame_info info = { .tenant_id = 1, .device_id = 1, .seq = 1,
					      .setup_id = 4, .capture_us = 33333 };
	uint8_t pay[FS] = { 0 }, tag[16] = { 0 };
	long n = rtci_proto_encode_fragment(evil, sizeof(evil), &info, 1, 3, FS, 3 * FS - 1, pay,
					    FS, tag);
	cr_assert_gt(n, 0);
	cr_assert_eq(rtci_proto_decode(evil, (size_t)n, &m), 0);
	cr_assert_eq(rtci_reasm_insert(t, &m, NULL, 0, &out), -RTCI_ERR_REASM_MISMATCH);
	/* other setup id for the same frame */
	info.setup_id = 5;
	n = rtci_proto_encode_fragment(evil, sizeof(evil), &info, 0, 3, FS, 3 * FS, pay, FS, tag);
	cr_assert_eq(rtci_proto_decode(evil, (size_t)n, &m), 0);
	cr_assert_eq(rtci_reasm_insert(t, &m, NULL, 0, &out), -RTCI_ERR_REASM_MISMATCH);

	/* the genuine bytes still complete the frame */
	cr_assert_eq(rtci_reasm_insert(t, &f->msg[0], NULL, 0, &out), 1);
	check_frame(f, out);
	struct rtci_reasm_stats st;
	rtci_reasm_stats(t, &st);
	cr_assert_eq(st.drops[RTCI_REASM_DROP_CONFLICT], 2);
	cr_assert_eq(st.drops[RTCI_REASM_DROP_MISMATCH], 2);
	rtci_reasm_release(t, out);
	free(f);
	rtci_reasm_destroy(t);
}

Test(reassembly, ttl_expiry)
{
	struct rtci_reasm_config cfg = base_cfg();
	struct rtci_reasm *t = table(&cfg);
	struct frame *a = make(1, 1, 1, 4 * FS), *b = make(1, 2, 1, 4 * FS);
	struct rtci_reasm_frame *out = NULL;
	cr_assert_eq(rtci_reasm_insert(t, &a->msg[0], NULL, 100, &out), 0);
	cr_assert_eq(rtci_reasm_insert(t, &a->msg[1], NULL, 150, &out), 0);
	cr_assert_eq(rtci_reasm_insert(t, &b->msg[0], NULL, 600, &out), 0);
	cr_assert_eq(rtci_reasm_expire(t, 1099), 0); /* a is 999 old */
	cr_assert_eq(rtci_reasm_expire(t, 1100), 1); /* a reaches the TTL */
	struct rtci_reasm_stats st;
	rtci_reasm_stats(t, &st);
	cr_assert_eq(st.frames_expired, 1);
	cr_assert_eq(st.fragments_discarded, 2);
	cr_assert_eq(st.frames_in_flight, 1);
	/* a's remaining fragments start a new frame that cannot complete alone */
	cr_assert_eq(rtci_reasm_insert(t, &a->msg[2], NULL, 1100, &out), 0);
	cr_assert_eq(rtci_reasm_insert(t, &a->msg[3], NULL, 1100, &out), 0);
	/* b completes before its TTL (insert expires nothing of b at 1599) */
	for (int i = 1; i < 4; i++)
		cr_assert_eq(rtci_reasm_insert(t, &b->msg[i], NULL, 1599, &out), i == 3 ? 1 : 0);
	check_frame(b, out);
	rtci_reasm_release(t, out);
	/* insert runs expiry itself */
	cr_assert_eq(rtci_reasm_insert(t, &b->msg[0], NULL, 2100, &out), 0);
	rtci_reasm_stats(t, &st);
	cr_assert_eq(st.frames_expired, 2);
	cr_assert_eq(st.frames_in_flight, 1);
	free(a);
	free(b);
	rtci_reasm_destroy(t);
}

struct discards {
	uint32_t n[2];
	uint32_t tenant[8], device[8];
};

static void on_discard(void *ctx, uint32_t tenant, uint32_t device, enum rtci_reasm_discard why)
{
	struct discards *d = ctx;
	uint32_t k = d->n[0] + d->n[1];
	if (k < 8) {
		d->tenant[k] = tenant;
		d->device[k] = device;
	}
	d->n[why]++;
}

/* The caller hears of each expired and evicted frame with its tenant, to count it per tenant. */
Test(reassembly, discards_reported_per_tenant)
{
	struct discards d = { 0 };
	struct rtci_reasm_config cfg = base_cfg();
	cfg.on_discard = on_discard;
	cfg.discard_ctx = &d;
	cfg.max_inflight_per_device = 1;
	struct rtci_reasm *t = table(&cfg);
	struct frame *a = make(3, 1, 1, 4 * FS), *b = make(4, 2, 1, 4 * FS),
		     *b2 = make(4, 2, 2, 4 * FS);
	struct rtci_reasm_frame *out = NULL;
	cr_assert_eq(rtci_reasm_insert(t, &a->msg[0], NULL, 100, &out), 0);
	cr_assert_eq(rtci_reasm_insert(t, &b->msg[0], NULL, 100, &out), 0);
	cr_assert_eq(rtci_reasm_insert(t, &b2->msg[0], NULL, 200, &out), 0); /* evicts b */
	cr_assert_eq(d.n[RTCI_REASM_EVICTED], 1);
	cr_expect_eq(d.tenant[0], 4);
	cr_expect_eq(d.device[0], 2);
	cr_assert_eq(rtci_reasm_expire(t, 100 + cfg.ttl), 1);
	cr_assert_eq(d.n[RTCI_REASM_EXPIRED], 1);
	cr_expect_eq(d.tenant[1], 3);
	cr_expect_eq(d.device[1], 1);
	free(a);
	free(b);
	free(b2);
	rtci_reasm_destroy(t);
}

Test(reassembly, inflight_bound_newest_wins)
{
	struct rtci_reasm_config cfg = base_cfg();
	cfg.max_inflight_per_device = 2;
	struct rtci_reasm *t = table(&cfg);
	struct frame *f[5];
	for (int k = 0; k < 5; k++)
		f[k] = make(1, 7, 10 + (uint64_t)k, 3 * FS);
	struct rtci_reasm_frame *out = NULL;
	cr_assert_eq(rtci_reasm_insert(t, &f[1]->msg[0], NULL, 0, &out), 0); /* seq 11 */
	cr_assert_eq(rtci_reasm_insert(t, &f[2]->msg[0], NULL, 0, &out), 0); /* seq 12 */
	/* seq 10 is older than both in flight: refused */
	cr_assert_eq(rtci_reasm_insert(t, &f[0]->msg[0], NULL, 0, &out),
		     -RTCI_ERR_REASM_OLDER_THAN_INFLIGHT);
	/* seq 13 evicts seq 11 */
	cr_assert_eq(rtci_reasm_insert(t, &f[3]->msg[0], NULL, 0, &out), 0);
	struct rtci_reasm_stats st;
	rtci_reasm_stats(t, &st);
	cr_assert_eq(st.frames_evicted, 1);
	cr_assert_eq(st.frames_in_flight, 2);
	cr_assert_eq(st.drops[RTCI_REASM_DROP_OLDER_THAN_INFLIGHT], 1);
	/* seq 12 and 13 complete; 11's remaining fragments would start it again (evicting 12
	 * is not allowed: 11 < 12) */
	cr_assert_eq(rtci_reasm_insert(t, &f[1]->msg[1], NULL, 0, &out),
		     -RTCI_ERR_REASM_OLDER_THAN_INFLIGHT);
	for (int k = 2; k <= 3; k++) {
		cr_assert_eq(rtci_reasm_insert(t, &f[k]->msg[1], NULL, 0, &out), 0);
		cr_assert_eq(rtci_reasm_insert(t, &f[k]->msg[2], NULL, 0, &out), 1);
		check_frame(f[k], out);
		rtci_reasm_release(t, out);
	}
	/* another device is not affected by device 7's bound */
	struct frame *o = make(1, 8, 1, 2 * FS);
	rtci_reasm_release(t, feed(t, o, NULL, 0));
	/* bound of one: each newer frame replaces the previous */
	cfg.max_inflight_per_device = 1;
	struct rtci_reasm *u = table(&cfg);
	cr_assert_eq(rtci_reasm_insert(u, &f[0]->msg[0], NULL, 0, &out), 0);
	cr_assert_eq(rtci_reasm_insert(u, &f[1]->msg[0], NULL, 0, &out), 0);
	cr_assert_eq(rtci_reasm_insert(u, &f[2]->msg[0], NULL, 0, &out), 0);
	rtci_reasm_stats(u, &st);
	cr_assert_eq(st.frames_evicted, 2);
	cr_assert_eq(st.frames_in_flight, 1);
	cr_assert_eq(rtci_reasm_insert(u, &f[2]->msg[1], NULL, 0, &out), 0);
	cr_assert_eq(rtci_reasm_insert(u, &f[2]->msg[2], NULL, 0, &out), 1);
	check_frame(f[2], out);
	rtci_reasm_release(u, out);
	rtci_reasm_stats(u, &st);
	cr_assert_eq(st.arena_bytes_used, 0);
	for (int k = 0; k < 5; k++)
		free(f[k]);
	free(o);
	rtci_reasm_destroy(t);
	rtci_reasm_destroy(u);
}

struct quotas {
	struct rtci_reasm_quota q[4];
};

static int quota_cb(void *ctx, uint32_t tenant, struct rtci_reasm_quota *out)
{
	struct quotas *qs = ctx;
	if (tenant >= 4)
		return -1;
	*out = qs->q[tenant];
	return 0;
}

Test(reassembly, tenant_quota_isolates_tenants)
{
	size_t cost = rtci_reasm_frame_cost(10 * FS, 10); /* 16 KiB */
	struct quotas qs = { .q = { [1] = { .max_frames = 100, .max_bytes = 8 * cost },
				    [2] = { .max_frames = 100, .max_bytes = 8 * cost },
				    [3] = { .max_frames = 2, .max_bytes = 1u << 30 } } };
	struct rtci_reasm_config cfg = base_cfg();
	cfg.arena_bytes = 16 * cost; /* exactly the two quotas */
	cfg.quota = quota_cb;
	cfg.quota_ctx = &qs;
	struct rtci_reasm *t = table(&cfg);
	struct rtci_reasm_frame *out = NULL;

	/* tenant 2 has 3 frames in flight */
	struct frame *v[3];
	for (int k = 0; k < 3; k++) {
		v[k] = make(2, 1, (uint64_t)k, 10 * FS);
		cr_assert_eq(rtci_reasm_insert(t, &v[k]->msg[0], NULL, 0, &out), 0);
	}
	/* tenant 1 floods with first fragments from many devices */
	int accepted = 0, refused = 0;
	for (uint32_t d = 0; d < 40; d++) {
		struct frame *x = make(1, 100 + d, 1, 10 * FS);
		int r = rtci_reasm_insert(t, &x->msg[0], NULL, 0, &out);
		if (r == 0)
			accepted++;
		else {
			cr_assert_eq(r, -RTCI_ERR_REASM_TENANT_BYTES);
			refused++;
		}
		free(x);
	}
	cr_assert_eq(accepted, 8);
	cr_assert_eq(refused, 32);
	uint32_t frames;
	uint64_t bytes;
	rtci_reasm_tenant_usage(t, 1, &frames, &bytes);
	cr_assert_eq(frames, 8);
	cr_assert_eq(bytes, 8 * cost);
	/* tenant 2's frames are intact, and it can still start new ones within its quota */
	for (int k = 0; k < 3; k++) {
		for (long i = 1; i < v[k]->n; i++)
			cr_assert_eq(rtci_reasm_insert(t, &v[k]->msg[i], NULL, 0, &out),
				     i == v[k]->n - 1 ? 1 : 0);
		check_frame(v[k], out);
		rtci_reasm_release(t, out);
	}
	struct frame *w = make(2, 1, 50, 10 * FS);
	rtci_reasm_release(t, feed(t, w, NULL, 0));

	/* frame quota */
	struct frame *z[3];
	for (int k = 0; k < 3; k++) {
		z[k] = make(3, (uint32_t)k, 1, 2 * FS);
		cr_assert_eq(rtci_reasm_insert(t, &z[k]->msg[0], NULL, 0, &out),
			     k < 2 ? 0 : -RTCI_ERR_REASM_TENANT_ENTRIES);
	}
	/* unknown tenant */
	struct frame *u = make(9, 1, 1, 2 * FS);
	cr_assert_eq(rtci_reasm_insert(t, &u->msg[0], NULL, 0, &out), -RTCI_ERR_REASM_UNKNOWN_TENANT);

	struct rtci_reasm_stats st;
	rtci_reasm_stats(t, &st);
	cr_assert_eq(st.drops[RTCI_REASM_DROP_TENANT_BYTES], 32);
	cr_assert_eq(st.drops[RTCI_REASM_DROP_TENANT_FRAMES], 1);
	cr_assert_eq(st.drops[RTCI_REASM_DROP_UNKNOWN_TENANT], 1);
	for (int k = 0; k < 3; k++) {
		free(v[k]);
		free(z[k]);
	}
	free(w);
	free(u);
	rtci_reasm_destroy(t);
}

Test(reassembly, held_frames_count_until_released)
{
	size_t cost = rtci_reasm_frame_cost(10 * FS, 10);
	struct quotas qs = { .q = { [1] = { .max_frames = 100, .max_bytes = 2 * cost } } };
	struct rtci_reasm_config cfg = base_cfg();
	cfg.quota = quota_cb;
	cfg.quota_ctx = &qs;
	struct rtci_reasm *t = table(&cfg);
	struct frame *a = make(1, 1, 1, 10 * FS), *b = make(1, 1, 2, 10 * FS),
		     *c = make(1, 1, 3, 10 * FS);
	struct rtci_reasm_frame *fa = feed(t, a, NULL, 0), *fb = feed(t, b, NULL, 0), *out = NULL;
	cr_assert_eq(rtci_reasm_insert(t, &c->msg[0], NULL, 0, &out), -RTCI_ERR_REASM_TENANT_BYTES);
	rtci_reasm_release(t, fa);
	rtci_reasm_release(t, feed(t, c, NULL, 0));
	rtci_reasm_release(t, fb);
	uint32_t frames;
	uint64_t bytes;
	rtci_reasm_tenant_usage(t, 1, &frames, &bytes);
	cr_assert_eq(frames, 0);
	cr_assert_eq(bytes, 0);
	free(a);
	free(b);
	free(c);
	rtci_reasm_destroy(t);
}

Test(reassembly, global_bounds)
{
	struct rtci_reasm_config cfg = base_cfg();
	cfg.max_frames = 4;
	cfg.max_frame_len = 20 * FS;
	cfg.arena_bytes = 3 * rtci_reasm_frame_cost(10 * FS, 10);
	cfg.max_tenants = 2;
	struct rtci_reasm *t = table(&cfg);
	struct rtci_reasm_frame *out = NULL;
	struct frame *big = make(1, 1, 1, 21 * FS);
	cr_assert_eq(rtci_reasm_insert(t, &big->msg[0], NULL, 0, &out), -RTCI_ERR_REASM_TOO_BIG);
	struct frame *f[6];
	for (int k = 0; k < 6; k++)
		f[k] = make(1, (uint32_t)k, 1, k < 3 ? 10 * FS : 100);
	for (int k = 0; k < 3; k++)
		cr_assert_eq(rtci_reasm_insert(t, &f[k]->msg[0], NULL, 0, &out), 0);
	/* arena holds three 16 KiB frames: a fourth does not fit */
	struct frame *g = make(1, 9, 1, 10 * FS);
	cr_assert_eq(rtci_reasm_insert(t, &g->msg[0], NULL, 0, &out), -RTCI_ERR_REASM_ARENA_FULL);
	/* small one-fragment frames still fit? no: arena is exactly full */
	cr_assert_eq(rtci_reasm_insert(t, &f[3]->msg[0], NULL, 0, &out), -RTCI_ERR_REASM_ARENA_FULL);
	rtci_reasm_expire(t, cfg.ttl);
	/* after expiry: 4 entries max */
	struct frame *s[5];
	for (int k = 0; k < 5; k++) {
		s[k] = make(1, 20 + (uint32_t)k, 1, 2 * FS);
		cr_assert_eq(rtci_reasm_insert(t, &s[k]->msg[0], NULL, cfg.ttl, &out),
			     k < 4 ? 0 : -RTCI_ERR_REASM_TABLE_FULL);
	}
	rtci_reasm_expire(t, 2 * cfg.ttl);
	/* tenant table of two */
	struct frame *tt[3];
	for (int k = 0; k < 3; k++) {
		tt[k] = make(10 + (uint32_t)k, 1, 1, 2 * FS);
		cr_assert_eq(rtci_reasm_insert(t, &tt[k]->msg[0], NULL, 2 * cfg.ttl, &out),
			     k < 2 ? 0 : -RTCI_ERR_REASM_TENANT_TABLE_FULL);
	}
	/* a non-fragment message */
	uint8_t buf[128];
	struct rtci_proto_frame_info info = { .tenant_id = 1 };
	struct rtci_proto_report rep = { 0 };
	long n = rtci_proto_encode_report(buf, sizeof(buf), &info, &rep, key);
	struct rtci_proto_msg m;
	cr_assert_eq(rtci_proto_decode(buf, (size_t)n, &m), 0);
	cr_assert_eq(rtci_reasm_insert(t, &m, NULL, 0, &out), -RTCI_ERR_REASM_NOT_FRAGMENT);

	struct rtci_reasm_stats st;
	rtci_reasm_stats(t, &st);
	cr_assert_eq(st.drops[RTCI_REASM_DROP_TOO_BIG], 1);
	cr_assert_eq(st.drops[RTCI_REASM_DROP_ARENA_FULL], 2);
	cr_assert_eq(st.drops[RTCI_REASM_DROP_TABLE_FULL], 1);
	cr_assert_eq(st.drops[RTCI_REASM_DROP_TENANT_TABLE_FULL], 1);
	cr_assert_eq(st.drops[RTCI_REASM_DROP_NOT_FRAGMENT], 1);
	cr_assert_eq(st.frames_expired, 7);
	uint64_t dropped = 0;
	for (int r = 0; r < RTCI_REASM_DROP_MAX; r++)
		dropped += st.drops[r];
	cr_assert_eq(st.fragments, st.fragments_accepted + dropped);
	free(big);
	free(g);
	for (int k = 0; k < 6; k++)
		free(f[k]);
	for (int k = 0; k < 5; k++)
		free(s[k]);
	for (int k = 0; k < 3; k++)
		free(tt[k]);
	rtci_reasm_destroy(t);
}

Test(reassembly, arena_reuse_without_leaks)
{
	/* Many frames of mixed sizes through a small arena: buddies must merge back. */
	struct rtci_reasm_config cfg = base_cfg();
	cfg.arena_bytes = 256 * 1024;
	struct rtci_reasm *t = table(&cfg);
	srand(3);
	for (int k = 0; k < 200; k++) {
		struct frame *f = make(1, (uint32_t)(k % 5), (uint64_t)k, (size_t)(1 + rand() % (60 * FS)));
		rtci_reasm_release(t, feed(t, f, NULL, (uint64_t)k));
		free(f);
	}
	struct rtci_reasm_stats st;
	rtci_reasm_stats(t, &st);
	cr_assert_eq(st.arena_bytes_used, 0);
	/* the whole arena is one block again: a frame needing all of it fits */
	struct frame *f = make(1, 1, 1000, 60 * FS);
	cr_assert_eq(rtci_reasm_frame_cost(60 * FS, 60), 64 * 1024);
	rtci_reasm_release(t, feed(t, f, NULL, 300));
	free(f);
	rtci_reasm_destroy(t);
}

Test(reassembly, create_rejects_bad_config)
{
	static char sentinel; /* *out must stay untouched on failure */
	struct rtci_reasm *const untouched = (struct rtci_reasm *)(void *)&sentinel;
	struct rtci_reasm *t = untouched;
	struct rtci_reasm_config cfg = base_cfg();
	cfg.max_frames = 0;
	cr_assert_eq(rtci_reasm_create(&cfg, &t), -EINVAL);
	cfg = base_cfg();
	cfg.arena_bytes = 100;
	cr_assert_eq(rtci_reasm_create(&cfg, &t), -EINVAL);
	cfg = base_cfg();
	cfg.ttl = 0;
	cr_assert_eq(rtci_reasm_create(&cfg, &t), -EINVAL);
	cfg = base_cfg();
	cfg.max_inflight_per_device = 0;
	cr_assert_eq(rtci_reasm_create(&cfg, &t), -EINVAL);
	cr_assert_eq(rtci_reasm_create(NULL, &t), -EINVAL);
	cfg = base_cfg();
	cr_assert_eq(rtci_reasm_create(&cfg, NULL), -EINVAL);
	cr_assert_eq(t, untouched);
	cr_assert_str_eq(rtci_reasm_drop_name(RTCI_REASM_DROP_CONFLICT), "conflict");
}

Test(reassembly, hand_built_views_cannot_overflow)
{
	struct rtci_reasm_config cfg = base_cfg();
	struct rtci_reasm *t = table(&cfg);
	struct frame *f = make(1, 1, 1, 3 * FS + 10);
	struct rtci_reasm_frame *out = NULL;
	struct rtci_proto_msg m = f->msg[3];
	m.body_len = FS; /* last fragment claiming a full-size payload */
	cr_assert_eq(rtci_reasm_insert(t, &m, NULL, 0, &out), -RTCI_ERR_REASM_MISMATCH);
	m = f->msg[1];
	m.hdr.frag_index = 7; /* index beyond the count */
	cr_assert_eq(rtci_reasm_insert(t, &m, NULL, 0, &out), -RTCI_ERR_REASM_MISMATCH);
	m = f->msg[1];
	m.body_len = FS - 1;
	cr_assert_eq(rtci_reasm_insert(t, &m, NULL, 0, &out), -RTCI_ERR_REASM_MISMATCH);
	/* the genuine fragments still complete it */
	rtci_reasm_release(t, feed(t, f, NULL, 0));
	free(f);
	rtci_reasm_destroy(t);
}
