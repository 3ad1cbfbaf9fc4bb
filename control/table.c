/* Setup tables: a small JSON file (docs/control.md) or the setups of a model file's metadata
 * (docs/model-format.md). */
#include "control/table.h"
#include "control/ctl_io.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_MAX_FILE (1u << 20)

static unsigned bits_of(uint32_t L)
{
	unsigned b = 0;
	while (b < 32 && ((uint64_t)1 << b) < (uint64_t)L + 1)
		b++;
	return b;
}

static int get_number(json_t *o, const char *key, double *v)
{
	json_t *x = json_object_get(o, key);
	if (!x || !json_is_number(x))
		return -1;
	*v = json_number_value(x);
	return isfinite(*v) ? 0 : -1;
}

static int parse_setups(json_t *arr, const char *name, struct rtci_ctl_table *t, char *err,
			size_t err_len)
{
	if (!json_is_array(arr) || json_array_size(arr) == 0) {
		rtci_ctl_set_err(err, err_len, "%s: \"setups\" must be a non-empty array", name);
		return -RTCI_ERR_CTL_TABLE;
	}
	size_t n = json_array_size(arr);
	if (n > RTCI_CTL_MAX_SETUPS) {
		rtci_ctl_set_err(err, err_len, "%s: %zu setups, at most %d", name, n, RTCI_CTL_MAX_SETUPS);
		return -RTCI_ERR_CTL_TABLE;
	}
	uint64_t seen = 0;
	t->n = (unsigned)n;
	for (size_t i = 0; i < n; i++) {
		json_t *s = json_array_get(arr, i);
		double id = (double)i, c, L, acc, bytes;
		if (!json_is_object(s)) {
			rtci_ctl_set_err(err, err_len, "%s: setups[%zu] is not an object", name, i);
			return -RTCI_ERR_CTL_TABLE;
		}
		if (json_object_get(s, "id") && get_number(s, "id", &id)) {
			rtci_ctl_set_err(err, err_len, "%s: setups[%zu].id is not a number", name, i);
			return -RTCI_ERR_CTL_TABLE;
		}
		if (id < 0 || id >= (double)n || id != floor(id) || (seen >> (unsigned)id & 1)) {
			rtci_ctl_set_err(err, err_len, "%s: setups[%zu].id %.0f out of range or repeated", name, i,
				id);
			return -RTCI_ERR_CTL_TABLE;
		}
		seen |= (uint64_t)1 << (unsigned)id;
		if (get_number(s, "c", &c) || c < 1 || c > 4096 || c != floor(c)) {
			rtci_ctl_set_err(err, err_len, "%s: setups[%zu].c must be an integer 1..4096", name, i);
			return -RTCI_ERR_CTL_TABLE;
		}
		if (get_number(s, "L", &L) || L < 1 || L > 4294967295.0 || L != floor(L)) {
			rtci_ctl_set_err(err, err_len, "%s: setups[%zu].L must be an integer >= 1", name, i);
			return -RTCI_ERR_CTL_TABLE;
		}
		if (get_number(s, "accuracy", &acc) || acc < 0 || acc > 1) {
			rtci_ctl_set_err(err, err_len, "%s: setups[%zu].accuracy missing or not in [0, 1]", name,
				i);
			return -RTCI_ERR_CTL_TABLE;
		}
		if (get_number(s, "payload_bytes", &bytes) || !(bytes > 0) || bytes > 1e9) {
			rtci_ctl_set_err(err, err_len, "%s: setups[%zu].payload_bytes missing or not in (0, 1e9]",
				name, i);
			return -RTCI_ERR_CTL_TABLE;
		}
		struct rtci_ctl_setup *d = &t->s[(unsigned)id];
		d->c = (uint16_t)c;
		d->L = (uint32_t)L;
		d->bits = (uint16_t)bits_of(d->L);
		d->accuracy = acc;
		d->bytes = bytes;
	}
	return 0;
}

bool rtci_ctl_looks_like_model(const void *buf, size_t len)
{
	/* a u64 LE length below 16 MiB (bytes 3..7 zero, which JSON text never holds), then '{' */
	const unsigned char *b = buf;
	return len >= 9 && b[3] == 0 && b[4] == 0 && b[5] == 0 && b[6] == 0 && b[7] == 0 &&
	       b[8] == '{';
}

static void defaults(struct rtci_ctl_table *t)
{
	double best = 0;
	for (unsigned i = 0; i < t->n; i++)
		if (t->s[i].accuracy > best)
			best = t->s[i].accuracy;
	t->spinn.coverage = 0.35;
	t->spinn.exit_accuracy = best;
	t->spinn.rest_factor = 0.95;
	t->spinn.exit_ms = 3;
	t->spinn.npoints = 1;
	t->spinn.points[0] = (struct rtci_ctl_spinn_point){ .coverage = t->spinn.coverage,
		.exit_accuracy = best, .rest_factor = t->spinn.rest_factor };
	/* CLIO's default level: 8 bit if the table has it, else the first setup's */
	t->clio.L = 255;
	int has = 0;
	for (unsigned i = 0; i < t->n; i++)
		has |= t->s[i].L == 255;
	if (!has && t->n)
		t->clio.L = t->s[0].L;
}

/* One SPINN point: {threshold, coverage, exit_accuracy, rest_factor}; the old flat block has
 * no threshold (0). */
static int spinn_point(json_t *o, struct rtci_ctl_spinn_point *pt)
{
	pt->threshold = 0;
	if (!json_is_object(o) || (json_object_get(o, "threshold") &&
				   get_number(o, "threshold", &pt->threshold)) ||
	    get_number(o, "coverage", &pt->coverage) ||
	    get_number(o, "exit_accuracy", &pt->exit_accuracy) ||
	    get_number(o, "rest_factor", &pt->rest_factor))
		return -1;
	return pt->coverage < 0 || pt->coverage > 1 || pt->exit_accuracy < 0 ||
			       pt->exit_accuracy > 1 || pt->rest_factor < 0 || pt->rest_factor > 1.5
		       ? -1
		       : 0;
}

/* "spinn": {exit_ms, points: [...] (thresholds ascending), threshold} or the flat one-point form
 * {coverage, exit_accuracy, rest_factor, exit_ms}. */
static int parse_spinn(json_t *sp, const char *name, struct rtci_ctl_table *t, char *err,
		       size_t err_len)
{
	struct rtci_ctl_spinn v = t->spinn;
	json_t *pts = json_object_get(sp, "points");
	int bad = !json_is_object(sp) || get_number(sp, "exit_ms", &v.exit_ms) || v.exit_ms < 0 ||
		  v.exit_ms > 1e4;
	if (!bad && pts) {
		size_t n = json_array_size(pts);
		bad = !json_is_array(pts) || n < 1 || n > RTCI_CTL_SPINN_MAX_POINTS ||
		      get_number(sp, "threshold", &v.threshold);
		for (size_t i = 0; !bad && i < n; i++)
			bad = spinn_point(json_array_get(pts, i), &v.points[i]) ||
			      (i && !(v.points[i].threshold > v.points[i - 1].threshold));
		v.npoints = (unsigned)n;
	} else if (!bad) {
		bad = spinn_point(sp, &v.points[0]);
		v.npoints = 1;
		v.threshold = v.points[0].threshold;
	}
	if (bad) {
		rtci_ctl_set_err(err, err_len,
			"%s: \"spinn\" needs exit_ms >= 0 and either points (1..%d, thresholds "
			"ascending, each coverage, exit_accuracy in [0,1], rest_factor in [0,1.5]) "
			"with a threshold, or coverage, exit_accuracy, rest_factor",
			name, RTCI_CTL_SPINN_MAX_POINTS);
		return -RTCI_ERR_CTL_TABLE;
	}
	v.measured = true;
	t->spinn = v;
	if (rtci_ctl_table_spinn_select(t, v.threshold)) {
		rtci_ctl_set_err(err, err_len, "%s: spinn.threshold %g is none of its points", name,
			v.threshold);
		return -RTCI_ERR_CTL_TABLE;
	}
	return 0;
}

/* Payload of CLIO's c-channel prefix: the table's setup (c, L), else from the geometry's
 * partition [C, H, W] as the shipped tables count it (c·H·W·bits/8 + 8·c). */
static int clio_bytes(json_t *root, const struct rtci_ctl_table *t, unsigned c, double *bytes)
{
	int id = rtci_ctl_table_find(t, c, t->clio.L);
	if (id >= 0) {
		*bytes = t->s[id].bytes;
		return 0;
	}
	json_t *geo = json_object_get(root, "geometry");
	json_t *part = geo ? json_object_get(geo, "partition") : NULL;
	if (json_array_size(part) != 3)
		return -1;
	double hw = 1;
	for (size_t k = 1; k < 3; k++) {
		json_t *x = json_array_get(part, k);
		if (!json_is_integer(x) || json_integer_value(x) < 1 || json_integer_value(x) > 65535)
			return -1;
		hw *= (double)json_integer_value(x);
	}
	*bytes = ceil(c * hw * bits_of(t->clio.L) / 8.0) + 8.0 * c;
	return 0;
}

/* "clio": {L, widths: [{c, accuracy, bytes?}, ...] (c ascending)} or the old {L}. */
static int parse_clio(json_t *root, json_t *cl, const char *name, struct rtci_ctl_table *t,
		      char *err, size_t err_len)
{
	double L;
	if (!json_is_object(cl) || get_number(cl, "L", &L) || L < 1 || L != floor(L) ||
	    L > 4294967295.0) {
		rtci_ctl_set_err(err, err_len, "%s: \"clio\" needs an integer L", name);
		return -RTCI_ERR_CTL_TABLE;
	}
	t->clio.L = (uint32_t)L;
	json_t *ws = json_object_get(cl, "widths");
	if (!ws) {
		/* without measured widths CLIO credits the table's setups at L: one must exist */
		for (unsigned i = 0; i < t->n; i++)
			if (t->s[i].L == t->clio.L)
				return 0;
		rtci_ctl_set_err(err, err_len, "%s: clio.L %u matches no setup", name, t->clio.L);
		return -RTCI_ERR_CTL_TABLE;
	}
	size_t n = json_array_size(ws);
	int bad = !json_is_array(ws) || n < 1 || n > RTCI_CTL_CLIO_MAX_WIDTHS;
	for (size_t i = 0; !bad && i < n; i++) {
		json_t *w = json_array_get(ws, i);
		double c, acc, bytes;
		bad = !json_is_object(w) || get_number(w, "c", &c) || c < 1 || c > 4096 ||
		      c != floor(c) || (i && !(c > t->clio.widths[i - 1].c)) ||
		      get_number(w, "accuracy", &acc) || acc < 0 || acc > 1;
		if (!bad)
			bad = json_object_get(w, "bytes")
				      ? get_number(w, "bytes", &bytes) || !(bytes > 0) || bytes > 1e9
				      : clio_bytes(root, t, (unsigned)c, &bytes);
		if (!bad) {
			t->clio.widths[i].c = (uint16_t)c;
			t->clio.widths[i].accuracy = acc;
			t->clio.widths[i].bytes = bytes;
		}
	}
	if (bad) {
		rtci_ctl_set_err(err, err_len,
			"%s: \"clio\".widths needs 1..%d entries, c ascending in 1..4096, accuracy in "
			"[0,1], bytes > 0 (or a setup (c, L) or geometry.partition to count them)",
			name, RTCI_CTL_CLIO_MAX_WIDTHS);
		return -RTCI_ERR_CTL_TABLE;
	}
	t->clio.nwidths = (unsigned)n;
	return 0;
}

/* The optional blocks of a table JSON or a model file's rtci document: "spinn", "clio",
 * "local_exit" (docs/control.md §5, docs/model-format.md). Both routes call this. */
static int parse_extras(json_t *root, const char *name, struct rtci_ctl_table *t, char *err,
			size_t err_len)
{
	json_t *sp = json_object_get(root, "spinn");
	int rc = sp ? parse_spinn(sp, name, t, err, err_len) : 0;
	json_t *cl = json_object_get(root, "clio");
	if (!rc && cl)
		rc = parse_clio(root, cl, name, t, err, err_len);
	json_t *le = json_object_get(root, "local_exit");
	if (!rc && le) {
		struct rtci_ctl_local_exit v = { .present = true };
		if (!json_is_object(le) || get_number(le, "accuracy", &v.accuracy) ||
		    get_number(le, "ms", &v.ms) || v.accuracy < 0 || v.accuracy > 1 || v.ms < 0 ||
		    v.ms > 1e4) {
			rtci_ctl_set_err(err, err_len,
				"%s: \"local_exit\" needs accuracy in [0,1] and ms in [0, 1e4]", name);
			return -RTCI_ERR_CTL_TABLE;
		}
		t->local = v;
	}
	return rc;
}

static int from_root(json_t *root, const char *name, struct rtci_ctl_table *t, char *err,
		     size_t err_len)
{
	if (!json_is_object(root)) {
		rtci_ctl_set_err(err, err_len, "%s: top level is not an object", name);
		return -RTCI_ERR_CTL_TABLE;
	}
	int rc = parse_setups(json_object_get(root, "setups"), name, t, err, err_len);
	if (rc)
		return rc;
	defaults(t);
	return parse_extras(root, name, t, err, err_len);
}

int rtci_ctl_table_parse(const void *buf, size_t len, const char *name, struct rtci_ctl_table *out,
			 char *err, size_t err_len)
{
	if (!buf || !out)
		return -EINVAL;
	if (!name)
		name = "table";
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", name);
	if (rtci_ctl_looks_like_model(buf, len)) {
		rtci_ctl_set_err(err, err_len, "%s: a model file: its table is read through the model "
				 "(rtci_ctl_table_load_any, control/model_table.h)", name);
		return -RTCI_ERR_CTL_TABLE;
	}
	if (len > TABLE_MAX_FILE) {
		rtci_ctl_set_err(err, err_len, "%s: larger than %u bytes", name, TABLE_MAX_FILE);
		return -RTCI_ERR_CTL_TOO_LARGE;
	}
	json_error_t je;
	json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		rtci_ctl_set_err(err, err_len, "%s:%d: %s", name, je.line, je.text);
		return -RTCI_ERR_CTL_TABLE;
	}
	/* a table's own name, else (a model's metadata document) its geometry's */
	json_t *nm = json_object_get(root, "name");
	json_t *geo = json_object_get(root, "geometry");
	if (!json_is_string(nm) && json_is_object(geo))
		nm = json_object_get(geo, "name");
	if (json_is_string(nm))
		snprintf(out->name, sizeof(out->name), "%s", json_string_value(nm));
	int rc = from_root(root, name, out, err, err_len);
	json_decref(root);
	return rc;
}

int rtci_ctl_table_load_file(const char *path, struct rtci_ctl_table *out, char *err,
			     size_t err_len)
{
	int rc;
	FILE *f = rtci_ctl_open_file(path, &rc, err, err_len);
	if (!f)
		return rc;
	unsigned char head[9];
	size_t got = fread(head, 1, sizeof(head), f);
	fclose(f);
	if (rtci_ctl_looks_like_model(head, got))
		return rtci_ctl_table_parse(head, got, path, out, err, err_len); /* says why not */
	char *buf = NULL;
	size_t len = 0;
	if ((rc = rtci_ctl_read_file(path, TABLE_MAX_FILE, &buf, &len, err, err_len)))
		return rc;
	rc = rtci_ctl_table_parse(buf, len, path, out, err, err_len);
	free(buf);
	return rc;
}

int rtci_ctl_table_find(const struct rtci_ctl_table *t, unsigned c, uint32_t L)
{
	for (unsigned i = 0; i < t->n; i++)
		if (t->s[i].c == c && t->s[i].L == L)
			return (int)i;
	return -ENOENT;
}

int rtci_ctl_table_spinn_select(struct rtci_ctl_table *t, double threshold)
{
	for (unsigned i = 0; i < t->spinn.npoints; i++) {
		const struct rtci_ctl_spinn_point *pt = &t->spinn.points[i];
		if (fabs(pt->threshold - threshold) <= 1e-6) {
			t->spinn.threshold = pt->threshold;
			t->spinn.coverage = pt->coverage;
			t->spinn.exit_accuracy = pt->exit_accuracy;
			t->spinn.rest_factor = pt->rest_factor;
			return 0;
		}
	}
	return -ENOENT;
}
