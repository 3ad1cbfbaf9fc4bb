/* rtci-model: inspect, synthesize and run SW-CNN model files.
 *
 *   rtci-model info FILE
 *   rtci-model synth --geometry mnv2-224|fmnist --seed N -o FILE
 *   rtci-model run FILE --setup C,L [--images IDX[.gz] --labels IDX[.gz]] [--batch B] [--limit N]
 *                  [--threads T] [--mode folded|mixed]
 *
 * `run` feeds real images through head -> codec (encode + decode) -> tail and prints top-1
 * accuracy and the codec's mean bytes per frame. Images are 8-bit gray IDX files (Fashion-MNIST);
 * for a geometry with a larger or 3-channel input each image is upscaled (nearest neighbour) and
 * copied to every channel. */
#include "inference/engine.h"
#include "inference/model.h"
#include "common/rtci_error.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

static int usage(void)
{
	fprintf(stderr,
		"usage: rtci-model info FILE\n"
		"       rtci-model synth --geometry mnv2-224|fmnist --seed N -o FILE\n"
		"       rtci-model run FILE --setup C,L [--images IDX --labels IDX] [--batch B] [--limit N]\n"
		"                      [--threads T] [--mode folded|mixed]\n");
	return 2;
}

static int cmd_info(int argc, char **argv)
{
	if (argc != 1)
		return usage();
	char err[512];
	struct rtci_model *m;
	int rc = rtci_model_load(argv[0], &m, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "rtci-model: %s\n", err);
		return 1;
	}
	const struct rtci_geometry *g = rtci_model_geometry(m);
	int ph, pw;
	rtci_geometry_partition_size(g, &ph, &pw);
	printf("file: %s (%zu bytes)\n", argv[0], rtci_model_file_size(m));
	printf("geometry: %s, input %dx%dx%d, classes %d\n", g->name, g->in_c, g->in_h, g->in_w, g->classes);
	printf("  stem: conv %dx%d stride %d pad %d -> %d channels; partition %dx%dx%d\n", g->stem_kernel,
	       g->stem_kernel, g->stem_stride, g->stem_pad, g->stem_out, g->stem_out, ph, pw);
	printf("  block1 -> %d; blocks (t,c,n,s):", g->block1_out);
	for (int r = 0; r < g->n_rows; r++)
		printf(" (%d,%d,%d,%d)", g->rows[r].t, g->rows[r].c, g->rows[r].n, g->rows[r].s);
	printf("; last %d; bn_eps %g\n", g->last_channels, (double)g->bn_eps);
	printf("  MACs per image: head %.3f M, tail %.3f M\n", rtci_geometry_head_macs(g) / 1e6,
	       rtci_geometry_tail_macs(g) / 1e6);
	printf("bn_slots: %d\nprovenance: %s\n", rtci_model_bn_slots(m), rtci_model_provenance(m));
	int ng = rtci_model_group_count(m);
	printf("groups: %d\n", ng);
	for (int i = 0; i < ng; i++) {
		const int *ids;
		int k = rtci_model_group(m, i, &ids);
		printf("  group %d:", i);
		for (int j = 0; j < k; j++)
			printf(" %d", ids[j]);
		printf("\n");
	}
	printf("setups: %d\n  %4s %4s %6s %5s %5s %9s %12s %12s\n", rtci_model_setup_count(m), "id", "c",
	       "L", "slot", "group", "accuracy", "payload_B", "raw_B");
	for (int i = 0; i < rtci_model_setup_count(m); i++) {
		const struct rtci_setup *s = rtci_model_setup(m, i);
		char acc[16] = "-", pay[24] = "-", raw[24] = "-";
		if (!isnan(s->accuracy))
			snprintf(acc, sizeof(acc), "%.4f", s->accuracy);
		if (!isnan(s->payload_bytes))
			snprintf(pay, sizeof(pay), "%.1f", s->payload_bytes);
		if (!isnan(s->raw_bytes))
			snprintf(raw, sizeof(raw), "%.0f", s->raw_bytes);
		printf("  %4d %4d %6d %5d %5d %9s %12s %12s\n", s->id, s->c, s->L, s->bn_slot, s->group, acc,
		       pay, raw);
	}
	rtci_model_destroy(m);
	return 0;
}

static int cmd_synth(int argc, char **argv)
{
	const char *geo = NULL, *out = NULL;
	unsigned long long seed = 1;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--geometry") == 0 && i + 1 < argc)
			geo = argv[++i];
		else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 0);
		else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
			out = argv[++i];
		else
			return usage();
	}
	struct rtci_geometry g;
	if (!geo || !out || rtci_geometry_preset(geo, &g) != 0)
		return usage();
	char err[512];
	int rc = rtci_model_synth(&g, seed, out, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "rtci-model: synth: %s (%s)\n", err, rtci_strerror(rc));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (strcmp(argv[1], "info") == 0)
		return cmd_info(argc - 2, argv + 2);
	if (strcmp(argv[1], "synth") == 0)
		return cmd_synth(argc - 2, argv + 2);
	return usage();
}
