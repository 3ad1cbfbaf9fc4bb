#include "gateway/costmodel.h"

#include <string.h>

#define MAX_NS8 UINT32_MAX

void rtci_cost_init(struct rtci_cost *c, uint32_t max_batch)
{
	memset(c, 0, sizeof(*c));
	c->max_batch = max_batch < 1 ? 1 : max_batch > RTCI_COST_MAX_BATCH ? RTCI_COST_MAX_BATCH
									     : max_batch;
}

void rtci_cost_observe(struct rtci_cost *c, uint32_t n, uint64_t ns)
{
	if (n < 1 || n > c->max_batch)
		return;
	uint64_t x = ns > MAX_NS8 / 8 ? MAX_NS8 : ns * 8;
	if (x == 0)
		x = 1; /* 0 means "not measured" */
	uint64_t old = atomic_load_explicit(&c->ns8[n], memory_order_relaxed);
	uint64_t nw = old ? old - old / 8 + x / 8 : x;
	atomic_store_explicit(&c->ns8[n], (uint32_t)(nw ? nw : 1), memory_order_relaxed);
	atomic_fetch_add_explicit(&c->observations, 1, memory_order_relaxed);
}

static uint64_t get(const struct rtci_cost *c, uint32_t n)
{
	return atomic_load_explicit(&c->ns8[n], memory_order_relaxed);
}

/* Estimate for size n in ns x 8: measured, interpolated between the nearest measured sizes,
 * or scaled from the nearest one when n lies outside them. */
static uint64_t estimate_ns8(const struct rtci_cost *c, uint32_t n)
{
	uint64_t v = get(c, n);
	if (v)
		return v;
	uint32_t lo = n, hi = n;
	uint64_t vlo = 0, vhi = 0;
	while (lo > 1 && !vlo)
		vlo = get(c, --lo);
	while (hi < c->max_batch && !vhi)
		vhi = get(c, ++hi);
	if (vlo && vhi) /* signed: a noisy larger size may have measured faster */
		return (uint64_t)((int64_t)vlo +
				  ((int64_t)vhi - (int64_t)vlo) * (int64_t)(n - lo) / (int64_t)(hi - lo));
	if (vlo)
		return vlo * n / lo;
	if (vhi)
		return vhi; /* a smaller batch takes no longer than a larger one */
	return 0;
}

uint64_t rtci_cost_batch_us(const struct rtci_cost *c, uint32_t n)
{
	if (n < 1)
		return 0;
	if (n > c->max_batch)
		n = c->max_batch;
	uint64_t ns8 = estimate_ns8(c, n);
	return (ns8 + 7999) / 8000;
}

double rtci_cost_frame_us(const struct rtci_cost *c, uint32_t *best_n)
{
	double best = 0;
	uint32_t bn = 0;
	for (uint32_t n = 1; n <= c->max_batch; n++) {
		uint64_t v = estimate_ns8(c, n);
		if (!v)
			continue;
		double per = (double)v / 8000.0 / n;
		if (!bn || per < best) {
			best = per;
			bn = n;
		}
	}
	if (best_n)
		*best_n = bn;
	return best;
}

void rtci_cost_linear(const struct rtci_cost *c, uint64_t *base_us, uint64_t *per_item_us)
{
	uint64_t one = rtci_cost_batch_us(c, 1), top = rtci_cost_batch_us(c, c->max_batch);
	uint64_t per = c->max_batch > 1 && top > one ? (top - one + c->max_batch - 2) / (c->max_batch - 1)
						     : 0;
	*per_item_us = per;
	*base_us = one > per ? one - per : 0;
}
