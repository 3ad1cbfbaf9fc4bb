/* Frame source: PGM folders (binary and text, maxval scaling, labels from names, errors) and
 * the model input of an image. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edge/frames.h"

static char dir[128];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/rtci-frames-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	(void)system(cmd);
}

static void write_file(const char *name, const void *data, size_t len)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(data, 1, len, f), len);
	fclose(f);
}

TestSuite(frames, .init = setup, .fini = teardown);

Test(frames, pgm_folder_binary_and_text)
{
	/* 3x2 binary, maxval 255, label 7 */
	const char p5[] = "P5\n# a comment\n3 2\n255\n\x00\x10\x20\x30\x40\xff";
	write_file("7_a.pgm", p5, sizeof(p5) - 1);
	/* the same size as text with maxval 15: 15 -> 255 */
	const char p2[] = "P2 3 2 15\n0 1 2\n3 4 15\n";
	write_file("b.pgm", p2, sizeof(p2) - 1);
	write_file("notes.txt", "x", 1);
	struct rtci_imageset s;
	char err[256];
	cr_assert_eq(rtci_frames_load(dir, NULL, 0, &s, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(s.count, 2);
	cr_assert_eq(s.rows, 2);
	cr_assert_eq(s.cols, 3);
	/* sorted by name: "7_a.pgm" then "b.pgm" */
	cr_assert_eq(s.labels[0], 7);
	cr_assert_eq(s.labels[1], -1);
	cr_assert_eq(s.px[2], 0x20);
	cr_assert_eq(s.px[5], 0xff);
	cr_assert_eq(s.px[6 + 1], 17);  /* 1 * 255 / 15 */
	cr_assert_eq(s.px[6 + 5], 255);

	/* model input: nearest-neighbour to 28x28, pixel / 255 */
	struct rtci_geometry g;
	cr_assert_eq(rtci_geometry_preset("fmnist", &g), 0);
	float *in = malloc(28 * 28 * sizeof(float));
	rtci_frames_input(&g, &s, 0, in);
	cr_assert_float_eq(in[0], 0.0f, 1e-7);
	cr_assert_float_eq(in[27 * 28 + 27], 1.0f, 1e-7);
	cr_assert_float_eq(in[27 * 28 + 0], 0x30 / 255.0f, 1e-7);
	free(in);
	rtci_frames_free(&s);

	/* at most max images */
	cr_assert_eq(rtci_frames_load(dir, NULL, 1, &s, err, sizeof(err)), 0);
	cr_assert_eq(s.count, 1);
	rtci_frames_free(&s);
}

Test(frames, pgm_errors_name_the_file)
{
	struct rtci_imageset s;
	char err[256];
	cr_assert_lt(rtci_frames_load(dir, NULL, 0, &s, err, sizeof(err)), 0);
	cr_assert_not_null(strstr(err, "no .pgm"));

	const char a[] = "P5 2 2 255\n\x01\x02\x03\x04";
	const char b[] = "P5 3 3 255\n123456789";
	write_file("a.pgm", a, sizeof(a) - 1);
	write_file("b.pgm", b, sizeof(b) - 1);
	cr_assert_lt(rtci_frames_load(dir, NULL, 0, &s, err, sizeof(err)), 0);
	cr_assert_not_null(strstr(err, "b.pgm"), "%s", err);

	char bpath[256];
	snprintf(bpath, sizeof(bpath), "%s/b.pgm", dir);
	unlink(bpath);
	const char trunc[] = "P5 2 2 255\n\x01";
	write_file("c.pgm", trunc, sizeof(trunc) - 1);
	cr_assert_lt(rtci_frames_load(dir, NULL, 0, &s, err, sizeof(err)), 0);
	cr_assert_not_null(strstr(err, "truncated"), "%s", err);

	const char bad[] = "P6 2 2 255\n";
	write_file("c.pgm", bad, sizeof(bad) - 1);
	cr_assert_lt(rtci_frames_load(dir, NULL, 0, &s, err, sizeof(err)), 0);
	cr_assert_not_null(strstr(err, "not a PGM"), "%s", err);

	const char big[] = "P5 5000 2 255\n";
	write_file("c.pgm", big, sizeof(big) - 1);
	cr_assert_lt(rtci_frames_load(dir, NULL, 0, &s, err, sizeof(err)), 0);
	cr_assert_not_null(strstr(err, "bad PGM header"), "%s", err);
}

Test(frames, idx_with_labels)
{
	struct rtci_imageset s;
	char err[256];
	int rc = rtci_frames_load("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
				  "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz", 10, &s,
				  err, sizeof(err));
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(s.count, 10);
	cr_assert_eq(s.rows, 28);
	/* the first Fashion-MNIST test labels: ankle boot, pullover, trouser */
	cr_assert_eq(s.labels[0], 9);
	cr_assert_eq(s.labels[1], 2);
	cr_assert_eq(s.labels[2], 1);
	rtci_frames_free(&s);
}
