/* seed_codec DIR: writes valid codec frames into DIR/fuzz_codec_decode/ as a seed corpus:
 * every level on a few shapes and channel counts, with stored, packed and one-code-per-byte
 * payloads. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/rtci_error.h"
#include "inference/codec.h"

int main(int argc, char **argv)
{
	static const uint32_t levels[] = { 65535, 255, 15, 3, 1 };
	static const uint32_t shapes[][3] = { { 1, 14, 14 }, { 3, 7, 9 }, { 8, 14, 14 }, { 32, 4, 4 },
					      { 2, 28, 28 }, { 5, 1, 1 } };
	static float x[32 * 28 * 28];
	static uint8_t frame[2 * 32 * 28 * 28 + 1024];
	char path[4096];

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	snprintf(path, sizeof(path), "%s/fuzz_codec_decode", argv[1]);
	mkdir(argv[1], 0755);
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		perror(path);
		return 1;
	}
	struct rtci_codec *codec;
	if (rtci_codec_create(NULL, &codec) != 0)
		return 1;

	unsigned seed = 1, written = 0;
	/* Pass 0: every level on each shape; dense noise (stored), sparse ReLU6 values and clipped
	 * noise (compressed). Pass 1: narrow levels on piecewise-constant maps, where small frames
	 * tend to carry one code per byte. */
	for (int pass = 0; pass < 2; pass++)
		for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
			for (size_t l = pass ? 2 : 0; l < 5; l++) {
				struct rtci_codec_desc d = { shapes[s][0], levels[l], 32, shapes[s][1], shapes[s][2] };
				size_t n = (size_t)d.c * d.height * d.width;
				for (size_t i = 0; i < n; i++) {
					seed = seed * 1103515245u + 12345u;
					float v = (float)(seed >> 8) / (float)(1u << 24) * 8.0f - 2.0f;
					if (pass)
						x[i] = (i % 7 == 0 || i % 11 == 0) ? (float)((seed >> 16) % 7) : (i % n < n / 2 ? 0.0f : 1.5f);
					else if (s % 3 == 2)
						x[i] = v;
					else if (s % 3 == 1)
						x[i] = (i % 5 == 0) ? (v < 0 ? 0 : v > 6 ? 6 : v) : 0.0f;
					else
						x[i] = v < 0 ? 0 : v > 6 ? 6 : v;
				}
				ssize_t len = rtci_codec_encode(codec, &d, x, frame, sizeof(frame));
				if (len < 0) {
					fprintf(stderr, "encode: %s\n", rtci_strerror((int)len));
					return 1;
				}
				snprintf(path, sizeof(path), "%s/fuzz_codec_decode/seed-%02u", argv[1], written++);
				FILE *f = fopen(path, "wb");
				if (!f || fwrite(frame, 1, (size_t)len, f) != (size_t)len || fclose(f) != 0) {
					perror(path);
					return 1;
				}
			}
	rtci_codec_destroy(codec);
	printf("seed_codec: %u frames in %s/fuzz_codec_decode\n", written, argv[1]);
	return 0;
}
