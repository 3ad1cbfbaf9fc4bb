/* Writes valid model files for fuzz_model_load into <dir>/fuzz_model_load/: small synthesized
 * networks (under the fuzzer's 64 KiB input limit) of several shapes.
 *   seed_model DIR */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "inference/model.h"

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: seed_model DIR\n");
		return 2;
	}
	char dir[4096], path[4200], err[256];
	snprintf(dir, sizeof(dir), "%s/fuzz_model_load", argv[1]);
	mkdir(argv[1], 0755);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		perror(dir);
		return 1;
	}
	struct rtci_geometry g;
	rtci_geometry_preset("fmnist", &g);
	/* tiny nets: 4 partition channels, 0-2 block rows, few classes */
	snprintf(g.name, sizeof(g.name), "tiny");
	g.in_h = g.in_w = 6;
	g.stem_out = 4;
	g.block1_out = 3;
	g.n_rows = 1;
	g.rows[0].t = 2; g.rows[0].c = 3; g.rows[0].n = 2; g.rows[0].s = 1;
	g.last_channels = 8;
	g.classes = 3;
	static const int ch[] = { 1, 2, 4 }, lv[] = { 255, 1 }, lv1[] = { 3 };
	struct { struct rtci_geometry g; const int *lv; int nl; } v[3];
	v[0].g = g; v[0].lv = lv; v[0].nl = 2;
	g.in_c = 3;
	g.input_mean[1] = g.input_mean[2] = 0.5f;
	g.input_std[1] = g.input_std[2] = 0.25f;
	g.rows[0].t = 1;   /* no expand */
	g.n_rows = 2;
	g.rows[1].t = 3; g.rows[1].c = 5; g.rows[1].n = 1; g.rows[1].s = 2;
	v[1].g = g; v[1].lv = lv1; v[1].nl = 1;
	g.in_c = 1;
	g.stem_kernel = 5; g.stem_pad = 2; g.stem_stride = 1;
	g.n_rows = 0;
	v[2].g = g; v[2].lv = lv; v[2].nl = 2;
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/tiny%d.rtcm", dir, i);
		if (rtci_model_synth_space(&v[i].g, (uint64_t)i + 1, ch, 3, v[i].lv, v[i].nl, path, err,
					   sizeof(err)) != 0) {
			fprintf(stderr, "seed_model: %s\n", err);
			return 1;
		}
	}
	return 0;
}
