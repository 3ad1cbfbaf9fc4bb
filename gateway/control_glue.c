/* Per-device rate control in the gateway: setup tables from the model files, one policy per
 * (tenant, model), and the observe -> decide -> rate-switch command step run on every completed
 * frame by the RX lcore that owns the device. */
#include "gateway/gw.h"
#include "gateway/control_glue.h"
#include "control/model_table.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inference/codec.h"

static enum rtci_ctl_kind kind_of(enum rtci_config_policy p)
{
	switch (p) {
	case RTCI_POLICY_FIXED: return RTCI_CTL_FIXED;
	case RTCI_POLICY_RATE: return RTCI_CTL_RATE;
	default: return RTCI_CTL_MPC;
	}
}

int gw_ctl_policies_create(struct gw *gw, struct gw_tenant *tn, char *err, size_t errlen)
{
	tn->policy = calloc(gw->nmodels, sizeof(*tn->policy));
	if (!tn->policy)
		return -ENOMEM;
	enum rtci_config_policy pol =
		tn->cfg->policy == RTCI_POLICY_DEFAULT ? gw->cfg->control.policy : tn->cfg->policy;
	for (uint32_t k = 0; k < gw->nmodels; k++) {
		struct rtci_ctl_model cm;
		rtci_ctl_model_default(&cm);
		cm.fps = tn->cfg->fps;
		cm.deadline_ns = (int64_t)tn->cfg->deadline_ms * 1000000;
		cm.horizon = gw->cfg->control.horizon > 8 ? 8 : gw->cfg->control.horizon;
		cm.head_ns = (int64_t)gw->cfg->control.head_us * 1000;
		cm.prop_ns = (int64_t)gw->cfg->control.rtt_us * 1000;
		cm.min_gain = gw->cfg->control.min_gain_per_10k / 10000.0;
		cm.frag_bytes = RTCI_PROTO_DEFAULT_FRAG;
		/* plan and measure in the bytes the uplink carries, as devices pace them */
		cm.frag_overhead = RTCI_PROTO_FRAG_OVERHEAD;
		cm.frame_overhead = RTCI_PROTO_FRAME_OVERHEAD;
		/* short deadlines: scale the fixed latency terms so a sending window remains */
		int64_t fixed = cm.head_ns + cm.prop_ns + cm.gw_queue_ns + cm.tail_ns;
		if (fixed >= cm.deadline_ns / 2) {
			double f = (double)cm.deadline_ns / 2 / (double)fixed;
			cm.head_ns = (int64_t)(cm.head_ns * f);
			cm.prop_ns = (int64_t)(cm.prop_ns * f);
			cm.gw_queue_ns = (int64_t)(cm.gw_queue_ns * f);
			cm.tail_ns = (int64_t)(cm.tail_ns * f);
		}
		const struct rtci_ctl_table *tab = &gw->models[k].table;
		struct rtci_ctl_policy_cfg pc = {
			.kind = kind_of(pol), .estimator = rtci_ctl_policy_estimator(kind_of(pol)),
			.est_window = RTCI_CTL_EST_WINDOW,
			.fixed_setup = gw->cfg->control.fixed_setup < tab->n ? gw->cfg->control.fixed_setup
									      : 0,
		};
		int rc = rtci_ctl_policy_create(tab, &cm, &pc, &tn->policy[k]);
		if (rc < 0) {
			snprintf(err, errlen, "tenant %u: controller for model %s: %s", tn->id,
				 gw->models[k].name, rtci_strerror(rc));
			return rc;
		}
	}
	return 0;
}

void gw_ctl_policies_destroy(struct gw *gw, struct gw_tenant *tn)
{
	if (tn->policy)
		for (uint32_t k = 0; k < gw->nmodels; k++)
			rtci_ctl_policy_destroy(tn->policy[k]);
	free(tn->policy);
	tn->policy = NULL;
}

void gw_ctl_device_init(struct gw_device *d, const struct gw_tenant *tn)
{
	rtci_ctl_device_init(&d->ctl, tn->policy[d->model]);
}

uint16_t gw_ctl_initial_setup(struct gw_device *d, const struct gw_tenant *tn)
{
	/* decided for the first frame with what the controller knows before any sample */
	const struct rtci_ctl_policy *p = tn->policy[d->model];
	int s = rtci_ctl_decide(&d->ctl, p, 0, 0);
	if (s < 0) { /* no decision: the smallest frontier setup */
		uint8_t smallest = 0;
		rtci_ctl_policy_frontier(p, &smallest, 1);
		s = smallest;
	}
	rtci_ctl_cmd_init(&d->cmd, (unsigned)s, 0);
	return gw_ctl_wire_setup((unsigned)s);
}

_Static_assert(RTCI_CTL_MAX_PLAN == RTCI_PROTO_MAX_PLAN, "the controller's plans are the protocol's");

/* The controller's "answer locally" is setup RTCI_SETUP_LOCAL on the wire. */
uint16_t gw_ctl_wire_setup(unsigned decision)
{
	return decision == RTCI_CTL_LOCAL ? RTCI_SETUP_LOCAL : (uint16_t)decision;
}

/* Decides for the frame at->frame and, when the controller's plan is news to the device, writes
 * the command (control/command.c: one in flight, or again after RTCI_CTL_CMD_INTERVAL_NS). */
static long decide_and_command(struct gw_device *d, const struct gw_tenant *tn,
			       const struct rtci_ctl_cmd_at *at, uint8_t *buf, size_t cap)
{
	const struct rtci_ctl_policy *p = tn->policy[d->model];
	int rc = rtci_ctl_cmd_decide(&d->cmd, &d->ctl, p, at);
	if (rc <= 0)
		return 0;
	const struct rtci_ctl_plan *told = &d->cmd.told;
	struct rtci_proto_command cmd = {
		.kind = told->n > 1 ? RTCI_PROTO_CMD_PLAN : RTCI_PROTO_CMD_RATE_SWITCH,
		.count = told->n, .apply_from_seq = told->from,
	};
	for (unsigned i = 0; i < RTCI_PROTO_MAX_PLAN; i++)
		cmd.plan[i] = gw_ctl_wire_setup(told->setup[i]);
	cmd.new_setup_id = cmd.plan[0];
	struct rtci_proto_frame_info info = {
		.tenant_id = tn->id, .device_id = d->id, .seq = d->cmd.count,
		.setup_id = cmd.plan[0],
	};
	return rtci_proto_encode_command(buf, cap, &info, &cmd, d->key);
}

/* The device's capture time on the controller's clock (0: no offset yet). The clock offset is
 * the smallest gateway-arrival minus device-send time seen, so it holds the one-way delay too: a
 * device time mapped with it lands when news of that instant could first reach the gateway. The
 * controller dates arrivals half a round trip after the device's send, so the capture goes half a
 * round trip earlier; a frame's time on the link (last arrival minus capture minus head) then
 * no longer depends on whether rtt_us matches the real network. */
static int64_t capture_time(const struct gw_device *d, const struct rtci_ctl_policy *p,
			    const struct rtci_proto_hdr *h)
{
	if (!d->offset_set)
		return 0;
	return ((int64_t)h->capture_us + d->clock_offset_us) * 1000 -
	       rtci_ctl_policy_model(p)->prop_ns / 2;
}

long gw_ctl_on_frame(struct gw_device *d, const struct gw_tenant *tn, const struct rtci_proto_hdr *h,
		     uint32_t frame_len, uint64_t first_us, uint64_t complete_us, uint64_t now_us,
		     uint8_t *buf, size_t cap)
{
	const struct rtci_ctl_policy *p = tn->policy[d->model];
	if (!d->seq_base_set) {
		d->seq_base = h->seq;
		d->seq_base_set = true;
		if (!d->cmd.count) /* the device's own start: what its frames say */
			rtci_ctl_cmd_init(&d->cmd, h->setup_id, h->seq);
	}
	uint32_t rel = (uint32_t)(h->seq - d->seq_base);
	int64_t capture_ns = capture_time(d, p, h);
	struct rtci_ctl_obs o = {
		.seq = rel, .bytes = frame_len,
		.first_arrival_ns = (int64_t)first_us * 1000,
		.last_arrival_ns = (int64_t)complete_us * 1000,
		.device_backlog_bytes = h->backlog_bytes,
		.frag_bytes = h->frag_count > 1 ? h->frag_size : frame_len,
		.capture_ns = capture_ns,
	};
	rtci_ctl_observe_frame(&d->ctl, p, &o);
	d->setup = h->setup_id;
	if (h->seq > d->last_frame_seq)
		d->last_frame_seq = h->seq;
	/* A frame under a "local" step is the device's probe: the local step is in force. */
	unsigned seen = h->setup_id;
	if (d->cmd.count && rtci_ctl_plan_setup(&d->cmd.told, h->seq, seen) == RTCI_CTL_LOCAL)
		seen = RTCI_CTL_LOCAL;
	rtci_ctl_cmd_seen(&d->cmd, h->seq, seen);

	/* Decide for the first frame a command sent now can still reach before its capture: at
	 * least one frame on, more when this frame took longer than that to arrive (the frames in
	 * between are already encoded, and the queue the controller expects at a capture time
	 * already past would not be drained). */
	int64_t period_ns = (int64_t)(1e9 / tn->cfg->fps);
	unsigned margin = rtci_ctl_cmd_margin((int64_t)now_us * 1000, capture_ns,
					      rtci_ctl_policy_model(p)->prop_ns / 2, tn->cfg->fps);
	struct rtci_ctl_cmd_at at = {
		.seq = rel + margin, .capture_ns = capture_ns ? capture_ns + margin * period_ns : 0,
		.frame = h->seq + margin, .now_ns = (int64_t)now_us * 1000,
		.max_steps = RTCI_PROTO_MAX_PLAN, .seen = true, .seen_frame = h->seq, .seen_setup = seen,
	};
	return decide_and_command(d, tn, &at, buf, cap);
}

long gw_ctl_on_report(struct gw_device *d, const struct gw_tenant *tn,
		      const struct rtci_proto_hdr *h, const struct rtci_proto_report *r,
		      uint64_t now_us, uint8_t *buf, size_t cap)
{
	if (d->rep_set && h->seq <= d->rep_seq)
		return -RTCI_ERR_AUTH_REPLAYED;
	/* counters are cumulative; the first report, or one from a restarted device (counters
	 * went back), only sets the base */
	uint32_t dropped = d->rep_set && r->frames_dropped >= d->rep_dropped
				   ? r->frames_dropped - d->rep_dropped
				   : 0;
	d->rep_set = true;
	d->rep_seq = h->seq;
	d->rep_dropped = r->frames_dropped;
	const struct rtci_ctl_policy *p = tn->policy[d->model];
	struct rtci_ctl_report cr = {
		.arrival_ns = (int64_t)now_us * 1000, .frames_dropped = dropped,
		.backlog_bytes = r->backlog_bytes, .setup = h->setup_id,
	};
	rtci_ctl_observe_report(&d->ctl, p, &cr);
	if (!dropped)
		return 0; /* nothing new for the decision: frames drive it while they arrive */
	/* the next frame: one period after the report left the device; a command applies from
	 * the next frame the device captures (apply_from at or below its sequence) */
	int64_t period_ns = (int64_t)(1e9 / tn->cfg->fps);
	int64_t capture_ns = d->offset_set ? capture_time(d, p, h) + period_ns : 0;
	struct rtci_ctl_cmd_at at = {
		.seq = d->seq_base_set ? (uint32_t)(d->last_frame_seq - d->seq_base) + 1 : 0,
		.capture_ns = capture_ns, .frame = d->seq_base_set ? d->last_frame_seq + 1 : 0,
		/* one setup: the device's next frame number is not known here, so a plan's steps
		 * would meet other frames than planned */
		.now_ns = (int64_t)now_us * 1000, .max_steps = 1,
	};
	return decide_and_command(d, tn, &at, buf, cap);
}

/* arrival - capture without overflow: a device clock beyond 2^61 us (73,000 years) is absurd
 * anyway, and clamping it keeps every difference below in int64 range. */
static int64_t clock_offset(uint64_t capture_us, uint64_t arrival_us)
{
	const uint64_t lim = (uint64_t)1 << 61;
	uint64_t c = capture_us > lim ? lim : capture_us, a = arrival_us > lim ? lim : arrival_us;
	return (int64_t)a - (int64_t)c;
}

enum gw_clock gw_clock_map(struct gw_device *d, uint64_t capture_us, uint64_t arrival_us,
			   uint32_t deadline_us, uint64_t *capture_gw)
{
	int64_t off = clock_offset(capture_us, arrival_us);
	if (!d->offset_set) {
		d->clock_offset_us = off;
		d->offset_set = true;
	}
	/* > 0: older than the learned clock says; < 0: newer (a shorter path, or a clock jump) */
	int64_t skew = off - d->clock_offset_us;
	if (skew > (int64_t)deadline_us || skew < -(int64_t)deadline_us) {
		if (++d->clock_off_runs < GW_CLOCK_RELEARN)
			return skew > 0 ? GW_CLOCK_LATE : GW_CLOCK_AHEAD;
		d->clock_offset_us = off; /* the clock stepped: judge from here on */
		skew = 0;
	}
	d->clock_off_runs = 0;
	if (skew < 0) { /* less delay than ever seen: the smallest offset wins */
		d->clock_offset_us = off;
		skew = 0;
	}
	*capture_gw = (uint64_t)skew > arrival_us ? 0 : arrival_us - (uint64_t)skew;
	return GW_CLOCK_OK;
}

void gw_clock_hello(struct gw_device *d, uint64_t send_us, uint64_t arrival_us, uint32_t deadline_us)
{
	int64_t off = clock_offset(send_us, arrival_us);
	if (!d->offset_set) {
		d->clock_offset_us = off;
		d->offset_set = true;
	} else if (off < d->clock_offset_us && d->clock_offset_us - off <= (int64_t)deadline_us) {
		d->clock_offset_us = off;
	}
}
