/* Internal to control/: what its parsers share — error text and whole-file reads. Not part of
 * the public API (the headers of control/). */
#ifndef RTCI_CONTROL_CTL_IO_H
#define RTCI_CONTROL_CTL_IO_H

#include <stddef.h>
#include <stdio.h>

/* Formats into err (when err and len are given). */
void rtci_ctl_set_err(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Opens path for reading, or sets *rc to a negative errno with "path: reason" in err. */
FILE *rtci_ctl_open_file(const char *path, int *rc, char *err, size_t err_len);

/* Reads all of path into *buf (malloc'd; free() it), at most max bytes: 0, or a negative code
 * with "path: reason" in err (a larger file: -RTCI_ERR_CTL_TOO_LARGE). */
int rtci_ctl_read_file(const char *path, size_t max, char **buf, size_t *len, char *err,
		       size_t err_len);

#endif
