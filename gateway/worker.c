/* The worker lcores: each takes released batches from the shared work ring, runs the tail
 * (one oneDNN thread), turns logits into softmax top-k results encoded into each frame's slot,
 * keeps the cost model current, and hands the batch back to its RX lcore's done ring. */
#include "gateway/gw.h"
#include "common/clock.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_pause.h>
#include <rte_ring.h>

void gw_worker_run_batch(struct gw_worker *w, struct gw_batch *b)
{
	struct gw *gw = w->gw;
	uint16_t mi = gw->queue_model[b->queue];
	const struct gw_model *m = &gw->models[mi];
	int classes = m->geo->classes;
	uint64_t start_ns = rtci_mono_ns();
	for (uint32_t i = 0; i < b->n; i++) {
		memcpy(w->input + (size_t)i * m->floats, b->f[i]->x, m->floats * sizeof(float));
		w->setup_ids[i] = b->f[i]->setup;
	}
	uint64_t t0ns = rtci_mono_ns();
	int rc = rtci_tail_run(w->tails[mi], (int)b->n, w->input, w->setup_ids, w->logits);
	uint64_t t1ns = rtci_mono_ns(), t0 = t0ns / 1000, t1 = t1ns / 1000;
	if (rc < 0)
		w->rc = rc;
	rtci_metrics_observe(gw->metrics, w->mslot, gw->s_batch[b->queue], (double)b->n);
	rtci_metrics_observe(gw->metrics, w->mslot, m->s_infer, (double)(t1 - t0) * 1e-6);
	for (uint32_t i = 0; i < b->n; i++) {
		struct gw_frame *f = b->f[i];
		rtci_metrics_observe(gw->metrics, w->mslot, gw->s_qtime[b->queue],
				     (double)(t0 - f->enqueue_us) * 1e-6);
		struct rtci_proto_result res = { 0 };
		if (rc < 0) {
			res.status = RTCI_PROTO_RES_DROPPED_OVERLOAD;
		} else {
			float *lg = w->logits + (size_t)i * classes;
			float mx = lg[0], sum = 0;
			for (int c = 1; c < classes; c++)
				mx = lg[c] > mx ? lg[c] : mx;
			for (int c = 0; c < classes; c++) {
				lg[c] = expf(lg[c] - mx);
				sum += lg[c];
			}
			for (int c = 0; c < classes; c++)
				lg[c] /= sum;
			int idx[GW_TOPK];
			float val[GW_TOPK];
			int k = rtci_topk(lg, classes, GW_TOPK, idx, val);
			res.status = RTCI_PROTO_RES_OK;
			res.class_id = (uint16_t)idx[0];
			res.score = val[0];
			res.topk_count = (uint8_t)k;
			for (int j = 0; j < k; j++) {
				res.topk[j].class_id = (uint16_t)idx[j];
				res.topk[j].score = val[j];
			}
		}
		uint64_t now = rtci_mono_us();
		res.queue_us = (uint32_t)(t0 - f->complete_us);
		res.inference_us = (uint32_t)(t1 - t0);
		res.total_us = (uint32_t)(now - f->first_us);
		struct rtci_proto_frame_info info = { .tenant_id = f->tenant_id,
						      .device_id = f->device_id, .seq = f->seq,
						      .setup_id = f->setup };
		long n = rtci_proto_encode_result(f->out, sizeof(f->out), &info, &res, f->key);
		f->out_len = n > 0 ? (uint16_t)n : 0;
	}
	/* the whole batch, copies and results included, as a worker spends it (and on a shared
	 * machine, with the time other threads took from it meanwhile) */
	if (rc >= 0)
		rtci_cost_observe(&gw->models[mi].cost, b->n, rtci_mono_ns() - start_ns);
}

int gw_worker_main(void *arg)
{
	struct gw_worker *w = arg;
	struct gw *gw = w->gw;
	for (;;) {
		uint64_t t0 = rtci_mono_ns();
		void *p;
		if (rte_ring_dequeue(gw->work, &p) == 0) {
			struct gw_batch *b = p;
			gw_worker_run_batch(w, b);
			atomic_fetch_sub(&gw->inflight_work_us, b->est_us);
			atomic_fetch_sub(&gw->batches_inflight, 1);
			while (rte_ring_enqueue(gw->rx[b->rx].done, b) != 0)
				rte_pause();
			uint64_t t1 = rtci_mono_ns();
			w->busy_ns += t1 - t0;
			w->total_ns += t1 - t0;
		} else {
			if (atomic_load(&gw->rx_done) == gw->nrx)
				break;
			usleep(50);
			w->total_ns += rtci_mono_ns() - t0;
		}
		if (w->total_ns > 100000000) {
			rtci_metrics_gauge_set(gw->metrics, w->mslot, w->s_busy,
					       (double)w->busy_ns / (double)w->total_ns);
			w->busy_ns = w->total_ns = 0;
		}
	}
	return 0;
}


/* The cost model's start: batches of 1, 2, 4, ... and max_batch, each timed after a run that
 * builds its plan, the faster of two kept (real batches keep it current afterwards). */
static int measure_cost(struct gw_worker *w, uint32_t k)
{
	struct gw *gw = w->gw;
	uint32_t mb = gw->cfg->batching.max_batch;
	for (uint32_t n = 1;; n = n * 2 > mb && n < mb ? mb : n * 2) {
		uint64_t best = UINT64_MAX;
		for (int rep = 0; rep < 3; rep++) {
			uint64_t t0 = rtci_mono_ns();
			int rc = rtci_tail_run(w->tails[k], (int)n, w->input, w->setup_ids, w->logits);
			uint64_t dt = rtci_mono_ns() - t0;
			if (rc < 0)
				return rc;
			if (rep > 0 && dt < best)
				best = dt;
		}
		rtci_cost_observe(&gw->models[k].cost, n, best);
		if (n >= mb)
			break;
	}
	return 0;
}

int gw_worker_init(struct gw *gw, struct gw_worker *w, char *err, size_t errlen)
{
	w->gw = gw;
	uint32_t floats = 0, classes = 0, mb = gw->cfg->batching.max_batch;
	w->tails = calloc(gw->nmodels, sizeof(*w->tails));
	if (!w->tails)
		return -ENOMEM;
	for (uint32_t k = 0; k < gw->nmodels; k++) {
		const struct gw_model *m = &gw->models[k];
		floats = m->floats > floats ? m->floats : floats;
		classes = (uint32_t)m->geo->classes > classes ? (uint32_t)m->geo->classes : classes;
		struct rtci_engine_config ec = { .threads = 1, .max_batch = (int)mb,
						 .precision = gw->cfg->models[k].precision };
		int rc = rtci_tail_create(m->model, &ec, &w->tails[k]);
		/* folded weights of every setup now, not on the first frames */
		for (int s = 0; rc == 0 && s < m->setups; s++)
			rc = rtci_tail_prepare(w->tails[k], s);
		if (rc < 0) {
			snprintf(err, errlen, "tail of model %s: %s", m->name, rtci_strerror(rc));
			return rc;
		}
	}
	w->input = calloc((size_t)mb * floats, sizeof(float));
	w->logits = malloc((size_t)mb * classes * sizeof(float));
	w->setup_ids = calloc(mb, sizeof(int));
	if (!w->input || !w->logits || !w->setup_ids)
		return -ENOMEM;
	/* oneDNN plans are built per batch size on first use: build the common sizes now */
	for (uint32_t k = 0; k < gw->nmodels; k++) {
		for (uint32_t n = 1; n <= mb && n <= 16; n++) {
			int rc = rtci_tail_run(w->tails[k], (int)n, w->input, w->setup_ids, w->logits);
			if (rc < 0) {
				snprintf(err, errlen, "tail of model %s: %s", gw->models[k].name,
					 rtci_strerror(rc));
				return rc;
			}
		}
		int rc = measure_cost(w, k);
		if (rc < 0) {
			snprintf(err, errlen, "tail of model %s: %s", gw->models[k].name,
				 rtci_strerror(rc));
			return rc;
		}
	}
	char lc[16];
	snprintf(lc, sizeof(lc), "%u", w->lcore);
	int f = rtci_metrics_family(gw->metrics, "rtci_lcore_busy_ratio",
				    "share of time an lcore did work", RTCI_METRIC_GAUGE, NULL, 0, 0);
	const char *ln[] = { "lcore", "role" }, *lv[] = { lc, "worker" };
	if (f < 0 || (w->s_busy = rtci_metrics_series(gw->metrics, f, 2, ln, lv)) < 0) {
		snprintf(err, errlen, "metrics: registry full");
		return -RTCI_ERR_METRICS_FULL;
	}
	return 0;
}

void gw_worker_fini(struct gw_worker *w)
{
	if (w->tails)
		for (uint32_t k = 0; k < w->gw->nmodels; k++)
			rtci_tail_destroy(w->tails[k]);
	free(w->tails);
	free(w->input);
	free(w->logits);
	free(w->setup_ids);
}
