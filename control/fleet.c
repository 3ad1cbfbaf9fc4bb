/* Fleet files: rtci-fleet's per-device CSV read back as (trace, start offset) runs, so rtci-sim
 * can predict the fleet that actually ran. The file is untrusted input: every line is bounded,
 * every field checked, and a bad file is refused with its line number. */
#include "control/trace.h"
#include "control/ctl_io.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FLEET_MAX_FILE (64u << 20)
#define FLEET_FIELDS 64

/* Splits a line (NUL-terminated, no line end) in place into at most cap fields; empty fields
 * count, so columns keep their places. */
static int split_fields(char *line, char **field, int cap)
{
	int n = 0;
	for (char *p = line; n < cap;) {
		field[n++] = p;
		char *comma = strchr(p, ',');
		if (!comma)
			break;
		*comma = 0;
		p = comma + 1;
	}
	return n;
}

int rtci_ctl_fleet_parse(const char *buf, size_t len, const char *name, const char *const *names,
			 unsigned nnames, struct rtci_ctl_fleet_run **out, unsigned *nruns,
			 char *err, size_t err_len)
{
	if (!buf || !out || !nruns || (nnames && !names))
		return -EINVAL;
	name = name ? name : "fleet";
	char line[RTCI_CTL_FLEET_MAX_LINE], *field[FLEET_FIELDS];
	struct rtci_ctl_fleet_run *r = NULL;
	unsigned n = 0, lineno = 0, cap = 0;
	int ct = -1, co = -1, rc = -RTCI_ERR_CTL_FLEET;
	size_t pos = 0;
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t l = (nl ? (size_t)(nl - buf) : len) - pos;
		lineno++;
		if (l >= sizeof(line)) {
			rtci_ctl_set_err(err, err_len, "%s:%u: line longer than %u bytes", name, lineno,
				RTCI_CTL_FLEET_MAX_LINE - 1);
			goto fail;
		}
		if (memchr(buf + pos, 0, l)) {
			rtci_ctl_set_err(err, err_len, "%s:%u: NUL byte", name, lineno);
			goto fail;
		}
		memcpy(line, buf + pos, l);
		line[l] = 0;
		pos += l + 1;
		line[strcspn(line, "\r")] = 0;
		if (!line[0])
			continue;
		int nf = split_fields(line, field, FLEET_FIELDS);
		if (ct < 0) { /* the header */
			for (int i = 0; i < nf; i++) {
				if (!strcmp(field[i], "trace"))
					ct = i;
				else if (!strcmp(field[i], "trace_offset_s"))
					co = i;
			}
			if (ct < 0 || co < 0) {
				rtci_ctl_set_err(err, err_len, "%s:%u: no trace and trace_offset_s columns (not "
						      "an rtci-fleet devices CSV)", name, lineno);
				goto fail;
			}
			continue;
		}
		if (nf <= ct || nf <= co) {
			rtci_ctl_set_err(err, err_len, "%s:%u: %d fields, the header names %d", name, lineno, nf,
				(ct > co ? ct : co) + 1);
			goto fail;
		}
		const char *trace = field[ct], *slash = strrchr(trace, '/');
		const char *base = slash ? slash + 1 : trace;
		unsigned ti = 0;
		while (ti < nnames && strcmp(names[ti], base))
			ti++;
		if (ti == nnames) {
			rtci_ctl_set_err(err, err_len, "%s:%u: trace \"%.64s\" is not among the traces loaded",
				name, lineno, base);
			goto fail;
		}
		char *e;
		double off = strtod(field[co], &e);
		if (e == field[co] || *e || !(off >= 0) || off > 1e9) {
			rtci_ctl_set_err(err, err_len, "%s:%u: offset \"%.32s\" is not a number of seconds "
					      "in 0..1e9", name, lineno, field[co]);
			goto fail;
		}
		if (n == RTCI_CTL_FLEET_MAX_RUNS) {
			rtci_ctl_set_err(err, err_len, "%s:%u: more than %u devices", name, lineno,
				RTCI_CTL_FLEET_MAX_RUNS);
			rc = -RTCI_ERR_CTL_TOO_LARGE;
			goto fail;
		}
		if (n == cap) {
			unsigned ncap = cap ? cap * 2 : 256;
			struct rtci_ctl_fleet_run *g = realloc(r, ncap * sizeof(*r));
			if (!g) {
				rc = -ENOMEM;
				goto fail;
			}
			r = g;
			cap = ncap;
		}
		r[n++] = (struct rtci_ctl_fleet_run){ .trace = ti, .offset_s = off };
	}
	if (!n) {
		rtci_ctl_set_err(err, err_len, "%s: %s", name,
			ct < 0 ? "empty (no header)" : "no device rows");
		goto fail;
	}
	*out = r;
	*nruns = n;
	return 0;
fail:
	free(r);
	return rc;
}

int rtci_ctl_fleet_load_file(const char *path, const char *const *names, unsigned nnames,
			     struct rtci_ctl_fleet_run **out, unsigned *nruns, char *err,
			     size_t err_len)
{
	char *buf;
	size_t len;
	int rc = rtci_ctl_read_file(path, FLEET_MAX_FILE, &buf, &len, err, err_len);
	if (rc)
		return rc;
	rc = rtci_ctl_fleet_parse(buf, len, path, names, nnames, out, nruns, err, err_len);
	free(buf);
	return rc;
}
