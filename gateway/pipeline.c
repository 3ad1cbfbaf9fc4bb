/* The gateway's lcore loops.
 *
 * RX lcore (one per RX queue): rx burst -> rtci_proto_decode -> tenant/device lookup -> hello
 * answers / fragments into this queue's reassembly table with the device key -> completed,
 * authenticated frame -> replay window -> rate control (may send a command) -> tenant frames/s
 * bucket -> codec decode into a preallocated slot (zero-filled to the model's partition
 * channels) -> batcher. The same lcore polls its batcher and puts released batches on the
 * shared work ring, and sends the results that workers hand back on its done ring (worker.c
 * runs the workers). */
#include "gateway/gw.h"
#include "common/clock.h"
#include "gateway/admit.h"
#include "gateway/cluster.h"
#include "gateway/control_glue.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_lcore.h>
#include <rte_ring.h>

#include "dataplane/reassembly.h"
#include "inference/codec.h"

#define BURST 32
#define HOUSEKEEPING_US 100000
#define DRAIN_LIMIT_US 5000000
#define ADMISSION_SCAN_US 1000000
#define GW_BATCHES_PER_WORKER 3

static void drop(struct gw_rx *rx, int tenant_slot, enum gw_drop reason)
{
	struct gw *gw = rx->gw;
	int s = tenant_slot < 0 ? rx->s_unknown_drop[reason] : gw->tseries[tenant_slot].drop[reason];
	rtci_metrics_add(gw->metrics, rx->mslot, s, 1);
}

static void slot_free(struct gw_rx *rx, struct gw_frame *f)
{
	rx->free[rx->nfree++] = f;
}

/* An answer without inference (deadline, overload, decode error) to an authenticated frame. */
static void send_status(struct gw_rx *rx, const struct gw_frame *f, uint8_t status)
{
	uint8_t buf[GW_RESULT_MAX];
	struct rtci_proto_frame_info info = { .tenant_id = f->tenant_id, .device_id = f->device_id,
					      .seq = f->seq, .setup_id = f->setup };
	struct rtci_proto_result res = { .status = status };
	long n = rtci_proto_encode_result(buf, sizeof(buf), &info, &res, f->key);
	if (n > 0)
		rtci_port_send_peer(rx->gw->port, rx->queue, &f->peer, buf, (size_t)n);
}

/* The same for a frame that has no slot (dropped before one was taken). */
static void send_status_to(struct gw_rx *rx, uint32_t tenant_id, const struct gw_device *dev,
			   const struct rtci_proto_hdr *h, uint8_t status)
{
	uint8_t buf[GW_RESULT_MAX];
	struct rtci_proto_frame_info info = { .tenant_id = tenant_id, .device_id = dev->id,
					      .seq = h->seq, .setup_id = h->setup_id };
	struct rtci_proto_result res = { .status = status };
	long n = rtci_proto_encode_result(buf, sizeof(buf), &info, &res, dev->key);
	if (n > 0)
		rtci_port_send_peer(rx->gw->port, rx->queue, &dev->peer, buf, (size_t)n);
}

static void on_batcher_drop(void *user, void *frame, uint32_t tenant, enum rtci_batcher_drop reason)
{
	struct gw_rx *rx = user;
	struct gw_frame *f = frame;
	rtci_metrics_add(rx->gw->metrics, rx->mslot, rx->gw->tseries[tenant].batch_drop[reason], 1);
	send_status(rx, f, reason == RTCI_BATCHER_DROP_DEADLINE ? RTCI_PROTO_RES_DROPPED_DEADLINE
								 : RTCI_PROTO_RES_DROPPED_OVERLOAD);
	slot_free(rx, f);
}

static int reasm_quota(void *ctx, uint32_t tenant_id, struct rtci_reasm_quota *q)
{
	struct gw_rx *rx = ctx;
	const struct gw_tenant *tn = gw_table_tenant(rx->table, tenant_id);
	if (!tn)
		return -1;
	q->max_frames = UINT32_MAX;
	q->max_bytes = tn->cfg->quota.reassembly_bytes / rx->gw->nrx;
	return 0;
}

/* An unfinished frame left the reassembly table: counted for its tenant like any ingest drop. */
static void reasm_discarded(void *ctx, uint32_t tenant_id, uint32_t device_id,
			    enum rtci_reasm_discard why)
{
	struct gw_rx *rx = ctx;
	const struct gw_tenant *tn = gw_table_tenant(rx->table, tenant_id);
	(void)device_id;
	drop(rx, tn ? (int)tn->slot : -1, why == RTCI_REASM_EXPIRED ? GW_DROP_EXPIRED : GW_DROP_EVICTED);
}

static void apply_weights(struct gw_rx *rx)
{
	for (uint32_t i = 0; i < rx->table->ntenants; i++)
		rtci_batcher_set_tenant(rx->batcher, rx->table->tenants[i].slot,
					rx->table->tenants[i].cfg->weight, 0);
}

static void handle_hello(struct gw_rx *rx, const struct rtci_port_dgram *dg,
			 const struct rtci_proto_msg *msg, struct gw_tenant *tn, struct gw_device *dev,
			 const uint8_t key[32], uint64_t now)
{
	struct gw *gw = rx->gw;
	if (rtci_auth_verify_msg(key, msg) < 0) {
		drop(rx, (int)tn->slot, GW_DROP_BAD_MAC);
		return;
	}
	struct rtci_proto_hello_ack ack = { .status = RTCI_PROTO_HELLO_ACCEPTED,
					    .max_frag_size = RTCI_PROTO_MAX_FRAG };
	/* a device that asked learns the largest frame reassembly takes (others see too_big) */
	if (msg->u.hello.ack_ext)
		ack.max_frame_len = gw->max_frame;
	const struct gw_tenant_series *ts = &gw->tseries[tn->slot];
	uint32_t model = msg->u.hello.model_id;
	uint32_t home_ip = 0;
	uint16_t home_port = 0;
	int home = gw->cluster ? gw_cluster_home(gw, tn->id, msg->hdr.device_id,
						 atomic_load(&gw->draining), &home_ip, &home_port)
			       : 1;
	if (model < gw->nmodels && home == 0) {
		/* another gateway is the device's home: the device says hello there */
		ack.status = RTCI_PROTO_HELLO_REDIRECT;
		ack.redirect_ipv4 = home_ip;
		ack.redirect_port = home_port;
		rtci_metrics_add(gw->metrics, rx->mslot, ts->redirects, 1);
	} else if (model < gw->nmodels && home < 0 && atomic_load(&gw->draining)) {
		ack.status = RTCI_PROTO_HELLO_BUSY; /* draining and nobody else can take it */
		ack.retry_after_ms = (uint16_t)gw->cfg->admission.retry_after_ms;
		rtci_metrics_add(gw->metrics, rx->mslot, ts->refused[GW_REFUSE_BUSY], 1);
	} else if (model >= gw->nmodels) {
		ack.status = RTCI_PROTO_HELLO_REJECTED_MODEL;
		drop(rx, (int)tn->slot, GW_DROP_NO_HELLO_MODEL);
		rtci_metrics_add(gw->metrics, rx->mslot, ts->refused[GW_REFUSE_MODEL], 1);
	} else {
		if (!dev)
			dev = gw_table_activate(gw, rx->table, tn, msg->hdr.device_id, key, rx->index);
		if (dev)
			dev->last_us = now;
		if (dev && dev->model != model) {
			/* another model costs the workers differently: admitted again below */
			gw_admit_release(gw, tn, dev);
			dev->model = (uint16_t)model;
			gw_ctl_device_init(dev, tn);
		}
		if (!dev) {
			ack.status = RTCI_PROTO_HELLO_REJECTED_QUOTA;
			drop(rx, (int)tn->slot, GW_DROP_QUOTA_DEVICES);
			rtci_metrics_add(gw->metrics, rx->mslot, ts->refused[GW_REFUSE_QUOTA], 1);
		} else if (!gw_admit(rx, tn, dev, now)) {
			ack.status = RTCI_PROTO_HELLO_BUSY;
			ack.retry_after_ms = (uint16_t)gw->cfg->admission.retry_after_ms;
			rtci_metrics_add(gw->metrics, rx->mslot, ts->refused[GW_REFUSE_BUSY], 1);
		} else {
			dev->moved_ipv4 = 0; /* its home again */
			/* hellos have no replay window: one replayed from elsewhere must not move an
			 * active device's reply address (its authenticated frames do) */
			if (!dev->peer_set) {
				dev->peer = dg->from;
				dev->peer_set = true;
			}
			/* clock offset: gateway arrival minus device send time; frames refine it */
			gw_clock_hello(dev, msg->hdr.capture_us, now, tn->deadline_us);
			ack.initial_setup_id = gw_ctl_initial_setup(dev, tn);
			ack.min_frame_seq = dev->replay.started ? dev->replay.top + 1 : 0;
			/* report sequences start from the same base: a restarted device must not
			 * reuse one (a device dropping every frame reports more often than it sends) */
			if (dev->rep_set && dev->rep_seq + 1 > ack.min_frame_seq)
				ack.min_frame_seq = dev->rep_seq + 1;
			rtci_metrics_add(gw->metrics, rx->mslot, gw->tseries[tn->slot].hellos, 1);
			/* the controller budgets the tenant's frame period and deadline: a device
			 * running at another pace is planned for wrongly, so operators can see it */
			if (msg->u.hello.fps_milli != tn->cfg->fps * 1000u ||
			    msg->u.hello.deadline_us != tn->cfg->deadline_ms * 1000u)
				rtci_metrics_add(gw->metrics, rx->mslot,
						 gw->tseries[tn->slot].hellos_off_pace, 1);
		}
	}
	uint8_t buf[RTCI_PROTO_HDR_LEN + RTCI_PROTO_HELLO_ACK_EXT_LEN + RTCI_PROTO_TAG_LEN];
	struct rtci_proto_frame_info info = { .tenant_id = tn->id, .device_id = msg->hdr.device_id,
					      .seq = msg->hdr.seq,
					      .setup_id = ack.initial_setup_id };
	long n = rtci_proto_encode_hello_ack(buf, sizeof(buf), &info, &ack, key);
	if (n > 0)
		rtci_port_send_peer(gw->port, rx->queue, &dg->from, buf, (size_t)n);
}

/* A device's sending report: its drops reach the controller (a device dropping every frame
 * sends nothing else). Reports from a device not active yet are verified and ignored. */
static void handle_report(struct gw_rx *rx, const struct rtci_proto_msg *msg, struct gw_tenant *tn,
			  struct gw_device *dev, const uint8_t key[32], uint64_t now)
{
	struct gw *gw = rx->gw;
	if (rtci_auth_verify_msg(key, msg) < 0) {
		drop(rx, (int)tn->slot, GW_DROP_BAD_MAC);
		return;
	}
	if (!dev)
		return;
	uint8_t cmd[128];
	long n = gw_ctl_on_report(dev, tn, &msg->hdr, &msg->u.report, now, cmd, sizeof(cmd));
	if (n == -RTCI_ERR_AUTH_REPLAYED) {
		drop(rx, (int)tn->slot, GW_DROP_REPLAYED);
		return;
	}
	dev->last_us = now;
	if (n > 0 && dev->peer_set &&
	    rtci_port_send_peer(gw->port, rx->queue, &dev->peer, cmd, (size_t)n) == 0)
		rtci_metrics_add(gw->metrics, rx->mslot, gw->tseries[tn->slot].commands, 1);
}

static bool bucket_take(struct gw_tenant *tn, uint16_t rxi, uint32_t nrx, uint64_t now)
{
	double rate = (double)tn->cfg->quota.frames_per_s / nrx;
	double burst = rate < 1 ? 1 : rate;
	double t = tn->bucket[rxi].tokens + (double)(now - tn->bucket[rxi].last_us) * 1e-6 * rate;
	tn->bucket[rxi].tokens = t > burst ? burst : t;
	tn->bucket[rxi].last_us = now;
	if (tn->bucket[rxi].tokens < 1)
		return false;
	tn->bucket[rxi].tokens -= 1;
	return true;
}

/* Tells the device to say hello to another gateway (command kind 3, the next command seq). */
static void send_move(struct gw_rx *rx, const struct gw_tenant *tn, struct gw_device *d,
		      uint64_t now)
{
	struct gw *gw = rx->gw;
	uint8_t buf[128];
	struct rtci_proto_frame_info info = { .tenant_id = tn->id, .device_id = d->id,
					      .seq = ++d->cmd.count };
	struct rtci_proto_command cmd = { .kind = RTCI_PROTO_CMD_MOVE, .move_ipv4 = d->moved_ipv4,
					  .move_port = d->moved_port };
	long n = rtci_proto_encode_command(buf, sizeof(buf), &info, &cmd, d->key);
	d->moved_us = now;
	if (n > 0 && d->peer_set)
		rtci_port_send_peer(gw->port, rx->queue, &d->peer, buf, (size_t)n);
}

#define MOVE_RESEND_US 200000

struct place_ctx {
	struct gw_rx *rx;
	uint64_t now, idle;
	bool draining;
};

static void place_one(void *arg, struct gw_tenant *tn, struct gw_device *d)
{
	struct place_ctx *x = arg;
	struct gw *gw = x->rx->gw;
	uint32_t ip;
	uint16_t port;
	if (!d->peer_set || d->moved_ipv4 || x->now - d->last_us > x->idle ||
	    gw_cluster_home(gw, tn->id, d->id, x->draining, &ip, &port) != 0)
		return;
	d->moved_ipv4 = ip;
	d->moved_port = port;
	send_move(x->rx, tn, d, x->now);
	gw_admit_release(gw, tn, d);
	rtci_metrics_add(gw->metrics, x->rx->mslot, gw->tseries[tn->slot].moves, 1);
}

/* Membership changed or the gateway drains: this lcore's devices whose home is now elsewhere are
 * moved there (their frames still in flight are answered here), and their admission released. */
static void place_devices(struct gw_rx *rx, uint64_t now)
{
	struct place_ctx x = { rx, now, (uint64_t)rx->gw->cfg->admission.idle_timeout_ms * 1000,
			       atomic_load(&rx->gw->draining) };
	gw_table_each_owned(rx->table, rx->index, place_one, &x);
}

/* Whether a frame submitted now to queue q could finish by deadline: the wait for a worker,
 * the work queued ahead of it (EDF serves it after the frames already waiting, whose deadlines
 * are earlier when frames arrive in capture order) and its own run. Checked before decoding so
 * that under overload a frame that would be late costs no more than its reassembly. */
static bool can_finish(const struct gw_rx *rx, uint32_t q, uint64_t deadline, uint64_t now)
{
	const struct gw *gw = rx->gw;
	uint64_t ahead = rtci_batcher_queued_work_us(rx->batcher) / gw->nworkers;
	return now + rtci_batcher_estimate_us(rx->batcher, q, 1) + ahead <= deadline;
}

static void fill_frame(struct gw_rx *rx, struct gw_frame *f, const struct gw_tenant *tn,
		       const struct gw_device *dev, const struct rtci_reasm_frame *fr,
		       uint64_t capture_gw)
{
	const struct rtci_gateway_config *cfg = rx->gw->cfg;
	f->tenant_slot = tn->slot;
	f->tenant_id = tn->id;
	f->device_id = dev->id;
	f->model = dev->model;
	f->setup = fr->hdr.setup_id;
	f->rx = rx->index;
	f->seq = fr->hdr.seq;
	memcpy(f->key, dev->key, sizeof(f->key));
	f->peer = dev->peer;
	f->first_us = fr->first_time;
	f->complete_us = fr->complete_time;
	f->capture_gw_us = capture_gw;
	/* inference must end before the deadline: the result still travels back (half the round
	 * trip) and estimates err, so a margin of the deadline is kept (batching.deadline_margin_pct) */
	uint64_t keep = cfg->control.rtt_us / 2 +
			(uint64_t)tn->deadline_us * cfg->batching.deadline_margin_pct / 100;
	if (keep > tn->deadline_us / 2)
		keep = tn->deadline_us / 2;
	f->deadline_us = f->capture_gw_us + tn->deadline_us - keep;
	f->due_us = f->capture_gw_us + tn->deadline_us;
	f->out_len = 0;
}

/* Decodes the frame into its slot and hands it to the batcher; false when it was dropped
 * (counted, answered, slot freed). */
static bool decode_and_submit(struct gw_rx *rx, struct gw_frame *f, const struct rtci_setup *st,
			      const struct rtci_reasm_frame *fr, uint64_t now)
{
	struct gw *gw = rx->gw;
	const struct gw_model *m = &gw->models[f->model];
	const struct gw_tenant_series *ts = &gw->tseries[f->tenant_slot];
	struct rtci_codec_desc d;
	int rc = rtci_codec_decode(rx->codec, fr->data, fr->len, f->x, m->floats, (uint32_t)m->pc, &d);
	if (rc < 0 || d.c != (uint32_t)st->c || d.levels != (uint32_t)st->L ||
	    d.channels != (uint32_t)m->pc || d.height != (uint32_t)m->ph ||
	    d.width != (uint32_t)m->pw) {
		drop(rx, (int)f->tenant_slot, GW_DROP_DECODE);
		send_status(rx, f, RTCI_PROTO_RES_DECODE_ERROR);
		slot_free(rx, f);
		return false;
	}
	rc = rtci_batcher_submit(rx->batcher, f->queue, f->tenant_slot, f, f->deadline_us, now);
	if (rc < 0) {
		enum rtci_batcher_drop r = rc == -RTCI_ERR_BATCH_DEADLINE     ? RTCI_BATCHER_DROP_DEADLINE
					   : rc == -RTCI_ERR_BATCH_TENANT_BOUND ? RTCI_BATCHER_DROP_TENANT_BOUND
										: RTCI_BATCHER_DROP_QUEUE_FULL;
		rtci_metrics_add(gw->metrics, rx->mslot, ts->batch_drop[r], 1);
		send_status(rx, f, r == RTCI_BATCHER_DROP_DEADLINE ? RTCI_PROTO_RES_DROPPED_DEADLINE
								   : RTCI_PROTO_RES_DROPPED_OVERLOAD);
		slot_free(rx, f);
		return false;
	}
	return true;
}

static void handle_frame(struct gw_rx *rx, const struct rtci_port_dgram *dg, struct gw_tenant *tn,
			 struct gw_device *dev, const uint8_t key[32], struct rtci_reasm_frame *fr,
			 uint64_t now)
{
	struct gw *gw = rx->gw;
	const struct gw_tenant_series *ts = &gw->tseries[tn->slot];
	if (!dev)
		dev = gw_table_activate(gw, rx->table, tn, fr->hdr.device_id, key, rx->index);
	if (!dev) {
		drop(rx, (int)tn->slot, GW_DROP_QUOTA_DEVICES);
		return;
	}
	int rc = rtci_auth_replay_accept(&dev->replay, fr->hdr.seq);
	if (rc < 0) {
		drop(rx, (int)tn->slot,
		     rc == -RTCI_ERR_AUTH_STALE ? GW_DROP_STALE : GW_DROP_REPLAYED);
		return;
	}
	rtci_metrics_add(gw->metrics, rx->mslot, ts->ingest_frames, 1);
	dev->last_us = now;
	/* a device whose admission was released (silence, giving way) or that never said hello to
	 * this gateway is admitted as a hello would be; when full its frames are dropped without
	 * an answer, and the device, hearing nothing, says hello and learns it must wait */
	if (!dev->moved_ipv4 && !gw_admit(rx, tn, dev, now)) {
		drop(rx, (int)tn->slot, GW_DROP_NOT_ADMITTED);
		return;
	}
	dev->peer = dg->from;
	dev->peer_set = true;
	if (dev->moved_ipv4 && now - dev->moved_us >= MOVE_RESEND_US)
		send_move(rx, tn, dev, now); /* still here: the move was lost */
	/* a capture time far off the device's clock reaches neither the controller nor inference */
	uint64_t capture_gw = 0;
	enum gw_clock ck = gw_clock_map(dev, fr->hdr.capture_us, fr->first_time, tn->deadline_us,
					&capture_gw);
	if (ck != GW_CLOCK_OK) {
		drop(rx, (int)tn->slot, ck == GW_CLOCK_LATE ? GW_DROP_LATE : GW_DROP_CLOCK);
		send_status_to(rx, tn->id, dev, &fr->hdr, RTCI_PROTO_RES_DROPPED_DEADLINE);
		return;
	}

	uint8_t cmd[128];
	long n = gw_ctl_on_frame(dev, tn, &fr->hdr, fr->len, fr->first_time, fr->complete_time, now,
				 cmd, sizeof(cmd));
	if (n > 0 && rtci_port_send_peer(gw->port, rx->queue, &dev->peer, cmd, (size_t)n) == 0)
		rtci_metrics_add(gw->metrics, rx->mslot, ts->commands, 1);

	if (!bucket_take(tn, rx->index, gw->nrx, now)) {
		drop(rx, (int)tn->slot, GW_DROP_QUOTA_FRAMES);
		return;
	}
	if (rx->nfree == 0) {
		drop(rx, (int)tn->slot, GW_DROP_OVERLOAD);
		return;
	}
	struct gw_frame *f = rx->free[--rx->nfree];
	const struct gw_model *m = &gw->models[dev->model];
	fill_frame(rx, f, tn, dev, fr, capture_gw);
	const struct rtci_setup *st = rtci_model_setup(m->model, f->setup);
	if (!st) {
		drop(rx, (int)tn->slot, GW_DROP_DECODE);
		send_status(rx, f, RTCI_PROTO_RES_DECODE_ERROR);
		slot_free(rx, f);
		return;
	}
	uint32_t group = st->group >= 0 ? (uint32_t)st->group : (uint32_t)m->groups;
	f->queue = (uint16_t)(m->queue_base + group);
	if (!can_finish(rx, f->queue, f->deadline_us, now)) {
		drop(rx, (int)tn->slot, GW_DROP_LATE);
		send_status(rx, f, RTCI_PROTO_RES_DROPPED_DEADLINE);
		slot_free(rx, f);
		return;
	}
	if (!decode_and_submit(rx, f, st, fr, now))
		return;
	rtci_metrics_add(gw->metrics, rx->mslot, ts->frames_in, 1);
	uint32_t sidx = 0;
	for (uint16_t k = 0; k < f->model; k++)
		sidx += (uint32_t)gw->models[k].setups;
	rtci_metrics_add(gw->metrics, rx->mslot, ts->setup[sidx + f->setup], 1);
}

static enum gw_drop reasm_reason(int rc)
{
	switch (-rc) {
	case RTCI_ERR_AUTH_BAD_MAC: return GW_DROP_BAD_MAC;
	case RTCI_ERR_REASM_TENANT_ENTRIES:
	case RTCI_ERR_REASM_TENANT_BYTES: return GW_DROP_QUOTA_BYTES;
	default: return GW_DROP_REASSEMBLY;
	}
}

static void handle(struct gw_rx *rx, const struct rtci_port_dgram *dg, uint64_t now)
{
	struct gw *gw = rx->gw;
	struct rtci_proto_msg msg;
	if (rtci_proto_decode(dg->payload, dg->len, &msg) < 0) {
		drop(rx, -1, GW_DROP_MALFORMED);
		return;
	}
	if (msg.hdr.type != RTCI_PROTO_FRAGMENT && msg.hdr.type != RTCI_PROTO_HELLO &&
	    msg.hdr.type != RTCI_PROTO_REPORT) {
		drop(rx, -1, GW_DROP_DIRECTION);
		return;
	}
	struct gw_tenant *tn = gw_table_tenant(rx->table, msg.hdr.tenant_id);
	if (!tn) {
		drop(rx, -1, GW_DROP_UNKNOWN_TENANT);
		return;
	}
	struct gw_device *dev = gw_table_device(rx->table, tn->id, msg.hdr.device_id);
	uint8_t kbuf[RTCI_AUTH_KEY_LEN];
	const uint8_t *key;
	if (dev) {
		key = dev->key;
	} else {
		/* not active yet: derive (or look up) the key without taking a quota slot, which
		 * is taken only once the device authenticated */
		if (gw_tenant_device_key(tn, msg.hdr.device_id, kbuf) < 0) {
			drop(rx, (int)tn->slot, GW_DROP_UNKNOWN_DEVICE);
			return;
		}
		key = kbuf;
	}
	if (msg.hdr.type == RTCI_PROTO_HELLO) {
		handle_hello(rx, dg, &msg, tn, dev, key, now);
		return;
	}
	if (msg.hdr.type == RTCI_PROTO_REPORT) {
		handle_report(rx, &msg, tn, dev, key, now);
		return;
	}
	if (dev) {
		int rc = rtci_auth_replay_check(&dev->replay, msg.hdr.seq);
		if (rc < 0) {
			drop(rx, (int)tn->slot,
			     rc == -RTCI_ERR_AUTH_STALE ? GW_DROP_STALE : GW_DROP_REPLAYED);
			return;
		}
	}
	struct rtci_reasm_frame *fr = NULL;
	int rc = rtci_reasm_insert(rx->reasm, &msg, key, now, &fr);
	if (rc < 0) {
		if (rc != -RTCI_ERR_REASM_DUPLICATE)
			drop(rx, (int)tn->slot, reasm_reason(rc));
		return;
	}
	if (rc == 1) {
		handle_frame(rx, dg, tn, dev, key, fr, now);
		rtci_reasm_release(rx->reasm, fr);
	}
	(void)gw;
}

/* Wait for a worker if a batch were released now: the work handed over, spread over them. */
static uint64_t worker_wait_us(const struct gw *gw)
{
	return atomic_load_explicit(&gw->inflight_work_us, memory_order_relaxed) / gw->nworkers;
}

/* Whether workers can take another batch: three per worker (one running, two ready, so that a
 * worker does not run dry while its RX lcore waits for a CPU). */
static bool workers_free(const struct gw *gw)
{
	return atomic_load_explicit(&gw->batches_inflight, memory_order_relaxed) <
	       GW_BATCHES_PER_WORKER * gw->nworkers;
}

static void dispatch_batches(struct gw_rx *rx, uint64_t now)
{
	struct gw *gw = rx->gw;
	struct rtci_batcher_item items[RTCI_BATCHER_MAX_BATCH];
	uint32_t q;
	int n;
	for (;;) {
		uint64_t wait = worker_wait_us(gw);
		rtci_batcher_set_start_delay(rx->batcher, wait);
		if (!workers_free(gw)) {
			/* frames stay queued (EDF); those that can no longer make it go now */
			rtci_batcher_expire(rx->batcher, now);
			return;
		}
		if ((n = rtci_batcher_poll(rx->batcher, now, items, &q)) <= 0)
			return;
		struct gw_batch *b = rx->nbfree ? rx->bfree[--rx->nbfree] : NULL;
		if (b) {
			b->rx = rx->index;
			b->queue = (uint16_t)q;
			b->n = (uint32_t)n;
			b->release_us = now;
			b->est_us = rtci_batcher_estimate_us(rx->batcher, q, (uint32_t)n) - wait;
			for (int i = 0; i < n; i++) {
				b->f[i] = items[i].frame;
				b->f[i]->enqueue_us = items[i].enqueue_us;
			}
			atomic_fetch_add(&gw->batches_inflight, 1);
			atomic_fetch_add(&gw->inflight_work_us, b->est_us);
			if (rte_ring_enqueue(gw->work, b) == 0) {
				rx->outstanding++;
				continue;
			}
			atomic_fetch_sub(&gw->batches_inflight, 1);
			atomic_fetch_sub(&gw->inflight_work_us, b->est_us);
			rx->bfree[rx->nbfree++] = b;
		}
		for (int i = 0; i < n; i++) {
			struct gw_frame *f = items[i].frame;
			rtci_metrics_add(gw->metrics, rx->mslot,
					 gw->tseries[f->tenant_slot].batch_drop[RTCI_BATCHER_DROP_COUNT], 1);
			send_status(rx, f, RTCI_PROTO_RES_DROPPED_OVERLOAD);
			slot_free(rx, f);
		}
	}
}

static unsigned collect_done(struct gw_rx *rx)
{
	struct gw *gw = rx->gw;
	void *ptrs[BURST];
	unsigned n = rte_ring_dequeue_burst(rx->done, ptrs, BURST, NULL);
	uint64_t now = rtci_mono_us();
	for (unsigned i = 0; i < n; i++) {
		struct gw_batch *b = ptrs[i];
		for (uint32_t k = 0; k < b->n; k++) {
			struct gw_frame *f = b->f[k];
			const struct gw_tenant_series *ts = &gw->tseries[f->tenant_slot];
			if (f->out_len &&
			    rtci_port_send_peer(gw->port, rx->queue, &f->peer, f->out, f->out_len) == 0) {
				rtci_metrics_add(gw->metrics, rx->mslot, ts->frames_done, 1);
				rtci_metrics_observe(gw->metrics, rx->mslot, ts->latency,
						     (double)(int64_t)(now - f->capture_gw_us) * 1e-6);
				if (now <= f->due_us)
					rtci_metrics_add(gw->metrics, rx->mslot, ts->in_time, 1);
			}
			slot_free(rx, f);
		}
		rx->bfree[rx->nbfree++] = b;
		rx->outstanding--;
	}
	return n;
}

static void housekeeping(struct gw_rx *rx, uint64_t now)
{
	struct gw *gw = rx->gw;
	struct rtci_metrics *m = gw->metrics;
	rtci_reasm_expire(rx->reasm, now);
	struct rtci_port_stats ps;
	if (rtci_port_stats(gw->port, rx->queue, &ps) == 0) {
		uint64_t v[6] = { ps.rx_packets, ps.rx_bytes, ps.rx_datagrams, ps.tx_packets, ps.tx_bytes,
				  ps.arp_replies };
		for (int i = 0; i < 6; i++)
			rtci_metrics_set_total(m, rx->mslot, rx->s_port[i], v[i]);
		for (int i = 0; i < RTCI_PORT_DROP_COUNT; i++)
			rtci_metrics_set_total(m, rx->mslot, rx->s_port_drop[i], ps.drops[i]);
	}
	struct rtci_reasm_stats rs;
	rtci_reasm_stats(rx->reasm, &rs);
	rtci_metrics_gauge_set(m, rx->mslot, rx->s_reasm_inflight, (double)rs.frames_in_flight);
	rtci_metrics_gauge_set(m, rx->mslot, rx->s_reasm_bytes, (double)rs.arena_bytes_used);
	for (int i = 0; i < RTCI_REASM_DROP_MAX; i++)
		rtci_metrics_set_total(m, rx->mslot, rx->s_reasm_drop[i], rs.drops[i]);
	for (uint32_t q = 0; q < gw->nqueues; q++) {
		struct rtci_batcher_stats bs;
		if (rtci_batcher_queue_stats(rx->batcher, q, &bs) == 0)
			rtci_metrics_gauge_set(m, rx->mslot, gw->s_qdepth[q], (double)bs.depth);
		/* the batcher's deadline checks follow the workers' measured batch times */
		uint64_t base, per;
		rtci_cost_linear(&gw->models[gw->queue_model[q]].cost, &base, &per);
		rtci_batcher_set_cost(rx->batcher, q, base, per);
	}
	if (gw->cluster && (gw_cluster_generation(gw) != rx->members_seen ||
			    atomic_load(&gw->draining) != rx->draining_seen)) {
		rx->members_seen = gw_cluster_generation(gw);
		rx->draining_seen = atomic_load(&gw->draining);
		place_devices(rx, now);
	}
	if (gw->cfg->admission.enabled && now - rx->last_expire_us >= ADMISSION_SCAN_US) {
		gw_admit_expire(rx, now);
		rx->last_expire_us = now;
	}
	if (rx->total_ns)
		rtci_metrics_gauge_set(m, rx->mslot, rx->s_busy, (double)rx->busy_ns / (double)rx->total_ns);
	rx->busy_ns = rx->total_ns = 0;
	rx->last_house_us = now;
}

static uint32_t batcher_depth(struct gw_rx *rx)
{
	uint32_t d = 0;
	for (uint32_t q = 0; q < rx->gw->nqueues; q++) {
		struct rtci_batcher_stats bs;
		if (rtci_batcher_queue_stats(rx->batcher, q, &bs) == 0)
			d += bs.depth;
	}
	return d;
}

static void drain_one(void *user, void *frame, uint32_t tenant)
{
	struct gw_rx *rx = user;
	rtci_metrics_add(rx->gw->metrics, rx->mslot,
			 rx->gw->tseries[tenant].batch_drop[RTCI_BATCHER_DROP_COUNT], 1);
	slot_free(rx, frame);
}

int gw_rx_main(void *arg)
{
	struct gw_rx *rx = arg;
	struct gw *gw = rx->gw;
	struct rtci_port_dgram dg[BURST];
	uint64_t drain_start = 0;
	for (;;) {
		uint64_t t0 = rtci_mono_ns();
		uint64_t now = t0 / 1000;
		/* burst boundary: pick up a reloaded table, handing over our devices */
		struct gw_table *t = atomic_load_explicit(&gw->table, memory_order_acquire);
		if (t != rx->table) {
			gw_table_handover(gw, rx->table, t, rx->index);
			rx->table = t;
			apply_weights(rx);
			atomic_store_explicit(&rx->seen_generation, t->generation, memory_order_release);
		}
		unsigned work = 0;
		bool stopping = atomic_load_explicit(&gw->stop_rx, memory_order_acquire);
		if (!stopping) {
			uint16_t n = rtci_port_rx(gw->port, rx->queue, dg, BURST);
			for (uint16_t i = 0; i < n; i++)
				gw_table_prefetch_slot(rx->table, dg[i].payload, dg[i].len);
			for (uint16_t i = 0; i < n; i++)
				gw_table_prefetch_device(rx->table, dg[i].payload, dg[i].len);
			for (uint16_t i = 0; i < n; i++)
				handle(rx, &dg[i], now);
			rtci_port_release(dg, n);
			work += n;
		} else if (!drain_start) {
			drain_start = now;
		}
		dispatch_batches(rx, now);
		work += collect_done(rx);
		rtci_port_flush(gw->port, rx->queue);
		if (now - rx->last_house_us >= HOUSEKEEPING_US)
			housekeeping(rx, now);
		if (stopping) {
			/* finish what is in flight: batcher empty and every batch back */
			if (rx->outstanding == 0 && batcher_depth(rx) == 0)
				break;
			if (now - drain_start > DRAIN_LIMIT_US && rx->outstanding == 0) {
				rtci_batcher_drain(rx->batcher, drain_one, rx);
				break;
			}
		}
		uint64_t t1 = rtci_mono_ns();
		rx->total_ns += t1 - t0;
		if (work) {
			rx->busy_ns += t1 - t0;
		} else {
			/* idle: sleep a little, never past the batcher's next due time */
			uint64_t due = rtci_batcher_next_due_us(rx->batcher, now);
			uint64_t nap = due > now ? due - now : workers_free(gw) ? 0 : 50;
			if (nap > 50)
				nap = 50;
			if (nap)
				usleep((useconds_t)nap);
			rx->total_ns += rtci_mono_ns() - t1;
		}
	}
	rtci_port_flush(gw->port, rx->queue);
	housekeeping(rx, rtci_mono_us());
	atomic_store(&rx->finished, true);
	atomic_fetch_add(&gw->rx_done, 1);
	return 0;
}

/* ---- set-up ---- */

static int register_rx_series(struct gw *gw, struct gw_rx *rx)
{
	struct rtci_metrics *m = gw->metrics;
	char q[16], lc[16];
	snprintf(q, sizeof(q), "%u", rx->queue);
	snprintf(lc, sizeof(lc), "%u", rx->lcore);
	const char *qn[] = { "queue" }, *qv[] = { q };
	static const char *const pn[6][2] = {
		{ "rtci_port_rx_packets_total", "packets received" },
		{ "rtci_port_rx_bytes_total", "bytes received" },
		{ "rtci_port_rx_datagrams_total", "valid UDP datagrams to the gateway" },
		{ "rtci_port_tx_packets_total", "packets sent" },
		{ "rtci_port_tx_bytes_total", "bytes sent" },
		{ "rtci_port_arp_replies_total", "ARP requests answered" },
	};
	int f;
	for (int i = 0; i < 6; i++) {
		f = rtci_metrics_family(m, pn[i][0], pn[i][1], RTCI_METRIC_COUNTER, NULL, 0,
					i == 2 ? RTCI_METRICS_SUMMARY : 0);
		if (f < 0 || (rx->s_port[i] = rtci_metrics_series(m, f, 1, qn, qv)) < 0)
			return f < 0 ? f : rx->s_port[i];
	}
	const char *qrn[] = { "queue", "reason" };
	f = rtci_metrics_family(m, "rtci_port_drops_total", "packets dropped by the port, by reason",
				RTCI_METRIC_COUNTER, NULL, 0, RTCI_METRICS_SUMMARY);
	for (int i = 0; i < RTCI_PORT_DROP_COUNT; i++) {
		const char *v[] = { q, rtci_port_drop_name((enum rtci_port_drop)i) };
		if (f < 0 || (rx->s_port_drop[i] = rtci_metrics_series(m, f, 2, qrn, v)) < 0)
			return -RTCI_ERR_METRICS_FULL;
	}
	f = rtci_metrics_family(m, "rtci_reassembly_drops_total",
				"fragments rejected by reassembly, by reason", RTCI_METRIC_COUNTER,
				NULL, 0, 0);
	for (int i = 0; i < RTCI_REASM_DROP_MAX; i++) {
		const char *v[] = { q, rtci_reasm_drop_name((enum rtci_reasm_drop)i) };
		if (f < 0 || (rx->s_reasm_drop[i] = rtci_metrics_series(m, f, 2, qrn, v)) < 0)
			return -RTCI_ERR_METRICS_FULL;
	}
	f = rtci_metrics_family(m, "rtci_reassembly_frames", "frames in flight in reassembly",
				RTCI_METRIC_GAUGE, NULL, 0, 0);
	if (f < 0 || (rx->s_reasm_inflight = rtci_metrics_series(m, f, 1, qn, qv)) < 0)
		return -RTCI_ERR_METRICS_FULL;
	f = rtci_metrics_family(m, "rtci_reassembly_bytes", "reassembly arena bytes in use",
				RTCI_METRIC_GAUGE, NULL, 0, 0);
	if (f < 0 || (rx->s_reasm_bytes = rtci_metrics_series(m, f, 1, qn, qv)) < 0)
		return -RTCI_ERR_METRICS_FULL;
	f = rtci_metrics_family(m, "rtci_lcore_busy_ratio", "share of time an lcore did work",
				RTCI_METRIC_GAUGE, NULL, 0, 0);
	const char *ln[] = { "lcore", "role" }, *lv[] = { lc, "rx" };
	if (f < 0 || (rx->s_busy = rtci_metrics_series(m, f, 2, ln, lv)) < 0)
		return -RTCI_ERR_METRICS_FULL;
	f = rtci_metrics_family(m, "rtci_ingest_drops_total",
				"datagrams or frames dropped on ingest, by tenant and reason",
				RTCI_METRIC_COUNTER, NULL, 0, RTCI_METRICS_SUMMARY);
	const char *tn[] = { "tenant", "reason" };
	for (int i = 0; i < GW_DROP_COUNT; i++) {
		const char *v[] = { "none", gw_drop_name((enum gw_drop)i) };
		if (f < 0 || (rx->s_unknown_drop[i] = rtci_metrics_series(m, f, 2, tn, v)) < 0)
			return -RTCI_ERR_METRICS_FULL;
	}
	return 0;
}

int gw_rx_init(struct gw *gw, struct gw_rx *rx, char *err, size_t errlen)
{
	rx->gw = gw;
	int rc = register_rx_series(gw, rx);
	if (rc < 0) {
		snprintf(err, errlen, "metrics: %s", rtci_strerror(rc));
		return rc;
	}
	struct rtci_reasm_config rc_cfg = {
		.max_frames = 4096, .arena_bytes = 64u << 20, .max_frame_len = gw->max_frame,
		.max_inflight_per_device = 4, .max_tenants = GW_TENANT_SLOTS,
		.ttl = 1000000, /* microseconds */
		.quota = reasm_quota, .quota_ctx = rx,
		.on_discard = reasm_discarded, .discard_ctx = rx,
	};
	if ((rc = rtci_reasm_create(&rc_cfg, &rx->reasm)) < 0) {
		snprintf(err, errlen, "reassembly table: %s", rtci_strerror(rc));
		return rc;
	}
	uint32_t floats = 0;
	for (uint32_t k = 0; k < gw->nmodels; k++)
		floats = gw->models[k].floats > floats ? gw->models[k].floats : floats;
	struct rtci_codec_config cc = { .max_elements = floats, .packed_only = true };
	if ((rc = rtci_codec_create(&cc, &rx->codec)) < 0) {
		snprintf(err, errlen, "codec: %s", rtci_strerror(rc));
		return rc;
	}
	struct rtci_batcher_config bc = {
		.queues = gw->nqueues, .tenants = GW_TENANT_SLOTS,
		.max_batch = gw->cfg->batching.max_batch, .max_wait_us = gw->cfg->batching.max_wait_us,
		.capacity = gw->cfg->batching.queue_capacity, .on_drop = on_batcher_drop, .user = rx,
	};
	if ((rc = rtci_batcher_create(&bc, &rx->batcher)) < 0) {
		snprintf(err, errlen, "batcher: %s", rtci_strerror(rc));
		return rc;
	}
	/* decoded-tensor slots: queue capacity plus what workers hold, within a memory budget */
	uint64_t want = (uint64_t)gw->cfg->batching.queue_capacity +
			4ull * gw->cfg->batching.max_batch * gw->nworkers;
	uint64_t fit = GW_SLOT_MEMORY / ((uint64_t)floats * sizeof(float));
	uint64_t min = 2ull * gw->cfg->batching.max_batch;
	if (fit < min)
		fit = min;
	rx->nslots = (uint32_t)(want < fit ? want : fit);
	rx->slot_mem = calloc((size_t)rx->nslots * floats, sizeof(float));
	rx->slots = calloc(rx->nslots, sizeof(*rx->slots));
	rx->free = calloc(rx->nslots, sizeof(*rx->free));
	rx->nbatches = rx->nslots;
	rx->batches = calloc(rx->nbatches, sizeof(*rx->batches));
	rx->bfree = calloc(rx->nbatches, sizeof(*rx->bfree));
	if (!rx->slot_mem || !rx->slots || !rx->free || !rx->batches || !rx->bfree) {
		snprintf(err, errlen, "frame slots: out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < rx->nslots; i++) {
		rx->slots[i].x = rx->slot_mem + (size_t)i * floats;
		rx->free[rx->nfree++] = &rx->slots[i];
	}
	for (uint32_t i = 0; i < rx->nbatches; i++)
		rx->bfree[rx->nbfree++] = &rx->batches[i];
	char name[32];
	snprintf(name, sizeof(name), "rtci_done_%u", rx->index);
	uint32_t cap = 2;
	while (cap <= rx->nbatches)
		cap <<= 1;
	rx->done = rte_ring_create(name, cap, (int)rte_socket_id(), RING_F_SC_DEQ);
	if (!rx->done) {
		snprintf(err, errlen, "ring %s: cannot create", name);
		return -ENOMEM;
	}
	return 0;
}

void gw_rx_fini(struct gw_rx *rx)
{
	if (rx->batcher) {
		/* frames still queued (start-up failure) only need their slots back */
		rtci_batcher_destroy(rx->batcher);
	}
	rtci_reasm_destroy(rx->reasm);
	rtci_codec_destroy(rx->codec);
	if (rx->done)
		rte_ring_free(rx->done);
	free(rx->slot_mem);
	free(rx->slots);
	free(rx->free);
	free(rx->batches);
	free(rx->bfree);
}
