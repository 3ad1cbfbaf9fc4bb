/* Model file: mmap, JSON header (jansson), validation against the geometry, and a writer for
 * synthesized models. See docs/model-format.md. */
#include "inference/model.h"
#include "common/hash.h"
#include "common/rtci_error.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "model files are little-endian; this reader assumes a little-endian host"
#endif

#define MAX_TENSORS 4096

struct tensor {
	char name[RTCI_MODEL_NAME_MAX];
	int ndim;
	int64_t shape[4];
	uint64_t begin, end;   /* relative to the data section */
	const float *data;
};

struct rtci_model {
	void *map;            /* mmap base, or NULL */
	size_t map_len;
	void *owned;          /* malloc'd copy (buffer loads, or a misaligned data section) */
	size_t file_len;
	struct rtci_geometry geo;
	int n_channels, n_levels, bn_slots;
	int channels[RTCI_MODEL_MAX_CHANNELS];
	int levels[RTCI_MODEL_MAX_LEVELS];
	int n_setups;
	struct rtci_setup *setups;
	int n_groups;
	int *group_ids;       /* concatenated */
	int *group_start;     /* n_groups + 1 */
	char *provenance;
	char *metadata;           /* the __metadata__.rtci document, as the file holds it */
	bool has_exit;
	struct rtci_local_exit exit;
	int n_tensors;
	struct tensor *tensors;
};

/* ---------------------------------------------------------------- geometry */

int rtci_geometry_preset(const char *name, struct rtci_geometry *g)
{
	memset(g, 0, sizeof(*g));
	g->stem_out = 32;
	g->stem_kernel = 3;
	g->stem_stride = 2;
	g->stem_pad = 1;
	g->block1_out = 16;
	g->bn_eps = 1e-5f;
	if (name && strcmp(name, "mnv2-224") == 0) {
		static const int rows[6][4] = { { 6, 24, 2, 2 }, { 6, 32, 3, 2 }, { 6, 64, 4, 2 },
						{ 6, 96, 3, 1 }, { 6, 160, 3, 2 }, { 6, 320, 1, 1 } };
		snprintf(g->name, sizeof(g->name), "mnv2-224");
		g->in_c = 3;
		g->in_h = g->in_w = 224;
		g->input_mean[0] = 0.485f; g->input_mean[1] = 0.456f; g->input_mean[2] = 0.406f;
		g->input_std[0] = 0.229f; g->input_std[1] = 0.224f; g->input_std[2] = 0.225f;
		g->classes = 196;
		g->n_rows = 6;
		for (int i = 0; i < 6; i++) {
			g->rows[i].t = rows[i][0]; g->rows[i].c = rows[i][1];
			g->rows[i].n = rows[i][2]; g->rows[i].s = rows[i][3];
		}
		g->last_channels = 1280;
		return 0;
	}
	if (name && strcmp(name, "fmnist") == 0) {
		static const int rows[3][4] = { { 6, 24, 2, 2 }, { 6, 32, 2, 2 }, { 6, 64, 2, 1 } };
		snprintf(g->name, sizeof(g->name), "fmnist");
		g->in_c = 1;
		g->in_h = g->in_w = 28;
		g->input_mean[0] = 0.2860f;
		g->input_std[0] = 0.3530f;
		g->classes = 10;
		g->n_rows = 3;
		for (int i = 0; i < 3; i++) {
			g->rows[i].t = rows[i][0]; g->rows[i].c = rows[i][1];
			g->rows[i].n = rows[i][2]; g->rows[i].s = rows[i][3];
		}
		g->last_channels = 256;
		return 0;
	}
	return -EINVAL;
}

static int conv_out(int in, int k, int s, int p) { return (in + 2 * p - k) / s + 1; }

void rtci_geometry_partition_size(const struct rtci_geometry *g, int *h, int *w)
{
	*h = conv_out(g->in_h, g->stem_kernel, g->stem_stride, g->stem_pad);
	*w = conv_out(g->in_w, g->stem_kernel, g->stem_stride, g->stem_pad);
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int rtci_geometry_validate(const struct rtci_geometry *g, char *err, size_t errlen)
{
#define GCHK(cond, ...) do { if (!(cond)) { seterr(err, errlen, __VA_ARGS__); \
	return -RTCI_ERR_MODEL_GEOMETRY; } } while (0)
	GCHK(g->in_c >= 1 && g->in_c <= RTCI_MODEL_MAX_IN_C, "geometry.input: channels %d not in 1..%d",
	     g->in_c, RTCI_MODEL_MAX_IN_C);
	GCHK(g->in_h >= 1 && g->in_h <= 4096 && g->in_w >= 1 && g->in_w <= 4096,
	     "geometry.input: size %dx%d not in 1..4096", g->in_h, g->in_w);
	for (int i = 0; i < g->in_c; i++) {
		GCHK(isfinite(g->input_mean[i]), "geometry.input_mean[%d] not finite", i);
		GCHK(isfinite(g->input_std[i]) && g->input_std[i] > 1e-6f,
		     "geometry.input_std[%d] must be positive", i);
	}
	GCHK(g->classes >= 1 && g->classes <= 100000, "geometry.classes %d not in 1..100000", g->classes);
	GCHK(g->stem_out >= 1 && g->stem_out <= 256, "geometry.stem.out %d not in 1..256", g->stem_out);
	GCHK(g->stem_kernel >= 1 && g->stem_kernel <= 7, "geometry.stem.kernel %d not in 1..7", g->stem_kernel);
	GCHK(g->stem_stride >= 1 && g->stem_stride <= 4, "geometry.stem.stride %d not in 1..4", g->stem_stride);
	GCHK(g->stem_pad >= 0 && g->stem_pad < g->stem_kernel, "geometry.stem.pad %d not in 0..kernel-1",
	     g->stem_pad);
	GCHK(g->block1_out >= 1 && g->block1_out <= 4096, "geometry.block1.out %d not in 1..4096",
	     g->block1_out);
	GCHK(g->n_rows >= 0 && g->n_rows <= RTCI_MODEL_MAX_ROWS, "geometry.blocks: %d rows (max %d)",
	     g->n_rows, RTCI_MODEL_MAX_ROWS);
	GCHK(g->last_channels >= 1 && g->last_channels <= 8192, "geometry.last_channels %d not in 1..8192",
	     g->last_channels);
	GCHK(isfinite(g->bn_eps) && g->bn_eps > 0 && g->bn_eps < 1, "geometry.bn_eps must be in (0, 1)");
	int h, w;
	rtci_geometry_partition_size(g, &h, &w);
	GCHK(h >= 1 && w >= 1, "geometry: stem output is empty");
	for (int r = 0; r < g->n_rows; r++) {
		GCHK(g->rows[r].t >= 1 && g->rows[r].t <= 16, "geometry.blocks[%d]: t %d not in 1..16", r,
		     g->rows[r].t);
		GCHK(g->rows[r].c >= 1 && g->rows[r].c <= 4096, "geometry.blocks[%d]: c %d not in 1..4096", r,
		     g->rows[r].c);
		GCHK(g->rows[r].n >= 1 && g->rows[r].n <= 16, "geometry.blocks[%d]: n %d not in 1..16", r,
		     g->rows[r].n);
		GCHK(g->rows[r].s >= 1 && g->rows[r].s <= 2, "geometry.blocks[%d]: s %d not in 1..2", r,
		     g->rows[r].s);
		h = conv_out(h, 3, g->rows[r].s, 1);
		w = conv_out(w, 3, g->rows[r].s, 1);
	}
	return 0;
#undef GCHK
}

static void spec_set(struct rtci_tensor_spec *out, int cap, int *n, const char *name, int ndim,
		     int64_t a, int64_t b, int64_t c, int64_t d)
{
	if (*n < cap) {
		struct rtci_tensor_spec *s = &out[*n];
		snprintf(s->name, sizeof(s->name), "%s", name);
		s->ndim = ndim;
		s->shape[0] = a; s->shape[1] = b; s->shape[2] = c; s->shape[3] = d;
	}
	(*n)++;
}

static void spec_bn(struct rtci_tensor_spec *out, int cap, int *n, const char *prefix, int64_t c,
		    int slots)
{
	char name[RTCI_MODEL_NAME_MAX];
	snprintf(name, sizeof(name), "%s.weight", prefix);
	spec_set(out, cap, n, name, 1, c, 0, 0, 0);
	snprintf(name, sizeof(name), "%s.bias", prefix);
	spec_set(out, cap, n, name, 1, c, 0, 0, 0);
	snprintf(name, sizeof(name), "%s.running_mean", prefix);
	spec_set(out, cap, n, name, 2, slots, c, 0, 0);
	snprintf(name, sizeof(name), "%s.running_var", prefix);
	spec_set(out, cap, n, name, 2, slots, c, 0, 0);
}

int rtci_geometry_tensors(const struct rtci_geometry *g, int bn_slots,
			  struct rtci_tensor_spec *out, int cap)
{
	int n = 0;
	char name[RTCI_MODEL_NAME_MAX];
	int k = g->stem_kernel, p = g->stem_out;

	spec_set(out, cap, &n, "stem.conv.weight", 4, p, g->in_c, k, k);
	spec_bn(out, cap, &n, "stem.bn", p, bn_slots);
	spec_set(out, cap, &n, "block1.conv1.weight", 4, p, p, 3, 3);
	spec_bn(out, cap, &n, "block1.bn1", p, bn_slots);
	spec_set(out, cap, &n, "block1.conv2.weight", 4, g->block1_out, p, 1, 1);
	spec_bn(out, cap, &n, "block1.bn2", g->block1_out, bn_slots);
	int in = g->block1_out, bi = 0;
	for (int r = 0; r < g->n_rows; r++) {
		for (int j = 0; j < g->rows[r].n; j++, bi++) {
			int t = g->rows[r].t, c = g->rows[r].c, hid = in * t;
			if (t != 1) {
				snprintf(name, sizeof(name), "blocks.%d.expand.weight", bi);
				spec_set(out, cap, &n, name, 4, hid, in, 1, 1);
				snprintf(name, sizeof(name), "blocks.%d.bn1", bi);
				spec_bn(out, cap, &n, name, hid, bn_slots);
			}
			snprintf(name, sizeof(name), "blocks.%d.dw.weight", bi);
			spec_set(out, cap, &n, name, 4, hid, 1, 3, 3);
			snprintf(name, sizeof(name), "blocks.%d.bn2", bi);
			spec_bn(out, cap, &n, name, hid, bn_slots);
			snprintf(name, sizeof(name), "blocks.%d.project.weight", bi);
			spec_set(out, cap, &n, name, 4, c, hid, 1, 1);
			snprintf(name, sizeof(name), "blocks.%d.bn3", bi);
			spec_bn(out, cap, &n, name, c, bn_slots);
			in = c;
		}
	}
	spec_set(out, cap, &n, "last.conv.weight", 4, g->last_channels, in, 1, 1);
	spec_bn(out, cap, &n, "last.bn", g->last_channels, bn_slots);
	spec_set(out, cap, &n, "classifier.weight", 2, g->classes, g->last_channels, 0, 0);
	spec_set(out, cap, &n, "classifier.bias", 1, g->classes, 0, 0, 0);
	return n;
}

int64_t rtci_geometry_head_macs(const struct rtci_geometry *g)
{
	int h, w;
	rtci_geometry_partition_size(g, &h, &w);
	return (int64_t)h * w * g->stem_out * g->in_c * g->stem_kernel * g->stem_kernel;
}

int64_t rtci_geometry_tail_macs(const struct rtci_geometry *g)
{
	int h, w;
	rtci_geometry_partition_size(g, &h, &w);
	int64_t p = g->stem_out, macs = 0;
	macs += (int64_t)h * w * p * p * 9;
	macs += (int64_t)h * w * p * g->block1_out;
	int64_t in = g->block1_out;
	for (int r = 0; r < g->n_rows; r++) {
		for (int j = 0; j < g->rows[r].n; j++) {
			int64_t hid = in * g->rows[r].t, c = g->rows[r].c;
			int s = j == 0 ? g->rows[r].s : 1;
			if (g->rows[r].t != 1)
				macs += (int64_t)h * w * in * hid;
			h = conv_out(h, 3, s, 1);
			w = conv_out(w, 3, s, 1);
			macs += (int64_t)h * w * hid * 9;
			macs += (int64_t)h * w * hid * c;
			in = c;
		}
	}
	macs += (int64_t)h * w * in * g->last_channels;
	macs += (int64_t)g->last_channels * g->classes;
	return macs;
}

/* ---------------------------------------------------------------- loading */

static bool json_int_in(json_t *v, long long lo, long long hi, int *out)
{
	if (!json_is_integer(v))
		return false;
	long long x = json_integer_value(v);
	if (x < lo || x > hi)
		return false;
	*out = (int)x;
	return true;
}

static bool json_num(json_t *v, double *out)
{
	if (!json_is_number(v))
		return false;
	*out = json_number_value(v);
	return isfinite(*out);
}

static int parse_geometry(json_t *jg, struct rtci_geometry *g, char *err, size_t errlen)
{
#define FAIL(...) do { seterr(err, errlen, __VA_ARGS__); return -RTCI_ERR_MODEL_GEOMETRY; } while (0)
	memset(g, 0, sizeof(*g));
	if (!json_is_object(jg))
		FAIL("geometry: not an object");
	json_t *v = json_object_get(jg, "name");
	if (json_is_string(v))
		snprintf(g->name, sizeof(g->name), "%s", json_string_value(v));
	json_t *in = json_object_get(jg, "input");
	if (!json_is_array(in) || json_array_size(in) != 3 ||
	    !json_int_in(json_array_get(in, 0), 1, RTCI_MODEL_MAX_IN_C, &g->in_c) ||
	    !json_int_in(json_array_get(in, 1), 1, 4096, &g->in_h) ||
	    !json_int_in(json_array_get(in, 2), 1, 4096, &g->in_w))
		FAIL("geometry.input: expected [C, H, W] with C in 1..%d and H, W in 1..4096",
		     RTCI_MODEL_MAX_IN_C);
	static const char *const norm[2] = { "input_mean", "input_std" };
	for (int k = 0; k < 2; k++) {
		json_t *a = json_object_get(jg, norm[k]);
		float *dst = k == 0 ? g->input_mean : g->input_std;
		if (!json_is_array(a) || json_array_size(a) != (size_t)g->in_c)
			FAIL("geometry.%s: expected %d numbers", norm[k], g->in_c);
		for (int i = 0; i < g->in_c; i++) {
			double d;
			if (!json_num(json_array_get(a, i), &d))
				FAIL("geometry.%s[%d]: not a finite number", norm[k], i);
			dst[i] = (float)d;
		}
	}
	if (!json_int_in(json_object_get(jg, "classes"), 1, 100000, &g->classes))
		FAIL("geometry.classes: expected an integer in 1..100000");
	json_t *stem = json_object_get(jg, "stem");
	if (!json_is_object(stem) ||
	    !json_int_in(json_object_get(stem, "out"), 1, 256, &g->stem_out) ||
	    !json_int_in(json_object_get(stem, "kernel"), 1, 7, &g->stem_kernel) ||
	    !json_int_in(json_object_get(stem, "stride"), 1, 4, &g->stem_stride) ||
	    !json_int_in(json_object_get(stem, "pad"), 0, 6, &g->stem_pad))
		FAIL("geometry.stem: expected {out, kernel, stride, pad} integers");
	json_t *b1 = json_object_get(jg, "block1");
	if (!json_is_object(b1) || !json_int_in(json_object_get(b1, "out"), 1, 4096, &g->block1_out))
		FAIL("geometry.block1.out: expected an integer in 1..4096");
	json_t *rows = json_object_get(jg, "blocks");
	if (!json_is_array(rows) || json_array_size(rows) > RTCI_MODEL_MAX_ROWS)
		FAIL("geometry.blocks: expected an array of at most %d rows", RTCI_MODEL_MAX_ROWS);
	g->n_rows = (int)json_array_size(rows);
	for (int r = 0; r < g->n_rows; r++) {
		json_t *row = json_array_get(rows, r);
		if (!json_is_array(row) || json_array_size(row) != 4 ||
		    !json_int_in(json_array_get(row, 0), 1, 16, &g->rows[r].t) ||
		    !json_int_in(json_array_get(row, 1), 1, 4096, &g->rows[r].c) ||
		    !json_int_in(json_array_get(row, 2), 1, 16, &g->rows[r].n) ||
		    !json_int_in(json_array_get(row, 3), 1, 2, &g->rows[r].s))
			FAIL("geometry.blocks[%d]: expected [t, c, n, s]", r);
	}
	if (!json_int_in(json_object_get(jg, "last_channels"), 1, 8192, &g->last_channels))
		FAIL("geometry.last_channels: expected an integer in 1..8192");
	double eps;
	if (!json_num(json_object_get(jg, "bn_eps"), &eps))
		FAIL("geometry.bn_eps: expected a number");
	g->bn_eps = (float)eps;
	return rtci_geometry_validate(g, err, errlen);
#undef FAIL
}

static int parse_local_exit(struct rtci_model *m, json_t *jb, char *err, size_t errlen);
static int check_exit_tensors(struct rtci_model *m, char *err, size_t errlen);

static int parse_rtci(struct rtci_model *m, const char *text, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	int rc;
	if (!root || !json_is_object(root)) {
		seterr(err, errlen, "__metadata__.rtci: not a JSON object (%s, line %d)",
		       root ? "wrong type" : je.text, je.line);
		json_decref(root);
		return -RTCI_ERR_MODEL_FORMAT;
	}
	rc = parse_geometry(json_object_get(root, "geometry"), &m->geo, err, errlen);
	if (rc)
		goto out;
#define FAIL(code, ...) do { seterr(err, errlen, __VA_ARGS__); rc = -(code); goto out; } while (0)
	json_t *ch = json_object_get(root, "channels"), *lv = json_object_get(root, "levels");
	if (!json_is_array(ch) || json_array_size(ch) < 1 || json_array_size(ch) > RTCI_MODEL_MAX_CHANNELS)
		FAIL(RTCI_ERR_MODEL_SETUPS, "channels: expected 1..%d integers", RTCI_MODEL_MAX_CHANNELS);
	if (!json_is_array(lv) || json_array_size(lv) < 1 || json_array_size(lv) > RTCI_MODEL_MAX_LEVELS)
		FAIL(RTCI_ERR_MODEL_SETUPS, "levels: expected 1..%d integers", RTCI_MODEL_MAX_LEVELS);
	m->n_channels = (int)json_array_size(ch);
	m->n_levels = (int)json_array_size(lv);
	for (int i = 0; i < m->n_channels; i++) {
		if (!json_int_in(json_array_get(ch, i), 1, m->geo.stem_out, &m->channels[i]))
			FAIL(RTCI_ERR_MODEL_SETUPS, "channels[%d]: expected an integer in 1..%d", i,
			     m->geo.stem_out);
		for (int j = 0; j < i; j++)
			if (m->channels[j] == m->channels[i])
				FAIL(RTCI_ERR_MODEL_SETUPS, "channels[%d]: duplicate %d", i, m->channels[i]);
	}
	for (int i = 0; i < m->n_levels; i++) {
		if (!json_int_in(json_array_get(lv, i), 1, 65535, &m->levels[i]))
			FAIL(RTCI_ERR_MODEL_SETUPS, "levels[%d]: expected an integer in 1..65535", i);
		for (int j = 0; j < i; j++)
			if (m->levels[j] == m->levels[i])
				FAIL(RTCI_ERR_MODEL_SETUPS, "levels[%d]: duplicate %d", i, m->levels[i]);
	}
	if (!json_int_in(json_object_get(root, "bn_slots"), 1, RTCI_MODEL_MAX_BN_SLOTS, &m->bn_slots))
		FAIL(RTCI_ERR_MODEL_SETUPS, "bn_slots: expected an integer in 1..%d", RTCI_MODEL_MAX_BN_SLOTS);

	json_t *groups = json_object_get(root, "groups");
	if (groups && !json_is_null(groups) && !json_is_array(groups))
		FAIL(RTCI_ERR_MODEL_GROUPS, "groups: expected an array");
	m->n_setups = m->n_channels * m->n_levels;
	m->n_groups = json_is_array(groups) ? (int)json_array_size(groups) : 0;
	if (m->n_groups > m->n_setups)
		FAIL(RTCI_ERR_MODEL_GROUPS, "groups: %d groups for %d setups", m->n_groups, m->n_setups);

	json_t *setups = json_object_get(root, "setups");
	if (!json_is_array(setups) || json_array_size(setups) != (size_t)m->n_setups)
		FAIL(RTCI_ERR_MODEL_SETUPS, "setups: expected %d entries (channels x levels)", m->n_setups);
	m->setups = calloc((size_t)m->n_setups, sizeof(*m->setups));
	m->group_start = calloc((size_t)m->n_groups + 1, sizeof(int));
	m->group_ids = calloc((size_t)m->n_setups + 1, sizeof(int));
	if (!m->setups || !m->group_start || !m->group_ids)
		FAIL(ENOMEM, "out of memory");
	bool seen[RTCI_MODEL_MAX_CHANNELS * RTCI_MODEL_MAX_LEVELS] = { false };
	for (int i = 0; i < m->n_setups; i++) {
		json_t *s = json_array_get(setups, i);
		struct rtci_setup st = { .accuracy = NAN, .payload_bytes = NAN, .raw_bytes = NAN };
		if (!json_is_object(s) || !json_int_in(json_object_get(s, "id"), 0, m->n_setups - 1, &st.id))
			FAIL(RTCI_ERR_MODEL_SETUPS, "setups[%d].id: expected an integer in 0..%d", i,
			     m->n_setups - 1);
		if (seen[st.id])
			FAIL(RTCI_ERR_MODEL_SETUPS, "setups[%d].id: duplicate id %d", i, st.id);
		seen[st.id] = true;
		int want_c = m->channels[st.id / m->n_levels], want_L = m->levels[st.id % m->n_levels];
		if (!json_int_in(json_object_get(s, "c"), want_c, want_c, &st.c))
			FAIL(RTCI_ERR_MODEL_SETUPS, "setups[%d].c: setup %d must have c = %d", i, st.id, want_c);
		if (!json_int_in(json_object_get(s, "L"), want_L, want_L, &st.L))
			FAIL(RTCI_ERR_MODEL_SETUPS, "setups[%d].L: setup %d must have L = %d", i, st.id, want_L);
		if (!json_int_in(json_object_get(s, "bn_slot"), 0, m->bn_slots - 1, &st.bn_slot))
			FAIL(RTCI_ERR_MODEL_SETUPS, "setups[%d].bn_slot: expected an integer in 0..%d", i,
			     m->bn_slots - 1);
		json_t *gv = json_object_get(s, "group");
		st.group = -1;
		if (gv && !json_is_null(gv) && !json_int_in(gv, -1, m->n_groups - 1, &st.group))
			FAIL(RTCI_ERR_MODEL_SETUPS, "setups[%d].group: expected -1..%d", i, m->n_groups - 1);
		static const char *const opt[3] = { "accuracy", "payload_bytes", "raw_bytes" };
		double *dst[3] = { &st.accuracy, &st.payload_bytes, &st.raw_bytes };
		for (int k = 0; k < 3; k++) {
			json_t *ov = json_object_get(s, opt[k]);
			if (!ov || json_is_null(ov))
				continue;
			if (!json_num(ov, dst[k]) || *dst[k] < 0 || (k == 0 && *dst[k] > 1))
				FAIL(RTCI_ERR_MODEL_SETUPS, "setups[%d].%s: invalid value", i, opt[k]);
		}
		m->setups[st.id] = st;
	}
	/* Groups: each id valid, in at most one group, and consistent with the setups' group field. */
	int pos = 0;
	for (int gi = 0; gi < m->n_groups; gi++) {
		json_t *ga = json_array_get(groups, gi);
		m->group_start[gi] = pos;
		if (!json_is_array(ga))
			FAIL(RTCI_ERR_MODEL_GROUPS, "groups[%d]: expected an array of setup ids", gi);
		for (size_t j = 0; j < json_array_size(ga); j++) {
			int id;
			if (!json_int_in(json_array_get(ga, j), 0, m->n_setups - 1, &id))
				FAIL(RTCI_ERR_MODEL_GROUPS, "groups[%d][%zu]: not a setup id", gi, j);
			if (pos >= m->n_setups)
				FAIL(RTCI_ERR_MODEL_GROUPS, "groups[%d]: setup %d in more than one group", gi, id);
			for (int q = 0; q < pos; q++)
				if (m->group_ids[q] == id)
					FAIL(RTCI_ERR_MODEL_GROUPS, "groups[%d]: setup %d in more than one group",
					     gi, id);
			if (m->setups[id].group != gi)
				FAIL(RTCI_ERR_MODEL_GROUPS, "groups[%d]: setup %d says group %d", gi, id,
				     m->setups[id].group);
			m->group_ids[pos++] = id;
		}
	}
	m->group_start[m->n_groups] = pos;
	for (int i = 0; i < m->n_setups; i++) {
		int g = m->setups[i].group;
		if (g < 0)
			continue;
		bool found = false;
		for (int q = m->group_start[g]; q < m->group_start[g + 1]; q++)
			found |= m->group_ids[q] == i;
		if (!found)
			FAIL(RTCI_ERR_MODEL_GROUPS, "setups[%d].group: setup %d is not listed in groups[%d]",
			     i, i, g);
	}
	json_t *prov = json_object_get(root, "provenance");
	m->provenance = strdup(json_is_string(prov) ? json_string_value(prov) : "");
	if (!m->provenance)
		FAIL(ENOMEM, "out of memory");
	rc = parse_local_exit(m, json_object_get(root, "local_exit"), err, errlen);
#undef FAIL
out:
	json_decref(root);
	return rc;
}

static int cmp_range(const void *a, const void *b)
{
	const struct tensor *x = *(const struct tensor *const *)a, *y = *(const struct tensor *const *)b;
	return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static int parse_file(struct rtci_model *m, const uint8_t *base, size_t len, char *err, size_t errlen)
{
	int rc;
	json_t *root = NULL;
	struct tensor **order = NULL;
	struct rtci_tensor_spec *specs = NULL;
#define FAIL(code, ...) do { seterr(err, errlen, __VA_ARGS__); rc = -(code); goto out; } while (0)
	if (len < 8)
		FAIL(RTCI_ERR_MODEL_FORMAT, "file too short (%zu bytes)", len);
	uint64_t hlen;
	memcpy(&hlen, base, 8);
	if (hlen < 2 || hlen > RTCI_MODEL_MAX_HEADER || hlen > len - 8)
		FAIL(RTCI_ERR_MODEL_FORMAT, "header length %llu invalid for a %zu-byte file",
		     (unsigned long long)hlen, len);
	size_t data_off = 8 + (size_t)hlen, data_len = len - data_off;
	json_error_t je;
	root = json_loadb((const char *)base + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
	if (!root || !json_is_object(root))
		FAIL(RTCI_ERR_MODEL_FORMAT, "header: %s (line %d)", root ? "not an object" : je.text, je.line);
	json_t *meta = json_object_get(root, "__metadata__");
	if (!json_is_object(meta))
		FAIL(RTCI_ERR_MODEL_FORMAT, "__metadata__: missing or not an object");
	json_t *fmt = json_object_get(meta, "format"), *ver = json_object_get(meta, "format_version");
	if (!json_is_string(fmt) || strcmp(json_string_value(fmt), "rtci-swcnn") != 0)
		FAIL(RTCI_ERR_MODEL_FORMAT, "__metadata__.format: expected \"rtci-swcnn\"");
	if (!json_is_string(ver) || strcmp(json_string_value(ver), "1") != 0)
		FAIL(RTCI_ERR_MODEL_VERSION, "__metadata__.format_version: expected \"1\"");
	json_t *rt = json_object_get(meta, "rtci");
	if (!json_is_string(rt))
		FAIL(RTCI_ERR_MODEL_FORMAT, "__metadata__.rtci: missing or not a string");
	rc = parse_rtci(m, json_string_value(rt), err, errlen);
	if (rc == 0 && !(m->metadata = strdup(json_string_value(rt))))
		rc = -ENOMEM;
	if (rc)
		goto out;

	size_t nt = json_object_size(root) - 1;
	if (nt > MAX_TENSORS)
		FAIL(RTCI_ERR_MODEL_FORMAT, "header: %zu tensors (max %d)", nt, MAX_TENSORS);
	m->tensors = calloc(nt ? nt : 1, sizeof(*m->tensors));
	order = calloc(nt ? nt : 1, sizeof(*order));
	if (!m->tensors || !order)
		FAIL(ENOMEM, "out of memory");
	const char *key;
	json_t *val;
	json_object_foreach(root, key, val) {
		if (strcmp(key, "__metadata__") == 0)
			continue;
		struct tensor *t = &m->tensors[m->n_tensors];
		if (strlen(key) >= sizeof(t->name))
			FAIL(RTCI_ERR_MODEL_TENSOR, "tensor \"%.40s...\": name too long", key);
		snprintf(t->name, sizeof(t->name), "%s", key);
		json_t *dt = json_object_get(val, "dtype"), *sh = json_object_get(val, "shape");
		json_t *off = json_object_get(val, "data_offsets");
		if (!json_is_object(val) || !json_is_string(dt) || strcmp(json_string_value(dt), "F32") != 0)
			FAIL(RTCI_ERR_MODEL_TENSOR, "tensor %s: dtype must be \"F32\"", key);
		if (!json_is_array(sh) || json_array_size(sh) > 4)
			FAIL(RTCI_ERR_MODEL_TENSOR, "tensor %s: shape must be an array of at most 4 dims", key);
		t->ndim = (int)json_array_size(sh);
		uint64_t elems = 1;
		for (int d = 0; d < t->ndim; d++) {
			json_t *dv = json_array_get(sh, d);
			if (!json_is_integer(dv) || json_integer_value(dv) < 0 ||
			    json_integer_value(dv) > (1ll << 32))
				FAIL(RTCI_ERR_MODEL_TENSOR, "tensor %s: shape[%d] invalid", key, d);
			t->shape[d] = json_integer_value(dv);
			elems *= (uint64_t)t->shape[d];
			if (elems > len)
				FAIL(RTCI_ERR_MODEL_TENSOR, "tensor %s: larger than the file", key);
		}
		if (!json_is_array(off) || json_array_size(off) != 2 ||
		    !json_is_integer(json_array_get(off, 0)) || !json_is_integer(json_array_get(off, 1)))
			FAIL(RTCI_ERR_MODEL_TENSOR, "tensor %s: data_offsets must be [begin, end]", key);
		long long b = json_integer_value(json_array_get(off, 0));
		long long e = json_integer_value(json_array_get(off, 1));
		if (b < 0 || e < b || (unsigned long long)e > data_len)
			FAIL(RTCI_ERR_MODEL_TENSOR, "tensor %s: data_offsets [%lld, %lld) outside the %zu-byte "
			     "data section", key, b, e, data_len);
		if ((uint64_t)(e - b) != elems * 4)
			FAIL(RTCI_ERR_MODEL_TENSOR, "tensor %s: %lld bytes for %llu F32 elements", key, e - b,
			     (unsigned long long)elems);
		t->begin = (uint64_t)b;
		t->end = (uint64_t)e;
		order[m->n_tensors] = t;
		m->n_tensors++;
	}
	qsort(order, (size_t)m->n_tensors, sizeof(*order), cmp_range);
	for (int i = 1; i < m->n_tensors; i++)
		if (order[i]->begin < order[i - 1]->end && order[i]->begin != order[i]->end &&
		    order[i - 1]->begin != order[i - 1]->end)
			FAIL(RTCI_ERR_MODEL_TENSOR, "tensor %s overlaps tensor %s", order[i]->name,
			     order[i - 1]->name);

	/* Every tensor the geometry needs, with its exact shape. */
	int ns = rtci_geometry_tensors(&m->geo, m->bn_slots, NULL, 0);
	if (ns < 0 || ns > MAX_TENSORS)
		FAIL(RTCI_ERR_MODEL_GEOMETRY, "geometry: too many tensors");
	specs = calloc((size_t)ns, sizeof(*specs));
	if (!specs)
		FAIL(ENOMEM, "out of memory");
	rtci_geometry_tensors(&m->geo, m->bn_slots, specs, ns);
	for (int i = 0; i < ns; i++) {
		const struct tensor *t = NULL;
		for (int j = 0; j < m->n_tensors && !t; j++)
			if (strcmp(m->tensors[j].name, specs[i].name) == 0)
				t = &m->tensors[j];
		if (!t)
			FAIL(RTCI_ERR_MODEL_TENSOR, "tensor %s: missing", specs[i].name);
		bool ok = t->ndim == specs[i].ndim;
		for (int d = 0; ok && d < t->ndim; d++)
			ok = t->shape[d] == specs[i].shape[d];
		if (!ok)
			FAIL(RTCI_ERR_MODEL_TENSOR, "tensor %s: shape does not match the geometry "
			     "(expected %d dims [%lld, %lld, %lld, %lld])", specs[i].name, specs[i].ndim,
			     (long long)specs[i].shape[0], (long long)specs[i].shape[1],
			     (long long)specs[i].shape[2], (long long)specs[i].shape[3]);
	}

	/* Tensors are read as floats: copy the data section when it is not 4-byte aligned. */
	const uint8_t *data = base + data_off;
	if (((uintptr_t)data & 3) != 0) {
		m->owned = malloc(data_len ? data_len : 1);
		if (!m->owned)
			FAIL(ENOMEM, "out of memory");
		memcpy(m->owned, data, data_len);
		data = m->owned;
	}
	for (int i = 0; i < m->n_tensors; i++)
		m->tensors[i].data = (const float *)(const void *)(data + m->tensors[i].begin);
	for (int i = 0; i < ns; i++) {
		/* Non-finite weights would poison every logit; reject them at the boundary. */
		int64_t shp[4];
		int nd;
		const float *p = rtci_model_tensor(m, specs[i].name, &nd, shp);
		int64_t n = 1;
		for (int d = 0; d < nd; d++)
			n *= shp[d];
		for (int64_t k = 0; k < n; k++)
			if (!isfinite(p[k]))
				FAIL(RTCI_ERR_MODEL_TENSOR, "tensor %s: element %lld is not finite",
				     specs[i].name, (long long)k);
		if (strstr(specs[i].name, "running_var"))
			for (int64_t k = 0; k < n; k++)
				if (p[k] < 0)
					FAIL(RTCI_ERR_MODEL_TENSOR, "tensor %s: element %lld is negative",
					     specs[i].name, (long long)k);
	}
	rc = check_exit_tensors(m, err, errlen);
#undef FAIL
out:
	free(specs);
	free(order);
	json_decref(root);
	return rc;
}

static void model_free(struct rtci_model *m)
{
	if (!m)
		return;
	if (m->map)
		munmap(m->map, m->map_len);
	free(m->owned);
	free(m->setups);
	free(m->group_ids);
	free(m->group_start);
	free(m->provenance);
	free(m->metadata);
	free(m->tensors);
	free(m);
}

void rtci_model_destroy(struct rtci_model *m) { model_free(m); }

int rtci_model_load(const char *path, struct rtci_model **out, char *err, size_t errlen)
{
	char why[256] = "";
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		seterr(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 8) {
		close(fd);
		seterr(err, errlen, "%s: not a regular file of at least 8 bytes", path);
		return -RTCI_ERR_MODEL_FORMAT;
	}
	struct rtci_model *m = calloc(1, sizeof(*m));
	if (!m) {
		close(fd);
		return -ENOMEM;
	}
	m->map_len = (size_t)st.st_size;
	m->map = mmap(NULL, m->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m->map == MAP_FAILED) {
		int e = errno;
		m->map = NULL;
		model_free(m);
		seterr(err, errlen, "%s: mmap: %s", path, strerror(e));
		return -e;
	}
	m->file_len = m->map_len;
	int rc = parse_file(m, m->map, m->map_len, why, sizeof(why));
	if (rc) {
		seterr(err, errlen, "%s: %s", path, why);
		model_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

int rtci_model_load_buffer(const void *buf, size_t len, const char *name, struct rtci_model **out,
			   char *err, size_t errlen)
{
	char why[256] = "";
	*out = NULL;
	struct rtci_model *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	/* An 8-byte-aligned private copy, so tensors in it can be read as floats. */
	m->map_len = len;
	m->file_len = len;
	void *copy = malloc(len ? len : 1);
	if (!copy) {
		free(m);
		return -ENOMEM;
	}
	if (len)
		memcpy(copy, buf, len);
	int rc = parse_file(m, copy, len, why, sizeof(why));
	if (rc) {
		seterr(err, errlen, "%s: %s", name ? name : "(buffer)", why);
		free(copy);
		model_free(m);
		return rc;
	}
	if (m->owned) {   /* data already copied out of `copy` */
		free(copy);
	} else {
		m->owned = copy;
	}
	m->map_len = 0;
	*out = m;
	return 0;
}

const struct rtci_geometry *rtci_model_geometry(const struct rtci_model *m) { return &m->geo; }
int rtci_model_bn_slots(const struct rtci_model *m) { return m->bn_slots; }
int rtci_model_setup_count(const struct rtci_model *m) { return m->n_setups; }
size_t rtci_model_file_size(const struct rtci_model *m) { return m->file_len; }
const char *rtci_model_provenance(const struct rtci_model *m) { return m->provenance; }
const char *rtci_model_metadata(const struct rtci_model *m) { return m->metadata; }

/* The `int8.points` count of the metadata block, 0 when the block is absent, -1 when malformed. */
static int int8_points(const struct rtci_model *m)
{
	json_t *doc = m->metadata ? json_loads(m->metadata, 0, NULL) : NULL;
	json_t *blk = doc ? json_object_get(doc, "int8") : NULL;
	int pts = 0;
	if (blk && !json_int_in(json_object_get(blk, "points"), 1, 4096, &pts))
		pts = -1;
	json_decref(doc);
	return pts;
}

int rtci_model_int8(const struct rtci_model *m, const float **act_scale, int *points)
{
	int nd = 0;
	int64_t sh[4];
	const float *s = rtci_model_tensor(m, "int8.act_scale", &nd, sh);
	int pts = int8_points(m);
	*act_scale = NULL;
	*points = 0;
	if (!s && pts == 0)
		return -ENOENT;
	if (!s || pts <= 0 || nd != 2 || sh[0] != m->n_setups || sh[1] != pts)
		return -RTCI_ERR_MODEL_TENSOR;
	*act_scale = s;
	*points = pts;
	return 0;
}

const struct rtci_setup *rtci_model_setup(const struct rtci_model *m, int id)
{
	if (id < 0 || id >= m->n_setups)
		return NULL;
	return &m->setups[id];
}

int rtci_model_find_setup(const struct rtci_model *m, int c, int L)
{
	for (int i = 0; i < m->n_setups; i++)
		if (m->setups[i].c == c && m->setups[i].L == L)
			return i;
	return -ENOENT;
}

int rtci_model_group_count(const struct rtci_model *m) { return m->n_groups; }

int rtci_model_group(const struct rtci_model *m, int g, const int **ids)
{
	if (g < 0 || g >= m->n_groups)
		return -EINVAL;
	*ids = m->group_ids + m->group_start[g];
	return m->group_start[g + 1] - m->group_start[g];
}

int rtci_model_channels(const struct rtci_model *m, const int **list)
{
	*list = m->channels;
	return m->n_channels;
}

int rtci_model_levels(const struct rtci_model *m, const int **list)
{
	*list = m->levels;
	return m->n_levels;
}

const float *rtci_model_tensor(const struct rtci_model *m, const char *name, int *ndim,
			       int64_t shape[4])
{
	for (int i = 0; i < m->n_tensors; i++) {
		const struct tensor *t = &m->tensors[i];
		if (strcmp(t->name, name) != 0)
			continue;
		if (ndim)
			*ndim = t->ndim;
		if (shape)
			for (int d = 0; d < 4; d++)
				shape[d] = d < t->ndim ? t->shape[d] : 0;
		return t->data;
	}
	return NULL;
}

/* ---------------------------------------------------------------- local exit */

/* `local_exit`: {"accuracy": top-1 in [0, 1], "ms": measured time > 0}. Absent: no exit. */
static int parse_local_exit(struct rtci_model *m, json_t *jb, char *err, size_t errlen)
{
	if (!jb)
		return 0;
	struct rtci_local_exit *x = &m->exit;
	if (!json_is_object(jb) || !json_num(json_object_get(jb, "accuracy"), &x->accuracy) ||
	    !json_num(json_object_get(jb, "ms"), &x->ms) || x->accuracy < 0 || x->accuracy > 1 ||
	    x->ms <= 0 || x->ms > 1e6) {
		seterr(err, errlen, "local_exit: expected {\"accuracy\": 0..1, \"ms\": > 0}");
		return -RTCI_ERR_MODEL_FORMAT;
	}
	int levels = -1;
	x->input_setup = -1;
	for (int i = 0; i < m->n_setups; i++)
		if (m->setups[i].c == m->geo.stem_out && m->setups[i].L > levels) {
			levels = m->setups[i].L;
			x->input_setup = i;
		}
	if (x->input_setup < 0) {
		seterr(err, errlen, "local_exit: no setup keeps all %d channels for the exit's input",
		       m->geo.stem_out);
		return -RTCI_ERR_MODEL_SETUPS;
	}
	m->has_exit = true;
	return 0;
}

/* The `exit.*` tensors of docs/model-format.md: present, shaped as the width of exit.conv1 says,
 * finite, variances not negative. */
static int check_exit_tensors(struct rtci_model *m, char *err, size_t errlen)
{
	if (!m->has_exit)
		return 0;
	int nd;
	int64_t sh[4];
	if (!rtci_model_tensor(m, "exit.conv1.weight", &nd, sh) || nd != 4 || sh[0] < 1 ||
	    sh[0] > RTCI_EXIT_MAX_WIDTH) {
		seterr(err, errlen, "tensor exit.conv1.weight: missing or not [1..%d, %d, 3, 3]",
		       RTCI_EXIT_MAX_WIDTH, m->geo.stem_out);
		return -RTCI_ERR_MODEL_TENSOR;
	}
	int w = (int)sh[0], c = m->geo.stem_out, k = m->geo.classes;
	m->exit.width = w;
	const struct { const char *name; int nd; int64_t s[4]; } want[] = {
		{ "exit.conv1.weight", 4, { w, c, 3, 3 } }, { "exit.bn1.weight", 1, { w } },
		{ "exit.bn1.bias", 1, { w } }, { "exit.bn1.running_mean", 1, { w } },
		{ "exit.bn1.running_var", 1, { w } }, { "exit.conv2.weight", 4, { w, w, 3, 3 } },
		{ "exit.bn2.weight", 1, { w } }, { "exit.bn2.bias", 1, { w } },
		{ "exit.bn2.running_mean", 1, { w } }, { "exit.bn2.running_var", 1, { w } },
		{ "exit.fc.weight", 2, { k, w } }, { "exit.fc.bias", 1, { k } },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const float *p = rtci_model_tensor(m, want[i].name, &nd, sh);
		bool ok = p && nd == want[i].nd;
		int64_t n = 1;
		for (int d = 0; ok && d < nd; d++) {
			ok = sh[d] == want[i].s[d];
			n *= sh[d];
		}
		if (!ok) {
			seterr(err, errlen, "tensor %s: missing or not shaped for an exit of width %d",
			       want[i].name, w);
			return -RTCI_ERR_MODEL_TENSOR;
		}
		bool var = strstr(want[i].name, "running_var") != NULL;
		for (int64_t j = 0; j < n; j++)
			if (!isfinite(p[j]) || (var && p[j] < 0)) {
				seterr(err, errlen, "tensor %s: element %lld is %s", want[i].name,
				       (long long)j, var && isfinite(p[j]) ? "negative" : "not finite");
				return -RTCI_ERR_MODEL_TENSOR;
			}
	}
	return 0;
}

const struct rtci_local_exit *rtci_model_local_exit(const struct rtci_model *m)
{
	return m->has_exit ? &m->exit : NULL;
}

/* ---------------------------------------------------------------- synthesis */

struct rng { uint64_t s; };

static uint64_t rng_next(struct rng *r)
{
	return rtci_splitmix64(&r->s);
}

static double rng_uniform(struct rng *r) { return ((double)(rng_next(r) >> 11) + 0.5) / 9007199254740992.0; }

static double rng_normal(struct rng *r)
{
	double u = rng_uniform(r), v = rng_uniform(r);
	return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static const int default_channels[] = { 1, 2, 3, 4, 5, 6, 7, 8, 16, 32 };
static const int default_levels[] = { 65535, 255, 15, 3, 1 };

static void fill_tensor(const struct rtci_tensor_spec *s, float *p, struct rng *r)
{
	int64_t n = 1;
	for (int d = 0; d < s->ndim; d++)
		n *= s->shape[d];
	const char *name = s->name;
	size_t len = strlen(name);
#define ENDS(x) (len >= strlen(x) && strcmp(name + len - strlen(x), x) == 0)
	if (ENDS(".running_mean")) {
		for (int64_t i = 0; i < n; i++)
			p[i] = (float)(0.1 * rng_normal(r));
	} else if (ENDS(".running_var")) {
		/* around 1 with a per-slot factor, so slots differ but stay plausible */
		int64_t slots = s->shape[0], c = s->shape[1];
		for (int64_t k = 0; k < slots; k++) {
			double f = 0.8 + 0.4 * rng_uniform(r);
			for (int64_t i = 0; i < c; i++)
				p[k * c + i] = (float)(f * (0.75 + 0.5 * rng_uniform(r)));
		}
	} else if (strncmp(name, "classifier.", 11) == 0) {
		double sd = ENDS(".bias") ? 0.01 : 1.0 / sqrt((double)s->shape[1]);
		for (int64_t i = 0; i < n; i++)
			p[i] = (float)(sd * rng_normal(r));
	} else if (ENDS(".weight") && s->ndim == 1) {   /* BN gamma */
		/* project BNs (no activation after them) get smaller gammas so residual sums stay tame */
		double g = strstr(name, ".bn3.") || strstr(name, "block1.bn2.") ? 0.5 : 1.0;
		for (int64_t i = 0; i < n; i++)
			p[i] = (float)(g * (1.0 + 0.1 * rng_normal(r)));
	} else if (ENDS(".bias") && s->ndim == 1) {     /* BN beta */
		for (int64_t i = 0; i < n; i++)
			p[i] = (float)(0.1 + 0.05 * rng_normal(r));
	} else {   /* convolution: He initialisation over the fan-in */
		double fan_in = (double)(s->shape[1] * s->shape[2] * s->shape[3]);
		double sd = sqrt(2.0 / fan_in);
		for (int64_t i = 0; i < n; i++)
			p[i] = (float)(sd * rng_normal(r));
	}
#undef ENDS
}

static json_t *geometry_json(const struct rtci_geometry *g)
{
	json_t *mean = json_array(), *std = json_array(), *rows = json_array();
	for (int i = 0; i < g->in_c; i++) {
		json_array_append_new(mean, json_real(g->input_mean[i]));
		json_array_append_new(std, json_real(g->input_std[i]));
	}
	for (int r = 0; r < g->n_rows; r++)
		json_array_append_new(rows, json_pack("[iiii]", g->rows[r].t, g->rows[r].c, g->rows[r].n,
						      g->rows[r].s));
	return json_pack("{s:s, s:[iii], s:o, s:o, s:i, s:{s:i, s:i, s:i, s:i}, s:{s:i}, s:o, s:i, s:f}",
			 "name", g->name, "input", g->in_c, g->in_h, g->in_w, "input_mean", mean,
			 "input_std", std, "classes", g->classes, "stem", "out", g->stem_out, "kernel",
			 g->stem_kernel, "stride", g->stem_stride, "pad", g->stem_pad, "block1", "out",
			 g->block1_out, "blocks", rows, "last_channels", g->last_channels, "bn_eps",
			 (double)g->bn_eps);
}

int rtci_model_synth(const struct rtci_geometry *g, uint64_t seed, const char *path, char *err,
		     size_t errlen)
{
	return rtci_model_synth_space(g, seed, default_channels,
				      (int)(sizeof(default_channels) / sizeof(default_channels[0])),
				      default_levels, (int)(sizeof(default_levels) / sizeof(default_levels[0])),
				      path, err, errlen);
}

int rtci_model_synth_space(const struct rtci_geometry *g, uint64_t seed, const int *channels, int nc,
			   const int *levels, int nl, const char *path, char *err, size_t errlen)
{
	int rc = rtci_geometry_validate(g, err, errlen);
	if (rc)
		return rc;
	if (nc < 1 || nc > RTCI_MODEL_MAX_CHANNELS || nl < 1 || nl > RTCI_MODEL_MAX_LEVELS) {
		seterr(err, errlen, "setup space: 1..%d channel counts and 1..%d levels",
		       RTCI_MODEL_MAX_CHANNELS, RTCI_MODEL_MAX_LEVELS);
		return -RTCI_ERR_MODEL_SETUPS;
	}
	for (int i = 0; i < nc; i++)
		if (channels[i] < 1 || channels[i] > g->stem_out) {
			seterr(err, errlen, "channels[%d] = %d outside 1..stem.out (%d)", i, channels[i], g->stem_out);
			return -RTCI_ERR_MODEL_SETUPS;
		}
	for (int i = 0; i < nl; i++)
		if (levels[i] < 1 || levels[i] > 65535) {
			seterr(err, errlen, "levels[%d] = %d outside 1..65535", i, levels[i]);
			return -RTCI_ERR_MODEL_SETUPS;
		}
	int slots = nc * nl;
	int ns = rtci_geometry_tensors(g, slots, NULL, 0);
	struct rtci_tensor_spec *specs = calloc((size_t)ns, sizeof(*specs));
	int64_t *offs = calloc((size_t)ns + 1, sizeof(int64_t));
	json_t *hdr = NULL, *rt = NULL;
	char *rt_text = NULL, *hdr_text = NULL;
	float *data = NULL;
	FILE *f = NULL;
	if (!specs || !offs) {
		rc = -ENOMEM;
		goto out;
	}
	rtci_geometry_tensors(g, slots, specs, ns);
	for (int i = 0; i < ns; i++) {
		int64_t n = 1;
		for (int d = 0; d < specs[i].ndim; d++)
			n *= specs[i].shape[d];
		offs[i + 1] = offs[i] + 4 * n;
	}

	/* metadata */
	int h, w;
	rtci_geometry_partition_size(g, &h, &w);
	json_t *setups = json_array(), *groups = json_array(), *chj = json_array(), *lvj = json_array();
	for (int i = 0; i < nc; i++)
		json_array_append_new(chj, json_integer(channels[i]));
	for (int i = 0; i < nl; i++)
		json_array_append_new(lvj, json_integer(levels[i]));
	/* three groups by channel count: 1-4, 5-8, 16-32 */
	json_t *ga[3] = { json_array(), json_array(), json_array() };
	for (int id = 0; id < slots; id++) {
		int c = channels[id / nl], L = levels[id % nl];
		int bits = 0;
		while ((1l << bits) < (long)L + 1)
			bits++;
		int grp = c <= 4 ? 0 : c <= 8 ? 1 : 2;
		double raw = (double)(((int64_t)c * h * w * bits + 7) / 8 + 8 * c);
		json_array_append_new(ga[grp], json_integer(id));
		json_array_append_new(setups, json_pack("{s:i, s:i, s:i, s:i, s:i, s:n, s:n, s:f}", "id", id,
							"c", c, "L", L, "bn_slot", id, "group", grp,
							"accuracy", "payload_bytes", "raw_bytes", raw));
	}
	for (int k = 0; k < 3; k++)
		json_array_append_new(groups, ga[k]);
	char prov[128];
	snprintf(prov, sizeof(prov), "rtci-model synth --geometry %s --seed %llu (random weights)",
		 g->name, (unsigned long long)seed);
	rt = json_pack("{s:o, s:o, s:o, s:i, s:o, s:o, s:s}", "geometry", geometry_json(g), "channels", chj,
		       "levels", lvj, "bn_slots", slots, "setups", setups, "groups", groups,
		       "provenance", prov);
	rt_text = rt ? json_dumps(rt, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	hdr = json_object();
	if (!rt_text || !hdr) {
		rc = -ENOMEM;
		goto out;
	}
	json_object_set_new(hdr, "__metadata__", json_pack("{s:s, s:s, s:s}", "format", "rtci-swcnn",
							    "format_version", "1", "rtci", rt_text));
	for (int i = 0; i < ns; i++) {
		json_t *shape = json_array();
		for (int d = 0; d < specs[i].ndim; d++)
			json_array_append_new(shape, json_integer(specs[i].shape[d]));
		json_object_set_new(hdr, specs[i].name, json_pack("{s:s, s:o, s:[II]}", "dtype", "F32",
								   "shape", shape, "data_offsets",
								   (json_int_t)offs[i], (json_int_t)offs[i + 1]));
	}
	hdr_text = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!hdr_text) {
		rc = -ENOMEM;
		goto out;
	}
	size_t hl = strlen(hdr_text), padded = (hl + 7) & ~(size_t)7;   /* keep tensors 8-aligned */
	data = malloc((size_t)offs[ns] ? (size_t)offs[ns] : 1);
	if (!data) {
		rc = -ENOMEM;
		goto out;
	}
	struct rng r = { seed * 0x2545f4914f6cdd1dull + 1 };
	for (int i = 0; i < ns; i++)
		fill_tensor(&specs[i], data + offs[i] / 4, &r);
	f = fopen(path, "wb");
	if (!f) {
		rc = -errno;
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	uint64_t le = padded;
	bool ok = fwrite(&le, 8, 1, f) == 1 && fwrite(hdr_text, 1, hl, f) == hl;
	for (size_t i = hl; ok && i < padded; i++)
		ok = fputc(' ', f) != EOF;
	ok = ok && fwrite(data, 1, (size_t)offs[ns], f) == (size_t)offs[ns];
	if (fclose(f) != 0)
		ok = false;
	f = NULL;
	if (!ok) {
		rc = -EIO;
		seterr(err, errlen, "%s: write failed", path);
	}
out:
	if (f)
		fclose(f);
	free(data);
	free(hdr_text);
	free(rt_text);
	json_decref(hdr);
	json_decref(rt);
	free(offs);
	free(specs);
	return rc;
}
