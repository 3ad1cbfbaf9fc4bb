/* SW-CNN executors on oneDNN: the head (edge side: image -> partition tensor of a setup) and the
 * tail (gateway side: a batch of decoded partition tensors, each with its own setup -> logits).
 *
 * All setups share convolution weights and differ only in BatchNorm statistics. The tail holds
 * the weights once, in each layer's oneDNN layout, and applies a setup's BN in one of two ways:
 *  - RTCI_TAIL_AFFINE: the convolution has no bias; BN is a per-channel multiply and add post-op
 *    whose inputs point at the setup's row of the scale/shift table. Every setup is ready at
 *    create for one copy of the weights; the post-ops run in the convolution's store, so speed
 *    matches folded weights (bench/tail prints the ratio).
 *  - RTCI_TAIL_FOLDED: BN folded into a per-setup copy of the weights and bias (built lazily, kept
 *    in a bounded cache). Kept as the reference the affine mode is measured against.
 * RTCI_TAIL_AUTO picks AFFINE. Either way a batch holding several setups runs as one sub-batch
 * per setup.
 *
 * Primitives are created once per (mode, batch size) and kept in a bounded cache; activations
 * stay in the blocked layouts oneDNN picks from layer to layer; ReLU6 is a clip post-op and
 * residual adds are sum post-ops.
 *
 * Threading: oneDNN here runs on OpenMP. An executor runs its primitives on `threads` OpenMP
 * threads of the calling thread (it sets omp_set_num_threads around create and run and restores
 * the caller's value). Use one executor per worker thread with threads = 1 (one gateway worker
 * lcore each), or one executor with threads = N. An executor is not thread-safe: one caller at a
 * time. With threads > 1 on cores shared with other work, set OMP_WAIT_POLICY=passive: a spinning
 * OpenMP thread otherwise burns the time slice its partner needs at every barrier.
 *
 * Memory: the model file stays mapped; the affine mode holds one copy of the convolution weights
 * (8.95 MB for mnv2-224) plus the scale/shift table (8 bytes per BN channel per setup); the
 * folded mode one copy per setup in its cache. Activations are sized for the largest sub-batch
 * (three ping-pong buffers plus a shared scratchpad).
 *
 * Precision (enum rtci_tail_precision, docs/engine.md): the tail runs fp32 or, with the model
 * file's int8 calibration, int8 convolutions (s8 weights held once, per-setup scale and shift
 * post-ops, u8/s8 activations); auto, the default, takes int8 where it measured faster. */
#ifndef RTCI_ENGINE_H
#define RTCI_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

#include "inference/model.h"

enum rtci_tail_mode {
	RTCI_TAIL_AUTO = 0,
	RTCI_TAIL_FOLDED = 1,
	RTCI_TAIL_AFFINE = 2,
};

/* Where the tail runs int8 (u8 activations, s8 weights with per-output-channel scales, the
 * model file's calibrated activation scales; docs/model-format.md, `int8`):
 *  - FP32: every layer in f32.
 *  - INT8: every convolution int8 (pooling and classifier f32); refused with
 *    -RTCI_ERR_ENGINE_UNCALIBRATED when the model file has no int8 block.
 *  - AUTO: int8 for the layers where int8 measured faster, f32 elsewhere (rtci_tail_int8_layer);
 *    FP32 when the model has no calibration. */
enum rtci_tail_precision {
	RTCI_PRECISION_AUTO = 0,
	RTCI_PRECISION_FP32 = 1,
	RTCI_PRECISION_INT8 = 2,
};

/* "auto", "fp32", "int8" <-> the enum; parse returns 0 or -EINVAL. */
int rtci_precision_parse(const char *s, enum rtci_tail_precision *out);
const char *rtci_precision_name(enum rtci_tail_precision p);

/* Whether oneDNN's int8 convolutions on this CPU (as far as ONEDNN_MAX_CPU_ISA allows) compute the
 * exact integer sums docs/model-format.md defines: with VNNI. Without it oneDNN multiplies with
 * vpmaddubsw, whose 16-bit pair sums can saturate, and halves the s8 weights in its layout: a
 * 7-bit weight grid, further from fp32 (docs/engine.md). */
bool rtci_int8_exact(void);

struct rtci_engine_config {
	int threads;        /* OpenMP threads per run; 0 = the caller's current setting */
	int max_batch;      /* largest batch a run accepts; 0 = 64 */
	int plan_cache;     /* primitive plans kept, per (mode, batch size); 0 = 16 */
	int folded_cache;   /* folded mode: setups whose folded weights are kept; 0 = every setup */
	enum rtci_tail_mode mode;
	int sub_batch;      /* tail: a batch runs as sub-batches of at most this many frames;
			       0 = RTCI_TAIL_DEFAULT_SUB_BATCH */
	long setup_bytes;   /* affine mode: bytes of per-setup folded weights, for the layers where
			       the BN multiply costs most; 0 = RTCI_TAIL_DEFAULT_SETUP_BYTES, < 0 none */
	enum rtci_tail_precision precision;   /* tail: AUTO (0) by default */
};

/* 1 MB per setup holds the mnv2-224 layers where the multiply post-op costs most per weight byte
 * (depthwise and small 1x1, 112x112 to 14x14): 0.98 MB of its 8.95 MB in oneDNN's layouts, 74 MB
 * with all 50 setups ready against 464 MB folded, same speed within noise; see bench/tail. */
#define RTCI_TAIL_DEFAULT_SETUP_BYTES (1L << 20)

/* Measured with bench/tail on this project's 2-core machine (1 and 2 threads): one frame at a time
 * keeps a frame's activations in cache and beat every larger sub-batch (batch 32: 55 img/s in
 * sub-batches of 1 against 37 in one pass on 1 thread; 49 against 28 on 2). Machines with many
 * threads per executor may want more frames per pass to keep every thread busy. */
#define RTCI_TAIL_DEFAULT_SUB_BATCH 1

struct rtci_tail_stats {
	size_t model_bytes;        /* the mapped model file */
	size_t folded_bytes;       /* folded weights of the setups in the cache */
	size_t shared_bytes;       /* shared (unfolded) weights of the affine mode, and the classifier */
	size_t bn_table_bytes;     /* per-setup BN scale/shift table of the f32 layers; 0 for an int8
				      tail until an fp32 run (rtci_tail_run_precision) needs it */
	size_t activation_bytes;   /* activation buffers and scratchpad, sized for the largest plan */
	int plans;                 /* plans in the cache */
	int folded_setups;         /* setups with folded weights ready */
	int ready_setups;          /* setups that run without building weights first */
	long plan_builds, fold_builds;   /* cache misses so far */
	enum rtci_tail_precision precision;   /* what rtci_tail_run uses (AUTO resolved: FP32 when
						 uncalibrated, else AUTO) */
	int int8_layers, layers;   /* convolutions rtci_tail_run runs in int8, of all */
	size_t int8_bytes;         /* s8 weights and the per-setup int8 scale tables */
};

struct rtci_head;
struct rtci_tail;

/* ---- head (edge side) ---- */

int rtci_head_create(const struct rtci_model *m, const struct rtci_engine_config *cfg,
		     struct rtci_head **out);
void rtci_head_destroy(struct rtci_head *h);

/* Runs the stem for setup `setup_id` on n images (float pixel/255, NCHW, in_c x in_h x in_w
 * each) and writes the partition tensor: n x c x H' x W' floats (c of the setup), NCHW. */
int rtci_head_run(struct rtci_head *h, int setup_id, int n, const float *images, float *out);

/* ---- tail (gateway side) ---- */

int rtci_tail_create(const struct rtci_model *m, const struct rtci_engine_config *cfg,
		     struct rtci_tail **out);
void rtci_tail_destroy(struct rtci_tail *t);

/* Runs n frames: input is n x stem_out x H' x W' floats (NCHW; each frame's channels from its
 * setup's c onwards zero-filled), setup_ids[i] the setup of frame i. Writes n x classes logits.
 * Returns 0 or a negative code (-RTCI_ERR_ENGINE_BATCH, -RTCI_ERR_ENGINE_SETUP, ...). */
int rtci_tail_run(struct rtci_tail *t, int n, const float *input, const int *setup_ids,
		  float *logits);

/* Same with an explicit mode for this call (FOLDED or AFFINE), for measurement and tests. */
int rtci_tail_run_mode(struct rtci_tail *t, enum rtci_tail_mode mode, int n, const float *input,
		       const int *setup_ids, float *logits);

/* Same with an explicit precision for this call (affine mode for the f32 layers), for measurement
 * and tests. -RTCI_ERR_ENGINE_UNCALIBRATED / -RTCI_ERR_ENGINE_CALIBRATION for int8 on a model
 * without a usable calibration. */
int rtci_tail_run_precision(struct rtci_tail *t, enum rtci_tail_precision prec, int n,
			    const float *input, const int *setup_ids, float *logits);

/* Whether layer i (engine order, 0 = block1.conv1) of a precision runs int8 on this tail; the
 * count of convolution layers when i < 0. */
int rtci_tail_int8_layer(const struct rtci_tail *t, enum rtci_tail_precision prec, int i);

/* Folded mode: builds the folded weights of a setup now (otherwise built on first use). Affine
 * mode: nothing to build; checks the setup id. */
int rtci_tail_prepare(struct rtci_tail *t, int setup_id);

void rtci_tail_stats(const struct rtci_tail *t, struct rtci_tail_stats *st);

/* The mode rtci_tail_run uses. */
enum rtci_tail_mode rtci_tail_mode(const struct rtci_tail *t);

/* Indices and values of the k largest of n values, largest first. Returns k' = min(k, n). */
int rtci_topk(const float *values, int n, int k, int *idx, float *val);

#endif
