/* The local exit on oneDNN (edge side): one frame's full partition tensor -> class logits.
 *
 * The exit's BatchNorms are folded into its convolutions once at create; the two convolutions
 * (ReLU6 as a clip post-op) and the classifier (global average pool folded into an inner product
 * over the last feature map) are oneDNN primitives built once for batch 1. Not thread-safe: one
 * caller at a time; `threads` as in rtci_engine_config (0 = the caller's setting). */
#ifndef RTCI_EXIT_H
#define RTCI_EXIT_H

#include "inference/model.h"

struct rtci_exit;

/* Returns 0, -ENOENT when the model has no local exit, or another negative code. */
int rtci_exit_create(const struct rtci_model *m, int threads, struct rtci_exit **out);
void rtci_exit_destroy(struct rtci_exit *e);

/* partition: stem_out x H' x W' floats (NCHW) computed with the exit's input setup
 * (rtci_model_local_exit()->input_setup). Writes `classes` logits. Returns 0 or a negative code. */
int rtci_exit_run(struct rtci_exit *e, const float *partition, float *logits);

#endif
