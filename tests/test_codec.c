#include <criterion/criterion.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "common/hash.h"
#include "common/rtci_error.h"
#include "inference/codec.h"

static const uint32_t channel_set[] = { 1, 2, 3, 4, 5, 6, 7, 8, 16, 32 };
static const uint32_t level_set[] = { 65535, 255, 15, 3, 1 };
#define NCH (sizeof(channel_set) / sizeof(channel_set[0]))
#define NLV (sizeof(level_set) / sizeof(level_set[0]))

/* ---- deterministic random numbers (splitmix64) ---- */

static uint64_t rng_state;
static uint64_t rnd(void)
{
	return rtci_splitmix64(&rng_state);
}
static float unif(void) { return (float)(rnd() >> 40) / (float)(1u << 24); }

/* Tensors of several kinds: ReLU6-like with many zeros and saturated sixes, uniform over a wide
 * range, narrow range around a large offset, and a few constant channels. */
static void fill(float *x, size_t channels, size_t plane, int kind)
{
	for (size_t k = 0; k < channels; k++) {
		float scale = 0.1f + 10.0f * unif(), offset = (unif() - 0.5f) * 100.0f;
		for (size_t i = 0; i < plane; i++) {
			float v;
			switch (kind % 4) {
			case 0: v = fminf(fmaxf((unif() - 0.4f) * 8.0f, 0.0f), 6.0f); break;
			case 1: v = (unif() - 0.5f) * 2.0f * scale * 1000.0f; break;
			case 2: v = offset + unif() * 1e-3f * scale; break;
			default: v = (k % 3 == 0) ? offset : unif() * scale; break;
			}
			x[k * plane + i] = v;
		}
	}
}

/* ---- independent reimplementation of the specification ---- */

static void ref_minmax(const float *x, size_t n, float *mn, float *mx)
{
	*mn = *mx = x[0];
	for (size_t i = 1; i < n; i++) {
		if (x[i] < *mn) *mn = x[i];
		if (x[i] > *mx) *mx = x[i];
	}
}

static uint32_t ref_code(float x, float mn, float mx, uint32_t L)
{
	float range = mx - mn;
	if (range == 0.0f)
		return 0;
	float t = (x - mn) / range * (float)L;
	float f = floorf(t + 0.5f);
	uint32_t q = f < 0.0f ? 0 : (uint32_t)f;
	return q > L ? L : q;
}

static int bits_of(uint32_t L)
{
	return L == 65535 ? 16 : L == 255 ? 8 : L == 15 ? 4 : L == 3 ? 2 : 1;
}

static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v); put16(p + 2, v >> 16); }
static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static struct rtci_codec *codec;
static void setup_codec(void) { cr_assert_eq(rtci_codec_create(NULL, &codec), 0); }
static void teardown_codec(void) { rtci_codec_destroy(codec); }

TestSuite(codec, .init = setup_codec, .fini = teardown_codec);

Test(codec, sizes)
{
	cr_assert_eq(rtci_codec_bits(65535), 16);
	cr_assert_eq(rtci_codec_bits(1), 1);
	cr_assert_eq(rtci_codec_bits(7), -RTCI_ERR_CODEC_LEVELS);
	cr_assert_eq(rtci_codec_packed_size(32, 65535, 112, 112), 32 * 112 * 112 * 2);
	cr_assert_eq(rtci_codec_raw_size(32, 65535, 112, 112), 32 * 112 * 112 * 2 + 8 * 32);
	cr_assert_eq(rtci_codec_raw_size(1, 1, 112, 112), 1568 + 8);
	cr_assert_eq(rtci_codec_packed_size(1, 1, 14, 14), 25); /* 196 bits, rounded up */
	cr_assert_eq(rtci_codec_packed_size(3, 15, 7, 7), 74);  /* 147 codes * 4 bits */
	cr_assert_eq(rtci_codec_max_encoded_size(1, 1, 14, 14), RTCI_CODEC_HEADER_SIZE + 25 + 8);
	cr_assert_eq(rtci_codec_packed_size(0, 1, 14, 14), -RTCI_ERR_CODEC_SHAPE);
	cr_assert_eq(rtci_codec_packed_size(1, 1, 0, 14), -RTCI_ERR_CODEC_SHAPE);
	cr_assert_eq(rtci_codec_packed_size(1, 1, 14, 4097), -RTCI_ERR_CODEC_SHAPE);
	cr_assert_eq(rtci_codec_packed_size(1024, 1, 4096, 4096), -RTCI_ERR_CODEC_TOO_LARGE);
	cr_assert_eq(rtci_codec_raw_size(1, 2, 14, 14), -RTCI_ERR_CODEC_LEVELS);
}

/* Every setup, two geometries (one with a plane that is not a multiple of 8 codes): the packed
 * codes equal an independent bit-by-bit packing of the specified codes, the decoded tensor is
 * exactly min + q * (range / L), and the reference quantizer produces the same floats. */
Test(codec, round_trip_all_setups)
{
	/* 14x14 and 7x9 (codes cross byte boundaries between channels); 48x64 is large enough for
	 * the 1-bit threshold path. */
	static const uint32_t geo[][2] = { { 14, 14 }, { 7, 9 }, { 48, 64 } };
	const uint32_t C = 32;
	size_t maxn = C * 48 * 64;
	float *x = malloc(maxn * sizeof(float)), *y = malloc(maxn * sizeof(float));
	float *ref = malloc(maxn * sizeof(float)), side[64];
	uint8_t *frame = malloc(maxn * 2 + 1024), *packed = malloc(maxn * 2), *want = malloc(maxn * 2);
	rng_state = 1;

	for (size_t g = 0; g < 3; g++)
		for (size_t ci = 0; ci < NCH; ci++)
			for (size_t li = 0; li < NLV; li++) {
				struct rtci_codec_desc d = { channel_set[ci], level_set[li], C, geo[g][0], geo[g][1] };
				size_t plane = (size_t)d.height * d.width, n = d.c * plane;
				int bits = bits_of(d.levels);
				fill(x, C, plane, (int)(ci + li));

				/* packing */
				cr_assert_eq(rtci_codec_quantize_pack(&d, x, side, packed), 0);
				size_t plen = (size_t)rtci_codec_packed_size(d.c, d.levels, d.height, d.width);
				memset(want, 0, plen);
				for (size_t k = 0; k < d.c; k++) {
					float mn, mx;
					ref_minmax(x + k * plane, plane, &mn, &mx);
					cr_assert(side[2 * k] == mn && side[2 * k + 1] == mx);
					for (size_t i = 0; i < plane; i++) {
						uint32_t q = ref_code(x[k * plane + i], mn, mx, d.levels);
						size_t bit = (k * plane + i) * (size_t)bits;
						for (int b = 0; b < bits; b++, bit++)
							if (q >> b & 1)
								want[bit / 8] |= (uint8_t)(1u << (bit % 8));
					}
				}
				cr_assert_eq(memcmp(packed, want, plen), 0, "packed codes differ: c=%u L=%u %ux%u",
					     d.c, d.levels, d.height, d.width);

				/* frame round trip */
				ssize_t len = rtci_codec_encode(codec, &d, x, frame, maxn * 2 + 1024);
				cr_assert_gt(len, 0, "encode c=%u L=%u: %s", d.c, d.levels, rtci_strerror((int)len));
				cr_assert_leq(len, rtci_codec_max_encoded_size(d.c, d.levels, d.height, d.width));
				struct rtci_codec_desc got;
				cr_assert_eq(rtci_codec_parse(frame, (size_t)len, &got), 0);
				cr_assert_eq(memcmp(&got, &d, sizeof(d)), 0);
				memset(y, 0xff, n * sizeof(float));
				int ret = rtci_codec_decode(codec, frame, (size_t)len, y, n, 0, &got);
				cr_assert_eq(ret, 0, "decode c=%u L=%u: %s", d.c, d.levels, rtci_strerror(ret));
				for (size_t k = 0; k < d.c; k++) {
					float mn, mx;
					ref_minmax(x + k * plane, plane, &mn, &mx);
					float step = (mx - mn) / (float)d.levels;
					for (size_t i = 0; i < plane; i++) {
						uint32_t q = ref_code(x[k * plane + i], mn, mx, d.levels);
						float want_x = mn + (float)q * step;
						cr_assert(memcmp(&y[k * plane + i], &want_x, 4) == 0,
							  "c=%u L=%u ch %zu el %zu: %a != %a", d.c, d.levels, k, i,
							  (double)y[k * plane + i], (double)want_x);
					}
				}

				memcpy(ref, x, n * sizeof(float));
				cr_assert_eq(rtci_codec_quantize_ref(ref, d.c, plane, d.levels), 0);
				cr_assert_eq(memcmp(ref, y, n * sizeof(float)), 0);
			}
	free(x); free(y); free(ref); free(frame); free(packed); free(want);
}

/* Values right at the rounding boundary, where a threshold comparison and the formula could
 * disagree by one float: every code must equal the formula's. */
Test(codec, rounding_boundaries)
{
	static const float ranges[][2] = { { 0, 6 }, { -1.3f, 2.7f }, { 1000, 1000.001f },
					   { -5e-3f, -1e-3f }, { 0, 1e-30f }, { -3e37f, 3e37f },
					   { 0.1f, 0.1000001f } };
	const size_t plane = 4096;
	float x[4096], side[2];
	uint8_t packed[4096 * 2];
	rng_state = 99;
	for (size_t r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++)
		for (size_t li = 0; li < NLV; li++) {
			uint32_t L = level_set[li];
			float mn = ranges[r][0], mx = ranges[r][1], range = mx - mn;
			x[0] = mn;
			x[1] = mx;
			/* Walk float by float across the first step boundary and across the middle one. */
			float a = mn + 0.5f * (range / (float)L), b = mn + 0.5f * range;
			for (int k = 0; k < 1200; k++) {
				a = nextafterf(a, -INFINITY);
				b = nextafterf(b, -INFINITY);
			}
			for (size_t i = 2; i < plane; i++) {
				float *w = (i % 3 == 0) ? &a : (i % 3 == 1) ? &b : NULL;
				float v = w ? (*w = nextafterf(*w, INFINITY)) : mn + unif() * range;
				x[i] = fminf(fmaxf(v, mn), mx);
			}
			struct rtci_codec_desc d = { 1, L, 1, 64, 64 };
			cr_assert_eq(rtci_codec_quantize_pack(&d, x, side, packed), 0);
			int bits = bits_of(L);
			for (size_t i = 0; i < plane; i++) {
				uint32_t got = 0;
				for (int bb = 0; bb < bits; bb++) {
					size_t bit = i * (size_t)bits + (size_t)bb;
					got |= (uint32_t)(packed[bit / 8] >> (bit % 8) & 1) << bb;
				}
				uint32_t want = ref_code(x[i], mn, mx, L);
				cr_assert_eq(got, want, "range [%a, %a] L=%u x=%a: code %u, formula %u",
					     (double)mn, (double)mx, L, (double)x[i], got, want);
			}
		}
}

/* |x - x^| <= range / (2L) plus float32 rounding, over many random tensors. */
Test(codec, error_bound_property)
{
	const size_t C = 8, plane = 14 * 14;
	float x[8 * 196], y[8 * 196];
	uint8_t frame[8 * 196 * 2 + 512];
	rng_state = 42;
	for (int trial = 0; trial < 400; trial++) {
		uint32_t L = level_set[trial % NLV];
		struct rtci_codec_desc d = { (uint32_t)C, L, (uint32_t)C, 14, 14 };
		fill(x, C, plane, trial / (int)NLV);
		ssize_t len = rtci_codec_encode(codec, &d, x, frame, sizeof(frame));
		cr_assert_gt(len, 0);
		cr_assert_eq(rtci_codec_decode(codec, frame, (size_t)len, y, C * plane, 0, NULL), 0);
		for (size_t k = 0; k < C; k++) {
			float mn, mx;
			ref_minmax(x + k * plane, plane, &mn, &mx);
			double bound = ((double)mx - mn) / (2.0 * L) +
				       4.0 * FLT_EPSILON * (fabs((double)mn) + fabs((double)mx));
			for (size_t i = 0; i < plane; i++) {
				double err = fabs((double)x[k * plane + i] - y[k * plane + i]);
				cr_assert_leq(err, bound, "trial %d L=%u ch %zu: err %g > %g", trial, L, k, err,
					      bound);
			}
		}
	}
}

Test(codec, constant_channel)
{
	float x[3 * 64], y[3 * 64];
	uint8_t frame[1024];
	for (int i = 0; i < 64; i++) {
		x[i] = 3.25f;          /* constant */
		x[64 + i] = 0.0f;      /* all zero */
		x[128 + i] = (float)i; /* ordinary */
	}
	for (size_t li = 0; li < NLV; li++) {
		struct rtci_codec_desc d = { 3, level_set[li], 32, 8, 8 };
		ssize_t len = rtci_codec_encode(codec, &d, x, frame, sizeof(frame));
		cr_assert_gt(len, 0);
		cr_assert_eq(rtci_codec_decode(codec, frame, (size_t)len, y, 3 * 64, 3, NULL), 0);
		for (int i = 0; i < 64; i++) {
			cr_assert_eq(y[i], 3.25f);
			cr_assert_eq(y[64 + i], 0.0f);
		}
		cr_assert_eq(y[128], 0.0f);
		cr_assert_float_eq(y[191], 63.0f, 1e-4);
	}
	float r[64];
	for (int i = 0; i < 64; i++)
		r[i] = -1.5f;
	cr_assert_eq(rtci_codec_quantize_ref(r, 1, 64, 255), 0);
	for (int i = 0; i < 64; i++)
		cr_assert_eq(r[i], -1.5f);
}

Test(codec, zero_fill_to_wider_channels)
{
	const size_t plane = 14 * 14;
	float x[32 * 196], y[32 * 196], ref[3 * 196];
	uint8_t frame[4096];
	rng_state = 7;
	fill(x, 32, plane, 0);
	struct rtci_codec_desc d = { 3, 15, 32, 14, 14 };
	ssize_t len = rtci_codec_encode(codec, &d, x, frame, sizeof(frame));
	cr_assert_gt(len, 0);
	for (size_t i = 0; i < 32 * plane; i++)
		y[i] = 7.0f;
	cr_assert_eq(rtci_codec_decode(codec, frame, (size_t)len, y, 32 * plane, 32, NULL), 0);
	memcpy(ref, x, sizeof(ref));
	cr_assert_eq(rtci_codec_quantize_ref(ref, 3, plane, 15), 0);
	cr_assert_eq(memcmp(y, ref, sizeof(ref)), 0);
	for (size_t i = 3 * plane; i < 32 * plane; i++)
		cr_assert(y[i] == 0.0f && !signbit(y[i]));

	/* Narrower than the frame, or a buffer that cannot hold out_channels planes. */
	cr_assert_eq(rtci_codec_decode(codec, frame, (size_t)len, y, 32 * plane, 2, NULL), -EINVAL);
	cr_assert_eq(rtci_codec_decode(codec, frame, (size_t)len, y, 16 * plane - 1, 16, NULL),
		     -RTCI_ERR_CODEC_NOSPACE);
	cr_assert_eq(rtci_codec_decode(codec, frame, (size_t)len, y, 16 * plane, 16, NULL), 0);
}

Test(codec, nonfinite_rejected)
{
	const size_t plane = 10 * 10;
	float x[4 * 100], saved[4 * 100];
	uint8_t frame[4096];
	const float bad[] = { NAN, INFINITY, -INFINITY };
	const size_t where[] = { 0, 1, 57, 99, 100 + 96, 2 * 100 + 99 };
	struct rtci_codec_desc d = { 3, 255, 4, 10, 10 };
	rng_state = 9;
	for (size_t b = 0; b < 3; b++)
		for (size_t w = 0; w < sizeof(where) / sizeof(where[0]); w++) {
			fill(x, 4, plane, 0);
			x[where[w]] = bad[b];
			cr_assert_eq(rtci_codec_encode(codec, &d, x, frame, sizeof(frame)),
				     -RTCI_ERR_CODEC_NONFINITE);
			memcpy(saved, x, sizeof(x));
			cr_assert_eq(rtci_codec_quantize_ref(x, 3, plane, 255), -RTCI_ERR_CODEC_NONFINITE);
			cr_assert_eq(memcmp(saved, x, 3 * plane * sizeof(float)), 0);
		}
	/* Channels past c are not read. */
	fill(x, 4, plane, 0);
	x[3 * plane + 5] = NAN;
	cr_assert_gt(rtci_codec_encode(codec, &d, x, frame, sizeof(frame)), 0);
	/* A range that overflows float32. */
	x[0] = -3e38f;
	x[1] = 3e38f;
	cr_assert_eq(rtci_codec_encode(codec, &d, x, frame, sizeof(frame)), -RTCI_ERR_CODEC_RANGE);
	cr_assert_eq(rtci_codec_quantize_ref(x, 1, plane, 255), -RTCI_ERR_CODEC_RANGE);
}

Test(codec, encode_arguments)
{
	float x[4 * 64];
	uint8_t frame[4096];
	rng_state = 3;
	fill(x, 4, 64, 1);
	struct rtci_codec_desc d = { 4, 255, 4, 8, 8 };
	struct rtci_codec_desc bad = d;
	bad.levels = 16;
	cr_assert_eq(rtci_codec_encode(codec, &bad, x, frame, sizeof(frame)), -RTCI_ERR_CODEC_LEVELS);
	bad = d;
	bad.channels = 3;
	cr_assert_eq(rtci_codec_encode(codec, &bad, x, frame, sizeof(frame)), -RTCI_ERR_CODEC_SHAPE);
	bad = d;
	bad.c = 0;
	cr_assert_eq(rtci_codec_encode(codec, &bad, x, frame, sizeof(frame)), -RTCI_ERR_CODEC_SHAPE);

	/* Too small a buffer fails cleanly; max_encoded_size always suffices, even when the codes
	 * do not compress and are stored. */
	ssize_t max = rtci_codec_max_encoded_size(4, 255, 8, 8);
	cr_assert_eq(rtci_codec_encode(codec, &d, x, frame, 20), -RTCI_ERR_CODEC_NOSPACE);
	ssize_t len = rtci_codec_encode(codec, &d, x, frame, (size_t)max);
	cr_assert_gt(len, 0);
	cr_assert_leq(len, max);
	cr_assert_eq(frame[5], RTCI_CODEC_F_STORED, "uniform 8-bit codes should not compress");
	cr_assert_eq(rtci_codec_encode(codec, &d, x, frame, (size_t)len - 1), -RTCI_ERR_CODEC_NOSPACE);

	/* Over the context's capacity. */
	struct rtci_codec *small;
	struct rtci_codec_config cfg = { .level = -5, .max_elements = 100 };
	cr_assert_eq(rtci_codec_create(&cfg, &small), 0);
	cr_assert_eq(rtci_codec_encode(small, &d, x, frame, sizeof(frame)), -RTCI_ERR_CODEC_TOO_LARGE);
	d.c = 1;
	len = rtci_codec_encode(codec, &d, x, frame, sizeof(frame));
	cr_assert_gt(len, 0);
	float y[64];
	cr_assert_eq(rtci_codec_decode(small, frame, (size_t)len, y, 64, 0, NULL), 0);
	rtci_codec_destroy(small);

	struct rtci_codec *c2;
	cfg.level = 1000;
	cr_assert_eq(rtci_codec_create(&cfg, &c2), -EINVAL);
	cfg.level = 1;
	cfg.max_elements = RTCI_CODEC_MAX_ELEMENTS + 1;
	cr_assert_eq(rtci_codec_create(&cfg, &c2), -EINVAL);
}

/* ---- malformed frames ---- */

#define FRAME_CAP 65536
static uint8_t good[FRAME_CAP], bad[FRAME_CAP];
static size_t good_len;
static float out[32 * 196];

/* A compressible frame: sparse activations, 8 channels of 32, 14x14. */
static void make_good(uint32_t levels)
{
	float x[32 * 196];
	for (size_t i = 0; i < 32 * 196; i++)
		x[i] = (i % 13 == 0) ? (float)(i % 7) : 0.0f;
	struct rtci_codec_desc d = { 8, levels, 32, 14, 14 };
	ssize_t len = rtci_codec_encode(codec, &d, x, good, sizeof(good));
	cr_assert_gt(len, 0);
	good_len = (size_t)len;
	cr_assert_eq(rtci_codec_decode(codec, good, good_len, out, 32 * 196, 32, NULL), 0);
	memcpy(bad, good, good_len);
}

static int dec(size_t len) { return rtci_codec_decode(codec, bad, len, out, 32 * 196, 32, NULL); }

#define EXPECT(code) cr_assert_eq(dec(good_len), -(code), "got %s", rtci_strerror(dec(good_len)))

Test(codec, header_fields_rejected)
{
	make_good(3);
	cr_assert_eq(good[5], 0, "expected a compressed frame");
	struct { size_t off; uint8_t val; int code; } byte_cases[] = {
		{ 0, 'X', RTCI_ERR_CODEC_MAGIC },    { 3, 0, RTCI_ERR_CODEC_MAGIC },
		{ 4, 0, RTCI_ERR_CODEC_VERSION },    { 4, 2, RTCI_ERR_CODEC_VERSION },
		{ 5, 0x04, RTCI_ERR_CODEC_HEADER },  { 5, 0x80, RTCI_ERR_CODEC_HEADER },
		{ 5, 0x03, RTCI_ERR_CODEC_HEADER }, /* BYTES with STORED */
		{ 6, 4, RTCI_ERR_CODEC_HEADER },     { 6, 3, RTCI_ERR_CODEC_HEADER },
		{ 7, 1, RTCI_ERR_CODEC_HEADER },     { 18, 1, RTCI_ERR_CODEC_HEADER },
		{ 19, 1, RTCI_ERR_CODEC_HEADER },
	};
	for (size_t i = 0; i < sizeof(byte_cases) / sizeof(byte_cases[0]); i++) {
		memcpy(bad, good, good_len);
		bad[byte_cases[i].off] = byte_cases[i].val;
		EXPECT(byte_cases[i].code);
		struct rtci_codec_desc d;
		cr_assert_eq(rtci_codec_parse(bad, good_len, &d), -byte_cases[i].code);
	}
	struct { size_t off; uint32_t val; int code; } field_cases[] = {
		{ 8, 7, RTCI_ERR_CODEC_HEADER },     /* L not in the set */
		{ 8, 15, RTCI_ERR_CODEC_HEADER },    /* L valid but disagrees with bits */
		{ 10, 0, RTCI_ERR_CODEC_HEADER },    /* c = 0 */
		{ 10, 33, RTCI_ERR_CODEC_HEADER },   /* c > C */
		{ 12, 7, RTCI_ERR_CODEC_HEADER },    /* C < c */
		{ 12, 2000, RTCI_ERR_CODEC_HEADER }, /* C over the maximum */
		{ 14, 0, RTCI_ERR_CODEC_HEADER },    /* H = 0 */
		{ 16, 0, RTCI_ERR_CODEC_HEADER },    /* W = 0 */
		{ 14, 5000, RTCI_ERR_CODEC_HEADER }, /* H over the maximum */
		{ 16, 4097, RTCI_ERR_CODEC_HEADER }, /* W over the maximum */
	};
	for (size_t i = 0; i < sizeof(field_cases) / sizeof(field_cases[0]); i++) {
		memcpy(bad, good, good_len);
		put16(bad + field_cases[i].off, field_cases[i].val);
		EXPECT(field_cases[i].code);
	}
	/* packed_len disagreeing with c, L, H, W. */
	memcpy(bad, good, good_len);
	put32(bad + 20, get32(good + 20) + 1);
	EXPECT(RTCI_ERR_CODEC_HEADER);
	/* A compressed payload as large as the codes (never written), or empty. */
	memcpy(bad, good, good_len);
	put32(bad + 24, get32(good + 20));
	EXPECT(RTCI_ERR_CODEC_HEADER);
	put32(bad + 24, 0);
	EXPECT(RTCI_ERR_CODEC_HEADER);
	/* Stored flag with a payload of the wrong size. */
	memcpy(bad, good, good_len);
	bad[5] = RTCI_CODEC_F_STORED;
	EXPECT(RTCI_ERR_CODEC_HEADER);
}

Test(codec, oversized_frames_rejected)
{
	make_good(3);
	/* Shapes past the hard cap, and past this context's capacity. */
	memcpy(bad, good, good_len);
	put16(bad + 10, 1024);
	put16(bad + 12, 1024);
	put16(bad + 14, 4096);
	put16(bad + 16, 4096);
	EXPECT(RTCI_ERR_CODEC_TOO_LARGE);
	memcpy(bad, good, good_len);
	put16(bad + 10, 32);
	put16(bad + 14, 112);
	put16(bad + 16, 113);
	put32(bad + 20, 32 * 112 * 113 / 4);
	cr_assert_eq(rtci_codec_decode(codec, bad, good_len + 24 * 8, out, 1u << 20, 0, NULL),
		     -RTCI_ERR_CODEC_TOO_LARGE);

	/* A zstd frame declaring more content than the header allows (a decompression bomb) is
	 * refused before decompressing, as is one that declares no size or less. */
	size_t head = RTCI_CODEC_HEADER_SIZE + 8 * 8, plen = get32(good + 20);
	static uint8_t zeros[1 << 20];
	size_t cases[] = { sizeof(zeros), plen + 1, plen - 1 };
	for (size_t i = 0; i < 3; i++) {
		memcpy(bad, good, head);
		size_t z = ZSTD_compress(bad + head, FRAME_CAP - head, zeros, cases[i], 1);
		cr_assert(!ZSTD_isError(z));
		cr_assert_lt(z, plen);
		put32(bad + 24, (uint32_t)z);
		cr_assert_eq(dec(head + z), -RTCI_ERR_CODEC_CONTENT_SIZE, "case %zu", i);
	}
	/* Streamed without a declared size. */
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
	size_t z = ZSTD_compress2(cc, bad + head, FRAME_CAP - head, zeros, plen);
	ZSTD_freeCCtx(cc);
	cr_assert(!ZSTD_isError(z));
	memcpy(bad, good, head);
	put32(bad + 24, (uint32_t)z);
	cr_assert_eq(dec(head + z), -RTCI_ERR_CODEC_CONTENT_SIZE);
}

Test(codec, truncated_and_trailing_rejected)
{
	make_good(1);
	for (size_t len = 0; len < good_len; len++)
		cr_assert_eq(dec(len), -RTCI_ERR_CODEC_TRUNCATED, "length %zu", len);
	bad[good_len] = 0;
	cr_assert_eq(dec(good_len + 1), -RTCI_ERR_CODEC_TRAILING);
	cr_assert_eq(rtci_codec_decode(codec, NULL, 10, out, 10, 0, NULL), -EINVAL);
}

Test(codec, corrupted_payload_rejected)
{
	make_good(3);
	size_t head = RTCI_CODEC_HEADER_SIZE + 8 * 8;

	/* Side info: NaN, infinity, min > max, overflowing range. */
	float vals[][2] = { { NAN, 1 }, { 0, INFINITY }, { 2, 1 }, { -3e38f, 3e38f } };
	for (size_t i = 0; i < 4; i++) {
		memcpy(bad, good, good_len);
		memcpy(bad + RTCI_CODEC_HEADER_SIZE + 8 * 5, &vals[i][0], 4);
		memcpy(bad + RTCI_CODEC_HEADER_SIZE + 8 * 5 + 4, &vals[i][1], 4);
		EXPECT(RTCI_ERR_CODEC_SIDE_INFO);
	}
	/* Not a zstd frame. */
	memcpy(bad, good, good_len);
	bad[head] ^= 0xff;
	EXPECT(RTCI_ERR_CODEC_ZSTD);
	/* A second frame (or junk) inside the payload after the first. */
	memcpy(bad, good, good_len);
	size_t z = good_len - head;
	memcpy(bad + good_len, bad + head, z);
	put32(bad + 24, (uint32_t)(2 * z));
	cr_assert_eq(dec(good_len + z), -RTCI_ERR_CODEC_ZSTD);
	/* Damaged compressed blocks: an error or some tensor, never a crash or overrun. */
	rng_state = 5;
	int rejected = 0;
	for (int trial = 0; trial < 2000; trial++) {
		memcpy(bad, good, good_len);
		size_t pos = head + rnd() % (good_len - head);
		bad[pos] ^= (uint8_t)(1u << (rnd() % 8));
		int ret = dec(good_len);
		cr_assert(ret == 0 || (ret <= -RTCI_ERR_CODEC_FIRST && ret > -RTCI_ERR_PROTO_FIRST),
			  "unexpected %d", ret);
		rejected += ret != 0;
	}
	cr_assert_gt(rejected, 0);

	/* Nonzero padding bits after the last code of a stored frame: 3 channels x 7 x 7, 1 bit
	 * = 147 bits, so the last byte uses 3 bits. */
	float x[3 * 49];
	rng_state = 8;
	fill(x, 3, 49, 1);
	struct rtci_codec_desc d = { 3, 1, 3, 7, 7 };
	ssize_t len = rtci_codec_encode(codec, &d, x, good, sizeof(good));
	cr_assert_gt(len, 0);
	cr_assert_eq(good[5], RTCI_CODEC_F_STORED);
	cr_assert_eq(rtci_codec_decode(codec, good, (size_t)len, out, 3 * 49, 0, NULL), 0);
	memcpy(bad, good, (size_t)len);
	bad[len - 1] |= 0x80;
	cr_assert_eq(rtci_codec_decode(codec, bad, (size_t)len, out, 3 * 49, 0, NULL),
		     -RTCI_ERR_CODEC_PADDING);
}

/* Small frames of narrow codes: the encoder sends the codes one per byte when that compresses
 * better; such frames decode exactly, and turning the option off never gives a smaller frame. */
Test(codec, byte_layout)
{
	struct rtci_codec *packed_only;
	struct rtci_codec_config cfg = { .packed_only = true };
	cr_assert_eq(rtci_codec_create(&cfg, &packed_only), 0);
	static float x[8 * 196], y[8 * 196], ref[8 * 196];
	static uint8_t f1[8192], f2[8192];
	int bytes_frames = 0;
	rng_state = 21;
	for (int trial = 0; trial < 200; trial++) {
		uint32_t c = 1 + (uint32_t)(rnd() % 8), L = level_set[2 + trial % 3];
		struct rtci_codec_desc d = { c, L, 32, 14, 14 };
		size_t n = c * 196;
		/* Piecewise-constant ReLU6 maps: long runs, like activations of real images. */
		for (size_t i = 0; i < n; i++)
			x[i] = (i % 7 == 0 || i % 11 == 0) ? fminf(6.0f, (float)(rnd() % 9)) : (i % 196 < 98 ? 0.0f : 1.5f);
		ssize_t a = rtci_codec_encode(codec, &d, x, f1, sizeof(f1));
		ssize_t b = rtci_codec_encode(packed_only, &d, x, f2, sizeof(f2));
		cr_assert_gt(a, 0);
		cr_assert_gt(b, 0);
		cr_assert_leq(a, b);
		cr_assert_eq(f2[5] & RTCI_CODEC_F_BYTES, 0);
		bytes_frames += (f1[5] & RTCI_CODEC_F_BYTES) != 0;
		cr_assert_eq(rtci_codec_decode(codec, f1, (size_t)a, y, n, 0, NULL), 0);
		memcpy(ref, x, n * sizeof(float));
		cr_assert_eq(rtci_codec_quantize_ref(ref, c, 196, L), 0);
		cr_assert_eq(memcmp(y, ref, n * sizeof(float)), 0);
		cr_assert_eq(rtci_codec_decode(packed_only, f1, (size_t)a, y, n, 0, NULL), 0);
		cr_assert_eq(memcmp(y, ref, n * sizeof(float)), 0);
	}
	cr_assert_gt(bytes_frames, 0, "no frame chose the byte layout");
	rtci_codec_destroy(packed_only);
}

Test(codec, byte_layout_rejects)
{
	make_good(15);
	size_t head = RTCI_CODEC_HEADER_SIZE + 8 * 8, n = 8 * 196;
	static uint8_t codes[8 * 196];
	memset(codes, 0, sizeof(codes));
	codes[100] = 15;
	memcpy(bad, good, head);
	bad[5] = RTCI_CODEC_F_BYTES;
	size_t z = ZSTD_compress(bad + head, FRAME_CAP - head, codes, n, 1);
	cr_assert(!ZSTD_isError(z));
	put32(bad + 24, (uint32_t)z);
	cr_assert_eq(dec(head + z), 0);
	codes[100] = 16; /* above L */
	z = ZSTD_compress(bad + head, FRAME_CAP - head, codes, n, 1);
	put32(bad + 24, (uint32_t)z);
	cr_assert_eq(dec(head + z), -RTCI_ERR_CODEC_CODE_RANGE);
	/* The packed size instead of one byte per code. */
	z = ZSTD_compress(bad + head, FRAME_CAP - head, codes, get32(good + 20), 1);
	put32(bad + 24, (uint32_t)z);
	cr_assert_eq(dec(head + z), -RTCI_ERR_CODEC_CONTENT_SIZE);
	/* Not for 8-bit codes. */
	make_good(255);
	memcpy(bad, good, good_len);
	bad[5] = RTCI_CODEC_F_BYTES;
	EXPECT(RTCI_ERR_CODEC_HEADER);
}

Test(codec, every_code_has_a_name)
{
	for (int code = RTCI_ERR_CODEC_LEVELS; code <= RTCI_ERR_CODEC_CODE_RANGE; code++) {
		const char *s = rtci_strerror(-code);
		cr_assert(strncmp(s, "codec: ", 7) == 0, "code %d: %s", code, s);
	}
}
