/* Per-device protocol state machine: see device.h. */
#include "edge/device.h"

#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "common/rtci_error.h"

#define DEFAULT_HELLO_RETRY_NS 500000000LL
#define REJECTED_BACKOFF 10 /* hello retries of a refused device are this many times slower */

int rtci_dev_init(struct rtci_dev *d, const struct rtci_dev_config *cfg, int64_t now_ns,
		  uint64_t seq_base, const struct rtci_ctl_trace *trace, int64_t trace_offset_ns)
{
	if (!d || !cfg || cfg->frag_size == 0 || cfg->frag_size > RTCI_PROTO_MAX_FRAG ||
	    cfg->n_setups == 0 || cfg->n_setups > RTCI_PROTO_MAX_SETUPS || cfg->deadline_ns <= 0 ||
	    cfg->reserve_ns < 0 || cfg->reserve_ns >= cfg->deadline_ns)
		return -EINVAL;
	memset(d, 0, sizeof(*d));
	d->cfg = *cfg;
	if (d->cfg.hello_retry_ns <= 0)
		d->cfg.hello_retry_ns = DEFAULT_HELLO_RETRY_NS;
	if (d->cfg.silence_ns <= 0) {
		d->cfg.silence_ns = 4 * cfg->deadline_ns;
		if (d->cfg.silence_ns < 1000000000LL)
			d->cfg.silence_ns = 1000000000LL;
	}
	d->state = RTCI_DEV_HELLO;
	d->setup = cfg->setups[0];
	d->plan.n = 0;
	d->next_seq = seq_base;
	if (d->cfg.report_ns == 0)
		d->cfg.report_ns = 1000000000LL;
	if (d->cfg.report_gap_ns == 0)
		d->cfg.report_gap_ns = 100000000LL;
	d->last_hello_ns = INT64_MIN;
	d->first_answer_ns = -1;
	d->last_report_ns = now_ns;
	/* report sequences share the frames' base: never reused under the key across restarts */
	d->report_seq = seq_base;
	d->last_rx_ns = now_ns;
	d->last_probe_ns = INT64_MIN;
	d->probe_seq = UINT64_MAX;
	if (d->cfg.probe_ns <= 0)
		d->cfg.probe_ns = 500000000LL;
	rtci_auth_replay_init(&d->cmd_window);
	rtci_pacer_init(&d->pacer, trace, trace_offset_ns);
	return 0;
}

static int supports(const struct rtci_dev *d, unsigned setup)
{
	if (setup == RTCI_SETUP_LOCAL)
		return d->cfg.local_exit;
	for (unsigned i = 0; i < d->cfg.n_setups; i++)
		if (d->cfg.setups[i] == setup)
			return 1;
	return 0;
}

int64_t rtci_dev_next_hello(const struct rtci_dev *d)
{
	int64_t last = d->last_hello_ns;
	switch (d->state) {
	case RTCI_DEV_HELLO:
	case RTCI_DEV_REHELLO:
		return last == INT64_MIN ? INT64_MIN : last + d->cfg.hello_retry_ns;
	case RTCI_DEV_REJECTED:
		return last == INT64_MIN ? INT64_MIN : last + REJECTED_BACKOFF * d->cfg.hello_retry_ns;
	case RTCI_DEV_BUSY: /* after the retry-after, then as any unanswered hello */
		return last >= d->retry_at_ns ? last + d->cfg.hello_retry_ns : d->retry_at_ns;
	case RTCI_DEV_ACTIVE:
		return INT64_MAX;
	}
	return INT64_MAX;
}

int rtci_dev_hello_due(struct rtci_dev *d, int64_t now_ns)
{
	switch (d->state) {
	case RTCI_DEV_HELLO:
	case RTCI_DEV_REHELLO:
	case RTCI_DEV_REJECTED:
	case RTCI_DEV_BUSY:
		return now_ns >= rtci_dev_next_hello(d);
	case RTCI_DEV_ACTIVE:
		/* silent gateway: frames went out and nothing at all came back for a while */
		if (d->unanswered && now_ns - d->unanswered_since_ns >= d->cfg.silence_ns &&
		    now_ns - d->last_rx_ns >= d->cfg.silence_ns) {
			d->state = RTCI_DEV_REHELLO;
			d->st.rehellos++;
			return 1;
		}
		return 0;
	}
	return 0;
}

long rtci_dev_hello(struct rtci_dev *d, int64_t now_ns, uint8_t *buf, size_t cap)
{
	uint64_t nonce;
	randombytes_buf(&nonce, sizeof(nonce));
	struct rtci_proto_hello h = {
		.model_id = d->cfg.model_id, .fps_milli = d->cfg.fps_milli,
		.deadline_us = (uint32_t)(d->cfg.deadline_ns / 1000), .max_frag_size = d->cfg.frag_size,
		.n_setups = d->cfg.n_setups, .ack_ext = true,
	};
	memcpy(h.setups, d->cfg.setups, d->cfg.n_setups * sizeof(h.setups[0]));
	struct rtci_proto_frame_info info = {
		.tenant_id = d->cfg.tenant_id, .device_id = d->cfg.device_id, .seq = nonce,
		.setup_id = d->setup, .capture_us = (uint64_t)(now_ns / 1000),
	};
	long n = rtci_proto_encode_hello(buf, cap, &info, &h, d->cfg.key);
	if (n < 0)
		return n;
	d->nonces[d->nonce_head] = nonce;
	d->nonce_head = (uint8_t)((d->nonce_head + 1) % RTCI_DEV_NONCES);
	if (d->n_nonces < RTCI_DEV_NONCES)
		d->n_nonces++;
	d->last_hello_ns = now_ns;
	d->st.hellos_sent++;
	return n;
}

static uint64_t frames_dropped(const struct rtci_dev *d)
{
	uint64_t n = 0;
	for (int k = 0; k < RTCI_DEV_SKIP_MAX; k++)
		n += d->st.skipped[k];
	return n;
}

int64_t rtci_dev_next_report(const struct rtci_dev *d)
{
	if (d->cfg.report_ns < 0 || (d->state != RTCI_DEV_ACTIVE && d->state != RTCI_DEV_REHELLO))
		return INT64_MAX;
	int64_t t = d->last_report_ns + d->cfg.report_ns;
	if (d->cfg.report_gap_ns >= 0 && frames_dropped(d) > d->report_dropped &&
	    d->last_report_ns + d->cfg.report_gap_ns < t)
		t = d->last_report_ns + d->cfg.report_gap_ns;
	return t;
}

int rtci_dev_report_due(const struct rtci_dev *d, int64_t now_ns)
{
	return now_ns >= rtci_dev_next_report(d);
}

long rtci_dev_report(struct rtci_dev *d, int64_t now_ns, uint8_t *buf, size_t cap)
{
	int64_t iv = now_ns - d->last_report_ns;
	uint64_t dropped = frames_dropped(d);
	uint64_t backlog = rtci_pacer_backlog(&d->pacer);
	struct rtci_proto_report r = {
		.bytes_sent = d->st.bytes_sent,
		.frames_sent = (uint32_t)d->st.frames_sent,
		.frames_dropped = (uint32_t)dropped,
		.send_rate_bps = iv > 0 ? (uint64_t)((double)(d->st.bytes_sent - d->report_bytes) * 8e9 /
						     (double)iv) : 0,
		.backlog_bytes = backlog > UINT32_MAX ? UINT32_MAX : (uint32_t)backlog,
		.interval_us = iv > 0 ? (uint32_t)(iv / 1000 > UINT32_MAX ? UINT32_MAX : iv / 1000) : 0,
	};
	struct rtci_proto_frame_info info = {
		.tenant_id = d->cfg.tenant_id, .device_id = d->cfg.device_id, .seq = d->report_seq,
		.setup_id = d->setup, .backlog_bytes = r.backlog_bytes,
		.capture_us = (uint64_t)(now_ns / 1000),
	};
	long n = rtci_proto_encode_report(buf, cap, &info, &r, d->cfg.key);
	if (n < 0)
		return n;
	d->report_seq++;
	d->report_bytes = d->st.bytes_sent;
	d->report_dropped = dropped;
	d->last_report_ns = now_ns;
	d->st.reports_sent++;
	return n;
}

int rtci_dev_frame_begin(struct rtci_dev *d, int64_t now_ns, uint64_t *seq)
{
	(void)now_ns;
	d->st.captured++;
	if (d->state == RTCI_DEV_HELLO || d->state == RTCI_DEV_REJECTED ||
	    d->state == RTCI_DEV_BUSY) {
		d->st.skipped[RTCI_DEV_SKIP_NO_SESSION]++;
		return -ENOTCONN;
	}
	uint64_t s = d->next_seq++;
	/* a switch takes effect from its frame whether or not that frame is sent */
	uint16_t next = (uint16_t)rtci_ctl_plan_setup(&d->plan, s, d->setup);
	if (d->setup != next)
		d->st.switches++;
	if (next == RTCI_SETUP_LOCAL && d->setup != RTCI_SETUP_LOCAL)
		d->last_probe_ns = INT64_MIN; /* entering local mode: probe at once */
	d->setup = next;
	int setup = d->setup;
	if (setup == RTCI_SETUP_LOCAL) {
		if (d->last_probe_ns != INT64_MIN && now_ns - d->last_probe_ns < d->cfg.probe_ns) {
			d->st.local_frames++;
			*seq = s;
			return RTCI_SETUP_LOCAL;
		}
		d->last_probe_ns = now_ns;
		d->st.probes++;
		d->probe_seq = s;
		setup = d->cfg.probe_setup;
	}
	if (d->q_len == RTCI_DEV_QUEUE) {
		d->st.skipped[RTCI_DEV_SKIP_QUEUE_FULL]++;
		return -ENOBUFS;
	}
	*seq = s;
	return setup;
}

int rtci_dev_local_only(struct rtci_dev *d, int64_t capture_ns, int64_t ready_ns)
{
	if (ready_ns - capture_ns <= d->cfg.deadline_ns) {
		d->st.answered_local++;
		return 1;
	}
	d->st.local_late++;
	return 0;
}

int rtci_dev_local_answer(struct rtci_dev *d, uint64_t seq, uint16_t class_id, int64_t ready_ns)
{
	struct rtci_dev_inflight *f = &d->inflight[seq % RTCI_DEV_INFLIGHT];
	if (!f->used || f->seq != seq || f->resolved)
		return -ENOENT;
	f->has_local = 1;
	f->local_class = class_id;
	f->local_ready_ns = ready_ns;
	return 0;
}

int64_t rtci_dev_next_expiry(const struct rtci_dev *d)
{
	int64_t t = INT64_MAX;
	if (!d->cfg.local_exit)
		return t; /* nothing to scan: rtci-fleet asks this for every device it wakes */
	for (int i = 0; i < RTCI_DEV_INFLIGHT; i++) {
		const struct rtci_dev_inflight *f = &d->inflight[i];
		if (f->used && f->has_local && !f->resolved && f->capture_ns + d->cfg.deadline_ns < t)
			t = f->capture_ns + d->cfg.deadline_ns;
	}
	return t;
}

int rtci_dev_expire(struct rtci_dev *d, int64_t now_ns, struct rtci_dev_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	for (int i = 0; d->cfg.local_exit && i < RTCI_DEV_INFLIGHT; i++) {
		struct rtci_dev_inflight *f = &d->inflight[i];
		if (!f->used || !f->has_local || f->resolved || f->capture_ns + d->cfg.deadline_ns > now_ns)
			continue;
		f->resolved = 1;
		ev->kind = RTCI_DEV_EV_LOCAL;
		ev->seq = f->seq;
		ev->user = f->user;
		ev->setup = f->setup;
		ev->latency_ns = f->local_ready_ns - f->capture_ns;
		ev->result.status = RTCI_PROTO_RES_OK;
		ev->result.class_id = f->local_class;
		ev->hit = rtci_dev_local_only(d, f->capture_ns, f->local_ready_ns);
		return ev->kind;
	}
	ev->kind = RTCI_DEV_EV_NONE;
	return ev->kind;
}

void rtci_dev_frame_failed(struct rtci_dev *d)
{
	d->st.skipped[RTCI_DEV_SKIP_ENCODE]++;
}

/* Bytes a fragment occupies on the link. */
static uint64_t frag_link_bytes(uint32_t len, uint16_t frag_size, uint16_t count, uint16_t i)
{
	uint32_t plen = i + 1 == count ? len - (uint32_t)i * frag_size : frag_size;
	return plen + RTCI_PROTO_FRAG_OVERHEAD + (i + 1 == count ? RTCI_PROTO_FRAME_OVERHEAD : 0);
}

int rtci_dev_frame_queue(struct rtci_dev *d, int64_t now_ns, uint64_t seq, uint16_t setup,
			 int64_t capture_ns, const uint8_t *payload, uint32_t len, uint32_t user)
{
	if (!payload || d->q_len == RTCI_DEV_QUEUE) {
		d->st.skipped[RTCI_DEV_SKIP_ENCODE]++;
		return -EINVAL;
	}
	/* the gateway would drop it as too big after it cost the uplink */
	if (d->max_frame_len && len > d->max_frame_len) {
		d->st.skipped[RTCI_DEV_SKIP_TOO_BIG]++;
		return -EMSGSIZE;
	}
	long count = rtci_proto_fragment_count(len, d->cfg.frag_size);
	if (count < 0) {
		d->st.skipped[RTCI_DEV_SKIP_ENCODE]++;
		return (int)count;
	}
	uint64_t bytes = (uint64_t)len + (uint64_t)count * RTCI_PROTO_FRAG_OVERHEAD +
			 RTCI_PROTO_FRAME_OVERHEAD;
	int64_t send_deadline = capture_ns + d->cfg.deadline_ns - d->cfg.reserve_ns;
	if (rtci_pacer_admit(&d->pacer, now_ns, bytes, send_deadline, NULL) < 0) {
		d->st.skipped[RTCI_DEV_SKIP_LATE]++;
		return -ETIME;
	}
	struct rtci_dev_queued *q = &d->q[(d->q_head + d->q_len) % RTCI_DEV_QUEUE];
	*q = (struct rtci_dev_queued){
		.payload = payload, .len = len, .seq = seq, .capture_ns = capture_ns,
		.queued_ns = now_ns, .user = user, .setup = setup, .frag_count = (uint16_t)count,
		.frag_size = d->cfg.frag_size,
	};
	struct rtci_proto_hdr h = {
		.version = RTCI_PROTO_VERSION, .type = RTCI_PROTO_FRAGMENT, .hdr_len = RTCI_PROTO_HDR_LEN,
		.tenant_id = d->cfg.tenant_id, .device_id = d->cfg.device_id, .seq = seq,
		.setup_id = setup, .frag_count = (uint16_t)count, .frag_size = d->cfg.frag_size,
		.frame_len = len, .capture_us = (uint64_t)(capture_ns / 1000),
	};
	rtci_auth_mac(d->cfg.key, &h, payload, len, q->tag);
	d->q_len++;

	struct rtci_dev_inflight *f = &d->inflight[seq % RTCI_DEV_INFLIGHT];
	if (f->used && !f->answered && f->sent)
		d->st.lost++;
	*f = (struct rtci_dev_inflight){ .seq = seq, .capture_ns = capture_ns, .user = user,
					 .setup = setup, .used = 1, .probe = seq == d->probe_seq };
	return 0;
}

int64_t rtci_dev_next_departure(const struct rtci_dev *d)
{
	if (d->q_len == 0)
		return INT64_MAX;
	const struct rtci_dev_queued *q = &d->q[d->q_head];
	return rtci_pacer_departure(&d->pacer, q->queued_ns,
				    frag_link_bytes(q->len, q->frag_size, q->frag_count, q->next_frag));
}

long rtci_dev_next_datagram(struct rtci_dev *d, int64_t now_ns, uint8_t *buf, size_t cap)
{
	if (d->q_len == 0)
		return 0;
	struct rtci_dev_queued *q = &d->q[d->q_head];
	uint16_t i = q->next_frag;
	uint64_t link = frag_link_bytes(q->len, q->frag_size, q->frag_count, i);
	int64_t dep = rtci_pacer_departure(&d->pacer, q->queued_ns, link);
	if (dep > now_ns)
		return 0;
	/* the hint is the queue this datagram leaves behind: on a frame's last fragment, the
	 * frames queued after it, which the gateway's controller expects to drain next */
	uint64_t behind = rtci_pacer_backlog(&d->pacer);
	behind = behind > link ? behind - link : 0;
	struct rtci_proto_frame_info info = {
		.tenant_id = d->cfg.tenant_id, .device_id = d->cfg.device_id, .seq = q->seq,
		.setup_id = q->setup,
		.backlog_bytes = behind > UINT32_MAX ? UINT32_MAX : (uint32_t)behind,
		.capture_us = (uint64_t)(q->capture_ns / 1000),
	};
	size_t off = (size_t)i * q->frag_size;
	size_t plen = i + 1 == q->frag_count ? q->len - off : q->frag_size;
	long n = rtci_proto_encode_fragment(buf, cap, &info, i, q->frag_count, q->frag_size, q->len,
					    q->payload + off, plen,
					    i + 1 == q->frag_count ? q->tag : NULL);
	if (n < 0)
		return n;
	rtci_pacer_release(&d->pacer, dep, link);
	d->st.datagrams_sent++;
	d->st.bytes_sent += (uint64_t)n;
	if (++q->next_frag == q->frag_count) {
		struct rtci_dev_inflight *f = &d->inflight[q->seq % RTCI_DEV_INFLIGHT];
		if (f->used && f->seq == q->seq) {
			f->sent_ns = now_ns;
			f->sent = 1;
		}
		d->st.frames_sent++;
		if (!d->unanswered) {
			d->unanswered = 1;
			d->unanswered_since_ns = now_ns;
		}
		d->q_head = (uint8_t)((d->q_head + 1) % RTCI_DEV_QUEUE);
		d->q_len--;
	}
	return n;
}

static int drop(struct rtci_dev_event *ev, int err)
{
	ev->kind = RTCI_DEV_EV_NONE;
	ev->err = err;
	return RTCI_DEV_EV_NONE;
}

int rtci_dev_handle(struct rtci_dev *d, const uint8_t *buf, size_t len, int64_t now_ns,
		    struct rtci_dev_event *ev)
{
	struct rtci_proto_msg m;
	memset(ev, 0, sizeof(*ev));
	int rc = rtci_proto_decode(buf, len, &m);
	if (rc < 0) {
		d->st.rx_invalid++;
		return drop(ev, rc);
	}
	if (m.hdr.tenant_id != d->cfg.tenant_id || m.hdr.device_id != d->cfg.device_id) {
		d->st.rx_foreign++;
		return drop(ev, -EINVAL);
	}
	if (m.hdr.type != RTCI_PROTO_RESULT && m.hdr.type != RTCI_PROTO_COMMAND &&
	    m.hdr.type != RTCI_PROTO_HELLO_ACK) {
		d->st.rx_invalid++;
		return drop(ev, -RTCI_ERR_PROTO_BAD_TYPE);
	}
	if ((rc = rtci_auth_verify_msg(d->cfg.key, &m)) < 0) {
		d->st.rx_bad_mac++;
		return drop(ev, rc);
	}
	d->last_rx_ns = now_ns;
	d->unanswered = 0;
	ev->seq = m.hdr.seq;

	if (m.hdr.type == RTCI_PROTO_HELLO_ACK) {
		int known = 0;
		for (unsigned i = 0; i < d->n_nonces; i++)
			known |= d->nonces[i] == m.hdr.seq;
		if (!known)
			return drop(ev, -RTCI_ERR_AUTH_STALE);
		/* an ack is used once: a duplicate must not start another session */
		d->n_nonces = 0;
		d->nonce_head = 0; /* the next hello's nonce is the first one checked */
		if (d->first_answer_ns < 0 && d->last_hello_ns != INT64_MIN)
			d->first_answer_ns = now_ns - d->last_hello_ns;
		const struct rtci_proto_hello_ack *a = &m.u.hello_ack;
		if (a->status == RTCI_PROTO_HELLO_BUSY) {
			int64_t wait = a->retry_after_ms ? (int64_t)a->retry_after_ms * 1000000
							 : d->cfg.hello_retry_ns;
			/* jitter in [0, wait): devices refused together come back spread out */
			wait += (int64_t)((double)wait * randombytes_uniform(1000000) / 1e6);
			d->state = RTCI_DEV_BUSY;
			d->retry_at_ns = now_ns + wait;
			d->st.busy++;
			ev->kind = RTCI_DEV_EV_BUSY;
			ev->retry_ns = wait;
			return ev->kind;
		}
		if (a->status == RTCI_PROTO_HELLO_REDIRECT) {
			d->st.redirects++;
			if (++d->redirects > RTCI_DEV_MAX_REDIRECTS) {
				/* gateways disagreeing on the membership: wait as if refused */
				d->state = RTCI_DEV_REJECTED;
				d->redirects = 0;
				ev->kind = RTCI_DEV_EV_REJECTED;
				return ev->kind;
			}
			d->state = RTCI_DEV_HELLO; /* no frames until the home gateway says yes */
			d->last_hello_ns = INT64_MIN;
			ev->kind = RTCI_DEV_EV_REDIRECT;
			ev->to_ipv4 = a->redirect_ipv4;
			ev->to_port = a->redirect_port;
			return ev->kind;
		}
		if (a->status != RTCI_PROTO_HELLO_ACCEPTED) {
			d->state = RTCI_DEV_REJECTED;
			d->st.rejected++;
			ev->kind = RTCI_DEV_EV_REJECTED;
			return ev->kind;
		}
		if (d->state == RTCI_DEV_HELLO) /* frames skipped before the session are no news */
			d->report_dropped = frames_dropped(d);
		d->state = RTCI_DEV_ACTIVE;
		d->redirects = 0;
		d->st.hello_acks++;
		if (supports(d, a->initial_setup_id)) {
			if (d->setup != a->initial_setup_id && d->st.hello_acks > 1)
				d->st.switches++;
			d->setup = a->initial_setup_id;
		}
		d->plan.n = 0;
		if (a->max_frag_size >= 64 && a->max_frag_size < d->cfg.frag_size)
			d->cfg.frag_size = a->max_frag_size;
		d->max_frame_len = a->max_frame_len; /* 0: an older gateway, limit unknown */
		if (d->next_seq < a->min_frame_seq)
			d->next_seq = a->min_frame_seq;
		/* a new session numbers its commands afresh */
		rtci_auth_replay_init(&d->cmd_window);
		ev->kind = RTCI_DEV_EV_HELLO_ACK;
		ev->setup = d->setup;
		return ev->kind;
	}

	if (m.hdr.type == RTCI_PROTO_COMMAND) {
		if ((rc = rtci_auth_replay_accept(&d->cmd_window, m.hdr.seq)) < 0) {
			d->st.commands_replayed++;
			return drop(ev, rc);
		}
		const struct rtci_proto_command *c = &m.u.command;
		if (c->kind == RTCI_PROTO_CMD_MOVE) {
			/* the gateway is draining: no frames until the new one has said yes */
			d->st.moves++;
			d->state = RTCI_DEV_HELLO;
			d->last_hello_ns = INT64_MIN;
			d->redirects = 0;
			ev->kind = RTCI_DEV_EV_MOVE;
			ev->to_ipv4 = c->move_ipv4;
			ev->to_port = c->move_port;
			return ev->kind;
		}
		for (unsigned i = 0; i < c->count; i++)
			if (!supports(d, c->plan[i]))
				return drop(ev, -RTCI_ERR_PROTO_BAD_COMMAND);
		d->st.commands++;
		memcpy(d->plan.setup, c->plan, c->count * sizeof(c->plan[0]));
		d->plan.n = c->count;
		d->plan.from = c->apply_from_seq;
		/* Frames already captured keep their setup. A rate switch then applies from the next
		 * frame; a plan names a setup per frame, so the next frame takes its own step. */
		if (c->count == 1 && d->plan.from < d->next_seq)
			d->plan.from = d->next_seq;
		uint64_t first = d->plan.from > d->next_seq ? d->plan.from : d->next_seq;
		ev->kind = RTCI_DEV_EV_COMMAND;
		ev->setup = (uint16_t)rtci_ctl_plan_setup(&d->plan, first, d->setup);
		ev->apply_from = first;
		return ev->kind;
	}

	/* result */
	struct rtci_dev_inflight *f = &d->inflight[m.hdr.seq % RTCI_DEV_INFLIGHT];
	if (!f->used || f->seq != m.hdr.seq || f->answered || !f->sent) {
		d->st.results_unknown++;
		return drop(ev, -ENOENT);
	}
	f->answered = 1;
	ev->kind = RTCI_DEV_EV_RESULT;
	ev->result = m.u.result;
	ev->latency_ns = now_ns - f->capture_ns;
	ev->setup = f->setup;
	ev->user = f->user;
	d->st.results++;
	if (f->probe && d->cfg.probe_keeps_local && f->has_local) {
		/* measured; rtci_dev_expire gives the frame its local answer at the deadline */
		d->st.probe_results++;
		ev->kind = RTCI_DEV_EV_PROBE;
		return ev->kind;
	}
	/* a frame resolved locally already had its answer: this one can only be late */
	f->resolved |= (uint8_t)(ev->latency_ns <= d->cfg.deadline_ns &&
				 m.u.result.status == RTCI_PROTO_RES_OK);
	if (m.u.result.status != RTCI_PROTO_RES_OK) {
		d->st.results_gw_dropped++;
	} else if (ev->latency_ns > d->cfg.deadline_ns) {
		d->st.results_ok++;
		d->st.results_late++;
	} else {
		d->st.results_ok++;
		ev->hit = 1;
	}
	return ev->kind;
}

const char *rtci_dev_state_name(enum rtci_dev_state s)
{
	switch (s) {
	case RTCI_DEV_HELLO: return "hello";
	case RTCI_DEV_ACTIVE: return "active";
	case RTCI_DEV_REHELLO: return "rehello";
	case RTCI_DEV_REJECTED: return "rejected";
	case RTCI_DEV_BUSY: return "busy";
	}
	return "unknown";
}

const char *rtci_dev_skip_name(enum rtci_dev_skip s)
{
	switch (s) {
	case RTCI_DEV_SKIP_NO_SESSION: return "no_session";
	case RTCI_DEV_SKIP_QUEUE_FULL: return "queue_full";
	case RTCI_DEV_SKIP_LATE: return "late";
	case RTCI_DEV_SKIP_ENCODE: return "encode";
	case RTCI_DEV_SKIP_TOO_BIG: return "too_big";
	case RTCI_DEV_SKIP_MAX: break;
	}
	return "unknown";
}
