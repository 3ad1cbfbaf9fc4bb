/* Simulator: hand-computed frames, the oracle bounds every policy, determinism for a seed. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "control/control.h"
#include "control/model_table.h"

static uint64_t rng = 777;
static double urand(void)
{
	rng = rtci_mix64(rng);
	return (double)(rng >> 11) * 0x1.0p-53;
}

/* A table shaped like the real ones: sizes doubling, accuracy rising and saturating. */
static struct rtci_ctl_table test_table(void)
{
	struct rtci_ctl_table t;
	memset(&t, 0, sizeof(t));
	snprintf(t.name, sizeof(t.name), "test");
	unsigned cs[] = { 1, 2, 4, 8 };
	uint32_t Ls[] = { 255, 1 };
	for (unsigned ci = 0; ci < 4; ci++)
		for (unsigned li = 0; li < 2; li++) {
			struct rtci_ctl_setup *s = &t.s[t.n++];
			s->c = (uint16_t)cs[ci];
			s->L = Ls[li];
			s->bits = li ? 1 : 8;
			s->bytes = cs[ci] * (li ? 1500.0 : 12000.0);
			s->accuracy = 0.9 - 0.1 / cs[ci] - (li ? 0.05 / cs[ci] : 0);
		}
	t.spinn = (struct rtci_ctl_spinn){ .coverage = 0.3, .exit_accuracy = 0.8, .rest_factor = 0.95,
					   .exit_ms = 3 };
	t.clio.L = 1;
	return t;
}

static struct rtci_ctl_trace *random_trace(unsigned steps)
{
	int64_t *dur = malloc(steps * sizeof(*dur));
	double *bps = malloc(steps * sizeof(*bps));
	for (unsigned i = 0; i < steps; i++) {
		dur[i] = (int64_t)(50e6 + 950e6 * urand());
		/* 0 to 400 kB/s, with outages */
		bps[i] = urand() < 0.1 ? 0 : 400000 * urand() * urand();
	}
	bps[0] = 100000;
	struct rtci_ctl_trace *t;
	cr_assert_eq(rtci_ctl_trace_steps(dur, bps, steps, &t), 0);
	free(dur);
	free(bps);
	return t;
}

Test(sim, hand_computed_fixed_setup_on_constant_link)
{
	struct rtci_ctl_table tab = test_table();
	struct rtci_ctl_model m;
	rtci_ctl_model_default(&m); /* 10 fps, D 200, head 5, post 30 */
	struct rtci_ctl_trace *tr;
	cr_assert_eq(rtci_ctl_trace_constant(200000, 10000000000LL, &tr), 0); /* 200 kB/s */
	/* setup 4 = (4 ch, 8 bit) = 48000 bytes: 240 ms per frame > 100 ms period: the queue
	 * grows by 140 ms per frame. Frame 0: 5 + 240 + 30 = 275 ms: late. */
	struct rtci_ctl_policy_cfg pc = { .kind = RTCI_CTL_FIXED, .fixed_setup = 4 };
	struct rtci_ctl_policy *p;
	cr_assert_eq(rtci_ctl_policy_create(&tab, &m, &pc, &p), 0);
	struct rtci_ctl_frame_out out[4];
	struct rtci_ctl_sim_result r;
	struct rtci_ctl_sim_cfg sc = { .trace = tr, .policy = p, .model = &m, .frames = 4 };
	cr_assert_eq(rtci_ctl_sim_run(&sc, out, &r), 0);
	cr_assert_float_eq(out[0].latency_ms, 275, 1e-3);
	cr_assert_eq(out[0].hit, 0);
	/* frame 1 is ready at 105 ms, starts at 245 (140 ms wait >= ... still < W = 165): sent,
	 * finishes at 485: latency 485 + 30 - 100 = 415 ms */
	cr_assert_eq(out[1].sent, 1);
	cr_assert_float_eq(out[1].latency_ms, 415, 1e-3);
	/* frame 2 is ready at 205 and could start at 485: waited 280 >= 165: dropped unsent */
	cr_assert_eq(out[2].sent, 0);
	cr_assert_eq(r.hit_rate, 0);
	rtci_ctl_policy_destroy(p);

	/* setup 2 = (2 ch, 8 bit) = 24000 bytes: 120 ms; frame 0: 5 + 120 + 30 = 155 ms, hit;
	 * frame 1 ready at 105, starts at 125: 20 + 120 + 30 + 5 = 175 ms, hit; frame 2 waits 40:
	 * 195 ms, hit; frame 3 waits 60: 215 ms, miss. */
	pc.fixed_setup = 2;
	cr_assert_eq(rtci_ctl_policy_create(&tab, &m, &pc, &p), 0);
	sc.policy = p;
	cr_assert_eq(rtci_ctl_sim_run(&sc, out, &r), 0);
	double want[] = { 155, 175, 195, 215 };
	for (int k = 0; k < 4; k++)
		cr_assert_float_eq(out[k].latency_ms, want[k], 1e-3, "frame %d", k);
	cr_assert_float_eq(r.hit_rate, 0.75, 1e-9);
	cr_assert_float_eq(r.rt_accuracy, 0.75 * tab.s[2].accuracy, 1e-9);
	cr_assert_float_eq(r.bytes_sent, 4 * 24000.0, 1e-6);
	rtci_ctl_policy_destroy(p);
	rtci_ctl_trace_destroy(tr);
}

Test(sim, link_overheads_charged_per_fragment_and_frame)
{
	struct rtci_ctl_table tab = test_table();
	struct rtci_ctl_model m;
	rtci_ctl_model_default(&m);
	m.frag_overhead = 76; /* what rtci-edge's pacer charges: header + IPv4/UDP, and the tag */
	m.frame_overhead = 16;
	struct rtci_ctl_trace *tr;
	cr_assert_eq(rtci_ctl_trace_constant(200000, 10000000000LL, &tr), 0); /* 200 kB/s */
	/* setup 2: 24000 payload bytes in 18 fragments: 24000 + 18 x 76 + 16 = 25384 link bytes,
	 * 126.92 ms at 200 kB/s: latency 5 + 126.92 + 30 */
	struct rtci_ctl_policy_cfg pc = { .kind = RTCI_CTL_FIXED, .fixed_setup = 2 };
	struct rtci_ctl_policy *p;
	cr_assert_eq(rtci_ctl_policy_create(&tab, &m, &pc, &p), 0);
	struct rtci_ctl_frame_out out[1];
	struct rtci_ctl_sim_result r;
	struct rtci_ctl_sim_cfg sc = { .trace = tr, .policy = p, .model = &m, .frames = 1 };
	cr_assert_eq(rtci_ctl_sim_run(&sc, out, &r), 0);
	cr_assert_float_eq(out[0].latency_ms, 161.92, 1e-3);
	cr_assert_float_eq(out[0].bytes, 25384, 1e-6);
	rtci_ctl_policy_destroy(p);
	rtci_ctl_trace_destroy(tr);
}

/* A steady link between two setups: 9000 bytes per frame period, one setup of 6000 bytes and one
 * of 12000 (133 ms of a 165 ms send window). Alternating them fills the link; holding either
 * leaves a third of it idle or falls behind. The exact throughput samples of a steady link make
 * the MPC's prediction error 0, and with it half of the switch penalty goes: 2.5 points for one
 * larger frame pay for its two switches at 0.01 each but not at 0.02. */
static void run_steady_between_two(int fixed_penalty, struct rtci_ctl_sim_result *r,
				   unsigned *large)
{
	double bytes[] = { 6000, 12000 }, acc[] = { 0.8, 0.825 };
	struct rtci_ctl_table tab;
	memset(&tab, 0, sizeof(tab));
	tab.n = 2;
	tab.clio.L = 255;
	for (unsigned i = 0; i < 2; i++)
		tab.s[i] = (struct rtci_ctl_setup){ .c = (uint16_t)(i + 1), .L = 255, .bits = 8,
						    .accuracy = acc[i], .bytes = bytes[i] };
	struct rtci_ctl_model m;
	rtci_ctl_model_default(&m); /* 10 fps, D 200 ms, W 165 ms, penalty 0.02 */
	m.fixed_switch_penalty = fixed_penalty;
	struct rtci_ctl_trace *tr;
	cr_assert_eq(rtci_ctl_trace_constant(90000, 100000000000LL, &tr), 0);
	struct rtci_ctl_policy_cfg pc = { .kind = RTCI_CTL_MPC, .estimator = RTCI_CTL_EST_ROBUST };
	struct rtci_ctl_policy *p;
	cr_assert_eq(rtci_ctl_policy_create(&tab, &m, &pc, &p), 0);
	struct rtci_ctl_frame_out out[300];
	struct rtci_ctl_sim_cfg sc = { .trace = tr, .policy = p, .model = &m, .frames = 300,
				       .report_ns = 1000000000, .report_gap_ns = 100000000,
				       .admit = RTCI_CTL_ADMIT_FINISH };
	cr_assert_eq(rtci_ctl_sim_run(&sc, out, r), 0);
	*large = 0;
	for (unsigned k = 50; k < 300; k++) /* after the estimate has settled */
		*large += out[k].setup == 1;
	rtci_ctl_policy_destroy(p);
	rtci_ctl_trace_destroy(tr);
}

Test(sim, mpc_alternates_setups_on_a_steady_link_between_them)
{
	struct rtci_ctl_sim_result scaled, fixed;
	unsigned large_scaled, large_fixed;
	run_steady_between_two(0, &scaled, &large_scaled);
	run_steady_between_two(1, &fixed, &large_fixed);
	/* frame 1 is decided before frame 0 has arrived, on the model's floor estimate, and the
	 * device drops it */
	cr_assert_geq(scaled.hit_rate, 0.99, "alternating fits the link: %f", scaled.hit_rate);
	cr_assert_geq(fixed.hit_rate, 0.99, "%f", fixed.hit_rate);
	cr_assert_geq(large_scaled, 75, "the larger setup on %u of 250 frames", large_scaled);
	cr_assert_leq(large_fixed, 10, "the full penalty holds one setup: %u", large_fixed);
	cr_assert_gt(scaled.rt_accuracy, fixed.rt_accuracy + 0.005, "%f vs %f", scaled.rt_accuracy,
		     fixed.rt_accuracy);
}

Test(sim, drop_reports_bring_mpc_down_to_what_a_lost_link_carries)
{
	/* 400 kB/s for 5 s, then 20 kB/s: the device (admitting a frame only when its last byte
	 * leaves in time, as rtci-edge does) drops every frame of the setup it was on and sends
	 * nothing, so without reports the controller never hears of the change */
	struct rtci_ctl_table tab = test_table();
	struct rtci_ctl_model m;
	rtci_ctl_model_default(&m);
	int64_t dur[] = { 5000000000LL, 5000000000LL };
	double bps[] = { 400000, 20000 };
	struct rtci_ctl_trace *tr;
	cr_assert_eq(rtci_ctl_trace_steps(dur, bps, 2, &tr), 0);
	struct rtci_ctl_policy_cfg pc = { .kind = RTCI_CTL_MPC, .estimator = RTCI_CTL_EST_ROBUST,
					  .est_window = 8 };
	struct rtci_ctl_policy *p;
	cr_assert_eq(rtci_ctl_policy_create(&tab, &m, &pc, &p), 0);
	static struct rtci_ctl_frame_out out[100];
	struct rtci_ctl_sim_result r;
	unsigned hits_low[2] = { 0, 0 }, hits_high[2] = { 0, 0 };
	for (int with = 0; with < 2; with++) {
		struct rtci_ctl_sim_cfg sc = { .trace = tr, .policy = p, .model = &m, .frames = 100,
					       .admit = RTCI_CTL_ADMIT_FINISH,
					       .report_ns = with ? 1000000000 : 0,
					       .report_gap_ns = 100000000 };
		cr_assert_eq(rtci_ctl_sim_run(&sc, out, &r), 0);
		for (int k = 0; k < 100; k++) {
			if (k < 50)
				hits_high[with] += out[k].hit;
			else
				hits_low[with] += out[k].hit;
			if (out[k].sent) /* admitted frames leave in time */
				cr_assert(out[k].hit, "frame %d sent and late", k);
		}
	}
	cr_assert_eq(hits_high[0], hits_high[1], "reports change nothing while frames arrive");
	cr_assert_gt(hits_high[0], 45);
	cr_assert_lt(hits_low[0], 5, "without reports: stuck on a setup the link lost (%u)",
		     hits_low[0]);
	cr_assert_gt(hits_low[1], 35, "with reports: down to a setup that fits (%u)", hits_low[1]);
	rtci_ctl_policy_destroy(p);
	rtci_ctl_trace_destroy(tr);
}

Test(sim, oracle_bounds_every_policy_on_random_traces)
{
	struct rtci_ctl_table tab = test_table();
	enum rtci_ctl_kind kinds[] = { RTCI_CTL_MPC, RTCI_CTL_FASTMPC, RTCI_CTL_RATE,
				       RTCI_CTL_BBA, RTCI_CTL_CLIO, RTCI_CTL_FIXED };
	for (int trial = 0; trial < 6; trial++) {
		struct rtci_ctl_trace *tr = random_trace(40);
		struct rtci_ctl_model m;
		rtci_ctl_model_default(&m);
		m.fps = trial % 2 ? 30 : 10;
		m.deadline_ns = trial % 3 ? 200000000 : 120000000;
		struct rtci_ctl_sim_cfg sc = { .trace = tr, .table = &tab, .model = &m,
					       .offset_ns = (int64_t)(urand() * 1e10), .frames = 400,
					       .seed = (uint64_t)trial };
		struct rtci_ctl_sim_result orc;
		cr_assert_eq(rtci_ctl_oracle_run(&sc, NULL, &orc), 0);
		cr_assert_geq(orc.bound + 1e-12, orc.rt_accuracy, "replayed plan above its bound");
		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			unsigned nfix = kinds[k] == RTCI_CTL_FIXED ? tab.n : 1;
			for (unsigned f = 0; f < nfix; f++) {
				struct rtci_ctl_policy_cfg pc = { .kind = kinds[k], .fixed_setup = f,
								  .estimator = RTCI_CTL_EST_ROBUST };
				struct rtci_ctl_policy *p;
				cr_assert_eq(rtci_ctl_policy_create(&tab, &m, &pc, &p), 0);
				sc.policy = p;
				struct rtci_ctl_sim_result r;
				cr_assert_eq(rtci_ctl_sim_run(&sc, NULL, &r), 0);
				cr_assert_leq(r.rt_accuracy, orc.bound + 1e-12,
					      "trial %d kind %d/%u: %.6f > oracle %.6f", trial,
					      (int)kinds[k], f, r.rt_accuracy, orc.bound);
				rtci_ctl_policy_destroy(p);
			}
		}
		rtci_ctl_trace_destroy(tr);
	}
}

/* Every policy rtci-sim and bench/control run (each fixed setup, pruned or not, CLIO, SPINN),
 * with the shipped tables, at the four operating points of bench/control, with the gateway's
 * decisions, on random traces and the repository's traces: none above the oracle's bound. */
#define HARNESS_MAX_POLICIES (6 + RTCI_CTL_MAX_SETUPS)

/* Every policy the harness runs on a table and model: each kind, each fixed setup. */
static unsigned harness_policies(const struct rtci_ctl_table *tab, const struct rtci_ctl_model *m,
				 struct rtci_ctl_policy **out)
{
	enum rtci_ctl_kind kinds[] = { RTCI_CTL_MPC, RTCI_CTL_FASTMPC, RTCI_CTL_RATE, RTCI_CTL_BBA,
				       RTCI_CTL_SPINN, RTCI_CTL_CLIO, RTCI_CTL_FIXED };
	unsigned n = 0;
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		unsigned nfix = kinds[k] == RTCI_CTL_FIXED ? tab->n : 1;
		for (unsigned f = 0; f < nfix; f++) {
			struct rtci_ctl_policy_cfg pc = {
				.kind = kinds[k], .fixed_setup = f, .est_window = 8,
				.estimator = rtci_ctl_policy_estimator(kinds[k]),
			};
			cr_assert_eq(rtci_ctl_policy_create(tab, m, &pc, &out[n]), 0);
			n++;
		}
	}
	return n;
}

static void bound_holds(const struct rtci_ctl_table *tab, const struct rtci_ctl_model *m,
			struct rtci_ctl_policy *const *pol, unsigned np,
			const struct rtci_ctl_trace *tr, int admit)
{
	struct rtci_ctl_sim_cfg sc = {
		.trace = tr, .table = tab, .model = m, .frames = (unsigned)(15 * m->fps),
		.offset_ns = (int64_t)(urand() * (double)rtci_ctl_trace_period_ns(tr)),
		.seed = rtci_mix64((uint64_t)(urand() * 1e9)), .report_ns = 1000000000,
		.report_gap_ns = 100000000, .admit = admit, .decide = RTCI_CTL_DECIDE_GATEWAY,
	};
	struct rtci_ctl_sim_result orc;
	cr_assert_eq(rtci_ctl_oracle_run(&sc, NULL, &orc), 0);
	cr_assert_geq(orc.bound + 1e-12, orc.rt_accuracy, "replayed plan above its bound");
	for (unsigned k = 0; k < np; k++) {
		sc.policy = pol[k];
		struct rtci_ctl_sim_result r;
		cr_assert_eq(rtci_ctl_sim_run(&sc, NULL, &r), 0);
		cr_assert_leq(r.rt_accuracy, orc.bound + 1e-12,
			      "%s on %s, %g fps, %lld ms: policy %u (kind %d): %.6f > bound %.6f",
			      tab->name, rtci_ctl_trace_name(tr), m->fps,
			      (long long)(m->deadline_ns / 1000000), k,
			      (int)rtci_ctl_policy_kind(pol[k]), r.rt_accuracy, orc.bound);
	}
}

/* Every policy rtci-sim and bench/control run (each fixed setup, pruned or not, CLIO, SPINN),
 * with the shipped tables, at the four operating points of bench/control, with the gateway's
 * decisions, on random traces and the repository's traces: none above the oracle's bound.
 * Policies are made once per table and operating point (FastMPC's table is the costly part). */
Test(sim, oracle_bounds_every_policy_of_the_harness, .timeout = 300)
{
	const char *src = getenv("RTCI_SRC");
	cr_assert(src, "RTCI_SRC (the source tree) not set");
	const char *tables[] = { "configs/setups-fmnist.json", "configs/setups-mnv2-224.json",
				 "tests/data/setups-measured-test.json" };
	const char *traces[] = { "traces/ATT-LTE-driving-2016.up", "traces/TMobile-UMTS-driving.up",
				 "traces/norway_bus_12", "traces/norway_tram_52" };
	char path[4096], err[256];
	struct rtci_ctl_trace *tr[6];
	for (size_t i = 0; i < 6; i++) {
		if (i < 4) {
			snprintf(path, sizeof(path), "%s/%s", src, traces[i]);
			cr_assert_eq(rtci_ctl_trace_load_file(path, RTCI_CTL_TRACE_AUTO, &tr[i], err,
							      sizeof(err)),
				     0, "%s", err);
		} else {
			tr[i] = random_trace(40);
		}
	}
	static struct rtci_ctl_policy *pol[HARNESS_MAX_POLICIES];
	for (size_t ti = 0; ti < 3; ti++) {
		struct rtci_ctl_table tab;
		snprintf(path, sizeof(path), "%s/%s", src, tables[ti]);
		cr_assert_eq(rtci_ctl_table_load_any(path, &tab, err, sizeof(err)), 0, "%s", err);
		for (int op = 0; op < 4; op++) {
			struct rtci_ctl_model m;
			rtci_ctl_model_default(&m);
			m.fps = op & 1 ? 30 : 10;
			m.deadline_ns = op & 2 ? 200000000 : 100000000;
			unsigned np = harness_policies(&tab, &m, pol);
			for (size_t i = 0; i < 6; i++)
				bound_holds(&tab, &m, pol, np, tr[i],
					    (int)(i + (size_t)op) % 2 ? RTCI_CTL_ADMIT_FINISH
								      : RTCI_CTL_ADMIT_START);
			for (unsigned k = 0; k < np; k++)
				rtci_ctl_policy_destroy(pol[k]);
		}
	}
	for (size_t i = 0; i < 6; i++)
		rtci_ctl_trace_destroy(tr[i]);
}

/* CLIO credits its own measured per-width accuracy, SPINN runs the measured point chosen. */
Test(sim, measured_clio_and_spinn)
{
	struct rtci_ctl_table tab = test_table(); /* L = 1 setups: 1500·c bytes */
	tab.clio.nwidths = 3;
	tab.clio.widths[0].c = 1, tab.clio.widths[0].accuracy = 0.5, tab.clio.widths[0].bytes = 1000;
	tab.clio.widths[1].c = 2, tab.clio.widths[1].accuracy = 0.6, tab.clio.widths[1].bytes = 2000;
	tab.clio.widths[2].c = 4, tab.clio.widths[2].accuracy = 0.7, tab.clio.widths[2].bytes = 4000;
	struct rtci_ctl_model m;
	rtci_ctl_model_default(&m); /* 10 fps, W = 165 ms */
	struct rtci_ctl_policy *p;
	struct rtci_ctl_policy_cfg pc = { .kind = RTCI_CTL_CLIO };
	cr_assert_eq(rtci_ctl_policy_create(&tab, &m, &pc, &p), 0);
	struct rtci_ctl_frame_out out[50];
	struct rtci_ctl_sim_result r;
	double rates[] = { 1e6, 15000, 25000 }; /* all 4000 bytes; 1500 in 100 ms; 2500 */
	double want[] = { 0.7, 0.5, 0.6 };
	for (int i = 0; i < 3; i++) {
		struct rtci_ctl_trace *tr;
		cr_assert_eq(rtci_ctl_trace_constant(rates[i], 10000000000LL, &tr), 0);
		struct rtci_ctl_sim_cfg sc = { .trace = tr, .policy = p, .model = &m, .frames = 50 };
		cr_assert_eq(rtci_ctl_sim_run(&sc, out, &r), 0);
		for (int k = 0; k < 50; k++)
			cr_assert_float_eq(out[k].credit, want[i], 1e-12, "rate %g frame %d: %g",
					   rates[i], k, out[k].credit);
		rtci_ctl_trace_destroy(tr);
	}
	rtci_ctl_policy_destroy(p);

	/* SPINN: two measured points; the selected one's coverage, exit and rest factor count */
	tab.spinn.npoints = 2;
	tab.spinn.points[0] = (struct rtci_ctl_spinn_point){ 0.5, 0.9, 0.85, 0.5 };
	tab.spinn.points[1] = (struct rtci_ctl_spinn_point){ 0.9, 0.4, 0.99, 0.9 };
	struct rtci_ctl_trace *tr;
	cr_assert_eq(rtci_ctl_trace_constant(1e8, 10000000000LL, &tr), 0);
	for (int pt = 0; pt < 2; pt++) {
		cr_assert_eq(rtci_ctl_table_spinn_select(&tab, pt ? 0.9 : 0.5), 0);
		pc = (struct rtci_ctl_policy_cfg){ .kind = RTCI_CTL_SPINN };
		cr_assert_eq(rtci_ctl_policy_create(&tab, &m, &pc, &p), 0);
		struct rtci_ctl_frame_out fo[400];
		struct rtci_ctl_sim_cfg sc = { .trace = tr, .policy = p, .model = &m, .frames = 400,
					       .seed = 5 };
		cr_assert_eq(rtci_ctl_sim_run(&sc, fo, &r), 0);
		unsigned exits = 0;
		for (int k = 0; k < 400; k++) {
			exits += fo[k].exited;
			double c = fo[k].exited ? tab.spinn.points[pt].exit_accuracy
						: tab.s[fo[k].setup].accuracy * tab.spinn.points[pt].rest_factor;
			cr_assert_float_eq(fo[k].credit, c, 1e-12, "point %d frame %d", pt, k);
		}
		/* 400 draws at coverage 0.9 / 0.4 */
		cr_assert(pt ? exits > 120 && exits < 200 : exits > 340, "point %d: %u exits", pt,
			  exits);
		rtci_ctl_policy_destroy(p);
	}
	rtci_ctl_trace_destroy(tr);
}

/* `frames` frames of one policy (fixed: setup 7) on `tr` as the gateway decides them, with the
 * device's reports and its finish-time admission, as rtci-edge. */
static void run_gateway_sim(const struct rtci_ctl_table *tab, const struct rtci_ctl_model *m,
			    const struct rtci_ctl_trace *tr, enum rtci_ctl_kind kind,
			    struct rtci_ctl_frame_out *out, unsigned frames, struct rtci_ctl_sim_result *r)
{
	struct rtci_ctl_policy_cfg pc = { .kind = kind, .fixed_setup = 7,
					  .estimator = RTCI_CTL_EST_ROBUST };
	struct rtci_ctl_policy *p;
	cr_assert_eq(rtci_ctl_policy_create(tab, m, &pc, &p), 0);
	struct rtci_ctl_sim_cfg sc = { .trace = tr, .policy = p, .model = m, .frames = frames,
				       .report_ns = 1000000000, .report_gap_ns = 100000000,
				       .admit = RTCI_CTL_ADMIT_FINISH,
				       .decide = RTCI_CTL_DECIDE_GATEWAY };
	cr_assert_eq(rtci_ctl_sim_run(&sc, out, r), 0);
	rtci_ctl_policy_destroy(p);
}

/* The local exit (docs/control.md §4): late or missing answers fall back to it, the MPCs choose
 * it on a link that carries nothing when it is more accurate than their fallback setup, and
 * while on it the device probes every 500 ms with the smallest setup; a less accurate one they
 * never choose (they send the fallback, which the device drops unless it makes it); without
 * the block nothing changes. */
Test(sim, local_exit_answers_probes_and_falls_back)
{
	struct rtci_ctl_table tab = test_table(); /* smallest: (1 ch, 1 bit) = 1500 bytes, id 1 */
	/* above the MPCs' fallback, (2 ch, 1 bit) = 3000 bytes at 0.825 */
	tab.local = (struct rtci_ctl_local_exit){ .present = true, .accuracy = 0.83, .ms = 2 };
	struct rtci_ctl_model m;
	rtci_ctl_model_default(&m); /* 10 fps, D 200 ms */
	/* 10 s of a link of 1 kB/s (no frame fits), then 10 s of 1 MB/s */
	int64_t dur[] = { 10000000000LL, 10000000000LL };
	double bps[] = { 1000, 1e6 };
	struct rtci_ctl_trace *tr;
	cr_assert_eq(rtci_ctl_trace_steps(dur, bps, 2, &tr), 0);
	enum rtci_ctl_kind kinds[] = { RTCI_CTL_MPC, RTCI_CTL_FASTMPC, RTCI_CTL_FIXED };
	for (int k = 0; k < 3; k++) {
		static struct rtci_ctl_frame_out out[200];
		struct rtci_ctl_sim_result r;
		run_gateway_sim(&tab, &m, tr, kinds[k], out, 200, &r);
		unsigned locals = 0, probes = 0;
		int64_t last_probe = -1;
		for (int i = 0; i < 200; i++) {
			/* every frame earns its server answer or the local one */
			cr_assert(out[i].hit || out[i].local, "kind %d frame %d unanswered", k, i);
			if (out[i].local)
				cr_assert_float_eq(out[i].credit, 0.83, 1e-12);
			locals += out[i].local;
			if (out[i].probe) {
				cr_assert_eq(out[i].setup, 1, "probes use the smallest setup");
				/* its setup (0.75) is below the exit: the local answer stands */
				cr_assert(out[i].local && !out[i].hit, "kind %d frame %d", k, i);
				if (last_probe >= 0)
					cr_assert_geq(out[i].capture_ns - last_probe, RTCI_CTL_PROBE_NS);
				last_probe = out[i].capture_ns;
				probes++;
			}
		}
		cr_assert_float_eq(r.local_rate, locals / 200.0, 1e-12);
		cr_assert_geq(locals, 95, "kind %d: the outage is answered locally (%u)", k, locals);
		if (kinds[k] == RTCI_CTL_FIXED) {
			cr_assert_eq(probes, 0, "only the MPCs choose the local exit");
		} else {
			/* on the local exit through the outage, one probe per 500 ms, and for a few
			 * probes after it while they replace the outage's samples in the estimator */
			cr_assert(probes >= 15 && probes <= 25, "kind %d: %u probes", k, probes);
			unsigned late_hits = 0;
			for (int i = 150; i < 200; i++)
				late_hits += out[i].hit;
			cr_assert_geq(late_hits, 45, "kind %d: back to uploads on the good link", k);
		}
	}
	/* a local exit below the fallback: the MPCs never choose it, late frames still get it */
	tab.local.accuracy = 0.6;
	for (int k = 0; k < 2; k++) {
		static struct rtci_ctl_frame_out out[200];
		struct rtci_ctl_sim_result r;
		run_gateway_sim(&tab, &m, tr, kinds[k], out, 200, &r);
		unsigned locals = 0;
		for (int i = 0; i < 200; i++) {
			cr_assert(!out[i].probe, "kind %d frame %d: a probe", k, i);
			cr_assert(out[i].hit || out[i].local, "kind %d frame %d unanswered", k, i);
			locals += out[i].local;
		}
		cr_assert_geq(locals, 95, "kind %d: the outage is answered locally (%u)", k, locals);
	}
	/* without the block: no frame is answered locally, the outage earns nothing */
	tab.local.present = false;
	struct rtci_ctl_policy *p;
	struct rtci_ctl_policy_cfg pc = { .kind = RTCI_CTL_MPC, .estimator = RTCI_CTL_EST_ROBUST };
	cr_assert_eq(rtci_ctl_policy_create(&tab, &m, &pc, &p), 0);
	static struct rtci_ctl_frame_out out[200];
	struct rtci_ctl_sim_cfg sc = { .trace = tr, .policy = p, .model = &m, .frames = 200 };
	struct rtci_ctl_sim_result r;
	cr_assert_eq(rtci_ctl_sim_run(&sc, out, &r), 0);
	for (int i = 0; i < 200; i++)
		cr_assert(!out[i].local && !out[i].probe && (i >= 90 || out[i].credit == 0),
			  "frame %d", i);
	cr_assert_eq(r.local_rate, 0);
	rtci_ctl_policy_destroy(p);
	rtci_ctl_trace_destroy(tr);
}

Test(sim, deterministic_for_a_seed)
{
	struct rtci_ctl_table tab = test_table();
	struct rtci_ctl_trace *tr = random_trace(30);
	struct rtci_ctl_model m;
	rtci_ctl_model_default(&m);
	enum rtci_ctl_kind kinds[] = { RTCI_CTL_MPC, RTCI_CTL_SPINN, RTCI_CTL_BBA };
	for (size_t k = 0; k < 3; k++) {
		struct rtci_ctl_policy_cfg pc = { .kind = kinds[k], .estimator = RTCI_CTL_EST_ROBUST };
		struct rtci_ctl_policy *p;
		cr_assert_eq(rtci_ctl_policy_create(&tab, &m, &pc, &p), 0);
		struct rtci_ctl_frame_out a[300], b[300];
		memset(a, 0, sizeof(a));
		memset(b, 0x55, sizeof(b));
		struct rtci_ctl_sim_cfg sc = { .trace = tr, .policy = p, .model = &m,
					       .offset_ns = 1234567890, .frames = 300, .seed = 42 };
		struct rtci_ctl_sim_result ra, rb;
		cr_assert_eq(rtci_ctl_sim_run(&sc, a, &ra), 0);
		cr_assert_eq(rtci_ctl_sim_run(&sc, b, &rb), 0);
		for (int i = 0; i < 300; i++) {
			cr_assert_eq(a[i].setup, b[i].setup);
			cr_assert_eq(a[i].hit, b[i].hit);
			cr_assert_eq(a[i].latency_ms, b[i].latency_ms);
			cr_assert_eq(a[i].exited, b[i].exited);
		}
		cr_assert_eq(ra.rt_accuracy, rb.rt_accuracy);
		if (kinds[k] == RTCI_CTL_SPINN) {
			/* another seed draws other exits */
			sc.seed = 43;
			cr_assert_eq(rtci_ctl_sim_run(&sc, b, &rb), 0);
			int differ = 0;
			for (int i = 0; i < 300; i++)
				differ |= a[i].exited != b[i].exited;
			cr_assert(differ);
		}
		rtci_ctl_policy_destroy(p);
	}
	rtci_ctl_trace_destroy(tr);
}
