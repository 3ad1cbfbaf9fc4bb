/* rtci-model: inspect, synthesize and run SW-CNN model files.
 *
 *   rtci-model info FILE
 *   rtci-model synth --geometry mnv2-224|fmnist --seed N -o FILE
 *   rtci-model run FILE --setup C,L [--images IDX[.gz] --labels IDX[.gz]] [--batch B] [--limit N]
 *                  [--threads T] [--mode affine|folded]
 *   rtci-model exit FILE [--images IDX --labels IDX] [--limit N] [--runs N]
 *
 * `run` feeds real images through head -> codec (encode + decode) -> tail and prints top-1
 * accuracy and the codec's mean bytes per frame. Images are 8-bit gray IDX files (Fashion-MNIST);
 * for a geometry with a larger or 3-channel input each image is upscaled (nearest neighbour) and
 * copied to every channel.
 *
 * `exit` runs the local exit (head with the exit's input setup, then the exit head, one frame at a
 * time as the device does) over the images and prints one JSON line: its top-1 accuracy and the
 * median / 90th percentile time per frame of `--runs` timed frames. */
#include "common/clock.h"
#include "common/idx.h"
#include "common/rtci_error.h"
#include "inference/codec.h"
#include "inference/engine.h"
#include "inference/exit.h"
#include "inference/model.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int usage(void)
{
	fprintf(stderr,
		"usage: rtci-model info FILE\n"
		"       rtci-model synth --geometry mnv2-224|fmnist --seed N -o FILE\n"
		"       rtci-model run FILE --setup C,L [--images IDX --labels IDX] [--batch B] [--limit N]\n"
		"                      [--threads T] [--mode affine|folded] [--precision fp32|int8|auto]\n"
		"       rtci-model exit FILE [--images IDX --labels IDX] [--limit N] [--runs N]\n");
	return 2;
}

/* The optional metadata blocks a file carries (docs/model-format.md), for scripts to test. */
static void print_blocks(const struct rtci_model *m)
{
	static const char *const names[] = { "spinn", "clio", "local_exit", "int8" };
	json_t *doc = json_loads(rtci_model_metadata(m), 0, NULL);
	printf("optional blocks:");
	int n = 0;
	for (size_t i = 0; doc && i < sizeof(names) / sizeof(names[0]); i++)
		if (json_object_get(doc, names[i])) {
			printf(" %s", names[i]);
			n++;
		}
	printf("%s\n", n ? "" : " none");
	json_decref(doc);
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
	print_blocks(m);
	const struct rtci_local_exit *x = rtci_model_local_exit(m);
	if (x)
		printf("local exit: width %d, input setup %d, accuracy %.4f, %.3f ms\n", x->width,
		       x->input_setup, x->accuracy, x->ms);
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

#define DEFAULT_IMAGES "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
#define DEFAULT_LABELS "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"

/* Gray 8-bit image -> the geometry's input (pixel/255), nearest-neighbour resize, copied to
 * every channel. */
static void to_input(const struct rtci_geometry *g, const uint8_t *px, int rows, int cols, float *out)
{
	for (int y = 0; y < g->in_h; y++)
		for (int x = 0; x < g->in_w; x++) {
			int sy = (int)((long)y * rows / g->in_h), sx = (int)((long)x * cols / g->in_w);
			float v = px[(size_t)sy * cols + sx] / 255.0f;
			for (int c = 0; c < g->in_c; c++)
				out[((size_t)c * g->in_h + y) * g->in_w + x] = v;
		}
}

static int cmd_run(int argc, char **argv)
{
	if (argc < 1)
		return usage();
	const char *file = argv[0], *images = DEFAULT_IMAGES, *labels = DEFAULT_LABELS, *setup = NULL;
	int batch = 32, limit = 0, threads = 1;
	enum rtci_tail_mode mode = RTCI_TAIL_AUTO;
	enum rtci_tail_precision prec = RTCI_PRECISION_AUTO;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--setup") == 0 && i + 1 < argc)
			setup = argv[++i];
		else if (strcmp(argv[i], "--images") == 0 && i + 1 < argc)
			images = argv[++i];
		else if (strcmp(argv[i], "--labels") == 0 && i + 1 < argc)
			labels = argv[++i];
		else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
			batch = atoi(argv[++i]);
		else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc)
			limit = atoi(argv[++i]);
		else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			threads = atoi(argv[++i]);
		else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) {
			i++;
			mode = strcmp(argv[i], "affine") == 0 ? RTCI_TAIL_AFFINE
				: strcmp(argv[i], "folded") == 0 ? RTCI_TAIL_FOLDED : (enum rtci_tail_mode)-1;
			if ((int)mode < 0)
				return usage();
		} else if (strcmp(argv[i], "--precision") == 0 && i + 1 < argc) {
			if (rtci_precision_parse(argv[++i], &prec))
				return usage();
		} else
			return usage();
	}
	int sc, sl;
	if (!setup || sscanf(setup, "%d,%d", &sc, &sl) != 2 || batch < 1 || batch > 256 || limit < 0 ||
	    threads < 0)
		return usage();
	char err[512];
	struct rtci_model *m = NULL;
	struct rtci_idx img = { 0 }, lab = { 0 };
	struct rtci_head *head = NULL;
	struct rtci_tail *tail = NULL;
	struct rtci_codec *codec = NULL;
	float *in = NULL, *part = NULL, *wide = NULL, *logits = NULL;
	uint8_t *frame = NULL;
	int *ids = NULL, status = 1, rc;
	if ((rc = rtci_model_load(file, &m, err, sizeof(err)))) {
		fprintf(stderr, "rtci-model: %s\n", err);
		goto out;
	}
	int id = rtci_model_find_setup(m, sc, sl);
	if (id < 0) {
		fprintf(stderr, "rtci-model: %s: no setup (c=%d, L=%d)\n", file, sc, sl);
		goto out;
	}
	if ((rc = rtci_idx_load(images, (uint32_t)limit, &img, err, sizeof(err))) ||
	    (rc = rtci_idx_load(labels, (uint32_t)limit, &lab, err, sizeof(err)))) {
		fprintf(stderr, "rtci-model: %s\n", err);
		goto out;
	}
	if (img.count != lab.count || lab.rows != 1 || lab.cols != 1) {
		fprintf(stderr, "rtci-model: %s and %s do not pair up as images and labels\n", images, labels);
		goto out;
	}
	const struct rtci_geometry *g = rtci_model_geometry(m);
	int ph, pw, P = g->stem_out;
	rtci_geometry_partition_size(g, &ph, &pw);
	struct rtci_engine_config cfg = { .threads = threads, .max_batch = batch, .mode = mode,
					  .precision = prec };
	struct rtci_codec_config ccfg = { .max_elements = (uint32_t)(P * ph * pw) };
	struct rtci_codec_desc d = { (uint32_t)sc, (uint32_t)sl, (uint32_t)P, (uint32_t)ph, (uint32_t)pw };
	if ((rc = rtci_head_create(m, &cfg, &head)) || (rc = rtci_tail_create(m, &cfg, &tail)) ||
	    (rc = rtci_codec_create(&ccfg, &codec))) {
		fprintf(stderr, "rtci-model: %s\n", rtci_strerror(rc));
		goto out;
	}
	size_t isz = (size_t)g->in_c * g->in_h * g->in_w, psz = (size_t)P * ph * pw;
	ssize_t fcap = rtci_codec_max_encoded_size(d.c, d.levels, d.height, d.width);
	in = malloc((size_t)batch * isz * sizeof(float));
	part = malloc((size_t)batch * psz * sizeof(float));
	wide = malloc((size_t)batch * psz * sizeof(float));
	logits = malloc((size_t)batch * g->classes * sizeof(float));
	ids = malloc((size_t)batch * sizeof(int));
	frame = fcap > 0 ? malloc((size_t)fcap) : NULL;
	if (!in || !part || !wide || !logits || !ids || !frame) {
		fprintf(stderr, "rtci-model: out of memory\n");
		goto out;
	}
	for (int i = 0; i < batch; i++)
		ids[i] = id;
	long correct = 0, frames = 0;
	double bytes = 0, t_head = 0, t_codec = 0, t_tail = 0;
	for (uint32_t b0 = 0; b0 < img.count; b0 += (uint32_t)batch) {
		int nb = (int)(img.count - b0 < (uint32_t)batch ? img.count - b0 : (uint32_t)batch);
		for (int i = 0; i < nb; i++)
			to_input(g, rtci_idx_item(&img, b0 + (uint32_t)i), (int)img.rows, (int)img.cols,
				 in + (size_t)i * isz);
		double t0 = rtci_mono_s();
		if ((rc = rtci_head_run(head, id, nb, in, part)))
			break;
		double t1 = rtci_mono_s();
		for (int i = 0; i < nb && !rc; i++) {
			ssize_t len = rtci_codec_encode(codec, &d, part + (size_t)i * sc * ph * pw, frame, (size_t)fcap);
			if (len < 0) {
				rc = (int)len;
				break;
			}
			bytes += (double)len;
			rc = rtci_codec_decode(codec, frame, (size_t)len, wide + (size_t)i * psz, psz, (uint32_t)P, NULL);
		}
		if (rc)
			break;
		double t2 = rtci_mono_s();
		if ((rc = rtci_tail_run(tail, nb, wide, ids, logits)))
			break;
		double t3 = rtci_mono_s();
		t_head += t1 - t0;
		t_codec += t2 - t1;
		t_tail += t3 - t2;
		for (int i = 0; i < nb; i++) {
			int top;
			float v;
			rtci_topk(logits + (size_t)i * g->classes, g->classes, 1, &top, &v);
			correct += top == lab.data[b0 + (uint32_t)i];
		}
		frames += nb;
	}
	if (rc) {
		fprintf(stderr, "rtci-model: run: %s\n", rtci_strerror(rc));
		goto out;
	}
	if (frames == 0) {
		fprintf(stderr, "rtci-model: no images\n");
		goto out;
	}
	printf("model %s, setup %d (c=%d, L=%d), %ld images from %s%s\n", file, id, sc, sl, frames, images,
	       (g->in_h != (int)img.rows || g->in_w != (int)img.cols || g->in_c != 1)
		       ? " (upscaled nearest-neighbour, gray copied to every channel)" : "");
	printf("top-1 accuracy %.4f (%ld/%ld)\n", (double)correct / frames, correct, frames);
	printf("codec mean bytes per frame %.1f (raw %zd)\n", bytes / frames,
	       rtci_codec_raw_size(d.c, d.levels, d.height, d.width));
	struct rtci_tail_stats st;
	rtci_tail_stats(tail, &st);
	printf("time per frame: head %.3f ms, codec %.3f ms, tail %.3f ms (batch %d, %d thread%s, tail mode %s, "
	       "precision %s: %d of %d convolutions int8%s)\n",
	       1e3 * t_head / frames, 1e3 * t_codec / frames, 1e3 * t_tail / frames, batch, threads,
	       threads == 1 ? "" : "s", rtci_tail_mode(tail) == RTCI_TAIL_AFFINE ? "affine" : "folded",
	       rtci_precision_name(st.precision), st.int8_layers, st.layers,
	       rtci_int8_exact() ? "" : "; this CPU has no VNNI");
	status = 0;
out:
	free(in);
	free(part);
	free(wide);
	free(logits);
	free(ids);
	free(frame);
	rtci_codec_destroy(codec);
	rtci_tail_destroy(tail);
	rtci_head_destroy(head);
	rtci_idx_free(&img);
	rtci_idx_free(&lab);
	rtci_model_destroy(m);
	return status;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* One frame through head (exit input setup) + exit; adds 1 to *correct when right. */
static int exit_frame(struct rtci_head *head, struct rtci_exit *ex, int setup, const float *in,
		      float *part, float *logits, int classes, int label, long *correct)
{
	int rc = rtci_head_run(head, setup, 1, in, part);
	if (!rc)
		rc = rtci_exit_run(ex, part, logits);
	int top;
	float v;
	if (!rc && rtci_topk(logits, classes, 1, &top, &v) == 1 && top == label)
		(*correct)++;
	return rc;
}

static int cmd_exit(int argc, char **argv)
{
	if (argc < 1)
		return usage();
	const char *file = argv[0], *images = DEFAULT_IMAGES, *labels = DEFAULT_LABELS;
	int limit = 0, runs = 1000;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--images") == 0 && i + 1 < argc)
			images = argv[++i];
		else if (strcmp(argv[i], "--labels") == 0 && i + 1 < argc)
			labels = argv[++i];
		else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc)
			limit = atoi(argv[++i]);
		else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			runs = atoi(argv[++i]);
		else
			return usage();
	}
	if (limit < 0 || runs < 1 || runs > 1000000)
		return usage();
	char err[512];
	struct rtci_model *m = NULL;
	struct rtci_idx img = { 0 }, lab = { 0 };
	struct rtci_head *head = NULL;
	struct rtci_exit *ex = NULL;
	float *in = NULL, *part = NULL, *logits = NULL;
	double *t = NULL;
	int status = 1, rc;
	if ((rc = rtci_model_load(file, &m, err, sizeof(err)))) {
		fprintf(stderr, "rtci-model: %s\n", err);
		goto out;
	}
	const struct rtci_local_exit *x = rtci_model_local_exit(m);
	if (!x) {
		fprintf(stderr, "rtci-model: %s: no local_exit block\n", file);
		goto out;
	}
	if ((rc = rtci_idx_load(images, (uint32_t)limit, &img, err, sizeof(err))) ||
	    (rc = rtci_idx_load(labels, (uint32_t)limit, &lab, err, sizeof(err)))) {
		fprintf(stderr, "rtci-model: %s\n", err);
		goto out;
	}
	if (img.count != lab.count || img.count == 0 || lab.rows != 1 || lab.cols != 1) {
		fprintf(stderr, "rtci-model: %s and %s do not pair up as images and labels\n", images, labels);
		goto out;
	}
	const struct rtci_geometry *g = rtci_model_geometry(m);
	int ph, pw;
	rtci_geometry_partition_size(g, &ph, &pw);
	struct rtci_engine_config cfg = { .threads = 1, .max_batch = 1 };
	if ((rc = rtci_head_create(m, &cfg, &head)) || (rc = rtci_exit_create(m, 1, &ex))) {
		fprintf(stderr, "rtci-model: %s\n", rtci_strerror(rc));
		goto out;
	}
	size_t isz = (size_t)g->in_c * g->in_h * g->in_w;
	in = malloc(isz * sizeof(float));
	part = malloc((size_t)g->stem_out * ph * pw * sizeof(float));
	logits = malloc((size_t)g->classes * sizeof(float));
	t = malloc((size_t)runs * sizeof(double));
	if (!in || !part || !logits || !t) {
		fprintf(stderr, "rtci-model: out of memory\n");
		goto out;
	}
	long correct = 0, timed_correct = 0;
	for (uint32_t i = 0; i < img.count && !rc; i++) {
		to_input(g, rtci_idx_item(&img, i), (int)img.rows, (int)img.cols, in);
		rc = exit_frame(head, ex, x->input_setup, in, part, logits, g->classes, lab.data[i], &correct);
	}
	for (int r = 0; r < runs && !rc; r++) {
		uint32_t i = (uint32_t)r % img.count;
		to_input(g, rtci_idx_item(&img, i), (int)img.rows, (int)img.cols, in);
		double t0 = rtci_mono_s();
		rc = exit_frame(head, ex, x->input_setup, in, part, logits, g->classes, lab.data[i],
				&timed_correct);
		t[r] = rtci_mono_s() - t0;
	}
	if (rc) {
		fprintf(stderr, "rtci-model: exit: %s\n", rtci_strerror(rc));
		goto out;
	}
	qsort(t, (size_t)runs, sizeof(double), cmp_double);
	printf("{\"model\": \"%s\", \"images\": %u, \"accuracy\": %.4f, \"runs\": %d, "
	       "\"median_ms\": %.4f, \"p90_ms\": %.4f, \"input_setup\": %d, \"width\": %d}\n",
	       file, img.count, (double)correct / img.count, runs, 1e3 * t[runs / 2],
	       1e3 * t[(int)(runs * 0.9)], x->input_setup, x->width);
	status = 0;
out:
	free(in);
	free(part);
	free(logits);
	free(t);
	rtci_exit_destroy(ex);
	rtci_head_destroy(head);
	rtci_idx_free(&img);
	rtci_idx_free(&lab);
	rtci_model_destroy(m);
	return status;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (strcmp(argv[1], "info") == 0)
		return cmd_info(argc - 2, argv + 2);
	if (strcmp(argv[1], "synth") == 0)
		return cmd_synth(argc - 2, argv + 2);
	if (strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 2, argv + 2);
	if (strcmp(argv[1], "exit") == 0)
		return cmd_exit(argc - 2, argv + 2);
	return usage();
}
