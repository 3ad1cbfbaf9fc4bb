/* Where int8 pays in the tail: every convolution of a geometry's tail timed alone on oneDNN in f32
 * (f32 in and out, bias, ReLU6 as the engine runs it) and in int8 (s8 weights, per-output-channel
 * scales, bias, ReLU6; u8 activations after a ReLU6, s8 where the input is a linear bottleneck, the
 * output u8 after ReLU6 and s8 otherwise), batch 1 as the engine's default sub-batch, same thread
 * count, alternately; and int8 with a setup's BN as per-channel multiply and add post-ops (shared
 * int8 weights for every setup). Prints per layer the times and ratios, then the tail's sums: f32,
 * all int8, the faster of the two per layer, all int8 with BN post-ops. Layer times only: the
 * reorders at a change of precision and the pooling/classifier are not counted.
 *   rtci-bench-tail-int8 [--geometry mnv2-224] [--threads 1] [--runs 5] [--csv FILE]
 * CSV rows: layer,in_c,out_c,k,groups,oh,ow,f32_us,int8_us,int8_bn_us,f32_over_int8 */
#include <dnnl.h>
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "inference/model.h"
#include "bench_util.h"

struct conv {
	int in_c, out_c, k, stride, groups, ih, oh;
	bool relu6;
	bool signed_in;   /* the input is a linear bottleneck (no ReLU6): s8 in int8 */
};

/* The tail's convolutions, in the order the engine runs them (block1, inverted residuals, last). */
static int tail_convs(const struct rtci_geometry *g, struct conv *c, int cap)
{
	int h, w, n = 0, in = g->block1_out;
	rtci_geometry_partition_size(g, &h, &w);
	c[n++] = (struct conv){ g->stem_out, g->stem_out, 3, 1, 1, h, h, true, false };
	c[n++] = (struct conv){ g->stem_out, g->block1_out, 1, 1, 1, h, h, false, false };
	for (int r = 0; r < g->n_rows; r++)
		for (int j = 0; j < g->rows[r].n && n + 3 < cap; j++) {
			int t = g->rows[r].t, s = j == 0 ? g->rows[r].s : 1, hid = in * t;
			int oh = (h + 2 - 3) / s + 1;
			if (t != 1)
				c[n++] = (struct conv){ in, hid, 1, 1, 1, h, h, true, true };
			c[n++] = (struct conv){ hid, hid, 3, s, hid, h, oh, true, t == 1 };
			h = oh;
			c[n++] = (struct conv){ hid, g->rows[r].c, 1, 1, 1, h, h, false, false };
			in = g->rows[r].c;
		}
	if (n < cap)
		c[n++] = (struct conv){ in, g->last_channels, 1, 1, 1, h, h, true, true };
	return n;
}

struct prim {
	dnnl_primitive_t p;
	dnnl_memory_t src, w, b, dst, scratch, bn_scale, bn_shift;
};

static void prim_free(struct prim *p)
{
	dnnl_primitive_destroy(p->p);
	dnnl_memory_t ms[] = { p->src, p->w, p->b, p->dst, p->scratch, p->bn_scale, p->bn_shift };
	for (int i = 0; i < 7; i++)
		dnnl_memory_destroy(ms[i]);
	memset(p, 0, sizeof(*p));
}

/* Fills a memory with small values: finite in f32, in range for u8/s8. */
static void fill(dnnl_memory_t m, const dnnl_memory_desc_t *md)
{
	void *h = NULL;
	dnnl_memory_get_data_handle(m, &h);
	size_t bytes = dnnl_memory_desc_get_size(md);
	if (!h)
		return;
	if (md->data_type == dnnl_f32)
		for (size_t j = 0; j < bytes / 4; j++)
			((float *)h)[j] = (float)((j * 2654435761u) % 200) / 1000.0f;
	else
		for (size_t j = 0; j < bytes; j++)
			((unsigned char *)h)[j] = (unsigned char)((j * 2654435761u) % 50);
}

/* One convolution in f32, or in int8 (optionally with BN post-ops), with its memories. */
static int prim_make(dnnl_engine_t eng, const struct conv *c, bool int8, bool bn, struct prim *out)
{
	dnnl_memory_desc_t s, w, b, d;
	dnnl_dims_t sd = { 1, c->in_c, c->ih, c->ih }, dd = { 1, c->out_c, c->oh, c->oh }, bd = { c->out_c };
	dnnl_dims_t wd4 = { c->out_c, c->in_c, c->k, c->k };
	dnnl_dims_t wd5 = { c->groups, c->out_c / c->groups, c->in_c / c->groups, c->k, c->k };
	dnnl_data_type_t st_ = !int8 ? dnnl_f32 : c->signed_in ? dnnl_s8 : dnnl_u8;
	dnnl_data_type_t dt = !int8 ? dnnl_f32 : c->relu6 ? dnnl_u8 : dnnl_s8, wt = int8 ? dnnl_s8 : dnnl_f32;
	dnnl_memory_desc_init_by_tag(&s, 4, sd, st_, dnnl_format_tag_any);
	dnnl_memory_desc_init_by_tag(&d, 4, dd, dt, dnnl_format_tag_any);
	dnnl_memory_desc_init_by_tag(&w, c->groups > 1 ? 5 : 4, c->groups > 1 ? wd5 : wd4, wt, dnnl_format_tag_any);
	dnnl_memory_desc_init_by_tag(&b, 1, bd, dnnl_f32, dnnl_a);
	dnnl_convolution_desc_t cd;
	dnnl_dims_t st = { c->stride, c->stride }, pad = { c->k / 2, c->k / 2 };
	if (dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &s, &w, &b,
					       &d, st, pad, pad) != dnnl_success)
		return -1;
	dnnl_primitive_attr_t attr;
	dnnl_post_ops_t po;
	dnnl_primitive_attr_create(&attr);
	dnnl_post_ops_create(&po);
	dnnl_memory_desc_t ch;
	dnnl_dims_t chd = { 1, c->out_c, 1, 1 };
	dnnl_memory_desc_init_by_tag(&ch, 4, chd, dnnl_f32, dnnl_nchw);
	if (bn) {
		dnnl_post_ops_append_binary(po, dnnl_binary_mul, &ch);
		dnnl_post_ops_append_binary(po, dnnl_binary_add, &ch);
	}
	if (c->relu6)
		dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_clip_v2, 0.0f, int8 ? 255.0f : 6.0f);
	dnnl_primitive_attr_set_post_ops(attr, po);
	dnnl_post_ops_destroy(po);
	float *scales = NULL;
	if (int8) {
		/* per-output-channel scales as the calibrated tail would use */
		scales = malloc((size_t)c->out_c * sizeof(float));
		for (int i = 0; i < c->out_c; i++)
			scales[i] = 0.01f + 0.001f * (float)(i % 7);
		dnnl_primitive_attr_set_output_scales(attr, c->out_c, 1 << 1, scales);
	}
	dnnl_primitive_desc_t pd;
	dnnl_status_t rc = dnnl_primitive_desc_create(&pd, &cd, attr, eng, NULL);
	dnnl_primitive_attr_destroy(attr);
	free(scales);
	if (rc != dnnl_success)
		return -1;
	memset(out, 0, sizeof(*out));
	dnnl_primitive_create(&out->p, pd);
	const dnnl_memory_desc_t *q[5] = { dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0),
					   dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), &b,
					   dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0),
					   dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0) };
	dnnl_memory_t *m[5] = { &out->src, &out->w, &out->b, &out->dst, &out->scratch };
	for (int i = 0; i < 5; i++) {
		dnnl_memory_create(m[i], q[i], eng, DNNL_MEMORY_ALLOCATE);
		if (i < 3)
			fill(*m[i], q[i]);
	}
	if (bn) {
		dnnl_memory_create(&out->bn_scale, &ch, eng, DNNL_MEMORY_ALLOCATE);
		dnnl_memory_create(&out->bn_shift, &ch, eng, DNNL_MEMORY_ALLOCATE);
		fill(out->bn_scale, &ch);
		fill(out->bn_shift, &ch);
	}
	dnnl_primitive_desc_destroy(pd);
	return 0;
}

/* Microseconds per run: one timed repeat of at least ~0.05 s. */
static double time_us(struct prim *p, dnnl_stream_t strm, int iters)
{
	dnnl_exec_arg_t a[7] = { { DNNL_ARG_SRC, p->src }, { DNNL_ARG_WEIGHTS, p->w }, { DNNL_ARG_BIAS, p->b },
				 { DNNL_ARG_DST, p->dst }, { DNNL_ARG_SCRATCHPAD, p->scratch },
				 { DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, p->bn_scale },
				 { DNNL_ARG_ATTR_MULTIPLE_POST_OP(1) | DNNL_ARG_SRC_1, p->bn_shift } };
	double t0 = rtci_mono_s();
	for (int i = 0; i < iters; i++)
		dnnl_primitive_execute(p->p, strm, p->bn_scale ? 7 : 5, a);
	dnnl_stream_wait(strm);
	return (rtci_mono_s() - t0) * 1e6 / iters;
}

static int iters_for(struct prim *p, dnnl_stream_t strm)
{
	double one = time_us(p, strm, 3);
	int it = (int)(50000.0 / (one > 1.0 ? one : 1.0));
	return it < 1 ? 1 : it;
}

int main(int argc, char **argv)
{
	const char *geo = "mnv2-224", *csv = NULL;
	int threads = 1, runs = 5;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--geometry") && i + 1 < argc) geo = argv[++i];
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--csv") && i + 1 < argc) csv = argv[++i];
		else {
			fprintf(stderr, "usage: rtci-bench-tail-int8 [--geometry mnv2-224] [--threads 1] [--runs 5] "
				"[--csv FILE]\n");
			return 2;
		}
	}
	struct rtci_geometry g;
	if (rtci_geometry_preset(geo, &g) || runs < 1 || runs > 32 || threads < 1) {
		fprintf(stderr, "rtci-bench-tail-int8: unknown geometry %s or bad --runs/--threads\n", geo);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	omp_set_num_threads(threads);
	struct conv c[256];
	int n = tail_convs(&g, c, 256);
	dnnl_engine_t eng;
	dnnl_stream_t strm;
	if (dnnl_engine_create(&eng, dnnl_cpu, 0) != dnnl_success ||
	    dnnl_stream_create(&strm, eng, dnnl_stream_default_flags) != dnnl_success)
		return 1;
	FILE *out = csv ? fopen(csv, "w") : NULL;
	if (out)
		fprintf(out, "layer,in_c,out_c,k,groups,oh,ow,f32_us,int8_us,int8_bn_us,f32_over_int8\n");
	printf("%s tail, batch 1, %d thread%s, medians of %d alternating repeats\n", geo, threads,
	       threads > 1 ? "s" : "", runs);
	printf("%-5s %-26s %10s %10s %12s %8s %11s\n", "layer", "conv", "f32 us", "int8 us", "int8+BN us",
	       "f32/int8", "f32/int8+BN");
	double sum_f = 0, sum_q = 0, sum_best = 0, sum_qb = 0;
	for (int i = 0; i < n; i++) {
		struct prim pf, pq, pb;
		if (prim_make(eng, &c[i], false, false, &pf) || prim_make(eng, &c[i], true, false, &pq) ||
		    prim_make(eng, &c[i], true, true, &pb)) {
			fprintf(stderr, "layer %d: oneDNN has no primitive\n", i);
			return 1;
		}
		int itf = iters_for(&pf, strm), itq = iters_for(&pq, strm), itb = iters_for(&pb, strm);
		double vf[32], vq[32], vb[32];
		for (int r = 0; r < runs; r++) {
			vf[r] = time_us(&pf, strm, itf);
			vq[r] = time_us(&pq, strm, itq);
			vb[r] = time_us(&pb, strm, itb);
		}
		double f = bench_median(vf, runs), q = bench_median(vq, runs), qb = bench_median(vb, runs);
		char desc[64];
		snprintf(desc, sizeof(desc), "%dx%d %s%d->%d @%d", c[i].k, c[i].k, c[i].groups > 1 ? "dw " : "",
			 c[i].in_c, c[i].out_c, c[i].oh);
		printf("%-5d %-26s %10.1f %10.1f %12.1f %8.2f %11.2f\n", i, desc, f, q, qb, f / q, f / qb);
		if (out)
			fprintf(out, "%d,%d,%d,%d,%d,%d,%d,%.2f,%.2f,%.2f,%.3f\n", i, c[i].in_c, c[i].out_c, c[i].k,
				c[i].groups, c[i].oh, c[i].oh, f, q, qb, f / q);
		sum_f += f;
		sum_q += q;
		sum_qb += qb;
		sum_best += f < q ? f : q;
		prim_free(&pf);
		prim_free(&pq);
		prim_free(&pb);
	}
	printf("tail convolutions: f32 %.0f us, all int8 %.0f us (%.2fx), faster per layer %.0f us (%.2fx), "
	       "all int8 with BN post-ops %.0f us (%.2fx)\n", sum_f, sum_q, sum_f / sum_q, sum_best,
	       sum_f / sum_best, sum_qb, sum_f / sum_qb);
	if (out)
		fclose(out);
	dnnl_stream_destroy(strm);
	dnnl_engine_destroy(eng);
	return 0;
}
