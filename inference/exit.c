/* The local exit on oneDNN. See exit.h. */
#include "inference/exit.h"
#include "common/rtci_error.h"

#include <dnnl.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DN(call) do { if ((call) != dnnl_success) { rc = -RTCI_ERR_ENGINE_DNNL; goto fail; } } while (0)

enum { L_CONV1, L_CONV2, L_FC, NLAYERS };

struct rtci_exit {
	int threads, classes;
	dnnl_engine_t eng;
	dnnl_stream_t strm;
	dnnl_primitive_t prim[NLAYERS], in_reorder;
	dnnl_memory_t src[NLAYERS], w[NLAYERS], b[NLAYERS], dst[NLAYERS], user_in, user_out;
	dnnl_memory_t scratch[NLAYERS];
	void *bufs[4 * NLAYERS + 2];
	int nbufs;
};

static void *track(struct rtci_exit *e, size_t bytes)
{
	void *p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
	if (p)
		e->bufs[e->nbufs++] = p;
	return p;
}

/* A memory object of descriptor md, owning a buffer of its size (filled from `init` when given in
 * the plain layout `plain`, through a reorder). */
static int make_mem(struct rtci_exit *e, const dnnl_memory_desc_t *md, const dnnl_memory_desc_t *plain,
		    const float *init, dnnl_memory_t *out)
{
	int rc = 0;
	dnnl_memory_t user = NULL;
	dnnl_primitive_desc_t rpd = NULL;
	dnnl_primitive_t r = NULL;
	void *buf = track(e, dnnl_memory_desc_get_size(md));
	if (!buf)
		return -ENOMEM;
	DN(dnnl_memory_create(out, md, e->eng, buf));
	if (init) {
		DN(dnnl_memory_create(&user, plain, e->eng, (void *)init));
		DN(dnnl_reorder_primitive_desc_create(&rpd, plain, e->eng, md, e->eng, NULL));
		DN(dnnl_primitive_create(&r, rpd));
		dnnl_exec_arg_t a[2] = { { DNNL_ARG_FROM, user }, { DNNL_ARG_TO, *out } };
		DN(dnnl_primitive_execute(r, e->strm, 2, a));
		DN(dnnl_stream_wait(e->strm));
	}
fail:
	dnnl_primitive_destroy(r);
	dnnl_primitive_desc_destroy(rpd);
	dnnl_memory_destroy(user);
	return rc;
}

/* BN folded into conv weights [o][rest] and a bias, as the head folds the stem's. */
static void fold_bn(const struct rtci_model *m, const char *bn, const float *w, int out_c, size_t per_o,
		    float eps, float *fw, float *fb)
{
	char name[RTCI_MODEL_NAME_MAX];
	const float *t[4];
	const char *suffix[4] = { "weight", "bias", "running_mean", "running_var" };
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "exit.%s.%s", bn, suffix[i]);
		t[i] = rtci_model_tensor(m, name, NULL, NULL);
	}
	for (int o = 0; o < out_c; o++) {
		double sc = (double)t[0][o] / sqrt((double)t[3][o] + (double)eps);
		for (size_t j = 0; j < per_o; j++)
			fw[o * per_o + j] = (float)(w[o * per_o + j] * sc);
		fb[o] = (float)((double)t[1][o] - (double)t[2][o] * sc);
	}
}

static dnnl_primitive_attr_t layer_attr(bool relu6)
{
	dnnl_primitive_attr_t attr = NULL;
	dnnl_post_ops_t po = NULL;
	if (dnnl_primitive_attr_create(&attr) != dnnl_success)
		return NULL;
	dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
	if (relu6 && dnnl_post_ops_create(&po) == dnnl_success) {
		dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_clip_v2, 0.0f, 6.0f);
		dnnl_primitive_attr_set_post_ops(attr, po);
		dnnl_post_ops_destroy(po);
	}
	return attr;
}

/* One layer: conv 3x3 stride 2 pad 1 (relu6) or inner product, weights given plain (OIHW / OI),
 * source in the layout `src_md` (the previous layer's output). */
static int add_layer(struct rtci_exit *e, int li, const dnnl_memory_desc_t *src_md, int out_c,
		     const dnnl_dims_t wd, int wnd, const float *w, const float *b, int oh, int ow)
{
	int rc = 0;
	dnnl_primitive_desc_t pd = NULL;
	dnnl_primitive_attr_t attr = layer_attr(li != L_FC);
	dnnl_memory_desc_t w_any, w_plain, b_md, d_any;
	dnnl_dims_t bd = { out_c };
	if (!attr)
		return -ENOMEM;
	DN(dnnl_memory_desc_init_by_tag(&w_any, wnd, wd, dnnl_f32, dnnl_format_tag_any));
	DN(dnnl_memory_desc_init_by_tag(&w_plain, wnd, wd, dnnl_f32, dnnl_oihw));
	DN(dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_a));
	if (li == L_FC) {
		dnnl_dims_t dd = { 1, out_c };
		DN(dnnl_memory_desc_init_by_tag(&d_any, 2, dd, dnnl_f32, dnnl_nc));
		dnnl_inner_product_desc_t ipd;
		DN(dnnl_inner_product_forward_desc_init(&ipd, dnnl_forward_inference, src_md, &w_any, &b_md,
							&d_any));
		DN(dnnl_primitive_desc_create(&pd, &ipd, attr, e->eng, NULL));
	} else {
		dnnl_dims_t dd = { 1, out_c, oh, ow }, st = { 2, 2 }, pad = { 1, 1 };
		DN(dnnl_memory_desc_init_by_tag(&d_any, 4, dd, dnnl_f32, dnnl_format_tag_any));
		dnnl_convolution_desc_t cd;
		DN(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct,
						      src_md, &w_any, &b_md, &d_any, st, pad, pad));
		DN(dnnl_primitive_desc_create(&pd, &cd, attr, e->eng, NULL));
	}
	DN(dnnl_primitive_create(&e->prim[li], pd));
	rc = make_mem(e, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), &w_plain, w, &e->w[li]);
	if (!rc)
		rc = make_mem(e, &b_md, &b_md, b, &e->b[li]);
	if (!rc)
		rc = make_mem(e, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), NULL, NULL, &e->dst[li]);
	if (!rc)
		rc = make_mem(e, dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0), NULL, NULL,
			      &e->scratch[li]);
	if (!rc && li == L_CONV1)
		rc = make_mem(e, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), NULL, NULL, &e->src[li]);
fail:
	dnnl_primitive_desc_destroy(pd);
	dnnl_primitive_attr_destroy(attr);
	return rc;
}

static int conv_out(int in) { return (in + 2 - 3) / 2 + 1; }

static int build(struct rtci_exit *e, const struct rtci_model *m, const struct rtci_local_exit *x)
{
	const struct rtci_geometry *g = rtci_model_geometry(m);
	int ph, pw, rc = 0, wd = x->width, c = g->stem_out, k = g->classes;
	rtci_geometry_partition_size(g, &ph, &pw);
	int h1 = conv_out(ph), w1 = conv_out(pw), h2 = conv_out(h1), w2 = conv_out(w1);
	size_t n1 = (size_t)wd * c * 9, n2 = (size_t)wd * wd * 9, nf = (size_t)k * wd * h2 * w2;
	float *fw = malloc((n1 > n2 ? (n1 > nf ? n1 : nf) : (n2 > nf ? n2 : nf)) * sizeof(float));
	float *fb = malloc((size_t)(wd > k ? wd : k) * sizeof(float));
	dnnl_memory_desc_t in_md;
	dnnl_dims_t id = { 1, c, ph, pw };
	if (!fw || !fb) {
		rc = -ENOMEM;
		goto fail;
	}
	DN(dnnl_memory_desc_init_by_tag(&in_md, 4, id, dnnl_f32, dnnl_nchw));
	dnnl_dims_t w1d = { wd, c, 3, 3 }, w2d = { wd, wd, 3, 3 }, wfd = { k, wd, h2, w2 };
	fold_bn(m, "bn1", rtci_model_tensor(m, "exit.conv1.weight", NULL, NULL), wd, (size_t)c * 9,
		g->bn_eps, fw, fb);
	if ((rc = add_layer(e, L_CONV1, &in_md, wd, w1d, 4, fw, fb, h1, w1)))
		goto fail;
	const dnnl_memory_desc_t *d1;
	DN(dnnl_memory_get_memory_desc(e->dst[L_CONV1], &d1));
	fold_bn(m, "bn2", rtci_model_tensor(m, "exit.conv2.weight", NULL, NULL), wd, (size_t)wd * 9,
		g->bn_eps, fw, fb);
	if ((rc = add_layer(e, L_CONV2, d1, wd, w2d, 4, fw, fb, h2, w2)))
		goto fail;
	/* mean over h2 x w2 then linear == linear with the weights spread over the map / (h2 w2) */
	const float *fcw = rtci_model_tensor(m, "exit.fc.weight", NULL, NULL);
	float inv = 1.0f / (float)(h2 * w2);
	for (int o = 0; o < k; o++)
		for (int i = 0; i < wd; i++)
			for (int s = 0; s < h2 * w2; s++)
				fw[((size_t)o * wd + i) * h2 * w2 + s] = fcw[o * wd + i] * inv;
	memcpy(fb, rtci_model_tensor(m, "exit.fc.bias", NULL, NULL), (size_t)k * sizeof(float));
	const dnnl_memory_desc_t *d2;
	DN(dnnl_memory_get_memory_desc(e->dst[L_CONV2], &d2));
	if ((rc = add_layer(e, L_FC, d2, k, wfd, 4, fw, fb, 0, 0)))
		goto fail;
	/* the caller's NCHW partition into conv1's source layout, when they differ */
	const dnnl_memory_desc_t *s1;
	DN(dnnl_memory_get_memory_desc(e->src[L_CONV1], &s1));
	DN(dnnl_memory_create(&e->user_in, &in_md, e->eng, DNNL_MEMORY_NONE));
	if (!dnnl_memory_desc_equal(s1, &in_md)) {
		dnnl_primitive_desc_t rpd;
		DN(dnnl_reorder_primitive_desc_create(&rpd, &in_md, e->eng, s1, e->eng, NULL));
		dnnl_status_t st = dnnl_primitive_create(&e->in_reorder, rpd);
		dnnl_primitive_desc_destroy(rpd);
		DN(st);
	}
fail:
	free(fw);
	free(fb);
	return rc;
}

int rtci_exit_create(const struct rtci_model *m, int threads, struct rtci_exit **out)
{
	*out = NULL;
	const struct rtci_local_exit *x = rtci_model_local_exit(m);
	if (!x)
		return -ENOENT;
	struct rtci_exit *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->threads = threads;
	e->classes = rtci_model_geometry(m)->classes;
	int saved = omp_get_max_threads();
	if (threads > 0)
		omp_set_num_threads(threads);
	int rc = 0;
	if (dnnl_engine_create(&e->eng, dnnl_cpu, 0) != dnnl_success ||
	    dnnl_stream_create(&e->strm, e->eng, dnnl_stream_default_flags) != dnnl_success)
		rc = -RTCI_ERR_ENGINE_DNNL;
	if (!rc)
		rc = build(e, m, x);
	if (threads > 0)
		omp_set_num_threads(saved);
	if (rc) {
		rtci_exit_destroy(e);
		return rc;
	}
	*out = e;
	return 0;
}

void rtci_exit_destroy(struct rtci_exit *e)
{
	if (!e)
		return;
	for (int i = 0; i < NLAYERS; i++) {
		dnnl_primitive_destroy(e->prim[i]);
		dnnl_memory_t ms[] = { e->src[i], e->w[i], e->b[i], e->dst[i], e->scratch[i] };
		for (size_t j = 0; j < sizeof(ms) / sizeof(ms[0]); j++)
			dnnl_memory_destroy(ms[j]);
	}
	dnnl_primitive_destroy(e->in_reorder);
	dnnl_memory_destroy(e->user_in);
	for (int i = 0; i < e->nbufs; i++)
		free(e->bufs[i]);
	if (e->strm)
		dnnl_stream_destroy(e->strm);
	if (e->eng)
		dnnl_engine_destroy(e->eng);
	free(e);
}

int rtci_exit_run(struct rtci_exit *e, const float *partition, float *logits)
{
	int saved = omp_get_max_threads(), rc = 0;
	if (e->threads > 0)
		omp_set_num_threads(e->threads);
	dnnl_memory_t src1 = e->src[L_CONV1];
	dnnl_memory_set_data_handle(e->user_in, (void *)partition);
	if (!e->in_reorder)
		src1 = e->user_in;
	else {
		dnnl_exec_arg_t a[2] = { { DNNL_ARG_FROM, e->user_in }, { DNNL_ARG_TO, e->src[L_CONV1] } };
		DN(dnnl_primitive_execute(e->in_reorder, e->strm, 2, a));
	}
	dnnl_memory_t srcs[NLAYERS] = { src1, e->dst[L_CONV1], e->dst[L_CONV2] };
	for (int i = 0; i < NLAYERS; i++) {
		dnnl_exec_arg_t a[5] = { { DNNL_ARG_SRC, srcs[i] }, { DNNL_ARG_WEIGHTS, e->w[i] },
					 { DNNL_ARG_BIAS, e->b[i] }, { DNNL_ARG_DST, e->dst[i] },
					 { DNNL_ARG_SCRATCHPAD, e->scratch[i] } };
		DN(dnnl_primitive_execute(e->prim[i], e->strm, 5, a));
	}
	DN(dnnl_stream_wait(e->strm));
	void *out;
	DN(dnnl_memory_get_data_handle(e->dst[L_FC], &out));
	memcpy(logits, out, (size_t)e->classes * sizeof(float));
fail:
	if (e->threads > 0)
		omp_set_num_threads(saved);
	return rc;
}
