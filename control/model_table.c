#include "control/model_table.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "inference/codec.h"

/* Setups with the codec's bound as payload and the accuracy proxy of the header comment. */
static int estimate_table(const struct rtci_model *m, struct rtci_ctl_table *t, char *err,
			  size_t err_len)
{
	memset(t, 0, sizeof(*t));
	const struct rtci_geometry *g = rtci_model_geometry(m);
	int n = rtci_model_setup_count(m), h, w;
	rtci_geometry_partition_size(g, &h, &w);
	if (n < 1 || n > RTCI_CTL_MAX_SETUPS) {
		snprintf(err, err_len, "model has %d setups; the controller takes 1..%d", n,
			 RTCI_CTL_MAX_SETUPS);
		return -RTCI_ERR_CTL_TABLE;
	}
	snprintf(t->name, sizeof(t->name), "%s", g->name);
	t->n = (unsigned)n;
	for (int i = 0; i < n; i++) {
		const struct rtci_setup *s = rtci_model_setup(m, i);
		int bits = rtci_codec_bits((uint32_t)s->L);
		ssize_t raw = rtci_codec_raw_size((uint32_t)s->c, (uint32_t)s->L, (uint32_t)h,
						  (uint32_t)w);
		if (bits < 0 || raw < 0) {
			snprintf(err, err_len, "setup %d (c %d, L %d) is not a codec setup", i, s->c, s->L);
			return -RTCI_ERR_CTL_TABLE;
		}
		t->s[i].c = (uint16_t)s->c;
		t->s[i].bits = (uint16_t)bits;
		t->s[i].L = (uint32_t)s->L;
		t->s[i].bytes = isfinite(s->payload_bytes) && s->payload_bytes > 0
					? s->payload_bytes
					: (double)raw + RTCI_CODEC_HEADER_SIZE;
		t->s[i].accuracy = isfinite(s->accuracy)
					   ? s->accuracy
					   : 0.5 + 0.49 * sqrt((double)s->c * bits / (16.0 * g->stem_out));
	}
	t->clio.L = 255;
	const struct rtci_local_exit *le = rtci_model_local_exit(m);
	if (le) {
		t->local.present = true;
		t->local.accuracy = le->accuracy;
		t->local.ms = le->ms;
	}
	return 0;
}

int rtci_ctl_table_from_model(const struct rtci_model *m, bool estimate,
			      struct rtci_ctl_table *out, char *err, size_t err_len)
{
	const char *doc = rtci_model_metadata(m);
	if (!doc)
		return -EINVAL;
	int rc = rtci_ctl_table_parse(doc, strlen(doc), rtci_model_geometry(m)->name, out, err,
				      err_len);
	if (rc == 0 || !estimate)
		return rc;
	return estimate_table(m, out, err, err_len);
}

int rtci_ctl_table_load_any(const char *path, struct rtci_ctl_table *out, char *err,
			    size_t err_len)
{
	unsigned char head[9];
	FILE *f = fopen(path, "rb");
	size_t got = f ? fread(head, 1, sizeof(head), f) : 0;
	if (f)
		fclose(f);
	if (!rtci_ctl_looks_like_model(head, got))
		return rtci_ctl_table_load_file(path, out, err, err_len);
	struct rtci_model *m;
	int rc = rtci_model_load(path, &m, err, err_len);
	if (rc)
		return rc;
	rc = rtci_ctl_table_from_model(m, false, out, err, err_len);
	rtci_model_destroy(m);
	return rc;
}
