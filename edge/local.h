/* The device's local exit (docs/edge.md, "Local exit"): the head with the exit's input setup
 * (every channel) and the exit head, both on oneDNN, one frame at a time. rtci-edge runs it on
 * every frame after the upload is handed to the uplink; rtci-fleet runs it once per replayed
 * image at start. */
#ifndef RTCI_EDGE_LOCAL_H
#define RTCI_EDGE_LOCAL_H

#include <stdbool.h>
#include <stdint.h>

#include "inference/model.h"

struct rtci_local;

/* Returns 0, -ENOENT when the model has no local exit, or another negative code. */
int rtci_local_create(const struct rtci_model *m, struct rtci_local **out);
void rtci_local_destroy(struct rtci_local *l);

/* One image (float pixel/255, the model's input shape) -> the exit's class and its softmax
 * probability. Returns 0 or a negative code. */
int rtci_local_run(struct rtci_local *l, const float *input, uint16_t *class_id, float *score);

/* The setup local mode's probes use: the smallest payload (measured bytes, else raw bytes). */
int rtci_local_probe_setup(const struct rtci_model *m);

/* Whether a probe's frame should keep the local exit's answer rather than the server's (the
 * exit is at least as accurate as the probe's setup, or that setup's accuracy is unknown): the
 * device's cfg.probe_keeps_local. False without a local exit. */
bool rtci_local_probe_keeps_local(const struct rtci_model *m);

#endif
