#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#include "common/idx.h"
#include "common/rtci_error.h"

static char path[64];

static void write_file(const unsigned char *bytes, size_t len, int gz)
{
	snprintf(path, sizeof(path), "/tmp/rtci-idx-%d.%s", (int)getpid(), gz ? "gz" : "idx");
	if (gz) {
		gzFile f = gzopen(path, "wb");
		cr_assert_not_null(f);
		cr_assert_eq(gzwrite(f, bytes, (unsigned)len), (int)len);
		gzclose(f);
	} else {
		FILE *f = fopen(path, "wb");
		cr_assert_not_null(f);
		cr_assert_eq(fwrite(bytes, 1, len, f), len);
		fclose(f);
	}
}

static void cleanup(void) { unlink(path); }

/* Two 2x3 images with pixel values 0..11. */
static const unsigned char images[] = {
	0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3,
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
};

Test(idx, loads_gzip_images, .fini = cleanup)
{
	struct rtci_idx idx;
	char err[256];

	write_file(images, sizeof(images), 1);
	cr_assert_eq(rtci_idx_load(path, 0, &idx, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(idx.count, 2);
	cr_expect_eq(idx.rows, 2);
	cr_expect_eq(idx.cols, 3);
	cr_expect_eq(rtci_idx_item(&idx, 1)[5], 11);
	rtci_idx_free(&idx);
}

Test(idx, loads_plain_labels_with_limit, .fini = cleanup)
{
	static const unsigned char labels[] = { 0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9 };
	struct rtci_idx idx;
	char err[256];

	write_file(labels, sizeof(labels), 0);
	cr_assert_eq(rtci_idx_load(path, 2, &idx, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(idx.count, 2);
	cr_expect_eq(idx.rows, 1);
	cr_expect_eq(idx.data[1], 8);
	rtci_idx_free(&idx);
}

Test(idx, rejects_truncated_payload, .fini = cleanup)
{
	struct rtci_idx idx;
	char err[256];

	write_file(images, sizeof(images) - 1, 1);
	cr_expect_eq(rtci_idx_load(path, 0, &idx, err, sizeof(err)), -RTCI_ERR_IDX_FORMAT);
	cr_expect_not_null(strstr(err, "truncated"), "%s", err);
	cr_expect_null(idx.data);
}

Test(idx, rejects_bad_magic, .fini = cleanup)
{
	unsigned char bad[sizeof(images)];
	struct rtci_idx idx;
	char err[256];

	memcpy(bad, images, sizeof(bad));
	bad[2] = 0x0d; /* float32 element type */
	write_file(bad, sizeof(bad), 0);
	cr_expect_eq(rtci_idx_load(path, 0, &idx, err, sizeof(err)), -RTCI_ERR_IDX_FORMAT);
	cr_expect_not_null(strstr(err, path), "error names the file: %s", err);
}

Test(idx, missing_file_is_enoent)
{
	struct rtci_idx idx;
	char err[256];

	cr_expect_eq(rtci_idx_load("/nonexistent/rtci.idx", 0, &idx, err, sizeof(err)), -ENOENT);
}
