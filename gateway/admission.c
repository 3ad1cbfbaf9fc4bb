#include "gateway/admission.h"

void rtci_adm_shares(uint64_t capacity, struct rtci_adm_tenant *t, uint32_t n)
{
	uint64_t reserved = 0, weights = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (t[i].reserved)
			reserved += t[i].reserved;
		else
			weights += t[i].weight ? t[i].weight : 1;
	}
	/* reservations beyond the capacity cannot all be honoured: scale them to fit */
	uint64_t left = reserved < capacity ? capacity - reserved : 0;
	for (uint32_t i = 0; i < n; i++) {
		if (t[i].reserved)
			t[i].share = reserved > capacity
					     ? (uint64_t)((double)t[i].reserved * capacity / reserved)
					     : t[i].reserved;
		else
			t[i].share = (uint64_t)((double)left * (t[i].weight ? t[i].weight : 1) / weights);
	}
}

enum rtci_adm_verdict rtci_adm_decide(uint64_t capacity, uint64_t total,
				      const struct rtci_adm_tenant *t, uint64_t x)
{
	if (total + x <= capacity)
		return RTCI_ADM_ADMIT;
	if (t->load + x <= t->share)
		return RTCI_ADM_PREEMPT;
	return RTCI_ADM_BUSY;
}

uint32_t rtci_adm_victim(const struct rtci_adm_tenant *t, uint32_t n, uint32_t skip)
{
	uint32_t best = UINT32_MAX;
	uint64_t excess = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (i == skip || t[i].load <= t[i].share)
			continue;
		if (best == UINT32_MAX || t[i].load - t[i].share > excess) {
			best = i;
			excess = t[i].load - t[i].share;
		}
	}
	return best;
}
