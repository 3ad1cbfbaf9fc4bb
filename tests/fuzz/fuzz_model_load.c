/* libFuzzer target: model file loading (header length, JSON header, rtci metadata, tensor table,
 * validation against the geometry). Any input must give a model or an error, never a crash. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "inference/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rtci_model *m = NULL;
	char err[256];
	if (rtci_model_load_buffer(data, size, "fuzz", &m, err, sizeof(err)) != 0) {
		if (m || !memchr(err, 0, sizeof(err)))
			__builtin_trap();
		return 0;
	}
	/* A model that loads must be fully usable: touch everything a consumer reads. */
	const struct rtci_geometry *g = rtci_model_geometry(m);
	int ns = rtci_geometry_tensors(g, rtci_model_bn_slots(m), NULL, 0);
	struct rtci_tensor_spec spec[64];
	int k = rtci_geometry_tensors(g, rtci_model_bn_slots(m), spec, 64);
	volatile float sink = 0;
	for (int i = 0; i < k && i < ns && i < 64; i++) {
		int nd;
		int64_t shape[4];
		const float *p = rtci_model_tensor(m, spec[i].name, &nd, shape);
		if (!p)
			__builtin_trap();
		int64_t n = 1;
		for (int d = 0; d < nd; d++)
			n *= shape[d];
		if (n > 0)
			sink += p[0] + p[n - 1];
	}
	for (int i = 0; i < rtci_model_setup_count(m); i++) {
		const struct rtci_setup *s = rtci_model_setup(m, i);
		if (!s || s->bn_slot >= rtci_model_bn_slots(m) || s->c > g->stem_out)
			__builtin_trap();
	}
	for (int i = 0; i < rtci_model_group_count(m); i++) {
		const int *ids;
		int n = rtci_model_group(m, i, &ids);
		for (int j = 0; j < n; j++)
			if (!rtci_model_setup(m, ids[j]))
				__builtin_trap();
	}
	(void)sink;
	rtci_model_destroy(m);
	return 0;
}
