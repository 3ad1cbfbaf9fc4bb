#include "gateway/admission.h"

#include <criterion/criterion.h>

Test(admission, shares_by_weight_after_reservations)
{
	struct rtci_adm_tenant t[3] = {
		{ .weight = 1 }, { .weight = 3 }, { .weight = 1, .reserved = 2000 },
	};
	rtci_adm_shares(10000, t, 3);
	cr_assert_eq(t[2].share, 2000);
	cr_assert_eq(t[0].share, 2000); /* (10000 - 2000) x 1/4 */
	cr_assert_eq(t[1].share, 6000);
	/* reservations beyond the capacity are scaled down to fit it */
	struct rtci_adm_tenant r[2] = { { .reserved = 9000 }, { .reserved = 3000 } };
	rtci_adm_shares(6000, r, 2);
	cr_assert_eq(r[0].share + r[1].share, 6000);
	cr_assert_eq(r[0].share, 4500);
}

Test(admission, free_capacity_is_lent_to_anyone)
{
	struct rtci_adm_tenant a = { .weight = 1, .load = 9000, .share = 5000 };
	cr_assert_eq(rtci_adm_decide(10000, 9000, &a, 1000), RTCI_ADM_ADMIT);
	cr_assert_eq(rtci_adm_decide(10000, 9000, &a, 1001), RTCI_ADM_BUSY);
}

Test(admission, a_tenant_within_its_share_gets_in_when_full)
{
	/* A filled the gateway; B has its half to claim */
	struct rtci_adm_tenant t[2] = { { .weight = 1, .load = 10000 }, { .weight = 1, .load = 0 } };
	rtci_adm_shares(10000, t, 2);
	cr_assert_eq(rtci_adm_decide(10000, 10000, &t[1], 1000), RTCI_ADM_PREEMPT);
	cr_assert_eq(rtci_adm_decide(10000, 10000, &t[0], 1000), RTCI_ADM_BUSY);
	cr_assert_eq(rtci_adm_victim(t, 2, 1), 0);
	/* B at its share: refused like anyone else */
	t[0].load = 5000;
	t[1].load = 5000;
	cr_assert_eq(rtci_adm_decide(10000, 10000, &t[1], 1000), RTCI_ADM_BUSY);
	cr_assert_eq(rtci_adm_victim(t, 2, 1), UINT32_MAX);
}

Test(admission, victim_is_furthest_above_its_share)
{
	struct rtci_adm_tenant t[3] = {
		{ .load = 3000, .share = 2000 }, { .load = 5000, .share = 2000 }, { .load = 0, .share = 6000 },
	};
	cr_assert_eq(rtci_adm_victim(t, 3, 2), 1);
	cr_assert_eq(rtci_adm_victim(t, 3, 1), 0); /* never the tenant asking */
}
