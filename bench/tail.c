/* Tail throughput of the SW-CNN on oneDNN: images/s per (threads, batch), the two ways of applying
 * a setup's BatchNorm (shared weights + affine post-ops against per-setup folded weights, timed
 * alternately in the same run), achieved GFLOP/s, this machine's sgemm peak from the same run, and
 * the memory of a loaded model with every setup ready in each mode.
 *   rtci-bench-tail --model FILE [--batches 1,8,32,64] [--threads 1,2] [--runs 5] [--csv FILE]
 *                   [--mix-batch 32] [--no-mix] [--sub-batches 1,2,4,8,16,32] [--no-sub]
 *                   [--precision-batch 32] [--no-precision] [--no-memory]
 * The precision section times fp32, int8 and auto on one tail, one batch each in turn, and prints
 * the medians and the medians of the per-round ratios int8/fp32 and auto/fp32 (the model file needs
 * its int8 calibration: python3 -m training calibrate FILE --data synthetic).
 * CSV rows: kind,threads,batch,mode,mix,median_img_s,gflops */
#include <dnnl.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/rtci_error.h"
#include "inference/engine.h"
#include "inference/model.h"
#include "bench_util.h"

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

/* Warms up and returns how many back-to-back batches make ~0.2 s (0 on a failed run). */
static int warm_iters(struct rtci_tail *t, enum rtci_tail_mode mode, int n, const float *x, const int *ids,
		      float *lg)
{
	for (int w = 0; w < 2; w++)
		if (rtci_tail_run_mode(t, mode, n, x, ids, lg) != 0)
			return 0;
	double t0 = rtci_mono_s();
	rtci_tail_run_mode(t, mode, n, x, ids, lg);
	double one = rtci_mono_s() - t0;
	return one > 0.2 ? 1 : (int)(0.2 / (one > 1e-6 ? one : 1e-6)) + 1;
}

static double rate(struct rtci_tail *t, enum rtci_tail_mode mode, int n, const float *x, const int *ids,
		   float *lg, int iters)
{
	double t0 = rtci_mono_s();
	for (int i = 0; i < iters; i++)
		rtci_tail_run_mode(t, mode, n, x, ids, lg);
	return (double)n * iters / (rtci_mono_s() - t0);
}

/* Median images/s of `runs` timed repeats, each at least ~0.2 s of back-to-back batches. */
static double measure(struct rtci_tail *t, enum rtci_tail_mode mode, int n, const float *x, const int *ids,
		      float *lg, int runs)
{
	double v[32];
	int iters = warm_iters(t, mode, n, x, ids, lg);
	if (!iters)
		return -1;
	for (int r = 0; r < runs && r < 32; r++)
		v[r] = rate(t, mode, n, x, ids, lg, iters);
	return bench_median(v, runs < 32 ? runs : 32);
}

/* Two modes timed alternately, one batch each (A, B, A, B, ...), so that load changes on a shared
 * machine hit both alike: medians of each and the median of the per-pair ratios B/A over 3 x runs
 * pairs (at most 32). */
static void measure_pair(struct rtci_tail *ta, enum rtci_tail_mode ma, struct rtci_tail *tb,
			 enum rtci_tail_mode mb, int n, const float *x, const int *ids, float *lg, int runs,
			 double *a, double *b, double *ratio)
{
	double va[32], vb[32], vr[32];
	int k = 3 * runs < 32 ? 3 * runs : 32;
	if (!warm_iters(ta, ma, n, x, ids, lg) || !warm_iters(tb, mb, n, x, ids, lg)) {
		*a = *b = *ratio = -1;
		return;
	}
	for (int r = 0; r < k; r++) {
		va[r] = rate(ta, ma, n, x, ids, lg, 1);
		vb[r] = rate(tb, mb, n, x, ids, lg, 1);
		vr[r] = vb[r] / va[r];
	}
	*a = bench_median(va, k);
	*b = bench_median(vb, k);
	*ratio = bench_median(vr, k);
}

/* fp32, int8 and auto on one tail, one batch each in turn (so load changes hit all three alike):
 * medians of each (img/s) into v[0..2] and of the per-round ratios int8/fp32, auto/fp32 into r[0..1]
 * over 3 x runs rounds (at most 32). Returns 0 or the engine's code. */
static int measure_precisions(struct rtci_tail *t, int n, const float *x, const int *ids, float *lg, int runs,
			      double v[3], double r[2])
{
	static const enum rtci_tail_precision pr[3] = { RTCI_PRECISION_FP32, RTCI_PRECISION_INT8,
							RTCI_PRECISION_AUTO };
	double vv[3][32], rr[2][32];
	int k = 3 * runs < 32 ? 3 * runs : 32, rc;
	for (int w = 0; w < 3; w++)
		for (int j = 0; j < 2; j++)
			if ((rc = rtci_tail_run_precision(t, pr[w], n, x, ids, lg)))
				return rc;
	for (int i = 0; i < k; i++) {
		for (int w = 0; w < 3; w++) {
			double t0 = rtci_mono_s();
			rtci_tail_run_precision(t, pr[w], n, x, ids, lg);
			vv[w][i] = n / (rtci_mono_s() - t0);
		}
		rr[0][i] = vv[1][i] / vv[0][i];
		rr[1][i] = vv[2][i] / vv[0][i];
	}
	for (int w = 0; w < 3; w++)
		v[w] = bench_median(vv[w], k);
	r[0] = bench_median(rr[0], k);
	r[1] = bench_median(rr[1], k);
	return 0;
}

/* The precision section for one thread count (see the header). */
static void precision_section(struct rtci_model *m, int threads, int n, int setup, const float *x, int *ids,
			      float *lg, int runs, FILE *out)
{
	struct rtci_tail *t;
	struct rtci_engine_config cfg = { .threads = threads, .max_batch = n, .precision = RTCI_PRECISION_INT8 };
	int rc = rtci_tail_create(m, &cfg, &t);
	if (rc) {
		printf("  precision: int8 skipped: %s\n", rtci_strerror(rc));
		return;
	}
	for (int i = 0; i < n; i++)
		ids[i] = setup;
	double v[3], r[2];
	if ((rc = measure_precisions(t, n, x, ids, lg, runs, v, r))) {
		printf("  precision: %s\n", rtci_strerror(rc));
		rtci_tail_destroy(t);
		return;
	}
	int nl = rtci_tail_int8_layer(t, RTCI_PRECISION_AUTO, -1), na = 0;
	for (int i = 0; i < nl; i++)
		na += rtci_tail_int8_layer(t, RTCI_PRECISION_AUTO, i);
	printf("  batch %d, %d thread%s: fp32 %8.1f img/s, int8 %8.1f img/s, auto (%d of %d convolutions int8) "
	       "%8.1f img/s; int8/fp32 %.3f, auto/fp32 %.3f (medians of %d rounds; goal >= 1.4 at 2 threads)\n",
	       n, threads, threads == 1 ? "" : "s", v[0], v[1], na, nl, v[2], r[0], r[1],
	       3 * runs < 32 ? 3 * runs : 32);
	if (out) {
		static const char *const nm[3] = { "fp32", "int8", "auto" };
		for (int w = 0; w < 3; w++)
			fprintf(out, "precision,%d,%d,%s,1,%.2f,0\n", threads, n, nm[w], v[w]);
		fprintf(out, "precision,%d,%d,int8_over_fp32,1,%.4f,0\n", threads, n, r[0]);
		fprintf(out, "precision,%d,%d,auto_over_fp32,1,%.4f,0\n", threads, n, r[1]);
	}
	rtci_tail_destroy(t);
}

/* Loads a tail in `mode` with every setup ready, runs a batch of 32 mixing setups, prints what it
 * holds. Returns the bytes the engine reports (weights, tables, activations). */
static double memory_check(struct rtci_model *m, enum rtci_tail_mode mode, enum rtci_tail_precision prec,
			   const float *x, float *lg)
{
	long rss0 = rss_kb();
	struct rtci_tail *t;
	struct rtci_engine_config cfg = { .threads = 1, .max_batch = 32, .mode = mode, .precision = prec };
	if (rtci_tail_create(m, &cfg, &t))
		return -1;
	for (int s = 0; s < rtci_model_setup_count(m); s++)
		rtci_tail_prepare(t, s);
	int all[32];
	for (int i = 0; i < 32; i++)
		all[i] = i % rtci_model_setup_count(m);
	rtci_tail_run(t, 32, x, all, lg);
	struct rtci_tail_stats st;
	rtci_tail_stats(t, &st);
	double engine = (double)(st.folded_bytes + st.shared_bytes + st.bn_table_bytes + st.activation_bytes +
				 st.int8_bytes);
	printf("memory (%s, %s), %d setups ready: model file %.1f MB (mmap), per-setup weights %.1f MB "
	       "(%.2f MB each), shared weights %.1f MB, BN table %.2f MB, int8 weights and scale tables "
	       "%.1f MB, activations+scratch %.1f MB; engine total %.1f MB, process RSS grew %.1f MB\n",
	       mode == RTCI_TAIL_AFFINE ? "affine" : "folded", rtci_precision_name(st.precision),
	       st.ready_setups, st.model_bytes / 1e6,
	       st.folded_bytes / 1e6, st.folded_bytes / 1e6 / rtci_model_setup_count(m), st.shared_bytes / 1e6,
	       st.bn_table_bytes / 1e6, st.int8_bytes / 1e6, st.activation_bytes / 1e6, engine / 1e6,
	       (rss_kb() - rss0) / 1e3);
	rtci_tail_destroy(t);
	return engine;
}

static double sgemm_peak(int threads, int runs)
{
	const int M = 1024, N = 1024, K = 1024;
	float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N), *c = malloc(sizeof(float) * M * N);
	for (int i = 0; i < M * K; i++)
		a[i] = (float)(i % 7) * 0.1f;
	for (int i = 0; i < K * N; i++)
		b[i] = (float)(i % 5) * 0.1f;
	int saved = omp_get_max_threads();
	omp_set_num_threads(threads);
	double v[32];
	dnnl_sgemm('N', 'N', M, N, K, 1.0f, a, K, b, N, 0.0f, c, N);
	for (int r = 0; r < runs && r < 32; r++) {
		double t0 = rtci_mono_s();
		int it = 0;
		do {
			dnnl_sgemm('N', 'N', M, N, K, 1.0f, a, K, b, N, 0.0f, c, N);
			it++;
		} while (rtci_mono_s() - t0 < 0.2);
		v[r] = 2.0 * M * N * K * it / (rtci_mono_s() - t0) / 1e9;
	}
	omp_set_num_threads(saved);
	free(a); free(b); free(c);
	return bench_median(v, runs < 32 ? runs : 32);
}

int main(int argc, char **argv)
{
	const char *model = NULL, *csv = NULL;
	int batches[8] = { 1, 8, 32, 64 }, nb = 4, threads[4] = { 1, 2 }, nt = 2, runs = 5, mix_batch = 32;
	int do_mix = 1, subs[8] = { 1, 2, 4, 8, 16, 32 }, nsubs = 6, prec_batch = 32, do_memory = 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
		else if (!strcmp(argv[i], "--csv") && i + 1 < argc) csv = argv[++i];
		else if (!strcmp(argv[i], "--batches") && i + 1 < argc) nb = bench_parse_int_list(argv[++i], batches, 8);
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc) nt = bench_parse_int_list(argv[++i], threads, 4);
		else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--mix-batch") && i + 1 < argc) mix_batch = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--no-mix")) do_mix = 0;
		else if (!strcmp(argv[i], "--sub-batches") && i + 1 < argc) nsubs = bench_parse_int_list(argv[++i], subs, 8);
		else if (!strcmp(argv[i], "--no-sub")) nsubs = 0;
		else if (!strcmp(argv[i], "--precision-batch") && i + 1 < argc) prec_batch = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--no-precision")) prec_batch = 0;
		else if (!strcmp(argv[i], "--no-memory")) do_memory = 0;
		else {
			fprintf(stderr, "usage: rtci-bench-tail --model FILE [--batches 1,8,32,64] [--threads 1,2] "
				"[--runs 5] [--csv FILE] [--mix-batch 32] [--no-mix] [--sub-batches 1,2,4,8,16,32] [--no-sub] "
				"[--precision-batch 32] [--no-precision] [--no-memory]\n");
			return 2;
		}
	}
	if (!model || runs < 1 || prec_batch < 0 || prec_batch > 256)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	char err[512];
	struct rtci_model *m;
	if (rtci_model_load(model, &m, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	const struct rtci_geometry *g = rtci_model_geometry(m);
	int ph, pw, maxb = mix_batch > 32 ? mix_batch : 32;   /* the memory check runs batch 32 */
	if (prec_batch > maxb)
		maxb = prec_batch;
	rtci_geometry_partition_size(g, &ph, &pw);
	for (int i = 0; i < nb; i++)
		if (batches[i] > maxb)
			maxb = batches[i];
	size_t frame = (size_t)g->stem_out * ph * pw;
	double gflop_img = 2.0 * (double)rtci_geometry_tail_macs(g) / 1e9;
	float *x = malloc((size_t)maxb * frame * sizeof(float)), *lg = malloc((size_t)maxb * g->classes * sizeof(float));
	int *ids = malloc((size_t)maxb * sizeof(int));
	srand(1);
	for (size_t i = 0; i < (size_t)maxb * frame; i++)
		x[i] = (float)(rand() % 600) / 100.0f;
	FILE *out = csv ? fopen(csv, "w") : NULL;
	if (out)
		fprintf(out, "kind,threads,batch,mode,mix,median_img_s,gflops\n");
	int big = rtci_model_find_setup(m, 32, 65535);
	if (big < 0)
		big = rtci_model_setup_count(m) - 1;
	printf("model %s (%s), tail %.3f GFLOP per image, %d runs per point (medians)\n", model, g->name,
	       gflop_img, runs);

	/* memory with every setup ready, the default (affine) first: RSS only grows */
	if (do_memory) {
		double af = memory_check(m, RTCI_TAIL_AFFINE, RTCI_PRECISION_FP32, x, lg);
		double fo = memory_check(m, RTCI_TAIL_FOLDED, RTCI_PRECISION_FP32, x, lg);
		double q8 = memory_check(m, RTCI_TAIL_AFFINE, RTCI_PRECISION_INT8, x, lg);
		if (af < 0 || fo < 0) {
			fprintf(stderr, "tail create failed\n");
			return 1;
		}
		printf("memory with every setup ready: affine %.1f MB, folded %.1f MB, int8 %.1f MB (goal <= 100 MB)\n",
		       af / 1e6, fo / 1e6, q8 / 1e6);
		if (out) {
			fprintf(out, "memory,1,32,affine,%d,%.0f,%.0f\n", rtci_model_setup_count(m), af, 0.0);
			fprintf(out, "memory,1,32,folded,%d,%.0f,%.0f\n", rtci_model_setup_count(m), fo, 0.0);
		}
	}

	for (int ti = 0; ti < nt; ti++) {
		double peak = sgemm_peak(threads[ti], runs);
		printf("threads %d: sgemm 1024^3 peak %.1f GFLOP/s\n", threads[ti], peak);
		if (out)
			fprintf(out, "sgemm,%d,0,-,-,0,%.2f\n", threads[ti], peak);
		struct rtci_tail *t;
		/* fp32 from here on: the rates against sgemm and PyTorch, the BN modes, the sub-batches */
		struct rtci_engine_config cfg = { .threads = threads[ti], .max_batch = maxb,
						  .precision = RTCI_PRECISION_FP32 };
		if (prec_batch)
			precision_section(m, threads[ti], prec_batch, big, x, ids, lg, runs, out);
		if (rtci_tail_create(m, &cfg, &t)) {
			fprintf(stderr, "tail create failed\n");
			return 1;
		}
		for (int i = 0; i < maxb; i++)
			ids[i] = big;
		for (int bi = 0; bi < nb; bi++) {
			double ips = measure(t, RTCI_TAIL_AUTO, batches[bi], x, ids, lg, runs);
			printf("  batch %3d: %8.1f img/s  %6.1f GFLOP/s (%4.1f%% of sgemm)\n", batches[bi], ips,
			       ips * gflop_img, 100.0 * ips * gflop_img / peak);
			if (out)
				fprintf(out, "tail,%d,%d,%s,1,%.2f,%.2f\n", threads[ti], batches[bi],
					rtci_tail_mode(t) == RTCI_TAIL_AFFINE ? "affine" : "folded", ips, ips * gflop_img);
		}
		if (do_mix) {
			/* affine (shared weights) against folded per-setup weights, alternately timed */
			struct rtci_tail *tf;
			struct rtci_engine_config fc = cfg;
			fc.mode = RTCI_TAIL_FOLDED;
			if (rtci_tail_create(m, &fc, &tf))
				return 1;
			static const int mixes[3] = { 1, 3, 10 };
			for (int k = 0; k < 3; k++) {
				int ns = rtci_model_setup_count(m);
				for (int i = 0; i < mix_batch; i++)
					ids[i] = mixes[k] == 1 ? big : (i % mixes[k]) * (ns / mixes[k]);
				double f, a, r;
				measure_pair(tf, RTCI_TAIL_FOLDED, t, RTCI_TAIL_AFFINE, mix_batch, x, ids, lg, runs,
					     &f, &a, &r);
				printf("  batch %d, %2d setup%s: folded %8.1f img/s, affine %8.1f img/s, affine/folded "
				       "%.3f (median of %d alternating pairs; goal >= 0.97)\n", mix_batch, mixes[k],
				       mixes[k] > 1 ? "s" : " ", f, a, r, 3 * runs < 32 ? 3 * runs : 32);
				if (out) {
					fprintf(out, "mix,%d,%d,folded,%d,%.2f,%.2f\n", threads[ti], mix_batch, mixes[k], f,
						f * gflop_img);
					fprintf(out, "mix,%d,%d,affine,%d,%.2f,%.2f\n", threads[ti], mix_batch, mixes[k], a,
						a * gflop_img);
					fprintf(out, "mix,%d,%d,ratio,%d,%.4f,0\n", threads[ti], mix_batch, mixes[k], r);
				}
			}
			rtci_tail_destroy(tf);
		}
		rtci_tail_destroy(t);
		/* how large a sub-batch a batch of mix_batch frames should run in */
		for (int k = 0; k < nsubs; k++) {
			struct rtci_engine_config sc = { .threads = threads[ti], .max_batch = maxb, .sub_batch = subs[k],
							 .precision = RTCI_PRECISION_FP32 };
			if (rtci_tail_create(m, &sc, &t))
				return 1;
			for (int i = 0; i < mix_batch; i++)
				ids[i] = big;
			double ips = measure(t, RTCI_TAIL_AUTO, mix_batch, x, ids, lg, runs);
			printf("  batch %d in sub-batches of %2d: %8.1f img/s\n", mix_batch, subs[k], ips);
			if (out)
				fprintf(out, "sub,%d,%d,affine,%d,%.2f,%.2f\n", threads[ti], mix_batch, subs[k], ips,
					ips * gflop_img);
			rtci_tail_destroy(t);
		}
	}
	if (out)
		fclose(out);
	free(x); free(lg); free(ids);
	rtci_model_destroy(m);
	return 0;
}
