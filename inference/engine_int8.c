/* The tail's int8 plans (docs/engine.md): s8 weights per output channel, u8 ReLU6 outputs at the
 * fixed scale 6/255, s8 linear bottlenecks at one calibrated scale per residual chain, and per
 * setup the scales s_x * s_w * a / s_y and shifts b / s_y of every int8 convolution (binary
 * multiply and add post-ops reading the setup's rows; a residual add is a sum post-op of scale 1,
 * its input and output sharing the chain's scale). */
#include "inference/engine_priv.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RELU6_SCALE (6.0f / 255.0f)

void q_calibration(struct rtci_tail *t)
{
	const struct rtci_model *m = t->net.model;
	int pts;
	int rc = rtci_model_int8(m, &t->act, &pts);
	t->cal_rc = 0;
	t->auto_fp32 = q_auto_needs_vnni && !rtci_int8_exact();
	if (rc == -ENOENT) {
		t->cal_rc = -RTCI_ERR_ENGINE_UNCALIBRATED;
	} else if (rc || pts != t->net.points) {
		t->cal_rc = -RTCI_ERR_ENGINE_CALIBRATION;
	} else {
		for (size_t k = 0; k < (size_t)t->n_setups * pts; k++)
			if (!isfinite(t->act[k]) || !(t->act[k] > 0.0f))
				t->cal_rc = -RTCI_ERR_ENGINE_CALIBRATION;
	}
	if (t->cal_rc)
		t->act = NULL;
}

/* AUTO. bench/tail_int8 (oneDNN 2.6, AVX-512 VNNI, mnv2-224, batch 1, medians of 5, 1 and 2
 * threads) timed each convolution alone: every dense and 1x1 one 1.8-4.3x faster in int8, the
 * depthwise ones 0.9-1.8x on 28x28 and larger planes but 0.76-0.96x on most 14x14 and 7x7 ones.
 * In the engine, keeping those depthwise layers f32 (40 of 51 layers int8) costs an f32 output of
 * the expand and a conversion back to u8 before the project, and lost: bench/tail at batch 32
 * measured auto/fp32 1.94 against int8/fp32 2.02 on 1 thread, 1.86 against 1.94 on 2 (same runs).
 * So every convolution runs int8: a depthwise layer stays f32 only when its output plane is
 * smaller than q_auto_dw_f32_below pixels (0: none; tests set it to exercise mixed plans). */
long q_auto_dw_f32_below = 0;

/* AUTO needs VNNI (rtci_int8_exact): without it oneDNN's 7-bit weight grid cost up to 1.98 points
 * of Fashion-MNIST top-1 (setup 23, ONEDNN_MAX_CPU_ISA=AVX2, bench/int8_accuracy), past the 0.3
 * points int8 is held to, so AUTO runs fp32 there. Tests clear it to exercise AUTO's layer rule
 * on any CPU. */
bool q_auto_needs_vnni = true;

bool q_layer_rule(const struct net *n, enum rtci_tail_precision prec, int i)
{
	const struct layer *l = &n->layers[i];
	if (prec == RTCI_PRECISION_INT8)
		return true;
	return l->groups == 1 || (long)l->oh * l->ow >= q_auto_dw_f32_below;
}

void q_map_free(struct qmap *m)
{
	if (!m)
		return;
	free(m->q);
	free(m->f32out);
	free(m->osc);
	free(m->osh);
	free(m->cvt);
	free(m->in_inv);
	free(m);
}

/* Per output channel weight scales max|W| / 127 (1 for an all-zero channel), in float32. */
static int q_weight_scales(struct rtci_tail *t)
{
	struct net *n = &t->net;
	if (t->sw)
		return 0;
	t->sw = malloc(n->bn_total * sizeof(float));
	if (!t->sw)
		return -ENOMEM;
	for (int i = 0; i < n->nl; i++) {
		const struct layer *l = &n->layers[i];
		size_t per_o = (size_t)(l->in_c / l->groups) * l->k * l->k;
		for (int o = 0; o < l->out_c; o++) {
			float mx = 0.0f;
			for (size_t j = 0; j < per_o; j++)
				mx = fmaxf(mx, fabsf(l->w[o * per_o + j]));
			t->sw[n->bns[l->bn].off + o] = mx > 0.0f ? mx / 127.0f : 1.0f;
		}
	}
	return 0;
}

static float pt_scale(const struct rtci_tail *t, int setup, int pt)
{
	return pt < 0 ? RELU6_SCALE : t->act[(size_t)setup * t->net.points + pt];
}

/* Which layers run int8 and which of them write f32: the last one (the pool reads f32), and one
 * whose consumers are all f32 unless it adds a residual in place. A residual add runs in the precision of its chain's producer, so a
 * chain tensor is s8 or f32 for both of its readers. */
static void q_map_layers(const struct net *n, struct qmap *m)
{
	for (int i = 0; i < n->nl; i++)
		m->q[i] = q_layer_rule(n, m->prec, i);
	for (int i = 0; i < n->nl; i++)
		if (n->layers[i].residual)
			m->q[i] = m->q[n->layers[i].res_src];
	for (int i = 0; i < n->nl; i++) {
		bool int8_user = i + 1 < n->nl && m->q[i + 1];
		for (int j = i + 1; j < n->nl; j++)
			int8_user |= n->layers[j].res_src == i && m->q[j];
		/* a residual add writes over its s8 input */
		m->f32out[i] = !int8_user && !n->layers[i].residual;
	}
}

/* Setup s's rows: output scale and shift of each int8 layer, conversion scales, 1 / input scale. */
static void q_map_setup(const struct rtci_tail *t, struct qmap *m, int s)
{
	const struct net *n = &t->net;
	int slot = rtci_model_setup(n->model, s)->bn_slot;
	double eps = n->g->bn_eps;
	for (int i = 0; i < n->nl; i++) {
		const struct layer *l = &n->layers[i];
		const struct bn *b = &n->bns[l->bn];
		float sx = pt_scale(t, s, l->in_pt);
		float sy = m->f32out[i] ? 1.0f : pt_scale(t, s, l->out_pt);
		m->cvt[(size_t)s * n->nl + i] = m->q[i] ? 1.0f / sx : sx;
		for (int c = 0; m->q[i] && c < l->out_c; c++) {
			size_t k = (size_t)slot * b->c + c, o = (size_t)s * n->bn_total + b->off + c;
			float a = (float)(b->gamma[c] / sqrt((double)b->var[k] + eps));
			float sh = b->beta[c] - b->mean[k] * a;
			m->osc[o] = sx * t->sw[b->off + c] * a / sy;
			m->osh[o] = sh / sy;
		}
	}
	m->in_inv[s] = 1.0f / pt_scale(t, s, 0);
}

int q_map(struct rtci_tail *t, enum rtci_tail_precision prec, const struct qmap **out)
{
	int k = prec == RTCI_PRECISION_INT8 ? 0 : 1, rc;
	if (t->qmaps[k]) {
		*out = t->qmaps[k];
		return 0;
	}
	if (t->cal_rc)
		return t->cal_rc;
	if ((rc = q_weight_scales(t)))
		return rc;
	const struct net *n = &t->net;
	size_t S = (size_t)t->n_setups, tab = S * n->bn_total;
	struct qmap *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->prec = prec;
	m->q = calloc((size_t)n->nl, sizeof(bool));
	m->f32out = calloc((size_t)n->nl, sizeof(bool));
	m->osc = calloc(tab, sizeof(float));
	m->osh = calloc(tab, sizeof(float));
	m->cvt = calloc(S * n->nl, sizeof(float));
	m->in_inv = calloc(S, sizeof(float));
	if (!m->q || !m->f32out || !m->osc || !m->osh || !m->cvt || !m->in_inv) {
		q_map_free(m);
		return -ENOMEM;
	}
	m->bytes = (2 * tab + S * n->nl + S) * sizeof(float);
	q_map_layers(n, m);
	for (int s = 0; s < t->n_setups; s++)
		q_map_setup(t, m, s);
	t->qmaps[k] = m;
	*out = m;
	return 0;
}

/* W / s_w rounded half to even and clamped to +-127, in float32. */
static void q_quantize(const struct layer *l, const float *sw, int8_t *dst)
{
	size_t per_o = (size_t)(l->in_c / l->groups) * l->k * l->k;
	for (int o = 0; o < l->out_c; o++)
		for (size_t j = 0; j < per_o; j++) {
			float v = nearbyintf(l->w[o * per_o + j] / sw[o]);
			dst[o * per_o + j] = (int8_t)fminf(127.0f, fmaxf(-127.0f, v));
		}
}

int q_weights(struct rtci_tail *t)
{
	struct net *n = &t->net;
	if (t->qw)
		return 0;
	size_t off = 0, big = 0;
	for (int i = 0; i < n->nl; i++) {
		struct layer *l = &n->layers[i];
		if (!l->qwmd_set)
			return -RTCI_ERR_INTERNAL;
		l->qw_off = off;
		off += eng_align_up(dnnl_memory_desc_get_size(&l->qwmd));
		size_t w = (size_t)l->out_c * (l->in_c / l->groups) * l->k * l->k;
		big = w > big ? w : big;
	}
	n->qblock_bytes = off;
	void *blk = eng_xalloc(off);
	int8_t *tmp = malloc(big);
	int rc = blk && tmp ? 0 : -ENOMEM;
	for (int i = 0; i < n->nl && !rc; i++) {
		const struct layer *l = &n->layers[i];
		dnnl_memory_desc_t plain;
		dnnl_dims_t wd;
		int nd;
		q_quantize(l, t->sw + n->bns[l->bn].off, tmp);
		eng_weights_dims(l, &nd, wd);
		/* the reorder also writes the compensation oneDNN keeps for an s8 source */
		rc = dnnl_memory_desc_init_by_tag(&plain, nd, wd, dnnl_s8, nd == 5 ? dnnl_goihw : dnnl_oihw) ==
			dnnl_success ? 0 : -RTCI_ERR_ENGINE_DNNL;
		if (!rc)
			rc = eng_reorder_into(t->eng, t->strm, &plain, tmp, &l->qwmd, (char *)blk + l->qw_off);
	}
	free(tmp);
	if (rc) {
		free(blk);
		return rc;
	}
	t->qw = blk;
	return 0;
}

/* A memory of `count` floats whose handle is set per setup (a runtime reorder scale). */
static int scale_mem(dnnl_engine_t eng, int count, dnnl_memory_t *out)
{
	dnnl_memory_desc_t md;
	dnnl_dims_t d = { count };
	if (dnnl_memory_desc_init_by_tag(&md, 1, d, dnnl_f32, dnnl_a) != dnnl_success ||
	    dnnl_memory_create(out, &md, eng, DNNL_MEMORY_NONE) != dnnl_success)
		return -RTCI_ERR_ENGINE_DNNL;
	return 0;
}

int q_plan_convert(struct plan *p, struct rtci_tail *t, int i, const dnnl_memory_desc_t *from,
		   const dnnl_memory_desc_t *to, dnnl_memory_t *conv_src)
{
	const struct layer *l = &t->net.layers[i];
	int rc = 0;
	dnnl_primitive_attr_t attr = NULL;
	dnnl_primitive_desc_t pd = NULL;
	dnnl_memory_t ms, md;
	DN(dnnl_primitive_attr_create(&attr));
	DN(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
	DN(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &DNNL_RUNTIME_F32_VAL));
	DN(dnnl_reorder_primitive_desc_create(&pd, from, t->eng, to, t->eng, attr));
	if ((rc = scale_mem(t->eng, 1, &p->cv_mems[i])) || (rc = eng_plan_mem(p, t->eng, from, l->src, &ms)) ||
	    (rc = eng_plan_mem(p, t->eng, to, BUF_CONVERT, &md)))
		goto fail;
	dnnl_exec_arg_t args[3] = { { DNNL_ARG_FROM, ms }, { DNNL_ARG_TO, md },
				    { DNNL_ARG_ATTR_OUTPUT_SCALES, p->cv_mems[i] } };
	if ((rc = eng_plan_step(p, t->eng, pd, args, 3)))
		goto fail;
	*conv_src = md;
fail:
	dnnl_primitive_desc_destroy(pd);
	dnnl_primitive_attr_destroy(attr);
	return rc;
}

/* The setup's output scale and shift as binary multiply and add post-ops (oneDNN 2.6 has no int8
 * convolution taking runtime output scales, and a primitive per setup would multiply the plans by
 * the setups), the residual as a sum and, for an f32 output, ReLU6 as a clip (a u8 output
 * saturates at 6 / (6/255) = 255 by itself). */
static dnnl_primitive_attr_t q_attr(const struct layer *l, bool f32out, const dnnl_memory_desc_t *ch_md)
{
	dnnl_primitive_attr_t attr = NULL;
	dnnl_post_ops_t po = NULL;
	if (dnnl_primitive_attr_create(&attr) != dnnl_success)
		return NULL;
	dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
	dnnl_post_ops_create(&po);
	dnnl_post_ops_append_binary(po, dnnl_binary_mul, ch_md);
	dnnl_post_ops_append_binary(po, dnnl_binary_add, ch_md);
	if (l->residual)
		dnnl_post_ops_append_sum(po, 1.0f);
	if (l->relu6 && f32out)
		dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_clip_v2, 0.0f, 6.0f);
	dnnl_primitive_attr_set_post_ops(attr, po);
	dnnl_post_ops_destroy(po);
	return attr;
}

/* The memory descriptors of int8 layer i: source (from the producer, or `any` behind a
 * conversion), s8 weights (fixed by the first plan), destination (in place over a residual). */
static int q_descs(const struct layer *l, int i, int N, const struct qmap *qm, const dnnl_memory_desc_t *buf_md,
		   bool *cvt, dnnl_memory_desc_t *src, dnnl_memory_desc_t *w, dnnl_memory_desc_t *dst)
{
	int rc = 0, wnd;
	dnnl_dims_t sd = { N, l->in_c, l->ih, l->iw }, dd = { N, l->out_c, l->oh, l->ow }, wd;
	dnnl_data_type_t st = l->in_pt >= 1 ? dnnl_s8 : dnnl_u8;
	dnnl_data_type_t dt = qm->f32out[i] ? dnnl_f32 : l->relu6 ? dnnl_u8 : dnnl_s8;
	*cvt = i > 0 && buf_md[l->src].data_type != st;
	if (i == 0 || *cvt)
		DN(dnnl_memory_desc_init_by_tag(src, 4, sd, st, dnnl_format_tag_any));
	else
		*src = buf_md[l->src];
	if (l->residual)
		*dst = buf_md[l->dst];
	else
		DN(dnnl_memory_desc_init_by_tag(dst, 4, dd, dt, dnnl_format_tag_any));
	eng_weights_dims(l, &wnd, wd);
	if (l->qwmd_set)
		*w = l->qwmd;
	else
		DN(dnnl_memory_desc_init_by_tag(w, wnd, wd, dnnl_s8, dnnl_format_tag_any));
fail:
	return rc;
}

int q_plan_conv(struct plan *p, struct rtci_tail *t, int i, int N, dnnl_memory_desc_t *buf_md,
		dnnl_memory_desc_t *cur_md)
{
	struct layer *l = &t->net.layers[i];
	dnnl_engine_t eng = t->eng;
	int rc = 0;
	dnnl_primitive_desc_t pd = NULL;
	dnnl_primitive_attr_t attr = NULL;
	dnnl_memory_desc_t src_md, w_md, dst_md, ch_md;
	dnnl_dims_t chd = { 1, l->out_c, 1, 1 };
	bool cvt;
	if ((rc = q_descs(l, i, N, p->qm, buf_md, &cvt, &src_md, &w_md, &dst_md)))
		goto fail;
	DN(dnnl_memory_desc_init_by_tag(&ch_md, 4, chd, dnnl_f32, dnnl_nchw));
	dnnl_convolution_desc_t cd;
	dnnl_dims_t strides = { l->stride, l->stride }, pads = { l->pad, l->pad };
	DN(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct,
					      &src_md, &w_md, NULL, &dst_md, strides, pads, pads));
	if (!(attr = q_attr(l, p->qm->f32out[i], &ch_md))) {
		rc = -ENOMEM;
		goto fail;
	}
	DN(dnnl_primitive_desc_create(&pd, &cd, attr, eng, NULL));
	const dnnl_memory_desc_t *q_src = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
	const dnnl_memory_desc_t *q_w = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
	const dnnl_memory_desc_t *q_dst = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
	if (!l->qwmd_set) {
		l->qwmd = *q_w;
		l->qwmd_set = true;
	}
	if (i == 0 && (rc = eng_plan_input(p, eng, l, q_src, N)))
		goto fail;
	dnnl_memory_t ms, mw, mdst;
	rc = cvt ? q_plan_convert(p, t, i, &buf_md[l->src], q_src, &ms) : eng_plan_mem(p, eng, q_src, l->src, &ms);
	if (rc || (rc = eng_plan_mem(p, eng, q_dst, l->dst, &mdst)))
		goto fail;
	DN(dnnl_memory_create(&mw, q_w, eng, DNNL_MEMORY_NONE));
	p->wbinds[p->nw++] = (struct wbind){ mw, i, false, true };
	DN(dnnl_memory_create(&p->st_mems[2 * i], &ch_md, eng, DNNL_MEMORY_NONE));
	DN(dnnl_memory_create(&p->st_mems[2 * i + 1], &ch_md, eng, DNNL_MEMORY_NONE));
	dnnl_exec_arg_t args[5] = { { DNNL_ARG_SRC, ms }, { DNNL_ARG_WEIGHTS, mw }, { DNNL_ARG_DST, mdst },
				    { DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, p->st_mems[2 * i] },
				    { DNNL_ARG_ATTR_MULTIPLE_POST_OP(1) | DNNL_ARG_SRC_1, p->st_mems[2 * i + 1] } };
	if ((rc = eng_plan_step(p, eng, pd, args, 5)))
		goto fail;
	*cur_md = *q_dst;
	buf_md[l->dst] = *cur_md;
fail:
	dnnl_primitive_desc_destroy(pd);
	dnnl_primitive_attr_destroy(attr);
	return rc;
}

void q_bind_setup(struct rtci_tail *t, struct plan *p, int s)
{
	const struct net *n = &t->net;
	const struct qmap *m = p->qm;
	for (int i = 0; i < n->nl; i++) {
		size_t row = (size_t)s * n->bn_total + n->bns[n->layers[i].bn].off;
		if (m->q[i]) {
			dnnl_memory_set_data_handle(p->st_mems[2 * i], m->osc + row);
			dnnl_memory_set_data_handle(p->st_mems[2 * i + 1], m->osh + row);
		}
		if (p->cv_mems[i])
			dnnl_memory_set_data_handle(p->cv_mems[i], m->cvt + (size_t)s * n->nl + i);
	}
	if (p->in_scale)
		dnnl_memory_set_data_handle(p->in_scale, m->in_inv + s);
}
