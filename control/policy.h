/* The per-device controller: bandwidth estimators (estimator.c), the uplink latency model, the
 * MPC with its fast path and the baseline policies (mpc.c), and the commands that carry its
 * decisions to a device (command.c). What the gateway and the devices use (docs/control.md).
 *
 * Units: time in nanoseconds (int64_t), sizes in bytes, bandwidth in bytes per second (double). */
#ifndef RTCI_CONTROL_POLICY_H
#define RTCI_CONTROL_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/rtci_error.h"
#include "control/table.h"

/* ---------------------------------------------------------------------------------------------
 * Bandwidth estimators, fed with per-frame throughput samples (bytes/s). */

#define RTCI_CTL_EST_WINDOW 8

enum rtci_ctl_est_kind {
	RTCI_CTL_EST_HARMONIC = 0, /* harmonic mean of the last K samples */
	RTCI_CTL_EST_ROBUST,       /* harmonic mean / (1 + max recent relative prediction error) */
	RTCI_CTL_EST_EWMA,         /* exponentially weighted moving average */
};

struct rtci_ctl_est {
	float sample[RTCI_CTL_EST_WINDOW];
	float error[RTCI_CTL_EST_WINDOW];
	float ewma;
	uint8_t n, head, k;
	uint8_t pad_;
};

void rtci_ctl_est_init(struct rtci_ctl_est *e, unsigned k);
void rtci_ctl_est_add(struct rtci_ctl_est *e, double bytes_per_s);
/* Prediction in bytes/s; 0 when there is no sample yet. */
double rtci_ctl_est_harmonic(const struct rtci_ctl_est *e);
double rtci_ctl_est_robust(const struct rtci_ctl_est *e);
/* The largest relative prediction error in the window, capped at RTCI_CTL_ROBUST_MAX_ERROR. */
double rtci_ctl_est_max_error(const struct rtci_ctl_est *e);
double rtci_ctl_est_ewma(const struct rtci_ctl_est *e);
double rtci_ctl_est_get(const struct rtci_ctl_est *e, enum rtci_ctl_est_kind kind);
#define RTCI_CTL_EWMA_ALPHA 0.3
/* The robust estimate is the harmonic mean / (1 + max recent error) with the error capped here:
 * a throughput sample of a one- or two-fragment frame is mostly timing noise and can sit 100x
 * below the link rate; uncapped, one such sample sends the device to its smallest setup.
 * rtci-sim on traces/ (10 fps, D = 200 ms): the cap raises MPC by 0.6 points on the Fashion-MNIST
 * table and 0.3 points on the mnv2-224 table (docs/control.md). */
#define RTCI_CTL_ROBUST_MAX_ERROR 1.0
/* ---------------------------------------------------------------------------------------------
 * The model and the policies. */

struct rtci_ctl_model {
	double fps;
	int64_t deadline_ns;   /* D: capture -> result back at the device */
	int64_t head_ns;       /* head + encode time on the device */
	int64_t prop_ns;       /* propagation, uplink + result downlink */
	int64_t gw_queue_ns;   /* gateway queueing (batcher wait) */
	int64_t tail_ns;       /* tail inference time */
	double switch_penalty; /* objective cost of one setup change, in accuracy units; the
				* MPC's decisions use between half and all of it, by the
				* recent prediction error, unless fixed_switch_penalty is set */
	int fixed_switch_penalty;
	double min_gain;       /* a larger setup is a candidate only if it is at least this much
				* more accurate than every smaller candidate */
	unsigned horizon;      /* H, 1..8 */
	uint32_t frag_bytes;   /* payload bytes per UDP fragment */
	/* Link bytes beyond the payload: per fragment (protocol header, IP and UDP headers) and
	 * per frame (the authentication tag). Traces give link capacity; with these a frame of b
	 * payload bytes takes rtci_ctl_link_bytes() of it. 0 and 0: payload only. */
	uint32_t frag_overhead, frame_overhead;
	double bw_floor;       /* prediction used before any sample, bytes/s */
};
/* Defaults: 10 fps, D 200 ms, head 5 ms, prop 20 ms, gateway 2 ms, tail 8 ms, penalty 0.02,
 * min gain 0.002, H 5, fragments of 1400 bytes and no overhead, 125 kB/s before the first
 * sample. */
void rtci_ctl_model_default(struct rtci_ctl_model *m);
/* Bytes a frame of `payload` bytes occupies on the link: its fragments' payload and overhead
 * plus the frame's. */
double rtci_ctl_link_bytes(const struct rtci_ctl_model *m, double payload);

enum rtci_ctl_kind {
	RTCI_CTL_MPC = 0,  /* exact MPC solve per decision */
	RTCI_CTL_FASTMPC,  /* table lookup over binned state */
	RTCI_CTL_RATE,     /* best setup fitting predicted bandwidth x frame period */
	RTCI_CTL_BBA,      /* buffer-based on the uplink backlog */
	RTCI_CTL_FIXED,    /* one setup always */
	RTCI_CTL_SPINN,    /* device early exit; uploads choose like RATE */
	RTCI_CTL_CLIO,     /* progressive slices; the device sends what fits */
};

struct rtci_ctl_policy_cfg {
	enum rtci_ctl_kind kind;
	enum rtci_ctl_est_kind estimator;
	unsigned est_window; /* K, 1..RTCI_CTL_EST_WINDOW */
	unsigned fixed_setup;
};

/* The estimator a policy is defined with (docs/control.md): the robust estimate for the MPCs,
 * the plain harmonic mean for the rate rule and SPINN's uploads, which the baselines they stand
 * for (rate-based ABR, SPINN) use; policies without an estimate get the robust one. rtci-sim and
 * the gateway both take it from here, so a policy name means the same controller in both. */
enum rtci_ctl_est_kind rtci_ctl_policy_estimator(enum rtci_ctl_kind kind);

/* Shared, read-only after creation: one per (table, model, policy). Creating a FASTMPC policy
 * precomputes its decision table with the exact solver. */
struct rtci_ctl_policy;
int rtci_ctl_policy_create(const struct rtci_ctl_table *table, const struct rtci_ctl_model *m,
			   const struct rtci_ctl_policy_cfg *cfg, struct rtci_ctl_policy **out);
void rtci_ctl_policy_destroy(struct rtci_ctl_policy *p);
const struct rtci_ctl_table *rtci_ctl_policy_table(const struct rtci_ctl_policy *p);
const struct rtci_ctl_model *rtci_ctl_policy_model(const struct rtci_ctl_policy *p);
enum rtci_ctl_kind rtci_ctl_policy_kind(const struct rtci_ctl_policy *p);
/* Setups not dominated by another (smaller and at least as accurate), ascending size. */
unsigned rtci_ctl_policy_frontier(const struct rtci_ctl_policy *p, uint8_t *ids, unsigned cap);
/* The setup sent when no setup is predicted to make its deadline: the most accurate frontier
 * setup within twice the smallest one's link bytes and within one datagram. */
unsigned rtci_ctl_policy_fallback(const struct rtci_ctl_policy *p);
size_t rtci_ctl_policy_table_bytes(const struct rtci_ctl_policy *p);

/* Per-device controller state: a plain struct so a gateway can keep it in its device table
 * without allocating. Fields are private to control/. */
#define RTCI_CTL_PENDING 16
#define RTCI_CTL_PEND_MAX_BYTES 0xffffff
struct rtci_ctl_device {
	struct rtci_ctl_est est;
	int64_t anchor_ns;        /* device time of the last backlog report */
	uint32_t anchor_backlog;  /* bytes queued at the device then */
	uint32_t last_seq;        /* newest observed frame */
	uint32_t switch_seq;      /* frame of the last setup change */
	int64_t last_done_ns;     /* device time the last observed frame's last byte left */
	uint16_t prev_setup;      /* last setup sent (RTCI_CTL_SKIP: none yet) */
	uint8_t npend, pend_head;
	uint8_t observed_any, pad_[3];
	float bw_cap;             /* bound from a drop report until the next frame (0: none) */
	struct {
		int64_t ready_ns; /* when the frame joins the device queue */
		uint32_t seq;
		uint32_t bytes : 24; /* link bytes, at most RTCI_CTL_PEND_MAX_BYTES */
		uint32_t setup : 8;
	} pend[RTCI_CTL_PENDING];  /* decided, not yet observed */
};

/* What the gateway sees of one completed frame. Times are on the gateway's clock. */
struct rtci_ctl_obs {
	uint32_t seq;                  /* device frame sequence */
	uint32_t bytes;                /* payload bytes of the frame */
	int64_t first_arrival_ns;      /* first fragment fully received */
	int64_t last_arrival_ns;       /* last fragment received */
	uint32_t device_backlog_bytes; /* device send queue when the frame's last byte left */
	uint32_t frag_bytes;           /* bytes carried by the first fragment (0: model's default) */
	int64_t capture_ns;            /* device capture time on the gateway's clock (0: unknown) */
};

void rtci_ctl_device_init(struct rtci_ctl_device *d, const struct rtci_ctl_policy *p);
/* Feeds one frame: a throughput sample and the device's backlog report. */
void rtci_ctl_observe_frame(struct rtci_ctl_device *d, const struct rtci_ctl_policy *p,
			    const struct rtci_ctl_obs *obs);
/* Setup id for the frame `seq` captured at capture_ns, and records it as pending so later
 * backlog estimates include it. Never RTCI_CTL_SKIP: where a plan skips, the smallest setup is
 * sent and the device drops the frame if it cannot leave in time. Allocation-free. */
int rtci_ctl_decide(struct rtci_ctl_device *d, const struct rtci_ctl_policy *p, uint32_t seq,
		    int64_t capture_ns);
/* rtci_ctl_decide in two steps, for a caller that may not pass every choice on (the gateway
 * sends the MPC's whole plan, and holds a new command back while the last one is in flight).
 * Choose: the setup for frame `seq` and, when plan (room for RTCI_CTL_MAX_PLAN) and plan_len
 * are given, the policy's plan for frames seq, seq + 1, ... (the MPC's horizon; one step for the
 * other policies; never skip).
 * Commit: the setups frames seq .. seq + n - 1 will really use, so that backlog estimates and
 * the switch penalty follow the device and not choices it never heard of. A frame committed
 * again replaces its entry and those after it; frames between the last committed one and `seq`
 * count with the setup the device holds. */
int rtci_ctl_choose(struct rtci_ctl_device *d, const struct rtci_ctl_policy *p, uint32_t seq,
		    int64_t capture_ns, uint8_t *plan, unsigned *plan_len);
void rtci_ctl_commit(struct rtci_ctl_device *d, const struct rtci_ctl_policy *p, uint32_t seq,
		     int64_t capture_ns, const uint8_t *setups, unsigned n);
/* ---------------------------------------------------------------------------------------------
 * Commands: what the gateway tells a device, and when (control/command.c). The gateway decides
 * when a frame or a drop report arrives, for the first frame a command leaving then reaches
 * before its capture, and sends the controller's plan for the frames from there (the MPC's
 * horizon; one setup for the other policies); the device encodes each frame with its step and
 * holds the last. rtci-sim runs the same code. */

#define RTCI_CTL_MAX_PLAN 8                   /* steps a command carries (protocol: 8) */
#define RTCI_CTL_CMD_INTERVAL_NS 200000000    /* a command not seen in force: again after this */
#define RTCI_CTL_CMD_MAX_MARGIN 64            /* frames ahead a decision may name */

/* What a device was told: frame from + i uses setup[i], later frames the last step. A rate
 * switch is a plan of one step. The gateway keeps one per device, and so do devices. */
struct rtci_ctl_plan {
	uint64_t from;
	uint16_t setup[RTCI_CTL_MAX_PLAN];
	uint8_t n;         /* steps (0: nothing told) */
};
/* The setup the plan gives `frame` (fallback: no plan, or a frame before it). */
unsigned rtci_ctl_plan_setup(const struct rtci_ctl_plan *pl, uint64_t frame, unsigned fallback);

struct rtci_ctl_cmd {
	struct rtci_ctl_plan told; /* the last command's plan */
	uint64_t count;    /* commands issued (0: none yet) */
	int64_t last_ns;   /* when the last one was issued */
	bool pending;      /* the last command not yet seen in force */
};

/* The device was told `setup` from frame `frame` on (a hello's answer), no command yet. */
void rtci_ctl_cmd_init(struct rtci_ctl_cmd *c, unsigned setup, uint64_t frame);
/* A frame arrived on `setup`: the last command is in force once a frame it covers does. */
void rtci_ctl_cmd_seen(struct rtci_ctl_cmd *c, uint64_t frame, unsigned setup);
/* Frames after the one captured at capture_ns to the first that a command leaving at now_ns
 * reaches (one_way_ns later) before its capture: 1 .. RTCI_CTL_CMD_MAX_MARGIN. */
unsigned rtci_ctl_cmd_margin(int64_t now_ns, int64_t capture_ns, int64_t one_way_ns, double fps);

enum { RTCI_CTL_CMD_NONE = 0, RTCI_CTL_CMD_NEW = 1, RTCI_CTL_CMD_RESEND = 2 };
struct rtci_ctl_cmd_at {
	uint32_t seq;       /* the controller's sequence of the frame decided for */
	int64_t capture_ns; /* its capture time on the controller's clock (0: unknown) */
	uint64_t frame;     /* its device frame sequence */
	int64_t now_ns;
	unsigned max_steps; /* plan steps a command may carry (1: a rate switch) */
	bool seen;          /* a frame arrived with this decision: */
	uint64_t seen_frame;
	unsigned seen_setup;
};
/* Asks the controller for its plan from at->frame and commits what the device will do. NEW: c
 * holds a new command (c->told) to send, because the plan differs from
 * what the device was told for those frames and no command is in flight (or the last one is
 * overdue); RESEND: the last command again (a frame it covers arrived on another setup after
 * the interval); NONE; or a negative error. */
int rtci_ctl_cmd_decide(struct rtci_ctl_cmd *c, struct rtci_ctl_device *d,
			const struct rtci_ctl_policy *p, const struct rtci_ctl_cmd_at *at);

/* What a device reports about its own sending (protocol REPORT), as deltas since its previous
 * report. Times on the gateway's clock. */
struct rtci_ctl_report {
	int64_t arrival_ns;      /* the report arrived */
	uint32_t frames_dropped; /* frames the device dropped since its previous report */
	uint32_t backlog_bytes;  /* device send queue when the report left */
	uint16_t setup;          /* the setup the device was on when it left */
};
/* Feeds one report. A device drops a frame itself when its queue cannot get it out by the send
 * deadline, so a drop says the link is below (backlog + the setup's bytes) over the send
 * window; without reports the gateway hears nothing while the device drops everything (no
 * frame, no sample). The prediction is held under RTCI_CTL_DROP_BACKOFF x that bound until the
 * next frame is observed; the report's backlog becomes the backlog anchor. */
#define RTCI_CTL_DROP_BACKOFF 0.5
void rtci_ctl_observe_report(struct rtci_ctl_device *d, const struct rtci_ctl_policy *p,
			     const struct rtci_ctl_report *r);
/* Current predicted bandwidth and estimated device backlog at now_ns (what decide uses). */
double rtci_ctl_predicted_bw(const struct rtci_ctl_device *d, const struct rtci_ctl_policy *p);
double rtci_ctl_backlog_estimate(const struct rtci_ctl_device *d, const struct rtci_ctl_policy *p,
				 int64_t now_ns, double bw);

/* Pure decision functions (the gateway uses decide; tests and benchmarks use these). */
/* Exact MPC: best plan over H frames; returns the first action, plan/value optional. */
int rtci_ctl_solve_exact(const struct rtci_ctl_policy *p, double bw, double backlog_bytes,
			 unsigned prev, uint8_t *plan, double *value);
/* Table lookup; same inputs. */
int rtci_ctl_solve_fast(const struct rtci_ctl_policy *p, double bw, double backlog_bytes,
			unsigned prev);
/* Objective of a given plan under the model (frames that miss are still sent and count 0;
 * a frame that cannot start before its send deadline is dropped by the device); -INFINITY when
 * the plan ends with a longer queue than it started with (terminal constraint). */
double rtci_ctl_plan_value(const struct rtci_ctl_policy *p, double bw, double backlog_bytes,
			   unsigned prev, const uint8_t *plan, unsigned h);
/* Latency of one frame (capture -> result) given backlog and constant bandwidth. */
int64_t rtci_ctl_frame_latency(const struct rtci_ctl_model *m, double backlog_bytes,
			       double bytes, double bw);

#endif
