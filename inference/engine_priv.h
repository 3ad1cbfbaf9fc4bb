/* Internals shared by the tail executor (engine.c) and its int8 plans (engine_int8.c). */
#ifndef RTCI_ENGINE_PRIV_H
#define RTCI_ENGINE_PRIV_H

#include <dnnl.h>
#include <stdbool.h>
#include <stdint.h>

#include "inference/engine.h"
#include "common/rtci_error.h"

#define ALIGN 64
#define DN(call) do { if ((call) != dnnl_success) { rc = -RTCI_ERR_ENGINE_DNNL; goto fail; } } while (0)

struct bn {
	int c;
	const float *gamma, *beta, *mean, *var;   /* mean/var: [slots, c] */
	size_t off;                                /* offset into a setup's scale/pre row */
};

struct layer {
	int in_c, out_c, k, stride, pad, groups;
	int ih, iw, oh, ow;
	const float *w;       /* model weights, OIHW */
	int bn;               /* index into bns */
	bool relu6, residual;
	int src, dst;         /* buffer ids */
	dnnl_memory_desc_t wmd;   /* weights layout chosen once, shared by every plan */
	bool wmd_set;
	size_t w_off, b_off;  /* bytes into a weights block */
	bool fold;            /* affine mode: folded per setup (a small layer with a large output) */
	size_t pw_off, pb_off;    /* bytes into a setup's part block, when fold */
	/* int8 (engine_int8.c): the scale points of the input and output tensors (0: the tail
	 * input, k >= 1: residual chain k, -1: a ReLU6 output at the fixed 6/255), the layer that
	 * produced the residual this layer adds (-1 none), and the s8 weights' layout and place */
	int in_pt, out_pt, res_src;
	dnnl_memory_desc_t qwmd;
	bool qwmd_set;
	size_t qw_off;
};

struct net {
	const struct rtci_model *model;
	const struct rtci_geometry *g;
	int nl;
	struct layer *layers;
	int nbn;
	struct bn *bns;
	size_t bn_total;      /* sum of BN channels */
	int ph, pw;           /* partition size */
	int last_h, last_w;
	const float *fc_w, *fc_b;
	dnnl_memory_desc_t fc_wmd;
	bool fc_wmd_set;
	size_t block_bytes;   /* one weights block (all layers) */
	size_t part_bytes;    /* one setup's part block (the fold layers of the affine mode) */
	bool laid_out;        /* the f32 weights layouts are known and the blocks laid out */
	int points;           /* int8 scale points: the input and one per residual chain */
	size_t qblock_bytes;  /* the s8 weights of every layer */
};

#define BUF_SCRATCH 3
#define BUF_CONVERT 4   /* a tensor converted between f32 and int8 for its consumer */
#define NBUF 5

struct step {
	dnnl_primitive_t prim;
	int nargs;
	dnnl_exec_arg_t args[8];
};

struct bind {             /* a memory object whose handle lives in an executor buffer */
	dnnl_memory_t mem;
	int buf;
};

struct wbind {            /* a weights/bias memory rebound to a weights block */
	dnnl_memory_t mem;
	int layer;            /* -1: the classifier */
	bool bias;
	bool q;               /* the layer's s8 weights */
};

/* Where a tail runs int8 (engine_int8.c): which layers, which write f32, and per setup the
 * output scales and shifts of the int8 layers, the scale of each f32 <-> int8 conversion at a
 * layer's input, and 1 / input_scale. Rows: [setup][bn_total], [setup][layers], [setup]. */
struct qmap {
	enum rtci_tail_precision prec;
	bool *q, *f32out;
	float *osc, *osh, *cvt, *in_inv;
	size_t bytes;
};

struct plan {
	enum rtci_tail_mode mode;
	enum rtci_tail_precision prec;   /* FP32, or the int8 map (INT8, AUTO) in qm */
	const struct qmap *qm;
	dnnl_memory_t *cv_mems;   /* per layer: scale of the conversion at its input, or NULL */
	dnnl_memory_t in_scale;   /* int8 input: 1 / input_scale of the setup */
	int n;
	uint64_t last_used;
	int nsteps, cap_steps;
	struct step *steps;
	int nbinds, cap_binds;
	struct bind *binds;
	int nw;
	struct wbind *wbinds;     /* rebound when the block changes (folded: per setup) */
	size_t need[NBUF];        /* bytes this plan needs in each executor buffer */
	unsigned buf_gen;
	/* per-frame input reorder */
	dnnl_primitive_t in_reorder;
	dnnl_memory_t in_src, in_dst;
	size_t in_frame_bytes;    /* bytes of one frame in the first layer's layout */
	dnnl_memory_t logits_mem;
	dnnl_memory_t *st_mems;   /* affine mode, per layer: the BN scale (post-op) and shift / scale (bias) */
	int nst;
	int folded_setup;         /* setup the wbinds / st_mems point at, -1 none */
	void *qw;                 /* the s8 weights block the wbinds point at */
	void *folded_block;
};

struct folded {
	int setup;
	void *block;
	uint64_t last_used;
};

struct rtci_tail {
	struct net net;
	struct rtci_engine_config cfg;
	dnnl_engine_t eng;
	dnnl_stream_t strm;
	float *scale, *pre;       /* [setups][bn_total]: BN scale, and BN shift / scale; NULL until an
				     f32 path needs them (bn_tables in engine.c) */
	int n_setups;
	void *shared;             /* unfolded weights (affine mode) */
	void *fc;                 /* classifier weights in their layout, then bias */
	size_t fc_w_bytes;
	void *buf[NBUF];
	size_t buf_size[NBUF];
	unsigned buf_gen;
	float *logits_stage;
	int *order;
	struct plan **plans;
	int nplans;
	struct folded *folds;
	int nfolds;
	void **parts;             /* affine mode: [setups] part blocks, built on first use */
	const float *act;         /* int8.act_scale [setups][points], NULL when uncalibrated */
	int cal_rc;               /* 0, or why int8 is refused (-RTCI_ERR_ENGINE_...) */
	bool auto_fp32;           /* AUTO runs fp32: no VNNI (q_auto_needs_vnni), fixed at create */
	void *qw;                 /* s8 weights of every layer in their layouts, built on first use */
	float *sw;                /* per output channel weight scales [bn_total] */
	struct qmap *qmaps[2];    /* INT8, AUTO; built on first use */
	int nparts;
	uint64_t tick;
	long plan_builds, fold_builds;
};

size_t eng_align_up(size_t x);
void *eng_xalloc(size_t bytes);
void eng_weights_dims(const struct layer *l, int *nd, dnnl_dims_t d);
int eng_reorder_into(dnnl_engine_t eng, dnnl_stream_t strm, const dnnl_memory_desc_t *md_plain,
		     const void *src, const dnnl_memory_desc_t *md, void *dst);
int eng_plan_mem(struct plan *p, dnnl_engine_t eng, const dnnl_memory_desc_t *md, int buf,
		 dnnl_memory_t *out);
int eng_plan_step(struct plan *p, dnnl_engine_t eng, dnnl_primitive_desc_t pd,
		  const dnnl_exec_arg_t *args, int nargs);
/* The per-frame input reorder into the first layer's layout (u8 with a runtime scale if int8). */
int eng_plan_input(struct plan *p, dnnl_engine_t eng, const struct layer *l,
		   const dnnl_memory_desc_t *q_src, int N);
dnnl_primitive_attr_t eng_make_attr(bool sum, bool relu6, const dnnl_memory_desc_t *mul_md,
				    const dnnl_memory_desc_t *add_md);

/* ---- engine_int8.c ---- */

/* Reads and checks the model's calibration into t->act / t->cal_rc (never fails the create:
 * a refused calibration only refuses int8). */
void q_calibration(struct rtci_tail *t);
/* The map of precision INT8 or AUTO, built on first use. */
int q_map(struct rtci_tail *t, enum rtci_tail_precision prec, const struct qmap **out);
void q_map_free(struct qmap *m);
/* The s8 weights of every layer, once every layout is known. */
int q_weights(struct rtci_tail *t);
/* Layer i of an int8 plan as an int8 convolution (with a conversion at its input if needed). */
int q_plan_conv(struct plan *p, struct rtci_tail *t, int i, int N, dnnl_memory_desc_t *buf_md,
		dnnl_memory_desc_t *cur_md);
/* A reorder of layer i's input from `from` (buffer l->src) into `to` (BUF_CONVERT) with the
 * layer's conversion scale, and the memory the layer reads it from. */
int q_plan_convert(struct plan *p, struct rtci_tail *t, int i, const dnnl_memory_desc_t *from,
		   const dnnl_memory_desc_t *to, dnnl_memory_t *conv_src);
/* Whether layer i runs int8 in precision INT8 or AUTO: the rule measured with bench/tail_int8 and
 * bench/tail (engine_int8.c); AUTO keeps depthwise layers with fewer output pixels than
 * q_auto_dw_f32_below in f32 (0 by default; set before a tail's first AUTO plan). */
extern long q_auto_dw_f32_below;
/* AUTO resolves to FP32 on a CPU without VNNI unless this is cleared (tests; read at create). */
extern bool q_auto_needs_vnni;
bool q_layer_rule(const struct net *n, enum rtci_tail_precision prec, int i);
/* Binds the per-setup scale memories of plan p to setup s. */
void q_bind_setup(struct rtci_tail *t, struct plan *p, int s);

#endif
