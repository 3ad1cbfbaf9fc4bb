/* Decision cost of the exact MPC and of its table-driven fast path, their agreement on the same
 * states, and the controller's memory per device. Prints CSV rows (one per table and frame rate)
 * and a summary line each. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <math.h>

#include "common/clock.h"
#include "common/hash.h"
#include "control/control.h"
#include "control/model_table.h"
#include "bench_util.h"

static uint64_t rng = 99;
static double urand(void)
{
	rng = rtci_mix64(rng);
	return (double)(rng >> 11) * 0x1.0p-53;
}

#define NSTATE 20000
#define REPS 11

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: rtci-bench-control TABLE FPS [TABLE FPS ...]\n");
		return 2;
	}
	printf("table,fps,setups,frontier,device_state_bytes,fast_table_bytes,fast_build_ms,"
	       "exact_median_us,exact_p99_us,fast_median_us,agreement\n");
	for (int a = 1; a + 1 < argc; a += 2) {
		struct rtci_ctl_table tab;
		char err[256];
		if (rtci_ctl_table_load_any(argv[a], &tab, err, sizeof(err))) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		struct rtci_ctl_model m;
		rtci_ctl_model_default(&m);
		m.fps = atof(argv[a + 1]);
		struct rtci_ctl_policy_cfg ce = { .kind = RTCI_CTL_MPC }, cf = { .kind = RTCI_CTL_FASTMPC };
		struct rtci_ctl_policy *pe, *pf;
		double t0 = (double)rtci_mono_ns();
		if (rtci_ctl_policy_create(&tab, &m, &ce, &pe) ||
		    rtci_ctl_policy_create(&tab, &m, &cf, &pf))
			return 1;
		double build_ms = ((double)rtci_mono_ns() - t0) * 1e-6;
		uint8_t fid[RTCI_CTL_MAX_SETUPS];
		unsigned nf = rtci_ctl_policy_frontier(pe, fid, RTCI_CTL_MAX_SETUPS);
		/* states: bandwidth log-uniform 80 kbit/s .. 80 Mbit/s, backlog up to 1.2 x what the
		 * deadline window drains, previous setup any frontier setup */
		static double bw[NSTATE], bl[NSTATE], tex[NSTATE];
		static unsigned prev[NSTATE];
		double W = (m.deadline_ns - m.head_ns - m.prop_ns - m.gw_queue_ns - m.tail_ns) * 1e-9;
		for (int i = 0; i < NSTATE; i++) {
			bw[i] = 1e4 * pow(1000, urand());
			bl[i] = urand() < 0.4 ? 0 : urand() * 1.2 * W * bw[i];
			prev[i] = fid[(unsigned)(urand() * nf)];
		}
		unsigned agree = 0;
		volatile int sink = 0;
		for (int i = 0; i < NSTATE; i++) {
			double s = (double)rtci_mono_ns();
			int x = rtci_ctl_solve_exact(pe, bw[i], bl[i], prev[i], NULL, NULL);
			tex[i] = (double)rtci_mono_ns() - s;
			int y = rtci_ctl_solve_fast(pf, bw[i], bl[i], prev[i]);
			agree += x == y;
			sink += x;
		}
		qsort(tex, NSTATE, sizeof(double), bench_cmp_double);
		double fast[REPS];
		for (int r = 0; r < REPS; r++) {
			double s = (double)rtci_mono_ns();
			for (int i = 0; i < NSTATE; i++)
				sink += rtci_ctl_solve_fast(pf, bw[i], bl[i], prev[i]);
			fast[r] = ((double)rtci_mono_ns() - s) / NSTATE;
		}
		qsort(fast, REPS, sizeof(double), bench_cmp_double);
		printf("%s,%g,%u,%u,%zu,%zu,%.1f,%.3f,%.3f,%.4f,%.4f\n", tab.name, m.fps, tab.n, nf,
		       sizeof(struct rtci_ctl_device), rtci_ctl_policy_table_bytes(pf), build_ms,
		       tex[NSTATE / 2] * 1e-3, tex[NSTATE * 99 / 100] * 1e-3, fast[REPS / 2] * 1e-3,
		       (double)agree / NSTATE);
		fprintf(stderr,
			"decision cost %s @ %g fps: exact median %.2f us (p99 %.2f), fast median %.3f us "
			"(%.0fx faster), same decision in %.1f%% of %d states; state %zu B/device\n",
			tab.name, m.fps, tex[NSTATE / 2] * 1e-3, tex[NSTATE * 99 / 100] * 1e-3,
			fast[REPS / 2] * 1e-3, tex[NSTATE / 2] / fast[REPS / 2],
			100.0 * agree / NSTATE, NSTATE, sizeof(struct rtci_ctl_device));
		if (sink == -1) /* keeps the calls from being optimised away */
			fprintf(stderr, "?\n");
		rtci_ctl_policy_destroy(pe);
		rtci_ctl_policy_destroy(pf);
	}
	return 0;
}
