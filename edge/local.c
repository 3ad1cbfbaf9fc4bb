/* The device's local exit: see local.h. */
#include "edge/local.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "inference/engine.h"
#include "inference/exit.h"

struct rtci_local {
	const struct rtci_local_exit *x;
	struct rtci_head *head;
	struct rtci_exit *exit;
	int classes;
	float *part, *logits;
};

int rtci_local_create(const struct rtci_model *m, struct rtci_local **out)
{
	*out = NULL;
	const struct rtci_local_exit *x = rtci_model_local_exit(m);
	if (!x)
		return -ENOENT;
	struct rtci_local *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	const struct rtci_geometry *g = rtci_model_geometry(m);
	int ph, pw;
	rtci_geometry_partition_size(g, &ph, &pw);
	l->x = x;
	l->classes = g->classes;
	l->part = malloc((size_t)g->stem_out * ph * pw * sizeof(float));
	l->logits = malloc((size_t)g->classes * sizeof(float));
	struct rtci_engine_config cfg = { .threads = 1, .max_batch = 1 };
	int rc = !l->part || !l->logits ? -ENOMEM : rtci_head_create(m, &cfg, &l->head);
	if (!rc)
		rc = rtci_exit_create(m, 1, &l->exit);
	if (!rc) { /* builds the head's plan now, not on the first frame (≈ 60 ms) */
		size_t n = (size_t)g->in_c * g->in_h * g->in_w;
		float *zero = calloc(n, sizeof(float)), score;
		uint16_t cls;
		rc = zero ? rtci_local_run(l, zero, &cls, &score) : -ENOMEM;
		free(zero);
	}
	if (rc) {
		rtci_local_destroy(l);
		return rc;
	}
	*out = l;
	return 0;
}

void rtci_local_destroy(struct rtci_local *l)
{
	if (!l)
		return;
	rtci_exit_destroy(l->exit);
	rtci_head_destroy(l->head);
	free(l->part);
	free(l->logits);
	free(l);
}

int rtci_local_run(struct rtci_local *l, const float *input, uint16_t *class_id, float *score)
{
	int rc = rtci_head_run(l->head, l->x->input_setup, 1, input, l->part);
	if (!rc)
		rc = rtci_exit_run(l->exit, l->part, l->logits);
	if (rc)
		return rc;
	int top;
	float v;
	rtci_topk(l->logits, l->classes, 1, &top, &v);
	double sum = 0; /* softmax probability of the top class */
	for (int i = 0; i < l->classes; i++)
		sum += exp((double)l->logits[i] - (double)v);
	*class_id = (uint16_t)top;
	*score = (float)(1.0 / sum);
	return 0;
}

int rtci_local_probe_setup(const struct rtci_model *m)
{
	int best = 0;
	double best_bytes = INFINITY;
	for (int i = 0; i < rtci_model_setup_count(m); i++) {
		const struct rtci_setup *s = rtci_model_setup(m, i);
		double b = isnan(s->payload_bytes) ? s->raw_bytes : s->payload_bytes;
		if (b < best_bytes) {
			best_bytes = b;
			best = i;
		}
	}
	return best;
}

bool rtci_local_probe_keeps_local(const struct rtci_model *m)
{
	const struct rtci_local_exit *x = rtci_model_local_exit(m);
	if (!x)
		return false;
	double acc = rtci_model_setup(m, rtci_local_probe_setup(m))->accuracy;
	return !(acc > x->accuracy);
}
