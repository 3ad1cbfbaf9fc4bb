/* The int8 tail (inference/engine_int8.c): refused without a calibration or with a bad one, close
 * to fp32 on a model calibrated by training/ (python3 -m training calibrate --data synthetic),
 * batches mixing setups, plans mixing f32 and int8 layers, the f32 BN table held only where f32
 * layers run (on the shipped model). Tests that need the calibrated file skip when PyTorch is
 * missing. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/rtci_error.h"
#include "inference/engine.h"
#include "inference/engine_priv.h"
#include "inference/model.h"
#include "tests/golden_util.h"

static char tmpdir[64], path[128], cpath[128];
static struct rtci_model *plain, *cal;   /* cal: NULL when the calibration could not run */
static int P, PH, PW, CL;
static size_t FRAME;

static void copy_file(const char *from, const char *to)
{
	size_t n;
	float *b = read_f32("", from, &n);   /* reads any file whole */
	cr_assert_not_null(b);
	FILE *f = fopen(to, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(b, 4, n, f), n);
	fclose(f);
	free(b);
}

static void setup_models(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/rtci-int8-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	snprintf(path, sizeof(path), "%s/fm.rtcm", tmpdir);
	snprintf(cpath, sizeof(cpath), "%s/fm-int8.rtcm", tmpdir);
	struct rtci_geometry g;
	char err[256];
	rtci_geometry_preset("fmnist", &g);
	cr_assert_eq(rtci_model_synth(&g, 11, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(rtci_model_load(path, &plain, err, sizeof(err)), 0, "%s", err);
	copy_file(path, cpath);
	int st = run_calibrate(cpath);
	if (st == 0)
		cr_assert_eq(rtci_model_load(cpath, &cal, err, sizeof(err)), 0, "%s", err);
	else
		cr_assert_eq(st, 77, "training calibrate failed (status %d)", st);
	const struct rtci_geometry *geo = rtci_model_geometry(plain);
	P = geo->stem_out;
	rtci_geometry_partition_size(geo, &PH, &PW);
	CL = geo->classes;
	FRAME = (size_t)P * PH * PW;
}

static void teardown_models(void)
{
	rtci_model_destroy(plain);
	rtci_model_destroy(cal);
	unlink(path);
	unlink(cpath);
	rmdir(tmpdir);
}

TestSuite(int8, .init = setup_models, .fini = teardown_models, .timeout = 300);

static void need_calibration(void)
{
	if (!cal)
		cr_skip_test("no PyTorch: no calibrated model");
}

/* Partition tensors as model m's head makes them from random images: what the calibration saw. */
static float *head_frames_of(const struct rtci_model *m, int n, const int *setups)
{
	const struct rtci_geometry *g = rtci_model_geometry(m);
	size_t isz = (size_t)g->in_c * g->in_h * g->in_w;
	float *img = malloc(isz * sizeof(float)), *x = calloc((size_t)n * FRAME, sizeof(float));
	struct rtci_head *h;
	struct rtci_engine_config cfg = { .threads = 1, .max_batch = 1 };
	cr_assert_eq(rtci_head_create(m, &cfg, &h), 0);
	srand(5);
	for (int i = 0; i < n; i++) {
		for (size_t k = 0; k < isz; k++)
			img[k] = (float)(rand() % 256) / 255.0f;
		cr_assert_eq(rtci_head_run(h, setups[i], 1, img, x + (size_t)i * FRAME), 0);
	}
	rtci_head_destroy(h);
	free(img);
	return x;
}

static float *head_frames(int n, const int *setups)
{
	return head_frames_of(cal, n, setups);
}

static int argmax(const float *v, int n)
{
	int best = 0;
	for (int i = 1; i < n; i++)
		if (v[i] > v[best])
			best = i;
	return best;
}

Test(int8, uncalibrated_model_refuses_int8_and_auto_runs_fp32)
{
	struct rtci_tail *t;
	struct rtci_engine_config cfg = { .threads = 1, .max_batch = 4, .precision = RTCI_PRECISION_INT8 };
	cr_expect_eq(rtci_tail_create(plain, &cfg, &t), -RTCI_ERR_ENGINE_UNCALIBRATED);
	cr_expect_not_null(strstr(rtci_strerror(-RTCI_ERR_ENGINE_UNCALIBRATED), "training calibrate"));
	cfg.precision = RTCI_PRECISION_AUTO;
	cr_assert_eq(rtci_tail_create(plain, &cfg, &t), 0);
	struct rtci_tail_stats st;
	rtci_tail_stats(t, &st);
	cr_expect_eq(st.precision, RTCI_PRECISION_FP32);
	cr_expect_eq(st.int8_layers, 0);
	cr_expect_eq(st.int8_bytes, 0);
	int ids[1] = { 3 };
	float *x = calloc(FRAME, sizeof(float)), lg[64];
	cr_expect_eq(rtci_tail_run_precision(t, RTCI_PRECISION_INT8, 1, x, ids, lg), -RTCI_ERR_ENGINE_UNCALIBRATED);
	cr_expect_eq(rtci_tail_run_precision(t, RTCI_PRECISION_AUTO, 1, x, ids, lg), 0);
	cr_expect_eq(rtci_tail_int8_layer(t, RTCI_PRECISION_AUTO, 0), 0);
	rtci_tail_destroy(t);
	free(x);
}

Test(int8, precision_names_parse)
{
	enum rtci_tail_precision p;
	cr_expect_eq(rtci_precision_parse("int8", &p), 0);
	cr_expect_eq(p, RTCI_PRECISION_INT8);
	cr_expect_eq(rtci_precision_parse("fp32", &p), 0);
	cr_expect_eq(p, RTCI_PRECISION_FP32);
	cr_expect_eq(rtci_precision_parse("auto", &p), 0);
	cr_expect_eq(p, RTCI_PRECISION_AUTO);
	cr_expect_lt(rtci_precision_parse("INT8", &p), 0);
	cr_expect_lt(rtci_precision_parse("", &p), 0);
	cr_expect_lt(rtci_precision_parse(NULL, &p), 0);
	cr_expect_str_eq(rtci_precision_name(RTCI_PRECISION_INT8), "int8");
}

/* The calibrated file's bytes with `patch` applied to act_scale[k], loaded from memory. */
static int load_patched(int k, float v, struct rtci_model **out)
{
	size_t n;
	char *b = (char *)read_f32("", cpath, &n);
	int pts;
	const float *a;
	cr_assert_eq(rtci_model_int8(cal, &a, &pts), 0);
	size_t len = (size_t)rtci_model_setup_count(cal) * pts * sizeof(float);
	char *at = memmem(b, n * 4, a, len);
	cr_assert_not_null(at);
	memcpy(at + (size_t)k * sizeof(float), &v, sizeof(v));
	char err[256];
	int rc = rtci_model_load_buffer(b, n * 4, "patched", out, err, sizeof(err));
	free(b);
	return rc;
}

Test(int8, bad_scales_are_refused_at_create)
{
	need_calibration();
	const float bad[4] = { 0.0f, -1.0f, NAN, INFINITY };
	for (int i = 0; i < 4; i++) {
		struct rtci_model *m;
		cr_assert_eq(load_patched(7 * i + 1, bad[i], &m), 0);
		struct rtci_tail *t;
		struct rtci_engine_config cfg = { .threads = 1, .max_batch = 2, .precision = RTCI_PRECISION_INT8 };
		cr_expect_eq(rtci_tail_create(m, &cfg, &t), -RTCI_ERR_ENGINE_CALIBRATION, "value %g", bad[i]);
		cfg.precision = RTCI_PRECISION_AUTO;
		cr_expect_eq(rtci_tail_create(m, &cfg, &t), -RTCI_ERR_ENGINE_CALIBRATION, "value %g", bad[i]);
		cfg.precision = RTCI_PRECISION_FP32;
		cr_expect_eq(rtci_tail_create(m, &cfg, &t), 0);
		rtci_tail_destroy(t);
		rtci_model_destroy(m);
	}
}

Test(int8, int8_logits_close_to_fp32)
{
	need_calibration();
	enum { N = 24 };
	int ids[N];
	for (int i = 0; i < N; i++)
		ids[i] = (i * 7) % rtci_model_setup_count(cal);
	float *x = head_frames(N, ids), *lf = malloc(N * CL * 4), *lq = malloc(N * CL * 4);
	struct rtci_tail *t;
	struct rtci_engine_config cfg = { .threads = 1, .max_batch = N, .precision = RTCI_PRECISION_INT8 };
	cr_assert_eq(rtci_tail_create(cal, &cfg, &t), 0);
	cr_assert_eq(rtci_tail_run_precision(t, RTCI_PRECISION_FP32, N, x, ids, lf), 0);
	cr_assert_eq(rtci_tail_run(t, N, x, ids, lq), 0);
	double worst = 0;
	int agree = 0;
	for (int i = 0; i < N; i++) {
		double e = rel_l2(lq + i * CL, lf + i * CL, CL);
		worst = e > worst ? e : worst;
		agree += argmax(lq + i * CL, CL) == argmax(lf + i * CL, CL);
	}
	cr_expect_leq(worst, 0.15, "worst rel L2 %g", worst);
	cr_expect_geq(agree, N - 2, "argmax agrees on %d of %d", agree, N);
	/* and int8 is not fp32 by accident */
	cr_expect_gt(rel_l2(lq, lf, (size_t)N * CL), 1e-6);
	struct rtci_tail_stats st;
	rtci_tail_stats(t, &st);
	cr_expect_eq(st.precision, RTCI_PRECISION_INT8);
	cr_expect_eq(st.int8_layers, st.layers);
	cr_expect_gt(st.int8_bytes, 0);
	rtci_tail_destroy(t);
	free(x); free(lf); free(lq);
}

Test(int8, batches_mixing_setups_match_frame_by_frame)
{
	need_calibration();
	const int ids[6] = { 45, 4, 17, 45, 33, 4 };
	float *x = head_frames(6, ids), *lg = malloc(6 * CL * 4), one[64];
	for (int sb = 1; sb <= 6; sb += 5) {
		struct rtci_tail *t;
		struct rtci_engine_config cfg = { .threads = 1, .max_batch = 6, .sub_batch = sb,
						  .precision = RTCI_PRECISION_INT8 };
		cr_assert_eq(rtci_tail_create(cal, &cfg, &t), 0);
		cr_assert_eq(rtci_tail_run(t, 6, x, ids, lg), 0);
		for (int i = 0; i < 6; i++) {
			cr_assert_eq(rtci_tail_run(t, 1, x + i * FRAME, &ids[i], one), 0);
			cr_expect_leq(rel_l2(lg + i * CL, one, CL), 1e-5, "sub-batch %d frame %d", sb, i);
		}
		/* the setup's scales matter: the same frame under another setup differs */
		int other = 0;
		cr_assert_eq(rtci_tail_run(t, 1, x, &other, one), 0);
		cr_expect_gt(rel_l2(one, lg, CL), 1e-4);
		rtci_tail_destroy(t);
	}
	free(x); free(lg);
}

Test(int8, plans_mixing_f32_and_int8_layers)
{
	need_calibration();
	enum { N = 8 };
	int ids[N];
	for (int i = 0; i < N; i++)
		ids[i] = (i * 11) % rtci_model_setup_count(cal);
	float *x = head_frames(N, ids), *lq = malloc(N * CL * 4), *la = malloc(N * CL * 4), *lf = malloc(N * CL * 4);
	/* depthwise layers on planes under 8x8 stay f32: conversions both ways around them */
	q_auto_dw_f32_below = 8 * 8;
	q_auto_needs_vnni = false;
	struct rtci_tail *t;
	struct rtci_engine_config cfg = { .threads = 1, .max_batch = N };
	cr_assert_eq(rtci_tail_create(cal, &cfg, &t), 0);
	struct rtci_tail_stats st;
	rtci_tail_stats(t, &st);
	cr_expect_eq(st.precision, RTCI_PRECISION_AUTO);
	cr_expect_gt(st.int8_layers, 0);
	cr_expect_lt(st.int8_layers, st.layers);
	cr_assert_eq(rtci_tail_run(t, N, x, ids, la), 0);
	cr_assert_eq(rtci_tail_run_precision(t, RTCI_PRECISION_INT8, N, x, ids, lq), 0);
	cr_assert_eq(rtci_tail_run_precision(t, RTCI_PRECISION_FP32, N, x, ids, lf), 0);
	q_auto_dw_f32_below = 0;
	q_auto_needs_vnni = true;
	for (int i = 0; i < N; i++) {
		cr_expect_leq(rel_l2(la + i * CL, lf + i * CL, CL), 0.15, "frame %d against fp32", i);
		cr_expect_leq(rel_l2(la + i * CL, lq + i * CL, CL), 0.15, "frame %d against int8", i);
	}
	cr_expect_gt(rel_l2(la, lq, (size_t)N * CL), 1e-7);
	rtci_tail_destroy(t);
	free(x); free(lq); free(la); free(lf);
}

Test(int8, int8_tail_holds_one_weight_copy)
{
	need_calibration();
	struct rtci_tail *t;
	struct rtci_engine_config cfg = { .threads = 1, .max_batch = 4, .precision = RTCI_PRECISION_INT8 };
	cr_assert_eq(rtci_tail_create(cal, &cfg, &t), 0);
	int ns = rtci_model_setup_count(cal);
	for (int s = 0; s < ns; s++)
		cr_assert_eq(rtci_tail_prepare(t, s), 0);
	struct rtci_tail_stats st;
	rtci_tail_stats(t, &st);
	cr_expect_eq(st.ready_setups, ns);
	cr_expect_eq(st.folded_bytes, 0, "no per-setup f32 weights");
	/* only the classifier in f32: no f32 copy of the convolutions */
	const struct rtci_geometry *g = rtci_model_geometry(cal);
	cr_expect_leq(st.shared_bytes, (size_t)(g->last_channels + 16) * g->classes * 4 + 4096);
	cr_expect_gt(st.int8_bytes, 0);
	rtci_tail_destroy(t);
}

static struct rtci_model *load_shipped(void)
{
	char file[4096], err[256];
	snprintf(file, sizeof(file), "%s/models/fmnist-swcnn.rtcm", golden_root());
	struct rtci_model *m;
	cr_assert_eq(rtci_model_load(file, &m, err, sizeof(err)), 0, "%s", err);
	const struct rtci_geometry *g = rtci_model_geometry(m);
	int ph, pw;
	rtci_geometry_partition_size(g, &ph, &pw);
	cr_assert_eq((size_t)g->stem_out * ph * pw, FRAME, "the shipped model's partition differs");
	return m;
}

static size_t bn_table_bytes(const struct rtci_tail *t)
{
	struct rtci_tail_stats st;
	rtci_tail_stats(t, &st);
	return st.bn_table_bytes;
}

/* An int8 tail holds no f32 BN table until an fp32 run reads one: through the per-setup folded
 * layers, or with none folded (setup_bytes < 0) through the affine rows alone. Its fp32 logits
 * are then those of a tail created fp32. */
Test(int8, int8_tail_builds_the_f32_bn_table_on_its_first_fp32_run)
{
	struct rtci_model *m = load_shipped();
	enum { N = 6 };
	const int ids[N] = { 45, 4, 17, 45, 33, 0 };
	float *x = head_frames_of(m, N, ids), lf[N * 16], lq[N * 16], lg[N * 16], lq2[N * 16];
	cr_assert_leq(CL, 16);
	for (int k = 0; k < 2; k++) {
		long setup_bytes = k ? -1 : 0;
		struct rtci_engine_config cfg = { .threads = 1, .max_batch = N, .setup_bytes = setup_bytes,
						  .precision = RTCI_PRECISION_FP32 };
		struct rtci_tail *tf, *tq;
		cr_assert_eq(rtci_tail_create(m, &cfg, &tf), 0);
		size_t table = bn_table_bytes(tf);
		cr_expect_gt(table, 0, "an fp32 tail builds its table at create");
		cr_assert_eq(rtci_tail_run(tf, N, x, ids, lf), 0);
		cfg.precision = RTCI_PRECISION_INT8;
		cr_assert_eq(rtci_tail_create(m, &cfg, &tq), 0);
		cr_expect_eq(bn_table_bytes(tq), 0, "setup_bytes %ld: int8 tail after create", setup_bytes);
		for (int s = 0; s < rtci_model_setup_count(m); s++)
			cr_assert_eq(rtci_tail_prepare(tq, s), 0);
		cr_assert_eq(rtci_tail_run(tq, N, x, ids, lq), 0);
		cr_assert_eq(rtci_tail_run_precision(tq, RTCI_PRECISION_AUTO, 1, x, ids, lg), 0);
		/* auto is fp32 without VNNI, and reads the table then */
		cr_expect_eq(bn_table_bytes(tq), rtci_int8_exact() ? 0 : table, "setup_bytes %ld: after int8 runs",
			     setup_bytes);
		cr_assert_eq(rtci_tail_run_precision(tq, RTCI_PRECISION_FP32, N, x, ids, lg), 0);
		cr_expect_eq(bn_table_bytes(tq), table, "setup_bytes %ld: after an fp32 run", setup_bytes);
		for (int i = 0; i < N * CL; i++)
			cr_expect_leq(fabsf(lg[i] - lf[i]), 1e-6f * (1.0f + fabsf(lf[i])),
				      "setup_bytes %ld: logit %d %.9g against %.9g", setup_bytes, i, lg[i], lf[i]);
		cr_assert_eq(rtci_tail_run(tq, N, x, ids, lq2), 0);
		cr_expect_leq(rel_l2(lq2, lq, (size_t)N * CL), 1e-6, "int8 after the fp32 run");
		rtci_tail_destroy(tq);
		rtci_tail_destroy(tf);
	}
	free(x);
	rtci_model_destroy(m);
}

/* AUTO builds the table at create when it runs f32 layers: a map mixing f32 and int8 layers, or
 * fp32 altogether without VNNI; with every layer int8 it holds none. */
Test(int8, auto_tail_holds_the_f32_bn_table_only_for_f32_layers)
{
	struct rtci_model *m = load_shipped();
	struct rtci_tail *t;
	struct rtci_engine_config cfg = { .threads = 1, .max_batch = 2 };
	cr_assert_eq(rtci_tail_create(m, &cfg, &t), 0);
	cr_expect_eq(bn_table_bytes(t) > 0, !rtci_int8_exact());
	rtci_tail_destroy(t);
	q_auto_dw_f32_below = 8 * 8;
	q_auto_needs_vnni = false;
	cr_assert_eq(rtci_tail_create(m, &cfg, &t), 0);
	q_auto_dw_f32_below = 0;
	q_auto_needs_vnni = true;
	cr_expect_gt(bn_table_bytes(t), 0, "a mixed map");
	rtci_tail_destroy(t);
	rtci_model_destroy(m);
}

/* AUTO on a CPU without VNNI runs fp32 (docs/engine.md): it builds no int8 plan and no s8
 * weights, counts its ready setups as an fp32 tail does, and answers as one. The ISA limit is set
 * before this test process first uses oneDNN. */
Test(int8, auto_without_vnni_builds_no_int8_weights)
{
	setenv("ONEDNN_MAX_CPU_ISA", "AVX2", 1);
	struct rtci_model *m = load_shipped();
	if (rtci_int8_exact()) {
		rtci_model_destroy(m);
		cr_skip_test("ONEDNN_MAX_CPU_ISA=AVX2 did not take");
	}
	enum { N = 3 };
	const int ids[N] = { 45, 4, 17 };
	float *x = head_frames_of(m, N, ids), la[N * 16], lf[N * 16];
	cr_assert_leq(CL, 16);
	struct rtci_engine_config cfg = { .threads = 1, .max_batch = N };
	struct rtci_tail *ta, *tf;
	cr_assert_eq(rtci_tail_create(m, &cfg, &ta), 0);
	cfg.precision = RTCI_PRECISION_FP32;
	cr_assert_eq(rtci_tail_create(m, &cfg, &tf), 0);
	cr_assert_eq(rtci_tail_prepare(ta, 4), 0);
	cr_assert_eq(rtci_tail_prepare(tf, 4), 0);
	struct rtci_tail_stats sa, sf;
	rtci_tail_stats(ta, &sa);
	rtci_tail_stats(tf, &sf);
	cr_expect_eq(sa.int8_bytes, 0, "s8 weights built for an fp32 run");
	cr_expect_eq(sa.int8_layers, 0);
	cr_expect_eq(sa.ready_setups, sf.ready_setups);
	cr_assert_eq(rtci_tail_run(ta, N, x, ids, la), 0);
	cr_assert_eq(rtci_tail_run(tf, N, x, ids, lf), 0);
	for (int i = 0; i < N * CL; i++)
		cr_expect_leq(fabsf(la[i] - lf[i]), 1e-6f * (1.0f + fabsf(lf[i])), "logit %d", i);
	rtci_tail_destroy(ta);
	rtci_tail_destroy(tf);
	free(x);
	rtci_model_destroy(m);
}

/* The `int8` block saying 4 points where act_scale has 5 columns: refused as a calibration. */
Test(int8, scales_of_the_wrong_shape_are_refused)
{
	need_calibration();
	size_t n;
	char *b = (char *)read_f32("", cpath, &n);
	static const char key[] = "int8\\\": {\\\"points\\\": 5";
	char *at = memmem(b, n * 4, key, strlen(key));
	cr_assert_not_null(at, "no int8 block with 5 points in the calibrated file");
	at[strlen(key) - 1] = '4';
	struct rtci_model *m;
	char err[256];
	cr_assert_eq(rtci_model_load_buffer(b, n * 4, "patched", &m, err, sizeof(err)), 0, "%s", err);
	const float *a;
	int pts;
	cr_expect_eq(rtci_model_int8(m, &a, &pts), -RTCI_ERR_MODEL_TENSOR);
	cr_expect_eq(rtci_model_int8(plain, &a, &pts), -ENOENT);
	struct rtci_tail *t;
	struct rtci_engine_config cfg = { .threads = 1, .max_batch = 2, .precision = RTCI_PRECISION_INT8 };
	cr_expect_eq(rtci_tail_create(m, &cfg, &t), -RTCI_ERR_ENGINE_CALIBRATION);
	rtci_model_destroy(m);
	free(b);
}
