/* The models a gateway serves (models.c): files, batcher queues, controller tables, cost. */
#ifndef RTCI_GATEWAY_MODELS_H
#define RTCI_GATEWAY_MODELS_H

#include <stddef.h>
#include <stdint.h>

#include "control/table.h"
#include "gateway/config.h"
#include "gateway/costmodel.h"
#include "inference/model.h"

struct gw;

struct gw_model {
	char name[RTCI_CONFIG_NAME_MAX];
	struct rtci_model *model;
	const struct rtci_geometry *geo;
	int setups, groups;
	int queue_base;           /* batcher queues queue_base .. queue_base + groups (last: no group) */
	int pc, ph, pw;           /* partition tensor C x H x W */
	uint32_t floats;          /* pc * ph * pw */
	uint32_t max_frame;       /* largest encoded frame of any setup */
	struct rtci_ctl_table table;
	struct rtci_cost cost;    /* one worker's time per batch size (workers keep it current) */
	int s_infer;              /* rtci_inference_seconds{model} */
	int s_capacity;           /* rtci_capacity_fps{model} */
};

/* models.c: loads every model of the gateway file (files, batcher queues, controller tables). */
int gw_models_load(struct gw *gw, char *err, size_t errlen);
/* Frees what gw_models_load made (models, queue tables, series ids). */
void gw_models_free(struct gw *gw);

#endif
