#include "gateway/costmodel.h"

#include <criterion/criterion.h>

Test(costmodel, empty_until_measured)
{
	struct rtci_cost c;
	rtci_cost_init(&c, 16);
	cr_assert_eq(rtci_cost_batch_us(&c, 1), 0);
	uint32_t n = 99;
	cr_assert_eq(rtci_cost_frame_us(&c, &n), 0);
	cr_assert_eq(n, 0);
}

Test(costmodel, interpolates_and_extrapolates_between_measured_sizes)
{
	struct rtci_cost c;
	rtci_cost_init(&c, 16);
	rtci_cost_observe(&c, 2, 200000); /* 200 us */
	rtci_cost_observe(&c, 8, 500000); /* 500 us */
	cr_assert_eq(rtci_cost_batch_us(&c, 2), 200);
	cr_assert_eq(rtci_cost_batch_us(&c, 8), 500);
	cr_assert_eq(rtci_cost_batch_us(&c, 4), 300);       /* on the line between 2 and 8 */
	cr_assert_eq(rtci_cost_batch_us(&c, 1), 200);       /* never more than a larger batch */
	cr_assert_eq(rtci_cost_batch_us(&c, 16), 1000);     /* in proportion past the largest */
	cr_assert_eq(rtci_cost_batch_us(&c, 300), 1000);    /* clamped to max_batch */
	uint32_t best;
	double us = rtci_cost_frame_us(&c, &best);
	cr_assert_eq(best, 8);                              /* 62.5 us a frame, the cheapest */
	cr_assert_float_eq(us, 62.5, 1e-9);
	uint64_t base, per;
	rtci_cost_linear(&c, &base, &per);
	cr_assert_eq(base + per, rtci_cost_batch_us(&c, 1));
	cr_assert_geq(base + 16 * per, rtci_cost_batch_us(&c, 16));
}

Test(costmodel, follows_real_batches)
{
	struct rtci_cost c;
	rtci_cost_init(&c, 8);
	rtci_cost_observe(&c, 8, 1000000); /* start-up: 1 ms */
	/* the machine got slower: 2 ms from now on; the estimate moves there within tens */
	for (int i = 0; i < 40; i++)
		rtci_cost_observe(&c, 8, 2000000);
	cr_assert_gt(rtci_cost_batch_us(&c, 8), 1950);
	cr_assert_leq(rtci_cost_batch_us(&c, 8), 2000);
	/* one outlier moves it by an eighth only */
	rtci_cost_observe(&c, 8, 10000000);
	cr_assert_lt(rtci_cost_batch_us(&c, 8), 3100);
	/* sizes outside the model are ignored */
	rtci_cost_observe(&c, 0, 1);
	rtci_cost_observe(&c, 9, 1);
	cr_assert_eq(c.observations, 42);
}
