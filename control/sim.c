/* Trace-driven simulation of one device's frame stream under one policy, and the offline oracle.
 * The model is docs/control.md's: frames are captured every 1/fps, ready after the head time,
 * sent FIFO on an uplink whose capacity follows the trace; the gateway learns about a frame when
 * its last byte arrives (half the propagation later) and its decision reaches the device half the
 * propagation after that. */
#include "common/hash.h"
#include "control/sim.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct sent {
	int64_t ready, finish, first;
	double bytes;   /* on the link (the model's overheads included) */
	double payload;
	uint32_t seq;
	uint8_t setup; /* RTCI_CTL_SKIP: not queued */
	uint8_t queued, transmitted;
	uint8_t probe; /* uploaded while the device is on its local exit */
};

static int64_t capture_time(const struct rtci_ctl_sim_cfg *cfg, unsigned k)
{
	return cfg->offset_ns + llround((double)k * 1e9 / cfg->model->fps);
}

/* credit: all frames'; local: the part the local exit answered (locals frames). */
static void finish_result(struct rtci_ctl_sim_result *res, unsigned frames, double credit,
			  double local, unsigned locals, unsigned hits, unsigned switches,
			  double bytes, double fps)
{
	res->frames = frames;
	res->rt_accuracy = frames ? credit / frames : 0;
	res->hit_rate = frames ? (double)hits / frames : 0;
	res->delivered_accuracy = hits ? (credit - local) / hits : 0;
	res->local_rate = frames ? (double)locals / frames : 0;
	double minutes = frames / fps / 60.0;
	res->switches_per_min = minutes > 0 ? switches / minutes : 0;
	res->bytes_sent = bytes;
	res->bound = 0;
}

/* SPINN's exit branch answers frame k itself (a seeded draw: confidence above the threshold on
 * a share `coverage` of frames). The simulator and the oracle draw the same. */
static int spinn_exits(const struct rtci_ctl_sim_cfg *cfg, const struct rtci_ctl_table *tab,
		       unsigned k)
{
	uint64_t u = rtci_mix64(cfg->seed ^ rtci_mix64((uint64_t)k + 1));
	return (double)(u >> 11) * 0x1.0p-53 < tab->spinn.coverage;
}

/* CLIO's credit for a frame of which b link bytes arrived in time: the accuracy of the widest
 * prefix that fully arrived, by CLIO's own per-width models when measured, else by the setup
 * table at CLIO's level; -1 when not even the narrowest did. */
static double clio_credit(const struct rtci_ctl_table *tab, const struct rtci_ctl_model *m,
			  double b)
{
	double acc = -1;
	for (unsigned i = 0; i < tab->clio.nwidths; i++)
		if (rtci_ctl_link_bytes(m, tab->clio.widths[i].bytes) <= b + 1e-6 &&
		    tab->clio.widths[i].accuracy > acc)
			acc = tab->clio.widths[i].accuracy;
	for (unsigned i = 0; !tab->clio.nwidths && i < tab->n; i++)
		if (tab->s[i].L == tab->clio.L && rtci_ctl_link_bytes(m, tab->s[i].bytes) <= b + 1e-6 &&
		    tab->s[i].accuracy > acc)
			acc = tab->s[i].accuracy;
	return acc;
}

/* Device reports: generated in device time order, delivered to the controller half the
 * propagation later, interleaved with frame observations by arrival time. */
#define SIM_REPORTS 64
struct reports {
	int64_t last_t;      /* device time of the previous report */
	unsigned drop_cur;   /* first frame not yet counted for a report */
	unsigned done_cur;   /* frames before this left the link before the previous report */
	uint16_t setup;      /* the device's setup (newest frame captured by the report) */
	unsigned head, n;
	struct rtci_ctl_report q[SIM_REPORTS];
};

/* The report the device sends at device time t; frames [0, upto) have been decided. */
static void report_make(struct reports *rp, const struct rtci_ctl_sim_cfg *cfg,
			const struct sent *fr, unsigned upto, int64_t t, int64_t half)
{
	struct rtci_ctl_report r = { .arrival_ns = t + half, .setup = rp->setup };
	while (rp->drop_cur < upto && fr[rp->drop_cur].ready <= t) {
		const struct sent *f = &fr[rp->drop_cur];
		if (f->queued && !f->transmitted)
			r.frames_dropped++;
		if (f->setup != RTCI_CTL_SKIP)
			r.setup = rp->setup = f->setup;
		rp->drop_cur++;
	}
	while (rp->done_cur < upto && (!fr[rp->done_cur].transmitted || fr[rp->done_cur].finish <= t))
		rp->done_cur++;
	double backlog = 0;
	for (unsigned j = rp->done_cur; j < rp->drop_cur; j++) {
		const struct sent *f = &fr[j];
		if (!f->transmitted || f->finish <= t)
			continue;
		/* what is left of it: all of it when it has not started yet */
		double left = rtci_ctl_trace_bytes(cfg->trace, t, f->finish);
		backlog += left < f->bytes ? left : f->bytes;
	}
	r.backlog_bytes = backlog > UINT32_MAX ? UINT32_MAX : (uint32_t)backlog;
	if (rp->n == SIM_REPORTS) { /* undelivered for 64 reports: the oldest is stale */
		rp->head = (rp->head + 1) % SIM_REPORTS;
		rp->n--;
	}
	rp->q[(rp->head + rp->n++) % SIM_REPORTS] = r;
	rp->last_t = t;
}

/* Periodic reports due up to device time t. */
static void report_periodic(struct reports *rp, const struct rtci_ctl_sim_cfg *cfg,
			    const struct sent *fr, unsigned upto, int64_t t, int64_t half)
{
	while (cfg->report_ns > 0 && rp->last_t + cfg->report_ns <= t)
		report_make(rp, cfg, fr, upto, rp->last_t + cfg->report_ns, half);
}

/* Decisions as the gateway makes them (RTCI_CTL_DECIDE_GATEWAY): on arrivals, through the
 * shared command logic, and the device's side of the commands (edge/device.c). */
struct gw_path {
	struct rtci_ctl_cmd cmd;   /* the gateway's */
	long last_frame;           /* newest frame observed (-1: none) */
	struct rtci_ctl_plan told; /* the device's: the last command it received */
	uint16_t setup;            /* ... and the setup of its newest frame */
};

/* The device's setup for frame k: its plan's step, else the setup it is on. Commands reach the
 * device before the capture they are delivered for, so frames before k never change. */
static unsigned gw_frame_setup(struct gw_path *g, uint64_t k)
{
	g->setup = (uint16_t)rtci_ctl_plan_setup(&g->told, k, g->setup);
	return g->setup;
}

/* Hands the controller every report that arrived by `until`; with the gateway's decisions, one
 * that counts drops brings a decision for the frame after the newest seen. */
static int report_deliver(struct reports *rp, struct rtci_ctl_device *dev,
			  const struct rtci_ctl_policy *pol, int64_t until, struct gw_path *g,
			  const struct rtci_ctl_model *m)
{
	while (rp->n && rp->q[rp->head].arrival_ns <= until) {
		const struct rtci_ctl_report *r = &rp->q[rp->head];
		rtci_ctl_observe_report(dev, pol, r);
		if (g && r->frames_dropped) {
			int64_t half = m->prop_ns / 2;
			uint64_t f = (uint64_t)(g->last_frame + 1);
			struct rtci_ctl_cmd_at at = {
				.seq = (uint32_t)f, .frame = f, .now_ns = r->arrival_ns, .max_steps = 1,
				.capture_ns = r->arrival_ns - half + llround(1e9 / m->fps),
			};
			int rc = rtci_ctl_cmd_decide(&g->cmd, dev, pol, &at);
			if (rc < 0)
				return rc;
			if (rc == RTCI_CTL_CMD_NEW)
				g->told = g->cmd.told;
		}
		rp->head = (rp->head + 1) % SIM_REPORTS;
		rp->n--;
	}
	return 0;
}

/* Frame s arrived at the gateway (its last byte half the propagation after it left): the
 * gateway decides for the first frame a command leaving now reaches before its capture. */
static int gw_on_frame(struct gw_path *g, struct rtci_ctl_device *dev,
		       const struct rtci_ctl_policy *pol, const struct rtci_ctl_sim_cfg *cfg,
		       const struct sent *s)
{
	const struct rtci_ctl_model *m = cfg->model;
	int64_t half = m->prop_ns / 2, now = s->finish + half, cap = capture_time(cfg, s->seq);
	if ((long)s->seq > g->last_frame)
		g->last_frame = s->seq;
	/* a probe is the local exit in force, not a step to setup 0 */
	unsigned seen = s->probe ? RTCI_CTL_LOCAL : s->setup;
	rtci_ctl_cmd_seen(&g->cmd, s->seq, seen);
	unsigned margin = rtci_ctl_cmd_margin(now, cap, half, m->fps);
	struct rtci_ctl_cmd_at at = {
		.seq = s->seq + margin, .capture_ns = capture_time(cfg, s->seq + margin),
		.frame = s->seq + margin, .now_ns = now,
		.max_steps = cfg->plan_steps ? cfg->plan_steps : RTCI_CTL_MAX_PLAN,
		.seen = true, .seen_frame = s->seq, .seen_setup = seen,
	};
	int rc = rtci_ctl_cmd_decide(&g->cmd, dev, pol, &at);
	if (rc == RTCI_CTL_CMD_NEW)
		g->told = g->cmd.told;
	return rc < 0 ? rc : 0;
}

/* The setup of a probe: the smallest, so that it gets through where any upload can (setup 0 is
 * not the smallest in either shipped table: mnv2-224's is 25 kB, 16 times its smallest). */
static unsigned probe_setup(const struct rtci_ctl_table *tab)
{
	unsigned best = 0;
	for (unsigned i = 1; i < tab->n; i++)
		if (tab->s[i].bytes < tab->s[best].bytes)
			best = i;
	return best;
}

/* The device's side of a decision: counts a switch when it changes, and on RTCI_CTL_LOCAL
 * uploads a probe (setup `probe`) on entering and then every RTCI_CTL_PROBE_NS, else nothing
 * (RTCI_CTL_SKIP). Returns the setup the frame is sent with. */
static int local_mode(int s, unsigned probe, int64_t cap, int *in_local, int64_t *last_probe,
		      unsigned *switches, int *last_setup)
{
	if (*last_setup >= 0 && *last_setup != s)
		(*switches)++;
	*last_setup = s;
	if (s != RTCI_CTL_LOCAL) {
		*in_local = 0;
		return s;
	}
	int due = !*in_local || cap - *last_probe >= RTCI_CTL_PROBE_NS;
	*in_local = 1;
	if (!due)
		return RTCI_CTL_SKIP;
	*last_probe = cap;
	return (int)probe;
}

/* plan != NULL: replay those decisions (the oracle) instead of asking a policy. */
/* One simulated device: its model, policy and controller, its frames so far, the link and the
 * gateway's view, and the running totals. */
struct simdev {
	const struct rtci_ctl_sim_cfg *cfg;
	const uint8_t *plan;    /* a fixed plan (the oracle's replay) instead of the policy */
	const struct rtci_ctl_model *m;
	const struct rtci_ctl_table *tab;
	const struct rtci_ctl_policy *pol;
	enum rtci_ctl_kind kind;
	struct rtci_ctl_device dev;
	struct sent *fr;
	int64_t head, post, W, half, T;
	double frag;
	int64_t link_free;
	unsigned next_obs;      /* first frame not yet delivered to the controller */
	double credit, bytes_total, local_credit;
	unsigned hits, switches, locals;
	int last_setup;
	int local_on;           /* the device's local exit answers what the server does not */
	int in_local;
	int64_t last_probe;
	unsigned probe_id;
	struct reports *rp;
	struct gw_path gwp, *g;
};

static void simdev_free(struct simdev *S)
{
	free(S->fr);
	free(S->rp);
}

static int simdev_init(struct simdev *S, const struct rtci_ctl_sim_cfg *cfg, const uint8_t *plan)
{
	const struct rtci_ctl_model *m = cfg->model;
	memset(S, 0, sizeof(*S));
	S->cfg = cfg;
	S->plan = plan;
	S->m = m;
	S->tab = cfg->policy ? rtci_ctl_policy_table(cfg->policy) : cfg->table;
	S->pol = cfg->policy;
	if (!S->tab || !cfg->trace || !m || !cfg->frames)
		return -EINVAL;
	S->kind = RTCI_CTL_MPC;
	if (S->pol) {
		rtci_ctl_device_init(&S->dev, S->pol);
		/* the kind decides how the device transmits (SPINN exit, CLIO slices) */
		S->kind = rtci_ctl_policy_kind(S->pol);
	}
	S->fr = calloc(cfg->frames, sizeof(*S->fr));
	if (!S->fr)
		return -ENOMEM;
	S->head = m->head_ns;
	S->post = m->prop_ns + m->gw_queue_ns + m->tail_ns;
	S->W = m->deadline_ns - S->head - S->post;
	S->half = m->prop_ns / 2;
	S->T = llround(1e9 / m->fps);
	S->frag = m->frag_bytes;
	S->link_free = INT64_MIN;
	S->last_setup = -1;
	/* SPINN has its own exit */
	S->local_on = S->tab->local.present && !(S->kind == RTCI_CTL_SPINN && !plan) &&
		      S->head + llround(S->tab->local.ms * 1e6) <= m->deadline_ns;
	S->probe_id = probe_setup(S->tab);
	if (S->pol && !plan && cfg->report_ns > 0) {
		S->rp = calloc(1, sizeof(*S->rp));
		if (!S->rp)
			return -ENOMEM;
		S->rp->last_t = cfg->offset_ns;
	}
	if (S->pol && !plan && cfg->decide == RTCI_CTL_DECIDE_GATEWAY) {
		/* the hello's answer: a decision before any sample, for the first frame */
		S->g = &S->gwp;
		S->g->last_frame = -1;
		int s0 = rtci_ctl_decide(&S->dev, S->pol, 0, capture_time(cfg, 0));
		if (s0 < 0)
			return s0;
		rtci_ctl_cmd_init(&S->g->cmd, (unsigned)s0, 0);
		S->g->setup = (uint16_t)s0;
	}
	return 0;
}

/* What the gateway has seen by the time its decision for frame k (captured at cap) must leave
 * for the device: frames through the link and the device's reports. */
static int observe_until(struct simdev *S, unsigned k, int64_t cap)
{
	const struct rtci_ctl_sim_cfg *cfg = S->cfg;
	int rc;
	if (S->rp)
		report_periodic(S->rp, cfg, S->fr, k, cap, S->half);
	if (!S->pol)
		return 0;
	for (; S->next_obs < k; S->next_obs++) {
		struct sent *s = &S->fr[S->next_obs];
		if (!s->transmitted)
			continue; /* dropped by the device: the gateway never hears of it */
		if (s->finish + S->half > cap - S->half)
			break;
		if (S->rp && (rc = report_deliver(S->rp, &S->dev, S->pol, s->finish + S->half, S->g,
						  S->m)) < 0)
			return rc;
		double behind = 0;
		for (unsigned j = S->next_obs + 1; j < k && S->fr[j].ready <= s->finish; j++)
			if (S->fr[j].queued)
				behind += S->fr[j].bytes;
		struct rtci_ctl_obs ob = {
			.seq = s->seq,
			.bytes = (uint32_t)s->payload,
			.first_arrival_ns = s->first + S->half,
			.last_arrival_ns = s->finish + S->half,
			.device_backlog_bytes = (uint32_t)behind,
			.frag_bytes = S->m->frag_bytes,
			.capture_ns = capture_time(cfg, s->seq),
		};
		rtci_ctl_observe_frame(&S->dev, S->pol, &ob);
		if (S->g && (rc = gw_on_frame(S->g, &S->dev, S->pol, cfg, s)) < 0)
			return rc;
	}
	if (S->rp && (rc = report_deliver(S->rp, &S->dev, S->pol, cap - S->half, S->g, S->m)) < 0)
		return rc;
	return 0;
}

/* CLIO: progressive slices until the send deadline or the next frame; a prefix counts once its
 * link bytes (the model's overheads included, as for every setup) are through. */
static void send_clio(struct simdev *S, struct sent *f, int64_t cap, int64_t start,
		      struct rtci_ctl_frame_out *o)
{
	const struct rtci_ctl_table *tab = S->tab;
	int64_t stop = f->ready + (S->W < S->T ? S->W : S->T);
	if (tab->clio.nwidths)
		f->bytes = rtci_ctl_link_bytes(S->m, tab->clio.widths[tab->clio.nwidths - 1].bytes);
	double can = start < stop ? rtci_ctl_trace_bytes(S->cfg->trace, start, stop) : 0;
	double b = can < f->bytes ? can : f->bytes;
	if (!(b > 0)) {
		f->queued = 0;
		return;
	}
	f->bytes = f->payload = b;
	f->transmitted = 1;
	f->first = rtci_ctl_trace_finish(S->cfg->trace, start, b < S->frag ? b : S->frag);
	f->finish = rtci_ctl_trace_finish(S->cfg->trace, start, b);
	if (f->finish > stop)
		f->finish = stop;
	S->link_free = f->finish;
	o->sent = 1;
	o->bytes = b;
	double acc = clio_credit(tab, S->m, b);
	if (acc >= 0) {
		o->hit = 1;
		o->credit = acc;
		o->latency_ms = (double)(f->finish + S->post - cap) * 1e-6;
	}
}

/* Frame k on setup s: admitted to the uplink queue (or dropped as stale there), sent, and
 * credited when its result is back by the deadline. */
static void send_frame(struct simdev *S, unsigned k, int s, int64_t cap,
		       struct rtci_ctl_frame_out *o)
{
	const struct rtci_ctl_sim_cfg *cfg = S->cfg;
	const struct rtci_ctl_model *m = S->m;
	const struct rtci_ctl_setup *st = &S->tab->s[s];
	struct sent *f = &S->fr[k];
	f->setup = (uint8_t)s;
	f->queued = 1;
	f->payload = st->bytes;
	f->bytes = rtci_ctl_link_bytes(m, st->bytes);
	int64_t ready = f->ready, start = ready > S->link_free ? ready : S->link_free;
	if (S->kind == RTCI_CTL_CLIO && !S->plan) {
		send_clio(S, f, cap, start, o);
		return;
	}
	if (cfg->admit == RTCI_CTL_ADMIT_FINISH
		    ? rtci_ctl_trace_finish(cfg->trace, start, f->bytes) > ready + S->W
		    : start - ready >= S->W) {
		f->queued = 1; /* queued, then dropped as stale: never sent */
		struct reports *rp = S->rp;
		if (rp && ready - rp->last_t >= cfg->report_gap_ns) {
			report_periodic(rp, cfg, S->fr, k + 1, ready, S->half);
			if (ready > rp->last_t)
				report_make(rp, cfg, S->fr, k + 1, ready, S->half);
		}
		return;
	}
	f->transmitted = 1;
	double first = st->bytes <= S->frag ? f->bytes : S->frag + m->frag_overhead;
	f->first = rtci_ctl_trace_finish(cfg->trace, start, first);
	f->finish = rtci_ctl_trace_finish(cfg->trace, start, f->bytes);
	S->link_free = f->finish;
	int64_t lat = f->finish + S->post - cap;
	o->sent = 1;
	o->bytes = f->bytes;
	o->latency_ms = (double)lat * 1e-6;
	if (lat <= m->deadline_ns) {
		o->hit = 1;
		o->credit = st->accuracy *
			    (S->kind == RTCI_CTL_SPINN && !S->plan ? S->tab->spinn.rest_factor : 1.0);
		if (o->credit > 1)
			o->credit = 1;
	}
}

/* One frame, from capture to its credit; 0 or a negative code. */
static int sim_frame(struct simdev *S, unsigned k, struct rtci_ctl_frame_out *o)
{
	const struct rtci_ctl_sim_cfg *cfg = S->cfg;
	const struct rtci_ctl_table *tab = S->tab;
	const int spinn = S->kind == RTCI_CTL_SPINN && !S->plan;
	int64_t cap = capture_time(cfg, k);
	/* SPINN runs its exit branch before it can decide to upload */
	int64_t ready = cap + S->head + (spinn ? llround(tab->spinn.exit_ms * 1e6) : 0);
	struct sent *f = &S->fr[k];
	f->seq = k;
	f->ready = ready;
	f->setup = RTCI_CTL_SKIP;
	*o = (struct rtci_ctl_frame_out){ .capture_ns = cap, .setup = RTCI_CTL_SKIP, .latency_ms = -1 };
	o->link_bps = rtci_ctl_trace_bytes(cfg->trace, cap, cap + S->T) * 1e9 / (double)S->T;
	int rc = observe_until(S, k, cap);
	if (rc < 0)
		return rc;
	if (spinn && spinn_exits(cfg, tab, k)) {
		int64_t lat = S->head + llround(tab->spinn.exit_ms * 1e6);
		o->exited = 1;
		o->latency_ms = (double)lat * 1e-6;
		if (lat <= S->m->deadline_ns) {
			o->hit = 1;
			o->credit = tab->spinn.exit_accuracy;
		}
		return 0;
	}
	int s = S->plan ? S->plan[k]
		: S->g	? (int)gw_frame_setup(S->g, k)
			: rtci_ctl_decide(&S->dev, S->pol, k, cap);
	if (s >= 0 && s != RTCI_CTL_SKIP)
		s = local_mode(s, S->probe_id, cap, &S->in_local, &S->last_probe, &S->switches,
			       &S->last_setup);
	if (s < 0 || (s != RTCI_CTL_SKIP && (unsigned)s >= tab->n))
		return s < 0 ? s : -EINVAL;
	o->setup = (uint8_t)s;
	o->probe = f->probe = S->in_local && s != RTCI_CTL_SKIP;
	if (s != RTCI_CTL_SKIP)
		send_frame(S, k, s, cap, o);
	return 0;
}

static int sim_core(const struct rtci_ctl_sim_cfg *cfg, const uint8_t *plan,
		    struct rtci_ctl_frame_out *out, struct rtci_ctl_sim_result *res)
{
	struct simdev S;
	int rc = simdev_init(&S, cfg, plan);
	for (unsigned k = 0; rc == 0 && k < cfg->frames; k++) {
		struct rtci_ctl_frame_out o;
		if ((rc = sim_frame(&S, k, &o)) < 0)
			break;
		/* a probe only measures the link where the local exit is at least as accurate as
		 * the probe's setup: the device keeps the local answer (edge/device.h) */
		if (S.local_on && o.probe && o.hit &&
		    !(S.tab->s[o.setup].accuracy > S.tab->local.accuracy))
			o.hit = 0;
		if (S.local_on && !o.hit && !o.exited) {
			o.credit = S.tab->local.accuracy;
			o.local = 1;
			S.local_credit += o.credit;
			S.locals++;
		}
		S.credit += o.credit;
		S.hits += o.hit;
		S.bytes_total += o.bytes;
		if (out)
			out[k] = o;
	}
	if (rc == 0)
		finish_result(res, cfg->frames, S.credit, S.local_credit, S.locals, S.hits, S.switches,
			      S.bytes_total, cfg->model->fps);
	simdev_free(&S);
	return rc;
}

int rtci_ctl_sim_run(const struct rtci_ctl_sim_cfg *cfg, struct rtci_ctl_frame_out *out,
		     struct rtci_ctl_sim_result *res)
{
	if (!cfg || !res || !cfg->policy)
		return -EINVAL;
	return sim_core(cfg, NULL, out, res);
}

/* ------------------------------------------------------------------------------------------ */
/* Oracle: DP over frames; state = uplink excess (queue end minus the frame's ready time) in
 * 1 ms bins, rounded down. Rounding down only makes starts earlier, so every plan any policy can
 * realise is matched or beaten: the value is an upper bound. Actions: skip, or an on-time send
 * of a setup on the table's exact Pareto frontier (a late send is never better than a skip, and
 * a dominated setup, no smaller and no more accurate than another, never better than that
 * one: fewer bytes never delay a later frame). docs/control.md §4 states the bound's scope. */

#define ORACLE_BIN_NS 1000000
#define ORACLE_MAX_SENDS (RTCI_CTL_MAX_SETUPS + RTCI_CTL_CLIO_MAX_WIDTHS)

/* What a DP pass may do per frame. */
struct oracle_space {
	unsigned n; /* sends, ascending link bytes, strictly ascending credit */
	double lb[ORACLE_MAX_SENDS], credit[ORACLE_MAX_SENDS];
	uint8_t id[ORACLE_MAX_SENDS];
	int64_t delay; /* ready time after head time (SPINN's exit branch) */
	int spinn;     /* frames SPINN's exit answers: credit exit_credit, nothing sent */
	double exit_credit;
	double skip_credit; /* a frame without an on-time send: the local exit's answer */
};

/* The Pareto frontier by link bytes of the table's setups, credit scaled by `factor`, and with
 * `clio` of CLIO's measured widths too (they are sends of other credit; id RTCI_CTL_SKIP, so
 * only a bound pass may use them). */
static void oracle_sends(const struct rtci_ctl_sim_cfg *cfg, double factor, int clio,
			 struct oracle_space *sp)
{
	const struct rtci_ctl_table *tab = cfg->table;
	uint8_t ids[ORACLE_MAX_SENDS];
	double lb[ORACLE_MAX_SENDS], acc[ORACLE_MAX_SENDS];
	unsigned n = 0, nw = clio ? tab->clio.nwidths : 0;
	for (unsigned i = 0; i < tab->n + nw; i++) {
		int w = i >= tab->n;
		double b = rtci_ctl_link_bytes(cfg->model, w ? tab->clio.widths[i - tab->n].bytes
							     : tab->s[i].bytes);
		double a = w ? tab->clio.widths[i - tab->n].accuracy : tab->s[i].accuracy * factor;
		unsigned j = n++;
		/* insertion by (bytes ascending, credit descending) */
		while (j > 0 && (lb[j - 1] > b || (lb[j - 1] == b && acc[j - 1] < a))) {
			ids[j] = ids[j - 1];
			lb[j] = lb[j - 1];
			acc[j] = acc[j - 1];
			j--;
		}
		ids[j] = w ? RTCI_CTL_SKIP : (uint8_t)i;
		lb[j] = b;
		acc[j] = a > 1 ? 1 : a;
	}
	sp->n = 0;
	for (unsigned i = 0; i < n; i++) {
		if (sp->n && acc[i] <= sp->credit[sp->n - 1])
			continue;
		sp->lb[sp->n] = lb[i];
		sp->credit[sp->n] = acc[i];
		sp->id[sp->n++] = ids[i];
	}
}

/* One DP pass. round_up = 0: excess rounded down, value is an upper bound on every policy.
 * round_up = 1: rounded up, so the plan is feasible as computed (real starts are no later). */
static int oracle_dp(const struct rtci_ctl_sim_cfg *cfg, const struct oracle_space *sp,
		     int round_up, uint8_t *plan, double *value)
{
	const struct rtci_ctl_model *m = cfg->model;
	const int64_t head = m->head_ns + sp->delay;
	const int64_t post = m->prop_ns + m->gw_queue_ns + m->tail_ns;
	const int64_t W = m->deadline_ns - head - post;
	const int64_t Tmin = llround(1e9 / m->fps) - 1;
	const int64_t up = round_up ? ORACLE_BIN_NS - 1 : 0;
	int64_t emax = W - Tmin > 0 ? W - Tmin : 0;
	size_t NB = (size_t)(emax / ORACLE_BIN_NS) + 2;
	size_t N = cfg->frames;
	if (NB > 65535)
		return -EINVAL;
	int rc = 0;
	double *val = malloc(NB * sizeof(double)), *nval = malloc(NB * sizeof(double));
	uint16_t *pbin = malloc(N * NB * sizeof(uint16_t));
	uint8_t *pset = malloc(N * NB);
	if (!val || !nval || !pbin || !pset) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t b = 0; b < NB; b++)
		val[b] = -INFINITY;
	val[0] = 0;
	for (size_t k = 0; k < N; k++) {
		int64_t r = capture_time(cfg, (unsigned)k) + head;
		int64_t rn = capture_time(cfg, (unsigned)k + 1) + head;
		int64_t dl = r + W;
		double cdl = rtci_ctl_trace_cum(cfg->trace, dl);
		/* a frame the exit answers earns its credit and sends nothing */
		int exited = sp->spinn && spinn_exits(cfg, cfg->table, (unsigned)k);
		double skip_credit = exited ? sp->exit_credit : sp->skip_credit;
		for (size_t b = 0; b < NB; b++)
			nval[b] = -INFINITY;
		uint16_t *pb = pbin + k * NB;
		uint8_t *ps = pset + k * NB;
		for (size_t b = 0; b < NB; b++) {
			if (val[b] == -INFINITY)
				continue;
			int64_t start = r + (int64_t)b * ORACLE_BIN_NS;
			/* skip */
			int64_t e2 = start - rn;
			size_t nb = e2 > 0 ? (size_t)((e2 + up) / ORACLE_BIN_NS) : 0;
			if (nb >= NB)
				nb = NB - 1;
			if (val[b] + skip_credit > nval[nb]) {
				nval[nb] = val[b] + skip_credit;
				pb[nb] = (uint16_t)b;
				ps[nb] = RTCI_CTL_SKIP;
			}
			if (exited || start >= dl)
				continue;
			double room = cdl - rtci_ctl_trace_cum(cfg->trace, start);
			for (unsigned i = 0; i < sp->n; i++) {
				if (sp->lb[i] > room)
					break;
				int64_t fin = rtci_ctl_trace_finish(cfg->trace, start, sp->lb[i]);
				if (fin > dl)
					break;
				e2 = fin - rn;
				nb = e2 > 0 ? (size_t)((e2 + up) / ORACLE_BIN_NS) : 0;
				if (nb >= NB)
					nb = NB - 1;
				double v = val[b] + sp->credit[i];
				if (v > nval[nb]) {
					nval[nb] = v;
					pb[nb] = (uint16_t)b;
					ps[nb] = sp->id[i];
				}
			}
		}
		double *tmp = val;
		val = nval;
		nval = tmp;
	}
	size_t bb = 0;
	for (size_t b = 1; b < NB; b++)
		if (val[b] > val[bb])
			bb = b;
	*value = val[bb];
	if (plan)
		for (size_t k = N; k-- > 0;) {
			plan[k] = pset[k * NB + bb];
			bb = pbin[k * NB + bb];
		}
out:
	free(val);
	free(nval);
	free(pbin);
	free(pset);
	return rc;
}

/* The bound for SPINN with this run's exit draws: exited frames earn the exit's credit (when it
 * makes the deadline), the others are ready exit_ms later and earn rest_factor x accuracy. */
static int oracle_spinn_bound(const struct rtci_ctl_sim_cfg *cfg, double *value)
{
	const struct rtci_ctl_table *tab = cfg->table;
	const struct rtci_ctl_model *m = cfg->model;
	struct oracle_space sp;
	oracle_sends(cfg, tab->spinn.rest_factor, 0, &sp);
	sp.delay = llround(tab->spinn.exit_ms * 1e6);
	sp.spinn = 1;
	sp.exit_credit = m->head_ns + sp.delay <= m->deadline_ns ? tab->spinn.exit_accuracy : 0;
	if (m->deadline_ns - m->head_ns - sp.delay - m->prop_ns - m->gw_queue_ns - m->tail_ns <= 0)
		sp.n = 0; /* no upload can make it: only the exit's answers count */
	return oracle_dp(cfg, &sp, 0, NULL, value);
}

int rtci_ctl_oracle_run(const struct rtci_ctl_sim_cfg *cfg, struct rtci_ctl_frame_out *out,
			struct rtci_ctl_sim_result *res)
{
	if (!cfg || !res || !cfg->table || !cfg->trace || !cfg->model || !cfg->frames ||
	    !cfg->table->n || cfg->table->n > RTCI_CTL_MAX_SETUPS)
		return -EINVAL;
	/* the bound's sends include CLIO's widths; the replayed plan uses setups only */
	struct oracle_space sp = { 0 }, bsp = { 0 };
	oracle_sends(cfg, 1.0, 0, &sp);
	oracle_sends(cfg, 1.0, 1, &bsp);
	const struct rtci_ctl_model *m = cfg->model;
	if (cfg->table->local.present &&
	    m->head_ns + llround(cfg->table->local.ms * 1e6) <= m->deadline_ns)
		sp.skip_credit = bsp.skip_credit = cfg->table->local.accuracy;
	uint8_t *plan = malloc(cfg->frames);
	if (!plan)
		return -ENOMEM;
	double bound, feasible, spinn = 0;
	int rc = oracle_dp(cfg, &bsp, 0, NULL, &bound);
	if (!rc)
		rc = oracle_spinn_bound(cfg, &spinn);
	if (!rc)
		rc = oracle_dp(cfg, &sp, 1, plan, &feasible);
	if (!rc)
		rc = sim_core(cfg, plan, out, res);
	if (!rc)
		res->bound = (bound > spinn ? bound : spinn) / (double)cfg->frames;
	free(plan);
	return rc;
}
