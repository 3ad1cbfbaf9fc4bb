/* Error text and whole-file reads for control/'s parsers. */
#include "control/ctl_io.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rtci_error.h"

void rtci_ctl_set_err(char *err, size_t len, const char *fmt, ...)
{
	if (!err || !len)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

FILE *rtci_ctl_open_file(const char *path, int *rc, char *err, size_t err_len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		int e = errno;
		rtci_ctl_set_err(err, err_len, "%s: %s", path, strerror(e));
		*rc = -e;
	}
	return f;
}

int rtci_ctl_read_file(const char *path, size_t max, char **buf, size_t *len, char *err,
		       size_t err_len)
{
	int rc;
	FILE *f = rtci_ctl_open_file(path, &rc, err, err_len);
	if (!f)
		return rc;
	char *b = malloc(max + 1);
	if (!b) {
		fclose(f);
		return -ENOMEM;
	}
	size_t n = fread(b, 1, max + 1, f);
	int rerr = ferror(f);
	fclose(f);
	if (rerr) {
		rtci_ctl_set_err(err, err_len, "%s: read error", path);
		free(b);
		return -EIO;
	}
	if (n > max) {
		rtci_ctl_set_err(err, err_len, "%s: larger than %zu bytes", path, max);
		free(b);
		return -RTCI_ERR_CTL_TOO_LARGE;
	}
	b[n] = 0;
	*buf = b;
	*len = n;
	return 0;
}
