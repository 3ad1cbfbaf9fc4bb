/* Edge head throughput: frames/s of images -> partition tensor (stem conv + BN + ReLU6, first c
 * channels) at the model's input size, one frame per call, on a given number of threads.
 *   rtci-bench-head --model FILE [--channels 32,1] [--threads 1] [--runs 7] [--csv FILE]
 * CSV rows: c,threads,median_frames_s */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "inference/engine.h"
#include "inference/model.h"
#include "bench_util.h"

int main(int argc, char **argv)
{
	const char *model = NULL, *csv = NULL;
	int chans[8] = { 32, 1 }, nc = 2, threads = 1, runs = 7;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
		else if (!strcmp(argv[i], "--csv") && i + 1 < argc) csv = argv[++i];
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--channels") && i + 1 < argc) {
			nc = 0;
			for (char *s = argv[++i]; s && *s && nc < 8; s = strchr(s, ',') ? strchr(s, ',') + 1 : NULL)
				chans[nc++] = atoi(s);
		} else {
			fprintf(stderr, "usage: rtci-bench-head --model FILE [--channels 32,1] [--threads 1] [--runs 7] [--csv FILE]\n");
			return 2;
		}
	}
	if (!model || runs < 1 || runs > 64)
		return 2;
	char err[512];
	struct rtci_model *m;
	if (rtci_model_load(model, &m, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	const struct rtci_geometry *g = rtci_model_geometry(m);
	int ph, pw;
	rtci_geometry_partition_size(g, &ph, &pw);
	size_t isz = (size_t)g->in_c * g->in_h * g->in_w;
	float *img = malloc(isz * sizeof(float)), *out = malloc((size_t)g->stem_out * ph * pw * sizeof(float));
	for (size_t i = 0; i < isz; i++)
		img[i] = (float)(i * 7919 % 256) / 255.0f;
	struct rtci_head *h;
	struct rtci_engine_config cfg = { .threads = threads, .max_batch = 1 };
	if (rtci_head_create(m, &cfg, &h)) {
		fprintf(stderr, "head create failed\n");
		return 1;
	}
	FILE *f = csv ? fopen(csv, "w") : NULL;
	if (f)
		fprintf(f, "c,threads,median_frames_s\n");
	printf("model %s (%s), input %dx%dx%d, %d thread%s, %d runs (medians)\n", model, g->name, g->in_c, g->in_h,
	       g->in_w, threads, threads == 1 ? "" : "s", runs);
	for (int k = 0; k < nc; k++) {
		int id = rtci_model_find_setup(m, chans[k], 255);
		if (id < 0) {
			fprintf(stderr, "no setup with c=%d\n", chans[k]);
			return 1;
		}
		double v[64];
		for (int w = 0; w < 3; w++)
			rtci_head_run(h, id, 1, img, out);
		for (int r = 0; r < runs; r++) {
			int it = 0;
			double t0 = rtci_mono_s();
			do {
				if (rtci_head_run(h, id, 1, img, out))
					return 1;
				it++;
			} while (rtci_mono_s() - t0 < 0.2);
			v[r] = it / (rtci_mono_s() - t0);
		}
		qsort(v, (size_t)runs, sizeof(double), bench_cmp_double);
		double med = v[runs / 2];
		printf("  c = %2d: %8.1f frames/s (%.3f ms per frame)\n", chans[k], med, 1e3 / med);
		if (f)
			fprintf(f, "%d,%d,%.2f\n", chans[k], threads, med);
	}
	if (f)
		fclose(f);
	rtci_head_destroy(h);
	rtci_model_destroy(m);
	free(img);
	free(out);
	return 0;
}
