#include "common/idx.h"
#include "common/rtci_error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDX_MAX_BYTES (1u << 30)

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int read_full(gzFile f, void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len > 0) {
		unsigned chunk = len > (1u << 30) ? (1u << 30) : (unsigned)len;
		int n = gzread(f, p, chunk);
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int rtci_idx_load(const char *path, uint32_t max_items, struct rtci_idx *out, char *err, size_t errlen)
{
	unsigned char head[16];
	uint32_t dims[3] = { 0, 1, 1 };
	int ret = -RTCI_ERR_IDX_FORMAT;

	memset(out, 0, sizeof(*out));
	gzFile f = gzopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -ENOENT;
	}
	if (read_full(f, head, 4) != 0) {
		snprintf(err, errlen, "%s: too short for an IDX header", path);
		goto out;
	}
	uint32_t magic = be32(head);
	unsigned ndims = magic & 0xff;
	if ((magic & 0xffffff00u) != 0x00000800u || (ndims != 1 && ndims != 3)) {
		snprintf(err, errlen, "%s: not an IDX u8 file with 1 or 3 dimensions (magic 0x%08x)", path, magic);
		goto out;
	}
	if (read_full(f, head + 4, 4 * ndims) != 0) {
		snprintf(err, errlen, "%s: truncated IDX header", path);
		goto out;
	}
	for (unsigned i = 0; i < ndims; i++)
		dims[i] = be32(head + 4 + 4 * i);
	if (dims[1] == 0 || dims[2] == 0 || dims[1] > 4096 || dims[2] > 4096) {
		snprintf(err, errlen, "%s: item shape %ux%u out of range", path, dims[1], dims[2]);
		goto out;
	}
	uint32_t count = dims[0];
	if (max_items && count > max_items)
		count = max_items;
	size_t item = (size_t)dims[1] * dims[2];
	if (count == 0 || (size_t)count * item > IDX_MAX_BYTES) {
		snprintf(err, errlen, "%s: %u items of %zu bytes: empty or over 1 GiB", path, count, item);
		goto out;
	}
	out->data = malloc((size_t)count * item);
	if (!out->data) {
		ret = -ENOMEM;
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	if (read_full(f, out->data, (size_t)count * item) != 0) {
		snprintf(err, errlen, "%s: truncated: header promises %u items", path, dims[0]);
		free(out->data);
		out->data = NULL;
		goto out;
	}
	out->count = count;
	out->rows = dims[1];
	out->cols = dims[2];
	ret = 0;
out:
	gzclose(f);
	return ret;
}

void rtci_idx_free(struct rtci_idx *idx)
{
	free(idx->data);
	memset(idx, 0, sizeof(*idx));
}
