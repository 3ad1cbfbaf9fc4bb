/* SW-CNN engine: head and tail against a direct (loop) implementation of the network written
 * from docs/model-format.md, the two tail modes against each other, batches that mix setups,
 * cache eviction, and argument errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/rtci_error.h"
#include "inference/engine.h"
#include "inference/model.h"
#include "tests/golden_util.h"

static char tmpdir[64], path[128];
static struct rtci_model *model;
static const struct rtci_geometry *geo;
static int P, PH, PW, CL;
static size_t FRAME;

static void setup_model(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/rtci-engine-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	snprintf(path, sizeof(path), "%s/fm.rtcm", tmpdir);
	struct rtci_geometry g;
	char err[256];
	rtci_geometry_preset("fmnist", &g);
	cr_assert_eq(rtci_model_synth(&g, 11, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(rtci_model_load(path, &model, err, sizeof(err)), 0, "%s", err);
	geo = rtci_model_geometry(model);
	P = geo->stem_out;
	rtci_geometry_partition_size(geo, &PH, &PW);
	CL = geo->classes;
	FRAME = (size_t)P * PH * PW;
}

static void teardown_model(void)
{
	rtci_model_destroy(model);
	unlink(path);
	rmdir(tmpdir);
}

TestSuite(engine, .init = setup_model, .fini = teardown_model);

/* ---- direct implementation, one image, NCHW ---- */

static const float *T(const char *name)
{
	const float *p = rtci_model_tensor(model, name, NULL, NULL);
	cr_assert_not_null(p, "%s", name);
	return p;
}

static void conv(const float *x, int ic, int h, int w, const float *wt, int oc, int k, int s, int groups,
		 float *y, int *oh, int *ow)
{
	int p = k / 2, H = (h + 2 * p - k) / s + 1, W = (w + 2 * p - k) / s + 1;
	int icg = ic / groups, ocg = oc / groups;
	for (int o = 0; o < oc; o++) {
		int gi = o / ocg;
		for (int i = 0; i < H; i++)
			for (int j = 0; j < W; j++) {
				double acc = 0;
				for (int c = 0; c < icg; c++)
					for (int a = 0; a < k; a++)
						for (int b = 0; b < k; b++) {
							int yy = i * s - p + a, xx = j * s - p + b;
							if (yy < 0 || yy >= h || xx < 0 || xx >= w)
								continue;
							acc += (double)x[((size_t)(gi * icg + c) * h + yy) * w + xx] *
							       wt[(((size_t)o * icg + c) * k + a) * k + b];
						}
				y[((size_t)o * H + i) * W + j] = (float)acc;
			}
	}
	*oh = H;
	*ow = W;
}

static void bn(float *y, int c, int hw, const char *prefix, int slot, bool relu6)
{
	char n[96];
	snprintf(n, sizeof(n), "%s.weight", prefix); const float *g = T(n);
	snprintf(n, sizeof(n), "%s.bias", prefix); const float *b = T(n);
	snprintf(n, sizeof(n), "%s.running_mean", prefix); const float *m = T(n) + (size_t)slot * c;
	snprintf(n, sizeof(n), "%s.running_var", prefix); const float *v = T(n) + (size_t)slot * c;
	for (int i = 0; i < c; i++)
		for (int j = 0; j < hw; j++) {
			double t = ((double)y[(size_t)i * hw + j] - m[i]) / sqrt((double)v[i] + geo->bn_eps) * g[i] + b[i];
			if (relu6)
				t = t < 0 ? 0 : t > 6 ? 6 : t;
			y[(size_t)i * hw + j] = (float)t;
		}
}

/* partition tensor (all P channels) of an image for a BN slot */
static void ref_head(const float *img, int slot, float *out)
{
	float *x = malloc(sizeof(float) * geo->in_c * geo->in_h * geo->in_w);
	for (int c = 0; c < geo->in_c; c++)
		for (int i = 0; i < geo->in_h * geo->in_w; i++)
			x[c * geo->in_h * geo->in_w + i] =
				(img[c * geo->in_h * geo->in_w + i] - geo->input_mean[c]) / geo->input_std[c];
	int h, w;
	conv(x, geo->in_c, geo->in_h, geo->in_w, T("stem.conv.weight"), P, geo->stem_kernel, geo->stem_stride, 1,
	     out, &h, &w);
	bn(out, P, h * w, "stem.bn", slot, true);
	free(x);
}

static void ref_tail(const float *in, int slot, float *logits)
{
	size_t big = (size_t)6 * 64 * PH * PW + FRAME;
	float *a = malloc(big * 4), *b = malloc(big * 4), *e = malloc(big * 4), *d = malloc(big * 4);
	int h = PH, w = PW, h2, w2;
	conv(in, P, h, w, T("block1.conv1.weight"), P, 3, 1, 1, a, &h2, &w2);
	bn(a, P, h * w, "block1.bn1", slot, true);
	conv(a, P, h, w, T("block1.conv2.weight"), geo->block1_out, 1, 1, 1, b, &h2, &w2);
	bn(b, geo->block1_out, h * w, "block1.bn2", slot, false);
	int ch = geo->block1_out, bi = 0;
	char n[96];
	for (int r = 0; r < geo->n_rows; r++)
		for (int j = 0; j < geo->rows[r].n; j++, bi++) {
			int hid = ch * geo->rows[r].t, oc = geo->rows[r].c, s = j ? 1 : geo->rows[r].s;
			snprintf(n, sizeof(n), "blocks.%d.expand.weight", bi);
			conv(b, ch, h, w, T(n), hid, 1, 1, 1, e, &h2, &w2);
			snprintf(n, sizeof(n), "blocks.%d.bn1", bi);
			bn(e, hid, h * w, n, slot, true);
			snprintf(n, sizeof(n), "blocks.%d.dw.weight", bi);
			conv(e, hid, h, w, T(n), hid, 3, s, hid, d, &h2, &w2);
			snprintf(n, sizeof(n), "blocks.%d.bn2", bi);
			bn(d, hid, h2 * w2, n, slot, true);
			snprintf(n, sizeof(n), "blocks.%d.project.weight", bi);
			conv(d, hid, h2, w2, T(n), oc, 1, 1, 1, a, &h2, &w2);
			snprintf(n, sizeof(n), "blocks.%d.bn3", bi);
			bn(a, oc, h2 * w2, n, slot, false);
			if (s == 1 && ch == oc)
				for (int i = 0; i < oc * h2 * w2; i++)
					a[i] += b[i];
			memcpy(b, a, sizeof(float) * oc * h2 * w2);
			ch = oc; h = h2; w = w2;
		}
	conv(b, ch, h, w, T("last.conv.weight"), geo->last_channels, 1, 1, 1, a, &h2, &w2);
	bn(a, geo->last_channels, h * w, "last.bn", slot, true);
	const float *fw = T("classifier.weight"), *fb = T("classifier.bias");
	for (int o = 0; o < CL; o++) {
		double acc = fb[o];
		for (int c = 0; c < geo->last_channels; c++) {
			double m = 0;
			for (int i = 0; i < h * w; i++)
				m += a[(size_t)c * h * w + i];
			acc += m / (h * w) * fw[(size_t)o * geo->last_channels + c];
		}
		logits[o] = (float)acc;
	}
	free(a); free(b); free(e); free(d);
}

static float *random_frames(int n, unsigned seed, const int *setups)
{
	float *x = calloc((size_t)n * FRAME, sizeof(float));
	srand(seed);
	for (int i = 0; i < n; i++) {
		int c = rtci_model_setup(model, setups[i])->c;
		for (size_t k = 0; k < (size_t)c * PH * PW; k++)
			x[i * FRAME + k] = (float)(rand() % 600) / 100.0f;
	}
	return x;
}

Test(engine, head_matches_direct_implementation)
{
	struct rtci_head *h;
	struct rtci_engine_config cfg = { .threads = 1, .max_batch = 4 };
	cr_assert_eq(rtci_head_create(model, &cfg, &h), 0);
	size_t isz = (size_t)geo->in_c * geo->in_h * geo->in_w;
	float *img = malloc(3 * isz * 4), *out = malloc(3 * FRAME * 4), *ref = malloc(FRAME * 4);
	for (size_t i = 0; i < 3 * isz; i++)
		img[i] = (float)(rand() % 256) / 255.0f;
	const int setups[] = { 45, 4, 23, 45 };
	for (int k = 0; k < 4; k++) {
		const struct rtci_setup *s = rtci_model_setup(model, setups[k]);
		cr_assert_eq(rtci_head_run(h, setups[k], 3, img, out), 0);
		for (int b = 0; b < 3; b++) {
			ref_head(img + b * isz, s->bn_slot, ref);
			double e = rel_l2(out + (size_t)b * s->c * PH * PW, ref, (size_t)s->c * PH * PW);
			cr_expect_leq(e, 1e-5, "setup %d image %d: %g", setups[k], b, e);
		}
	}
	cr_expect_eq(rtci_head_run(h, 50, 1, img, out), -RTCI_ERR_ENGINE_SETUP);
	cr_expect_eq(rtci_head_run(h, 0, 5, img, out), -RTCI_ERR_ENGINE_BATCH);
	rtci_head_destroy(h);
	free(img); free(out); free(ref);
}

Test(engine, tail_matches_direct_implementation_in_both_modes)
{
	const int setups[5] = { 45, 4, 17, 45, 33 };
	/* whole batches (the probe plan, n = 5, is used), then sub-batches of 2 */
	for (int sb = 5; sb >= 2; sb -= 3) {
		struct rtci_tail *t;
		struct rtci_engine_config cfg = { .threads = 1, .max_batch = 5, .sub_batch = sb };
		cr_assert_eq(rtci_tail_create(model, &cfg, &t), 0);
		float *x = random_frames(5, 1, setups);
		float *lg = malloc(5 * CL * 4), *ref = malloc(5 * CL * 4);
		for (int i = 0; i < 5; i++)
			ref_tail(x + i * FRAME, rtci_model_setup(model, setups[i])->bn_slot, ref + i * CL);
		for (int mode = RTCI_TAIL_FOLDED; mode <= RTCI_TAIL_AFFINE; mode++) {
			memset(lg, 0, 5 * CL * 4);
			cr_assert_eq(rtci_tail_run_mode(t, mode, 5, x, setups, lg), 0);
			for (int i = 0; i < 5; i++) {
				double e = rel_l2(lg + i * CL, ref + i * CL, CL);
				cr_expect_leq(e, 1e-5, "mode %d frame %d (setup %d): %g", mode, i, setups[i], e);
			}
			/* one frame at a time gives the same answer as the batch */
			for (int i = 0; i < 5; i++) {
				float one[64];
				cr_assert_eq(rtci_tail_run_mode(t, mode, 1, x + i * FRAME, &setups[i], one), 0);
				cr_expect_leq(rel_l2(one, ref + i * CL, CL), 1e-5);
			}
		}
		/* the logits really depend on the setup's BN slot */
		int other[5] = { 0, 0, 0, 0, 0 };
		cr_assert_eq(rtci_tail_run(t, 5, x, other, lg), 0);
		cr_expect_gt(rel_l2(lg, ref, CL), 1e-3);
		/* a run of the same setup (frames 0 and 3 share 45; 1, 2 make a sub-batch in order) */
		int same[5] = { 45, 4, 4, 45, 33 };
		float *ref2 = malloc(5 * CL * 4);
		for (int i = 0; i < 5; i++)
			ref_tail(x + i * FRAME, rtci_model_setup(model, same[i])->bn_slot, ref2 + i * CL);
		for (int mode = RTCI_TAIL_FOLDED; mode <= RTCI_TAIL_AFFINE; mode++) {
			cr_assert_eq(rtci_tail_run_mode(t, mode, 5, x, same, lg), 0);
			for (int i = 0; i < 5; i++)
				cr_expect_leq(rel_l2(lg + i * CL, ref2 + i * CL, CL), 1e-5, "sb %d mode %d frame %d", sb, mode, i);
		}
		free(ref2);
		rtci_tail_destroy(t);
		free(x); free(lg); free(ref);
	}
}

Test(engine, caches_stay_bounded_and_correct)
{
	struct rtci_tail *t;
	struct rtci_engine_config cfg = { .threads = 1, .max_batch = 6, .plan_cache = 2, .folded_cache = 2,
					  .mode = RTCI_TAIL_FOLDED };
	cr_assert_eq(rtci_tail_create(model, &cfg, &t), 0);
	int setups[6];
	for (int i = 0; i < 6; i++)
		setups[i] = (i * 7) % 50;
	float *x = random_frames(6, 2, setups);
	float *lg = malloc(6 * CL * 4), *ref = malloc(6 * CL * 4);
	for (int i = 0; i < 6; i++)
		ref_tail(x + i * FRAME, rtci_model_setup(model, setups[i])->bn_slot, ref + i * CL);
	for (int round = 0; round < 3; round++)
		for (int n = 1; n <= 6; n++) {
			cr_assert_eq(rtci_tail_run(t, n, x, setups, lg), 0);
			for (int i = 0; i < n; i++)
				cr_expect_leq(rel_l2(lg + i * CL, ref + i * CL, CL), 1e-5, "n %d frame %d", n, i);
		}
	struct rtci_tail_stats st;
	rtci_tail_stats(t, &st);
	cr_expect_leq(st.plans, 2);
	cr_expect_leq(st.folded_setups, 2);
	cr_expect_gt(st.fold_builds, 6, "evictions force rebuilds");
	cr_expect_eq(rtci_tail_prepare(t, 50), -RTCI_ERR_ENGINE_SETUP);
	cr_expect_eq(rtci_tail_run(t, 7, x, setups, lg), -RTCI_ERR_ENGINE_BATCH);
	cr_expect_eq(rtci_tail_run(t, 0, x, setups, lg), -RTCI_ERR_ENGINE_BATCH);
	int bad[1] = { -1 };
	cr_expect_eq(rtci_tail_run(t, 1, x, bad, lg), -RTCI_ERR_ENGINE_SETUP);
	rtci_tail_destroy(t);

	/* with every setup prepared the plans are reused: no rebuilds on repeat */
	cfg.folded_cache = 0;
	cfg.plan_cache = 0;
	cr_assert_eq(rtci_tail_create(model, &cfg, &t), 0);
	for (int s = 0; s < 50; s++)
		cr_assert_eq(rtci_tail_prepare(t, s), 0);
	cr_assert_eq(rtci_tail_run(t, 6, x, setups, lg), 0);
	rtci_tail_stats(t, &st);
	long builds = st.plan_builds;
	cr_expect_eq(st.folded_setups, 50);
	cr_assert_eq(rtci_tail_run(t, 6, x, setups, lg), 0);
	rtci_tail_stats(t, &st);
	cr_expect_eq(st.plan_builds, builds);
	cr_expect_eq(st.fold_builds, 50);
	rtci_tail_destroy(t);
	free(x); free(lg); free(ref);
}

/* Affine mode with no, some and the default per-setup folded layers: right answers, weights held
 * once plus a bounded part per setup, nothing built while running. */
Test(engine, affine_mode_holds_shared_weights_and_a_bounded_part_per_setup)
{
	const long budgets[3] = { -1, 4096, 0 };
	int setups[6];
	for (int i = 0; i < 6; i++)
		setups[i] = (i * 11) % 50;
	float *x = random_frames(6, 3, setups);
	float *lg = malloc(6 * CL * 4), *ref = malloc(6 * CL * 4);
	for (int i = 0; i < 6; i++)
		ref_tail(x + i * FRAME, rtci_model_setup(model, setups[i])->bn_slot, ref + i * CL);
	for (int k = 0; k < 3; k++) {
		struct rtci_tail *t;
		struct rtci_engine_config cfg = { .threads = 1, .max_batch = 6, .setup_bytes = budgets[k] };
		cr_assert_eq(rtci_tail_create(model, &cfg, &t), 0);
		cr_expect_eq(rtci_tail_mode(t), RTCI_TAIL_AFFINE, "affine is the default");
		struct rtci_tail_stats st;
		rtci_tail_stats(t, &st);
		cr_expect_gt(st.shared_bytes, 0);
		if (budgets[k] < 0)
			cr_expect_eq(st.ready_setups, 50, "no per-setup weights: every setup ready at create");
		for (int s = 0; s < 50; s++)
			cr_assert_eq(rtci_tail_prepare(t, s), 0);
		cr_expect_eq(rtci_tail_prepare(t, 50), -RTCI_ERR_ENGINE_SETUP);
		rtci_tail_stats(t, &st);
		cr_expect_eq(st.ready_setups, 50);
		size_t per_setup = st.folded_bytes / 50;
		cr_expect_eq(st.folded_bytes % 50, 0);
		if (budgets[k] < 0)
			cr_expect_eq(per_setup, 0);
		else if (budgets[k] > 0)
			cr_expect(per_setup > 0 && per_setup <= 2 * (size_t)budgets[k],
				  "part of %zu bytes for a budget of %ld (padding allowed)", per_setup, budgets[k]);
		long builds = st.fold_builds;
		for (int round = 0; round < 2; round++) {
			cr_assert_eq(rtci_tail_run(t, 6, x, setups, lg), 0);
			for (int i = 0; i < 6; i++)
				cr_expect_leq(rel_l2(lg + i * CL, ref + i * CL, CL), 1e-5, "budget %ld frame %d",
					      budgets[k], i);
		}
		struct rtci_tail_stats st2;
		rtci_tail_stats(t, &st2);
		cr_expect_eq(st2.fold_builds, builds, "nothing built while running");
		cr_expect_eq(st2.folded_bytes, st.folded_bytes);
		cr_expect_eq(st2.shared_bytes, st.shared_bytes);
		rtci_tail_destroy(t);
	}
	free(x); free(lg); free(ref);
}

Test(engine, topk)
{
	float v[6] = { 0.5f, 2.0f, -1.0f, 2.5f, 0.0f, 2.0f };
	int idx[3];
	float val[3];
	cr_assert_eq(rtci_topk(v, 6, 3, idx, val), 3);
	cr_expect_eq(idx[0], 3);
	cr_expect_eq(idx[1], 1);
	cr_expect_eq(idx[2], 5);
	cr_expect_float_eq(val[0], 2.5f, 0);
	cr_assert_eq(rtci_topk(v, 2, 5, idx, val), 2);
	cr_expect_eq(idx[0], 1);
	cr_expect_eq(rtci_topk(v, 6, 0, idx, val), 0);
}
