/* The gateway's models: each model file of the gateway file loaded and checked, its batcher
 * queues numbered, its controller table built (shared by start-up and --check-config). */
#include "gateway/gw.h"
#include "gateway/control_glue.h"
#include "control/model_table.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "inference/codec.h"

int gw_models_load(struct gw *gw, char *err, size_t errlen)
{
	const struct rtci_gateway_config *cfg = gw->cfg;
	gw->nmodels = cfg->model_count;
	gw->models = calloc(gw->nmodels, sizeof(*gw->models));
	if (!gw->models)
		return -ENOMEM;
	uint32_t queues = 0;
	for (uint32_t k = 0; k < gw->nmodels; k++) {
		struct gw_model *m = &gw->models[k];
		snprintf(m->name, sizeof(m->name), "%s", cfg->models[k].name);
		char merr[512];
		int rc = rtci_model_load(cfg->models[k].path, &m->model, merr, sizeof(merr));
		if (rc < 0) {
			rtci_config_model_error(cfg, k, merr, err, errlen);
			return rc;
		}
		m->geo = rtci_model_geometry(m->model);
		m->setups = rtci_model_setup_count(m->model);
		m->groups = rtci_model_group_count(m->model);
		m->pc = m->geo->stem_out;
		rtci_geometry_partition_size(m->geo, &m->ph, &m->pw);
		m->floats = (uint32_t)(m->pc * m->ph * m->pw);
		m->queue_base = (int)queues;
		rtci_cost_init(&m->cost, cfg->batching.max_batch);
		queues += (uint32_t)m->groups + 1;
		/* measured figures from the file; a synthesized model runs on estimates */
		rc = rtci_ctl_table_from_model(m->model, true, &m->table, merr, sizeof(merr));
		if (rc < 0) {
			rtci_config_model_error(cfg, k, merr, err, errlen);
			return rc == -RTCI_ERR_CTL_TABLE ? -RTCI_ERR_GATEWAY_MODEL : rc;
		}
		for (int s = 0; s < m->setups; s++) {
			const struct rtci_setup *st = rtci_model_setup(m->model, s);
			ssize_t n = rtci_codec_max_encoded_size((uint32_t)st->c, (uint32_t)st->L,
								(uint32_t)m->ph, (uint32_t)m->pw);
			if (n > 0 && (uint64_t)n > m->max_frame)
				m->max_frame = (uint32_t)n;
		}
		if (m->max_frame > gw->max_frame)
			gw->max_frame = m->max_frame;
	}
	gw->nqueues = queues;
	gw->queue_model = calloc(queues, sizeof(*gw->queue_model));
	gw->s_batch = calloc(queues, sizeof(int));
	gw->s_qtime = calloc(queues, sizeof(int));
	gw->s_qdepth = calloc(queues, sizeof(int));
	if (!gw->queue_model || !gw->s_batch || !gw->s_qtime || !gw->s_qdepth)
		return -ENOMEM;
	for (uint32_t k = 0; k < gw->nmodels; k++)
		for (int g = 0; g <= gw->models[k].groups; g++)
			gw->queue_model[gw->models[k].queue_base + g] = (uint16_t)k;
	return 0;
}

void gw_models_free(struct gw *gw)
{
	for (uint32_t k = 0; k < gw->nmodels && gw->models; k++)
		rtci_model_destroy(gw->models[k].model);
	free(gw->models);
	free(gw->queue_model);
	free(gw->s_batch);
	free(gw->s_qtime);
	free(gw->s_qdepth);
	gw->models = NULL;
}
