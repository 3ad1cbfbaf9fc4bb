/* Latency model, exact MPC solver against brute force, fast path, per-device API, setup tables. */
#include <criterion/criterion.h>
#include <unistd.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "control/control.h"
#include "control/model_table.h"

static uint64_t rng = 12345;
static double urand(void)
{
	rng = rtci_mix64(rng);
	return (double)(rng >> 11) * 0x1.0p-53;
}

static struct rtci_ctl_table small_table(unsigned n)
{
	struct rtci_ctl_table t;
	memset(&t, 0, sizeof(t));
	t.n = n;
	for (unsigned i = 0; i < n; i++) {
		t.s[i].c = (uint16_t)(i + 1);
		t.s[i].L = 255;
		t.s[i].bits = 8;
		t.s[i].bytes = 1000 + 40000 * urand();
		t.s[i].accuracy = 0.5 + 0.4 * urand();
	}
	t.clio.L = 255;
	return t;
}

/* Two setups of (accuracy, bytes), for hand-worked cases. */
static struct rtci_ctl_table two_setups(double acc0, double bytes0, double acc1, double bytes1)
{
	struct rtci_ctl_table t;
	memset(&t, 0, sizeof(t));
	t.n = 2;
	t.s[0] = (struct rtci_ctl_setup){ .c = 1, .L = 255, .bits = 8, .accuracy = acc0, .bytes = bytes0 };
	t.s[1] = (struct rtci_ctl_setup){ .c = 2, .L = 255, .bits = 8, .accuracy = acc1, .bytes = bytes1 };
	t.clio.L = 255;
	return t;
}

Test(mpc, latency_model_hand_cases)
{
	struct rtci_ctl_model m;
	rtci_ctl_model_default(&m); /* head 5, prop 20, gw 2, tail 8 ms */
	/* empty queue: 5 + 10000/1e6 s = 10 ms + 30 = 45 ms */
	cr_assert_eq(rtci_ctl_frame_latency(&m, 0, 10000, 1e6), 45000000);
	/* backlog drains 3 ms during the 5 ms head: no wait */
	cr_assert_eq(rtci_ctl_frame_latency(&m, 3000, 10000, 1e6), 45000000);
	/* backlog of 25 ms: waits 20 ms after the head */
	cr_assert_eq(rtci_ctl_frame_latency(&m, 25000, 10000, 1e6), 65000000);
}

Test(mpc, plan_value_hand_case)
{
	struct rtci_ctl_table t = two_setups(0.5, 50000, 0.8, 150000);
	struct rtci_ctl_model m;
	rtci_ctl_model_default(&m); /* T = 100 ms, W = 200-5-30 = 165 ms */
	m.switch_penalty = 0.01;
	m.horizon = 3;
	struct rtci_ctl_policy_cfg c = { .kind = RTCI_CTL_MPC };
	struct rtci_ctl_policy *p;
	cr_assert_eq(rtci_ctl_policy_create(&t, &m, &c, &p), 0);
	/* bw 1 MB/s: setup 0 takes 50 ms, setup 1 150 ms; e = queue excess at ready time.
	 * {0, 1, skip}: 0.5 (e1 = 0); 0.8 - 0.01 switch (end 150, e2 = 50); skip (e3 = 0). */
	uint8_t plan[3] = { 0, 1, RTCI_CTL_SKIP };
	cr_assert_float_eq(rtci_ctl_plan_value(p, 1e6, 0, RTCI_CTL_SKIP, plan, 3), 1.29, 1e-9);
	/* {1, 1, skip}: 0.8 (e1 = 50); the second needs 50 + 150 = 200 > 165 ms: sent late, 0
	 * (e2 = 100); skip (e3 = 0). */
	uint8_t late[3] = { 1, 1, RTCI_CTL_SKIP };
	cr_assert_float_eq(rtci_ctl_plan_value(p, 1e6, 0, RTCI_CTL_SKIP, late, 3), 0.8, 1e-9);
	/* {1, 0, 1} leaves 50 ms of queue behind (it started with none): infeasible */
	uint8_t deep[3] = { 1, 0, 1 };
	cr_assert(isinf(rtci_ctl_plan_value(p, 1e6, 0, RTCI_CTL_SKIP, deep, 3)));
	/* best: {1, 0, 0} = 0.8 + 0.5 + 0.5 - 0.01, ahead of {0, 1, 0} (1.78) and {0, 0, 0} (1.5) */
	uint8_t best[8];
	double v;
	rtci_ctl_solve_exact(p, 1e6, 0, RTCI_CTL_SKIP, best, &v);
	cr_assert_float_eq(v, 1.79, 1e-9);
	cr_assert_eq(best[0], 1);
	cr_assert_eq(best[1], 0);
	cr_assert_eq(best[2], 0);
	rtci_ctl_policy_destroy(p);
}

static double brute(const struct rtci_ctl_policy *p, unsigned n, unsigned H, double bw,
		    double backlog, unsigned prev)
{
	uint8_t plan[8];
	unsigned total = 1;
	for (unsigned j = 0; j < H; j++)
		total *= n + 1;
	double best = -1e9;
	for (unsigned code = 0; code < total; code++) {
		unsigned x = code;
		for (unsigned j = 0; j < H; j++) {
			unsigned a = x % (n + 1);
			x /= n + 1;
			plan[j] = a == n ? RTCI_CTL_SKIP : (uint8_t)a;
		}
		double v = rtci_ctl_plan_value(p, bw, backlog, prev, plan, H);
		if (v > best)
			best = v;
	}
	return best;
}

Test(mpc, exact_matches_brute_force)
{
	for (int inst = 0; inst < 150; inst++) {
		unsigned n = 2 + (unsigned)(urand() * 5); /* 2..6 setups */
		unsigned H = 1 + (unsigned)(urand() * 4); /* 1..4 */
		struct rtci_ctl_table t = small_table(n);
		struct rtci_ctl_model m;
		rtci_ctl_model_default(&m);
		m.horizon = H;
		m.fps = 5 + 25 * urand();
		m.switch_penalty = urand() < 0.3 ? 0 : 0.05 * urand();
		m.min_gain = 0; /* the brute force plans over every setup */
		struct rtci_ctl_policy_cfg c = { .kind = RTCI_CTL_MPC };
		struct rtci_ctl_policy *p;
		cr_assert_eq(rtci_ctl_policy_create(&t, &m, &c, &p), 0);
		double bw = 20000 + 500000 * urand();
		double backlog = urand() < 0.3 ? 0 : 60000 * urand();
		unsigned prev = urand() < 0.3 ? RTCI_CTL_SKIP : (unsigned)(urand() * n);
		uint8_t plan[8];
		double v;
		int first = rtci_ctl_solve_exact(p, bw, backlog, prev, plan, &v);
		double b = brute(p, n, H, bw, backlog, prev);
		cr_assert_float_eq(v, b, 1e-9, "instance %d: solver %.9f brute %.9f", inst, v, b);
		cr_assert_float_eq(rtci_ctl_plan_value(p, bw, backlog, prev, plan, H), v, 1e-9);
		cr_assert_eq(first, plan[0]);
		rtci_ctl_policy_destroy(p);
	}
}

/* A table of n 8-bit setups with these payload sizes and accuracies (c = 1..n). */
static struct rtci_ctl_table table_of(unsigned n, const double *bytes, const double *acc)
{
	struct rtci_ctl_table t;
	memset(&t, 0, sizeof(t));
	t.n = n;
	t.clio.L = 255;
	for (unsigned i = 0; i < n; i++)
		t.s[i] = (struct rtci_ctl_setup){ .c = (uint16_t)(i + 1), .L = 255, .bits = 8,
						  .accuracy = acc[i], .bytes = bytes[i] };
	return t;
}

Test(mpc, frontier_drops_dominated_setups)
{
	double b[] = { 100, 200, 300, 150 }, a[] = { 0.5, 0.7, 0.6, 0.5 };
	struct rtci_ctl_table t = table_of(4, b, a);
	struct rtci_ctl_model m;
	rtci_ctl_model_default(&m);
	struct rtci_ctl_policy_cfg c = { .kind = RTCI_CTL_MPC };
	struct rtci_ctl_policy *p;
	cr_assert_eq(rtci_ctl_policy_create(&t, &m, &c, &p), 0);
	uint8_t ids[8];
	cr_assert_eq(rtci_ctl_policy_frontier(p, ids, 8), 2);
	cr_assert_eq(ids[0], 0);
	cr_assert_eq(ids[1], 1);
	rtci_ctl_policy_destroy(p);
}

Test(mpc, frontier_leaves_out_setups_that_gain_less_than_min_gain)
{
	/* 1 and 3 gain 0.001 over the next smaller candidate, 2 gains 0.05 */
	double b[] = { 100, 200, 300, 600 }, a[] = { 0.80, 0.801, 0.85, 0.851 };
	struct rtci_ctl_table t = table_of(4, b, a);
	struct rtci_ctl_model m;
	rtci_ctl_model_default(&m);
	cr_assert_float_eq(m.min_gain, 0.002, 1e-12);
	struct rtci_ctl_policy_cfg c = { .kind = RTCI_CTL_MPC };
	struct rtci_ctl_policy *p;
	cr_assert_eq(rtci_ctl_policy_create(&t, &m, &c, &p), 0);
	uint8_t ids[8];
	cr_assert_eq(rtci_ctl_policy_frontier(p, ids, 8), 2);
	cr_assert_eq(ids[0], 0);
	cr_assert_eq(ids[1], 2);
	/* a link that carries every setup: the plan takes the top candidate, not setup 3 */
	cr_assert_eq(rtci_ctl_solve_exact(p, 1e8, 0, RTCI_CTL_SKIP, NULL, NULL), 2);
	rtci_ctl_policy_destroy(p);
	m.min_gain = 0;
	cr_assert_eq(rtci_ctl_policy_create(&t, &m, &c, &p), 0);
	cr_assert_eq(rtci_ctl_policy_frontier(p, ids, 8), 4);
	cr_assert_eq(rtci_ctl_solve_exact(p, 1e8, 0, RTCI_CTL_SKIP, NULL, NULL), 3);
	rtci_ctl_policy_destroy(p);
	m.min_gain = -0.1;
	cr_assert_eq(rtci_ctl_policy_create(&t, &m, &c, &p), -EINVAL);
}

Test(mpc, fast_path_agrees_where_the_choice_is_clear)
{
	struct rtci_ctl_table t = small_table(6);
	struct rtci_ctl_model m;
	rtci_ctl_model_default(&m);
	struct rtci_ctl_policy_cfg c = { .kind = RTCI_CTL_FASTMPC };
	struct rtci_ctl_policy *p;
	cr_assert_eq(rtci_ctl_policy_create(&t, &m, &c, &p), 0);
	cr_assert_gt(rtci_ctl_policy_table_bytes(p), 0);
	/* a 1 Gbit/s-class link: everything fits; a dead link: nothing does */
	for (unsigned prev = 0; prev < 6; prev++) {
		cr_assert_eq(rtci_ctl_solve_fast(p, 1e8, 0, prev),
			     rtci_ctl_solve_exact(p, 1e8, 0, prev, NULL, NULL));
		cr_assert_eq(rtci_ctl_solve_fast(p, 1500, 0, prev), RTCI_CTL_SKIP);
		cr_assert_eq(rtci_ctl_solve_exact(p, 1500, 0, prev, NULL, NULL), RTCI_CTL_SKIP);
	}
	/* every answer is a setup or skip */
	for (int i = 0; i < 2000; i++) {
		int s = rtci_ctl_solve_fast(p, 1000 * pow(10, 5 * urand()), 100000 * urand(),
					    (unsigned)(urand() * 6));
		cr_assert(s == RTCI_CTL_SKIP || (s >= 0 && s < 6));
	}
	rtci_ctl_policy_destroy(p);
}

/* The fast path hands out the exact solver's whole plan, as the MPC does: the gateway sends
 * plans, and a one-step command made the device hold a setup the plan had already left. */
Test(mpc, fast_path_gives_the_exact_plan)
{
	struct rtci_ctl_table t = small_table(6);
	struct rtci_ctl_model m;
	rtci_ctl_model_default(&m);
	double links[] = { 1e8, 100 };
	for (int li = 0; li < 2; li++) {
		m.bw_floor = links[li]; /* a fresh device's prediction */
		struct rtci_ctl_policy *pf, *pe;
		cr_assert_eq(rtci_ctl_policy_create(&t, &m, &(struct rtci_ctl_policy_cfg){
							   .kind = RTCI_CTL_FASTMPC }, &pf), 0);
		cr_assert_eq(rtci_ctl_policy_create(&t, &m, &(struct rtci_ctl_policy_cfg){
							   .kind = RTCI_CTL_MPC }, &pe), 0);
		struct rtci_ctl_device df, de;
		rtci_ctl_device_init(&df, pf);
		rtci_ctl_device_init(&de, pe);
		uint8_t a[RTCI_CTL_MAX_PLAN], b[RTCI_CTL_MAX_PLAN];
		unsigned na = 0, nb = 0;
		int sa = rtci_ctl_choose(&df, pf, 0, 1000000000, a, &na);
		int sb = rtci_ctl_choose(&de, pe, 0, 1000000000, b, &nb);
		cr_assert_eq(na, m.horizon);
		cr_assert_eq(nb, m.horizon);
		cr_assert_eq(sa, sb);
		for (unsigned i = 0; i < na; i++)
			cr_assert_eq(a[i], b[i], "link %g step %u: %u vs %u", links[li], i, a[i], b[i]);
		rtci_ctl_policy_destroy(pf);
		rtci_ctl_policy_destroy(pe);
	}
}

/* Where no upload pays, the MPCs answer locally if the local exit is more accurate than their
 * fallback setup (and the plan says so at each such step), else they send the fallback, which
 * the device drops unless it makes its deadline; the other policies never choose local. */
Test(mpc, local_exit_is_an_action_of_the_mpcs)
{
	struct rtci_ctl_table t = small_table(6); /* accuracies 0.5 .. 0.9 */
	struct rtci_ctl_model m;
	rtci_ctl_model_default(&m);
	m.bw_floor = 100; /* a fresh device predicts a dead link */
	enum rtci_ctl_kind kinds[] = { RTCI_CTL_MPC, RTCI_CTL_FASTMPC, RTCI_CTL_RATE, RTCI_CTL_BBA };
	/* no local exit; one better than every setup; one worse than every setup */
	const double local_acc[] = { 0, 0.95, 0.45 };
	int fallback = -1;
	for (int l = 0; l < 3; l++) {
		t.local = (struct rtci_ctl_local_exit){ .present = l > 0, .accuracy = local_acc[l],
							.ms = 3 };
		for (int k = 0; k < 4; k++) {
			struct rtci_ctl_policy *p;
			cr_assert_eq(rtci_ctl_policy_create(&t, &m, &(struct rtci_ctl_policy_cfg){
								   .kind = kinds[k] }, &p), 0);
			struct rtci_ctl_device d;
			rtci_ctl_device_init(&d, p);
			uint8_t plan[RTCI_CTL_MAX_PLAN];
			unsigned n = 0;
			int s = rtci_ctl_choose(&d, p, 0, 1000000000, plan, &n);
			int mpc = kinds[k] == RTCI_CTL_MPC || kinds[k] == RTCI_CTL_FASTMPC;
			if (l == 1 && mpc) {
				cr_assert_eq(s, RTCI_CTL_LOCAL, "kind %d", k);
				for (unsigned i = 0; i < n; i++)
					cr_assert_eq(plan[i], RTCI_CTL_LOCAL);
				/* committed, it counts no bytes in the backlog estimate */
				rtci_ctl_commit(&d, p, 0, 1000000000, plan, n);
				cr_assert_float_eq(rtci_ctl_backlog_estimate(&d, p, 1000000000, 1e3), 0,
						   1e-9);
			} else {
				cr_assert(s >= 0 && s < 6, "kind %d local %d: %d", k, l, s);
			}
			if (mpc && l == 0)
				fallback = s; /* on a dead link: the fallback setup */
			if (mpc && l == 2) {
				cr_assert_eq(s, fallback, "kind %d: %d, not the fallback %d", k, s,
					     fallback);
				for (unsigned i = 0; i < n; i++)
					cr_assert_neq(plan[i], RTCI_CTL_LOCAL);
			}
			rtci_ctl_policy_destroy(p);
		}
	}
	t.local = (struct rtci_ctl_local_exit){ .present = 1, .accuracy = 0.5, .ms = 3 };
	/* a plan that skips is worth the local accuracy per skipped frame */
	struct rtci_ctl_policy *p;
	cr_assert_eq(rtci_ctl_policy_create(&t, &m, &(struct rtci_ctl_policy_cfg){
						   .kind = RTCI_CTL_MPC }, &p), 0);
	uint8_t skip[5];
	memset(skip, RTCI_CTL_SKIP, sizeof(skip));
	cr_assert_float_eq(rtci_ctl_plan_value(p, 100, 0, RTCI_CTL_SKIP, skip, 5), 2.5, 1e-12);
	double v;
	rtci_ctl_solve_exact(p, 100, 0, RTCI_CTL_SKIP, NULL, &v);
	cr_assert_float_eq(v, 2.5, 1e-9);
	rtci_ctl_policy_destroy(p);
}

/* A switch risks a larger frame that misses; with a local exit a miss still earns the exit's
 * answer, so the penalty is priced by the share of accuracy above it. */
Test(mpc, switch_penalty_is_priced_by_what_a_miss_costs)
{
	struct rtci_ctl_table t = two_setups(0.90, 10000, 0.92, 20000);
	struct rtci_ctl_model m;
	rtci_ctl_model_default(&m);
	m.switch_penalty = 0.03; /* more than the 0.02 one frame of setup 1 gains */
	m.horizon = 1;
	const struct { bool present; double local, lambda; int choice; } cases[] = {
		{ false, 0, 0.03, 0 },                          /* a miss costs all: hold */
		{ true, 0.88, 0.03 * (0.92 - 0.88) / 0.92, 1 }, /* a miss costs 0.04: switch */
		{ true, 0.95, 0, RTCI_CTL_SKIP }, /* a miss costs nothing; no upload is best */
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		t.local = (struct rtci_ctl_local_exit){ .present = cases[i].present,
							.accuracy = cases[i].local, .ms = 3 };
		struct rtci_ctl_policy *p;
		cr_assert_eq(rtci_ctl_policy_create(&t, &m, &(struct rtci_ctl_policy_cfg){
							   .kind = RTCI_CTL_MPC }, &p), 0);
		uint8_t up[1] = { 1 }, plan[8];
		/* 1 MB/s: both setups leave in time; from setup 0, setup 1 is one switch */
		cr_assert_float_eq(rtci_ctl_plan_value(p, 1e6, 0, 0, up, 1), 0.92 - cases[i].lambda,
				   1e-12, "case %u", i);
		double v;
		cr_assert_eq(rtci_ctl_solve_exact(p, 1e6, 0, 0, plan, &v), cases[i].choice, "case %u", i);
		rtci_ctl_policy_destroy(p);
	}
}

Test(mpc, device_state_fits_and_tracks_a_constant_link)
{
	cr_assert_leq(sizeof(struct rtci_ctl_device), 512);
	struct rtci_ctl_table t = small_table(5);
	struct rtci_ctl_model m;
	rtci_ctl_model_default(&m);
	struct rtci_ctl_policy_cfg c = { .kind = RTCI_CTL_MPC, .estimator = RTCI_CTL_EST_ROBUST };
	struct rtci_ctl_policy *p;
	cr_assert_eq(rtci_ctl_policy_create(&t, &m, &c, &p), 0);
	struct rtci_ctl_device d;
	rtci_ctl_device_init(&d, p);
	cr_assert_float_eq(rtci_ctl_predicted_bw(&d, p), m.bw_floor, 1e-9);
	/* frames of 14000 bytes at 1 MB/s: fragments of 1400 bytes every 1.4 ms */
	int64_t now = 1000000000;
	for (uint32_t k = 0; k < 10; k++) {
		int s = rtci_ctl_decide(&d, p, k, now);
		cr_assert(s == RTCI_CTL_SKIP || s < 5);
		struct rtci_ctl_obs o = {
			.seq = k, .bytes = 14000, .first_arrival_ns = now + 20000000 + 1400000,
			.last_arrival_ns = now + 20000000 + 14000000, .device_backlog_bytes = 0,
			.capture_ns = now,
		};
		rtci_ctl_observe_frame(&d, p, &o);
		now += 100000000;
	}
	cr_assert_float_eq(rtci_ctl_predicted_bw(&d, p), 1e6, 1e3);
	/* backlog: the report said 3000 bytes queued at anchor; 1 MB/s drains them in 3 ms */
	struct rtci_ctl_device d2;
	rtci_ctl_device_init(&d2, p);
	struct rtci_ctl_obs o = { .seq = 0, .bytes = 20000, .first_arrival_ns = 0,
				  .last_arrival_ns = 10000000 + m.prop_ns / 2,
				  .device_backlog_bytes = 3000 };
	rtci_ctl_observe_frame(&d2, p, &o);
	cr_assert_float_eq(rtci_ctl_backlog_estimate(&d2, p, 10000000, 1e6), 3000, 1e-6);
	cr_assert_float_eq(rtci_ctl_backlog_estimate(&d2, p, 11000000, 1e6), 2000, 1e-6);
	cr_assert_float_eq(rtci_ctl_backlog_estimate(&d2, p, 20000000, 1e6), 0, 1e-6);
	rtci_ctl_policy_destroy(p);
}

Test(mpc, link_overheads_planned_and_measured)
{
	struct rtci_ctl_model m;
	rtci_ctl_model_default(&m); /* fragments of 1400 payload bytes */
	cr_assert_float_eq(rtci_ctl_link_bytes(&m, 1401), 1401, 1e-9, "no overheads: payload");
	m.frag_overhead = 76;
	m.frame_overhead = 16;
	cr_assert_float_eq(rtci_ctl_link_bytes(&m, 100), 192, 1e-9);
	cr_assert_float_eq(rtci_ctl_link_bytes(&m, 1400), 1492, 1e-9);
	cr_assert_float_eq(rtci_ctl_link_bytes(&m, 1401), 1569, 1e-9);
	cr_assert_float_eq(rtci_ctl_link_bytes(&m, 0), 0, 1e-9);

	/* two setups whose payloads fit 250 bytes per frame period but only one with overheads */
	struct rtci_ctl_table t;
	memset(&t, 0, sizeof(t));
	t.n = 2;
	t.s[0] = (struct rtci_ctl_setup){ .c = 1, .bits = 8, .L = 255, .accuracy = 0.7, .bytes = 100 };
	t.s[1] = (struct rtci_ctl_setup){ .c = 2, .bits = 8, .L = 255, .accuracy = 0.8, .bytes = 200 };
	t.clio.L = 255;
	m.bw_floor = 2500; /* 250 bytes per 100 ms */
	struct rtci_ctl_policy_cfg c = { .kind = RTCI_CTL_RATE, .estimator = RTCI_CTL_EST_HARMONIC };
	struct rtci_ctl_policy *p;
	cr_assert_eq(rtci_ctl_policy_create(&t, &m, &c, &p), 0);
	struct rtci_ctl_device d;
	rtci_ctl_device_init(&d, p);
	cr_assert_eq(rtci_ctl_decide(&d, p, 0, 0), 0, "200 + 92 link bytes do not fit 250");
	rtci_ctl_policy_destroy(p);

	/* frames of 14000 payload bytes, 10 fragments, on a link of 1 MB/s in link bytes: the first
	 * fragment leaves after 1476 bytes, the last after 14776; the prediction is the link's */
	t = small_table(5);
	m.bw_floor = 125000;
	c = (struct rtci_ctl_policy_cfg){ .kind = RTCI_CTL_MPC, .estimator = RTCI_CTL_EST_ROBUST };
	cr_assert_eq(rtci_ctl_policy_create(&t, &m, &c, &p), 0);
	rtci_ctl_device_init(&d, p);
	int64_t now = 1000000000;
	for (uint32_t k = 0; k < 10; k++, now += 100000000) {
		struct rtci_ctl_obs o = {
			.seq = k, .bytes = 14000, .first_arrival_ns = now + m.prop_ns / 2 + 1476000,
			.last_arrival_ns = now + m.prop_ns / 2 + 14776000, .capture_ns = now,
		};
		rtci_ctl_observe_frame(&d, p, &o);
	}
	cr_assert_float_eq(rtci_ctl_predicted_bw(&d, p), 1e6, 1e2);
	rtci_ctl_policy_destroy(p);
}

Test(mpc, drop_report_caps_the_prediction_until_a_frame_arrives)
{
	struct rtci_ctl_table t = small_table(5);
	struct rtci_ctl_model m;
	rtci_ctl_model_default(&m);
	struct rtci_ctl_policy_cfg c = { .kind = RTCI_CTL_MPC, .estimator = RTCI_CTL_EST_HARMONIC };
	struct rtci_ctl_policy *p;
	cr_assert_eq(rtci_ctl_policy_create(&t, &m, &c, &p), 0);
	struct rtci_ctl_device d;
	rtci_ctl_device_init(&d, p);
	/* 1 MB/s: 14000-byte frames whose fragments span 12.6 ms */
	struct rtci_ctl_obs o = { .bytes = 14000, .first_arrival_ns = 1000000000,
				  .last_arrival_ns = 1000000000 + 12600000 };
	rtci_ctl_observe_frame(&d, p, &o);
	cr_assert_float_eq(rtci_ctl_predicted_bw(&d, p), 1e6, 1e3);
	/* a report without drops leaves the prediction alone; its backlog becomes the anchor */
	struct rtci_ctl_report r = { .arrival_ns = 2000000000, .backlog_bytes = 4000, .setup = 0 };
	rtci_ctl_observe_report(&d, p, &r);
	cr_assert_float_eq(rtci_ctl_predicted_bw(&d, p), 1e6, 1e3);
	int64_t left = r.arrival_ns - m.prop_ns / 2;
	cr_assert_float_eq(rtci_ctl_backlog_estimate(&d, p, left, 1e6), 4000, 1e-6);
	cr_assert_float_eq(rtci_ctl_backlog_estimate(&d, p, left + 1000000, 1e6), 3000, 1e-6);
	/* drops of setup 3 behind 1000 queued bytes: the link is below (bytes + 1000) / W; the
	 * prediction is held at half of that */
	double W = (double)(m.deadline_ns - m.head_ns - m.prop_ns - m.gw_queue_ns - m.tail_ns) * 1e-9;
	double cap = 0.5 * (t.s[3].bytes + 1000) / W;
	cr_assert_lt(cap, 1e6);
	r = (struct rtci_ctl_report){ .arrival_ns = 3000000000, .frames_dropped = 2,
				      .backlog_bytes = 1000, .setup = 3 };
	rtci_ctl_observe_report(&d, p, &r);
	cr_assert_float_eq(rtci_ctl_predicted_bw(&d, p), cap, cap * 1e-6);
	/* a further drop report on a smaller setup lowers it again; a larger bound does not raise
	 * it */
	unsigned lo = 0;
	for (unsigned i = 1; i < t.n; i++)
		if (t.s[i].bytes < t.s[lo].bytes)
			lo = i;
	r.setup = (uint16_t)lo;
	r.backlog_bytes = 0;
	rtci_ctl_observe_report(&d, p, &r);
	double cap2 = 0.5 * t.s[lo].bytes / W;
	cr_assert_float_eq(rtci_ctl_predicted_bw(&d, p), cap2 < cap ? cap2 : cap, 1e-3);
	r.setup = 99; /* not a setup of the table: ignored */
	rtci_ctl_observe_report(&d, p, &r);
	cr_assert_float_eq(rtci_ctl_predicted_bw(&d, p), cap2 < cap ? cap2 : cap, 1e-3);
	/* a frame got through: its sample counts again */
	o.seq = 1;
	o.first_arrival_ns = 4000000000;
	o.last_arrival_ns = o.first_arrival_ns + 12600000;
	rtci_ctl_observe_frame(&d, p, &o);
	cr_assert_float_eq(rtci_ctl_predicted_bw(&d, p), 1e6, 1e3);
	rtci_ctl_policy_destroy(p);
}

static unsigned id_of_bytes(const struct rtci_ctl_table *t, double bytes)
{
	for (unsigned i = 0; i < t->n; i++)
		if (t->s[i].bytes == bytes)
			return i;
	return RTCI_CTL_SKIP;
}

Test(mpc, fallback_is_the_best_setup_within_twice_the_smallest_and_one_datagram)
{
	struct rtci_ctl_model m;
	rtci_ctl_model_default(&m); /* 1400-byte fragments, no overheads */
	struct rtci_ctl_policy_cfg c = { .kind = RTCI_CTL_MPC };
	struct rtci_ctl_policy *p;
	/* 190 B is the most accurate within 2 x 100 B; 250 B is over it */
	double b1[] = { 100, 150, 190, 250, 5000 }, a1[] = { 0.70, 0.85, 0.88, 0.90, 0.92 };
	struct rtci_ctl_table t = table_of(5, b1, a1);
	cr_assert_eq(rtci_ctl_policy_create(&t, &m, &c, &p), 0);
	cr_assert_eq(rtci_ctl_policy_fallback(p), id_of_bytes(&t, 190));
	rtci_ctl_policy_destroy(p);
	/* 1300 B is within twice 800 B but 1500 B is over one datagram */
	double b2[] = { 800, 1300, 1500 }, a2[] = { 0.70, 0.80, 0.90 };
	t = table_of(3, b2, a2);
	cr_assert_eq(rtci_ctl_policy_create(&t, &m, &c, &p), 0);
	cr_assert_eq(rtci_ctl_policy_fallback(p), id_of_bytes(&t, 1300));
	rtci_ctl_policy_destroy(p);
	/* the smallest frame already needs two datagrams: it stays the fallback */
	double b3[] = { 1600, 2000, 3000 }, a3[] = { 0.70, 0.80, 0.90 };
	t = table_of(3, b3, a3);
	cr_assert_eq(rtci_ctl_policy_create(&t, &m, &c, &p), 0);
	cr_assert_eq(rtci_ctl_policy_fallback(p), id_of_bytes(&t, 1600));
	rtci_ctl_policy_destroy(p);
	/* in link bytes (76 a fragment, 16 a frame): twice the smallest is 384, and 250 B takes 342 */
	m.frag_overhead = 76;
	m.frame_overhead = 16;
	t = table_of(5, b1, a1);
	cr_assert_eq(rtci_ctl_policy_create(&t, &m, &c, &p), 0);
	cr_assert_eq(rtci_ctl_policy_fallback(p), id_of_bytes(&t, 250));
	rtci_ctl_policy_destroy(p);
}

/* A device whose link carries `bps` by the last frame the controller saw (a 5000-byte frame:
 * the bytes after its first fragment over its first-to-last arrival span). */
static void device_at(struct rtci_ctl_device *d, const struct rtci_ctl_policy *p, double bps)
{
	rtci_ctl_device_init(d, p);
	struct rtci_ctl_obs o = { .seq = 0, .bytes = 5000, .first_arrival_ns = 0,
				  .last_arrival_ns = llround(3600.0 / bps * 1e9), .capture_ns = 1 };
	rtci_ctl_observe_frame(d, p, &o);
	cr_assert_float_eq(rtci_ctl_predicted_bw(d, p), bps, bps * 1e-6);
}

Test(mpc, a_skipping_plan_sends_the_fallback_setup)
{
	double b[] = { 100, 180, 5000 }, a[] = { 0.80, 0.88, 0.92 };
	struct rtci_ctl_table t = table_of(3, b, a);
	struct rtci_ctl_model m;
	rtci_ctl_model_default(&m);
	struct rtci_ctl_policy_cfg c = { .kind = RTCI_CTL_MPC };
	struct rtci_ctl_policy *p;
	cr_assert_eq(rtci_ctl_policy_create(&t, &m, &c, &p), 0);
	/* 100 B/s: no setup can make the deadline */
	cr_assert_eq(rtci_ctl_solve_exact(p, 100, 0, RTCI_CTL_SKIP, NULL, NULL), RTCI_CTL_SKIP);
	struct rtci_ctl_device d;
	device_at(&d, p, 72);
	/* the plan skips, the device gets the fallback (it drops the frame itself if it cannot
	 * leave in time), every step of the plan too */
	uint8_t plan[RTCI_CTL_MAX_PLAN];
	unsigned n = 0;
	cr_assert_eq(rtci_ctl_choose(&d, p, 1, 60000000000LL, plan, &n), id_of_bytes(&t, 180));
	cr_assert_eq(n, m.horizon);
	for (unsigned i = 0; i < n; i++)
		cr_assert_eq(plan[i], id_of_bytes(&t, 180));
	cr_assert_eq(rtci_ctl_decide(&d, p, 1, 60000000000LL), id_of_bytes(&t, 180));
	cr_assert_eq(rtci_ctl_decide(&d, p, 2, 60100000000LL), id_of_bytes(&t, 180));
	/* with bandwidth to spare the same device moves up again */
	struct rtci_ctl_obs fast = { .seq = 2, .bytes = 50000, .first_arrival_ns = 60200000000LL,
				     .last_arrival_ns = 60201000000LL, .capture_ns = 60100000000LL };
	for (uint32_t k = 0; k < 8; k++) {
		fast.seq = 2 + k;
		fast.first_arrival_ns += 100000000;
		fast.last_arrival_ns += 100000000;
		rtci_ctl_observe_frame(&d, p, &fast);
	}
	cr_assert_eq(rtci_ctl_decide(&d, p, 11, 61200000000LL), id_of_bytes(&t, 5000));
	rtci_ctl_policy_destroy(p);
}

Test(rate, sends_what_fits_the_budget_and_the_fallback_when_nothing_does)
{
	double b[] = { 100, 180, 5000 }, a[] = { 0.80, 0.88, 0.92 };
	struct rtci_ctl_table t = table_of(3, b, a);
	struct rtci_ctl_model m;
	rtci_ctl_model_default(&m); /* 10 fps: a budget of bw x 100 ms */
	struct rtci_ctl_policy_cfg c = { .kind = RTCI_CTL_RATE };
	struct rtci_ctl_policy *p;
	cr_assert_eq(rtci_ctl_policy_create(&t, &m, &c, &p), 0);
	struct rtci_ctl_device d;
	device_at(&d, p, 500); /* 50 B: nothing fits */
	cr_assert_eq(rtci_ctl_decide(&d, p, 1, 1000000000), id_of_bytes(&t, 180));
	device_at(&d, p, 1440); /* 144 B: the smallest fits, 180 B does not */
	cr_assert_eq(rtci_ctl_decide(&d, p, 1, 1000000000), id_of_bytes(&t, 100));
	device_at(&d, p, 60000); /* 6 kB */
	cr_assert_eq(rtci_ctl_decide(&d, p, 1, 1000000000), id_of_bytes(&t, 5000));
	rtci_ctl_policy_destroy(p);
}

/* The gateway decides a few frames ahead, by how late the last arrival was, sends plans and
 * may hold a choice back: the frames the controller expects in the device queue are those the
 * device captures, each with the setup it really uses. */
Test(mpc, committed_frames_follow_the_device)
{
	double bytes[] = { 1000, 2000, 4000 }, acc[] = { 0.7, 0.8, 0.9 };
	struct rtci_ctl_table t = table_of(3, bytes, acc);
	struct rtci_ctl_model m;
	rtci_ctl_model_default(&m); /* 10 fps, no overheads: link bytes = payload */
	struct rtci_ctl_policy_cfg c = { .kind = RTCI_CTL_MPC };
	struct rtci_ctl_policy *p;
	cr_assert_eq(rtci_ctl_policy_create(&t, &m, &c, &p), 0);
	struct rtci_ctl_device d;
	rtci_ctl_device_init(&d, p);
	const int64_t t0 = 1000000000, T = 100000000;
	/* a link too slow to drain anything in between: the estimate is the bytes queued */
	const double slow = 1e-6;
	uint8_t one = 1;
	rtci_ctl_commit(&d, p, 0, t0, &one, 1);
	cr_assert_float_eq(rtci_ctl_backlog_estimate(&d, p, t0 + T, slow), 2000, 1e-3);
	/* frame 3 decided next: frames 1 and 2 are captured on setup 1 all the same */
	uint8_t two = 2;
	rtci_ctl_commit(&d, p, 3, t0 + 3 * T, &two, 1);
	cr_assert_float_eq(rtci_ctl_backlog_estimate(&d, p, t0 + 4 * T, slow), 3 * 2000 + 4000,
			   1e-3);
	/* frame 2 decided again: it and frame 3 now go on the newer choice */
	uint8_t zero = 0;
	rtci_ctl_commit(&d, p, 2, t0 + 2 * T, &zero, 1);
	cr_assert_float_eq(rtci_ctl_backlog_estimate(&d, p, t0 + 4 * T, slow), 2 * 2000 + 1000,
			   1e-3);
	/* a plan: frames 3, 4, 5 on setups 2, 1, 0 */
	uint8_t plan[] = { 2, 1, 0 };
	rtci_ctl_commit(&d, p, 3, t0 + 3 * T, plan, 3);
	cr_assert_float_eq(rtci_ctl_backlog_estimate(&d, p, t0 + 6 * T, slow),
			   2 * 2000 + 1000 + 4000 + 2000 + 1000, 1e-3);
	cr_assert_eq(d.prev_setup, 0);
	/* the MPC's plan for frame 4 on: as many steps as its horizon, and the frames before it
	 * stay as committed; a choice the gateway held back commits what the device keeps */
	uint8_t got[8];
	unsigned n = 0;
	int s = rtci_ctl_choose(&d, p, 4, t0 + 4 * T, got, &n);
	cr_assert(s >= 0 && s < 3);
	cr_assert_eq(n, m.horizon);
	cr_assert_eq(got[0], s);
	for (unsigned i = 0; i < n; i++)
		cr_assert_lt(got[i], 3, "step %u", i);
	uint8_t kept[] = { 1, 0 };
	rtci_ctl_commit(&d, p, 4, t0 + 4 * T, kept, 2);
	cr_assert_float_eq(rtci_ctl_backlog_estimate(&d, p, t0 + 6 * T, slow),
			   2 * 2000 + 1000 + 4000 + 2000 + 1000, 1e-3);
	rtci_ctl_policy_destroy(p);
}

static const char *json_table =
	"{\"name\":\"x\",\"setups\":["
	"{\"id\":0,\"c\":1,\"L\":255,\"accuracy\":0.5,\"payload_bytes\":100},"
	"{\"id\":1,\"c\":1,\"L\":1,\"accuracy\":0.4,\"payload_bytes\":20}],"
	"\"spinn\":{\"coverage\":0.2,\"exit_accuracy\":0.9,\"rest_factor\":0.9,\"exit_ms\":4},"
	"\"clio\":{\"L\":255}}";

Test(table, json_and_model_file)
{
	struct rtci_ctl_table t;
	char err[256] = "";
	cr_assert_eq(rtci_ctl_table_parse(json_table, strlen(json_table), "t.json", &t, err,
					  sizeof(err)), 0, "%s", err);
	cr_assert_eq(t.n, 2);
	cr_assert_eq(t.s[1].bits, 1);
	cr_assert_eq(t.s[0].bits, 8);
	cr_assert_float_eq(t.s[1].bytes, 20, 1e-9);
	cr_assert_float_eq(t.spinn.coverage, 0.2, 1e-9);
	cr_assert_eq(rtci_ctl_table_find(&t, 1, 1), 1);

	/* a model file is not read here: its one reader is inference/ (control/model_table.h) */
	const char *meta = "{\"__metadata__\":{\"rtci\":\"{}\"}}";
	size_t n = strlen(meta);
	unsigned char *buf = malloc(8 + n + 4);
	cr_assert_not_null(buf);
	for (int i = 0; i < 8; i++)
		buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
	memcpy(buf + 8, meta, n);
	memset(buf + 8 + n, 0, 4);
	cr_assert(rtci_ctl_looks_like_model(buf, 8 + n + 4));
	cr_assert_eq(rtci_ctl_table_parse(buf, 8 + n + 4, "m.rtcm", &t, err, sizeof(err)),
		     -RTCI_ERR_CTL_TABLE);
	cr_assert(strstr(err, "a model file"), "%s", err);
	free(buf);

	/* a model's metadata document: the table takes the geometry's name */
	const char *doc = "{\"geometry\":{\"name\":\"g\"},\"setups\":[{\"id\":0,\"c\":1,"
			  "\"L\":255,\"bn_slot\":0,\"accuracy\":0.5,\"payload_bytes\":100.5,"
			  "\"raw_bytes\":120}]}";
	cr_assert_eq(rtci_ctl_table_parse(doc, strlen(doc), "m", &t, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(t.n, 1);
	cr_assert_str_eq(t.name, "g");
	cr_assert_float_eq(t.s[0].bytes, 100.5, 1e-9);
}

/* The table of a model file, read by inference/ (control/model_table.h): the shipped model's
 * measured figures and blocks; a synthesized model only on request, with estimates. */
Test(table, from_model_files)
{
	const char *src = getenv("RTCI_SRC");
	cr_assert(src, "RTCI_SRC (the source tree) not set");
	char path[4096], err[512] = "";
	struct rtci_ctl_table t;
	snprintf(path, sizeof(path), "%s/models/fmnist-swcnn.rtcm", src);
	cr_assert_eq(rtci_ctl_table_load_any(path, &t, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(t.name, "fmnist");
	cr_assert_eq(t.n, 50);
	cr_assert(t.local.present);
	cr_assert(t.spinn.measured);
	cr_assert_gt(t.clio.nwidths, 0);
	/* the JSON route refuses the same file with a reason */
	cr_assert_eq(rtci_ctl_table_load_file(path, &t, err, sizeof(err)), -RTCI_ERR_CTL_TABLE);

	char tmp[] = "/tmp/rtci-table-XXXXXX";
	cr_assert_not_null(mkdtemp(tmp));
	snprintf(path, sizeof(path), "%s/synth.rtcm", tmp);
	struct rtci_geometry g;
	cr_assert_eq(rtci_geometry_preset("fmnist", &g), 0);
	cr_assert_eq(rtci_model_synth(&g, 7, path, err, sizeof(err)), 0, "%s", err);
	struct rtci_model *m;
	cr_assert_eq(rtci_model_load(path, &m, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(rtci_ctl_table_from_model(m, false, &t, err, sizeof(err)), -RTCI_ERR_CTL_TABLE);
	cr_assert_eq(rtci_ctl_table_from_model(m, true, &t, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(t.n, (unsigned)rtci_model_setup_count(m));
	int a = rtci_ctl_table_find(&t, 1, 255), b = rtci_ctl_table_find(&t, 32, 255);
	cr_assert(a >= 0 && b >= 0);
	cr_assert_lt(t.s[a].accuracy, t.s[b].accuracy); /* more kept, more accurate */
	cr_assert_lt(t.s[a].bytes, t.s[b].bytes);
	rtci_model_destroy(m);
	unlink(path);
	rmdir(tmp);
}

/* The measured blocks (docs/control.md §5): SPINN's threshold points, CLIO's per-width
 * accuracy, the local exit; the old flat forms keep working. */
static const char *blocks_table =
	"{\"name\":\"b\",\"geometry\":{\"partition\":[32,14,14]},\"setups\":["
	"{\"c\":1,\"L\":15,\"accuracy\":0.8,\"payload_bytes\":111},"
	"{\"c\":2,\"L\":15,\"accuracy\":0.85,\"payload_bytes\":222}],"
	"\"spinn\":{\"exit_ms\":2.5,\"threshold\":0.9,\"points\":["
	"{\"threshold\":0.5,\"coverage\":0.9,\"exit_accuracy\":0.88,\"rest_factor\":0.6},"
	"{\"threshold\":0.9,\"coverage\":0.6,\"exit_accuracy\":0.97,\"rest_factor\":0.9}]},"
	"\"clio\":{\"L\":15,\"widths\":[{\"c\":1,\"accuracy\":0.7},{\"c\":2,\"accuracy\":0.75,"
	"\"bytes\":300},{\"c\":4,\"accuracy\":0.8}]},"
	"\"local_exit\":{\"accuracy\":0.86,\"ms\":1.5}}";

Test(table, measured_blocks)
{
	struct rtci_ctl_table t;
	char err[256] = "";
	cr_assert_eq(rtci_ctl_table_parse(blocks_table, strlen(blocks_table), "b.json", &t, err,
					  sizeof(err)), 0, "%s", err);
	cr_assert(t.spinn.measured);
	cr_assert_eq(t.spinn.npoints, 2);
	/* the chosen threshold is the operating point */
	cr_assert_float_eq(t.spinn.threshold, 0.9, 1e-12);
	cr_assert_float_eq(t.spinn.coverage, 0.6, 1e-12);
	cr_assert_float_eq(t.spinn.exit_accuracy, 0.97, 1e-12);
	cr_assert_float_eq(t.spinn.rest_factor, 0.9, 1e-12);
	cr_assert_float_eq(t.spinn.exit_ms, 2.5, 1e-12);
	cr_assert_eq(rtci_ctl_table_spinn_select(&t, 0.5), 0);
	cr_assert_float_eq(t.spinn.coverage, 0.9, 1e-12);
	cr_assert_float_eq(t.spinn.rest_factor, 0.6, 1e-12);
	cr_assert_eq(rtci_ctl_table_spinn_select(&t, 0.7), -ENOENT);
	cr_assert_float_eq(t.spinn.coverage, 0.9, 1e-12, "a failed select changes nothing");
	/* CLIO: bytes from the setup (c, L), given, or the partition (4·14·14·4/8 + 8·4) */
	cr_assert_eq(t.clio.nwidths, 3);
	cr_assert_float_eq(t.clio.widths[0].bytes, 111, 1e-9);
	cr_assert_float_eq(t.clio.widths[1].bytes, 300, 1e-9);
	cr_assert_float_eq(t.clio.widths[2].bytes, 392 + 32, 1e-9);
	cr_assert_float_eq(t.clio.widths[2].accuracy, 0.8, 1e-12);
	cr_assert(t.local.present);
	cr_assert_float_eq(t.local.accuracy, 0.86, 1e-12);
	cr_assert_float_eq(t.local.ms, 1.5, 1e-12);
	/* the old flat forms: one SPINN point, CLIO credited from the setups, no local exit */
	cr_assert_eq(rtci_ctl_table_parse(json_table, strlen(json_table), "t.json", &t, err,
					  sizeof(err)), 0, "%s", err);
	cr_assert_eq(t.spinn.npoints, 1);
	cr_assert_float_eq(t.spinn.points[0].coverage, 0.2, 1e-12);
	cr_assert_eq(t.clio.nwidths, 0);
	cr_assert(!t.local.present);
}

Test(table, invalid_blocks_say_why)
{
	const char *head = "{\"setups\":[{\"c\":1,\"L\":15,\"accuracy\":0.5,\"payload_bytes\":10}],";
	struct {
		const char *block, *msg;
	} cases[] = {
		{ "\"spinn\":{\"exit_ms\":1,\"threshold\":0.5,\"points\":[]}}", "spinn" },
		{ "\"spinn\":{\"exit_ms\":1,\"threshold\":0.5,\"points\":[{\"threshold\":0.9,"
		  "\"coverage\":0.5,\"exit_accuracy\":0.9,\"rest_factor\":0.9},{\"threshold\":0.5,"
		  "\"coverage\":0.5,\"exit_accuracy\":0.9,\"rest_factor\":0.9}]}}", "ascending" },
		{ "\"spinn\":{\"exit_ms\":1,\"threshold\":0.7,\"points\":[{\"threshold\":0.5,"
		  "\"coverage\":0.5,\"exit_accuracy\":0.9,\"rest_factor\":0.9}]}}", "threshold 0.7" },
		{ "\"spinn\":{\"exit_ms\":1,\"threshold\":0.5,\"points\":[{\"threshold\":0.5,"
		  "\"coverage\":1.5,\"exit_accuracy\":0.9,\"rest_factor\":0.9}]}}", "spinn" },
		{ "\"clio\":{\"L\":15,\"widths\":[{\"c\":2,\"accuracy\":0.7},{\"c\":1,\"accuracy\":0.8}]}}",
		  "widths" },
		{ "\"clio\":{\"L\":15,\"widths\":[{\"c\":8,\"accuracy\":0.7}]}}", "widths" },
		{ "\"clio\":{\"L\":15,\"widths\":[{\"c\":1,\"accuracy\":2}]}}", "widths" },
		{ "\"local_exit\":{\"accuracy\":1.2,\"ms\":1}}", "local_exit" },
		{ "\"local_exit\":{\"accuracy\":0.8}}", "local_exit" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[1024];
		snprintf(text, sizeof(text), "%s%s", head, cases[i].block);
		struct rtci_ctl_table t;
		char err[256] = "";
		int rc = rtci_ctl_table_parse(text, strlen(text), "t.json", &t, err, sizeof(err));
		cr_assert_eq(rc, -RTCI_ERR_CTL_TABLE, "case %zu rc %d", i, rc);
		cr_assert(strstr(err, cases[i].msg), "case %zu: \"%s\" lacks \"%s\"", i, err,
			  cases[i].msg);
	}
}

Test(table, invalid_tables_say_why)
{
	struct {
		const char *text, *msg;
	} cases[] = {
		{ "{\"setups\":[]}", "non-empty" },
		{ "{\"setups\":[{\"c\":1,\"L\":255,\"payload_bytes\":10}]}", "accuracy" },
		{ "{\"setups\":[{\"c\":1,\"L\":255,\"accuracy\":null,\"payload_bytes\":10}]}", "accuracy" },
		{ "{\"setups\":[{\"c\":1,\"L\":255,\"accuracy\":0.5,\"payload_bytes\":-1}]}", "payload" },
		{ "{\"setups\":[{\"c\":0,\"L\":255,\"accuracy\":0.5,\"payload_bytes\":1}]}", ".c" },
		{ "{\"setups\":[{\"id\":3,\"c\":1,\"L\":255,\"accuracy\":0.5,\"payload_bytes\":1}]}", "id" },
		{ "{\"setups\": [", "t.json:" },
		{ "{\"setups\":[{\"c\":1,\"L\":3,\"accuracy\":0.5,\"payload_bytes\":1}],\"clio\":{\"L\":255}}",
		  "clio" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rtci_ctl_table t;
		char err[256] = "";
		int rc = rtci_ctl_table_parse(cases[i].text, strlen(cases[i].text), "t.json", &t, err,
					      sizeof(err));
		cr_assert_eq(rc, -RTCI_ERR_CTL_TABLE, "case %zu rc %d", i, rc);
		cr_assert(strstr(err, cases[i].msg), "case %zu: \"%s\" lacks \"%s\"", i, err,
			  cases[i].msg);
	}
}

/* The device drops what cannot leave in time instead of queueing it: BBA's queue signal stays
 * empty on a link too slow for its setup, and the drop reports have to stand in for it. */
Test(bba, drop_reports_step_down_until_a_frame_arrives)
{
	double b[] = { 1000, 2000, 4000 }, a[] = { 0.7, 0.8, 0.9 };
	struct rtci_ctl_table t = table_of(3, b, a);
	struct rtci_ctl_model m;
	rtci_ctl_model_default(&m);
	struct rtci_ctl_policy_cfg c = { .kind = RTCI_CTL_BBA };
	struct rtci_ctl_policy *p;
	cr_assert_eq(rtci_ctl_policy_create(&t, &m, &c, &p), 0);
	struct rtci_ctl_device d;
	rtci_ctl_device_init(&d, p);
	struct rtci_ctl_obs o = { .seq = 0, .bytes = 4000, .first_arrival_ns = 50000000,
				  .last_arrival_ns = 60000000, .capture_ns = 1 };
	rtci_ctl_observe_frame(&d, p, &o);
	uint8_t top = 2;
	rtci_ctl_commit(&d, p, 1, 100000000, &top, 1);
	struct rtci_ctl_report r = { .arrival_ns = 400000000, .frames_dropped = 2,
				     .backlog_bytes = 0, .setup = 2 };
	rtci_ctl_observe_report(&d, p, &r);
	cr_assert_eq(rtci_ctl_decide(&d, p, 5, 500000000), 1);
	cr_assert_eq(rtci_ctl_decide(&d, p, 6, 600000000), 0);
	cr_assert_eq(rtci_ctl_decide(&d, p, 7, 700000000), 0);
	/* a frame got through with the queue empty: the reservoir rule steps up again */
	o = (struct rtci_ctl_obs){ .seq = 7, .bytes = 1000, .first_arrival_ns = 750000000,
				   .last_arrival_ns = 760000000, .capture_ns = 700000000 };
	rtci_ctl_observe_frame(&d, p, &o);
	cr_assert_eq(rtci_ctl_decide(&d, p, 8, 800000000), 1);
	rtci_ctl_policy_destroy(p);
}
