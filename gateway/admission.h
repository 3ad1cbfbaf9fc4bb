/* Admission: which devices a gateway takes on, so that the load it has admitted stays within
 * what its workers can infer in time.
 *
 * A load is in milli-frames per second (frames/s x 1000). The capacity is the gateway's, less
 * its headroom. Every tenant has a guaranteed share: its explicit reservation when it has one,
 * else the capacity left after all reservations split by weight among the tenants without one.
 * A device fits when the admitted load plus its own stays within the capacity, whatever its
 * tenant's share (free capacity is lent to whoever asks). When the gateway is full, a device of
 * a tenant that stays within its share still gets in: devices of tenants above their share give
 * way (the one furthest above first); a device of a tenant at or above its share is refused.
 *
 * Pure arithmetic: the gateway keeps the loads, takes the decision under its own lock and does
 * the giving way. No allocation, no clock. */
#ifndef RTCI_GATEWAY_ADMISSION_H
#define RTCI_GATEWAY_ADMISSION_H

#include <stdint.h>

struct rtci_adm_tenant {
	uint32_t weight;     /* >= 1 (0 is taken as 1) */
	uint64_t reserved;   /* guaranteed load; 0: a share by weight */
	uint64_t load;       /* admitted now */
	uint64_t share;      /* set by rtci_adm_shares */
};

/* Sets every tenant's share from the capacity (reservations above the capacity are scaled
 * down to fit it). */
void rtci_adm_shares(uint64_t capacity, struct rtci_adm_tenant *t, uint32_t n);

enum rtci_adm_verdict {
	RTCI_ADM_ADMIT = 0,  /* fits the free capacity */
	RTCI_ADM_PREEMPT,    /* gateway full but the tenant stays within its share: others give way */
	RTCI_ADM_BUSY,       /* gateway full and the tenant at or above its share */
};

/* Decides for one more device of load x of tenant t, with `total` admitted over all tenants. */
enum rtci_adm_verdict rtci_adm_decide(uint64_t capacity, uint64_t total,
				      const struct rtci_adm_tenant *t, uint64_t x);

/* Index of the tenant (other than skip) furthest above its share, or UINT32_MAX when no tenant
 * is above its share. */
uint32_t rtci_adm_victim(const struct rtci_adm_tenant *t, uint32_t n, uint32_t skip);

#endif
