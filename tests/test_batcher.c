#include "gateway/batcher.h"
#include "common/rtci_error.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#define MAXD 4096

struct drops {
	uint32_t n;
	uintptr_t frame[MAXD];
	uint32_t tenant[MAXD];
	enum rtci_batcher_drop reason[MAXD];
};

static void on_drop(void *user, void *frame, uint32_t tenant, enum rtci_batcher_drop reason)
{
	struct drops *d = user;
	cr_assert_lt(d->n, MAXD);
	d->frame[d->n] = (uintptr_t)frame;
	d->tenant[d->n] = tenant;
	d->reason[d->n] = reason;
	d->n++;
}

static struct rtci_batcher *make(uint32_t queues, uint32_t tenants, uint32_t max_batch,
				 uint64_t max_wait, uint32_t cap, struct drops *d)
{
	struct rtci_batcher_config cfg = {
		.queues = queues, .tenants = tenants, .max_batch = max_batch,
		.max_wait_us = max_wait, .capacity = cap, .on_drop = on_drop, .user = d,
	};
	struct rtci_batcher *b = NULL;
	cr_assert_eq(rtci_batcher_create(&cfg, &b), 0);
	cr_assert_not_null(b);
	return b;
}

#define F(x) ((void *)(uintptr_t)(x))

Test(batcher, rejects_bad_config)
{
	struct rtci_batcher *b = NULL;
	struct rtci_batcher_config cfg = { .queues = 1, .tenants = 1, .max_batch = 0, .capacity = 1 };
	cr_expect_eq(rtci_batcher_create(&cfg, &b), -EINVAL);
	cfg.max_batch = RTCI_BATCHER_MAX_BATCH + 1;
	cr_expect_eq(rtci_batcher_create(&cfg, &b), -EINVAL);
	cfg.max_batch = 4;
	cfg.capacity = 0;
	cr_expect_eq(rtci_batcher_create(&cfg, &b), -EINVAL);
	cfg.capacity = 4;
	cfg.queues = 0;
	cr_expect_eq(rtci_batcher_create(&cfg, &b), -EINVAL);
	cr_expect_null(b);
}

Test(batcher, edf_order_within_batch)
{
	struct drops d = { 0 };
	struct rtci_batcher *b = make(1, 1, 8, 1000, 64, &d);
	uint64_t deadlines[] = { 9000, 3000, 7000, 1000, 5000, 2000 };
	for (int i = 0; i < 6; i++)
		cr_assert_eq(rtci_batcher_submit(b, 0, 0, F(i + 1), deadlines[i], 0), 0);

	struct rtci_batcher_item items[8];
	uint32_t q = 99;
	cr_expect_eq(rtci_batcher_poll(b, 999, items, &q), 0, "not due before max wait");
	int n = rtci_batcher_poll(b, 1000, items, &q);
	cr_assert_eq(n, 6);
	cr_expect_eq(q, 0);
	uint64_t expect[] = { 1000, 2000, 3000, 5000, 7000, 9000 };
	for (int i = 0; i < 6; i++)
		cr_expect_eq(items[i].deadline_us, expect[i], "position %d", i);
	cr_expect_eq((uintptr_t)items[0].frame, 4);
	cr_expect_eq(d.n, 0);
	rtci_batcher_destroy(b);
}

Test(batcher, edf_ties_are_fifo)
{
	struct drops d = { 0 };
	struct rtci_batcher *b = make(1, 1, 4, 0, 16, &d);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(rtci_batcher_submit(b, 0, 0, F(i + 1), 5000, (uint64_t)i), 0);
	struct rtci_batcher_item items[4];
	cr_assert_eq(rtci_batcher_poll_queue(b, 0, 10, items), 4);
	for (int i = 0; i < 4; i++)
		cr_expect_eq((uintptr_t)items[i].frame, (uintptr_t)i + 1);
	rtci_batcher_destroy(b);
}

Test(batcher, full_batch_released_at_once)
{
	struct drops d = { 0 };
	struct rtci_batcher *b = make(1, 1, 4, 1000000, 64, &d);
	struct rtci_batcher_item items[4];
	for (int i = 0; i < 3; i++)
		cr_assert_eq(rtci_batcher_submit(b, 0, 0, F(i + 1), 10000000, 100), 0);
	cr_expect_eq(rtci_batcher_poll(b, 100, items, NULL), 0);
	cr_expect_eq(rtci_batcher_next_due_us(b, 100), 1000100);
	cr_assert_eq(rtci_batcher_submit(b, 0, 0, F(4), 10000000, 100), 0);
	cr_expect_eq(rtci_batcher_next_due_us(b, 100), 100);
	cr_expect_eq(rtci_batcher_poll(b, 100, items, NULL), 4);
	cr_expect_eq(rtci_batcher_poll(b, 100, items, NULL), 0);

	/* more than a batch: max_batch leaves, the rest waits */
	for (int i = 0; i < 6; i++)
		cr_assert_eq(rtci_batcher_submit(b, 0, 0, F(i + 10), 10000000, 200), 0);
	cr_expect_eq(rtci_batcher_poll(b, 200, items, NULL), 4);
	cr_expect_eq(rtci_batcher_poll(b, 200, items, NULL), 0);

	struct rtci_batcher_stats st;
	cr_assert_eq(rtci_batcher_queue_stats(b, 0, &st), 0);
	cr_expect_eq(st.batches, 2);
	cr_expect_eq(st.batched, 8);
	cr_expect_eq(st.batch_size_count[4], 2);
	cr_expect_eq(st.depth, 2);
	rtci_batcher_destroy(b);
}

Test(batcher, max_wait_fires_while_waiting)
{
	struct drops d = { 0 };
	struct rtci_batcher *b = make(1, 1, 16, 500, 64, &d);
	struct rtci_batcher_item items[16];
	cr_assert_eq(rtci_batcher_submit(b, 0, 0, F(1), 1000000, 1000), 0);
	cr_assert_eq(rtci_batcher_submit(b, 0, 0, F(2), 1000000, 1300), 0);
	/* the oldest frame sets the wake-up time, not the newest */
	cr_expect_eq(rtci_batcher_next_due_us(b, 1300), 1500);
	cr_expect_eq(rtci_batcher_poll(b, 1499, items, NULL), 0);
	int n = rtci_batcher_poll(b, 1500, items, NULL);
	cr_assert_eq(n, 2);
	struct rtci_batcher_stats st;
	rtci_batcher_queue_stats(b, 0, &st);
	cr_expect_eq(st.queue_time_us_sum, 500 + 200);
	cr_expect_eq(st.queue_time_us_max, 500);
	cr_expect_eq(st.batch_size_count[2], 1);
	cr_expect_eq(rtci_batcher_next_due_us(b, 1500), UINT64_MAX);
	rtci_batcher_destroy(b);
}

Test(batcher, deadline_urgency_releases_early)
{
	struct drops d = { 0 };
	struct rtci_batcher *b = make(1, 1, 16, 100000, 64, &d);
	struct rtci_batcher_item items[16];
	cr_assert_eq(rtci_batcher_set_cost(b, 0, 1000, 100), 0);
	/* deadline 5000; batch of one takes 1100 µs: must start by 3900 */
	cr_assert_eq(rtci_batcher_submit(b, 0, 0, F(1), 5000, 0), 0);
	cr_expect_eq(rtci_batcher_next_due_us(b, 0), 3900);
	cr_expect_eq(rtci_batcher_poll(b, 3899, items, NULL), 0);
	cr_expect_eq(rtci_batcher_poll(b, 3900, items, NULL), 1);
	cr_expect_eq(d.n, 0);
	rtci_batcher_destroy(b);
}

Test(batcher, hopeless_frames_dropped_before_inference)
{
	struct drops d = { 0 };
	struct rtci_batcher *b = make(1, 2, 8, 1000, 64, &d);
	struct rtci_batcher_item items[8];
	rtci_batcher_set_cost(b, 0, 2000, 0);

	/* cannot make it even at submit: refused, counted, caller keeps the frame */
	cr_expect_eq(rtci_batcher_submit(b, 0, 1, F(9), 1500, 0), -RTCI_ERR_BATCH_DEADLINE);
	cr_expect_eq(d.n, 0);

	cr_assert_eq(rtci_batcher_submit(b, 0, 0, F(1), 2500, 0), 0);
	cr_assert_eq(rtci_batcher_submit(b, 0, 1, F(2), 2600, 0), 0);
	cr_assert_eq(rtci_batcher_submit(b, 0, 0, F(3), 50000, 0), 0);
	/* the caller was late: at 700, frames 1 and 2 cannot finish (700 + 2000 > 2600) */
	int n = rtci_batcher_poll(b, 700, items, NULL);
	cr_expect_eq(d.n, 2);
	cr_expect_eq(d.frame[0], 1);
	cr_expect_eq(d.frame[1], 2);
	cr_expect_eq(d.reason[0], RTCI_BATCHER_DROP_DEADLINE);
	cr_expect_eq(d.reason[1], RTCI_BATCHER_DROP_DEADLINE);
	/* frame 3 arrived at 0 with max wait 1000: not due yet */
	cr_expect_eq(n, 0);
	cr_expect_eq(rtci_batcher_poll(b, 1000, items, NULL), 1);
	cr_expect_eq((uintptr_t)items[0].frame, 3);

	struct rtci_batcher_stats st;
	rtci_batcher_queue_stats(b, 0, &st);
	cr_expect_eq(st.drops[RTCI_BATCHER_DROP_DEADLINE], 3);
	struct rtci_batcher_tenant_stats ts;
	rtci_batcher_tenant_stats(b, 1, &ts);
	cr_expect_eq(ts.drops[RTCI_BATCHER_DROP_DEADLINE], 2);
	cr_expect_eq(ts.batched, 0);
	rtci_batcher_destroy(b);
}

Test(batcher, batch_shrinks_to_meet_head_deadline)
{
	struct drops d = { 0 };
	struct rtci_batcher *b = make(1, 1, 8, 0, 64, &d);
	struct rtci_batcher_item items[8];
	/* 1000 + 500 n: a batch of 8 takes 5000, of 4 takes 3000 */
	rtci_batcher_set_cost(b, 0, 1000, 500);
	cr_assert_eq(rtci_batcher_submit(b, 0, 0, F(1), 3000, 0), 0);
	for (int i = 0; i < 7; i++)
		cr_assert_eq(rtci_batcher_submit(b, 0, 0, F(i + 2), 100000, 0), 0);
	int n = rtci_batcher_poll(b, 0, items, NULL);
	cr_assert_eq(n, 4);
	cr_expect_eq((uintptr_t)items[0].frame, 1);
	cr_expect_eq(rtci_batcher_estimate_us(b, 0, 4), 3000);
	cr_expect_eq(rtci_batcher_poll(b, 0, items, NULL), 4);
	cr_expect_eq(d.n, 0);
	rtci_batcher_destroy(b);
}

Test(batcher, capacity_bound)
{
	struct drops d = { 0 };
	struct rtci_batcher *b = make(2, 1, 4, 1000, 8, &d);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(rtci_batcher_submit(b, 0, 0, F(i), 100000, 0), 0);
	/* a lone tenant cannot displace itself */
	cr_expect_eq(rtci_batcher_submit(b, 0, 0, F(99), 1000, 0), -RTCI_ERR_BATCH_QUEUE_FULL);
	/* queues are independent */
	cr_expect_eq(rtci_batcher_submit(b, 1, 0, F(100), 100000, 0), 0);
	struct rtci_batcher_stats st;
	rtci_batcher_queue_stats(b, 0, &st);
	cr_expect_eq(st.depth, 8);
	cr_expect_eq(st.drops[RTCI_BATCHER_DROP_QUEUE_FULL], 1);
	cr_expect_eq(d.n, 0);
	cr_expect_eq(rtci_batcher_submit(b, 2, 0, F(1), 100000, 0), -EINVAL);
	cr_expect_eq(rtci_batcher_submit(b, 0, 1, F(1), 100000, 0), -EINVAL);
	rtci_batcher_destroy(b);
}

Test(batcher, tenant_bound)
{
	struct drops d = { 0 };
	struct rtci_batcher *b = make(1, 2, 4, 1000, 64, &d);
	cr_assert_eq(rtci_batcher_set_tenant(b, 0, 1, 3), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(rtci_batcher_submit(b, 0, 0, F(i), 100000, 0), 0);
	cr_expect_eq(rtci_batcher_submit(b, 0, 0, F(3), 100000, 0), -RTCI_ERR_BATCH_TENANT_BOUND);
	cr_expect_eq(rtci_batcher_submit(b, 0, 1, F(4), 100000, 0), 0);
	struct rtci_batcher_tenant_stats ts;
	rtci_batcher_tenant_stats(b, 0, &ts);
	cr_expect_eq(ts.drops[RTCI_BATCHER_DROP_TENANT_BOUND], 1);
	cr_expect_eq(ts.depth, 3);
	cr_expect_eq(rtci_batcher_set_tenant(b, 0, 0, 3), -EINVAL);
	rtci_batcher_destroy(b);
}

/* Tenant 0 floods a queue; tenant 1 then sends at a modest rate and must keep its frames. */
Test(batcher, fairness_under_flood)
{
	struct drops d = { 0 };
	const uint32_t cap = 32;
	struct rtci_batcher *b = make(1, 2, 8, 1000, cap, &d);
	struct rtci_batcher_item items[8];
	uint64_t now = 0;
	uint32_t flood_sent = 0, victim_sent = 0, victim_refused = 0;
	uint32_t victim_batched = 0;

	for (int round = 0; round < 200; round++) {
		for (int i = 0; i < 20; i++) {
			rtci_batcher_submit(b, 0, 0, F(1000000 + flood_sent), now + 1000000, now);
			flood_sent++;
		}
		for (int i = 0; i < 2; i++) {
			int rc = rtci_batcher_submit(b, 0, 1, F(victim_sent), now + 1000000, now);
			if (rc)
				victim_refused++;
			victim_sent++;
		}
		int n = rtci_batcher_poll(b, now, items, NULL);
		for (int i = 0; i < n; i++)
			victim_batched += items[i].tenant == 1;
		now += 10;
	}
	cr_expect_eq(victim_refused, 0, "tenant 1 refused %u times", victim_refused);
	for (uint32_t i = 0; i < d.n; i++)
		cr_expect_eq(d.tenant[i], 0, "drop %u hit tenant %u", i, d.tenant[i]);
	struct rtci_batcher_tenant_stats t0, t1;
	rtci_batcher_tenant_stats(b, 0, &t0);
	rtci_batcher_tenant_stats(b, 1, &t1);
	cr_expect_gt(t0.drops[RTCI_BATCHER_DROP_QUEUE_FULL] + t0.drops[RTCI_BATCHER_DROP_EVICTED], 0);
	cr_expect_eq(t1.drops[RTCI_BATCHER_DROP_EVICTED], 0);
	cr_expect_eq(t1.batched + t1.depth, victim_sent);
	cr_expect_eq(victim_batched, t1.batched);
	cr_expect_leq(t0.depth + t1.depth, cap);
	rtci_batcher_destroy(b);
}

/* Weights split a full queue in proportion: weight 3 against weight 1 on a queue of 40. */
Test(batcher, weighted_share_when_both_flood)
{
	struct drops d = { 0 };
	struct rtci_batcher *b = make(1, 2, 8, 1000000, 40, &d);
	rtci_batcher_set_tenant(b, 0, 3, 0);
	rtci_batcher_set_tenant(b, 1, 1, 0);
	for (int i = 0; i < 40; i++)
		cr_assert_eq(rtci_batcher_submit(b, 0, 1, F(i), 1000000, 0), 0);
	for (int i = 0; i < 100; i++)
		rtci_batcher_submit(b, 0, 0, F(1000 + i), 1000000, 0);
	for (int i = 0; i < 100; i++)
		rtci_batcher_submit(b, 0, 1, F(2000 + i), 1000000, 0);
	struct rtci_batcher_tenant_stats t0, t1;
	rtci_batcher_tenant_stats(b, 0, &t0);
	rtci_batcher_tenant_stats(b, 1, &t1);
	cr_expect_eq(t0.depth + t1.depth, 40);
	cr_expect_eq(t0.depth, 30, "weight-3 tenant holds %u of 40", t0.depth);
	cr_expect_eq(t1.depth, 10, "weight-1 tenant holds %u of 40", t1.depth);
	/* tenant 1 went from 40 to 10 frames: 30 evictions, reported through on_drop */
	cr_expect_eq(d.n, 30);
	for (uint32_t i = 0; i < d.n; i++) {
		cr_expect_eq(d.tenant[i], 1);
		cr_expect_eq(d.reason[i], RTCI_BATCHER_DROP_EVICTED);
	}
	rtci_batcher_destroy(b);
}

Test(batcher, poll_picks_most_urgent_queue)
{
	struct drops d = { 0 };
	struct rtci_batcher *b = make(3, 1, 2, 0, 16, &d);
	struct rtci_batcher_item items[2];
	uint32_t q = 99;
	rtci_batcher_submit(b, 0, 0, F(1), 9000, 0);
	rtci_batcher_submit(b, 1, 0, F(2), 3000, 0);
	rtci_batcher_submit(b, 2, 0, F(3), 6000, 0);
	cr_assert_eq(rtci_batcher_poll(b, 10, items, &q), 1);
	cr_expect_eq(q, 1);
	cr_assert_eq(rtci_batcher_poll(b, 10, items, &q), 1);
	cr_expect_eq(q, 2);
	cr_assert_eq(rtci_batcher_poll(b, 10, items, &q), 1);
	cr_expect_eq(q, 0);
	cr_expect_eq(rtci_batcher_poll(b, 10, items, &q), 0);
	rtci_batcher_destroy(b);
}

static void count_drain(void *user, void *frame, uint32_t tenant)
{
	(void)frame;
	(void)tenant;
	(*(int *)user)++;
}

/* Random operations against a reference: every submitted frame leaves exactly once. */
Test(batcher, conservation_random)
{
	struct drops d = { 0 };
	struct rtci_batcher *b = make(4, 5, 8, 300, 50, &d);
	struct rtci_batcher_item items[8];
	unsigned seed = 12345;
	uint64_t now = 0, accepted = 0, released = 0, refused = 0, last_deadline_in_batch;
	for (uint32_t q = 0; q < 4; q++)
		rtci_batcher_set_cost(b, q, 200 + 50 * q, 20);
	rtci_batcher_set_tenant(b, 2, 4, 20);
	for (int step = 0; step < 20000; step++) {
		seed = seed * 1103515245u + 12345u;
		uint32_t r = seed >> 8;
		if (r % 3) {
			int rc = rtci_batcher_submit(b, r % 4, (r >> 4) % 5, F(step + 1),
						     now + 200 + (r >> 10) % 3000, now);
			if (rc == 0)
				accepted++;
			else
				refused++;
		} else {
			uint32_t q;
			int n = rtci_batcher_poll(b, now, items, &q);
			cr_assert_geq(n, 0);
			last_deadline_in_batch = 0;
			for (int i = 0; i < n; i++) {
				cr_assert_geq(items[i].deadline_us, last_deadline_in_batch);
				last_deadline_in_batch = items[i].deadline_us;
				cr_assert_leq(now + rtci_batcher_estimate_us(b, q, (uint32_t)n),
					      items[i].deadline_us);
			}
			released += (uint64_t)n;
		}
		now += (seed >> 20) % 40;
	}
	int drained = 0;
	rtci_batcher_drain(b, count_drain, &drained);
	cr_expect_gt(refused, 0);
	cr_expect_gt(d.n, 0);
	cr_expect_eq(accepted, released + d.n + (uint64_t)drained);
	rtci_batcher_destroy(b);
}
