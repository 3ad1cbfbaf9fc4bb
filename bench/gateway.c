/* Gateway worker stage and device table.
 *
 *   rtci-bench-gateway --model FILE [--batches 1,8,32] [--runs 5] [--iters N] [--devices 10000]
 *                      [--csv FILE]
 *
 * 1. Worker throughput: frames/s through gw_worker_run_batch (copy of the decoded tensors into
 *    the batch, tail on oneDNN with one thread, softmax, top-5, authenticated result datagram
 *    per frame) against rtci_tail_run alone on the same executor settings, batch and setup
 *    (the bench/tail figure), measured in the same run. Medians of --runs.
 * 2. Mean batch size: the batcher (max_batch 8, max_wait 2 ms) fed with Poisson arrivals at
 *    10%, 50% and 90% of one worker's capacity, served with the worker times measured in 1,
 *    simulated in virtual time.
 * 3. Memory per registered device: a tenant with --devices derived devices, all activated
 *    (state + hash slot), and the cost of activating one (key derivation included). */
#include "common/clock.h"
#include "gateway/gw.h"
#include "gateway/control_glue.h"
#include "control/model_table.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bench_util.h"

static uint64_t rng = 88172645463325252ull;
static double urand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

struct opts {
	const char *model_path, *csv;
	int batches[8], nb, runs, iters, devices;
	int maxb; /* the largest batch run, at least the batcher's 8 */
};

static int parse_args(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){ .batches = { 1, 8, 32 }, .nb = 3, .runs = 5, .devices = 10000 };
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--model") && i + 1 < argc) o->model_path = argv[++i];
		else if (!strcmp(argv[i], "--csv") && i + 1 < argc) o->csv = argv[++i];
		else if (!strcmp(argv[i], "--batches") && i + 1 < argc) o->nb = bench_parse_int_list(argv[++i], o->batches, 8);
		else if (!strcmp(argv[i], "--runs") && i + 1 < argc) o->runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--iters") && i + 1 < argc) o->iters = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--devices") && i + 1 < argc) o->devices = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: %s --model FILE [--batches 1,8,32] [--runs 5] [--iters N] "
					"[--devices 10000] [--csv FILE]\n", argv[0]);
			return -1;
		}
	}
	if (!o->model_path || o->runs < 1 || o->devices < 1) {
		fprintf(stderr, "--model is required\n");
		return -1;
	}
	o->maxb = 8;
	for (int i = 0; i < o->nb; i++)
		o->maxb = o->batches[i] > o->maxb ? o->batches[i] : o->maxb;
	if (o->maxb > RTCI_BATCHER_MAX_BATCH)
		o->maxb = RTCI_BATCHER_MAX_BATCH;
	return 0;
}

/* A gateway with one RX lcore, one worker and the model: just enough for the worker and the
 * device table to run outside DPDK. */
static int setup_gateway(const struct opts *o, struct gw *g, struct rtci_gateway_config *cfg,
			 struct gw_model *md)
{
	cfg->batching.max_batch = (uint32_t)o->maxb;
	cfg->batching.max_wait_us = 2000;
	cfg->batching.queue_capacity = 1024;
	cfg->control.policy = RTCI_POLICY_MPC;
	cfg->control.horizon = 5;
	g->cfg = cfg;
	g->nrx = 1;
	g->nworkers = 1;
	struct rtci_metrics_limits lim = { .slots = 2, .series = 8192, .cells = 65536 };
	char err[512];
	if (rtci_auth_init() < 0 || rtci_metrics_create(&lim, &g->metrics) < 0)
		return -1;
	snprintf(md->name, sizeof(md->name), "bench");
	if (rtci_model_load(o->model_path, &md->model, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	md->geo = rtci_model_geometry(md->model);
	md->setups = rtci_model_setup_count(md->model);
	md->groups = rtci_model_group_count(md->model);
	md->pc = md->geo->stem_out;
	rtci_geometry_partition_size(md->geo, &md->ph, &md->pw);
	md->floats = (uint32_t)(md->pc * md->ph * md->pw);
	if (rtci_ctl_table_from_model(md->model, true, &md->table, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	g->nmodels = 1;
	g->models = md;
	g->nqueues = (uint32_t)md->groups + 1;
	static uint16_t qm[64];
	static int sb[64], sq[64], sd[64];
	for (int i = 0; i < 64; i++)
		sb[i] = sq[i] = sd[i] = -1; /* not registered: updates ignored */
	md->s_infer = -1;
	g->queue_model = qm;
	g->s_batch = sb;
	g->s_qtime = sq;
	g->s_qdepth = sd;
	return 0;
}

/* Repetitions of a batch that take about 0.3 s, unless --iters says. */
static int iterations(const struct opts *o, struct rtci_tail *base, int b, const float *input,
		      const int *ids, float *logits)
{
	if (o->iters > 0)
		return o->iters;
	double t0 = rtci_mono_s();
	rtci_tail_run(base, b, input, ids, logits);
	double dt = rtci_mono_s() - t0;
	int it = (int)(0.3 / (dt > 1e-6 ? dt : 1e-6));
	return it < 3 ? 3 : it > 20000 ? 20000 : it;
}

/* 1. Worker throughput against the tail alone; fills per_batch_us[] for part 2. */
static int bench_worker(const struct opts *o, struct gw *g, struct gw_model *md, FILE *out,
			double *per_batch_us)
{
	char err[512];
	int maxb = o->maxb, rc = -1;
	struct gw_worker w = { .lcore = 1, .mslot = 1 };
	if (gw_worker_init(g, &w, err, sizeof(err)) < 0) {
		fprintf(stderr, "worker: %s\n", err);
		return -1;
	}
	struct rtci_engine_config ec = { .threads = 1, .max_batch = maxb };
	struct rtci_tail *base = NULL;
	if (rtci_tail_create(md->model, &ec, &base) < 0) {
		gw_worker_fini(&w);
		return -1;
	}
	/* the largest setup with 8-bit codes: the gateway's typical wide frame */
	int setup = rtci_model_find_setup(md->model, md->pc, 255);
	if (setup < 0)
		setup = md->setups - 1;
	rtci_tail_prepare(base, setup);
	struct gw_frame *frames = calloc((size_t)maxb, sizeof(*frames));
	float *xs = calloc((size_t)maxb * md->floats, sizeof(float));
	float *input = calloc((size_t)maxb * md->floats, sizeof(float));
	float *logits = calloc((size_t)maxb * md->geo->classes, sizeof(float));
	int *ids = calloc((size_t)maxb, sizeof(int));
	static struct gw_batch batch;
	if (!frames || !xs || !input || !logits || !ids)
		goto done;
	for (int i = 0; i < maxb; i++) {
		frames[i].x = xs + (size_t)i * md->floats;
		for (uint32_t k = 0; k < md->floats; k++)
			frames[i].x[k] = (float)urand() * 2.0f;
		memcpy(input + (size_t)i * md->floats, frames[i].x, md->floats * sizeof(float));
		frames[i].setup = (uint16_t)setup;
		frames[i].tenant_id = 1;
		frames[i].device_id = (uint32_t)i + 1;
		frames[i].seq = 100;
		ids[i] = setup;
		batch.f[i] = &frames[i];
	}
	printf("bench/gateway: model %s (%s), setup %d (c %d, L %d), one oneDNN thread\n",
	       o->model_path, md->geo->name, setup, rtci_model_setup(md->model, setup)->c,
	       rtci_model_setup(md->model, setup)->L);
	printf("%6s %14s %14s %7s\n", "batch", "worker fr/s", "tail fr/s", "ratio");
	for (int bi = 0; bi < o->nb; bi++) {
		int b = o->batches[bi] > maxb ? maxb : o->batches[bi];
		batch.n = (uint32_t)b;
		batch.queue = 0;
		int it = iterations(o, base, b, input, ids, logits);
		double vw[32], vb[32];
		int r = o->runs > 32 ? 32 : o->runs;
		for (int k = 0; k < r; k++) {
			double t0 = rtci_mono_s();
			for (int j = 0; j < it; j++)
				rtci_tail_run(base, b, input, ids, logits);
			double t1 = rtci_mono_s();
			for (int j = 0; j < it; j++)
				gw_worker_run_batch(&w, &batch);
			double t2 = rtci_mono_s();
			vb[k] = (double)b * it / (t1 - t0);
			vw[k] = (double)b * it / (t2 - t1);
		}
		double mw = bench_median(vw, r), mb = bench_median(vb, r);
		per_batch_us[bi] = 1e6 * b / mw;
		printf("%6d %14.0f %14.0f %7.3f\n", b, mw, mb, mw / mb);
		if (out)
			fprintf(out, "worker,%d,%d,%.1f,%.1f,%.4f,\n", b, r, mw, mb, mw / mb);
	}
	rc = 0;
done:
	gw_worker_fini(&w);
	rtci_tail_destroy(base);
	free(frames);
	free(xs);
	free(input);
	free(logits);
	free(ids);
	return rc;
}

/* Mean batch size of one batcher served at base_us + per_item x n, Poisson arrivals at rate
 * frames/us, in virtual time. */
static double simulate_batcher(int simb, double base_us, double per_item, double rate,
			       uint64_t *dropped_out)
{
	struct rtci_batcher *bt = NULL;
	struct rtci_batcher_config bc = { .queues = 1, .tenants = 1, .max_batch = (uint32_t)simb,
					  .max_wait_us = 2000, .capacity = 4096 };
	if (rtci_batcher_create(&bc, &bt) < 0)
		return -1;
	rtci_batcher_set_cost(bt, 0, (uint64_t)base_us, (uint64_t)ceil(per_item));
	double t = 0, next = -log(1 - urand()) / rate, free_at = 0;
	uint64_t batches_n = 0, frames_n = 0, dropped = 0;
	static struct rtci_batcher_item items[RTCI_BATCHER_MAX_BATCH];
	const int total = 20000;
	int sent = 0;
	while (sent < total || frames_n + dropped < (uint64_t)sent) {
		/* next event: an arrival, the worker freeing up, or a batch falling due */
		double due = (double)rtci_batcher_next_due_us(bt, (uint64_t)t);
		double tw = free_at > t ? free_at : t;
		double te = sent < total ? next : 1e300;
		double tp = tw > due ? tw : due;
		t = te < tp ? te : tp;
		if (t == te) {
			if (rtci_batcher_submit(bt, 0, 0, (void *)1, (uint64_t)t + 100000, (uint64_t)t) < 0)
				dropped++;
			sent++;
			next = t - log(1 - urand()) / rate;
			continue;
		}
		uint32_t q;
		int n = rtci_batcher_poll(bt, (uint64_t)t, items, &q);
		if (n > 0) {
			batches_n++;
			frames_n += (uint64_t)n;
			free_at = t + base_us + per_item * n;
		} else {
			t += 1; /* nothing due yet at this microsecond */
		}
		struct rtci_batcher_stats st;
		rtci_batcher_queue_stats(bt, 0, &st);
		dropped = st.drops[RTCI_BATCHER_DROP_DEADLINE] + st.drops[RTCI_BATCHER_DROP_QUEUE_FULL];
		if (sent >= total && st.depth == 0)
			break;
	}
	rtci_batcher_destroy(bt);
	*dropped_out = dropped;
	return batches_n ? (double)frames_n / (double)batches_n : 0;
}

/* 2. Mean batch size under Poisson load, with the service times measured in part 1. */
static int bench_batcher(const struct opts *o, const double *per_batch_us, FILE *out)
{
	/* service time of a batch of n: linear through the measured batch sizes' extremes */
	int simb = 8, hi = o->nb - 1;
	for (int i = o->nb - 1; i > 0; i--) /* the largest measured size up to max_batch */
		if (o->batches[i] <= simb && o->batches[i] > o->batches[0]) {
			hi = i;
			break;
		}
	int b_lo = o->batches[0], b_hi = o->batches[hi];
	double t_lo = per_batch_us[0], t_hi = per_batch_us[hi];
	double per_item = b_hi > b_lo ? (t_hi - t_lo) / (b_hi - b_lo) : t_lo;
	double base_us = t_lo - per_item * b_lo;
	if (base_us < 0)
		base_us = 0;
	double cap = simb / (base_us + per_item * simb) * 1e6; /* frames/s at full batches */
	printf("batcher: max_batch %d, max_wait 2000 us, service %.0f + %.1f x n us, capacity %.0f fr/s\n",
	       simb, base_us, per_item, cap);
	static const double loads[3] = { 0.1, 0.5, 0.9 };
	for (int li = 0; li < 3; li++) {
		double rate = loads[li] * cap / 1e6; /* frames per us */
		uint64_t dropped = 0;
		double mean = simulate_batcher(simb, base_us, per_item, rate, &dropped);
		if (mean < 0)
			return -1;
		printf("load %3.0f%%: %6.0f fr/s offered, mean batch size %.2f, %lu deadline/queue drops\n",
		       loads[li] * 100, rate * 1e6, mean, (unsigned long)dropped);
		if (out)
			fprintf(out, "mean_batch,%d,1,%.1f,%.1f,%.4f,load=%.2f\n", simb, rate * 1e6, cap,
				mean, loads[li]);
	}
	return 0;
}

/* One tenant with `devices` derived devices. */
static struct rtci_tenants_config *bench_tenants(int devices)
{
	struct rtci_tenants_config *tc = calloc(1, sizeof(*tc));
	struct rtci_config_tenant *tn = calloc(1, sizeof(*tn));
	if (!tc || !tn) {
		free(tc);
		free(tn);
		return NULL;
	}
	tc->count = 1;
	tc->tenants = tn;
	tn->id = 1;
	snprintf(tn->name, sizeof(tn->name), "bench");
	for (int i = 0; i < 32; i++)
		tn->key[i] = (uint8_t)(i * 7 + 1);
	tn->deadline_ms = 100;
	tn->fps = 10;
	tn->weight = 1;
	tn->quota.devices = (uint32_t)devices;
	tn->quota.frames_per_s = 1000000;
	tn->quota.reassembly_bytes = 1u << 30;
	tn->derive = true;
	tn->derive_first = 1;
	tn->derive_last = (uint32_t)devices;
	return tc;
}

/* 3. Memory per registered device, activation and lookup cost. */
static int bench_devices(const struct opts *o, struct gw *g, FILE *out)
{
	char err[512];
	int devices = o->devices;
	struct rtci_tenants_config *tc = bench_tenants(devices);
	if (!tc)
		return -1;
	struct gw_table *t = NULL;
	struct gw_rx rx0 = { 0 };
	g->rx[0] = rx0;
	g->rx[0].mslot = 1;
	if (gw_table_build(g, tc, 1, &t, err, sizeof(err)) < 0) {
		fprintf(stderr, "table: %s\n", err);
		free(tc->tenants);
		free(tc);
		return -1;
	}
	struct gw_tenant *gt = gw_table_tenant(t, 1);
	double t0 = rtci_mono_s();
	int active = 0;
	for (int d = 1; d <= devices; d++) {
		uint8_t key[32];
		if (gw_tenant_device_key(gt, (uint32_t)d, key) == 0 &&
		    gw_table_activate(g, t, gt, (uint32_t)d, key, 0))
			active++;
	}
	double act_us = (rtci_mono_s() - t0) * 1e6 / devices;
	double lookups = rtci_mono_s();
	uint64_t found = 0;
	for (int k = 0; k < 10; k++)
		for (int d = 1; d <= devices; d++)
			found += gw_table_device(t, 1, (uint32_t)d) != NULL;
	double look_ns = (rtci_mono_s() - lookups) * 1e9 / (10.0 * devices);
	size_t bytes = (size_t)gt->pool_size * sizeof(struct gw_device) +
		       ((size_t)t->hmask + 1) * sizeof(struct gw_hslot);
	printf("devices: %d active of %d, %zu bytes of state each (struct gw_device %zu, of which "
	       "controller %zu, replay window %zu), %.0f bytes per device with the hash; "
	       "activation %.2f us (key derivation included), lookup %.1f ns (%lu found)\n",
	       active, devices, bytes / (size_t)devices, sizeof(struct gw_device),
	       sizeof(struct rtci_ctl_device), sizeof(struct rtci_auth_replay),
	       (double)bytes / devices, act_us, look_ns, (unsigned long)found);
	if (out)
		fprintf(out, "device_memory,%d,1,%.1f,%zu,,activation_us=%.3f lookup_ns=%.1f\n", devices,
			(double)bytes / devices, sizeof(struct gw_device), act_us, look_ns);
	t->cfg = NULL; /* ours, freed below */
	gw_table_free(g, t);
	free(tc->tenants);
	free(tc);
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	if (parse_args(argc, argv, &o) < 0)
		return 2;
	static struct gw g;
	static struct rtci_gateway_config cfg;
	static struct gw_model md;
	if (setup_gateway(&o, &g, &cfg, &md) < 0)
		return 1;
	FILE *out = o.csv ? fopen(o.csv, "w") : NULL;
	if (out)
		fprintf(out, "kind,batch,runs,median_frames_s,baseline_frames_s,ratio,extra\n");
	double per_batch_us[8] = { 0 };
	int rc = bench_worker(&o, &g, &md, out, per_batch_us) < 0 ||
		 bench_batcher(&o, per_batch_us, out) < 0 || bench_devices(&o, &g, out) < 0;
	if (out)
		fclose(out);
	for (uint32_t s = 0; s < g.ntslots; s++)
		free(g.tseries[s].setup);
	rtci_metrics_destroy(g.metrics);
	rtci_model_destroy(md.model);
	return rc;
}
