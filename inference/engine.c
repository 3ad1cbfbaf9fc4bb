/* SW-CNN head and tail executors on oneDNN (C API). See engine.h for the design. */
#include "inference/engine.h"
#include "inference/engine_priv.h"
#include "common/rtci_error.h"

#include <dnnl.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


size_t eng_align_up(size_t x) { return (x + ALIGN - 1) & ~(size_t)(ALIGN - 1); }

void *eng_xalloc(size_t bytes)
{
	void *p = aligned_alloc(ALIGN, eng_align_up(bytes ? bytes : 1));
	return p;
}

/* Runs with this executor's thread count, restoring the caller's afterwards. */
struct thr_guard { int saved; bool set; };
static struct thr_guard thr_enter(int threads)
{
	struct thr_guard g = { omp_get_max_threads(), threads > 0 };
	if (g.set)
		omp_set_num_threads(threads);
	return g;
}
static void thr_leave(struct thr_guard g)
{
	if (g.set)
		omp_set_num_threads(g.saved);
}

/* ---------------------------------------------------------------- network description */

static int add_bn(struct net *n, const char *prefix, int c, int cap)
{
	char name[RTCI_MODEL_NAME_MAX];
	if (n->nbn >= cap)
		return -RTCI_ERR_INTERNAL;
	struct bn *b = &n->bns[n->nbn];
	const float **dst[4] = { &b->gamma, &b->beta, &b->mean, &b->var };
	static const char *const sfx[4] = { "weight", "bias", "running_mean", "running_var" };
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "%s.%s", prefix, sfx[i]);
		*dst[i] = rtci_model_tensor(n->model, name, NULL, NULL);
		if (!*dst[i])
			return -RTCI_ERR_MODEL_TENSOR;
	}
	b->c = c;
	b->off = n->bn_total;
	n->bn_total += (size_t)c;
	return n->nbn++;
}

static int conv_out(int in, int k, int s, int p) { return (in + 2 * p - k) / s + 1; }

static int add_conv(struct net *n, int cap, const char *wname, const char *bnname, int in_c,
		    int out_c, int k, int stride, int groups, int ih, int iw, bool relu6)
{
	if (n->nl >= cap)
		return -RTCI_ERR_INTERNAL;
	struct layer *l = &n->layers[n->nl];
	memset(l, 0, sizeof(*l));
	l->w = rtci_model_tensor(n->model, wname, NULL, NULL);
	if (!l->w)
		return -RTCI_ERR_MODEL_TENSOR;
	int b = add_bn(n, bnname, out_c, cap);
	if (b < 0)
		return b;
	l->bn = b;
	l->in_c = in_c; l->out_c = out_c; l->k = k; l->stride = stride; l->pad = k / 2;
	l->groups = groups; l->ih = ih; l->iw = iw;
	l->oh = conv_out(ih, k, stride, k / 2);
	l->ow = conv_out(iw, k, stride, k / 2);
	l->relu6 = relu6;
	l->res_src = -1;
	l->in_pt = n->nl ? n->layers[n->nl - 1].out_pt : 0;
	l->out_pt = -1;   /* ReLU6 outputs; linear ones get their chain in net_build */
	return n->nl++;
}

/* Tail layers (block1 .. last) with buffer assignment: three activation buffers, a block's
 * output written in place over its input when it is residual (sum post-op). */
static int net_build(struct net *n, const struct rtci_model *m)
{
	memset(n, 0, sizeof(*n));
	n->model = m;
	n->g = rtci_model_geometry(m);
	const struct rtci_geometry *g = n->g;
	int cap = 4;
	for (int r = 0; r < g->n_rows; r++)
		cap += 3 * g->rows[r].n;
	n->layers = calloc((size_t)cap, sizeof(*n->layers));
	n->bns = calloc((size_t)cap + 1, sizeof(*n->bns));
	if (!n->layers || !n->bns)
		return -ENOMEM;
	rtci_geometry_partition_size(g, &n->ph, &n->pw);
	int h = n->ph, w = n->pw, P = g->stem_out;
	int li;
	char wn[RTCI_MODEL_NAME_MAX], bn[RTCI_MODEL_NAME_MAX];

	/* the input is reordered into buffer 2 */
	li = add_conv(n, cap, "block1.conv1.weight", "block1.bn1", P, P, 3, 1, 1, h, w, true);
	if (li < 0) return li;
	n->layers[li].src = 2; n->layers[li].dst = 0;
	li = add_conv(n, cap, "block1.conv2.weight", "block1.bn2", P, g->block1_out, 1, 1, 1, h, w, false);
	if (li < 0) return li;
	n->layers[li].src = 0; n->layers[li].dst = 1;
	n->layers[li].out_pt = 1;   /* residual chain 1 */
	int cur = 1, in = g->block1_out, bi = 0, chain = 1, chain_src = li;
	for (int r = 0; r < g->n_rows; r++) {
		for (int j = 0; j < g->rows[r].n; j++, bi++) {
			int t = g->rows[r].t, c = g->rows[r].c, hid = in * t, s = j == 0 ? g->rows[r].s : 1;
			int e = (cur + 1) % 3, d = (cur + 2) % 3, x = cur;
			bool res = s == 1 && in == c;
			if (t != 1) {
				snprintf(wn, sizeof(wn), "blocks.%d.expand.weight", bi);
				snprintf(bn, sizeof(bn), "blocks.%d.bn1", bi);
				li = add_conv(n, cap, wn, bn, in, hid, 1, 1, 1, h, w, true);
				if (li < 0) return li;
				n->layers[li].src = x; n->layers[li].dst = e;
			} else {
				e = x;   /* depthwise reads the block input directly */
			}
			snprintf(wn, sizeof(wn), "blocks.%d.dw.weight", bi);
			snprintf(bn, sizeof(bn), "blocks.%d.bn2", bi);
			li = add_conv(n, cap, wn, bn, hid, hid, 3, s, hid, h, w, true);
			if (li < 0) return li;
			int dwdst = t != 1 ? d : (cur + 1) % 3;
			n->layers[li].src = e; n->layers[li].dst = dwdst;
			h = n->layers[li].oh; w = n->layers[li].ow;
			snprintf(wn, sizeof(wn), "blocks.%d.project.weight", bi);
			snprintf(bn, sizeof(bn), "blocks.%d.bn3", bi);
			li = add_conv(n, cap, wn, bn, hid, c, 1, 1, 1, h, w, false);
			if (li < 0) return li;
			struct layer *pl = &n->layers[li];
			pl->src = dwdst;
			pl->residual = res;
			/* the buffer neither the block input nor the project's source */
			int other = 3 - x - dwdst;
			pl->dst = res ? x : other;
			/* a residual add keeps its input's scale (chain); any other project starts one */
			pl->out_pt = res ? chain : ++chain;
			pl->res_src = res ? chain_src : -1;
			chain_src = li;
			cur = pl->dst;
			in = c;
		}
	}
	li = add_conv(n, cap, "last.conv.weight", "last.bn", in, g->last_channels, 1, 1, 1, h, w, true);
	if (li < 0) return li;
	n->layers[li].src = cur;
	n->layers[li].dst = (cur + 1) % 3;
	n->last_h = h; n->last_w = w;
	n->points = chain + 1;
	n->fc_w = rtci_model_tensor(m, "classifier.weight", NULL, NULL);
	n->fc_b = rtci_model_tensor(m, "classifier.bias", NULL, NULL);
	if (!n->fc_w || !n->fc_b)
		return -RTCI_ERR_MODEL_TENSOR;
	return 0;
}

static void net_free(struct net *n)
{
	free(n->layers);
	free(n->bns);
}

void eng_weights_dims(const struct layer *l, int *nd, dnnl_dims_t d)
{
	if (l->groups > 1) {
		*nd = 5;
		d[0] = l->groups; d[1] = l->out_c / l->groups; d[2] = l->in_c / l->groups;
		d[3] = l->k; d[4] = l->k;
	} else {
		*nd = 4;
		d[0] = l->out_c; d[1] = l->in_c; d[2] = l->k; d[3] = l->k;
	}
}

/* Copies `src` (plain layout `md_plain`) into `dst` (layout `md`) with a oneDNN reorder. */
int eng_reorder_into(dnnl_engine_t eng, dnnl_stream_t strm, const dnnl_memory_desc_t *md_plain,
			const void *src, const dnnl_memory_desc_t *md, void *dst)
{
	int rc = 0;
	dnnl_primitive_desc_t pd = NULL;
	dnnl_primitive_t p = NULL;
	dnnl_memory_t ms = NULL, md_ = NULL;
	DN(dnnl_reorder_primitive_desc_create(&pd, md_plain, eng, md, eng, NULL));
	DN(dnnl_primitive_create(&p, pd));
	DN(dnnl_memory_create(&ms, md_plain, eng, (void *)src));
	DN(dnnl_memory_create(&md_, md, eng, dst));
	dnnl_exec_arg_t args[2] = { { DNNL_ARG_FROM, ms }, { DNNL_ARG_TO, md_ } };
	DN(dnnl_primitive_execute(p, strm, 2, args));
	DN(dnnl_stream_wait(strm));
fail:
	dnnl_memory_destroy(ms);
	dnnl_memory_destroy(md_);
	dnnl_primitive_destroy(p);
	dnnl_primitive_desc_destroy(pd);
	return rc;
}

/* ---------------------------------------------------------------- plans */

static void plan_free(struct plan *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->nsteps; i++)
		dnnl_primitive_destroy(p->steps[i].prim);
	for (int i = 0; i < p->nbinds; i++)
		dnnl_memory_destroy(p->binds[i].mem);
	for (int i = 0; i < p->nw; i++)
		dnnl_memory_destroy(p->wbinds[i].mem);
	dnnl_primitive_destroy(p->in_reorder);
	dnnl_memory_destroy(p->in_src);
	dnnl_memory_destroy(p->in_dst);
	dnnl_memory_destroy(p->logits_mem);
	dnnl_memory_destroy(p->in_scale);
	for (int i = 0; p->cv_mems && i < p->nst / 2; i++)
		dnnl_memory_destroy(p->cv_mems[i]);
	free(p->cv_mems);
	for (int i = 0; p->st_mems && i < p->nst; i++)
		dnnl_memory_destroy(p->st_mems[i]);
	free(p->st_mems);
	free(p->steps);
	free(p->binds);
	free(p->wbinds);
	free(p);
}

int eng_plan_mem(struct plan *p, dnnl_engine_t eng, const dnnl_memory_desc_t *md, int buf,
		    dnnl_memory_t *out)
{
	if (p->nbinds == p->cap_binds) {
		int nc = p->cap_binds ? 2 * p->cap_binds : 64;
		struct bind *nb = realloc(p->binds, (size_t)nc * sizeof(*nb));
		if (!nb)
			return -ENOMEM;
		p->binds = nb;
		p->cap_binds = nc;
	}
	if (dnnl_memory_create(out, md, eng, DNNL_MEMORY_NONE) != dnnl_success)
		return -RTCI_ERR_ENGINE_DNNL;
	p->binds[p->nbinds++] = (struct bind){ *out, buf };
	size_t sz = dnnl_memory_desc_get_size(md);
	if (sz > p->need[buf])
		p->need[buf] = sz;
	return 0;
}

int eng_plan_step(struct plan *p, dnnl_engine_t eng, dnnl_primitive_desc_t pd,
		     const dnnl_exec_arg_t *args, int nargs)
{
	if (p->nsteps == p->cap_steps) {
		int nc = p->cap_steps ? 2 * p->cap_steps : 64;
		struct step *ns = realloc(p->steps, (size_t)nc * sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		p->steps = ns;
		p->cap_steps = nc;
	}
	struct step *s = &p->steps[p->nsteps];
	if (dnnl_primitive_create(&s->prim, pd) != dnnl_success)
		return -RTCI_ERR_ENGINE_DNNL;
	memcpy(s->args, args, (size_t)nargs * sizeof(*args));
	s->nargs = nargs;
	/* user-managed scratchpad, shared by every step */
	const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
	if (smd && dnnl_memory_desc_get_size(smd) > 0) {
		dnnl_memory_t sm;
		int rc = eng_plan_mem(p, eng, smd, BUF_SCRATCH, &sm);
		if (rc) {
			dnnl_primitive_destroy(s->prim);
			return rc;
		}
		s->args[s->nargs++] = (dnnl_exec_arg_t){ DNNL_ARG_SCRATCHPAD, sm };
	}
	p->nsteps++;
	return 0;
}

dnnl_primitive_attr_t eng_make_attr(bool sum, bool relu6, const dnnl_memory_desc_t *mul_md,
				       const dnnl_memory_desc_t *add_md)
{
	dnnl_primitive_attr_t attr = NULL;
	dnnl_post_ops_t po = NULL;
	if (dnnl_primitive_attr_create(&attr) != dnnl_success)
		return NULL;
	dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
	dnnl_post_ops_create(&po);
	if (mul_md)
		dnnl_post_ops_append_binary(po, dnnl_binary_mul, mul_md);
	if (add_md)
		dnnl_post_ops_append_binary(po, dnnl_binary_add, add_md);
	if (sum)
		dnnl_post_ops_append_sum(po, 1.0f);
	if (relu6)
		dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_clip_v2, 0.0f, 6.0f);
	dnnl_primitive_attr_set_post_ops(attr, po);
	dnnl_post_ops_destroy(po);
	return attr;
}

/* The per-frame reorder from the caller's NCHW into the first layer's layout; into u8 with the
 * setup's 1 / input_scale (a runtime scale) when the first layer is int8. */
int eng_plan_input(struct plan *p, dnnl_engine_t eng, const struct layer *l,
		   const dnnl_memory_desc_t *q_src, int N)
{
	int rc = 0;
	dnnl_primitive_attr_t attr = NULL;
	dnnl_memory_desc_t one_user, one_dst = *q_src;
	bool q = q_src->data_type != dnnl_f32;
	size_t esz = q ? 1 : sizeof(float);
	dnnl_dims_t od = { 1, l->in_c, l->ih, l->iw };
	DN(dnnl_memory_desc_init_by_tag(&one_user, 4, od, dnnl_f32, dnnl_nchw));
	if (one_dst.format_kind != dnnl_blocked ||
	    one_dst.format_desc.blocking.strides[0] * N * (dnnl_dim_t)esz !=
	    (dnnl_dim_t)dnnl_memory_desc_get_size(q_src))
		return -RTCI_ERR_ENGINE_DNNL;   /* batch not outermost: unexpected layout */
	one_dst.dims[0] = one_dst.padded_dims[0] = 1;
	p->in_frame_bytes = dnnl_memory_desc_get_size(&one_dst);
	dnnl_primitive_desc_t rpd;
	DN(dnnl_primitive_attr_create(&attr));
	if (q) {
		dnnl_memory_desc_t smd;
		dnnl_dims_t one = { 1 };
		DN(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &DNNL_RUNTIME_F32_VAL));
		DN(dnnl_memory_desc_init_by_tag(&smd, 1, one, dnnl_f32, dnnl_a));
		DN(dnnl_memory_create(&p->in_scale, &smd, eng, DNNL_MEMORY_NONE));
	}
	DN(dnnl_reorder_primitive_desc_create(&rpd, &one_user, eng, &one_dst, eng, attr));
	dnnl_primitive_attr_destroy(attr);
	attr = NULL;
	dnnl_status_t s = dnnl_primitive_create(&p->in_reorder, rpd);
	dnnl_primitive_desc_destroy(rpd);
	if (s != dnnl_success)
		return -RTCI_ERR_ENGINE_DNNL;
	DN(dnnl_memory_create(&p->in_src, &one_user, eng, DNNL_MEMORY_NONE));
	DN(dnnl_memory_create(&p->in_dst, &one_dst, eng, DNNL_MEMORY_NONE));
	size_t need = dnnl_memory_desc_get_size(q_src);
	if (need > p->need[l->src])
		p->need[l->src] = need;
	return 0;
fail:
	dnnl_primitive_attr_destroy(attr);
	return rc;
}

/* Convolution layer i: its primitive, its weights' layout (fixed by the first plan), its
 * buffers, and the binds of its weights, bias or per-setup affine; buf_md holds the layout of
 * each activation buffer, *cur_md gets the layer's output layout. */
static int plan_conv(struct plan *p, struct rtci_tail *t, int i, int N, bool affine,
		     dnnl_memory_desc_t *buf_md, dnnl_memory_desc_t *cur_md)
{
	struct net *n = &t->net;
	dnnl_engine_t eng = t->eng;
	int rc = 0;
	dnnl_primitive_desc_t pd = NULL;
	dnnl_primitive_attr_t attr = NULL;
	struct layer *l = &n->layers[i];
	dnnl_memory_desc_t src_md, w_md, b_md, dst_md, any_w;
	dnnl_dims_t sd = { N, l->in_c, l->ih, l->iw }, dd = { N, l->out_c, l->oh, l->ow };
	dnnl_dims_t bd = { l->out_c }, wd;
	int wnd;
	eng_weights_dims(l, &wnd, wd);
	/* an int8 tensor (mixed plans) is converted to f32 in the layout this convolution picks */
	bool cvt = i > 0 && buf_md[l->src].data_type != dnnl_f32;
	if (i == 0 || cvt)
		DN(dnnl_memory_desc_init_by_tag(&src_md, 4, sd, dnnl_f32, dnnl_format_tag_any));
	else
		src_md = buf_md[l->src];
	/* residual: the project conv writes over the block input, so keep its layout */
	if (l->residual)
		dst_md = buf_md[l->dst];
	else
		DN(dnnl_memory_desc_init_by_tag(&dst_md, 4, dd, dnnl_f32, dnnl_format_tag_any));
	DN(dnnl_memory_desc_init_by_tag(&any_w, wnd, wd, dnnl_f32, dnnl_format_tag_any));
	w_md = l->wmd_set ? l->wmd : any_w;
	DN(dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_a));
	dnnl_convolution_desc_t cd;
	dnnl_dims_t strides = { l->stride, l->stride }, pads = { l->pad, l->pad };
	DN(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct,
					      &src_md, &w_md, &b_md, &dst_md, strides, pads, pads));
	/* affine: (conv + shift / scale) * scale, the multiply a per-channel binary post-op (oneDNN
	 * 2.6 has no output scales for f32 convolutions; one post-op costs less than two) */
	dnnl_memory_desc_t ch_md;
	dnnl_dims_t chd = { 1, l->out_c, 1, 1 };
	DN(dnnl_memory_desc_init_by_tag(&ch_md, 4, chd, dnnl_f32, dnnl_nchw));
	bool post = affine && !l->fold;
	attr = eng_make_attr(l->residual, l->relu6, post ? &ch_md : NULL, NULL);
	if (!attr) {
		rc = -ENOMEM;
		goto fail;
	}
	DN(dnnl_primitive_desc_create(&pd, &cd, attr, eng, NULL));
	dnnl_primitive_attr_destroy(attr);
	attr = NULL;
	const dnnl_memory_desc_t *q_src = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
	const dnnl_memory_desc_t *q_w = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
	const dnnl_memory_desc_t *q_dst = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
	if (!l->wmd_set) {
		l->wmd = *q_w;
		l->wmd_set = true;
	}
	if (i == 0 && (rc = eng_plan_input(p, eng, l, q_src, N)))
		goto fail;
	dnnl_memory_t ms, mw, mb = NULL, mdst;
	if (cvt)
		rc = q_plan_convert(p, t, i, &buf_md[l->src], q_src, &ms);
	else
		rc = eng_plan_mem(p, eng, q_src, l->src, &ms);
	if (rc || (rc = eng_plan_mem(p, eng, q_dst, l->dst, &mdst)))
		goto fail;
	if (dnnl_memory_create(&mw, q_w, eng, DNNL_MEMORY_NONE) != dnnl_success) {
		rc = -RTCI_ERR_ENGINE_DNNL;
		goto fail;
	}
	p->wbinds[p->nw++] = (struct wbind){ mw, i, false, false };
	dnnl_exec_arg_t args[6] = { { DNNL_ARG_SRC, ms }, { DNNL_ARG_WEIGHTS, mw }, { DNNL_ARG_DST, mdst } };
	int na = 3;
	if (post) {
		DN(dnnl_memory_create(&p->st_mems[2 * i], &ch_md, eng, DNNL_MEMORY_NONE));
		DN(dnnl_memory_create(&p->st_mems[2 * i + 1], &b_md, eng, DNNL_MEMORY_NONE));
		args[na++] = (dnnl_exec_arg_t){ DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1,
						p->st_mems[2 * i] };
		args[na++] = (dnnl_exec_arg_t){ DNNL_ARG_BIAS, p->st_mems[2 * i + 1] };
	} else {
		if (dnnl_memory_create(&mb, &b_md, eng, DNNL_MEMORY_NONE) != dnnl_success) {
			rc = -RTCI_ERR_ENGINE_DNNL;
			goto fail;
		}
		p->wbinds[p->nw++] = (struct wbind){ mb, i, true, false };
		args[na++] = (dnnl_exec_arg_t){ DNNL_ARG_BIAS, mb };
	}
	if ((rc = eng_plan_step(p, eng, pd, args, na)))
		goto fail;
	*cur_md = *q_dst;
	buf_md[l->dst] = *cur_md;
	dnnl_primitive_desc_destroy(pd);
	return 0;
fail:
	dnnl_primitive_desc_destroy(pd);
	dnnl_primitive_attr_destroy(attr);
	return rc ? rc : -RTCI_ERR_ENGINE_DNNL;
}

/* Global average pool over the last layer's output (layout cur_md), then the classifier. */
static int plan_classifier(struct plan *p, struct rtci_tail *t, int N, dnnl_memory_desc_t cur_md)
{
	struct net *n = &t->net;
	const struct rtci_geometry *g = n->g;
	dnnl_engine_t eng = t->eng;
	int rc = 0;
	dnnl_primitive_desc_t pd = NULL;
	dnnl_primitive_attr_t attr = NULL;
	struct layer *l = &n->layers[n->nl - 1];
	dnnl_memory_desc_t pool_dst, ip_w, ip_b, ip_dst;
	dnnl_dims_t pdd = { N, l->out_c, 1, 1 };
	DN(dnnl_memory_desc_init_by_tag(&pool_dst, 4, pdd, dnnl_f32, dnnl_format_tag_any));
	dnnl_pooling_desc_t pld;
	dnnl_dims_t ks = { n->last_h, n->last_w }, ps = { 1, 1 }, pz = { 0, 0 };
	DN(dnnl_pooling_forward_desc_init(&pld, dnnl_forward_inference, dnnl_pooling_avg_exclude_padding,
					  &cur_md, &pool_dst, ps, ks, pz, pz));
	attr = eng_make_attr(false, false, NULL, NULL);
	DN(dnnl_primitive_desc_create(&pd, &pld, attr, eng, NULL));
	dnnl_primitive_attr_destroy(attr);
	attr = NULL;
	const dnnl_memory_desc_t *q_pdst = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
	dnnl_memory_desc_t pooled = *q_pdst;
	dnnl_memory_t ps_m, pd_m;
	int pool_buf = (l->dst + 1) % 3;
	if ((rc = eng_plan_mem(p, eng, &cur_md, l->dst, &ps_m)) || (rc = eng_plan_mem(p, eng, &pooled, pool_buf, &pd_m)))
		goto fail;
	dnnl_exec_arg_t pargs[2] = { { DNNL_ARG_SRC, ps_m }, { DNNL_ARG_DST, pd_m } };
	if ((rc = eng_plan_step(p, eng, pd, pargs, 2)))
		goto fail;
	dnnl_primitive_desc_destroy(pd);
	pd = NULL;

	dnnl_dims_t wd = { g->classes, l->out_c, 1, 1 }, bdim = { g->classes }, dd = { N, g->classes };
	if (n->fc_wmd_set)
		ip_w = n->fc_wmd;
	else
		DN(dnnl_memory_desc_init_by_tag(&ip_w, 4, wd, dnnl_f32, dnnl_format_tag_any));
	DN(dnnl_memory_desc_init_by_tag(&ip_b, 1, bdim, dnnl_f32, dnnl_a));
	DN(dnnl_memory_desc_init_by_tag(&ip_dst, 2, dd, dnnl_f32, dnnl_ab));
	dnnl_inner_product_desc_t ipd;
	DN(dnnl_inner_product_forward_desc_init(&ipd, dnnl_forward_inference, &pooled, &ip_w, &ip_b, &ip_dst));
	attr = eng_make_attr(false, false, NULL, NULL);
	DN(dnnl_primitive_desc_create(&pd, &ipd, attr, eng, NULL));
	dnnl_primitive_attr_destroy(attr);
	attr = NULL;
	if (!n->fc_wmd_set) {
		n->fc_wmd = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
		n->fc_wmd_set = true;
	}
	dnnl_memory_t is_m, iw_m, ib_m;
	if ((rc = eng_plan_mem(p, eng, &pooled, pool_buf, &is_m)))
		goto fail;
	/* classifier weights live in t->fc, built on first use of the layout */
	DN(dnnl_memory_create(&iw_m, &n->fc_wmd, eng, DNNL_MEMORY_NONE));
	DN(dnnl_memory_create(&ib_m, &ip_b, eng, DNNL_MEMORY_NONE));
	DN(dnnl_memory_create(&p->logits_mem, &ip_dst, eng, DNNL_MEMORY_NONE));
	p->wbinds[p->nw++] = (struct wbind){ iw_m, -1, false, false };
	p->wbinds[p->nw++] = (struct wbind){ ib_m, -1, true, false };
	dnnl_exec_arg_t iargs[4] = { { DNNL_ARG_SRC, is_m }, { DNNL_ARG_WEIGHTS, iw_m },
				     { DNNL_ARG_BIAS, ib_m }, { DNNL_ARG_DST, p->logits_mem } };
	if ((rc = eng_plan_step(p, eng, pd, iargs, 4)))
		goto fail;
	dnnl_primitive_desc_destroy(pd);
	pd = NULL;
	return 0;
fail:
	dnnl_primitive_desc_destroy(pd);
	dnnl_primitive_attr_destroy(attr);
	return rc ? rc : -RTCI_ERR_ENGINE_DNNL;
}

static int plan_build(struct rtci_tail *t, enum rtci_tail_mode mode, const struct qmap *qm, int N,
		      struct plan **out)
{
	struct net *n = &t->net;
	int rc = 0;
	struct plan *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->mode = mode;
	p->prec = qm ? qm->prec : RTCI_PRECISION_FP32;
	p->qm = qm;
	p->n = N;
	p->folded_setup = -1;
	p->wbinds = calloc((size_t)n->nl * 2 + 2, sizeof(*p->wbinds));
	p->st_mems = calloc((size_t)n->nl * 2, sizeof(*p->st_mems));
	p->nst = n->nl * 2;
	p->cv_mems = calloc((size_t)n->nl, sizeof(*p->cv_mems));
	if (!p->wbinds || !p->st_mems || !p->cv_mems) {
		rc = -ENOMEM;
		goto fail;
	}
	dnnl_memory_desc_t cur_md, buf_md[3];   /* layout currently held by each buffer */
	memset(buf_md, 0, sizeof(buf_md));
	memset(&cur_md, 0, sizeof(cur_md));
	for (int i = 0; i < n->nl && rc == 0; i++)
		rc = qm && qm->q[i] ? q_plan_conv(p, t, i, N, buf_md, &cur_md)
			: plan_conv(p, t, i, N, mode == RTCI_TAIL_AFFINE, buf_md, &cur_md);
	if (rc == 0)
		rc = plan_classifier(p, t, N, cur_md);
	if (rc == 0) {
		*out = p;
		return 0;
	}
fail:
	plan_free(p);
	return rc;
}

/* ---------------------------------------------------------------- tail executor */

/* Offsets of each layer's weights and bias in a weights block, once the layouts are known. */
static void layout_blocks(struct net *n)
{
	size_t off = 0;
	for (int i = 0; i < n->nl; i++) {
		struct layer *l = &n->layers[i];
		l->w_off = off;
		off += eng_align_up(dnnl_memory_desc_get_size(&l->wmd));
		l->b_off = off;
		off += eng_align_up((size_t)l->out_c * sizeof(float));
	}
	n->block_bytes = off;
	off = 0;
	for (int i = 0; i < n->nl; i++) {
		struct layer *l = &n->layers[i];
		if (!l->fold)
			continue;
		l->pw_off = off;
		off += eng_align_up(dnnl_memory_desc_get_size(&l->wmd));
		l->pb_off = off;
		off += eng_align_up((size_t)l->out_c * sizeof(float));
	}
	n->part_bytes = off;
}

static int ensure_buffers(struct rtci_tail *t, const struct plan *p)
{
	for (int b = 0; b < NBUF; b++) {
		if (p->need[b] <= t->buf_size[b])
			continue;
		void *nb = eng_xalloc(p->need[b]);
		if (!nb)
			return -ENOMEM;
		free(t->buf[b]);
		t->buf[b] = nb;
		t->buf_size[b] = eng_align_up(p->need[b]);
		t->buf_gen++;
	}
	return 0;
}

static void plan_bind_buffers(struct rtci_tail *t, struct plan *p)
{
	if (p->buf_gen == t->buf_gen)
		return;
	for (int i = 0; i < p->nbinds; i++)
		dnnl_memory_set_data_handle(p->binds[i].mem, t->buf[p->binds[i].buf]);
	p->buf_gen = t->buf_gen;
}

/* Reorders plain OIHW weights (optionally scaled per output channel) into layer l's layout. */
static int put_weights(struct rtci_tail *t, const struct layer *l, const float *scale, float *tmp,
		       void *dst)
{
	size_t per_o = (size_t)(l->in_c / l->groups) * l->k * l->k;
	for (int o = 0; o < l->out_c; o++)
		for (size_t j = 0; j < per_o; j++)
			tmp[o * per_o + j] = l->w[o * per_o + j] * (scale ? scale[o] : 1.0f);
	dnnl_memory_desc_t plain;
	dnnl_dims_t wd;
	int nd;
	eng_weights_dims(l, &nd, wd);
	if (dnnl_memory_desc_init_by_tag(&plain, nd, wd, dnnl_f32, nd == 5 ? dnnl_goihw : dnnl_oihw) != dnnl_success)
		return -RTCI_ERR_ENGINE_DNNL;
	return eng_reorder_into(t->eng, t->strm, &plain, tmp, &l->wmd, dst);
}

static size_t max_layer_weights(const struct net *n)
{
	size_t m = 0;
	for (int i = 0; i < n->nl; i++) {
		const struct layer *l = &n->layers[i];
		size_t w = (size_t)l->out_c * (l->in_c / l->groups) * l->k * l->k;
		if (w > m)
			m = w;
	}
	return m;
}

#define BN_SCALE_MIN 1e-20

static void compute_bn_table(struct rtci_tail *t)
{
	struct net *n = &t->net;
	const struct rtci_model *m = n->model;
	float eps = n->g->bn_eps;
	for (int s = 0; s < t->n_setups; s++) {
		int slot = rtci_model_setup(m, s)->bn_slot;
		for (int b = 0; b < n->nbn; b++) {
			const struct bn *bn = &n->bns[b];
			for (int c = 0; c < bn->c; c++) {
				size_t k = (size_t)slot * bn->c + c;
				/* double for the fold, so the tail matches an unfolded reference closely */
				double sc = (double)bn->gamma[c] / sqrt((double)bn->var[k] + (double)eps);
				double sh = (double)bn->beta[c] - (double)bn->mean[k] * sc;
				/* a zero scale (gamma 0) still carries the shift: (conv + sh/sc) * sc ~ sh */
				if (fabs(sc) < BN_SCALE_MIN)
					sc = sc < 0 ? -BN_SCALE_MIN : BN_SCALE_MIN;
				t->scale[(size_t)s * n->bn_total + bn->off + c] = (float)sc;
				t->pre[(size_t)s * n->bn_total + bn->off + c] = (float)(sh / sc);
			}
		}
	}
}

/* The per-setup BN rows of the fp32 paths (fold_setup, and get_plan for a plan with f32
 * layers), built on first need: an int8 tail computes its own rows from the model (q_map_setup)
 * and never reads these, which are 2 x setups x BN channels floats (6.8 MB for mnv2-224). */
static int bn_tables(struct rtci_tail *t)
{
	if (t->scale)
		return 0;
	size_t n = (size_t)t->n_setups * t->net.bn_total;
	float *sc = malloc(n * sizeof(float)), *pre = malloc(n * sizeof(float));
	if (!sc || !pre) {
		free(sc);
		free(pre);
		return -ENOMEM;
	}
	t->scale = sc;
	t->pre = pre;
	compute_bn_table(t);
	return 0;
}

/* Folds a setup's BN into every layer (part = false: a full block) or into the fold layers only
 * (part = true: a part block of the affine mode). */
static int fold_setup(struct rtci_tail *t, int setup, void *block, bool part)
{
	struct net *n = &t->net;
	int rc = bn_tables(t);
	if (rc)
		return rc;
	float *tmp = malloc(max_layer_weights(n) * sizeof(float));
	if (!tmp)
		return -ENOMEM;
	const float *sc = t->scale + (size_t)setup * n->bn_total;
	const float *pre = t->pre + (size_t)setup * n->bn_total;
	for (int i = 0; i < n->nl && !rc; i++) {
		const struct layer *l = &n->layers[i];
		const struct bn *b = &n->bns[l->bn];
		if (part && !l->fold)
			continue;
		rc = put_weights(t, l, sc + b->off, tmp, (char *)block + (part ? l->pw_off : l->w_off));
		float *bias = (float *)((char *)block + (part ? l->pb_off : l->b_off));
		for (int c = 0; c < l->out_c; c++)
			bias[c] = (float)((double)pre[b->off + c] * sc[b->off + c]);
	}
	free(tmp);
	return rc;
}

static int build_shared(struct rtci_tail *t)
{
	if (t->shared)
		return 0;
	struct net *n = &t->net;
	void *blk = eng_xalloc(n->block_bytes);
	float *tmp = malloc(max_layer_weights(n) * sizeof(float));
	int rc = blk && tmp ? 0 : -ENOMEM;
	for (int i = 0; i < n->nl && !rc; i++)
		rc = put_weights(t, &n->layers[i], NULL, tmp, (char *)blk + n->layers[i].w_off);
	free(tmp);
	if (rc) {
		free(blk);
		return rc;
	}
	t->shared = blk;
	return 0;
}

static int build_fc(struct rtci_tail *t)
{
	if (t->fc)
		return 0;
	struct net *n = &t->net;
	const struct rtci_geometry *g = n->g;
	t->fc_w_bytes = eng_align_up(dnnl_memory_desc_get_size(&n->fc_wmd));
	void *blk = eng_xalloc(t->fc_w_bytes + (size_t)g->classes * sizeof(float));
	if (!blk)
		return -ENOMEM;
	dnnl_memory_desc_t plain;
	dnnl_dims_t wd = { g->classes, g->last_channels, 1, 1 };
	int rc = dnnl_memory_desc_init_by_tag(&plain, 4, wd, dnnl_f32, dnnl_oihw) == dnnl_success ? 0
		: -RTCI_ERR_ENGINE_DNNL;
	if (!rc)
		rc = eng_reorder_into(t->eng, t->strm, &plain, n->fc_w, &n->fc_wmd, blk);
	if (rc) {
		free(blk);
		return rc;
	}
	memcpy((char *)blk + t->fc_w_bytes, n->fc_b, (size_t)g->classes * sizeof(float));
	t->fc = blk;
	return 0;
}

/* The plan of (mode, precision, batch); precision INT8 or AUTO (a resolved one: the model is
 * calibrated) runs its f32 layers in affine mode. The first int8 plan is an INT8 one, so that
 * every layer's s8 weights layout is fixed before the s8 weights are built. */
static int get_plan(struct rtci_tail *t, enum rtci_tail_mode mode, enum rtci_tail_precision prec, int N,
		    struct plan **out)
{
	struct plan *lru = NULL;
	int lru_i = -1;
	const struct qmap *qm = NULL;
	int rc;
	if (prec != RTCI_PRECISION_FP32) {
		mode = RTCI_TAIL_AFFINE;
		if (!t->qw && prec != RTCI_PRECISION_INT8 &&
		    (rc = get_plan(t, mode, RTCI_PRECISION_INT8, N, out)))
			return rc;
		/* a plan mixing f32 layers in needs the f32 layouts and shared weights: an fp32 plan first */
		if (prec == RTCI_PRECISION_AUTO && !t->net.laid_out &&
		    (rc = get_plan(t, mode, RTCI_PRECISION_FP32, N, out)))
			return rc;
		if ((rc = q_map(t, prec, &qm)))
			return rc;
	}
	for (int i = 0; i < t->nplans; i++) {
		struct plan *p = t->plans[i];
		if (p->mode == mode && p->prec == prec && p->n == N) {
			p->last_used = ++t->tick;
			*out = p;
			return 0;
		}
		if (!lru || p->last_used < lru->last_used) {
			lru = p;
			lru_i = i;
		}
	}
	struct plan *p;
	/* a plan with f32 layers binds the BN rows when it runs: they exist before it does (so an
	 * f32 tail's first plan, built at create, builds them) */
	if (prec != RTCI_PRECISION_INT8 && (rc = bn_tables(t)))
		return rc;
	if ((rc = plan_build(t, mode, qm, N, &p)))
		return rc;
	t->plan_builds++;
	if (!t->net.laid_out && prec == RTCI_PRECISION_FP32) {
		layout_blocks(&t->net);
		t->net.laid_out = true;
	}
	/* an int8-only plan needs neither the f32 weights nor their layouts */
	bool f32 = prec != RTCI_PRECISION_INT8;
	if ((rc = ensure_buffers(t, p)) || (rc = build_fc(t)) ||
	    (f32 && mode == RTCI_TAIL_AFFINE && (rc = build_shared(t))) || (qm && (rc = q_weights(t)))) {
		plan_free(p);
		return rc;
	}
	if (t->nplans == t->cfg.plan_cache) {
		plan_free(lru);
		t->plans[lru_i] = p;
	} else {
		t->plans[t->nplans++] = p;
	}
	p->last_used = ++t->tick;
	*out = p;
	return 0;
}

static int get_folded(struct rtci_tail *t, int setup, void **block)
{
	struct folded *lru = NULL;
	for (int i = 0; i < t->nfolds; i++) {
		struct folded *f = &t->folds[i];
		if (f->setup == setup) {
			f->last_used = ++t->tick;
			*block = f->block;
			return 0;
		}
		if (!lru || f->last_used < lru->last_used)
			lru = f;
	}
	struct folded *f;
	if (t->nfolds < t->cfg.folded_cache) {
		f = &t->folds[t->nfolds];
		f->block = eng_xalloc(t->net.block_bytes);
		if (!f->block)
			return -ENOMEM;
		t->nfolds++;
	} else {
		f = lru;
	}
	f->setup = -1;
	int rc = fold_setup(t, setup, f->block, false);
	if (rc)
		return rc;
	t->fold_builds++;
	f->setup = setup;
	f->last_used = ++t->tick;
	*block = f->block;
	return 0;
}

/* The part block of a setup (affine mode), NULL when no layer is folded per setup. */
static int get_part(struct rtci_tail *t, int setup, void **block)
{
	*block = NULL;
	if (!t->net.part_bytes || t->parts[setup]) {
		*block = t->parts[setup];
		return 0;
	}
	void *b = eng_xalloc(t->net.part_bytes);
	if (!b)
		return -ENOMEM;
	int rc = fold_setup(t, setup, b, true);
	if (rc) {
		free(b);
		return rc;
	}
	t->fold_builds++;
	t->parts[setup] = b;
	t->nparts++;
	*block = b;
	return 0;
}

/* Runs plan p on frames[0..p->n-1], all of setup `setup`, with the weights in `block` (the
 * setup's folded block, or in affine mode its part block next to the shared one); logits -> out. */
static int plan_exec(struct rtci_tail *t, struct plan *p, const float *const *frames, int setup,
		     void *block, float *out)
{
	struct net *n = &t->net;
	plan_bind_buffers(t, p);
	if (p->folded_setup != setup || p->folded_block != block || p->qw != t->qw) {
		for (int i = 0; i < p->nw; i++) {
			const struct wbind *wb = &p->wbinds[i];
			void *h;
			const struct layer *l = wb->layer < 0 ? NULL : &n->layers[wb->layer];
			if (!l)
				h = wb->bias ? (char *)t->fc + t->fc_w_bytes : t->fc;
			else if (wb->q)
				h = (char *)t->qw + l->qw_off;
			else if (p->mode == RTCI_TAIL_FOLDED)
				h = (char *)block + (wb->bias ? l->b_off : l->w_off);
			else if (l->fold)
				h = (char *)block + (wb->bias ? l->pb_off : l->pw_off);
			else
				h = (char *)t->shared + l->w_off;
			dnnl_memory_set_data_handle(wb->mem, h);
		}
		if (p->mode == RTCI_TAIL_AFFINE)
			for (int i = 0; i < n->nl; i++) {
				if (n->layers[i].fold || (p->qm && p->qm->q[i]))
					continue;
				size_t row = (size_t)setup * n->bn_total + n->bns[n->layers[i].bn].off;
				dnnl_memory_set_data_handle(p->st_mems[2 * i], t->scale + row);
				dnnl_memory_set_data_handle(p->st_mems[2 * i + 1], t->pre + row);
			}
		if (p->qm)
			q_bind_setup(t, p, setup);
		p->folded_setup = setup;
		p->folded_block = block;
		p->qw = t->qw;
	}
	char *in_base = t->buf[n->layers[0].src];
	for (int j = 0; j < p->n; j++) {
		dnnl_memory_set_data_handle(p->in_src, (void *)frames[j]);
		dnnl_memory_set_data_handle(p->in_dst, in_base + (size_t)j * p->in_frame_bytes);
		dnnl_exec_arg_t a[3] = { { DNNL_ARG_FROM, p->in_src }, { DNNL_ARG_TO, p->in_dst },
					 { DNNL_ARG_ATTR_OUTPUT_SCALES, p->in_scale } };
		if (dnnl_primitive_execute(p->in_reorder, t->strm, p->in_scale ? 3 : 2, a) != dnnl_success)
			return -RTCI_ERR_ENGINE_DNNL;
	}
	dnnl_memory_set_data_handle(p->logits_mem, out);
	for (int i = 0; i < p->nsteps; i++)
		if (dnnl_primitive_execute(p->steps[i].prim, t->strm, p->steps[i].nargs, p->steps[i].args) !=
		    dnnl_success)
			return -RTCI_ERR_ENGINE_DNNL;
	if (dnnl_stream_wait(t->strm) != dnnl_success)
		return -RTCI_ERR_ENGINE_DNNL;
	return 0;
}

/* Affine mode: which layers get per-setup folded weights. The per-channel multiply costs about
 * the same per output element everywhere, so it weighs most where a layer does little work per
 * output (depthwise, 1x1 from few channels) and has a large output; such layers also have small
 * weights. Takes layers by output elements per weight byte, largest first, each that still fits
 * in `budget` bytes per setup (plain layout; oneDNN's padding adds a little). */
static size_t fold_cost(const struct layer *l)
{
	return (size_t)l->out_c * ((size_t)(l->in_c / l->groups) * l->k * l->k + 1) * sizeof(float);
}

static double fold_gain(const struct layer *l)
{
	return (double)l->out_c * l->oh * l->ow / (double)fold_cost(l);
}

static void choose_folds(struct net *n, long budget)
{
	size_t used = 0;
	for (;;) {
		int best = -1;
		for (int i = 0; i < n->nl; i++) {
			const struct layer *l = &n->layers[i];
			if (l->fold || budget <= 0 || used + fold_cost(l) > (size_t)budget)
				continue;
			if (best < 0 || fold_gain(l) > fold_gain(&n->layers[best]))
				best = i;
		}
		if (best < 0)
			return;
		n->layers[best].fold = true;
		used += fold_cost(&n->layers[best]);
	}
}

static enum rtci_tail_precision plan_precision(const struct rtci_tail *t, enum rtci_tail_precision prec);
static int resolve_precision(const struct rtci_tail *t, enum rtci_tail_precision *prec);
static enum rtci_tail_precision run_precision(const struct rtci_tail *t);

static void config_defaults(struct rtci_engine_config *c, const struct rtci_engine_config *in, int n_setups)
{
	memset(c, 0, sizeof(*c));
	if (in)
		*c = *in;
	if (c->max_batch <= 0)
		c->max_batch = 64;
	if (c->plan_cache <= 0)
		c->plan_cache = 16;
	if (c->folded_cache <= 0 || c->folded_cache > n_setups)
		c->folded_cache = n_setups;
	if (c->mode != RTCI_TAIL_FOLDED && c->mode != RTCI_TAIL_AFFINE)
		c->mode = RTCI_TAIL_AFFINE;
	if (c->sub_batch <= 0)
		c->sub_batch = RTCI_TAIL_DEFAULT_SUB_BATCH;
	if (c->setup_bytes == 0)
		c->setup_bytes = RTCI_TAIL_DEFAULT_SETUP_BYTES;
	if (c->sub_batch > c->max_batch)
		c->sub_batch = c->max_batch;
}

int rtci_tail_create(const struct rtci_model *m, const struct rtci_engine_config *cfg,
		     struct rtci_tail **out)
{
	*out = NULL;
	struct rtci_tail *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	int rc = net_build(&t->net, m);
	if (rc) {
		net_free(&t->net);
		free(t);
		return rc;
	}
	t->n_setups = rtci_model_setup_count(m);
	config_defaults(&t->cfg, cfg, t->n_setups);
	struct thr_guard tg = thr_enter(t->cfg.threads);
	const struct rtci_geometry *g = t->net.g;
	t->plans = calloc((size_t)t->cfg.plan_cache, sizeof(*t->plans));
	t->folds = calloc((size_t)t->cfg.folded_cache, sizeof(*t->folds));
	t->parts = calloc((size_t)t->n_setups, sizeof(*t->parts));
	t->logits_stage = malloc((size_t)t->cfg.max_batch * g->classes * sizeof(float));
	t->order = malloc((size_t)t->cfg.max_batch * 2 * sizeof(int));
	if (!t->plans || !t->folds || !t->parts || !t->logits_stage || !t->order) {
		rc = -ENOMEM;
		goto fail;
	}
	choose_folds(&t->net, t->cfg.setup_bytes);
	q_calibration(t);
	/* an asked-for int8 needs the calibration; auto takes a present one only when it is sound */
	if (t->cfg.precision == RTCI_PRECISION_INT8 && t->cal_rc) {
		rc = t->cal_rc;
		goto fail;
	}
	if (t->cfg.precision == RTCI_PRECISION_AUTO && t->cal_rc == -RTCI_ERR_ENGINE_CALIBRATION) {
		rc = t->cal_rc;
		goto fail;
	}
	if (t->cfg.precision == RTCI_PRECISION_AUTO && t->cal_rc)
		t->cfg.precision = RTCI_PRECISION_FP32;
	if (dnnl_engine_create(&t->eng, dnnl_cpu, 0) != dnnl_success ||
	    dnnl_stream_create(&t->strm, t->eng, dnnl_stream_default_flags) != dnnl_success) {
		rc = -RTCI_ERR_ENGINE_DNNL;
		goto fail;
	}
	/* The first plan fixes every layer's weights layout; build it at a typical batch size. */
	struct plan *p;
	int probe = t->cfg.sub_batch;
	if ((rc = get_plan(t, t->cfg.mode, run_precision(t), probe, &p)))
		goto fail;
	thr_leave(tg);
	*out = t;
	return 0;
fail:
	thr_leave(tg);
	rtci_tail_destroy(t);
	return rc;
}

void rtci_tail_destroy(struct rtci_tail *t)
{
	if (!t)
		return;
	for (int i = 0; i < t->nplans; i++)
		plan_free(t->plans[i]);
	for (int i = 0; i < t->nfolds; i++)
		free(t->folds[i].block);
	for (int i = 0; t->parts && i < t->n_setups; i++)
		free(t->parts[i]);
	free(t->parts);
	for (int b = 0; b < NBUF; b++)
		free(t->buf[b]);
	free(t->plans);
	free(t->folds);
	free(t->shared);
	free(t->fc);
	free(t->qw);
	free(t->sw);
	q_map_free(t->qmaps[0]);
	q_map_free(t->qmaps[1]);
	free(t->scale);
	free(t->pre);
	free(t->logits_stage);
	free(t->order);
	if (t->strm)
		dnnl_stream_destroy(t->strm);
	if (t->eng)
		dnnl_engine_destroy(t->eng);
	net_free(&t->net);
	free(t);
}

enum rtci_tail_mode rtci_tail_mode(const struct rtci_tail *t) { return t->cfg.mode; }

int rtci_tail_prepare(struct rtci_tail *t, int setup_id)
{
	if (setup_id < 0 || setup_id >= t->n_setups)
		return -RTCI_ERR_ENGINE_SETUP;
	void *blk;
	struct thr_guard tg = thr_enter(t->cfg.threads);
	enum rtci_tail_precision prec = run_precision(t);
	int rc = prec == RTCI_PRECISION_INT8 ? 0   /* int8 layers read the shared scale tables */
		: t->cfg.mode == RTCI_TAIL_AFFINE || prec != RTCI_PRECISION_FP32
		? get_part(t, setup_id, &blk) : get_folded(t, setup_id, &blk);
	thr_leave(tg);
	return rc;
}

#define FRAMES_ON_STACK 256

/* AUTO -> the auto map when calibrated, else FP32; INT8 refused without a calibration. */
static int resolve_precision(const struct rtci_tail *t, enum rtci_tail_precision *prec)
{
	if (*prec == RTCI_PRECISION_FP32)
		return 0;
	if (t->cal_rc) {
		if (*prec == RTCI_PRECISION_INT8)
			return t->cal_rc;
		*prec = RTCI_PRECISION_FP32;
	}
	if (*prec == RTCI_PRECISION_AUTO && t->auto_fp32)
		*prec = RTCI_PRECISION_FP32;
	return 0;
}

/* The precision whose plans run: AUTO with every layer int8 shares the INT8 plans. */
static enum rtci_tail_precision plan_precision(const struct rtci_tail *t, enum rtci_tail_precision prec)
{
	if (prec != RTCI_PRECISION_AUTO)
		return prec;
	for (int i = 0; i < t->net.nl; i++)
		if (!q_layer_rule(&t->net, prec, i))
			return prec;
	return RTCI_PRECISION_INT8;
}

/* The plans rtci_tail_run uses: the configured precision resolved (AUTO without VNNI runs fp32)
 * and then as plan_precision. Create refuses an INT8 it cannot resolve. */
static enum rtci_tail_precision run_precision(const struct rtci_tail *t)
{
	enum rtci_tail_precision prec = t->cfg.precision;
	if (resolve_precision(t, &prec))
		return t->cfg.precision;
	return plan_precision(t, prec);
}

static int tail_run(struct rtci_tail *t, enum rtci_tail_mode mode, enum rtci_tail_precision prec, int n,
		    const float *input, const int *setup_ids, float *logits)
{
	int rc = resolve_precision(t, &prec);
	if (rc)
		return rc;
	prec = plan_precision(t, prec);
	if (n < 1 || n > t->cfg.max_batch || n > FRAMES_ON_STACK)
		return -RTCI_ERR_ENGINE_BATCH;
	for (int i = 0; i < n; i++)
		if (setup_ids[i] < 0 || setup_ids[i] >= t->n_setups)
			return -RTCI_ERR_ENGINE_SETUP;
	if (mode == RTCI_TAIL_AUTO)
		mode = t->cfg.mode;
	const struct net *net = &t->net;
	size_t frame = (size_t)net->g->stem_out * net->ph * net->pw;
	int classes = net->g->classes;
	const float *frames[FRAMES_ON_STACK];
	struct plan *p;
	struct thr_guard tg = thr_enter(t->cfg.threads);

	/* Large batches run as sub-batches of at most sub_batch frames: the activations of a few
	 * frames stay in cache between layers, which is faster on CPUs than one big pass. */
	int sb = t->cfg.sub_batch;
	/* the f32 weight blocks are laid out by the first f32 plan (an int8 tail may have none yet) */
	if (prec != RTCI_PRECISION_INT8 && !t->net.laid_out)
		rc = get_plan(t, mode, RTCI_PRECISION_FP32, n < sb ? n : sb, &p);
	/* the frames of each setup (in order of first appearance) in sub-batches */
	int *order = t->order, *done = t->order + t->cfg.max_batch;
	memset(done, 0, (size_t)n * sizeof(int));
	for (int i = 0; i < n && !rc; i++) {
		if (done[i])
			continue;
		int s = setup_ids[i], k = 0;
		for (int j = i; j < n; j++)
			if (!done[j] && setup_ids[j] == s) {
				done[j] = 1;
				order[k] = j;
				frames[k++] = input + (size_t)j * frame;
			}
		void *blk;
		bool folded = mode == RTCI_TAIL_FOLDED && prec == RTCI_PRECISION_FP32;
		blk = NULL;
		if (prec != RTCI_PRECISION_INT8 && (rc = folded ? get_folded(t, s, &blk) : get_part(t, s, &blk)))
			break;
		for (int j0 = 0; j0 < k && !rc; j0 += sb) {
			int kk = k - j0 < sb ? k - j0 : sb;
			if ((rc = get_plan(t, mode, prec, kk, &p)))
				break;
			/* frames in input order and contiguous: write the logits in place */
			bool direct = order[j0 + kk - 1] - order[j0] == kk - 1;
			float *dst = direct ? logits + (size_t)order[j0] * classes : t->logits_stage;
			rc = plan_exec(t, p, frames + j0, s, blk, dst);
			if (!rc && !direct)
				for (int j = 0; j < kk; j++)
					memcpy(logits + (size_t)order[j0 + j] * classes,
					       t->logits_stage + (size_t)j * classes, (size_t)classes * sizeof(float));
		}
	}
	thr_leave(tg);
	return rc;
}

/* An explicit mode measures the BN modes against each other: f32. */
int rtci_tail_run_mode(struct rtci_tail *t, enum rtci_tail_mode mode, int n, const float *input,
		       const int *setup_ids, float *logits)
{
	enum rtci_tail_precision prec = mode == RTCI_TAIL_AUTO ? t->cfg.precision : RTCI_PRECISION_FP32;
	return tail_run(t, mode, prec, n, input, setup_ids, logits);
}

int rtci_tail_run_precision(struct rtci_tail *t, enum rtci_tail_precision prec, int n,
			    const float *input, const int *setup_ids, float *logits)
{
	return tail_run(t, RTCI_TAIL_AUTO, prec, n, input, setup_ids, logits);
}

int rtci_tail_run(struct rtci_tail *t, int n, const float *input, const int *setup_ids, float *logits)
{
	return rtci_tail_run_mode(t, RTCI_TAIL_AUTO, n, input, setup_ids, logits);
}

int rtci_precision_parse(const char *s, enum rtci_tail_precision *out)
{
	static const char *const names[] = { "auto", "fp32", "int8" };
	for (int i = 0; i < 3; i++)
		if (s && strcmp(s, names[i]) == 0) {
			*out = (enum rtci_tail_precision)i;
			return 0;
		}
	return -EINVAL;
}

const char *rtci_precision_name(enum rtci_tail_precision p)
{
	return p == RTCI_PRECISION_FP32 ? "fp32" : p == RTCI_PRECISION_INT8 ? "int8" : "auto";
}

bool rtci_int8_exact(void)
{
	switch (dnnl_get_effective_cpu_isa()) {
	case dnnl_cpu_isa_avx512_core_vnni:
	case dnnl_cpu_isa_avx512_core_bf16:
	case dnnl_cpu_isa_avx512_core_amx:
	case dnnl_cpu_isa_avx2_vnni:
		return true;
	default:
		return false;
	}
}

int rtci_tail_int8_layer(const struct rtci_tail *t, enum rtci_tail_precision prec, int i)
{
	if (i < 0)
		return t->net.nl;
	if (i >= t->net.nl || resolve_precision(t, &prec) || prec == RTCI_PRECISION_FP32)
		return 0;
	return q_layer_rule(&t->net, prec, i);
}

void rtci_tail_stats(const struct rtci_tail *t, struct rtci_tail_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->model_bytes = rtci_model_file_size(t->net.model);
	st->folded_bytes = (size_t)t->nfolds * t->net.block_bytes + (size_t)t->nparts * t->net.part_bytes;
	st->shared_bytes = (t->shared ? t->net.block_bytes : 0) +
		(t->fc ? t->fc_w_bytes + (size_t)t->net.g->classes * sizeof(float) : 0);
	st->bn_table_bytes = t->scale ? 2 * (size_t)t->n_setups * t->net.bn_total * sizeof(float) : 0;
	for (int b = 0; b < NBUF; b++)
		st->activation_bytes += t->buf_size[b];
	st->plans = t->nplans;
	for (int i = 0; i < t->nfolds; i++)
		st->folded_setups += t->folds[i].setup >= 0;
	enum rtci_tail_precision run = run_precision(t);
	if (t->cfg.mode == RTCI_TAIL_FOLDED && run == RTCI_PRECISION_FP32)
		st->ready_setups = st->folded_setups;
	else
		st->ready_setups = t->net.part_bytes && run != RTCI_PRECISION_INT8 ? t->nparts
										  : t->n_setups;
	st->plan_builds = t->plan_builds;
	st->fold_builds = t->fold_builds;
	st->precision = t->cfg.precision;
	st->layers = t->net.nl;
	for (int i = 0; i < t->net.nl; i++)
		st->int8_layers += rtci_tail_int8_layer(t, t->cfg.precision, i);
	st->int8_bytes = t->qw ? t->net.qblock_bytes + (size_t)t->net.bn_total * sizeof(float) : 0;
	for (int k = 0; k < 2; k++)
		st->int8_bytes += t->qmaps[k] ? t->qmaps[k]->bytes : 0;
}

int rtci_topk(const float *values, int n, int k, int *idx, float *val)
{
	if (k > n)
		k = n;
	if (k <= 0)
		return 0;
	int m = 0;
	for (int i = 0; i < n; i++) {
		float v = values[i];
		if (m == k && !(v > val[k - 1]))
			continue;
		int j = m < k ? m++ : k - 1;
		while (j > 0 && v > val[j - 1]) {
			val[j] = val[j - 1];
			idx[j] = idx[j - 1];
			j--;
		}
		val[j] = v;
		idx[j] = i;
	}
	return k;
}

/* ---------------------------------------------------------------- head executor */

#define HEAD_PLANS 8

struct head_plan {
	int n, c;
	uint64_t last_used;
	dnnl_primitive_t norm, conv, wreorder, oreorder;
	dnnl_memory_t img, norm_dst, mscale, mshift, conv_src, w_plain, w, b, dst, scratch_n, scratch_c;
	dnnl_memory_t conv_dst;   /* the conv's own layout when it is not NCHW, else NULL */
	void *wbuf, *conv_out;
	int loaded_setup;
	size_t scratch_bytes;
};

struct rtci_head {
	const struct rtci_model *model;
	const struct rtci_geometry *g;
	struct rtci_engine_config cfg;
	dnnl_engine_t eng;
	dnnl_stream_t strm;
	const float *w, *gamma, *beta, *mean, *var;
	float mul[RTCI_MODEL_MAX_IN_C], add[RTCI_MODEL_MAX_IN_C];
	int oh, ow;
	float *norm;           /* normalized images, NCHW, max_batch */
	float *wtmp, *btmp;    /* folded stem weights / bias of the current setup */
	void *scratch;
	size_t scratch_size;
	struct head_plan *plans[HEAD_PLANS];
	int nplans;
	uint64_t tick;
};

static void head_plan_free(struct head_plan *p)
{
	if (!p)
		return;
	dnnl_primitive_destroy(p->norm);
	dnnl_primitive_destroy(p->conv);
	dnnl_primitive_destroy(p->wreorder);
	dnnl_primitive_destroy(p->oreorder);
	dnnl_memory_t ms[] = { p->img, p->norm_dst, p->mscale, p->mshift, p->conv_src, p->w_plain, p->w,
			       p->b, p->dst, p->scratch_n, p->scratch_c, p->conv_dst };
	for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++)
		dnnl_memory_destroy(ms[i]);
	free(p->wbuf);
	free(p->conv_out);
	free(p);
}

static int head_plan_build(struct rtci_head *h, int N, int c, struct head_plan **out)
{
	const struct rtci_geometry *g = h->g;
	int rc = 0;
	dnnl_primitive_desc_t pd = NULL, rpd = NULL;
	dnnl_primitive_attr_t attr = NULL;
	struct head_plan *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->n = N;
	p->c = c;
	p->loaded_setup = -1;
	int K = g->stem_kernel;
	dnnl_memory_desc_t img_md, ch_md, src_md, w_any, w_plain, b_md, dst_md, dst_any;
	dnnl_dims_t id = { N, g->in_c, g->in_h, g->in_w }, cd = { 1, g->in_c, 1, 1 };
	dnnl_dims_t wd = { c, g->in_c, K, K }, bd = { c }, dd = { N, c, h->oh, h->ow };
	DN(dnnl_memory_desc_init_by_tag(&img_md, 4, id, dnnl_f32, dnnl_nchw));
	DN(dnnl_memory_desc_init_by_tag(&ch_md, 4, cd, dnnl_f32, dnnl_nchw));
	/* (x - mean) / std as x * (1/std) + (-mean/std), per channel */
	dnnl_binary_desc_t bdsc;
	DN(dnnl_binary_desc_init(&bdsc, dnnl_binary_mul, &img_md, &ch_md, &img_md));
	attr = eng_make_attr(false, false, NULL, &ch_md);
	DN(dnnl_primitive_desc_create(&pd, &bdsc, attr, h->eng, NULL));
	dnnl_primitive_attr_destroy(attr);
	attr = NULL;
	DN(dnnl_primitive_create(&p->norm, pd));
	size_t sn = dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0));
	DN(dnnl_memory_create(&p->scratch_n, dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0),
			      h->eng, DNNL_MEMORY_NONE));
	dnnl_primitive_desc_destroy(pd);
	pd = NULL;
	DN(dnnl_memory_create(&p->img, &img_md, h->eng, DNNL_MEMORY_NONE));
	DN(dnnl_memory_create(&p->norm_dst, &img_md, h->eng, h->norm));
	DN(dnnl_memory_create(&p->mscale, &ch_md, h->eng, h->mul));
	DN(dnnl_memory_create(&p->mshift, &ch_md, h->eng, h->add));

	/* stem conv with the setup's folded BN, ReLU6, first c channels, NCHW out for the codec */
	src_md = img_md;
	DN(dnnl_memory_desc_init_by_tag(&w_any, 4, wd, dnnl_f32, dnnl_format_tag_any));
	DN(dnnl_memory_desc_init_by_tag(&w_plain, 4, wd, dnnl_f32, dnnl_oihw));
	DN(dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_a));
	DN(dnnl_memory_desc_init_by_tag(&dst_md, 4, dd, dnnl_f32, dnnl_nchw));
	DN(dnnl_memory_desc_init_by_tag(&dst_any, 4, dd, dnnl_f32, dnnl_format_tag_any));
	dnnl_convolution_desc_t cdsc;
	dnnl_dims_t st = { g->stem_stride, g->stem_stride }, pads = { g->stem_pad, g->stem_pad };
	DN(dnnl_convolution_forward_desc_init(&cdsc, dnnl_forward_inference, dnnl_convolution_direct, &src_md,
					      &w_any, &b_md, &dst_any, st, pads, pads));
	attr = eng_make_attr(false, true, NULL, NULL);
	DN(dnnl_primitive_desc_create(&pd, &cdsc, attr, h->eng, NULL));
	dnnl_primitive_attr_destroy(attr);
	attr = NULL;
	DN(dnnl_primitive_create(&p->conv, pd));
	const dnnl_memory_desc_t *qw = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
	const dnnl_memory_desc_t *qs = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
	size_t sc = dnnl_memory_desc_get_size(qs);
	p->wbuf = eng_xalloc(dnnl_memory_desc_get_size(qw));
	if (!p->wbuf) {
		rc = -ENOMEM;
		goto fail;
	}
	DN(dnnl_memory_create(&p->w, qw, h->eng, p->wbuf));
	DN(dnnl_memory_create(&p->scratch_c, qs, h->eng, DNNL_MEMORY_NONE));
	DN(dnnl_memory_create(&p->w_plain, &w_plain, h->eng, h->wtmp));
	DN(dnnl_memory_create(&p->b, &b_md, h->eng, h->btmp));
	DN(dnnl_memory_create(&p->conv_src, &src_md, h->eng, h->norm));
	DN(dnnl_memory_create(&p->dst, &dst_md, h->eng, DNNL_MEMORY_NONE));
	/* the convolution writes the layout it is fastest in; one reorder gives the codec NCHW */
	const dnnl_memory_desc_t *qd = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
	if (!dnnl_memory_desc_equal(qd, &dst_md)) {
		p->conv_out = eng_xalloc(dnnl_memory_desc_get_size(qd));
		if (!p->conv_out) {
			rc = -ENOMEM;
			goto fail;
		}
		DN(dnnl_memory_create(&p->conv_dst, qd, h->eng, p->conv_out));
		dnnl_primitive_desc_t opd;
		DN(dnnl_reorder_primitive_desc_create(&opd, qd, h->eng, &dst_md, h->eng, NULL));
		dnnl_status_t os = dnnl_primitive_create(&p->oreorder, opd);
		dnnl_primitive_desc_destroy(opd);
		if (os != dnnl_success) {
			rc = -RTCI_ERR_ENGINE_DNNL;
			goto fail;
		}
	}
	DN(dnnl_reorder_primitive_desc_create(&rpd, &w_plain, h->eng, qw, h->eng, NULL));
	DN(dnnl_primitive_create(&p->wreorder, rpd));
	p->scratch_bytes = sn > sc ? sn : sc;
	dnnl_primitive_desc_destroy(rpd);
	dnnl_primitive_desc_destroy(pd);
	*out = p;
	return 0;
fail:
	dnnl_primitive_desc_destroy(rpd);
	dnnl_primitive_desc_destroy(pd);
	dnnl_primitive_attr_destroy(attr);
	head_plan_free(p);
	return rc;
}

int rtci_head_create(const struct rtci_model *m, const struct rtci_engine_config *cfg,
		     struct rtci_head **out)
{
	*out = NULL;
	struct rtci_head *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->model = m;
	h->g = rtci_model_geometry(m);
	config_defaults(&h->cfg, cfg, rtci_model_setup_count(m));
	const struct rtci_geometry *g = h->g;
	rtci_geometry_partition_size(g, &h->oh, &h->ow);
	h->w = rtci_model_tensor(m, "stem.conv.weight", NULL, NULL);
	h->gamma = rtci_model_tensor(m, "stem.bn.weight", NULL, NULL);
	h->beta = rtci_model_tensor(m, "stem.bn.bias", NULL, NULL);
	h->mean = rtci_model_tensor(m, "stem.bn.running_mean", NULL, NULL);
	h->var = rtci_model_tensor(m, "stem.bn.running_var", NULL, NULL);
	int rc = 0;
	if (!h->w || !h->gamma || !h->beta || !h->mean || !h->var) {
		rc = -RTCI_ERR_MODEL_TENSOR;
		goto fail;
	}
	for (int i = 0; i < g->in_c; i++) {
		h->mul[i] = 1.0f / g->input_std[i];
		h->add[i] = -g->input_mean[i] / g->input_std[i];
	}
	h->norm = eng_xalloc((size_t)h->cfg.max_batch * g->in_c * g->in_h * g->in_w * sizeof(float));
	h->wtmp = malloc((size_t)g->stem_out * g->in_c * g->stem_kernel * g->stem_kernel * sizeof(float));
	h->btmp = malloc((size_t)g->stem_out * sizeof(float));
	if (!h->norm || !h->wtmp || !h->btmp) {
		rc = -ENOMEM;
		goto fail;
	}
	if (dnnl_engine_create(&h->eng, dnnl_cpu, 0) != dnnl_success ||
	    dnnl_stream_create(&h->strm, h->eng, dnnl_stream_default_flags) != dnnl_success) {
		rc = -RTCI_ERR_ENGINE_DNNL;
		goto fail;
	}
	*out = h;
	return 0;
fail:
	rtci_head_destroy(h);
	return rc;
}

void rtci_head_destroy(struct rtci_head *h)
{
	if (!h)
		return;
	for (int i = 0; i < h->nplans; i++)
		head_plan_free(h->plans[i]);
	free(h->norm);
	free(h->wtmp);
	free(h->btmp);
	free(h->scratch);
	if (h->strm)
		dnnl_stream_destroy(h->strm);
	if (h->eng)
		dnnl_engine_destroy(h->eng);
	free(h);
}

static int head_get_plan(struct rtci_head *h, int N, int c, struct head_plan **out)
{
	int lru = -1;
	for (int i = 0; i < h->nplans; i++) {
		if (h->plans[i]->n == N && h->plans[i]->c == c) {
			h->plans[i]->last_used = ++h->tick;
			*out = h->plans[i];
			return 0;
		}
		if (lru < 0 || h->plans[i]->last_used < h->plans[lru]->last_used)
			lru = i;
	}
	struct head_plan *p;
	int rc = head_plan_build(h, N, c, &p);
	if (rc)
		return rc;
	if (p->scratch_bytes > h->scratch_size) {
		void *s = eng_xalloc(p->scratch_bytes);
		if (!s) {
			head_plan_free(p);
			return -ENOMEM;
		}
		free(h->scratch);
		h->scratch = s;
		h->scratch_size = p->scratch_bytes;
	}
	if (h->nplans == HEAD_PLANS) {
		head_plan_free(h->plans[lru]);
		h->plans[lru] = p;
	} else {
		h->plans[h->nplans++] = p;
	}
	p->last_used = ++h->tick;
	*out = p;
	return 0;
}

int rtci_head_run(struct rtci_head *h, int setup_id, int n, const float *images, float *out)
{
	const struct rtci_setup *s = rtci_model_setup(h->model, setup_id);
	if (!s)
		return -RTCI_ERR_ENGINE_SETUP;
	if (n < 1 || n > h->cfg.max_batch)
		return -RTCI_ERR_ENGINE_BATCH;
	const struct rtci_geometry *g = h->g;
	struct thr_guard tg = thr_enter(h->cfg.threads);
	struct head_plan *p;
	int rc = head_get_plan(h, n, s->c, &p);
	if (rc)
		goto out;
	if (p->loaded_setup != setup_id) {
		/* fold the setup's stem BN into the first c filters */
		size_t per_o = (size_t)g->in_c * g->stem_kernel * g->stem_kernel;
		for (int o = 0; o < s->c; o++) {
			size_t k = (size_t)s->bn_slot * g->stem_out + o;
			double sc = (double)h->gamma[o] / sqrt((double)h->var[k] + (double)g->bn_eps);
			for (size_t j = 0; j < per_o; j++)
				h->wtmp[o * per_o + j] = (float)(h->w[o * per_o + j] * sc);
			h->btmp[o] = (float)((double)h->beta[o] - (double)h->mean[k] * sc);
		}
		dnnl_exec_arg_t a[2] = { { DNNL_ARG_FROM, p->w_plain }, { DNNL_ARG_TO, p->w } };
		if (dnnl_primitive_execute(p->wreorder, h->strm, 2, a) != dnnl_success) {
			rc = -RTCI_ERR_ENGINE_DNNL;
			goto out;
		}
		p->loaded_setup = setup_id;
		/* other plans holding this c must refold too: btmp is shared */
		for (int i = 0; i < h->nplans; i++)
			if (h->plans[i] != p)
				h->plans[i]->loaded_setup = -1;
	}
	dnnl_memory_set_data_handle(p->img, (void *)images);
	dnnl_memory_set_data_handle(p->dst, out);
	dnnl_memory_set_data_handle(p->scratch_n, h->scratch);
	dnnl_memory_set_data_handle(p->scratch_c, h->scratch);
	dnnl_exec_arg_t na[5] = { { DNNL_ARG_SRC_0, p->img }, { DNNL_ARG_SRC_1, p->mscale },
				  { DNNL_ARG_DST, p->norm_dst },
				  { DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, p->mshift },
				  { DNNL_ARG_SCRATCHPAD, p->scratch_n } };
	dnnl_exec_arg_t ca[5] = { { DNNL_ARG_SRC, p->conv_src }, { DNNL_ARG_WEIGHTS, p->w },
				  { DNNL_ARG_BIAS, p->b }, { DNNL_ARG_DST, p->conv_dst ? p->conv_dst : p->dst },
				  { DNNL_ARG_SCRATCHPAD, p->scratch_c } };
	dnnl_exec_arg_t oa[2] = { { DNNL_ARG_FROM, p->conv_dst }, { DNNL_ARG_TO, p->dst } };
	if (dnnl_primitive_execute(p->norm, h->strm, 5, na) != dnnl_success ||
	    dnnl_primitive_execute(p->conv, h->strm, 5, ca) != dnnl_success ||
	    (p->oreorder && dnnl_primitive_execute(p->oreorder, h->strm, 2, oa) != dnnl_success) ||
	    dnnl_stream_wait(h->strm) != dnnl_success)
		rc = -RTCI_ERR_ENGINE_DNNL;
out:
	thr_leave(tg);
	return rc;
}
