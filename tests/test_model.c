/* Model file: loading a synthesized file, and rejecting every kind of damage with an error that
 * names the tensor or field. */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/rtci_error.h"
#include "inference/model.h"

static char tmpdir[64];
static char path[128];
static uint8_t *file;
static size_t file_len;

static void setup_file(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/rtci-model-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	snprintf(path, sizeof(path), "%s/fm.rtcm", tmpdir);
	struct rtci_geometry g;
	char err[256];
	cr_assert_eq(rtci_geometry_preset("fmnist", &g), 0);
	cr_assert_eq(rtci_model_synth(&g, 3, path, err, sizeof(err)), 0, "%s", err);
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f);
	fseek(f, 0, SEEK_END);
	file_len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	file = malloc(file_len);
	cr_assert_eq(fread(file, 1, file_len, f), file_len);
	fclose(f);
}

static void teardown_file(void)
{
	unlink(path);
	rmdir(tmpdir);
	free(file);
}

TestSuite(model, .init = setup_file, .fini = teardown_file);

Test(model, loads_synthesized_file)
{
	struct rtci_model *m;
	char err[256] = "";
	cr_assert_eq(rtci_model_load(path, &m, err, sizeof(err)), 0, "%s", err);
	const struct rtci_geometry *g = rtci_model_geometry(m);
	cr_expect_str_eq(g->name, "fmnist");
	cr_expect_eq(g->in_c, 1);
	cr_expect_eq(g->classes, 10);
	cr_expect_eq(g->n_rows, 3);
	cr_expect_eq(rtci_model_setup_count(m), 50);
	cr_expect_eq(rtci_model_bn_slots(m), 50);
	cr_expect_eq(rtci_model_find_setup(m, 32, 65535), 45);
	cr_expect_eq(rtci_model_find_setup(m, 1, 1), 4);
	cr_expect_eq(rtci_model_find_setup(m, 9, 1), -ENOENT);
	const struct rtci_setup *s = rtci_model_setup(m, 45);
	cr_expect_eq(s->c, 32);
	cr_expect_eq(s->L, 65535);
	cr_expect(isnan(s->accuracy));
	cr_expect_eq(s->raw_bytes, 32 * 14 * 14 * 2 + 8 * 32);
	cr_expect_null(rtci_model_setup(m, 50));
	int nd;
	int64_t shape[4];
	const float *w = rtci_model_tensor(m, "blocks.5.dw.weight", &nd, shape);
	cr_assert_not_null(w);
	cr_expect_eq(nd, 4);
	cr_expect_eq(shape[0], 64 * 6);
	cr_expect_eq(shape[1], 1);
	const float *rv = rtci_model_tensor(m, "last.bn.running_var", &nd, shape);
	cr_assert_not_null(rv);
	cr_expect_eq(shape[0], 50);
	cr_expect_eq(shape[1], 256);
	for (int i = 0; i < 50 * 256; i++)
		cr_assert(rv[i] > 0.3f && rv[i] < 2.0f);
	int ng = rtci_model_group_count(m);
	cr_expect_eq(ng, 3);
	int total = 0;
	for (int i = 0; i < ng; i++) {
		const int *ids;
		int k = rtci_model_group(m, i, &ids);
		for (int j = 0; j < k; j++)
			cr_expect_eq(rtci_model_setup(m, ids[j])->group, i);
		total += k;
	}
	cr_expect_eq(total, 50);
	rtci_model_destroy(m);
}

Test(model, synth_is_deterministic)
{
	char p2[160], err[256];
	snprintf(p2, sizeof(p2), "%s/again.rtcm", tmpdir);
	struct rtci_geometry g;
	rtci_geometry_preset("fmnist", &g);
	cr_assert_eq(rtci_model_synth(&g, 3, p2, err, sizeof(err)), 0);
	FILE *f = fopen(p2, "rb");
	uint8_t *b = malloc(file_len + 1);
	size_t n = fread(b, 1, file_len + 1, f);
	fclose(f);
	cr_expect_eq(n, file_len);
	cr_expect_eq(memcmp(b, file, file_len), 0);
	cr_assert_eq(rtci_model_synth(&g, 4, p2, err, sizeof(err)), 0);
	f = fopen(p2, "rb");
	n = fread(b, 1, file_len + 1, f);
	fclose(f);
	cr_expect_neq(memcmp(b, file, file_len), 0, "another seed gives other weights");
	free(b);
	unlink(p2);
}

Test(model, missing_file_names_path)
{
	struct rtci_model *m = (void *)1;
	char err[256] = "";
	cr_expect_eq(rtci_model_load("/nonexistent/x.rtcm", &m, err, sizeof(err)), -ENOENT);
	cr_expect_null(m);
	cr_expect(strstr(err, "/nonexistent/x.rtcm") != NULL, "%s", err);
}

/* Rewrites the header through fn (which may edit the tensor table and the rtci document) and
 * loads the result from memory. Returns the load's code; err gets the message. */
typedef void (*mutator)(json_t *hdr, json_t *rtci);

static int load_mutated(mutator fn, char *err, size_t errlen)
{
	uint64_t hl;
	memcpy(&hl, file, 8);
	json_t *hdr = json_loadb((const char *)file + 8, hl, 0, NULL);
	cr_assert_not_null(hdr);
	json_t *meta = json_object_get(hdr, "__metadata__");
	json_t *rt = json_loads(json_string_value(json_object_get(meta, "rtci")), 0, NULL);
	cr_assert_not_null(rt);
	fn(hdr, rt);
	char *rts = json_dumps(rt, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_object_set_new(meta, "rtci", json_string(rts));
	free(rts);
	char *hs = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER);
	size_t nhl = (strlen(hs) + 7) & ~(size_t)7, dl = file_len - 8 - hl;
	uint8_t *buf = malloc(8 + nhl + dl);
	uint64_t le = nhl;
	memcpy(buf, &le, 8);
	memset(buf + 8, ' ', nhl);
	memcpy(buf + 8, hs, strlen(hs));
	memcpy(buf + 8 + nhl, file + 8 + hl, dl);
	struct rtci_model *m = NULL;
	int rc = rtci_model_load_buffer(buf, 8 + nhl + dl, "mutated.rtcm", &m, err, errlen);
	if (rc == 0)
		rtci_model_destroy(m);
	else
		cr_expect_null(m);
	free(buf);
	free(hs);
	json_decref(rt);
	json_decref(hdr);
	return rc;
}

static void m_none(json_t *h, json_t *r) { (void)h; (void)r; }
static void m_drop_tensor(json_t *h, json_t *r) { (void)r; json_object_del(h, "blocks.3.project.weight"); }
static void m_shape(json_t *h, json_t *r)
{
	(void)r;
	json_t *sh = json_object_get(json_object_get(h, "block1.conv2.weight"), "shape");
	json_array_set_new(sh, 0, json_integer(17));
}
static void m_dtype(json_t *h, json_t *r)
{
	(void)r;
	json_object_set_new(json_object_get(h, "last.bn.bias"), "dtype", json_string("F16"));
}
static void m_range(json_t *h, json_t *r)
{
	(void)r;
	json_t *o = json_object_get(json_object_get(h, "classifier.bias"), "data_offsets");
	json_array_set_new(o, 0, json_integer(1 << 30));
	json_array_set_new(o, 1, json_integer((1 << 30) + 40));
}
static void m_overlap(json_t *h, json_t *r)
{
	(void)r;
	json_t *a = json_object_get(json_object_get(h, "stem.bn.weight"), "data_offsets");
	json_t *b = json_object_get(json_object_get(h, "stem.bn.bias"), "data_offsets");
	json_array_set(b, 0, json_array_get(a, 0));
	json_array_set(b, 1, json_array_get(a, 1));
}
static void m_version(json_t *h, json_t *r)
{
	(void)r;
	json_object_set_new(json_object_get(h, "__metadata__"), "format_version", json_string("2"));
}
static void m_bn_slot(json_t *h, json_t *r)
{
	(void)h;
	json_object_set_new(json_array_get(json_object_get(r, "setups"), 7), "bn_slot", json_integer(50));
}
static void m_setup_c(json_t *h, json_t *r)
{
	(void)h;
	json_object_set_new(json_array_get(json_object_get(r, "setups"), 12), "c", json_integer(5));
}
static void m_dup_id(json_t *h, json_t *r)
{
	(void)h;
	json_object_set_new(json_array_get(json_object_get(r, "setups"), 3), "id", json_integer(2));
}
static void m_group(json_t *h, json_t *r)
{
	(void)h;
	json_object_set_new(json_array_get(json_object_get(r, "setups"), 0), "group", json_integer(2));
}
static void m_geometry(json_t *h, json_t *r)
{
	(void)h;
	json_object_set_new(json_object_get(r, "geometry"), "classes", json_integer(0));
}
static void m_blocks(json_t *h, json_t *r)
{
	(void)h;
	/* a block row the tensors do not match */
	json_t *row = json_array_get(json_object_get(json_object_get(r, "geometry"), "blocks"), 1);
	json_array_set_new(row, 1, json_integer(40));
}

Test(model, rejects_damage_naming_the_culprit)
{
	struct { mutator fn; int code; const char *needle; } cases[] = {
		{ m_drop_tensor, RTCI_ERR_MODEL_TENSOR, "blocks.3.project.weight: missing" },
		{ m_shape, RTCI_ERR_MODEL_TENSOR, "block1.conv2.weight" },
		{ m_dtype, RTCI_ERR_MODEL_TENSOR, "last.bn.bias" },
		{ m_range, RTCI_ERR_MODEL_TENSOR, "classifier.bias" },
		{ m_overlap, RTCI_ERR_MODEL_TENSOR, "overlaps" },
		{ m_version, RTCI_ERR_MODEL_VERSION, "format_version" },
		{ m_bn_slot, RTCI_ERR_MODEL_SETUPS, "setups[7].bn_slot" },
		{ m_setup_c, RTCI_ERR_MODEL_SETUPS, "setups[12].c" },
		{ m_dup_id, RTCI_ERR_MODEL_SETUPS, "duplicate" },
		{ m_group, RTCI_ERR_MODEL_GROUPS, "setup 0" },
		{ m_geometry, RTCI_ERR_MODEL_GEOMETRY, "geometry.classes" },
		{ m_blocks, RTCI_ERR_MODEL_TENSOR, "shape does not match" },
	};
	char err[256];
	cr_assert_eq(load_mutated(m_none, err, sizeof(err)), 0, "unchanged header must load: %s", err);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = 0;
		int rc = load_mutated(cases[i].fn, err, sizeof(err));
		cr_expect_eq(rc, -cases[i].code, "case %zu: got %d (%s): %s", i, rc, rtci_strerror(rc), err);
		cr_expect(strstr(err, cases[i].needle) != NULL, "case %zu: '%s' lacks '%s'", i, err,
			  cases[i].needle);
		cr_expect(strncmp(err, "mutated.rtcm: ", 14) == 0, "case %zu: '%s' lacks the file name", i, err);
	}
}

Test(model, rejects_bad_bytes)
{
	char err[256];
	struct rtci_model *m;
	cr_expect_eq(rtci_model_load_buffer(file, 5, "short", &m, err, sizeof(err)), -RTCI_ERR_MODEL_FORMAT);
	uint8_t *b = malloc(file_len);
	memcpy(b, file, file_len);
	uint64_t big = file_len;   /* header length past the end */
	memcpy(b, &big, 8);
	cr_expect_eq(rtci_model_load_buffer(b, file_len, "b", &m, err, sizeof(err)), -RTCI_ERR_MODEL_FORMAT);
	memcpy(b, file, file_len);
	b[8] = '[';   /* not an object */
	cr_expect_eq(rtci_model_load_buffer(b, file_len, "b", &m, err, sizeof(err)), -RTCI_ERR_MODEL_FORMAT);
	/* a NaN weight */
	memcpy(b, file, file_len);
	float nan = NAN;
	memcpy(b + file_len - 4, &nan, 4);   /* last element of classifier.bias */
	cr_expect_eq(rtci_model_load_buffer(b, file_len, "b", &m, err, sizeof(err)), -RTCI_ERR_MODEL_TENSOR);
	cr_expect(strstr(err, "classifier.bias") != NULL, "%s", err);
	/* a truncated data section */
	cr_expect_eq(rtci_model_load_buffer(file, file_len - 4, "t", &m, err, sizeof(err)), -RTCI_ERR_MODEL_TENSOR);
	free(b);
}

Test(model, geometry_presets)
{
	struct rtci_geometry g;
	cr_assert_eq(rtci_geometry_preset("mnv2-224", &g), 0);
	int h, w;
	rtci_geometry_partition_size(&g, &h, &w);
	cr_expect_eq(h, 112);
	cr_expect_eq(w, 112);
	cr_expect_eq(rtci_geometry_validate(&g, NULL, 0), 0);
	cr_expect_eq(rtci_geometry_tensors(&g, 50, NULL, 0), 5 + 10 + 16 * 15 + 5 + 2);
	cr_expect_eq(rtci_geometry_preset("resnet", &g), -EINVAL);
	rtci_geometry_preset("fmnist", &g);
	g.rows[0].s = 3;
	char err[128];
	cr_expect_eq(rtci_geometry_validate(&g, err, sizeof(err)), -RTCI_ERR_MODEL_GEOMETRY);
}
