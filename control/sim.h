/* The trace-driven simulator and the offline oracle (sim.c): one device on one trace under one
 * policy (docs/control.md §4, §7).
 *
 * Units: time in nanoseconds (int64_t), sizes in bytes, bandwidth in bytes per second (double). */
#ifndef RTCI_CONTROL_SIM_H
#define RTCI_CONTROL_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/rtci_error.h"
#include "control/policy.h"
#include "control/trace.h"

/* ---------------------------------------------------------------------------------------------
 * Simulator core: one device on one trace under one policy. */

struct rtci_ctl_frame_out {
	int64_t capture_ns;
	double link_bps;   /* trace capacity over the frame period starting at capture */
	uint8_t setup;     /* RTCI_CTL_SKIP when skipped (or answered by the SPINN exit) */
	uint8_t exited;    /* SPINN: answered on the device */
	uint8_t sent;      /* bytes went on the uplink */
	uint8_t hit;       /* server result within the deadline */
	uint8_t local;     /* answered by the local exit (no server result in time) */
	uint8_t probe;     /* a probe uploaded while on the local exit */
	double bytes;      /* bytes put on the uplink (link bytes: the model's overheads too) */
	double latency_ms; /* -1 when nothing came back */
	double credit;     /* accuracy credited (0 on a miss) */
};

struct rtci_ctl_sim_result {
	unsigned frames;
	double rt_accuracy;       /* mean credit over captured frames */
	double hit_rate;
	double delivered_accuracy;/* mean accuracy over frames delivered in time */
	double switches_per_min;
	double bytes_sent;
	double bound;             /* oracle only: DP upper bound on rt_accuracy */
	double local_rate;        /* share of frames answered by the local exit */
};

struct rtci_ctl_sim_cfg {
	const struct rtci_ctl_trace *trace;
	const struct rtci_ctl_policy *policy; /* NULL: run the oracle */
	const struct rtci_ctl_table *table;   /* setups (oracle) */
	const struct rtci_ctl_model *model;
	int64_t offset_ns;  /* start position in the trace */
	unsigned frames;
	uint64_t seed;      /* SPINN exit draws */
	/* Device reports (rtci_ctl_observe_report): one every report_ns (0: none), and one as soon
	 * as a frame is dropped when report_gap_ns has passed since the previous report. */
	int64_t report_ns, report_gap_ns;
	/* How the device admits a frame to its uplink queue: RTCI_CTL_ADMIT_START (it starts
	 * leaving within the send window; it may still finish late) or RTCI_CTL_ADMIT_FINISH (its
	 * last byte leaves within the window, as rtci-edge's pacer admits). */
	int admit;
	/* When the controller decides: RTCI_CTL_DECIDE_CAPTURE, for every frame at its capture with
	 * what arrived half the propagation before; or RTCI_CTL_DECIDE_GATEWAY, as the gateway does:
	 * when a frame or a drop report arrives, for a frame a few ahead, through the commands of
	 * rtci_ctl_cmd_decide (plans, one command in flight), applied by the device as rtci-edge
	 * does. */
	int decide;
	unsigned plan_steps; /* gateway decisions: steps a command may carry (0: RTCI_CTL_MAX_PLAN) */
};
enum { RTCI_CTL_ADMIT_START = 0, RTCI_CTL_ADMIT_FINISH = 1 };
enum { RTCI_CTL_DECIDE_CAPTURE = 0, RTCI_CTL_DECIDE_GATEWAY = 1 };

/* frames_out may be NULL or hold cfg->frames entries. Allocates scratch internally. */
int rtci_ctl_sim_run(const struct rtci_ctl_sim_cfg *cfg, struct rtci_ctl_frame_out *frames_out,
		     struct rtci_ctl_sim_result *res);
/* Oracle: offline DP over frames with the uplink excess (binned at 1 ms, rounded down, so the
 * value is an upper bound) as state and every undominated setup as an action; res->bound is the
 * larger of that and the same DP for SPINN with this run's exit draws, so it bounds every policy
 * of the simulator on the run (docs/control.md §4). The uplink plan is replayed through the
 * simulator. */
int rtci_ctl_oracle_run(const struct rtci_ctl_sim_cfg *cfg, struct rtci_ctl_frame_out *frames_out,
			struct rtci_ctl_sim_result *res);


#endif
