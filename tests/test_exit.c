/* The local exit on oneDNN against PyTorch: saved inputs and logits in tests/data/exit/
 * (made by `python3 -m training.exit_golden models/fmnist-swcnn.rtcm tests/data/exit`). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>

#include "inference/engine.h"
#include "inference/exit.h"
#include "inference/model.h"
#include "tests/golden_util.h"

#define N_IMAGES 4

static char model_path[4096], data_dir[4096];

static struct rtci_model *load(void)
{
	const char *root = getenv("RTCI_SOURCE_ROOT");
	cr_assert(root, "RTCI_SOURCE_ROOT");
	snprintf(model_path, sizeof(model_path), "%s/models/fmnist-swcnn.rtcm", root);
	snprintf(data_dir, sizeof(data_dir), "%s/tests/data/exit", root);
	char err[512];
	struct rtci_model *m;
	cr_assert_eq(rtci_model_load(model_path, &m, err, sizeof(err)), 0, "%s", err);
	return m;
}

Test(exit, shipped_model_declares_its_exit)
{
	struct rtci_model *m = load();
	const struct rtci_local_exit *x = rtci_model_local_exit(m);
	cr_assert(x);
	cr_assert_eq(x->width, 128);
	const struct rtci_setup *s = rtci_model_setup(m, x->input_setup);
	cr_assert_eq(s->c, 32);
	cr_assert_eq(s->L, 65535);
	cr_assert(x->accuracy > 0.5 && x->accuracy <= 1);
	cr_assert(x->ms > 0);
	rtci_model_destroy(m);
}

Test(exit, head_and_exit_match_pytorch)
{
	struct rtci_model *m = load();
	const struct rtci_local_exit *x = rtci_model_local_exit(m);
	const struct rtci_geometry *g = rtci_model_geometry(m);
	int ph, pw;
	rtci_geometry_partition_size(g, &ph, &pw);
	size_t ni, np, nl, isz = (size_t)g->in_c * g->in_h * g->in_w, psz = (size_t)g->stem_out * ph * pw;
	float *in = read_f32(data_dir, "input.f32", &ni);
	float *part = read_f32(data_dir, "partition.f32", &np);
	float *want = read_f32(data_dir, "logits.f32", &nl);
	cr_assert(in && part && want, "golden files in %s", data_dir);
	cr_assert_eq(ni, N_IMAGES * isz);
	cr_assert_eq(np, N_IMAGES * psz);
	cr_assert_eq(nl, (size_t)N_IMAGES * g->classes);
	struct rtci_engine_config cfg = { .threads = 1, .max_batch = 1 };
	struct rtci_head *h;
	struct rtci_exit *e;
	cr_assert_eq(rtci_head_create(m, &cfg, &h), 0);
	cr_assert_eq(rtci_exit_create(m, 1, &e), 0);
	float *p = malloc(psz * sizeof(float)), logits[64];
	for (int i = 0; i < N_IMAGES; i++) {
		cr_assert_eq(rtci_head_run(h, x->input_setup, 1, in + i * isz, p), 0);
		double ep = rel_l2(p, part + i * psz, psz);
		cr_assert_lt(ep, 1e-5, "image %d: partition rel. L2 %g", i, ep);
		/* the exit on PyTorch's own partition tensor */
		cr_assert_eq(rtci_exit_run(e, part + i * psz, logits), 0);
		double el = rel_l2(logits, want + i * g->classes, (size_t)g->classes);
		cr_assert_lt(el, 1e-4, "image %d: logits rel. L2 %g", i, el);
		int a, b;
		float va, vb;
		rtci_topk(logits, g->classes, 1, &a, &va);
		rtci_topk(want + i * g->classes, g->classes, 1, &b, &vb);
		cr_assert_eq(a, b, "image %d: class %d, PyTorch %d", i, a, b);
	}
	free(p);
	free(in);
	free(part);
	free(want);
	rtci_exit_destroy(e);
	rtci_head_destroy(h);
	rtci_model_destroy(m);
}

Test(exit, a_model_without_an_exit_has_none)
{
	struct rtci_geometry g;
	cr_assert_eq(rtci_geometry_preset("fmnist", &g), 0);
	char path[] = "/tmp/rtci-exit-test-XXXXXX", err[512];
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_eq(rtci_model_synth(&g, 1, path, err, sizeof(err)), 0, "%s", err);
	struct rtci_model *m;
	cr_assert_eq(rtci_model_load(path, &m, err, sizeof(err)), 0, "%s", err);
	unlink(path);
	cr_assert_null(rtci_model_local_exit(m));
	struct rtci_exit *e = (struct rtci_exit *)1;
	cr_assert_eq(rtci_exit_create(m, 1, &e), -ENOENT);
	cr_assert_null(e);
	rtci_model_destroy(m);
}
