#include "cluster/placement.h"

#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>

#define DEVICES 20000

static void members(struct rtci_member *m, int n, const double *w)
{
	cr_assert_geq(sodium_init(), 0);
	for (int i = 0; i < n; i++) {
		memset(&m[i], 0, sizeof(m[i]));
		snprintf(m[i].id, sizeof(m[i].id), "gw-%d", i);
		m[i].id_hash = rtci_place_id_hash(m[i].id);
		m[i].weight = w ? w[i] : 1;
		m[i].eligible = true;
	}
}

Test(placement, equal_weights_share_alike_and_order_does_not_matter)
{
	struct rtci_member m[3], r[3];
	members(m, 3, NULL);
	r[0] = m[2], r[1] = m[0], r[2] = m[1];
	int count[3] = { 0 };
	for (uint32_t d = 0; d < DEVICES; d++) {
		int h = rtci_place(m, 3, rtci_place_key(1, d));
		cr_assert_geq(h, 0);
		count[h]++;
		cr_assert_str_eq(r[rtci_place(r, 3, rtci_place_key(1, d))].id, m[h].id);
	}
	for (int i = 0; i < 3; i++)
		cr_expect(count[i] > DEVICES / 3 * 0.95 && count[i] < DEVICES / 3 * 1.05, "%d: %d", i,
			  count[i]);
}

Test(placement, a_fourth_member_takes_a_quarter_from_all)
{
	struct rtci_member m[4];
	members(m, 4, NULL);
	int moved = 0, from[3] = { 0 };
	for (uint32_t d = 0; d < DEVICES; d++) {
		uint64_t k = rtci_place_key(7, d);
		int before = rtci_place(m, 3, k), after = rtci_place(m, 4, k);
		if (before != after) {
			cr_assert_eq(after, 3, "a key moved between old members");
			moved++;
			from[before]++;
		}
	}
	cr_expect(moved > DEVICES / 4 * 0.93 && moved < DEVICES / 4 * 1.07, "moved %d", moved);
	for (int i = 0; i < 3; i++)
		cr_expect(from[i] > moved / 3 * 0.9, "member %d gave %d of %d", i, from[i], moved);
}

Test(placement, a_member_leaving_moves_only_its_keys)
{
	struct rtci_member m[3];
	members(m, 3, NULL);
	for (uint32_t d = 0; d < DEVICES; d++) {
		uint64_t k = rtci_place_key(2, d);
		int before = rtci_place(m, 3, k);
		m[1].eligible = false;
		int after = rtci_place(m, 3, k);
		m[1].eligible = true;
		cr_assert_neq(after, 1);
		if (before != 1)
			cr_assert_eq(after, before);
	}
	for (int i = 0; i < 3; i++)
		m[i].eligible = false;
	cr_assert_eq(rtci_place(m, 3, 1), -1);
}

Test(placement, weights_set_the_shares)
{
	static const double w[2] = { 1, 3 };
	struct rtci_member m[2];
	members(m, 2, w);
	int heavy = 0;
	for (uint32_t d = 0; d < DEVICES; d++)
		heavy += rtci_place(m, 2, rtci_place_key(3, d)) == 1;
	cr_expect(heavy > DEVICES * 0.73 && heavy < DEVICES * 0.77, "heavy %d", heavy);
}
